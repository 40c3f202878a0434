//! The crate's one file with `unsafe` code: the few calls into the C library that std does not
//! wrap (user ids, signals to a child, a child that dies with its parent, the foreground start's
//! signal handlers). Each is a small safe function, and each block says why it is sound.

#![allow(
    unsafe_code,
    reason = "this is the jupyter plugin's one file for libc calls; every block says why it is sound"
)]

use std::process::{Child, Command};

/// The real user and group ids of this process.
pub fn user_ids() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Asks `child` to end with SIGTERM (which the core forwards to the docker process it runs).
pub fn terminate(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on our own child, which has not been waited for yet, so its pid is
        // not reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// Makes the child `command` starts receive SIGTERM when this process dies (Linux), and refuse
/// to start when this process already died before the request took effect.
#[cfg(target_os = "linux")]
pub fn end_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2) and
    // getppid(2), both async-signal-safe; it allocates nothing on the success path.
    unsafe {
        command.pre_exec(move || {
            // SIGTERM, which the core forwards to the docker process it runs.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dpe died before the request took effect: nothing would signal this child.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::other("dpe ended before its log follower started"));
            }
            Ok(())
        })
    };
}

/// Elsewhere a child cannot ask for that; it ends when dpe stops it.
#[cfg(not(target_os = "linux"))]
pub fn end_with_parent(_command: &mut Command) {}

/// Runs `handler` on SIGINT, SIGTERM and SIGHUP instead of dying, and ignores SIGPIPE (a write
/// to a closed pipe then fails instead of ending the process).
pub fn handle_interrupts(handler: extern "C" fn(libc::c_int)) {
    // SAFETY: the caller's handler is an `extern "C"` function (it must be async-signal-safe:
    // the foreground start's only increments an atomic); the sigaction struct is
    // zero-initialised and fully set before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

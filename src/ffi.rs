//! Every `unsafe` block of the core lives here: loading plugin libraries, installing signal
//! handlers, setting the environment and asking the user id. Each block says why it is sound.

#![allow(unsafe_code, reason = "this is the core's one file for FFI; every block says why it is sound")]

use dpe_plugin::abi::{PluginVTable, ABI_VERSION, ABI_VERSION_SYMBOL, VTABLE_SYMBOL};
use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// A loaded dynamic-library plugin. The library is leaked on purpose: a plugin may have started
/// threads or registered destructors, and unloading it under them would crash dpe.
pub struct LoadedPlugin {
    vtable: &'static PluginVTable,
}

/// Why a library could not be used.
pub enum LoadError {
    Open(String),
    MissingSymbol(&'static str, String),
    AbiMismatch { found: u32 },
}

impl LoadedPlugin {
    /// Opens `path`, reads its ABI version before anything else, then its function table.
    pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
        // SAFETY: opening a library runs its initialisers, so this is running its code. dpe loads
        // a library from the plugin directory only after checking that no other user could have
        // written it (`fsutil::check_not_writable_by_others`), and otherwise only the file the
        // user named to `dpe plugin install`.
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::Open(e.to_string()))?;
        let library: &'static libloading::Library = Box::leak(Box::new(library));
        // SAFETY: the protocol defines `DPE_PLUGIN_ABI_VERSION` as a `u32` static; we read it
        // through a pointer of that type and copy the value out.
        let abi = unsafe {
            let symbol = library
                .get::<*const u32>(ABI_VERSION_SYMBOL)
                .map_err(|e| LoadError::MissingSymbol("DPE_PLUGIN_ABI_VERSION", e.to_string()))?;
            **symbol
        };
        if abi != ABI_VERSION {
            return Err(LoadError::AbiMismatch { found: abi });
        }
        // SAFETY: with the ABI version checked, `dpe_plugin_vtable` has the protocol's
        // signature and returns a pointer to a static table that lives as long as the library,
        // which is never unloaded.
        let vtable = unsafe {
            let function = library
                .get::<extern "C" fn() -> *const PluginVTable>(VTABLE_SYMBOL)
                .map_err(|e| LoadError::MissingSymbol("dpe_plugin_vtable", e.to_string()))?;
            let table = function();
            if table.is_null() {
                return Err(LoadError::MissingSymbol("dpe_plugin_vtable", "it returned a null table".into()));
            }
            &*table
        };
        if vtable.abi_version != ABI_VERSION {
            return Err(LoadError::AbiMismatch { found: vtable.abi_version });
        }
        Ok(LoadedPlugin { vtable })
    }

    /// The plugin's manifest JSON.
    pub fn manifest_json(&self) -> String {
        let pointer = (self.vtable.manifest_json)();
        if pointer.is_null() {
            return String::new();
        }
        // SAFETY: the protocol says `manifest_json` returns a NUL-terminated string valid for
        // the life of the library, which is never unloaded.
        unsafe { CStr::from_ptr(pointer) }.to_string_lossy().into_owned()
    }

    /// Runs the plugin with the context JSON and its arguments; returns its status.
    pub fn run(&self, context_json: &str, args: &[String]) -> i32 {
        let context = CString::new(context_json).unwrap_or_default();
        let args: Vec<CString> = args.iter().map(|a| CString::new(a.as_str()).unwrap_or_default()).collect();
        let pointers: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        // The strings outlive the call; the plugin side catches panics (export_plugin!).
        (self.vtable.run)(context.as_ptr(), pointers.len(), pointers.as_ptr())
    }
}

/// Sets process environment variables before a dynamic plugin runs in this process, so the
/// children it spawns (`dpe docker …`) see the same `DPE_*` variables an executable plugin gets.
pub fn set_env_vars(vars: &[(&str, String)]) {
    for (key, value) in vars {
        // SAFETY: no other thread can read the environment concurrently. The dispatch path joins
        // the one thread it may start (reading a `--dpe-manifest` answer, see
        // `manifest_cache::run_with_limit`), and calls this before loading a plugin library
        // whose manifest came from the cache. (On a cache miss the library was loaded to ask
        // it; a library made with `export_plugin!` runs no code and starts no thread on load.)
        unsafe { std::env::set_var(key, value) };
    }
}

/// A sealed, nameless in-memory file holding `bytes`, inherited by every child (no
/// close-on-exec), which reads it at `/proc/self/fd/N`. It lives until the last process holding
/// it exits, so nothing needs removing; the seals stop a reader from changing it for the next.
#[cfg(target_os = "linux")]
pub fn inheritable_memory_file(bytes: &[u8]) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: memfd_create reads a NUL-terminated name and returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"dpe-context".as_ptr(), libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(bytes)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl(F_ADD_SEALS) on a descriptor we own, with an integer argument.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file.into())
}

static CHILD_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    // Ctrl+C reaches the child directly from the terminal (same process group): dpe itself only
    // has to stay alive to run the post hooks.
}

extern "C" fn on_terminate(signal: libc::c_int) {
    let pid = CHILD_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; forwarding the signal lets the child stop the
        // way it would have if it had been signalled directly.
        unsafe { libc::kill(pid, signal) };
    }
}

/// While a child runs: survive SIGINT (the child gets it from the terminal) and forward
/// SIGTERM and SIGHUP to the child, so the post hooks still run afterwards. Handlers (unlike
/// ignored dispositions) are reset in children on exec, so the child keeps default behaviour.
pub fn guard_signals_for_child(pid: u32) {
    CHILD_PID.store(pid as i32, Ordering::SeqCst);
    // SAFETY: the handlers only touch an atomic and call async-signal-safe kill(2).
    unsafe {
        install(libc::SIGINT, on_interrupt as *const () as usize);
        install(libc::SIGTERM, on_terminate as *const () as usize);
        install(libc::SIGHUP, on_terminate as *const () as usize);
    }
}

/// Call once the child is reaped: its pid may be reused from then on, and a SIGTERM to dpe
/// (while the post hooks run) must not be forwarded to whatever process gets it next.
pub fn child_finished() {
    CHILD_PID.store(0, Ordering::SeqCst);
}

/// # Safety
/// `handler` must be an async-signal-safe `extern "C" fn(c_int)` or SIG_DFL/SIG_IGN.
unsafe fn install(signal: libc::c_int, handler: usize) {
    // SAFETY: as this function's contract; the old action is not wanted.
    unsafe { install_with(signal, handler, std::ptr::null_mut()) }
}

/// Like [`install`], writing the action it replaces into `old`.
///
/// # Safety
/// As for [`install`].
unsafe fn install_saving(signal: libc::c_int, handler: usize, old: &mut libc::sigaction) {
    // SAFETY: as this function's contract; `old` is a valid place to write.
    unsafe { install_with(signal, handler, old) }
}

/// # Safety
/// As for [`install`]; `old` is null or valid for writing.
unsafe fn install_with(signal: libc::c_int, handler: usize, old: *mut libc::sigaction) {
    // SAFETY: a zeroed sigaction is a valid starting point; we set the handler and flags.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, old);
    }
}

/// The process group of the hook (or other child) running in a group of its own, and the
/// signal dpe got while it ran (0: none).
static CHILD_GROUP: AtomicI32 = AtomicI32::new(0);
static GROUP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal_for_group(signal: libc::c_int) {
    GROUP_SIGNAL.store(signal, Ordering::SeqCst);
    // Also what [`interrupted`] reports, for a multi-step operation that asked a child.
    INTERRUPTED.store(true, Ordering::SeqCst);
    let group = CHILD_GROUP.load(Ordering::SeqCst);
    if group > 0 {
        // SAFETY: kill(2) is async-signal-safe. The group is not the terminal's foreground
        // group (or dpe would not have got the signal), so it hears of Ctrl+C only from us.
        unsafe { libc::kill(-group, signal) };
    }
}

/// While a child runs in its own process group `pgid` (a hook, a manifest request): Ctrl+C,
/// SIGTERM and SIGHUP sent to dpe are passed to that whole group and remembered
/// ([`group_signal`]), so dpe can stop what the child started and exit the way the signal
/// asked. Dropping the guard puts back the handling there was before.
pub fn guard_signals_for_group(pgid: u32) -> GroupGuard {
    GROUP_SIGNAL.store(0, Ordering::SeqCst);
    CHILD_GROUP.store(pgid as i32, Ordering::SeqCst);
    let mut previous = Vec::with_capacity(GUARDED.len());
    for signal in GUARDED {
        // SAFETY: the handler only touches atomics and calls async-signal-safe kill(2); a
        // zeroed sigaction is a valid place for the kernel to write the old one.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            install_saving(signal, on_signal_for_group as *const () as usize, &mut old);
            previous.push((signal, old));
        }
    }
    GroupGuard { previous }
}

const GUARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Restores the signal handling of before [`guard_signals_for_group`] when dropped.
pub struct GroupGuard {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        CHILD_GROUP.store(0, Ordering::SeqCst);
        for (signal, old) in &self.previous {
            // SAFETY: `old` is exactly what sigaction(2) reported for this signal.
            unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
        }
    }
}

/// The signal dpe received during the last [`guard_signals_for_group`], if any.
pub fn group_signal() -> Option<i32> {
    Some(GROUP_SIGNAL.load(Ordering::SeqCst)).filter(|s| *s != 0)
}

/// Kills every process of the group `pgid` (what a hook or plugin left running).
pub fn kill_group(pgid: u32) {
    if pgid > 1 {
        // SAFETY: kill(2) touches no memory of ours; a group that is gone only gives ESRCH.
        unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) };
    }
}

/// The terminal, lent to a child's process group while it runs (see [`lend_terminal`]).
pub struct LentTerminal {
    fd: libc::c_int,
}

/// Makes the process group `pgid` the terminal's foreground group, when dpe's own group is it
/// now, so that a hook in its own group can still read `/dev/tty` (a background group reading
/// it would be stopped) and gets Ctrl+C from the terminal itself. Dropping the value gives
/// the terminal back to dpe's group. `None` when dpe has no terminal or is in the background.
pub fn lend_terminal(pgid: u32) -> Option<LentTerminal> {
    // SAFETY: open(2) with a NUL-terminated literal; the descriptor is closed on drop.
    let fd = unsafe { libc::open(c"/dev/tty".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOCTTY) };
    if fd < 0 {
        return None;
    }
    // SAFETY: tcgetpgrp, getpgrp and tcsetpgrp take plain values and an open descriptor.
    let lent = unsafe { libc::tcgetpgrp(fd) == libc::getpgrp() && libc::tcsetpgrp(fd, pgid as libc::pid_t) == 0 };
    if !lent {
        // SAFETY: `fd` is ours and closed once.
        unsafe { libc::close(fd) };
        return None;
    }
    // The child ran before it got the terminal: if it read from it already, it was stopped
    // (SIGTTIN). Continue it, as a shell does when it puts a job in the foreground; a process
    // that was not stopped ignores SIGCONT.
    // SAFETY: kill(2) touches no memory of ours.
    unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGCONT) };
    Some(LentTerminal { fd })
}

impl Drop for LentTerminal {
    fn drop(&mut self) {
        // SAFETY: dpe is in the background while the terminal is lent, so taking it back would
        // stop dpe with SIGTTOU unless that is blocked, which it is just for this call; the
        // mask is restored right after, and `fd` is ours and closed once.
        unsafe {
            let mut block: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut block);
            libc::sigaddset(&mut block, libc::SIGTTOU);
            libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut previous);
            libc::tcsetpgrp(self.fd, libc::getpgrp());
            libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
            libc::close(self.fd);
        }
    }
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_interrupt_deferred(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on Ctrl+C, SIGTERM and SIGHUP only raise a flag ([`interrupted`]), so a
/// multi-step file operation (`dpe plugin install`) can stop at its next step and remove what
/// it wrote instead of dying half-way. Children (cargo) still get Ctrl+C from the terminal.
pub fn defer_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        install(libc::SIGINT, on_interrupt_deferred as *const () as usize);
        install(libc::SIGTERM, on_interrupt_deferred as *const () as usize);
        install(libc::SIGHUP, on_interrupt_deferred as *const () as usize);
    }
}

/// Whether an interrupt arrived since [`defer_interrupts`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The effective user id, to tell this user's files from other users'.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Restores SIGPIPE's default so a closed pipe ends dpe quietly, like other Unix tools.
pub fn default_sigpipe() {
    // SAFETY: resetting a disposition to SIG_DFL is always sound.
    unsafe { install(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Makes reads from `fd` return `WouldBlock` instead of waiting, so dpe can take what a hook
/// has written so far without waiting on whoever else holds the pipe's other end.
pub fn set_nonblocking(fd: std::os::fd::BorrowedFd) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl(2) on a descriptor the caller keeps open for the call; no memory is passed.
    let done = unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if done {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

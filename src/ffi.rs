//! Every `unsafe` block of the core lives here: loading plugin libraries, installing signal
//! handlers, setting the environment and asking the user id. Each block says why it is sound.

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
    // SAFETY: a zeroed sigaction is a valid starting point; we set the handler and flags.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
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

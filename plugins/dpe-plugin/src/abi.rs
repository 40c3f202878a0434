//! The dynamic-library plugin ABI.
//!
//! A library `libdpe_NAME.so` (`.dylib` on macOS) exports two symbols:
//! - `DPE_PLUGIN_ABI_VERSION`, a `u32` static equal to [`ABI_VERSION`], which dpe reads before
//!   anything else and compares;
//! - `dpe_plugin_vtable`, an `extern "C" fn() -> *const PluginVTable`.
//!
//! Strings cross the boundary as NUL-terminated UTF-8 owned by the library (`manifest`) or by
//! dpe (`run`'s arguments). Panics never cross it: [`export_plugin!`] catches them and returns
//! status 101. dpe never unloads a library it loaded.
//!
//! This is the crate's one file with `unsafe` code: the ABI, and [`default_sigpipe`] for the
//! SDK's entry point.

#![allow(unsafe_code, reason = "this is the protocol crate's one file for FFI; every block says why it is sound")]

use std::ffi::c_char;

/// The ABI version this crate describes.
pub const ABI_VERSION: u32 = 1;

/// Name of the ABI version symbol.
pub const ABI_VERSION_SYMBOL: &[u8] = b"DPE_PLUGIN_ABI_VERSION\0";

/// Name of the function-table symbol.
pub const VTABLE_SYMBOL: &[u8] = b"dpe_plugin_vtable\0";

/// The function table of a dynamic-library plugin.
#[repr(C)]
pub struct PluginVTable {
    /// Equal to [`ABI_VERSION`].
    pub abi_version: u32,
    /// The manifest as NUL-terminated JSON, valid for the life of the library.
    pub manifest_json: extern "C" fn() -> *const c_char,
    /// Runs the plugin: the context as NUL-terminated JSON, then `argc` NUL-terminated
    /// arguments (those after the plugin name). Returns the exit status.
    pub run: extern "C" fn(context_json: *const c_char, argc: usize, argv: *const *const c_char) -> i32,
}

/// Exports a Rust plugin as a dynamic library: an SDK plugin by its type (the one its
/// executable form passes to `sdk::main`), or any plugin by the same `manifest` and `run`
/// functions its executable form passes to [`crate::run_plugin`].
///
/// ```text
/// dpe_plugin::export_plugin!(Hello);                               // impl sdk::Plugin for Hello
/// dpe_plugin::export_plugin!(my_plugin::manifest, my_plugin::run); // without the SDK
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::export_plugin!($crate::sdk::manifest::<$plugin>, $crate::sdk::run::<$plugin>);
    };
    ($manifest:path, $run:path) => {
        #[no_mangle]
        pub static DPE_PLUGIN_ABI_VERSION: u32 = $crate::abi::ABI_VERSION;

        #[no_mangle]
        pub extern "C" fn dpe_plugin_vtable() -> *const $crate::abi::PluginVTable {
            extern "C" fn manifest_json() -> *const ::std::ffi::c_char {
                static TEXT: ::std::sync::OnceLock<::std::ffi::CString> = ::std::sync::OnceLock::new();
                TEXT.get_or_init(|| {
                    let manifest: $crate::Manifest = $manifest();
                    let json = $crate::__serde_json::to_string(&manifest).unwrap_or_default();
                    ::std::ffi::CString::new(json).unwrap_or_default()
                })
                .as_ptr()
            }
            extern "C" fn run(
                context_json: *const ::std::ffi::c_char,
                argc: usize,
                argv: *const *const ::std::ffi::c_char,
            ) -> i32 {
                let outcome = ::std::panic::catch_unwind(|| {
                    // SAFETY: dpe passes a valid NUL-terminated string and `argc` valid
                    // NUL-terminated strings that outlive this call (see `PluginVTable::run`).
                    let (context_text, args) = unsafe { $crate::abi::__read_call(context_json, argc, argv) };
                    match $crate::Context::from_json(&context_text) {
                        Ok(context) => {
                            let status = $run(&context, &args);
                            // The library has its own std and stdout buffer; dpe exits with
                            // `process::exit`, which would drop a last line without `\n`.
                            let _ = ::std::io::Write::flush(&mut ::std::io::stdout());
                            status
                        }
                        Err(message) => {
                            eprintln!("error: {message}");
                            2
                        }
                    }
                });
                outcome.unwrap_or(101)
            }
            static TABLE: $crate::abi::PluginVTable =
                $crate::abi::PluginVTable { abi_version: $crate::abi::ABI_VERSION, manifest_json, run };
            &TABLE
        }
    };
}

/// Reads the arguments of a `run` call. Used by [`export_plugin!`].
///
/// # Safety
/// `context_json` and each of the `argc` pointers in `argv` must be valid NUL-terminated strings.
#[doc(hidden)]
pub unsafe fn __read_call(
    context_json: *const c_char,
    argc: usize,
    argv: *const *const c_char,
) -> (String, Vec<String>) {
    use std::ffi::CStr;
    // SAFETY: guaranteed by the caller.
    let context = unsafe { CStr::from_ptr(context_json) }.to_string_lossy().into_owned();
    let mut args = Vec::with_capacity(argc);
    for i in 0..argc {
        // SAFETY: guaranteed by the caller: `argv` has `argc` valid entries.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
        args.push(arg.to_string_lossy().into_owned());
    }
    (context, args)
}

/// Restores SIGPIPE's default so an executable plugin whose reader went away (`| head`) ends
/// quietly, as Unix tools do, instead of panicking on the failed write.
pub fn default_sigpipe() {
    // SAFETY: resetting a signal's disposition to its default touches no memory of ours, and
    // the SDK's `main` calls it before the plugin starts any thread.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

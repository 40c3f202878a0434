//! The core's error type is the SDK's ([`dpe_plugin::sdk::Error`]): a message, an optional
//! `help:` line, and the exit code it maps to, printed by one `write_error` for the core and
//! every plugin alike (control characters escaped: messages quote files other people wrote).
//!
//! Exit codes are API: 0 ok, 1 user or configuration error, 2 usage error; a plugin's, hook's
//! or docker's own status passes through unchanged (see [`dpe_plugin::sdk::status`]).

pub use dpe_plugin::sdk::{Error, Result};

/// An I/O error while doing `what` to `path` (``could not read `/x/dpe.toml`: …``).
pub fn io(what: &str, path: &std::path::Path, err: std::io::Error) -> Error {
    Error::new(format!("could not {what} `{}`: {err}", path.display()))
}

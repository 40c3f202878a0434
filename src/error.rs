//! The core's error type: a message, an optional `help:` line, and the exit code it maps to.
//!
//! Exit codes are API: 0 ok, 1 user or configuration error, 2 usage error; a plugin's, hook's
//! or docker's own status passes through unchanged (see [`Error::status`]).

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug)]
pub struct Error {
    pub message: String,
    pub help: Option<String>,
    pub code: i32,
    /// Already reported (e.g. by the child process itself): exit with `code`, print nothing.
    pub quiet: bool,
}

impl Error {
    /// A user or configuration error (exit 1).
    pub fn new(message: impl Into<String>) -> Error {
        Error { message: message.into(), help: None, code: 1, quiet: false }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error { code: 2, ..Error::new(message) }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Error {
        self.help = Some(help.into());
        self
    }

    pub fn with_code(mut self, code: i32) -> Error {
        self.code = code;
        self
    }

    /// An I/O error while doing `what` to `path`.
    pub fn io(what: &str, path: &std::path::Path, err: std::io::Error) -> Error {
        Error::new(format!("could not {what} `{}`: {err}", path.display()))
    }
}

/// How every core error reaches the user. Messages quote values from files other people wrote
/// (a workspace's `dpe.toml`, toml's snippet of its line, a hook's path), so control characters
/// are escaped, once for all of them, by the SDK's [`dpe_plugin::sdk::write_error`].
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        dpe_plugin::sdk::write_error(f, &self.message, self.help.as_deref())
    }
}

impl std::error::Error for Error {}

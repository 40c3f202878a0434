//! The plugin's error type: a message the user reads, an optional `help:` line with the fix,
//! and the exit code. Every failure path ends here, so messages look the same everywhere.

use std::fmt;

/// A failure to report to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
    pub help: Option<String>,
    /// The process exit code: 1 for user/config errors, 2 for usage, docker's status otherwise.
    pub code: i32,
    /// Already reported by the program that failed (e.g. `dpe gpu flags`): print nothing more.
    pub quiet: bool,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error { message: message.into(), help: None, code: 1, quiet: false }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Error {
        self.help = Some(help.into());
        self
    }

    pub fn with_code(mut self, code: i32) -> Error {
        self.code = code;
        self
    }

    /// An I/O failure while doing `what` (e.g. "writing `/x/y`").
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Error {
        Error::new(format!("{what}: {err}"))
    }

    /// A failure another program already explained on stderr; only its exit code remains.
    pub fn quiet(code: i32) -> Error {
        Error { message: String::new(), help: None, code, quiet: true }
    }

    /// Prints `error: …` and `help: …` to stderr.
    pub fn report(&self) {
        if self.quiet {
            return;
        }
        // Not `eprintln!`: after a Ctrl+C that also ended the reader of stderr, the exit code
        // must still be reported instead of a panic.
        crate::say::err(&dpe_plugin::terminal_safe(&format!("error: {}", self.message)));
        if let Some(help) = &self.help {
            crate::say::err(&dpe_plugin::terminal_safe(&format!("help: {help}")));
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

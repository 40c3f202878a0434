//! How a command fails: a message the user reads (with an optional `help:` line), or an exit
//! status passed through from a child (docker, compose, a hook, another plugin) that has
//! already said what went wrong on stderr.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong; `None` when a child already reported it.
    pub message: Option<String>,
    /// The next step for the user.
    pub help: Option<String>,
    /// The process exit status.
    pub code: i32,
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    /// A user or configuration error (exit 1).
    pub fn new(message: impl Into<String>) -> Failure {
        Failure { message: Some(message.into()), help: None, code: 1 }
    }

    /// A child's exit status, passed through unchanged; it printed its own error.
    pub fn exit(code: i32) -> Failure {
        Failure { message: None, help: None, code: if code == 0 { 1 } else { code } }
    }

    pub fn help(mut self, help: impl Into<String>) -> Failure {
        self.help = Some(help.into());
        self
    }

    /// Prints the message to stderr (if any) and returns the exit status.
    pub fn report(&self) -> i32 {
        if self.message.is_some() {
            eprint!("{}", dpe_plugin::terminal_safe(&self.to_string()));
        }
        self.code
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(message) = &self.message {
            writeln!(f, "error: {message}")?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "help: {help}")?;
        }
        Ok(())
    }
}

/// An I/O error while doing `what` (which names the path or program).
pub fn io(what: impl fmt::Display, error: std::io::Error) -> Failure {
    Failure::new(format!("{what}: {error}"))
}

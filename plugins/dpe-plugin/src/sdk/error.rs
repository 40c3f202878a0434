//! The one error type of every Rust plugin: a message, an optional `help:` line naming the fix,
//! and the exit code. It prints exactly like the core's errors (`error: …`, then `help: …`,
//! control characters escaped), so a user cannot tell a plugin's error from dpe's own, and a
//! conversion never has anything to drop.

use std::fmt;
use std::io::Write;

/// A failure to report to the user, or a child's status to pass through ([`Error::quiet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What went wrong (lowercase, no final period, names in backticks).
    pub message: String,
    /// The next step for the user.
    pub help: Option<String>,
    /// The process exit code: 1 user or configuration error, 2 usage error, a child's own
    /// status when it failed.
    pub code: i32,
    /// Already reported by the program that failed (docker, a hook, another plugin): exit with
    /// `code` and print nothing.
    pub quiet: bool,
}

/// A plugin's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A user or configuration error (exit 1).
    pub fn new(message: impl Into<String>) -> Error {
        Error { message: message.into(), help: None, code: 1, quiet: false }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error { code: 2, ..Error::new(message) }
    }

    /// A child's failure it has already explained on stderr: only its exit code remains. A
    /// status of 0 becomes 1, since this is a failure.
    pub fn quiet(code: i32) -> Error {
        Error { message: String::new(), help: None, code: if code == 0 { 1 } else { code }, quiet: true }
    }

    /// An I/O failure while doing `what`, which names the path or program
    /// (``cannot write `/x/y` ``).
    pub fn io(what: impl fmt::Display, error: std::io::Error) -> Error {
        Error::new(format!("{what}: {error}"))
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Error {
        self.help = Some(help.into());
        self
    }

    pub fn with_code(mut self, code: i32) -> Error {
        self.code = code;
        self
    }

    /// Prints the error to `err` (nothing when quiet) and returns its exit code. A write that
    /// fails (the reader of stderr went away) is ignored: the exit code still counts.
    pub fn report_to(&self, err: &mut dyn Write) -> i32 {
        if !self.quiet {
            let _ = writeln!(err, "{self}");
        }
        self.code
    }

    /// [`Error::report_to`] on this process's stderr.
    pub fn report(&self) -> i32 {
        self.report_to(&mut std::io::stderr().lock())
    }
}

/// Messages quote values from files other people wrote and words the user typed, so control
/// characters are escaped here, once for every error: see [`crate::terminal_safe`].
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_error(f, &self.message, self.help.as_deref())
    }
}

/// The one way an error reads, `error: …` and an optional `help: …` line, with control
/// characters escaped: the SDK's errors and the core's both print through it.
pub fn write_error(f: &mut fmt::Formatter<'_>, message: &str, help: Option<&str>) -> fmt::Result {
    write!(f, "error: {}", crate::terminal_safe(message))?;
    if let Some(help) = help {
        write!(f, "\nhelp: {}", crate::terminal_safe(help))?;
    }
    Ok(())
}

impl std::error::Error for Error {}

/// Ok for a child's status 0, else its status passed through quietly (the child has said why).
pub fn status(code: i32) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::quiet(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_prints_like_the_cores_with_its_exit_code() {
        let error = Error::usage("no `dpe gpu` command named `x`").with_help("the commands are `check`");
        assert_eq!(error.to_string(), "error: no `dpe gpu` command named `x`\nhelp: the commands are `check`");
        assert_eq!(error.code, 2);
        assert_eq!((Error::new("plain").to_string(), Error::new("plain").code), ("error: plain".into(), 1));
        let mut err = Vec::new();
        assert_eq!(Error::new("m").with_help("h").with_code(7).report_to(&mut err), 7);
        assert_eq!(String::from_utf8(err).unwrap(), "error: m\nhelp: h\n");
    }

    #[test]
    fn control_characters_in_the_message_and_the_help_are_escaped() {
        let error = Error::new("no project `a\u{1b}[2Jb`").with_help("name \u{7}one");
        assert_eq!(error.to_string(), "error: no project `a\\u{1b}[2Jb`\nhelp: name \\u{7}one");
    }

    #[test]
    fn a_quiet_error_prints_nothing_and_never_exits_0() {
        let mut err = Vec::new();
        assert_eq!(Error::quiet(3).report_to(&mut err), 3);
        assert_eq!(Error::quiet(0).report_to(&mut err), 1);
        assert!(err.is_empty());
        assert_eq!(status(0), Ok(()));
        assert_eq!(status(125), Err(Error::quiet(125)));
    }

    #[test]
    fn io_errors_say_what_was_being_done() {
        let error = Error::io("cannot read `/x`", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(error.message, "cannot read `/x`: entity not found");
    }
}

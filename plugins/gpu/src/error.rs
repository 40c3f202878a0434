//! The error a `dpe gpu` command ends with: its message, the `help:` line that names the fix,
//! and the exit code. It is printed exactly like the core's errors (`error: …`, then `help: …`,
//! control characters escaped), so a message never carries its help glued into the text.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
    pub help: Option<String>,
    pub code: i32,
}

impl Error {
    /// A user or configuration error (exit 1).
    pub fn new(message: impl Into<String>) -> Error {
        Error { message: message.into(), help: None, code: 1 }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error { code: 2, ..Error::new(message) }
    }

    pub fn with_help(self, help: impl Into<String>) -> Error {
        Error { help: Some(help.into()), ..self }
    }
}

/// Messages quote what the user typed and what workspaces other people wrote name, so control
/// characters are escaped here, as the core does for its own errors.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", dpe_plugin::terminal_safe(&self.message))?;
        if let Some(help) = &self.help {
            write!(f, "\nhelp: {}", dpe_plugin::terminal_safe(help))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_prints_its_message_then_its_help_line() {
        let error = Error::usage("no `dpe gpu` command named `x`").with_help("the commands are `check`");
        assert_eq!(error.to_string(), "error: no `dpe gpu` command named `x`\nhelp: the commands are `check`");
        assert_eq!(error.code, 2);
        assert_eq!(Error::new("plain").to_string(), "error: plain");
        assert_eq!(Error::new("plain").code, 1);
    }

    #[test]
    fn control_characters_in_an_error_are_escaped() {
        let error = Error::new("no project `a\u{1b}[2Jb`").with_help("name \u{7}one");
        assert_eq!(error.to_string(), "error: no project `a\\u{1b}[2Jb`\nhelp: name \\u{7}one");
    }
}

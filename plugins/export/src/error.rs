//! The one error type of the export plugin: a message a user reads, an optional `help:` line with
//! the next step, and the exit code (1 for user or environment errors, docker's own status when a
//! docker call failed, 2 for usage errors).

use std::fmt;
use std::path::Path;

/// A failure to report: `error: MESSAGE` then `help: HELP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub help: Option<String>,
    pub code: i32,
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), help: None, code: 1 }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Failure {
        self.help = Some(help.into());
        self
    }

    pub fn with_code(mut self, code: i32) -> Failure {
        self.code = code;
        self
    }

    /// An I/O failure while doing `action` (a verb phrase: "reading", "writing") to `path`.
    pub fn io(action: &str, path: &Path, error: std::io::Error) -> Failure {
        Failure::new(format!("{action} `{}` failed: {error}", path.display()))
    }

    /// Prints the failure to stderr and returns its exit code.
    pub fn report(&self) -> i32 {
        eprintln!("error: {}", self.message);
        if let Some(help) = &self.help {
            eprintln!("help: {help}");
        }
        self.code
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\nhelp: {help}")?;
        }
        Ok(())
    }
}

/// Project names, as the core accepts them: `[a-z0-9][a-z0-9_-]*`.
pub fn validate_project_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok {
        return Ok(());
    }
    Err(Failure::new(format!("`{name}` is not a valid project name"))
        .with_help("project names are lowercase letters, digits, `_` and `-`, starting with a letter or digit")
        .with_code(2))
}

/// A command's entry point: parses `args` as `command` would (`--help` and usage errors print
/// clap's text and exit 0 or 2), runs `body`, and turns its failure into the exit status.
pub fn run_command<A: clap::Parser>(command: &str, args: &[String], body: impl FnOnce(&A) -> Result<()>) -> i32 {
    let parsed = match A::try_parse_from(std::iter::once(command.to_string()).chain(args.iter().cloned())) {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { 2 } else { 0 };
        }
    };
    match body(&parsed) {
        Ok(()) => 0,
        Err(failure) => failure.report(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_follow_the_core_rule() {
        assert!(validate_project_name("project_a").is_ok());
        assert!(validate_project_name("0-x").is_ok());
        assert!(validate_project_name("Project").is_err());
        assert!(validate_project_name("-a").is_err());
        assert!(validate_project_name("").is_err());
        assert!(validate_project_name("../a").is_err());
    }
}

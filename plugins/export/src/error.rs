//! The export plugin's errors are the SDK's ([`dpe_plugin::sdk::Error`]: a message a user
//! reads, an optional `help:` line with the next step, and the exit code: 1 for user or
//! environment errors, docker's own status when a docker call failed, 2 for usage errors).
//! What is left here is the project-name rule both commands check.

pub use dpe_plugin::sdk::{Error, Result};

/// Project names, as the core accepts them: `[a-z0-9][a-z0-9_-]*`.
pub fn validate_project_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok {
        return Ok(());
    }
    Err(Error::new(format!("`{name}` is not a valid project name"))
        .with_help("project names are lowercase letters, digits, `_` and `-`, starting with a letter or digit")
        .with_code(2))
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

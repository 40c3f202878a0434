//! Validation of plugin and project names, so a name can never be a path trick.

use crate::error::{Error, Result};

/// Whether `name` is a valid plugin or project name: `[a-z0-9][a-z0-9_-]*`, at most 64 bytes.
/// Underscores are allowed because project folders like `project_a` are the norm.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// Refuses an invalid name, saying what a valid one looks like.
pub fn validate(kind: &str, name: &str) -> Result<()> {
    if is_valid(name) {
        return Ok(());
    }
    let shown = if name.is_empty() { "an empty name".to_string() } else { format!("`{name}`") };
    Err(Error::new(format!("{shown} is not a valid {kind} name"))
        .with_help("names use lowercase letters, digits, `-` and `_`, and start with a letter or digit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["jupyter", "project_a", "gpu2", "my-plugin", "0day"] {
            assert!(is_valid(name), "{name}");
        }
    }

    #[test]
    fn refuses_path_tricks_and_oddities() {
        for name in ["", "..", ".", "a/b", "../x", "-flag", "_x", "Upper", "a b", "a.b", "x\0"] {
            assert!(!is_valid(name), "{name:?}");
        }
    }
}

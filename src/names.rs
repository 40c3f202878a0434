//! Validation of plugin and project names, so a name can never be a path trick.

use crate::error::{Error, Result};

/// Whether `name` is a valid plugin or project name: `[a-z0-9][a-z0-9_-]*`, at most 64 bytes
/// (the protocol's rule, shared with every plugin).
pub use dpe_plugin::names::is_valid;

/// Refuses an invalid name, saying what a valid one looks like.
pub fn validate(kind: &str, name: &str) -> Result<()> {
    if is_valid(name) {
        return Ok(());
    }
    let shown = if name.is_empty() { "an empty name".to_string() } else { format!("`{name}`") };
    Err(Error::new(format!("{shown} is not a valid {kind} name"))
        .with_help("names use lowercase letters, digits, `-` and `_`, and start with a letter or digit"))
}

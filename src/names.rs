//! Validation of plugin and project names, so a name can never be a path trick.

use crate::error::{Error, Result};

/// Whether `name` is a valid plugin or project name: `[a-z0-9][a-z0-9_-]*`, at most 64 bytes
/// (the protocol's rule, shared with every plugin).
pub use dpe_plugin::names::is_valid;

/// Refuses an invalid name, saying what a valid one looks like (the protocol's words, which
/// plugins print too).
pub fn validate(kind: &str, name: &str) -> Result<()> {
    match dpe_plugin::names::refusal(kind, name) {
        None => Ok(()),
        Some((message, help)) => Err(Error::new(message).with_help(help)),
    }
}

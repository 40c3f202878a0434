//! The export plugin's errors are the SDK's ([`dpe_plugin::sdk::Error`]: a message a user
//! reads, an optional `help:` line with the next step, and the exit code: 1 for user or
//! environment errors, docker's own status when a docker call failed, 2 for usage errors).
//! Project names are checked with the protocol's one rule ([`dpe_plugin::names::validate`]).

pub use dpe_plugin::sdk::{Error, Result};

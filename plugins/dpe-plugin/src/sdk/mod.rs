//! The SDK for Rust plugins: what every plugin would otherwise write again, as `nu-plugin` is
//! to `nu-plugin-protocol`. The rest of this crate is the protocol (plain types both sides
//! need); this module is the helpers only plugins use:
//! - [`Error`]: the one error type (message, help, exit code), printed like the core's;
//! - [`Plugin`], [`main`], [`run`] and [`manifest`]: the entry point. A plugin defines its
//!   command line once with clap and implements [`Plugin::run`]; parsing, `--help`, usage
//!   errors, exit codes, the context, SIGPIPE and the manifest (derived from the clap
//!   definition by [`manifest_from_clap`]) are done here, alike for the executable and the
//!   dynamic-library form ([`crate::export_plugin!`]);
//! - [`fs`]: atomic and private file writes;
//! - [`docker`]: the `dpe docker` client (captured, checked, streamed);
//! - [`http`]: the readiness probe (an HTTP GET with timeouts);
//! - [`units`]: byte counts for people (decimal as the engines print them, or binary).
//!
//! A whole plugin:
//!
//! ```no_run
//! use dpe_plugin::sdk::{self, Plugin};
//!
//! /// Say hello.
//! #[derive(clap::Parser)]
//! #[command(name = "dpe hello", version)]
//! struct Hello {
//!     /// The project (dpe selects it).
//!     project: Option<String>,
//! }
//!
//! impl Plugin for Hello {
//!     const DPE: &'static str = "^0.1";
//!     fn run(self, context: &dpe_plugin::Context) -> sdk::Result<()> {
//!         let project = sdk::project(context)?;
//!         println!("hello, {}", project.name);
//!         Ok(())
//!     }
//! }
//!
//! fn main() {
//!     sdk::main::<Hello>()
//! }
//! ```

mod cli;
pub mod docker;
mod error;
pub mod fs;
pub mod http;
pub mod units;

pub use cli::{manifest_from_clap, manifest_mismatches, parse, synopsis, Stop, PROJECT_ARG};
pub use error::{status, write_error, Error, Result};

use crate::{Context, Manifest};

/// A plugin: its clap command line (named `dpe NAME`, with `#[command(version)]` so the
/// manifest carries the crate's version) and what running it does.
pub trait Plugin: clap::Parser {
    /// The dpe versions this plugin works with, as a semver requirement (`^0.1`).
    const DPE: &'static str;

    /// Runs the parsed command line. An error is printed as `error:`/`help:` and exits with its
    /// code; a quiet one only exits.
    fn run(self, context: &Context) -> Result<()>;

    /// What `--dpe-manifest` answers: derived from the command line. Override it only to add
    /// what clap does not say (`complete: true` for a plugin that completes its arguments).
    fn manifest() -> Manifest {
        manifest_from_clap(&Self::command(), Self::DPE)
    }
}

/// The manifest of `P`, as a function dpe's plugin table can hold.
pub fn manifest<P: Plugin>() -> Manifest {
    P::manifest()
}

/// Runs `dpe NAME ARGS…` for `P`: parses `args` (the words after `NAME`), runs the command and
/// returns the exit code: 0, the error's code, 2 for a usage error, 0 after `--help`.
pub fn run<P: Plugin>(context: &Context, args: &[String]) -> i32 {
    let parsed = match parse::<P>(args) {
        Ok(parsed) => parsed,
        Err(stop) => return stop.write(&mut std::io::stdout().lock(), &mut std::io::stderr().lock()),
    };
    match parsed.run(context) {
        Ok(()) => 0,
        Err(error) => error.report(),
    }
}

/// For a plugin's tests: panics unless its manifest and its parser agree
/// ([`manifest_mismatches`]) and completion offers `expected` ([`synopsis`]).
pub fn assert_manifest<P: Plugin>(expected: &[&str]) {
    assert_eq!(manifest_mismatches::<P>(), Vec::<String>::new(), "the manifest and the parser disagree");
    assert_eq!(synopsis(&P::manifest()), expected, "completion would offer other words");
}

/// The project dpe selected, or the error that tells the user how to select one.
pub fn project(context: &Context) -> Result<&crate::ProjectRef> {
    context.project.as_ref().ok_or_else(|| {
        let name = context.plugin.as_deref().unwrap_or("NAME");
        Error::new("no project selected").with_help(format!(
            "name one (`dpe {name} PROJECT`), pass `--project PROJECT`, or run inside a project folder"
        ))
    })
}

/// The `main` of an executable plugin: restores SIGPIPE's default so `dpe NAME … | head` ends
/// quietly instead of panicking on a closed stdout (dpe does the same for itself, and so for
/// library plugins), answers `--dpe-manifest`, reads the context and exits with [`run`]'s code.
pub fn main<P: Plugin>() -> ! {
    crate::abi::default_sigpipe();
    crate::run_plugin(manifest::<P>, run::<P>)
}

#[cfg(test)]
mod tests;

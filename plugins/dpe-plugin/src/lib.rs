//! The dpe plugin protocol: everything the core and a plugin must agree on, and nothing else.
//!
//! Both sides depend on this crate; a plugin never depends on the core. It holds:
//! - [`manifest`]: what a plugin says about itself (`dpe-NAME --dpe-manifest` prints it as JSON);
//! - [`context`]: the resolved project context dpe hands to every plugin;
//! - [`config`]: the schema of `dpe.toml`, so every plugin reads a project the same way;
//! - [`env`]: the names of the `DPE_*` environment variables;
//! - [`names`]: what a valid plugin or project name is;
//! - [`reach`]: which settings reach outside the project, refused from an untrusted workspace;
//! - [`abi`]: the C-layout table a dynamic-library plugin exports;
//! - [`client`]: the few calls a Rust plugin makes back into dpe (`dpe docker …`), and
//!   [`run_plugin`], the `main` of an executable plugin;
//! - [`containers`]: listing containers with their labels, alike on Docker and Podman;
//! - [`contract`]: the JSON first-party plugins exchange (`dpe jupyter spec --json`, `dpe gpu
//!   flags --json`) and the engine names of a project's environment, typed once;
//! - [`dockerfile`]: quoting, checks and CA certificates for every Dockerfile dpe writes.
//! - `progress` (feature `progress`): the status line long work shows (in place on a terminal,
//!   plain on a pipe).
//!
//! - [`sdk`]: what Rust plugins share and the protocol does not
//!   need: the error type, the entry point, the manifest derived from the clap definition and
//!   atomic file writes.
//!
//! The first four are plain data. Plugins in other languages speak the same protocol through
//! the environment variables and JSON documented in the README.

pub mod abi;
pub mod client;
pub mod config;
pub mod containers;
pub mod context;
pub mod contract;
pub mod dockerfile;
pub mod env;
pub mod manifest;
pub mod names;
#[cfg(feature = "progress")]
pub mod progress;
pub mod reach;
pub mod sdk;

pub use config::Config;
pub use context::{Context, ProjectRef};
pub use manifest::{Manifest, OptionSpec, Subcommand};

/// The protocol version. A plugin built against another major protocol is refused with both
/// numbers named; it travels in `DPE_PROTOCOL` and in the context JSON.
pub const PROTOCOL_VERSION: u32 = 1;

/// The text a plugin file contains when it answers `--dpe-manifest`. dpe never runs a plugin to
/// ask for its manifest (or its completions) unless the file contains this marker, so a
/// three-line shell script that knows nothing of dpe is never executed by surprise. A script
/// opts in with a comment holding the marker; a Rust plugin gets it through [`run_plugin`].
pub const MANIFEST_MARKER: &str = "dpe-plugin-manifest:v1";

/// The argument that asks a plugin for its manifest.
pub const MANIFEST_FLAG: &str = "--dpe-manifest";

/// The argument that asks an opted-in plugin for completion candidates: `dpe-NAME --dpe-complete
/// -- WORD…`, where the last word is the one being completed. It prints one candidate a line,
/// optionally followed by a tab and a description.
pub const COMPLETE_FLAG: &str = "--dpe-complete";

/// A text as a terminal may show it: every control character but newline and tab escaped
/// (`\u{1b}`), so a value from someone else's file (a service name, a path, toml's snippet of
/// the line) quoted in a message cannot clear the screen, set the title or write the clipboard.
pub fn terminal_safe(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// The instant `timeout` from now, or one far enough ahead to mean "never" when the sum does
/// not fit: a wait whose length comes from a file must not end in an overflow panic.
pub fn deadline_after(timeout: std::time::Duration) -> std::time::Instant {
    const FAR: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    let now = std::time::Instant::now();
    now.checked_add(timeout).or_else(|| now.checked_add(FAR)).unwrap_or(now)
}

/// Runs an executable Rust plugin: answers `--dpe-manifest`, reads the context dpe passed, and
/// calls `run` with the arguments after the plugin name. Exits with `run`'s status.
pub fn run_plugin(manifest: fn() -> Manifest, run: fn(&Context, &[String]) -> i32) -> ! {
    // Keep the marker in the binary even under aggressive optimisation, so dpe sees the opt-in.
    std::hint::black_box(MANIFEST_MARKER);
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(MANIFEST_FLAG) {
        let text = serde_json::to_string_pretty(&manifest()).expect("a manifest serialises");
        // A reader that went away (`| head`) is not an error worth a panic.
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{text}");
        std::process::exit(0);
    }
    let name = manifest().name;
    let context = match Context::from_env() {
        Ok(context) => context,
        Err(message) => {
            // Written, not `eprintln!`: a closed stderr must not turn this into a panic. The
            // message may quote the environment, so it is escaped like every error.
            use std::io::Write;
            let help = format!("`dpe-{name}` is a dpe plugin; run it as `dpe {name} …`");
            let text = format!("error: {}\nhelp: {}\n", terminal_safe(&message), terminal_safe(&help));
            let _ = std::io::stderr().write_all(text.as_bytes());
            std::process::exit(2);
        }
    };
    std::process::exit(run(&context, &args));
}

#[doc(hidden)]
pub use serde_json as __serde_json;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_safe_escapes_control_characters_but_newline_and_tab() {
        assert_eq!(terminal_safe("a\u{1b}[2Jb\u{7}\r\n\tc\u{9b}é"), "a\\u{1b}[2Jb\\u{7}\\r\n\tc\\u{9b}é");
    }

    #[test]
    fn deadline_after_saturates_instead_of_panicking() {
        let far = deadline_after(std::time::Duration::from_secs(u64::MAX));
        assert!(far > std::time::Instant::now() + std::time::Duration::from_secs(50 * 365 * 24 * 3600));
        let near = deadline_after(std::time::Duration::from_secs(5));
        assert!(near <= std::time::Instant::now() + std::time::Duration::from_secs(5));
    }
}

//! `dpe jupyter`: one command from a project folder to a running, isolated Jupyter with a
//! stable port, kept packages, files owned by the user and a URL that works.
//!
//! The plugin speaks the dpe protocol: the context arrives in `DPE_CONTEXT`, and every engine
//! call goes through `dpe docker …` so the user's hooks run and the core labels what is
//! created. Modules: [`image`] (generated Dockerfile, content-hash tag), [`build`] (running a build: progress and log), [`imported`] (environments `dpe import` brought, for their project only), [`lock`] (`--from-lock`), [`ports`] (the
//! locked registry), [`project_lock`] (one start or stop of a project at a time), [`resolved`] (any project's context, cached), [`secrets`] (token, env file), [`spec`] (the `spec --json` contract and
//! the `docker run` arguments), [`usage`] (what a running environment uses, for `list`), [`commands`] (one file per subcommand).
//!
//! Only [`manifest`] and [`run`] are the library's interface (the executable calls them); other plugins ask for what they need through the plugin contract (`dpe
//! jupyter spec --json`, typed in `dpe_plugin::contract`), never by linking this crate.

mod build;
mod cli;
/// Public only for `gc`'s size formatting, which the gc tests compare with what it prints.
pub mod commands;
mod docker;
mod error;
mod image;
mod imported;
mod lock;
mod ports;
mod project;
mod project_lock;
mod ready;
mod resolved;
mod say;
mod secrets;
mod spec;
/// Public only for the parsers of recorded `nvidia-smi` output, which the list tests feed real
/// container PIDs.
pub mod usage;

use clap::Parser;
use dpe_plugin::manifest::{OptionSpec, Subcommand};
use dpe_plugin::{Context, Manifest};

/// The plugin's manifest (`dpe-jupyter --dpe-manifest`).
pub fn manifest() -> Manifest {
    let option = OptionSpec::new;
    let sub = |name: &str, description: &str, takes_project: bool, options: Vec<OptionSpec>| Subcommand {
        name: name.into(),
        description: description.into(),
        takes_project,
        options,
    };
    Manifest {
        name: "jupyter".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        dpe: "^0.1".into(),
        protocol: dpe_plugin::PROTOCOL_VERSION,
        description: "Run a project's isolated Jupyter: stable port, kept packages, your file owner, real URL".into(),
        takes_project: true,
        subcommands: vec![
            sub(
                "spec",
                "print the run specification as JSON",
                true,
                vec![
                    option("--json", "JSON output", false),
                    option("--rebuild", "rebuild the image", false),
                    option("--exact", "also remove packages the lock does not name", false),
                    option("--lan", "publish on every address", false),
                    option("--from-lock", "install this pip freeze into the image (remembered)", true),
                    option("--no-lock", "forget the lock given with --from-lock", false),
                    option("--adopt", "make this loaded image (by ID) the environment (dpe import)", true),
                ],
            ),
            sub("stop", "stop the server, keeping files and packages", true, vec![]),
            sub("status", "show whether the server runs and where", true, vec![option("--json", "JSON output", false)]),
            sub(
                "logs",
                "show the server's log",
                true,
                vec![option("--follow", "keep following", false), option("--tail", "only the last N lines", true)],
            ),
            sub("url", "print the URL with token", true, vec![]),
            sub("shell", "open a shell in the environment", true, vec![]),
            sub("exec", "run a command in the environment: exec PROJECT -- CMD", true, vec![]),
            sub("pip", "run pip in the environment: pip PROJECT install X", true, vec![]),
            sub("lock", "resolve the Python packages into the project's lock, then sync", true, vec![]),
            sub(
                "list",
                "list your environments of every workspace, running or stopped, with what they use",
                false,
                vec![
                    option("--json", "JSON output", false),
                    option("--stats", "also CPU and memory (docker stats)", false),
                    option("--size", "also image, volume and container sizes", false),
                ],
            ),
            sub(
                "rm",
                "remove the project's container, volume and state (never its folder)",
                true,
                vec![option("--yes", "remove without asking", false)],
            ),
            sub(
                "gc",
                "list (and with --yes remove) dpe images, containers and volumes nothing needs",
                false,
                vec![option("--yes", "remove what is listed", false)],
            ),
        ],
        options: vec![
            option("--detach", "run in the background", false),
            option("--lan", "publish on every address (with a warning)", false),
            option("--open", "open the URL in a browser", false),
            option("--rebuild", "rebuild the image", false),
            option("--from-lock", "install this pip freeze into the image (remembered)", true),
            option("--no-lock", "forget the lock given with --from-lock", false),
        ],
        complete: false,
    }
}

/// The plugin's entry point: parse, run, report.
pub fn run(context: &Context, args: &[String]) -> i32 {
    // `dpe jupyter list | head -1` ends quietly when the reader goes away, as CLIs do, instead
    // of panicking on a closed stdout.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = match cli::Cli::try_parse_from(std::iter::once("dpe jupyter".to_string()).chain(args.iter().cloned())) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    match commands::run(context, cli) {
        Ok(code) => code,
        Err(err) => {
            err.report();
            err.code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Completion offers the manifest's subcommands and the did-you-mean offers the project
    /// module's list: both name every subcommand the command line has.
    #[test]
    fn every_list_of_subcommands_names_the_same_ones() {
        let mut from_cli: Vec<String> =
            cli::Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
        from_cli.sort();
        let mut from_manifest: Vec<String> = manifest().subcommands.into_iter().map(|s| s.name).collect();
        from_manifest.sort();
        assert_eq!(from_manifest, from_cli);
        let mut suggested: Vec<String> = project::SUBCOMMANDS.iter().map(|s| s.to_string()).collect();
        suggested.sort();
        assert_eq!(suggested, from_cli);
    }
}

//! The command line: global options, the builtins, and everything else handed to a plugin.
//!
//! Global options go before the command name (`dpe -v --project a jupyter`); dpe applies them
//! and forwards them to the plugin through its context (`DPE_VERBOSE`, `DPE_PROJECT`, …).
//! Arguments after a plugin's name are the plugin's, untouched.

use crate::builtins::BUILTINS;
use crate::commands;
use crate::context::Globals;
use crate::error::{Error, Result};
use clap::builder::FalseyValueParser;
use clap::{ArgAction, CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// dpe: one isolated Docker environment per Python/data-science project.
///
/// `dpe NAME …` runs a builtin below, or a plugin: an executable `dpe-NAME` or a library
/// `libdpe_NAME.so` in the plugin directory, a `dpe-NAME` beside dpe, or one on PATH.
#[derive(Parser, Debug)]
#[command(
    name = "dpe",
    version,
    allow_external_subcommands = true,
    disable_help_subcommand = true,
    max_term_width = 100
)]
#[command(after_help = "Run `dpe help NAME` for a command's or plugin's help, `dpe plugin list` to see every plugin.")]
pub struct Cli {
    /// More output (-v, -vv); forwarded to plugins as DPE_VERBOSE
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The project to act on (default: the one named on the command line, or the one you are in)
    #[arg(short, long, global = true, value_name = "NAME", env = "DPE_PROJECT", hide_env = true)]
    pub project: Option<String>,
    /// The workspace root (default: the nearest folder above holding dpe.toml)
    #[arg(short = 'C', long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// When to use colours
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"], env = "DPE_COLOR", hide_env = true)]
    pub color: String,
    /// Machine-readable JSON output, where a command offers it
    #[arg(long, global = true, env = "DPE_JSON", hide_env = true, value_parser = FalseyValueParser::new())]
    pub json: bool,
    /// Do not run hooks around docker calls
    #[arg(long, global = true, env = "DPE_NO_HOOKS", hide_env = true, value_parser = FalseyValueParser::new())]
    pub no_hooks: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the resolved project context plugins receive
    Context(commands::context::ContextArgs),
    /// Run the container engine with hooks and dpe's labels (the one way dpe calls docker)
    Docker(commands::docker::DockerArgs),
    /// Trust this workspace's hooks and configuration so they may run
    Trust(commands::trust::TrustArgs),
    /// List the workspace's projects
    Projects(commands::projects::ProjectsArgs),
    /// Show help for a builtin or a plugin
    Help(commands::help::HelpArgs),
    /// Print the shell completion script (bash, zsh or fish)
    Completions(commands::completions::CompletionsArgs),
    /// List, install and uninstall plugins
    Plugin(commands::plugin::PluginArgs),
    #[command(external_subcommand)]
    External(Vec<OsString>),
}

pub fn run(argv: Vec<OsString>) -> Result<i32> {
    // The hidden entry the completion scripts call on every TAB; it skips clap's parse.
    if argv.get(1).is_some_and(|a| a == crate::complete::ENTRY) {
        return Ok(crate::complete::main(&argv[2..], Cli::command));
    }
    if let Some((name, args)) = plain_plugin_call(&argv) {
        let globals = Globals { verbosity: env_verbosity(), color: "auto".to_string(), ..Globals::default() };
        return crate::dispatch::run_plugin(&globals, name, &args, BUILTINS);
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return Ok(code);
        }
    };
    let globals = Globals {
        verbosity: cli.verbose.max(env_verbosity()),
        project: cli.project.filter(|p| !p.is_empty()),
        workspace: cli.workspace,
        color: cli.color,
        json: cli.json,
        no_hooks: cli.no_hooks,
    };
    match cli.command {
        None => {
            commands::help::print_overview(Cli::command());
            Ok(0)
        }
        Some(Command::Context(args)) => commands::context::run(&globals, args),
        Some(Command::Docker(args)) => commands::docker::run(&globals, args),
        Some(Command::Trust(args)) => commands::trust::run(&globals, args),
        Some(Command::Projects(args)) => commands::projects::run(&globals, args),
        Some(Command::Help(args)) => commands::help::run(args, Cli::command),
        Some(Command::Completions(args)) => commands::completions::run(args),
        Some(Command::Plugin(args)) => commands::plugin::run(&globals, args),
        Some(Command::External(words)) => {
            let mut words = words.into_iter().map(|w| w.into_string());
            let name = match words.next() {
                Some(Ok(name)) => name,
                _ => return Err(Error::usage("command names must be valid UTF-8")),
            };
            let args: Vec<String> = words
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| Error::usage("plugin arguments must be valid UTF-8"))?;
            crate::dispatch::run_plugin(&globals, &name, &args, BUILTINS)
        }
    }
}

fn env_verbosity() -> u8 {
    std::env::var(dpe_plugin::env::VERBOSE).ok().and_then(|v| v.parse::<u8>().ok()).unwrap_or(0)
}

/// `dpe NAME ARGS…` with no global option before NAME and none of the variables clap would read
/// for them: the hot path of every plugin call, dispatched without building clap's parser,
/// which was about 45% of the instructions dpe itself ran before exec (callgrind; see
/// bench/dispatch.sh). Anything else — a builtin, an option, one of those variables set,
/// non-UTF-8 — takes the full parse.
fn plain_plugin_call(argv: &[OsString]) -> Option<(&str, Vec<String>)> {
    let name = argv.get(1)?.to_str()?;
    if !crate::names::is_valid(name) || BUILTINS.contains(&name) {
        return None;
    }
    use dpe_plugin::env::{COLOR, JSON, NO_HOOKS, PROJECT};
    if [PROJECT, COLOR, JSON, NO_HOOKS].iter().any(|var| std::env::var_os(var).is_some()) {
        return None;
    }
    let args = argv[2..].iter().map(|arg| arg.to_str().map(str::to_string)).collect::<Option<Vec<String>>>()?;
    Some((name, args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The fast path trusts BUILTINS to know every builtin: a missing one would be looked up
    /// as a plugin.
    #[test]
    fn builtins_lists_every_subcommand() {
        let mut names: Vec<String> = Cli::command().get_subcommands().map(|s| s.get_name().to_string()).collect();
        let mut listed: Vec<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
        names.sort();
        listed.sort();
        assert_eq!(names, listed);
    }
}

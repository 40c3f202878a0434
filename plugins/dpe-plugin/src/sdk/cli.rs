//! A plugin's command line, defined once with clap: the manifest dpe reads for help and
//! completion is derived from it ([`manifest_from_clap`]), and its usage errors read like the
//! core's ([`parse`]), so `--help`, completion and parsing cannot disagree.
//!
//! The one convention beyond clap: a command takes a project (the manifest's `takes_project`)
//! when its first positional argument has the id [`PROJECT_ARG`] (a field named `project`).

use super::error::Error;
use crate::manifest::{Manifest, OptionSpec, Subcommand};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Command;

/// The id of the positional argument that names a project: `project: Option<String>` in a
/// derive. Arguments naming several projects (`projects: Vec<String>`) are the plugin's own
/// business and are not a project to dpe.
pub const PROJECT_ARG: &str = "project";

/// The manifest of the plugin whose command line is `command`: its name is the command's
/// (`dpe compose` → `compose`), its version and description clap's `version` and `about`, and
/// its subcommands and long options those clap knows (hidden ones left out). `dpe` is the dpe
/// versions the plugin works with (a semver requirement).
pub fn manifest_from_clap(command: &Command, dpe: &str) -> Manifest {
    let name = command.get_name();
    Manifest {
        name: name.strip_prefix("dpe ").unwrap_or(name).to_string(),
        version: command.get_version().unwrap_or("0.0.0").to_string(),
        dpe: dpe.to_string(),
        protocol: crate::PROTOCOL_VERSION,
        description: command.get_about().map(ToString::to_string).unwrap_or_default(),
        takes_project: takes_project(command),
        subcommands: command
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .map(|sub| Subcommand {
                name: sub.get_name().to_string(),
                description: sub.get_about().map(ToString::to_string).unwrap_or_default(),
                takes_project: takes_project(sub),
                options: options(sub),
            })
            .collect(),
        options: options(command),
        complete: false,
    }
}

fn takes_project(command: &Command) -> bool {
    command.get_positionals().next().is_some_and(|arg| arg.get_id() == PROJECT_ARG)
}

/// The long options of `command`, without `--help` and `--version` (every plugin has them).
fn options(command: &Command) -> Vec<OptionSpec> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_positional() && !arg.is_hide_set())
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .filter_map(|arg| {
            let description = arg.get_help().map(ToString::to_string).unwrap_or_default();
            Some(OptionSpec::new(&format!("--{}", arg.get_long()?), &description, arg.get_action().takes_values()))
        })
        .collect()
}

/// Where the manifest of `P` and its parser disagree, found by parsing (not by the derivation
/// above): every subcommand clap knows is listed and every listed one parses; every listed
/// option is accepted where it is listed, with a value (its first possible value, else `1`,
/// which any other value type takes) exactly when it says `takes_value`. Each plugin's tests assert this is empty.
pub fn manifest_mismatches<P: super::Plugin>() -> Vec<String> {
    mismatches(&P::command(), &P::manifest())
}

pub(super) fn mismatches(command: &Command, manifest: &Manifest) -> Vec<String> {
    let mut found = Vec::new();
    let listed: Vec<&str> = manifest.subcommands.iter().map(|sub| sub.name.as_str()).collect();
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        if !listed.contains(&sub.get_name()) {
            found.push(format!("subcommand `{}` is not in the manifest", sub.get_name()));
        }
    }
    let stops_at_help = |words: &[&str]| {
        let argv = std::iter::once(command.get_name()).chain(words.iter().copied());
        command.clone().try_get_matches_from(argv).is_err_and(|e| e.kind() == ErrorKind::DisplayHelp)
    };
    let scopes = std::iter::once((None, &manifest.options))
        .chain(manifest.subcommands.iter().map(|sub| (Some(sub.name.as_str()), &sub.options)));
    for (sub, options) in scopes {
        let prefix: Vec<&str> = sub.into_iter().collect();
        if !stops_at_help(&[prefix.as_slice(), &["--help"]].concat()) {
            found.push(format!("subcommand `{}` does not parse", sub.unwrap_or_default()));
            continue;
        }
        for option in options {
            let name = option.name.as_str();
            let value = sample_value(command, sub, name);
            let with_value = stops_at_help(&[prefix.as_slice(), &[name, value.as_str(), "--help"]].concat())
                && !stops_at_help(&[prefix.as_slice(), &[name, "--help"]].concat());
            let without_value = stops_at_help(&[prefix.as_slice(), &[name, "--help"]].concat());
            if (option.takes_value && !with_value) || (!option.takes_value && !without_value) {
                let at = sub.map_or(String::new(), |sub| format!(" of `{sub}`"));
                found.push(format!(
                    "option `{name}`{at} does not parse as listed (takes_value: {})",
                    option.takes_value
                ));
            }
        }
    }
    found
}

/// A value the option `name` (`--to`) of `sub` (or the top level) accepts: the first of its
/// possible values (a `ValueEnum`), else `1`.
fn sample_value(command: &Command, sub: Option<&str>, name: &str) -> String {
    let scope = sub.and_then(|sub| command.find_subcommand(sub)).unwrap_or(command);
    let arg = scope.get_arguments().find(|arg| arg.get_long().is_some_and(|long| name == format!("--{long}")));
    let first = arg.and_then(|arg| arg.get_possible_values().into_iter().next());
    first.map_or_else(|| "1".to_string(), |value| value.get_name().to_string())
}

/// What completion offers, one line a subcommand: its name, `[PROJECT]` when it takes one,
/// and its options (`--tail VALUE` when one takes a value). For tests that pin a command line.
pub fn synopsis(manifest: &Manifest) -> Vec<String> {
    let options = |options: &[OptionSpec]| -> String {
        let value = |option: &OptionSpec| if option.takes_value { " VALUE" } else { "" };
        options.iter().map(|option| format!(" {}{}", option.name, value(option))).collect()
    };
    let project = |takes: bool| if takes { " [PROJECT]" } else { "" };
    let top = format!("{}{}{}", manifest.name, project(manifest.takes_project), options(&manifest.options));
    let subs = manifest
        .subcommands
        .iter()
        .map(|sub| format!("{} {}{}{}", manifest.name, sub.name, project(sub.takes_project), options(&sub.options)));
    std::iter::once(top).chain(subs).collect()
}

/// Why parsing stopped before the command ran.
#[derive(Debug)]
pub enum Stop {
    /// What clap wrote: `--help` and `--version` (exit 0, on stdout), or the help shown for a
    /// missing subcommand (exit 2, on stderr).
    Text { text: String, code: i32 },
    /// A usage error (exit 2).
    Usage(Error),
}

impl Stop {
    /// Writes what parsing said to `out` or `err`; returns the exit code. Failed writes are
    /// ignored (a reader that went away is no reason to panic).
    pub fn write(&self, out: &mut dyn std::io::Write, err: &mut dyn std::io::Write) -> i32 {
        match self {
            Stop::Text { text, code: 0 } => {
                let _ = out.write_all(text.as_bytes());
                0
            }
            Stop::Text { text, code } => {
                let _ = err.write_all(text.as_bytes());
                *code
            }
            Stop::Usage(error) => error.report_to(err),
        }
    }
}

/// Parses `args`, the words after `dpe NAME`, as `C` (whose command name is `dpe NAME`).
pub fn parse<C: clap::Parser>(args: &[String]) -> Result<C, Stop> {
    let command = C::command();
    let argv = std::iter::once(command.get_name().to_string()).chain(args.iter().cloned());
    let error = match C::try_parse_from(argv) {
        Ok(parsed) => return Ok(parsed),
        Err(error) => error,
    };
    if !error.use_stderr() || error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        use std::io::IsTerminal;
        let rendered = error.render();
        let text = if std::io::stdout().is_terminal() { rendered.ansi().to_string() } else { rendered.to_string() };
        return Err(Stop::Text { text, code: error.exit_code() });
    }
    Err(Stop::Usage(usage_error(&command, args, &error)))
}

/// A usage error as the core words it; clap's own text for the kinds not worded here.
fn usage_error(command: &Command, args: &[String], error: &clap::Error) -> Error {
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(value)) => Some(value.clone()),
        Some(ContextValue::Strings(values)) => values.first().cloned(),
        _ => None,
    };
    let name = command.get_name();
    match (error.kind(), context(ContextKind::InvalidSubcommand), context(ContextKind::InvalidArg)) {
        (ErrorKind::InvalidSubcommand, Some(word), _) => {
            let names: Vec<&str> =
                command.get_subcommands().filter(|s| !s.is_hide_set()).map(Command::get_name).collect();
            return Error::usage(format!("no `{name}` command named `{word}`"))
                .with_help(format!("the commands are {}", word_list(&names)));
        }
        (ErrorKind::UnknownArgument, _, Some(word)) => {
            let sub = args.iter().find_map(|arg| command.find_subcommand(arg));
            let at = sub.map_or(name.to_string(), |sub| format!("{name} {}", sub.get_name()));
            let what = if word.starts_with('-') { "unknown option" } else { "unexpected argument" };
            let help = match context(ContextKind::SuggestedArg) {
                Some(suggested) => format!("did you mean `{suggested}`?"),
                None => format!("`{at} --help` lists what it takes"),
            };
            return Error::usage(format!("{what} `{word}` for `{at}`")).with_help(help);
        }
        _ => {}
    }
    let text = error.render().to_string();
    let text = text.trim_end();
    Error::usage(text.strip_prefix("error: ").unwrap_or(text))
}

/// `` `a`, `b` and `c` ``.
fn word_list(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|word| format!("`{word}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Exports things.
    #[derive(Debug, clap::Parser)]
    #[command(name = "dpe box", version)]
    struct Boxed {
        /// What to export.
        #[arg(long, value_enum)]
        to: Kind,
    }

    #[derive(Debug, Clone, clap::ValueEnum)]
    enum Kind {
        Lock,
        Image,
    }

    #[test]
    fn an_option_of_fixed_values_is_checked_with_one_of_them() {
        let manifest = manifest_from_clap(&Boxed::command(), "^0.1");
        assert_eq!(mismatches(&Boxed::command(), &manifest), Vec::<String>::new());
        let mut drifted = manifest.clone();
        drifted.options[0].takes_value = false;
        assert_eq!(
            mismatches(&Boxed::command(), &drifted),
            ["option `--to` does not parse as listed (takes_value: false)"]
        );
    }
}

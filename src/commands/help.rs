//! `dpe help [NAME]` and the overview printed by a bare `dpe`.

use crate::builtins::BUILTINS;
use crate::discovery;
use crate::error::Result;
use clap::Args;
use std::os::unix::process::CommandExt;

#[derive(Args, Debug)]
pub struct HelpArgs {
    /// A builtin or plugin name
    pub name: Option<String>,
}

/// `cli` builds dpe's command line (its builtins' help), which [`crate::cli`] defines.
#[allow(clippy::disallowed_methods, reason = "`dpe help NAME` runs the plugin itself with `--help`")]
pub fn run(args: HelpArgs, cli: fn() -> clap::Command) -> Result<i32> {
    let Some(name) = args.name else {
        print_overview(cli());
        return Ok(0);
    };
    if BUILTINS.contains(&name.as_str()) {
        let mut command = cli();
        // Building the parent first gives the subcommand its full name (`dpe plugin`).
        command.build();
        if let Some(sub) = command.find_subcommand_mut(&name) {
            sub.print_long_help().ok();
            return Ok(0);
        }
    }
    // A plugin's own help: run it with `--help` exactly as `dpe NAME --help` would.
    let exe = crate::paths::dpe_exe().map_err(|e| crate::error::Error::new(format!("cannot locate dpe: {e}")))?;
    let err = std::process::Command::new(exe).arg(&name).arg("--help").exec();
    Err(crate::error::Error::new(format!("could not show help for `{name}`: {err}")))
}

/// The help of `command` (dpe's command line) followed by the plugins found, with their
/// descriptions.
pub fn print_overview(mut command: clap::Command) {
    command.print_help().ok();
    let paths = crate::paths::Paths::from_env();
    let mut seen = std::collections::BTreeMap::new();
    for found in discovery::all(&paths.plugin_dir) {
        if seen.contains_key(&found.name) {
            continue;
        }
        let description =
            crate::manifest_cache::manifest(&found, &paths.cache_dir).map(|(m, _)| m.description).unwrap_or_default();
        seen.insert(found.name.clone(), description);
    }
    if !seen.is_empty() {
        println!("\nPlugins:");
        let width = seen.keys().map(String::len).max().unwrap_or(0);
        for (name, description) in seen {
            println!("  {name:width$}  {description}");
        }
    }
}

//! `dpe NAME ARGS…` for a name that is not a builtin: find the plugin, check it, resolve the
//! context, and hand over — by `exec` for an executable (so TTY, signals and exit status behave
//! exactly as if it were run directly), or by a call through the ABI for a library.

use crate::context::{self, Globals};
use crate::discovery::{self, Found, Kind};
use crate::error::{Error, Result};
use crate::{fsutil, manifest_cache, names, suggest};
use dpe_plugin::Manifest;
use std::os::unix::process::CommandExt;

/// Runs plugin `name`; returns only when it could not be started, or for a library plugin.
#[allow(clippy::disallowed_methods, reason = "runs the plugin the user named; plugins are not the engine")]
pub fn run_plugin(globals: &Globals, name: &str, args: &[String], builtins: &[&str]) -> Result<i32> {
    if !names::is_valid(name) {
        return Err(Error::new(format!("`{name}` is not a valid command name"))
            .with_help("commands and plugins use lowercase letters, digits, `-` and `_`; see `dpe --help`"));
    }
    let paths = crate::paths::Paths::from_env();
    let Some(found) = discovery::find(name, &paths.plugin_dir) else {
        return Err(unknown_command(globals, name, builtins, &paths.plugin_dir));
    };
    if !discovery::is_runnable(&found) {
        return Err(Error::new(format!("plugin `{name}` at `{}` is not executable", found.path.display()))
            .with_help(format!("run `chmod +x {}`", found.path.display())));
    }
    fsutil::check_not_writable_by_others("plugin", &found.path)?;
    let (manifest, _) = manifest_cache::manifest(&found, &paths.cache_dir)?;
    manifest_cache::check_compatible(&found, &manifest)?;

    let resolved = context::resolve(globals, Some(name), project_positional(&manifest, args))?;
    let vars = context::env_vars(&resolved.context);
    match found.kind {
        Kind::Executable => {
            // Into dpe's own environment, then exec with it as it is: `.envs()` makes std copy
            // the whole environment into a map first, a sixth of dpe's work on this path
            // (callgrind; see bench/dispatch.sh).
            crate::ffi::set_env_vars(&vars);
            let err = std::process::Command::new(&found.path).args(args).exec();
            Err(crate::error::io("run plugin", &found.path, err))
        }
        Kind::Dynamic => {
            let json = serde_json::to_string(&resolved.context).expect("the context serialises");
            run_library(&found, &vars, &json, args)
        }
    }
}

/// A library gets the context as an argument, whatever its size; the variables are for the
/// children it spawns.
fn run_library(found: &Found, vars: &[(&str, String)], json: &str, args: &[String]) -> Result<i32> {
    // Before the library is loaded, so none of its code runs while the environment changes.
    crate::ffi::set_env_vars(vars);
    let library = manifest_cache::load_library(found)?;
    Ok(library.run(json, args))
}

/// The argument that may name a project, as the manifest describes the plugin: the first
/// positional, or for a subcommand that takes one, the positional after the subcommand.
pub fn project_positional<'a>(manifest: &Manifest, args: &'a [String]) -> Option<&'a str> {
    let takes_value = |arg: &str, options: &[dpe_plugin::manifest::OptionSpec]| {
        options.iter().any(|o| o.takes_value && o.name == arg)
    };
    let mut positionals = Vec::new();
    let mut options: &[dpe_plugin::manifest::OptionSpec] = &manifest.options;
    let mut i = 0;
    while i < args.len() && positionals.len() < 2 {
        let arg = args[i].as_str();
        if arg == "--" {
            break;
        }
        if arg.starts_with('-') {
            i += if !arg.contains('=') && takes_value(arg, options) { 2 } else { 1 };
            continue;
        }
        if positionals.is_empty() {
            if let Some(sub) = manifest.subcommand(arg) {
                options = &sub.options;
            }
        }
        positionals.push(arg);
        i += 1;
    }
    let first = *positionals.first()?;
    match manifest.subcommand(first) {
        Some(sub) if sub.takes_project => positionals.get(1).copied(),
        Some(_) => None,
        None if manifest.takes_project => Some(first),
        None => None,
    }
}

/// `no command or plugin named …` with a did-you-mean over builtins, plugins and projects.
fn unknown_command(globals: &Globals, name: &str, builtins: &[&str], plugin_dir: &std::path::Path) -> Error {
    let plugins = discovery::names(plugin_dir);
    let mut candidates: Vec<&str> = builtins.to_vec();
    candidates.extend(plugins.iter().map(String::as_str));
    let error = Error::new(format!("no command or plugin named `{name}`"));
    // A project name typed where a command belongs is the likelier mistake when it matches.
    let projects = context::resolve(globals, None, None)
        .ok()
        .and_then(|resolved| resolved.workspace)
        .map(|ws| ws.project_names())
        .unwrap_or_default();
    if projects.iter().any(|p| p == name) {
        return error.with_help(format!(
            "`{name}` is a project: give it to a command, e.g. `dpe <command> {name}` (see `dpe --help`)"
        ));
    }
    if let Some(best) = suggest::closest(name, candidates.iter().copied()) {
        return error.with_help(format!("did you mean `{best}`?"));
    }
    if let Some(best) = suggest::closest(name, projects.iter().map(String::as_str)) {
        return error.with_help(format!("`{best}` is a project: give it to a command, e.g. `dpe <command> {best}`"));
    }
    error.with_help("see `dpe --help` for commands, `dpe plugin list` for installed plugins")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(json: &str) -> Manifest {
        serde_json::from_str(json).unwrap()
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn project_positional_follows_the_manifest() {
        let m = manifest(
            r#"{"name":"jupyter","version":"1.0.0","dpe":"*","takes_project":true,
                "options":[{"name":"--port","takes_value":true}],
                "subcommands":[{"name":"stop","takes_project":true},{"name":"list"}]}"#,
        );
        assert_eq!(project_positional(&m, &args(&["project_a", "--detach"])), Some("project_a"));
        assert_eq!(project_positional(&m, &args(&["--port", "9000", "project_a"])), Some("project_a"));
        assert_eq!(project_positional(&m, &args(&["stop", "project_b"])), Some("project_b"));
        assert_eq!(project_positional(&m, &args(&["list"])), None);
        let plain = Manifest::default_for("hello");
        assert_eq!(project_positional(&plain, &args(&["project_a"])), None);
    }
}

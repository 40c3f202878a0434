//! `dpe plugin uninstall NAME`: remove an installed plugin, its receipt and cached manifest.

use crate::context::Globals;
use crate::discovery::{self, Source};
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::{install, names, suggest};
use clap::Args;

/// Removes plugins from the plugin directory only: a `dpe-NAME` beside dpe or on PATH was put
/// there by something else (a package, you) and is left alone.
#[derive(Args, Debug)]
pub struct UninstallArgs {
    /// The plugin's name (as in `dpe NAME`)
    pub name: String,
}

pub fn run(_globals: &Globals, args: UninstallArgs) -> Result<i32> {
    let name = args.name;
    names::validate("plugin", &name)?;
    let paths = Paths::from_env();
    if install::installed_files(&paths.plugin_dir, &name).is_empty() {
        return Err(not_installed(&paths, &name));
    }
    let removed = install::uninstall(&paths.plugin_dir, &paths.cache_dir, &name)?;
    let version = removed.receipt.map(|r| format!(" {}", r.version)).unwrap_or_default();
    let files: Vec<String> = removed.files.iter().map(|f| format!("`{}`", f.display())).collect();
    println!("uninstalled `{name}`{version} ({})", files.join(", "));
    if let Some(next) = discovery::find(&name, &paths.plugin_dir) {
        eprintln!("note: `dpe {name}` now runs `{}`", next.path.display());
    }
    Ok(0)
}

fn not_installed(paths: &Paths, name: &str) -> Error {
    let dir = paths.plugin_dir.display();
    if let Some(found) = discovery::find(name, &paths.plugin_dir) {
        let place = if found.source == Source::BesideDpe { "beside dpe" } else { "on PATH" };
        return Error::new(format!(
            "plugin `{name}` is not installed in `{dir}`; the one dpe runs is `{}` ({place})",
            found.path.display()
        ))
        .with_help("dpe only removes plugins it installed; delete that file yourself if you no longer want it");
    }
    let installed: Vec<String> = discovery::all(&paths.plugin_dir)
        .into_iter()
        .filter(|f| f.source == Source::PluginDir)
        .map(|f| f.name)
        .collect();
    let error = Error::new(format!("no plugin named `{name}` is installed in `{dir}`"));
    match suggest::closest(name, installed.iter().map(String::as_str)) {
        Some(best) => error.with_help(format!("did you mean `{best}`?")),
        None => error.with_help("`dpe plugin list` shows every plugin"),
    }
}

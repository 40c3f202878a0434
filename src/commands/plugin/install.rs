//! `dpe plugin install PATH [--force] [--dynamic]`: check a plugin, then install it atomically.

use crate::context::Globals;
use crate::discovery::{self, Kind, Source};
use crate::error::Result;
use crate::install;
use crate::paths::Paths;
use clap::Args;
use std::path::PathBuf;

/// Installs into the plugin directory (`$DPE_PLUGIN_DIR`, default `<data dir>/plugins`), which
/// dispatch searches first. The manifest and the plugin's dpe semver requirement are checked
/// before anything is written; the copy is atomic and a receipt (source, version, sha256, time)
/// is written beside it. Installing over an installed plugin replaces it.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// A built executable `dpe-NAME`, a library `libdpe_NAME.so`, or a cargo project directory
    /// (built with `cargo build --release`)
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Install even when this dpe is outside the plugin's supported versions (it will not run
    /// until dpe satisfies them)
    #[arg(long)]
    pub force: bool,
    /// For a cargo project that builds both forms, install the dynamic library
    #[arg(long)]
    pub dynamic: bool,
}

pub fn run(globals: &Globals, args: InstallArgs) -> Result<i32> {
    // From here on Ctrl+C lets the install remove its temp files before exiting.
    crate::ffi::defer_interrupts();
    let paths = Paths::from_env();
    let candidate = install::candidate(&args.path, args.dynamic)?;
    let inspected = install::inspect(candidate, crate::builtins::BUILTINS)?;
    if let Some(err) = &inspected.incompatible {
        if !args.force {
            let mut err = crate::error::Error::new(err.message.clone());
            err.help = Some(format!(
                "install a version of `{}` built for dpe {}; `--force` installs it anyway, but dpe will not run it",
                inspected.name,
                env!("CARGO_PKG_VERSION")
            ));
            return Err(err);
        }
        eprintln!("warning: {}", err.message);
        eprintln!("warning: installing anyway (--force); dpe will refuse to run it until that is fixed");
    }
    let done = install::install(&inspected, &paths.plugin_dir, &paths.cache_dir, inspected.incompatible.is_some())?;
    let kind = match done.receipt.kind {
        Kind::Executable => "executable",
        Kind::Dynamic => "dynamic library",
    };
    let version = if inspected.published { format!(" {}", done.receipt.version) } else { String::new() };
    match &done.replaced {
        Some(old) => println!(
            "installed `{}`{version} ({kind}) as `{}`, replacing version {}",
            inspected.name,
            done.path.display(),
            old.version
        ),
        None => println!("installed `{}`{version} ({kind}) as `{}`", inspected.name, done.path.display()),
    }
    if globals.verbosity > 0 {
        println!("sha256 {}", done.receipt.sha256);
    }
    // The plugin directory is searched first, so anything else of that name is now shadowed.
    for other in discovery::all(&paths.plugin_dir) {
        if other.name == inspected.name && other.source != Source::PluginDir {
            let place = match other.source {
                Source::BesideDpe => "beside dpe",
                _ => "on PATH",
            };
            eprintln!("note: it takes precedence over `{}` ({place})", other.path.display());
        }
    }
    Ok(0)
}

//! `dpe trust`: allow this workspace's hooks (and its projects' hooks) to run, and its
//! configuration to reach outside the project (bind mounts, files read from the host, a
//! notebook published beyond this machine).

use crate::context::{self, Globals};
use crate::error::{Error, Result};
use crate::hooks;
use crate::trust::{Files, TrustStore};
use crate::workspace::{Workspace, CONFIG_FILE};
use clap::Args;
use std::path::PathBuf;

/// Records the sha256 of every hook file and configuration file (the workspace's `dpe.toml`
/// and each project's) of the workspace; a file that changes later needs trusting again. Read
/// them before trusting them: hooks run on your machine, and a trusted configuration may mount
/// any folder of it into a container.
#[derive(Args, Debug)]
pub struct TrustArgs {
    /// Only list the configuration files and hooks, and whether each is trusted
    #[arg(long)]
    pub list: bool,
}

pub fn run(globals: &Globals, args: TrustArgs) -> Result<i32> {
    let resolved = context::resolve(globals, None, None)?;
    let Some(ws) = resolved.workspace else {
        return Err(Error::new("not in a dpe workspace (no `dpe.toml` here or above)")
            .with_help("run `dpe trust` inside the workspace whose hooks and configuration you trust"));
    };
    let config = config_files(&ws);
    let hooks = hooks::workspace_hook_files(&ws.root, &ws.project_names());
    let state_dir = &resolved.context.state_dir;
    if args.list {
        let store = TrustStore::load(state_dir);
        let config_states = config.iter().map(|file| (file, store.is_config_trusted(file)));
        for (file, trusted) in config_states.chain(hooks.iter().map(|file| (file, store.is_trusted(file)))) {
            let state = if trusted { "trusted" } else { "not trusted" };
            println!("{state:12} {}", file.display());
        }
        return Ok(0);
    }
    if config.is_empty() && hooks.is_empty() {
        println!("no hooks or configuration files in `{}`", ws.root.display());
        return Ok(0);
    }
    for file in &hooks {
        crate::fsutil::check_not_writable_by_others("hook", file)?;
    }
    TrustStore::trust(state_dir, Files { hooks: &hooks, config: &config })?;
    for file in config.iter().chain(&hooks) {
        println!("trusted {}", file.display());
    }
    Ok(0)
}

/// The workspace's `dpe.toml` and each project's, those that exist.
fn config_files(ws: &Workspace) -> Vec<PathBuf> {
    let projects = ws.project_names().into_iter().map(|name| ws.projects_dir().join(name).join(CONFIG_FILE));
    std::iter::once(ws.config_file()).chain(projects).filter(|file| file.is_file()).collect()
}

//! `dpe trust`: allow this workspace's hooks (and its projects' hooks) to run, and its
//! configuration to reach outside the project (bind mounts, files read from the host, a
//! notebook published beyond this machine).

use crate::context::{self, Globals, Resolved};
use crate::error::{Error, Result};
use crate::hooks;
use crate::trust::{Files, Reaches, TrustStore};
use crate::workspace::{Workspace, CONFIG_FILE};
use clap::Args;
use dpe_plugin::{reach, ProjectRef};
use std::path::PathBuf;

/// Records the sha256 of every hook file and configuration file (the workspace's `dpe.toml`
/// and each project's) of the workspace, and what each project reaches outside itself (the
/// real places its mounts and files lead to); a file that changes later, or a setting that
/// leads somewhere else later (a folder become a link), needs trusting again. Read
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
    let Some(ws) = &resolved.workspace else {
        return Err(Error::new("not in a dpe workspace (no `dpe.toml` here or above)")
            .with_help("run `dpe trust` inside the workspace whose hooks and configuration you trust"));
    };
    let config = config_files(ws);
    let hooks = hooks::workspace_hook_files(&ws.root, &ws.project_names());
    let reaches = reaches(&resolved, ws)?;
    let state_dir = &resolved.context.state_dir;
    if args.list {
        let store = TrustStore::load(state_dir);
        let config_states = config.iter().map(|file| (file, store.is_config_trusted(file)));
        for (file, trusted) in config_states.chain(hooks.iter().map(|file| (file, store.is_trusted(file)))) {
            println!("{:12} {}", state(trusted), file.display());
        }
        let recorded = store.reaches(&ws.root);
        for (project, found) in &reaches {
            let accepted = recorded.and_then(|r| r.get(project));
            for reach in found {
                println!("{:12} {}", state(accepted.is_some_and(|a| a.contains(reach))), shown(project, reach));
            }
        }
        return Ok(0);
    }
    for file in &hooks {
        crate::fsutil::check_not_writable_by_others("hook", file)?;
    }
    TrustStore::trust(
        state_dir,
        Files { workspace: &ws.root, hooks: &hooks, config: &config, reaches: reaches.clone() },
    )?;
    if config.is_empty() && hooks.is_empty() {
        println!("trusted {} (no hooks or configuration files)", ws.root.display());
    }
    for file in config.iter().chain(&hooks) {
        println!("trusted {}", file.display());
    }
    for (project, found) in &reaches {
        for reach in found {
            println!("trusted {}", shown(project, reach));
        }
    }
    Ok(0)
}

fn state(trusted: bool) -> &'static str {
    if trusted {
        "trusted"
    } else {
        "not trusted"
    }
}

/// One reach as `--list` shows it: which project, then the setting and where it leads.
fn shown(project: &str, reach: &str) -> String {
    match project {
        "" => format!("the workspace: {reach}"),
        name => format!("project {name}: {reach}"),
    }
}

/// What the workspace (alone, as `""`) and each project reach outside themselves now, with
/// the configuration dispatch would layer for them: what the user sees and trusts.
fn reaches(resolved: &Resolved, ws: &Workspace) -> Result<Reaches> {
    let user = resolved.paths.user_config();
    let mut out = Reaches::new();
    let mut context = resolved.context.clone();
    context.project = None;
    context.config = crate::config::load(&user, &[ws.config_file()])?.config;
    out.insert(String::new(), reach::findings(&context).iter().map(reach::Finding::reach).collect());
    for name in ws.project_names() {
        let dir = ws.projects_dir().join(&name);
        context.config = crate::config::load(&user, &[ws.config_file(), dir.join(CONFIG_FILE)])?.config;
        context.project = Some(ProjectRef { name: name.clone(), dir });
        out.insert(name, reach::findings(&context).iter().map(reach::Finding::reach).collect());
    }
    out.retain(|_, found| !found.is_empty());
    Ok(out)
}

/// The workspace's `dpe.toml` and each project's, those that exist.
fn config_files(ws: &Workspace) -> Vec<PathBuf> {
    let projects = ws.project_names().into_iter().map(|name| ws.projects_dir().join(name).join(CONFIG_FILE));
    std::iter::once(ws.config_file()).chain(projects).filter(|file| file.is_file()).collect()
}

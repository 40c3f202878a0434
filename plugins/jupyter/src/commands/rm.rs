//! `dpe jupyter rm PROJECT [--yes]`: removes what dpe keeps for a project — its container, its
//! environment volume (the packages installed with pip) and its files in dpe's state directory
//! (token, env file, port reservation, remembered lock) — and never the project folder.
//!
//! It works for a project whose folder is already gone: the container and volume are found by
//! the names and labels dpe gave them, from the workspace and the project name. It lists what it
//! will remove, asks on a terminal, and refuses without `--yes` anywhere else. A running
//! server is stopped first, under the project's lock (as `stop` does), so a start in progress
//! finishes before anything is removed.

use crate::commands::own_container;
use crate::docker;
use crate::project::Project;
use crate::project_lock::ProjectLock;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

pub fn run(context: &Context, positional: Option<&str>, yes: bool) -> Result<i32> {
    let project = project(context, positional)?;
    let _turn = ProjectLock::acquire(&context.state_dir, &project, &|| false)?;
    let containers = docker::containers(context)?;
    let container = own_container(&containers, &project);
    let volume = docker::volumes(context, &format!("name={}", project.volume_name()))?
        .into_iter()
        .find(|v| v.name == project.volume_name());
    // A trusted project's packages live in the shared store, beside the cache.
    let store = crate::store::Store::find(context, &[container.as_ref().map_or("", |c| c.image.as_str())])?;
    let files = state_files(context, &project.key());
    let port = crate::ports::Registry::new(&context.state_dir).lookup(&project.key());
    if container.is_none() && volume.is_none() && files.is_empty() && port.is_none() {
        return Err(Error::new(format!(
            "nothing of `{}` to remove in `{}`: no container, volume or state",
            project.name,
            project.workspace.display()
        ))
        .with_help("`dpe jupyter gc` lists what dpe made for projects of every workspace"));
    }

    eprintln!("dpe: `dpe jupyter rm {}` removes:", project.name);
    if let Some(c) = &container {
        let note = if c.running() { " (running: stopped first)" } else { "" };
        eprintln!("  container  {}{note}", c.name);
    }
    if let Some(v) = &volume {
        eprintln!("  volume     {} (its home and environment)", v.name);
    }
    if store.is_some() {
        eprintln!(
            "  packages   {} in the package store (its environment when trusted; the shared cache is kept)",
            crate::store::environment_path(&project.volume_name())
        );
    }
    if let Some(port) = port {
        eprintln!("  port       {port} (its reservation)");
    }
    for file in &files {
        eprintln!("  state      {}", file.display());
    }
    eprintln!("dpe: the project folder `{}` is kept", project.dir.display());
    if !yes && !confirmed(&project)? {
        eprintln!("dpe: nothing removed");
        return Ok(1);
    }

    if let Some(c) = &container {
        if c.running() {
            eprintln!("dpe: stopping `{}`…", project.name);
            docker::text(context, &["stop", &c.id], "stopping the container")?;
        }
        docker::text(context, &["rm", &c.id], "removing the container")?;
    }
    if let Some(v) = &volume {
        docker::text(context, &["volume", "rm", &v.name], "removing the volume")?;
    }
    if let Some(store) = &store {
        store.remove(context, &[project.volume_name()])?;
    }
    forget(context, &project.key())?;
    eprintln!("dpe: removed the environment of `{}`; its folder is kept", project.name);
    Ok(0)
}

/// The project named on the command line, or, when its folder is gone (so the core selected
/// none), the same name in the workspace: its container, volume and state are named after both.
fn project(context: &Context, positional: Option<&str>) -> Result<Project> {
    let (Some(name), None, Some(workspace)) = (positional, &context.project, &context.workspace) else {
        return Project::from_context(context, positional);
    };
    if !dpe_plugin::names::is_valid(name) {
        return Project::from_context(context, positional);
    }
    Ok(Project {
        name: name.to_string(),
        dir: workspace.join("projects").join(name),
        workspace: workspace.clone(),
        config: context.config.clone(),
    })
}

/// Asks on a terminal; refuses without one, where no one could answer.
fn confirmed(project: &Project) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(format!(
            "`dpe jupyter rm {}` needs a confirmation and there is no terminal",
            project.name
        ))
        .with_help(format!("pass `--yes` to remove without asking: `dpe jupyter rm {} --yes`", project.name)));
    }
    eprint!("remove them? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| Error::io("reading the answer", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// The files dpe keeps in its state directory for the project key.
pub fn state_files(context: &Context, key: &str) -> Vec<PathBuf> {
    let jupyter = context.state_dir.join("jupyter");
    [
        jupyter.join("tokens").join(key),
        jupyter.join("env").join(format!("{key}.env")),
        jupyter.join("env").join(format!("{key}.sync.env")),
        crate::lock::saved_path(&context.state_dir, key),
        crate::build::sync_log(&context.state_dir, key),
    ]
    .into_iter()
    .filter(|path| path.symlink_metadata().is_ok())
    .collect()
}

/// Removes the project key's state files and port reservation.
pub fn forget(context: &Context, key: &str) -> Result<()> {
    for file in state_files(context, key) {
        std::fs::remove_file(&file).map_err(|e| Error::io(format!("removing `{}`", file.display()), e))?;
    }
    crate::ports::Registry::new(&context.state_dir).release(key)?;
    Ok(())
}

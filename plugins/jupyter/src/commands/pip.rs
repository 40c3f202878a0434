//! `dpe jupyter pip PROJECT ARGS…`: pip inside the project's environment, from the host.
//! Packages land in the venv in the project's volume, exactly where `%pip install` in a
//! notebook puts them, so they persist. With the server running it runs there; otherwise in a
//! one-off container with the same image, volume, user and environment.

use crate::commands::{code, exec_prefix, own_container, port_owners};
use crate::docker::{self, LABEL_USER};
use crate::project::Project;
use crate::spec::{prepare, Options};
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;

pub fn run(context: &Context, args: &[String]) -> Result<i32> {
    // `pip PROJECT install X`: the first word names the project when it is the selected one.
    let (positional, pip_args) = match (&context.project, args.first()) {
        (Some(project), Some(first)) if *first == project.name => (Some(first.as_str()), &args[1..]),
        _ => (None, args),
    };
    let project = Project::from_context(context, positional)?;
    if pip_args.is_empty() {
        return Err(Error::usage("no pip arguments given")
            .with_help(format!("e.g. `dpe jupyter pip {} install requests`", project.name)));
    }
    let containers = docker::containers(context)?;
    let own = own_container(&containers, &project);
    if let Some(container) = own.filter(|c| c.running()) {
        let mut command = exec_prefix(&container);
        command.extend(["python3", "-m", "pip"].map(String::from));
        command.extend(pip_args.iter().cloned());
        let status = crate::docker::streamed(context, &command)?;
        return Ok(code(status));
    }

    let mut command = vec!["python3".to_string(), "-m".into(), "pip".into()];
    command.extend(pip_args.iter().cloned());
    one_off(context, &project, &containers, &[], &command)
}

/// `dpe jupyter lock PROJECT`: resolves the lock again and syncs, in a one-off container (the
/// running server, if any, sees the result: the environment is shared). Holds the project lock,
/// so no start or stop of the project runs meanwhile.
pub fn lock(context: &Context, positional: Option<&str>) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    let _turn = crate::project_lock::ProjectLock::acquire(&context.state_dir, &project, &|| false)?;
    if project.config.dockerfile.is_some() {
        return Err(Error::new(format!("`{}` installs its packages in its own Dockerfile", project.name))
            .with_help("dpe locks the packages of projects without `dockerfile`: requirements.txt, python_packages, pyproject.toml"));
    }
    let containers = docker::containers(context)?;
    one_off(context, &project, &containers, &[("DPE_SYNC", "lock")], &["true".to_string()])
}

/// Runs `command` through `dpe-start` (so the environment is prepared and synced first) in a
/// throwaway container with the project's image, volumes, user and environment.
fn one_off(
    context: &Context,
    project: &Project,
    containers: &[docker::Container],
    extra_env: &[(&str, &str)],
    run: &[String],
) -> Result<i32> {
    let (published, mine) = port_owners(containers, project, None);
    let prepared = prepare(context, project, &Options { published, mine, ..Options::default() })?;
    let mut spec = prepared.spec;
    for (key, value) in extra_env {
        spec.env.insert(key.to_string(), value.to_string());
    }
    crate::commands::start::ensure_volume(context, &spec.volume)?;
    crate::store::ensure(context, &spec)?;
    let mut command: Vec<String> = vec!["run".into(), "--rm".into(), "--interactive".into()];
    command.extend(crate::spec::mount_args(&spec));
    command.extend(["--workdir".into(), spec.workdir.clone()]);
    if let Some(user) = spec.labels.get(LABEL_USER) {
        command.extend(["--user".into(), user.clone()]);
    }
    for (key, value) in &spec.env {
        command.extend(["--env".into(), format!("{key}={value}")]);
    }
    command.extend(["--env-file".into(), spec.env_file.clone()]);
    command.push(spec.image.clone());
    command.push("dpe-start".into());
    command.extend(run.iter().cloned());
    let status = crate::docker::streamed(context, &command)?;
    Ok(code(status))
}

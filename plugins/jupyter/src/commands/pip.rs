//! `dpe jupyter pip PROJECT ARGS…`: pip inside the project's environment, from the host.
//! Packages land in the venv in the project's volume, exactly where `%pip install` in a
//! notebook puts them, so they persist. With the server running it runs there; otherwise in a
//! one-off container with the same image, volume, user and environment.

use crate::commands::{code, exec_prefix, own_container, port_owners};
use crate::docker::{self, LABEL_USER};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::spec::{prepare, Options};
use dpe_plugin::Context;

pub fn run(context: &Context, args: &[String]) -> Result<i32> {
    // `pip PROJECT install X`: the first word names the project when it is the selected one.
    let (positional, pip_args) = match (&context.project, args.first()) {
        (Some(project), Some(first)) if *first == project.name => (Some(first.as_str()), &args[1..]),
        _ => (None, args),
    };
    let project = Project::from_context(context, positional)?;
    if pip_args.is_empty() {
        return Err(Error::new("no pip arguments given")
            .with_help(format!("e.g. `dpe jupyter pip {} install requests`", project.name))
            .with_code(2));
    }
    let containers = docker::containers(context)?;
    let own = own_container(&containers, &project);
    if let Some(container) = own.filter(|c| c.running()) {
        let mut command = exec_prefix(&container);
        command.extend(["python3", "-m", "pip"].map(String::from));
        command.extend(pip_args.iter().cloned());
        let status =
            dpe_plugin::client::docker(context, &command).map_err(|e| Error::io("running `dpe docker exec`", e))?;
        return Ok(code(status));
    }

    let (published, mine) = port_owners(&containers, &project, None);
    let prepared = prepare(context, &project, &Options { published, mine, ..Options::default() })?;
    let spec = prepared.spec;
    crate::commands::start::ensure_volume(context, &spec.volume)?;
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
    command.extend(["dpe-start", "python3", "-m", "pip"].map(String::from));
    command.extend(pip_args.iter().cloned());
    let status = dpe_plugin::client::docker(context, &command).map_err(|e| Error::io("running `dpe docker run`", e))?;
    Ok(code(status))
}

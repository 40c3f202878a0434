//! `dpe jupyter stop PROJECT`: stops the server gracefully. The container is kept (stopped),
//! the project folder and the volume with the installed packages are untouched.

use crate::commands::own_container;
use crate::docker;
use crate::error::Result;
use crate::project::Project;
use dpe_plugin::Context;

pub fn run(context: &Context, positional: Option<&str>) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    let containers = docker::containers(context)?;
    match own_container(&containers, &project) {
        Some(container) if container.running() => {
            eprintln!("dpe: stopping `{}`…", project.name);
            docker::checked(context, &["stop", &container.id], "stopping the container")?;
            eprintln!("dpe: `{}` stopped; its files and installed packages are kept", project.name);
        }
        _ => eprintln!("dpe: `{}` is not running", project.name),
    }
    Ok(0)
}

//! `dpe jupyter stop PROJECT`: stops the server gracefully. The container is kept (stopped),
//! the project folder and the volume with the installed packages are untouched. A start of the
//! project in progress finishes first (see [`crate::project_lock`]): the stop is neither undone
//! by it nor makes it fail half-way.

use crate::commands::own_container;
use crate::docker;
use crate::project::Project;
use crate::project_lock::ProjectLock;
use dpe_plugin::sdk::Result;
use dpe_plugin::Context;

pub fn run(context: &Context, positional: Option<&str>) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    // Ctrl+C while waiting ends dpe (the default disposition here), which drops the wait.
    let _turn = ProjectLock::acquire(&context.state_dir, &project, &|| false)?;
    let containers = docker::containers(context)?;
    match own_container(&containers, &project) {
        Some(container) if container.running() => {
            eprintln!("dpe: stopping `{}`…", project.name);
            docker::text(context, &["stop", &container.id], "stopping the container")?;
            eprintln!("dpe: `{}` stopped; its files and installed packages are kept", project.name);
        }
        _ => eprintln!("dpe: `{}` is not running", project.name),
    }
    Ok(0)
}

//! `dpe jupyter url PROJECT`: prints the URL (with token) of the running server, alone on
//! stdout, for scripts and bookmarks. A start still under way is waited for first.

use crate::commands::{not_running, running_container, url_of};
use crate::project::Project;
use crate::project_lock::ProjectLock;
use dpe_plugin::sdk::Result;
use dpe_plugin::Context;

pub fn run(context: &Context, positional: Option<&str>) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    // A start in progress holds the project's lock until its server answers (or it gave up):
    // waiting for it makes the URL printed here one that answers, as a script running
    // `dpe jupyter P --detach & dpe jupyter url P` expects. Free, it is taken and let go at once.
    drop(ProjectLock::acquire(&context.state_dir, &project, &|| false)?);
    let container = running_container(context, &project)?;
    let url = url_of(context, &container).ok_or_else(|| not_running(&project))?;
    println!("{url}");
    Ok(0)
}

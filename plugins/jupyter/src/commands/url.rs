//! `dpe jupyter url PROJECT`: prints the URL (with token) of the running server, alone on
//! stdout, for scripts and bookmarks.

use crate::commands::{not_running, running_container, url_of};
use crate::error::Result;
use crate::project::Project;
use dpe_plugin::Context;

pub fn run(context: &Context, positional: Option<&str>) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    let container = running_container(context, &project)?;
    let url = url_of(context, &container).ok_or_else(|| not_running(&project))?;
    println!("{url}");
    Ok(0)
}

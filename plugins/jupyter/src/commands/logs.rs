//! `dpe jupyter logs PROJECT [--follow] [--tail N]`: the server's log, straight from the engine.

use crate::commands::{code, own_container};
use crate::docker;
use crate::project::Project;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;

pub fn run(context: &Context, positional: Option<&str>, follow: bool, tail: Option<u32>) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    let containers = docker::containers(context)?;
    let container = own_container(&containers, &project).ok_or_else(|| {
        Error::new(format!("`{}` has no container, so no log", project.name))
            .with_help(format!("start it with `dpe jupyter {}`", project.name))
    })?;
    let mut args = vec!["logs".to_string()];
    if follow {
        args.push("--follow".into());
    }
    if let Some(n) = tail {
        args.push("--tail".into());
        args.push(n.to_string());
    }
    args.push(container.id);
    let status = crate::docker::streamed(context, &args)?;
    Ok(code(status))
}

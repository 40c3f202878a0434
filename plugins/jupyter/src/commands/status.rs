//! `dpe jupyter status PROJECT [--json]`: whether the project's server runs, and where.

use crate::commands::{own_container, url_of};
use crate::docker;
use crate::error::Result;
use crate::project::Project;
use dpe_plugin::Context;

pub fn run(context: &Context, positional: Option<&str>, json: bool) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    let containers = docker::containers(context)?;
    let container = own_container(&containers, &project);
    let state = match &container {
        Some(c) if c.running() => "running",
        Some(_) => "stopped",
        None => "absent",
    };
    let url = container.as_ref().filter(|c| c.running()).and_then(|c| url_of(context, c));
    if json {
        let value = serde_json::json!({
            "project": project.name,
            "workspace": project.workspace,
            "state": state,
            "container": container.as_ref().map(|c| c.name.clone()),
            "image": container.as_ref().map(|c| c.image.clone()),
            "port": container.as_ref().filter(|c| c.running()).and_then(|c| c.port),
            "url": url,
            "status": container.as_ref().map(|c| c.status.clone()),
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
        return Ok(0);
    }
    match (&container, state) {
        (Some(c), "running") => {
            println!(
                "{}: running ({}), port {}, image {}",
                project.name,
                c.status.to_lowercase(),
                c.port.map(|p| p.to_string()).unwrap_or_default(),
                c.image
            );
            if let Some(url) = url {
                println!("{url}");
            }
        }
        (Some(_), _) => {
            println!("{}: stopped (files and packages kept; `dpe jupyter {}` starts it)", project.name, project.name)
        }
        _ => println!("{}: not started (`dpe jupyter {}` starts it)", project.name, project.name),
    }
    Ok(0)
}

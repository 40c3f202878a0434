//! `dpe jupyter status PROJECT [--json]`: whether the project's server runs, and where, or why
//! it stopped when it stopped itself for being idle (`[jupyter] idle_timeout`).

use crate::commands::{own_container, url_of};
use crate::docker;
use crate::project::Project;
use crate::spec::IDLE_EXIT_CODE;
use dpe_plugin::sdk::Result;
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
    let idle = container
        .as_ref()
        .filter(|c| !c.running())
        .is_some_and(|c| docker::exit_code(context, &c.id) == Some(IDLE_EXIT_CODE));
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
            "stopped_because": idle.then_some("idle"),
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
        (Some(_), _) if idle => println!(
            "{}: stopped itself after {} without activity (`[jupyter] idle_timeout`); files and packages kept; `dpe jupyter {}` starts it",
            project.name,
            project.config.jupyter.idle_timeout.as_deref().unwrap_or("the idle timeout"),
            project.name
        ),
        (Some(_), _) => {
            println!("{}: stopped (files and packages kept; `dpe jupyter {}` starts it)", project.name, project.name)
        }
        _ => println!("{}: not started (`dpe jupyter {}` starts it)", project.name, project.name),
    }
    Ok(0)
}

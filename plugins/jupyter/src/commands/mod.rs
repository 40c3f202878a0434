//! One file per `dpe jupyter` subcommand, and the few helpers they share: finding the project's
//! container again (by its labels, so a container whose dpe process was killed is still found)
//! and rebuilding its URL from the labels and the stored token.

mod exec;
pub mod gc;
mod list;
mod logs;
mod pip;
mod rm;
mod shell;
mod spec;
mod start;
mod status;
mod stop;
mod url;

use crate::cli::{Cli, Command};
use crate::docker::{self, Container};
use crate::project::Project;
use crate::secrets;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;

pub fn run(context: &Context, cli: Cli) -> Result<i32> {
    match cli.command {
        None => start::run(context, &cli.start),
        Some(Command::Spec { project, json: _, rebuild, lan, lock, adopt }) => {
            spec::run(context, project.as_deref(), rebuild, lan, &lock, adopt.as_deref())
        }
        Some(Command::Stop { project }) => stop::run(context, project.as_deref()),
        Some(Command::Status { project, json }) => status::run(context, project.as_deref(), json || context.json),
        Some(Command::Logs { project, follow, tail }) => logs::run(context, project.as_deref(), follow, tail),
        Some(Command::Url { project }) => url::run(context, project.as_deref()),
        Some(Command::Shell { project }) => shell::run(context, project.as_deref()),
        Some(Command::Exec { project, command }) => exec::run(context, project.as_deref(), &command),
        Some(Command::Pip { args }) => pip::run(context, &args),
        Some(Command::Lock { project }) => pip::lock(context, project.as_deref()),
        Some(Command::List { json, stats, size }) => {
            list::run(context, &list::Asked { json: json || context.json, stats, size })
        }
        Some(Command::Rm { project, yes }) => rm::run(context, project.as_deref(), yes),
        Some(Command::Gc { yes }) => gc::run(context, yes),
    }
}

/// The project's container, found by the key label dpe put on it (or its name).
pub fn own_container(containers: &[Container], project: &Project) -> Option<Container> {
    let key = project.key();
    let name = project.container_name();
    containers.iter().find(|c| c.key == key || c.name == name).cloned()
}

/// The host ports the project may not take because other containers publish them, and those the
/// project itself holds (usable for it although not bindable), from one container list.
///
/// The project's own containers are its Jupyter container (`own`) and the containers `dpe
/// compose` runs for the project's services (labelled `dpe.plugin=compose` with the same
/// project and workspace): their host ports are the project's reserved service ports, so a
/// second `dpe compose up` must find them unchanged, not moved away from "someone else".
pub fn port_owners(containers: &[Container], project: &Project, own: Option<&Container>) -> (Vec<u16>, Vec<u16>) {
    let workspace = project.workspace.to_string_lossy();
    let is_own = |c: &Container| {
        own.is_some_and(|o| o.id == c.id)
            || (c.plugin == "compose" && c.project == project.name && c.workspace == workspace)
    };
    let published = containers.iter().filter(|c| !is_own(c)).flat_map(|c| c.host_ports.iter().copied()).collect();
    let mine =
        containers.iter().filter(|c| is_own(c) && c.running()).flat_map(|c| c.host_ports.iter().copied()).collect();
    (published, mine)
}

/// The project's container, or an error saying it is not running.
pub fn running_container(context: &Context, project: &Project) -> Result<Container> {
    let containers = docker::containers(context)?;
    match own_container(&containers, project) {
        Some(container) if container.running() => Ok(container),
        _ => Err(not_running(project)),
    }
}

pub fn not_running(project: &Project) -> Error {
    Error::new(format!("`{}` is not running", project.name))
        .with_help(format!("start it with `dpe jupyter {} --detach`", project.name))
}

/// The URL of a running container, from its labels and the stored token.
pub fn url_of(context: &Context, container: &Container) -> Option<String> {
    let port = container.port?;
    let token = secrets::read_token(&context.state_dir, &container.key)?;
    // Containers made before the host was recorded were all published where 127.0.0.1 reaches.
    let host = if container.url_host.is_empty() { "127.0.0.1" } else { &container.url_host };
    Some(format!("http://{host}:{port}{}?token={token}", container.base_url))
}

/// `docker exec` arguments: a terminal when there is one, the user and folder of the server
/// (from the container's labels).
pub fn exec_prefix(container: &Container) -> Vec<String> {
    let mut args = vec!["exec".to_string(), "--interactive".to_string()];
    if stdin_is_terminal() {
        args.push("--tty".into());
    }
    if !container.user.is_empty() {
        args.push("--user".into());
        args.push(container.user.clone());
    }
    if !container.workdir.is_empty() {
        args.push("--workdir".into());
        args.push(container.workdir.clone());
    }
    args.push(container.id.clone());
    args
}

fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// A command's exit code from a finished `dpe docker` child.
pub fn code(status: std::process::ExitStatus) -> i32 {
    dpe_plugin::client::exit_code(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, state: &str, workspace: &str, project: &str, plugin: &str, ports: &[u16]) -> Container {
        Container {
            id: id.into(),
            name: id.into(),
            state: state.into(),
            workspace: workspace.into(),
            project: project.into(),
            plugin: plugin.into(),
            host_ports: ports.to_vec(),
            ..Container::default()
        }
    }

    #[test]
    fn compose_service_containers_of_the_project_hold_its_own_ports() {
        let project = Project {
            name: "beta".into(),
            dir: "/w/projects/beta".into(),
            workspace: "/w".into(),
            config: Default::default(),
        };
        let jupyter = container("j", "running", "/w", "beta", "jupyter", &[8888]);
        let containers = vec![
            jupyter.clone(),
            // `dpe compose up` ran the project's `web` service: its port is the project's.
            container("web", "running", "/w", "beta", "compose", &[18080]),
            // The same project name in another workspace, another project, another plugin:
            // all someone else's.
            container("other-ws", "running", "/elsewhere", "beta", "compose", &[18081]),
            container("other-project", "running", "/w", "alpha", "compose", &[18082]),
            container("stranger", "running", "", "", "", &[18083]),
        ];
        let (published, mine) = port_owners(&containers, &project, Some(&jupyter));
        assert_eq!(published, vec![18081, 18082, 18083]);
        assert_eq!(mine, vec![8888, 18080]);
        // Without its own Jupyter container the project still owns its service's port.
        let (published, mine) = port_owners(&containers, &project, None);
        assert_eq!(published, vec![8888, 18081, 18082, 18083]);
        assert_eq!(mine, vec![18080]);
    }
}

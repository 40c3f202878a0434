//! `dpe compose deploy [PROJECT…]` and `dpe compose undeploy`: the same projects as a Docker
//! Swarm stack (`docker stack deploy`), for users who move to a cluster engine.
//!
//! What changes from `up`: swarm cannot build, so service images with a `build` folder are built
//! first (the project images already are, by the jupyter plugin); ports are published in `host`
//! mode, straight from the container on every address of the node, because the ingress routing
//! mesh does not answer everywhere; start order (`depends_on`) is not honoured; GPUs cannot be
//! reserved. On one node the named volumes are the same ones `up` uses.
//!
//! `docker stack deploy` returns once the services exist, before they run; `deploy` returns
//! only when every service has a running (and healthy, where it has a healthcheck) task, the
//! stack network resolves every service by name, and every notebook answers, so what it prints
//! can be used at once. A stack that does not get
//! there is named with its task's error and, when this deploy created it, removed.

use super::{check_ports_free, plan, print_urls, ready_timeout, wait_ready};
use crate::model::Target;
use crate::selection::Workspace;
use crate::stack::{dpe, output, run as run_command, stdout_to_stderr, Stack};
use crate::swarm;
use clap::Args;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Projects to deploy (default: the workspace's selection).
    pub projects: Vec<String>,
}

pub fn run(context: &Context, args: &DeployArgs) -> Result<()> {
    let swarm = output(
        dpe(context, None).args(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "dpe docker info",
    )?;
    if swarm.trim() != "active" {
        return Err(Error::new("this Docker engine is not part of a swarm").with_help(
            "make it a single-node swarm with `docker swarm init --advertise-addr 127.0.0.1`, or use `dpe compose up`",
        ));
    }
    let plan = plan(context, &args.projects, false)?;
    for fragment in &plan.all {
        if fragment.services.iter().any(|s| s.gpu.is_some()) {
            return Err(Error::new(format!(
                "project `{}` uses a GPU, which `dpe compose deploy` cannot reserve in a swarm",
                fragment.project
            ))
            .with_help(format!(
                "run it with `dpe compose up {}`, or set `gpu = \"off\"` in its dpe.toml",
                fragment.project
            )));
        }
    }
    for service in plan.all.iter().flat_map(|f| &f.services) {
        if let (Some(build), Some(image)) = (&service.build, &service.image) {
            let mut command = dpe(context, None);
            command.args(["docker", "build", "--tag", image, build]).stdout(stdout_to_stderr());
            run_command(command, "dpe docker build")?;
        }
    }
    let existed = deployed(context, &plan.stack)?;
    if !existed {
        check_ports_free(context, &plan.stack, &plan.all, Target::Swarm)?;
    }
    plan.stack.write(&plan.all, Target::Swarm)?;
    let file = plan.stack.swarm_file();
    let mut command = dpe(context, None);
    // There is no registry to ask about local images; the node has them.
    command
        .args(["docker", "stack", "deploy", "--resolve-image", "never", "--compose-file"])
        .arg(&file)
        .arg(&plan.stack.name);
    command.stdout(stdout_to_stderr());
    run_command(command, "dpe docker stack deploy")?;
    let services: Vec<String> =
        plan.all.iter().flat_map(|f| &f.services).map(|s| format!("{}_{}", plan.stack.name, s.key)).collect();
    let timeout = ready_timeout(&plan.all);
    // `docker stack deploy` names the stack's network `<stack>_default`.
    let network = format!("{}_default", plan.stack.name);
    let ready = swarm::wait_running(context, &services, &network, timeout)
        .and_then(|_| wait_ready(&plan.all, timeout, |_| true));
    match ready {
        Ok(urls) => {
            print_urls(context, &urls);
            Ok(())
        }
        Err(failure) => {
            if !existed {
                eprintln!("note: removing the stack `{}` this deploy created", plan.stack.name);
                let _ = remove(context, &plan.stack);
            }
            Err(failure)
        }
    }
}

pub fn undeploy(context: &Context) -> Result<()> {
    let stack = Stack::new(context, Workspace::from_context(context)?);
    if !deployed(context, &stack)? {
        eprintln!("no stack of this workspace is deployed");
        return Ok(());
    }
    remove(context, &stack)
}

/// Whether the swarm runs services of this workspace's stack.
fn deployed(context: &Context, stack: &Stack) -> Result<bool> {
    let filter = format!("label=com.docker.stack.namespace={}", stack.name);
    let swarm = output(
        dpe(context, None).args(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "dpe docker info",
    )?;
    if swarm.trim() != "active" {
        return Ok(false);
    }
    let text = output(
        dpe(context, None).args(["docker", "service", "ls", "-q", "--filter", &filter]),
        "dpe docker service ls",
    )?;
    Ok(!text.trim().is_empty())
}

/// `docker stack rm` returns before the containers are gone; wait for them (and the network),
/// so a `dpe compose up` right after finds the ports free.
fn remove(context: &Context, stack: &Stack) -> Result<()> {
    let mut command = dpe(context, None);
    command.args(["docker", "stack", "rm", &stack.name]).stdout(stdout_to_stderr());
    run_command(command, "dpe docker stack rm")?;
    let filter = format!("label=com.docker.stack.namespace={}", stack.name);
    let deadline = dpe_plugin::deadline_after(Duration::from_secs(90));
    loop {
        let containers =
            output(dpe(context, None).args(["docker", "ps", "-aq", "--filter", &filter]), "dpe docker ps")?;
        let networks = output(
            dpe(context, None).args(["docker", "network", "ls", "-q", "--filter", &filter]),
            "dpe docker network ls",
        )?;
        if containers.trim().is_empty() && networks.trim().is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::new(format!("the stack `{}` is still being removed after 90 seconds", stack.name))
                .with_help("check `docker stack ps` and `docker ps`; the engine finishes on its own"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

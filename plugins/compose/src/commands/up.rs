//! `dpe compose up [PROJECT…]`: describe, check, start detached, wait for the notebooks.
//!
//! Everything that can be refused is refused before the engine is touched (unknown project,
//! broken configuration, name or port clash). If compose then fails, or a notebook never
//! answers, what this `up` created is removed again, so a failed start leaves the stack as it
//! was. Projects already up stay in the file and are left alone: only the named projects'
//! services are passed to `compose up`.

use super::{check_ports_free, plan, print_urls, ready_timeout, roll_back, wait_ready};
use crate::model::{self, Target};
use clap::Args;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::collections::BTreeSet;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Projects to start (default: `[compose] projects` in the workspace dpe.toml, else the
    /// `which-project` file).
    pub projects: Vec<String>,
    /// Rebuild services that have a `build` folder (project images are rebuilt by the jupyter
    /// plugin whenever their inputs change).
    #[arg(long)]
    pub build: bool,
}

pub fn run(context: &Context, args: &UpArgs) -> Result<()> {
    let plan = plan(context, &args.projects, true)?;
    check_ports_free(context, &plan.stack, &plan.fresh, Target::Compose)?;
    let before = plan.stack.services(context, false)?;
    plan.stack.write(&plan.all, Target::Compose)?;

    let names: BTreeSet<String> = plan.fresh.iter().map(|f| f.project.clone()).collect();
    let keys = model::service_keys(&plan.fresh, &names);
    let mut compose_args = vec!["up", "--detach"];
    if args.build {
        compose_args.push("--build");
    }
    compose_args.extend(&keys);
    if let Err(failure) = plan.stack.run_compose_quietly(context, &compose_args) {
        roll_back(context, &plan.stack, &before, &plan.kept);
        return Err(failure);
    }
    plan.stack.save_fragments(&plan.all)?;

    let alive = |project: &str| plan.stack.services(context, true).map(|s| s.contains(project)).unwrap_or(true);
    let started = wait_ready(&plan.fresh, ready_timeout(&plan.fresh), alive)
        .and_then(|urls| all_running(context, &plan, &keys).map(|_| urls));
    match started {
        Ok(urls) => {
            print_urls(context, &urls);
            Ok(())
        }
        Err(failure) => {
            // Show why before the containers (and their logs) go away.
            let mut logs = vec!["logs", "--tail", "30"];
            logs.extend(&keys);
            let _ = plan.stack.run_compose_quietly(context, &logs);
            roll_back(context, &plan.stack, &before, &plan.kept);
            Err(failure)
        }
    }
}

/// A service that exited right after starting (a typo in its command, a missing module) would
/// leave a stack that looks up but is not; it counts as a failed start.
fn all_running(context: &Context, plan: &super::Plan, keys: &[&str]) -> Result<()> {
    let running = plan.stack.services(context, true)?;
    let stopped: Vec<String> = keys.iter().filter(|k| !running.contains(**k)).map(|k| format!("`{k}`")).collect();
    if stopped.is_empty() {
        return Ok(());
    }
    Err(Error::new(format!("{} stopped right after starting", stopped.join(", ")))
        .with_help("its log is above; fix the service's `command` or image in its project's dpe.toml"))
}

//! `dpe compose restart PROJECT…`: restart the projects' containers (notebook and services)
//! and wait until the notebooks answer again.

use super::{current, print_urls, ready_timeout, wait_ready};
use clap::Args;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Projects to restart. Its id `project` tells dpe the first one names a project (so
    /// completion offers project names); the rest are this plugin's business.
    #[arg(id = "project", value_name = "PROJECTS", required = true)]
    pub projects: Vec<String>,
}

pub fn run(context: &Context, args: &RestartArgs) -> Result<()> {
    let (stack, fragments) = current(context)?;
    let mut chosen = Vec::new();
    for name in &args.projects {
        let Some(fragment) = fragments.iter().find(|f| &f.project == name) else {
            stack.workspace.check_project(name)?;
            return Err(Error::new(format!("project `{name}` is not up"))
                .with_help(format!("start it with `dpe compose up {name}`")));
        };
        chosen.push(fragment.clone());
    }
    let mut compose_args = vec!["restart"];
    compose_args.extend(chosen.iter().flat_map(|f| f.services.iter().map(|s| s.key.as_str())));
    stack.run_compose_quietly(context, &compose_args)?;
    let alive = |project: &str| stack.services(context, true).map(|s| s.contains(project)).unwrap_or(true);
    let urls = wait_ready(&chosen, ready_timeout(&chosen), alive)?;
    print_urls(context, &urls);
    Ok(())
}

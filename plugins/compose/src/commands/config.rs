//! `dpe compose config [PROJECT…] [--swarm]`: write and print the file `up` (or `deploy`)
//! would use, without starting anything. With no names and no configured selection it prints
//! the file of the projects that are up.

use super::{current, plan};
use crate::model::Target;
use crate::selection;
use clap::Args;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Projects to include (default: the workspace's selection, with the projects already up).
    pub projects: Vec<String>,
    /// Print the Docker Swarm variant that `dpe compose deploy` uses.
    #[arg(long)]
    pub swarm: bool,
}

pub fn run(context: &Context, args: &ConfigArgs) -> Result<()> {
    let target = if args.swarm { Target::Swarm } else { Target::Compose };
    let (stack, saved) = current(context)?;
    let fragments =
        if args.projects.is_empty() && !saved.is_empty() && selection::configured(context, &stack.workspace)?.is_none()
        {
            saved
        } else {
            // `deploy` runs exactly the named projects; `up` adds them to what is already up.
            plan(context, &args.projects, target == Target::Compose)?.all
        };
    if fragments.is_empty() {
        return Err(Error::new("no projects selected").with_help("name them: `dpe compose config project_a project_b`"));
    }
    let text = stack.write(&fragments, target)?;
    super::write_stdout(&text);
    Ok(())
}

//! `dpe compose down [PROJECT…]`: stop and remove containers. With no names, or when the named
//! projects are all that is up, the whole stack goes, network included. Otherwise only the named
//! projects' containers go and the others keep running on the network. Named volumes (installed
//! packages, databases) stay unless `--volumes`.

use super::current;
use crate::model::{self, Fragment, Target};
use crate::stack::{dpe, run as run_command, stdout_to_stderr};
use clap::Args;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::collections::BTreeSet;

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Projects to stop (default: all of this workspace's stack).
    pub projects: Vec<String>,
    /// Also remove the named volumes of what goes down (installed packages, databases).
    #[arg(short, long)]
    pub volumes: bool,
}

pub fn run(context: &Context, args: &DownArgs) -> Result<()> {
    let (stack, fragments) = current(context)?;
    let up: BTreeSet<String> = fragments.iter().map(|f| f.project.clone()).collect();
    let mut targets = BTreeSet::new();
    for name in &args.projects {
        if up.contains(name) {
            targets.insert(name.clone());
        } else {
            stack.workspace.check_project(name)?;
            eprintln!("note: project `{name}` is not up");
        }
    }
    if !args.projects.is_empty() && targets.is_empty() {
        return Ok(());
    }
    if !stack.file().exists() {
        if stack.projects(context)?.is_empty() {
            eprintln!("nothing was started with `dpe compose up` in this workspace");
            return Ok(());
        }
        return Err(Error::new(format!("the generated compose file `{}` is missing", stack.file().display()))
            .with_help("run `dpe compose up` for the running projects to write it again, then `dpe compose down`"));
    }

    if args.projects.is_empty() || targets == up {
        let mut compose_args = vec!["down", "--remove-orphans"];
        if args.volumes {
            compose_args.push("--volumes");
        }
        stack.run_compose_quietly(context, &compose_args)?;
        // The file stays for reading and reuse; the state says nothing is up.
        return stack.save_fragments(&[]);
    }

    let mut compose_args = vec!["rm", "--stop", "--force"];
    compose_args.extend(model::service_keys(&fragments, &targets));
    stack.run_compose_quietly(context, &compose_args)?;
    let (gone, rest): (Vec<Fragment>, Vec<Fragment>) =
        fragments.into_iter().partition(|f| targets.contains(&f.project));
    stack.write(&rest, Target::Compose)?;
    stack.save_fragments(&rest)?;
    if args.volumes {
        let names: Vec<&str> = gone.iter().flat_map(|f| f.volumes.iter().map(|v| v.name.as_str())).collect();
        if !names.is_empty() {
            let mut command = dpe(context, None);
            command.args(["docker", "volume", "rm", "--force"]).args(&names).stdout(stdout_to_stderr());
            run_command(command, "dpe docker volume rm")?;
        }
    }
    Ok(())
}

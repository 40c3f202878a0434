//! `dpe docker ARGS…`: the container engine with hooks and labels.

use crate::context::{self, Globals};
use crate::error::Result;
use clap::Args;

/// Everything after `docker` goes to the engine unchanged (`dpe docker ps -a`). Plugins call
/// this through `$DPE_BIN docker …` so the user's hooks run around every call.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct DockerArgs {
    /// Arguments for the engine
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(globals: &Globals, args: DockerArgs) -> Result<i32> {
    // The calling plugin's name (set in its environment by dpe) labels what it creates.
    let plugin = std::env::var(dpe_plugin::env::PLUGIN).ok().filter(|p| !p.is_empty());
    let resolved = context::resolve(globals, plugin.as_deref(), None)?;
    crate::docker::run(&resolved.context, &args.args)
}

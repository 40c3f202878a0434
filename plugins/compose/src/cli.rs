//! The command line of `dpe compose`, defined once: its `///` comments are the `--help`, and
//! the manifest dpe reads for help and completion is derived from it by the SDK. Then the
//! dispatch to one module per subcommand.

use crate::commands;
use clap::{Parser, Subcommand};
use dpe_plugin::sdk::{Plugin, Result};
use dpe_plugin::Context;

/// Several projects, several containers each, started together on one network.
#[derive(Debug, Parser)]
#[command(name = "dpe compose", version, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start projects and their services (default: the workspace's selection), detached; print
    /// each notebook's URL once it answers.
    Up(commands::up::UpArgs),
    /// Stop and remove projects' containers (default: all), and the network once none is left;
    /// named volumes are kept unless `--volumes`.
    Down(commands::down::DownArgs),
    /// List the stack's containers.
    Ps,
    /// Show logs of the stack, of a project's services, or of one service.
    Logs(commands::logs::LogsArgs),
    /// Restart projects' containers and wait for their notebooks.
    Restart(commands::restart::RestartArgs),
    /// Print the generated compose file (also written under the state directory).
    Config(commands::config::ConfigArgs),
    /// Deploy the projects to Docker Swarm (`docker stack deploy`) on this node.
    Deploy(commands::deploy::DeployArgs),
    /// Remove the stack deployed with `dpe compose deploy`.
    Undeploy,
}

impl Plugin for Cli {
    const DPE: &'static str = "^0.1";

    fn run(self, context: &Context) -> Result<()> {
        match self.command {
            Command::Up(args) => commands::up::run(context, &args),
            Command::Down(args) => commands::down::run(context, &args),
            Command::Ps => commands::ps::run(context),
            Command::Logs(args) => commands::logs::run(context, &args),
            Command::Restart(args) => commands::restart::run(context, &args),
            Command::Config(args) => commands::config::run(context, &args),
            Command::Deploy(args) => commands::deploy::run(context, &args),
            Command::Undeploy => commands::deploy::undeploy(context),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpe_plugin::sdk;

    /// `dpe-compose --dpe-manifest` is [`Cli`]: clap parses each subcommand and option it
    /// lists as listed, and it lists them all. Completion offers what the hand-written manifest
    /// did (`restart` takes a project through its `project` id).
    #[test]
    fn the_manifest_is_the_command_line() {
        sdk::assert_manifest::<Cli>(&[
            "compose",
            "compose up --build",
            "compose down --volumes",
            "compose ps",
            "compose logs --follow --tail VALUE",
            "compose restart [PROJECT]",
            "compose config --swarm",
            "compose deploy",
            "compose undeploy",
        ]);
        assert_eq!(sdk::manifest::<Cli>().version, env!("CARGO_PKG_VERSION"));
    }
}

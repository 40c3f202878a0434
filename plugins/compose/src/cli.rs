//! The command line of `dpe compose` (its `///` comments are the `--help`), the manifest dpe
//! reads for help and completion, and the dispatch to one module per subcommand.

use crate::commands;
use crate::failure::Failure;
use clap::{Parser, Subcommand};
use dpe_plugin::manifest::{OptionSpec, Subcommand as ManifestSubcommand};
use dpe_plugin::{Context, Manifest};

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
    /// Print a project's configuration as the core resolved it, as JSON (used by `dpe compose`
    /// itself to read each project's `[services]`).
    ResolvedConfig {
        /// The project.
        project: String,
    },
}

/// What `dpe-compose --dpe-manifest` prints.
pub fn manifest() -> Manifest {
    let option = OptionSpec::new;
    let sub = |name: &str, description: &str, takes_project: bool, options: Vec<OptionSpec>| ManifestSubcommand {
        name: name.to_string(),
        description: description.to_string(),
        takes_project,
        options,
    };
    Manifest {
        name: "compose".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        dpe: "^0.1".to_string(),
        protocol: dpe_plugin::PROTOCOL_VERSION,
        description: "run several projects and their services together on one network".to_string(),
        // `up a b` names several projects; the selection is this plugin's business.
        takes_project: false,
        subcommands: vec![
            sub(
                "up",
                "start projects and their services",
                false,
                vec![option("--build", "rebuild services that have a `build` folder", false)],
            ),
            sub(
                "down",
                "stop and remove projects' containers",
                false,
                vec![option("--volumes", "also remove named volumes", false)],
            ),
            sub("ps", "list the stack's containers", false, vec![]),
            sub(
                "logs",
                "show logs",
                false,
                vec![option("--follow", "keep following", false), option("--tail", "lines from the end", true)],
            ),
            sub("restart", "restart projects", true, vec![]),
            sub(
                "config",
                "print the generated compose file",
                false,
                vec![option("--swarm", "the file `deploy` uses", false)],
            ),
            sub("deploy", "deploy to Docker Swarm", false, vec![]),
            sub("undeploy", "remove the swarm stack", false, vec![]),
            sub("resolved-config", "print a project's resolved configuration as JSON", true, vec![]),
        ],
        options: vec![],
        complete: false,
    }
}

/// Parses the arguments after `compose` and runs the subcommand.
pub fn run(context: &Context, args: &[String]) -> i32 {
    let cli = match Cli::try_parse_from(std::iter::once("dpe compose".to_string()).chain(args.iter().cloned())) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { 2 } else { 0 };
        }
    };
    let result: Result<(), Failure> = match cli.command {
        Command::Up(args) => commands::up::run(context, &args),
        Command::Down(args) => commands::down::run(context, &args),
        Command::Ps => commands::ps::run(context),
        Command::Logs(args) => commands::logs::run(context, &args),
        Command::Restart(args) => commands::restart::run(context, &args),
        Command::Config(args) => commands::config::run(context, &args),
        Command::Deploy(args) => commands::deploy::run(context, &args),
        Command::Undeploy => commands::deploy::undeploy(context),
        Command::ResolvedConfig { project } => commands::resolved_config(context, &project),
    };
    match result {
        Ok(()) => 0,
        Err(failure) => failure.report(),
    }
}

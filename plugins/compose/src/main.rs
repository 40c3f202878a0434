//! `dpe-compose`, the `dpe compose` plugin: several projects, several containers each, started
//! together on one network — the user's "version 2" of their `which-project` +
//! `docker-compose up` workflow, on top of the core's context, ports registry and hooks.
//!
//! The binary is thin: [`cli`] parses and dispatches to one module per subcommand under
//! [`commands`]; [`project`] turns a project into compose services (from the jupyter plugin's
//! spec and the core's configuration), [`model`] checks and renders the stack, [`stack`] owns
//! its files and every call to the engine (always through `dpe docker …`), [`swarm`] waits for
//! a deployed stack to run.

mod cli;
mod commands;
mod model;
mod net;
mod project;
mod selection;
mod stack;
mod swarm;
mod yaml;

fn main() {
    dpe_plugin::sdk::main::<cli::Cli>()
}

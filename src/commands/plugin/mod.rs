//! `dpe plugin list|install|uninstall`: see every plugin dpe can find and why each does or does
//! not run, install one (an executable, a library, or a cargo project it builds) with its
//! manifest and semver requirement checked first, and remove one.

pub mod install;
pub mod list;
pub mod uninstall;

use crate::context::Globals;
use crate::error::Result;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// List every plugin found, in dispatch order, with its kind, version, path and status
    List(list::ListArgs),
    /// Install a plugin into the plugin directory (atomically, with a receipt)
    Install(install::InstallArgs),
    /// Remove an installed plugin and its receipt
    Uninstall(uninstall::UninstallArgs),
}

pub fn run(globals: &Globals, args: PluginArgs) -> Result<i32> {
    match args.command {
        PluginCommand::List(args) => list::run(globals, args),
        PluginCommand::Install(args) => install::run(globals, args),
        PluginCommand::Uninstall(args) => uninstall::run(globals, args),
    }
}

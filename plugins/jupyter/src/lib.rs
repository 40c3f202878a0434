//! `dpe jupyter`: one command from a project folder to a running, isolated Jupyter with a
//! stable port, kept packages, files owned by the user and a URL that works.
//!
//! The plugin speaks the dpe protocol: the context arrives in `DPE_CONTEXT`, and every engine
//! call goes through `dpe docker …` so the user's hooks run and the core labels what is
//! created. Modules: [`image`] (generated Dockerfile, content-hash tag), [`build`] (running a build: progress and log), [`imported`] (environments `dpe import` brought, for their project only), [`lock`] (`--from-lock`), [`ports`] (the
//! locked registry), [`project_lock`] (one start or stop of a project at a time), [`resolved`] (any project's context, cached), [`secrets`] (token, env file), [`spec`] (the `spec --json` contract and
//! the `docker run` arguments), [`store`] (the package store trusted projects share, and their environments in it), [`usage`] (what a running environment uses, for `list`), [`commands`] (one file per subcommand),
//! [`context_file`] (a file of a build context), [`sys`] (the one file with `unsafe`: libc calls).
//!
//! The command line is defined once, as [`Cli`] (`cli.rs`): it is the library's interface, a
//! `dpe_plugin::sdk::Plugin` the executable hands to the SDK's entry point, which derives the
//! manifest from it and does the parsing, exit codes and SIGPIPE. Other plugins ask for what
//! they need through the plugin contract (`dpe jupyter spec --json`, typed in
//! `dpe_plugin::contract`), never by linking this crate.

mod build;
mod cli;
mod commands;
mod context_file;
mod docker;
mod image;
mod imported;
mod lock;
mod ports;
mod project;
mod project_lock;
mod resolved;
mod say;
mod secrets;
mod spec;
mod store;
mod sys;
/// Public only for the parsers of recorded `nvidia-smi` output, which the list tests feed real
/// container PIDs.
pub mod usage;

pub use cli::Cli;

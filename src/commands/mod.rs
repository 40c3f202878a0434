//! One file per builtin command; each holds its clap arguments (whose doc comments are the
//! `--help`) and a `run` function that does the work through the core's modules.

pub mod completions;
pub mod context;
pub mod docker;
pub mod help;
pub mod plugin;
pub mod projects;
pub mod trust;

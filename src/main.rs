//! dpe's entry point: parse, run, map the result to an exit code.

mod builtins;
mod cli;
mod commands;
mod complete;
mod config;
mod context;
mod discovery;
mod dispatch;
mod docker;
mod error;
mod ffi;
mod fsutil;
mod hooks;
mod install;
mod manifest_cache;
mod names;
mod paths;
mod suggest;
mod trust;
mod workspace;

fn main() {
    ffi::default_sigpipe();
    let code = match cli::run(std::env::args_os().collect()) {
        Ok(code) => code,
        Err(err) => {
            if !err.quiet {
                eprintln!("{err}");
            }
            err.code
        }
    };
    std::process::exit(code);
}

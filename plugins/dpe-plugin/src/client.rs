//! Calls a Rust plugin makes back into dpe.
//!
//! Every docker invocation goes through `dpe docker …` so the user's hooks run around it and
//! dpe's labels are added; these helpers are the one way Rust plugins do that.

use crate::context::Context;
use std::io;
use std::process::{Command, ExitStatus, Output, Stdio};

/// A `dpe ARGS…` command with the context's dpe binary.
#[allow(clippy::disallowed_methods, reason = "this is a plugin's way back into dpe, the engine choke point")]
pub fn dpe_command(context: &Context, args: &[&str]) -> Command {
    let mut command = Command::new(&context.dpe_bin);
    command.args(args);
    command
}

/// A `dpe docker ARGS…` command; run it as you like (stdio, env).
pub fn docker_command<S: AsRef<std::ffi::OsStr>>(context: &Context, args: &[S]) -> Command {
    let mut command = dpe_command(context, &["docker"]);
    command.args(args);
    command
}

/// Runs `dpe docker ARGS…` with the terminal's stdio; returns docker's status.
pub fn docker<S: AsRef<std::ffi::OsStr>>(context: &Context, args: &[S]) -> io::Result<ExitStatus> {
    docker_command(context, args).status()
}

/// Runs `dpe docker ARGS…` capturing stdout and stderr (hooks still run).
pub fn docker_output<S: AsRef<std::ffi::OsStr>>(context: &Context, args: &[S]) -> io::Result<Output> {
    docker_command(context, args).stdin(Stdio::null()).output()
}

/// The process exit code for a finished child: its code, or 128+N when signal N ended it.
pub fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    1
}

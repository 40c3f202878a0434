//! The one choke point for the container engine.
//!
//! Every docker invocation of dpe — the core's and every plugin's, in any language, through
//! `dpe docker ARGS…` — runs here: it adds dpe's labels to what it creates, runs the pre hooks
//! (a failing one aborts before the engine is called), runs the engine through xshell with
//! the arguments interpolated one by one, then always runs the post hooks, and passes the
//! engine's status through unchanged.

use crate::error::{Error, Result};
use crate::ffi;
use crate::hooks::{self, Outcome, Phase};
use crate::trust::TrustStore;
use dpe_plugin::client::exit_code;
use dpe_plugin::Context;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Docker's global options that take a value, so the verb after them can be found.
const GLOBAL_OPTIONS_WITH_VALUE: &[&str] =
    &["--config", "-c", "--context", "-H", "--host", "-l", "--log-level", "--tlscacert", "--tlscert", "--tlskey"];

/// The docker verb of an argv (`run`, `build`, `compose`, …) and its index.
pub fn verb(args: &[String]) -> Option<(usize, &str)> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if GLOBAL_OPTIONS_WITH_VALUE.contains(&arg) {
            i += 2;
        } else if arg.starts_with('-') {
            i += 1;
        } else {
            return Some((i, arg));
        }
    }
    None
}

/// `args` with dpe's labels inserted after the verb of every call that creates something:
/// `run`, `create`, `container run|create`, `volume create`, `network create`.
pub fn with_labels(args: &[String], context: &Context) -> Vec<String> {
    let Some((index, verb)) = verb(args) else { return args.to_vec() };
    let next = args.get(index + 1).map(String::as_str);
    let insert_at = match (verb, next) {
        ("run" | "create", _) => index + 1,
        ("container", Some("run" | "create")) | ("volume" | "network", Some("create")) => index + 2,
        _ => return args.to_vec(),
    };
    let mut labels = Vec::new();
    if let Some(ws) = &context.workspace {
        labels.push(format!("dpe.workspace={}", ws.display()));
    }
    if let Some(project) = &context.project {
        labels.push(format!("dpe.project={}", project.name));
    }
    if let Some(plugin) = &context.plugin {
        labels.push(format!("dpe.plugin={plugin}"));
    }
    let mut out = args[..insert_at].to_vec();
    for label in labels {
        out.push("--label".into());
        out.push(label);
    }
    out.extend_from_slice(&args[insert_at..]);
    out
}

/// The program and arguments that actually run: compose goes to `docker compose` (v2) when the
/// engine has it, else to the standalone `docker-compose` (v1), as `[engine] compose` says.
fn engine_argv(context: &Context, args: Vec<String>) -> (String, Vec<String>) {
    let program = context.config.engine.program.clone();
    let index = match verb(&args) {
        Some((index, "compose")) => index,
        _ => return (program, args),
    };
    let standalone = match context.config.engine.compose.as_str() {
        "standalone" => true,
        "plugin" => false,
        _ => !compose_plugin_available(&program),
    };
    if standalone {
        // `docker --context x compose up` becomes `docker-compose up`: v1 has no engine flags.
        (format!("{program}-compose"), args[index + 1..].to_vec())
    } else {
        (program, args)
    }
}

fn compose_plugin_available(program: &str) -> bool {
    answers(program, &["compose", "version"])
}

/// Whether `program ARGS…` succeeds, run with no input and its output discarded.
#[allow(clippy::disallowed_methods, reason = "this is the engine choke point, asking which engine answers")]
fn answers(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `docker ARGS…` with hooks and returns the exit code dpe should end with.
pub fn run(context: &Context, args: &[String]) -> Result<i32> {
    let args = with_labels(args, context);
    let verb = verb(&args).map(|(_, v)| v.to_string()).unwrap_or_else(|| "docker".to_string());
    let pre = hooks::find(context, Phase::Pre, &verb);
    let post = hooks::find(context, Phase::Post, &verb);
    let skip_hooks = context.no_hooks;
    if skip_hooks && !(pre.is_empty() && post.is_empty()) {
        eprintln!("dpe: skipping {} hook(s) (--no-hooks / DPE_NO_HOOKS)", pre.len() + post.len());
    }
    let trust = if skip_hooks || (pre.is_empty() && post.is_empty()) {
        TrustStore::default()
    } else {
        TrustStore::load(&context.state_dir)
    };
    let mut untrusted: Vec<PathBuf> = Vec::new();

    if !skip_hooks {
        for hook in &pre {
            match hooks::run(hook, &trust, context, Phase::Pre, &verb, &args, None) {
                Outcome::Ran => {}
                Outcome::Untrusted => untrusted.push(hook.path.clone()),
                Outcome::Failed(err) => {
                    let code = err.code;
                    return Err(Error { message: format!("{}; `docker {verb}` was not run", err.message), ..err }
                        .with_code(code.max(1)));
                }
            }
        }
    }

    let status = run_engine(context, args.clone());

    let mut post_failure: Option<Error> = None;
    if !skip_hooks {
        let code_for_hooks = *status.as_ref().unwrap_or(&127);
        for hook in &post {
            match hooks::run(hook, &trust, context, Phase::Post, &verb, &args, Some(code_for_hooks)) {
                Outcome::Ran => {}
                Outcome::Untrusted => untrusted.push(hook.path.clone()),
                Outcome::Failed(err) => {
                    eprintln!("{err}");
                    post_failure.get_or_insert(err);
                }
            }
        }
    }
    if !untrusted.is_empty() {
        untrusted.dedup();
        eprintln!("{}", hooks::untrusted_warning(&untrusted, context.workspace.as_deref()));
    }
    let code = status?;
    match post_failure {
        // Docker's own failure is never hidden behind a hook's.
        _ if code != 0 => Ok(code),
        // An interrupted post hook ends dpe as the signal asked (130 for Ctrl+C).
        Some(err) => {
            let code = if err.code > 128 { err.code } else { 1 };
            Err(Error { quiet: true, ..err.with_code(code) })
        }
        None => Ok(0),
    }
}

fn run_engine(context: &Context, args: Vec<String>) -> Result<i32> {
    let (program, args) = engine_argv(context, args);
    let shell = xshell::Shell::new().map_err(|e| Error::new(format!("cannot prepare to run `{program}`: {e}")))?;
    let command: std::process::Command = xshell::cmd!(shell, "{program} {args...}").into();
    let mut command = command;
    // Standard error passes through dpe when it is not a terminal (nothing there behaves
    // differently on a pipe), or when the engine is known to be down: then dpe can hold back
    // the engine's own "cannot connect" line and print its one message with the fix instead.
    // On a terminal it stays the terminal, so build progress and colours look as usual.
    // Only for docker's own CLI, which leaves no process behind holding its standard error:
    // a daemon an engine starts (podman's conmon) must not inherit a pipe that dies with dpe.
    let is_docker = Path::new(&program).file_name().is_some_and(|name| name == "docker");
    let relay = is_docker && (!std::io::stderr().is_terminal() || local_socket_down());
    if relay {
        command.stderr(Stdio::piped());
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(format!("the container engine `{program}` is not installed (not found on PATH)"))
                .with_help("install Docker (Debian/Ubuntu: `sudo apt-get install docker.io`), or set `[engine] program` in dpe.toml"));
        }
        Err(err) => return Err(Error::new(format!("could not run `{program}`: {err}"))),
    };
    let relay = child.stderr.take().map(|pipe| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(relay_stderr(pipe)));
        receiver
    });
    ffi::guard_signals_for_child(child.id());
    let status = child.wait();
    ffi::child_finished();
    // Whatever the engine wrote is read by now, unless something it started still holds the
    // pipe: that must not keep dpe waiting.
    let held = relay.and_then(|receiver| receiver.recv_timeout(Duration::from_secs(2)).ok()).unwrap_or_default();
    let status = status.map_err(|e| Error::new(format!("lost track of `{program}`: {e}")))?;
    let code = exit_code(status);
    if code != 0 && status.code().is_some() && !engine_answers(&context.config.engine.program) {
        // Printed now, so the post hooks' output follows it, as it follows docker's own.
        eprintln!("{}", engine_down(&context.config.engine.program));
    } else {
        let _ = std::io::stderr().write_all(&held);
    }
    Ok(code)
}

/// The one message for an engine that does not answer, with the fix.
fn engine_down(program: &str) -> Error {
    let error = Error::new(format!("the container engine is not running: `{program} info` cannot reach it"));
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => error.with_help(format!(
            "start it, or point `DOCKER_HOST` (now `{host}`) at a running engine, then run the command again"
        )),
        _ => error.with_help(
            "start it (`sudo systemctl start docker`, or `sudo dockerd &` where there is no systemd), then run the command again",
        ),
    }
}

/// Whether `DOCKER_HOST` names a local socket nobody listens on: a connect costs microseconds,
/// unlike asking the engine. Other endpoints (TCP, contexts) are judged after a failure.
fn local_socket_down() -> bool {
    let Some(host) = std::env::var("DOCKER_HOST").ok() else { return false };
    let Some(path) = host.strip_prefix("unix://") else { return false };
    std::os::unix::net::UnixStream::connect(path).is_err()
}

/// Lines in which the engine says it cannot reach its daemon; dpe says that once, itself.
const CANNOT_CONNECT: &[&str] = &[
    "Cannot connect to the Docker daemon",
    "error during connect",
    "Cannot connect to Podman",
    "unable to connect to Podman",
];

/// Copies the engine's standard error to dpe's as it comes, line by line, except the lines
/// about an unreachable daemon, which it returns: printed late if the engine turns out to be
/// running after all, dropped in favour of dpe's message if not.
fn relay_stderr(pipe: std::process::ChildStderr) -> Vec<u8> {
    let mut reader = std::io::BufReader::new(pipe);
    let mut held = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return held,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        if CANNOT_CONNECT.iter().any(|needle| text.contains(needle)) {
            held.extend_from_slice(&line);
        } else {
            let _ = std::io::stderr().write_all(&line);
        }
    }
}

/// Whether the engine's daemon answers (only asked after a failure, to explain it).
fn engine_answers(program: &str) -> bool {
    answers(program, &["version", "--format", "{{.Server.Version}}"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_verb_after_global_options() {
        assert_eq!(verb(&strings(&["--context", "x", "run", "img"])), Some((2, "run")));
        assert_eq!(verb(&strings(&["-D", "build", "."])), Some((1, "build")));
        assert_eq!(verb(&strings(&["--version"])), None);
    }
}

//! The one `dpe docker` client of every plugin: captured, checked or streamed to the terminal,
//! every failure an [`Error`] carrying what the plugin was doing and the engine's own words.
//! All go through `dpe docker …` ([`crate::client::docker_command`]) so the user's hooks run
//! and the core labels what is created.

use super::{Error, Result};
use crate::client;
use crate::Context;
use std::ffi::OsStr;
use std::process::{ExitStatus, Output, Stdio};

/// Runs `dpe docker ARGS…` capturing stdout and stderr; fails only when dpe cannot be run, so
/// the caller reads the status (an `inspect` that finds nothing is an answer, not an error).
pub fn captured<S: AsRef<OsStr>>(context: &Context, args: &[S]) -> Result<Output> {
    client::docker_command(context, args).stdin(Stdio::null()).output().map_err(|e| not_run(context, e))
}

/// Runs `dpe docker ARGS…` capturing its output; a non-zero status is an error naming `doing`
/// with the engine's last line ([`failed`]).
pub fn checked<S: AsRef<OsStr>>(context: &Context, args: &[S], doing: &str) -> Result<Output> {
    let output = captured(context, args)?;
    if !output.status.success() {
        return Err(failed(doing, &output));
    }
    Ok(output)
}

/// [`checked`], returning its stdout trimmed (an ID, a format string's result, a listing).
pub fn text<S: AsRef<OsStr>>(context: &Context, args: &[S], doing: &str) -> Result<String> {
    let output = checked(context, args, doing)?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Whether `dpe docker KIND inspect NAME` finds the object (`image`, `volume`, `container`).
/// No `--format`: no one field is named alike on every kind and engine.
pub fn exists(context: &Context, kind: &str, name: &str) -> Result<bool> {
    Ok(captured(context, &[kind, "inspect", name])?.status.success())
}

/// Runs `dpe docker ARGS…` on the terminal's stdio (`exec`, `logs`, `push`): docker speaks to
/// the user itself, so only its status comes back.
pub fn streamed<S: AsRef<OsStr>>(context: &Context, args: &[S]) -> Result<ExitStatus> {
    let sub = args.first().map(|a| a.as_ref().to_string_lossy().into_owned()).unwrap_or_default();
    client::docker_command(context, args).status().map_err(|e| Error::io(format!("running `dpe docker {sub}`"), e))
}

/// The failure of a finished docker (or dpe) command: what we were doing and its stderr's last
/// line (a hook's chatter comes first; the core's own `error: ` prefix is dropped), with its
/// exit status.
pub fn failed(doing: &str, output: &Output) -> Error {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let detail = last.strip_prefix("error: ").unwrap_or(last);
    let message = if detail.is_empty() { format!("{doing} failed") } else { format!("{doing} failed: {detail}") };
    Error::new(message).with_code(client::exit_code(output.status).max(1))
}

/// dpe itself could not be started.
pub fn not_run(context: &Context, error: std::io::Error) -> Error {
    Error::io(format!("running `{} docker`", context.dpe_bin.display()), error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn finished(code: i32, stderr: &str) -> Output {
        Output { status: ExitStatus::from_raw(code << 8), stdout: Vec::new(), stderr: stderr.as_bytes().to_vec() }
    }

    /// A hook's chatter comes before the engine's error, and the core prefixes its own with
    /// `error: `: the message keeps the engine's last line and the exit code its status.
    #[test]
    fn a_failure_names_what_was_done_and_the_engines_last_line() {
        let hooked = finished(125, "hook: before stop\nError response from daemon: No such container: c\n\n");
        let error = failed("stopping the container", &hooked);
        assert_eq!(
            error.to_string(),
            "error: stopping the container failed: Error response from daemon: No such container: c"
        );
        assert_eq!(error.code, 125);
        assert_eq!(
            failed("tagging `x`", &finished(1, "error: the hook `pre-docker` failed\n")).to_string(),
            "error: tagging `x` failed: the hook `pre-docker` failed"
        );
        assert_eq!(failed("loading the image", &finished(0, "")).to_string(), "error: loading the image failed");
        assert_eq!(failed("loading the image", &finished(0, "")).code, 1);
    }

    /// A context whose `dpe docker` is the real engine's CLI (a script standing in for the dpe
    /// binary, which this crate does not build), or `None` when no engine answers.
    fn engine(dir: &std::path::Path) -> Option<Context> {
        let bin = dir.join("dpe");
        std::fs::write(&bin, "#!/bin/sh\nshift\nexec docker \"$@\"\n").unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let json = serde_json::json!({"protocol":1,"dpe_version":"0.1.0","dpe_bin":bin,"plugin":"t","workspace":null,
            "project":null,"config":{},"config_files":[],"state_dir":"/s","data_dir":"/d","config_dir":"/c",
            "cache_dir":"/k","verbosity":0,"color":"never","json":false,"no_hooks":false});
        let context = Context::from_json(&json.to_string()).unwrap();
        if captured(&context, &["info", "--format", "{{.ServerVersion}}"]).is_ok_and(|o| o.status.success()) {
            return Some(context);
        }
        eprintln!("skipped: no Docker engine answers `docker info`");
        None
    }

    /// On the real engine: `exists` answers for every kind (an image has no `.Name`, so the
    /// `--format '{{.Name}}'` export used to pass would call every image missing), and a
    /// failed call carries the engine's words.
    #[test]
    fn the_client_asks_the_real_engine() {
        let dir = tempfile::tempdir().unwrap();
        let Some(context) = engine(dir.path()) else { return };
        let image = text(&context, &["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], "listing images").unwrap();
        if let Some(image) = image.lines().find(|l| !l.contains("<none>")) {
            assert!(exists(&context, "image", image).unwrap(), "{image}");
        }
        assert!(!exists(&context, "volume", "dpe-sdk-test-no-such-volume").unwrap());
        assert!(!exists(&context, "image", "dpe-sdk-test-no-such-image:1").unwrap());
        let error =
            checked(&context, &["volume", "inspect", "dpe-sdk-test-no-such-volume"], "reading the volume").unwrap_err();
        assert!(error.message.starts_with("reading the volume failed: "), "{error}");
        assert!(error.message.to_lowercase().contains("no such volume"), "{error}");
        assert_eq!(error.code, 1);
    }
}

//! `dpe gpu`: can this host's containers use the NVIDIA GPU, and if not, what exactly to do.
//!
//! Three commands: `check` (the layered preflight, for people), `flags` (the engine and Compose
//! flags for a project, for the jupyter and compose plugins, per the `dpe gpu flags` contract)
//! and `images` (which CUDA variants of the Docker Stacks images fit this driver).
//!
//! The command line is defined once, as [`Cli`]; the SDK derives the manifest from it and runs
//! it the same way in the executable `dpe-gpu` and the library `libdpe_gpu.so` that dpe loads
//! in-process, so nothing here keeps process-global state: the context arrives as an argument
//! and every child is spawned per call.

pub mod check;
pub mod compat;
pub mod host;
pub mod parse;
mod render;

use check::{Mechanism, Options, ProjectTarget, Report};
use clap::{Args, Parser, Subcommand};
use dpe_plugin::config::{expand_image, GpuMode};
use dpe_plugin::sdk::{self, Error, Plugin, Result};
use dpe_plugin::Context;
use host::{Host, SystemHost};
use serde_json::json;

dpe_plugin::export_plugin!(Cli);

/// Check that containers can use the NVIDIA GPU, and give projects their GPU flags.
#[derive(Debug, Parser)]
#[command(name = "dpe gpu", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the driver, the container toolkit, a real GPU container and a project's image
    ///
    /// The host driver, the container toolkit/runtime/CDI, a smoke-test container (`--probe`)
    /// and, with a PROJECT, its image against this host. Exit 0 when containers can use the
    /// GPU, 1 when not.
    Check {
        #[command(flatten)]
        target: Target,
        /// Start a short GPU container (the smoke test)
        #[arg(long)]
        probe: bool,
        /// Print the findings as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the engine and Compose GPU flags for a project (`gpu`, `gpu_devices`)
    ///
    /// The engine flags (`--gpus …` or CDI `--device …`) and the Compose device entry for a
    /// project's `gpu`/`gpu_devices`. Exit 1 when `gpu = "required"` and the GPU is unusable.
    Flags {
        #[command(flatten)]
        target: Target,
        /// Print the flags and the findings as JSON
        #[arg(long)]
        json: bool,
    },
    /// List which CUDA variants of the Docker Stacks images fit this driver
    Images {
        /// Print the driver, the GPUs and the images as JSON
        #[arg(long)]
        json: bool,
    },
}

/// What `check` and `flags` look at.
#[derive(Debug, Args)]
struct Target {
    /// The project whose image to check against this host (dpe selects it)
    project: Option<String>,
    /// The image the smoke test runs (default: the project's image, else ubuntu:24.04)
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
}

impl Plugin for Cli {
    const DPE: &'static str = "^0.1";

    fn run(self, context: &Context) -> Result<()> {
        let code = self.run_on(context, &SystemHost { context }, &mut std::io::stdout(), &mut std::io::stderr())?;
        sdk::status(code)
    }
}

/// `dpe gpu ARGS…` against any [`Host`] and output streams (the tests' entry point); returns
/// the exit status.
pub fn run_with(
    context: &Context,
    host: &dyn Host,
    args: &[String],
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> i32 {
    match sdk::parse::<Cli>(args) {
        Ok(cli) => cli.run_on(context, host, out, err).unwrap_or_else(|error| error.report_to(err)),
        Err(stop) => stop.write(out, err),
    }
}

impl Cli {
    /// Runs the parsed command; the exit code, or the error to report.
    fn run_on(
        self,
        context: &Context,
        host: &dyn Host,
        out: &mut dyn std::io::Write,
        err: &mut dyn std::io::Write,
    ) -> Result<i32> {
        Ok(match self.command {
            Command::Check { target, probe, json } => {
                let project = project(context, target.project.as_deref())?;
                cmd_check(context, host, &target, project, probe, json || context.json, out)
            }
            Command::Flags { target, json } => {
                let project = project(context, target.project.as_deref())?;
                cmd_flags(context, host, &target, project, json || context.json, out, err)
            }
            Command::Images { json } => cmd_images(host, json || context.json, out),
        })
    }
}

/// The project to check: dpe resolves it (from the positional, `--project` or the cwd) and
/// passes it in the context; a positional that disagrees means dpe did not find it.
fn project<'a>(context: &'a Context, named: Option<&str>) -> Result<Option<&'a dpe_plugin::ProjectRef>> {
    match (named, &context.project) {
        (Some(name), Some(project)) if project.name != name => {
            Err(Error::new(format!("project `{name}` was asked for but dpe selected `{}`", project.name))
                .with_help("name one project, either as the argument or with `--project`"))
        }
        (Some(name), None) => Err(Error::new(format!("no project `{name}` in this workspace")).with_help(
            "projects are the folders under `projects/`; `dpe gpu check` without a name checks the host only",
        )),
        (_, project) => Ok(project.as_ref()),
    }
}

fn options_for(
    context: &Context,
    target: &Target,
    project: Option<&dpe_plugin::ProjectRef>,
    probe: bool,
    deep: bool,
) -> Options {
    let config = &context.config;
    let podman = std::path::Path::new(&config.engine.program)
        .file_name()
        .is_some_and(|name| name.to_string_lossy().contains("podman"));
    Options {
        probe,
        image: target.image.clone(),
        devices: config.gpu_devices.clone(),
        podman,
        project: project.map(|p| ProjectTarget {
            name: p.name.clone(),
            workspace: context.workspace.as_ref().map(|w| w.display().to_string()),
            image: config.image.as_deref().map(expand_image),
            gpu: config.gpu,
        }),
        deep,
    }
}

fn cmd_check(
    context: &Context,
    host: &dyn Host,
    target: &Target,
    project: Option<&dpe_plugin::ProjectRef>,
    probe: bool,
    json: bool,
    out: &mut dyn std::io::Write,
) -> i32 {
    let report = check::run(host, &options_for(context, target, project, probe, true));
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&report).expect("report serialises"));
    } else {
        use std::io::IsTerminal;
        let color = context.color_enabled(std::io::stdout().is_terminal());
        let _ = write!(out, "{}", render::report(&report, color));
    }
    if report.usable {
        0
    } else {
        1
    }
}

fn cmd_flags(
    context: &Context,
    host: &dyn Host,
    target: &Target,
    project: Option<&dpe_plugin::ProjectRef>,
    json: bool,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> i32 {
    let mode = context.config.gpu;
    let mode_name = match mode {
        GpuMode::Off => "off",
        GpuMode::Auto => "auto",
        GpuMode::Required => "required",
    };
    // `off` never touches the GPU tools: it is the fast path every CPU project takes.
    let (report, use_gpu) = if mode == GpuMode::Off {
        (None, false)
    } else {
        let report = check::run(host, &options_for(context, target, project, true, false));
        let usable = report.usable;
        (Some(report), usable)
    };
    let devices = context.config.gpu_devices.as_ref();
    let (docker_args, compose) = match (&report, use_gpu) {
        (Some(report), true) => {
            let mechanism = report.mechanism.unwrap_or(Mechanism::Gpus);
            (
                check::docker_args(mechanism, devices, &report.gpus),
                check::compose_device(mechanism, devices, &report.gpus),
            )
        }
        _ => (Vec::new(), serde_json::Value::Null),
    };
    let first_failure = report.as_ref().and_then(|r| r.failures().next().cloned());
    let notice = match (mode, use_gpu, &first_failure) {
        (GpuMode::Auto, false, Some(failure)) => {
            Some(format!("GPU not usable ({}); running on the CPU (`dpe gpu check` says why)", failure.message))
        }
        _ => None,
    };
    let findings = report.as_ref().map(|r| r.findings.as_slice()).unwrap_or_default();
    // The answer jupyter and compose read, typed once in the protocol crate.
    let answer = dpe_plugin::contract::GpuFlags {
        mode: mode_name.to_string(),
        use_gpu,
        docker_args: docker_args.clone(),
        compose: Some(compose).filter(|value| !value.is_null()),
        notice: notice.clone(),
        findings: findings.iter().map(|f| serde_json::to_value(f).expect("a finding serialises")).collect(),
    };
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&answer).expect("flags serialise"));
    } else if use_gpu {
        let _ = writeln!(out, "{}", render::shell_words(&docker_args));
    } else if let Some(notice) = &notice {
        let _ = writeln!(err, "notice: {}", dpe_plugin::terminal_safe(notice));
    }
    if mode == GpuMode::Required && !use_gpu {
        let name = project.map(|p| p.name.as_str()).unwrap_or("");
        let error =
            format!("project `{name}` requires a GPU (`gpu = \"required\"`) but containers cannot use one here");
        let _ = writeln!(err, "{}", Error::new(error));
        if let Some(report) = &report {
            for finding in report.failures() {
                let _ = write!(err, "{}", render::finding(finding, false));
            }
        }
        return 1;
    }
    0
}

fn cmd_images(host: &dyn Host, json: bool, out: &mut dyn std::io::Write) -> i32 {
    // Only the driver layer matters here; nothing else is run.
    let report: Report = check::driver_report(host);
    let rows = render::image_rows(&report);
    if json {
        let answer = json!({
            "driver": report.driver,
            "gpus": report.gpus,
            "images": rows,
            "source": render::TABLE_SOURCE,
        });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&answer).expect("images serialise"));
    } else {
        let _ = write!(out, "{}", render::images(&report, &rows));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpe_plugin::sdk;

    fn context(project: Option<&str>) -> Context {
        serde_json::from_value(json!({
            "protocol": dpe_plugin::PROTOCOL_VERSION, "dpe_version": "0.1.0", "dpe_bin": "/nonexistent/dpe",
            "plugin": "gpu", "workspace": null, "config": {}, "config_files": [],
            "project": project.map(|name| json!({"name": name, "dir": format!("/w/projects/{name}")})),
            "state_dir": "/s", "data_dir": "/d", "config_dir": "/c", "cache_dir": "/k",
            "verbosity": 0, "color": "never", "json": false, "no_hooks": false
        }))
        .expect("a context")
    }

    /// `dpe gpu ARGS…` on a context; the commands here fail before they touch the host.
    fn run_args(context: &Context, args: &[&str]) -> (i32, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(context, &SystemHost { context }, &args, &mut out, &mut err);
        assert!(out.is_empty());
        (code, String::from_utf8(err).expect("utf-8"))
    }

    #[test]
    fn a_project_dpe_did_not_find_is_an_error_with_its_own_help() {
        let error = project(&context(None), Some("demo")).unwrap_err();
        assert_eq!(error.message, "no project `demo` in this workspace");
        assert_eq!(
            error.help.as_deref(),
            Some("projects are the folders under `projects/`; `dpe gpu check` without a name checks the host only")
        );
        let other = project(&context(Some("alpha")), Some("demo")).unwrap_err();
        assert_eq!(other.message, "project `demo` was asked for but dpe selected `alpha`");
        assert_eq!(other.help.as_deref(), Some("name one project, either as the argument or with `--project`"));
        assert_eq!(project(&context(Some("alpha")), Some("alpha")).unwrap().map(|p| p.name.as_str()), Some("alpha"));
    }

    #[test]
    fn errors_print_like_the_cores_with_their_exit_code() {
        assert_eq!(
            run_args(&context(None), &["check", "demo"]),
            (1, "error: no project `demo` in this workspace\nhelp: projects are the folders under `projects/`; `dpe gpu check` without a name checks the host only\n".to_string())
        );
        assert_eq!(
            run_args(&context(None), &["check", "--prob"]),
            (2, "error: unknown option `--prob` for `dpe gpu check`\nhelp: did you mean `--probe`?\n".to_string())
        );
        assert_eq!(
            run_args(&context(None), &["images", "demo"]),
            (
                2,
                "error: unexpected argument `demo` for `dpe gpu images`\nhelp: `dpe gpu images --help` lists what it takes\n"
                    .to_string()
            )
        );
    }

    #[test]
    fn what_the_user_typed_is_escaped_in_an_error() {
        let (code, err) = run_args(&context(None), &["che\u{1b}[2Jck"]);
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "error: no `dpe gpu` command named `che\\u{1b}[2Jck`\nhelp: the commands are `check`, `flags` and `images`\n"
        );
    }

    /// The manifest of `dpe gpu` is its clap definition, checked by parsing what it lists;
    /// completion offers what the hand-written manifest did, and the usage text and the parser
    /// it had are gone.
    #[test]
    fn the_manifest_is_the_command_line() {
        sdk::assert_manifest::<Cli>(&[
            "gpu",
            "gpu check [PROJECT] --image VALUE --probe --json",
            "gpu flags [PROJECT] --image VALUE --json",
            "gpu images --json",
        ]);
        assert_eq!(sdk::manifest::<Cli>().version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn help_and_a_missing_command_show_the_usage() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let context = context(None);
        let code = run_with(&context, &SystemHost { context: &context }, &["--help".into()], &mut out, &mut err);
        let out = String::from_utf8(out).unwrap();
        assert_eq!((code, err.as_slice()), (0, &b""[..]));
        assert!(
            out.contains("Usage: dpe gpu <COMMAND>") && out.contains("  images  List which CUDA variants"),
            "{out}"
        );
        let (code, err) = run_args(&context, &[]);
        assert_eq!(code, 2);
        assert!(err.contains("Usage: dpe gpu <COMMAND>"), "{err}");
    }
}

//! `dpe gpu`: can this host's containers use the NVIDIA GPU, and if not, what exactly to do.
//!
//! Three commands: `check` (the layered preflight, for people), `flags` (the engine and Compose
//! flags for a project, for the jupyter and compose plugins, per the `dpe gpu flags` contract)
//! and `images` (which CUDA variants of the Docker Stacks images fit this driver).
//!
//! The same [`manifest`] and [`run`] serve the executable `dpe-gpu` and the library
//! `libdpe_gpu.so` that dpe loads in-process, so nothing here keeps process-global state: the
//! context arrives as an argument and every child is spawned per call.

pub mod check;
pub mod compat;
mod error;
pub mod host;
pub mod parse;
mod render;

use check::{Mechanism, Options, ProjectTarget, Report};
use dpe_plugin::config::{expand_image, GpuMode};
use dpe_plugin::manifest::{OptionSpec, Subcommand};
use dpe_plugin::{Context, Manifest};
use error::Error;
use host::{Host, SystemHost};
use serde_json::json;

dpe_plugin::export_plugin!(crate::manifest, crate::run);

/// What `dpe-gpu --dpe-manifest` answers.
pub fn manifest() -> Manifest {
    let option = OptionSpec::new;
    let json = || option("--json", "print the findings as JSON", false);
    let image =
        || option("--image", "the image the smoke test runs (default: the project's image, else ubuntu:24.04)", true);
    Manifest {
        name: "gpu".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        dpe: "^0.1".into(),
        protocol: dpe_plugin::PROTOCOL_VERSION,
        description: "Check that containers can use the NVIDIA GPU, and give projects their GPU flags".into(),
        takes_project: false,
        subcommands: vec![
            Subcommand {
                name: "check".into(),
                description: "Check the driver, the container toolkit, a real GPU container and a project's image"
                    .into(),
                takes_project: true,
                options: vec![
                    option("--probe", "start a short GPU container (the smoke test)", false),
                    image(),
                    json(),
                ],
            },
            Subcommand {
                name: "flags".into(),
                description: "Print the engine and Compose GPU flags for a project (`gpu`, `gpu_devices`)".into(),
                takes_project: true,
                options: vec![image(), json()],
            },
            Subcommand {
                name: "images".into(),
                description: "List which CUDA variants of the Docker Stacks images fit this driver".into(),
                takes_project: false,
                options: vec![json()],
            },
        ],
        options: Vec::new(),
        complete: false,
    }
}

const USAGE: &str = "\
usage: dpe gpu check [PROJECT] [--probe] [--image IMAGE] [--json]
       dpe gpu flags [PROJECT] [--image IMAGE] [--json]
       dpe gpu images [--json]

  check   the host driver, the container toolkit/runtime/CDI, a smoke-test container
          (--probe) and, with a PROJECT, its image against this host; exit 0 when
          containers can use the GPU, 1 when not
  flags   the engine flags (`--gpus …` or CDI `--device …`) and the Compose device entry
          for a project's `gpu`/`gpu_devices`; exit 1 when `gpu = \"required\"` and the
          GPU is unusable
  images  which CUDA variants of the Jupyter Docker Stacks images fit this driver";

/// Runs `dpe gpu ARGS…`; returns the exit status.
pub fn run(context: &Context, args: &[String]) -> i32 {
    let host = SystemHost { context };
    run_with(context, &host, args, &mut std::io::stdout(), &mut std::io::stderr())
}

/// [`run`] against any [`Host`] and output streams (the tests' entry point).
pub fn run_with(
    context: &Context,
    host: &dyn Host,
    args: &[String],
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> i32 {
    let Some((command, rest)) = args.split_first() else {
        let _ = writeln!(err, "{USAGE}");
        return 2;
    };
    let parsed = match Args::parse(command, rest) {
        Ok(parsed) => parsed,
        Err(message) => {
            let _ = writeln!(err, "{}\n\n{USAGE}", Error::usage(message));
            return 2;
        }
    };
    let json = parsed.json || context.json;
    let outcome = match command.as_str() {
        "help" | "--help" | "-h" => {
            let _ = writeln!(out, "{USAGE}");
            return 0;
        }
        "check" => project(context, parsed.project.as_deref())
            .map(|project| cmd_check(context, host, &parsed, project, json, out)),
        "flags" => project(context, parsed.project.as_deref())
            .map(|project| cmd_flags(context, host, &parsed, project, json, out, err)),
        "images" => Ok(cmd_images(host, json, out)),
        other => Err(Error::usage(format!("no `dpe gpu` command named `{other}`"))
            .with_help("the commands are `check`, `flags` and `images`")),
    };
    outcome.unwrap_or_else(|error| {
        let _ = writeln!(err, "{error}");
        error.code
    })
}

/// The parsed arguments of one subcommand.
#[derive(Debug, Default)]
struct Args {
    project: Option<String>,
    probe: bool,
    json: bool,
    image: Option<String>,
}

impl Args {
    fn parse(command: &str, rest: &[String]) -> Result<Args, String> {
        let mut args = Args::default();
        let mut words = rest.iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "--json" => args.json = true,
                "--probe" if command == "check" => args.probe = true,
                "--image" if command != "images" => {
                    args.image = Some(words.next().ok_or("`--image` needs an image name")?.clone());
                }
                flag if flag.starts_with("--image=") && command != "images" => {
                    args.image = Some(flag["--image=".len()..].to_string());
                }
                flag if flag.starts_with('-') => {
                    return Err(format!("unknown option `{flag}` for `dpe gpu {command}`"))
                }
                name if args.project.is_none() && command != "images" => args.project = Some(name.to_string()),
                extra => return Err(format!("unexpected argument `{extra}`")),
            }
        }
        Ok(args)
    }
}

/// The project to check: dpe resolves it (from the positional, `--project` or the cwd) and
/// passes it in the context; a positional that disagrees means dpe did not find it.
fn project<'a>(context: &'a Context, named: Option<&str>) -> Result<Option<&'a dpe_plugin::ProjectRef>, Error> {
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
    args: &Args,
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
        image: args.image.clone(),
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
    args: &Args,
    project: Option<&dpe_plugin::ProjectRef>,
    json: bool,
    out: &mut dyn std::io::Write,
) -> i32 {
    let report = check::run(host, &options_for(context, args, project, args.probe, true));
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
    args: &Args,
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
        let report = check::run(host, &options_for(context, args, project, true, false));
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
        let (code, err) = run_args(&context(None), &["check", "--bogus"]);
        assert_eq!(code, 2);
        assert!(
            err.starts_with("error: unknown option `--bogus` for `dpe gpu check`\n\nusage: dpe gpu check"),
            "{err}"
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
}

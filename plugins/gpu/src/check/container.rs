//! Layer 2, the container side: the NVIDIA Container Toolkit, docker's `nvidia` runtime and
//! the CDI specs, and from them how containers get the GPU ([`Mechanism`]). [`layer`] gathers
//! the [`Facts`] from the host; each check below reads only those facts.

use super::{CdiFile, Check, Finding, Mechanism, Report, Status, CONFIGURE_DOCKER, GENERATE_CDI, TOOLKIT_HELP};
use crate::host::{Host, Outcome};
use crate::parse::{self, Gpu};
use std::path::PathBuf;

const ENGINE: Check = Check::new("container", "engine");
const TOOLKIT: Check = Check::new("container", "toolkit");
const RUNTIME: Check = Check::new("container", "runtime");
const CDI: Check = Check::new("container", "cdi");

/// What the engine said about its runtimes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Engine {
    /// Podman: no `docker info` runtimes to ask; CDI is its native path.
    Podman,
    /// docker's registered runtimes.
    Runtimes(Vec<String>),
    /// docker answered, but not in a form that reads (the problem).
    Unreadable(String),
    /// docker did not answer (the last line it printed).
    Down(String),
}

/// What the host offers containers, as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Facts {
    /// `nvidia-ctk`'s version, when it is installed.
    toolkit: Option<String>,
    /// Whether the toolkit's `nvidia-container-runtime-hook` is on PATH.
    hook: bool,
    engine: Engine,
    /// Whether a CDI spec for `nvidia.com/gpu` exists.
    cdi: bool,
}

impl Facts {
    fn podman(&self) -> bool {
        self.engine == Engine::Podman
    }

    fn engine_ok(&self) -> bool {
        !matches!(self.engine, Engine::Down(_))
    }

    fn toolkit_present(&self) -> bool {
        self.toolkit.is_some() || self.hook
    }

    fn nvidia_runtime(&self) -> bool {
        matches!(&self.engine, Engine::Runtimes(list) if list.iter().any(|r| r == "nvidia"))
    }
}

/// Fills in the toolkit, runtimes, CDI specs and mechanism. Returns whether the engine answered.
pub(super) fn layer(host: &dyn Host, report: &mut Report, podman: bool) -> bool {
    report.toolkit = toolkit_version(&host.program("nvidia-ctk", &["--version"]));
    let hook = host.has_program("nvidia-container-runtime-hook");
    let (files, problems) = cdi_files(&host.cdi_specs());
    report.cdi = files;
    report.findings.extend(problems);
    let engine =
        if podman { Engine::Podman } else { engine(&host.docker(&["info", "--format", "{{json .Runtimes}}"])) };
    if let Engine::Runtimes(list) = &engine {
        report.runtimes = Some(list.clone());
    }
    report.findings.extend(engine_problem(&engine));
    let facts = Facts { toolkit: report.toolkit.clone(), hook, engine, cdi: !report.cdi.is_empty() };
    report.mechanism = mechanism(&facts);
    report.findings.push(toolkit(&facts, report.mechanism.is_some()));
    report.findings.extend(runtime(&facts));
    report.findings.extend(cdi(&facts, &report.cdi, &report.gpus, report.mechanism.is_some()));
    facts.engine_ok()
}

/// `nvidia-ctk --version`'s version, when it ran.
fn toolkit_version(outcome: &Outcome) -> Option<String> {
    outcome.ok().map(|out| parse::ctk_version(out).unwrap_or_else(|| "unknown version".into()))
}

/// The `nvidia.com/gpu` specs among the CDI files, and a warning for each file that does not
/// parse. Specs of other kinds are not ours to judge.
fn cdi_files(specs: &[(PathBuf, String)]) -> (Vec<CdiFile>, Vec<Finding>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for (path, text) in specs {
        match parse::cdi_spec(text) {
            Ok(spec) if spec.kind == "nvidia.com/gpu" => {
                files.push(CdiFile { path: path.display().to_string(), kind: spec.kind, devices: spec.devices })
            }
            Ok(_) => {}
            Err(problem) => problems
                .push(CDI.warn(format!("CDI spec `{}` does not parse: {problem}", path.display())).help(GENERATE_CDI)),
        }
    }
    (files, problems)
}

/// docker's answer to `docker info --format '{{json .Runtimes}}'`.
fn engine(outcome: &Outcome) -> Engine {
    match outcome.ok() {
        Some(stdout) => match parse::docker_runtimes(stdout) {
            Ok(runtimes) => Engine::Runtimes(runtimes),
            Err(problem) => Engine::Unreadable(problem),
        },
        None => Engine::Down(parse::last_line(&outcome.text())),
    }
}

fn engine_problem(engine: &Engine) -> Option<Finding> {
    match engine {
        Engine::Podman | Engine::Runtimes(_) => None,
        Engine::Unreadable(problem) => Some(RUNTIME.warn(problem.clone())),
        Engine::Down(last_line) => Some(
            ENGINE
                .fail(format!("the container engine does not answer: {last_line}"))
                .help("start it (`sudo systemctl start docker`) and check with `dpe docker info`"),
        ),
    }
}

/// How containers get the GPU: podman only through CDI; docker through `--gpus` when the
/// toolkit or its runtime is there, else through CDI; nothing while the engine is down.
fn mechanism(facts: &Facts) -> Option<Mechanism> {
    if !facts.engine_ok() {
        None
    } else if facts.podman() {
        facts.cdi.then_some(Mechanism::Cdi)
    } else if facts.toolkit_present() || facts.nvidia_runtime() {
        Some(Mechanism::Gpus)
    } else {
        facts.cdi.then_some(Mechanism::Cdi)
    }
}

/// The toolkit: missing is a failure only when containers have no other way to the GPU.
fn toolkit(facts: &Facts, mechanism_found: bool) -> Finding {
    match (&facts.toolkit, facts.hook) {
        (Some(version), _) => TOOLKIT.ok(format!("NVIDIA Container Toolkit {version} (`nvidia-ctk`)")),
        (None, true) => TOOLKIT.ok("NVIDIA Container Toolkit (`nvidia-container-runtime-hook`)"),
        (None, false) => {
            let status = if mechanism_found { Status::Warn } else { Status::Fail };
            let then = if facts.podman() { GENERATE_CDI } else { CONFIGURE_DOCKER };
            TOOLKIT
                .finding(status, "NVIDIA Container Toolkit not installed (no `nvidia-ctk`)")
                .help(format!("install it ({TOOLKIT_HELP}), then `{then}`"))
        }
    }
}

/// docker's `nvidia` runtime; nothing to say for podman or an engine that did not answer.
fn runtime(facts: &Facts) -> Option<Finding> {
    if facts.podman() || !facts.engine_ok() {
        None
    } else if facts.nvidia_runtime() {
        Some(RUNTIME.ok("`nvidia` runtime registered with docker"))
    } else if facts.toolkit_present() {
        Some(
            RUNTIME
                .warn(
                    "`nvidia` runtime not registered with docker (`--gpus` can still work through the toolkit's hook)",
                )
                .help(CONFIGURE_DOCKER),
        )
    } else if matches!(facts.engine, Engine::Runtimes(_)) {
        Some(RUNTIME.skip("`nvidia` runtime not registered with docker (needs the toolkit first)"))
    } else {
        None
    }
}

/// The CDI specs: none is a failure only when CDI is the way left (podman, or a toolkit whose
/// `--gpus` path is not there); each spec must list every GPU.
fn cdi(facts: &Facts, files: &[CdiFile], gpus: &[Gpu], mechanism_found: bool) -> Vec<Finding> {
    if !files.is_empty() {
        return files.iter().map(|file| cdi_file(file, gpus)).collect();
    }
    let needed = !mechanism_found && (facts.podman() || facts.toolkit_present());
    let status = if needed { Status::Fail } else { Status::Skip };
    let finding = CDI.finding(status, "no CDI spec for nvidia.com/gpu in /etc/cdi or /var/run/cdi");
    vec![if needed || facts.podman() { finding.help(GENERATE_CDI) } else { finding }]
}

/// One CDI spec against the GPUs: a GPU it names neither by index nor by UUID is missing.
fn cdi_file(file: &CdiFile, gpus: &[Gpu]) -> Finding {
    let missing: Vec<String> = gpus
        .iter()
        .filter(|g| {
            !file.devices.contains(&g.index.to_string()) && !g.uuid.as_ref().is_some_and(|u| file.devices.contains(u))
        })
        .map(|g| g.index.to_string())
        .collect();
    if missing.is_empty() {
        return CDI.ok(format!("CDI spec `{}`: devices {}", file.path, file.devices.join(", ")));
    }
    CDI.warn(format!(
        "CDI spec `{}` lacks GPU {} (stale after a driver or hardware change)",
        file.path,
        missing.join(", ")
    ))
    .help(GENERATE_CDI)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_support::gpus;

    fn docker(runtimes: &[&str]) -> Engine {
        Engine::Runtimes(runtimes.iter().map(|r| r.to_string()).collect())
    }

    fn facts(toolkit: Option<&str>, hook: bool, engine: Engine, cdi: bool) -> Facts {
        Facts { toolkit: toolkit.map(str::to_string), hook, engine, cdi }
    }

    fn ran(code: i32, stdout: &str, stderr: &str) -> Outcome {
        Outcome::Ran { code: Some(code), stdout: stdout.into(), stderr: stderr.into() }
    }

    #[test]
    fn the_toolkit_version_reads_and_a_missing_toolkit_has_none() {
        let out = ran(0, include_str!("../../tests/fixtures/nvidia-ctk-version-1.12.0.txt"), "");
        assert_eq!(toolkit_version(&out).as_deref(), Some("1.12.0"));
        assert_eq!(toolkit_version(&ran(0, "something else", "")).as_deref(), Some("unknown version"));
        assert_eq!(toolkit_version(&Outcome::NotFound), None);
    }

    #[test]
    fn docker_answers_with_runtimes_or_is_down() {
        let json = include_str!("../../tests/fixtures/docker-info-runtimes-debian-20.10.json");
        assert!(matches!(engine(&ran(0, json, "")), Engine::Runtimes(list) if !list.is_empty()));
        let down = engine(&ran(1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n"));
        let finding = engine_problem(&down).unwrap();
        assert_eq!(finding.check, "engine");
        assert_eq!(
            finding.parts(),
            (
                Status::Fail,
                "the container engine does not answer: Cannot connect to the Docker daemon at unix:///var/run/docker.sock.",
                Some("start it (`sudo systemctl start docker`) and check with `dpe docker info`")
            )
        );
        assert_eq!(engine_problem(&Engine::Podman), None);
    }

    #[test]
    fn an_unreadable_runtime_list_is_a_warning_not_a_failure() {
        let finding = engine_problem(&Engine::Unreadable("unexpected output".into())).unwrap();
        assert_eq!((finding.check, finding.status, finding.fix), ("runtime", Status::Warn, None));
    }

    #[test]
    fn docker_uses_gpus_with_the_toolkit_or_its_runtime_else_cdi() {
        assert_eq!(mechanism(&facts(Some("1.17.8"), false, docker(&["runc"]), true)), Some(Mechanism::Gpus));
        assert_eq!(mechanism(&facts(None, false, docker(&["nvidia", "runc"]), false)), Some(Mechanism::Gpus));
        assert_eq!(mechanism(&facts(None, false, docker(&["runc"]), true)), Some(Mechanism::Cdi));
        assert_eq!(mechanism(&facts(None, false, docker(&["runc"]), false)), None);
        assert_eq!(mechanism(&facts(Some("1.17.8"), true, Engine::Down("x".into()), true)), None);
    }

    #[test]
    fn podman_uses_only_cdi() {
        assert_eq!(mechanism(&facts(Some("1.17.8"), true, Engine::Podman, false)), None);
        assert_eq!(mechanism(&facts(None, false, Engine::Podman, true)), Some(Mechanism::Cdi));
    }

    #[test]
    fn a_missing_toolkit_fails_only_without_another_way_in() {
        let docker_facts = facts(None, false, docker(&["runc"]), false);
        assert_eq!(
            toolkit(&docker_facts, false).parts(),
            (
                Status::Fail,
                "NVIDIA Container Toolkit not installed (no `nvidia-ctk`)",
                Some("install it (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html), then `sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`")
            )
        );
        assert_eq!(toolkit(&docker_facts, true).status, Status::Warn);
        let podman = toolkit(&facts(None, false, Engine::Podman, false), false);
        assert!(podman.fix.unwrap().ends_with("then `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`"));
    }

    #[test]
    fn the_toolkit_is_found_by_its_cli_or_its_hook() {
        let cli = toolkit(&facts(Some("1.12.0"), false, Engine::Podman, false), false);
        assert_eq!(cli.parts(), (Status::Ok, "NVIDIA Container Toolkit 1.12.0 (`nvidia-ctk`)", None));
        let hook = toolkit(&facts(None, true, Engine::Podman, false), false);
        assert_eq!(hook.parts(), (Status::Ok, "NVIDIA Container Toolkit (`nvidia-container-runtime-hook`)", None));
    }

    #[test]
    fn the_runtime_is_registered_or_advised_or_waits_for_the_toolkit() {
        let registered = runtime(&facts(None, false, docker(&["nvidia"]), false)).unwrap();
        assert_eq!(registered.parts(), (Status::Ok, "`nvidia` runtime registered with docker", None));
        let advised = runtime(&facts(Some("1.12.0"), false, docker(&["runc"]), false)).unwrap();
        assert_eq!(
            advised.parts(),
            (
                Status::Warn,
                "`nvidia` runtime not registered with docker (`--gpus` can still work through the toolkit's hook)",
                Some(CONFIGURE_DOCKER)
            )
        );
        let waiting = runtime(&facts(None, false, docker(&["runc"]), false)).unwrap();
        let needs_toolkit = "`nvidia` runtime not registered with docker (needs the toolkit first)";
        assert_eq!(waiting.parts(), (Status::Skip, needs_toolkit, None));
    }

    #[test]
    fn no_runtime_finding_for_podman_a_down_engine_or_an_unreadable_answer_without_toolkit() {
        assert_eq!(runtime(&facts(Some("1"), true, Engine::Podman, false)), None);
        assert_eq!(runtime(&facts(Some("1"), true, Engine::Down("x".into()), false)), None);
        assert_eq!(runtime(&facts(None, false, Engine::Unreadable("x".into()), false)), None);
    }

    #[test]
    fn no_cdi_spec_fails_only_when_cdi_is_the_way_left() {
        let with_toolkit = facts(Some("1.12.0"), false, docker(&["runc"]), false);
        let needed = &cdi(&with_toolkit, &[], &gpus(&[0]), false)[0];
        assert_eq!((needed.status, needed.fix.as_deref()), (Status::Fail, Some(GENERATE_CDI)));
        assert_eq!(needed.message, "no CDI spec for nvidia.com/gpu in /etc/cdi or /var/run/cdi");
        let not_needed = &cdi(&with_toolkit, &[], &gpus(&[0]), true)[0];
        assert_eq!((not_needed.status, not_needed.fix.as_deref()), (Status::Skip, None));
        // Podman is told how to make one even when it is not the failure.
        let podman = &cdi(&facts(None, false, Engine::Podman, false), &[], &gpus(&[0]), true)[0];
        assert_eq!((podman.status, podman.fix.as_deref()), (Status::Skip, Some(GENERATE_CDI)));
    }

    #[test]
    fn a_cdi_spec_must_name_every_gpu_by_index_or_uuid() {
        let file = |devices: &[&str]| CdiFile {
            path: "/etc/cdi/nvidia.yaml".into(),
            kind: "nvidia.com/gpu".into(),
            devices: devices.iter().map(|d| d.to_string()).collect(),
        };
        let complete = cdi_file(&file(&["0", "GPU-1", "all"]), &gpus(&[0, 1]));
        assert_eq!(complete.parts(), (Status::Ok, "CDI spec `/etc/cdi/nvidia.yaml`: devices 0, GPU-1, all", None));
        let stale = cdi_file(&file(&["0", "all"]), &gpus(&[0, 1, 2]));
        assert_eq!(
            stale.parts(),
            (
                Status::Warn,
                "CDI spec `/etc/cdi/nvidia.yaml` lacks GPU 1, 2 (stale after a driver or hardware change)",
                Some(GENERATE_CDI)
            )
        );
    }

    #[test]
    fn cdi_files_keep_gpu_specs_and_warn_about_broken_ones() {
        let specs = vec![
            (
                PathBuf::from("/etc/cdi/nvidia.yaml"),
                include_str!("../../tests/fixtures/cdi-nvidia-575.64.03.yaml").to_string(),
            ),
            (
                PathBuf::from("/etc/cdi/other.yaml"),
                "cdiVersion: 0.5.0\nkind: vendor.com/fpga\ndevices: []\n".to_string(),
            ),
            (PathBuf::from("/etc/cdi/broken.json"), "{".to_string()),
        ];
        let (files, problems) = cdi_files(&specs);
        assert_eq!(files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["/etc/cdi/nvidia.yaml"]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("CDI spec `/etc/cdi/broken.json` does not parse: "), "{problems:?}");
        assert_eq!((problems[0].status, problems[0].fix.as_deref()), (Status::Warn, Some(GENERATE_CDI)));
    }
}

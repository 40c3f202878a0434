//! The layered GPU check behind `dpe gpu check` and `dpe gpu flags`: the host driver, the
//! container side (toolkit, runtime, CDI), a real smoke-test container, and a project's image
//! against this host. Each layer adds findings (✓/!/✗ with what was found and the fix); a
//! failing layer stops the ones that depend on it.

use crate::compat::{self, CudaFit};
use crate::host::{Host, Outcome};
use crate::parse::{self, Gpu, ProbeFailure, SmiFailure};
use dpe_plugin::config::{GpuDevices, GpuMode};
use serde::Serialize;

/// How a finding came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but something is worth fixing.
    Warn,
    /// Containers cannot use the GPU until this is fixed.
    Fail,
    /// Not checked (an earlier layer failed, or not asked for).
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `driver`, `container`, `probe` or `project`.
    pub layer: &'static str,
    /// A stable name for the check (`nvidia-smi`, `toolkit`, `runtime`, `cdi`, …).
    pub check: &'static str,
    pub status: Status,
    pub message: String,
    /// The exact command or step that fixes it.
    pub fix: Option<String>,
}

/// How containers get the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    /// `docker run --gpus …` (the NVIDIA Container Toolkit's hook or runtime).
    Gpus,
    /// `--device nvidia.com/gpu=…` through a CDI spec.
    Cdi,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Driver {
    pub version: String,
    /// The highest CUDA version the driver supports.
    pub cuda: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CdiFile {
    pub path: String,
    pub kind: String,
    pub devices: Vec<String>,
}

/// Everything the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Whether containers can use the GPU (with the project, when one was checked).
    pub usable: bool,
    pub driver: Option<Driver>,
    pub gpus: Vec<Gpu>,
    pub toolkit: Option<String>,
    pub runtimes: Option<Vec<String>>,
    pub cdi: Vec<CdiFile>,
    pub mechanism: Option<Mechanism>,
    /// Whether a smoke-test container ran and listed the GPUs.
    pub probed: bool,
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, layer: &'static str, check: &'static str, status: Status, message: String, fix: Option<String>) {
        self.findings.push(Finding { layer, check, status, message, fix });
    }

    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status == Status::Fail)
    }
}

/// A project to check against this host.
#[derive(Debug, Clone, Default)]
pub struct ProjectTarget {
    pub name: String,
    pub workspace: Option<String>,
    /// The project's configured image (shorthand expanded), if any.
    pub image: Option<String>,
    /// The project's `gpu` setting: a container of a CPU project is not expected to see a GPU.
    pub gpu: GpuMode,
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run the smoke-test container.
    pub probe: bool,
    /// The smoke-test image; default: the project's image when present, else [`PROBE_IMAGE`].
    pub image: Option<String>,
    /// Which GPUs the containers get.
    pub devices: Option<GpuDevices>,
    /// Whether the engine is podman (no `docker info` runtimes; CDI is its native path).
    pub podman: bool,
    pub project: Option<ProjectTarget>,
    /// Look inside the project's image and container too: the torch build (a few seconds of
    /// `import torch`) and `nvidia-smi` in the running container. `check` does; `flags` does
    /// not, because it runs before every start and the container it would look at is the one
    /// about to be replaced.
    pub deep: bool,
}

/// The smoke-test image when no project image is at hand: any glibc image works, because the
/// toolkit injects `nvidia-smi` and its libraries from the host (NVIDIA's own sample uses
/// `ubuntu`).
pub const PROBE_IMAGE: &str = "ubuntu:24.04";

const DRIVER_HELP: &str = "https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/";
const TOOLKIT_HELP: &str =
    "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html";
const CONFIGURE_DOCKER: &str = "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker";
const GENERATE_CDI: &str = "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml";

impl Report {
    fn empty() -> Report {
        Report {
            usable: false,
            driver: None,
            gpus: Vec::new(),
            toolkit: None,
            runtimes: None,
            cdi: Vec::new(),
            mechanism: None,
            probed: false,
            findings: Vec::new(),
        }
    }
}

/// Only the host driver layer (what `dpe gpu images` needs).
pub fn driver_report(host: &dyn Host) -> Report {
    let mut report = Report::empty();
    driver_layer(host, &mut report);
    report
}

/// Runs the layers `options` asks for.
pub fn run(host: &dyn Host, options: &Options) -> Report {
    let mut report = Report::empty();
    if !driver_layer(host, &mut report) {
        return report;
    }
    let selection_ok = devices_layer(&mut report, options.devices.as_ref());
    let engine_ok = container_layer(host, &mut report, options.podman);
    let mut probe_image = options.image.clone();
    let mut project_image = None;
    if let Some(project) = &options.project {
        project_image = project_image_for(host, project);
        if probe_image.is_none() {
            probe_image = project_image.as_ref().map(|(image, _)| image.clone());
        }
    }
    if options.probe && engine_ok && selection_ok && report.mechanism.is_some() {
        let image = probe_image.unwrap_or_else(|| PROBE_IMAGE.to_string());
        probe_layer(host, &mut report, options, &image);
    } else if !options.probe {
        report.add(
            "probe",
            "smoke-test",
            Status::Skip,
            "smoke test not run (`--probe` starts a short GPU container)".into(),
            None,
        );
    } else {
        report.add(
            "probe",
            "smoke-test",
            Status::Skip,
            "smoke test not run: containers have no way to get the GPU yet".into(),
            None,
        );
    }
    if let Some(project) = &options.project {
        project_layer(host, &mut report, project, project_image, options.deep);
    }
    report.usable = report.mechanism.is_some() && report.failures().next().is_none();
    report
}

/// Layer 1: `nvidia-smi` on the host. Returns whether a driver answered with GPUs.
fn driver_layer(host: &dyn Host, report: &mut Report) -> bool {
    const FIELDS: &str = "--query-gpu=index,name,uuid,memory.total,compute_cap,driver_version";
    let mut outcome = host.program("nvidia-smi", &[FIELDS, "--format=csv,nounits"]);
    if matches!(outcome, Outcome::NotFound) {
        report.add(
            "driver",
            "nvidia-smi",
            Status::Fail,
            "no NVIDIA GPU driver on this host (`nvidia-smi` is not installed)".into(),
            Some(format!(
                "containers here run on the CPU; on a machine with an NVIDIA GPU, install its driver ({DRIVER_HELP}) and run `dpe gpu check` again"
            )),
        );
        return false;
    }
    // Drivers before R510 know no `compute_cap` field; ask again without it.
    if outcome.ok().is_none() && parse::unknown_query_field(&outcome.text()) {
        outcome = host.program(
            "nvidia-smi",
            &["--query-gpu=index,name,uuid,memory.total,driver_version", "--format=csv,nounits"],
        );
    }
    let Some(stdout) = outcome.ok() else {
        let text = outcome.text();
        let (message, fix) = match parse::smi_failure(&text) {
            SmiFailure::DriverNotLoaded => (
                "the NVIDIA driver is installed but not loaded (`nvidia-smi` cannot reach it)".to_string(),
                "load it with `sudo modprobe nvidia`; after a kernel update, reboot (or reinstall the driver so its module is built for the running kernel)".to_string(),
            ),
            SmiFailure::VersionMismatch => (
                "the NVIDIA driver was updated but the old kernel module is still loaded (driver/library version mismatch)".to_string(),
                "reboot the host so the new driver module loads".to_string(),
            ),
            SmiFailure::NoDevices => (
                "the NVIDIA driver is loaded but finds no GPU".to_string(),
                "check that the GPU is seated and visible (`lspci | grep -i nvidia`) and that the driver supports it".to_string(),
            ),
            SmiFailure::NvmlUnknownError | SmiFailure::Other => (
                format!("`nvidia-smi` failed: {}", parse::last_line(&text)),
                format!("run `nvidia-smi` to see the whole error; reinstall the driver if it persists ({DRIVER_HELP})"),
            ),
        };
        report.add("driver", "nvidia-smi", Status::Fail, message, Some(fix));
        return false;
    };
    let query = match parse::gpu_query_csv(stdout) {
        Ok(query) => query,
        Err(message) => {
            report.add(
                "driver",
                "nvidia-smi",
                Status::Fail,
                message,
                Some("run `nvidia-smi` to see what it reports".into()),
            );
            return false;
        }
    };
    if query.gpus.is_empty() {
        report.add(
            "driver",
            "nvidia-smi",
            Status::Fail,
            "the NVIDIA driver is loaded but lists no GPU".into(),
            Some("check that the GPU is visible (`lspci | grep -i nvidia`)".into()),
        );
        return false;
    }
    // The maximum CUDA version is printed only in the plain table's header.
    let (header_driver, header_cuda) =
        host.program("nvidia-smi", &[]).ok().map(parse::smi_header).unwrap_or((None, None));
    let version = query.driver_version.clone().or(header_driver).unwrap_or_else(|| "unknown".into());
    let cuda = header_cuda.or_else(|| compat::max_cuda_for_driver(&version).map(|(a, b)| format!("{a}.{b}")));
    let cuda_text = cuda.as_deref().map(|c| format!(", CUDA ≤ {c}")).unwrap_or_default();
    report.add("driver", "nvidia-smi", Status::Ok, format!("NVIDIA driver {version}{cuda_text}"), None);
    for gpu in &query.gpus {
        report.add("driver", "gpu", Status::Ok, describe_gpu(gpu), None);
    }
    report.driver = Some(Driver { version, cuda });
    report.gpus = query.gpus;
    true
}

pub fn describe_gpu(gpu: &Gpu) -> String {
    let mut text = format!("GPU {}: {}", gpu.index, gpu.name);
    if let Some(mib) = gpu.memory_mib {
        text.push_str(&format!(", {:.0} GiB", mib as f64 / 1024.0));
    }
    if let Some((major, minor)) = gpu.compute_capability {
        text.push_str(&format!(", compute capability {major}.{minor}"));
    }
    text
}

/// Checks `gpu_devices` against the GPUs present.
fn devices_layer(report: &mut Report, devices: Option<&GpuDevices>) -> bool {
    let count = report.gpus.len();
    let problem = match devices {
        None | Some(GpuDevices::All) => None,
        Some(GpuDevices::Count(0)) => Some("`gpu_devices = 0` asks for no GPU".to_string()),
        Some(GpuDevices::Count(n)) if *n as usize > count => {
            Some(format!("`gpu_devices = {n}` asks for {n} GPUs but this host has {count}"))
        }
        Some(GpuDevices::Indices(list)) if list.is_empty() => Some("`gpu_devices = []` names no GPU".to_string()),
        Some(GpuDevices::Indices(list)) => list
            .iter()
            .find(|i| !report.gpus.iter().any(|g| g.index == **i))
            .map(|i| format!("`gpu_devices` names GPU {i} but this host's GPUs are {}", indices(&report.gpus))),
        Some(GpuDevices::Count(_)) => None,
    };
    if let Some(message) = problem {
        report.add(
            "driver",
            "gpu_devices",
            Status::Fail,
            message,
            Some(format!(
                "set `gpu_devices` in the project's dpe.toml to \"all\", a count up to {count}, or indices from {}",
                indices(&report.gpus)
            )),
        );
        return false;
    }
    true
}

fn indices(gpus: &[Gpu]) -> String {
    gpus.iter().map(|g| g.index.to_string()).collect::<Vec<_>>().join(", ")
}

/// Layer 2: toolkit, runtime, CDI. Returns whether the engine answered.
fn container_layer(host: &dyn Host, report: &mut Report, podman: bool) -> bool {
    let ctk = host.program("nvidia-ctk", &["--version"]);
    report.toolkit = ctk.ok().map(|out| parse::ctk_version(out).unwrap_or_else(|| "unknown version".into()));
    let hook = host.has_program("nvidia-container-runtime-hook");

    for (path, text) in host.cdi_specs() {
        match parse::cdi_spec(&text) {
            Ok(spec) if spec.kind == "nvidia.com/gpu" => {
                report.cdi.push(CdiFile { path: path.display().to_string(), kind: spec.kind, devices: spec.devices })
            }
            Ok(_) => {}
            Err(problem) => report.add(
                "container",
                "cdi",
                Status::Warn,
                format!("CDI spec `{}` does not parse: {problem}", path.display()),
                Some(GENERATE_CDI.into()),
            ),
        }
    }

    let mut engine_ok = true;
    let mut nvidia_runtime = false;
    if !podman {
        match host.docker(&["info", "--format", "{{json .Runtimes}}"]) {
            outcome @ Outcome::Ran { code: Some(0), .. } => match parse::docker_runtimes(outcome.ok().unwrap_or("")) {
                Ok(runtimes) => {
                    nvidia_runtime = runtimes.iter().any(|r| r == "nvidia");
                    report.runtimes = Some(runtimes);
                }
                Err(problem) => report.add("container", "runtime", Status::Warn, problem, None),
            },
            outcome => {
                engine_ok = false;
                report.add(
                    "container",
                    "engine",
                    Status::Fail,
                    format!("the container engine does not answer: {}", parse::last_line(&outcome.text())),
                    Some("start it (`sudo systemctl start docker`) and check with `dpe docker info`".into()),
                );
            }
        }
    }

    let toolkit_present = report.toolkit.is_some() || hook;
    report.mechanism = if podman {
        (!report.cdi.is_empty()).then_some(Mechanism::Cdi)
    } else if toolkit_present || nvidia_runtime {
        Some(Mechanism::Gpus)
    } else if !report.cdi.is_empty() {
        Some(Mechanism::Cdi)
    } else {
        None
    };
    if !engine_ok {
        report.mechanism = None;
    }

    match (&report.toolkit, hook) {
        (Some(version), _) => report.add(
            "container",
            "toolkit",
            Status::Ok,
            format!("NVIDIA Container Toolkit {version} (`nvidia-ctk`)"),
            None,
        ),
        (None, true) => report.add(
            "container",
            "toolkit",
            Status::Ok,
            "NVIDIA Container Toolkit (`nvidia-container-runtime-hook`)".into(),
            None,
        ),
        (None, false) => report.add(
            "container",
            "toolkit",
            if report.mechanism.is_some() { Status::Warn } else { Status::Fail },
            "NVIDIA Container Toolkit not installed (no `nvidia-ctk`)".into(),
            Some(if podman {
                format!("install it ({TOOLKIT_HELP}), then `{GENERATE_CDI}`")
            } else {
                format!("install it ({TOOLKIT_HELP}), then `{CONFIGURE_DOCKER}`")
            }),
        ),
    }

    if !podman && engine_ok {
        if nvidia_runtime {
            report.add("container", "runtime", Status::Ok, "`nvidia` runtime registered with docker".into(), None);
        } else if toolkit_present {
            report.add(
                "container",
                "runtime",
                Status::Warn,
                "`nvidia` runtime not registered with docker (`--gpus` can still work through the toolkit's hook)"
                    .into(),
                Some(CONFIGURE_DOCKER.into()),
            );
        } else if report.runtimes.is_some() {
            report.add(
                "container",
                "runtime",
                Status::Skip,
                "`nvidia` runtime not registered with docker (needs the toolkit first)".into(),
                None,
            );
        }
    }

    if report.cdi.is_empty() {
        let needed = report.mechanism.is_none() && (podman || toolkit_present);
        report.add(
            "container",
            "cdi",
            if needed { Status::Fail } else { Status::Skip },
            "no CDI spec for nvidia.com/gpu in /etc/cdi or /var/run/cdi".into(),
            (needed || podman).then(|| GENERATE_CDI.to_string()),
        );
    } else {
        let files: Vec<CdiFile> = report.cdi.clone();
        for file in files {
            let missing: Vec<String> = report
                .gpus
                .iter()
                .filter(|g| {
                    !file.devices.contains(&g.index.to_string())
                        && !g.uuid.as_ref().is_some_and(|u| file.devices.contains(u))
                })
                .map(|g| g.index.to_string())
                .collect();
            if missing.is_empty() {
                report.add(
                    "container",
                    "cdi",
                    Status::Ok,
                    format!("CDI spec `{}`: devices {}", file.path, file.devices.join(", ")),
                    None,
                );
            } else {
                report.add(
                    "container",
                    "cdi",
                    Status::Warn,
                    format!(
                        "CDI spec `{}` lacks GPU {} (stale after a driver or hardware change)",
                        file.path,
                        missing.join(", ")
                    ),
                    Some(GENERATE_CDI.into()),
                );
            }
        }
    }
    engine_ok
}

/// The engine flags that give a container the selected GPUs.
pub fn docker_args(mechanism: Mechanism, devices: Option<&GpuDevices>, gpus: &[Gpu]) -> Vec<String> {
    match mechanism {
        Mechanism::Gpus => {
            let value = match devices {
                None | Some(GpuDevices::All) => "all".to_string(),
                Some(GpuDevices::Count(n)) => n.to_string(),
                // docker reads `--gpus` as CSV, so a list of devices needs literal quotes.
                Some(GpuDevices::Indices(list)) if list.len() == 1 => format!("device={}", list[0]),
                Some(GpuDevices::Indices(list)) => format!("\"device={}\"", join(list)),
            };
            vec!["--gpus".into(), value]
        }
        Mechanism::Cdi => {
            cdi_names(devices, gpus).into_iter().flat_map(|name| ["--device".to_string(), name]).collect()
        }
    }
}

fn cdi_names(devices: Option<&GpuDevices>, gpus: &[Gpu]) -> Vec<String> {
    let names: Vec<String> = match devices {
        None | Some(GpuDevices::All) => vec!["all".into()],
        Some(GpuDevices::Count(n)) => gpus.iter().take(*n as usize).map(|g| g.index.to_string()).collect(),
        Some(GpuDevices::Indices(list)) => list.iter().map(u32::to_string).collect(),
    };
    names.into_iter().map(|n| format!("nvidia.com/gpu={n}")).collect()
}

/// The Compose `deploy.resources.reservations.devices` entry for the same selection.
pub fn compose_device(mechanism: Mechanism, devices: Option<&GpuDevices>, gpus: &[Gpu]) -> serde_json::Value {
    use serde_json::json;
    match mechanism {
        Mechanism::Gpus => match devices {
            None | Some(GpuDevices::All) => json!({"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}),
            Some(GpuDevices::Count(n)) => json!({"driver": "nvidia", "count": n, "capabilities": ["gpu"]}),
            Some(GpuDevices::Indices(list)) => {
                let ids: Vec<String> = list.iter().map(u32::to_string).collect();
                json!({"driver": "nvidia", "device_ids": ids, "capabilities": ["gpu"]})
            }
        },
        Mechanism::Cdi => json!({"driver": "cdi", "device_ids": cdi_names(devices, gpus), "capabilities": ["gpu"]}),
    }
}

fn join(list: &[u32]) -> String {
    list.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Layer 3: a real container with the GPU flags lists the GPUs from inside.
fn probe_layer(host: &dyn Host, report: &mut Report, options: &Options, image: &str) {
    let mechanism = report.mechanism.expect("probe runs with a mechanism");
    let flags = docker_args(mechanism, options.devices.as_ref(), &report.gpus);
    let mut args: Vec<&str> = vec!["run", "--rm", "--network", "none"];
    args.extend(flags.iter().map(String::as_str));
    args.extend(["--entrypoint", "nvidia-smi", image, "-L"]);
    let outcome = host.docker(&args);
    let shown = format!("`dpe docker run --rm {} {image} nvidia-smi -L`", flags.join(" "));
    if let Some(stdout) = outcome.ok() {
        let listed = parse::smi_list(stdout);
        if !listed.is_empty() {
            let names: Vec<String> = listed.iter().map(|(i, n)| format!("{i}: {n}")).collect();
            report.probed = true;
            report.add(
                "probe",
                "smoke-test",
                Status::Ok,
                format!("a container sees {} GPU(s): {}", listed.len(), names.join("; ")),
                None,
            );
            return;
        }
    }
    let text = outcome.text();
    let (status, message, fix) = match parse::probe_failure(&text) {
        ProbeFailure::NoDeviceDriver => (
            Status::Fail,
            "docker cannot give containers a GPU (could not select device driver \"\" with capabilities: [[gpu]])".to_string(),
            format!("install the NVIDIA Container Toolkit ({TOOLKIT_HELP}) and run `{CONFIGURE_DOCKER}`"),
        ),
        ProbeFailure::RuntimeUnknown => (Status::Fail, "docker does not know the `nvidia` runtime".into(), CONFIGURE_DOCKER.into()),
        ProbeFailure::CdiUnresolvable => (
            Status::Fail,
            format!("the CDI spec does not provide {}", cdi_names(options.devices.as_ref(), &report.gpus).join(", ")),
            GENERATE_CDI.into(),
        ),
        ProbeFailure::CdiUnsupported => (
            Status::Fail,
            "the engine does not resolve CDI device names (CDI support is off or too old)".into(),
            "use Docker 28.2 or later (CDI on by default), or enable it with `\"features\": {\"cdi\": true}` in /etc/docker/daemon.json and restart docker; or install the NVIDIA Container Toolkit for `--gpus`".into(),
        ),
        ProbeFailure::CudaRequirement => (
            Status::Fail,
            format!("the driver is too old for image `{image}`: {}", parse::last_line(&text)),
            "update the NVIDIA driver, or choose an image built for an older CUDA (`dpe gpu images`)".into(),
        ),
        ProbeFailure::NvmlUnknownError => (
            Status::Fail,
            "the container cannot reach the GPU (Failed to initialize NVML: Unknown Error)".into(),
            "see https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/troubleshooting.html; with systemd cgroups run `sudo nvidia-ctk system create-dev-char-symlinks --create-all`".into(),
        ),
        ProbeFailure::DriverNotLoaded => (
            Status::Fail,
            "the toolkit cannot reach the NVIDIA driver from the container".into(),
            "load the driver (`sudo modprobe nvidia`) or reboot".into(),
        ),
        ProbeFailure::ImageUnavailable => (
            Status::Warn,
            format!("smoke test not run: image `{image}` is not available here ({})", parse::last_line(&text)),
            format!("`dpe docker pull {image}`, or pass `--image IMAGE` naming an image this host has"),
        ),
        ProbeFailure::NoSmiInContainer => (
            Status::Fail,
            format!("the GPU was not injected into the container: `nvidia-smi` is missing in `{image}`"),
            format!("check the toolkit's configuration (`{CONFIGURE_DOCKER}`); for CDI, `{GENERATE_CDI}`"),
        ),
        ProbeFailure::Other => (
            Status::Fail,
            format!("the smoke test failed: {}", parse::last_line(&text)),
            format!("run {shown} to see the whole error"),
        ),
    };
    report.add("probe", "smoke-test", status, message, Some(fix));
}

/// The project's image to check: the image of its running container, else its configured image
/// when the engine has it. Also returns the running container's name.
fn project_image_for(host: &dyn Host, project: &ProjectTarget) -> Option<(String, Option<String>)> {
    if let Some((container, image)) = running_container(host, project) {
        return Some((image, Some(container)));
    }
    let image = project.image.clone()?;
    host.docker(&["image", "inspect", "--format", "{{.Id}}", &image]).ok().map(|_| (image, None))
}

fn running_container(host: &dyn Host, project: &ProjectTarget) -> Option<(String, String)> {
    let project_filter = format!("label=dpe.project={}", project.name);
    let mut args = vec!["ps", "--filter", &project_filter];
    let workspace_filter;
    if let Some(workspace) = &project.workspace {
        workspace_filter = format!("label=dpe.workspace={workspace}");
        args.extend(["--filter", &workspace_filter]);
    }
    args.extend(["--format", "{{.Names}}\t{{.Image}}"]);
    let outcome = host.docker(&args);
    let line = outcome.ok()?.lines().find(|l| !l.trim().is_empty())?.to_string();
    let (name, image) = line.split_once('\t')?;
    Some((name.to_string(), image.to_string()))
}

/// The script the torch probe runs inside the project image: what torch was built for, without
/// needing a GPU (`_cuda_getArchFlags` reads the compiled list).
pub const TORCH_PROBE: &str = "import json\ntry:\n    import torch\nexcept Exception:\n    print('null')\n    raise SystemExit(0)\nflags = getattr(torch._C, '_cuda_getArchFlags', None)\nprint(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, 'arch': flags() if flags else None}))\n";

/// Layer 4: the project's image against this host, and its running container.
fn project_layer(
    host: &dyn Host,
    report: &mut Report,
    project: &ProjectTarget,
    image: Option<(String, Option<String>)>,
    deep: bool,
) {
    let Some((image, container)) = image else {
        let what = project
            .image
            .as_deref()
            .map(|i| format!("image `{i}` is not on this host yet"))
            .unwrap_or_else(|| "its image is not built yet".into());
        report.add(
            "project",
            "image",
            Status::Skip,
            format!("project `{}`: {what}; the image checks run once it exists", project.name),
            Some(format!(
                "start the project once (e.g. `dpe jupyter {}`), then run `dpe gpu check {}`",
                project.name, project.name
            )),
        );
        return;
    };
    let Some(driver) = report.driver.clone() else { return };
    let driver_max = driver.cuda.as_deref().and_then(compat::cuda_version);

    // The CUDA the image needs: declared in its environment, promised by a Docker Stacks tag,
    // or the one its torch was built with.
    let env = host
        .docker(&["image", "inspect", "--format", "{{json .Config.Env}}", &image])
        .ok()
        .and_then(|out| parse::image_env_cuda(out).ok())
        .unwrap_or_default();
    let torch = if deep {
        host.docker(&["run", "--rm", "--network", "none", "--entrypoint", "python3", &image, "-c", TORCH_PROBE])
            .ok()
            .and_then(|out| parse::torch_build(out).ok())
    } else {
        None
    };

    let mut needs: Vec<((u32, u32), bool, String)> = Vec::new();
    if let Some(required) = env.required.as_deref().and_then(compat::cuda_version) {
        needs.push((
            required,
            !env.require_disabled,
            format!("NVIDIA_REQUIRE_CUDA cuda>={}.{}", required.0, required.1),
        ));
    } else if let Some(version) = env.cuda_version.as_deref().and_then(compat::cuda_version) {
        needs.push((version, false, format!("CUDA_VERSION {}", env.cuda_version.as_deref().unwrap_or(""))));
    }
    if let Some(cuda) = torch.as_ref().and_then(|t| t.cuda.as_deref()).and_then(compat::cuda_version) {
        needs.push((cuda, false, format!("torch {}", torch.as_ref().map(|t| t.torch.as_str()).unwrap_or(""))));
    } else if let Some(tag) = compat::stack_tag_cuda(&image) {
        needs.push((tag, false, "its Docker Stacks tag".to_string()));
    }

    if needs.is_empty() {
        report.add(
            "project",
            "image-cuda",
            Status::Skip,
            format!("image `{image}` declares no CUDA version and has no CUDA torch"),
            None,
        );
    }
    for (version, strict, source) in needs {
        let Some(max) = driver_max else {
            report.add(
                "project",
                "image-cuda",
                Status::Skip,
                format!(
                    "image `{image}` needs CUDA {}.{} ({source}); the driver's CUDA version is unknown",
                    version.0, version.1
                ),
                None,
            );
            continue;
        };
        match compat::cuda_fit(version, &driver.version, max, strict) {
            CudaFit::Direct => report.add("project", "image-cuda", Status::Ok, format!("image `{image}` needs CUDA {}.{} ({source}); the driver supports up to {}.{}", version.0, version.1, max.0, max.1), None),
            CudaFit::MinorCompat => report.add("project", "image-cuda", Status::Ok, format!("image `{image}` needs CUDA {}.{} ({source}); driver {} (CUDA {}.{}) runs it through CUDA minor version compatibility", version.0, version.1, driver.version, max.0, max.1), None),
            CudaFit::TooOld { needs } => report.add(
                "project",
                "image-cuda",
                Status::Fail,
                format!("image `{image}` needs CUDA {}.{} ({source}) but driver {} supports up to CUDA {}.{}", version.0, version.1, driver.version, max.0, max.1),
                Some(format!(
                    "update the NVIDIA driver{} ({DRIVER_HELP}), or use an image built for CUDA ≤ {}.{} (`dpe gpu images` lists them)",
                    needs.map(|n| format!(" to {n} or newer")).unwrap_or_default(),
                    max.0,
                    max.1
                )),
            ),
        }
    }

    match &torch {
        Some(build) if build.cuda.is_none() => report.add(
            "project",
            "torch",
            Status::Fail,
            format!("torch {} in `{image}` is a CPU-only build: it cannot use the GPU", build.torch),
            Some("use a CUDA build, e.g. `image = \"quay.io/jupyter/pytorch-notebook:cuda12-latest\"` (see `dpe gpu images`), or `pip install torch --index-url https://download.pytorch.org/whl/cu128`".into()),
        ),
        Some(build) => {
            let arches = parse::torch_arches(build.arch.as_deref().unwrap_or(""));
            for gpu in &report.gpus.clone() {
                let Some(cap) = gpu.compute_capability else { continue };
                if arches.is_empty() {
                    continue;
                }
                if parse::arch_supports(&arches, cap) {
                    report.add("project", "torch", Status::Ok, format!("torch {} has kernels for GPU {} (sm_{}{})", build.torch, gpu.index, cap.0, cap.1), None);
                } else {
                    report.add(
                        "project",
                        "torch",
                        Status::Fail,
                        format!(
                            "torch {} has no kernels for GPU {} {} (sm_{}{}); it was built for {}",
                            build.torch, gpu.index, gpu.name, cap.0, cap.1, build.arch.as_deref().unwrap_or("")
                        ),
                        Some(format!("install a torch build that includes sm_{}{} (newer GPUs need a newer CUDA build, e.g. the `cuda13-` pytorch-notebook image or `--index-url https://download.pytorch.org/whl/cu130`)", cap.0, cap.1)),
                    );
                }
            }
        }
        None => {}
    }

    if let Some(container) = container.filter(|_| deep) {
        let outcome = host.docker(&["exec", &container, "nvidia-smi", "-L"]);
        let listed = outcome.ok().map(parse::smi_list).unwrap_or_default();
        let text = outcome.text();
        if !listed.is_empty() {
            report.add(
                "project",
                "container",
                Status::Ok,
                format!("running container `{container}` sees {} GPU(s)", listed.len()),
                None,
            );
        } else if parse::smi_failure(&text) == SmiFailure::NvmlUnknownError {
            report.add(
                "project",
                "container",
                Status::Fail,
                format!("running container `{container}` lost its GPU (Failed to initialize NVML: Unknown Error)"),
                Some(format!(
                    "recreate the container: `dpe docker rm -f {container}`, then start the project again; to stop it recurring see https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/troubleshooting.html"
                )),
            );
        } else if project.gpu == GpuMode::Off {
            report.add(
                "project",
                "container",
                Status::Skip,
                format!("running container `{container}` has no GPU (the project has `gpu = \"off\"`)"),
                None,
            );
        } else {
            report.add(
                "project",
                "container",
                Status::Fail,
                format!("running container `{container}` has no GPU access ({})", parse::last_line(&text)),
                Some(format!("it was started without GPU flags: set `gpu = \"required\"` or `\"auto\"` in the project's dpe.toml and recreate it (`dpe docker rm -f {container}`, then start the project again)")),
            );
        }
    }
}

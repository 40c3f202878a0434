//! The layered GPU check behind `dpe gpu check` and `dpe gpu flags`: the host driver, the
//! container side (toolkit, runtime, CDI), a real smoke-test container, and a project's image
//! against this host. Each layer adds findings (✓/!/✗ with what was found and the fix); a
//! failing layer stops the ones that depend on it.
//!
//! Each layer lives in its own file under `check/`: it gathers its facts through [`Host`], then
//! hands them to one small pure function per check that returns the [`Finding`]. Findings are
//! made in one line from the check's `Check` constant (`NVIDIA_SMI.fail(message).help(fix)`),
//! so the checks are unit-tested on plain values at the bottom of each file.

mod container;
mod devices;
mod driver;
mod probe;
mod project;

pub use devices::{compose_device, docker_args};
pub use driver::describe_gpu;
pub use project::TORCH_PROBE;

use crate::host::Host;
use crate::parse::Gpu;
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
    /// The exact command or step that fixes it: the finding's `help:` line (`fix` in `--json`).
    pub fix: Option<String>,
}

impl Finding {
    /// The same finding with the step that fixes it (shown as its `help:` line).
    fn help(self, fix: impl Into<String>) -> Finding {
        Finding { fix: Some(fix.into()), ..self }
    }
}

/// One check's place in the report: its layer and its stable name. Each check is a constant in
/// its layer's file, and makes its findings in one call.
#[derive(Debug, Clone, Copy)]
struct Check {
    layer: &'static str,
    name: &'static str,
}

impl Check {
    const fn new(layer: &'static str, name: &'static str) -> Check {
        Check { layer, name }
    }

    fn finding(self, status: Status, message: impl Into<String>) -> Finding {
        Finding { layer: self.layer, check: self.name, status, message: message.into(), fix: None }
    }

    fn ok(self, message: impl Into<String>) -> Finding {
        self.finding(Status::Ok, message)
    }

    fn warn(self, message: impl Into<String>) -> Finding {
        self.finding(Status::Warn, message)
    }

    fn fail(self, message: impl Into<String>) -> Finding {
        self.finding(Status::Fail, message)
    }

    fn skip(self, message: impl Into<String>) -> Finding {
        self.finding(Status::Skip, message)
    }
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

/// Only the host driver layer (what `dpe gpu images` needs).
pub fn driver_report(host: &dyn Host) -> Report {
    let mut report = Report::default();
    driver::layer(host, &mut report);
    report
}

/// Runs the layers `options` asks for.
pub fn run(host: &dyn Host, options: &Options) -> Report {
    let mut report = Report::default();
    if !driver::layer(host, &mut report) {
        return report;
    }
    let selection_ok = devices::layer(&mut report, options.devices.as_ref());
    let engine_ok = container::layer(host, &mut report, options.podman);
    let project_image = options.project.as_ref().and_then(|project| project::image_for(host, project));
    let probe_image = options.image.clone().or_else(|| project_image.as_ref().map(|(image, _)| image.clone()));
    if options.probe && engine_ok && selection_ok && report.mechanism.is_some() {
        let image = probe_image.as_deref().unwrap_or(PROBE_IMAGE);
        probe::layer(host, &mut report, options.devices.as_ref(), image);
    } else {
        report.findings.push(probe::not_run(options.probe));
    }
    if let Some(project) = &options.project {
        project::layer(host, &mut report, project, project_image, options.deep);
    }
    report.usable = report.mechanism.is_some() && report.failures().next().is_none();
    report
}

/// What the layers' unit tests share.
#[cfg(test)]
mod test_support {
    use super::{Finding, Status};
    use crate::parse::Gpu;

    /// A GPU as the driver layer reports it.
    pub fn gpu(index: u32, name: &str, compute_capability: Option<(u32, u32)>) -> Gpu {
        Gpu { index, name: name.into(), uuid: Some(format!("GPU-{index}")), memory_mib: None, compute_capability }
    }

    /// GPUs of compute capability 8.6 with these indices.
    pub fn gpus(indices: &[u32]) -> Vec<Gpu> {
        indices.iter().map(|&index| gpu(index, &format!("NVIDIA A10 #{index}"), Some((8, 6)))).collect()
    }

    impl Finding {
        /// The status, message and fix, to compare a whole finding at once.
        pub fn parts(&self) -> (Status, &str, Option<&str>) {
            (self.status, &self.message, self.fix.as_deref())
        }
    }
}

//! Layer 4, a project against this host: the CUDA its image needs against the driver, the
//! GPUs its torch has kernels for, and whether its running container still sees the GPU.
//! [`layer`] asks the engine; each check below reads only what it was told.

use super::{Check, Driver, Finding, ProjectTarget, Report, DRIVER_HELP};
use crate::compat::{self, CudaFit};
use crate::host::{Host, Outcome};
use crate::parse::{self, Gpu, ImageCuda, SmiFailure, TorchBuild};
use dpe_plugin::config::GpuMode;

const IMAGE: Check = Check::new("project", "image");
const IMAGE_CUDA: Check = Check::new("project", "image-cuda");
const TORCH: Check = Check::new("project", "torch");
const CONTAINER: Check = Check::new("project", "container");

/// The script the torch probe runs inside the project image: what torch was built for, without
/// needing a GPU (`_cuda_getArchFlags` reads the compiled list).
pub const TORCH_PROBE: &str = "import json\ntry:\n    import torch\nexcept Exception:\n    print('null')\n    raise SystemExit(0)\nflags = getattr(torch._C, '_cuda_getArchFlags', None)\nprint(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, 'arch': flags() if flags else None}))\n";

/// A CUDA version an image needs, and who says so.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CudaNeed {
    version: (u32, u32),
    /// The toolkit refuses to start the container on an older driver (`NVIDIA_REQUIRE_CUDA`).
    strict: bool,
    /// Where the need comes from, as the message names it.
    source: String,
}

/// Checks the project's image (`image`: the image and its running container, when one runs)
/// against the driver; `deep` also looks at its torch build and its running container.
pub(super) fn layer(
    host: &dyn Host,
    report: &mut Report,
    project: &ProjectTarget,
    image: Option<(String, Option<String>)>,
    deep: bool,
) {
    let Some((image, container)) = image else {
        report.findings.push(image_missing(project));
        return;
    };
    let Some(driver) = report.driver.clone() else { return };
    let env = image_env(host, &image);
    let torch = if deep { torch_build(host, &image) } else { None };
    let needs = cuda_needs(&env, torch.as_ref(), &image);
    if needs.is_empty() {
        report
            .findings
            .push(IMAGE_CUDA.skip(format!("image `{image}` declares no CUDA version and has no CUDA torch")));
    }
    report.findings.extend(needs.iter().map(|need| image_cuda(&image, need, &driver)));
    if let Some(build) = &torch {
        report.findings.extend(torch_findings(&image, build, &report.gpus));
    }
    if let Some(container) = container.filter(|_| deep) {
        let outcome = host.docker(&["exec", &container, "nvidia-smi", "-L"]);
        report.findings.push(running_container(&container, &outcome, project.gpu));
    }
}

/// The project's image to check: the image of its running container, else its configured image
/// when the engine has it. Also returns the running container's name.
pub(super) fn image_for(host: &dyn Host, project: &ProjectTarget) -> Option<(String, Option<String>)> {
    if let Some((container, image)) = running(host, project) {
        return Some((image, Some(container)));
    }
    let image = project.image.clone()?;
    host.docker(&["image", "inspect", "--format", "{{.Id}}", &image]).ok().map(|_| (image, None))
}

/// The project's running container and its image, found by dpe's labels.
fn running(host: &dyn Host, project: &ProjectTarget) -> Option<(String, String)> {
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

/// The CUDA the image's environment declares (nothing when it cannot be read).
fn image_env(host: &dyn Host, image: &str) -> ImageCuda {
    host.docker(&["image", "inspect", "--format", "{{json .Config.Env}}", image])
        .ok()
        .and_then(|out| parse::image_env_cuda(out).ok())
        .unwrap_or_default()
}

/// What the image's torch was built for (a few seconds of `import torch`).
fn torch_build(host: &dyn Host, image: &str) -> Option<TorchBuild> {
    host.docker(&["run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", TORCH_PROBE])
        .ok()
        .and_then(|out| parse::torch_build(out).ok())
}

fn image_missing(project: &ProjectTarget) -> Finding {
    let what = project
        .image
        .as_deref()
        .map(|i| format!("image `{i}` is not on this host yet"))
        .unwrap_or_else(|| "its image is not built yet".into());
    let name = &project.name;
    IMAGE
        .skip(format!("project `{name}`: {what}; the image checks run once it exists"))
        .help(format!("start the project once (e.g. `dpe jupyter {name}`), then run `dpe gpu check {name}`"))
}

/// The CUDA the image needs: declared in its environment, and the one its torch was built with
/// or, without torch, the one a Docker Stacks tag promises.
fn cuda_needs(env: &ImageCuda, torch: Option<&TorchBuild>, image: &str) -> Vec<CudaNeed> {
    let need = |version, strict, source: String| CudaNeed { version, strict, source };
    let mut needs = Vec::new();
    if let Some(required) = env.required.as_deref().and_then(compat::cuda_version) {
        let source = format!("NVIDIA_REQUIRE_CUDA cuda>={}.{}", required.0, required.1);
        needs.push(need(required, !env.require_disabled, source));
    } else if let Some(declared) = env.cuda_version.as_deref() {
        if let Some(version) = compat::cuda_version(declared) {
            needs.push(need(version, false, format!("CUDA_VERSION {declared}")));
        }
    }
    if let Some((build, cuda)) = torch.and_then(|t| Some((t, compat::cuda_version(t.cuda.as_deref()?)?))) {
        needs.push(need(cuda, false, format!("torch {}", build.torch)));
    } else if let Some(tag) = compat::stack_tag_cuda(image) {
        needs.push(need(tag, false, "its Docker Stacks tag".to_string()));
    }
    needs
}

/// One CUDA need against the driver: directly, through minor version compatibility, or not.
fn image_cuda(image: &str, need: &CudaNeed, driver: &Driver) -> Finding {
    let ((major, minor), source) = (need.version, &need.source);
    let needs = format!("image `{image}` needs CUDA {major}.{minor} ({source})");
    let Some(max) = driver.cuda.as_deref().and_then(compat::cuda_version) else {
        return IMAGE_CUDA.skip(format!("{needs}; the driver's CUDA version is unknown"));
    };
    let (version, (max_major, max_minor)) = (&driver.version, max);
    match compat::cuda_fit(need.version, version, max, need.strict) {
        CudaFit::Direct => IMAGE_CUDA.ok(format!("{needs}; the driver supports up to {max_major}.{max_minor}")),
        CudaFit::MinorCompat => IMAGE_CUDA.ok(format!(
            "{needs}; driver {version} (CUDA {max_major}.{max_minor}) runs it through CUDA minor version compatibility"
        )),
        CudaFit::TooOld { needs: newer } => {
            let to = newer.map(|n| format!(" to {n} or newer")).unwrap_or_default();
            IMAGE_CUDA
                .fail(format!("{needs} but driver {version} supports up to CUDA {max_major}.{max_minor}"))
                .help(format!("update the NVIDIA driver{to} ({DRIVER_HELP}), or use an image built for CUDA ≤ {max_major}.{max_minor} (`dpe gpu images` lists them)"))
        }
    }
}

/// The image's torch: a CPU-only build fails; a CUDA build is checked against each GPU whose
/// compute capability is known (when its architectures are).
fn torch_findings(image: &str, build: &TorchBuild, gpus: &[Gpu]) -> Vec<Finding> {
    if build.cuda.is_none() {
        return vec![TORCH
            .fail(format!("torch {} in `{image}` is a CPU-only build: it cannot use the GPU", build.torch))
            .help("use a CUDA build, e.g. `image = \"quay.io/jupyter/pytorch-notebook:cuda12-latest\"` (see `dpe gpu images`), or `pip install torch --index-url https://download.pytorch.org/whl/cu128`")];
    }
    gpus.iter().filter_map(|gpu| torch_on_gpu(build, gpu)).collect()
}

/// Whether torch has kernels for one GPU; nothing to say when either side is unknown.
fn torch_on_gpu(build: &TorchBuild, gpu: &Gpu) -> Option<Finding> {
    let (major, minor) = gpu.compute_capability?;
    let built_for = build.arch.as_deref().unwrap_or("");
    let arches = parse::torch_arches(built_for);
    if arches.is_empty() {
        return None;
    }
    let (torch, index) = (&build.torch, gpu.index);
    if parse::arch_supports(&arches, (major, minor)) {
        return Some(TORCH.ok(format!("torch {torch} has kernels for GPU {index} (sm_{major}{minor})")));
    }
    Some(
        TORCH
            .fail(format!(
                "torch {torch} has no kernels for GPU {index} {} (sm_{major}{minor}); it was built for {built_for}",
                gpu.name
            ))
            .help(format!("install a torch build that includes sm_{major}{minor} (newer GPUs need a newer CUDA build, e.g. the `cuda13-` pytorch-notebook image or `--index-url https://download.pytorch.org/whl/cu130`)")),
    )
}

/// What `nvidia-smi -L` in the project's running container answered.
fn running_container(container: &str, outcome: &Outcome, gpu: GpuMode) -> Finding {
    let listed = outcome.ok().map(parse::smi_list).unwrap_or_default();
    let text = outcome.text();
    if !listed.is_empty() {
        CONTAINER.ok(format!("running container `{container}` sees {} GPU(s)", listed.len()))
    } else if parse::smi_failure(&text) == SmiFailure::NvmlUnknownError {
        CONTAINER
            .fail(format!("running container `{container}` lost its GPU (Failed to initialize NVML: Unknown Error)"))
            .help(format!("recreate the container: `dpe docker rm -f {container}`, then start the project again; to stop it recurring see https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/troubleshooting.html"))
    } else if gpu == GpuMode::Off {
        CONTAINER.skip(format!("running container `{container}` has no GPU (the project has `gpu = \"off\"`)"))
    } else {
        CONTAINER
            .fail(format!("running container `{container}` has no GPU access ({})", parse::last_line(&text)))
            .help(format!("it was started without GPU flags: set `gpu = \"required\"` or `\"auto\"` in the project's dpe.toml and recreate it (`dpe docker rm -f {container}`, then start the project again)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_support::gpu;
    use crate::check::Status;

    fn driver(version: &str, cuda: Option<&str>) -> Driver {
        Driver { version: version.into(), cuda: cuda.map(str::to_string) }
    }

    fn need(version: (u32, u32), strict: bool, source: &str) -> CudaNeed {
        CudaNeed { version, strict, source: source.into() }
    }

    fn torch(version: &str, cuda: Option<&str>, arch: Option<&str>) -> TorchBuild {
        TorchBuild { torch: version.into(), cuda: cuda.map(str::to_string), arch: arch.map(str::to_string) }
    }

    fn ran(code: i32, stdout: &str, stderr: &str) -> Outcome {
        Outcome::Ran { code: Some(code), stdout: stdout.into(), stderr: stderr.into() }
    }

    #[test]
    fn a_project_without_its_image_is_skipped_with_how_to_make_it() {
        let project =
            ProjectTarget { name: "demo".into(), image: Some("python:3.12-slim".into()), ..ProjectTarget::default() };
        let finding = image_missing(&project);
        assert_eq!((finding.layer, finding.check), ("project", "image"));
        assert_eq!(
            finding.parts(),
            (
                Status::Skip,
                "project `demo`: image `python:3.12-slim` is not on this host yet; the image checks run once it exists",
                Some("start the project once (e.g. `dpe jupyter demo`), then run `dpe gpu check demo`")
            )
        );
        let unbuilt = image_missing(&ProjectTarget { name: "demo".into(), ..ProjectTarget::default() });
        assert!(unbuilt.message.starts_with("project `demo`: its image is not built yet;"), "{}", unbuilt.message);
    }

    #[test]
    fn the_required_cuda_is_strict_unless_disabled_and_wins_over_cuda_version() {
        let env =
            ImageCuda { cuda_version: Some("12.8.0".into()), required: Some("12.8".into()), require_disabled: false };
        assert_eq!(cuda_needs(&env, None, "img"), vec![need((12, 8), true, "NVIDIA_REQUIRE_CUDA cuda>=12.8")]);
        let disabled = ImageCuda { require_disabled: true, ..env };
        assert!(!cuda_needs(&disabled, None, "img")[0].strict);
        let declared = ImageCuda { cuda_version: Some("12.4.1".into()), ..ImageCuda::default() };
        assert_eq!(cuda_needs(&declared, None, "img"), vec![need((12, 4), false, "CUDA_VERSION 12.4.1")]);
    }

    #[test]
    fn an_image_and_its_torch_are_both_checked() {
        let env = ImageCuda { cuda_version: Some("12.4.1".into()), ..ImageCuda::default() };
        let build = torch("2.7.0+cu128", Some("12.8"), None);
        assert_eq!(
            cuda_needs(&env, Some(&build), "img"),
            vec![need((12, 4), false, "CUDA_VERSION 12.4.1"), need((12, 8), false, "torch 2.7.0+cu128")]
        );
    }

    #[test]
    fn torch_names_its_cuda_and_otherwise_a_docker_stacks_tag_does() {
        let build = torch("2.5.1+cu121", Some("12.1"), None);
        let image = "quay.io/jupyter/pytorch-notebook:cuda12-latest";
        assert_eq!(
            cuda_needs(&ImageCuda::default(), Some(&build), image),
            vec![need((12, 1), false, "torch 2.5.1+cu121")]
        );
        let needs = cuda_needs(&ImageCuda::default(), None, image);
        assert_eq!(needs.len(), 1);
        assert_eq!(needs[0].source, "its Docker Stacks tag");
        assert_eq!(needs[0].version.0, 12);
        assert_eq!(cuda_needs(&ImageCuda::default(), None, "python:3.12-slim"), vec![]);
    }

    #[test]
    fn an_image_within_the_drivers_cuda_runs_directly_or_through_minor_compatibility() {
        let direct = image_cuda("img", &need((12, 4), true, "CUDA_VERSION 12.4.1"), &driver("570.86.15", Some("12.8")));
        let fits = "image `img` needs CUDA 12.4 (CUDA_VERSION 12.4.1); the driver supports up to 12.8";
        assert_eq!(direct.parts(), (Status::Ok, fits, None));
        let minor = image_cuda("img", &need((12, 8), false, "torch 2.7.0+cu128"), &driver("550.54.14", Some("12.4")));
        assert_eq!(
            minor.parts(),
            (
                Status::Ok,
                "image `img` needs CUDA 12.8 (torch 2.7.0+cu128); driver 550.54.14 (CUDA 12.4) runs it through CUDA minor version compatibility",
                None
            )
        );
    }

    #[test]
    fn an_image_too_new_for_the_driver_fails_with_the_driver_it_needs() {
        let finding = image_cuda(
            "img",
            &need((13, 0), true, "NVIDIA_REQUIRE_CUDA cuda>=13.0"),
            &driver("570.86.15", Some("12.8")),
        );
        assert_eq!(
            finding.parts(),
            (
                Status::Fail,
                "image `img` needs CUDA 13.0 (NVIDIA_REQUIRE_CUDA cuda>=13.0) but driver 570.86.15 supports up to CUDA 12.8",
                Some("update the NVIDIA driver to 580.65.06 or newer (https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/), or use an image built for CUDA ≤ 12.8 (`dpe gpu images` lists them)")
            )
        );
    }

    #[test]
    fn an_unknown_driver_cuda_skips_the_comparison() {
        let finding = image_cuda("img", &need((12, 4), false, "its Docker Stacks tag"), &driver("unknown", None));
        let unknown = "image `img` needs CUDA 12.4 (its Docker Stacks tag); the driver's CUDA version is unknown";
        assert_eq!(finding.parts(), (Status::Skip, unknown, None));
    }

    #[test]
    fn a_cpu_only_torch_fails() {
        let findings = torch_findings("img", &torch("2.5.1+cpu", None, None), &[gpu(0, "A10", Some((8, 6)))]);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].message, "torch 2.5.1+cpu in `img` is a CPU-only build: it cannot use the GPU");
        assert!(findings[0].fix.as_deref().unwrap().starts_with("use a CUDA build, e.g. `image = "));
    }

    #[test]
    fn torch_is_checked_against_each_gpu_with_a_known_compute_capability() {
        let build = torch("2.5.1+cu121", Some("12.1"), Some("sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90"));
        let gpus =
            [gpu(0, "NVIDIA A10", Some((8, 6))), gpu(1, "old", None), gpu(2, "NVIDIA RTX PRO 6000", Some((12, 0)))];
        let findings = torch_findings("img", &build, &gpus);
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert_eq!(findings[0].parts(), (Status::Ok, "torch 2.5.1+cu121 has kernels for GPU 0 (sm_86)", None));
        assert_eq!(
            findings[1].parts(),
            (
                Status::Fail,
                "torch 2.5.1+cu121 has no kernels for GPU 2 NVIDIA RTX PRO 6000 (sm_120); it was built for sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90",
                Some("install a torch build that includes sm_120 (newer GPUs need a newer CUDA build, e.g. the `cuda13-` pytorch-notebook image or `--index-url https://download.pytorch.org/whl/cu130`)")
            )
        );
        // Without the compiled list there is nothing to compare.
        assert_eq!(torch_findings("img", &torch("2.5.1+cu121", Some("12.1"), None), &gpus), vec![]);
    }

    #[test]
    fn a_running_container_sees_its_gpus_or_lost_them_or_never_had_them() {
        let sees = running_container("c", &ran(0, "GPU 0: NVIDIA A10 (UUID: GPU-1)\n", ""), GpuMode::Auto);
        assert_eq!(sees.parts(), (Status::Ok, "running container `c` sees 1 GPU(s)", None));
        let lost = running_container("c", &ran(255, "Failed to initialize NVML: Unknown Error\n", ""), GpuMode::Auto);
        assert_eq!(
            lost.parts(),
            (
                Status::Fail,
                "running container `c` lost its GPU (Failed to initialize NVML: Unknown Error)",
                Some("recreate the container: `dpe docker rm -f c`, then start the project again; to stop it recurring see https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/troubleshooting.html")
            )
        );
        let never = running_container("c", &ran(127, "", "nvidia-smi: not found\n"), GpuMode::Required);
        assert_eq!(
            never.parts(),
            (
                Status::Fail,
                "running container `c` has no GPU access (nvidia-smi: not found)",
                Some("it was started without GPU flags: set `gpu = \"required\"` or `\"auto\"` in the project's dpe.toml and recreate it (`dpe docker rm -f c`, then start the project again)")
            )
        );
    }

    #[test]
    fn a_cpu_projects_container_without_a_gpu_is_expected() {
        let finding = running_container("c", &ran(127, "", "nvidia-smi: not found\n"), GpuMode::Off);
        let expected = "running container `c` has no GPU (the project has `gpu = \"off\"`)";
        assert_eq!(finding.parts(), (Status::Skip, expected, None));
    }
}

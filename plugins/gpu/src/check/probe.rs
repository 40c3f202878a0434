//! Layer 3, the smoke test: a real container started with the GPU flags lists the GPUs from
//! inside. [`layer`] starts it; [`failed`] reads what a failed start printed and names the fix.

use super::devices::{cdi_names, docker_args};
use super::{Check, Finding, Report, Status, CONFIGURE_DOCKER, GENERATE_CDI, TOOLKIT_HELP};
use crate::host::Host;
use crate::parse::{self, ProbeFailure};
use dpe_plugin::config::GpuDevices;

const SMOKE_TEST: Check = Check::new("probe", "smoke-test");

/// Runs `nvidia-smi -L` in `image` with the flags of the report's mechanism.
pub(super) fn layer(host: &dyn Host, report: &mut Report, devices: Option<&GpuDevices>, image: &str) {
    let mechanism = report.mechanism.expect("probe runs with a mechanism");
    let flags = docker_args(mechanism, devices, &report.gpus);
    let mut args: Vec<&str> = vec!["run", "--rm", "--network", "none"];
    args.extend(flags.iter().map(String::as_str));
    args.extend(["--entrypoint", "nvidia-smi", image, "-L"]);
    let outcome = host.docker(&args);
    let listed = outcome.ok().map(parse::smi_list).unwrap_or_default();
    if listed.is_empty() {
        let cdi = cdi_names(devices, &report.gpus);
        report.findings.push(failed(&outcome.text(), image, &flags, &cdi));
    } else {
        report.probed = true;
        report.findings.push(sees(&listed));
    }
}

/// Why the smoke test did not run: not asked for, or no way to give a container the GPU.
pub(super) fn not_run(asked: bool) -> Finding {
    if asked {
        SMOKE_TEST.skip("smoke test not run: containers have no way to get the GPU yet")
    } else {
        SMOKE_TEST.skip("smoke test not run (`--probe` starts a short GPU container)")
    }
}

/// The GPUs the container listed, as `(index, name)`.
fn sees(listed: &[(u32, String)]) -> Finding {
    let names: Vec<String> = listed.iter().map(|(i, n)| format!("{i}: {n}")).collect();
    SMOKE_TEST.ok(format!("a container sees {} GPU(s): {}", listed.len(), names.join("; ")))
}

/// What a failed smoke test printed (`text`), classified, with its fix. `flags` are the GPU
/// flags it ran with and `cdi` the CDI device names they stand for.
fn failed(text: &str, image: &str, flags: &[String], cdi: &[String]) -> Finding {
    let (status, message, fix) = match parse::probe_failure(text) {
        ProbeFailure::NoDeviceDriver => (
            Status::Fail,
            "docker cannot give containers a GPU (could not select device driver \"\" with capabilities: [[gpu]])".to_string(),
            format!("install the NVIDIA Container Toolkit ({TOOLKIT_HELP}) and run `{CONFIGURE_DOCKER}`"),
        ),
        ProbeFailure::RuntimeUnknown => (Status::Fail, "docker does not know the `nvidia` runtime".into(), CONFIGURE_DOCKER.into()),
        ProbeFailure::CdiUnresolvable => {
            (Status::Fail, format!("the CDI spec does not provide {}", cdi.join(", ")), GENERATE_CDI.into())
        }
        ProbeFailure::CdiUnsupported => (
            Status::Fail,
            "the engine does not resolve CDI device names (CDI support is off or too old)".into(),
            "use Docker 28.2 or later (CDI on by default), or enable it with `\"features\": {\"cdi\": true}` in /etc/docker/daemon.json and restart docker; or install the NVIDIA Container Toolkit for `--gpus`".into(),
        ),
        ProbeFailure::CudaRequirement => (
            Status::Fail,
            format!("the driver is too old for image `{image}`: {}", parse::last_line(text)),
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
            format!("smoke test not run: image `{image}` is not available here ({})", parse::last_line(text)),
            format!("`dpe docker pull {image}`, or pass `--image IMAGE` naming an image this host has"),
        ),
        ProbeFailure::NoSmiInContainer => (
            Status::Fail,
            format!("the GPU was not injected into the container: `nvidia-smi` is missing in `{image}`"),
            format!("check the toolkit's configuration (`{CONFIGURE_DOCKER}`); for CDI, `{GENERATE_CDI}`"),
        ),
        ProbeFailure::Other => (
            Status::Fail,
            format!("the smoke test failed: {}", parse::last_line(text)),
            format!("run `dpe docker run --rm {} {image} nvidia-smi -L` to see the whole error", flags.join(" ")),
        ),
    };
    SMOKE_TEST.finding(status, message).help(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_with(text: &str) -> Finding {
        let flags = ["--gpus".to_string(), "all".to_string()];
        failed(text, "ubuntu:24.04", &flags, &["nvidia.com/gpu=all".to_string()])
    }

    #[test]
    fn the_gpus_a_container_lists_are_named() {
        let finding = sees(&[(0, "NVIDIA A10".into()), (1, "Tesla T4".into())]);
        assert_eq!((finding.layer, finding.check), ("probe", "smoke-test"));
        assert_eq!(finding.parts(), (Status::Ok, "a container sees 2 GPU(s): 0: NVIDIA A10; 1: Tesla T4", None));
    }

    #[test]
    fn a_probe_not_run_says_why() {
        let skipped = (Status::Skip, "smoke test not run (`--probe` starts a short GPU container)", None);
        assert_eq!(not_run(false).parts(), skipped);
        let no_way = (Status::Skip, "smoke test not run: containers have no way to get the GPU yet", None);
        assert_eq!(not_run(true).parts(), no_way);
    }

    #[test]
    fn each_recorded_failure_names_its_fix() {
        let cases = [
            (
                include_str!("../../tests/fixtures/docker-run-gpus-no-toolkit.txt"),
                "docker cannot give containers a GPU (could not select device driver \"\" with capabilities: [[gpu]])",
                "install the NVIDIA Container Toolkit (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html) and run `sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`",
            ),
            (
                include_str!("../../tests/fixtures/docker-run-unknown-runtime.txt"),
                "docker does not know the `nvidia` runtime",
                CONFIGURE_DOCKER,
            ),
            (
                include_str!("../../tests/fixtures/cdi-unresolvable.txt"),
                "the CDI spec does not provide nvidia.com/gpu=all",
                GENERATE_CDI,
            ),
            (
                "Failed to initialize NVML: Unknown Error",
                "the container cannot reach the GPU (Failed to initialize NVML: Unknown Error)",
                "see https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/troubleshooting.html; with systemd cgroups run `sudo nvidia-ctk system create-dev-char-symlinks --create-all`",
            ),
            (
                "nvidia-container-cli: initialization error: driver not loaded",
                "the toolkit cannot reach the NVIDIA driver from the container",
                "load the driver (`sudo modprobe nvidia`) or reboot",
            ),
            (
                "exec: \"nvidia-smi\": executable file not found in $PATH",
                "the GPU was not injected into the container: `nvidia-smi` is missing in `ubuntu:24.04`",
                "check the toolkit's configuration (`sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`); for CDI, `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`",
            ),
            (
                "docker: something new\n",
                "the smoke test failed: docker: something new",
                "run `dpe docker run --rm --gpus all ubuntu:24.04 nvidia-smi -L` to see the whole error",
            ),
        ];
        for (printed, message, fix) in cases {
            assert_eq!(failed_with(printed).parts(), (Status::Fail, message, Some(fix)));
        }
    }

    #[test]
    fn a_driver_too_old_for_the_image_quotes_the_requirement() {
        assert_eq!(
            failed_with(include_str!("../../tests/fixtures/docker-run-cuda-requirement.txt")).parts(),
            (
                Status::Fail,
                "the driver is too old for image `ubuntu:24.04`: nvidia-container-cli: requirement error: unsatisfied condition: cuda>=12.8, please update your driver to a newer version, or use an earlier cuda container",
                Some("update the NVIDIA driver, or choose an image built for an older CUDA (`dpe gpu images`)")
            )
        );
    }

    #[test]
    fn an_engine_without_cdi_support_is_told_how_to_turn_it_on() {
        let finding =
            failed_with("docker: Error response from daemon: CDI device injection failed: CDI is not enabled");
        assert_eq!(finding.message, "the engine does not resolve CDI device names (CDI support is off or too old)");
        assert!(finding.fix.unwrap().starts_with("use Docker 28.2 or later (CDI on by default)"));
    }

    #[test]
    fn an_image_that_is_not_here_is_only_a_warning_with_the_pull() {
        assert_eq!(
            failed_with("Unable to find image 'ubuntu:24.04' locally\npull access denied").parts(),
            (
                Status::Warn,
                "smoke test not run: image `ubuntu:24.04` is not available here (pull access denied)",
                Some("`dpe docker pull ubuntu:24.04`, or pass `--image IMAGE` naming an image this host has")
            )
        );
    }
}

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

    fn flags() -> Vec<String> {
        vec!["--gpus".into(), "all".into()]
    }

    fn failed_with(text: &str) -> Finding {
        failed(text, "ubuntu:24.04", &flags(), &["nvidia.com/gpu=all".to_string()])
    }

    #[test]
    fn the_gpus_a_container_lists_are_named() {
        let finding = sees(&[(0, "NVIDIA A10".into()), (1, "Tesla T4".into())]);
        assert_eq!((finding.layer, finding.check, finding.status), ("probe", "smoke-test", Status::Ok));
        assert_eq!(finding.message, "a container sees 2 GPU(s): 0: NVIDIA A10; 1: Tesla T4");
    }

    #[test]
    fn a_probe_not_run_says_why() {
        assert_eq!(not_run(false).message, "smoke test not run (`--probe` starts a short GPU container)");
        assert_eq!(not_run(true).message, "smoke test not run: containers have no way to get the GPU yet");
        assert_eq!(not_run(true).status, Status::Skip);
    }

    #[test]
    fn docker_without_the_toolkit_is_told_to_install_it() {
        let finding = failed_with(include_str!("../../tests/fixtures/docker-run-gpus-no-toolkit.txt"));
        assert_eq!(finding.status, Status::Fail);
        assert_eq!(
            finding.message,
            "docker cannot give containers a GPU (could not select device driver \"\" with capabilities: [[gpu]])"
        );
        assert!(finding.fix.unwrap().starts_with("install the NVIDIA Container Toolkit (https://"));
    }

    #[test]
    fn an_unknown_runtime_and_an_unresolvable_cdi_device_name_their_fix() {
        let runtime = failed_with(include_str!("../../tests/fixtures/docker-run-unknown-runtime.txt"));
        assert_eq!(runtime.message, "docker does not know the `nvidia` runtime");
        assert_eq!(runtime.fix.as_deref(), Some(CONFIGURE_DOCKER));
        let cdi = failed_with(include_str!("../../tests/fixtures/cdi-unresolvable.txt"));
        assert_eq!(cdi.message, "the CDI spec does not provide nvidia.com/gpu=all");
        assert_eq!(cdi.fix.as_deref(), Some(GENERATE_CDI));
    }

    #[test]
    fn a_driver_too_old_for_the_image_quotes_the_requirement() {
        let finding = failed_with(include_str!("../../tests/fixtures/docker-run-cuda-requirement.txt"));
        assert!(finding.message.starts_with("the driver is too old for image `ubuntu:24.04`: "), "{}", finding.message);
        assert!(finding.message.contains("unsatisfied condition: cuda"), "{}", finding.message);
    }

    #[test]
    fn an_image_that_is_not_here_is_a_warning_with_the_pull() {
        let finding = failed_with("Unable to find image 'ubuntu:24.04' locally\npull access denied");
        assert_eq!(finding.status, Status::Warn);
        assert_eq!(
            finding.message,
            "smoke test not run: image `ubuntu:24.04` is not available here (pull access denied)"
        );
        assert_eq!(
            finding.fix.as_deref(),
            Some("`dpe docker pull ubuntu:24.04`, or pass `--image IMAGE` naming an image this host has")
        );
    }

    #[test]
    fn nvml_a_lost_driver_and_a_missing_nvidia_smi_each_have_their_own_message() {
        assert_eq!(
            failed_with("Failed to initialize NVML: Unknown Error").message,
            "the container cannot reach the GPU (Failed to initialize NVML: Unknown Error)"
        );
        assert_eq!(
            failed_with("nvidia-container-cli: initialization error: driver not loaded").message,
            "the toolkit cannot reach the NVIDIA driver from the container"
        );
        assert_eq!(
            failed_with("exec: \"nvidia-smi\": executable file not found in $PATH").message,
            "the GPU was not injected into the container: `nvidia-smi` is missing in `ubuntu:24.04`"
        );
    }

    #[test]
    fn another_failure_shows_the_command_to_rerun() {
        let finding = failed_with("docker: something new\n");
        assert_eq!(finding.message, "the smoke test failed: docker: something new");
        assert_eq!(
            finding.fix.as_deref(),
            Some("run `dpe docker run --rm --gpus all ubuntu:24.04 nvidia-smi -L` to see the whole error")
        );
    }
}

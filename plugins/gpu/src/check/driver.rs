//! Layer 1, the host driver: `nvidia-smi` answers with the driver version, the highest CUDA it
//! supports and the GPUs. [`layer`] runs the tool; the functions below it turn each answer
//! (not installed, failed, unreadable, no GPU, found) into its finding.

use super::{Check, Driver, Finding, Report, DRIVER_HELP};
use crate::compat;
use crate::host::{Host, Outcome};
use crate::parse::{self, Gpu, SmiFailure};

const NVIDIA_SMI: Check = Check::new("driver", "nvidia-smi");
const GPU: Check = Check::new("driver", "gpu");

/// Fills in the driver and its GPUs. Returns whether a driver answered with GPUs.
pub(super) fn layer(host: &dyn Host, report: &mut Report) -> bool {
    match read(host) {
        Ok((driver, gpus)) => {
            report.findings.push(found(&driver));
            report.findings.extend(gpus.iter().map(|gpu| GPU.ok(describe_gpu(gpu))));
            report.driver = Some(driver);
            report.gpus = gpus;
            true
        }
        Err(finding) => {
            report.findings.push(finding);
            false
        }
    }
}

/// The driver and its GPUs, or the finding that says why there are none.
fn read(host: &dyn Host) -> Result<(Driver, Vec<Gpu>), Finding> {
    let csv = query(host)?;
    let query = parse::gpu_query_csv(&csv).map_err(unreadable)?;
    if query.gpus.is_empty() {
        return Err(no_gpu_listed());
    }
    // The maximum CUDA version is printed only in the plain table's header.
    let header = host.program("nvidia-smi", &[]).ok().map(parse::smi_header).unwrap_or((None, None));
    Ok((driver(query.driver_version, header), query.gpus))
}

/// The CSV of the GPU query, or the finding for a missing or failing `nvidia-smi`.
fn query(host: &dyn Host) -> Result<String, Finding> {
    const FIELDS: &str = "--query-gpu=index,name,uuid,memory.total,compute_cap,driver_version";
    let mut outcome = host.program("nvidia-smi", &[FIELDS, "--format=csv,nounits"]);
    if matches!(outcome, Outcome::NotFound) {
        return Err(not_installed());
    }
    // Drivers before R510 know no `compute_cap` field; ask again without it.
    if outcome.ok().is_none() && parse::unknown_query_field(&outcome.text()) {
        outcome = host.program(
            "nvidia-smi",
            &["--query-gpu=index,name,uuid,memory.total,driver_version", "--format=csv,nounits"],
        );
    }
    outcome.ok().map(str::to_string).ok_or_else(|| failed(&outcome.text()))
}

fn not_installed() -> Finding {
    NVIDIA_SMI.fail("no NVIDIA GPU driver on this host (`nvidia-smi` is not installed)").help(format!(
        "containers here run on the CPU; on a machine with an NVIDIA GPU, install its driver ({DRIVER_HELP}) and run `dpe gpu check` again"
    ))
}

/// `nvidia-smi` ran and failed: what it printed says why.
fn failed(text: &str) -> Finding {
    let (message, fix) = match parse::smi_failure(text) {
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
            format!("`nvidia-smi` failed: {}", parse::last_line(text)),
            format!("run `nvidia-smi` to see the whole error; reinstall the driver if it persists ({DRIVER_HELP})"),
        ),
    };
    NVIDIA_SMI.fail(message).help(fix)
}

fn unreadable(problem: String) -> Finding {
    NVIDIA_SMI.fail(problem).help("run `nvidia-smi` to see what it reports")
}

fn no_gpu_listed() -> Finding {
    NVIDIA_SMI
        .fail("the NVIDIA driver is loaded but lists no GPU")
        .help("check that the GPU is visible (`lspci | grep -i nvidia`)")
}

/// The driver from the query's version and the plain table's header (driver, CUDA); without a
/// CUDA in the header, the highest CUDA the driver's version supports.
fn driver(queried: Option<String>, (header_driver, header_cuda): (Option<String>, Option<String>)) -> Driver {
    let version = queried.or(header_driver).unwrap_or_else(|| "unknown".into());
    let cuda = header_cuda.or_else(|| compat::max_cuda_for_driver(&version).map(|(a, b)| format!("{a}.{b}")));
    Driver { version, cuda }
}

fn found(driver: &Driver) -> Finding {
    let cuda = driver.cuda.as_deref().map(|c| format!(", CUDA ≤ {c}")).unwrap_or_default();
    NVIDIA_SMI.ok(format!("NVIDIA driver {}{cuda}", driver.version))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_support::gpu;
    use crate::check::Status;

    #[test]
    fn a_missing_nvidia_smi_means_no_driver_and_says_containers_run_on_the_cpu() {
        let finding = not_installed();
        assert_eq!((finding.layer, finding.check), ("driver", "nvidia-smi"));
        assert_eq!(
            finding.parts(),
            (
                Status::Fail,
                "no NVIDIA GPU driver on this host (`nvidia-smi` is not installed)",
                Some("containers here run on the CPU; on a machine with an NVIDIA GPU, install its driver (https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/) and run `dpe gpu check` again")
            )
        );
    }

    #[test]
    fn each_way_nvidia_smi_fails_has_its_own_message_and_fix() {
        let cases = [
            (
                include_str!("../../tests/fixtures/smi-driver-not-loaded.txt"),
                "the NVIDIA driver is installed but not loaded (`nvidia-smi` cannot reach it)",
                "load it with `sudo modprobe nvidia`; after a kernel update, reboot (or reinstall the driver so its module is built for the running kernel)",
            ),
            (
                "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 570.133",
                "the NVIDIA driver was updated but the old kernel module is still loaded (driver/library version mismatch)",
                "reboot the host so the new driver module loads",
            ),
            (
                "No devices were found",
                "the NVIDIA driver is loaded but finds no GPU",
                "check that the GPU is seated and visible (`lspci | grep -i nvidia`) and that the driver supports it",
            ),
            (
                "some noise\nUnable to determine the device handle for GPU0000:01:00.0: Unknown Error\n\n",
                "`nvidia-smi` failed: Unable to determine the device handle for GPU0000:01:00.0: Unknown Error",
                "run `nvidia-smi` to see the whole error; reinstall the driver if it persists (https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/)",
            ),
        ];
        for (printed, message, fix) in cases {
            assert_eq!(failed(printed).parts(), (Status::Fail, message, Some(fix)));
        }
    }

    #[test]
    fn an_unreadable_query_and_an_empty_one_fail() {
        assert_eq!(
            unreadable("unexpected `nvidia-smi` output: x".into()).parts(),
            (Status::Fail, "unexpected `nvidia-smi` output: x", Some("run `nvidia-smi` to see what it reports"))
        );
        assert_eq!(
            no_gpu_listed().parts(),
            (
                Status::Fail,
                "the NVIDIA driver is loaded but lists no GPU",
                Some("check that the GPU is visible (`lspci | grep -i nvidia`)")
            )
        );
    }

    #[test]
    fn the_driver_version_comes_from_the_query_then_the_header() {
        let header = (Some("551.78".to_string()), Some("12.4".to_string()));
        assert_eq!(driver(Some("570.86.15".into()), header.clone()).version, "570.86.15");
        assert_eq!(driver(None, header), Driver { version: "551.78".into(), cuda: Some("12.4".into()) });
        assert_eq!(driver(None, (None, None)).version, "unknown");
    }

    #[test]
    fn without_a_cuda_in_the_header_the_driver_version_gives_it() {
        // The R455 drivers shipped with CUDA 11.1.
        let r455 = driver(Some("455.23.05".into()), (None, None));
        assert_eq!(found(&r455).parts(), (Status::Ok, "NVIDIA driver 455.23.05, CUDA ≤ 11.1", None));
        // Older than the table (410 prints "CUDA Version: N/A"): no CUDA is claimed.
        let r410 = driver(Some("410.48".into()), (None, None));
        assert_eq!(found(&r410).message, "NVIDIA driver 410.48");
    }

    #[test]
    fn a_gpu_reads_with_its_memory_and_compute_capability_when_known() {
        let a10 = Gpu { memory_mib: Some(23028), ..gpu(1, "NVIDIA A10", Some((8, 6))) };
        assert_eq!(describe_gpu(&a10), "GPU 1: NVIDIA A10, 22 GiB, compute capability 8.6");
        assert_eq!(describe_gpu(&gpu(1, "NVIDIA A10", None)), "GPU 1: NVIDIA A10");
    }
}

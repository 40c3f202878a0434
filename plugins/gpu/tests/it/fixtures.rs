//! The parsers and the layered check, driven by recorded real outputs from `tests/fixtures/`
//! (their sources are in `tests/fixtures/README.md`). A [`FakeHost`] answers each command the
//! check runs with a recorded output, so every branch a user can meet is exercised here, on a
//! machine without a GPU.

use dpe_gpu::check::{self, Mechanism, Options, ProjectTarget, Status};
use dpe_gpu::host::{Host, Outcome};
use dpe_gpu::parse;
use dpe_plugin::config::{GpuDevices, GpuMode};
use std::cell::RefCell;
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn ran(code: i32, stdout: &str, stderr: &str) -> Outcome {
    Outcome::Ran { code: Some(code), stdout: stdout.to_string(), stderr: stderr.to_string() }
}

/// A machine whose programs answer with recorded outputs. Commands are keyed by the program
/// and the first argument (`nvidia-smi --query-gpu=…`, `docker run`); unknown ones are "not
/// installed" for host programs and a failure for docker.
#[derive(Default)]
struct FakeHost {
    programs: Vec<(String, Outcome)>,
    docker: Vec<(String, Outcome)>,
    cdi: Vec<(PathBuf, String)>,
    on_path: Vec<String>,
    calls: RefCell<Vec<String>>,
}

impl FakeHost {
    fn program(mut self, prefix: &str, outcome: Outcome) -> Self {
        self.programs.push((prefix.to_string(), outcome));
        self
    }
    fn docker(mut self, prefix: &str, outcome: Outcome) -> Self {
        self.docker.push((prefix.to_string(), outcome));
        self
    }
    fn cdi(mut self, path: &str, text: String) -> Self {
        self.cdi.push((PathBuf::from(path), text));
        self
    }
    /// A host with a driver: the CSV query and the plain table answer.
    fn with_driver(csv: &str, table: &str) -> Self {
        FakeHost::default()
            .program("nvidia-smi --query-gpu=index,name,uuid,memory.total,compute_cap", ran(0, &fixture(csv), ""))
            .program("nvidia-smi", ran(0, &fixture(table), ""))
    }
    fn called(&self, prefix: &str) -> bool {
        self.calls.borrow().iter().any(|c| c.starts_with(prefix))
    }
}

fn lookup(table: &[(String, Outcome)], line: &str) -> Option<Outcome> {
    // The longest matching prefix wins, so `nvidia-smi` (the plain table) does not shadow the
    // query.
    table
        .iter()
        .filter(|(prefix, _)| line.starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, outcome)| outcome.clone())
}

impl Host for FakeHost {
    fn program(&self, program: &str, args: &[&str]) -> Outcome {
        let line = std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
        self.calls.borrow_mut().push(line.clone());
        lookup(&self.programs, &line).unwrap_or(Outcome::NotFound)
    }
    fn docker(&self, args: &[&str]) -> Outcome {
        let line = format!("docker {}", args.join(" "));
        self.calls.borrow_mut().push(line.clone());
        lookup(&self.docker, &line).unwrap_or_else(|| ran(1, "", &format!("unexpected call: {line}")))
    }
    fn cdi_specs(&self) -> Vec<(PathBuf, String)> {
        self.cdi.clone()
    }
    fn has_program(&self, program: &str) -> bool {
        self.on_path.iter().any(|p| p == program)
    }
}

const RUNTIMES: &str = "docker info --format {{json .Runtimes}}";

fn messages(report: &check::Report, status: Status) -> Vec<String> {
    report.findings.iter().filter(|f| f.status == status).map(|f| f.message.clone()).collect()
}

// ---- parsers ---------------------------------------------------------------------------

#[test]
fn csv_query_is_read_by_column_name_in_any_order() {
    let query = parse::gpu_query_csv(&fixture("smi-query-570-titanv-rtx5880.csv")).unwrap();
    assert_eq!(query.driver_version.as_deref(), Some("570.86.15"));
    assert_eq!(query.gpus.len(), 2);
    assert_eq!(query.gpus[0].name, "NVIDIA TITAN V");
    assert_eq!(query.gpus[0].compute_capability, Some((7, 0)));
    assert_eq!(query.gpus[1].name, "NVIDIA RTX 5880 Ada Generation");
    assert_eq!(query.gpus[1].index, 1);
    assert_eq!(query.gpus[1].compute_capability, Some((8, 9)));
    // A single-column answer still reads, with the index taken from the row.
    let single = parse::gpu_query_csv(&format!(
        "name, {}",
        fixture("smi-query-570-compute-cap.csv").replace("compute_cap\n8.9", "compute_cap\nGPU, 8.9")
    ))
    .unwrap();
    assert_eq!(single.gpus[0].compute_capability, Some((8, 9)));
}

#[test]
fn old_drivers_reject_the_compute_cap_field() {
    assert!(parse::unknown_query_field(&fixture("smi-query-470-unknown-field.txt")));
    assert!(!parse::unknown_query_field(&fixture("smi-driver-not-loaded.txt")));
}

#[test]
fn table_headers_of_several_drivers() {
    let cases = [
        ("smi-table-455-rtx3090.txt", Some("455.23.04"), Some("11.1")),
        ("smi-table-510-cuda11.6.txt", Some("510.68.02"), Some("11.6")),
        ("smi-table-551.78-cuda12.4.txt", Some("551.78"), Some("12.4")),
        ("smi-table-570.133.07-cuda12.8.txt", Some("570.133.07"), Some("12.8")),
        ("smi-table-570.133.20-a10-t4.txt", Some("570.133.20"), Some("12.8")),
        // R610 renamed the fields to KMD and CUDA UMD versions.
        ("smi-table-610-b200-kmd-umd.txt", Some("610.43.02"), Some("13.3")),
        // Inside a container of an old toolkit the CUDA field reads N/A.
        ("smi-table-410-cuda-na.txt", Some("410.72"), None),
    ];
    for (name, driver, cuda) in cases {
        let (d, c) = parse::smi_header(&fixture(name));
        assert_eq!((d.as_deref(), c.as_deref()), (driver, cuda), "{name}");
    }
}

#[test]
fn smi_failures_are_told_apart() {
    assert_eq!(parse::smi_failure(&fixture("smi-driver-not-loaded.txt")), parse::SmiFailure::DriverNotLoaded);
    assert_eq!(parse::smi_failure(&fixture("smi-nvml-lost.txt")), parse::SmiFailure::NvmlUnknownError);
}

#[test]
fn gpu_lists() {
    let list = parse::smi_list(&fixture("smi-list-570.133.20-a10-t4.txt"));
    assert_eq!(
        list,
        vec![(0, "NVIDIA A10".into()), (1, "NVIDIA A10".into()), (2, "Tesla T4".into()), (3, "Tesla T4".into())]
    );
    assert_eq!(parse::smi_list(&fixture("smi-nvml-lost.txt")), vec![]);
}

#[test]
fn toolkit_version() {
    assert_eq!(parse::ctk_version(&fixture("nvidia-ctk-version-1.12.0.txt")).as_deref(), Some("1.12.0"));
}

#[test]
fn docker_runtimes_json_and_text() {
    let json = parse::docker_runtimes(&fixture("docker-info-runtimes-debian-20.10.json")).unwrap();
    assert!(json.contains(&"runc".to_string()) && !json.contains(&"nvidia".to_string()), "{json:?}");
    let text = parse::docker_runtimes(&fixture("docker-info-runtimes-toolkit-unregistered.txt")).unwrap();
    assert_eq!(text, vec!["io.containerd.runc.v2".to_string(), "runc".to_string()]);
    // docker's JSON shape with the runtime registered (constructed: no recorded output had it).
    let registered = parse::docker_runtimes(r#"{"io.containerd.runc.v2":{"path":"runc"},"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}"#).unwrap();
    assert!(registered.contains(&"nvidia".to_string()));
}

#[test]
fn cdi_spec_generated_by_nvidia_ctk() {
    let spec = parse::cdi_spec(&fixture("cdi-nvidia-575.64.03.yaml")).unwrap();
    assert_eq!(spec.kind, "nvidia.com/gpu");
    assert_eq!(spec.devices, vec!["0", "GPU-520e01f2-cf30-6396-abef-e8e9a5233b0e", "all"]);
    let truncated = parse::cdi_spec(&fixture("cdi-nvidia-rc.2-partial.yaml")).unwrap_err();
    assert_eq!(truncated, "no `kind`");
}

#[test]
fn container_start_failures_are_classified() {
    use parse::ProbeFailure::*;
    assert_eq!(parse::probe_failure(&fixture("docker-run-gpus-no-toolkit.txt")), NoDeviceDriver);
    assert_eq!(parse::probe_failure(&fixture("docker-run-unknown-runtime.txt")), RuntimeUnknown);
    assert_eq!(parse::probe_failure(&fixture("docker-run-cuda-requirement.txt")), CudaRequirement);
    assert_eq!(parse::probe_failure(&fixture("cdi-unresolvable.txt")), CdiUnresolvable);
    assert_eq!(parse::probe_failure(&fixture("smi-nvml-lost.txt")), NvmlUnknownError);
}

#[test]
fn torch_without_kernels_for_a_newer_gpu() {
    // The arch list torch printed for an H100 (sm_90) it could not serve.
    let warning = fixture("torch-warning-h100-sm90.txt");
    let list = warning.split("supports CUDA capabilities ").nth(1).unwrap().split('.').next().unwrap();
    let arches = parse::torch_arches(list);
    assert!(!parse::arch_supports(&arches, (9, 0)), "torch said sm_90 is not supported");
    assert!(parse::arch_supports(&arches, (8, 6)));
    assert!(parse::arch_supports(&arches, (8, 9)), "an sm_86 cubin runs on 8.9");
}

// ---- the layered check ----------------------------------------------------------------

#[test]
fn no_driver_is_one_calm_finding() {
    let host = FakeHost::default();
    let report = check::run(&host, &Options { probe: true, ..Options::default() });
    assert!(!report.usable);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].message, "no NVIDIA GPU driver on this host (`nvidia-smi` is not installed)");
    assert!(!host.called("docker"), "nothing else runs without a driver");
}

#[test]
fn driver_installed_but_not_loaded() {
    let host = FakeHost::default().program("nvidia-smi", ran(9, &fixture("smi-driver-not-loaded.txt"), ""));
    let report = check::run(&host, &Options::default());
    let failure = report.failures().next().unwrap();
    assert_eq!(failure.message, "the NVIDIA driver is installed but not loaded (`nvidia-smi` cannot reach it)");
    assert!(failure.fix.as_deref().unwrap().contains("sudo modprobe nvidia"));
}

#[test]
fn drivers_without_compute_cap_are_asked_again() {
    // R470 refuses the field; the second query (recorded from a newer driver, the only CSV at
    // hand) is what the check then reads.
    let host = FakeHost::default()
        .program(
            "nvidia-smi --query-gpu=index,name,uuid,memory.total,compute_cap",
            ran(2, &fixture("smi-query-470-unknown-field.txt"), ""),
        )
        .program(
            "nvidia-smi --query-gpu=index,name,uuid,memory.total,driver_version",
            ran(0, &fixture("smi-query-570-titanv-rtx5880.csv"), ""),
        )
        .program("nvidia-smi", ran(0, &fixture("smi-table-570.133.20-a10-t4.txt"), ""));
    let report = check::run(&host, &Options::default());
    assert!(host.called("nvidia-smi --query-gpu=index,name,uuid,memory.total,driver_version"));
    assert_eq!(report.gpus.len(), 2);
}

#[test]
fn toolkit_missing_fails_with_the_install_command() {
    let host = FakeHost::with_driver("smi-query-570-titanv-rtx5880.csv", "smi-table-570.133.20-a10-t4.txt")
        .docker(RUNTIMES, ran(0, &fixture("docker-info-runtimes-debian-20.10.json"), ""));
    let report = check::run(&host, &Options { probe: true, ..Options::default() });
    assert!(!report.usable);
    assert_eq!(report.mechanism, None);
    let toolkit = report.findings.iter().find(|f| f.check == "toolkit").unwrap();
    assert_eq!(toolkit.status, Status::Fail);
    assert_eq!(toolkit.message, "NVIDIA Container Toolkit not installed (no `nvidia-ctk`)");
    assert!(toolkit
        .fix
        .as_deref()
        .unwrap()
        .contains("sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker"));
    assert!(!host.called("docker run"), "no smoke test without a way to pass the GPU");
    assert_eq!(report.driver.as_ref().unwrap().version, "570.86.15");
    assert_eq!(report.driver.as_ref().unwrap().cuda.as_deref(), Some("12.8"));
}

#[test]
fn runtime_not_registered_warns_and_the_smoke_test_decides() {
    let host = FakeHost::with_driver("smi-query-570-titanv-rtx5880.csv", "smi-table-570.133.20-a10-t4.txt")
        .program("nvidia-ctk", ran(0, &fixture("nvidia-ctk-version-1.12.0.txt"), ""))
        .docker(RUNTIMES, ran(0, &fixture("docker-info-runtimes-toolkit-unregistered.txt"), ""))
        .docker("docker run", ran(0, &fixture("smi-list-570-titanv-rtx5880.txt"), ""));
    let report = check::run(&host, &Options { probe: true, ..Options::default() });
    assert!(report.usable, "{:#?}", report.findings);
    assert!(report.probed);
    assert_eq!(report.mechanism, Some(Mechanism::Gpus));
    assert_eq!(report.toolkit.as_deref(), Some("1.12.0"));
    let runtime = report.findings.iter().find(|f| f.check == "runtime").unwrap();
    assert_eq!(runtime.status, Status::Warn);
    assert_eq!(
        runtime.fix.as_deref(),
        Some("sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker")
    );
    assert!(messages(&report, Status::Ok)
        .contains(&"a container sees 2 GPU(s): 0: NVIDIA TITAN V; 1: NVIDIA RTX 5880 Ada Generation".to_string()));
    assert!(host.called("docker run --rm --network none --gpus all --entrypoint nvidia-smi ubuntu:24.04 -L"));
}

#[test]
fn smoke_test_failures_say_what_to_do() {
    let cases = [
        ("docker-run-gpus-no-toolkit.txt", "install the NVIDIA Container Toolkit"),
        ("docker-run-unknown-runtime.txt", "sudo nvidia-ctk runtime configure --runtime=docker"),
        ("docker-run-cuda-requirement.txt", "update the NVIDIA driver"),
    ];
    for (name, fix) in cases {
        let host = FakeHost::with_driver("smi-query-570-titanv-rtx5880.csv", "smi-table-570.133.20-a10-t4.txt")
            .program("nvidia-ctk", ran(0, &fixture("nvidia-ctk-version-1.12.0.txt"), ""))
            .docker(RUNTIMES, ran(0, &fixture("docker-info-runtimes-debian-20.10.json"), ""))
            .docker("docker run", ran(125, "", &fixture(name)));
        let report = check::run(&host, &Options { probe: true, ..Options::default() });
        assert!(!report.usable, "{name}");
        let probe = report.findings.iter().find(|f| f.check == "smoke-test").unwrap();
        assert_eq!(probe.status, Status::Fail, "{name}");
        assert!(probe.fix.as_deref().unwrap().contains(fix), "{name}: {probe:?}");
    }
}

#[test]
fn cdi_only_host_gets_device_flags() {
    let host = FakeHost::with_driver("smi-query-570-titanv-rtx5880.csv", "smi-table-570.133.20-a10-t4.txt")
        .docker(RUNTIMES, ran(0, &fixture("docker-info-runtimes-debian-20.10.json"), ""))
        .cdi("/etc/cdi/nvidia.yaml", fixture("cdi-nvidia-575.64.03.yaml"));
    let report = check::run(&host, &Options::default());
    assert_eq!(report.mechanism, Some(Mechanism::Cdi));
    // The spec was generated on a one-GPU host: GPU 1 is missing from it.
    let cdi = report.findings.iter().find(|f| f.check == "cdi").unwrap();
    assert_eq!(cdi.status, Status::Warn);
    assert_eq!(cdi.message, "CDI spec `/etc/cdi/nvidia.yaml` lacks GPU 1 (stale after a driver or hardware change)");
    assert_eq!(cdi.fix.as_deref(), Some("sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"));
    assert_eq!(check::docker_args(Mechanism::Cdi, None, &report.gpus), vec!["--device", "nvidia.com/gpu=all"]);
    assert_eq!(
        check::docker_args(Mechanism::Cdi, Some(&GpuDevices::Count(2)), &report.gpus),
        vec!["--device", "nvidia.com/gpu=0", "--device", "nvidia.com/gpu=1"]
    );
    assert_eq!(
        check::compose_device(Mechanism::Cdi, None, &report.gpus),
        serde_json::json!({"driver": "cdi", "device_ids": ["nvidia.com/gpu=all"], "capabilities": ["gpu"]})
    );
}

#[test]
fn gpus_flags_and_compose_entries() {
    let gpus = parse::gpu_query_csv(&fixture("smi-query-570-titanv-rtx5880.csv")).unwrap().gpus;
    assert_eq!(check::docker_args(Mechanism::Gpus, None, &gpus), vec!["--gpus", "all"]);
    assert_eq!(check::docker_args(Mechanism::Gpus, Some(&GpuDevices::Count(1)), &gpus), vec!["--gpus", "1"]);
    assert_eq!(
        check::docker_args(Mechanism::Gpus, Some(&GpuDevices::Indices(vec![1])), &gpus),
        vec!["--gpus", "device=1"]
    );
    // docker parses `--gpus` as CSV: two devices need the value quoted inside.
    assert_eq!(
        check::docker_args(Mechanism::Gpus, Some(&GpuDevices::Indices(vec![0, 1])), &gpus),
        vec!["--gpus", "\"device=0,1\""]
    );
    assert_eq!(
        check::compose_device(Mechanism::Gpus, Some(&GpuDevices::Indices(vec![0, 1])), &gpus),
        serde_json::json!({"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]})
    );
    assert_eq!(
        check::compose_device(Mechanism::Gpus, Some(&GpuDevices::Count(2)), &gpus),
        serde_json::json!({"driver": "nvidia", "count": 2, "capabilities": ["gpu"]})
    );
}

#[test]
fn devices_beyond_the_host_are_refused() {
    let host = FakeHost::with_driver("smi-query-570-titanv-rtx5880.csv", "smi-table-570.133.20-a10-t4.txt")
        .program("nvidia-ctk", ran(0, &fixture("nvidia-ctk-version-1.12.0.txt"), ""))
        .docker(RUNTIMES, ran(0, &fixture("docker-info-runtimes-debian-20.10.json"), ""));
    let report = check::run(&host, &Options { devices: Some(GpuDevices::Indices(vec![3])), ..Options::default() });
    assert!(!report.usable);
    assert_eq!(report.failures().next().unwrap().message, "`gpu_devices` names GPU 3 but this host's GPUs are 0, 1");
}

#[test]
fn project_container_that_lost_nvml_must_be_recreated() {
    // The torch probe's answer carries the arch list torch printed for the H100 it could not
    // serve (recorded); its version fields are illustrative.
    let warning = fixture("torch-warning-h100-sm90.txt");
    let arch = warning.split("supports CUDA capabilities ").nth(1).unwrap().split('.').next().unwrap();
    let torch = serde_json::json!({"torch": "1.13.1+cu117", "cuda": "11.7", "arch": arch}).to_string();
    let image = "quay.io/jupyter/pytorch-notebook:cuda12-latest";
    let host = FakeHost::default()
        .program(
            "nvidia-smi --query-gpu=index,name,uuid,memory.total,compute_cap",
            ran(0, "index, name, compute_cap, driver_version\n0, NVIDIA H100 80GB HBM3, 9.0, 570.133.20\n", ""),
        )
        .program("nvidia-smi", ran(0, &fixture("smi-table-570.133.20-a10-t4.txt"), ""))
        .program("nvidia-ctk", ran(0, &fixture("nvidia-ctk-version-1.12.0.txt"), ""))
        .docker(RUNTIMES, ran(0, &fixture("docker-info-runtimes-debian-20.10.json"), ""))
        .docker("docker ps", ran(0, &format!("dpe-demo-jupyter\t{image}\n"), ""))
        .docker("docker image inspect", ran(0, r#"["PATH=/opt/conda/bin:/usr/local/nvidia/bin","NVIDIA_VISIBLE_DEVICES=all","NVIDIA_DRIVER_CAPABILITIES=compute,utility"]"#, ""))
        .docker("docker run", ran(0, &format!("{torch}\n"), ""))
        .docker("docker exec", ran(255, "", &fixture("smi-nvml-lost.txt")));
    let options = Options {
        project: Some(ProjectTarget {
            name: "demo".into(),
            workspace: Some("/w".into()),
            image: Some(image.into()),
            gpu: GpuMode::Required,
        }),
        deep: true,
        ..Options::default()
    };
    let report = check::run(&host, &options);
    assert!(!report.usable);
    let failures: Vec<&check::Finding> = report.failures().collect();
    assert_eq!(failures[0].message, "torch 1.13.1+cu117 has no kernels for GPU 0 NVIDIA H100 80GB HBM3 (sm_90); it was built for sm_37 sm_50 sm_60 sm_61 sm_70 sm_75 sm_80 sm_86 compute_37");
    assert_eq!(
        failures[1].message,
        "running container `dpe-demo-jupyter` lost its GPU (Failed to initialize NVML: Unknown Error)"
    );
    assert!(failures[1]
        .fix
        .as_deref()
        .unwrap()
        .starts_with("recreate the container: `dpe docker rm -f dpe-demo-jupyter`"));
    // torch 11.7 on a CUDA 12.8 driver is fine.
    assert!(messages(&report, Status::Ok)
        .iter()
        .any(|m| m.contains("needs CUDA 11.7 (torch 1.13.1+cu117); the driver supports up to 12.8")));
    assert!(host.called("docker ps --filter label=dpe.project=demo --filter label=dpe.workspace=/w"));
}

#[test]
fn image_needing_a_newer_cuda_than_the_driver() {
    // The driver of the 551.78 table (CUDA 12.4) against an image declaring CUDA 12.8 the way
    // NVIDIA's bases do, as in the recorded `unsatisfied condition: cuda>=12.8`.
    let host = FakeHost::default()
        .program(
            "nvidia-smi --query-gpu=index,name,uuid,memory.total,compute_cap",
            ran(0, "name, driver_version\nNVIDIA GeForce RTX 4090, 551.78\n", ""),
        )
        .program("nvidia-smi", ran(0, &fixture("smi-table-551.78-cuda12.4.txt"), ""))
        .program("nvidia-ctk", ran(0, &fixture("nvidia-ctk-version-1.12.0.txt"), ""))
        .docker(RUNTIMES, ran(0, &fixture("docker-info-runtimes-debian-20.10.json"), ""))
        .docker("docker ps", ran(0, "", ""))
        .docker("docker image inspect --format {{.Id}}", ran(0, "sha256:1\n", ""))
        .docker(
            "docker image inspect --format {{json .Config.Env}}",
            ran(0, r#"["CUDA_VERSION=12.8.0","NVIDIA_REQUIRE_CUDA=cuda>=12.8"]"#, ""),
        )
        .docker("docker run", ran(1, "", "exec: \"python3\": executable file not found in $PATH"));
    let options = Options {
        project: Some(ProjectTarget {
            name: "demo".into(),
            workspace: None,
            image: Some("ghcr.io/synerbi/sirf:petric2".into()),
            gpu: GpuMode::Auto,
        }),
        ..Options::default()
    };
    let report = check::run(&host, &options);
    let failure = report.failures().next().unwrap();
    assert_eq!(failure.message, "image `ghcr.io/synerbi/sirf:petric2` needs CUDA 12.8 (NVIDIA_REQUIRE_CUDA cuda>=12.8) but driver 551.78 supports up to CUDA 12.4");
    assert!(failure.fix.as_deref().unwrap().starts_with("update the NVIDIA driver to 570.26 or newer"));
}

#[test]
fn podman_uses_cdi_and_asks_docker_nothing() {
    let host = FakeHost::with_driver("smi-query-570-titanv-rtx5880.csv", "smi-table-570.133.20-a10-t4.txt")
        .program("nvidia-ctk", ran(0, &fixture("nvidia-ctk-version-1.12.0.txt"), ""))
        .cdi("/var/run/cdi/nvidia.yaml", fixture("cdi-nvidia-575.64.03.yaml"));
    let report =
        check::run(&host, &Options { podman: true, devices: Some(GpuDevices::Indices(vec![0])), ..Options::default() });
    assert_eq!(report.mechanism, Some(Mechanism::Cdi));
    assert!(!host.called("docker info"), "podman has no `docker info` runtimes to ask");
    assert_eq!(
        check::docker_args(Mechanism::Cdi, Some(&GpuDevices::Indices(vec![0])), &report.gpus),
        vec!["--device", "nvidia.com/gpu=0"]
    );
    // Without a spec, podman has no way in: the fix is to generate one.
    let bare = FakeHost::with_driver("smi-query-570-titanv-rtx5880.csv", "smi-table-570.133.20-a10-t4.txt")
        .program("nvidia-ctk", ran(0, &fixture("nvidia-ctk-version-1.12.0.txt"), ""));
    let report = check::run(&bare, &Options { podman: true, ..Options::default() });
    assert!(!report.usable);
    let cdi = report.findings.iter().find(|f| f.check == "cdi").unwrap();
    assert_eq!(cdi.status, Status::Fail);
    assert_eq!(cdi.fix.as_deref(), Some("sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"));
}

#[test]
fn a_working_host_reads_well() {
    let host = FakeHost::with_driver("smi-query-570-titanv-rtx5880.csv", "smi-table-570.133.20-a10-t4.txt")
        .program("nvidia-ctk", ran(0, &fixture("nvidia-ctk-version-1.12.0.txt"), ""))
        .docker(RUNTIMES, ran(0, &fixture("docker-info-runtimes-toolkit-unregistered.txt"), ""))
        .docker("docker run", ran(0, &fixture("smi-list-570-titanv-rtx5880.txt"), ""));
    let context: dpe_plugin::Context = serde_json::from_value(serde_json::json!({
        "protocol": dpe_plugin::PROTOCOL_VERSION, "dpe_version": "0.1.0", "dpe_bin": "/nonexistent/dpe",
        "plugin": "gpu", "workspace": null, "project": null, "config": {}, "config_files": [],
        "state_dir": "/s", "data_dir": "/d", "config_dir": "/c", "cache_dir": "/k",
        "verbosity": 0, "color": "never", "json": false, "no_hooks": false
    }))
    .unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = dpe_gpu::run_with(&context, &host, &["check".into(), "--probe".into()], &mut out, &mut err);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\
✓ NVIDIA driver 570.86.15, CUDA ≤ 12.8
✓ GPU 0: NVIDIA TITAN V, compute capability 7.0
✓ GPU 1: NVIDIA RTX 5880 Ada Generation, compute capability 8.9
✓ NVIDIA Container Toolkit 1.12.0 (`nvidia-ctk`)
! `nvidia` runtime not registered with docker (`--gpus` can still work through the toolkit's hook)
  help: sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker
- no CDI spec for nvidia.com/gpu in /etc/cdi or /var/run/cdi
✓ a container sees 2 GPU(s): 0: NVIDIA TITAN V; 1: NVIDIA RTX 5880 Ada Generation

containers can use the GPU with `--gpus`
"
    );
    assert_eq!(String::from_utf8(err).unwrap(), "");
    assert_eq!(code, 0);
}

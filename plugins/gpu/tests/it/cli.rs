//! `dpe gpu …` end to end through the built `dpe`, in a hermetic sandbox. These machines have
//! no NVIDIA GPU, so the no-driver path runs for real; a GPU host is played by a recorded
//! `nvidia-smi` placed first on PATH (the one thing that cannot be had here).

use dpe_testkit::{binary, docker_available, DockerCleanup, Sandbox};
use std::path::PathBuf;
use std::process::Output;

/// Whether `program` is in the system directories the sandbox's PATH includes.
fn system_has(program: &str) -> bool {
    let found = std::env::split_paths("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .any(|dir| dir.join(program).exists());
    if found {
        eprintln!("skipped: this machine has `{program}`");
    }
    found
}

/// Whether this machine really has `nvidia-smi`, in which case the no-driver tests do not apply.
fn host_has_nvidia_smi() -> bool {
    let found = system_has("nvidia-smi");
    if found {
        eprintln!("skipped: this machine has `nvidia-smi`, so the no-driver path cannot be tested here");
    }
    found
}

fn run(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.dpe().args(args).output().expect("run dpe")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const NO_DRIVER: &str = "\
✗ no NVIDIA GPU driver on this host (`nvidia-smi` is not installed)
  help: containers here run on the CPU; on a machine with an NVIDIA GPU, install its driver (https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/) and run `dpe gpu check` again

containers cannot use a GPU on this host
";

#[test]
fn check_without_a_driver_is_calm_and_exits_1() {
    if host_has_nvidia_smi() {
        return;
    }
    let sandbox = Sandbox::new();
    let out = run(&sandbox, &["gpu", "check"]);
    assert_eq!(text(&out.stdout), NO_DRIVER);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(1));
    // `--probe` changes nothing: there is nothing to probe.
    let probed = run(&sandbox, &["gpu", "check", "--probe"]);
    assert_eq!(text(&probed.stdout), NO_DRIVER);
    assert_eq!(probed.status.code(), Some(1));
}

#[test]
fn check_json_without_a_driver_says_unusable() {
    if host_has_nvidia_smi() {
        return;
    }
    let sandbox = Sandbox::new();
    let out = run(&sandbox, &["gpu", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check --json prints JSON");
    assert_eq!(report["usable"], false);
    assert_eq!(report["driver"], serde_json::Value::Null);
    assert_eq!(report["findings"][0]["check"], "nvidia-smi");
    assert_eq!(report["findings"][0]["status"], "fail");
    assert_eq!(report["findings"][0]["message"], "no NVIDIA GPU driver on this host (`nvidia-smi` is not installed)");
}

#[test]
fn check_with_a_project_without_a_driver() {
    if host_has_nvidia_smi() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.project("demo", "gpu = \"required\"\n");
    let out = run(&sandbox, &["gpu", "check", "demo"]);
    assert_eq!(text(&out.stdout), NO_DRIVER);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn flags_follow_the_project_gpu_mode() {
    if host_has_nvidia_smi() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.project("cpu", "");
    sandbox.project("maybe", "gpu = \"auto\"\ngpu_devices = 1\n");
    sandbox.project("must", "gpu = \"required\"\n");

    let off = run(&sandbox, &["gpu", "flags", "cpu", "--json"]);
    assert_eq!(off.status.code(), Some(0), "{}", text(&off.stderr));
    let off: serde_json::Value = serde_json::from_slice(&off.stdout).unwrap();
    assert_eq!(
        off,
        serde_json::json!({"mode": "off", "use_gpu": false, "docker_args": [], "compose": null, "notice": null, "findings": []})
    );

    let auto = run(&sandbox, &["gpu", "flags", "maybe", "--json"]);
    assert_eq!(auto.status.code(), Some(0), "{}", text(&auto.stderr));
    assert_eq!(text(&auto.stderr), "");
    let auto: serde_json::Value = serde_json::from_slice(&auto.stdout).unwrap();
    assert_eq!(auto["mode"], "auto");
    assert_eq!(auto["use_gpu"], false);
    assert_eq!(auto["docker_args"], serde_json::json!([]));
    assert_eq!(auto["compose"], serde_json::Value::Null);
    assert_eq!(
        auto["notice"],
        "GPU not usable (no NVIDIA GPU driver on this host (`nvidia-smi` is not installed)); running on the CPU (`dpe gpu check` says why)"
    );

    let required = run(&sandbox, &["gpu", "flags", "must", "--json"]);
    assert_eq!(required.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&required.stdout).unwrap();
    assert_eq!(answer["mode"], "required");
    assert_eq!(answer["use_gpu"], false);
    assert_eq!(
        text(&required.stderr),
        "error: project `must` requires a GPU (`gpu = \"required\"`) but containers cannot use one here\n\
         ✗ no NVIDIA GPU driver on this host (`nvidia-smi` is not installed)\n  \
         help: containers here run on the CPU; on a machine with an NVIDIA GPU, install its driver (https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/) and run `dpe gpu check` again\n"
    );
}

#[test]
fn images_without_a_driver_lists_the_cpu_images() {
    if host_has_nvidia_smi() {
        return;
    }
    let sandbox = Sandbox::new();
    let out = run(&sandbox, &["gpu", "images"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "no NVIDIA GPU driver on this host (`nvidia-smi` is not installed): only the CPU images run here\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("✓ quay.io/jupyter/pytorch-notebook:latest "), "{stdout}");
    assert!(stdout.contains("✗ quay.io/jupyter/pytorch-notebook:cuda12-latest "), "{stdout}");
    let json = run(&sandbox, &["gpu", "images", "--json"]);
    let answer: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let fitting: Vec<&str> = answer["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["fits"] == true)
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(fitting, vec!["quay.io/jupyter/pytorch-notebook:latest", "quay.io/jupyter/tensorflow-notebook:latest"]);
}

#[test]
fn usage_errors_exit_2() {
    let sandbox = Sandbox::new();
    let out = run(&sandbox, &["gpu", "chekc"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: no `dpe gpu` command named `chekc`\nhelp: the commands are `check`, `flags` and `images`\n"
    );
    let out = run(&sandbox, &["gpu", "check", "--prob"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: unknown option `--prob` for `dpe gpu check`\n"));
}

/// A recorded `nvidia-smi` (two GPUs, driver 570) first on PATH.
fn fake_nvidia_smi(sandbox: &Sandbox) {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let script = format!(
        "#!/bin/sh\n# Replays recorded outputs (tests/fixtures/README.md).\ncase \"$1\" in\n  --query-gpu=*) cat '{csv}' ;;\n  -L) cat '{list}' ;;\n  *) cat '{table}' ;;\nesac\n",
        csv = fixtures.join("smi-query-570-titanv-rtx5880.csv").display(),
        list = fixtures.join("smi-list-570-titanv-rtx5880.txt").display(),
        table = fixtures.join("smi-table-570.133.20-a10-t4.txt").display(),
    );
    sandbox.write_exe("bin/nvidia-smi", &script);
}

#[test]
fn a_gpu_host_without_the_toolkit_is_told_to_install_it() {
    // A machine with the toolkit installed is not the situation under test.
    if system_has("nvidia-ctk") || system_has("nvidia-container-runtime-hook") || !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    fake_nvidia_smi(&sandbox);
    let out = run(&sandbox, &["gpu", "check", "--probe"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.starts_with("✓ NVIDIA driver 570.86.15, CUDA ≤ 12.8\n✓ GPU 0: NVIDIA TITAN V, compute capability 7.0\n✓ GPU 1: NVIDIA RTX 5880 Ada Generation, compute capability 8.9\n"), "{stdout}");
    assert!(stdout.contains("✗ NVIDIA Container Toolkit not installed (no `nvidia-ctk`)\n  help: install it (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html), then `sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`\n"), "{stdout}");
    assert!(
        stdout
            .ends_with("containers cannot use the GPU yet: fix the ✗ lines above, then run `dpe gpu check --probe`\n"),
        "{stdout}"
    );
}

#[test]
fn the_library_and_the_executable_answer_alike() {
    // `cargo test` may leave the cdylib in deps/ only; the test kit looks there too.
    let library = binary(&format!("libdpe_gpu{}", std::env::consts::DLL_SUFFIX));
    let _ = binary("dpe-gpu");
    let sandbox = Sandbox::new();
    sandbox.project("must", "gpu = \"required\"\n");
    let cases: [&[&str]; 4] =
        [&["gpu", "check"], &["gpu", "check", "--json"], &["gpu", "flags", "must", "--json"], &["gpu", "images"]];
    let before: Vec<Output> = cases.iter().map(|args| run(&sandbox, args)).collect();
    // Installed into the plugin directory, the library is found before the executable.
    std::fs::create_dir_all(sandbox.path("data/plugins")).unwrap();
    std::fs::copy(&library, sandbox.path(&format!("data/plugins/libdpe_gpu{}", std::env::consts::DLL_SUFFIX))).unwrap();
    for (args, exe) in cases.iter().zip(before) {
        let lib = run(&sandbox, args);
        assert_eq!(lib.status.code(), exe.status.code(), "{args:?}: {}", text(&lib.stderr));
        assert_eq!(text(&lib.stdout), text(&exe.stdout), "{args:?}");
        assert_eq!(text(&lib.stderr), text(&exe.stderr), "{args:?}");
    }
}

/// Removes a test image when dropped, so a failing test leaves none behind.
struct ImageCleanup(String);

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn a_project_image_too_new_for_the_driver_and_a_container_that_lost_nvml() {
    if system_has("nvidia-ctk") || !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    fake_nvidia_smi(&sandbox);
    // An image that declares CUDA 13.0 the way NVIDIA's bases do, and whose `nvidia-smi` replays
    // what a container that lost its GPU prints (tests/fixtures/smi-nvml-lost.txt).
    let image = format!("dpe-test/gpu-{}:latest", sandbox.id());
    let _image_cleanup = ImageCleanup(image.clone());
    sandbox.write(
        "image/Dockerfile",
        &format!(
            "FROM {}\nENV CUDA_VERSION=13.0.1 NVIDIA_REQUIRE_CUDA=\"cuda>=13.0\"\nRUN printf '#!/bin/sh\\necho \"Failed to initialize NVML: Unknown Error\"\\nexit 255\\n' > /usr/local/bin/nvidia-smi && chmod +x /usr/local/bin/nvidia-smi\n",
            dpe_testkit::BASE_IMAGE
        ),
    );
    let built = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &image])
        .arg(sandbox.path("image"))
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built.stderr));
    sandbox.project("demo", &format!("gpu = \"required\"\nimage = \"{image}\"\n"));
    let workspace = sandbox.workspace().display().to_string();
    let started = std::process::Command::new("docker")
        .args(["run", "-d", "--label", "dpe.project=demo", "--label", &format!("dpe.workspace={workspace}")])
        .args(["--name", &format!("{}-demo", sandbox.id()), &image, "sleep", "300"])
        .output()
        .unwrap();
    assert!(started.status.success(), "{}", text(&started.stderr));

    let out = run(&sandbox, &["gpu", "check", "demo"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "✗ image `{image}` needs CUDA 13.0 (NVIDIA_REQUIRE_CUDA cuda>=13.0) but driver 570.86.15 supports up to CUDA 12.8\n  help: update the NVIDIA driver to 580.65.06 or newer"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "✗ running container `{}-demo` lost its GPU (Failed to initialize NVML: Unknown Error)\n  help: recreate the container: `dpe docker rm -f {}-demo`",
            sandbox.id(),
            sandbox.id()
        )),
        "{stdout}"
    );
}

//! `dpe export --to dockerfile`: plain `docker build` of the output gives an environment whose
//! `pip freeze` is the lock, hand-installed packages included.

use crate::support::*;
use dpe_testkit::{docker_available, DockerCleanup, Sandbox, BASE_IMAGE};
use std::fs;

#[test]
fn dockerfile_export_rebuilds_with_plain_docker_to_the_same_freeze() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    let project = "rebuild";
    sandbox.project(project, PROJECT_TOML);
    start_and_install_by_hand(&sandbox, project);

    let out = sandbox.path("rebuild-environment");
    let exported = ok(&mut dpe(&sandbox, &["export", project, "--to", "dockerfile", out.to_str().unwrap()]));
    assert!(
        stdout(&exported).contains("(1 installed by hand)") || stdout(&exported).contains("1 installed by hand"),
        "{}",
        stdout(&exported)
    );
    assert_eq!(
        tree(&out),
        [
            "Dockerfile",
            "local",
            "local/work",
            "local/work/dist",
            "local/work/dist/tinypkg-0.1-py3-none-any.whl",
            "requirements.lock"
        ]
    );
    let dockerfile = fs::read_to_string(out.join("Dockerfile")).unwrap();
    let base_id = stdout(&docker(&["image", "inspect", "--format", "{{.Id}}", BASE_IMAGE])).trim().to_string();
    assert!(dockerfile.contains(&format!("\nFROM {base_id}\n")), "{dockerfile}");
    assert!(dockerfile.contains("it has no registry digest"), "{dockerfile}");
    let lock = fs::read_to_string(out.join("requirements.lock")).unwrap();
    assert!(lock.contains("\ntinypkg @ file:///work/dist/tinypkg-0.1-py3-none-any.whl\n"), "{lock}");
    let live = stdout(&ok(&mut dpe(&sandbox, &["export", project, "--to", "lock"])));
    assert_eq!(lock, live);

    let tag = format!("dpe-export-test/{}:latest", sandbox.id());
    let _images = ImageCleanup(vec![tag.clone()]);
    let build = docker(&["build", "--tag", &tag, out.to_str().unwrap()]);
    assert!(build.status.success(), "docker build failed:\n{}\n{}", stdout(&build), stderr(&build));
    let freeze = docker(&["run", "--rm", "--network", "none", &tag, "python3", "-m", "pip", "freeze"]);
    assert!(freeze.status.success(), "{}", stderr(&freeze));
    assert_eq!(stdout(&freeze), lock);
    let value =
        docker(&["run", "--rm", "--network", "none", &tag, "python3", "-c", "import tinypkg; print(tinypkg.VALUE)"]);
    assert_eq!(stdout(&value), "42\n");
}

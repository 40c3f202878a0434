//! `dpe export --to archive` and `dpe import`: the full round trip on the real engine, and the
//! archives an import must refuse without changing anything.

use crate::support::*;
use dpe_testkit::{docker_available, DockerCleanup, Sandbox};
use std::fs;

const REQUIREMENTS: &str = "# the dpe export round-trip test\niniconfig==2.0.0\n";

/// The round trip's configuration: the suite's, with an `env` value of its own, which gives the
/// project an environment image no other test shares (so the test may remove it and prove the
/// archive brings it back; Python packages are not in images), and the host's CA bundle, so
/// its requirement is synced from the package index before the export.
fn roundtrip_toml() -> String {
    format!(
        "{PROJECT_TOML}ca_certificates = [\"/etc/ssl/certs/ca-certificates.crt\"]\n[env]\nDPE_TEST_ROUNDTRIP = \"1\"\n"
    )
}

const NOTEBOOK: &str = r#"{"cells": [{"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": ["import tinypkg"]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}"#;

#[test]
fn archive_round_trip_brings_back_hand_installed_packages_notebooks_and_the_same_freeze() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    let project = "roundtrip";
    let project_dir = sandbox.project(project, &roundtrip_toml());
    sandbox.write("workspace/projects/roundtrip/notebooks/analysis.ipynb", NOTEBOOK);
    sandbox.write("workspace/projects/roundtrip/requirements.txt", REQUIREMENTS);
    // Trusted: its environment lives in the shared package store, which the archive must not
    // need (the volume only links to it).
    ok(&mut dpe(&sandbox, &["trust"]));
    let spec = spec(&sandbox, project);
    let jupyter_tag = spec["image"].as_str().unwrap().to_string();
    let jupyter_id = stdout(&docker(&["image", "inspect", "--format", "{{.Id}}", &jupyter_tag])).trim().to_string();
    let export_tag = "dpe-export/roundtrip:latest".to_string();
    let environment_tag = "dpe-export/roundtrip:latest-environment".to_string();
    // The imported environment's tag: of this project (and workspace) alone.
    let workspace_hash =
        spec["volume"].as_str().unwrap().strip_prefix("dpe-roundtrip-").unwrap().strip_suffix("-env").unwrap();
    let imported_tag = format!(
        "dpe-jupyter-imported:roundtrip-{workspace_hash}-{}",
        jupyter_tag.strip_prefix("dpe-jupyter:").unwrap()
    );
    let _images =
        ImageCleanup(vec![export_tag.clone(), environment_tag.clone(), jupyter_tag.clone(), imported_tag.clone()]);

    start_and_install_by_hand(&sandbox, project);
    let venv = || stdout(&ok(&mut dpe(&sandbox, &["jupyter", "exec", project, "--", "readlink", "/dpe/venv"])));
    assert_eq!(venv(), format!("/dpe-cache/envs/{}\n", spec["volume"].as_str().unwrap()));
    let lock = ok(&mut dpe(&sandbox, &["export", project, "--to", "lock"]));
    let lock_before = stdout(&lock);
    assert!(lock_before.contains("\ntinypkg @ file:///work/dist/tinypkg-0.1-py3-none-any.whl\n"), "{lock_before}");
    assert_eq!(
        stderr(&lock),
        "installed by hand (1), not declared in dpe.toml or requirements:\n  + tinypkg @ file:///work/dist/tinypkg-0.1-py3-none-any.whl\n"
    );

    let archive = sandbox.path("roundtrip.dpe");
    let archive_arg = archive.to_str().unwrap();
    let exported = ok(&mut dpe(&sandbox, &["export", project, "--to", "archive", archive_arg, "--with-data"]));
    let text = stdout(&exported);
    assert!(text.starts_with(&format!("wrote `{archive_arg}` (")), "{text}");
    assert!(text.contains(&format!("\nimport it with: dpe import {archive_arg}\n")), "{text}");
    // The exported image describes itself.
    let label = docker(&["image", "inspect", "--format", "{{index .Config.Labels \"dpe.toml\"}}", &export_tag]);
    assert_eq!(stdout(&label), format!("{}\n", roundtrip_toml()));

    // Refusals change nothing: not the projects, not the images.
    let projects = sandbox.workspace().join("projects");
    let images_before = [tagged("dpe-export/roundtrip"), tagged(&jupyter_tag)];
    let taken = dpe(&sandbox, &["import", archive_arg]).output().unwrap();
    assert_eq!(taken.status.code(), Some(1));
    assert_eq!(
        stderr(&taken),
        format!(
            "error: project `roundtrip` already exists in `{}`\nhelp: import it under another name with `--as NEW_NAME`, or replace `roundtrip` and its environment with `--force`\n",
            projects.display()
        )
    );
    let bytes = fs::read(&archive).unwrap();
    let cut = sandbox.path("cut.dpe");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let truncated = dpe(&sandbox, &["import", cut.to_str().unwrap(), "--as", "copy"]).output().unwrap();
    assert_eq!(truncated.status.code(), Some(1));
    assert_eq!(
        stderr(&truncated),
        format!(
            "error: `{}` is damaged or not a dpe archive: it is truncated (the compressed stream ends early)\n\
             help: nothing was changed; copy the file again, or export it again with `dpe export PROJECT --to archive FILE`\n",
            cut.display()
        )
    );
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    let tampered = sandbox.path("tampered.dpe");
    fs::write(&tampered, &flipped).unwrap();
    let refused = dpe(&sandbox, &["import", tampered.to_str().unwrap(), "--as", "copy"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.starts_with(&format!("error: `{}` is damaged or not a dpe archive: ", tampered.display())),
        "{message}"
    );
    assert!(message.ends_with("help: nothing was changed; copy the file again, or export it again with `dpe export PROJECT --to archive FILE`\n"), "{message}");
    assert_eq!(tree(&projects).iter().filter(|p| !p.starts_with("roundtrip")).count(), 0, "{:?}", tree(&projects));
    let images_after = [tagged("dpe-export/roundtrip"), tagged(&jupyter_tag)];
    assert_eq!(images_after, images_before, "a refused import changed the images");

    // Remove the project, its container, volume and images: only the archive is left.
    ok(&mut dpe(&sandbox, &["jupyter", "stop", project]));
    let _ = docker(&["rm", "--force", spec["container"].as_str().unwrap()]);
    assert!(docker(&["volume", "rm", spec["volume"].as_str().unwrap()]).status.success());
    for tag in [&export_tag, &environment_tag, &jupyter_tag] {
        assert!(docker(&["image", "rm", tag]).status.success(), "removing {tag}");
    }
    let original_files = tree(&project_dir);
    fs::remove_dir_all(&project_dir).unwrap();

    let imported = ok(&mut dpe(&sandbox, &["import", archive_arg]));
    let text = stdout(&imported);
    let volume = spec["volume"].as_str().unwrap();
    let prefix =
        format!("imported `roundtrip` into `{}` (with its project folder, environment ", project_dir.display());
    let suffix = format!(
        " in volume `{volume}`)\nits environment image is `{imported_tag}`: start it with `dpe jupyter roundtrip`\n"
    );
    assert!(text.starts_with(&prefix) && text.ends_with(&suffix), "{text}");
    let imported_id = stdout(&docker(&["image", "inspect", "--format", "{{.Id}}", &imported_tag])).trim().to_string();
    assert_eq!(imported_id, jupyter_id, "the environment image came back from the archive");
    // Under no tag another project could find: not the shared content-hash one, no `dpe-export/…`.
    assert!(!docker(&["image", "inspect", &jupyter_tag]).status.success(), "the shared tag was set");
    assert_eq!(tagged("dpe-export/roundtrip"), Vec::<String>::new());
    assert_eq!(tree(&project_dir), original_files);
    assert_eq!(fs::read_to_string(project_dir.join("notebooks/analysis.ipynb")).unwrap(), NOTEBOOK);
    assert_eq!(fs::read_to_string(project_dir.join("dpe.toml")).unwrap(), roundtrip_toml());
    assert!(fs::read_to_string(project_dir.join("pylock.toml")).unwrap().contains("name = \"iniconfig\""));

    // It starts from the imported image, without building and without the network (no way out
    // of the container), with the synced package and the one installed by hand.
    let started = ok(dpe(&sandbox, &["jupyter", project, "--detach"])
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9"));
    assert!(!stderr(&started).contains("building"), "{}", stderr(&started));
    assert_eq!(tinypkg_value(&sandbox, project), "42");
    // The environment the archive brought moved into the store, replacing what the removed
    // volume had left there.
    assert_eq!(venv(), format!("/dpe-cache/envs/{volume}\n"));
    let synced = ok(&mut dpe(
        &sandbox,
        &["jupyter", "exec", project, "--", "python3", "-c", "import iniconfig; print(iniconfig.__file__)"],
    ));
    assert_eq!(stdout(&synced).trim(), "/dpe/venv/lib/python3.11/site-packages/iniconfig/__init__.py");
    let lock_after = stdout(&ok(&mut dpe(&sandbox, &["export", project, "--to", "lock"])));
    assert_eq!(lock_after, lock_before);

    // `--force` replaces the running project, environment included: a package removed since
    // comes back from the archive.
    // Work done since the export is not lost: the replaced folder is kept beside the projects.
    ok(&mut dpe(&sandbox, &["jupyter", "exec", project, "--", "pip", "uninstall", "--yes", "tinypkg"]));
    sandbox.write("workspace/projects/roundtrip/notebooks/since.ipynb", "work done since the export");
    let replaced = ok(&mut dpe(&sandbox, &["import", archive_arg, "--force"]));
    let message = format!("dpe: replacing `roundtrip`: its old environment volume `{volume}` was removed\n");
    assert!(stderr(&replaced).contains(&message), "{}", stderr(&replaced));
    let kept: Vec<_> = fs::read_dir(sandbox.path("workspace/projects"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with(".roundtrip.replaced-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(fs::read_to_string(kept[0].join("notebooks/since.ipynb")).unwrap(), "work done since the export");
    let note = format!("note: the folder `roundtrip` had before is kept as `{}`", kept[0].display());
    assert!(stderr(&replaced).contains(&note), "{}", stderr(&replaced));
    assert!(!project_dir.join("notebooks/since.ipynb").exists());
    ok(&mut dpe(&sandbox, &["jupyter", project, "--detach"]));
    assert_eq!(tinypkg_value(&sandbox, project), "42");

    // Another project with the same inputs never runs the imported image: it builds its own,
    // under the shared tag.
    sandbox.project("twin", &roundtrip_toml());
    sandbox.write("workspace/projects/twin/requirements.txt", REQUIREMENTS);
    assert_eq!(crate::support::spec(&sandbox, "twin")["image"], jupyter_tag);
    assert!(docker(&["image", "inspect", &jupyter_tag]).status.success());
    assert_eq!(crate::support::spec(&sandbox, project)["image"], imported_tag);
}

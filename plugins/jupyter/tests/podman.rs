//! `dpe jupyter` with `[engine] program = "podman"`, end to end against the real Podman: start
//! (a trusted project, its requirement synced into the shared store), url, status, list, stop
//! and a restart that keeps port and token, with the user's hooks running around every engine
//! call.
//!
//! One test, one project: the image is built by Podman from Debian's packages (it cannot share
//! the Docker e2e's build, the engines keep separate image stores), so the lane adds one build.
//! Its tag is the hash of the inputs, so later runs find it and skip the build. The sandbox
//! gives Podman a `containers.conf` (see `Sandbox::podman_config`) through `CONTAINERS_CONF`.

#![allow(clippy::disallowed_methods, reason = "tests run the programs they check directly")]

use dpe_testkit::{podman, podman_available, DockerCleanup, Sandbox, PODMAN_BASE_IMAGE};
use serde_json::Value;
use std::process::{Output, Stdio};
use std::time::Duration;

/// Debian's notebook on the offline base image, with pip (which fetches uv) and the host's CA
/// bundle (which reaches the package index), to sync a requirement.
fn project_toml() -> String {
    format!(
        "image = \"{PODMAN_BASE_IMAGE}\"\napt_packages = [\"python3-notebook\", \"python3-pip\", \"python3-venv\"]\nca_certificates = [\"/etc/ssl/certs/ca-certificates.crt\"]\n"
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The HTTP status of `GET url` (the server's own API, with the token).
fn http_status(url: &str) -> u16 {
    match ureq::get(url).timeout(Duration::from_secs(30)).call() {
        Ok(response) => response.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// `http://127.0.0.1:PORT/project_p/?token=T` → `…/project_p/api/status?token=T`.
fn api_status_url(url: &str) -> String {
    url.replacen("/?token=", "/api/status?token=", 1)
}

/// The names of the sandbox's containers as `program` (`docker` or `podman`) lists them.
fn containers_in(mut engine: std::process::Command, sandbox: &Sandbox) -> Vec<String> {
    let filter = format!("label=dpe.workspace={}", sandbox.workspace().display());
    let out = engine.args(["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]).output().unwrap();
    text(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn podman_serves_lists_stops_and_restarts_a_project() {
    if !podman_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::podman(&sandbox);
    sandbox.write("workspace/dpe.toml", "[engine]\nprogram = \"podman\"\n[jupyter]\nhost_port_start = 24800\n");
    let dir = sandbox.project("project_p", &project_toml());
    std::fs::write(dir.join("requirements.txt"), "toolz==0.12.1\n").unwrap();
    let log = sandbox.path("hooks.log");
    for phase in ["pre", "post"] {
        sandbox.write_exe(
            &format!("config/hooks/{phase}-docker"),
            &format!("#!/bin/sh\necho \"$DPE_HOOK_PHASE $DPE_DOCKER_VERB\" >> {}\n", log.display()),
        );
    }
    let (conf_key, conf_value) = sandbox.podman_config();
    let dpe = |args: &[&str]| -> Output {
        let out = sandbox.dpe().env(&conf_key, &conf_value).args(args).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "dpe {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        out
    };

    // Trusted: its environment lives in the shared package store, hardlinked from the cache.
    dpe(&["trust"]);

    // Start: built and run by Podman, not Docker.
    let out = dpe(&["jupyter", "project_p", "--detach"]);
    let url = text(&out.stdout).lines().last().unwrap_or_default().to_string();
    assert!(url.starts_with("http://127.0.0.1:") && url.contains("/project_p/?token="), "{url}");
    assert_eq!(http_status(&api_status_url(&url)), 200);
    let names = containers_in(podman(), &sandbox);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(containers_in(std::process::Command::new("docker"), &sandbox).is_empty(), "it ran in Docker");
    let script = "readlink /dpe/venv; stat -c %h /dpe/venv/lib/python3.11/site-packages/toolz/__init__.py";
    let synced = text(&dpe(&["jupyter", "exec", "project_p", "--", "sh", "-c", script]).stdout);
    let (venv, links) = synced.trim().split_once('\n').unwrap_or_else(|| panic!("{synced}"));
    assert!(venv.starts_with("/dpe-cache/envs/dpe-project-p-"), "{synced}");
    assert!(links.parse::<u32>().unwrap() >= 2, "the cache and the environment share the file: {synced}");

    // url, status and list read the container Podman lists (the `ps` template of Docker alone
    // failed here), and say what dpe said at start: no `localhost/`, no "Up … ago".
    assert_eq!(text(&dpe(&["jupyter", "url", "project_p"]).stdout).trim(), url);
    // The hooks ran around the engine's calls, both of the listing's included (`inspect` only
    // runs when `ps` lists something, as it does now; a build only on the first run).
    let hooks = std::fs::read_to_string(&log).unwrap();
    for line in ["pre run", "post run", "pre ps", "post ps", "pre container", "post container"] {
        assert!(hooks.lines().any(|l| l == line), "no `{line}` in the hook log:\n{hooks}");
    }
    let status: Value = serde_json::from_slice(&dpe(&["jupyter", "status", "project_p", "--json"]).stdout).unwrap();
    assert_eq!(status["state"], "running");
    assert_eq!(status["container"], names[0].as_str());
    assert_eq!(status["url"], url.as_str());
    assert!(status["image"].as_str().unwrap().starts_with("dpe-jupyter:"), "{status}");
    let uptime = status["status"].as_str().unwrap();
    assert!(uptime.starts_with("Up ") && !uptime.ends_with(" ago"), "{status}");
    let list: Value = serde_json::from_slice(&dpe(&["jupyter", "list", "--json"]).stdout).unwrap();
    let rows: Vec<&Value> = list.as_array().unwrap().iter().filter(|r| r["project"] == "project_p").collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["url"], url.as_str());
    assert_eq!(rows[0]["workspace"], sandbox.workspace().to_str().unwrap());
    assert_eq!((rows[0]["status"].as_str(), rows[0]["stale"].as_bool()), (Some("running"), Some(false)), "{list}");
    assert!(rows[0]["idle_seconds"].as_u64().is_some(), "{list}");
    // Podman's `stats` (decimal units) and `image inspect` read; its `system df -v` ignores
    // `--format`, so the volume's size is unknown rather than wrong.
    let list: Value = serde_json::from_slice(&dpe(&["jupyter", "list", "--json", "--stats", "--size"]).stdout).unwrap();
    let row = list.as_array().unwrap().iter().find(|r| r["project"] == "project_p").unwrap();
    assert!(row["memory_bytes"].as_u64().is_some_and(|m| m > 1_000_000), "{row}");
    assert!(row["image_bytes"].as_u64().is_some_and(|b| b > 100_000_000), "{row}");
    assert!(row["volume_bytes"].is_null(), "{row}");

    // Stop keeps the container; status says so.
    let out = dpe(&["jupyter", "stop", "project_p"]);
    assert_eq!(
        text(&out.stderr),
        "dpe: stopping `project_p`…\ndpe: `project_p` stopped; its files and installed packages are kept\n"
    );
    assert_eq!(
        text(&dpe(&["jupyter", "status", "project_p"]).stdout),
        "project_p: stopped (files and packages kept; `dpe jupyter project_p` starts it)\n"
    );

    // Restart: the same container, port and token, without a rebuild; a second start finds it
    // running and does not claim it runs another image.
    let out = dpe(&["jupyter", "project_p", "--detach"]);
    assert!(!text(&out.stderr).contains("building"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().last().unwrap_or_default(), url);
    assert_eq!(http_status(&api_status_url(&url)), 200);
    assert_eq!(containers_in(podman(), &sandbox), names);
    let out = dpe(&["jupyter", "project_p", "--detach"]);
    assert_eq!(text(&out.stderr), "dpe: `project_p` is already running\n");
    assert_eq!(text(&out.stdout).trim(), url);

    // A sync that fails keeps its log on the host: read through the environment's real folder,
    // since `podman cp` does not follow `/dpe/venv`'s link into the store.
    let broken = sandbox.project("broken_p", &project_toml());
    std::fs::write(broken.join("requirements.txt"), "this-package-does-not-exist-dpe-test==1.0\n").unwrap();
    dpe(&["trust"]);
    let out = sandbox
        .dpe()
        .env(&conf_key, &conf_value)
        .args(["jupyter", "broken_p", "--detach"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("help: its full log is `")?.split_once("`; ").map(|(path, _)| path.to_string()))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(std::fs::read_to_string(&kept).unwrap().contains("this-package-does-not-exist-dpe-test"), "{kept}");
}

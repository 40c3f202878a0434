//! `dpe jupyter list` against the real engine and real Jupyter servers: running and stopped
//! environments, the idle time the server itself reports, sizes under `--size`, staleness after
//! a configuration change (in the current workspace and in another one, and unknown once the
//! project is gone), and the GPU memory of a container's processes placed by their cgroup.
//!
//! The projects use the configuration of `e2e.rs` (Jupyter from Debian's packages on the
//! offline `dpe-test/bookworm`), so they share its cached image. Each sandbox is its own user
//! (its own state folder): `list` shows only environments whose token that user holds, so
//! other tests running on the same engine never appear in these listings.

#![allow(clippy::disallowed_methods, reason = "tests run the programs they check directly")]

use dpe_testkit::{docker_available, DockerCleanup, Sandbox};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const PROJECT_TOML: &str = r#"image = "dpe-test/bookworm:latest"
apt_packages = ["python3-notebook", "python3-pandas", "python3-pip", "python3-venv"]
ca_certificates = ["/etc/ssl/certs/ca-certificates.crt"]
"#;

fn dpe_in(sandbox: &Sandbox, workspace: &Path, args: &[&str]) -> (String, String) {
    let out: Output = sandbox.dpe().arg("-C").arg(workspace).args(args).stdin(Stdio::null()).output().expect("run dpe");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "dpe {args:?} failed:\n{stdout}{stderr}");
    (stdout, stderr)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `list --json` (with `flags`), by project name.
fn listed(sandbox: &Sandbox, flags: &[&str]) -> Vec<Value> {
    let mut args = vec!["jupyter", "list", "--json"];
    args.extend(flags);
    let (stdout, _) = dpe_in(sandbox, &sandbox.workspace(), &args);
    serde_json::from_str::<Value>(&stdout).unwrap().as_array().unwrap().clone()
}

fn find<'a>(rows: &'a [Value], project: &str) -> &'a Value {
    rows.iter().find(|r| r["project"] == project).unwrap_or_else(|| panic!("no `{project}` in {rows:#?}"))
}

/// The cells of the table row of `project` (cells are two spaces or more apart).
fn cells(table: &str, project: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(project))
        .unwrap_or_else(|| panic!("no row for `{project}` in:\n{table}"));
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect()
}

/// Removes the containers and volumes of a second workspace when dropped.
struct WorkspaceCleanup(PathBuf);

impl Drop for WorkspaceCleanup {
    fn drop(&mut self) {
        let filter = format!("label=dpe.workspace={}", self.0.display());
        for (list, remove) in
            [(&["ps", "-aq"][..], &["rm", "-f"][..]), (&["volume", "ls", "-q"], &["volume", "rm", "-f"])]
        {
            let out = Command::new("docker").args(list).args(["--filter", &filter]).output().unwrap();
            let ids: Vec<String> = text(&out.stdout).split_whitespace().map(String::from).collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(remove).args(&ids).output();
            }
        }
    }
}

/// Starts `live`, starts and stops `parked` in the sandbox's workspace and `away` in
/// `elsewhere`; returns `live`'s URL.
fn start_three(sandbox: &Sandbox, elsewhere: &Path) -> String {
    let workspace = sandbox.workspace();
    for name in ["live", "parked"] {
        sandbox.project(name, PROJECT_TOML);
    }
    sandbox.write("elsewhere/projects/away/dpe.toml", PROJECT_TOML);
    let (url, _) = dpe_in(sandbox, &workspace, &["jupyter", "live", "--detach"]);
    dpe_in(sandbox, &workspace, &["jupyter", "parked", "--detach"]);
    dpe_in(sandbox, &workspace, &["jupyter", "stop", "parked"]);
    dpe_in(sandbox, elsewhere, &["jupyter", "away", "--detach"]);
    dpe_in(sandbox, elsewhere, &["jupyter", "stop", "away"]);
    url.lines().last().unwrap().to_string()
}

#[test]
fn list_shows_running_and_stopped_environments_idle_time_sizes_and_staleness() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write("workspace/dpe.toml", "[jupyter]\nhost_port_start = 26300\n");
    let _cleanup = DockerCleanup::new(&sandbox);
    let elsewhere = sandbox.path("elsewhere");
    sandbox.write("elsewhere/dpe.toml", "[jupyter]\nhost_port_start = 26320\n");
    let _elsewhere_cleanup = WorkspaceCleanup(elsewhere.clone());
    let url = start_three(&sandbox, &elsewhere);
    // Nobody uses `live` from now on: its idle time grows, and asking for it (list probes
    // `api/status`) does not count as activity.
    std::thread::sleep(Duration::from_secs(3));

    let rows = listed(&sandbox, &[]);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let live = find(&rows, "live");
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap().parse::<u64>().unwrap();
    assert_eq!((live["status"].as_str(), live["port"].as_u64()), (Some("running"), Some(port)));
    assert_eq!(live["url"].as_str(), Some(url.as_str()));
    let idle = live["idle_seconds"].as_u64().unwrap_or_else(|| panic!("no idle time: {live:#}"));
    assert!((3..600).contains(&idle), "{live:#}");
    assert!(live["last_activity"].as_str().is_some_and(|t| t.contains('T')), "{live:#}");
    assert!(live["uptime_seconds"].as_u64().is_some_and(|u| u >= idle), "{live:#}");
    assert_eq!(live["kernels"].as_u64(), Some(0));
    assert_eq!((live["stale"].as_bool(), &live["planned_image"]), (Some(false), &live["image"]));
    // The slow columns are only there when asked for.
    for key in ["image_bytes", "volume_bytes", "cpu_percent", "memory_bytes"] {
        assert!(live[key].is_null(), "{key}: {live:#}");
    }
    let parked = find(&rows, "parked");
    assert_eq!((parked["status"].as_str(), parked["exit_code"].as_i64()), (Some("stopped"), Some(0)), "{parked:#}");
    for key in ["port", "url", "idle_seconds", "uptime", "gpu_memory_bytes"] {
        assert!(parked[key].is_null(), "{key}: {parked:#}");
    }
    let idle_again = find(&listed(&sandbox, &[]), "live")["idle_seconds"].as_u64().unwrap();
    assert!(idle_again >= idle, "the first listing reset the idle time: {idle} then {idle_again}");

    check_table_and_sizes(&sandbox, port);
    check_staleness(&sandbox, &elsewhere);
}

/// The table (one row each, the workspace named since there are two) and `--size`.
fn check_table_and_sizes(sandbox: &Sandbox, port: u64) {
    let workspace = sandbox.workspace();
    let (table, _) = dpe_in(sandbox, &workspace, &["jupyter", "list"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["PROJECT", "STATUS", "PORT", "UPTIME", "IDLE", "STALE", "WORKSPACE"], "{table}");
    let row = cells(&table, "live");
    assert_eq!((row[1].as_str(), row[2].as_str(), row[5].as_str()), ("running", port.to_string().as_str(), "no"));
    assert!(row[4].ends_with('s') || row[4].ends_with('m'), "idle cell: {table}");
    let workspace_text = workspace.display().to_string();
    assert_eq!(cells(&table, "parked"), ["parked", "stopped", "-", "-", "-", "no", &workspace_text], "{table}");

    // `--size`: the image's bytes as the engine counts them, the volume's and the layer's.
    let sized = listed(sandbox, &["--size"]);
    let parked = find(&sized, "parked");
    let image = parked["image"].as_str().unwrap();
    let inspect = Command::new("docker").args(["image", "inspect", "--format", "{{.Size}}", image]).output().unwrap();
    assert_eq!(parked["image_bytes"].as_u64(), text(&inspect.stdout).trim().parse::<u64>().ok(), "{parked:#}");
    assert!(parked["volume_bytes"].as_u64().is_some_and(|b| b > 0), "{parked:#}");
    assert!(parked["container_bytes"].as_u64().is_some(), "{parked:#}");
    let (table, _) = dpe_in(sandbox, &workspace, &["jupyter", "list", "--size"]);
    let row = cells(&table, "parked");
    assert!(row[5].ends_with("MB") && row[6].ends_with('B'), "{table}");
}

/// A configuration change makes the image stale, in this workspace and in another one; a
/// project whose folder is gone cannot be planned: unknown, not "fresh".
fn check_staleness(sandbox: &Sandbox, elsewhere: &Path) {
    let changed = format!("{PROJECT_TOML}[env]\nDPE_TEST_CHANGED = \"1\"\n");
    sandbox.project("parked", &changed);
    sandbox.write("elsewhere/projects/away/dpe.toml", &changed);
    let rows = listed(sandbox, &[]);
    for name in ["parked", "away"] {
        let row = find(&rows, name);
        assert_eq!(row["stale"].as_bool(), Some(true), "{row:#}");
        assert_ne!(row["planned_image"], row["image"], "{row:#}");
    }
    assert_eq!(find(&rows, "live")["stale"].as_bool(), Some(false));
    std::fs::remove_dir_all(elsewhere.join("projects/away")).unwrap();
    let rows = listed(sandbox, &[]);
    assert!(find(&rows, "away")["stale"].is_null(), "{rows:#?}");
    let (table, _) = dpe_in(sandbox, &sandbox.workspace(), &["jupyter", "list"]);
    assert_eq!(cells(&table, "away")[5], "?", "{table}");
    assert_eq!(cells(&table, "parked")[5], "yes", "{table}");
}

/// `--stats` gives a running server its CPU and memory, from one snapshot.
#[test]
fn stats_show_the_memory_a_running_server_uses() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write("workspace/dpe.toml", "[jupyter]\nhost_port_start = 26340\n");
    let _cleanup = DockerCleanup::new(&sandbox);
    sandbox.project("busy", &format!("{PROJECT_TOML}memory = \"1g\"\n"));
    dpe_in(&sandbox, &sandbox.workspace(), &["jupyter", "busy", "--detach"]);
    let rows = listed(&sandbox, &["--stats"]);
    let busy = find(&rows, "busy");
    // A Jupyter server and its Python hold tens of megabytes, under the 1 GB limit.
    assert!(busy["memory_bytes"].as_u64().is_some_and(|m| m > 10_000_000), "{busy:#}");
    assert_eq!(busy["memory_limit_bytes"].as_u64(), Some(1 << 30), "{busy:#}");
    assert!(busy["cpu_percent"].as_f64().is_some(), "{busy:#}");
    let (table, _) = dpe_in(&sandbox, &sandbox.workspace(), &["jupyter", "list", "--stats"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["PROJECT", "STATUS", "PORT", "UPTIME", "IDLE", "CPU", "MEM", "STALE"], "{table}");
    assert!(cells(&table, "busy")[6].ends_with("MB"), "{table}");
}

/// The GPU memory `nvidia-smi` gives a process is the container's that runs it: a real
/// container's process, found through its cgroup, with `nvidia-smi`'s lines in its format (no
/// GPU here to print them).
#[test]
fn gpu_memory_of_a_process_goes_to_its_container() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    let label = format!("dpe.workspace={}", sandbox.workspace().display());
    let run = |name: &str| {
        let out = Command::new("docker")
            .args(["run", "-d", "--label", &label, "--name", &format!("{}-{name}", sandbox.id())])
            .args(["dpe-test/bookworm:latest", "sleep", "300"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    let (on_gpu, other) = (run("gpu"), run("other"));
    let pid = |id: &str| {
        let out = Command::new("docker").args(["inspect", "--format", "{{.State.Pid}}", id]).output().unwrap();
        text(&out.stdout).trim().parse::<u32>().unwrap()
    };
    let smi = format!("{}, 1024\n{}, 512\n1, 64\n", pid(&on_gpu), pid(&on_gpu));
    let apps = dpe_jupyter::usage::parse_compute_apps(&smi);
    let held = dpe_jupyter::usage::held_by(&apps, &[on_gpu.clone(), other.clone()]);
    assert_eq!(held.get(&on_gpu), Some(&(1536 << 20)));
    assert_eq!(held.get(&other), None);
    assert_eq!(held.len(), 1, "{held:?}");
}

//! `dpe jupyter rm` and `dpe jupyter gc` against the real engine.
//!
//! Every project here is this sandbox's own: a unique `[env]` value gives it its own image (a
//! build of dpe's small layer on the offline `dpe-test/bookworm`, seconds), and a running one
//! serves HTTP with the image's perl, so no Jupyter is needed. Other tests run on the same
//! engine at the same time, each sandbox being another "user" (its own state directory): every
//! assertion looks at this sandbox's own names only, and a second sandbox checks that one
//! user's `gc` never weighs what another made.

#![allow(clippy::disallowed_methods, reason = "tests run the programs they check directly")]

use dpe_plugin::sdk::units::decimal as human;
use dpe_testkit::{docker_available, DockerCleanup, Sandbox};
use serde_json::Value;
use std::process::{Command, Output, Stdio};

/// A server answering 200 to every request on the container port, stopping on SIGTERM.
const SERVER: &str = r#"[jupyter]
command = ["perl", "-MIO::Socket::INET", "-e", '$SIG{TERM} = sub { exit 0 }; my $s = IO::Socket::INET->new(LocalPort => 8888, Listen => 5, ReuseAddr => 1) or die "listen: $!"; while (my $c = $s->accept) { <$c>; print $c "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"; close $c }']
"#;

/// A project of this sandbox: its own image, changed by `version`; `serves` adds the server.
fn config(sandbox: &Sandbox, version: u32, serves: bool) -> String {
    let server = if serves { SERVER } else { "" };
    format!(
        "image = \"dpe-test/bookworm:latest\"\n{server}[env]\nDPE_TEST_SANDBOX = \"{}\"\nDPE_TEST_VERSION = \"{version}\"\n",
        sandbox.id()
    )
}

/// A sandbox whose ports start at `host_port_start` (tests run in parallel).
/// The images go after the containers that use them: `DockerCleanup`, bound last, drops first.
fn new_sandbox(host_port_start: u16) -> (Sandbox, ImageCleanup, DockerCleanup) {
    let sandbox = Sandbox::new();
    sandbox.write("workspace/dpe.toml", &format!("[jupyter]\nhost_port_start = {host_port_start}\n"));
    let cleanup = DockerCleanup::new(&sandbox);
    let images = ImageCleanup(sandbox.workspace().to_string_lossy().into_owned());
    (sandbox, images, cleanup)
}

/// Removes the images this sandbox's builds labelled with its workspace, when dropped
/// (`DockerCleanup` leaves images alone: the suite's shared image must stay).
struct ImageCleanup(String);

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let out = docker(&["image", "ls", "-q", "--no-trunc", "--filter", &format!("label=dpe.workspace={}", self.0)]);
        let mut ids: Vec<String> = text(&out.stdout).split_whitespace().map(String::from).collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(["image", "rm", "--force"]).args(&ids).output();
        }
    }
}

fn dpe(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.dpe().args(args).stdin(Stdio::null()).output().expect("run dpe")
}

fn ok(sandbox: &Sandbox, args: &[&str]) -> (String, String) {
    let out = dpe(sandbox, args);
    assert!(out.status.success(), "dpe {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("run docker")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The image tag the project's current inputs build (and builds it).
fn build(sandbox: &Sandbox, project: &str) -> String {
    let (stdout, _) = ok(sandbox, &["jupyter", "spec", project, "--json"]);
    let spec: Value = serde_json::from_str(&stdout).unwrap();
    spec["image"].as_str().unwrap().to_string()
}

fn image_id(name: &str) -> Option<String> {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", name]);
    out.status.success().then(|| text(&out.stdout).trim().to_string())
}

fn image_size(name: &str) -> u64 {
    text(&docker(&["image", "inspect", "--format", "{{.Size}}", name]).stdout).trim().parse().unwrap()
}

/// The row of gc's table naming `name`, split into its cells (two spaces or more apart).
fn row<'a>(table: &'a str, name: &str) -> Option<Vec<&'a str>> {
    table
        .lines()
        .find(|l| l.split("  ").any(|cell| cell.trim() == name))
        .map(|line| line.split("  ").map(str::trim).filter(|cell| !cell.is_empty()).collect())
}

fn names(sandbox: &Sandbox, kind: &[&str], project: &str) -> Vec<String> {
    let mut args = kind.to_vec();
    let workspace = format!("label=dpe.workspace={}", sandbox.workspace().display());
    let project = format!("label=dpe.project={project}");
    args.extend(["--filter", &workspace, "--filter", &project]);
    text(&docker(&args).stdout).lines().map(String::from).collect()
}

#[test]
fn gc_lists_then_removes_superseded_images_and_keeps_running_foreign_and_current_ones() {
    if !docker_available() {
        return;
    }
    let (sandbox, _images, _cleanup) = new_sandbox(26100);
    let (other, _other_images, _other_cleanup) = new_sandbox(26120);

    // `old`: built, then its dpe.toml changed and built again: the first image is superseded.
    sandbox.project("old", &config(&sandbox, 1, false));
    let superseded = build(&sandbox, "old");
    sandbox.project("old", &config(&sandbox, 2, false));
    let current = build(&sandbox, "old");
    assert_ne!(superseded, current);
    // `old --rebuild` moves the current tag to a new build: the one before is left untagged.
    let untagged = image_id(&current).unwrap();
    ok(&sandbox, &["jupyter", "spec", "old", "--json", "--rebuild"]);
    assert_ne!(image_id(&current).unwrap(), untagged);

    // `live` runs, and its dpe.toml changed since: its image is no project's input any more,
    // but the running container uses it.
    sandbox.project("live", &config(&sandbox, 11, true));
    ok(&sandbox, &["jupyter", "live", "--detach"]);
    let running = names(&sandbox, &["ps", "--format", "{{.Image}}"], "live");
    assert_eq!(running.len(), 1, "{running:?}");
    sandbox.project("live", &config(&sandbox, 12, true));

    // An image dpe did not make, and another user's superseded dpe image.
    let foreign = format!("dpe-test/gc-foreign-{}:x", sandbox.id());
    assert!(docker(&["tag", "dpe-test/bookworm:latest", &foreign]).status.success());
    let _untag = Untag(foreign.clone());
    other.project("theirs", &config(&other, 1, false));
    let theirs = build(&other, "theirs");
    other.project("theirs", &config(&other, 2, false));

    let (table, stderr) = ok(&sandbox, &["jupyter", "gc"]);
    let listed = row(&table, &superseded).unwrap_or_else(|| panic!("{superseded} not listed:\n{table}"));
    let own_size = image_size(&superseded) - image_size("dpe-test/bookworm:latest");
    let folder = sandbox.workspace().join("projects/old");
    assert_eq!(
        listed,
        [
            "image",
            &superseded,
            &folder.display().to_string(),
            &human(own_size),
            "superseded: no project's current inputs build it"
        ]
    );
    let short = &untagged.trim_start_matches("sha256:")[..12];
    let leftover = row(&table, &format!("<none> {short}")).unwrap_or_else(|| panic!("untagged not listed:\n{table}"));
    assert_eq!(leftover[4], "untagged: its tag moved to a newer build");
    for kept in [&current, &running[0], &foreign, &theirs, &"dpe-test/bookworm:latest".to_string()] {
        assert!(row(&table, kept).is_none(), "{kept} must stay:\n{table}");
    }
    assert!(stderr.contains("(a dry run: nothing removed); `dpe jupyter gc --yes` removes them"), "{stderr}");
    assert!(image_id(&superseded).is_some(), "a dry run removed it");

    let (_, stderr) = ok(&sandbox, &["jupyter", "gc", "--yes"]);
    assert!(stderr.contains("dpe: removed 2 item(s), freed "), "{stderr}");
    assert_eq!(image_id(&superseded), None);
    assert_eq!(docker(&["image", "inspect", &untagged]).status.code(), Some(1), "the untagged image was left");
    for kept in [&current, &running[0], &foreign, &theirs] {
        assert!(image_id(kept).is_some(), "{kept} was removed");
    }
    // Nothing left to collect; the other user still finds their own superseded image.
    let (_, stderr) = ok(&sandbox, &["jupyter", "gc"]);
    assert!(stderr.contains("dpe: nothing to collect"), "{stderr}");
    let (table, _) = ok(&other, &["jupyter", "gc"]);
    assert!(row(&table, &theirs).is_some(), "{table}");
}

/// Removes a tag the test made, when dropped.
struct Untag(String);

impl Drop for Untag {
    fn drop(&mut self) {
        let _ = docker(&["image", "rm", &self.0]);
    }
}

#[test]
fn gc_finds_the_container_and_volume_of_a_deleted_project() {
    if !docker_available() {
        return;
    }
    let (sandbox, _images, _cleanup) = new_sandbox(26140);
    let dir = sandbox.project("deleted", &config(&sandbox, 1, true));
    ok(&sandbox, &["jupyter", "deleted", "--detach"]);
    ok(&sandbox, &["jupyter", "stop", "deleted"]);
    let container = names(&sandbox, &["ps", "-a", "--format", "{{.Names}}"], "deleted");
    let volume = names(&sandbox, &["volume", "ls", "--format", "{{.Name}}"], "deleted");
    assert_eq!((container.len(), volume.len()), (1, 1), "{container:?} {volume:?}");
    let (table, _) = ok(&sandbox, &["jupyter", "gc"]);
    assert!(row(&table, &container[0]).is_none() && row(&table, &volume[0]).is_none(), "the project exists:\n{table}");

    std::fs::remove_dir_all(&dir).unwrap();
    let (table, _) = ok(&sandbox, &["jupyter", "gc"]);
    let folder = dir.display().to_string();
    assert_eq!(row(&table, &container[0]).unwrap(), ["container", &container[0], &folder, "-", "project folder gone"]);
    assert_eq!(row(&table, &volume[0]).unwrap(), ["volume", &volume[0], &folder, "-", "project folder gone"]);
    // Another user (another state directory) never weighs them.
    let (stranger, _i, _c) = new_sandbox(26150);
    let (_, stderr) = ok(&stranger, &["jupyter", "gc"]);
    assert!(stderr.contains("dpe: nothing to collect"), "{stderr}");

    let (_, stderr) = ok(&sandbox, &["jupyter", "gc", "--yes"]);
    assert!(stderr.contains("dpe: removed 3 item(s)"), "container, volume and image:\n{stderr}");
    assert!(names(&sandbox, &["ps", "-a", "--format", "{{.Names}}"], "deleted").is_empty());
    assert!(names(&sandbox, &["volume", "ls", "--format", "{{.Name}}"], "deleted").is_empty());
    let tokens = sandbox.path("state/jupyter/tokens");
    let left: Vec<_> =
        std::fs::read_dir(&tokens).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "its token stays in {}: {left:?}", tokens.display());
}

#[test]
fn rm_keeps_the_folder_stops_and_removes_the_environment_and_needs_yes_without_a_terminal() {
    if !docker_available() {
        return;
    }
    let (sandbox, _images, _cleanup) = new_sandbox(26160);
    let dir = sandbox.project("doomed", &config(&sandbox, 1, true));
    ok(&sandbox, &["jupyter", "doomed", "--detach"]);
    let container = names(&sandbox, &["ps", "--format", "{{.Names}}"], "doomed");
    let volume = names(&sandbox, &["volume", "ls", "--format", "{{.Name}}"], "doomed");
    assert_eq!((container.len(), volume.len()), (1, 1), "{container:?} {volume:?}");

    let out = dpe(&sandbox, &["jupyter", "rm", "doomed"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let port = stderr.lines().find_map(|l| l.trim().strip_prefix("port")?.split_whitespace().next()).unwrap();
    let token = sandbox.path("state/jupyter/tokens").join(format!("doomed-{}", &container[0][11..]));
    let env = sandbox.path("state/jupyter/env").join(format!("doomed-{}.env", &container[0][11..]));
    let expected = format!(
        "dpe: `dpe jupyter rm doomed` removes:\n  container  {} (running: stopped first)\n  volume     {} (its home and environment)\n  port       {port} (its reservation)\n  state      {}\n  state      {}\ndpe: the project folder `{}` is kept\nerror: `dpe jupyter rm doomed` needs a confirmation and there is no terminal\nhelp: pass `--yes` to remove without asking: `dpe jupyter rm doomed --yes`\n",
        container[0],
        volume[0],
        token.display(),
        env.display(),
        dir.display()
    );
    assert_eq!(stderr, expected);
    assert_eq!(names(&sandbox, &["ps", "--format", "{{.Names}}"], "doomed"), container, "still running");

    let (_, stderr) = ok(&sandbox, &["jupyter", "rm", "doomed", "--yes"]);
    assert!(
        stderr.ends_with("dpe: stopping `doomed`…\ndpe: removed the environment of `doomed`; its folder is kept\n"),
        "{stderr}"
    );
    assert!(names(&sandbox, &["ps", "-a", "--format", "{{.Names}}"], "doomed").is_empty());
    assert!(names(&sandbox, &["volume", "ls", "--format", "{{.Name}}"], "doomed").is_empty());
    assert!(dir.join("dpe.toml").is_file(), "the folder is kept");
    assert!(!token.exists() && !env.exists());
    let ports = std::fs::read_to_string(sandbox.path("state/jupyter/ports.json")).unwrap();
    assert!(!ports.contains("doomed-"), "{ports}");

    let out = dpe(&sandbox, &["jupyter", "rm", "doomed", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: nothing of `doomed` to remove in `{}`: no container, volume or state\nhelp: `dpe jupyter gc` lists what dpe made for projects of every workspace\n",
            sandbox.workspace().display()
        )
    );

    // A project whose folder is already gone is found by its name and the workspace.
    let dir = sandbox.project("vanished", &config(&sandbox, 1, true));
    ok(&sandbox, &["jupyter", "vanished", "--detach"]);
    ok(&sandbox, &["jupyter", "stop", "vanished"]);
    std::fs::remove_dir_all(&dir).unwrap();
    ok(&sandbox, &["jupyter", "rm", "vanished", "--yes"]);
    assert!(names(&sandbox, &["ps", "-a", "--format", "{{.Names}}"], "vanished").is_empty());
    assert!(names(&sandbox, &["volume", "ls", "--format", "{{.Name}}"], "vanished").is_empty());
}

/// The same on Podman, whose `image inspect` knows `.ID` but not `.Id`, names local images
/// `localhost/…` and says `image not known`: a superseded and an untagged image are listed with
/// their size and removed, the current one and the base image stay, and `rm` removes a
/// stopped project's container and volume.
#[test]
fn gc_and_rm_work_on_podman() {
    if !dpe_testkit::podman_available() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write("workspace/dpe.toml", "[engine]\nprogram = \"podman\"\n[jupyter]\nhost_port_start = 26180\n");
    let workspace = sandbox.workspace().display().to_string();
    let podman = |args: &[&str]| dpe_testkit::podman().args(args).output().expect("run podman");
    // Dropped after the containers are gone.
    let _images = Defer(Box::new(|| {
        let out = podman(&["image", "ls", "-q", "--filter", &format!("label=dpe.workspace={workspace}")]);
        for id in text(&out.stdout).split_whitespace() {
            let _ = podman(&["image", "rm", "--force", id]);
        }
    }));
    let _cleanup = DockerCleanup::podman(&sandbox);
    let (conf_key, conf_value) = sandbox.podman_config();
    let run = |args: &[&str]| -> (String, String) {
        let out = sandbox.dpe().env(&conf_key, &conf_value).args(args).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "dpe {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let toml = |version: u32| {
        config(&sandbox, version, true).replace("dpe-test/bookworm:latest", dpe_testkit::PODMAN_BASE_IMAGE)
    };
    let spec = |extra: &[&str]| -> String {
        let mut args = vec!["jupyter", "spec", "p", "--json"];
        args.extend_from_slice(extra);
        let spec: Value = serde_json::from_str(&run(&args).0).unwrap();
        spec["image"].as_str().unwrap().to_string()
    };
    let exists = |image: &str| podman(&["image", "exists", image]).status.success();
    sandbox.project("p", &toml(1));
    let superseded = spec(&[]);
    sandbox.project("p", &toml(2));
    let current = spec(&[]);
    spec(&["--rebuild"]);

    let (table, _) = run(&["jupyter", "gc"]);
    let listed = row(&table, &superseded).unwrap_or_else(|| panic!("{superseded} not listed:\n{table}"));
    assert_eq!(listed[4], "superseded: no project's current inputs build it");
    assert!(listed[3].ends_with(" kB"), "its own layers, not the base image: {table}");
    assert!(table.lines().any(|l| l.contains("untagged: its tag moved to a newer build")), "{table}");
    assert!(row(&table, &current).is_none(), "{table}");
    let (_, stderr) = run(&["jupyter", "gc", "--yes"]);
    assert!(stderr.contains("dpe: removed 2 item(s), freed "), "{stderr}");
    assert!(!exists(&superseded) && exists(&current) && exists(dpe_testkit::PODMAN_BASE_IMAGE));

    run(&["jupyter", "p", "--detach"]);
    run(&["jupyter", "stop", "p"]);
    let (_, stderr) = run(&["jupyter", "rm", "p", "--yes"]);
    assert!(stderr.ends_with("dpe: removed the environment of `p`; its folder is kept\n"), "{stderr}");
    let filter = format!("label=dpe.workspace={}", sandbox.workspace().display());
    assert_eq!(text(&podman(&["ps", "-aq", "--filter", &filter]).stdout), "");
    assert_eq!(text(&podman(&["volume", "ls", "-q", "--filter", &filter]).stdout), "");
    assert!(sandbox.workspace().join("projects/p/dpe.toml").is_file());
}

/// Runs a closure when dropped.
struct Defer<'a>(Box<dyn Fn() + 'a>);

impl Drop for Defer<'_> {
    fn drop(&mut self) {
        (self.0)();
    }
}

//! End-to-end tests of `dpe compose` against the real engine and the real `docker-compose`
//! (whichever the core picks), through the real `dpe`, `dpe-jupyter` and `dpe-gpu` binaries.
//!
//! Test projects use the jupyter tests' configuration, so they share its cached image; the
//! `web` service is built from the base image with Debian's python3 and serves
//! `python3 -m http.server`, which a notebook of another project reaches by name. Every test
//! owns a `Sandbox` and a `DockerCleanup`, so a failure leaves nothing behind. The swarm test
//! changes the engine (it may create a swarm), so it takes a write lock that keeps the other
//! tests of this file from running beside it, and it restores the engine as it found it. The
//! engine is shared with other test processes too (another checkout running this file leaves
//! the swarm it made when its test ends), so the lock is also a file lock in the temp folder.

#![allow(clippy::disallowed_methods, reason = "tests run the programs they check directly")]

use dpe_testkit::{docker_available, DockerCleanup, Sandbox};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// The jupyter tests' project configuration (same image, built once for all suites).
const PROJECT_TOML: &str = r#"image = "dpe-test/bookworm:latest"
apt_packages = ["python3-notebook", "python3-pandas", "python3-pip", "python3-venv"]
ca_certificates = ["/etc/ssl/certs/ca-certificates.crt"]
"#;

/// A project with a small HTTP service beside its notebook: built from a folder (tagged with a
/// fixed name, so every test run reuses one image and its build cache), with a named volume, a
/// read-only project folder, and a healthcheck the notebook waits for.
fn project_with_web() -> String {
    format!(
        r#"{PROJECT_TOML}
[services.web]
build = "web"
image = "dpe-test/compose-web:latest"
ports = [8000]
volumes = ["webdata:/srv/data", "./shared:/srv/shared:ro"]
healthcheck = {{ test = ["CMD", "python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/')"], interval = "1s", retries = 60 }}
"#
    )
}

/// What alpha's notebook container fetches from beta's service, by its two names.
const PROBE: &str = "import urllib.request as u; \
print(u.urlopen('http://web:8000/srv/shared/hello.txt').read().decode().strip(), u.urlopen('http://beta-web:8000/').status)";

const WEB_DOCKERFILE: &str = "FROM dpe-test/bookworm:latest\n\
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*\n\
CMD [\"python3\", \"-m\", \"http.server\", \"8000\"]\n";

/// Docker tests of this file share the engine; the swarm test needs it alone.
static ENGINE: RwLock<()> = RwLock::new(());

/// The engine lock, held for the whole test: in this process, and across processes through a
/// file lock (shared, or exclusive for the swarm test). The file lock is taken second, and a
/// holder of it never waits for anything else, so two processes cannot deadlock.
struct EngineLock {
    // Dropped in this order: the file lock first, then the lock of this process.
    _file: std::fs::File,
    _shared: Option<RwLockReadGuard<'static, ()>>,
    _exclusive: Option<RwLockWriteGuard<'static, ()>>,
}

fn engine(exclusive: bool) -> EngineLock {
    let (shared, exclusive_guard) = if exclusive {
        (None, Some(ENGINE.write().unwrap_or_else(|e| e.into_inner())))
    } else {
        (Some(ENGINE.read().unwrap_or_else(|e| e.into_inner())), None)
    };
    let path = std::env::temp_dir().join("dpe-test-engine-swarm.lock");
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).expect("open the engine lock");
    if exclusive { file.lock() } else { file.lock_shared() }.expect("lock the engine");
    EngineLock { _file: file, _shared: shared, _exclusive: exclusive_guard }
}

/// Serialises the first image build, so parallel tests do not all build it at once.
static IMAGE_BUILT: Mutex<bool> = Mutex::new(false);

/// A sandbox with these projects. Each test passes its own first host port: sandboxes have
/// separate port registries, so tests running side by side would otherwise all pick 8888.
fn setup(port_start: u16, projects: &[(&str, &str)]) -> Option<(Sandbox, DockerCleanup)> {
    if !docker_available() {
        return None;
    }
    let sandbox = Sandbox::new();
    let cleanup = DockerCleanup::new(&sandbox);
    sandbox.write("workspace/dpe.toml", &workspace_toml(port_start, ""));
    for (name, toml) in projects {
        sandbox.project(name, toml);
        if toml.contains("[services.web]") {
            sandbox.write(&format!("workspace/projects/{name}/web/Dockerfile"), WEB_DOCKERFILE);
            sandbox.write(&format!("workspace/projects/{name}/shared/hello.txt"), "hello from beta\n");
        }
    }
    let mut built = IMAGE_BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let out = dpe(&sandbox, &["jupyter", "spec", projects[0].0, "--json"]);
        assert!(out.status.success(), "building the shared test image failed:\n{}", text(&out.stderr));
        *built = true;
    }
    Some((sandbox, cleanup))
}

fn workspace_toml(port_start: u16, more: &str) -> String {
    format!("[jupyter]\nhost_port_start = {port_start}\n{more}")
}

fn dpe(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.dpe().args(args).stdin(Stdio::null()).output().expect("run dpe")
}

/// Runs dpe and fails the test with its output when it fails.
fn dpe_ok(sandbox: &Sandbox, args: &[&str]) -> String {
    let out = dpe(sandbox, args);
    assert!(
        out.status.success(),
        "`dpe {}` failed:\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether an output shows an image build: a notebook's (`dpe jupyter` says it is building and
/// shows its steps) or a service's (docker's own `Step 1/…`).
fn rebuilt(stderr: &str) -> bool {
    stderr.contains("dpe: building ") || stderr.contains("dpe: step 1/") || stderr.contains("Step 1/")
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("run docker");
    text(&out.stdout)
}

fn lines(s: &str) -> BTreeSet<String> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

fn workspace_filter(sandbox: &Sandbox) -> String {
    format!("label=dpe.workspace={}", sandbox.workspace().display())
}

/// `name<TAB>id` of the workspace's containers (running or not).
fn containers(sandbox: &Sandbox) -> BTreeSet<String> {
    lines(&docker(&["ps", "-a", "--filter", &workspace_filter(sandbox), "--format", "{{.Names}}\t{{.ID}}"]))
}

fn networks(sandbox: &Sandbox) -> BTreeSet<String> {
    lines(&docker(&["network", "ls", "--filter", &workspace_filter(sandbox), "--format", "{{.Name}}"]))
}

fn volumes(sandbox: &Sandbox) -> BTreeSet<String> {
    lines(&docker(&["volume", "ls", "--filter", &workspace_filter(sandbox), "--format", "{{.Name}}"]))
}

/// The running container of a compose service of this sandbox.
fn service_container(sandbox: &Sandbox, service: &str) -> String {
    let service_filter = format!("label=com.docker.compose.service={service}");
    let id = docker(&["ps", "-q", "--filter", &workspace_filter(sandbox), "--filter", &service_filter]);
    let id = id.trim().to_string();
    assert!(!id.is_empty(), "no running container for service `{service}`");
    id
}

/// The `(project, url)` lines `up` prints.
fn urls(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(p, u)| (p.trim().to_string(), u.trim().to_string())))
        .collect()
}

/// The HTTP status of a GET to a local URL (0 when nothing answers).
fn http_status(url: &str) -> u16 {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut stream) = TcpStream::connect(authority) else { return 0 };
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!("GET {} HTTP/1.0\r\nHost: {authority}\r\n\r\n", if path.is_empty() { "/" } else { path });
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut head = String::new();
    let _ = stream.take(64).read_to_string(&mut head);
    head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// `http://127.0.0.1:PORT/base/?token=T` → the status API URL.
fn api_status(url: &str) -> String {
    let (base, token) = url.split_once("?token=").unwrap();
    format!("{base}api/status?token={token}")
}

#[test]
fn two_projects_share_a_network_restart_unchanged_and_go_down_keeping_volumes() {
    let _engine = engine(false);
    let web = project_with_web();
    let Some((sandbox, _cleanup)) = setup(18100, &[("alpha", PROJECT_TOML), ("beta", &web)]) else { return };
    // No names: the workspace's `[compose] projects` selects.
    sandbox.write("workspace/dpe.toml", &workspace_toml(18100, "[compose]\nprojects = [\"alpha\", \"beta\"]\n"));

    let stdout = dpe_ok(&sandbox, &["compose", "up"]);
    let first = urls(&stdout);
    assert_eq!(first.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["alpha", "beta"], "{stdout}");
    for (project, url) in &first {
        assert_eq!(http_status(&api_status(url)), 200, "the notebook of {project} does not answer at {url}");
    }
    assert_ne!(first[0].1, first[1].1);

    // A notebook of alpha reaches beta's service by its short name and by its full name.
    let alpha = service_container(&sandbox, "alpha");
    let out = dpe_ok(&sandbox, &["docker", "exec", &alpha, "python3", "-c", PROBE]);
    assert_eq!(out.trim(), "hello from beta 200");

    // The generated file is private, and everything in it carries dpe's labels.
    let config = dpe_ok(&sandbox, &["compose", "config"]);
    assert!(config.contains("  beta-web:\n") && config.contains("          - \"web\"\n"), "{config}");
    let state = std::fs::read_dir(sandbox.path("state/compose")).unwrap().next().unwrap().unwrap().path();
    let mode = std::fs::metadata(state.join("compose.yaml")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let nets = networks(&sandbox);
    assert_eq!(nets.len(), 1, "{nets:?}");
    let net = nets.iter().next().unwrap();
    assert_eq!(docker(&["network", "inspect", net, "--format", "{{index .Labels \"dpe.plugin\"}}"]).trim(), "compose");
    let web_labels =
        docker(&["inspect", &service_container(&sandbox, "beta-web"), "--format", "{{json .Config.Labels}}"]);
    assert!(
        web_labels.contains("\"dpe.project\":\"beta\"") && web_labels.contains("\"dpe.plugin\":\"compose\""),
        "{web_labels}"
    );

    // ps lists the stack, logs shows one service by its short name, restart brings a notebook
    // back on the same URL.
    let ps = dpe_ok(&sandbox, &["compose", "ps"]);
    assert!(ps.contains("alpha") && ps.contains("beta-web"), "{ps}");
    let logs = dpe(&sandbox, &["compose", "logs", "--tail", "20", "web"]);
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    assert!(text(&logs.stdout).contains("beta-web"), "{}", text(&logs.stdout));
    let restarted = dpe_ok(&sandbox, &["compose", "restart", "alpha"]);
    assert_eq!(urls(&restarted), first[..1]);
    assert_eq!(http_status(&api_status(&first[0].1)), 200);

    // Up again: nothing rebuilt or recreated, the same URLs.
    let before = containers(&sandbox);
    let again = dpe(&sandbox, &["compose", "up", "alpha", "beta"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(urls(&text(&again.stdout)), first);
    // A recreated `beta-web` alone means `dpe jupyter spec` moved the service's host port: it
    // must count the project's compose containers as its own, not as ports taken by others.
    assert_eq!(containers(&sandbox), before, "a second `up` recreated containers:\n{}", text(&again.stderr));
    assert!(!rebuilt(&text(&again.stderr)), "a second `up` rebuilt an image:\n{}", text(&again.stderr));

    // Down: containers and network go, the named volumes stay.
    let kept = volumes(&sandbox);
    assert!(kept.iter().any(|v| v.ends_with("-beta-webdata")) && kept.len() >= 3, "{kept:?}");
    dpe_ok(&sandbox, &["compose", "down"]);
    assert_eq!(containers(&sandbox), BTreeSet::new());
    assert_eq!(networks(&sandbox), BTreeSet::new());
    assert_eq!(volumes(&sandbox), kept);

    // Up after down: the same ports, the same images.
    let revived = dpe(&sandbox, &["compose", "up"]);
    assert!(revived.status.success(), "{}", text(&revived.stderr));
    assert_eq!(urls(&text(&revived.stdout)), first);
    assert!(!rebuilt(&text(&revived.stderr)), "{}", text(&revived.stderr));

    // Down one project: the other keeps running on the network.
    dpe_ok(&sandbox, &["compose", "down", "beta"]);
    let left: Vec<String> =
        containers(&sandbox).into_iter().map(|c| c.split('\t').next().unwrap().to_string()).collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("alpha"), "{left:?}");
    assert_eq!(networks(&sandbox).len(), 1);

    dpe_ok(&sandbox, &["compose", "down", "--volumes"]);
    assert_eq!(containers(&sandbox), BTreeSet::new());
    assert_eq!(networks(&sandbox), BTreeSet::new());
    assert!(volumes(&sandbox).is_disjoint(&kept.iter().filter(|v| v.contains("alpha")).cloned().collect()));
}

#[test]
fn which_project_and_the_compose_table_select() {
    let _engine = engine(false);
    let Some((sandbox, _cleanup)) =
        setup(18200, &[("alpha", PROJECT_TOML), ("beta", PROJECT_TOML), ("gamma", PROJECT_TOML)])
    else {
        return;
    };
    let services = |config: &str| -> Vec<String> {
        let body = config.split("\nservices:\n").nth(1).unwrap_or("");
        body.lines()
            .take_while(|l| l.starts_with(' '))
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .map(|l| l.trim().trim_end_matches(':').to_string())
            .collect()
    };
    sandbox.write("workspace/which-project", "# what to run\nalpha\n\ngamma  # the second one\n");
    assert_eq!(services(&dpe_ok(&sandbox, &["compose", "config"])), ["alpha", "gamma"]);

    // The workspace dpe.toml wins over which-project.
    sandbox.write("workspace/dpe.toml", &workspace_toml(18200, "[compose]\nprojects = [\"beta\"]\n"));
    assert_eq!(services(&dpe_ok(&sandbox, &["compose", "config"])), ["beta"]);

    // A name in which-project that is no project is reported with the file it came from.
    sandbox.write("workspace/dpe.toml", &workspace_toml(18200, ""));
    sandbox.write("workspace/which-project", "alpha\ndelta\n");
    let out = dpe(&sandbox, &["compose", "up"]);
    assert_eq!(out.status.code(), Some(1));
    let which = sandbox.workspace().join("which-project");
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: unknown project `delta` (selected in {})\nhelp: the projects of this workspace are `alpha`, `beta`, `gamma`\n",
            which.display()
        )
    );
    assert_eq!(containers(&sandbox), BTreeSet::new());
}

#[test]
fn a_failing_pre_compose_hook_leaves_nothing_running() {
    let _engine = engine(false);
    let web = project_with_web();
    let Some((sandbox, _cleanup)) = setup(18300, &[("alpha", PROJECT_TOML), ("beta", &web)]) else { return };
    sandbox.write_exe("config/hooks/pre-compose", "#!/bin/sh\necho 'policy: no stacks today' >&2\nexit 3\n");
    let out = dpe(&sandbox, &["compose", "up", "alpha", "beta"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("policy: no stacks today"), "{stderr}");
    assert_eq!(containers(&sandbox), BTreeSet::new());
    assert_eq!(networks(&sandbox), BTreeSet::new());
}

#[test]
fn clashes_and_broken_configuration_are_refused_before_anything_starts() {
    let _engine = engine(false);
    let db = format!(
        "{PROJECT_TOML}\n[services.db]\nimage = \"dpe-test/bookworm:latest\"\ncommand = [\"sleep\", \"infinity\"]\n"
    );
    let broken = format!("{PROJECT_TOML}\n[services.db]\nimgae = \"postgres:16\"\n");
    let Some((sandbox, _cleanup)) = setup(18400, &[("alpha", &db), ("beta", &db), ("broken", &broken)]) else { return };

    let out = dpe(&sandbox, &["compose", "up", "alpha", "beta"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: service name clash: `db` would name both service `db` of project `alpha` and service `db` of project `beta` on the workspace network\n\
         help: rename one of them in its project's dpe.toml (e.g. `[services.beta_db]`), or start them separately\n"
    );

    let out = dpe(&sandbox, &["compose", "up", "alpha", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("imgae"), "{}", text(&out.stderr));

    let out = dpe(&sandbox, &["compose", "up", "alpha", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: unknown project `nope`\nhelp: the projects of this workspace are `alpha`, `beta`, `broken`\n"
    );
    assert_eq!(containers(&sandbox), BTreeSet::new());
    assert_eq!(networks(&sandbox), BTreeSet::new());

    // A notebook started on its own holds the project's port: compose says who, starts nothing.
    dpe_ok(&sandbox, &["jupyter", "alpha", "--detach"]);
    let standalone = containers(&sandbox);
    let out = dpe(&sandbox, &["compose", "up", "alpha"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: port clash: host port ")
            && stderr.contains("(project `alpha`, container port 8888) is already used by container `"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "help: stop it first (`dpe jupyter stop alpha` if the notebook runs on its own), then run this again\n"
        ),
        "{stderr}"
    );
    assert_eq!(containers(&sandbox), standalone);
    dpe_ok(&sandbox, &["jupyter", "stop", "alpha"]);
}

#[test]
fn control_characters_from_a_config_never_reach_the_terminal() {
    let _engine = engine(false);
    // Names from someone else's dpe.toml, quoted in messages: ESC[2J clears the screen, OSC 0
    // sets the title. They are shown escaped, never sent.
    let name = format!("{PROJECT_TOML}\n[services.\"\\u001b[2Jweb\"]\nimage = \"x\"\n");
    let depends = format!("{PROJECT_TOML}\n[services.web]\nimage = \"x\"\ndepends_on = [\"\\u001b]0;owned\\u0007\"]\n");
    let Some((sandbox, _cleanup)) = setup(18800, &[("alpha", PROJECT_TOML), ("name", &name), ("depends", &depends)])
    else {
        return;
    };
    for (project, shown) in [("name", "`\\u{1b}[2Jweb`"), ("depends", "`\\u{1b}]0;owned\\u{7}`")] {
        let out = dpe(&sandbox, &["compose", "config", project]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(!stderr.contains('\u{1b}') && !stderr.contains('\u{7}'), "{stderr:?}");
        assert!(stderr.starts_with("error: ") && stderr.contains(shown), "{stderr}");
    }
}

#[test]
fn a_start_that_fails_midway_removes_what_it_started() {
    let _engine = engine(false);
    // The second notebook's server exits at once: compose starts both containers, then the
    // wait for the notebooks sees it die.
    let crashing = format!("{PROJECT_TOML}\n[jupyter]\ncommand = [\"sh\", \"-c\", \"echo no server today; exit 3\"]\n");
    let Some((sandbox, _cleanup)) = setup(18600, &[("alpha", PROJECT_TOML), ("crashing", &crashing)]) else { return };
    let out = dpe(&sandbox, &["compose", "up", "alpha", "crashing"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no server today"), "the log of the failed service is not shown:\n{stderr}");
    assert!(
        stderr.ends_with(
            "error: the notebook of project `crashing` stopped while starting\n\
             help: its log is above; check `[jupyter] command` and the image in the dpe.toml of `crashing`\n"
        ),
        "{stderr}"
    );
    assert_eq!(containers(&sandbox), BTreeSet::new());
    assert_eq!(networks(&sandbox), BTreeSet::new());
}

/// Leaves the swarm (and removes the bridge swarm creates) when dropped, if this test made it.
struct SwarmGuard {
    created: bool,
    gwbridge_existed: bool,
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        if self.created {
            let _ = Command::new("docker").args(["swarm", "leave", "--force"]).output();
            if !self.gwbridge_existed {
                let _ = Command::new("docker").args(["network", "rm", "docker_gwbridge"]).output();
            }
        }
    }
}

#[test]
fn deploy_runs_the_stack_on_a_single_node_swarm() {
    let _engine = engine(true);
    let web = project_with_web();
    let missing = sleeper("").replace("dpe-test/bookworm:latest\"\ncommand", "dpe-test/no-such-image:1\"\ncommand");
    let Some((sandbox, _cleanup)) = setup(18500, &[("alpha", PROJECT_TOML), ("beta", &web), ("gamma", &missing)])
    else {
        return;
    };

    let out = dpe(&sandbox, &["compose", "deploy", "alpha"]);
    let already_swarm = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim() == "active";
    if !already_swarm {
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            text(&out.stderr),
            "error: this Docker engine is not part of a swarm\n\
             help: make it a single-node swarm with `docker swarm init --advertise-addr 127.0.0.1`, or use `dpe compose up`\n"
        );
    }
    let gwbridge_existed = !docker(&["network", "ls", "-q", "--filter", "name=^docker_gwbridge$"]).trim().is_empty();
    let _swarm = SwarmGuard { created: !already_swarm, gwbridge_existed };
    if !already_swarm {
        let init = Command::new("docker").args(["swarm", "init", "--advertise-addr", "127.0.0.1"]).output().unwrap();
        assert!(init.status.success(), "docker swarm init: {}", text(&init.stderr));
    }

    let stdout = dpe_ok(&sandbox, &["compose", "deploy", "alpha", "beta"]);
    // Once deploy returns, every service runs (beta's web service passed its healthcheck) and
    // answers by name: nothing here waits or retries.
    let stack = std::fs::read_dir(sandbox.path("state/compose")).unwrap().next().unwrap().unwrap().file_name();
    let stack = stack.to_string_lossy();
    let namespace = format!("label=com.docker.stack.namespace={stack}");
    let replicas = lines(&docker(&["service", "ls", "--filter", &namespace, "--format", "{{.Name}} {{.Replicas}}"]));
    let expected: BTreeSet<String> = ["alpha", "beta", "beta-web"].iter().map(|s| format!("{stack}_{s} 1/1")).collect();
    assert_eq!(replicas, expected);
    let deployed = urls(&stdout);
    assert_eq!(deployed.len(), 2, "{stdout}");
    for (project, url) in &deployed {
        assert_eq!(http_status(&api_status(url)), 200, "the notebook of {project} does not answer at {url}");
    }
    let task = |service: &str| {
        let filter = format!("label=com.docker.swarm.service.name={}", service);
        docker(&["ps", "-q", "--filter", &filter]).trim().to_string()
    };
    let alpha = task(&format!("{stack}_alpha"));
    let out = dpe_ok(&sandbox, &["docker", "exec", &alpha, "python3", "-c", PROBE]);
    assert_eq!(out.trim(), "hello from beta 200");

    dpe_ok(&sandbox, &["compose", "undeploy"]);
    assert_eq!(docker(&["ps", "-aq", "--filter", &namespace]).trim(), "");
    assert_eq!(docker(&["network", "ls", "-q", "--filter", &namespace]).trim(), "");

    // A service that cannot run is named with its task's error, and the stack is removed.
    let out = dpe(&sandbox, &["compose", "deploy", "gamma"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let service = format!("{stack}_gamma-db");
    assert!(
        stderr.contains(&format!(
            "error: service `{service}` of the stack is not running: its tasks failed at least 3 times; its task says: No such image: dpe-test/no-such-image:1\n\
             help: see `dpe docker service ps --no-trunc {service}` and `dpe docker service logs {service}`\n"
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("note: removing the stack `{stack}` this deploy created")), "{stderr}");
    assert_eq!(docker(&["service", "ls", "-q", "--filter", &namespace]).trim(), "");
    assert_eq!(docker(&["ps", "-aq", "--filter", &namespace]).trim(), "");
}

/// A service that only sleeps, with the given extra lines.
fn sleeper(more: &str) -> String {
    format!("{PROJECT_TOML}\n[services.db]\nimage = \"dpe-test/bookworm:latest\"\ncommand = [\"sleep\", \"infinity\"]\n{more}")
}

#[test]
fn host_reaching_settings_run_only_in_a_trusted_workspace() {
    let _engine = engine(false);
    let safe = sleeper("volumes = [\"dbdata:/data\", \"./shared:/srv/shared:ro\"]\n");
    let Some((sandbox, _cleanup)) = setup(18700, &[("alpha", &safe)]) else { return };
    sandbox.write("workspace/projects/alpha/shared/inside.txt", "inside\n");
    sandbox.write("outside/secret.txt", "host file\n");
    let project = sandbox.workspace().join("projects/alpha");
    let db = || service_container(&sandbox, "alpha-db");

    // Named volumes and folders of the project need no trust.
    dpe_ok(&sandbox, &["compose", "up", "alpha"]);
    assert_eq!(dpe_ok(&sandbox, &["docker", "exec", &db(), "cat", "/srv/shared/inside.txt"]), "inside\n");
    dpe_ok(&sandbox, &["compose", "down", "--volumes"]);

    // Whatever reaches the host, from the workspace's file or the project's, is refused before
    // anything starts, naming each file and key and the command that trusts them.
    std::os::unix::fs::symlink("/etc", project.join("etc-link")).unwrap();
    let ws_file = sandbox.write(
        "workspace/dpe.toml",
        &workspace_toml(18700, "[services.db]\nvolumes = [\"/:/host\", \"../../../outside:/x\"]\n"),
    );
    let project_file = project.join("dpe.toml");
    std::fs::write(&project_file, sleeper("volumes = [\"./etc-link:/etc-of-host\"]\n[jupyter]\nbind = \"0.0.0.0\"\n"))
        .unwrap();
    let refusal = format!(
        "error: this workspace's configuration is not trusted, and it reaches outside the project folder `{project}`:\n  \
         `{project_file}`: `services.db.volumes` bind-mounts `/etc` (`./etc-link:/etc-of-host`)\n  \
         `{project_file}`: `jupyter.bind` publishes the notebook and every port on `0.0.0.0`, beyond this machine\n\
         help: settings that reach your machine run only in a trusted workspace; read those files, and if you trust them run `cd {ws} && dpe trust`\n",
        project = project.display(),
        project_file = project_file.display(),
        ws = sandbox.workspace().display(),
    );
    for args in [["compose", "up", "alpha"], ["jupyter", "alpha", "--detach"]] {
        let out = dpe(&sandbox, &args);
        assert_eq!(out.status.code(), Some(1), "`dpe {}`", args.join(" "));
        assert_eq!(text(&out.stderr), refusal, "`dpe {}`", args.join(" "));
    }
    // The workspace's own lines, once the project's are gone: it sets the volumes the project
    // inherits (the project's `[services.db]` adds keys but no `volumes`).
    std::fs::write(&project_file, sleeper("")).unwrap();
    let out = dpe(&sandbox, &["compose", "up", "alpha"]);
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: this workspace's configuration is not trusted, and it reaches outside the project folder `{}`:\n  \
             `{}`: `services.db.volumes` bind-mounts `/` (`/:/host`)\n  \
             `{}`: `services.db.volumes` bind-mounts `{}` (`../../../outside:/x`)\n\
             help: settings that reach your machine run only in a trusted workspace; read those files, and if you trust them run `cd {} && dpe trust`\n",
            project.display(),
            ws_file.display(),
            ws_file.display(),
            sandbox.path("outside").display(),
            sandbox.workspace().display(),
        )
    );
    // Keys that would reach the host and that dpe has no word for are not accepted at all.
    std::fs::write(&project_file, sleeper("privileged = true\n")).unwrap();
    let out = dpe(&sandbox, &["compose", "up", "alpha"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown field `privileged`"), "{}", text(&out.stderr));
    assert_eq!(containers(&sandbox), BTreeSet::new());
    assert_eq!(networks(&sandbox), BTreeSet::new());

    // Trusted, the same configuration runs: the host folder is really mounted.
    std::fs::write(&project_file, sleeper("")).unwrap();
    let trusted = dpe_ok(&sandbox, &["trust"]);
    let outside = std::fs::canonicalize(sandbox.path("outside")).unwrap();
    let reaches = format!(
        "`services.db.volumes` bind-mounts `/` (`/:/host`)\ntrusted project alpha: `services.db.volumes` bind-mounts `{}` (`../../../outside:/x`)",
        outside.display()
    );
    assert!(
        trusted.starts_with(&format!("trusted {}\ntrusted {}\n", ws_file.display(), project_file.display())),
        "{trusted}"
    );
    assert!(trusted.ends_with(&format!("trusted project alpha: {reaches}\n")), "{trusted}");
    dpe_ok(&sandbox, &["compose", "up", "alpha"]);
    assert_eq!(dpe_ok(&sandbox, &["docker", "exec", &db(), "cat", "/x/secret.txt"]), "host file\n");
    dpe_ok(&sandbox, &["compose", "down", "--volumes"]);

    // No file changes, but a folder it mounts becomes a link out of the project (a `git
    // pull`): the trusted workspace now reaches a place the user never saw, and is refused.
    std::fs::write(&project_file, sleeper("volumes = [\"./shared:/srv/shared:ro\"]\n")).unwrap();
    dpe_ok(&sandbox, &["trust"]);
    std::fs::remove_dir_all(project.join("shared")).unwrap();
    std::os::unix::fs::symlink(sandbox.path("outside"), project.join("shared")).unwrap();
    let out = dpe(&sandbox, &["compose", "up", "alpha"]);
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: this workspace's configuration now reaches outside the project folder `{}` where it did not when you trusted it:\n  \
             `{}`: `services.db.volumes` bind-mounts `{}` (`./shared:/srv/shared:ro`)\n\
             help: what it reaches is not what you trusted (a folder or file it names leads somewhere else now, or this dpe describes a reach differently than the one you trusted with); see what it reaches with `dpe trust --list`, and if you trust that run `cd {} && dpe trust` again\n",
            project.display(),
            project_file.display(),
            outside.display(),
            sandbox.workspace().display(),
        )
    );
    assert_eq!(containers(&sandbox), BTreeSet::new());
    std::fs::remove_file(project.join("shared")).unwrap();
    std::fs::create_dir_all(project.join("shared")).unwrap();
    std::fs::write(&project_file, sleeper("")).unwrap();
    dpe_ok(&sandbox, &["trust"]);

    // A change needs trusting again.
    std::fs::write(&project_file, sleeper("# edited\n")).unwrap();
    let out = dpe(&sandbox, &["compose", "up", "alpha"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: this workspace's configuration is not trusted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(containers(&sandbox), BTreeSet::new());
}

/// Each notebook waits as long as its own project's `[jupyter] ready_timeout` allows, not the
/// workspace's (the compose call's context): the workspace says 1 s, the project 300 s, and
/// the server needs several seconds.
#[test]
fn compose_up_waits_as_long_as_the_projects_own_ready_timeout() {
    let _engine = engine(false);
    let slow = format!(
        "{PROJECT_TOML}\n[jupyter]\nready_timeout = 300\ncommand = [\"sh\", \"-c\", \"sleep 5; exec dpe-start\"]\n"
    );
    let Some((sandbox, _cleanup)) = setup(18900, &[("slow", &slow)]) else { return };
    sandbox.write("workspace/dpe.toml", &workspace_toml(18900, "ready_timeout = 1\n"));
    let stdout = dpe_ok(&sandbox, &["compose", "up", "slow"]);
    let urls = urls(&stdout);
    assert_eq!(urls.len(), 1, "{stdout}");
    assert_eq!(http_status(&urls[0].1.replacen("?token=", "api/status?token=", 1)), 200);
    dpe_ok(&sandbox, &["compose", "down", "--volumes"]);
}

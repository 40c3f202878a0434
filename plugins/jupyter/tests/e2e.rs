//! End-to-end tests of `dpe jupyter` against the real engine and a real Jupyter server, acting
//! as a real client: HTTP with and without the token, the contents API, a kernel over its
//! websocket, pip from PyPI through the CA feature, restarts, two projects, a held port, a
//! failing hook, Ctrl+C, and bad input.
//!
//! Every test project uses the same configuration, so the whole suite shares one image build
//! (the first one downloads Debian's Jupyter packages; later runs find the tag and skip it).
//! Each test owns a `Sandbox` (its own workspace, state and hooks) and a `DockerCleanup`
//! that removes its containers and volumes even when it fails.

#![allow(clippy::disallowed_methods, reason = "tests run the programs they check directly")]
#![allow(
    unsafe_code,
    reason = "the tests signal the processes they started (`kill`) and compare file owners (`getuid`)"
)]

use dpe_testkit::{docker_available, DockerCleanup, Sandbox};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The configuration of every test project: Jupyter and pandas from Debian's packages on the
/// offline base image, and the host's CA bundle so pip reaches PyPI through the intercepting
/// proxy of CI machines.
const PROJECT_TOML: &str = r#"image = "dpe-test/bookworm:latest"
apt_packages = ["python3-notebook", "python3-pandas", "python3-pip", "python3-venv"]
ca_certificates = ["/etc/ssl/certs/ca-certificates.crt"]
"#;

/// Serialises the first image build, so parallel tests do not all build it at once.
static IMAGE_BUILT: Mutex<bool> = Mutex::new(false);

/// A sandbox with the given projects and its own range of host ports: tests run in parallel
/// with separate registries (separate "users"), so distinct ranges keep one test's restart
/// from finding its port taken by a neighbour.
fn setup(projects: &[&str], host_port_start: u16) -> Option<(Sandbox, DockerCleanup)> {
    if !docker_available() {
        return None;
    }
    let sandbox = Sandbox::new();
    sandbox.write("workspace/dpe.toml", &format!("[jupyter]\nhost_port_start = {host_port_start}\n"));
    let cleanup = DockerCleanup::new(&sandbox);
    for name in projects {
        sandbox.project(name, PROJECT_TOML);
    }
    let mut built = IMAGE_BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let out = dpe(&sandbox, &["jupyter", "spec", projects[0], "--json"]);
        assert!(out.status.success(), "building the shared test image failed:\n{}", text(&out.stderr));
        *built = true;
    }
    Some((sandbox, cleanup))
}

fn dpe(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.dpe().args(args).stdin(Stdio::null()).output().expect("run dpe")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running server as the test sees it.
#[derive(Clone)]
struct Server {
    port: u16,
    base: String,
    token: String,
}

impl Server {
    fn from_url(url: &str) -> Server {
        let rest = url.trim().strip_prefix("http://127.0.0.1:").unwrap_or_else(|| panic!("not a local URL: {url}"));
        let (port, rest) = rest.split_once('/').unwrap();
        let (path, token) = rest.split_once("?token=").unwrap();
        Server { port: port.parse().unwrap(), base: format!("/{path}"), token: token.to_string() }
    }

    fn url(&self, path: &str, with_token: bool) -> String {
        let token = if with_token { format!("?token={}", self.token) } else { String::new() };
        format!("http://127.0.0.1:{}{}{path}{token}", self.port, self.base)
    }

    fn get(&self, path: &str, with_token: bool) -> (u16, String) {
        match ureq::get(&self.url(path, with_token)).timeout(Duration::from_secs(30)).call() {
            Ok(response) => (response.status(), response.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, response)) => (code, response.into_string().unwrap_or_default()),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let response = ureq::post(&self.url(path, true))
            .timeout(Duration::from_secs(30))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        serde_json::from_str(&response.into_string().unwrap()).unwrap()
    }

    /// Starts a kernel through the API and runs `code` over its websocket; returns the
    /// stream output, or the error the kernel reported.
    fn execute(&self, code: &str) -> Result<String, String> {
        self.execute_in(&self.start_kernel(), code)
    }

    fn start_kernel(&self) -> String {
        let kernel = self.post("api/kernels", &json!({"name": "python3"}));
        kernel["id"].as_str().unwrap().to_string()
    }

    /// The kernel's execution state as the server's activity monitor last saw it on iopub.
    fn kernel_state(&self, id: &str) -> String {
        let (status, body) = self.get(&format!("api/kernels/{id}"), true);
        assert_eq!(status, 200, "{body}");
        let kernel: Value = serde_json::from_str(&body).unwrap();
        kernel["execution_state"].as_str().unwrap_or_default().to_string()
    }

    /// Runs `code` in the kernel `id` over a websocket of its own.
    fn execute_in(&self, id: &str, code: &str) -> Result<String, String> {
        let address =
            format!("ws://127.0.0.1:{}{}api/kernels/{id}/channels?token={}", self.port, self.base, self.token);
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let (mut socket, _) = tungstenite::client(address.as_str(), stream).expect("kernel websocket");
        let msg_id = format!("test-{}", std::process::id());
        let request = json!({
            "header": {"msg_id": msg_id, "username": "test", "session": "test-session",
                       "msg_type": "execute_request", "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": false, "store_history": false,
                        "user_expressions": {}, "allow_stdin": false, "stop_on_error": true}
        });
        socket.send(tungstenite::Message::Text(request.to_string())).unwrap();
        let mut output = String::new();
        let mut error = None;
        // The reply comes on the shell channel and the output on iopub: their order is not
        // guaranteed, so the cell is done once the reply came and the kernel went back to idle
        // (published on iopub after the cell's last output).
        let (mut replied, mut idle) = (false, false);
        while !(replied && idle) {
            let message = socket.read().expect("kernel message");
            let tungstenite::Message::Text(body) = message else { continue };
            let value: Value = serde_json::from_str(&body).unwrap();
            if value["parent_header"]["msg_id"] != msg_id {
                continue;
            }
            match value["msg_type"].as_str().unwrap_or("") {
                "stream" => output.push_str(value["content"]["text"].as_str().unwrap_or("")),
                "error" => error = Some(format!("{}: {}", value["content"]["ename"], value["content"]["evalue"])),
                "execute_reply" => replied = true,
                "status" => idle = value["content"]["execution_state"] == "idle",
                _ => {}
            }
        }
        let _ = socket.close(None);
        match error {
            Some(e) => Err(e),
            None => Ok(output),
        }
    }
}

/// `dpe jupyter NAME --detach`; the URL is the last line of stdout.
fn start(sandbox: &Sandbox, name: &str) -> (Server, String) {
    let out = dpe(sandbox, &["jupyter", name, "--detach"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "dpe jupyter {name} --detach failed:\n{stderr}");
    let stdout = text(&out.stdout);
    let url = stdout.lines().last().unwrap_or_default();
    (Server::from_url(url), stderr)
}

fn container_state(sandbox: &Sandbox, project: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.State}}"])
        .args(["--filter", &format!("label=dpe.workspace={}", sandbox.workspace().display())])
        .args(["--filter", &format!("label=dpe.project={project}")])
        .output()
        .unwrap();
    text(&out.stdout).lines().map(String::from).collect()
}

fn host_uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

#[test]
fn serves_the_project_keeps_files_and_packages_and_its_port() {
    let Some((sandbox, _cleanup)) = setup(&["project_a"], 21200) else { return };
    let (server, first_log) = start(&sandbox, "project_a");
    assert_eq!(server.base, "/project_a/");
    assert_eq!(server.token.len(), 48);

    // The API answers with the token and refuses without it.
    let (status, body) = server.get("api/contents", true);
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.get("api/contents", false).0, 403);

    // A notebook created through the contents API is a file of the host user in the project.
    let created = server.post("api/contents", &json!({"type": "notebook"}));
    let name = created["name"].as_str().unwrap();
    let file = sandbox.workspace().join("projects/project_a").join(name);
    assert!(file.is_file(), "{} is missing on the host", file.display());
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), host_uid());

    // A kernel runs pandas.
    let output = server.execute("import pandas\nprint('pandas', pandas.__version__)").unwrap();
    assert!(output.starts_with("pandas "), "{output}");

    // The token never appears in the process list.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!text(&ps.stdout).contains(&server.token), "the token is visible in `ps`");

    // Packages from PyPI (through the CA feature) installed in the running environment, with
    // `pip install` in its terminal and `%pip install` in a notebook, survive stop and start.
    let out = dpe(&sandbox, &["jupyter", "exec", "project_a", "--", "pip", "install", "--quiet", "tabulate==0.9.0"]);
    assert!(out.status.success(), "pip install failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    let output = server.execute("%pip install --quiet tomli-w==1.0.0\nimport sys\nprint(sys.executable)").unwrap();
    assert!(output.trim_end().ends_with("/dpe/venv/bin/python"), "{output}");
    let out = dpe(&sandbox, &["jupyter", "stop", "project_a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "dpe: stopping `project_a`…\ndpe: `project_a` stopped; its files and installed packages are kept\n"
    );
    assert_eq!(container_state(&sandbox, "project_a"), ["exited"]);
    assert!(file.is_file());
    // pip from the host while it is stopped runs in a one-off container on the same volume.
    let out = dpe(
        &sandbox,
        &["jupyter", "pip", "project_a", "list", "--format=freeze", "--path", "/dpe/venv/lib/python3.11/site-packages"],
    );
    assert_eq!(text(&out.stdout), "tabulate==0.9.0\ntomli_w==1.0.0\n", "{}", text(&out.stderr));

    let (again, second_log) = start(&sandbox, "project_a");
    assert_eq!(again.port, server.port, "a restart keeps the port");
    assert_eq!(again.token, server.token, "a restart keeps the token");
    assert!(!second_log.contains("dpe: building"), "an unchanged project was rebuilt:\n{second_log}");
    let _ = first_log;
    let out = dpe(
        &sandbox,
        &["jupyter", "exec", "project_a", "--", "python3", "-c", "import tabulate; print(tabulate.__version__)"],
    );
    assert_eq!(text(&out.stdout).trim(), "0.9.0", "{}", text(&out.stderr));
    assert_eq!(
        again.execute("import tabulate, tomli_w\nprint(tabulate.__file__)").unwrap().trim(),
        "/dpe/venv/lib/python3.11/site-packages/tabulate/__init__.py"
    );

    // url, status and list agree with what start printed.
    let out = dpe(&sandbox, &["jupyter", "url", "project_a"]);
    assert_eq!(text(&out.stdout).trim(), again.url("", true));
    let out = dpe(&sandbox, &["jupyter", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workspace"] == sandbox.workspace().to_str().unwrap())
        .expect("listed");
    assert_eq!(row["project"], "project_a");
    assert_eq!(row["port"], again.port);
    assert_eq!(row["url"], again.url("", true));
}

#[test]
fn two_projects_get_two_ports_and_a_held_port_is_replaced() {
    let Some((sandbox, _cleanup)) = setup(&["project_a", "project_b"], 21400) else { return };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| start(&sandbox, "project_a").0);
        let b = scope.spawn(|| start(&sandbox, "project_b").0);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.port, b.port);
    assert_ne!(a.token, b.token);
    assert_eq!(a.get("api/status", true).0, 200);
    assert_eq!(b.get("api/status", true).0, 200);
    assert_eq!(b.base, "/project_b/");

    // Another program takes project_a's port while it is stopped: dpe moves and says so.
    assert!(dpe(&sandbox, &["jupyter", "stop", "project_a"]).status.success());
    let holder = TcpListener::bind(("127.0.0.1", a.port)).expect("hold the port");
    let (moved, log) = start(&sandbox, "project_a");
    assert_ne!(moved.port, a.port);
    // (Tests in parallel have their own registries, so the new port may itself be lost to a
    // neighbour's `docker run` and moved once more: only the first move is asserted.)
    assert!(
        log.contains(&format!("dpe: port {} of `project_a` is in use by another program; using port ", a.port)),
        "{log}"
    );
    assert_eq!(moved.get("api/status", true).0, 200);
    drop(holder);
}

#[test]
fn ctrl_c_stops_the_foreground_server_and_keeps_the_files() {
    let Some((sandbox, _cleanup)) = setup(&["project_c"], 21600) else { return };
    let mut child = sandbox
        .dpe()
        .args(["jupyter", "project_c"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let url = stdout.lines().map_while(Result::ok).find(|l| l.starts_with("http://")).expect("the URL is printed");
    let server = Server::from_url(&url);
    let created = server.post("api/contents", &json!({"type": "file", "ext": ".txt"}));
    let file = sandbox.workspace().join("projects/project_c").join(created["name"].as_str().unwrap());
    assert!(file.is_file());
    assert_eq!(container_state(&sandbox, "project_c"), ["running"]);

    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "dpe did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("dpe: `project_c` stopped; its files and installed packages are kept"), "{stderr}");
    assert_eq!(container_state(&sandbox, "project_c"), ["exited"]);
    assert!(file.is_file(), "the file created in Jupyter is still there");

    // A dpe killed outright leaves its server running; the next dpe finds it by its labels.
    let mut child = sandbox
        .dpe()
        .args(["jupyter", "project_c"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let url = stdout.lines().map_while(Result::ok).find(|l| l.starts_with("http://")).expect("the URL is printed");
    assert_eq!(Server::from_url(&url).port, server.port, "a restart keeps the port");
    child.kill().unwrap();
    child.wait().unwrap();
    let out = dpe(&sandbox, &["jupyter", "status", "project_c", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "running");
    assert_eq!(status["url"], url.as_str());
    let out = dpe(&sandbox, &["jupyter", "project_c", "--detach"]);
    assert_eq!(text(&out.stderr), "dpe: `project_c` is already running\n");
    assert_eq!(text(&out.stdout).trim(), url);
    assert!(dpe(&sandbox, &["jupyter", "stop", "project_c"]).status.success());
    assert_eq!(container_state(&sandbox, "project_c"), ["exited"]);
}

#[test]
fn a_failing_pre_run_hook_leaves_no_container() {
    let Some((sandbox, _cleanup)) = setup(&["project_h"], 21800) else { return };
    sandbox.write_exe("config/hooks/pre-run", "#!/bin/sh\necho 'policy: no containers today' >&2\nexit 3\n");
    let out = dpe(&sandbox, &["jupyter", "project_h", "--detach"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("policy: no containers today"), "{stderr}");
    assert!(container_state(&sandbox, "project_h").is_empty(), "a container was left behind");
    let volumes = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", &format!("label=dpe.workspace={}", sandbox.workspace().display())])
        .output()
        .unwrap();
    assert_eq!(text(&volumes.stdout), "", "a volume was left behind");
}

#[test]
fn spec_json_is_the_contract() {
    let Some((sandbox, _cleanup)) = setup(&["project_s"], 22000) else { return };
    let out = dpe(&sandbox, &["jupyter", "spec", "project_s", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spec: Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    let project_dir = sandbox.workspace().join("projects/project_s");
    assert_eq!(spec["project"], "project_s");
    assert_eq!(spec["workspace"], sandbox.workspace().to_str().unwrap());
    assert!(spec["image"].as_str().unwrap().starts_with("dpe-jupyter:"));
    assert_eq!(spec["mount"]["source"], project_dir.to_str().unwrap());
    assert_eq!(spec["mount"]["target"], "/work");
    assert_eq!(spec["volume_target"], "/dpe");
    assert_eq!(spec["bind"], "127.0.0.1");
    assert_eq!(spec["port"]["container"], 8888);
    assert_eq!(spec["base_url"], "/project_s/");
    assert_eq!(spec["command"], json!(["dpe-start"]));
    assert_eq!(spec["gpu_args"], json!([]));
    let env_file = Path::new(spec["env_file"].as_str().unwrap());
    assert_eq!(std::fs::metadata(env_file).unwrap().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(env_file).unwrap();
    let token = token.lines().find_map(|l| l.strip_prefix("JUPYTER_TOKEN=")).unwrap().to_string();
    assert!(spec["url"].as_str().unwrap().ends_with(&format!("/project_s/?token={token}")));
    assert!(!spec["env"].to_string().contains(&token), "no secret in env");
    // Twenty projects asking at the same moment get twenty different ports.
    let names: Vec<String> = (0..20).map(|i| format!("many_{i}")).collect();
    for name in &names {
        sandbox.project(name, PROJECT_TOML);
    }
    let ports: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let sandbox = &sandbox;
                scope.spawn(move || {
                    let out = dpe(sandbox, &["jupyter", "spec", name, "--json"]);
                    assert!(out.status.success(), "{}", text(&out.stderr));
                    let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
                    spec["port"]["host"].as_u64().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 20, "{ports:?}");
    assert!(!ports.contains(&spec["port"]["host"].as_u64().unwrap()));

    // The reserved port is the project's from now on.
    let again: Value =
        serde_json::from_slice(&dpe(&sandbox, &["jupyter", "spec", "project_s", "--json"]).stdout).unwrap();
    assert_eq!(again["port"], spec["port"]);
}

#[test]
fn bad_input_is_one_clear_message_and_leaves_nothing() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    sandbox.project("broken_req", "image = \"dpe-test/bookworm:latest\"\nrequirements = \"missing.txt\"\n");
    sandbox.project("no_image", "image = \"dpe-test/does-not-exist:1\"\n");
    // Inside the project: a path outside it would need `dpe trust` first (README, Security model).
    sandbox.project("bad_ca", "image = \"dpe-test/bookworm:latest\"\nca_certificates = [\"corp.crt\"]\n");
    sandbox.project("bad_apt", "image = \"dpe-test/bookworm:latest\"\napt_packages = [\"no-such-package-dpe\"]\n");

    let out = dpe(&sandbox, &["jupyter", "broken_req", "--detach"]);
    assert_eq!(out.status.code(), Some(1));
    let requirements = sandbox.workspace().join("projects/broken_req/missing.txt");
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: requirements file `{}` does not exist\nhelp: fix `requirements` in `{}/dpe.toml`, or remove it to use the project's requirements.txt\n",
            requirements.display(),
            sandbox.workspace().join("projects/broken_req").display()
        )
    );

    // A path from someone else's dpe.toml, quoted in the message: its ESC is shown, not sent.
    sandbox.project("escape_req", "image = \"dpe-test/bookworm:latest\"\nrequirements = \"\\u001b[2J/none\"\n");
    let out = dpe(&sandbox, &["jupyter", "spec", "escape_req"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(
        stderr.starts_with("error: requirements file `") && stderr.contains("/\\u{1b}[2J/none` does not exist\n"),
        "{stderr}"
    );

    let out = dpe(&sandbox, &["jupyter", "no_image", "--detach"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: image `dpe-test/does-not-exist:1` is not available locally and could not be pulled"),
        "{stderr}"
    );
    assert!(stderr.contains("help: check `image` in"), "{stderr}");

    let out = dpe(&sandbox, &["jupyter", "bad_ca", "--detach"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!(
            "error: CA certificate `{}` (from `ca_certificates`) does not exist\n",
            sandbox.workspace().join("projects/bad_ca/corp.crt").display()
        )),
        "{}",
        text(&out.stderr)
    );

    // A build that fails says which step did.
    let out = dpe(&sandbox, &["jupyter", "bad_apt", "--detach"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let last: Vec<&str> = stderr.lines().rev().take(2).collect();
    assert!(
        last[1].starts_with("error: building the image of `bad_apt` from the generated Dockerfile failed at step 3/")
            && last[1].contains("`RUN apt-get update"),
        "{stderr}"
    );
    // The end of the build log is shown (apt's own words), and where the whole of it is.
    let log = sandbox.path("state").join("jupyter/logs");
    let help = format!("help: the build output above shows why (all of it: `{}/build-dpe-jupyter-", log.display());
    assert!(last[0].starts_with(&help), "{stderr}");
    assert!(last[0].ends_with(".log`); fix the project's dpe.toml (or Dockerfile) and run again"), "{stderr}");
    assert!(stderr.contains("dpe: the build failed after "), "{stderr}");
    assert!(stderr.contains("\n  | E: Unable to locate package no-such-package-dpe\n"), "{stderr}");
    let path = last[0].strip_prefix("help: the build output above shows why (all of it: `").unwrap();
    let logged = std::fs::read_to_string(path.split_once('`').unwrap().0).unwrap();
    let logged: Vec<&str> = logged.lines().filter(|l| !l.trim().is_empty()).collect();
    let shown: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix("  | ")).collect();
    assert_eq!(shown, logged[logged.len().saturating_sub(20)..], "the log's last 20 lines:\n{stderr}");
    assert!(logged.iter().any(|l| l.starts_with("Step 3/")), "the log holds the whole build: {logged:?}");
    // The failed step's container goes too (the builder keeps it unless told otherwise, with
    // no label of dpe's: nothing would ever remove it).
    let steps = Command::new("docker").args(["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]).output().unwrap();
    assert!(!text(&steps.stdout).contains("no-such-package-dpe"), "a failed build left its container");

    // A GPU that is required but not usable: the gpu plugin's findings, nothing started.
    let has_gpu = Command::new("nvidia-smi").output().map(|o| o.status.success()).unwrap_or(false);
    if !has_gpu {
        sandbox.project("needs_gpu", "image = \"dpe-test/bookworm:latest\"\ngpu = \"required\"\n");
        let out = dpe(&sandbox, &["jupyter", "needs_gpu", "--detach"]);
        assert!(!out.status.success(), "{}", text(&out.stderr));
        assert!(container_state(&sandbox, "needs_gpu").is_empty());
    }

    // A mistyped project: one message with the likely one (from the core or the plugin).
    let out = dpe(&sandbox, &["jupyter", "bad_cb", "--detach"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("`bad_cb`") && stderr.contains("did you mean") && stderr.contains("`bad_ca`"), "{stderr}");

    // Outside any project, with no project named: the plugin says how to choose one.
    let out = dpe(&sandbox, &["jupyter", "stop"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: no project selected\nhelp: name one (`dpe jupyter project_a`), pass `--project NAME`, or run inside a project folder\n"
    );

    for name in ["broken_req", "no_image", "bad_ca", "bad_apt"] {
        assert!(container_state(&sandbox, name).is_empty(), "{name} left a container");
    }
}

#[test]
fn odd_but_valid_env_values_reach_the_image_intact() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    // Quotes, `$` (never expanded), backslashes (one ends the value), runs of spaces.
    let values = [
        ("QUOTES", r#"say "hi" and it's done"#),
        ("DOLLARS", "$HOME ${PATH} $(id) `id`"),
        ("BACKSLASHES", r"a\b \\c ends\"),
        ("SPACES", "  two  spaces  "),
    ];
    let mut toml = String::from("image = \"dpe-test/bookworm:latest\"\n[env]\n");
    for (key, value) in values {
        toml.push_str(&format!("{key} = {}\n", serde_json::to_string(value).unwrap()));
    }
    sandbox.project("odd_env", &toml);
    let out = dpe(&sandbox, &["jupyter", "spec", "odd_env", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = spec["image"].as_str().unwrap().to_string();
    // The image is this test's own (its tag hashes this configuration): remove it afterwards.
    struct RemoveImage(String);
    impl Drop for RemoveImage {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["image", "rm", "-f", &self.0]).output();
        }
    }
    let _image = RemoveImage(image.clone());
    for (key, value) in values {
        let script = format!("printf '%s' \"${key}\"");
        let out =
            Command::new("docker").args(["run", "--rm", "--entrypoint", "sh", &image, "-c", &script]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), value, "{key}");
    }
}

#[test]
fn a_port_lost_to_another_program_during_docker_run_moves_to_the_next_one() {
    let Some((sandbox, _cleanup)) = setup(&["project_r"], 22200) else { return };
    // A user hook that, the first time only, grabs the port `docker run` is about to publish:
    // exactly the race between dpe's check and the engine's bind.
    let marker = sandbox.path("grabbed");
    let pid_file = sandbox.path("grabber.pid");
    let grabber = r#"
import json, os, re, socket, sys, time
argv = json.loads(os.environ["DPE_DOCKER_ARGV"])
port = next(int(a.split(":")[1]) for a in argv if re.fullmatch(r"127\.0\.0\.1:\d+:\d+", a))
s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen()
if os.fork():
    sys.exit(0)
open(sys.argv[1], "w").write("%d %d" % (os.getpid(), port))
time.sleep(120)
"#;
    sandbox.write("grabber.py", grabber);
    sandbox.write_exe(
        "config/hooks/pre-run",
        &format!(
            "#!/bin/sh\n[ -e {m} ] && exit 0\ntouch {m}\npython3 {g} {p} </dev/null >/dev/null 2>&1\nwhile [ ! -s {p} ]; do sleep 0.05; done\n",
            m = marker.display(),
            g = sandbox.path("grabber.py").display(),
            p = pid_file.display()
        ),
    );
    let (server, log) = start(&sandbox, "project_r");
    let grabbed = std::fs::read_to_string(&pid_file).unwrap();
    let (pid, port) = grabbed.split_once(' ').unwrap();
    // SAFETY: kill(2) on the grabber this test started.
    unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
    let port: u16 = port.parse().unwrap();
    assert_ne!(server.port, port);
    assert!(
        log.contains(&format!("dpe: port {port} was taken while `project_r` started; trying the next one")),
        "{log}"
    );
    assert_eq!(server.get("api/status", true).0, 200);
    assert_eq!(container_state(&sandbox, "project_r"), ["running"]);
}

#[test]
fn a_server_that_never_answers_is_reported_with_its_log_and_removed() {
    let Some((sandbox, _cleanup)) = setup(&["project_x"], 22400) else { return };
    sandbox.project(
        "crashes",
        &format!("{PROJECT_TOML}[jupyter]\ncommand = [\"sh\", \"-c\", \"echo 'boom: no server here' >&2; exit 3\"]\n"),
    );
    sandbox.project("hangs", &format!("{PROJECT_TOML}[jupyter]\ncommand = [\"sleep\", \"600\"]\nready_timeout = 3\n"));

    let out = dpe(&sandbox, &["jupyter", "crashes", "--detach"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("  | boom: no server here\n"), "{stderr}");
    assert!(stderr.ends_with(
        "error: the Jupyter server of `crashes` exited (status 3) before it answered\nhelp: its last log lines are above; fix the cause (dpe.toml, `[jupyter] command`) and start again\n"
    ), "{stderr}");
    assert!(container_state(&sandbox, "crashes").is_empty(), "the failed container was left behind");

    let out = dpe(&sandbox, &["jupyter", "hangs", "--detach"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: the Jupyter server of `hangs` did not answer on port "), "{stderr}");
    assert!(stderr.contains(" within 3 s\n"), "{stderr}");
    assert!(container_state(&sandbox, "hangs").is_empty(), "the failed container was left behind");
    let volumes = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", &format!("label=dpe.workspace={}", sandbox.workspace().display())])
        .output()
        .unwrap();
    assert_eq!(text(&volumes.stdout), "", "the volume made for a failed first start was left behind");
}

/// The sync log dpe copies out of a failed container is the project's to shape: a link there
/// must neither become a link on the host nor be written through, and a link already on the
/// host (say, planted by another program) is replaced, not followed.
#[test]
fn a_sync_log_that_is_a_link_never_reaches_a_host_file() {
    let Some((sandbox, _cleanup)) = setup(&["project_y"], 22450) else { return };
    let victim = sandbox.write("victim.txt", "keep\n");
    // As a failed sync ends (dpe's SYNC_EXIT_CODE), with a link where the log would be.
    let link_then_fail = format!("ln -sfn {} /dpe/venv/.dpe-sync.log; exit 86", victim.display());
    sandbox.project("linky", &format!("{PROJECT_TOML}[jupyter]\ncommand = [\"sh\", \"-c\", \"{link_then_fail}\"]\n"));
    let out = dpe(&sandbox, &["jupyter", "linky", "--detach"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: the Python packages of `linky` could not be synced"), "{stderr}");
    assert!(!stderr.contains("its full log is"), "a link was taken for the log:\n{stderr}");
    let logs = sandbox.path("state/jupyter/logs");
    let kept: Vec<_> = std::fs::read_dir(&logs)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(!kept.iter().any(|name| name.starts_with("sync-")), "{kept:?}");

    // A regular log is kept, and a link already where it goes is replaced, not written through.
    let write_then_fail = "rm -f /dpe/venv/.dpe-sync.log; echo attacker > /dpe/venv/.dpe-sync.log; exit 86";
    sandbox.project("linky", &format!("{PROJECT_TOML}[jupyter]\ncommand = [\"sh\", \"-c\", \"{write_then_fail}\"]\n"));
    let spec: Value = serde_json::from_slice(&dpe(&sandbox, &["jupyter", "spec", "linky", "--json"]).stdout).unwrap();
    let key = spec["labels"]["dpe.jupyter.key"].as_str().unwrap().to_string();
    let destination = logs.join(format!("sync-{key}.log"));
    std::fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(&victim, &destination).unwrap();
    let out = dpe(&sandbox, &["jupyter", "linky", "--detach"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("help: its full log is `{}`", destination.display())),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n", "the host file was written through a link");
    assert!(!destination.is_symlink());
    assert_eq!(std::fs::read_to_string(&destination).unwrap(), "attacker\n");
}

#[test]
fn unchanged_inputs_never_build_and_rebuild_forces_one() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    // No packages: a build is only dpe's own layer, seconds even without the cache. A unique
    // env value gives this sandbox its own image.
    sandbox.project(
        "tiny",
        &format!("image = \"dpe-test/bookworm:latest\"\n[env]\nDPE_TEST_SANDBOX = \"{}\"\n", sandbox.id()),
    );
    let spec = |extra: &[&str]| {
        let mut args = vec!["jupyter", "spec", "tiny", "--json"];
        args.extend_from_slice(extra);
        let out = dpe(&sandbox, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
        (spec["image"].as_str().unwrap().to_string(), text(&out.stderr))
    };
    let (image, first) = spec(&[]);
    assert!(first.contains(&format!("dpe: building the environment of `tiny` ({image})")), "{first}");
    // On a pipe: one plain line per step, not docker's pages; those go to the build log.
    let steps: Vec<&str> = first.lines().filter(|l| l.starts_with("dpe: step ")).collect();
    assert!(steps.first().is_some_and(|l| l.starts_with("dpe: step 1/")), "{first}");
    assert!(steps.iter().any(|l| l.contains(" RUN ")), "{first}");
    assert!(!first.contains("Step 1/") && !first.contains("--->"), "docker's own lines stay in the log:\n{first}");
    assert!(!first.contains('\r') && !first.contains('\u{1b}'), "{first:?}");
    let log = sandbox.path("state").join(format!("jupyter/logs/build-{}.log", image.replace(':', "-")));
    assert!(first.contains("dpe: built in ") && first.contains(&format!("(log: `{}`)", log.display())), "{first}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("Step 1/") && logged.contains("Successfully tagged"), "{logged}");
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o777, 0o600);
    let (same, second) = spec(&[]);
    assert_eq!(same, image);
    assert!(!second.contains("building"), "{second}");
    let (forced, third) = spec(&["--rebuild"]);
    assert_eq!(forced, image, "the tag is the hash of the inputs");
    assert!(third.contains("dpe: building the environment of `tiny`"), "{third}");
    let _ = Command::new("docker").args(["image", "rm", "--force", &image]).output();
}

/// Removes an image when dropped (the lock's image is this test's own).
struct ImageGuard(Option<String>);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        if let Some(image) = &self.0 {
            let _ = Command::new("docker").args(["image", "rm", "--force", image]).output();
        }
    }
}

#[test]
fn a_lock_installs_exactly_its_packages_and_is_remembered() {
    let Some((sandbox, _cleanup)) = setup(&["origin", "locked"], 22600) else { return };
    let run = |args: &[&str]| {
        let out = dpe(&sandbox, args);
        assert!(out.status.success(), "dpe {args:?} failed:\n{}", text(&out.stderr));
        out
    };
    // A live environment with a package installed by hand from a wheel in its project folder.
    start(&sandbox, "origin");
    run(&["jupyter", "exec", "origin", "--", "python3", "-c", dpe_testkit::MAKE_WHEEL]);
    run(&["jupyter", "exec", "origin", "--", "pip", "install", "dist/tinypkg-0.1-py3-none-any.whl"]);
    let lock = text(&run(&["jupyter", "exec", "origin", "--", "python3", "-m", "pip", "freeze"]).stdout);
    assert!(lock.contains("\ntinypkg @ file:///work/dist/tinypkg-0.1-py3-none-any.whl\n"), "{lock}");
    assert!(lock.contains("\npandas=="), "{lock}");
    let lock_file = sandbox.write("env.lock", &lock);
    let lock_arg = lock_file.to_str().unwrap();
    let spec = |extra: &[&str]| {
        let mut args = vec!["jupyter", "spec", "locked", "--json"];
        args.extend_from_slice(extra);
        let out = run(&args);
        let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
        (spec["image"].as_str().unwrap().to_string(), text(&out.stderr))
    };

    // What the build could not reproduce is refused before anything is built or started.
    let wheel = sandbox.workspace().join("projects/locked/dist/tinypkg-0.1-py3-none-any.whl");
    let out = dpe(&sandbox, &["jupyter", "spec", "locked", "--json", "--from-lock", lock_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!(
            "installs from `/work/dist/tinypkg-0.1-py3-none-any.whl`, but `{}` does not exist",
            wheel.display()
        )),
        "{}",
        text(&out.stderr)
    );
    // The wheel travels with the project folder.
    std::fs::create_dir_all(wheel.parent().unwrap()).unwrap();
    std::fs::copy(sandbox.workspace().join("projects/origin/dist/tinypkg-0.1-py3-none-any.whl"), &wheel).unwrap();
    let bad = sandbox.write("bad.lock", &format!("{lock}other @ file:///tmp/other.whl\n"));
    let out = dpe(&sandbox, &["jupyter", "locked", "--detach", "--from-lock", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: line {} of the lock `{}` installs from `/tmp/other.whl`, outside the project folder (`/work` in the container): `other @ file:///tmp/other.whl`\nhelp: put the package in the project folder, install it from there, and export the lock again\n",
            lock.lines().count() + 1,
            bad.display()
        )
    );
    assert_eq!(container_state(&sandbox, "locked"), Vec::<String>::new());
    // Nothing was remembered from the refusals: the project builds from its configuration.
    let (configured, stderr) = spec(&[]);
    assert!(!stderr.contains("building"), "{stderr}");

    // The lock installs exactly the live set. No `--rebuild` needed: the lock is part of the
    // content hash, so this builds (on the cached layers of the configured packages).
    let out = run(&["jupyter", "locked", "--detach", "--from-lock", lock_arg]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "dpe: the environment installs the lock `{lock_arg}` after the project's packages (`--no-lock` goes without it)"
        )),
        "{stderr}"
    );
    let status: Value = serde_json::from_slice(&run(&["jupyter", "status", "locked", "--json"]).stdout).unwrap();
    let locked_image = status["image"].as_str().unwrap_or_default().to_string();
    let _image = ImageGuard(Some(locked_image.clone()).filter(|i| i != &configured));
    assert_ne!(locked_image, configured, "the lock is part of the image's content hash");
    let freeze = text(&run(&["jupyter", "exec", "locked", "--", "python3", "-m", "pip", "freeze"]).stdout);
    assert_eq!(freeze, lock);
    let value = run(&["jupyter", "exec", "locked", "--", "python3", "-c", "import tinypkg; print(tinypkg.VALUE)"]);
    assert_eq!(text(&value.stdout), "42\n");
    // The package the image lacked was installed into the environment at start (the image only
    // carries the lock); what the image has at the locked version was left to the image.
    let venv = run(&["jupyter", "exec", "locked", "--", "sh", "-c", "ls /dpe/venv/lib/python3*/site-packages"]);
    assert!(text(&venv.stdout).contains("tinypkg-0.1.dist-info"), "{}", text(&venv.stdout));
    assert!(!text(&venv.stdout).contains("pandas"), "{}", text(&venv.stdout));
    let logs = run(&["jupyter", "logs", "locked"]);
    let logs = text(&logs.stdout) + &text(&logs.stderr);
    assert!(
        logs.contains("installing the lock given with --from-lock (1 of its packages are not in the image)"),
        "{logs}"
    );

    // Remembered: later builds (compose and export go through `spec`) use the same image.
    run(&["jupyter", "stop", "locked"]);
    let (again, stderr) = spec(&[]);
    assert_eq!(again, locked_image);
    assert!(!stderr.contains("building"), "{stderr}");
    // `--no-lock` goes back to the configuration, and stays there.
    assert_eq!(spec(&["--no-lock"]).0, configured);
    assert_eq!(spec(&[]).0, configured);
}

/// The names of the volumes labelled with the sandbox's workspace, one a line.
fn workspace_volumes(sandbox: &Sandbox) -> String {
    let filter = format!("label=dpe.workspace={}", sandbox.workspace().display());
    text(&Command::new("docker").args(["volume", "ls", "-q", "--filter", &filter]).output().unwrap().stdout)
}

/// Sends SIGINT to the child (or to its process group, which it leads) and waits for it to end.
fn interrupt(child: &mut std::process::Child, group: bool) -> std::process::ExitStatus {
    signal_and_wait(child, group, libc::SIGINT)
}

/// Sends `signal` to the child (or to its process group, which it leads) and waits for it to end.
fn signal_and_wait(child: &mut std::process::Child, group: bool, signal: libc::c_int) -> std::process::ExitStatus {
    let pid = child.id() as i32;
    // SAFETY: kill(2) on the child this test spawned, or on the process group it leads.
    unsafe { libc::kill(if group { -pid } else { pid }, signal) };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "dpe did not stop after signal {signal}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The start of a pre-run hook in Python that binds the host port `docker run` is about to
/// publish (the race between dpe's check and the engine's bind), holding it in `s`.
const GRAB_THE_PORT: &str = r#"
import json, os, re, socket, sys, time
argv = json.loads(os.environ["DPE_DOCKER_ARGV"])
port = next(int(a.split(":")[1]) for a in argv if re.fullmatch(r"127\.0\.0\.1:\d+:\d+", a))
s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen()
"#;

/// A project whose server answers only seconds after its container runs: time to act while it
/// is starting. (`dpe-start` prepares the volume and runs the command, which waits, then runs
/// `dpe-start` again to start the server.) Once it says `waiting`, it ends at once on `docker
/// stop`, as a server would.
const SLOW_PROJECT_TOML: &str = r#"[jupyter]
command = ["sh", "-c", "trap 'exit 143' TERM; echo 'dpe-test: waiting' >&2; sleep 6 & wait $!; exec dpe-start"]
"#;

/// Makes `name` a slow project and starts it in the background with `--detach`.
fn start_slow(sandbox: &Sandbox, name: &str) -> std::process::Child {
    sandbox.project(name, &format!("{PROJECT_TOML}{SLOW_PROJECT_TOML}"));
    let mut command = sandbox.dpe();
    command.args(["jupyter", name, "--detach"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.spawn().unwrap()
}

/// Waits until the project's container exists and runs (the start created it).
fn wait_until_running(sandbox: &Sandbox, project: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while container_state(sandbox, project) != ["running"] {
        assert!(Instant::now() < deadline, "the container of {project} never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the project's container has logged `line`.
fn wait_for_log_line(sandbox: &Sandbox, project: &str, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label=dpe.workspace={}", sandbox.workspace().display())])
            .args(["--filter", &format!("label=dpe.project={project}")])
            .output()
            .unwrap();
        if let Some(id) = text(&ids.stdout).split_whitespace().next() {
            let log = Command::new("docker").args(["logs", id]).output().unwrap();
            if text(&log.stderr).lines().any(|l| l == line) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the container of {project} never logged `{line}`");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_starts_of_one_project_at_once_share_one_server() {
    let Some((sandbox, _cleanup)) = setup(&["project_t"], 23000) else { return };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| dpe(&sandbox, &["jupyter", "project_t", "--detach"]));
        let b = scope.spawn(|| dpe(&sandbox, &["jupyter", "project_t", "--detach"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "the first start failed:\n{}", text(&a.stderr));
    assert!(b.status.success(), "the second start failed:\n{}", text(&b.stderr));
    assert_eq!(text(&a.stdout), text(&b.stdout), "both print the URL of the one server");
    // One started the server, the other waited for it and found it running.
    let (started, found) = if text(&a.stderr).contains("is already running") { (&b, &a) } else { (&a, &b) };
    assert!(text(&started.stderr).contains("dpe: `project_t` is ready on port "), "{}", text(&started.stderr));
    assert!(text(&found.stderr).ends_with("dpe: `project_t` is already running\n"), "{}", text(&found.stderr));
    assert_eq!(container_state(&sandbox, "project_t"), ["running"]);
    let server = Server::from_url(text(&a.stdout).trim());
    assert_eq!(server.get("api/status", true).0, 200);
}

#[test]
fn a_stop_during_a_start_waits_for_the_server_to_answer() {
    let Some((sandbox, _cleanup)) = setup(&["slow_stop"], 23200) else { return };
    let start = start_slow(&sandbox, "slow_stop");
    wait_for_log_line(&sandbox, "slow_stop", "dpe-test: waiting");
    // The server needs seconds yet: the stop waits for the start instead of undoing it.
    let stop = dpe(&sandbox, &["jupyter", "stop", "slow_stop"]);
    let start = start.wait_with_output().unwrap();
    assert!(start.status.success(), "the start failed:\n{}", text(&start.stderr));
    assert!(text(&start.stdout).starts_with("http://127.0.0.1:"), "{}", text(&start.stdout));
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    assert_eq!(
        text(&stop.stderr),
        "dpe: another dpe is starting or stopping `slow_stop`; waiting for it to finish…\n\
         dpe: stopping `slow_stop`…\n\
         dpe: `slow_stop` stopped; its files and installed packages are kept\n"
    );
    assert_eq!(container_state(&sandbox, "slow_stop"), ["exited"]);
}

#[test]
fn detach_on_a_server_still_starting_waits_until_it_answers() {
    let Some((sandbox, _cleanup)) = setup(&["slow_kill"], 23400) else { return };
    let mut start = start_slow(&sandbox, "slow_kill");
    wait_until_running(&sandbox, "slow_kill");
    // dpe dies between creating the container and the server's first answer.
    start.kill().unwrap();
    start.wait().unwrap();
    let out = dpe(&sandbox, &["jupyter", "slow_kill", "--detach"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The URL it prints answers at once.
    let server = Server::from_url(text(&out.stdout).trim());
    assert_eq!(server.get("api/status", true).0, 200);
    assert_eq!(text(&out.stderr), "dpe: `slow_kill` is already running\ndpe: waiting until `slow_kill` answers…\n");
    assert_eq!(container_state(&sandbox, "slow_kill"), ["running"]);
}

#[test]
fn ctrl_c_stops_the_server_even_when_the_output_pipe_is_gone() {
    use std::os::unix::process::CommandExt;
    let Some((sandbox, _cleanup)) = setup(&["project_p"], 23600) else { return };
    // `dpe jupyter project_p 2>&1 | head -5`: one pipe for both streams, whose reader leaves.
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = sandbox
        .dpe()
        .args(["jupyter", "project_p"])
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .process_group(0)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(reader).lines().map_while(Result::ok);
    assert!(lines.any(|l| l.starts_with("dpe: streaming the log of `project_p`")), "the server never answered");
    drop(lines);
    assert_eq!(container_state(&sandbox, "project_p"), ["running"]);

    // Ctrl+C reaches the whole foreground group, as from a terminal.
    let status = interrupt(&mut child, true);
    assert_eq!(status.code(), Some(0), "dpe ended by {status} instead of stopping its server");
    assert_eq!(container_state(&sandbox, "project_p"), ["exited"]);
}

/// `dpe jupyter NAME --detach` on a project whose dpe.toml adds `toml` fails with toml's
/// report of the file (`report`: the numbered line, its caret line, the message and any `help:`
/// line) and leaves no container.
fn assert_refused_while_reading(sandbox: &Sandbox, name: &str, toml: &str, report: &str) {
    let dir = sandbox.project(name, &format!("image = \"dpe-test/bookworm:latest\"\n{toml}\n"));
    let line = report.split(' ').next().unwrap();
    let column = report.lines().nth(1).unwrap().find('^').unwrap() - 3;
    let out = dpe(sandbox, &["jupyter", name, "--detach"]);
    assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: invalid configuration in `{}` at line {line}, column {column}\n  |\n{report}\n",
            dir.join("dpe.toml").display()
        ),
        "{name}"
    );
    assert!(container_state(sandbox, name).is_empty(), "{name} left a container");
}

#[test]
fn bad_ports_and_bind_are_refused_before_anything_is_created() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    let cases = [
        ("dup_ports", "ports = [8080, 9000, 8080]", "2 | ports = [8080, 9000, 8080]\n  |         ^^^^^^^^^^^^^^^^^^\n`ports` lists 8080 twice: list each container port once"),
        ("zero_ports", "ports = [0]", "2 | ports = [0]\n  |         ^^^\n`ports` cannot hold 0: list the container ports to publish, from 1 to 65535 (dpe chooses the host ports)"),
        ("zero_port", "[jupyter]\nport = 0", "3 | port = 0\n  |        ^\n`[jupyter] port` cannot be 0: give the port the server listens on in the container, from 1 to 65535 (default 8888)"),
        ("host_bind", "[jupyter]\nbind = \"localhost\"", "3 | bind = \"localhost\"\n  |        ^^^^^^^^^^^\n`[jupyter] bind` must be an IP address, not `localhost`: use `127.0.0.1` (this machine only) or an address of one of its interfaces"),
        ("dns_bind", "[jupyter]\nbind = \"no-such-host.invalid\"", "3 | bind = \"no-such-host.invalid\"\n  |        ^^^^^^^^^^^^^^^^^^^^^^\n`[jupyter] bind` must be an IP address, not `no-such-host.invalid`: use `127.0.0.1` (this machine only) or an address of one of its interfaces"),
    ];
    for (name, toml, report) in cases {
        assert_refused_while_reading(&sandbox, name, toml, report);
    }
    let volumes = workspace_volumes(&sandbox);
    assert_eq!(volumes, "", "a volume was left behind");
    // Refused before any lock, reservation or token.
    assert!(!sandbox.path("state/jupyter").exists());
}

/// Runs `sh -c SCRIPT` in the project's container (`dpe jupyter exec`) and returns its stdout.
fn exec_sh(sandbox: &Sandbox, project: &str, script: &str) -> String {
    let out = dpe(sandbox, &["jupyter", "exec", project, "--", "sh", "-c", script]);
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn shm_size_memory_and_cpus_reach_the_container() {
    let Some((sandbox, _cleanup)) = setup(&["project_r"], 24600) else { return };
    sandbox.project("project_r", &format!("{PROJECT_TOML}shm_size = \"1g\"\nmemory = \"256m\"\ncpus = 0.5\n"));
    start(&sandbox, "project_r");
    // Docker's default would be 64M: PyTorch's DataLoader workers need more.
    let shm = exec_sh(&sandbox, "project_r", "df --block-size=1M --output=size /dev/shm | tail -n 1");
    assert_eq!(shm.trim(), "1024", "df /dev/shm: {shm}");
    // cgroup v2 names the limits `memory.max` and `cpu.max`; v1 `memory.limit_in_bytes` and
    // `cpu.cfs_quota_us` over `cpu.cfs_period_us`.
    let limits = exec_sh(
        &sandbox,
        "project_r",
        "if [ -e /sys/fs/cgroup/memory.max ]; then cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max; \
         else cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); fi",
    );
    assert_eq!(limits, format!("{}\n50000 100000\n", 256 << 20));
}

#[test]
fn bad_resource_values_are_refused_before_anything_is_created() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    let size_help =
        "help: write a whole number and a unit, `b`, `k`, `m` or `g` (bytes, KiB, MiB, GiB, as docker reads them)";
    let cases = [
        ("bare_memory", "memory = \"512\"", format!("2 | memory = \"512\"\n  |          ^^^^^\n`memory = \"512\"` is not a size\n{size_help}: `memory = \"4g\"`")),
        ("iec_shm", "shm_size = \"2GiB\"", format!("2 | shm_size = \"2GiB\"\n  |            ^^^^^^\n`shm_size = \"2GiB\"` is not a size\n{size_help}: `shm_size = \"1g\"`")),
        ("tiny_memory", "memory = \"4m\"", "2 | memory = \"4m\"\n  |          ^^^^\n`memory = \"4m\"` is below the engine's minimum of 6m\nhelp: give at least 6m: `memory = \"4g\"`, or remove the line".to_string()),
        ("zero_cpus", "cpus = 0", "2 | cpus = 0\n  |        ^\n`cpus = 0` is not a number of CPUs\nhelp: give how many CPUs the container may use, at least 0.01: `cpus = 2` or `cpus = 1.5`, or remove the line for no limit".to_string()),
        ("spaced_idle", "[jupyter]\nidle_timeout = \"2 h\"", "3 | idle_timeout = \"2 h\"\n  |                ^^^^^\n`[jupyter] idle_timeout = \"2 h\"` is not a duration\nhelp: write a whole number and a unit, `s`, `m`, `h` or `d`, above zero (`idle_timeout = \"2h\"`), or `\"off\"` to never stop an idle server".to_string()),
    ];
    for (name, toml, report) in &cases {
        assert_refused_while_reading(&sandbox, name, toml, report);
    }

    // More CPUs than the engine has: refused before the image is built or anything started.
    let info = Command::new("docker").args(["info", "--format", "{{.NCPU}}"]).output().unwrap();
    let available = text(&info.stdout).trim().to_string();
    sandbox.project("many_cpus", "image = \"dpe-test/never-built:latest\"\napt_packages = [\"curl\"]\ncpus = 4096\n");
    let out = dpe(&sandbox, &["jupyter", "many_cpus", "--detach"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("error: `cpus = 4096` asks for more CPUs than the engine has ({available})\nhelp: set `cpus` to at most {available} in the dpe.toml of `many_cpus` (fractions such as 1.5 work), or remove it for no limit\n")
    );
    assert!(container_state(&sandbox, "many_cpus").is_empty(), "a container was left behind");
    assert_eq!(workspace_volumes(&sandbox), "", "a volume was left behind");
    // `dpe compose` runs the services too: their spec is refused before the image is built.
    sandbox.project(
        "service_cpus",
        "image = \"dpe-test/never-built:latest\"\napt_packages = [\"curl\"]\n[services.db]\nimage = \"postgres:16\"\ncpus = 4096\n",
    );
    let out = dpe(&sandbox, &["jupyter", "spec", "service_cpus", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("error: `[services.db] cpus = 4096` asks for more CPUs than the engine has ({available})\nhelp: set `[services.db] cpus` to at most {available} in the dpe.toml of `service_cpus` (fractions such as 1.5 work), or remove it for no limit\n")
    );
}

/// Polls `dpe jupyter status PROJECT --json` until its `state` is `state` or `limit` passes.
fn wait_for_state(sandbox: &Sandbox, project: &str, state: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let out = dpe(sandbox, &["jupyter", "status", project, "--json"]);
        let value: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out.stderr)));
        if value["state"] == state || started.elapsed() > limit {
            return value;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn an_idle_server_stops_itself_and_a_busy_one_keeps_running() {
    let Some((sandbox, _cleanup)) = setup(&["idle_i", "busy_i"], 24700) else { return };
    for name in ["idle_i", "busy_i"] {
        // Long enough for a kernel to start and take its cell on a loaded machine: a kernel
        // idle that long is culled, and one that never got its cell would be.
        sandbox.project(name, &format!("{PROJECT_TOML}[jupyter]\nidle_timeout = \"30s\"\n"));
    }
    let (idle, _) = start(&sandbox, "idle_i");
    // A forgotten browser tab: a kernel that ran a cell, its websocket still open.
    assert_eq!(idle.execute("print(6 * 7)"), Ok("42\n".to_string()));
    let kernels: Value = serde_json::from_str(&idle.get("api/kernels", true).1).unwrap();
    let kernel = kernels[0]["id"].as_str().unwrap();
    let address =
        format!("ws://127.0.0.1:{}{}api/kernels/{kernel}/channels?token={}", idle.port, idle.base, idle.token);
    let stream = std::net::TcpStream::connect(("127.0.0.1", idle.port)).unwrap();
    let (mut tab, _) = tungstenite::client(address.as_str(), stream).expect("kernel websocket");
    // Reading answers the server's pings, as a browser does; the socket lives until the server.
    let tab = std::thread::spawn(move || while tab.read().is_ok() {});
    let (busy, _) = start(&sandbox, "busy_i");
    let busy_since = Instant::now();
    // The server knows a kernel is busy only from the status messages its own iopub socket
    // receives, and that socket may connect after the kernel published its first ones (ZeroMQ
    // drops what a subscriber was not connected for). Like a user who opens a notebook and then
    // runs a cell, the test waits until the server has seen the kernel answer once.
    let kernel = busy.start_kernel();
    let waiting = Instant::now();
    while busy.kernel_state(&kernel) != "idle" {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the server never saw the new kernel idle");
        assert_eq!(busy.execute_in(&kernel, "pass"), Ok(String::new()));
        std::thread::sleep(Duration::from_millis(200));
    }
    // A cell that runs longer than the whole test: its kernel stays busy, never culled.
    let cell = std::thread::spawn({
        let kernel = kernel.clone();
        let busy = busy.clone();
        move || busy.execute_in(&kernel, "open('busy-started', 'w').close(); import time; time.sleep(600)")
    });
    let started = sandbox.path("workspace/projects/busy_i/busy-started");
    let waiting = Instant::now();
    while !started.exists() && !cell.is_finished() && waiting.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(started.exists(), "the busy cell never started: {:?}", cell.is_finished().then(|| cell.join()));
    // The server handles the kernel's `busy` status a moment after the kernel published it.
    let waiting = Instant::now();
    while busy.kernel_state(&kernel) != "busy" {
        assert!(waiting.elapsed() < Duration::from_secs(10), "the server does not know its kernel is busy");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The server checks for idleness once a minute (Notebook 6 and Jupyter Server alike), and
    // culls kernels every `idle_timeout`: it stops one or two minutes after its last activity.
    let stopped = wait_for_state(&sandbox, "idle_i", "stopped", Duration::from_secs(200));
    assert_eq!(stopped["stopped_because"], "idle", "{stopped}");
    tab.join().unwrap();
    let status = dpe(&sandbox, &["jupyter", "status", "idle_i"]);
    assert_eq!(
        text(&status.stdout),
        "idle_i: stopped itself after 30s without activity (`[jupyter] idle_timeout`); files and packages kept; `dpe jupyter idle_i` starts it\n"
    );
    // `list` says so too, beside the busy server and its one kernel.
    let list: Value = serde_json::from_slice(&dpe(&sandbox, &["jupyter", "list", "--json"]).stdout).unwrap();
    let row = |project: &str| list.as_array().unwrap().iter().find(|r| r["project"] == project).cloned().unwrap();
    assert_eq!(
        (row("idle_i")["status"].as_str(), row("idle_i")["exit_code"].as_i64()),
        (Some("stopped-idle"), Some(85))
    );
    assert_eq!(
        (row("busy_i")["status"].as_str(), row("busy_i")["kernels"].as_u64()),
        (Some("running"), Some(1)),
        "the busy server's log:\n{}",
        {
            let logs = dpe(&sandbox, &["jupyter", "logs", "busy_i"]);
            text(&logs.stdout) + &text(&logs.stderr)
        }
    );

    // The busy one has been through three of its own idleness checks and still runs.
    std::thread::sleep(Duration::from_secs(185).saturating_sub(busy_since.elapsed()));
    assert_eq!(container_state(&sandbox, "busy_i"), ["running"], "the server with a busy kernel stopped");
    assert!(!cell.is_finished(), "the busy cell ended: {:?}", cell.join());

    // The next start restarts the same container: same port and token, files kept.
    let (again, _) = start(&sandbox, "idle_i");
    assert_eq!((again.port, again.token.as_str()), (idle.port, idle.token.as_str()));
    assert_eq!(again.get("api/status", true).0, 200);

    // A stop by the user is not idleness.
    let out = dpe(&sandbox, &["jupyter", "stop", "busy_i"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stopped = wait_for_state(&sandbox, "busy_i", "stopped", Duration::from_secs(30));
    assert_eq!(stopped["stopped_because"], Value::Null, "{stopped}");
    let status = dpe(&sandbox, &["jupyter", "status", "busy_i"]);
    assert_eq!(text(&status.stdout), "busy_i: stopped (files and packages kept; `dpe jupyter busy_i` starts it)\n");
    let _ = cell.join();
}

/// Kills the port grabbers a test's hook started, when dropped.
struct Grabbers(std::path::PathBuf);

impl Drop for Grabbers {
    fn drop(&mut self) {
        for pid in std::fs::read_to_string(&self.0).unwrap_or_default().split_whitespace() {
            // SAFETY: kill(2) on a grabber this test's hook started.
            unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
        }
    }
}

#[test]
fn a_start_that_keeps_losing_its_port_leaves_no_volume() {
    let Some((sandbox, _cleanup)) = setup(&["project_l"], 23800) else { return };
    // A user hook that grabs, every time, the port `docker run` is about to publish.
    let pids = sandbox.path("grabbers.pids");
    let _grabbers = Grabbers(pids.clone());
    let grabber = r#"
child = os.fork()
if child:
    open(sys.argv[1], "a").write("%d\n" % child)
    sys.exit(0)
time.sleep(120)
"#;
    sandbox.write("grabber.py", &format!("{GRAB_THE_PORT}{grabber}"));
    sandbox.write_exe(
        "config/hooks/pre-run",
        &format!(
            "#!/bin/sh\npython3 {} {} </dev/null >/dev/null 2>&1\n",
            sandbox.path("grabber.py").display(),
            pids.display()
        ),
    );
    let out = dpe(&sandbox, &["jupyter", "project_l", "--detach"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).ends_with(
            "error: `project_l` lost its port to other programs 5 times in a row\nhelp: try again, or set `[jupyter] host_port_start` to a quieter range\n"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(container_state(&sandbox, "project_l").is_empty(), "a container was left behind");
    let volumes = workspace_volumes(&sandbox);
    assert_eq!(volumes, "", "the volume made by the failed start was left behind");
}

/// The pids of the processes following the log of `container` (`dpe docker logs --follow` and
/// the `docker logs --follow` it runs).
fn log_followers(container: &str) -> Vec<i32> {
    let wanted = format!("logs\0--follow\0{container}\0");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().map_while(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&wanted) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether a process is still there (a zombie counts as gone: it no longer runs).
fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.rsplit(") ").next().unwrap_or_default().starts_with('Z')
}

/// Closing the terminal of a foreground `dpe jupyter` (SIGHUP to its process group, as a closed
/// window or a dropped ssh session sends it) stops the server like Ctrl+C or SIGTERM, and the
/// log followers, which sit in a group of their own, end with dpe.
#[test]
fn a_hangup_stops_the_foreground_server_and_its_log_followers() {
    use std::os::unix::process::CommandExt;
    let Some((sandbox, _cleanup)) = setup(&["project_h"], 24000) else { return };
    let mut child = sandbox
        .dpe()
        .args(["jupyter", "project_h"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok);
    assert!(lines.any(|l| l.starts_with("dpe: streaming the log of `project_h`")), "the server never answered");
    let log = std::thread::spawn(move || lines.collect::<Vec<_>>().join("\n"));
    let name = text(
        &Command::new("docker")
            .args(["ps", "--format", "{{.Names}}"])
            .args(["--filter", &format!("label=dpe.workspace={}", sandbox.workspace().display())])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    let followers = loop {
        let followers = log_followers(&name);
        if followers.len() >= 2 {
            break followers;
        }
        assert!(Instant::now() < deadline, "no log followers of {name}: {followers:?}");
        std::thread::sleep(Duration::from_millis(100));
    };

    // The hangup reaches the whole foreground group, as from a closed terminal.
    let status = signal_and_wait(&mut child, true, libc::SIGHUP);
    assert_eq!(status.code(), Some(0), "dpe ended by {status} instead of stopping its server");
    assert_eq!(container_state(&sandbox, "project_h"), ["exited"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while followers.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "log followers left running: {followers:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The log's readers are gone with the followers: its end can be read now.
    let rest = log.join().unwrap();
    assert!(rest.contains("dpe: stopping `project_h`"), "{rest}");
}

/// Removes what a test made in a workspace other than its sandbox's own.
struct CleanupWorkspace(std::path::PathBuf);

impl Drop for CleanupWorkspace {
    fn drop(&mut self) {
        let filter = format!("label=dpe.workspace={}", self.0.display());
        for (list, remove) in [(["ps", "-aq"], ["rm", "-f"]), (["volume", "ls"], ["volume", "rm"])] {
            let out = Command::new("docker").args(list).args(["-q", "--filter", &filter]).output().unwrap();
            for id in text(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(remove).args(["-f", id]).output();
            }
        }
    }
}

/// A workspace folder whose name holds `:` and `,` (a clone named `lab:2024,x`) starts and
/// serves its project folder: `--volume SRC:DST` split it at the colon, `--mount` does not.
#[test]
fn a_workspace_path_with_a_colon_and_a_comma_starts_and_serves_its_folder() {
    let Some((sandbox, _cleanup)) = setup(&["project_m"], 24200) else { return };
    let workspace = sandbox.path("lab:2024,x");
    sandbox.write("lab:2024,x/dpe.toml", "[jupyter]\nhost_port_start = 24200\n");
    sandbox.write("lab:2024,x/projects/colon/dpe.toml", PROJECT_TOML);
    let _cleanup_colon = CleanupWorkspace(workspace.clone());
    let out = sandbox
        .dpe()
        .env("DPE_WORKSPACE", &workspace)
        .args(["jupyter", "colon", "--detach"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let server = Server::from_url(text(&out.stdout).lines().last().unwrap_or_default());
    assert_eq!(server.get("api/status", true).0, 200);
    let created = server.post("api/contents", &json!({"type": "file", "ext": ".txt"}));
    assert!(workspace.join("projects/colon").join(created["name"].as_str().unwrap()).is_file());
}

/// `[jupyter] bind = "::1"`: the server is published on IPv6's loopback, so that is where dpe
/// waits for it and what every URL it prints names.
#[test]
fn a_server_bound_to_ipv6_loopback_is_probed_and_printed_there() {
    let Some((sandbox, _cleanup)) = setup(&["project_6"], 24400) else { return };
    sandbox.project("project_6", &format!("{PROJECT_TOML}[jupyter]\nbind = \"::1\"\nready_timeout = 60\n"));
    let out = dpe(&sandbox, &["jupyter", "project_6", "--detach"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let url = text(&out.stdout).trim().to_string();
    assert!(url.starts_with("http://[::1]:244"), "{url}");
    let status = ureq::get(&url.replacen("?token=", "api/status?token=", 1)).call().unwrap().status();
    assert_eq!(status, 200);
    assert_eq!(text(&dpe(&sandbox, &["jupyter", "url", "project_6"]).stdout).trim(), url);
    let json: Value =
        serde_json::from_slice(&dpe(&sandbox, &["jupyter", "status", "project_6", "--json"]).stdout).unwrap();
    assert_eq!(json["url"], url.as_str());
    // A second start finds it running and waits on the same address.
    let again = dpe(&sandbox, &["jupyter", "project_6", "--detach"]);
    assert_eq!(text(&again.stdout).trim(), url, "{}", text(&again.stderr));
}

#[test]
fn files_linked_out_of_the_project_are_not_read_into_an_untrusted_image() {
    // Refused before the engine is asked anything: no docker needed.
    let sandbox = Sandbox::new();
    let dir = sandbox.project("linked", "image = \"dpe-test/bookworm:latest\"\nca_certificates = [\"certs\"]\n");
    let token = sandbox.write("private/token", "# api_token = s3cret\n");
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    // What a cloned repository can hold: links no setting names.
    std::os::unix::fs::symlink(&token, dir.join("requirements.txt")).unwrap();
    std::os::unix::fs::symlink(&token, dir.join("certs/corp.pem")).unwrap();
    let out = dpe(&sandbox, &["jupyter", "spec", "linked", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let token = std::fs::canonicalize(&token).unwrap();
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: this workspace's configuration is not trusted, and it reaches outside the project folder `{dir}`:\n  \
             `{dir}/dpe.toml`: `ca_certificates` copies `{token}` into the image (`{dir}/certs/corp.pem`)\n  \
             `requirements` reads `{token}` into the environment\n\
             help: settings that reach your machine run only in a trusted workspace; read those files, and if you trust them run `cd {ws} && dpe trust`\n",
            dir = dir.display(),
            token = token.display(),
            ws = sandbox.workspace().display(),
        )
    );
    assert!(out.stdout.is_empty());
}

/// Two folders whose names differ only in `_` and `-` would share one container and volume
/// (engine names spell both as `-`): refused before the engine is asked anything.
#[test]
fn projects_whose_names_differ_only_in_underscore_and_dash_are_refused() {
    let sandbox = Sandbox::new();
    sandbox.project("a_b", "image = \"dpe-test/bookworm:latest\"\n");
    sandbox.project("a-b", "image = \"dpe-test/bookworm:latest\"\n");
    let out = dpe(&sandbox, &["jupyter", "spec", "a_b", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: projects `a_b` and `a-b` would share one container and environment: engine names spell `_` as `-`\n\
             help: rename one of the two folders in `{}`\n",
            sandbox.workspace().join("projects").display()
        )
    );
    assert!(out.stdout.is_empty());
}

/// `dpe jupyter url` asked while a start is still under way waits for it, so the URL it prints
/// answers at once (before, it printed the URL of a server that did not answer yet).
#[test]
fn url_during_a_start_waits_until_the_server_answers() {
    let Some((sandbox, _cleanup)) = setup(&["slow_url"], 25000) else { return };
    let start = start_slow(&sandbox, "slow_url");
    wait_until_running(&sandbox, "slow_url");
    let out = dpe(&sandbox, &["jupyter", "url", "slow_url"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let server = Server::from_url(text(&out.stdout).trim());
    assert_eq!(server.get("api/status", true).0, 200);
    let started = start.wait_with_output().unwrap();
    assert!(started.status.success(), "{}", text(&started.stderr));
}

//! The Docker Stacks path (`quay.io/jupyter/*` images), on an emulation built here: the real
//! images cannot be pulled (no registry reaches this machine or CI).
//!
//! What dpe does differently for a Stacks image is what this checks, on the real engine: the
//! container starts as root with `NB_UID`/`NB_GID`/`CHOWN_HOME`, `dpe-start` prepares the
//! environment as root (for a trusted project, in the shared package store) and runs the sync
//! as `NB_UID` through `setpriv`, and the image's `start-notebook.py` drops to `NB_UID` and
//! serves `/home/jovyan/work`. The emulated image is the offline Debian base with Debian's
//! Jupyter, a `jovyan` user (uid 1000, gid 100, as in the Stacks) and a `start-notebook.py` that
//! does what the real one does for dpe: move `jovyan` to `NB_UID`, give it its home, drop to it
//! and start the server with the arguments it was given. What it cannot show is conda's
//! Python: the emulation's is Debian's.

#![allow(clippy::disallowed_methods, reason = "tests run the programs they check directly")]

use dpe_testkit::{docker_available, DockerCleanup, Sandbox};
use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

const IMAGE: &str = "quay.io/jupyter/base-notebook:dpe-test-emulation";

const DOCKERFILE: &str = r#"FROM dpe-test/bookworm:latest
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3-notebook python3-pip python3-venv && rm -rf /var/lib/apt/lists/*
RUN useradd --uid 1000 --gid 100 --create-home --shell /bin/bash jovyan \
 && mkdir -p /home/jovyan/work && chown 1000:100 /home/jovyan/work
COPY start-notebook.py /usr/local/bin/start-notebook.py
RUN chmod 0755 /usr/local/bin/start-notebook.py
USER 1000
WORKDIR /home/jovyan
"#;

const START_NOTEBOOK: &str = r#"#!/usr/bin/env python3
# An emulation of Jupyter Docker Stacks' start-notebook.py, for dpe's tests.
import os, subprocess, sys
uid, gid = int(os.environ.get("NB_UID", "1000")), int(os.environ.get("NB_GID", "100"))
if os.getuid() == 0:
    if uid != 1000:
        subprocess.run(["usermod", "--non-unique", "--uid", str(uid), "jovyan"], check=True)
    if os.environ.get("CHOWN_HOME") == "yes":
        subprocess.run(["chown", "%d:%d" % (uid, gid), "/home/jovyan"], check=True)
    drop = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", "env", "HOME=/home/jovyan"]
else:
    drop = []
# Debian's Jupyter is Notebook 6: the Stacks' ServerApp options are NotebookApp's there.
args = [a.replace("--ServerApp.", "--NotebookApp.") for a in sys.argv[1:]]
os.execvp(drop[0] if drop else "python3",
          drop + ["python3", "-m", "notebook", "--ip=0.0.0.0", "--port=8888", "--no-browser"] + args)
"#;

/// Builds the emulated image once per run (later builds hit the engine's cache).
static BUILT: Mutex<bool> = Mutex::new(false);

fn build_image() {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if *built {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.path().join("start-notebook.py"), START_NOTEBOOK).unwrap();
    let out = Command::new("docker").args(["build", "--quiet", "--tag", IMAGE]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "building the emulated Stacks image failed:\n{}", text(&out.stderr));
    *built = true;
}

fn dpe(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.dpe().args(args).stdin(Stdio::null()).output().expect("run dpe")
}

fn ok(sandbox: &Sandbox, args: &[&str]) -> String {
    let out = dpe(sandbox, args);
    assert!(out.status.success(), "dpe {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_stacks_image_serves_the_project_as_the_host_user_with_its_packages_synced() {
    if !docker_available() {
        return;
    }
    build_image();
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    sandbox.write("workspace/dpe.toml", "[jupyter]\nhost_port_start = 23400\n");
    let config = format!("image = \"{IMAGE}\"\nca_certificates = [\"/etc/ssl/certs/ca-certificates.crt\"]\n");
    let dir = sandbox.project("stacked", &config);
    std::fs::write(dir.join("requirements.txt"), "toolz==0.12.1\n").unwrap();
    // dpe hands a Stacks image the host user's ids; a root host has none to hand (the Stacks
    // cannot make `jovyan` uid 0), so there the test plays a user of its own, as `env` allows,
    // and gives it the project folder. The shared package store belongs to the user running dpe,
    // so that stand-in keeps an untrusted project's private store; a user's own run is trusted
    // and syncs into the shared store.
    let mut uid = std::fs::metadata(&dir).unwrap().uid();
    let trusted = uid != 0;
    if uid == 0 {
        uid = 4321;
        sandbox.project("stacked", &format!("{config}[env]\nNB_UID = \"{uid}\"\nNB_GID = \"{uid}\"\n"));
        for path in [dir.clone(), dir.join("requirements.txt"), dir.join("dpe.toml")] {
            std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
        }
    } else {
        ok(&sandbox, &["trust"]);
    }

    let url = ok(&sandbox, &["jupyter", "stacked", "--detach"]);
    let url = url.lines().last().unwrap().to_string();
    let spec: Value = serde_json::from_str(&ok(&sandbox, &["jupyter", "spec", "stacked", "--json"])).unwrap();
    assert_eq!((spec["user"].as_str(), spec["workdir"].as_str()), (Some("root"), Some("/home/jovyan/work")));
    assert_eq!(spec["env"]["NB_UID"], uid.to_string());

    // The server answers with the token, and runs as the host user, not root.
    let status = url.replace("?token=", "api/status?token=");
    let answer = ureq::get(&status).call().map(|r| r.status());
    assert_eq!(answer.ok(), Some(200), "{url}");
    let exec = |code: &str| ok(&sandbox, &["jupyter", "exec", "stacked", "--", "python3", "-c", code]);
    let server_uid = exec("import os; print([os.stat('/proc/%s' % p).st_uid for p in os.listdir('/proc') if p.isdigit() and b'notebook' in open('/proc/%s/cmdline' % p, 'rb').read()][0])");
    assert_eq!(server_uid.trim(), uid.to_string());

    // The requirement was synced (as NB_UID) into the environment (in the store when trusted),
    // which belongs to the user.
    let venv =
        if trusted { format!("/dpe-cache/envs/{}", spec["volume"].as_str().unwrap()) } else { "/dpe/venv".into() };
    assert_eq!(
        exec("import os, toolz; print(toolz.__version__, toolz.__file__, os.path.realpath('/dpe/venv'))"),
        format!("0.12.1 /dpe/venv/lib/python3.11/site-packages/toolz/__init__.py {venv}\n")
    );
    assert_eq!(
        exec(&format!("import os; print(os.stat('{venv}/lib/python3.11/site-packages/toolz').st_uid)")).trim(),
        uid.to_string()
    );

    // What the server writes lands in the project folder as the host user's.
    let created = ureq::post(&url.replace("?token=", "api/contents?token="))
        .set("Content-Type", "application/json")
        .send_string(r#"{"type": "notebook"}"#)
        .unwrap();
    let created: Value = serde_json::from_str(&created.into_string().unwrap()).unwrap();
    let notebook = dir.join(created["name"].as_str().unwrap());
    assert_eq!(std::fs::metadata(&notebook).unwrap().uid(), uid, "{}", notebook.display());

    // A package installed by hand stays across a restart.
    ok(&sandbox, &["jupyter", "exec", "stacked", "--", "pip", "install", "--quiet", "tomli-w==1.0.0"]);
    ok(&sandbox, &["jupyter", "stop", "stacked"]);
    ok(&sandbox, &["jupyter", "stacked", "--detach"]);
    assert_eq!(
        exec("import tomli_w, toolz; print(tomli_w.__file__)"),
        "/dpe/venv/lib/python3.11/site-packages/tomli_w/__init__.py\n"
    );
}

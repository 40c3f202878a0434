//! `dpe docker` against the real engine: labels, hook order, and every failure rule —
//! a failing pre hook aborts before the engine runs, post hooks always run (after a failed
//! call and after Ctrl+C), a failing post hook never hides docker's own status, untrusted
//! workspace hooks do not run, `--no-hooks` says it skips them, a missing engine is explained.

use dpe_testkit::{docker_available, DockerCleanup, Sandbox, BASE_IMAGE};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

/// A hook that appends its name, the verb and (for post hooks) docker's status to `log`.
fn logging_hook(log: &std::path::Path, name: &str) -> String {
    format!(
        "#!/bin/sh\necho \"{name} $DPE_HOOK_PHASE $DPE_DOCKER_VERB ${{DPE_DOCKER_STATUS:--}} $DPE_PROJECT\" >> {}\n",
        log.display()
    )
}

fn container_exists(name: &str) -> bool {
    Command::new("docker").args(["container", "inspect", name]).output().unwrap().status.success()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn trust(sandbox: &Sandbox) {
    let output = sandbox.dpe().arg("trust").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn hooks_run_in_documented_order_around_the_engine() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    let log = sandbox.path("hooks.log");
    sandbox.project("p", "");
    for (dir, tag) in [("config/hooks", "user"), ("workspace/hooks", "ws"), ("workspace/projects/p/hooks", "proj")] {
        for name in ["pre-docker", "pre-run", "post-run", "post-docker"] {
            sandbox.write_exe(&format!("{dir}/{name}"), &logging_hook(&log, &format!("{tag}:{name}")));
        }
    }
    // A `*.sh` hook needs no execute bit.
    sandbox.write("workspace/hooks/pre-ps.sh", &logging_hook(&log, "ws:pre-ps.sh"));
    trust(&sandbox);

    let output = sandbox.dpe().args(["-p", "p", "docker", "run", "--rm", BASE_IMAGE, "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let expected = [
        "user:pre-docker pre run - p",
        "user:pre-run pre run - p",
        "ws:pre-docker pre run - p",
        "ws:pre-run pre run - p",
        "proj:pre-docker pre run - p",
        "proj:pre-run pre run - p",
        "proj:post-run post run 0 p",
        "proj:post-docker post run 0 p",
        "ws:post-run post run 0 p",
        "ws:post-docker post run 0 p",
        "user:post-run post run 0 p",
        "user:post-docker post run 0 p",
    ];
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().collect::<Vec<_>>(), expected);

    std::fs::remove_file(&log).unwrap();
    let output = sandbox.dpe().args(["docker", "ps", "-q", "--filter", "label=none"]).output().unwrap();
    assert!(output.status.success());
    let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(String::from).collect();
    assert_eq!(
        lines,
        [
            "user:pre-docker pre ps - ",
            "ws:pre-docker pre ps - ",
            "ws:pre-ps.sh pre ps - ",
            "ws:post-docker post ps 0 ",
            "user:post-docker post ps 0 "
        ]
    );
}

#[test]
fn failing_pre_hook_aborts_and_nothing_is_created() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    let hook = sandbox.write_exe("config/hooks/pre-run", "#!/bin/sh\necho 'quota exceeded' >&2\nexit 3\n");
    let name = format!("{}-never", sandbox.id());
    let output = sandbox.dpe().args(["docker", "run", "--name", &name, BASE_IMAGE, "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        format!(
            "quota exceeded\nerror: pre hook `{}` failed with status 3; `docker run` was not run\n",
            hook.display()
        )
    );
    assert!(!container_exists(&name));
}

#[test]
fn post_hooks_run_after_a_failed_call_and_never_hide_its_status() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let log = sandbox.path("hooks.log");
    sandbox.write_exe("config/hooks/post-docker", &logging_hook(&log, "post"));
    let output = sandbox.dpe().args(["docker", "image", "inspect", "dpe-test/does-not-exist:nope"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "post post image 1 \n");

    // A failing post hook is loud and makes dpe fail, but docker's own failure wins the status.
    let hook = sandbox.write_exe("config/hooks/post-run", "#!/bin/sh\nexit 7\n");
    let output = sandbox.dpe().args(["docker", "run", "--rm", "dpe-test/does-not-exist:nope"]).output().unwrap();
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains(&format!("error: post hook `{}` failed with status 7", hook.display())),
        "{}",
        stderr(&output)
    );

    let output = sandbox.dpe().args(["docker", "run", "--rm", BASE_IMAGE, "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), format!("error: post hook `{}` failed with status 7\n", hook.display()));
}

#[test]
fn ctrl_c_stops_the_engine_call_and_post_hooks_still_run() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    let log = sandbox.path("hooks.log");
    sandbox.write_exe("config/hooks/post-run", &logging_hook(&log, "post"));
    let mut child = sandbox
        .dpe()
        .args(["docker", "run", "--rm", "--init", BASE_IMAGE, "sleep", "60"])
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    // What a terminal does on Ctrl+C: SIGINT to the whole foreground process group.
    interrupt_group(child.id());
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("post post run "), "{text}");
    assert_ne!(text, "post post run 0 \n");
}

fn interrupt_group(pgid: u32) {
    let status = Command::new("kill").args(["-INT", "--", &format!("-{pgid}")]).status().unwrap();
    assert!(status.success());
}

#[test]
fn labels_mark_everything_dpe_creates() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    sandbox.project("lab", "");
    let name = format!("{}-labelled", sandbox.id());
    let output = sandbox
        .dpe()
        .env("DPE_PLUGIN", "tester")
        .args(["-p", "lab", "docker", "create", "--name", &name, BASE_IMAGE, "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let labels =
        Command::new("docker").args(["inspect", "--format", "{{json .Config.Labels}}", &name]).output().unwrap();
    let labels: serde_json::Value = serde_json::from_slice(&labels.stdout).unwrap();
    assert_eq!(labels["dpe.workspace"], sandbox.workspace().to_string_lossy().as_ref());
    assert_eq!(labels["dpe.project"], "lab");
    assert_eq!(labels["dpe.plugin"], "tester");

    let volume = format!("{}-vol", sandbox.id());
    assert!(sandbox
        .dpe()
        .args(["-p", "lab", "docker", "volume", "create", &volume])
        .output()
        .unwrap()
        .status
        .success());
    let labels = Command::new("docker")
        .args(["volume", "inspect", "--format", "{{index .Labels \"dpe.project\"}}", &volume])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&labels.stdout).trim(), "lab");
}

#[test]
fn untrusted_workspace_hooks_do_not_run_until_trusted_and_again_after_a_change() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let log = sandbox.path("hooks.log");
    let hook = sandbox.write_exe("workspace/hooks/pre-docker", &logging_hook(&log, "ws"));
    let run = || sandbox.dpe().args(["docker", "version", "--format", "{{.Server.Version}}"]).output().unwrap();

    let output = run();
    assert!(output.status.success());
    assert!(!log.exists(), "an untrusted hook ran");
    assert_eq!(
        stderr(&output),
        format!(
            "warning: 1 hook(s) of this workspace are not trusted and were not run:\n  {}\nhelp: read them, then run `dpe trust` in `{}` to allow them\n",
            hook.display(),
            sandbox.workspace().display()
        )
    );

    trust(&sandbox);
    assert!(run().status.success());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ws pre version - \n");

    // Changed content: not trusted any more.
    sandbox.write_exe("workspace/hooks/pre-docker", &(logging_hook(&log, "changed") + "# edited\n"));
    let output = run();
    assert!(stderr(&output).starts_with("warning: 1 hook(s) of this workspace are not trusted"));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ws pre version - \n");
}

#[test]
fn no_hooks_skips_them_and_says_so() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let log = sandbox.path("hooks.log");
    sandbox.write_exe("config/hooks/pre-docker", &logging_hook(&log, "user"));
    let output = sandbox.dpe().args(["--no-hooks", "docker", "version", "--format", "x"]).output().unwrap();
    assert!(output.status.success());
    assert_eq!(stderr(&output), "dpe: skipping 1 hook(s) (--no-hooks / DPE_NO_HOOKS)\n");
    let output = sandbox.dpe().env("DPE_NO_HOOKS", "1").args(["docker", "version", "--format", "x"]).output().unwrap();
    assert!(output.status.success());
    assert!(!log.exists());
}

#[test]
fn missing_or_stopped_engine_is_explained() {
    let sandbox = Sandbox::new();
    sandbox.write("config/config.toml", "[engine]\nprogram = \"no-such-engine\"\n");
    let output = sandbox.dpe().args(["docker", "ps"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: the container engine `no-such-engine` is not installed (not found on PATH)\nhelp: install Docker (Debian/Ubuntu: `sudo apt-get install docker.io`), or set `[engine] program` in dpe.toml\n"
    );

    sandbox.write("config/config.toml", "");
    let output =
        sandbox.dpe().env("DOCKER_HOST", "unix:///nonexistent/docker.sock").args(["docker", "ps"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    // Only dpe's message, with the fix; docker's own "Cannot connect" line is not repeated.
    assert_eq!(
        stderr(&output),
        "error: the container engine is not running: `docker info` cannot reach it\n\
         help: start it, or point `DOCKER_HOST` (now `unix:///nonexistent/docker.sock`) at a running engine, then run the command again\n"
    );
}

#[test]
fn the_example_hooks_do_what_they_say() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let _cleanup = DockerCleanup::new(&sandbox);
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/examples");
    let copy = |from: &str, to: &str| {
        let text = std::fs::read_to_string(examples.join(from)).unwrap();
        sandbox.write(to, &text);
    };
    copy("pre-run-no-privileged.sh", "config/hooks/pre-run.sh");
    copy("post-docker-audit.sh", "config/hooks/post-docker.sh");
    sandbox.project("p", "");

    let output =
        sandbox.dpe().args(["-p", "p", "docker", "run", "--rm", "--privileged", BASE_IMAGE, "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("pre-run: privileged containers are not allowed for project p\nerror: pre hook")
    );

    let output = sandbox.dpe().args(["-p", "p", "docker", "run", "--rm", BASE_IMAGE, "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let audit = std::fs::read_to_string(sandbox.path("state/docker-audit.log")).unwrap();
    let fields: Vec<&str> = audit.trim_end().split('\t').collect();
    assert_eq!(&fields[1..4], ["p", "run", "0"], "{audit}");
    assert!(fields[4].starts_with("[\"run\",\"--label\""), "{audit}");
}

#[test]
fn compose_goes_through_the_same_choke_point() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let log = sandbox.path("hooks.log");
    sandbox.write_exe("config/hooks/pre-compose", &logging_hook(&log, "user"));
    sandbox.write_exe("config/hooks/post-compose", &logging_hook(&log, "user"));
    let output = sandbox.dpe().args(["docker", "compose", "version"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // Compose v2 (`docker compose`) when the engine has it, else Debian's docker-compose v1.
    let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
    assert!(text.contains("compose version"), "{text}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "user pre compose - \nuser post compose 0 \n");
}

#[test]
fn hooks_never_swallow_the_input_meant_for_docker() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let seen = sandbox.path("hook-read");
    sandbox.write_exe("config/hooks/pre-run", &format!("#!/bin/sh\ncat > {}\n", seen.display()));
    let mut child = sandbox
        .dpe()
        .args(["docker", "run", "-i", "--rm", BASE_IMAGE, "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"every byte for docker\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "every byte for docker\n");
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "");
}

#[test]
fn hook_output_never_mixes_into_what_docker_prints() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write_exe("config/hooks/pre-docker", "#!/bin/sh\necho 'pre says hi'\n");
    sandbox.write("config/hooks/post-docker.sh", "echo 'post says bye'\n");
    let format = "{{.Client.Version}}";
    let direct = Command::new("docker").args(["version", "--format", format]).output().unwrap();
    let output = sandbox.dpe().args(["docker", "version", "--format", format]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // Exactly docker's own answer, which plugins parse; the hooks' words went to stderr.
    assert_eq!(String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&direct.stdout));
    assert_eq!(stderr(&output), "pre says hi\npost says bye\n");
}

/// A hook that starts a child which would outlive it, writes the child's pid to `pid_file`
/// and waits for it: a hook that never ends.
fn hanging_hook(pid_file: &std::path::Path) -> String {
    format!("#!/bin/sh\nsleep 1000 &\necho $! > '{}'\nwait\n", pid_file.display())
}

/// Whether process `pid` is gone (or only a zombie waiting to be reaped by init), waiting up
/// to five seconds for it to go.
fn process_gone(pid: &str) -> bool {
    let stat = format!("/proc/{pid}/stat");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let zombie_or_gone =
            std::fs::read_to_string(&stat).map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'));
        if zombie_or_gone.unwrap_or(true) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn read_pid(pid_file: &std::path::Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(pid_file) {
            if text.ends_with('\n') {
                return text.trim().to_string();
            }
        }
        assert!(std::time::Instant::now() < deadline, "the hook never wrote `{}`", pid_file.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_hook_that_never_ends_is_stopped_with_everything_it_started() {
    let sandbox = Sandbox::new();
    let pid_file = sandbox.path("child.pid");
    let hook = sandbox.write_exe("config/hooks/pre-docker", &hanging_hook(&pid_file));
    sandbox.write("config/config.toml", "[hooks]\ntimeout = 1\n");
    let started = std::time::Instant::now();
    let output = sandbox.dpe().args(["docker", "version", "--format", "x"]).output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: pre hook `{}` did not finish within 1s, and it was stopped with every process it started; \
             `docker version` was not run\nhelp: fix the hook, or give hooks more time with `[hooks] timeout = SECONDS` in `{}`\n",
            hook.display(),
            sandbox.path("config/config.toml").display()
        )
    );
    let pid = read_pid(&pid_file);
    assert!(process_gone(&pid), "the hook's child {pid} is still running");
}

#[test]
fn a_zero_hook_timeout_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.write("config/config.toml", "[hooks]\ntimeout = 0\n");
    let output = sandbox.dpe().args(["docker", "version", "--format", "x"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "`[hooks] timeout` is 0 seconds: give a number of seconds from 1 to 86400 (one day; default 300)"
        ),
        "{}",
        stderr(&output)
    );
}

/// Kills the process whose pid a hook wrote to the file, when the test ends however it ends.
struct KillOnDrop(std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

#[test]
fn a_helper_a_hook_leaves_running_never_holds_the_callers_pipe_open() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let pid_file = sandbox.path("helper.pid");
    let _helper = KillOnDrop(pid_file.clone());
    // Like a hook that opens an ssh tunnel or starts an agent: the helper outlives the hook.
    sandbox.write_exe(
        "config/hooks/pre-docker",
        &format!(
            "#!/bin/sh
echo 'tunnel up'
sleep 600 &
echo $! > '{}'
echo 'to stderr' >&2
",
            pid_file.display()
        ),
    );
    let format = "{{.Client.Version}}";
    let direct = Command::new("docker").args(["version", "--format", format]).output().unwrap();
    // Captured output, as a plugin runs `dpe docker …`: the caller reads until end of file.
    let child = sandbox
        .dpe()
        .args(["docker", "version", "--format", format])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    let output = receiver
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("dpe's output stayed open after it ended: the hook's helper holds it")
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&direct.stdout));
    assert_eq!(stderr(&output), "tunnel up\nto stderr\n");
    let pid = read_pid(&pid_file);
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(alive, "the helper {pid} the hook started on purpose was stopped");
}

#[test]
fn ctrl_c_during_a_hanging_pre_hook_stops_it_and_docker_never_runs() {
    let sandbox = Sandbox::new();
    let pid_file = sandbox.path("child.pid");
    let log = sandbox.path("hooks.log");
    let hook = sandbox.write_exe("config/hooks/pre-docker", &hanging_hook(&pid_file));
    sandbox.write_exe("config/hooks/post-docker", &logging_hook(&log, "post"));
    // Standard error to a file, not a pipe: a child left behind would hold a pipe open and
    // hang the test instead of failing it.
    let stderr_file = sandbox.path("stderr");
    let mut child = sandbox
        .dpe()
        .args(["docker", "version", "--format", "x"])
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = read_pid(&pid_file);
    let started = std::time::Instant::now();
    // What a terminal does on Ctrl+C: SIGINT to the whole foreground process group.
    interrupt_group(child.id());
    let status = child.wait().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    let text = std::fs::read_to_string(&stderr_file).unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert_eq!(
        text,
        format!(
            "error: pre hook `{}` was interrupted, and every process it started was stopped; `docker version` was not run\n",
            hook.display()
        )
    );
    assert!(process_gone(&pid), "the hook's child {pid} is still running");
    // As for any failing pre hook: the engine was not called, so there is nothing to undo.
    assert!(!log.exists());
}

#[test]
fn a_hook_in_its_own_group_still_asks_on_the_terminal_and_ctrl_c_there_stops_it() {
    use crate::completion::{shell_command, Pty};
    let sandbox = Sandbox::new();
    let answer = sandbox.path("answer");
    sandbox.write(
        "config/hooks/pre-docker.sh",
        &format!(
            "printf 'proceed? ' > /dev/tty\nread reply < /dev/tty\necho \"reply=$reply\" > '{}'\n",
            answer.display()
        ),
    );
    let pid_file = sandbox.path("child.pid");
    sandbox.write_exe("config/hooks/pre-ps", &hanging_hook(&pid_file));
    // A stopped hook (a background group reading the terminal) would only end at the timeout.
    sandbox.write("config/config.toml", "[hooks]\ntimeout = 20\n");
    // An interactive shell with job control, as in a terminal: dpe runs as a foreground job.
    let mut shell = Pty::spawn(shell_command(&sandbox, "bash", &["--norc", "--noprofile", "-i"]));
    shell.write("PS1='<<P>>'; echo '<<READY''>>'\n");
    shell.read_until("<<READY>>\r\n");
    shell.read_until("<<P>>");
    let dpe = dpe_testkit::binary("dpe");
    shell.write(&format!("'{}' docker --version > /dev/null; echo \"<<rc=$?>>\"\n", dpe.display()));
    shell.read_until("proceed? ");
    shell.write("yes\n");
    shell.read_until("<<rc=0>>");
    assert_eq!(std::fs::read_to_string(&answer).unwrap(), "reply=yes\n");

    shell.read_until("<<P>>");
    shell.write(&format!("'{}' docker ps; echo \"<<rc=$?>>\"\n", dpe.display()));
    shell.read_until("proceed? ");
    shell.write("yes\n");
    let pid = read_pid(&pid_file);
    shell.write("\x03");
    let text = shell.read_until("<<rc=130>>");
    assert!(text.contains("was interrupted, and every process it started was stopped"), "{text}");
    assert!(process_gone(&pid), "the hook's child {pid} is still running");
}

#[test]
fn ctrl_c_during_a_hanging_post_hook_stops_it_and_the_other_post_hooks_still_run() {
    if !docker_available() {
        return;
    }
    let sandbox = Sandbox::new();
    let pid_file = sandbox.path("child.pid");
    let log = sandbox.path("hooks.log");
    // Post hooks run post-VERB, then post-docker: the hanging one first.
    let hook = sandbox.write_exe("config/hooks/post-version", &hanging_hook(&pid_file));
    sandbox.write_exe("config/hooks/post-docker", &logging_hook(&log, "after"));
    let stderr_file = sandbox.path("stderr");
    let mut child = sandbox
        .dpe()
        .args(["docker", "version", "--format", "{{.Client.Version}}"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = read_pid(&pid_file);
    interrupt_group(child.id());
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&stderr_file).unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert_eq!(
        text,
        format!("error: post hook `{}` was interrupted, and every process it started was stopped\n", hook.display())
    );
    assert!(process_gone(&pid), "the hook's child {pid} is still running");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "after post version 0 \n");
}

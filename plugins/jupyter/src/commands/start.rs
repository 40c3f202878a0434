//! `dpe jupyter PROJECT [--detach] [--lan] [--open] [--rebuild] [--from-lock FILE | --no-lock]`: the main job.
//!
//! Builds the image if its inputs changed, reserves the project's port, starts the container
//! (or restarts the stopped one when nothing changed), waits until the server answers on the
//! host port and prints the URL. In the foreground it then streams the log until Ctrl+C: the
//! first stops the container gracefully (files and packages kept), a second one kills it. If
//! the server never answers, the last log lines are shown and everything started is removed.

use crate::cli::StartArgs;
use crate::commands::{own_container, port_owners, url_of};
use crate::docker::{self, Container};
use crate::project::{Project, VOLUME_TARGET};
use crate::project_lock::ProjectLock;
use crate::say;
use crate::spec::{self, run_args, Options, Spec, LABEL_CONFIG};
use dpe_plugin::sdk::http;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often `docker run` may lose a port to another program before dpe gives up.
const PORT_RETRIES: usize = 5;

pub fn run(context: &Context, args: &StartArgs) -> Result<i32> {
    let project = Project::from_context(context, args.project.as_deref())?;
    let choice = crate::lock::Choice::from_args(args.lock.from_lock.as_deref(), args.lock.no_lock)?;
    let clock = Instant::now();
    // `-vv` shows where the time of a start goes.
    let phase = |what: &str| {
        if context.verbosity >= 2 {
            say::err(&format!("dpe: [{:>6.3}s] {what}", clock.elapsed().as_secs_f64()));
        }
    };
    // Ctrl+C while the server comes up removes what was started instead of leaving it behind
    // (the build and engine calls get the terminal's SIGINT themselves and fail).
    install_signal_handlers();
    Project::check_reach(context)?;
    warn_if_published_widely(&project, args.lan);
    let host = crate::image::Host::current();
    let lock = crate::lock::for_build(&context.state_dir, &project, &choice)?;
    let plan = crate::image::plan_with_lock(&project, &host, lock.as_ref())?;
    let plan = crate::imported::adopt(&context.state_dir, &project, plan)?;
    // A required GPU that is missing, or more CPUs than the engine has, fails before anything
    // is built or started.
    spec::check_cpus(context, &project, false)?;
    let gpu_args = crate::spec::gpu_args(context, &project)?;
    // One dpe at a time starts or stops the project: a second one waits here until the first
    // has its server answering (or gave up), then finds it running below.
    let Some(turn) = ProjectLock::acquire(&context.state_dir, &project, &|| interrupts() > 0)? else {
        return Err(Error::new(format!(
            "interrupted while waiting for another dpe to start or stop `{}`",
            project.name
        ))
        .with_code(130));
    };
    // The container list and the image check are independent: ask the engine for both at once.
    phase("planned the image");
    let (containers, image_ready) = std::thread::scope(|scope| {
        let image = scope.spawn(|| if args.rebuild { Ok(false) } else { docker::exists(context, "image", &plan.tag) });
        let containers = docker::containers(context);
        (containers, image.join().expect("image check thread"))
    });
    let containers = containers?;
    let own = own_container(&containers, &project);

    if let Some(container) = own.as_ref().filter(|c| c.running()) {
        // The plan (lock lines included) is valid: the next start builds from it.
        choice.persist(&context.state_dir, &project.key())?;
        return attach(context, &project, container, &plan.tag, args, turn);
    }

    phase("listed containers, checked the image");
    if !image_ready? {
        crate::image::ensure(context, &project, &plan, args.rebuild)?;
    }
    // Only a lock that built is remembered for later builds.
    choice.persist(&context.state_dir, &project.key())?;

    // The project's compose services may run while its Jupyter does not: their ports stay theirs.
    let (published, mine) = port_owners(&containers, &project, own.as_ref());
    let mut options =
        Options { lan: args.lan, exact: args.exact, published, mine, gpu_args: Some(gpu_args), ..Options::default() };
    let started = start_container(context, &project, &plan, &host, &mut options, own)?;
    phase("container started");

    // In the foreground the log streams while the server comes up, so the user sees what it
    // does (and why it failed: no need to repeat the log's tail then).
    let logs = if args.detach { None } else { follow_logs(context, &started.spec.container, false) };
    if let Err(err) = wait_ready(context, &project, &started.probe()) {
        if args.detach && err.code != 130 {
            show_last_logs(context, &started.spec.container);
        }
        stop_child(logs);
        let mut err = err;
        if err.code != 130 && docker::exit_code(context, &started.spec.container) == Some(spec::SYNC_EXIT_CODE) {
            let log = match keep_sync_log(context, &project, &started.spec) {
                Some(kept) => format!("its full log is `{}`; ", kept.display()),
                None => String::new(),
            };
            err = Error::new(format!(
                "the Python packages of `{}` could not be synced, so its server was not started; its environment is as it was",
                project.name
            ))
            .with_help(format!(
                "{log}the lines above name the cause: fix the requirements or the lock, or check the network and the proxy, and start again"
            ));
        }
        cleanup_failed(context, &started);
        return Err(err);
    }
    phase("server answered");
    // The server answers: from here on another dpe may find it, attach to it or stop it.
    drop(turn);
    announce(&project, &started.spec, args.open);
    if args.detach {
        return Ok(0);
    }
    supervise(context, &project, &started.spec.container, logs)
}

/// Warns when the server is published beyond this machine.
fn warn_if_published_widely(project: &Project, lan: bool) {
    let bind = &project.config.jupyter.bind;
    // The configuration holds an IP address (it refuses anything else).
    let loopback = bind.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback());
    if lan || !loopback {
        say::err(&format!(
            "warning: `{}` is published on {} of this machine, not only 127.0.0.1; anyone who can reach it and has the token can run code as you",
            project.name,
            if lan { "every network address".to_string() } else { format!("address {bind}") }
        ));
    }
}

/// The project's server was found running, perhaps started by a dpe that was killed before it
/// answered: wait for it exactly as for a fresh start, then print its URL and return or attach.
fn attach(
    context: &Context,
    project: &Project,
    container: &Container,
    tag: &str,
    args: &StartArgs,
    turn: ProjectLock,
) -> Result<i32> {
    say::err(&format!("dpe: `{}` is already running", project.name));
    sync_running(context, project, container, args.exact)?;
    // Restarting would kill the user's kernels: say how to apply a change instead.
    if args.rebuild || container.image != tag {
        say::err(&format!(
            "dpe: it runs {}, not the image its configuration builds now; `dpe jupyter stop {}` and start it again to apply the change",
            container.image, project.name
        ));
    }
    let url = url_of(context, container).ok_or_else(|| {
        Error::new(format!("`{}` is running, but its URL cannot be rebuilt (no port label or token)", project.name))
            .with_help(format!("stop it with `dpe jupyter stop {}` and start it again", project.name))
    })?;
    let probe = Probe {
        container: container.id.clone(),
        ready_url: url.replacen("?token=", "api/status?token=", 1),
        port: container.port.unwrap_or_default(),
        removed_on_failure: false,
    };
    if http::status(&probe.ready_url, Duration::from_secs(2)) != Some(200) {
        say::err(&format!("dpe: waiting until `{}` answers…", project.name));
        if let Err(err) = wait_ready(context, project, &probe) {
            if err.code != 130 {
                show_last_logs(context, &container.id);
            }
            return Err(err);
        }
    }
    drop(turn);
    say::out(&url);
    if args.open {
        open_browser(&url);
    }
    if args.detach {
        return Ok(0);
    }
    foreground(context, project, &container.id, true)
}

/// Brings a running server's environment in line with the project's Python inputs as they are
/// now (an edited requirements.txt, a new `python_packages` entry), in place: the server and
/// its kernels keep running, new packages import at once. The Python variables go in a private
/// env file, as at creation; an unchanged lock costs one `exec`.
fn sync_running(context: &Context, project: &Project, container: &Container, exact: bool) -> Result<()> {
    if project.config.dockerfile.is_some() {
        return Ok(());
    }
    let workdir = if container.workdir.is_empty() { "/work" } else { container.workdir.as_str() };
    let env_file = crate::secrets::write_variables(
        &context.state_dir,
        &format!("{}.sync", project.key()),
        &crate::spec::python_variables(project)?,
    )?;
    let mut command = crate::commands::exec_prefix(container);
    let at = command.len() - 1;
    let mut env = vec!["--env-file".to_string(), env_file.to_string_lossy().into_owned()];
    for (key, value) in crate::spec::sync_variables(project, workdir, exact)? {
        env.extend(["--env".to_string(), format!("{key}={value}")]);
    }
    command.splice(at..at, env);
    command.extend(["sh", "-c", SYNC_IN_PLACE].map(String::from));
    let status = crate::docker::streamed(context, &command)?;
    if status.success() {
        return Ok(());
    }
    Err(Error::new(format!("syncing the Python environment of the running `{}` failed", project.name))
        .with_help("the server keeps running with its environment as it was; the error above says why")
        .with_code(crate::commands::code(status).max(1)))
}

/// Runs dpe-sync with the image's own Python, as `dpe-start` does.
const SYNC_IN_PLACE: &str = r#"p=$(PATH=${PATH#"$VIRTUAL_ENV/bin:"} command -v python3) && DPE_BASE_PYTHON=$p exec "$p" /usr/local/bin/dpe-sync"#;

/// What readiness is checked on; the same for a fresh start and for a server found running.
struct Probe {
    container: String,
    ready_url: String,
    /// The host port, for messages.
    port: u16,
    /// Whether a failed or interrupted wait removes the container (only one this run started).
    removed_on_failure: bool,
}

/// A container this run started.
struct Started {
    spec: Spec,
    /// Whether this run created the volume (so a failed first start leaves nothing behind).
    created_volume: bool,
}

impl Started {
    fn probe(&self) -> Probe {
        Probe {
            container: self.spec.container.clone(),
            ready_url: self.spec.ready_url.clone(),
            port: self.spec.port.host,
            removed_on_failure: true,
        }
    }
}

/// A volume this run created: removed when dropped unless kept, so every way a start fails
/// (an engine error, a port lost too often, an error while assembling a retry) removes it.
struct NewVolume<'a> {
    context: &'a Context,
    name: Option<String>,
}

impl NewVolume<'_> {
    /// The start succeeded: the volume stays. Returns whether this run created it.
    fn keep(mut self) -> bool {
        self.name.take().is_some()
    }
}

impl Drop for NewVolume<'_> {
    fn drop(&mut self) {
        if let Some(volume) = &self.name {
            remove_volume(self.context, volume);
        }
    }
}

/// Starts the project's container: restarts the stopped one when it was created with exactly
/// the arguments wanted now, else (re)creates it. Retries with the next port when `docker run`
/// loses its port to another program. A failed start leaves no volume it created behind.
fn start_container(
    context: &Context,
    project: &Project,
    plan: &crate::image::Plan,
    host: &crate::image::Host,
    options: &mut Options,
    own: Option<Container>,
) -> Result<Started> {
    let mut new_volume = NewVolume { context, name: None };
    let mut own = own;
    let retry = |port: u16, options: &mut Options| {
        say::err(&format!("dpe: port {port} was taken while `{}` started; trying the next one", project.name));
        options.avoid.push(port);
    };
    for _ in 0..PORT_RETRIES {
        let (spec, reservations) = spec::assemble(context, project, plan, host, options)?;
        for reservation in &reservations {
            if let Some(old) = reservation.moved_from.filter(|old| !options.avoid.contains(old)) {
                say::err(&format!(
                    "dpe: port {old} of `{}` is in use by another program; using port {}",
                    project.name, reservation.port
                ));
            }
        }
        let wanted = spec.labels.get(LABEL_CONFIG).cloned().unwrap_or_default();
        if let Some(existing) = own.take() {
            if existing.config == wanted {
                let out = docker::captured(context, &["start", &existing.id])?;
                if out.status.success() {
                    return Ok(Started { spec, created_volume: new_volume.keep() });
                }
                let message = String::from_utf8_lossy(&out.stderr).into_owned();
                remove_container(context, &existing.id);
                if let Some(port) = lost_port(&message, &spec) {
                    retry(port, options);
                    continue;
                }
                return Err(Error::new(format!(
                    "starting the container of `{}` failed: {}",
                    project.name,
                    message.trim()
                )));
            }
            // Created differently (new image, port or settings): replace it; the volume stays.
            remove_container(context, &existing.id);
        }
        if ensure_volume(context, &spec.volume)? {
            new_volume.name = Some(spec.volume.clone());
        }
        crate::store::ensure(context, &spec)?;
        let out = docker::captured(context, &run_args(&spec))?;
        if out.status.success() {
            return Ok(Started { spec, created_volume: new_volume.keep() });
        }
        let message = String::from_utf8_lossy(&out.stderr).into_owned();
        // A failed `docker run` may leave a created container behind.
        remove_container(context, &spec.container);
        if let Some(port) = lost_port(&message, &spec) {
            retry(port, options);
            continue;
        }
        return Err(Error::new(format!("starting the container of `{}` failed: {}", project.name, message.trim()))
            .with_code(dpe_plugin::client::exit_code(out.status).max(1)));
    }
    Err(Error::new(format!("`{}` lost its port to other programs {PORT_RETRIES} times in a row", project.name))
        .with_help("try again, or set `[jupyter] host_port_start` to a quieter range"))
}

/// The host port a failed `docker run`/`start` says was taken, if that was the failure.
fn lost_port(message: &str, spec: &Spec) -> Option<u16> {
    let lower = message.to_lowercase();
    if !(lower.contains("port is already allocated") || lower.contains("address already in use")) {
        return None;
    }
    let ports = std::iter::once(spec.port.host).chain(spec.ports.iter().map(|p| p.host));
    let candidates: Vec<u16> = ports.collect();
    candidates
        .iter()
        .copied()
        .find(|p| {
            message.contains(&format!(":{p} "))
                || message.contains(&format!(":{p}:"))
                || message.contains(&format!(":{p}\n"))
        })
        .or(Some(spec.port.host))
}

/// Creates the project's volume (through the core, which labels it) unless it exists.
/// Returns whether it was created now.
pub fn ensure_volume(context: &Context, volume: &str) -> Result<bool> {
    if docker::exists(context, "volume", volume)? {
        return Ok(false);
    }
    docker::text(context, &["volume", "create", volume], "creating the project's volume")?;
    Ok(true)
}

fn remove_container(context: &Context, id: &str) {
    let _ = docker::captured(context, &["rm", "--force", "--volumes", id]);
}

fn remove_volume(context: &Context, volume: &str) {
    let _ = docker::captured(context, &["volume", "rm", "--force", volume]);
}

/// After a start that never answered: the container goes, and the volume too when this run
/// made it, with the environment its container began in the package store, so a failed first
/// start leaves nothing behind.
fn cleanup_failed(context: &Context, started: &Started) {
    remove_container(context, &started.spec.container);
    if started.created_volume {
        remove_volume(context, &started.spec.volume);
        if started.spec.venv_in_store().is_some() {
            if let Ok(Some(store)) = crate::store::Store::find(context, &[started.spec.image.as_str()]) {
                let _ = store.remove(context, std::slice::from_ref(&started.spec.volume));
            }
        }
    }
}

/// Polls the server's status URL until it answers 200; fails when the container exits, the
/// timeout passes or the user interrupts.
fn wait_ready(context: &Context, project: &Project, probe: &Probe) -> Result<()> {
    let timeout = Duration::from_secs(project.config.jupyter.ready_timeout);
    let started = Instant::now();
    // Whether the container still runs is an engine call: a watcher thread asks once a second
    // (after a head start), so the HTTP polling below never waits for the engine.
    let exited: Mutex<Option<String>> = Mutex::new(None);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Sleeps in short steps: the scope waits for this thread, so it must notice `done`
            // at once when the server answers.
            let pause = |total: Duration| {
                let until = Instant::now() + total;
                while Instant::now() < until && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            };
            pause(Duration::from_secs(2));
            while !done.load(Ordering::SeqCst) {
                let format = "{{.State.Running}} {{.State.ExitCode}}";
                if let Ok(state) = docker::captured(context, &["inspect", "--format", format, &probe.container]) {
                    let text = String::from_utf8_lossy(&state.stdout).trim().to_string();
                    if let Some(code) = text.strip_prefix("false ") {
                        *exited.lock().unwrap() = Some(code.to_string());
                        return;
                    }
                }
                pause(Duration::from_secs(1));
            }
        });
        let result = poll_until_ready(project, probe, timeout, started, &exited);
        done.store(true, Ordering::SeqCst);
        result
    })
}

fn poll_until_ready(
    project: &Project,
    probe: &Probe,
    timeout: Duration,
    started: Instant,
    exited: &Mutex<Option<String>>,
) -> Result<()> {
    loop {
        if let Some(200) = http::status(&probe.ready_url, Duration::from_secs(2)) {
            return Ok(());
        }
        if interrupts() > 0 {
            let what = if probe.removed_on_failure { "it was removed" } else { "it goes on starting" };
            return Err(Error::new(format!("interrupted while `{}` was starting; {what}", project.name)).with_code(130));
        }
        if let Some(code) = exited.lock().unwrap().clone() {
            return Err(Error::new(format!(
                "the Jupyter server of `{}` exited (status {code}) before it answered",
                project.name
            ))
            .with_help("its last log lines are above; fix the cause (dpe.toml, `[jupyter] command`) and start again"));
        }
        if started.elapsed() > timeout {
            return Err(Error::new(format!(
                "the Jupyter server of `{}` did not answer on port {} within {} s",
                project.name,
                probe.port,
                timeout.as_secs()
            ))
            .with_help("its last log lines are above; raise `[jupyter] ready_timeout` if it is only slow"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The most of a sync log kept on the host (`dpe-sync` keeps its log near a megabyte).
const SYNC_LOG_CAP: u64 = 4 << 20;

/// Copies the sync's full log out of the failed container (which goes next) into the state
/// directory; returns where. The container is the project's, so what it holds is not trusted:
/// the file arrives as `docker cp`'s tar stream, only a regular file is taken (a link would
/// make `docker cp` write a link, or through one, on the host), at most [`SYNC_LOG_CAP`], and
/// it is written by dpe, atomically, in its own folder.
fn keep_sync_log(context: &Context, project: &Project, spec: &Spec) -> Option<std::path::PathBuf> {
    let venv = match spec.venv_in_store() {
        Some((_, folder)) => folder.to_string(),
        None => format!("{VOLUME_TARGET}/venv"),
    };
    let source = format!("{}:{venv}/.dpe-sync.log", spec.container);
    let mut child = dpe_plugin::client::docker_command(context, &["cp", &source, "-"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let log = regular_file(stdout, SYNC_LOG_CAP);
    let _ = child.kill();
    let _ = child.wait();
    let path = crate::build::sync_log(&context.state_dir, &project.key());
    dpe_plugin::sdk::fs::write_private(&path, &log?).ok()?;
    Some(path)
}

/// The content of the first entry of a tar stream when it is a regular file (at most `cap`
/// bytes of it); `None` for a link, a folder or anything else.
fn regular_file(stream: impl std::io::Read, cap: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(stream);
    let entry = archive.entries().ok()?.next()?.ok()?;
    if entry.header().entry_type() != tar::EntryType::Regular {
        return None;
    }
    let mut bytes = Vec::new();
    entry.take(cap).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn show_last_logs(context: &Context, container: &str) {
    say::err(&format!("dpe: last log lines of `{container}`:"));
    if let Ok(out) = docker::captured(context, &["logs", "--tail", "30", container]) {
        for stream in [&out.stdout, &out.stderr] {
            for line in String::from_utf8_lossy(stream).lines() {
                say::err(&format!("  | {line}"));
            }
        }
    }
}

fn announce(project: &Project, spec: &Spec, open: bool) {
    say::err(&format!("dpe: `{}` is ready on port {} (image {})", project.name, spec.port.host, spec.image));
    say::out(&spec.url);
    if open {
        open_browser(&spec.url);
    }
}

fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    #[allow(clippy::disallowed_methods, reason = "opens the user's browser, a desktop program and not the engine")]
    let spawned = std::process::Command::new(program)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if spawned.is_err() {
        say::err(&format!("warning: could not run `{program}` to open a browser; open the URL above yourself"));
    }
}

/// `dpe docker logs --follow` in its own process group, so the terminal's Ctrl+C reaches dpe
/// only and the log keeps flowing while the server shuts down. Being in another group, no
/// signal for dpe's group reaches it: it ends when dpe stops it, and on Linux also when dpe
/// dies without doing so (SIGKILL, a crash), instead of following the log for ever.
fn follow_logs(context: &Context, container: &str, recent_only: bool) -> Option<Child> {
    let mut args = vec!["logs", "--follow"];
    if recent_only {
        args.extend(["--tail", "20"]);
    }
    args.push(container);
    let mut command = dpe_plugin::client::docker_command(context, &args);
    command.stdin(Stdio::null()).process_group(0);
    crate::sys::end_with_parent(&mut command);
    command.spawn().ok()
}

/// Ends a `dpe docker logs` child with SIGTERM, which the core forwards to the docker process
/// it runs (SIGKILL would orphan that one); SIGKILL only if it does not end soon.
fn stop_child(child: Option<Child>) {
    let Some(mut child) = child else { return };
    crate::sys::terminate(&child);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Attaches to a running container in the foreground: its log, and Ctrl+C to stop it.
fn foreground(context: &Context, project: &Project, container: &str, recent_only: bool) -> Result<i32> {
    let logs = follow_logs(context, container, recent_only);
    supervise(context, project, container, logs)
}

/// Waits in the foreground until Ctrl+C (stop gracefully; a second one kills) or until the
/// container ends by itself (the log stream ends with it). The stop always completes: what it
/// prints goes through [`say`], so a reader that went away with the same Ctrl+C cannot end dpe
/// half-way.
fn supervise(context: &Context, project: &Project, container: &str, logs: Option<Child>) -> Result<i32> {
    say::err(&format!("dpe: streaming the log of `{}`; Ctrl+C stops it (files and packages are kept), `--detach` runs it in the background", project.name));
    let mut logs = logs;
    let mut stopper: Option<Child> = None;
    let mut _turn = None;
    let mut killed = false;
    loop {
        let count = interrupts();
        if count >= 1 && stopper.is_none() {
            say::err(&format!("\ndpe: stopping `{}` (Ctrl+C again to force)…", project.name));
            // Like `dpe jupyter stop`: a start of this project in progress ends first. A lock
            // that cannot be had (an error, or Ctrl+C again) never keeps the stop from running.
            _turn = ProjectLock::acquire(&context.state_dir, project, &|| interrupts() >= 2).unwrap_or(None);
            stopper = dpe_plugin::client::docker_command(context, &["stop", container])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .process_group(0)
                .spawn()
                .ok();
        }
        if count >= 2 && !killed {
            killed = true;
            say::err(&format!("dpe: forcing `{}` to stop", project.name));
            let _ = docker::captured(context, &["kill", container]);
        }
        if let Some(child) = stopper.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                stop_child(logs.take());
                say::err(&format!("dpe: `{}` stopped; its files and installed packages are kept", project.name));
                return Ok(0);
            }
        }
        let logs_ended = match logs.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(Some(_))),
            None => false,
        };
        if logs_ended && stopper.is_none() {
            // The stream ends when the container stops (or the stream broke): check which.
            let out = docker::captured(context, &["inspect", "--format", "{{.State.Running}}", container])?;
            if String::from_utf8_lossy(&out.stdout).trim() != "true" {
                say::err(&format!("dpe: `{}` stopped", project.name));
                return Ok(0);
            }
            logs = follow_logs(context, container, true);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

fn interrupts() -> usize {
    INTERRUPTS.load(Ordering::SeqCst)
}

/// Counts SIGINT, SIGTERM and SIGHUP (a closed terminal, a dropped ssh session) instead of
/// dying, so the container is stopped properly, and ignores SIGPIPE: a write to a closed pipe fails (and [`say`] drops it) instead of ending dpe
/// before its container is stopped. Children that are dpe reset SIGPIPE for themselves.
fn install_signal_handlers() {
    crate::sys::handle_interrupts(on_interrupt);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let project = Project {
            name: "p".into(),
            dir: "/w/projects/p".into(),
            workspace: "/w".into(),
            config: dpe_plugin::Config { image: Some("debian:bookworm-slim".into()), ..Default::default() },
        };
        let host = crate::image::Host { uid: 1000, gid: 1000, ca_env: None };
        let plan = crate::image::plan(&project, &host).unwrap();
        spec::build_spec(&project, &plan, &host, "127.0.0.1", 8890, "t", vec![])
    }

    #[test]
    fn a_lost_port_is_recognised_in_dockers_messages() {
        let spec = spec();
        let message = "docker: Error response from daemon: driver failed programming external connectivity on endpoint dpe-p (x): Bind for 127.0.0.1:8890 failed: port is already allocated.";
        assert_eq!(lost_port(message, &spec), Some(8890));
        let message = "Error starting userland proxy: listen tcp4 127.0.0.1:8890: bind: address already in use";
        assert_eq!(lost_port(message, &spec), Some(8890));
        assert_eq!(lost_port("No such image: x", &spec), None);
    }

    #[test]
    fn only_a_regular_file_is_taken_from_the_container_and_only_so_much_of_it() {
        let tar_of = |entry_type: tar::EntryType, data: &[u8]| {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(entry_type);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if entry_type == tar::EntryType::Symlink {
                header.set_link_name("../../../../.bashrc").unwrap();
            }
            builder.append_data(&mut header, ".dpe-sync.log", data).unwrap();
            builder.into_inner().unwrap()
        };
        let log = tar_of(tar::EntryType::Regular, b"$ uv pip install\nerror: no such package\n");
        assert_eq!(
            regular_file(&log[..], 1 << 20).as_deref(),
            Some(&b"$ uv pip install\nerror: no such package\n"[..])
        );
        assert_eq!(regular_file(&log[..], 4).as_deref(), Some(&b"$ uv"[..]));
        assert_eq!(regular_file(&tar_of(tar::EntryType::Symlink, b"")[..], 1 << 20), None);
        assert_eq!(regular_file(&tar_of(tar::EntryType::Directory, b"")[..], 1 << 20), None);
        assert_eq!(regular_file(&b"not a tar"[..], 1 << 20), None);
    }
}

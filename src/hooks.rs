//! Pre and post hooks around docker invocations.
//!
//! A hook is an executable file, or a `*.sh` file run with `sh`, named `pre-docker`,
//! `post-docker` (every call) or `pre-VERB` / `post-VERB` (one docker verb: `run`, `build`,
//! `compose`, …). They are looked up in three places, in this order for pre hooks:
//! the user's hooks dir, the workspace's `hooks/`, the project's `hooks/`; and within each,
//! `pre-docker` before `pre-VERB`. Post hooks run in the exact reverse order, so the innermost
//! setup is torn down first. Workspace and project hooks run only when trusted (`dpe trust`).

use crate::error::Error;
use crate::ffi;
use crate::fsutil;
use crate::trust::TrustStore;
use dpe_plugin::{env, Context};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    Pre,
    Post,
}

impl Phase {
    fn word(self) -> &'static str {
        match self {
            Phase::Pre => "pre",
            Phase::Post => "post",
        }
    }
}

/// A hook found on disk.
#[derive(Debug, Clone)]
pub struct Hook {
    pub path: PathBuf,
    /// User hooks are always trusted; the others need `dpe trust`.
    pub user_level: bool,
}

/// The hook directories for a context, outermost first: (dir, user_level).
pub fn hook_dirs(context: &Context) -> Vec<(PathBuf, bool)> {
    let mut dirs = vec![(context.config_dir.join("hooks"), true)];
    if let Some(ws) = &context.workspace {
        dirs.push((ws.join("hooks"), false));
    }
    if let Some(project) = &context.project {
        dirs.push((project.dir.join("hooks"), false));
    }
    dirs
}

/// The hooks for `verb` in `phase`, in the order they run.
pub fn find(context: &Context, phase: Phase, verb: &str) -> Vec<Hook> {
    let mut names = vec![format!("{}-docker", phase.word())];
    // The verb is whatever word came first on the docker command line: only a plain one names a
    // hook, so `dpe docker ../x` can never reach a file outside the hooks directories. A call
    // with no verb (`dpe docker --version`) is `docker`, whose hook is already listed once.
    if verb != "docker" && crate::names::is_valid(verb) {
        names.push(format!("{}-{verb}", phase.word()));
    }
    let mut hooks = Vec::new();
    for (dir, user_level) in hook_dirs(context) {
        for name in &names {
            for candidate in [dir.join(name), dir.join(format!("{name}.sh"))] {
                if candidate.is_file() {
                    hooks.push(Hook { path: candidate, user_level });
                }
            }
        }
    }
    if phase == Phase::Post {
        hooks.reverse();
    }
    hooks
}

/// Every hook file of a workspace and its projects (for `dpe trust`).
pub fn workspace_hook_files(workspace: &Path, projects: &[String]) -> Vec<PathBuf> {
    let mut dirs = vec![workspace.join("hooks")];
    dirs.extend(projects.iter().map(|p| workspace.join("projects").join(p).join("hooks")));
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut found: Vec<PathBuf> =
            entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file() && is_hook_name(p)).collect();
        found.sort();
        files.extend(found);
    }
    files
}

fn is_hook_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.starts_with("pre-") || name.starts_with("post-")) && !name.ends_with('~')
}

/// What happened to one hook.
pub enum Outcome {
    Ran,
    Failed(Error),
    Untrusted,
}

/// Runs one hook with the context and docker call in its environment.
#[allow(
    clippy::disallowed_methods,
    reason = "runs the user's hooks, which is what the choke point does around every engine call"
)]
pub fn run(
    hook: &Hook,
    trust: &TrustStore,
    context: &Context,
    phase: Phase,
    verb: &str,
    argv: &[String],
    status: Option<i32>,
) -> Outcome {
    if !hook.user_level && !trust.is_trusted(&hook.path) {
        return Outcome::Untrusted;
    }
    if let Err(err) = fsutil::check_not_writable_by_others("hook", &hook.path) {
        return Outcome::Failed(err);
    }
    let is_script = hook.path.extension().is_some_and(|e| e == "sh");
    let mut command = if is_script {
        let mut c = Command::new("sh");
        c.arg(&hook.path);
        c
    } else {
        Command::new(&hook.path)
    };
    command.envs(crate::context::env_vars(context));
    command.env(env::HOOK_PHASE, phase.word());
    command.env(env::HOOK_VERB, verb);
    command.env(env::HOOK_ARGV, serde_json::to_string(argv).expect("argv serialises"));
    if let Some(status) = status {
        command.env(env::HOOK_STATUS, status.to_string());
    }
    if let Some(dir) = context.project.as_ref().map(|p| p.dir.clone()).or_else(|| context.workspace.clone()) {
        command.current_dir(dir);
    }
    // Standard input belongs to the docker call (`dpe docker load < image.tar`, `run -i`): a
    // hook that read it would swallow the stream. A hook that must ask can open /dev/tty.
    command.stdin(Stdio::null());
    // Standard output belongs to the docker call too: plugins parse it (`docker inspect`,
    // `ps --format`), and a hook's `echo` there would corrupt what they read. What a hook
    // prints, on either stream, goes to a pipe dpe relays to its own standard error (see
    // [`Relay`]), never to dpe's descriptors themselves.
    let relay = match Relay::attach(&mut command) {
        Ok(relay) => relay,
        Err(err) => return Outcome::Failed(Error::new(format!("could not make a pipe for a hook: {err}"))),
    };
    // A group of its own, so a timeout or Ctrl+C stops everything the hook started.
    command.process_group(0);
    let what = format!("{} hook `{}`", phase.word(), hook.path.display());
    let spawned = command.spawn();
    // The command holds the pipe's writing ends: only the hook (and what it starts) may keep
    // them, or the relay would never see the end of the hook's output.
    drop(command);
    let child = match spawned {
        Ok(child) => child,
        Err(err) => {
            return Outcome::Failed(
                Error::new(format!("could not run {what}: {err}"))
                    .with_help(format!("make it executable (`chmod +x {}`) or name it `*.sh`", hook.path.display())),
            )
        }
    };
    let timeout = Duration::from_secs(context.config.hooks.timeout);
    match wait_for(child, timeout, relay) {
        Ended::Exited(s) if s.success() => Outcome::Ran,
        Ended::Exited(s) => {
            let code = dpe_plugin::client::exit_code(s);
            Outcome::Failed(Error::new(format!("{what} failed with status {code}")).with_code(code))
        }
        Ended::Interrupted(signal) => Outcome::Failed(
            Error::new(format!("{what} was interrupted, and every process it started was stopped"))
                .with_code(128 + signal),
        ),
        Ended::TimedOut => Outcome::Failed(
            Error::new(format!(
                "{what} did not finish within {}s, and it was stopped with every process it started",
                timeout.as_secs()
            ))
            .with_help(format!(
                "fix the hook, or give hooks more time with `[hooks] timeout = SECONDS` in `{}`",
                context.config_dir.join("config.toml").display()
            )),
        ),
        Ended::Lost(err) => Outcome::Failed(Error::new(format!("lost track of {what}: {err}"))),
    }
}

/// How a hook's run ended.
enum Ended {
    Exited(ExitStatus),
    /// dpe got this signal (or the hook died of Ctrl+C from the terminal).
    Interrupted(i32),
    TimedOut,
    Lost(std::io::Error),
}

/// Waits for a hook running in its own process group, for at most `timeout`. On a timeout or
/// an interrupt the whole group is killed, so nothing the hook started stays behind; after a
/// normal exit the group is left alone (a hook may start a daemon on purpose).
fn wait_for(mut child: Child, timeout: Duration, mut relay: Relay) -> Ended {
    let group = child.id();
    let signals = ffi::guard_signals_for_group(group);
    let terminal = ffi::lend_terminal(group);
    let deadline = dpe_plugin::deadline_after(timeout);
    let mut interrupted_at: Option<Instant> = None;
    let ended = loop {
        relay.pass_on();
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Err(err) => break Err(err),
            Ok(None) => {}
        }
        if Instant::now() >= deadline {
            break Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
        }
        // The signal went to the group already; a hook that ignores it gets a moment, then
        // is killed with the rest: Ctrl+C always ends it.
        if ffi::group_signal().is_some() {
            let since = *interrupted_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= INTERRUPT_GRACE {
                break Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(terminal);
    let signal = ffi::group_signal().or_else(|| match &ended {
        Ok(status) if status.signal() == Some(libc::SIGINT) => Some(libc::SIGINT),
        _ => None,
    });
    if ended.is_err() || signal.is_some() {
        // Whatever the hook left in its group. (While the leader is unreaped, as after a
        // timeout, its group id cannot have been reused; after it exited, members still alive
        // keep the id taken.)
        ffi::kill_group(group);
        let _ = child.wait();
    }
    relay.finish();
    drop(signals);
    match (ended, signal) {
        (_, Some(signal)) => Ended::Interrupted(signal),
        (Ok(status), None) => Ended::Exited(status),
        (Err(err), None) if err.kind() == std::io::ErrorKind::TimedOut => Ended::TimedOut,
        (Err(err), None) => Ended::Lost(err),
    }
}

/// Relays what a hook prints to dpe's standard error, through a pipe of dpe's own.
///
/// The hook must not get dpe's standard error itself: when a plugin runs `dpe docker …` with
/// captured output, that descriptor is the plugin's pipe, and a process the hook leaves running
/// on purpose (an ssh tunnel, an agent) would hold it open after the hook exited, so the plugin
/// would wait for an end of file that never comes. Here only dpe holds its descriptors: once
/// the hook has exited, dpe takes what is already written and closes its end, and whatever a
/// background process writes after that fails (it should send its output to a file).
struct Relay {
    reader: std::io::PipeReader,
    /// The read end reached end of file or failed: nothing more to pass on.
    done: bool,
}

/// The most dpe passes on after the hook exited: a background process that keeps printing
/// must not keep dpe relaying forever.
const RELAY_AFTER_EXIT: usize = 1 << 20;

impl Relay {
    /// Points the command's standard output and error at a new pipe; dpe keeps the read end.
    fn attach(command: &mut Command) -> std::io::Result<Relay> {
        let (reader, writer) = std::io::pipe()?;
        ffi::set_nonblocking(reader.as_fd())?;
        command.stdout(writer.try_clone()?);
        command.stderr(writer);
        Ok(Relay { reader, done: false })
    }

    /// Passes on what is buffered now (at most [`RELAY_AFTER_EXIT`]), without waiting for more.
    fn pass_on(&mut self) {
        use std::io::{Read, Write};
        let mut buffer = [0u8; 8192];
        let mut passed = 0;
        while !self.done && passed < RELAY_AFTER_EXIT {
            match self.reader.read(&mut buffer) {
                Ok(0) => self.done = true,
                Ok(n) => {
                    // A closed standard error ends dpe (SIGPIPE), like its own messages would.
                    let _ = std::io::stderr().write_all(&buffer[..n]);
                    passed += n;
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => self.done = true,
            }
        }
    }

    /// After the hook ended: passes on what it wrote, then closes dpe's end.
    fn finish(mut self) {
        self.pass_on();
    }
}

/// How long a hook may take to stop after Ctrl+C before it is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// The warning printed for hooks that were skipped because they are not trusted. The file
/// names are the workspace's, so their control characters are shown escaped.
pub fn untrusted_warning(hooks: &[PathBuf], workspace: Option<&Path>) -> String {
    let list: Vec<String> = hooks.iter().map(|h| format!("  {}", h.display())).collect();
    let dir = workspace.map(|w| w.display().to_string()).unwrap_or_else(|| ".".into());
    dpe_plugin::terminal_safe(&format!(
        "warning: {} hook(s) of this workspace are not trusted and were not run:\n{}\nhelp: read them, then run `dpe trust` in `{dir}` to allow them",
        hooks.len(),
        list.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(config_dir: &Path) -> Context {
        let dir = config_dir.to_path_buf();
        Context {
            protocol: dpe_plugin::PROTOCOL_VERSION,
            dpe_version: "0.1.0".into(),
            dpe_bin: "/bin/dpe".into(),
            plugin: None,
            workspace: None,
            project: None,
            config: Default::default(),
            config_files: Vec::new(),
            config_trusted: false,
            accepted_reaches: vec![],
            state_dir: dir.clone(),
            data_dir: dir.clone(),
            config_dir: dir.clone(),
            cache_dir: dir,
            verbosity: 0,
            color: "never".into(),
            json: false,
            no_hooks: false,
        }
    }

    #[test]
    fn each_hook_is_found_once_and_only_plain_verbs_name_one() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("hooks/pre-x")).unwrap();
        std::fs::write(tmp.path().join("hooks/pre-docker"), "").unwrap();
        std::fs::write(tmp.path().join("hooks/pre-run.sh"), "").unwrap();
        std::fs::write(tmp.path().join("escaped"), "").unwrap();
        let context = context(tmp.path());
        let names = |verb: &str| -> Vec<String> {
            find(&context, Phase::Pre, verb)
                .iter()
                .map(|hook| hook.path.strip_prefix(tmp.path()).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names("run"), ["hooks/pre-docker", "hooks/pre-run.sh"]);
        assert_eq!(names("docker"), ["hooks/pre-docker"]);
        assert_eq!(names("x/../../escaped"), ["hooks/pre-docker"]);
    }

    #[test]
    fn an_untrusted_hook_name_cannot_drive_the_terminal() {
        let warning = untrusted_warning(&[PathBuf::from("/w/hooks/pre-docker\u{1b}[2J")], Some(Path::new("/w")));
        assert_eq!(
            warning,
            "warning: 1 hook(s) of this workspace are not trusted and were not run:\n  /w/hooks/pre-docker\\u{1b}[2J\n\
             help: read them, then run `dpe trust` in `/w` to allow them"
        );
    }
}

//! Running an image build and showing it as progress, not pages. `docker build` writes
//! hundreds of lines (apt's among them); the user sees the step in progress and the elapsed
//! time instead: one line redrawn in place on a terminal, one plain line per step on a pipe.
//! Every line goes to the build log, `<state>/jupyter/logs/build-<tag>.log`, private to the
//! user (a build's output can show proxy settings and file contents), replaced by the next
//! build of the same tag; the newest [`KEPT_LOGS`] logs are kept. A failed build shows the
//! log's last lines, its path and the step that broke. With `-v` the whole output streams as
//! it comes, as it did before.

use crate::project::Project;
use dpe_plugin::progress::{elapsed, fit, without_escapes, StatusLine};
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many build logs stay in the logs folder (the newest; one per tag).
pub const KEPT_LOGS: usize = 20;
/// How many of the log's last lines a failed build shows (blank ones left out).
pub const TAIL_LINES: usize = 20;
/// How long a line of the tail may be.
const TAIL_WIDTH: usize = 500;
/// How long a step's instruction may be on a line that has no width (a pipe, a message).
const INSTRUCTION_WIDTH: usize = 100;

/// A step of a build: `3/7` and its instruction (`RUN apt-get update && …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub number: String,
    pub instruction: String,
}

impl Step {
    /// Recognises the step a build line starts: the classic builder's `Step 3/7 : RUN …` and
    /// BuildKit's `#7 [3/7] RUN …` (or `#7 [stage 3/7] RUN …`).
    pub fn parse(line: &str) -> Option<Step> {
        if let Some(rest) = line.strip_prefix("Step ") {
            let (number, instruction) = rest.split_once(" : ")?;
            return Some(Step { number: number.to_string(), instruction: instruction.trim().to_string() });
        }
        let rest = line.strip_prefix('#')?;
        let (_, rest) = rest.split_once(" [")?;
        let (number, instruction) = rest.split_once("] ")?;
        if !number.contains('/') {
            return None;
        }
        let number = number.rsplit(' ').next().unwrap_or(number);
        Some(Step { number: number.to_string(), instruction: instruction.trim().to_string() })
    }
}

/// `3/7 \`RUN …\``, as error messages name the step.
impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}`", self.number, fit(&self.instruction, INSTRUCTION_WIDTH))
    }
}

/// The status of a step: `dpe: step 3/7 RUN apt-get update && … (12s)`, the instruction cut so
/// the whole fits in `width` characters (but never below a few words).
pub fn status_text(step: &Step, since_start: Duration, width: usize) -> String {
    let head = format!("dpe: step {} ", step.number);
    let tail = format!(" ({})", elapsed(since_start));
    let room = width.saturating_sub(head.chars().count() + tail.chars().count()).max(12);
    format!("{head}{}{tail}", fit(&step.instruction, room))
}

/// What one build shows and keeps, fed line by line with docker's output.
pub struct BuildOutput<W: Write> {
    status: StatusLine<W>,
    verbose: bool,
    log: File,
    log_path: PathBuf,
    started: Instant,
    step: Option<Step>,
    tail: VecDeque<String>,
}

impl<W: Write> BuildOutput<W> {
    /// Output for a build writing its log to `log`; `verbose` streams every line as well.
    pub fn new(status: StatusLine<W>, verbose: bool, log: File, log_path: PathBuf) -> BuildOutput<W> {
        BuildOutput { status, verbose, log, log_path, started: Instant::now(), step: None, tail: VecDeque::new() }
    }

    /// Takes one line of docker's output (with or without its line break).
    pub fn line(&mut self, bytes: &[u8]) {
        // Without the colours docker gives a step's stderr, so `grep 'E: Unable'` finds it.
        let text = without_escapes(&String::from_utf8_lossy(bytes));
        let text = text.trim_end_matches(['\n', '\r']);
        // A log that cannot be written (a full disk) must not fail the build it only records.
        let _ = self.log.write_all(text.as_bytes()).and_then(|_| self.log.write_all(b"\n"));
        if !text.trim().is_empty() {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            // A line can be megabytes (a program printing without line breaks): the tail is
            // a glance, not a second copy of the log.
            self.tail.push_back(fit(text, TAIL_WIDTH));
        }
        if self.verbose {
            self.status.line(text);
            if let Some(step) = Step::parse(text) {
                self.step = Some(step);
            }
            return;
        }
        let Some(step) = Step::parse(text) else { return };
        // BuildKit may name a step again when its output resumes; one line per step.
        if self.step.as_ref().is_some_and(|current| current.number == step.number) {
            return;
        }
        if self.status.is_terminal() {
            self.step = Some(step);
            self.tick();
        } else {
            self.status.line(&status_text(&step, self.started.elapsed(), INSTRUCTION_WIDTH + 40));
            self.step = Some(step);
        }
    }

    /// Redraws the status with the time elapsed now (a terminal's line only).
    pub fn tick(&mut self) {
        if let (false, Some(step)) = (self.verbose, &self.step) {
            let width = self.status.width();
            self.status.draw(&status_text(step, self.started.elapsed(), width));
        }
    }

    /// Whether the status moves on its own (a terminal, not `-v`): then a clock calls [`tick`].
    ///
    /// [`tick`]: BuildOutput::tick
    pub fn animated(&self) -> bool {
        self.status.is_terminal() && !self.verbose
    }

    /// The step in progress (the last one docker started).
    pub fn step(&self) -> Option<&Step> {
        self.step.as_ref()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Ends a build that worked: the status goes, one line says how long it took.
    pub fn succeeded(&mut self) {
        let _ = self.log.flush();
        self.status.line(&format!(
            "dpe: built in {} (log: `{}`)",
            elapsed(self.started.elapsed()),
            self.log_path.display()
        ));
    }

    /// Ends a build that failed: the status goes and the log's last lines are shown (unless
    /// `-v` showed them all already).
    pub fn failed(&mut self) {
        let _ = self.log.flush();
        self.status.clear();
        if self.verbose {
            return;
        }
        self.status
            .line(&format!("dpe: the build failed after {}; the end of its log:", elapsed(self.started.elapsed())));
        for line in &self.tail {
            self.status.line(&format!("  | {line}"));
        }
    }
}

/// The folder of the plugin's logs on the host: builds', and failed syncs'.
pub fn logs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("jupyter").join("logs")
}

/// Where the log of a project's last failed sync is kept (`key` is the project's).
pub fn sync_log(state_dir: &Path, key: &str) -> PathBuf {
    logs_dir(state_dir).join(format!("sync-{key}.log"))
}

/// Opens the build log of `tag` (private, replacing an older one) and prunes old logs.
pub fn open_log(state_dir: &Path, tag: &str) -> Result<(File, PathBuf)> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = logs_dir(state_dir);
    crate::secrets::create_private_dir(&dir)?;
    let name: String = tag.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    let path = dir.join(format!("build-{name}.log"));
    // Not followed when it is a link: the log is written where dpe said it is, and nowhere else.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|file| file.set_permissions(std::fs::Permissions::from_mode(0o600)).map(|_| file))
        .map_err(|e| Error::io(format!("creating the build log `{}`", path.display()), e))?;
    prune_logs(&dir, &path);
    Ok((file, path))
}

/// Removes all but the newest [`KEPT_LOGS`] build logs (`keep` is one of them).
fn prune_logs(dir: &Path, keep: &Path) {
    let mut logs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path != keep)
        .filter(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("build-") && n.ends_with(".log"))
        })
        .filter_map(|path| Some((std::fs::symlink_metadata(&path).ok()?.modified().ok()?, path)))
        .collect();
    logs.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, path) in logs.into_iter().skip(KEPT_LOGS - 1) {
        let _ = std::fs::remove_file(path);
    }
}

/// Locks the shared output; a reader thread that panicked leaves it usable.
fn lock<W: Write>(output: &Mutex<BuildOutput<W>>) -> MutexGuard<'_, BuildOutput<W>> {
    output.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `dpe docker build ARGS` for the image `tag`, showing its progress and keeping its log.
/// A failure names the step that broke, shows the log's end and says where the log is.
pub fn run(context: &Context, project: &Project, tag: &str, args: &[String], what: &str) -> Result<()> {
    let (log, log_path) = open_log(&context.state_dir, tag)?;
    let output = Arc::new(Mutex::new(BuildOutput::new(StatusLine::stderr(), context.verbosity > 0, log, log_path)));
    let mut child = dpe_plugin::client::docker_command(context, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("running `{} docker build`", context.dpe_bin.display()), e))?;
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let output = Arc::clone(&output);
        std::thread::spawn(move || {
            // Bytes, not `lines()`: one line that is not UTF-8 must not stop the reading (and
            // leave docker blocked on a full pipe).
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                lock(&output).line(&line);
                line.clear();
            }
        })
    })
    .collect();
    let (stop_clock, clock_stopped) = mpsc::channel::<()>();
    let clock = lock(&output).animated().then(|| {
        let output = Arc::clone(&output);
        std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = clock_stopped.recv_timeout(Duration::from_secs(1)) {
                lock(&output).tick();
            }
        })
    });
    let status = child.wait().map_err(|e| Error::io("waiting for `docker build`", e));
    for reader in readers {
        let _ = reader.join();
    }
    drop(stop_clock);
    if let Some(clock) = clock {
        let _ = clock.join();
    }
    let status = status?;
    let mut output = lock(&output);
    if status.success() {
        output.succeeded();
        return Ok(());
    }
    output.failed();
    let at = output.step().map(|step| format!(" at step {step}")).unwrap_or_default();
    Err(Error::new(format!("building the image of `{}` from {what} failed{at}", project.name))
        .with_help(format!(
            "the build output above shows why (all of it: `{}`); fix the project's dpe.toml (or Dockerfile) and run again",
            output.log_path().display()
        ))
        .with_code(dpe_plugin::client::exit_code(status).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const CLASSIC: &str = "Sending build context to Docker daemon  4.096kB\n\
Step 1/3 : FROM dpe-test/bookworm:latest\n ---> 1234\n\
Step 2/3 : RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-notebook python3-pandas && rm -rf /var/lib/apt/lists/*\n\
 ---> Running in 5678\nGet:1 http://deb.debian.org/debian bookworm InRelease [151 kB]\nE: Unable to locate package x\n";

    /// Feeds `input` to a build output on a pipe or a terminal 60 columns wide; returns what
    /// the user saw and what the log holds.
    fn feed(input: &str, terminal: bool, verbose: bool, end: fn(&mut BuildOutput<&mut Vec<u8>>)) -> (String, String) {
        let state = tempfile::tempdir().unwrap();
        let (log, path) = open_log(state.path(), "dpe-jupyter:0123abcd").unwrap();
        let mut shown = Vec::new();
        let mut output = BuildOutput::new(StatusLine::new(&mut shown, terminal, Some(60)), verbose, log, path.clone());
        for line in input.split_inclusive('\n') {
            output.line(line.as_bytes());
        }
        end(&mut output);
        drop(output);
        (String::from_utf8(shown).unwrap(), std::fs::read_to_string(path).unwrap())
    }

    #[test]
    fn a_pipe_gets_one_plain_line_per_step_and_the_log_everything() {
        let (shown, log) = feed(CLASSIC, false, false, |output| output.succeeded());
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], "dpe: step 1/3 FROM dpe-test/bookworm:latest (0s)");
        assert!(lines[1].starts_with("dpe: step 2/3 RUN apt-get update && DEBIAN_FRONTEND=noninteractive"), "{shown}");
        assert!(lines[1].ends_with("… (0s)") && lines[1].chars().count() <= 140, "{shown}");
        assert!(
            lines[2].starts_with("dpe: built in 0s (log: `")
                && lines[2].ends_with("/jupyter/logs/build-dpe-jupyter-0123abcd.log`)"),
            "{shown}"
        );
        assert_eq!(lines.len(), 3, "{shown}");
        assert!(!shown.contains('\r') && !shown.contains('\u{1b}'), "{shown:?}");
        assert_eq!(log, CLASSIC, "the log holds docker's output");
    }

    #[test]
    fn a_terminal_gets_one_line_redrawn_with_the_step_and_elapsed_time() {
        let (shown, _) = feed(CLASSIC, true, false, |output| output.tick());
        assert_eq!(
            shown,
            "\r\x1b[2Kdpe: step 1/3 FROM dpe-test/bookworm:latest (0s)\
             \r\x1b[2Kdpe: step 2/3 RUN apt-get update && DEBIAN_FRONTEND=n… (0s)\
             \r\x1b[2Kdpe: step 2/3 RUN apt-get update && DEBIAN_FRONTEND=n… (0s)\
             \r\x1b[2K"
        );
        let step = Step { number: "2/3".into(), instruction: "RUN make".into() };
        assert_eq!(status_text(&step, Duration::from_secs(75), 80), "dpe: step 2/3 RUN make (1m15s)");
    }

    #[test]
    fn a_failure_shows_the_end_of_the_log_and_names_the_step() {
        let many: String = (0..30).map(|i| format!("#9 {i}.0 line {i}\n")).collect();
        let input = format!("#5 [1/2] FROM docker.io/library/x\n#9 [2/2] RUN false\n{many}\u{1b}[91mE\u{1b}[0m: boom\n#9 ERROR: exit code: 1\n\n");
        let (shown, log) = feed(&input, false, false, |output| output.failed());
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[..2], ["dpe: step 1/2 FROM docker.io/library/x (0s)", "dpe: step 2/2 RUN false (0s)"]);
        assert_eq!(lines[2], "dpe: the build failed after 0s; the end of its log:");
        assert_eq!(lines[3], "  | #9 12.0 line 12");
        assert_eq!(lines[21..], ["  | E: boom", "  | #9 ERROR: exit code: 1"], "colours gone, blank lines left out");
        assert_eq!(lines.len(), 3 + TAIL_LINES);
        assert_eq!(log, input.replace("\u{1b}[91m", "").replace("\u{1b}[0m", ""), "the log is greppable");
        feed(&input, false, true, |output| assert_eq!(output.step().unwrap().to_string(), "2/2 `RUN false`"));
        let huge = format!("Step 1/1 : RUN x\n{}\n", "y".repeat(100_000));
        let (shown, log) = feed(&huge, false, false, |output| output.failed());
        assert_eq!(shown.lines().last().unwrap().chars().count(), "  | ".len() + TAIL_WIDTH, "{shown:.200}");
        assert_eq!(log, huge);
    }

    #[test]
    fn verbose_streams_every_line_as_before() {
        let (shown, _) = feed(CLASSIC, false, true, |output| output.failed());
        assert_eq!(shown, CLASSIC, "`-v` shows docker's output unchanged, nothing more");
    }

    #[test]
    fn steps_are_recognised_in_both_builders() {
        let step = |line: &str| Step::parse(line).map(|step| step.to_string());
        assert_eq!(step("Step 3/7 : RUN apt-get update").unwrap(), "3/7 `RUN apt-get update`");
        assert_eq!(step("#7 [3/7] RUN apt-get update").unwrap(), "3/7 `RUN apt-get update`");
        assert_eq!(step("#7 [stage 3/7] RUN x").unwrap(), "3/7 `RUN x`");
        assert_eq!(step(" ---> Running in 1234"), None);
        assert_eq!(step("#5 [internal] load metadata"), None);
        let long = format!("Step 1/1 : RUN {}", "x".repeat(200));
        assert_eq!(step(&long).unwrap().chars().count(), "1/1 ``".len() + INSTRUCTION_WIDTH);
    }

    #[test]
    fn logs_are_private_replaced_per_tag_and_only_the_newest_kept() {
        let state = tempfile::tempdir().unwrap();
        let (mut first, path) = open_log(state.path(), "dpe-jupyter:aa").unwrap();
        first.write_all(b"old output\n").unwrap();
        let (_, again) = open_log(state.path(), "dpe-jupyter:aa").unwrap();
        assert_eq!(again, path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "", "a new build of the tag replaces its log");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let dir = path.parent().unwrap();
        assert_eq!(std::fs::metadata(dir).unwrap().permissions().mode() & 0o777, 0o700);
        for n in 0..KEPT_LOGS + 5 {
            open_log(state.path(), &format!("dpe-jupyter:{n:02}")).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), KEPT_LOGS);
        assert!(dir.join(format!("build-dpe-jupyter-{:02}.log", KEPT_LOGS + 4)).exists());
    }

    #[test]
    fn a_link_planted_at_the_log_path_is_not_followed() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("jupyter/logs");
        std::fs::create_dir_all(&dir).unwrap();
        let victim = state.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("build-dpe-jupyter-aa.log")).unwrap();
        let err = open_log(state.path(), "dpe-jupyter:aa").unwrap_err();
        assert!(err.message.starts_with("creating the build log `"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    }
}

//! Completion in real shells: bash (readline, driven through a pseudo-terminal), zsh (its
//! completion system loaded by `compinit` from `$fpath`, driven through a pseudo-terminal) and
//! fish (`complete -C`, fish's own engine), each loading the committed script. Also: the
//! committed scripts are what the binary prints, and completion never runs a plugin that did
//! not opt in and never fails loudly.

#![allow(unsafe_code, reason = "the terminal the completion tests type into needs `openpty` and `poll`")]

use dpe_testkit::{binary, Sandbox};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A plugin that publishes a manifest: takes a project, has subcommands and options.
const JUPYTER: &str = r#"#!/bin/sh
# dpe-plugin-manifest:v1
if [ "$1" = --dpe-manifest ]; then cat <<'JSON'
{"name":"jupyter","version":"1.0.0","dpe":"^0.1","description":"Run Jupyter for a project",
 "takes_project":true,
 "options":[{"name":"--port","takes_value":true,"description":"Host port"},{"name":"--detach","description":"Run in the background"}],
 "subcommands":[{"name":"stop","description":"Stop the server","takes_project":true},{"name":"logs","description":"Show the log"}]}
JSON
exit 0; fi
echo "jupyter ran"
"#;

/// A plugin that opted in to complete its own arguments: it answers with candidates built
/// from the words it was given, so the test sees they arrived.
const NOTES: &str = r#"#!/bin/sh
# dpe-plugin-manifest:v1
if [ "$1" = --dpe-manifest ]; then
  echo '{"name":"notes","version":"0.2.0","dpe":"^0.1","description":"Take notes","complete":true}'
  exit 0
fi
if [ "$1" = --dpe-complete ]; then
  shift; shift
  printf 'alpha\tFirst note\nalbum\tFor %s words\nbeta\n' "$#"
  printf 'from-%s\n' "$DPE_PROJECT"
  exit 0
fi
echo "notes ran"
"#;

/// Writes a `dpe-NAME` plugin into the sandbox's PATH directory.
fn plugin(sandbox: &Sandbox, name: &str, text: &str) {
    sandbox.write_exe(&format!("bin/dpe-{name}"), text);
}

/// A plugin without the manifest marker that leaves a file behind whenever it runs.
fn tripwire(sandbox: &Sandbox) -> PathBuf {
    let ran = sandbox.path("sneaky-ran");
    plugin(sandbox, "sneaky", &format!("#!/bin/sh\necho \"$@\" > '{}'\n", ran.display()));
    ran
}

/// A sandbox with projects, the plugins above, and `dpe` in its PATH directory (hard-linked so
/// that "beside dpe" is the sandbox, not the build directory with the first-party plugins).
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.project("project_a", "");
    sandbox.project("project_b", "");
    plugin(&sandbox, "jupyter", JUPYTER);
    plugin(&sandbox, "notes", NOTES);
    let dpe = sandbox.path("bin/dpe");
    if std::fs::hard_link(binary("dpe"), &dpe).is_err() {
        std::fs::copy(binary("dpe"), &dpe).expect("copy dpe into the sandbox");
    }
    sandbox
}

/// Whether `shell` is installed. In CI (`CI` set) a missing shell fails the test; elsewhere
/// the test skips and says why.
fn have(shell: &str) -> bool {
    let ok = Command::new(shell).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI is set but `{shell}` is not installed: run .ci/provision");
        eprintln!("skipped: `{shell}` is not installed (apt-get install -y {shell})");
    }
    ok
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("completions").join(name)
}

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list.dedup();
    list
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// A pseudo-terminal, so the shells run their real line editors.

pub(crate) struct Pty {
    master: std::fs::File,
    child: Child,
    seen: String,
}

impl Pty {
    pub(crate) fn spawn(mut command: Command) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize { ws_row: 60, ws_col: 250, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: openpty writes two descriptors into the given integers; the name may be null.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
        assert_eq!(rc, 0, "openpty failed: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and are owned here only.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
        // controlling terminal is the pty, as a terminal emulator does.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start the shell");
        drop(command);
        Pty { master: std::fs::File::from(master), child, seen: String::new() }
    }

    pub(crate) fn write(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Reads until `needle` appears after what earlier calls consumed; returns the text read
    /// up to and including it. Panics with everything read when the shell never prints it.
    pub(crate) fn read_until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(at) = self.seen.find(needle) {
                let upto = at + needle.len();
                let text = self.seen[..upto].to_string();
                self.seen.drain(..upto);
                return text;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the shell never printed {needle:?}; it printed:\n{}", self.seen);
            let mut poll = libc::pollfd { fd: self.master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, left.as_millis().min(1000) as i32) };
            if ready <= 0 {
                continue;
            }
            let mut buffer = [0u8; 4096];
            match self.master.read(&mut buffer) {
                Ok(0) | Err(_) => panic!("the shell exited before printing {needle:?}; it printed:\n{}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buffer[..n])),
            }
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn shell_command(sandbox: &Sandbox, program: &str, args: &[&str]) -> Command {
    let mut command = sandbox.command(program);
    command.args(args).env("TERM", "dumb");
    command
}

// ---------------------------------------------------------------------------------------------
// bash: readline's own completion, listing one match a line.

struct Bash {
    pty: Pty,
}

impl Bash {
    fn start(sandbox: &Sandbox) -> Bash {
        let mut pty = Pty::spawn(shell_command(sandbox, "bash", &["--norc", "--noprofile", "-i"]));
        let setup = format!(
            "PS1='<<P>>'; source '{}'; bind 'set show-all-if-ambiguous on'; bind 'set completion-query-items 0'; \
             bind 'set page-completions off'; bind 'set completion-display-width 0'; echo '<<READY''>>'\n",
            script("dpe.bash").display()
        );
        pty.write(&setup);
        pty.read_until("<<READY>>\r\n");
        // Type only once readline shows the prompt, or the keys reach the terminal in cooked mode.
        pty.read_until("<<P>>");
        Bash { pty }
    }

    /// Types `line`, presses TAB, and returns the listed matches (none when readline completed
    /// the word in place) and the line as TAB left it.
    fn complete(&mut self, line: &str) -> (Vec<String>, String) {
        // After TAB: Ctrl-A and `echo` in front, Enter — the shell prints the completed line.
        self.pty.write(&format!("{line}\t\x01echo '<<L''>>'\n"));
        let text = self.pty.read_until("\r\n<<L>>");
        let completed = self.pty.read_until("\r\n").trim_end().to_string();
        self.pty.read_until("<<P>>");
        let list = match text.split_once("\r\n") {
            Some((_, rest)) => match rest.split_once("<<P>>") {
                Some((list, _)) => {
                    list.split("\r\n").map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
                }
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        (sorted(list), completed)
    }
}

// ---------------------------------------------------------------------------------------------
// zsh: compinit loads `_dpe` from $fpath; a `compadd` wrapper reports what the widget adds.

const ZSH_HARNESS: &str = r#"
PS1='<<P>>' RPROMPT=''
fpath=("$DPE_TEST_COMPLETIONS" $fpath)
autoload -Uz compinit && compinit -u -D
# Report every match the completion system adds, with its display string.
compadd() {
    if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
        builtin compadd "$@"
        return
    fi
    local -a hits shown
    if (( $@[(I)-d] )); then
        local name=${@[$(( ${@[(i)-d]} + 1 ))]}
        if [[ $name == \(* ]]; then eval "shown=$name"; else shown=("${(@P)name}"); fi
    fi
    builtin compadd -A hits "$@"
    local i
    for i in {1..$#hits}; do
        [[ -n $hits[$i] ]] && print -r -- "<<C>>$hits[$i]<<D>>${shown[$i]-}<<E>>"
    done
}
harness_done() { print -r -- '<<DONE>>'; exit }
comppostfuncs=(harness_done)
bindkey '^I' complete-word
print -r -- '<<READY>>'
"#;

/// The matches zsh offers for `line` (value, and its display with the description).
fn zsh_complete(sandbox: &Sandbox, line: &str) -> Vec<(String, String)> {
    let harness = sandbox.write("zsh-harness.zsh", ZSH_HARNESS);
    let mut command = shell_command(sandbox, "zsh", &["-f", "-i"]);
    command.env("DPE_TEST_COMPLETIONS", script("").as_os_str());
    let mut pty = Pty::spawn(command);
    pty.write(&format!("source '{}'\n", harness.display()));
    pty.read_until("<<READY>>\r\n");
    pty.read_until("<<P>>");
    pty.write(&format!("{line}\t"));
    let text = pty.read_until("<<DONE>>");
    let mut matches: Vec<(String, String)> = text
        .split("<<C>>")
        .skip(1)
        .filter_map(|chunk| {
            let (value, rest) = chunk.split_once("<<D>>")?;
            let (shown, _) = rest.split_once("<<E>>")?;
            Some((value.to_string(), shown.trim().to_string()))
        })
        .collect();
    matches.sort();
    matches.dedup();
    matches
}

fn zsh_values(sandbox: &Sandbox, line: &str) -> Vec<String> {
    zsh_complete(sandbox, line).into_iter().map(|(value, _)| value).collect()
}

// ---------------------------------------------------------------------------------------------
// fish: `complete -C` runs fish's completion engine on a command line.

/// `(candidate, description)` pairs fish offers for `line`.
fn fish_complete(sandbox: &Sandbox, line: &str) -> Vec<(String, String)> {
    let source = format!("source '{}'; complete -C '{}'", script("dpe.fish").display(), line.replace('\'', "\\'"));
    let output = sandbox.command("fish").args(["--no-config", "-c", &source]).output().expect("run fish");
    assert!(output.status.success(), "fish failed: {}", String::from_utf8_lossy(&output.stderr));
    let mut list: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| match l.split_once('\t') {
            Some((value, description)) => (value.to_string(), description.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    list.sort();
    list
}

fn fish_values(sandbox: &Sandbox, line: &str) -> Vec<String> {
    fish_complete(sandbox, line).into_iter().map(|(value, _)| value).collect()
}

const BUILTINS: &[&str] = &["completions", "context", "docker", "help", "plugin", "projects", "trust"];

fn commands_with(plugins: &[&str]) -> Vec<String> {
    sorted(BUILTINS.iter().chain(plugins).map(|s| s.to_string()).collect())
}

// ---------------------------------------------------------------------------------------------

#[test]
fn committed_scripts_are_what_the_binary_prints() {
    let sandbox = Sandbox::new();
    for (shell, file) in [("bash", "dpe.bash"), ("zsh", "_dpe"), ("fish", "dpe.fish")] {
        let output = sandbox.dpe().args(["completions", shell]).output().unwrap();
        assert!(output.status.success());
        let committed = std::fs::read_to_string(script(file)).unwrap_or_default();
        assert!(
            committed == String::from_utf8_lossy(&output.stdout),
            "completions/{file} is out of date with `dpe completions {shell}`; regenerate it with\n  \
             cargo run -p dpe -- completions {shell} > completions/{file}"
        );
    }
}

#[test]
fn bash_completes_commands_plugins_projects_and_subcommands() {
    if !have("bash") {
        return;
    }
    let sandbox = sandbox();
    let ran = tripwire(&sandbox);
    let mut bash = Bash::start(&sandbox);

    let (list, _) = bash.complete("dpe ");
    assert_eq!(list, commands_with(&["jupyter", "notes", "sneaky"]));

    let (list, line) = bash.complete("dpe jup");
    assert_eq!((list, line.as_str()), (vec![], "dpe jupyter"));

    let (list, _) = bash.complete("dpe jupyter ");
    assert_eq!(list, strings(&["logs", "project_a", "project_b", "stop"]));

    let (list, _) = bash.complete("dpe jupyter stop project_");
    assert_eq!(list, strings(&["project_a", "project_b"]));

    let (list, _) = bash.complete("dpe jupyter --");
    assert_eq!(list, strings(&["--detach", "--port"]));

    let (_, line) = bash.complete("dpe --project=project_b jupyter st");
    assert_eq!(line, "dpe --project=project_b jupyter stop");

    let (list, _) = bash.complete("dpe --project=");
    assert_eq!(list, strings(&["project_a", "project_b"]));

    let (list, _) = bash.complete("dpe -p ");
    assert_eq!(list, strings(&["project_a", "project_b"]));

    let (list, _) = bash.complete("dpe help ");
    assert_eq!(list, commands_with(&["jupyter", "notes", "sneaky"]));

    let (list, _) = bash.complete("dpe notes al");
    assert_eq!(list, strings(&["album", "alpha"]));

    // A plugin without a manifest: the shell's own path completion.
    std::fs::create_dir_all(sandbox.workspace().join("data-in")).unwrap();
    let (_, line) = bash.complete("dpe sneaky data-");
    assert_eq!(line, "dpe sneaky data-in/");
    assert!(!ran.exists(), "completion ran a plugin that did not opt in");
}

#[test]
fn bash_offers_installed_plugins_to_uninstall() {
    if !have("bash") {
        return;
    }
    let sandbox = sandbox();
    sandbox.write_exe("data/plugins/dpe-installed", "#!/bin/sh\n");
    let mut bash = Bash::start(&sandbox);
    let (_, line) = bash.complete("dpe plugin uni");
    assert_eq!(line, "dpe plugin uninstall");
    // Only the plugin directory's plugins: `jupyter` on PATH is not dpe's to uninstall.
    let (_, line) = bash.complete("dpe plugin uninstall ");
    assert_eq!(line, "dpe plugin uninstall installed");
}

#[test]
fn zsh_completes_with_descriptions_from_manifests() {
    if !have("zsh") {
        return;
    }
    let sandbox = sandbox();
    let ran = tripwire(&sandbox);

    let matches = zsh_complete(&sandbox, "dpe ");
    let values: Vec<String> = matches.iter().map(|(v, _)| v.clone()).collect();
    assert_eq!(values, commands_with(&["jupyter", "notes", "sneaky"]));
    let shown = |name: &str| matches.iter().find(|(v, _)| v == name).map(|(_, s)| s.clone()).unwrap();
    assert!(shown("jupyter").contains("-- Run Jupyter for a project"), "{matches:?}");
    assert!(shown("notes").contains("-- Take notes"), "{matches:?}");
    assert!(
        shown("trust").contains("-- Trust this workspace's hooks and configuration so they may run"),
        "{matches:?}"
    );

    assert_eq!(zsh_values(&sandbox, "dpe jupyter "), strings(&["logs", "project_a", "project_b", "stop"]));
    assert_eq!(zsh_values(&sandbox, "dpe jupyter stop "), strings(&["project_a", "project_b"]));
    assert_eq!(zsh_values(&sandbox, "dpe jupyter --port 8888 --"), strings(&["--detach", "--port"]));
    assert_eq!(zsh_values(&sandbox, "dpe --project "), strings(&["project_a", "project_b"]));
    assert_eq!(zsh_values(&sandbox, "dpe notes "), strings(&["album", "alpha", "beta", "from-"]));
    assert_eq!(
        zsh_values(&sandbox, "dpe --project project_a notes "),
        strings(&["album", "alpha", "beta", "from-project_a"])
    );
    // A plugin without a manifest: zsh's own file completion, in the workspace.
    assert!(zsh_values(&sandbox, "dpe sneaky ").contains(&"dpe.toml".to_string()));
    assert!(!ran.exists(), "completion ran a plugin that did not opt in");
}

#[test]
fn fish_completes_with_descriptions_from_manifests() {
    if !have("fish") {
        return;
    }
    let sandbox = sandbox();
    let ran = tripwire(&sandbox);

    let all = fish_complete(&sandbox, "dpe ");
    assert_eq!(all.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(), commands_with(&["jupyter", "notes", "sneaky"]));
    assert!(all.contains(&("jupyter".into(), "Run Jupyter for a project".into())), "{all:?}");
    assert!(all.contains(&("sneaky".into(), String::new())), "{all:?}");

    assert_eq!(fish_values(&sandbox, "dpe jup"), strings(&["jupyter"]));
    assert_eq!(
        fish_complete(&sandbox, "dpe jupyter "),
        vec![
            ("logs".into(), "Show the log".into()),
            ("project_a".into(), "project".into()),
            ("project_b".into(), "project".into()),
            ("stop".into(), "Stop the server".into()),
        ]
    );
    assert_eq!(fish_values(&sandbox, "dpe jupyter stop "), strings(&["project_a", "project_b"]));
    assert_eq!(fish_values(&sandbox, "dpe --project="), strings(&["--project=project_a", "--project=project_b"]));
    assert_eq!(fish_values(&sandbox, "dpe --color "), strings(&["always", "auto", "never"]));
    assert_eq!(
        fish_complete(&sandbox, "dpe notes a"),
        vec![("album".into(), "For 1 words".into()), ("alpha".into(), "First note".into())]
    );
    assert_eq!(fish_values(&sandbox, "dpe sneaky proj"), strings(&["projects/"]));
    assert_eq!(fish_values(&sandbox, "dpe help no"), strings(&["notes"]));
    assert!(!ran.exists(), "completion ran a plugin that did not opt in");
}

#[test]
fn a_plugin_without_the_marker_is_never_run_even_on_a_cold_cache() {
    let sandbox = sandbox();
    let ran = tripwire(&sandbox);
    // Every path that could want a manifest, each with an empty cache.
    for words in [&["dpe", ""][..], &["dpe", "sneaky", ""], &["dpe", "help", ""], &["dpe", "sneaky", "--x", ""]] {
        for shell in ["bash", "zsh", "fish"] {
            let _ = std::fs::remove_dir_all(sandbox.path("cache"));
            let index = (words.len() - 1).to_string();
            let output = sandbox
                .dpe()
                .args(["__complete", "--shell", shell, "--index", &index, "--"])
                .args(words)
                .output()
                .unwrap();
            assert!(output.status.success());
            assert!(!ran.exists(), "`{}` ran the marker-less plugin in {shell}", words.join(" "));
        }
    }
}

#[test]
fn completion_never_fails_loudly() {
    let sandbox = sandbox();
    // A broken workspace config, a plugin that hangs when asked, odd requests.
    sandbox.write("workspace/dpe.toml", "this is = = not toml");
    plugin(
        &sandbox,
        "slow",
        "#!/bin/sh\n# dpe-plugin-manifest:v1\nif [ \"$1\" = --dpe-manifest ]; then echo '{\"name\":\"slow\",\"version\":\"1.0.0\",\"dpe\":\"*\",\"complete\":true,\"subcommands\":[{\"name\":\"fallback\"}]}'; exit 0; fi\nexec sleep 30\n",
    );
    let cases: &[&[&str]] = &[
        &["--shell", "bash", "--index", "2", "--", "dpe", "jupyter", ""],
        &["--shell", "zsh", "--index", "2", "--", "dpe", "slow", ""],
        &["--shell", "fish", "--index", "99", "--", "dpe"],
        &["--shell", "fish", "--index", "x", "--", "dpe", ""],
        &["--bogus"],
        &[],
        &["--shell", "bash", "--index", "1", "--", "dpe", "../../etc/passwd", ""],
    ];
    for args in cases {
        let output = sandbox.dpe().arg("__complete").args(*args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(output.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    // The hanging plugin is cut off and its manifest's candidates are offered instead.
    let output = sandbox
        .dpe()
        .args(["__complete", "--shell", "bash", "--index", "2", "--", "dpe", "slow", ""])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "fallback\n");
}

#[test]
fn a_plugin_added_after_a_listing_was_cached_is_offered() {
    let sandbox = sandbox();
    // A private copy of dpe, so the first-party plugins built beside the real one (as under
    // `cargo test --workspace`) do not join the exact list this test expects.
    let dpe_copy = sandbox.private_dpe();
    let complete = || {
        let output = sandbox
            .command(&dpe_copy)
            .args(["__complete", "--shell", "bash", "--index", "1", "--", "dpe", ""])
            .output()
            .unwrap();
        sorted(String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect())
    };
    // Completion caches a directory's listing once its mtime is old enough to be trusted.
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(sandbox.path("bin")).unwrap().set_modified(hour_ago).unwrap();
    assert_eq!(complete(), commands_with(&["jupyter", "notes"]));
    assert!(sandbox.path("cache/completion-dirs").is_file(), "the listing was not cached");
    plugin(&sandbox, "later", "#!/bin/sh\n");
    assert_eq!(complete(), commands_with(&["jupyter", "later", "notes"]));
    std::fs::remove_file(sandbox.path("bin/dpe-notes")).unwrap();
    assert_eq!(complete(), commands_with(&["jupyter", "later"]));
}

/// A plugin that takes the project first, then a subcommand with options of its own:
/// `dpe deploy PROJECT push --force`.
const DEPLOY: &str = r#"#!/bin/sh
# dpe-plugin-manifest:v1
if [ "$1" = --dpe-manifest ]; then cat <<'JSON'
{"name":"deploy","version":"1.0.0","dpe":"^0.1","description":"Deploy a project","takes_project":true,
 "options":[{"name":"--dry-run","description":"Only say what would happen"}],
 "subcommands":[{"name":"push","description":"Push it","options":[{"name":"--force","description":"Even if stale"},{"name":"--tag","takes_value":true}]},
                {"name":"status","description":"Where it is"}]}
JSON
exit 0; fi
echo "deploy ran"
"#;

/// A plugin dpe refuses to run: `requirement` is its `dpe` field, `protocol` its protocol.
fn incompatible(name: &str, requirement: &str, protocol: u32) -> String {
    format!(
        "#!/bin/sh\n# dpe-plugin-manifest:v1\nif [ \"$1\" = --dpe-manifest ]; then\n\
         echo '{{\"name\":\"{name}\",\"version\":\"1.0.0\",\"dpe\":\"{requirement}\",\"protocol\":{protocol},\
         \"takes_project\":true,\"options\":[{{\"name\":\"--loud\"}}],\"subcommands\":[{{\"name\":\"sub\"}}]}}'\n\
         exit 0; fi\necho {name} ran\n"
    )
}

/// The sandbox above plus `deploy` and three plugins this dpe would refuse to run.
fn sandbox_with_project_first_and_incompatible_plugins() -> Sandbox {
    let sandbox = sandbox();
    plugin(&sandbox, "deploy", DEPLOY);
    plugin(&sandbox, "future", &incompatible("future", ">=9", 1));
    plugin(&sandbox, "oldproto", &incompatible("oldproto", "*", 99));
    plugin(&sandbox, "broken", "#!/bin/sh\n# dpe-plugin-manifest:v1\necho 'this is no manifest'\n");
    sandbox
}

#[test]
fn a_subcommand_after_the_project_completes_its_own_options_in_bash() {
    if !have("bash") {
        return;
    }
    let sandbox = sandbox_with_project_first_and_incompatible_plugins();
    let mut bash = Bash::start(&sandbox);
    let (list, _) = bash.complete("dpe deploy project_a ");
    assert_eq!(list, strings(&["push", "status"]));
    let (list, _) = bash.complete("dpe deploy project_a push --");
    assert_eq!(list, strings(&["--force", "--tag"]));
    let (list, _) = bash.complete("dpe deploy --dry-run project_b push --tag v1 --");
    assert_eq!(list, strings(&["--force", "--tag"]));
    // Before a subcommand, and when the first word is the subcommand itself, as before.
    let (list, line) = bash.complete("dpe deploy project_a --");
    assert_eq!((list, line.as_str()), (vec![], "dpe deploy project_a --dry-run"));
    let (list, _) = bash.complete("dpe deploy push --");
    assert_eq!(list, strings(&["--force", "--tag"]));

    // Plugins dpe would refuse to run are neither offered nor completed.
    let (list, _) = bash.complete("dpe ");
    assert_eq!(list, commands_with(&["deploy", "jupyter", "notes"]));
    let (list, _) = bash.complete("dpe help ");
    assert_eq!(list, commands_with(&["deploy", "jupyter", "notes"]));
    for line in ["dpe future --", "dpe oldproto --", "dpe broken "] {
        let (list, _) = bash.complete(line);
        assert_eq!(list, Vec::<String>::new(), "{line}");
    }
}

#[test]
fn a_subcommand_after_the_project_completes_its_own_options_in_zsh_and_fish() {
    let sandbox = sandbox_with_project_first_and_incompatible_plugins();
    if have("zsh") {
        assert_eq!(zsh_values(&sandbox, "dpe deploy project_a push --"), strings(&["--force", "--tag"]));
        assert_eq!(zsh_values(&sandbox, "dpe deploy project_a "), strings(&["push", "status"]));
        assert_eq!(zsh_values(&sandbox, "dpe future "), Vec::<String>::new());
    }
    if have("fish") {
        assert_eq!(
            fish_complete(&sandbox, "dpe deploy project_a push --"),
            [("--force".to_string(), "Even if stale".to_string()), ("--tag".to_string(), String::new())]
        );
        let commands = fish_values(&sandbox, "dpe ");
        assert!(commands.contains(&"deploy".to_string()), "{commands:?}");
        assert!(!commands.iter().any(|c| ["future", "oldproto", "broken"].contains(&c.as_str())), "{commands:?}");
        assert_eq!(fish_values(&sandbox, "dpe oldproto --"), Vec::<String>::new());
    }
}

//! Dynamic shell completion: the one protocol every shell script speaks.
//!
//! The scripts `dpe completions bash|zsh|fish` prints are thin: on TAB they run
//! `dpe __complete --shell SHELL --index N -- WORD…` (the whole command line, `N` the index of
//! the word under the cursor) and show what it prints: one candidate a line (for zsh
//! `value:description`, for fish `value<TAB>description`, for bash the bare value), or a single
//! `:files` / `:dirs` line asking the shell to complete paths itself.
//!
//! Why a small hand-written engine rather than clap_complete's `CompleteEnv`: most of what dpe
//! completes is not a clap subcommand. Plugins are discovered at run time, their subcommands,
//! options and project-taking come from cached manifests, project names from the workspace, and
//! opted-in plugins answer for themselves. `CompleteEnv` would need all of that bolted on as
//! custom candidates of an `external_subcommand` it cannot descend into, and it builds and
//! walks the whole clap tree on every TAB. The builtins' own options and subcommands are still
//! read from clap's `Command`, so they never drift from `--help`.
//!
//! Completion never fails loudly: any error means no candidates, exit status 0, nothing on
//! stderr. It never executes a plugin that did not opt in: descriptions and subcommands come
//! from the manifest cache; on a cache miss only a plugin whose file carries the manifest
//! marker (or a dynamic library, which is a dpe plugin by construction) is asked, within a
//! short budget; a plugin is asked for its own candidates (`dpe-NAME --dpe-complete -- WORD…`)
//! only when its manifest says `complete: true`.

use crate::context::{self, Globals};
use crate::discovery::{self, Found, Kind, Source};
use crate::manifest_cache;
use crate::paths::Paths;
use crate::workspace::Workspace;
use clap::builder::ValueHint;
use dpe_plugin::manifest::OptionSpec;
use dpe_plugin::{Manifest, COMPLETE_FLAG};
use std::cell::Cell;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The shells dpe prints a completion script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The hidden first argument that selects the completion engine.
pub const ENTRY: &str = "__complete";

/// The most a single TAB spends asking plugins for manifests on a cache miss.
const MANIFEST_BUDGET: Duration = Duration::from_millis(400);
/// The most an opted-in plugin gets to print its own candidates.
const PLUGIN_COMPLETE_LIMIT: Duration = Duration::from_millis(500);

/// `dpe __complete --shell SHELL --index N -- WORD…`: prints candidates; always exits 0.
/// `command` makes dpe's own command line (`Cli::command`), passed in as `dpe help` gets it:
/// the command line calls this module, so this module does not reach back into it.
pub fn main(args: &[OsString], command: fn() -> clap::Command) -> i32 {
    // A panic must not print a backtrace into the user's prompt.
    std::panic::set_hook(Box::new(|_| {}));
    let Some(request) = Request::parse(args) else { return 0 };
    let Ok(answer) = std::panic::catch_unwind(|| Engine::new(&request, command).answer()) else { return 0 };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(render(request.shell, &answer).as_bytes());
    let _ = out.flush();
    0
}

struct Request {
    shell: Shell,
    words: Vec<String>,
    index: usize,
}

impl Request {
    fn parse(args: &[OsString]) -> Option<Request> {
        let mut shell = Shell::Bash;
        let mut index = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match arg.to_str()? {
                "--shell" => {
                    shell = match rest.next()?.to_str()? {
                        "zsh" => Shell::Zsh,
                        "fish" => Shell::Fish,
                        _ => Shell::Bash,
                    }
                }
                "--index" => index = Some(rest.next()?.to_str()?.parse::<usize>().ok()?),
                "--" => break,
                _ => return None,
            }
        }
        let words: Vec<String> = rest.map(|w| w.to_string_lossy().into_owned()).collect();
        let index = index.unwrap_or(words.len().saturating_sub(1));
        let (words, index) = if shell == Shell::Bash { join_bash_equals(words, index) } else { (words, index) };
        Some(Request { shell, words, index })
    }
}

/// Bash splits `--project=pr` into `--project`, `=`, `pr` (`=` is in COMP_WORDBREAKS); glue
/// them back so the engine sees one word. Bash then replaces only the text after `=`, which is
/// why [`render`] prints bare values for bash.
fn join_bash_equals(words: Vec<String>, index: usize) -> (Vec<String>, usize) {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut new_index = None;
    let mut open_value = false;
    for (i, word) in words.into_iter().enumerate() {
        let previous_is_long = out.last().is_some_and(|w| w.starts_with("--") && !w.contains('='));
        if word == "=" && previous_is_long {
            out.last_mut().expect("checked").push('=');
            open_value = true;
        } else if open_value {
            out.last_mut().expect("an option precedes").push_str(&word);
            open_value = false;
        } else {
            out.push(word);
        }
        if i == index {
            new_index = Some(out.len() - 1);
        }
    }
    let index = new_index.unwrap_or(out.len());
    (out, index)
}

/// One thing the shell may insert, with a description where the shell shows one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    value: String,
    description: String,
}

impl Candidate {
    fn new(value: impl Into<String>, description: impl Into<String>) -> Candidate {
        Candidate { value: value.into(), description: description.into() }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Words(Vec<Candidate>),
    Files,
    Dirs,
}

fn nothing() -> Answer {
    Answer::Words(Vec::new())
}

fn render(shell: Shell, answer: &Answer) -> String {
    let candidates = match answer {
        Answer::Files => return ":files\n".to_string(),
        Answer::Dirs => return ":dirs\n".to_string(),
        Answer::Words(candidates) => candidates,
    };
    let mut out = String::new();
    for candidate in candidates {
        // One line per candidate: a description never spans lines or holds the separator.
        let description: String = candidate.description.lines().next().unwrap_or("").replace('\t', " ");
        match shell {
            Shell::Bash => out.push_str(&candidate.value),
            Shell::Zsh => {
                out.push_str(&candidate.value.replace('\\', "\\\\").replace(':', "\\:"));
                if !description.is_empty() {
                    out.push(':');
                    out.push_str(&description);
                }
            }
            Shell::Fish => {
                out.push_str(&candidate.value);
                if !description.is_empty() {
                    out.push('\t');
                    out.push_str(&description);
                }
            }
        }
        out.push('\n');
    }
    out
}

/// What a value after an option (or a positional) is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Values {
    Projects,
    Dirs,
    Files,
    /// Every command: builtins and plugins (`dpe help <TAB>`).
    Commands,
    /// Plugins only (`dpe context --plugin <TAB>`).
    Plugins,
    /// Plugins in the user's plugin directory (`dpe plugin uninstall <TAB>`).
    InstalledPlugins,
    Fixed(Vec<Candidate>),
    None,
}

/// An option, from clap or from a plugin manifest.
#[derive(Debug, Clone)]
struct Opt {
    long: Option<String>,
    short: Option<char>,
    takes_value: bool,
    description: String,
    values: Values,
}

impl Opt {
    fn from_clap(arg: &clap::Arg) -> Opt {
        let takes_value = arg.get_action().takes_values();
        let values = if !takes_value {
            Values::None
        } else {
            match arg.get_id().as_str() {
                "project" => Values::Projects,
                "workspace" => Values::Dirs,
                "plugin" => Values::Plugins,
                _ => values_of_clap_arg(arg),
            }
        };
        Opt {
            long: arg.get_long().map(|l| format!("--{l}")),
            short: arg.get_short(),
            takes_value,
            description: arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
            values,
        }
    }

    fn from_manifest(spec: &OptionSpec) -> Opt {
        let (long, short) = match spec.name.strip_prefix("--") {
            Some(_) => (Some(spec.name.clone()), None),
            None => (None, spec.name.strip_prefix('-').and_then(|s| s.chars().next())),
        };
        // `--project` takes a project whoever declares it; other values are the plugin's own.
        let values = match (spec.takes_value, spec.name.as_str()) {
            (false, _) => Values::None,
            (true, "--project") => Values::Projects,
            (true, _) => Values::Files,
        };
        Opt { long, short, takes_value: spec.takes_value, description: spec.description.clone(), values }
    }

    fn shown_name(&self) -> Option<String> {
        self.long.clone().or_else(|| self.short.map(|c| format!("-{c}")))
    }
}

fn values_of_clap_arg(arg: &clap::Arg) -> Values {
    let possible: Vec<Candidate> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| Candidate::new(v.get_name(), v.get_help().map(|h| h.to_string()).unwrap_or_default()))
        .collect();
    if !possible.is_empty() {
        return Values::Fixed(possible);
    }
    match arg.get_value_hint() {
        ValueHint::DirPath => Values::Dirs,
        ValueHint::Other | ValueHint::Username | ValueHint::Hostname | ValueHint::Url | ValueHint::EmailAddress => {
            Values::None
        }
        _ => Values::Files,
    }
}

/// Finds the option `word` names (`--long`, `--long=value`, `-s`, `-svalue`) and any value
/// written in the same word.
fn lookup<'a>(options: &'a [Opt], word: &str) -> Option<(&'a Opt, Option<String>)> {
    if let Some(long) = word.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (long, None),
        };
        let option = options.iter().find(|o| o.long.as_deref().and_then(|l| l.strip_prefix("--")) == Some(name))?;
        return Some((option, inline));
    }
    let mut chars = word.strip_prefix('-')?.chars();
    let short = chars.next()?;
    let option = options.iter().find(|o| o.short == Some(short))?;
    let rest: String = chars.collect();
    let inline = (option.takes_value && !rest.is_empty()).then_some(rest);
    Some((option, inline))
}

/// How the words after a command split up: positionals typed so far, or the cursor sitting on
/// an option's value.
enum Walk<'a> {
    Positionals(Vec<&'a str>),
    OptionValue(Opt),
}

/// Given the positionals before it and a positional word: the options of the subcommand that
/// word names, if it names one.
type Descend<'d> = dyn FnMut(&[&str], &str) -> Option<Vec<Opt>> + 'd;

/// Walks `words` (the command's arguments before the cursor), skipping options and their
/// values. `descend` is asked about each positional (with the ones before it) until it names
/// a subcommand: then it returns that subcommand's options and the walk continues with them.
/// A plugin that takes the project first finds its subcommand in the second positional.
fn walk<'a>(words: &'a [String], mut options: Vec<Opt>, descend: &mut Descend) -> (Walk<'a>, Vec<Opt>) {
    let mut positionals = Vec::new();
    let mut descended = false;
    let mut i = 0;
    let mut after_dashes = false;
    while i < words.len() {
        let word = words[i].as_str();
        if !after_dashes && word == "--" {
            after_dashes = true;
        } else if !after_dashes && word.starts_with('-') && word.len() > 1 {
            if let Some((option, inline)) = lookup(&options, word) {
                if option.takes_value && inline.is_none() {
                    if i + 1 == words.len() {
                        let option = option.clone();
                        return (Walk::OptionValue(option), options);
                    }
                    i += 1;
                }
            }
        } else {
            if !descended {
                if let Some(sub_options) = descend(&positionals, word) {
                    options = sub_options;
                    descended = true;
                }
            }
            positionals.push(word);
        }
        i += 1;
    }
    (Walk::Positionals(positionals), options)
}

struct Engine<'r> {
    shell: Shell,
    words: &'r [String],
    index: usize,
    paths: Paths,
    /// `--workspace` / `--project` given before the command, which change what is offered.
    workspace: Option<PathBuf>,
    project: Option<String>,
    manifest_budget: Cell<Duration>,
    /// dpe's own command line, not built: building it (adding `--help`, propagating global
    /// options) is a tenth of a TAB, and only completing a builtin's options needs it.
    cli: clap::Command,
}

impl<'r> Engine<'r> {
    fn new(request: &'r Request, command: fn() -> clap::Command) -> Engine<'r> {
        Engine {
            shell: request.shell,
            words: &request.words,
            index: request.index.min(request.words.len()),
            paths: Paths::from_env(),
            workspace: None,
            project: None,
            manifest_budget: Cell::new(MANIFEST_BUDGET),
            cli: command(),
        }
    }

    fn answer(mut self) -> Answer {
        if self.index == 0 {
            return nothing();
        }
        let current = self.words.get(self.index).map(String::as_str).unwrap_or("");
        let before = &self.words[1..self.index];
        let globals: Vec<Opt> =
            self.cli.get_arguments().filter(|a| !a.is_positional() && !a.is_hide_set()).map(Opt::from_clap).collect();

        // Options before the command name are dpe's own.
        let mut i = 0;
        while i < before.len() {
            let word = before[i].as_str();
            if !word.starts_with('-') || word == "-" {
                break;
            }
            if let Some((option, inline)) = lookup(&globals, word) {
                let value = match inline {
                    Some(value) => Some(value),
                    None if option.takes_value => {
                        if i + 1 == before.len() {
                            return self.values(&option.values, current, None);
                        }
                        i += 1;
                        Some(before[i].clone())
                    }
                    None => None,
                };
                match option.long.as_deref() {
                    Some("--workspace") => self.workspace = value.map(|v| self.expand_tilde(&v)),
                    Some("--project") => self.project = value,
                    _ => {}
                }
            }
            i += 1;
        }
        if i == before.len() && !current.starts_with('-') {
            return self.values(&Values::Commands, current, None);
        }
        if i < before.len() && self.cli.find_subcommand(&before[i]).is_none() {
            return self.plugin(&before[i], &before[i + 1..], current);
        }
        let mut built = self.cli.clone();
        built.build();
        if i == before.len() {
            let globals: Vec<Opt> =
                built.get_arguments().filter(|a| !a.is_positional() && !a.is_hide_set()).map(Opt::from_clap).collect();
            return self.options(&globals, current);
        }
        match built.find_subcommand(&before[i]) {
            Some(builtin) => self.builtin(vec![before[i].as_str()], builtin, &before[i + 1..], current),
            None => nothing(),
        }
    }

    /// A builtin's arguments, read from its clap definition.
    fn builtin<'a>(
        &self,
        mut path: Vec<&'a str>,
        command: &clap::Command,
        rest: &'a [String],
        current: &str,
    ) -> Answer {
        // `dpe docker …` passes everything to the engine: its words are docker's, not ours.
        if command.get_positionals().any(|a| a.is_trailing_var_arg_set()) {
            return if current.starts_with('-') { nothing() } else { Answer::Files };
        }
        let options: Vec<Opt> =
            command.get_arguments().filter(|a| !a.is_positional() && !a.is_hide_set()).map(Opt::from_clap).collect();
        if let Some(at) = first_positional(rest, &options) {
            if let Some(sub) = command.find_subcommand(&rest[at]) {
                // Start again below the subcommand, with its own options.
                path.push(&rest[at]);
                return self.builtin(path, sub, &rest[at + 1..], current);
            }
        }
        let (walked, options) = walk(rest, options, &mut |_, _| None);
        let positionals = match walked {
            Walk::OptionValue(option) => return self.values(&option.values, current, None),
            Walk::Positionals(positionals) => positionals,
        };
        if current.starts_with('-') {
            return self.options(&options, current);
        }
        if command.has_subcommands() && positionals.is_empty() {
            let subs = command
                .get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(|s| Candidate::new(s.get_name(), s.get_about().map(|a| a.to_string()).unwrap_or_default()))
                .collect();
            return self.filtered(subs, current);
        }
        let args: Vec<&clap::Arg> = command.get_positionals().collect();
        let Some(arg) = args
            .get(positionals.len())
            .or_else(|| args.last().filter(|a| a.get_num_args().is_some_and(|n| n.max_values() > 1)))
        else {
            return nothing();
        };
        let values = match path.as_slice() {
            ["help"] => Values::Commands,
            ["plugin", "uninstall" | "remove"] => Values::InstalledPlugins,
            _ => positional_values(arg),
        };
        self.values(&values, current, None)
    }

    /// A plugin's arguments: its own answer if it opted in, else what its manifest declares.
    /// A plugin dpe would refuse to run (another protocol, a `dpe` requirement this dpe does
    /// not meet) completes nothing: offering its words would only lead to that error.
    fn plugin(&self, name: &str, rest: &[String], current: &str) -> Answer {
        if !crate::names::is_valid(name) {
            return nothing();
        }
        let Some(found) = discovery::find(name, &self.paths.plugin_dir) else { return nothing() };
        let manifest = match self.manifest(&found) {
            Known::Manifest(manifest) if manifest_cache::incompatibility(&manifest).is_none() => manifest,
            Known::Manifest(_) | Known::Broken => return nothing(),
            Known::Unknown => Manifest::default_for(name),
        };
        if manifest.complete && found.kind == Kind::Executable {
            if let Some(answer) = self.ask_plugin(&found, &manifest, rest, current) {
                return answer;
            }
        }
        // The first positional that is not a subcommand names a project (as dispatch reads
        // it), and a subcommand may follow it: `dpe NAME PROJECT SUB --opt`.
        let project_first = |first: &str| manifest.takes_project && manifest.subcommand(first).is_none();
        let top: Vec<Opt> = manifest.options.iter().map(Opt::from_manifest).collect();
        let (walked, options) = walk(rest, top, &mut |before, word| {
            let subcommand = match before {
                [] => manifest.subcommand(word),
                [first] if project_first(first) => manifest.subcommand(word),
                _ => None,
            };
            subcommand.map(|sub| sub.options.iter().map(Opt::from_manifest).collect())
        });
        let positionals = match walked {
            Walk::OptionValue(option) => return self.values(&option.values, current, None),
            Walk::Positionals(positionals) => positionals,
        };
        if current.starts_with('-') {
            return self.options(&options, current);
        }
        let subcommands = || -> Vec<Candidate> {
            manifest.subcommands.iter().map(|s| Candidate::new(&s.name, &s.description)).collect()
        };
        match positionals.as_slice() {
            [] => {
                let mut candidates = subcommands();
                if manifest.takes_project {
                    candidates.extend(self.projects());
                }
                if candidates.is_empty() {
                    return Answer::Files;
                }
                self.filtered(candidates, current)
            }
            [first] => match manifest.subcommand(first) {
                Some(sub) if sub.takes_project => self.values(&Values::Projects, current, None),
                None if project_first(first) && !manifest.subcommands.is_empty() => {
                    self.filtered(subcommands(), current)
                }
                _ => Answer::Files,
            },
            _ => Answer::Files,
        }
    }

    /// Asks an opted-in plugin for its candidates; `None` when it failed or took too long, so
    /// the manifest's candidates are offered instead.
    #[allow(
        clippy::disallowed_methods,
        reason = "asks an opted-in plugin for its completions; plugins are not the engine"
    )]
    fn ask_plugin(&self, found: &Found, manifest: &Manifest, rest: &[String], current: &str) -> Option<Answer> {
        // The manifest may come from the cache, written while the file was still safe to run.
        if crate::fsutil::writable_by_others(&found.path).is_some() {
            return None;
        }
        let mut args: Vec<String> = rest.to_vec();
        args.push(current.to_string());
        let mut command = Command::new(&found.path);
        command
            .arg(COMPLETE_FLAG)
            .arg("--")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // The plugin gets its context, as on dispatch, so it can complete from the project.
        let globals = Globals {
            project: self.project.clone(),
            workspace: self.workspace.clone(),
            color: "never".to_string(),
            ..Globals::default()
        };
        let positional = crate::dispatch::project_positional(manifest, rest);
        if let Ok(resolved) = context::resolve(&globals, Some(&found.name), positional) {
            command.envs(context::env_vars(&resolved.context));
        }
        let output = match manifest_cache::run_with_limit(command, PLUGIN_COMPLETE_LIMIT) {
            Ok(Some((status, stdout))) if status.success() => stdout,
            _ => return None,
        };
        let mut lines = output.lines().filter(|l| !l.is_empty()).peekable();
        match lines.peek().copied() {
            Some(":files") => return Some(Answer::Files),
            Some(":dirs") => return Some(Answer::Dirs),
            _ => {}
        }
        let candidates = lines
            .map(|line| match line.split_once('\t') {
                Some((value, description)) => Candidate::new(value, description),
                None => Candidate::new(line, ""),
            })
            .collect();
        Some(self.filtered(candidates, current))
    }

    /// Option names for `current` (`--pro` → `--project`), or the values of `--opt=…`.
    fn options(&self, options: &[Opt], current: &str) -> Answer {
        if let Some((name, value)) = current.split_once('=') {
            let Some((option, _)) = lookup(options, name) else { return nothing() };
            if !option.takes_value || !name.starts_with("--") {
                return nothing();
            }
            return self.values(&option.values, value, Some(name));
        }
        let candidates = options.iter().filter_map(|o| Some(Candidate::new(o.shown_name()?, &o.description))).collect();
        self.filtered(candidates, current)
    }

    /// Candidates for `values`, filtered by `prefix`; `equals` is the `--opt` of `--opt=…`,
    /// put back in front of each value for shells that replace the whole word.
    fn values(&self, values: &Values, prefix: &str, equals: Option<&str>) -> Answer {
        let candidates = match values {
            Values::Files => return Answer::Files,
            Values::Dirs => return Answer::Dirs,
            Values::None => return nothing(),
            Values::Projects => self.projects(),
            Values::Commands => self.commands(true),
            Values::Plugins => self.commands(false),
            Values::InstalledPlugins => self.plugins(|found| found.source == Source::PluginDir, false),
            Values::Fixed(list) => list.clone(),
        };
        let Answer::Words(mut candidates) = self.filtered(candidates, prefix) else { unreachable!() };
        if let (Some(option), false) = (equals, self.shell == Shell::Bash) {
            for candidate in &mut candidates {
                candidate.value = format!("{option}={}", candidate.value);
            }
        }
        Answer::Words(candidates)
    }

    fn filtered(&self, mut candidates: Vec<Candidate>, prefix: &str) -> Answer {
        candidates.retain(|c| c.value.starts_with(prefix));
        Answer::Words(candidates)
    }

    /// Builtins (when `builtins`) and every discovered plugin, with descriptions.
    fn commands(&self, builtins: bool) -> Vec<Candidate> {
        let mut list: Vec<Candidate> = Vec::new();
        let builtin_names: Vec<&str> = self.cli.get_subcommands().map(|s| s.get_name()).collect();
        if builtins {
            list.extend(
                self.cli
                    .get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(|s| Candidate::new(s.get_name(), s.get_about().map(|a| a.to_string()).unwrap_or_default())),
            );
        }
        // A builtin shadows a plugin of the same name: dispatch would never reach it. Nor does
        // dispatch run a plugin it cannot run (not executable, another protocol, a `dpe`
        // requirement this dpe does not meet): offering it would only lead to that error.
        list.extend(self.plugins(|found| !builtin_names.contains(&found.name.as_str()), true));
        list
    }

    /// Discovered plugins that pass `keep`, the first of each name (as dispatch would run),
    /// with the description from their manifest where the shell shows one. With
    /// `only_runnable`, also only those dispatch would run: executable, and with a manifest it
    /// accepts (one that cannot be had within the budget gets the benefit of the doubt).
    fn plugins(&self, keep: impl Fn(&Found) -> bool, only_runnable: bool) -> Vec<Candidate> {
        let mut seen = std::collections::HashSet::new();
        let mut list = Vec::new();
        for found in listing::all(&self.paths) {
            if !seen.insert(found.name.clone()) || !keep(&found) {
                continue;
            }
            if only_runnable && !discovery::is_runnable(&found) {
                continue;
            }
            // Bash shows no descriptions: read manifests there only to judge compatibility.
            let manifest = match (self.shell, only_runnable) {
                (Shell::Bash, false) => Known::Unknown,
                _ => self.manifest(&found),
            };
            let refused = match &manifest {
                Known::Manifest(manifest) => manifest_cache::incompatibility(manifest).is_some(),
                Known::Broken => true,
                Known::Unknown => false,
            };
            if only_runnable && refused {
                continue;
            }
            let description = match (self.shell, manifest) {
                (Shell::Zsh | Shell::Fish, Known::Manifest(manifest)) => manifest.description,
                _ => String::new(),
            };
            list.push(Candidate::new(found.name, description));
        }
        list
    }

    /// The plugin's manifest from the cache; on a miss, asked within what is left of the
    /// budget. Never runs an executable without the opt-in marker (the cache layer checks).
    fn manifest(&self, found: &Found) -> Known {
        if let Some((manifest, _)) = manifest_cache::cached(found, &self.paths.cache_dir) {
            return Known::Manifest(manifest);
        }
        let left = self.manifest_budget.get();
        if left.is_zero() {
            return Known::Unknown;
        }
        let start = Instant::now();
        let limit = left.min(Duration::from_millis(250));
        let result = manifest_cache::manifest_within(found, &self.paths.cache_dir, limit, false);
        self.manifest_budget.set(left.saturating_sub(start.elapsed()));
        match result {
            Ok((manifest, _)) => Known::Manifest(manifest),
            // Out of time is not broken: the plugin may answer on the next TAB.
            Err(_) if start.elapsed() >= limit => Known::Unknown,
            Err(_) => Known::Broken,
        }
    }

    /// The workspace's project names.
    fn projects(&self) -> Vec<Candidate> {
        let Ok(cwd) = std::env::current_dir() else { return Vec::new() };
        let explicit = self
            .workspace
            .clone()
            .or_else(|| std::env::var_os(dpe_plugin::env::WORKSPACE).filter(|v| !v.is_empty()).map(PathBuf::from));
        let Ok(Some(workspace)) = Workspace::locate(explicit.as_deref(), &cwd) else { return Vec::new() };
        workspace.project_names().into_iter().map(|name| Candidate::new(name, "project")).collect()
    }

    /// Shells hand over `~/ws` unexpanded while the user is still typing.
    fn expand_tilde(&self, value: &str) -> PathBuf {
        match (value.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(value),
        }
    }
}

/// What completion knows of a plugin's manifest.
enum Known {
    Manifest(Manifest),
    /// The plugin gave no usable manifest (dispatch would refuse it too).
    Broken,
    /// Not asked, or no answer within the budget.
    Unknown,
}

/// A builtin positional's values, by its name where it names a project or a plugin.
fn positional_values(arg: &clap::Arg) -> Values {
    match arg.get_id().as_str() {
        "project" => Values::Projects,
        "plugin" => Values::Plugins,
        _ => values_of_clap_arg(arg),
    }
}

/// The index of the first positional among `words`, skipping options and their values.
fn first_positional(words: &[String], options: &[Opt]) -> Option<usize> {
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_str();
        if word == "--" {
            return (i + 1 < words.len()).then_some(i + 1);
        }
        if !word.starts_with('-') || word == "-" {
            return Some(i);
        }
        if let Some((option, None)) = lookup(options, word) {
            if option.takes_value {
                i += 1;
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bash_equals_split_is_joined_back() {
        let (words, index) = join_bash_equals(strings(&["dpe", "--project", "=", "pr"]), 3);
        assert_eq!((words, index), (strings(&["dpe", "--project=pr"]), 1));
        let (words, index) = join_bash_equals(strings(&["dpe", "--project", "="]), 2);
        assert_eq!((words, index), (strings(&["dpe", "--project="]), 1));
        let (words, index) = join_bash_equals(strings(&["dpe", "jupyter", ""]), 2);
        assert_eq!((words, index), (strings(&["dpe", "jupyter", ""]), 2));
    }

    #[test]
    fn lookup_reads_long_short_and_inline_values() {
        let options = vec![
            Opt {
                long: Some("--project".into()),
                short: Some('p'),
                takes_value: true,
                description: String::new(),
                values: Values::Projects,
            },
            Opt {
                long: Some("--verbose".into()),
                short: Some('v'),
                takes_value: false,
                description: String::new(),
                values: Values::None,
            },
        ];
        assert_eq!(lookup(&options, "--project=a").map(|(o, v)| (o.short, v)), Some((Some('p'), Some("a".into()))));
        assert_eq!(lookup(&options, "-pa").map(|(o, v)| (o.short, v)), Some((Some('p'), Some("a".into()))));
        assert_eq!(lookup(&options, "-vv").map(|(o, v)| (o.short, v)), Some((Some('v'), None)));
        assert!(lookup(&options, "--nope").is_none());
    }

    #[test]
    fn rendering_follows_each_shell() {
        let answer = Answer::Words(vec![Candidate::new("a:b", "two\nlines"), Candidate::new("c", "")]);
        assert_eq!(render(Shell::Bash, &answer), "a:b\nc\n");
        assert_eq!(render(Shell::Zsh, &answer), "a\\:b:two\nc\n");
        assert_eq!(render(Shell::Fish, &answer), "a:b\ttwo\nc\n");
        assert_eq!(render(Shell::Fish, &Answer::Dirs), ":dirs\n");
    }
}

/// The plugin files in dpe's search directories — what `discovery::all` finds — read through a
/// small cache, because listing every PATH directory is most of what `dpe <TAB>` costs: five
/// system calls per directory plus the kernel reading each entry of big ones like /usr/bin.
/// With the cache it is one `stat` per directory.
///
/// A directory's listing is reused while its modification time is unchanged (adding, removing
/// or renaming an entry changes it). A listing is not stored while the directory's mtime is
/// within two seconds of now: an entry created in the same clock tick as our read would not
/// change the mtime we saw (git's "racy" rule). A directory reached twice (`/bin` as a link to
/// `/usr/bin`) is listed once.
mod listing {
    use crate::discovery::{self, Found, Source};
    use crate::paths::Paths;
    use std::borrow::Cow;
    use std::collections::BTreeSet;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    /// One line per directory: `MTIME_NS DIR<TAB>FILE<TAB>FILE…`. Plain text, because parsing
    /// it must cost far less than the listing it saves (JSON into a map took most of a TAB).
    const FILE: &str = "completion-dirs";
    const HEADER: &str = "dpe completion cache v1\n";
    const RACY_NS: i128 = 2_000_000_000;

    pub fn all(paths: &Paths) -> Vec<Found> {
        let cache_file = paths.cache_dir.join(FILE);
        let old = std::fs::read_to_string(&cache_file).unwrap_or_default();
        // Lines are in search order, so each directory is looked for from where the previous
        // one was found: one comparison per directory rather than hashing them all.
        let cached: Vec<(&str, &str, &str)> = old
            .strip_prefix(HEADER)
            .unwrap_or("")
            .lines()
            .filter_map(|line| {
                let (mtime, rest) = line.split_once(' ')?;
                let (dir, files) = rest.split_once('\t').unwrap_or((rest, ""));
                Some((dir, mtime, files))
            })
            .collect();
        let mut cursor = 0;
        let mut new = String::from(HEADER);
        let mut visited = BTreeSet::new();
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let mut found = Vec::new();
        for (dir, source) in discovery::search_dirs(&paths.plugin_dir) {
            let Ok(meta) = std::fs::metadata(&dir) else { continue };
            if !meta.is_dir() || !visited.insert((meta.dev(), meta.ino())) {
                continue;
            }
            let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
            let mtime = mtime_ns.to_string();
            let dir_text = dir.to_str().filter(|d| !d.bytes().any(|b| b == b'\n' || b == b'\t'));
            let hit = dir_text.and_then(|d| {
                let at = cursor + cached[cursor..].iter().position(|(cached_dir, _, _)| *cached_dir == d)?;
                cursor = at + 1;
                Some(&cached[at])
            });
            // The directory's plugin files, tab-separated, as the cache holds them.
            let files: Cow<str> = match hit {
                Some((_, cached_mtime, files)) if *cached_mtime == mtime => Cow::Borrowed(files),
                _ => Cow::Owned(list(&dir).join("\t")),
            };
            if let Some(dir_text) = dir_text.filter(|_| now_ns - mtime_ns > RACY_NS) {
                new.push_str(&mtime);
                new.push(' ');
                new.push_str(dir_text);
                if !files.is_empty() {
                    new.push('\t');
                    new.push_str(&files);
                }
                new.push('\n');
            }
            if !files.is_empty() {
                found.extend(to_found(&dir, source, files.split('\t')));
            }
        }
        if new != old {
            // A cache that cannot be written only costs speed.
            let _ = crate::fsutil::write_atomic(&cache_file, new.as_bytes(), 0o644);
        }
        found
    }

    /// The plugin file names in `dir`, sorted: what `discovery::all` would consider there.
    fn list(dir: &Path) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut files: Vec<String> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok().filter(|n| !n.contains(['\n', '\t']))?;
                let plugin = name.starts_with("dpe-")
                    || (name.starts_with("libdpe_") && name.ends_with(discovery::DYLIB_SUFFIX));
                (plugin && entry.path().is_file()).then_some(name)
            })
            .collect();
        files.sort();
        files
    }

    /// The plugins among `files`, in `discovery::all`'s order: by name, an executable before a
    /// library of the same name; libraries only from the plugin directory.
    fn to_found<'a>(dir: &Path, source: Source, files: impl Iterator<Item = &'a str>) -> Vec<Found> {
        let mut here: Vec<Found> = files.filter_map(|file| discovery::plugin_file(dir, file, source)).collect();
        discovery::sort_within_dir(&mut here);
        here
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::discovery::Kind;

        #[test]
        fn orders_like_discovery_and_keeps_libraries_to_the_plugin_dir() {
            let files: Vec<String> =
                ["dpe-b", "dpe-a", "libdpe_a.so", "dpe-Bad", "notes"].iter().map(|s| s.to_string()).collect();
            let names = |source| {
                to_found(Path::new("/x"), source, files.iter().map(String::as_str))
                    .into_iter()
                    .map(|f| (f.name, f.kind))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                names(Source::PluginDir),
                vec![("a".into(), Kind::Executable), ("a".into(), Kind::Dynamic), ("b".into(), Kind::Executable)]
            );
            assert_eq!(names(Source::Path), vec![("a".into(), Kind::Executable), ("b".into(), Kind::Executable)]);
        }
    }
}

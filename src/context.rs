//! Building the project context every plugin and hook receives: global options, the located
//! workspace, the selected project, and its layered configuration, as a plain value.

use crate::config;
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::suggest;
use crate::trust::TrustStore;
use crate::workspace::Workspace;
use dpe_plugin::{env, Context, ProjectRef, PROTOCOL_VERSION};
use std::path::{Path, PathBuf};

/// Options given before the command name (or through their `DPE_*` variables).
#[derive(Debug, Clone, Default)]
pub struct Globals {
    pub verbosity: u8,
    pub project: Option<String>,
    pub workspace: Option<PathBuf>,
    pub color: String,
    pub json: bool,
    pub no_hooks: bool,
}

/// What the core needs besides the plugin-facing [`Context`].
pub struct Resolved {
    pub context: Context,
    pub workspace: Option<Workspace>,
    pub paths: Paths,
}

/// Resolves the context. `positional` is a plugin's first positional argument, used as the
/// project when it names one (and only then: anything else stays an ordinary argument).
pub fn resolve(globals: &Globals, plugin: Option<&str>, positional: Option<&str>) -> Result<Resolved> {
    let paths = Paths::from_env();
    let cwd = std::env::current_dir().map_err(|e| Error::new(format!("cannot read the current directory: {e}")))?;
    let explicit_ws = globals
        .workspace
        .clone()
        .or_else(|| std::env::var_os(env::WORKSPACE).filter(|v| !v.is_empty()).map(PathBuf::from));
    let workspace = Workspace::locate(explicit_ws.as_deref(), &cwd)?;

    let project = select_project(globals, workspace.as_ref(), positional, &cwd)?;
    let mut files = Vec::new();
    if let Some(ws) = &workspace {
        files.push(ws.config_file());
    }
    if let Some(project) = &project {
        files.push(project.dir.join(crate::workspace::CONFIG_FILE));
    }
    let layered = config::load(&paths.user_config(), &files)?;
    // Plugins refuse host-reaching settings of a configuration the user has not trusted
    // (`dpe_plugin::reach`); the core only says whether it is.
    let trust = TrustStore::config_trusted(
        &paths.state_dir,
        &layered.files,
        &layered.hashes,
        &paths.user_config(),
        workspace.as_ref().map(|ws| ws.root.as_path()),
        project.as_ref().map(|p| p.name.as_str()),
    );

    let dpe_bin =
        crate::paths::dpe_exe().map_err(|e| Error::new(format!("cannot locate the dpe binary: {e}")))?.to_path_buf();
    let context = Context {
        protocol: PROTOCOL_VERSION,
        dpe_version: env!("CARGO_PKG_VERSION").to_string(),
        dpe_bin,
        plugin: plugin.map(str::to_string),
        workspace: workspace.as_ref().map(|w| w.root.clone()),
        project,
        config: layered.config,
        config_files: layered.files,
        config_trusted: trust.trusted,
        accepted_reaches: trust.accepted_reaches,
        state_dir: paths.state_dir.clone(),
        data_dir: paths.data_dir.clone(),
        config_dir: paths.config_dir.clone(),
        cache_dir: paths.cache_dir.clone(),
        verbosity: globals.verbosity,
        color: globals.color.clone(),
        json: globals.json,
        no_hooks: globals.no_hooks,
    };
    Ok(Resolved { context, workspace, paths })
}

fn select_project(
    globals: &Globals,
    workspace: Option<&Workspace>,
    positional: Option<&str>,
    cwd: &Path,
) -> Result<Option<ProjectRef>> {
    let explicit = globals.project.clone().or_else(|| std::env::var(env::PROJECT).ok().filter(|p| !p.is_empty()));
    if let Some(name) = explicit {
        if let Some(ws) = workspace.filter(|_| !crate::names::is_valid(&name)) {
            if ws.projects_dir().join(&name).is_dir() {
                return Err(misnamed_project(ws, &name));
            }
        }
        crate::names::validate("project", &name)?;
        let Some(ws) = workspace else {
            return Err(Error::new(format!("project `{name}` was asked for, but there is no workspace here"))
                .with_help("run dpe inside a folder holding `dpe.toml` and `projects/`, or pass `--workspace DIR`"));
        };
        return match ws.project_dir(&name) {
            Some(dir) => Ok(Some(ProjectRef { name, dir })),
            None => Err(unknown_project(ws, &name)),
        };
    }
    let Some(ws) = workspace else { return Ok(None) };
    if let Some(name) = positional {
        if let Some(dir) = ws.project_dir(name) {
            return Ok(Some(ProjectRef { name: name.to_string(), dir }));
        }
        if !crate::names::is_valid(name) && ws.projects_dir().join(name).is_dir() {
            return Err(misnamed_project(ws, name));
        }
    }
    Ok(ws.project_containing(cwd).map(|name| ProjectRef { dir: ws.projects_dir().join(&name), name }))
}

/// A folder under `projects/` asked for as a project, whose name is not a valid one.
fn misnamed_project(ws: &Workspace, name: &str) -> Error {
    Error::new(format!("`{name}` is not a valid project name")).with_help(format!(
        "{} (in `{}`)",
        dpe_plugin::names::rename_hint(name),
        ws.projects_dir().display()
    ))
}

/// `no project named …` with a did-you-mean over the workspace's projects. A folder spelt the
/// same but for case is named with its fix, never offered as the did-you-mean: it is no project.
pub fn unknown_project(ws: &Workspace, name: &str) -> Error {
    let names = ws.project_names();
    let error = Error::new(format!("no project named `{name}` in `{}`", ws.projects_dir().display()));
    if let Some(folder) = dpe_plugin::names::folder_differing_in_case(&ws.projects_dir(), name) {
        return error.with_help(dpe_plugin::names::rename_hint(&folder));
    }
    match suggest::closest(name, names.iter().map(String::as_str)) {
        Some(best) => error.with_help(format!("did you mean `{best}`?")),
        None if names.is_empty() => {
            error.with_help(format!("create `{}` to add one", ws.projects_dir().join(name).display()))
        }
        None => error.with_help(format!("projects here: {}", names.join(", "))),
    }
}

/// The `DPE_*` variables a plugin or hook gets for `context`.
pub fn env_vars(context: &Context) -> Vec<(&'static str, String)> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut vars = vec![
        (env::BIN, path(&context.dpe_bin)),
        (env::PROTOCOL, context.protocol.to_string()),
        (env::VERSION, context.dpe_version.clone()),
        (env::STATE_DIR, path(&context.state_dir)),
        (env::DATA_DIR, path(&context.data_dir)),
        (env::CONFIG_DIR, path(&context.config_dir)),
        (env::CACHE_DIR, path(&context.cache_dir)),
        (env::VERBOSE, context.verbosity.to_string()),
        (env::COLOR, context.color.clone()),
        (env::JSON, if context.json { "1" } else { "0" }.to_string()),
        (env::NO_HOOKS, if context.no_hooks { "1" } else { "0" }.to_string()),
        (env::WORKSPACE, context.workspace.as_deref().map(path).unwrap_or_default()),
        (env::PROJECT, context.project.as_ref().map(|p| p.name.clone()).unwrap_or_default()),
        (env::PROJECT_DIR, context.project.as_ref().map(|p| path(&p.dir)).unwrap_or_default()),
        (env::PLUGIN, context.plugin.clone().unwrap_or_default()),
    ];
    let json = serde_json::to_string(context).expect("the context serialises");
    match context_file(&json) {
        Some(path) => vars.extend([(env::CONTEXT, String::new()), (env::CONTEXT_FILE, path)]),
        None => vars.extend([(env::CONTEXT, json), (env::CONTEXT_FILE, String::new())]),
    }
    vars
}

/// A context larger than this goes in a file: Linux caps one environment string at 128 KiB
/// (`MAX_ARG_STRLEN`; past it `exec` fails with "Argument list too long"), and every variable
/// and argument shares one limit besides.
const CONTEXT_VAR_LIMIT: usize = 64 * 1024;

/// For a context too large for `DPE_CONTEXT`, the path at which children read it: an inherited
/// in-memory file ([`crate::ffi::inheritable_memory_file`]), so dpe may `exec` the plugin and
/// no one has to remove anything. dpe keeps the latest one open for the hooks of later docker
/// calls; a child keeps its own copy of the descriptor.
fn context_file(json: &str) -> Option<String> {
    if json.len() <= CONTEXT_VAR_LIMIT {
        return None;
    }
    context_file_for(json)
}

#[cfg(target_os = "linux")]
fn context_file_for(json: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::os::fd::{AsRawFd, OwnedFd};
    static OPEN: std::sync::Mutex<Option<(Vec<u8>, OwnedFd)>> = std::sync::Mutex::new(None);
    let digest = Sha256::digest(json.as_bytes()).to_vec();
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    if open.as_ref().is_none_or(|(held, _)| *held != digest) {
        // Without the file, the variable is tried and `exec` reports what went wrong.
        *open = Some((digest, crate::ffi::inheritable_memory_file(json.as_bytes()).ok()?));
    }
    open.as_ref().map(|(_, fd)| format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(not(target_os = "linux"))]
fn context_file_for(_json: &str) -> Option<String> {
    None
}

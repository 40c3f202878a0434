//! The context the core resolves for any project of any workspace (`dpe context --json
//! --workspace W --project P`), remembered in the user's cache folder so that `list` and `gc`
//! plan fifty projects without starting fifty processes each time.
//!
//! The core layers a project's configuration from three files only: the user's `config.toml`,
//! the workspace's `dpe.toml` and the project's `dpe.toml`. A remembered context is used again
//! only while each of the three is exactly as it was when it was resolved (absent, or the same
//! inode, size, modification and change time to the nanosecond) and the same dpe asks;
//! anything else (or a project folder replaced or gone) resolves it afresh. The files a configuration names (requirements, a
//! Dockerfile, certificates) are read again by every plan, so they need no stamp here. A
//! context can hold `[env]` values, so the cache is written readable by its owner only.

use crate::project::short_hash;
use dpe_plugin::Context;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What identifies one version of a file: `None` when it does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    path: PathBuf,
    file: Option<(u64, u64, i64, i64, i64, i64)>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    dpe_bin: PathBuf,
    dpe_version: String,
    stamps: Vec<Stamp>,
    context: Context,
}

/// The context of project `name` of `workspace`, from the cache when its configuration files
/// are unchanged, else from the core; `None` when the core refuses (a project that is gone, a
/// configuration that no longer reads).
pub fn project_context(context: &Context, workspace: &Path, name: &str) -> Option<Context> {
    // Names and workspaces come from labels, which anyone can write: only a project name (no
    // path) and an absolute workspace ever reach a path here or the core's command line.
    if !dpe_plugin::names::is_valid(name) || !workspace.is_absolute() {
        return None;
    }
    let stamps = stamps(context, workspace, name);
    let path = cache_file(context, workspace, name);
    if let Some(entry) = std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok()) {
        if entry.stamps == stamps && entry.dpe_version == context.dpe_version && entry.dpe_bin == context.dpe_bin {
            return Some(entry.context);
        }
    }
    // Stamped before the core reads the files: a change in between is seen next time.
    let resolved = from_core(context, workspace, name)?;
    let entry = Entry {
        dpe_bin: context.dpe_bin.clone(),
        dpe_version: context.dpe_version.clone(),
        stamps,
        context: resolved.clone(),
    };
    // A cache that cannot be written costs the next listing time, never its answer.
    let _ = crate::secrets::write_private(&path, &serde_json::to_vec(&entry).expect("a context serialises"));
    Some(resolved)
}

/// Asks the core, as a plugin started for that project would be given it.
fn from_core(context: &Context, workspace: &Path, name: &str) -> Option<Context> {
    let output = dpe_plugin::client::dpe_command(context, &["--json", "--workspace"])
        .arg(workspace)
        .args(["--project", name, "context", "--plugin", "jupyter"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Context::from_json(&String::from_utf8_lossy(&output.stdout)).ok()
}

/// The three files the core layers, and the project folder, as they are now.
fn stamps(context: &Context, workspace: &Path, name: &str) -> Vec<Stamp> {
    let files = [
        context.config_dir.join("config.toml"),
        workspace.join("dpe.toml"),
        workspace.join("projects").join(name).join("dpe.toml"),
    ];
    files
        .into_iter()
        .map(|path| {
            let file = std::fs::metadata(&path)
                .ok()
                .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()));
            Stamp { path, file }
        })
        // The project folder itself, by its identity only (its times change with every saved
        // notebook): a project whose folder went away no longer resolves.
        .chain(std::iter::once({
            let path = workspace.join("projects").join(name);
            let file = std::fs::metadata(&path).ok().map(|m| (m.ino(), 0, 0, 0, 0, 0));
            Stamp { path, file }
        }))
        .collect()
}

fn cache_file(context: &Context, workspace: &Path, name: &str) -> PathBuf {
    let key = format!("{name}-{}", short_hash(&workspace.to_string_lossy()));
    context.cache_dir.join("jupyter").join("contexts").join(format!("{key}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for the core that counts how often it is asked (the real one is exercised by
    /// `tests/list.rs`; here only the cache's decisions are under test).
    fn counting_core(dir: &Path) -> Context {
        let context: Context = serde_json::from_value(serde_json::json!({
            "protocol": dpe_plugin::PROTOCOL_VERSION, "dpe_version": "0.1.0",
            "dpe_bin": dir.join("dpe"), "plugin": "jupyter", "workspace": dir.join("ws"),
            "project": {"name": "a", "dir": dir.join("ws/projects/a")}, "config": {}, "config_files": [],
            "state_dir": dir.join("state"), "data_dir": dir.join("data"), "config_dir": dir.join("config"),
            "cache_dir": dir.join("cache"), "verbosity": 0, "color": "never", "json": false, "no_hooks": false
        }))
        .unwrap();
        std::fs::write(dir.join("context.json"), serde_json::to_string(&context).unwrap()).unwrap();
        let script = format!(
            "#!/bin/sh\necho asked >> '{0}/asked'\n[ -d '{0}/ws/projects/a' ] || exit 1\ncat '{0}/context.json'\n",
            dir.display()
        );
        std::fs::write(dir.join("dpe"), script).unwrap();
        std::fs::set_permissions(dir.join("dpe"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(dir.join("ws/projects/a")).unwrap();
        std::fs::write(dir.join("ws/dpe.toml"), "").unwrap();
        context
    }

    fn asked(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("asked")).map(|t| t.lines().count()).unwrap_or(0)
    }

    #[test]
    fn the_core_is_asked_again_only_when_a_configuration_file_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let context = counting_core(dir);
        let ws = dir.join("ws");
        let resolved = project_context(&context, &ws, "a").unwrap();
        assert_eq!((resolved.project.unwrap().name.as_str(), asked(dir)), ("a", 1));
        assert!(project_context(&context, &ws, "a").is_some());
        assert_eq!(asked(dir), 1, "unchanged files: the remembered context");
        let cached = cache_file(&context, &ws, "a");
        assert_eq!(std::fs::metadata(&cached).unwrap().permissions().mode() & 0o777, 0o600);
        // A project file appears, then the user's own config changes.
        std::fs::write(ws.join("projects/a/dpe.toml"), "image = \"x\"\n").unwrap();
        project_context(&context, &ws, "a").unwrap();
        assert_eq!(asked(dir), 2);
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::write(dir.join("config/config.toml"), "").unwrap();
        project_context(&context, &ws, "a").unwrap();
        project_context(&context, &ws, "a").unwrap();
        assert_eq!(asked(dir), 3);
        // The folder went away: the core is asked, and refuses.
        std::fs::remove_dir_all(ws.join("projects/a")).unwrap();
        assert!(project_context(&context, &ws, "a").is_none());
        assert_eq!(asked(dir), 4);
        // Names from labels never reach a path or the core.
        assert!(project_context(&context, &ws, "../a").is_none());
        assert!(project_context(&context, Path::new("ws"), "a").is_none());
        assert_eq!(asked(dir), 4);
    }
}

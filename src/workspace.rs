//! Finding the workspace and its projects, the way `just` finds a justfile.
//!
//! A workspace is the nearest ancestor of the current directory holding a `dpe.toml` (or the
//! directory given by `--workspace` / `DPE_WORKSPACE`). Its projects are the folders under
//! `projects/`; each may have its own `dpe.toml`. Nothing here lists the projects folder on the
//! dispatch path: selecting a project is one `stat`, so a workspace of a thousand projects
//! dispatches as fast as a workspace of one.
//!
//! The root is the workspace's real path (one `realpath`): containers, volumes, ports and
//! tokens are keyed by it, so `-C ~/lab` through a symbolic link and `cd` into the real folder
//! are one workspace, never two servers writing one folder.

use crate::error::{Error, Result};
use crate::names;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "dpe.toml";
pub const PROJECTS_DIR: &str = "projects";

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
}

impl Workspace {
    /// The workspace named explicitly, or the nearest one above `cwd`, or none.
    pub fn locate(explicit: Option<&Path>, cwd: &Path) -> Result<Option<Workspace>> {
        if let Some(dir) = explicit {
            let root = normalize(&if dir.is_absolute() { dir.to_path_buf() } else { cwd.join(dir) });
            check_explicit(&root)?;
            let root = std::fs::canonicalize(&root).unwrap_or(root);
            return Ok(Some(Workspace { root }));
        }
        let mut dir = Some(cwd);
        while let Some(current) = dir {
            if current.join(CONFIG_FILE).is_file() {
                // A project's own dpe.toml is not a workspace: keep walking past `projects/X`.
                let is_project = current.parent().and_then(Path::file_name).is_some_and(|n| n == PROJECTS_DIR)
                    && current.parent().and_then(Path::parent).is_some_and(|w| w.join(CONFIG_FILE).is_file());
                if !is_project {
                    return Ok(Some(Workspace { root: current.to_path_buf() }));
                }
            }
            dir = current.parent();
        }
        Ok(None)
    }

    pub fn projects_dir(&self) -> PathBuf {
        self.root.join(PROJECTS_DIR)
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// The directory of project `name` if it exists (one `stat`).
    pub fn project_dir(&self, name: &str) -> Option<PathBuf> {
        if !names::is_valid(name) {
            return None;
        }
        let dir = self.projects_dir().join(name);
        dir.is_dir().then_some(dir)
    }

    /// The project whose folder contains `cwd`.
    pub fn project_containing(&self, cwd: &Path) -> Option<String> {
        let rel = cwd.strip_prefix(self.projects_dir()).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        self.project_dir(first).map(|_| first.to_string())
    }

    /// Every project name, sorted. Lists the folder: for completion, listings, did-you-mean.
    pub fn project_names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.projects_dir()) else { return Vec::new() };
        let mut list: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| names::is_valid(n))
            .collect();
        list.sort();
        list
    }
}

/// Refuses a workspace named by `--workspace`/`-C` or `DPE_WORKSPACE` that is not one, with a
/// fix that is a sane path: never a file below a file, and the workspace above when there is one.
fn check_explicit(root: &Path) -> Result<()> {
    let shown = root.display();
    let above = || root.parent().and_then(|dir| Workspace::locate(None, dir).ok().flatten());
    let meta = match std::fs::metadata(root) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(format!("workspace `{shown}` does not exist"))
                .with_help("pass the folder holding the workspace's `dpe.toml` (`dpe -C path/to/workspace …`)"));
        }
        Err(err) => return Err(Error::new(format!("cannot use `{shown}` as the workspace: {err}"))),
    };
    if !meta.is_dir() {
        let help = match above() {
            Some(above) => format!("did you mean the workspace `{}`?", above.root.display()),
            None => "pass the folder holding the workspace's `dpe.toml` (`dpe -C path/to/workspace …`)".to_string(),
        };
        return Err(Error::new(format!("workspace `{shown}` is not a directory")).with_help(help));
    }
    if root.join(CONFIG_FILE).is_file() || root.join(PROJECTS_DIR).is_dir() {
        return Ok(());
    }
    let error =
        Error::new(format!("`{shown}` is not a dpe workspace: it has neither `{CONFIG_FILE}` nor `{PROJECTS_DIR}/`"));
    Err(match above() {
        Some(above) => error.with_help(format!("did you mean the workspace `{}`?", above.root.display())),
        None => error.with_help(format!(
            "pass the folder holding the workspace's `{CONFIG_FILE}`, or create `{}` to make this folder one",
            root.join(CONFIG_FILE).display()
        )),
    })
}

/// Removes `.` and `..` components without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_workspace_above_a_project_folder_with_its_own_config() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path();
        std::fs::write(ws.join(CONFIG_FILE), "").unwrap();
        let project = ws.join("projects/a/notebooks");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(ws.join("projects/a/dpe.toml"), "").unwrap();
        let found = Workspace::locate(None, &project).unwrap().unwrap();
        assert_eq!(found.root, ws);
        assert_eq!(found.project_containing(&project).as_deref(), Some("a"));
    }

    #[test]
    fn project_lookup_refuses_path_tricks() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("projects/a")).unwrap();
        let ws = Workspace { root: tmp.path().to_path_buf() };
        assert!(ws.project_dir("a").is_some());
        assert!(ws.project_dir("..").is_none());
        assert!(ws.project_dir("a/../a").is_none());
    }
}

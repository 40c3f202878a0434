//! `--from-lock FILE`: a complete `pip freeze` (e.g. from `dpe export PROJECT --to lock FILE`)
//! installed into the project's environment at start, after the project's own lock, by
//! `dpe-sync` (uv, `--no-deps`: every line is pinned, nothing is resolved). The image carries
//! the file (one small layer on top of the cached ones), not the packages.
//!
//! The lock is remembered per project (a copy in the state directory), because every other
//! way of building the image (a plain start, `spec` for compose and export, `pip` without a
//! server) must build the same image; `--no-lock` forgets it. It is kept apart from
//! [`Project`] (whose fields other crates fill in) and reaches the build through
//! [`crate::image::plan_with_lock`]. Lines installing from local files
//! (`name @ file:///work/dist/x.whl`) refer to the project folder as the container sees it,
//! where `dpe-sync` finds them at start: a file outside the project folder, or missing from
//! it, is refused before anything is built.

use crate::context_file::ContextFile;
use crate::project::Project;
use dpe_plugin::sdk::{self, Error, Result};
use std::path::{Component, Path, PathBuf};

/// Where the lock lands in the image, for `dpe-sync` (its `FROM_LOCK`).
pub const LOCK_IN_IMAGE: &str = "/usr/local/share/dpe/from-lock.txt";

/// A lock to install into the project's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Where it was read from, for messages.
    pub source: PathBuf,
    pub bytes: Vec<u8>,
}

/// What the command line asks about the lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Choice {
    /// Neither flag: use the remembered lock, if any.
    #[default]
    Keep,
    /// `--from-lock FILE`.
    Use(Lock),
    /// `--no-lock`.
    Forget,
}

impl Choice {
    /// Reads `--from-lock FILE` (relative to the current folder) or notes `--no-lock`.
    pub fn from_args(from_lock: Option<&Path>, no_lock: bool) -> Result<Choice> {
        if no_lock {
            return Ok(Choice::Forget);
        }
        let Some(path) = from_lock else { return Ok(Choice::Keep) };
        let bytes = std::fs::read(path).map_err(|e| {
            Error::new(format!("cannot read the lock file `{}`: {e}", path.display()))
                .with_help("write one with `dpe export PROJECT --to lock FILE` (a complete `pip freeze`)")
        })?;
        if std::str::from_utf8(&bytes).is_err() {
            return Err(Error::new(format!("the lock file `{}` is not text", path.display()))
                .with_help("a lock is the output of `pip freeze`"));
        }
        let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Choice::Use(Lock { source, bytes }))
    }

    /// The lock the build uses: the given one, none, or the remembered one.
    pub fn resolve(&self, remembered: Option<Lock>) -> Option<Lock> {
        match self {
            Choice::Keep => remembered,
            Choice::Use(lock) => Some(lock.clone()),
            Choice::Forget => None,
        }
    }

    /// Remembers (or forgets) the choice once the build it asked for succeeded.
    pub fn persist(&self, state_dir: &Path, key: &str) -> Result<()> {
        let path = saved_path(state_dir, key);
        match self {
            Choice::Keep => Ok(()),
            Choice::Forget => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io(format!("removing `{}`", path.display()), e))
                }
                _ => Ok(()),
            },
            // Atomic: a crash never leaves half a lock to build from.
            Choice::Use(lock) => sdk::fs::write_atomic(&path, &lock.bytes, 0o644)
                .map_err(|e| Error::io(format!("writing `{}`", path.display()), e)),
        }
    }
}

/// The lock a build of `project` installs: the one `choice` names, else the remembered one.
/// Every command that builds goes through here, so all of them build the same image.
pub fn for_build(state_dir: &Path, project: &Project, choice: &Choice) -> Result<Option<Lock>> {
    match choice {
        Choice::Keep => load_saved(state_dir, &project.key()),
        other => Ok(other.resolve(None)),
    }
}

/// The remembered lock of a project (its key is unique per workspace).
pub fn saved_path(state_dir: &Path, key: &str) -> PathBuf {
    state_dir.join("jupyter").join("locks").join(format!("{key}.lock"))
}

/// The lock `--from-lock` left for this project, if any.
pub fn load_saved(state_dir: &Path, key: &str) -> Result<Option<Lock>> {
    let path = saved_path(state_dir, key);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(Lock { source: path, bytes })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading `{}`", path.display()), e)),
    }
}

/// The build-context file and Dockerfile line that put `lock` in the image for `dpe-sync`,
/// after checking every line it can install from: `workdir` is where the project folder
/// `project_dir` is mounted in the container.
pub fn layer(lock: &Lock, project_dir: &Path, workdir: &str) -> Result<(Vec<ContextFile>, String)> {
    let text = String::from_utf8_lossy(&lock.bytes);
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let refuse = |why: String, help: &str| {
            Err(Error::new(format!("line {} of the lock `{}` {why}: `{line}`", index + 1, lock.source.display()))
                .with_help(help.to_string()))
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("-e ") || line.starts_with("--editable") {
            return refuse(
                "is an editable install, which a lock cannot reproduce".into(),
                "remove the line, and after the start install it with `dpe jupyter pip PROJECT install -e PATH`",
            );
        }
        if line.starts_with('-') {
            return refuse(
                "is an option, not a package".into(),
                "a lock is one complete `pip freeze`; write it with `dpe export PROJECT --to lock FILE`",
            );
        }
        let Some(url) = file_url(line) else { continue };
        let path = percent_decode(url.strip_prefix("file://localhost").or(url.strip_prefix("file://")).unwrap_or(url));
        let relative = Path::new(&path)
            .strip_prefix(workdir)
            .ok()
            .filter(|rel| rel.components().all(|c| matches!(c, Component::Normal(_))) && !rel.as_os_str().is_empty());
        let Some(relative) = relative else {
            return refuse(
                format!("installs from `{path}`, outside the project folder (`{workdir}` in the container)"),
                "put the package in the project folder, install it from there, and export the lock again",
            );
        };
        let host = project_dir.join(relative);
        if !host.exists() {
            return refuse(
                format!("installs from `{path}`, but `{}` does not exist", host.display()),
                "copy the file into the project folder at that place, or export the lock again",
            );
        }
    }
    let files = vec![ContextFile { name: "dpe-lock/requirements.lock".into(), bytes: lock.bytes.clone() }];
    Ok((files, format!("COPY dpe-lock/requirements.lock {LOCK_IN_IMAGE}\n")))
}

/// The URL of a `name @ file:///…` line (markers after `;` dropped).
fn file_url(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once(" @ ")?;
    let url = rest.split(';').next()?.split_whitespace().next()?;
    url.starts_with("file:").then_some(url)
}

/// Decodes `%XX` escapes (pip writes a space in a path as `%20`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(text: &str) -> Lock {
        Lock { source: "/home/u/env.lock".into(), bytes: text.as_bytes().to_vec() }
    }

    #[test]
    fn the_image_carries_the_lock_alone_and_local_files_are_checked_in_the_project_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dist")).unwrap();
        std::fs::write(dir.path().join("dist/my pkg-0.1-py3-none-any.whl"), "wheel").unwrap();
        std::fs::create_dir_all(dir.path().join("src/lib")).unwrap();
        let text = "# comment\npandas==1.5.3\nmy-pkg @ file:///work/dist/my%20pkg-0.1-py3-none-any.whl\nlib @ file:///work/src/lib ; python_version >= \"3\"\n";
        let (files, dockerfile) = layer(&lock(text), dir.path(), "/work").unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(
            (files[0].name.as_str(), files[0].bytes.as_slice()),
            ("dpe-lock/requirements.lock", text.as_bytes())
        );
        assert_eq!(dockerfile, "COPY dpe-lock/requirements.lock /usr/local/share/dpe/from-lock.txt\n");
    }

    #[test]
    fn lines_the_build_cannot_reproduce_are_refused_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let message = |text: &str| layer(&lock(text), dir.path(), "/work").unwrap_err().message;
        assert_eq!(
            message("a==1\nc @ file:///tmp/c.whl\n"),
            "line 2 of the lock `/home/u/env.lock` installs from `/tmp/c.whl`, outside the project folder (`/work` in the container): `c @ file:///tmp/c.whl`"
        );
        assert!(message("c @ file:///work/../etc/c.whl\n").contains("outside the project folder"));
        assert_eq!(
            message("d @ file:///work/dist/d.whl\n"),
            format!(
                "line 1 of the lock `/home/u/env.lock` installs from `/work/dist/d.whl`, but `{}` does not exist: `d @ file:///work/dist/d.whl`",
                dir.path().join("dist/d.whl").display()
            )
        );
        assert_eq!(
            message("-e /work/src/mylib\n"),
            "line 1 of the lock `/home/u/env.lock` is an editable install, which a lock cannot reproduce: `-e /work/src/mylib`"
        );
        assert!(message("-r other.txt\n").contains("is an option, not a package"));
    }

    #[test]
    fn the_choice_is_remembered_and_forgotten() {
        let state = tempfile::tempdir().unwrap();
        let file = state.path().join("given.lock");
        std::fs::write(&file, "six==1.16.0\n").unwrap();
        assert_eq!(load_saved(state.path(), "p-1").unwrap(), None);
        let choice = Choice::from_args(Some(&file), false).unwrap();
        choice.persist(state.path(), "p-1").unwrap();
        let saved = load_saved(state.path(), "p-1").unwrap().unwrap();
        assert_eq!(saved.bytes, b"six==1.16.0\n");
        assert_eq!(Choice::Keep.resolve(Some(saved.clone())), Some(saved.clone()));
        assert_eq!(Choice::Forget.resolve(Some(saved)), None);
        Choice::Forget.persist(state.path(), "p-1").unwrap();
        assert_eq!(load_saved(state.path(), "p-1").unwrap(), None);
        let err = Choice::from_args(Some(Path::new("/nowhere/x.lock")), false).unwrap_err();
        assert!(err.message.starts_with("cannot read the lock file `/nowhere/x.lock`: "), "{}", err.message);
    }
}

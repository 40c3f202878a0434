//! Writing an archive's project files into a fresh folder without ever following a link.
//!
//! The archive's layout checks already refuse what could escape; this is the second wall, so
//! that a gap in them cannot write outside the folder. The root is created here (private, mode
//! 0700) and every folder below it is created here too, one component at a time with
//! `mkdir`, which never follows a link and fails on anything already there; files are
//! created with `O_CREAT | O_EXCL | O_NOFOLLOW` and their mode and time set on the open file;
//! folder modes are set last through a handle opened with `O_NOFOLLOW`. So every path written
//! through is a folder this code made, and nothing is written or chmod-ed through a link.

use crate::names;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A folder being filled; `rel` names are normalised (see [`names::normalize`]).
pub struct Tree {
    root: PathBuf,
    /// Folders this tree created ("" is the root).
    made: HashSet<String>,
    /// Folder modes and times, applied by [`Tree::finish`] (writing files touches them).
    folders: Vec<(String, u32, u64)>,
}

impl Tree {
    /// Creates `root`, which must not exist yet.
    pub fn create(root: &Path) -> io::Result<Tree> {
        fs::DirBuilder::new().mode(0o700).create(root)?;
        Ok(Tree { root: root.to_path_buf(), made: HashSet::from([String::new()]), folders: Vec::new() })
    }

    fn folder(&mut self, rel: &str) -> io::Result<()> {
        if self.made.contains(rel) {
            return Ok(());
        }
        fs::DirBuilder::new().mode(0o700).create(self.root.join(rel)).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                io::Error::new(e.kind(), format!("`{rel}` is already there and is not a folder this import made"))
            } else {
                e
            }
        })?;
        self.made.insert(rel.to_string());
        Ok(())
    }

    fn parents(&mut self, rel: &str) -> io::Result<PathBuf> {
        for parent in names::ancestors(rel) {
            self.folder(parent)?;
        }
        Ok(self.root.join(rel))
    }

    /// A folder; its mode (permission bits only) and time are set by [`Tree::finish`].
    pub fn dir(&mut self, rel: &str, mode: u32, mtime: u64) -> io::Result<()> {
        self.parents(rel)?;
        self.folder(rel)?;
        self.folders.push((rel.to_string(), mode & 0o777, mtime));
        Ok(())
    }

    /// A new regular file holding `content`; returns the bytes written.
    pub fn file(&mut self, rel: &str, mode: u32, mtime: u64, content: &mut dyn Read) -> io::Result<u64> {
        let path = self.parents(rel)?;
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        let written = io::copy(content, &mut out)?;
        // On the open file (fchmod, futimens): never through a path a link could redirect.
        out.set_permissions(fs::Permissions::from_mode(mode & 0o777))?;
        if let Some(time) = time_of(mtime) {
            let _ = out.set_modified(time);
        }
        Ok(written)
    }

    /// A symlink (its target is the caller's to check; creating it never follows anything).
    pub fn symlink(&mut self, rel: &str, target: &Path) -> io::Result<()> {
        let path = self.parents(rel)?;
        std::os::unix::fs::symlink(target, path)
    }

    /// Sets the folders' modes and times, deepest first; the owner keeps write access.
    pub fn finish(self) -> io::Result<()> {
        for (rel, mode, mtime) in self.folders.iter().rev() {
            let handle = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
                .open(self.root.join(rel))?;
            handle.set_permissions(fs::Permissions::from_mode(mode | 0o700))?;
            if let Some(time) = time_of(*mtime) {
                let _ = handle.set_modified(time);
            }
        }
        Ok(())
    }
}

/// A member's mtime as a time, or `None` (the file keeps the time it was written at) when it
/// lies past what the system can represent: a tar header may hold any 64-bit number.
fn time_of(seconds: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with a link `h` to an outside folder, as a crafted archive would leave it.
    fn with_link_out() -> (tempfile::TempDir, PathBuf, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        let mut tree = Tree::create(&dir.path().join("root")).unwrap();
        tree.symlink("h", &outside).unwrap();
        (dir, outside, tree)
    }

    #[test]
    fn a_file_is_never_written_through_a_link() {
        let (_dir, outside, mut tree) = with_link_out();
        assert!(tree.file("h", 0o777, 0, &mut &b"x"[..]).is_err());
        let below = tree.file("h/hook", 0o755, 0, &mut &b"#!/bin/sh\n"[..]).unwrap_err();
        assert_eq!(below.to_string(), "`h` is already there and is not a folder this import made");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(fs::metadata(&outside).unwrap().permissions().mode() & 0o777, 0o755);
    }

    #[test]
    fn a_folder_is_never_made_or_chmod_ed_through_a_link() {
        let (_dir, outside, mut tree) = with_link_out();
        assert!(tree.dir("h", 0o777, 0).is_err());
        assert!(tree.dir("h/sub", 0o777, 0).is_err());
        tree.finish().unwrap();
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(fs::metadata(&outside).unwrap().permissions().mode() & 0o777, 0o755);
    }

    #[test]
    fn files_folders_and_links_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let mut tree = Tree::create(&root).unwrap();
        tree.dir("a", 0o750, 0).unwrap();
        assert_eq!(tree.file("a/b/c.txt", 0o640, 0, &mut &b"hi"[..]).unwrap(), 2);
        tree.symlink("l", Path::new("a/b/c.txt")).unwrap();
        assert!(tree.file("a/b/c.txt", 0o640, 0, &mut &b"again"[..]).is_err());
        tree.finish().unwrap();
        assert_eq!(fs::read_to_string(root.join("l")).unwrap(), "hi");
        assert_eq!(fs::metadata(root.join("a")).unwrap().permissions().mode() & 0o777, 0o750);
        assert_eq!(fs::metadata(root.join("a/b/c.txt")).unwrap().permissions().mode() & 0o777, 0o640);
    }

    /// A tar header may hold any 64-bit mtime; one past what a time can hold is not applied
    /// (and panicked before).
    #[test]
    fn an_mtime_beyond_any_time_is_left_unset() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let mut tree = Tree::create(&root).unwrap();
        tree.dir("a", 0o755, u64::MAX).unwrap();
        assert_eq!(tree.file("a/f", 0o644, u64::MAX, &mut &b"x"[..]).unwrap(), 1);
        tree.finish().unwrap();
        assert_eq!(fs::read_to_string(root.join("a/f")).unwrap(), "x");
    }
}

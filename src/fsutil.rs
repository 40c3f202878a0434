//! Small filesystem helpers: atomic writes (the SDK's) and the permission check that refuses
//! files others could have written.

use crate::error::{Error, Result};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically with `mode` (less the umask): readers see the old
/// content or the new, never half of it. The one implementation is the plugin SDK's, which
/// the core shares with the plugins.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    dpe_plugin::sdk::fs::write_atomic(path, bytes, mode).map_err(|e| crate::error::io("write", path, e))
}

/// Refuses `path` when it, or the directory holding it, is group- or world-writable, or owned by
/// another user than this one or root: anyone else who could write it could run code as this
/// user.
pub fn check_not_writable_by_others(what: &str, path: &Path) -> Result<()> {
    let Some((culprit, open)) = writable_by_others(path) else { return Ok(()) };
    Err(Error::new(format!(
        "refusing {what} `{}`: `{}` is {}, so someone else could change what runs",
        path.display(),
        culprit.display(),
        open.why
    ))
    .with_help(format!("if you trust it, {}", open.fix)))
}

/// The first of `path` and its directory that someone else could write, and why. For a
/// symbolic link, also the file it resolves to and that file's directory: whoever can write
/// there can replace what the link runs.
pub fn writable_by_others(path: &Path) -> Option<(PathBuf, OpenToOthers)> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut candidates = vec![path.to_path_buf(), dir.to_path_buf()];
    if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        if let Ok(target) = std::fs::canonicalize(path) {
            candidates.extend(target.parent().map(Path::to_path_buf));
            candidates.insert(2, target);
        }
    }
    candidates.into_iter().find_map(|candidate| {
        let open = open_to_others(&candidate)?;
        Some((candidate, open))
    })
}

/// Why someone other than this user (or root) could write a file.
pub struct OpenToOthers {
    /// `writable by everyone (mode 777)`, `owned by another user (uid 1001)`.
    pub why: String,
    /// What fixes it: `run `chmod go-w PATH``.
    pub fix: String,
}

/// Why someone other than this user (or root) could write `path`; `None` when nobody could.
/// A path that cannot be read is not judged here: using it fails anyway.
pub fn open_to_others(path: &Path) -> Option<OpenToOthers> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        let who = if mode & 0o002 != 0 { "everyone" } else { "its group" };
        return Some(OpenToOthers {
            why: format!("writable by {who} (mode {:o})", mode & 0o7777),
            fix: format!("run `chmod go-w {}`", path.display()),
        });
    }
    // The owner can always change the mode back, so another user's file is as open as a
    // world-writable one (the rule ssh and git apply).
    let me = crate::ffi::effective_uid();
    if meta.uid() != me && meta.uid() != 0 {
        return Some(OpenToOthers {
            why: format!("owned by another user (uid {})", meta.uid()),
            fix: format!("make it yours: `sudo chown {me} {}`", path.display()),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_other_users_or_open_to_others_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let plugin = tmp.path().join("dpe-x");
        std::fs::write(&plugin, "").unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(writable_by_others(&plugin).is_none());
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert_eq!(writable_by_others(&plugin).unwrap().1.why, "writable by its group (mode 775)");
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Only root can give a file away; elsewhere the ownership rule cannot be set up.
        if crate::ffi::effective_uid() == 0 {
            std::os::unix::fs::chown(&plugin, Some(4242), None).unwrap();
            let (culprit, open) = writable_by_others(&plugin).unwrap();
            assert_eq!((culprit, open.why.as_str()), (plugin.clone(), "owned by another user (uid 4242)"));
        }
    }

    #[test]
    fn a_link_is_judged_by_where_it_leads_too() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let open_dir = tmp.path().join("shared");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let target = open_dir.join("tool");
        std::fs::write(&target, "").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = tmp.path().join("dpe-tool");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let (culprit, open) = writable_by_others(&link).unwrap();
        assert_eq!(culprit, open_dir.canonicalize().unwrap());
        assert_eq!(open.why, "writable by everyone (mode 777)");
    }
}

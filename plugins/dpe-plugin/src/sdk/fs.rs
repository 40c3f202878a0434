//! Writing files so that nobody sees half of one, and private files so that nobody else reads
//! them: the one implementation the core and every Rust plugin use.
//!
//! A file is written to a temporary file in the same folder, synced and renamed over the
//! target, so a reader (or a crash) sees the old content or the new, never part of it. The
//! temporary file is created afresh with the final mode: a stale one left by a killed process
//! with the same pid would keep its old mode, and a 0600 secret would be published as whatever
//! that was.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Writes `bytes` to `path` atomically with `mode` (less the umask), creating missing folders.
/// Folders it creates for a file only its owner may read (`mode` gives nothing to group and
/// others) are 0700 as well, so the file's name is private too.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir_mode = if mode & 0o077 == 0 { 0o700 } else { 0o777 };
    std::fs::DirBuilder::new().recursive(true).mode(dir_mode).create(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        match std::fs::remove_file(&tmp) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a file only its owner can read (0600, in folders it creates 0700), atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic(path, bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_mode_holds_even_over_a_stale_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secret.json");
        let stale = tmp.path().join(format!(".secret.json.tmp-{}", std::process::id()));
        std::fs::write(&stale, "old").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o600);
        assert!(!stale.exists());
    }

    #[test]
    fn private_files_replace_atomically_in_private_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state/sub/compose.yaml");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!((mode(&path), mode(&tmp.path().join("state")), mode(path.parent().unwrap())), (0o600, 0o700, 0o700));
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["compose.yaml"], "no temporary file is left");
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        // The target is a non-empty folder: the rename fails after the temporary was written.
        let path = tmp.path().join("taken");
        std::fs::create_dir_all(path.join("inside")).unwrap();
        assert!(write_atomic(&path, b"x", 0o644).is_err());
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["taken"]);
    }
}

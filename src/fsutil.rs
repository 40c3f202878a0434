//! Small filesystem helpers: atomic writes and the permission check that refuses files others
//! could have written.

use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `bytes` to `path` through a temp file in the same directory and a rename, so readers
/// see the old content or the new, never half of it. The file gets `mode` (less the umask).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let tmp =
        dir.join(format!(".{}.tmp-{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    let result = (|| {
        // A temp file left by a killed dpe that had our pid would keep its old mode (`mode` only
        // applies to a file being created), and a 0600 secret would be published as whatever
        // that was: remove it and create the file afresh.
        match std::fs::remove_file(&tmp) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(err) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", path, err));
    }
    Ok(())
}

/// Refuses `path` when it, or the directory holding it, is group- or world-writable: anyone
/// else who could write it could run code as this user.
pub fn check_not_writable_by_others(what: &str, path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    for candidate in [path, dir] {
        let Ok(meta) = std::fs::metadata(candidate) else { continue };
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 {
            let who = if mode & 0o002 != 0 { "everyone" } else { "its group" };
            return Err(Error::new(format!(
                "refusing {what} `{}`: `{}` is writable by {who} (mode {:o}), so someone else could change what runs",
                path.display(),
                candidate.display(),
                mode & 0o7777
            ))
            .with_help(format!("if you trust it, run `chmod go-w {}`", candidate.display())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_gives_the_mode_even_over_a_stale_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secret.json");
        let stale = tmp.path().join(format!(".secret.json.tmp-{}", std::process::id()));
        std::fs::write(&stale, "old").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!stale.exists());
    }
}

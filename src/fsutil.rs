//! Small filesystem helpers: atomic writes and the permission check that refuses files others
//! could have written.

use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `bytes` to `path` through a temp file in the same directory and a rename, so readers
/// see the old content or the new, never half of it.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let tmp =
        dir.join(format!(".{}.tmp-{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
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

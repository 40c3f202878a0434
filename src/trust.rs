//! Trust for workspace and project hooks.
//!
//! Hooks from a workspace run on the host, so a freshly cloned workspace must not run them
//! until the user says so. `dpe trust` records the sha256 of every hook file of the workspace
//! (its `hooks/` and each project's `hooks/`) in the user's state dir; a hook runs only while
//! its content still has the recorded hash, so a changed hook needs trusting again.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const FILE: &str = "trust.json";
const LOCK_FILE: &str = "trust.lock";

/// Recorded hashes, keyed by the hook's absolute path.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct TrustStore {
    hooks: BTreeMap<PathBuf, String>,
}

impl TrustStore {
    pub fn load(state_dir: &Path) -> TrustStore {
        std::fs::read(state_dir.join(FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn is_trusted(&self, hook: &Path) -> bool {
        match (self.hooks.get(hook), hash_file(hook)) {
            (Some(recorded), Ok(current)) => *recorded == current,
            _ => false,
        }
    }

    /// Records `hooks` as trusted in the store of `state_dir` (written atomically, 0600).
    pub fn trust(state_dir: &Path, hooks: &[PathBuf]) -> Result<()> {
        // Two `dpe trust` at once (in two workspaces) would each write back what it had read and
        // drop the other's hooks: read, change and write the store under a lock.
        std::fs::create_dir_all(state_dir).map_err(|e| Error::io("create directory", state_dir, e))?;
        let lock_path = state_dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        lock.lock().map_err(|e| Error::io("lock", &lock_path, e))?;
        let mut store = TrustStore::load(state_dir);
        for hook in hooks {
            let hash = hash_file(hook).map_err(|e| Error::io("read", hook, e))?;
            store.hooks.insert(hook.clone(), hash);
        }
        let text = serde_json::to_vec_pretty(&store).expect("the trust store serialises");
        crate::fsutil::write_atomic(&state_dir.join(FILE), &text, 0o600)
    }
}

pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusting_adds_to_what_is_on_disk_and_a_change_needs_trusting_again() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let (a, b) = (tmp.path().join("pre-run"), tmp.path().join("post-run"));
        std::fs::write(&a, "echo a").unwrap();
        std::fs::write(&b, "echo b").unwrap();
        TrustStore::trust(&state, std::slice::from_ref(&a)).unwrap();
        TrustStore::trust(&state, std::slice::from_ref(&b)).unwrap();
        let store = TrustStore::load(&state);
        assert!(store.is_trusted(&a) && store.is_trusted(&b));
        std::fs::write(&a, "echo changed").unwrap();
        assert!(!TrustStore::load(&state).is_trusted(&a));
    }
}

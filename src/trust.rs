//! Trust for workspace and project hooks.
//!
//! Hooks from a workspace run on the host, so a freshly cloned workspace must not run them
//! until the user says so. `dpe trust` records the sha256 of every hook file of the workspace
//! (its `hooks/` and each project's `hooks/`) in the user's state dir; a hook runs only while
//! its content still has the recorded hash, so a changed hook needs trusting again.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FILE: &str = "trust.json";

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

    /// Records `hooks` as trusted and saves the store (atomically, 0600).
    pub fn trust(&mut self, state_dir: &Path, hooks: &[PathBuf]) -> Result<()> {
        for hook in hooks {
            let hash = hash_file(hook).map_err(|e| Error::io("read", hook, e))?;
            self.hooks.insert(hook.clone(), hash);
        }
        let text = serde_json::to_vec_pretty(self).expect("the trust store serialises");
        crate::fsutil::write_atomic(&state_dir.join(FILE), &text, 0o600)
    }
}

pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

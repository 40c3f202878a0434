//! Trust for workspace and project hooks and configuration.
//!
//! Hooks from a workspace run on the host, so a freshly cloned workspace must not run them
//! until the user says so; its configuration may reach the host too (a bind mount of `/`, a
//! notebook published on every address), which dpe-plugin's `reach` module refuses unless the
//! configuration is trusted. `dpe trust` records the sha256 of every hook file of the workspace
//! (its `hooks/` and each project's `hooks/`) and of every configuration file (the workspace's
//! `dpe.toml` and each project's) in the user's state dir; a file is trusted only while its
//! content still has the recorded hash, so a changed file needs trusting again. It records the
//! workspace itself too, with what each project reached outside itself at that moment (the
//! real places its settings led to): a folder that becomes a link elsewhere later is a new
//! reach, refused until the user trusts again.

use crate::error::Result;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const FILE: &str = "trust.json";
const LOCK_FILE: &str = "trust.lock";

/// Recorded hashes, keyed by the file's absolute path.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct TrustStore {
    hooks: BTreeMap<PathBuf, String>,
    /// Configuration files, keyed by their real path (a workspace reached through a symbolic
    /// link or `-C ../x` is the same workspace). Absent from stores written before it existed.
    #[serde(default)]
    config: BTreeMap<PathBuf, String>,
    /// Trusted workspaces by real root, each with what its projects reached outside themselves
    /// when trusted (`""` for the workspace without a project), as `reach::Finding::reach`
    /// writes it. The workspace itself is recorded, so one without any `dpe.toml` is trusted
    /// only once `dpe trust` ran in it.
    #[serde(default)]
    workspaces: BTreeMap<PathBuf, Reaches>,
}

/// What each project of a workspace reaches outside itself, by project name.
pub type Reaches = BTreeMap<String, Vec<String>>;

/// Whether a context's configuration is trusted, and what it may reach if so.
pub struct ConfigTrust {
    pub trusted: bool,
    pub accepted_reaches: Vec<String>,
}

/// What `dpe trust` records for a workspace.
pub struct Files<'a> {
    pub workspace: &'a Path,
    pub hooks: &'a [PathBuf],
    pub config: &'a [PathBuf],
    pub reaches: Reaches,
}

impl TrustStore {
    pub fn load(state_dir: &Path) -> TrustStore {
        std::fs::read(state_dir.join(FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn is_trusted(&self, hook: &Path) -> bool {
        matches_hash(self.hooks.get(hook), hook)
    }

    pub fn is_config_trusted(&self, file: &Path) -> bool {
        matches_hash(self.config.get(&real_path(file)), file)
    }

    /// Whether `file`, whose text dpe read and hashed as `hash`, is recorded with that content:
    /// the text judged is the one that was parsed, and the file is not read a second time.
    fn is_config_text_trusted(&self, file: &Path, hash: &str) -> bool {
        self.config.get(&real_path(file)).is_some_and(|recorded| recorded == hash)
    }

    /// Whether the configuration of `workspace` is trusted: the workspace was recorded by
    /// `dpe trust` and every file of `files` but the user's own still has its recorded hash;
    /// with what `project` (or the workspace) reached when trusted. Outside a workspace only the
    /// user's own file is read, and nothing is loaded.
    pub fn config_trusted(
        state_dir: &Path,
        files: &[PathBuf],
        hashes: &[String],
        user_config: &Path,
        workspace: Option<&Path>,
        project: Option<&str>,
    ) -> ConfigTrust {
        let Some(root) = workspace else { return ConfigTrust { trusted: true, accepted_reaches: Vec::new() } };
        let store = TrustStore::load(state_dir);
        let Some(reaches) = store.workspaces.get(&real_path(root)) else {
            return ConfigTrust { trusted: false, accepted_reaches: Vec::new() };
        };
        let trusted = files
            .iter()
            .zip(hashes)
            .filter(|(file, _)| file.as_path() != user_config)
            .all(|(file, hash)| store.is_config_text_trusted(file, hash));
        let accepted_reaches =
            if trusted { reaches.get(project.unwrap_or("")).cloned().unwrap_or_default() } else { Vec::new() };
        ConfigTrust { trusted, accepted_reaches }
    }

    /// What `dpe trust` recorded as reached by the projects of `workspace`, if it was trusted.
    pub fn reaches(&self, workspace: &Path) -> Option<&Reaches> {
        self.workspaces.get(&real_path(workspace))
    }

    /// Records `files` as trusted in the store of `state_dir` (written atomically, 0600).
    pub fn trust(state_dir: &Path, files: Files) -> Result<()> {
        // Two `dpe trust` at once (in two workspaces) would each write back what it had read and
        // drop the other's hooks: read, change and write the store under a lock.
        std::fs::create_dir_all(state_dir).map_err(|e| crate::error::io("create directory", state_dir, e))?;
        let lock_path = state_dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| crate::error::io("open", &lock_path, e))?;
        lock.lock().map_err(|e| crate::error::io("lock", &lock_path, e))?;
        let mut store = TrustStore::load(state_dir);
        for hook in files.hooks {
            let hash = hash_file(hook).map_err(|e| crate::error::io("read", hook, e))?;
            store.hooks.insert(hook.clone(), hash);
        }
        for file in files.config {
            let hash = hash_file(file).map_err(|e| crate::error::io("read", file, e))?;
            store.config.insert(real_path(file), hash);
        }
        store.workspaces.insert(real_path(files.workspace), files.reaches);
        let text = serde_json::to_vec_pretty(&store).expect("the trust store serialises");
        crate::fsutil::write_atomic(&state_dir.join(FILE), &text, 0o600)
    }
}

fn matches_hash(recorded: Option<&String>, path: &Path) -> bool {
    match (recorded, hash_file(path)) {
        (Some(recorded), Ok(current)) => *recorded == current,
        _ => false,
    }
}

fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn hash_file(path: &Path) -> std::io::Result<String> {
    Ok(hash_bytes(&std::fs::read(path)?))
}

/// The sha256 the store records, of content already in memory.
pub fn hash_bytes(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
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
        let files = |hooks| Files { workspace: tmp.path(), hooks, config: &[], reaches: Reaches::new() };
        TrustStore::trust(&state, files(std::slice::from_ref(&a))).unwrap();
        TrustStore::trust(&state, files(std::slice::from_ref(&b))).unwrap();
        let store = TrustStore::load(&state);
        assert!(store.is_trusted(&a) && store.is_trusted(&b));
        std::fs::write(&a, "echo changed").unwrap();
        assert!(!TrustStore::load(&state).is_trusted(&a));
    }

    #[test]
    fn configuration_is_trusted_by_real_path_and_the_users_own_always() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let (user, ws) = (tmp.path().join("config.toml"), tmp.path().join("ws/dpe.toml"));
        std::fs::create_dir_all(tmp.path().join("ws")).unwrap();
        std::fs::write(&ws, "image = \"scipy\"\n").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("ws"), tmp.path().join("link")).unwrap();
        let files = [user.clone(), ws.clone()];
        let root = tmp.path().join("ws");
        // What config::load gives: the hash of each file's text as read (a missing one: none).
        let hashes =
            |files: &[PathBuf]| -> Vec<String> { files.iter().map(|f| hash_file(f).unwrap_or_default()).collect() };
        let trusted = |files: &[PathBuf], root: &Path| {
            TrustStore::config_trusted(&state, files, &hashes(files), &user, Some(root), Some("a")).trusted
        };
        let user_only = std::slice::from_ref(&user);
        assert!(TrustStore::config_trusted(&state, user_only, &hashes(user_only), &user, None, None).trusted);
        assert!(!trusted(&files, &root));
        // A workspace with no file of its own is trusted only once recorded.
        assert!(!trusted(std::slice::from_ref(&user), &root));
        let reaches = Reaches::from([("a".to_string(), vec!["`requirements` copies `/r` into the image".to_string()])]);
        TrustStore::trust(&state, Files { workspace: &root, hooks: &[], config: std::slice::from_ref(&ws), reaches })
            .unwrap();
        assert!(trusted(&files, &root));
        assert!(trusted(std::slice::from_ref(&user), &root));
        assert!(trusted(&[tmp.path().join("link/dpe.toml")], &tmp.path().join("link")));
        let trust = TrustStore::config_trusted(&state, &files, &hashes(&files), &user, Some(&root), Some("a"));
        assert_eq!(trust.accepted_reaches, ["`requirements` copies `/r` into the image"]);
        let other = TrustStore::config_trusted(&state, &files, &hashes(&files), &user, Some(&root), Some("b"));
        assert!(other.accepted_reaches.is_empty());
        // A hook's hash does not trust a configuration file of the same content, nor the reverse.
        assert!(!TrustStore::load(&state).is_trusted(&ws));
        std::fs::write(&ws, "image = \"other\"\n").unwrap();
        assert!(!trusted(&files, &root));
    }
}

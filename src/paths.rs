//! Where dpe keeps things on this machine: per-user config, data, state and cache directories
//! (platform defaults from `dirs`, each overridable by a `DPE_*` variable), and the directory
//! installed plugins live in.

use dpe_plugin::env;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[derive(Debug, Clone)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub plugin_dir: PathBuf,
}

impl Paths {
    pub fn from_env() -> Paths {
        let pick = |var: &str, base: Option<PathBuf>| -> PathBuf {
            match std::env::var_os(var) {
                Some(value) if !value.is_empty() => PathBuf::from(value),
                _ => base.unwrap_or_else(std::env::temp_dir).join("dpe"),
            }
        };
        let config_dir = pick(env::CONFIG_DIR, dirs::config_dir());
        let data_dir = pick(env::DATA_DIR, dirs::data_dir());
        // macOS and Windows have no state dir; the data dir is the closest thing there.
        let state_dir = pick(env::STATE_DIR, dirs::state_dir().or_else(dirs::data_local_dir));
        let cache_dir = pick(env::CACHE_DIR, dirs::cache_dir());
        let plugin_dir = match std::env::var_os(env::PLUGIN_DIR) {
            Some(value) if !value.is_empty() => PathBuf::from(value),
            _ => data_dir.join("plugins"),
        };
        Paths { config_dir, data_dir, state_dir, cache_dir, plugin_dir }
    }

    /// The user's configuration file (the second config layer).
    pub fn user_config(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }
}

/// The running dpe executable, looked up once: dispatch needs it twice (plugins beside it, and
/// `DPE_BIN` for the plugin) and completion once per plugin lookup.
pub fn dpe_exe() -> std::io::Result<&'static Path> {
    static EXE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match EXE.get_or_init(|| std::env::current_exe().map_err(|e| e.to_string())) {
        Ok(path) => Ok(path),
        Err(message) => Err(std::io::Error::other(message.clone())),
    }
}

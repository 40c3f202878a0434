//! Names of the environment variables dpe reads and sets.
//!
//! Every plugin process (and every hook) gets the `DPE_*` variables below. Those marked "also
//! read" are inputs too: dpe honours them when set, which is how a plugin's call back into
//! `dpe docker …` resolves the same workspace and project without re-parsing anything.

/// Absolute path of the dpe binary to call back (`$DPE_BIN docker run …`).
pub const BIN: &str = "DPE_BIN";
/// The protocol version, see [`crate::PROTOCOL_VERSION`].
pub const PROTOCOL: &str = "DPE_PROTOCOL";
/// dpe's own version.
pub const VERSION: &str = "DPE_VERSION";
/// Workspace root (also read: overrides the upward search for `dpe.toml`).
pub const WORKSPACE: &str = "DPE_WORKSPACE";
/// Selected project name (also read: the default project).
pub const PROJECT: &str = "DPE_PROJECT";
/// Selected project directory.
pub const PROJECT_DIR: &str = "DPE_PROJECT_DIR";
/// Name of the plugin being run.
pub const PLUGIN: &str = "DPE_PLUGIN";
/// Per-user state (port registry, tokens, trust records). Also read: overrides the default.
pub const STATE_DIR: &str = "DPE_STATE_DIR";
/// Per-user data (installed plugins live in `plugins/` below it). Also read.
pub const DATA_DIR: &str = "DPE_DATA_DIR";
/// Per-user configuration (`config.toml`, `hooks/`). Also read.
pub const CONFIG_DIR: &str = "DPE_CONFIG_DIR";
/// Per-user cache (plugin manifests). Also read.
pub const CACHE_DIR: &str = "DPE_CACHE_DIR";
/// Installed-plugin directory. Also read: overrides `$DPE_DATA_DIR/plugins`.
pub const PLUGIN_DIR: &str = "DPE_PLUGIN_DIR";
/// Verbosity: 0 normal, 1 for `-v`, 2 for `-vv`. Also read.
pub const VERBOSE: &str = "DPE_VERBOSE";
/// `auto`, `always` or `never`. Also read.
pub const COLOR: &str = "DPE_COLOR";
/// `1` when the user asked for JSON output (`--json`). Also read.
pub const JSON: &str = "DPE_JSON";
/// `1` when hooks are skipped (`--no-hooks`). Also read.
pub const NO_HOOKS: &str = "DPE_NO_HOOKS";
/// The whole resolved context as JSON ([`crate::Context`]); empty when it comes in
/// [`CONTEXT_FILE`] instead.
pub const CONTEXT: &str = "DPE_CONTEXT";
/// Set (non-empty) instead of [`CONTEXT`] when the context is too large for one environment
/// variable: the path of a file holding the JSON (`/proc/self/fd/N`: a sealed, nameless
/// in-memory file the process inherits, so nothing lies on disk and nothing needs removing).
pub const CONTEXT_FILE: &str = "DPE_CONTEXT_FILE";

/// Set for hooks only: the docker verb (`run`, `build`, `compose`, …).
pub const HOOK_VERB: &str = "DPE_DOCKER_VERB";
/// Set for hooks only: the docker argv, NUL-free, as a JSON array of strings.
pub const HOOK_ARGV: &str = "DPE_DOCKER_ARGV";
/// Set for post hooks only: docker's exit status (128+N for signal N).
pub const HOOK_STATUS: &str = "DPE_DOCKER_STATUS";
/// Set for hooks only: `pre` or `post`.
pub const HOOK_PHASE: &str = "DPE_HOOK_PHASE";

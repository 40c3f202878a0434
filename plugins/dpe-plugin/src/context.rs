//! The resolved project context dpe hands to every plugin.
//!
//! It travels as JSON in `DPE_CONTEXT` (and, for the most used fields, as plain `DPE_*`
//! variables), so it works when dpe `exec`s the plugin and leaves no file behind. A context too
//! large for one variable (a big `dpe.toml`) comes instead as an inherited in-memory file named
//! by `DPE_CONTEXT_FILE`; [`Context::from_env`] reads either. The JSON carries `protocol`;
//! readers refuse a different major protocol.

use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything a plugin needs to know about where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// The protocol version, see [`crate::PROTOCOL_VERSION`].
    pub protocol: u32,
    /// dpe's version.
    pub dpe_version: String,
    /// The dpe binary to call back (`dpe docker …`).
    pub dpe_bin: PathBuf,
    /// The plugin being run, if any.
    pub plugin: Option<String>,
    /// The workspace root (the directory holding the workspace `dpe.toml`).
    pub workspace: Option<PathBuf>,
    /// The selected project.
    pub project: Option<ProjectRef>,
    /// The layered configuration for the selected project (or the workspace when none is).
    pub config: Config,
    /// The configuration files that were read, lowest layer first.
    pub config_files: Vec<PathBuf>,
    /// Whether the workspace's configuration is trusted: every file of `config_files` other
    /// than the user's own `config.toml` is recorded by `dpe trust` with its current content
    /// and the workspace itself was recorded (so one without any `dpe.toml` is not trusted
    /// until `dpe trust` ran in it). Settings that reach outside the project run only
    /// when it is true; [`crate::reach::check`] applies that rule. A dpe older than this field
    /// sends none, which reads as `false`: not trusted.
    #[serde(default)]
    pub config_trusted: bool,
    /// What the selected project (or the workspace, with none) reached outside itself when the
    /// user ran `dpe trust`, as [`crate::reach::Finding::reach`] writes it. A trusted
    /// configuration may reach these and nothing else: a folder it names that has become a link
    /// elsewhere since is refused until trusted again. Empty when absent (an older dpe).
    #[serde(default)]
    pub accepted_reaches: Vec<String>,
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
    pub config_dir: PathBuf,
    pub cache_dir: PathBuf,
    /// 0 normal, 1 `-v`, 2 `-vv`.
    pub verbosity: u8,
    /// `auto`, `always` or `never`.
    pub color: String,
    /// Whether the user asked for JSON output.
    pub json: bool,
    /// Whether hooks are skipped.
    pub no_hooks: bool,
}

/// A project: a folder under the workspace's `projects/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRef {
    pub name: String,
    pub dir: PathBuf,
}

impl Context {
    /// Reads the context dpe passed: the file named by `DPE_CONTEXT_FILE` when that is set,
    /// else `DPE_CONTEXT`.
    pub fn from_env() -> Result<Context, String> {
        use crate::env::{CONTEXT, CONTEXT_FILE};
        if let Some(path) = std::env::var_os(CONTEXT_FILE).filter(|p| !p.is_empty()) {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!("cannot read the dpe context from `{}` (`{CONTEXT_FILE}`): {e}", path.to_string_lossy())
            })?;
            return Context::from_json(&text);
        }
        let text = std::env::var(CONTEXT)
            .ok()
            .filter(|text| !text.is_empty())
            .ok_or_else(|| format!("`{CONTEXT}` is not set: no dpe context"))?;
        Context::from_json(&text)
    }

    /// Parses a context, refusing another protocol version.
    pub fn from_json(text: &str) -> Result<Context, String> {
        #[derive(Deserialize)]
        struct Probe {
            protocol: u32,
        }
        let probe: Probe = serde_json::from_str(text).map_err(|e| format!("the dpe context is not valid JSON: {e}"))?;
        if probe.protocol != crate::PROTOCOL_VERSION {
            return Err(format!(
                "dpe speaks plugin protocol {} but this plugin speaks protocol {}",
                probe.protocol,
                crate::PROTOCOL_VERSION
            ));
        }
        serde_json::from_str(text).map_err(|e| format!("the dpe context does not parse: {e}"))
    }

    /// The selected project, or an error that tells the user how to choose one.
    pub fn require_project(&self) -> Result<&ProjectRef, String> {
        self.project.as_ref().ok_or_else(|| {
            "no project selected\nhelp: name one (`dpe jupyter project_a`), pass `--project NAME`, or run inside a project folder".to_string()
        })
    }

    /// Whether output should be coloured.
    pub fn color_enabled(&self, is_terminal: bool) -> bool {
        match self.color.as_str() {
            "always" => true,
            "never" => false,
            _ => is_terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Context {
        Context {
            protocol: crate::PROTOCOL_VERSION,
            dpe_version: "0.1.0".into(),
            dpe_bin: "/usr/bin/dpe".into(),
            plugin: Some("hello".into()),
            workspace: Some("/w".into()),
            project: Some(ProjectRef { name: "a".into(), dir: "/w/projects/a".into() }),
            config: Config::default(),
            config_files: vec![],
            config_trusted: false,
            accepted_reaches: vec![],
            state_dir: "/s".into(),
            data_dir: "/d".into(),
            config_dir: "/c".into(),
            cache_dir: "/k".into(),
            verbosity: 0,
            color: "auto".into(),
            json: false,
            no_hooks: false,
        }
    }

    #[test]
    fn round_trip() {
        let text = serde_json::to_string(&sample()).unwrap();
        assert_eq!(Context::from_json(&text).unwrap(), sample());
    }

    #[test]
    fn the_trust_field_is_optional_both_ways_and_absent_means_untrusted() {
        let mut value = serde_json::to_value(sample()).unwrap();
        value["config_trusted"] = true.into();
        assert!(Context::from_json(&value.to_string()).unwrap().config_trusted);
        value.as_object_mut().unwrap().remove("config_trusted");
        assert!(!Context::from_json(&value.to_string()).unwrap().config_trusted);
        value.as_object_mut().unwrap().remove("accepted_reaches");
        assert!(Context::from_json(&value.to_string()).unwrap().accepted_reaches.is_empty());
        // The other way round: a plugin built before a field existed reads a context that has
        // it, since unknown fields are ignored (this is how `config_trusted` was added).
        value["a_field_from_a_newer_dpe"] = true.into();
        assert_eq!(Context::from_json(&value.to_string()).unwrap(), sample());
    }

    #[test]
    fn other_protocol_is_refused_with_both_numbers() {
        let mut value = serde_json::to_value(sample()).unwrap();
        value["protocol"] = 99.into();
        let err = Context::from_json(&value.to_string()).unwrap_err();
        assert!(err.contains("99") && err.contains(&crate::PROTOCOL_VERSION.to_string()), "{err}");
    }
}

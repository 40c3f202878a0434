//! What a plugin says about itself.
//!
//! An executable plugin prints this as JSON when called with `--dpe-manifest`; a dynamic
//! library returns it from its function table. dpe caches it keyed by the file's path, size and
//! modification time, so dispatch never pays for the handshake.

use serde::{Deserialize, Serialize};

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The command name: `jupyter` for `dpe jupyter`.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// The dpe versions it works with, as a semver requirement (`^0.1`, `>=0.1, <0.3`).
    pub dpe: String,
    /// The protocol version it speaks; see [`crate::PROTOCOL_VERSION`].
    #[serde(default = "default_protocol")]
    pub protocol: u32,
    /// One line for `dpe help` and completion.
    #[serde(default)]
    pub description: String,
    /// Whether the first positional argument may name a project (`dpe jupyter project_a`).
    #[serde(default)]
    pub takes_project: bool,
    /// Subcommands, for completion and help.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcommands: Vec<Subcommand>,
    /// Options the plugin accepts at its top level, for completion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionSpec>,
    /// Whether the plugin completes its own arguments (`--dpe-complete`).
    #[serde(default)]
    pub complete: bool,
}

fn default_protocol() -> u32 {
    crate::PROTOCOL_VERSION
}

/// A plugin subcommand (`dpe jupyter stop PROJECT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subcommand {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Whether its first positional argument names a project.
    #[serde(default)]
    pub takes_project: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionSpec>,
}

/// An option, for completion (`--detach`, `--port PORT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    /// The long form with its dashes: `--detach`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Whether it takes a value.
    #[serde(default)]
    pub takes_value: bool,
}

impl OptionSpec {
    /// An option for a manifest: `OptionSpec::new("--port", "host port", true)`.
    pub fn new(name: &str, description: &str, takes_value: bool) -> OptionSpec {
        OptionSpec { name: name.into(), description: description.into(), takes_value }
    }
}

impl Manifest {
    /// A manifest for a plugin that published none: it runs, with defaults.
    pub fn default_for(name: &str) -> Manifest {
        Manifest {
            name: name.to_string(),
            version: "0.0.0".to_string(),
            dpe: "*".to_string(),
            protocol: crate::PROTOCOL_VERSION,
            description: String::new(),
            takes_project: false,
            subcommands: Vec::new(),
            options: Vec::new(),
            complete: false,
        }
    }

    /// The subcommand named `name`, if the manifest declares it.
    pub fn subcommand(&self, name: &str) -> Option<&Subcommand> {
        self.subcommands.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_manifest_gets_defaults() {
        let m: Manifest = serde_json::from_str(r#"{"name":"hello","version":"1.0.0","dpe":"^0.1"}"#).unwrap();
        assert_eq!(m.protocol, crate::PROTOCOL_VERSION);
        assert!(!m.takes_project);
        assert!(m.subcommands.is_empty());
    }

    #[test]
    fn unknown_manifest_field_is_refused() {
        let err =
            serde_json::from_str::<Manifest>(r#"{"name":"hello","version":"1.0.0","dpe":"^0.1","takes_projet":true}"#)
                .unwrap_err();
        assert!(err.to_string().contains("takes_projet"), "{err}");
    }
}

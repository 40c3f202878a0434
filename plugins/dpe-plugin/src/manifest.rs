//! What a plugin says about itself.
//!
//! An executable plugin prints this as JSON when called with `--dpe-manifest`; a dynamic
//! library returns it from its function table. dpe caches it keyed by the file's path, size and
//! modification time, so dispatch never pays for the handshake.
//!
//! Fields this crate does not know are ignored, and [`parse`] names them so dpe can warn: a
//! plugin written for a newer dpe must still run under an older one. What a plugin may say is
//! bounded ([`MAX_MANIFEST_BYTES`], [`MAX_TEXT_BYTES`], [`MAX_ENTRIES`]): a manifest is read on
//! listing, help and completion, and a plugin must not be able to make those slow or huge.

use serde::{Deserialize, Serialize};

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The most bytes of manifest JSON dpe reads from a plugin.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;
/// The most bytes of any one text field (a name, a version, a description).
pub const MAX_TEXT_BYTES: usize = 4 * 1024;
/// The most subcommands, or options of one command, a manifest may list.
pub const MAX_ENTRIES: usize = 500;

/// The fields this version knows, per object: everything else is reported by [`parse`].
const MANIFEST_FIELDS: &[&str] =
    &["name", "version", "dpe", "protocol", "description", "takes_project", "subcommands", "options", "complete"];
const SUBCOMMAND_FIELDS: &[&str] = &["name", "description", "takes_project", "options"];
const OPTION_FIELDS: &[&str] = &["name", "description", "takes_value"];

/// Reads a manifest from a plugin's JSON: the manifest, and the fields it holds that this
/// version does not know (as paths, `subcommands[0].aliases`), which were ignored. Refuses a
/// document over [`MAX_MANIFEST_BYTES`] and fields over the other limits, naming the field.
pub fn parse(text: &str) -> Result<(Manifest, Vec<String>), String> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(format!("it is over {} KiB (the most dpe reads)", MAX_MANIFEST_BYTES / 1024));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let manifest: Manifest = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    manifest.check_limits()?;
    let mut unknown = Vec::new();
    unknown_fields(&value, "", MANIFEST_FIELDS, &mut unknown);
    for (list, fields) in [("subcommands", SUBCOMMAND_FIELDS), ("options", OPTION_FIELDS)] {
        for (i, item) in value[list].as_array().into_iter().flatten().enumerate() {
            unknown_fields(item, &format!("{list}[{i}]."), fields, &mut unknown);
            for (j, option) in item["options"].as_array().into_iter().flatten().enumerate() {
                unknown_fields(option, &format!("{list}[{i}].options[{j}]."), OPTION_FIELDS, &mut unknown);
            }
        }
    }
    Ok((manifest, unknown))
}

fn unknown_fields(value: &serde_json::Value, prefix: &str, known: &[&str], out: &mut Vec<String>) {
    let keys = value.as_object().into_iter().flat_map(|object| object.keys());
    out.extend(keys.filter(|key| !known.contains(&key.as_str())).map(|key| format!("{prefix}{key}")));
}

impl Manifest {
    /// Checks every field against [`MAX_TEXT_BYTES`] and [`MAX_ENTRIES`]; the error names the
    /// first field over its limit.
    pub fn check_limits(&self) -> Result<(), String> {
        let text = |path: &str, value: &str| {
            if value.len() > MAX_TEXT_BYTES {
                return Err(format!("`{path}` is {} bytes, over the limit of {MAX_TEXT_BYTES}", value.len()));
            }
            Ok(())
        };
        let count = |path: &str, len: usize| {
            if len > MAX_ENTRIES {
                return Err(format!("`{path}` lists {len} entries, over the limit of {MAX_ENTRIES}"));
            }
            Ok(())
        };
        let options = |path: &str, options: &[OptionSpec]| {
            count(path, options.len())?;
            options.iter().enumerate().try_for_each(|(i, option)| {
                text(&format!("{path}[{i}].name"), &option.name)?;
                text(&format!("{path}[{i}].description"), &option.description)
            })
        };
        text("name", &self.name)?;
        text("version", &self.version)?;
        text("dpe", &self.dpe)?;
        text("description", &self.description)?;
        options("options", &self.options)?;
        count("subcommands", self.subcommands.len())?;
        self.subcommands.iter().enumerate().try_for_each(|(i, sub)| {
            text(&format!("subcommands[{i}].name"), &sub.name)?;
            text(&format!("subcommands[{i}].description"), &sub.description)?;
            options(&format!("subcommands[{i}].options"), &sub.options)
        })
    }

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
    fn unknown_fields_are_named_and_ignored_so_newer_plugins_still_run() {
        let (manifest, unknown) = parse(
            r#"{"name":"hello","version":"1.0.0","dpe":"^0.1","aliases":["hi"],
                "subcommands":[{"name":"loud","hidden":true,"options":[{"name":"--x","short":"-x"}]}],
                "options":[{"name":"--times","takes_value":true,"default":"1"}]}"#,
        )
        .unwrap();
        assert_eq!(manifest.subcommands[0].name, "loud");
        assert_eq!(
            unknown,
            ["aliases", "subcommands[0].hidden", "subcommands[0].options[0].short", "options[0].default"]
        );
    }

    #[test]
    fn the_known_field_lists_match_the_types() {
        let option = OptionSpec::new("--x", "x", true);
        let sub = Subcommand {
            name: "s".into(),
            description: "d".into(),
            takes_project: true,
            options: vec![option.clone()],
        };
        let manifest = Manifest { subcommands: vec![sub], options: vec![option], ..Manifest::default_for("x") };
        let value = serde_json::to_value(&manifest).unwrap();
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        let sorted = |list: &[&str]| {
            let mut list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            list.sort();
            list
        };
        assert_eq!(keys(&value), sorted(MANIFEST_FIELDS));
        assert_eq!(keys(&value["subcommands"][0]), sorted(SUBCOMMAND_FIELDS));
        assert_eq!(keys(&value["options"][0]), sorted(OPTION_FIELDS));
    }

    #[test]
    fn oversized_manifests_and_fields_are_refused_by_name() {
        let huge = "x".repeat(MAX_MANIFEST_BYTES);
        let text = format!(r#"{{"name":"hello","version":"1.0.0","dpe":"^0.1","description":"{huge}"}}"#);
        assert_eq!(parse(&text).unwrap_err(), "it is over 256 KiB (the most dpe reads)");
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        let text = format!(
            r#"{{"name":"hello","version":"1.0.0","dpe":"^0.1","subcommands":[{{"name":"a","options":[{{"name":"--a","description":"{long}"}}]}}]}}"#
        );
        assert_eq!(
            parse(&text).unwrap_err(),
            "`subcommands[0].options[0].description` is 4097 bytes, over the limit of 4096"
        );
    }
}

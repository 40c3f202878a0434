//! The schema of `dpe.toml`, shared by the core (which reads, layers and validates it) and the
//! plugins (which receive the resolved result in the context).
//!
//! The same schema serves every layer: built-in defaults < user `config.toml` < workspace
//! `dpe.toml` < project `dpe.toml` < command-line flags. Tables merge key by key; any other
//! value in a later layer replaces the earlier one. Unknown keys are errors, so a typo is
//! reported instead of silently ignored. Relative paths (`dockerfile`, `requirements`,
//! `ca_certificates`, a service's `build`) are made absolute by the core against the directory
//! of the file that declared them, so plugins always see absolute paths.
//!
//! Third-party plugins keep their own settings under `[plugins.NAME]`, passed through as data.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// One project's (or a workspace's) resolved configuration. Serialised (into the context
/// plugins get) with every key that has a fixed default, so a plugin in any language reads
/// the same values dpe would; the optional keys whose default depends on the project
/// (`image`, `dockerfile`, `requirements`, `gpu_devices`) are absent when unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base image: a Jupyter Docker Stacks shorthand (`scipy`, `datascience`, `pytorch`,
    /// `tensorflow`, `pyspark`) or any image name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A project Dockerfile; when set it replaces `image` and the package lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// A pip requirements file baked into the image (default: the project's
    /// `requirements.txt` when it exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<String>,
    /// Extra pip requirement specifiers baked into the image.
    #[serde(default)]
    pub python_packages: Vec<String>,
    /// Debian/Ubuntu packages installed with apt-get into the image.
    #[serde(default)]
    pub apt_packages: Vec<String>,
    /// Environment variables for builds and containers.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Extra container ports to publish (each gets a host port from the registry).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Whether the project uses an NVIDIA GPU.
    #[serde(default)]
    pub gpu: GpuMode,
    /// Which GPUs: `"all"` (default), a count, or a list of indices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_devices: Option<GpuDevices>,
    /// Extra CA certificates (files or directories of `.crt`/`.pem`) trusted inside the image,
    /// for TLS-intercepting proxies.
    #[serde(default)]
    pub ca_certificates: Vec<String>,
    /// The container engine.
    #[serde(default)]
    pub engine: EngineConfig,
    /// The Jupyter server.
    #[serde(default)]
    pub jupyter: JupyterConfig,
    /// Hooks around docker calls.
    #[serde(default)]
    pub hooks: HooksConfig,
    /// Extra containers this project runs beside its environment (`dpe compose`).
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    /// Workspace-level selection for `dpe compose`.
    #[serde(default)]
    pub compose: ComposeConfig,
    /// Settings of third-party plugins, `[plugins.NAME]`, passed through untouched.
    #[serde(default)]
    pub plugins: BTreeMap<String, serde_json::Value>,
}

/// `[engine]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// The engine binary: `docker` (default) or e.g. `podman`.
    #[serde(default = "default_engine")]
    pub program: String,
    /// The compose program: `auto` (default: `docker compose` when the plugin answers, else
    /// `docker-compose`), `plugin` or `standalone`.
    #[serde(default = "default_auto")]
    pub compose: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { program: default_engine(), compose: default_auto() }
    }
}

fn default_engine() -> String {
    "docker".to_string()
}

fn default_auto() -> String {
    "auto".to_string()
}

/// `[jupyter]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JupyterConfig {
    /// The server command; default: the image's `start-notebook.py` for Docker Stacks images,
    /// otherwise `jupyter lab` or `python3 -m notebook`, whichever the image has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The port the server listens on inside the container.
    #[serde(default = "default_jupyter_port")]
    pub port: u16,
    /// Host address the port is published on.
    #[serde(default = "default_bind")]
    pub bind: String,
    /// First host port tried for new projects.
    #[serde(default = "default_jupyter_port")]
    pub host_port_start: u16,
    /// Seconds to wait for the server to answer.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: u64,
}

impl Default for JupyterConfig {
    fn default() -> Self {
        JupyterConfig {
            command: None,
            port: default_jupyter_port(),
            bind: default_bind(),
            host_port_start: default_jupyter_port(),
            ready_timeout: default_ready_timeout(),
        }
    }
}

fn default_jupyter_port() -> u16 {
    8888
}

fn default_bind() -> String {
    "127.0.0.1".to_string()
}

fn default_ready_timeout() -> u64 {
    120
}

/// `[hooks]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Seconds one hook may run before it is stopped, with every process it started, and
    /// counted as failed: a hook that never exits must not hang every docker call.
    #[serde(default = "default_hook_timeout", deserialize_with = "positive_seconds")]
    pub timeout: u64,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig { timeout: default_hook_timeout() }
    }
}

fn default_hook_timeout() -> u64 {
    300
}

/// A number of seconds of at least 1: `0` would stop every hook before it starts.
fn positive_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    match u64::deserialize(deserializer)? {
        0 => Err(de::Error::custom("a timeout must be at least 1 second")),
        seconds => Ok(seconds),
    }
}

/// `[services.NAME]`: an extra container of a project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A build context directory (absolute after resolution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `NAME:/path` for a named volume or `./dir:/path` for a project folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Container ports to publish on the host (host ports come from the registry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
}

/// A service healthcheck, as in the Compose Specification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
}

/// `[compose]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeConfig {
    /// Projects `dpe compose up` starts when none are named.
    #[serde(default)]
    pub projects: Vec<String>,
}

/// `gpu = "off" | "auto" | "required"`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuMode {
    #[default]
    Off,
    Auto,
    Required,
}

impl GpuMode {
    pub fn is_off(&self) -> bool {
        *self == GpuMode::Off
    }
}

/// `gpu_devices = "all" | N | [i, j]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuDevices {
    All,
    Count(u32),
    Indices(Vec<u32>),
}

impl Serialize for GpuDevices {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            GpuDevices::All => serializer.serialize_str("all"),
            GpuDevices::Count(n) => serializer.serialize_u32(*n),
            GpuDevices::Indices(list) => list.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for GpuDevices {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = GpuDevices;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#""all", a number of GPUs, or a list of GPU indices"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GpuDevices, E> {
                if v == "all" {
                    Ok(GpuDevices::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GpuDevices, E> {
                u32::try_from(v).map(GpuDevices::Count).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GpuDevices, E> {
                u32::try_from(v)
                    .map(GpuDevices::Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<GpuDevices, A::Error> {
                let mut list = Vec::new();
                while let Some(index) = seq.next_element::<u32>()? {
                    list.push(index);
                }
                Ok(GpuDevices::Indices(list))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The Jupyter Docker Stacks shorthands and the images they stand for.
pub const STACK_SHORTHANDS: &[(&str, &str)] = &[
    ("scipy", "quay.io/jupyter/scipy-notebook:latest"),
    ("datascience", "quay.io/jupyter/datascience-notebook:latest"),
    ("pytorch", "quay.io/jupyter/pytorch-notebook:latest"),
    ("tensorflow", "quay.io/jupyter/tensorflow-notebook:latest"),
    ("pyspark", "quay.io/jupyter/pyspark-notebook:latest"),
];

/// The image a project's `image` names, with shorthands expanded.
pub fn expand_image(image: &str) -> String {
    STACK_SHORTHANDS
        .iter()
        .find(|(short, _)| *short == image)
        .map(|(_, full)| full.to_string())
        .unwrap_or_else(|| image.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_devices_forms() {
        #[derive(Deserialize)]
        struct T {
            d: GpuDevices,
        }
        let all: T = serde_json::from_str(r#"{"d":"all"}"#).unwrap();
        assert_eq!(all.d, GpuDevices::All);
        let two: T = serde_json::from_str(r#"{"d":2}"#).unwrap();
        assert_eq!(two.d, GpuDevices::Count(2));
        let list: T = serde_json::from_str(r#"{"d":[0,3]}"#).unwrap();
        assert_eq!(list.d, GpuDevices::Indices(vec![0, 3]));
        assert!(serde_json::from_str::<T>(r#"{"d":"some"}"#).is_err());
    }

    #[test]
    fn shorthands_expand_and_others_pass_through() {
        assert_eq!(expand_image("scipy"), "quay.io/jupyter/scipy-notebook:latest");
        assert_eq!(expand_image("python:3.12"), "python:3.12");
    }

    #[test]
    fn config_round_trips_through_json() {
        let mut config = Config { image: Some("scipy".into()), ..Config::default() };
        config.gpu = GpuMode::Auto;
        let text = serde_json::to_string(&config).unwrap();
        let back: Config = serde_json::from_str(&text).unwrap();
        assert_eq!(back, config);
    }
}

//! The schema of `dpe.toml`, shared by the core (which reads, layers and validates it) and the
//! plugins (which receive the resolved result in the context).
//!
//! The same schema serves every layer: built-in defaults < user `config.toml` < workspace
//! `dpe.toml` < project `dpe.toml` < command-line flags. Tables merge key by key; any other
//! value in a later layer replaces the earlier one. Unknown keys are errors, so a typo is
//! reported instead of silently ignored, and so are values that would reach a Dockerfile, a
//! shell line or a command line unsafely (see [`Invalid`]). Relative paths (`dockerfile`, `requirements`,
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
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "image")]
    pub image: Option<String>,
    /// A project Dockerfile; when set it replaces `image` and the package lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// A pip requirements file baked into the image (default: the project's
    /// `requirements.txt` when it exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<String>,
    /// Extra pip requirement specifiers baked into the image.
    #[serde(default, deserialize_with = "python_packages")]
    pub python_packages: Vec<String>,
    /// Debian/Ubuntu packages installed with apt-get into the image.
    #[serde(default, deserialize_with = "apt_packages")]
    pub apt_packages: Vec<String>,
    /// Environment variables for builds and containers.
    #[serde(default, deserialize_with = "env")]
    pub env: BTreeMap<String, String>,
    /// Extra container ports to publish (each gets a host port from the registry).
    #[serde(default, deserialize_with = "port_rules::port_list")]
    pub ports: Vec<u16>,
    /// Whether the project uses an NVIDIA GPU.
    #[serde(default)]
    pub gpu: GpuMode,
    /// Which GPUs: `"all"` (default), a count, or a list of indices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_devices: Option<GpuDevices>,
    /// Size of the container's `/dev/shm` (default [`DEFAULT_SHM_SIZE`]), see [`resource_rules`].
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "resource_rules::shm_size")]
    pub shm_size: Option<String>,
    /// The container's memory limit (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "resource_rules::memory")]
    pub memory: Option<String>,
    /// How many CPUs the container may use, e.g. `1.5` (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "resource_rules::cpus")]
    pub cpus: Option<f64>,
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
    /// Where Python packages come from (`[python]`). Absent from the context when unset, so
    /// plugins built before it existed still read the context.
    #[serde(default, skip_serializing_if = "PythonConfig::is_default")]
    pub python: PythonConfig,
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
    #[serde(default = "default_auto", deserialize_with = "compose_program")]
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

/// `[python]`: the package indexes `dpe-sync` resolves and installs from. The URLs may hold
/// credentials: they reach the container through the project's private env file, never a
/// command line, and uv keeps them out of the lock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonConfig {
    /// The main index, replacing PyPI (e.g. a company mirror).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "index_url")]
    pub index_url: Option<String>,
    /// More indexes searched too, e.g. PyTorch's CUDA wheels
    /// (`https://download.pytorch.org/whl/cu124`).
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "index_urls")]
    pub extra_index_urls: Vec<String>,
}

impl PythonConfig {
    pub fn is_default(&self) -> bool {
        self == &PythonConfig::default()
    }
}

/// An index URL: `http(s)://` or `file://`, one word.
pub fn check_index_url(key: &str, url: &str) -> Result<(), Invalid> {
    let scheme_ok = ["https://", "http://", "file://"].iter().any(|s| url.starts_with(s));
    if scheme_ok && word_fault(url).is_none() {
        return Ok(());
    }
    Err(Invalid::new(
        format!("`{}` in `[python] {key}` is not an index URL", shown(url)),
        format!(
            "write a URL such as `{key} = {}`",
            if key == "index_url" {
                "\"https://mirror.example/simple\""
            } else {
                "[\"https://download.pytorch.org/whl/cu124\"]"
            }
        ),
    ))
}

fn index_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let url = Option::<String>::deserialize(deserializer)?;
    url.as_deref().map_or(Ok(()), |u| check_index_url("index_url", u)).map_err(de::Error::custom)?;
    Ok(url)
}

fn index_urls<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let urls = Vec::<String>::deserialize(deserializer)?;
    urls.iter().try_for_each(|u| check_index_url("extra_index_urls", u)).map_err(de::Error::custom)?;
    Ok(urls)
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
    #[serde(default = "default_jupyter_port", deserialize_with = "port_rules::server_port")]
    pub port: u16,
    /// Host address the port is published on: an IP address.
    #[serde(default = "default_bind", deserialize_with = "port_rules::bind_address")]
    pub bind: String,
    /// First host port tried for new projects.
    #[serde(default = "default_jupyter_port")]
    pub host_port_start: u16,
    /// Seconds to wait for the server to answer.
    #[serde(default = "default_ready_timeout", deserialize_with = "seconds::ready_timeout")]
    pub ready_timeout: u64,
    /// Stop the server after this long without kernel, terminal or API activity (`"2h"`,
    /// `"90s"`); `"off"` or absent (the default): never.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "resource_rules::idle_timeout")]
    pub idle_timeout: Option<String>,
}

impl Default for JupyterConfig {
    fn default() -> Self {
        JupyterConfig {
            command: None,
            port: default_jupyter_port(),
            bind: default_bind(),
            host_port_start: default_jupyter_port(),
            ready_timeout: default_ready_timeout(),
            idle_timeout: None,
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
    #[serde(default = "default_hook_timeout", deserialize_with = "seconds::hook_timeout")]
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

/// The durations of the schema, in seconds, checked while each file is read. Each has an upper
/// bound: a wait whose length any workspace can set must stay a wait, not an overflow when it
/// is added to the clock (`9223372036854775807`), and a day is more than any start or hook needs.
mod seconds {
    use serde::{de, Deserialize, Deserializer};

    /// The longest any duration of the schema may be: one day.
    pub const MAX: u64 = 24 * 60 * 60;

    /// `[hooks] timeout`: at least 1, as `0` would stop every hook before it starts.
    pub fn hook_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        within(deserializer, "[hooks] timeout", 1, "300")
    }

    /// `[jupyter] ready_timeout`.
    pub fn ready_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        within(deserializer, "[jupyter] ready_timeout", 0, "120")
    }

    fn within<'de, D: Deserializer<'de>>(deserializer: D, key: &str, min: u64, default: &str) -> Result<u64, D::Error> {
        let seconds = u64::deserialize(deserializer)?;
        if (min..=MAX).contains(&seconds) {
            return Ok(seconds);
        }
        Err(de::Error::custom(format!(
            "`{key}` is {seconds} seconds: give a number of seconds from {min} to {MAX} (one day; default {default})"
        )))
    }
}

/// `[services.NAME]`: an extra container of a project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "image")]
    pub image: Option<String>,
    /// A build context directory (absolute after resolution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "env")]
    pub env: BTreeMap<String, String>,
    /// `NAME:/path` for a named volume or `./dir:/path` for a project folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Container ports to publish on the host (host ports come from the registry).
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "port_rules::port_list")]
    pub ports: Vec<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Size of the service's `/dev/shm` (default: the engine's, 64m).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "resource_rules::shm_size")]
    pub shm_size: Option<String>,
    /// The service's memory limit (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "resource_rules::memory")]
    pub memory: Option<String>,
    /// How many CPUs the service may use (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "resource_rules::cpus")]
    pub cpus: Option<f64>,
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

/// The rules for ports and the address they are published on, checked while each file is read
/// so that a mistake is reported with its file, line and key instead of surfacing later as a
/// misleading engine error. Port 0 asks the system for any port, which cannot be published or
/// found again; a port listed twice was reserved twice and lost to "another program"; a `bind`
/// that is not an IP address was looked up by DNS once per candidate port.
mod port_rules {
    use serde::{de, Deserialize, Deserializer};

    /// `[jupyter] port`: the port the server listens on in the container.
    pub fn server_port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
        let port = u16::deserialize(deserializer)?;
        if port == 0 {
            return Err(de::Error::custom(
                "`[jupyter] port` cannot be 0: give the port the server listens on in the container, from 1 to 65535 (default 8888)",
            ));
        }
        Ok(port)
    }

    /// `ports` (and a service's `ports`): container ports, each once.
    pub fn port_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u16>, D::Error> {
        let ports = Vec::<u16>::deserialize(deserializer)?;
        if ports.contains(&0) {
            return Err(de::Error::custom(
                "`ports` cannot hold 0: list the container ports to publish, from 1 to 65535 (dpe chooses the host ports)",
            ));
        }
        if let Some((_, port)) = ports.iter().enumerate().find(|&(i, p)| ports[..i].contains(p)) {
            return Err(de::Error::custom(format!("`ports` lists {port} twice: list each container port once")));
        }
        Ok(ports)
    }

    /// `[jupyter] bind`: an IP address, never a host name.
    pub fn bind_address<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.parse::<std::net::IpAddr>().is_err() {
            return Err(de::Error::custom(format!(
                "`[jupyter] bind` must be an IP address, not `{text}`: use `127.0.0.1` (this machine only) or an address of one of its interfaces"
            )));
        }
        Ok(text)
    }
}

/// The `/dev/shm` a project's container gets when its configuration sets no `shm_size`. Docker's
/// own 64m is what PyTorch's DataLoader workers crash on ("bus error", "insufficient shared
/// memory"): they pass every batch through shared memory, and a few workers with prefetched
/// batches of images hold hundreds of megabytes there. 1g is what NVIDIA's PyTorch containers
/// are documented to run with; it is a ceiling, not a reservation (tmpfs pages count only once
/// written, and against `memory` when that is set).
pub const DEFAULT_SHM_SIZE: &str = "1g";

/// The smallest `memory` the engine accepts (docker refuses anything under 6 MiB).
pub const MIN_MEMORY_BYTES: u64 = 6 << 20;

/// Sizes, CPU counts and durations, checked while each file is read so that the engine never
/// sees a value it refuses or reads differently. Sizes use the one syntax that `docker run`,
/// Compose v1 and v2 and `docker stack deploy` all read the same way: a whole number and a unit,
/// `b`, `k`, `m` or `g` (bytes, KiB, MiB, GiB; case does not matter). A bare number is refused:
/// docker would read `memory = "512"` as 512 bytes.
pub mod resource_rules {
    use super::Invalid;
    use serde::{de, Deserialize, Deserializer};

    const SIZE_HELP: &str =
        "write a whole number and a unit, `b`, `k`, `m` or `g` (bytes, KiB, MiB, GiB, as docker reads them)";

    /// The bytes of a size in the syntax above, `None` when it is not one.
    pub fn parse_size(text: &str) -> Option<u64> {
        let unit = text.chars().last()?.to_ascii_lowercase();
        let shift = match unit {
            'b' => 0,
            'k' => 10,
            'm' => 20,
            'g' => 30,
            _ => return None,
        };
        let digits = &text[..text.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok()?.checked_mul(1 << shift)
    }

    /// `shm_size` or `memory` (named by `key`): a size of at least `min` bytes.
    pub fn check_size(key: &str, text: &str, min: u64) -> Result<(), Invalid> {
        let example = if key == "memory" { "4g" } else { "1g" };
        match parse_size(text) {
            None => Err(Invalid::new(
                format!("`{key} = \"{}\"` is not a size", super::shown(text)),
                format!("{SIZE_HELP}: `{key} = \"{example}\"`"),
            )),
            Some(bytes) if bytes < min => Err(Invalid::new(
                format!("`{key} = \"{text}\"` is below the engine's minimum of {}", shown_size(min)),
                format!("give at least {}: `{key} = \"{example}\"`, or remove the line", shown_size(min)),
            )),
            Some(_) => Ok(()),
        }
    }

    /// `cpus`: a positive number of CPUs, at least docker's 0.01. Whether the machine has that
    /// many is a question for the engine, asked when a container starts.
    pub fn check_cpus(cpus: f64) -> Result<(), Invalid> {
        if cpus.is_finite() && cpus >= 0.01 {
            return Ok(());
        }
        Err(Invalid::new(
            format!("`cpus = {cpus}` is not a number of CPUs"),
            "give how many CPUs the container may use, at least 0.01: `cpus = 2` or `cpus = 1.5`, or remove the line for no limit",
        ))
    }

    /// The seconds of an `idle_timeout` (`90s`, `30m`, `2h`, `1d`); `None` for `off`.
    pub fn parse_duration(text: &str) -> Result<Option<u64>, Invalid> {
        if text == "off" {
            return Ok(None);
        }
        let invalid = || {
            Invalid::new(
                format!("`[jupyter] idle_timeout = \"{}\"` is not a duration", super::shown(text)),
                "write a whole number and a unit, `s`, `m`, `h` or `d`, above zero (`idle_timeout = \"2h\"`), or `\"off\"` to never stop an idle server",
            )
        };
        let unit = match text.chars().last() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86400,
            _ => return Err(invalid()),
        };
        let digits = &text[..text.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit)) {
            Some(seconds) if seconds > 0 => Ok(Some(seconds)),
            _ => Err(invalid()),
        }
    }

    /// A size in the largest unit that shows it whole (`6m`).
    fn shown_size(bytes: u64) -> String {
        let (shift, unit) = [(30, 'g'), (20, 'm'), (10, 'k')]
            .into_iter()
            .find(|(shift, _)| bytes.is_multiple_of(1u64 << shift))
            .unwrap_or((0, 'b'));
        format!("{}{unit}", bytes >> shift)
    }

    pub(super) fn shm_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.as_deref().map_or(Ok(()), |t| check_size("shm_size", t, 1)).map_err(de::Error::custom)?;
        Ok(text)
    }

    pub(super) fn memory<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.as_deref()
            .map_or(Ok(()), |t| check_size("memory", t, super::MIN_MEMORY_BYTES))
            .map_err(de::Error::custom)?;
        Ok(text)
    }

    pub(super) fn idle_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.as_deref().map_or(Ok(None), parse_duration).map_err(de::Error::custom)?;
        Ok(text)
    }

    pub(super) fn cpus<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        struct Cpus;
        impl<'v> de::Visitor<'v> for Cpus {
            type Value = Option<f64>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of CPUs, like `cpus = 2` or `cpus = 1.5` (a number, not a string)")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<f64>, E> {
                check_cpus(v).map_err(E::custom)?;
                Ok(Some(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<f64>, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<f64>, E> {
                self.visit_f64(v as f64)
            }
            fn visit_none<E: de::Error>(self) -> Result<Option<f64>, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Option<f64>, E> {
                Ok(None)
            }
            fn visit_some<V: Deserializer<'v>>(self, d: V) -> Result<Option<f64>, V::Error> {
                d.deserialize_any(Cpus)
            }
        }
        deserializer.deserialize_option(Cpus)
    }
}

// Values that end up in a generated Dockerfile, a shell line or a command argument. The schema
// refuses them while the file is read, so toml's error names the file, line and caret; the
// same checks serve plugins that build a `Config` in code ([`Config::check_values`]), so a
// Dockerfile writer never has to trust its input.

/// A value the schema refuses: what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub help: String,
}

impl Invalid {
    fn new(message: String, help: impl Into<String>) -> Invalid {
        Invalid { message, help: help.into() }
    }
}

/// `MESSAGE\nhelp: HELP`: the core splits a schema error at the `help:` line to print it as
/// its own help.
impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}\nhelp: {}", self.message, self.help)
    }
}

/// The values `[engine] compose` accepts.
pub const COMPOSE_PROGRAMS: &[&str] = &["auto", "plugin", "standalone"];

/// A text shown in an error: control characters escaped, so a newline reads as `\n`.
fn shown(text: &str) -> String {
    text.escape_debug().to_string()
}

/// An environment variable name: POSIX's `[A-Za-z_][A-Za-z0-9_]*`. Anything else could end a
/// Dockerfile `ENV` line early or split `--env KEY=VALUE` at the wrong `=`.
pub fn check_env_name(key: &str) -> Result<(), Invalid> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(());
    }
    Err(Invalid::new(
        format!("`{}` is not a valid environment variable name", shown(key)),
        "names use letters, digits and `_` and do not start with a digit (`MY_SETTING`)",
    ))
}

/// An environment variable's value: one line, because a Dockerfile `ENV` line cannot hold a
/// line break (docker's `\n` escape is not one; it stays a backslash and an `n`).
pub fn check_env_value(key: &str, value: &str) -> Result<(), Invalid> {
    let what = match value.chars().find(|c| matches!(c, '\n' | '\r' | '\0')) {
        None => return Ok(()),
        Some('\n') => "a line break",
        Some('\r') => "a carriage return",
        Some(_) => "a NUL character",
    };
    Err(Invalid::new(
        format!("the value of environment variable `{key}` contains {what}"),
        "keep the value on one line, or put the text in a file in the project and name that file in the variable",
    ))
}

/// What makes a value that goes onto a command line unsafe as one word there.
enum WordFault {
    Empty,
    Whitespace,
    LeadingDash,
}

/// The one rule shared by package entries and images: non-empty, no whitespace or control
/// characters, and no leading `-` (which a command would read as an option).
fn word_fault(text: &str) -> Option<WordFault> {
    if text.is_empty() {
        Some(WordFault::Empty)
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(WordFault::Whitespace)
    } else if text.starts_with('-') {
        Some(WordFault::LeadingDash)
    } else {
        None
    }
}

/// An entry of `python_packages` or `apt_packages` (named by `list`): one word that cannot be
/// read as an option.
pub fn check_package(list: &str, entry: &str) -> Result<(), Invalid> {
    let help = format!(
        "write one package name or specifier per entry, without spaces or options: `{list} = [\"{}\"]`",
        if list == "apt_packages" { "curl" } else { "pandas>=2" }
    );
    let message = match word_fault(entry) {
        None => return Ok(()),
        Some(WordFault::Empty) => format!("`{list}` has an empty entry"),
        Some(WordFault::Whitespace) => format!("`{}` in `{list}` contains whitespace", shown(entry)),
        Some(WordFault::LeadingDash) => {
            format!("`{entry}` in `{list}` starts with `-`, so it would be read as an option")
        }
    };
    Err(Invalid::new(message, help))
}

/// An `image`: a non-empty reference that docker cannot read as an option.
pub fn check_image(image: &str) -> Result<(), Invalid> {
    let help = "name an image (`python:3.12-slim`, `quay.io/jupyter/scipy-notebook`) or a Docker Stacks shorthand \
                (`scipy`, `datascience`, `pytorch`, `tensorflow`, `pyspark`), or remove the line for the default";
    let message = match word_fault(image) {
        None => return Ok(()),
        Some(WordFault::Empty) => "`image` is empty".to_string(),
        Some(WordFault::Whitespace) => format!("image `{}` contains whitespace", shown(image)),
        Some(WordFault::LeadingDash) => {
            format!("image `{image}` starts with `-`, so docker would read it as an option")
        }
    };
    Err(Invalid::new(message, help))
}

/// An `[engine] compose` value.
pub fn check_compose_program(value: &str) -> Result<(), Invalid> {
    if COMPOSE_PROGRAMS.contains(&value) {
        return Ok(());
    }
    Err(Invalid::new(
        format!("`{}` is not a compose program", shown(value)),
        "`[engine] compose` is `auto` (the default), `plugin` (`docker compose`) or `standalone` (`docker-compose`)",
    ))
}

impl Config {
    /// Runs the checks the schema runs while reading, on a configuration built in code.
    pub fn check_values(&self) -> Result<(), Invalid> {
        self.image.as_deref().map_or(Ok(()), check_image)?;
        check_env(&self.env)?;
        self.python_packages.iter().try_for_each(|p| check_package("python_packages", p))?;
        self.apt_packages.iter().try_for_each(|p| check_package("apt_packages", p))?;
        self.python.index_url.as_deref().map_or(Ok(()), |u| check_index_url("index_url", u))?;
        self.python.extra_index_urls.iter().try_for_each(|u| check_index_url("extra_index_urls", u))?;
        check_compose_program(&self.engine.compose)?;
        check_resources(self.shm_size.as_deref(), self.memory.as_deref(), self.cpus)?;
        self.jupyter.idle_timeout.as_deref().map_or(Ok(None), resource_rules::parse_duration)?;
        for service in self.services.values() {
            service.image.as_deref().map_or(Ok(()), check_image)?;
            check_env(&service.env)?;
            check_resources(service.shm_size.as_deref(), service.memory.as_deref(), service.cpus)?;
        }
        Ok(())
    }
}

fn check_resources(shm_size: Option<&str>, memory: Option<&str>, cpus: Option<f64>) -> Result<(), Invalid> {
    shm_size.map_or(Ok(()), |size| resource_rules::check_size("shm_size", size, 1))?;
    memory.map_or(Ok(()), |size| resource_rules::check_size("memory", size, MIN_MEMORY_BYTES))?;
    cpus.map_or(Ok(()), resource_rules::check_cpus)
}

impl Config {
    /// The `/dev/shm` size the project's container gets.
    pub fn shm_size(&self) -> &str {
        self.shm_size.as_deref().unwrap_or(DEFAULT_SHM_SIZE)
    }
}

impl JupyterConfig {
    /// The seconds of `idle_timeout`, `None` when the server never stops for being idle. The
    /// value was checked when the configuration was read.
    pub fn idle_timeout_seconds(&self) -> Option<u64> {
        self.idle_timeout.as_deref().and_then(|text| resource_rules::parse_duration(text).ok().flatten())
    }
}

fn check_env(env: &BTreeMap<String, String>) -> Result<(), Invalid> {
    env.iter().try_for_each(|(key, value)| check_env_name(key).and_then(|()| check_env_value(key, value)))
}

fn image<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let image = Option::<String>::deserialize(deserializer)?;
    image.as_deref().map_or(Ok(()), check_image).map_err(de::Error::custom)?;
    Ok(image)
}

fn compose_program<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    check_compose_program(&value).map_err(de::Error::custom)?;
    Ok(value)
}

fn python_packages<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    deserializer.deserialize_seq(Packages("python_packages"))
}

fn apt_packages<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    deserializer.deserialize_seq(Packages("apt_packages"))
}

/// Reads a package list entry by entry, each through [`Checked`], so an error points at the
/// entry rather than at the whole list.
struct Packages(&'static str);

impl<'de> de::Visitor<'de> for Packages {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of package names")
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let list = self.0;
        let mut out = Vec::new();
        while let Some(entry) = seq.next_element_seed(Checked(|p: &str| check_package(list, p)))? {
            out.push(entry);
        }
        Ok(out)
    }
}

fn env<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error> {
    deserializer.deserialize_map(EnvTable)
}

/// Reads an `[env]` table key by key and value by value, each through [`Checked`], so an error
/// points at the key or value at fault.
struct EnvTable;

impl<'de> de::Visitor<'de> for EnvTable {
    type Value = BTreeMap<String, String>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table of environment variables")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key_seed(Checked(check_env_name))? {
            let value = map.next_value_seed(Checked(|value: &str| check_env_value(&key, value)))?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

/// Deserialises a string and runs a check on it inside the deserialiser, where the format still
/// knows the value's position.
struct Checked<F>(F);

impl<'de, F: FnOnce(&str) -> Result<(), Invalid>> de::DeserializeSeed<'de> for Checked<F> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        let text = String::deserialize(deserializer)?;
        (self.0)(&text).map_err(de::Error::custom)?;
        Ok(text)
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

/// The image a project runs when its `image` names none: the Docker Stacks scipy image.
pub const DEFAULT_IMAGE: &str = "scipy";

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
    fn python_indexes_are_urls_and_stay_out_of_the_context_when_unset() {
        let config: Config = serde_json::from_str(
            r#"{"python":{"index_url":"https://u:p@mirror.example/simple","extra_index_urls":["file:///wheels"]}}"#,
        )
        .unwrap();
        assert_eq!(config.python.index_url.as_deref(), Some("https://u:p@mirror.example/simple"));
        assert_eq!(config.python.extra_index_urls, ["file:///wheels"]);
        let err = serde_json::from_str::<Config>(r#"{"python":{"index_url":"mirror.example"}}"#).unwrap_err();
        assert!(err.to_string().starts_with("`mirror.example` in `[python] index_url` is not an index URL"), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"python":{"extra_index_urls":["https://a b"]}}"#).unwrap_err();
        assert!(err.to_string().contains("in `[python] extra_index_urls` is not an index URL"), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"python":{"index":"https://x"}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `index`"), "{err}");
        // Older plugins deny unknown keys: an unset `[python]` is not in the context at all.
        let plain = serde_json::to_value(Config::default()).unwrap();
        assert!(plain.get("python").is_none(), "{plain}");
    }

    #[test]
    fn shorthands_expand_and_others_pass_through() {
        assert_eq!(expand_image("scipy"), "quay.io/jupyter/scipy-notebook:latest");
        assert_eq!(expand_image("python:3.12"), "python:3.12");
    }

    #[test]
    fn ports_and_bind_are_checked_while_reading() {
        let read = |text: &str| toml::from_str::<Config>(text).map_err(|e| e.message().to_string());
        let config = read("ports = [8080, 9000]\n[jupyter]\nport = 8889\nbind = \"::1\"\n").unwrap();
        assert_eq!((config.ports, config.jupyter.port, config.jupyter.bind.as_str()), (vec![8080, 9000], 8889, "::1"));
        assert_eq!(read("").unwrap().jupyter, JupyterConfig::default());
        assert_eq!(
            read("ports = [8080, 9000, 8080]").unwrap_err(),
            "`ports` lists 8080 twice: list each container port once"
        );
        assert_eq!(
            read("[services.web]\nports = [0]").unwrap_err(),
            "`ports` cannot hold 0: list the container ports to publish, from 1 to 65535 (dpe chooses the host ports)"
        );
        assert!(read("[jupyter]\nport = 0").unwrap_err().starts_with("`[jupyter] port` cannot be 0: "));
        for bad in ["localhost", "", "no-such-host.invalid", "127.0.0.1:80"] {
            assert_eq!(
                read(&format!("[jupyter]\nbind = \"{bad}\"")).unwrap_err(),
                format!("`[jupyter] bind` must be an IP address, not `{bad}`: use `127.0.0.1` (this machine only) or an address of one of its interfaces")
            );
        }
    }

    #[test]
    fn resources_and_idle_timeout_are_checked_while_reading() {
        let read = |text: &str| toml::from_str::<Config>(text).map_err(|e| e.message().to_string());
        let config = read("shm_size = \"2G\"\nmemory = \"512m\"\ncpus = 1.5\n[jupyter]\nidle_timeout = \"90s\"\n[services.db]\nimage = \"postgres:16\"\ncpus = 1\nmemory = \"6m\"\n").unwrap();
        assert_eq!((config.shm_size(), config.memory.as_deref(), config.cpus), ("2G", Some("512m"), Some(1.5)));
        assert_eq!(config.jupyter.idle_timeout_seconds(), Some(90));
        assert_eq!((config.services["db"].cpus, config.services["db"].memory.as_deref()), (Some(1.0), Some("6m")));
        let defaults = read("").unwrap();
        assert_eq!((defaults.shm_size(), defaults.memory.as_deref(), defaults.cpus), ("1g", None, None));
        assert_eq!(defaults.jupyter.idle_timeout_seconds(), None);
        assert_eq!(read("[jupyter]\nidle_timeout = \"off\"").unwrap().jupyter.idle_timeout_seconds(), None);
        assert_eq!(resource_rules::parse_size("2g"), Some(2 << 30));
        assert_eq!(resource_rules::parse_size("1k"), Some(1024));

        let size_help =
            "help: write a whole number and a unit, `b`, `k`, `m` or `g` (bytes, KiB, MiB, GiB, as docker reads them)";
        for bad in ["512", "2GiB", "1.5g", "g", "-1m", "1 g", ""] {
            assert_eq!(
                read(&format!("memory = \"{bad}\"")).unwrap_err(),
                format!("`memory = \"{bad}\"` is not a size\n{size_help}: `memory = \"4g\"`")
            );
        }
        assert_eq!(
            read("[services.db]\nimage = \"x\"\nshm_size = \"lots\"").unwrap_err(),
            format!("`shm_size = \"lots\"` is not a size\n{size_help}: `shm_size = \"1g\"`")
        );
        assert_eq!(
            read("memory = \"5m\"").unwrap_err(),
            "`memory = \"5m\"` is below the engine's minimum of 6m\nhelp: give at least 6m: `memory = \"4g\"`, or remove the line"
        );
        assert_eq!(
            read("shm_size = \"0g\"").unwrap_err(),
            "`shm_size = \"0g\"` is below the engine's minimum of 1b\nhelp: give at least 1b: `shm_size = \"1g\"`, or remove the line"
        );
        for bad in ["0", "-2", "0.001", "nan"] {
            assert_eq!(
                read(&format!("cpus = {bad}")).unwrap_err(),
                format!("`cpus = {}` is not a number of CPUs\nhelp: give how many CPUs the container may use, at least 0.01: `cpus = 2` or `cpus = 1.5`, or remove the line for no limit", bad.parse::<f64>().unwrap())
            );
        }
        assert_eq!(
            read("cpus = \"2\"").unwrap_err(),
            "invalid type: string \"2\", expected a number of CPUs, like `cpus = 2` or `cpus = 1.5` (a number, not a string)"
        );
        for bad in ["2", "0s", "1.5h", "2 h", "2w", "forever", "h"] {
            assert_eq!(
                read(&format!("[jupyter]\nidle_timeout = \"{bad}\"")).unwrap_err(),
                format!("`[jupyter] idle_timeout = \"{bad}\"` is not a duration\nhelp: write a whole number and a unit, `s`, `m`, `h` or `d`, above zero (`idle_timeout = \"2h\"`), or `\"off\"` to never stop an idle server")
            );
        }
        let coded = Config { memory: Some("1".into()), ..Config::default() };
        assert!(coded.check_values().unwrap_err().message.contains("is not a size"));
        let round = read("cpus = 2\nshm_size = \"1g\"").unwrap();
        assert_eq!(serde_json::from_str::<Config>(&serde_json::to_string(&round).unwrap()).unwrap(), round);
    }

    #[test]
    fn durations_are_bounded_while_reading() {
        let read = |text: &str| toml::from_str::<Config>(text).map_err(|e| e.message().to_string());
        let config = read("[hooks]\ntimeout = 86400\n[jupyter]\nready_timeout = 0\n").unwrap();
        assert_eq!((config.hooks.timeout, config.jupyter.ready_timeout), (86400, 0));
        for (table, key, min, default) in [("hooks", "timeout", 1, 300), ("jupyter", "ready_timeout", 0, 120)] {
            let help = format!("give a number of seconds from {min} to 86400 (one day; default {default})");
            for bad in [86401_u64, 9223372036854775807] {
                assert_eq!(
                    read(&format!("[{table}]\n{key} = {bad}\n")).unwrap_err(),
                    format!("`[{table}] {key}` is {bad} seconds: {help}")
                );
            }
        }
        assert_eq!(
            read("[hooks]\ntimeout = 0\n").unwrap_err(),
            "`[hooks] timeout` is 0 seconds: give a number of seconds from 1 to 86400 (one day; default 300)"
        );
        let err = serde_json::from_str::<Config>(r#"{"jupyter":{"ready_timeout":18446744073709551615}}"#).unwrap_err();
        assert!(err.to_string().starts_with("`[jupyter] ready_timeout` is 18446744073709551615 seconds: "), "{err}");
    }

    #[test]
    fn checked_values_are_refused_in_json_too_and_null_image_stays_none() {
        let err = serde_json::from_str::<Config>(r#"{"env":{"A B":"1"}}"#).unwrap_err().to_string();
        assert!(err.starts_with("`A B` is not a valid environment variable name\nhelp: "), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"apt_packages":["-y"]}"#).unwrap_err().to_string();
        assert!(err.starts_with("`-y` in `apt_packages` starts with `-`"), "{err}");
        assert_eq!(serde_json::from_str::<Config>(r#"{"image":null}"#).unwrap().image, None);
        let odd = Config {
            env: [("_A1".to_string(), "a \"b\" $c \\ \t".to_string())].into(),
            python_packages: vec!["pandas>=2,<3".into()],
            ..Config::default()
        };
        assert_eq!(odd.check_values(), Ok(()));
        assert_eq!(serde_json::from_str::<Config>(&serde_json::to_string(&odd).unwrap()).unwrap(), odd);
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

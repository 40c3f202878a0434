//! The JSON first-party plugins exchange, typed once: the run specification `dpe jupyter spec
//! PROJECT --json` prints (read by compose and export) and the answer of `dpe gpu flags PROJECT
//! --json` (read by jupyter and compose), plus the engine names of a project's environment.
//!
//! Producer and consumers use these very types, so a field cannot be renamed on one side only.
//! Plugins are installed and upgraded one by one, so both directions of version skew must read:
//! unknown fields are ignored (a newer producer), and every field a producer added after the
//! first version has a default (an older producer). A field every producer has always printed
//! is required: a document without it is not a run specification.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// `dpe jupyter spec PROJECT --json`: how `dpe jupyter` runs a project's environment, so compose
/// and export run exactly the same image, mounts, user, env and ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub project: String,
    pub workspace: String,
    /// The image to run: the content-hash tag, or the project's own tag of an imported image.
    pub image: String,
    pub container: String,
    /// The named volume holding the project's Python environment and home.
    pub volume: String,
    /// Where `volume` is mounted.
    pub volume_target: String,
    pub workdir: String,
    /// The project folder, bind-mounted at `workdir`.
    pub mount: Mount,
    pub user: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The private env file holding the token and credentials (never on a command line).
    pub env_file: String,
    #[serde(default)]
    pub command: Vec<String>,
    pub bind: String,
    pub port: PortPair,
    #[serde(default)]
    pub ports: Vec<PortPair>,
    #[serde(default)]
    pub service_ports: BTreeMap<String, Vec<PortPair>>,
    pub base_url: String,
    pub url: String,
    pub ready_url: String,
    #[serde(default)]
    pub gpu_args: Vec<String>,
    /// `/dev/shm` size and memory and CPU limits (absent from older jupyter plugins).
    #[serde(default)]
    pub resources: Resources,
    /// The named volume holding the package cache shared by the user's trusted projects; `None`
    /// for a project whose configuration is not trusted, which keeps a private cache in its own
    /// volume (a shared cache is a path from one project's packages into every other project's
    /// environment). Created by `dpe jupyter`, never by a consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_volume: Option<String>,
    /// Where `store_volume` is mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_target: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The variable of a [`RunSpec`]'s env naming where, in `store_volume`, the project's Python
/// environment lives (its `volume` then holds a link to it at `VOLUME_TARGET/venv`).
pub const VENV_STORE_VARIABLE: &str = "DPE_VENV_STORE";

impl RunSpec {
    /// The store volume and the folder in it (as mounted at `store_target`) holding the
    /// project's Python environment, when it lives there rather than in `volume`.
    pub fn venv_in_store(&self) -> Option<(&str, &str)> {
        let folder = self.env.get(VENV_STORE_VARIABLE)?;
        Some((self.store_volume.as_deref()?, folder.as_str()))
    }

    /// The `docker run` arguments that make a process run as the environment's do: `--user`
    /// and one `--env` per variable (never the env file's secrets). `dpe jupyter` starts its
    /// server with them, and a throwaway container reading the environment (`dpe export`) gets
    /// the same view.
    pub fn user_and_env_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(user) = &self.user {
            args.push("--user".into());
            args.push(user.clone());
        }
        for (key, value) in &self.env {
            args.push("--env".into());
            args.push(format!("{key}={value}"));
        }
        args
    }
}

/// A host folder and where it is mounted in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: String,
    pub target: String,
}

/// A container port and the host port published for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPair {
    pub container: u16,
    pub host: u16,
}

/// A container's `/dev/shm` size and its memory and CPU limits, in the syntax the configuration
/// checked (docker's sizes, a number of CPUs), which `docker run`, Compose and `docker stack
/// deploy` all read alike. `None` leaves the engine's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub shm_size: Option<String>,
    pub memory: Option<String>,
    pub cpus: Option<f64>,
}

/// `dpe gpu flags PROJECT --json`: whether the project's containers get the GPU and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuFlags {
    /// The project's `gpu` setting: `off`, `auto` or `required`.
    pub mode: String,
    pub use_gpu: bool,
    /// The `docker run` flags that give a container the GPU (empty without one).
    pub docker_args: Vec<String>,
    /// The Compose `deploy.resources.reservations.devices` entry, when the GPU is used.
    pub compose: Option<serde_json::Value>,
    /// A line for the user when an `auto` project runs without the GPU.
    pub notice: Option<String>,
    /// What `dpe gpu check` found (its own JSON objects; consumers only pass them on).
    pub findings: Vec<serde_json::Value>,
}

/// Where `dpe jupyter` mounts a project's environment volume. Archives written before they
/// recorded the volume's path were all made with this one.
pub const VOLUME_TARGET: &str = "/dpe";

/// The engine names of a project's environment. They are derived from the workspace path too, so
/// two workspaces that both hold a `project_a` never share a container, a volume, a port or a
/// token. Every plugin that finds the environment of a project whose folder does not exist (yet
/// or any more: `dpe import`, `dpe jupyter rm`) derives them here; changing them would orphan
/// every existing environment, so they are part of the contract, not of one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentNames {
    /// The project's key in the per-user state (ports, tokens, locks).
    pub key: String,
    pub container: String,
    pub volume: String,
    /// A short, stable hash of the workspace path.
    pub workspace_hash: String,
}

impl EnvironmentNames {
    pub fn new(project: &str, workspace: &Path) -> EnvironmentNames {
        let workspace_hash = short_hash(&workspace.to_string_lossy());
        let spelt = engine_spelling(project);
        EnvironmentNames {
            key: format!("{project}-{workspace_hash}"),
            container: format!("dpe-{spelt}-{workspace_hash}"),
            volume: format!("dpe-{spelt}-{workspace_hash}-env"),
            workspace_hash,
        }
    }
}

/// The spelling of a project name in engine object names, where `_` becomes `-` (so `dpe
/// jupyter` refuses twin folders `a_b` and `a-b`, which would share one environment).
pub fn engine_spelling(project: &str) -> String {
    project.replace('_', "-")
}

/// The first 8 hex digits of the SHA-256 of `text`.
pub fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// One `--mount` value. `--volume SRC:DST` splits at every colon, so a folder such as
/// `lab:2024` could not be mounted; `--mount` takes named fields instead. The engine reads the
/// value as a CSV record: a field holding a comma, a quote or a line break is quoted (quotes
/// doubled), so any path arrives as it is.
pub fn mount_value(kind: &str, source: &str, target: &str, read_only: bool) -> String {
    let field = |text: String| {
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    };
    let mut fields =
        vec![field(format!("type={kind}")), field(format!("source={source}")), field(format!("target={target}"))];
    if read_only {
        fields.push("readonly".into());
    }
    fields.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_json() -> serde_json::Value {
        json!({
            "project": "a", "workspace": "/w", "image": "dpe-jupyter:abc", "container": "dpe-a-1",
            "volume": "dpe-a-1-env", "volume_target": "/dpe", "workdir": "/work",
            "mount": {"source": "/w/projects/a", "target": "/work"}, "user": "1000:1000",
            "env": {"A": "1"}, "env_file": "/s/a.env", "command": ["dpe-start"], "bind": "127.0.0.1",
            "port": {"container": 8888, "host": 8890}, "ports": [], "service_ports": {},
            "base_url": "/a/", "url": "http://127.0.0.1:8890/a/?token=t",
            "ready_url": "http://127.0.0.1:8890/a/api/status?token=t", "gpu_args": [],
            "resources": {"shm_size": "1g", "memory": null, "cpus": null}, "labels": {}
        })
    }

    /// A newer jupyter may add fields; an older one lacks those added since (the resources, the
    /// shared package cache): both still read.
    #[test]
    fn a_run_spec_reads_from_newer_and_older_producers() {
        let mut newer = spec_json();
        newer["something_new"] = json!({"nested": true});
        newer["store_volume"] = json!("dpe-python-cache-1");
        newer["store_target"] = json!("/dpe-cache");
        let spec: RunSpec = serde_json::from_value(newer).unwrap();
        assert_eq!(spec.store_volume.as_deref(), Some("dpe-python-cache-1"));
        assert_eq!(spec.resources.shm_size.as_deref(), Some("1g"));

        let mut older = spec_json();
        for field in ["resources", "service_ports", "ports", "labels", "gpu_args", "env", "command"] {
            older.as_object_mut().unwrap().remove(field);
        }
        let spec: RunSpec = serde_json::from_value(older).unwrap();
        assert_eq!(
            (spec.resources, spec.store_volume, spec.port),
            (Resources::default(), None, PortPair { container: 8888, host: 8890 })
        );

        // Without the image it runs, a document is no run specification.
        let mut broken = spec_json();
        broken.as_object_mut().unwrap().remove("image");
        let err = serde_json::from_value::<RunSpec>(broken).unwrap_err();
        assert_eq!(err.to_string(), "missing field `image`");
    }

    /// The spec is printed the way consumers have always read it: no `store_*` keys for a
    /// project without a shared cache, `null` for limits left to the engine.
    #[test]
    fn a_run_spec_prints_back_what_it_read() {
        let spec: RunSpec = serde_json::from_value(spec_json()).unwrap();
        assert_eq!(serde_json::to_value(&spec).unwrap(), spec_json());
    }

    #[test]
    fn gpu_flags_read_from_any_version_of_the_gpu_plugin() {
        let flags: GpuFlags = serde_json::from_value(json!({
            "mode": "auto", "use_gpu": true, "docker_args": ["--gpus", "all"],
            "compose": {"driver": "nvidia"}, "notice": null, "findings": [{"id": "driver"}], "later": 1
        }))
        .unwrap();
        assert!(flags.use_gpu);
        assert_eq!(flags.docker_args, ["--gpus", "all"]);
        assert_eq!(flags.compose, Some(json!({"driver": "nvidia"})));
        let oldest: GpuFlags = serde_json::from_value(json!({"docker_args": []})).unwrap();
        assert_eq!(oldest, GpuFlags::default());
    }

    #[test]
    fn environment_names_differ_between_workspaces_and_are_engine_safe() {
        let a = EnvironmentNames::new("project_a", Path::new("/home/u/w1"));
        let b = EnvironmentNames::new("project_a", Path::new("/home/u/w2"));
        assert_ne!(a.container, b.container);
        assert_ne!(a.volume, b.volume);
        assert_eq!(a.container, format!("dpe-project-a-{}", a.workspace_hash));
        assert_eq!(a.volume, format!("dpe-project-a-{}-env", a.workspace_hash));
        assert_eq!(a.key, format!("project_a-{}", a.workspace_hash));
        assert_eq!(short_hash("/home/u/w1"), a.workspace_hash);
        assert_eq!(a.workspace_hash.len(), 8);
    }

    #[test]
    fn mount_values_survive_colons_commas_and_quotes() {
        assert_eq!(
            mount_value("bind", "/w/lab:2024,x/pro\"j", "/work", false),
            "type=bind,\"source=/w/lab:2024,x/pro\"\"j\",target=/work"
        );
        assert_eq!(mount_value("bind", "/a", "/b", true), "type=bind,source=/a,target=/b,readonly");
    }
}

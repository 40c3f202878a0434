//! What is really installed in a project's environment, asked of the environment itself: a
//! throwaway container with the project's image, user, env and persisted volume runs a small
//! Python script that reports `pip freeze` (the lock, verbatim), every distribution with its
//! version and location (to tell packages installed by hand into the volume from those baked
//! into the image), and the installed versions of the project's apt packages.

use crate::docker::{self, Spec};
use crate::error::{Error, Result};
use dpe_plugin::Context;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The probe; its arguments are the apt packages to look up.
const SCRIPT: &str = r#"
import json, subprocess, sys
from importlib import metadata
out = {"python": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable,
       "prefix": sys.prefix, "base_prefix": sys.base_prefix, "dists": [], "apt": {},
       "freeze": "", "freeze_error": ""}
seen = set()
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    # The first one on sys.path wins, as it does for imports.
    if not name or name.lower() in seen:
        continue
    seen.add(name.lower())
    out["dists"].append({"name": name, "version": dist.version,
                         "location": str(dist.locate_file("")), "requires": dist.requires or []})
run = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True)
out["freeze"] = run.stdout
if run.returncode != 0:
    out["freeze_error"] = run.stderr.strip() or "pip freeze failed"
if len(sys.argv) > 1:
    try:
        run = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"] + sys.argv[1:],
                             capture_output=True, text=True)
        for line in run.stdout.splitlines():
            package, _, version = line.partition("\t")
            if version:
                out["apt"][package] = version
    except OSError:
        pass
print(json.dumps(out))
"#;

/// What the probe found.
#[derive(Debug, Clone, Deserialize)]
pub struct Probe {
    pub python: String,
    pub executable: String,
    pub prefix: String,
    pub base_prefix: String,
    pub dists: Vec<Dist>,
    /// apt package → installed version (only the project's `apt_packages`).
    pub apt: BTreeMap<String, String>,
    /// `pip freeze`, verbatim.
    pub freeze: String,
    pub freeze_error: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dist {
    pub name: String,
    pub version: String,
    pub location: String,
    #[serde(default)]
    pub requires: Vec<String>,
}

impl Probe {
    /// Whether the environment's Python is a virtual environment (dpe's lives in the volume).
    pub fn is_venv(&self) -> bool {
        self.prefix != self.base_prefix
    }
}

/// Runs the probe in a throwaway container with the environment's view.
pub fn run(context: &Context, spec: &Spec, volumes: docker::Volumes, apt_packages: &[String]) -> Result<Probe> {
    let mut args = docker::throwaway_args(spec, volumes);
    args.extend(["--entrypoint".into(), "python3".into(), spec.image.clone(), "-c".into(), SCRIPT.into()]);
    args.extend(apt_packages.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output =
        docker::checked(context, &args, &format!("asking the environment of `{}` what it holds", spec.project))
            .map_err(|f| f.with_help("the environment needs `python3` on its PATH; check the project's image"))?;
    let probe: Probe = serde_json::from_slice(&output.stdout).map_err(|e| {
        Error::new(format!(
            "the environment of `{}` answered the package probe with something unreadable: {e}",
            spec.project
        ))
    })?;
    if !probe.freeze_error.is_empty() {
        let last = probe.freeze_error.lines().last().unwrap_or("");
        return Err(Error::new(format!("`pip freeze` failed in the environment of `{}`: {last}", spec.project))
            .with_help("add `python3-pip` to the project's apt_packages (or use an image with pip)"));
    }
    Ok(probe)
}

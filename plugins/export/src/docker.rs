//! The few engine and sibling-plugin calls this plugin makes, all through dpe: `dpe docker …`
//! (so the user's hooks run and the core labels what is created) and `dpe jupyter …` (which
//! owns how a project's environment is built and run).

use crate::error::{Error, Result};
use dpe_plugin::client;
use dpe_plugin::contract::mount_value;
use dpe_plugin::Context;
use std::process::{Command, Stdio};

/// The run specification of a project's environment (`dpe jupyter spec PROJECT --json`), as
/// the jupyter plugin prints it: the protocol crate types it once for both.
pub use dpe_plugin::contract::RunSpec as Spec;

/// The SDK's `dpe docker` client, which every engine call here goes through.
pub use dpe_plugin::sdk::docker::{checked, exists, failed, streamed, text};

/// A `dpe jupyter ARGS…` command for `project`: the project is named both ways, so the core's
/// selection (which prefers `DPE_PROJECT`, set for this very plugin) agrees with the argument.
pub fn jupyter(context: &Context, project: &str, args: &[&str]) -> Command {
    let mut command = client::dpe_command(context, &["jupyter"]);
    command.args(args);
    command.env(dpe_plugin::env::PROJECT, project);
    command
}

/// Asks the jupyter plugin for the specification; it builds the image first when needed (its
/// build output shows on stderr).
pub fn spec(context: &Context, project: &str) -> Result<Spec> {
    let output = jupyter(context, project, &["spec", project, "--json"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::new(format!("running `dpe jupyter spec` failed: {e}")))?;
    if !output.status.success() {
        return Err(Error::new(format!("`dpe jupyter spec {project}` failed (see above)"))
            .with_help(
                "export needs the jupyter plugin to build the project's environment; fix what it reports and run again",
            )
            .with_code(client::exit_code(output.status).max(1)));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        Error::new(format!(
            "`dpe jupyter spec {project} --json` printed something that is not a run specification: {e}"
        ))
        .with_help("update the jupyter plugin so it matches this dpe")
    })
}

/// Which of the environment's named volumes exist: a throwaway container mounts only those,
/// since mounting a missing volume would create it (empty, unlabelled, owned by root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volumes {
    /// The project's volume (`volume`).
    pub project: bool,
    /// The package store holding the project's Python environment, when it lives there.
    pub store: bool,
}

impl Volumes {
    pub fn of(context: &Context, spec: &Spec) -> Result<Volumes> {
        let project = exists(context, "volume", &spec.volume)?;
        let store = match spec.venv_in_store() {
            Some((store, _)) if project => exists(context, "volume", store)?,
            _ => false,
        };
        Ok(Volumes { project, store })
    }
}

/// The `docker run` arguments that give a throwaway container the environment's view: its
/// image, user, env, persisted volume and the store holding its Python environment (read-only)
/// and project folder (read-only).
pub fn throwaway_args(spec: &Spec, volumes: Volumes) -> Vec<String> {
    let mut args: Vec<String> =
        vec!["run".into(), "--rm".into(), "--interactive".into(), "--network".into(), "none".into()];
    // `--mount`, as `dpe jupyter` starts it: `--volume SRC:DST` splits a folder such as
    // `lab:2024` at its colon.
    if volumes.project {
        args.push("--mount".into());
        args.push(mount_value("volume", &spec.volume, &spec.volume_target, true));
    }
    if let (true, Some(store), Some(target)) = (volumes.store, &spec.store_volume, &spec.store_target) {
        args.push("--mount".into());
        args.push(mount_value("volume", store, target, true));
    }
    args.push("--mount".into());
    args.push(mount_value("bind", &spec.mount.source, &spec.mount.target, true));
    args.push("--workdir".into());
    args.push(spec.workdir.clone());
    args.extend(spec.user_and_env_args());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throwaway_mounts_survive_a_folder_with_a_colon_and_a_comma() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "project": "a", "image": "img", "container": "c", "volume": "dpe-a-env",
            "volume_target": "/opt/env", "workdir": "/work",
            "mount": {"source": "/home/me/lab:2024,x/projects/a", "target": "/work"}, "user": null,
            "workspace": "/home/me/lab:2024,x", "env_file": "", "bind": "127.0.0.1",
            "port": {"container": 8888, "host": 8888}, "base_url": "/a/", "url": "", "ready_url": ""
        }))
        .unwrap();
        let args = throwaway_args(&spec, Volumes { project: true, store: false });
        assert_eq!(
            args[5..9],
            [
                "--mount",
                "type=volume,source=dpe-a-env,target=/opt/env,readonly",
                "--mount",
                "type=bind,\"source=/home/me/lab:2024,x/projects/a\",target=/work,readonly"
            ]
        );
    }
}

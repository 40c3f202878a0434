//! The engine calls the plugin makes, all through `dpe docker …` (so hooks run and the core adds
//! its `dpe.*` labels), and the parsing of what they print.

use crate::error::{Error, Result};
use dpe_plugin::containers::{self, ListError};
use dpe_plugin::Context;
use std::process::Output;

/// Labels this plugin adds (the core adds `dpe.workspace`, `dpe.project` and `dpe.plugin`).
pub const LABEL_PORT: &str = "dpe.jupyter.port";
pub const LABEL_BASE_URL: &str = "dpe.jupyter.base_url";
pub const LABEL_KEY: &str = "dpe.jupyter.key";
pub const LABEL_USER: &str = "dpe.jupyter.user";
pub const LABEL_WORKDIR: &str = "dpe.jupyter.workdir";
/// The host its URL names (see [`crate::spec::url_host`]); absent on containers older than it.
pub const LABEL_URL_HOST: &str = "dpe.jupyter.url_host";

/// Runs `dpe docker ARGS` capturing its output.
pub fn output<S: AsRef<std::ffi::OsStr>>(context: &Context, args: &[S]) -> Result<Output> {
    dpe_plugin::client::docker_output(context, args)
        .map_err(|e| Error::io(format!("running `{} docker`", context.dpe_bin.display()), e))
}

/// Runs `dpe docker ARGS` and returns its stdout, or an error carrying docker's message.
pub fn checked<S: AsRef<std::ffi::OsStr>>(context: &Context, args: &[S], doing: &str) -> Result<String> {
    let out = output(context, args)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::new(format!("{doing} failed: {}", stderr.trim()))
            .with_code(dpe_plugin::client::exit_code(out.status).max(1)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether an image exists locally.
pub fn image_exists(context: &Context, image: &str) -> Result<bool> {
    let out = output(context, &["image", "inspect", "--format", "{{.Id}}", image])?;
    Ok(out.status.success())
}

/// One container, with what this plugin reads from its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// `running`, `exited`, `created`, …
    pub state: String,
    pub workspace: String,
    pub project: String,
    pub plugin: String,
    /// The host port the plugin recorded, when it is one of ours.
    pub port: Option<u16>,
    pub base_url: String,
    /// The host its URL names; empty on a container made before dpe recorded it.
    pub url_host: String,
    pub key: String,
    /// The user and folder commands run as (`exec`, `shell`, `pip`).
    pub user: String,
    pub workdir: String,
    /// The hash of the arguments it was created with.
    pub config: String,
    pub image: String,
    /// e.g. `Up 3 minutes`.
    pub status: String,
    /// Host ports it publishes (only while running).
    pub host_ports: Vec<u16>,
}

impl Container {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

impl From<containers::Container> for Container {
    fn from(c: containers::Container) -> Container {
        let label = |key: &str| c.label(key).to_string();
        Container {
            workspace: label("dpe.workspace"),
            project: label("dpe.project"),
            plugin: label("dpe.plugin"),
            port: c.label(LABEL_PORT).parse().ok(),
            base_url: label(LABEL_BASE_URL),
            url_host: label(LABEL_URL_HOST),
            key: label(LABEL_KEY),
            user: label(LABEL_USER),
            workdir: label(LABEL_WORKDIR),
            config: label(crate::spec::LABEL_CONFIG),
            id: c.id,
            name: c.name,
            state: c.state,
            image: c.image,
            status: c.status,
            host_ports: c.host_ports,
        }
    }
}

/// Every container of the engine, running or not, in two engine calls whatever their number
/// (the same on Docker and Podman, see [`dpe_plugin::containers`]): the plugin needs both its
/// own containers and the host ports all others publish.
pub fn containers(context: &Context) -> Result<Vec<Container>> {
    let query = containers::Query { all: true, filters: Vec::new() };
    match containers::list(context, &query) {
        Ok(list) => Ok(list.into_iter().map(Container::from).collect()),
        Err(ListError::Spawn(err)) => Err(Error::io(format!("running `{} docker`", context.dpe_bin.display()), err)),
        Err(ListError::Engine { message, code }) => {
            Err(Error::new(format!("listing containers failed: {message}")).with_code(code.max(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Podman's real listing of a dpe-like Jupyter container (recorded by
    /// `plugins/dpe-plugin/tests/fixtures/engine/record.sh`) gives every field this plugin reads.
    #[test]
    fn a_podman_listing_gives_the_labels_the_plugin_reads() {
        let list = containers::parse(
            include_str!("../../dpe-plugin/tests/fixtures/engine/podman-4.3.1-ps.txt"),
            include_str!("../../dpe-plugin/tests/fixtures/engine/podman-4.3.1-inspect.txt"),
        );
        let c = Container::from(list.into_iter().find(|c| c.name == "dpe-fixture-running").unwrap());
        assert!(c.running());
        assert_eq!(
            (c.workspace.as_str(), c.project.as_str(), c.plugin.as_str()),
            ("/home/me/work", "project_a", "jupyter")
        );
        assert_eq!(c.port, Some(23180));
        assert_eq!((c.base_url.as_str(), c.key.as_str()), ("/project_a/", "project_a-0123abcd"));
        assert_eq!((c.user.as_str(), c.workdir.as_str(), c.config.as_str()), ("1000:1000", "/work", "c0ffee"));
        assert_eq!(c.image, "dpe-test/bookworm:latest");
        assert_eq!(c.host_ports, vec![23180, 23181, 23182]);
    }
}

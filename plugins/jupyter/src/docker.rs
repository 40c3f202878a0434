//! The engine calls the plugin makes, all through `dpe docker …` (so hooks run and the core adds
//! its `dpe.*` labels), and the parsing of what they print.

use crate::error::{Error, Result};
use dpe_plugin::Context;
use std::process::Output;

/// Labels this plugin adds (the core adds `dpe.workspace`, `dpe.project` and `dpe.plugin`).
pub const LABEL_PORT: &str = "dpe.jupyter.port";
pub const LABEL_BASE_URL: &str = "dpe.jupyter.base_url";
pub const LABEL_KEY: &str = "dpe.jupyter.key";
pub const LABEL_USER: &str = "dpe.jupyter.user";
pub const LABEL_WORKDIR: &str = "dpe.jupyter.workdir";

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

/// One container, as `docker ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
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

const PS_FORMAT: &str = concat!(
    "{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label \"dpe.workspace\"}}\t{{.Label \"dpe.project\"}}\t",
    "{{.Label \"dpe.plugin\"}}\t{{.Label \"dpe.jupyter.port\"}}\t{{.Label \"dpe.jupyter.base_url\"}}\t",
    "{{.Label \"dpe.jupyter.key\"}}\t{{.Label \"dpe.jupyter.user\"}}\t{{.Label \"dpe.jupyter.workdir\"}}\t",
    "{{.Label \"dpe.jupyter.config\"}}\t{{.Image}}\t{{.Status}}\t{{.Ports}}"
);

/// Every container of the engine, running or not, in one call: the plugin needs both its own
/// containers and the host ports all others publish.
pub fn containers(context: &Context) -> Result<Vec<Container>> {
    let text = checked(context, &["ps", "-a", "--no-trunc", "--format", PS_FORMAT], "listing containers")?;
    Ok(parse_ps(&text))
}

pub fn parse_ps(text: &str) -> Vec<Container> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 15 {
                return None;
            }
            Some(Container {
                id: f[0].to_string(),
                name: f[1].to_string(),
                state: f[2].to_string(),
                workspace: f[3].to_string(),
                project: f[4].to_string(),
                plugin: f[5].to_string(),
                port: f[6].parse().ok(),
                base_url: f[7].to_string(),
                key: f[8].to_string(),
                user: f[9].to_string(),
                workdir: f[10].to_string(),
                config: f[11].to_string(),
                image: f[12].to_string(),
                status: f[13].to_string(),
                host_ports: parse_host_ports(f[14]),
            })
        })
        .collect()
}

/// The host ports in docker's `Ports` column (`127.0.0.1:8888->8888/tcp, [::]:9000->…`).
pub fn parse_host_ports(ports: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for item in ports.split(", ") {
        let Some((host, _)) = item.split_once("->") else { continue };
        let port = host.rsplit(':').next().unwrap_or("");
        if let Some((start, end)) = port.split_once('-') {
            if let (Ok(start), Ok(end)) = (start.parse::<u16>(), end.parse::<u16>()) {
                out.extend(start..=end);
            }
        } else if let Ok(port) = port.parse() {
            out.push(port);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_column_is_parsed_with_ranges_and_ipv6() {
        let column = "127.0.0.1:18080->80/tcp, 0.0.0.0:18081->81/tcp, [::]:18081->81/tcp, 0.0.0.0:9000-9001->9000-9001/tcp, 8888/tcp";
        assert_eq!(parse_host_ports(column), vec![9000, 9001, 18080, 18081]);
        assert!(parse_host_ports("").is_empty());
    }

    #[test]
    fn ps_lines_become_containers() {
        let line = "abc\tdpe-p-1\trunning\t/w\tp\tjupyter\t8890\t/p/\tp-1\t1000:1000\t/work\tc0ffee\tdpe-jupyter:12\tUp 2 minutes\t127.0.0.1:8890->8888/tcp";
        let list = parse_ps(line);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].port, Some(8890));
        assert_eq!(list[0].host_ports, vec![8890]);
        assert!(list[0].running());
    }
}

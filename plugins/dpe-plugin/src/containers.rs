//! Listing containers with their labels and published ports, the same way on Docker and Podman.
//!
//! `ps --format '{{.Label "…"}}'` and `ps --format '{{.State}}'` are Docker's alone (Podman has no
//! `Label` there and prints `Up 3 minutes ago` for the state), `ps --format json` differs in shape
//! (one object a line with labels as a lossy `a=b,c=d` string on Docker, one array with a label
//! map on Podman), so the listing is two calls whose output both engines print alike:
//!
//! 1. `ps [-a] --no-trunc [--filter …] --format '{{.ID}}\t{{.Status}}'` — which containers, and the
//!    human status (`Up 3 minutes`);
//! 2. `container inspect --format TEMPLATE ID…` for all of them at once, where [`TEMPLATE`] turns
//!    each container into one JSON object a line (so labels holding commas, tabs or newlines
//!    arrive intact).
//!
//! Both go through `dpe docker`, so hooks run around them and the configured engine answers. The
//! fixtures in `tests/fixtures/engine/` are both engines' real outputs (`record.sh` remakes them).

use crate::client;
use crate::context::Context;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::process::Output;

/// The `container inspect` template: Go template fields that Docker (20.10+) and Podman (4.3+)
/// both understand, each passed through `json` so the line is one JSON object.
pub const TEMPLATE: &str = concat!(
    r#"{"id":{{json .ID}},"name":{{json .Name}},"state":{{json .State.Status}},"#,
    r#""image":{{json .Config.Image}},"image_id":{{json .Image}},"labels":{{json .Config.Labels}},"ports":{{json .NetworkSettings.Ports}}}"#
);

/// One container as the engine reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    /// The full ID.
    pub id: String,
    /// The name, without the `/` Docker puts before it.
    pub name: String,
    /// `running`, `exited`, `created`, `paused`, …
    pub state: String,
    /// What `ps` shows, e.g. `Up 3 minutes` or `Exited (0) 2 hours ago`.
    pub status: String,
    /// The image it was created from, as it was named (Podman's `localhost/` for local images
    /// removed: see [`image_name`]).
    pub image: String,
    /// The ID of the image it runs, without Docker's `sha256:` (the image its tag named when it
    /// was created, even after the tag moved to a newer build).
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    /// The host ports it publishes; empty unless it runs (Podman keeps a stopped container's
    /// bindings in its inspect output, Docker does not, and neither holds the port then).
    pub host_ports: Vec<u16>,
}

impl Container {
    pub fn running(&self) -> bool {
        self.state == "running"
    }

    /// A label's value, or `""` when it is not set.
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map(String::as_str).unwrap_or("")
    }
}

/// Why a listing failed.
#[derive(Debug)]
pub enum ListError {
    /// `dpe docker` itself could not be run.
    Spawn(std::io::Error),
    /// The engine refused: its message (stderr, trimmed) and exit status.
    Engine { message: String, code: i32 },
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Spawn(err) => write!(f, "cannot run `dpe docker`: {err}"),
            ListError::Engine { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for ListError {}

/// Which containers to list: all or only running ones, and `ps --filter` values
/// (`label=dpe.workspace=/w`).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub all: bool,
    pub filters: Vec<String>,
}

/// Lists the containers `query` selects, in two engine calls whatever their number.
pub fn list(context: &Context, query: &Query) -> Result<Vec<Container>, ListError> {
    list_with(query, |args| client::docker_output(context, args))
}

/// [`list`], with the caller running `dpe docker ARGS…` (to set its environment) and returning
/// its captured output.
pub fn list_with(
    query: &Query,
    mut docker: impl FnMut(&[String]) -> std::io::Result<Output>,
) -> Result<Vec<Container>, ListError> {
    let mut ps = vec!["ps".to_string(), "--no-trunc".to_string()];
    if query.all {
        ps.push("-a".into());
    }
    for filter in &query.filters {
        ps.push("--filter".into());
        ps.push(filter.clone());
    }
    ps.extend(["--format".to_string(), "{{.ID}}\t{{.Status}}".to_string()]);
    let ps_out = docker(&ps).map_err(ListError::Spawn)?;
    if !ps_out.status.success() {
        return Err(engine_error(&ps_out));
    }
    let ps_text = String::from_utf8_lossy(&ps_out.stdout);
    let statuses = parse_ps(&ps_text);
    if statuses.is_empty() {
        return Ok(Vec::new());
    }
    let mut inspect = vec!["container".to_string(), "inspect".into(), "--format".into(), TEMPLATE.into()];
    inspect.extend(statuses.iter().map(|(id, _)| id.clone()));
    let inspect_out = docker(&inspect).map_err(ListError::Spawn)?;
    let inspect_text = String::from_utf8_lossy(&inspect_out.stdout);
    if !inspect_out.status.success() && !only_gone(&String::from_utf8_lossy(&inspect_out.stderr)) {
        return Err(engine_error(&inspect_out));
    }
    Ok(parse(&ps_text, &inspect_text))
}

fn engine_error(output: &Output) -> ListError {
    ListError::Engine {
        message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        code: client::exit_code(output.status),
    }
}

/// Whether an `inspect` failed only because containers `ps` listed were removed before it ran
/// (another command's `rm` in between): each line of its stderr says so. Both engines still
/// print the others, and a removed container is rightly left out of the listing.
pub fn only_gone(stderr: &str) -> bool {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).peekable();
    lines.peek().is_some() && lines.all(|line| line.to_lowercase().contains("no such container"))
}

/// The `ID<TAB>Status` lines of `ps`, in order.
fn parse_ps(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (id, status) = line.split_once('\t')?;
            Some((id.trim().to_string(), status.trim().to_string()))
        })
        .filter(|(id, _)| !id.is_empty())
        .collect()
}

/// One line of the [`TEMPLATE`] output.
#[derive(Deserialize)]
struct Inspected {
    id: String,
    name: String,
    state: String,
    image: String,
    /// Missing in listings recorded before it was asked for.
    #[serde(default)]
    image_id: String,
    /// `null` on Podman when there are none.
    labels: Option<BTreeMap<String, String>>,
    /// `"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]`; `null` for an unpublished port.
    ports: Option<HashMap<String, Option<Vec<Binding>>>>,
}

#[derive(Deserialize)]
struct Binding {
    #[serde(rename = "HostPort")]
    host_port: String,
}

/// Joins what `ps` and `inspect` printed, by ID, in `ps`'s order. A container only one of them
/// knows (created or removed between the calls) is left out; lines that are not the template's
/// JSON (a hook's chatter on stdout) are skipped.
pub fn parse(ps_text: &str, inspect_text: &str) -> Vec<Container> {
    let mut inspected: HashMap<String, Inspected> = inspect_text
        .lines()
        .filter_map(|line| serde_json::from_str::<Inspected>(line.trim()).ok())
        .map(|c| (c.id.clone(), c))
        .collect();
    parse_ps(ps_text)
        .into_iter()
        .filter_map(|(id, status)| {
            let c = inspected.remove(&id)?;
            let running = c.state == "running";
            let host_ports = if running { host_ports(c.ports.unwrap_or_default()) } else { Vec::new() };
            Some(Container {
                name: c.name.strip_prefix('/').unwrap_or(&c.name).to_string(),
                status: human_status(&status),
                image: image_name(&c.image).to_string(),
                image_id: image_id(&c.image_id).to_string(),
                labels: c.labels.unwrap_or_default(),
                state: c.state,
                host_ports,
                id,
            })
        })
        .collect()
}

/// Podman says `Up 3 minutes ago` where Docker says `Up 3 minutes`; the rest (`Exited (0) 2
/// hours ago`, `Created`) reads the same.
fn human_status(status: &str) -> String {
    match status.strip_prefix("Up ").and_then(|s| s.strip_suffix(" ago")) {
        Some(uptime) => format!("Up {uptime}"),
        None => status.to_string(),
    }
}

/// The image name as dpe wrote it: Podman reports an unqualified local image (`dpe-jupyter:1`)
/// as `localhost/dpe-jupyter:1`, its spelling for "no registry". For Docker `localhost/x` would
/// mean a registry on localhost:80, which dpe never names, so the prefix is removed for both.
pub fn image_name(image: &str) -> &str {
    image.strip_prefix("localhost/").unwrap_or(image)
}

/// An image ID as both engines can compare it: Docker writes `sha256:HEX`, Podman `HEX`.
pub fn image_id(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// The sorted, distinct host ports of an inspect `Ports` map (every address family alike).
fn host_ports(ports: HashMap<String, Option<Vec<Binding>>>) -> Vec<u16> {
    let mut out: Vec<u16> =
        ports.into_values().flatten().flatten().filter_map(|binding| binding.host_port.parse().ok()).collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_PS: &str = include_str!("../tests/fixtures/engine/docker-20.10.24+dfsg1-ps.txt");
    const DOCKER_INSPECT: &str = include_str!("../tests/fixtures/engine/docker-20.10.24+dfsg1-inspect.txt");
    const PODMAN_PS: &str = include_str!("../tests/fixtures/engine/podman-4.3.1-ps.txt");
    const PODMAN_INSPECT: &str = include_str!("../tests/fixtures/engine/podman-4.3.1-inspect.txt");

    fn by_name<'a>(list: &'a [Container], name: &str) -> &'a Container {
        list.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name} not listed in {list:#?}"))
    }

    /// The same three containers, made the same way on each engine, read the same.
    #[test]
    fn both_engines_real_outputs_read_the_same() {
        for (engine, ps, inspect, image) in [
            ("docker", DOCKER_PS, DOCKER_INSPECT, "dpe-test/bookworm:latest"),
            ("podman", PODMAN_PS, PODMAN_INSPECT, "dpe-test/bookworm:latest"),
        ] {
            let list = parse(ps, inspect);
            assert_eq!(list.len(), 3, "{engine}: {list:#?}");
            // `ps`'s order, and its IDs.
            let ps_ids: Vec<&str> = ps.lines().map(|l| l.split('\t').next().unwrap()).collect();
            assert_eq!(list.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ps_ids, "{engine}");

            let running = by_name(&list, "dpe-fixture-running");
            assert!(running.running(), "{engine}");
            assert!(running.status.starts_with("Up ") && !running.status.ends_with(" ago"), "{engine}: {running:?}");
            assert_eq!(running.image, image, "{engine}");
            assert_eq!(running.label("dpe.workspace"), "/home/me/work", "{engine}");
            assert_eq!(running.label("dpe.project"), "project_a", "{engine}");
            assert_eq!(running.label("dpe.jupyter.key"), "project_a-0123abcd", "{engine}");
            assert_eq!(running.label("dpe.jupyter.user"), "1000:1000", "{engine}");
            assert_eq!(running.label("dpe.missing"), "", "{engine}");
            assert_eq!(running.host_ports, vec![23180, 23181, 23182], "{engine}");

            let exited = by_name(&list, "dpe-fixture-exited");
            assert_eq!(exited.state, "exited", "{engine}");
            assert!(exited.status.starts_with("Exited (0) "), "{engine}: {exited:?}");
            assert!(exited.labels.is_empty(), "{engine}");
            assert!(exited.host_ports.is_empty(), "{engine}: a stopped container holds no port");

            let created = by_name(&list, "dpe-fixture-created");
            assert_eq!((created.state.as_str(), created.status.as_str()), ("created", "Created"), "{engine}");
            assert_eq!(created.label("odd"), "a,b=c", "{engine}");
            assert_eq!(created.label("tab"), "x\ty", "{engine}");
            assert_eq!(created.label("newline"), "one\ntwo", "{engine}");
            assert_eq!(created.label("quote"), "\"q\" é", "{engine}");
            assert!(created.host_ports.is_empty(), "{engine}");
        }
    }

    /// A container removed between `ps` and `inspect`: both engines print the rest and fail
    /// with "no such container", which leaves it out instead of failing the listing.
    #[test]
    fn a_container_removed_between_the_calls_is_left_out() {
        for (engine, ps, stdout, stderr) in [
            (
                "docker",
                DOCKER_PS,
                include_str!("../tests/fixtures/engine/docker-20.10.24+dfsg1-inspect-gone.txt"),
                include_str!("../tests/fixtures/engine/docker-20.10.24+dfsg1-inspect-gone.stderr"),
            ),
            (
                "podman",
                PODMAN_PS,
                include_str!("../tests/fixtures/engine/podman-4.3.1-inspect-gone.txt"),
                include_str!("../tests/fixtures/engine/podman-4.3.1-inspect-gone.stderr"),
            ),
        ] {
            // The recorded stderr ends with the script's note of the exit status.
            let stderr = stderr.lines().filter(|l| !l.starts_with("exit status")).collect::<Vec<_>>().join("\n");
            assert!(only_gone(&stderr), "{engine}: {stderr}");
            let names: Vec<String> = parse(ps, stdout).into_iter().map(|c| c.name).collect();
            assert_eq!(names, ["dpe-fixture-exited"], "{engine}");
        }
        assert!(!only_gone(""));
        assert!(!only_gone("Cannot connect to the Docker daemon at unix:///var/run/docker.sock"));
        assert!(!only_gone("Error: no such container x\npermission denied"));
    }

    /// What an engine printed, as `dpe docker` hands it back.
    fn printed(code: i32, stdout: &str, stderr: &str) -> std::io::Result<Output> {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::ExitStatus::from_raw(code << 8);
        Ok(Output { status, stdout: stdout.as_bytes().to_vec(), stderr: stderr.as_bytes().to_vec() })
    }

    /// The two calls, answered with Podman's recorded outputs: the arguments both engines take,
    /// no `inspect` when nothing is listed, and the engine's own message when it refuses.
    #[test]
    fn the_calls_and_their_failures() {
        let query = Query { all: true, filters: vec!["label=dpe.workspace=/w".into()] };
        let mut calls: Vec<Vec<String>> = Vec::new();
        let list = list_with(&query, |args| {
            calls.push(args.to_vec());
            if args[0] == "ps" {
                printed(0, PODMAN_PS, "")
            } else {
                printed(0, PODMAN_INSPECT, "")
            }
        })
        .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(
            calls[0],
            ["ps", "--no-trunc", "-a", "--filter", "label=dpe.workspace=/w", "--format", "{{.ID}}\t{{.Status}}"]
        );
        assert_eq!(calls[1][..4], ["container", "inspect", "--format", TEMPLATE]);
        assert_eq!(calls[1].len(), 4 + 3, "one inspect for all three: {:?}", calls[1]);

        let mut calls = 0;
        let empty = list_with(&Query::default(), |_| {
            calls += 1;
            printed(0, "", "")
        });
        assert_eq!((empty.unwrap(), calls), (Vec::new(), 1));

        let refused = "Error: template: ps:1:43: executing \"ps\" at <.Label>: can't evaluate field Label in type containers.psReporter\n";
        match list_with(&Query::default(), |_| printed(125, "", refused)) {
            Err(ListError::Engine { message, code }) => assert_eq!((message.as_str(), code), (refused.trim(), 125)),
            other => panic!("{other:?}"),
        }
        let down = "Cannot connect to the Podman socket\n";
        let answer = |args: &[String]| if args[0] == "ps" { printed(0, PODMAN_PS, "") } else { printed(125, "", down) };
        assert!(matches!(list_with(&Query::default(), answer), Err(ListError::Engine { code: 125, .. })));
    }

    #[test]
    fn statuses_images_and_chatter() {
        assert_eq!(human_status("Up 3 minutes ago"), "Up 3 minutes");
        assert_eq!(human_status("Up 2 hours (healthy)"), "Up 2 hours (healthy)");
        assert_eq!(human_status("Exited (0) 2 hours ago"), "Exited (0) 2 hours ago");
        assert_eq!(image_name("localhost/dpe-jupyter:12"), "dpe-jupyter:12");
        assert_eq!(image_name("registry.example/x:1"), "registry.example/x:1");
        // A hook printing on stdout does not break the listing.
        let ps = format!("hook says hi\n{DOCKER_PS}");
        let inspect = format!("{{\"not\": \"ours\"}}\nhook says hi\n{DOCKER_INSPECT}");
        assert_eq!(parse(&ps, &inspect).len(), 3);
    }
}

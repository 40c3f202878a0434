//! Waiting for a deployed stack: `docker stack deploy` returns once the services are created,
//! before any task runs, so a notebook could not yet reach a service by name. `deploy` waits
//! here until every service has a running task. A task of a service with a healthcheck stays
//! `starting` until the check passes, so "running" also means "healthy" where that is defined.
//! What the swarm says comes from `dpe docker service ps --no-trunc`, parsed by [`parse`].
//!
//! A running task is not always a name yet: each node's embedded DNS answers from the service
//! records libnetwork keeps per network, and a task enters them when its service binding is
//! activated (after its healthcheck passes). The same step writes the task's endpoint record to the
//! network's cluster table (libnetwork `addServiceInfoToCluster`: the DNS records first, then the
//! table entry; removal goes the other way), and `docker network inspect --verbose` lists that
//! table as `Services`. The task executor activates the binding before it reports the task running,
//! so on the node that runs the task the two agree; a notebook on another node resolves the name
//! only once its node has the record from the table. So once every service runs, `deploy` also
//! waits until the stack network's `Services`, as the engine dpe talks to sees them, list a task of
//! each service ([`published`]), one engine call a poll.

use crate::stack::{dpe, output};
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A service whose tasks failed this many times is crash-looping: report it instead of waiting.
const FAILURES_BEFORE_GIVING_UP: usize = 3;
/// How often progress is printed while waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What the swarm says about one service's tasks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// Whether a task that should run does (and is healthy, where there is a healthcheck).
    pub running: bool,
    /// The newest task's state, e.g. `Starting 3 seconds ago`.
    pub state: String,
    /// The newest error a task reported, e.g. `No such image: x:1`.
    pub error: Option<String>,
    /// How many tasks ended in `Failed` or `Rejected`.
    pub failures: usize,
}

/// Parses `service ps` lines of `NAME\tDESIRED\tCURRENT\tERROR` (newest first, as docker lists
/// them) into each service's state, keyed by the swarm service name (`<stack>_<key>`).
pub fn parse(text: &str) -> BTreeMap<String, ServiceState> {
    let mut services: BTreeMap<String, ServiceState> = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split('\t');
        let (Some(name), Some(desired), Some(current)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // `--no-trunc` quotes the error: `"No such image: x:1"`.
        let error = fields.next().map(|e| e.trim().trim_matches('"')).filter(|e| !e.is_empty());
        // Older tasks of a slot are listed as `\_ stack_svc.1`; the slot follows the last dot.
        let task = name.trim().trim_start_matches("\\_").trim();
        let service = task.rsplit_once('.').map_or(task, |(service, _slot)| service);
        let entry = services.entry(service.to_string()).or_default();
        let first = entry.state.is_empty();
        if first {
            entry.state = current.trim().to_string();
        }
        if desired.trim() == "Running" && current.trim().starts_with("Running") {
            entry.running = true;
        }
        if current.starts_with("Failed") || current.starts_with("Rejected") {
            entry.failures += 1;
        }
        if entry.error.is_none() {
            entry.error = error.map(str::to_string);
        }
    }
    services
}

/// The services (swarm service names) that `docker network inspect --verbose --format
/// '{{json .Services}}'` lists with at least one task, i.e. that the network's DNS answers for.
/// `null` (a network the node's cluster agent does not serve yet) lists none.
pub fn published(json: &str) -> serde_json::Result<BTreeSet<String>> {
    let services: Option<BTreeMap<String, serde_json::Value>> = serde_json::from_str(json.trim())?;
    Ok(services
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, service)| service["Tasks"].as_array().is_some_and(|tasks| !tasks.is_empty()))
        .map(|(name, _)| name)
        .collect())
}

/// Waits until each of `services` (swarm service names) has a running task and then until the
/// stack's `network` resolves each by name, printing progress to stderr, all within `timeout`;
/// fails naming the first service that does not get there, with its task's error.
pub fn wait_running(context: &Context, services: &[String], network: &str, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut last_progress = started;
    loop {
        let states = states(context, services)?;
        let pending: Vec<(&String, ServiceState)> = services
            .iter()
            .map(|name| (name, states.get(name).cloned().unwrap_or_default()))
            .filter(|(_, state)| !state.running)
            .collect();
        let Some((first, state)) = pending.first() else {
            return wait_published(context, services, network, timeout, started);
        };
        if let Some((name, state)) = pending.iter().find(|(_, s)| s.failures >= FAILURES_BEFORE_GIVING_UP) {
            // The threshold, not the count seen: the swarm retries a rejected task within a
            // second, so how many failures one poll sees depends on the machine's load.
            let why = format!("its tasks failed at least {FAILURES_BEFORE_GIVING_UP} times");
            return Err(not_running(name, state, &why));
        }
        if started.elapsed() >= timeout {
            return Err(not_running(
                first,
                state,
                &format!("it has no running task after {} seconds", timeout.as_secs()),
            ));
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            let list: Vec<String> = pending
                .iter()
                .map(|(name, s)| format!("{name} ({})", if s.state.is_empty() { "no task yet" } else { &s.state }))
                .collect();
            eprintln!("dpe: waiting for {} of {} services to run: {}", pending.len(), services.len(), list.join(", "));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The second half of [`wait_running`]: every service runs; wait for the network to list each,
/// one engine call a poll, until `timeout` has passed since `started`.
fn wait_published(
    context: &Context,
    services: &[String],
    network: &str,
    timeout: Duration,
    started: Instant,
) -> Result<()> {
    let mut last_progress = Instant::now();
    loop {
        let json = output(
            dpe(context, None).args([
                "docker",
                "network",
                "inspect",
                "--verbose",
                "--format",
                "{{json .Services}}",
                network,
            ]),
            "dpe docker network inspect",
        )?;
        let published = published(&json).map_err(|e| {
            Error::new(format!("cannot read the services `dpe docker network inspect --verbose {network}` lists: {e}"))
                .with_help("`dpe compose deploy` needs a Docker engine of version 20.10 or newer")
        })?;
        let pending: Vec<&str> =
            services.iter().filter(|name| !published.contains(*name)).map(String::as_str).collect();
        let Some(first) = pending.first() else { return Ok(()) };
        if started.elapsed() >= timeout {
            return Err(not_published(first, network, timeout));
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            eprintln!(
                "dpe: waiting for {} of {} services to be reachable by name on the network `{network}`: {}",
                pending.len(),
                services.len(),
                pending.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn not_published(name: &str, network: &str, timeout: Duration) -> Error {
    Error::new(format!(
        "service `{name}` of the stack runs but is not reachable by name: the network `{network}` does not list it after {} seconds",
        timeout.as_secs()
    ))
    .with_help(format!(
        "see `dpe docker network inspect --verbose {network}` (its `Services`) and `dpe docker service ps --no-trunc {name}`"
    ))
}

fn states(context: &Context, services: &[String]) -> Result<BTreeMap<String, ServiceState>> {
    let format = "{{.Name}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}";
    let text = output(
        dpe(context, None).args(["docker", "service", "ps", "--no-trunc", "--format", format]).args(services),
        "dpe docker service ps",
    )?;
    Ok(parse(&text))
}

fn not_running(name: &str, state: &ServiceState, why: &str) -> Error {
    let error = match &state.error {
        Some(error) => format!("; its task says: {error}"),
        None if !state.state.is_empty() => format!("; its task is {}", state.state.to_lowercase()),
        None => String::new(),
    };
    Error::new(format!("service `{name}` of the stack is not running: {why}{error}"))
        .with_help(format!("see `dpe docker service ps --no-trunc {name}` and `dpe docker service logs {name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_starting_and_failing_services_are_told_apart() {
        let text = "\
s_alpha.1\tRunning\tRunning 3 seconds ago\t\n\
s_beta-web.1\tRunning\tStarting 2 seconds ago\t\n\
s_beta-db.1\tRunning\tRejected 1 second ago\t\"No such image: nope:1\"\n\
\\_ s_beta-db.1\tShutdown\tRejected 6 seconds ago\tNo such image: nope:1\n\
s_old.1\tShutdown\tRunning 9 seconds ago\t\n";
        let states = parse(text);
        assert!(states["s_alpha"].running);
        assert_eq!(
            states["s_beta-web"],
            ServiceState { running: false, state: "Starting 2 seconds ago".into(), error: None, failures: 0 }
        );
        assert_eq!(
            states["s_beta-db"],
            ServiceState {
                running: false,
                state: "Rejected 1 second ago".into(),
                error: Some("No such image: nope:1".into()),
                failures: 2
            }
        );
        // A task that runs but is being shut down does not count.
        assert!(!states["s_old"].running);
        let failure = not_running("s_beta-db", &states["s_beta-db"], "its tasks failed at least 3 times");
        assert_eq!(
            failure.to_string(),
            "error: service `s_beta-db` of the stack is not running: its tasks failed at least 3 times; its task says: No such image: nope:1\n\
             help: see `dpe docker service ps --no-trunc s_beta-db` and `dpe docker service logs s_beta-db`"
        );
    }

    #[test]
    fn only_services_listed_with_a_task_are_reachable() {
        // The shape `docker network inspect --verbose --format '{{json .Services}}'` prints (docker
        // 20.10, IDs shortened), with `s_beta-web` not published yet: a service is listed once
        // one of its tasks' endpoint records is (and one listed with no task resolves to nothing).
        let json = r#"{"s_alpha":{"VIP":"<nil>","Ports":[],"LocalLBIndex":332,"Tasks":[{"Name":"s_alpha.1.xszh24c2","EndpointID":"8f6abcbc","EndpointIP":"10.0.1.2","Info":{"Host IP":"127.0.0.1"}}]},"s_beta":{"VIP":"<nil>","Ports":[],"LocalLBIndex":331,"Tasks":[{"Name":"s_beta.1.5n4ouezd","EndpointID":"cb6381c5","EndpointIP":"10.0.1.3","Info":{"Host IP":"127.0.0.1"}}]},"s_idle":{"VIP":"10.0.1.9","Ports":[],"LocalLBIndex":334,"Tasks":[]}}"#;
        assert_eq!(published(json).unwrap(), BTreeSet::from(["s_alpha".to_string(), "s_beta".to_string()]));
        // A network the node's cluster agent does not serve lists nothing.
        assert_eq!(published("null\n").unwrap(), BTreeSet::new());
        assert_eq!(
            not_published("s_beta-web", "s_default", Duration::from_secs(120)).to_string(),
            "error: service `s_beta-web` of the stack runs but is not reachable by name: the network `s_default` does not list it after 120 seconds\n\
             help: see `dpe docker network inspect --verbose s_default` (its `Services`) and `dpe docker service ps --no-trunc s_beta-web`"
        );
    }
}

//! Waiting for a deployed stack: `docker stack deploy` returns once the services are created,
//! before any task runs, so a notebook could not yet reach a service by name. `deploy` waits
//! here until every service has a running task. A task of a service with a healthcheck stays
//! `starting` until the check passes, so "running" also means "healthy" where that is defined.
//! What the swarm says comes from `dpe docker service ps --no-trunc`, parsed by [`parse`].

use crate::failure::{Failure, Result};
use crate::stack::{dpe, output};
use dpe_plugin::Context;
use std::collections::BTreeMap;
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

/// Waits until each of `services` (swarm service names) has a running task, printing progress
/// to stderr; fails naming the first that does not, with its task's error.
pub fn wait_running(context: &Context, services: &[String], timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut last_progress = started;
    loop {
        let states = states(context, services)?;
        let pending: Vec<(&String, ServiceState)> = services
            .iter()
            .map(|name| (name, states.get(name).cloned().unwrap_or_default()))
            .filter(|(_, state)| !state.running)
            .collect();
        let Some((first, state)) = pending.first() else { return Ok(()) };
        if let Some((name, state)) = pending.iter().find(|(_, s)| s.failures >= FAILURES_BEFORE_GIVING_UP) {
            return Err(not_running(name, state, &format!("its tasks failed {} times", state.failures)));
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

fn states(context: &Context, services: &[String]) -> Result<BTreeMap<String, ServiceState>> {
    let format = "{{.Name}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}";
    let text = output(
        dpe(context, None).args(["docker", "service", "ps", "--no-trunc", "--format", format]).args(services),
        "dpe docker service ps",
    )?;
    Ok(parse(&text))
}

fn not_running(name: &str, state: &ServiceState, why: &str) -> Failure {
    let error = match &state.error {
        Some(error) => format!("; its task says: {error}"),
        None if !state.state.is_empty() => format!("; its task is {}", state.state.to_lowercase()),
        None => String::new(),
    };
    Failure::new(format!("service `{name}` of the stack is not running: {why}{error}"))
        .help(format!("see `dpe docker service ps --no-trunc {name}` and `dpe docker service logs {name}`"))
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
        let failure = not_running("s_beta-db", &states["s_beta-db"], "its tasks failed 2 times");
        assert_eq!(
            failure.to_string(),
            "error: service `s_beta-db` of the stack is not running: its tasks failed 2 times; its task says: No such image: nope:1\n\
             help: see `dpe docker service ps --no-trunc s_beta-db` and `dpe docker service logs s_beta-db`\n"
        );
    }
}

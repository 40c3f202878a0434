//! One module per subcommand, plus what several of them share: planning a stack (which
//! projects, their fragments, the checks made before anything starts), waiting for notebooks
//! to answer, and undoing a failed start.

pub mod config;
pub mod deploy;
pub mod down;
pub mod logs;
pub mod ps;
pub mod restart;
pub mod up;

use crate::model::{self, Fragment, Target};
use crate::net;
use crate::project;
use crate::selection::{self, Workspace};
use crate::stack::{dpe, output, Stack};
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The stack a command works on, as it stands in the state directory.
pub fn current(context: &Context) -> Result<(Stack, Vec<Fragment>)> {
    let stack = Stack::new(context, Workspace::from_context(context)?);
    let fragments = stack.load_fragments()?;
    Ok((stack, fragments))
}

/// What `up`, `config` and `deploy` are about to run.
pub struct Plan {
    pub stack: Stack,
    /// The projects asked for, freshly described by the jupyter plugin and the core.
    pub fresh: Vec<Fragment>,
    /// Every project in the file: those already up (as saved) and the fresh ones.
    pub all: Vec<Fragment>,
    /// The projects already up and not asked for, unchanged.
    pub kept: Vec<Fragment>,
}

/// Describes the selected projects and checks the whole stack. Nothing is started; images are
/// built by the jupyter plugin when missing (that is cached by content, so an unchanged project
/// is never rebuilt).
pub fn plan(context: &Context, named: &[String], keep_running: bool) -> Result<Plan> {
    let workspace = Workspace::from_context(context)?;
    let (projects, _source) = selection::resolve(context, &workspace, named)?;
    let stack = Stack::new(context, workspace);
    let saved = stack.load_fragments()?;
    let kept: Vec<Fragment> = if keep_running && !saved.is_empty() {
        // Keep only the saved projects that still have containers: a stack removed behind
        // dpe's back (plain `docker compose down`) drops out of the file.
        let present = stack.projects(context)?;
        saved.into_iter().filter(|f| present.contains(&f.project) && !projects.contains(&f.project)).collect()
    } else {
        Vec::new()
    };
    let mut fresh = Vec::new();
    for name in &projects {
        fresh.push(project::load(context, &stack, name)?);
    }
    let mut all = kept.clone();
    all.extend(fresh.iter().cloned());
    all.sort_by(|a, b| a.project.cmp(&b.project));
    model::validate(&all)?;
    Ok(Plan { stack, fresh, all, kept })
}

/// Fails when a host port the fresh services publish is taken by something outside the stack
/// (a notebook started with `dpe jupyter`, another program), naming who holds it.
pub fn check_ports_free(context: &Context, stack: &Stack, fresh: &[Fragment], target: Target) -> Result<()> {
    let running = match target {
        Target::Compose => stack.services(context, true)?,
        // A deploy replaces the stack's tasks in place; compose containers still count.
        Target::Swarm => BTreeSet::new(),
    };
    for fragment in fresh {
        for service in fragment.services.iter().filter(|s| !running.contains(&s.key)) {
            for port in &service.ports {
                if !net::port_in_use(&port.bind, port.host) {
                    continue;
                }
                let who = port_holder(context, port.host)
                    .map(|name| format!("container `{name}`"))
                    .unwrap_or_else(|| "another program".to_string());
                let owner = match &service.short {
                    Some(short) => format!("service `{short}` of project `{}`", fragment.project),
                    None => format!("project `{}`", fragment.project),
                };
                return Err(Error::new(format!(
                    "port clash: host port {} ({owner}, container port {}) is already used by {who}",
                    port.host, port.container
                ))
                .with_help(format!(
                    "stop it first (`dpe jupyter stop {}` if the notebook runs on its own), then run this again",
                    fragment.project
                )));
            }
        }
    }
    Ok(())
}

/// The container publishing a host port, if a container does.
fn port_holder(context: &Context, port: u16) -> Option<String> {
    let filter = format!("publish={port}");
    let text = output(
        dpe(context, None).args(["docker", "ps", "--filter", &filter, "--format", "{{.Names}}"]),
        "dpe docker ps",
    )
    .ok()?;
    text.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty())
}

/// Waits until every fragment's notebook answers; returns `(project, url)` pairs in order.
/// Each project waits as long as its own `[jupyter] ready_timeout` allows, and none longer than
/// `timeout` (see [`ready_timeout`]). `alive` says whether a project's notebook container still
/// runs, so a crash is reported at once instead of after the timeout.
pub fn wait_ready(
    fragments: &[Fragment],
    timeout: Duration,
    mut alive: impl FnMut(&str) -> bool,
) -> Result<Vec<(String, String)>> {
    let deadline = dpe_plugin::deadline_after(timeout);
    let mut pending: Vec<&Fragment> = fragments.iter().filter(|f| f.ready_url.is_some()).collect();
    let mut rounds = 0u32;
    let started = Instant::now();
    while !pending.is_empty() {
        pending.retain(|f| !net::answers_200(f.ready_url.as_deref().unwrap_or_default()));
        if pending.is_empty() {
            break;
        }
        rounds += 1;
        if rounds.is_multiple_of(6) {
            if let Some(dead) = pending.iter().find(|f| !alive(&f.project)) {
                return Err(Error::new(format!("the notebook of project `{}` stopped while starting", dead.project))
                    .with_help(format!(
                        "its log is above; check `[jupyter] command` and the image in the dpe.toml of `{}`",
                        dead.project
                    )));
            }
        }
        let overall = Instant::now() >= deadline;
        let late: Vec<&&Fragment> =
            pending.iter().filter(|f| overall || started.elapsed().as_secs() >= f.ready_timeout.max(1)).collect();
        if !late.is_empty() {
            let names: Vec<String> = late.iter().map(|f| format!("`{}`", f.project)).collect();
            let waited = late.iter().map(|f| f.ready_timeout).max().unwrap_or_default().min(timeout.as_secs());
            return Err(Error::new(format!(
                "the notebook of {} did not answer within {waited} seconds",
                names.join(", ")
            ))
            .with_help(
                "raise `[jupyter] ready_timeout` in dpe.toml if the server is slow to start; its log is above",
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(fragments.iter().filter_map(|f| f.url.clone().map(|url| (f.project.clone(), url))).collect())
}

/// Prints each project's URL, aligned, or a JSON list with `--json`.
pub fn print_urls(context: &Context, urls: &[(String, String)]) {
    if context.json {
        let list: Vec<serde_json::Value> =
            urls.iter().map(|(project, url)| serde_json::json!({"project": project, "url": url})).collect();
        write_stdout(&format!("{}\n", serde_json::Value::Array(list)));
        return;
    }
    let width = urls.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    let text: String = urls.iter().map(|(project, url)| format!("{project:width$}  {url}\n")).collect();
    write_stdout(&text);
}

/// Writes the answer to stdout. A closed pipe (`dpe compose config | head`) is not an error
/// worth a panic: the reader has what it wanted.
pub fn write_stdout(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush());
}

/// How long to wait for the notebooks of `fragments` at most: the longest of their projects'
/// own `[jupyter] ready_timeout` (the compose call's context is the workspace's, not theirs).
pub fn ready_timeout(fragments: &[Fragment]) -> Duration {
    Duration::from_secs(fragments.iter().map(|f| f.ready_timeout).max().unwrap_or_default().max(1))
}

/// Undoes a failed start: removes the containers that were not there `before` (the whole stack,
/// network included, when nothing was), then restores the file and state of the projects that
/// were already up. Problems are reported, not raised: the original failure is what matters.
pub fn roll_back(context: &Context, stack: &Stack, before: &BTreeSet<String>, kept: &[Fragment]) {
    let after = stack.services(context, false).unwrap_or_default();
    let started: Vec<&str> = after.difference(before).map(String::as_str).collect();
    let network_left = before.is_empty() && stack_network_exists(context, stack);
    if !started.is_empty() || network_left {
        if !started.is_empty() {
            eprintln!("note: removing what this start created: {}", started.join(", "));
        }
        let result = if before.is_empty() {
            stack.run_compose_quietly(context, &["down", "--remove-orphans"])
        } else {
            let mut args = vec!["rm", "--stop", "--force"];
            args.extend(&started);
            stack.run_compose_quietly(context, &args)
        };
        if result.is_err() {
            eprintln!("warning: could not remove everything this start created");
            eprintln!("help: run `dpe compose down` once the cause above is fixed");
        }
    }
    let restored = if kept.is_empty() { Ok(()) } else { stack.write(kept, Target::Compose).map(|_| ()) };
    if let Err(failure) = restored.and_then(|_| stack.save_fragments(kept)) {
        failure.report();
    }
}

fn stack_network_exists(context: &Context, stack: &Stack) -> bool {
    let filter = format!("label=com.docker.compose.project={}", stack.name);
    output(dpe(context, None).args(["docker", "network", "ls", "-q", "--filter", &filter]), "dpe docker network ls")
        .map(|text| !text.trim().is_empty())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn notebook(project: &str, ready_url: String, ready_timeout: u64) -> Fragment {
        Fragment {
            project: project.into(),
            services: Vec::new(),
            volumes: Vec::new(),
            url: Some(format!("{ready_url}#url")),
            ready_url: Some(ready_url),
            ready_timeout,
        }
    }

    /// A server that answers 200 only once `after` has passed (refusing nothing before: its
    /// connections are accepted and answered 503, as a proxy in front of a starting server).
    fn slow_server(after: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ready_at = Instant::now() + after;
        std::thread::spawn(move || {
            for mut conn in listener.incoming().map_while(std::result::Result::ok) {
                let mut buf = [0u8; 512];
                let _ = conn.read(&mut buf);
                let status = if Instant::now() >= ready_at { "200 OK" } else { "503 Starting" };
                let _ = conn.write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes());
            }
        });
        format!("http://127.0.0.1:{port}/api/status")
    }

    /// The workspace says 1 s, the project 30 s: a server that needs 3 s is waited for, because
    /// the wait follows each project's own configuration.
    #[test]
    fn each_project_waits_as_long_as_its_own_ready_timeout() {
        let slow = notebook("a", slow_server(Duration::from_secs(3)), 30);
        let only = std::slice::from_ref(&slow);
        let urls = wait_ready(only, ready_timeout(only), |_| true).unwrap();
        assert_eq!(urls, [("a".to_string(), format!("{}#url", slow.ready_url.unwrap()))]);

        // A project that allows 1 s gives up after 1 s, even beside one that allows more.
        let patient = notebook("b", slow_server(Duration::from_secs(3600)), 30);
        let hasty = notebook("c", slow_server(Duration::from_secs(3600)), 1);
        let both = [patient, hasty];
        let clock = Instant::now();
        let err = wait_ready(&both, ready_timeout(&both), |_| true).unwrap_err();
        assert!(clock.elapsed() < Duration::from_secs(10), "{:?}", clock.elapsed());
        assert!(err.to_string().starts_with("error: the notebook of `c` did not answer within 1 seconds\n"), "{err}");
        assert_eq!(ready_timeout(&both), Duration::from_secs(30));
    }
}

//! `dpe jupyter list [--json] [--stats] [--size]`: every dpe Jupyter environment of this user,
//! in every workspace, running or stopped, with what it uses and whether its image is stale.
//!
//! Environments are found by the labels the plugin puts on their containers (one `ps` and one
//! `inspect` for all of them) and are this user's when their token lies in this user's state
//! folder, as `gc` decides. Everything else is asked at once, each on its own thread, so fifty
//! environments cost about as much as one: each running server's `api/status` (idle time), the
//! plan of each project's current configuration (`dpe context` and the image plan, building
//! nothing: stale or not), `nvidia-smi` when some server runs, and, when asked, one `stats`
//! snapshot (`--stats`) and the image, volume and container sizes (`--size`), which take the
//! engine seconds. A project whose folder or workspace is gone, or whose configuration no longer
//! reads, cannot be planned: its staleness is unknown (`?`, `null`).

use crate::commands::gc::current_plan;
use crate::commands::url_of;
use crate::docker::{self, Container, LABEL_KEY};
use crate::project::Project;
use crate::spec::IDLE_EXIT_CODE;
use crate::store::Environments;
use crate::usage::{self, Activity, DiskUsage, Stats};
use dpe_plugin::sdk::units;
use dpe_plugin::sdk::Result;
use dpe_plugin::Context;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// What the command line asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked {
    pub json: bool,
    pub stats: bool,
    pub size: bool,
}

/// One environment: every column of the table and of `--json` (`null` when unknown or not
/// asked for).
#[derive(Debug, Default, serde::Serialize)]
struct Row {
    project: String,
    workspace: String,
    container: String,
    /// `running`, `stopped`, `stopped-idle`, `exited N`, `created`, or the engine's state.
    status: String,
    exit_code: Option<i32>,
    /// What the engine says (`Up 3 minutes`, `Exited (85) 2 hours ago`).
    engine_status: String,
    port: Option<u16>,
    url: Option<String>,
    uptime: Option<String>,
    uptime_seconds: Option<u64>,
    last_activity: Option<String>,
    idle_seconds: Option<u64>,
    kernels: Option<u64>,
    connections: Option<u64>,
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
    memory_limit_bytes: Option<u64>,
    gpu_memory_bytes: Option<u64>,
    image: String,
    image_bytes: Option<u64>,
    volume: String,
    volume_bytes: Option<u64>,
    /// A trusted project's environment in the shared package store: the bytes only it holds
    /// (what removing it frees; files hardlinked from the cache are the cache's).
    store_bytes: Option<u64>,
    container_bytes: Option<u64>,
    stale: Option<bool>,
    planned_image: Option<String>,
}

/// What was measured, besides the listing itself.
#[derive(Default)]
struct Measured {
    /// Per container, in the listing's order.
    urls: Vec<Option<String>>,
    activity: Vec<Option<Activity>>,
    /// (workspace, project) → the image its current configuration plans.
    planned: HashMap<(String, String), Option<String>>,
    /// `None`: no `nvidia-smi` (or no server running).
    gpu: Option<HashMap<String, u64>>,
    stats: Option<HashMap<String, Stats>>,
    /// Image ID → bytes.
    images: Option<HashMap<String, u64>>,
    disk: Option<DiskUsage>,
    /// Project volume name → the own bytes of its environment in the package store.
    in_store: Option<Environments>,
}

pub fn run(context: &Context, asked: &Asked) -> Result<i32> {
    let clock = std::time::Instant::now();
    // `-vv` shows where the time of a listing goes.
    let phase = |what: &str| {
        if context.verbosity >= 2 {
            crate::say::err(&format!("dpe: [{:>6.3}s] {what}", clock.elapsed().as_secs_f64()));
        }
    };
    let mut containers: Vec<Container> = docker::containers_matching(context, &[&format!("label={LABEL_KEY}")])?
        .into_iter()
        // The key label marks a Jupyter environment, whoever started it (`dpe jupyter` or
        // `dpe compose`, which runs the same specification); the token makes it this user's.
        .filter(|c| !c.key.is_empty() && crate::secrets::read_token(&context.state_dir, &c.key).is_some())
        .collect();
    containers.sort_by(|a, b| (&a.workspace, &a.project).cmp(&(&b.workspace, &b.project)));
    phase(&format!("listed {} environment(s)", containers.len()));
    let measured = measure(context, &containers, asked, &phase);
    phase("measured them");
    let now = usage::now();
    let rows: Vec<Row> = containers.iter().enumerate().map(|(i, c)| row(c, i, &measured, now)).collect();
    if asked.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(0);
    }
    if rows.is_empty() {
        eprintln!("dpe: you have no Jupyter environment (`dpe jupyter PROJECT` starts one)");
        return Ok(0);
    }
    print_table(&rows, asked, measured.gpu.is_some());
    Ok(0)
}

/// Asks the servers, the planner, `nvidia-smi` and (as asked) the engine, all at once.
fn measure(context: &Context, containers: &[Container], asked: &Asked, phase: &dyn Fn(&str)) -> Measured {
    let running: Vec<&Container> = containers.iter().filter(|c| c.running()).collect();
    let running_ids: Vec<String> = running.iter().map(|c| c.id.clone()).collect();
    let urls: Vec<Option<String>> =
        containers.iter().map(|c| if c.running() { url_of(context, c) } else { None }).collect();
    let projects: BTreeSet<(String, String)> =
        containers.iter().map(|c| (c.workspace.clone(), c.project.clone())).collect();
    std::thread::scope(|scope| {
        let activity: Vec<_> = urls
            .iter()
            .map(|url| {
                let status_url = url.as_ref().map(|u| u.replacen("?token=", "api/status?token=", 1));
                scope.spawn(move || usage::server_activity(&status_url?))
            })
            .collect();
        let planned: Vec<_> = projects
            .iter()
            .map(|(workspace, name)| scope.spawn(move || planned_image(context, workspace, name)))
            .collect();
        let gpu = scope.spawn(|| if running_ids.is_empty() { None } else { usage::gpu_memory(&running_ids) });
        let stats = scope.spawn(|| (asked.stats && !running_ids.is_empty()).then(|| stats(context, &running_ids)));
        let images = scope.spawn(|| asked.size.then(|| image_sizes(context, containers)));
        let in_store = scope.spawn(|| asked.size.then(|| store_sizes(context, containers)));
        let disk = asked.size.then(|| disk_usage(context));
        let activity = activity.into_iter().map(|h| h.join().unwrap_or(None)).collect();
        phase("servers answered");
        let planned = projects.iter().cloned().zip(planned.into_iter().map(|h| h.join().unwrap_or(None))).collect();
        phase("planned the projects");
        Measured {
            activity,
            planned,
            gpu: gpu.join().unwrap_or(None),
            stats: stats.join().unwrap_or(None),
            images: images.join().unwrap_or(None),
            disk,
            in_store: in_store.join().unwrap_or(None),
            urls,
        }
    })
}

/// The image the project's current configuration plans (an imported environment's own tag
/// where `dpe import` recorded one), as the next `dpe jupyter` would run it.
fn planned_image(context: &Context, workspace: &str, name: &str) -> Option<String> {
    let (project, plan) = current_plan(context, Path::new(workspace), name)?;
    Some(crate::imported::adopt(&context.state_dir, &project, plan).ok()?.tag)
}

/// One `stats` snapshot of the running containers (the engine samples for about two seconds).
fn stats(context: &Context, ids: &[String]) -> HashMap<String, Stats> {
    let mut args = vec!["stats".to_string(), "--no-stream".into(), "--format".into(), usage::STATS_FORMAT.into()];
    args.extend(ids.iter().cloned());
    docker::captured(context, &args)
        .map(|out| usage::parse_stats(&String::from_utf8_lossy(&out.stdout)))
        .unwrap_or_default()
}

/// The size of each image the containers run, in bytes (one `image inspect`).
fn image_sizes(context: &Context, containers: &[Container]) -> HashMap<String, u64> {
    let mut ids: Vec<String> = containers.iter().map(|c| c.image_id.clone()).filter(|id| !id.is_empty()).collect();
    ids.sort_unstable();
    ids.dedup();
    docker::images(context, &[], &ids).unwrap_or_default().into_iter().map(|i| (i.id, i.size)).collect()
}

/// The own bytes of each environment in the package store (one throwaway container).
fn store_sizes(context: &Context, containers: &[Container]) -> Environments {
    let images: Vec<&str> = containers.iter().map(|c| c.image.as_str()).collect();
    let Ok(Some(store)) = crate::store::Store::find(context, &images) else { return Environments::new() };
    store.environments(context).unwrap_or_default()
}

/// Volume and container sizes from `system df -v` (the engine walks every volume: slow).
fn disk_usage(context: &Context) -> DiskUsage {
    let args = ["system", "df", "-v", "--format", "{{json .}}"];
    docker::captured(context, &args)
        .map(|out| usage::parse_disk_usage(&String::from_utf8_lossy(&out.stdout)))
        .unwrap_or_default()
}

fn row(c: &Container, index: usize, measured: &Measured, now: i64) -> Row {
    let (status, exit_code) = status_of(c);
    let activity = measured.activity.get(index).cloned().flatten().unwrap_or_default();
    let since = |at: Option<i64>| at.map(|at| now.saturating_sub(at).max(0) as u64);
    let planned = measured.planned.get(&(c.workspace.clone(), c.project.clone())).cloned().flatten();
    let stats = measured.stats.as_ref().and_then(|s| usage::stats_of(s, &c.id));
    let volume = Project {
        name: c.project.clone(),
        dir: PathBuf::from(&c.workspace).join("projects").join(&c.project),
        workspace: PathBuf::from(&c.workspace),
        config: Default::default(),
    }
    .volume_name();
    Row {
        project: c.project.clone(),
        workspace: c.workspace.clone(),
        container: c.name.clone(),
        status,
        exit_code,
        engine_status: c.status.clone(),
        port: c.running().then_some(c.port).flatten(),
        url: measured.urls.get(index).cloned().flatten(),
        uptime: c.status.strip_prefix("Up ").map(String::from),
        uptime_seconds: since(activity.started),
        idle_seconds: since(activity.last_activity),
        last_activity: activity.last_activity_text,
        kernels: activity.kernels,
        connections: activity.connections,
        cpu_percent: stats.and_then(|s| s.cpu_percent),
        memory_bytes: stats.and_then(|s| s.memory),
        memory_limit_bytes: stats.and_then(|s| s.memory_limit),
        gpu_memory_bytes: measured.gpu.as_ref().filter(|_| c.running()).map(|g| g.get(&c.id).copied().unwrap_or(0)),
        image: c.image.clone(),
        image_bytes: measured.images.as_ref().and_then(|i| i.get(&c.image_id).copied()),
        volume_bytes: measured.disk.as_ref().and_then(|d| d.volumes.get(&volume).copied()),
        store_bytes: measured.in_store.as_ref().and_then(|s| s.get(&volume).copied()),
        volume,
        container_bytes: measured.disk.as_ref().and_then(|d| d.containers.get(&c.id).copied()),
        stale: planned.as_ref().map(|p| *p != c.image),
        planned_image: planned,
    }
}

/// The status column, and the exit code of a stopped container, read from the engine's status
/// text (`Exited (85) 2 hours ago`, the same on Docker and Podman): the listing has it for all
/// containers at once, where asking each for its `State.ExitCode` would cost a call each.
fn status_of(c: &Container) -> (String, Option<i32>) {
    match c.state.as_str() {
        "running" => ("running".into(), None),
        "exited" => {
            let code = c
                .status
                .strip_prefix("Exited (")
                .and_then(|rest| rest.split_once(')'))
                .and_then(|(code, _)| code.parse::<i32>().ok());
            let status = match code {
                Some(IDLE_EXIT_CODE) => "stopped-idle".to_string(),
                // A clean exit, or the end `docker stop` gives it (SIGTERM, then SIGKILL).
                Some(0 | 130 | 137 | 143) | None => "stopped".to_string(),
                Some(other) => format!("exited {other}"),
            };
            (status, code)
        }
        other => (other.to_string(), None),
    }
}

/// The table: fixed columns, the GPU's where `nvidia-smi` answered, the slow ones when asked,
/// and the workspace only when there is more than one.
fn print_table(rows: &[Row], asked: &Asked, gpu: bool) {
    let dash = || "-".to_string();
    let bytes = |b: Option<u64>| b.map(units::decimal).unwrap_or_else(dash);
    type Column<'a> = (&'static str, Box<dyn Fn(&Row) -> String + 'a>);
    let mut columns: Vec<Column> = vec![
        ("PROJECT", Box::new(|r: &Row| r.project.clone())),
        ("STATUS", Box::new(|r: &Row| r.status.clone())),
        ("PORT", Box::new(move |r: &Row| r.port.map(|p| p.to_string()).unwrap_or_else(dash))),
        (
            "UPTIME",
            Box::new(move |r: &Row| match (r.uptime_seconds, &r.uptime) {
                (Some(seconds), _) => usage::short_duration(seconds),
                (None, Some(text)) => text.clone(),
                (None, None) => dash(),
            }),
        ),
        ("IDLE", Box::new(move |r: &Row| r.idle_seconds.map(usage::short_duration).unwrap_or_else(dash))),
    ];
    if asked.stats {
        columns.push(("CPU", Box::new(move |r: &Row| r.cpu_percent.map(|p| format!("{p:.1}%")).unwrap_or_else(dash))));
        columns.push(("MEM", Box::new(move |r: &Row| bytes(r.memory_bytes))));
    }
    if gpu {
        columns.push(("GPU MEM", Box::new(move |r: &Row| bytes(r.gpu_memory_bytes))));
    }
    if asked.size {
        columns.push(("IMAGE", Box::new(move |r: &Row| bytes(r.image_bytes))));
        columns.push(("VOLUME", Box::new(move |r: &Row| bytes(r.volume_bytes))));
        if rows.iter().any(|r| r.store_bytes.is_some()) {
            columns.push(("PACKAGES", Box::new(move |r: &Row| bytes(r.store_bytes))));
        }
    }
    let stale = |r: &Row| match r.stale {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    columns.push(("STALE", Box::new(move |r: &Row| stale(r).to_string())));
    if rows.iter().map(|r| &r.workspace).collect::<BTreeSet<_>>().len() > 1 {
        columns.push(("WORKSPACE", Box::new(|r: &Row| r.workspace.clone())));
    }
    let table: Vec<Vec<String>> = std::iter::once(columns.iter().map(|(h, _)| h.to_string()).collect())
        .chain(rows.iter().map(|r| columns.iter().map(|(_, cell)| cell(r)).collect()))
        .collect();
    let widths: Vec<usize> =
        (0..columns.len()).map(|i| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for line in table {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(status: &str) -> Container {
        Container { state: "exited".into(), status: status.into(), ..Container::default() }
    }

    #[test]
    fn statuses_say_why_an_environment_stopped() {
        assert_eq!(status_of(&exited("Exited (85) 2 hours ago")), ("stopped-idle".into(), Some(85)));
        assert_eq!(status_of(&exited("Exited (0) 3 minutes ago")), ("stopped".into(), Some(0)));
        assert_eq!(status_of(&exited("Exited (143) About a minute ago")), ("stopped".into(), Some(143)));
        assert_eq!(status_of(&exited("Exited (1) 5 seconds ago")), ("exited 1".into(), Some(1)));
        // The listing's text is older than its state: a container that stopped in between.
        assert_eq!(status_of(&exited("Up 3 minutes")), ("stopped".into(), None));
        let created = Container { state: "created".into(), status: "Created".into(), ..Container::default() };
        assert_eq!(status_of(&created), ("created".into(), None));
        let running = Container { state: "running".into(), status: "Up 2 hours".into(), ..Container::default() };
        assert_eq!(status_of(&running), ("running".into(), None));
    }
}

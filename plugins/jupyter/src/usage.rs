//! What a running environment uses, as `dpe jupyter list` reports it, and the parsing of what
//! the tools that know print: the server's own `api/status` (last activity), the engine's
//! `stats` (CPU, memory) and `system df -v` (volume and container sizes), and `nvidia-smi`'s
//! per-process GPU memory mapped to containers through `/proc/PID/cgroup`.
//!
//! Every reader returns `None` (shown as `-`, or `null` in JSON) for what it cannot tell, and
//! never fails the listing: a server that does not answer, an engine that prints another format
//! (Podman's `system df -v` ignores `--format`), a machine without `nvidia-smi`.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one server may take to answer `api/status`. All are asked at once, so fifty
/// servers cost one timeout at worst; a local server answers in milliseconds.
pub const ACTIVITY_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long `nvidia-smi` may take (it hangs when the driver is wedged).
const SMI_TIMEOUT: Duration = Duration::from_secs(5);

/// What a Jupyter server says about itself (`GET {base_url}api/status`). Asking does not count
/// as activity: the server does not track that handler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// When the server started, in seconds since the epoch.
    pub started: Option<i64>,
    /// The last kernel, terminal or API activity, as the server wrote it and in seconds.
    pub last_activity_text: Option<String>,
    pub last_activity: Option<i64>,
    pub kernels: Option<u64>,
    pub connections: Option<u64>,
}

/// Reads `api/status`'s JSON body (`{"started": "…", "last_activity": "…", "kernels": 0,
/// "connections": 0}`); `None` when it is not that object.
pub fn parse_activity(body: &str) -> Option<Activity> {
    let value: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    let object = value.as_object()?;
    let text = |key: &str| object.get(key).and_then(|v| v.as_str()).map(String::from);
    let last_activity_text = text("last_activity");
    if last_activity_text.is_none() && !object.contains_key("started") {
        return None;
    }
    Some(Activity {
        started: text("started").as_deref().and_then(unix_seconds),
        last_activity: last_activity_text.as_deref().and_then(unix_seconds),
        last_activity_text,
        kernels: object.get("kernels").and_then(|v| v.as_u64()),
        connections: object.get("connections").and_then(|v| v.as_u64()),
    })
}

/// Asks a running server for its activity; `status_url` is its `…/api/status?token=…` URL.
pub fn server_activity(status_url: &str) -> Option<Activity> {
    match dpe_plugin::sdk::http::get(status_url, ACTIVITY_TIMEOUT, 64 * 1024)? {
        (200, body) => parse_activity(&body),
        _ => None,
    }
}

/// Seconds since the epoch of an RFC 3339 time as Jupyter writes it
/// (`2026-12-01T02:10:00.123456Z`, or with `+00:00`); fractions are dropped.
pub fn unix_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date_parts.next()??, date_parts.next()??, date_parts.next()??);
    let zone_at = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let clock = clock.split('.').next()?;
    let mut clock_parts = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock_parts.next()??, clock_parts.next()??, clock_parts.next()??);
    let offset = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146097 + day_of_era - 719468
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A duration for a table cell: `45s`, `12m`, `3h05m`, `2d04h`.
pub fn short_duration(seconds: u64) -> String {
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{minutes}m"),
        3600..=86399 => format!("{hours}h{:02}m", minutes % 60),
        _ => format!("{days}d{:02}h", hours % 24),
    }
}

/// Bytes of a size as the engines print them: `46.64MB`, `13.42kB`, `0B`, `154.2MiB`,
/// `1.086GB` (decimal units as `docker system df` and Podman write them, binary ones as
/// `docker stats` does).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "b" | "" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * factor).round() as u64)
}

/// One line of `stats --no-stream --format STATS_FORMAT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub cpu_percent: Option<f64>,
    pub memory: Option<u64>,
    pub memory_limit: Option<u64>,
}

/// The format both engines' `stats` take: the (short) ID, CPU and `used / limit` memory.
pub const STATS_FORMAT: &str = "{{.ID}}\t{{.CPUPerc}}\t{{.MemUsage}}";

/// The lines of `stats --format STATS_FORMAT`, by the ID the engine printed (12 characters on
/// Docker without `--no-trunc`, which Podman's `stats` lacks). `--` is an engine's "unknown".
pub fn parse_stats(text: &str) -> HashMap<String, Stats> {
    text.lines()
        .filter_map(|line| {
            let mut cells = line.split('\t').map(str::trim);
            let (id, cpu, memory) = (cells.next()?, cells.next()?, cells.next()?);
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            let (used, limit) = memory.split_once('/').unwrap_or((memory, ""));
            let stats = Stats {
                cpu_percent: cpu.trim_end_matches('%').trim().parse().ok(),
                memory: parse_size(used),
                memory_limit: parse_size(limit),
            };
            Some((id.to_string(), stats))
        })
        .collect()
}

/// The stats of the container whose full ID is `id`, from [`parse_stats`]' shortened IDs.
pub fn stats_of<'a>(stats: &'a HashMap<String, Stats>, id: &str) -> Option<&'a Stats> {
    stats.iter().find(|(short, _)| id.starts_with(short.as_str())).map(|(_, s)| s)
}

/// Sizes `system df -v --format '{{json .}}'` reports (Docker: one JSON object with `Images`,
/// `Containers` and `Volumes` lists, sizes as text). Podman prints its table whatever the
/// format, which reads as no sizes at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Full container ID → bytes of its writable layer.
    pub containers: HashMap<String, u64>,
    /// Volume name → bytes.
    pub volumes: HashMap<String, u64>,
}

pub fn parse_disk_usage(text: &str) -> DiskUsage {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Df {
        #[serde(default)]
        containers: Option<Vec<Entry>>,
        #[serde(default)]
        volumes: Option<Vec<Entry>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        #[serde(default, rename = "ID")]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        size: String,
    }
    let Some(df) = text.lines().find_map(|l| serde_json::from_str::<Df>(l.trim()).ok()) else {
        return DiskUsage::default();
    };
    let sized = |entries: Option<Vec<Entry>>, key: fn(Entry) -> String| -> HashMap<String, u64> {
        entries
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| Some((parse_size(&e.size)?, e)))
            .map(|(size, e)| (key(e), size))
            .collect()
    };
    DiskUsage { containers: sized(df.containers, |e| e.id), volumes: sized(df.volumes, |e| e.name) }
}

/// `nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits`: one
/// `PID, MiB` line per process and GPU. A process on two GPUs has two lines; a value the driver
/// cannot tell (`[N/A]`, `[Insufficient Permissions]`) reads as `None`.
pub const SMI_QUERY: [&str; 2] = ["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"];

pub fn parse_compute_apps(text: &str) -> Vec<(u32, Option<u64>)> {
    text.lines()
        .filter_map(|line| {
            let (pid, memory) = line.split_once(',')?;
            let pid = pid.trim().parse().ok()?;
            Some((pid, memory.trim().parse::<u64>().ok().map(|mib| mib * 1024 * 1024)))
        })
        .collect()
}

/// Which of `ids` (full container IDs) a process belongs to, from its `/proc/PID/cgroup`:
/// every engine names the container's cgroup after its full ID (`/docker/ID`,
/// `/system.slice/docker-ID.scope`, `…/libpod-ID.scope`).
pub fn container_of<'a>(cgroup: &str, ids: &'a [String]) -> Option<&'a String> {
    ids.iter().find(|id| id.len() >= 32 && cgroup.contains(id.as_str()))
}

/// The GPU memory each of the containers `ids` holds, summed over its processes and GPUs;
/// `None` when `nvidia-smi` is absent or fails (no GPU here, or a broken driver).
#[allow(clippy::disallowed_methods, reason = "`nvidia-smi` is the host's GPU driver tool, not the engine")]
pub fn gpu_memory(ids: &[String]) -> Option<HashMap<String, u64>> {
    let text = run_with_timeout(Command::new("nvidia-smi").args(SMI_QUERY), SMI_TIMEOUT)?;
    Some(held_by(&parse_compute_apps(&text), ids))
}

/// The memory of `apps` ([`parse_compute_apps`]) summed per container of `ids`, each process
/// placed by its `/proc/PID/cgroup`. Processes of no listed container (or gone meanwhile) are
/// left out; a container with no process on a GPU is absent.
pub fn held_by(apps: &[(u32, Option<u64>)], ids: &[String]) -> HashMap<String, u64> {
    let mut held: HashMap<String, u64> = HashMap::new();
    for (pid, bytes) in apps {
        let Ok(cgroup) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else { continue };
        if let Some(id) = container_of(&cgroup, ids) {
            *held.entry(id.clone()).or_default() += bytes.unwrap_or(0);
        }
    }
    held
}

/// A command's stdout when it succeeds within `timeout`; it is killed otherwise.
fn run_with_timeout(command: &mut Command, timeout: Duration) -> Option<String> {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().ok()?;
    let mut stdout = child.stdout.take()?;
    // Read on a thread: a full pipe would otherwise stop the child before it exits.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).ok().map(|_| text)
    });
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().ok()? {
            Some(status) if status.success() => return reader.join().ok()?,
            Some(_) => return None,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_jupyter_writes_them() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2026-12-01T02:10:00.123456Z"), Some(1_796_091_000));
        assert_eq!(unix_seconds("2026-12-01T03:10:00+01:00"), Some(1_796_091_000));
        assert_eq!(unix_seconds("2026-12-01T01:40:00.5-00:30"), Some(1_796_091_000));
        assert_eq!(unix_seconds("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(unix_seconds("yesterday"), None);
        assert_eq!(unix_seconds("2026-13-01T00:00:00Z"), None);
        assert_eq!(short_duration(45), "45s");
        assert_eq!(short_duration(12 * 60 + 5), "12m");
        assert_eq!(short_duration(3 * 3600 + 5 * 60), "3h05m");
        assert_eq!(short_duration(2 * 86400 + 4 * 3600), "2d04h");
    }

    #[test]
    fn activity_is_read_from_the_status_body() {
        let body = r#"{"started": "2026-12-01T02:00:00.000000Z", "last_activity": "2026-12-01T02:10:00.123456Z", "connections": 0, "kernels": 2}"#;
        let activity = parse_activity(body).unwrap();
        assert_eq!(activity.started, Some(1_796_090_400));
        assert_eq!(activity.last_activity, Some(1_796_091_000));
        assert_eq!(activity.last_activity_text.as_deref(), Some("2026-12-01T02:10:00.123456Z"));
        assert_eq!((activity.kernels, activity.connections), (Some(2), Some(0)));
        assert_eq!(parse_activity("ok"), None);
        assert_eq!(parse_activity(r#"{"message": "Forbidden"}"#), None);
    }

    #[test]
    fn sizes_read_in_both_unit_systems() {
        assert_eq!(parse_size("0B"), Some(0));
        assert_eq!(parse_size("13.42kB"), Some(13_420));
        assert_eq!(parse_size("46.64MB"), Some(46_640_000));
        assert_eq!(parse_size("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_size("154.2MiB "), Some(161_690_419));
        assert_eq!(parse_size("7.629GiB"), Some(8_191_576_375));
        assert_eq!(parse_size("N/A"), None);
        assert_eq!(parse_size("--"), None);
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/usage/");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
    }

    /// Both engines' real `stats` lines: CPU, memory and its limit, found by the full ID.
    #[test]
    fn stats_of_both_engines_read_the_same() {
        let docker = parse_stats(&fixture("docker-20.10.24-stats.txt"));
        let busy = stats_of(&docker, "403e15353255a6c862160604ef2959767c480437b024cc18168739df3fd2aa37").unwrap();
        assert_eq!(*busy, Stats { cpu_percent: Some(0.0), memory: Some(628 * 1024), memory_limit: Some(512 << 20) });
        let idle = stats_of(&docker, "d4fe341bd4cfe66a5087f15adea160f8fe08df7da1f0ec0eadb5ad6fb0cdcd3b").unwrap();
        assert_eq!(idle.memory_limit, Some(25_275_882_537));
        let podman = parse_stats(&fixture("podman-4.3.1-stats.txt"));
        let busy = stats_of(&podman, "d5002a17ff2c8a6dc97ecbaffb942a0df641cba76632cc5925400aba501c23e0").unwrap();
        assert_eq!(*busy, Stats { cpu_percent: Some(7.87), memory: Some(446_500), memory_limit: Some(536_900_000) });
        assert_eq!(podman.len(), 2);
        assert!(stats_of(&podman, "ffff").is_none());
        // An engine's "unknown" and a hook's chatter.
        let odd = parse_stats("hook says hi\nabc123\t--\t-- / --\n");
        assert_eq!(odd["abc123"], Stats { cpu_percent: None, memory: None, memory_limit: None });
        assert_eq!(odd.len(), 1);
    }

    /// Docker's and Podman's real cgroup files name the container; another ID is not found.
    #[test]
    fn a_process_is_placed_in_its_container_by_its_cgroup() {
        for engine in ["docker-20.10.24", "podman-4.3.1"] {
            let id = fixture(&format!("{engine}-cgroup-v1.id")).trim().to_string();
            let cgroup = fixture(&format!("{engine}-cgroup-v1.txt"));
            let ids = vec!["0".repeat(64), id.clone()];
            assert_eq!(container_of(&cgroup, &ids), Some(&id), "{engine}");
            assert_eq!(container_of(&cgroup, &ids[..1]), None, "{engine}");
            // A short prefix would match too much: only full IDs count.
            assert_eq!(container_of(&cgroup, &[id[..12].to_string()]), None, "{engine}");
        }
        // cgroup v2 with the systemd driver (Docker's default there), in the kernel's format.
        let v2 = format!("0::/system.slice/docker-{}.scope\n", "ab".repeat(32));
        assert_eq!(container_of(&v2, &["ab".repeat(32)]), Some(&"ab".repeat(32)));
    }

    #[test]
    fn compute_apps_give_each_process_its_memory() {
        let apps = parse_compute_apps(&fixture("nvidia-smi-compute-apps.csv"));
        assert_eq!(apps, [(4182, Some(10240 << 20)), (4182, Some(512 << 20)), (9313, Some(24 << 20)), (20417, None)]);
        assert_eq!(parse_compute_apps(""), []);
        assert_eq!(parse_compute_apps("No devices were found\n"), []);
    }

    /// Docker's real `system df -v` JSON gives container layers and volumes; Podman's table
    /// (it ignores `--format` there) gives nothing rather than wrong numbers.
    #[test]
    fn disk_usage_reads_docker_json_and_nothing_else() {
        let docker = parse_disk_usage(&fixture("docker-20.10.24-system-df-v.json"));
        assert_eq!(docker.volumes, HashMap::from([("dpe-fixture-env".to_string(), 3_000_000)]));
        let busy = "403e15353255a6c862160604ef2959767c480437b024cc18168739df3fd2aa37";
        assert_eq!(docker.containers.get(busy), Some(&0));
        assert_eq!(docker.containers.len(), 2);
        assert_eq!(parse_disk_usage(&fixture("podman-4.3.1-system-df-v.txt")), DiskUsage::default());
    }
}

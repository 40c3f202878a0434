//! Plugin manifests, cached so that dispatch never pays for a handshake.
//!
//! A manifest is keyed by the plugin file's path, size and modification time: replacing or
//! touching the file invalidates it. An executable is asked (`dpe-NAME --dpe-manifest`) only
//! when it contains the opt-in marker; otherwise it gets a default manifest and is never run
//! just to ask. A dynamic library is asked through its function table.

use crate::discovery::{Found, Kind};
use crate::error::{Error, Result};
use crate::ffi::{LoadError, LoadedPlugin};
use dpe_plugin::{Manifest, MANIFEST_FLAG, MANIFEST_MARKER};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    /// `None`: the plugin publishes no manifest.
    manifest: Option<Manifest>,
}

/// The README section that documents the manifest, named in errors about one.
pub const README_SECTION: &str = "README, section \"Writing a plugin\"";

/// The manifest of `found`, and whether the plugin published one. Fields this dpe does not
/// know are warned about on standard error when the plugin is asked (not on a cache hit).
pub fn manifest(found: &Found, cache_dir: &Path) -> Result<(Manifest, bool)> {
    manifest_within(found, cache_dir, Duration::from_secs(10), true)
}

/// Like [`manifest`], but a plugin asked on a cache miss gets at most `limit` to answer
/// (shell completion cannot wait ten seconds for a slow plugin), and warnings are printed
/// only when `warn` (completion prints nothing but candidates).
pub fn manifest_within(found: &Found, cache_dir: &Path, limit: Duration, warn: bool) -> Result<(Manifest, bool)> {
    let meta = std::fs::metadata(&found.path).map_err(|e| crate::error::io("read", &found.path, e))?;
    if let Some(hit) = cached_for(found, cache_dir, &meta) {
        return Ok(hit);
    }
    // Listing, help and completion ask every plugin they find, not only the one dispatch
    // checked: none of them may run (or load) a file someone else could have written.
    crate::fsutil::check_not_writable_by_others("plugin", &found.path)?;
    let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    let cache_file = cache_path(cache_dir, &found.path);
    let (manifest, unknown) = ask_within(found, limit)?;
    if let (Some(published), true) = (&manifest, warn && !unknown.is_empty()) {
        eprintln!("{}", unknown_fields_warning(found, published, &unknown));
    }
    let entry = Entry { path: found.path.clone(), size: meta.len(), mtime_ns, manifest: manifest.clone() };
    // A cache that cannot be written only costs speed.
    let _ = crate::fsutil::write_atomic(&cache_file, &serde_json::to_vec(&entry).unwrap_or_default(), 0o644);
    Ok(finish(found, manifest))
}

/// The cached manifest of `found`, if the cache holds a current one; never runs anything.
pub fn cached(found: &Found, cache_dir: &Path) -> Option<(Manifest, bool)> {
    cached_for(found, cache_dir, &std::fs::metadata(&found.path).ok()?)
}

fn cached_for(found: &Found, cache_dir: &Path, meta: &std::fs::Metadata) -> Option<(Manifest, bool)> {
    let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    let bytes = std::fs::read(cache_path(cache_dir, &found.path)).ok()?;
    let entry = serde_json::from_slice::<Entry>(&bytes).ok()?;
    let current = entry.path == found.path && entry.size == meta.len() && entry.mtime_ns == mtime_ns;
    current.then(|| finish(found, entry.manifest))
}

fn finish(found: &Found, manifest: Option<Manifest>) -> (Manifest, bool) {
    match manifest {
        Some(m) => (m, true),
        None => (Manifest::default_for(&found.name), false),
    }
}

/// Drops the cached manifest of the plugin file at `plugin` (after it is replaced or removed).
pub fn forget(cache_dir: &Path, plugin: &Path) {
    let _ = std::fs::remove_file(cache_path(cache_dir, plugin));
}

/// The cache file of a plugin path. FNV-1a rather than SHA-256: this runs on every dispatch,
/// and SHA-256's CPU feature probing (`cpuid`) traps to the hypervisor on virtual machines. A
/// collision only costs a cache miss: the entry records its path and is checked on read.
fn cache_path(cache_dir: &Path, plugin: &Path) -> PathBuf {
    let hash = plugin
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3));
    cache_dir.join("manifests").join(format!("{hash:016x}.json"))
}

/// Asks the plugin itself (no cache); warns about fields this dpe does not know.
pub fn ask(found: &Found) -> Result<Option<Manifest>> {
    let (manifest, unknown) = ask_within(found, Duration::from_secs(10))?;
    if let (Some(manifest), false) = (&manifest, unknown.is_empty()) {
        eprintln!("{}", unknown_fields_warning(found, manifest, &unknown));
    }
    Ok(manifest)
}

/// The manifest (`None`: the plugin publishes none) and the fields of it this dpe ignored.
fn ask_within(found: &Found, limit: Duration) -> Result<(Option<Manifest>, Vec<String>)> {
    let text = match found.kind {
        Kind::Dynamic => load_library(found)?.manifest_json(),
        Kind::Executable => {
            if !crate::discovery::file_contains(&found.path, MANIFEST_MARKER) {
                return Ok((None, Vec::new()));
            }
            run_with_timeout(found, limit)?
        }
    };
    let (manifest, unknown) = parse(&found.name, &found.path, &text)?;
    Ok((Some(manifest), unknown))
}

/// Reads a plugin's manifest JSON; the error names the plugin, its file and what is wrong.
pub fn parse(name: &str, path: &Path, text: &str) -> Result<(Manifest, Vec<String>)> {
    dpe_plugin::manifest::parse(text).map_err(|reason| invalid_manifest(name, path, &reason))
}

fn invalid_manifest(name: &str, path: &Path, reason: &str) -> Error {
    Error::new(format!("plugin `{name}` at `{}` gave an invalid manifest: {reason}", path.display()))
        .with_help(format!("its `{MANIFEST_FLAG}` answer must be the JSON described in the {README_SECTION}"))
}

/// The warning for manifest fields this dpe ignored: likely a plugin newer than dpe.
pub fn unknown_fields_warning(found: &Found, manifest: &Manifest, unknown: &[String]) -> String {
    let list: Vec<String> = unknown.iter().map(|field| format!("`{field}`")).collect();
    format!(
        "warning: plugin `{}` {} at `{}` has manifest fields this dpe {} does not know, ignored: {}\n\
         help: the plugin may be made for a newer dpe; upgrade dpe if it misbehaves",
        found.name,
        manifest.version,
        found.path.display(),
        env!("CARGO_PKG_VERSION"),
        list.join(", ")
    )
}

#[allow(clippy::disallowed_methods, reason = "asks an opted-in plugin for its manifest; plugins are not the engine")]
fn run_with_timeout(found: &Found, limit: Duration) -> Result<String> {
    let path = &found.path;
    let mut command = Command::new(path);
    command.arg(MANIFEST_FLAG).stdin(Stdio::null()).stderr(Stdio::null());
    let answer = run_with_limit(command, limit).map_err(|err| match err.kind() {
        std::io::ErrorKind::InvalidData => invalid_manifest(&found.name, path, &err.to_string()),
        std::io::ErrorKind::Interrupted => {
            Error::new(format!("interrupted while asking plugin `{}` for its manifest", found.name)).with_code(130)
        }
        _ => crate::error::io("run", path, err),
    })?;
    let Some((status, stdout)) = answer else {
        return Err(Error::new(format!(
            "plugin `{}` did not answer `{MANIFEST_FLAG}` within {}s",
            path.display(),
            limit.as_secs_f32()
        ))
        .with_help(format!(
            "a plugin whose file holds `{MANIFEST_MARKER}` must print its manifest at once; \
             try `{} {MANIFEST_FLAG}`",
            path.display()
        )));
    };
    if !status.success() {
        return Err(Error::new(format!(
            "plugin `{}` failed when asked `{MANIFEST_FLAG}` (status {})",
            path.display(),
            dpe_plugin::client::exit_code(status)
        ))
        .with_help(format!("run `{} {MANIFEST_FLAG}` to see its error", path.display())));
    }
    Ok(stdout)
}

/// Runs `command` in a process group of its own with its stdout captured (at most
/// [`MAX_OUTPUT_BYTES`]; more is an error); `None` when it (or a child of it holding its stdout)
/// is still going after `limit`, and then its whole group is killed, so nothing it started
/// stays behind. Stdout is read on a thread while the clock runs, so a plugin printing more
/// than a pipe holds cannot stall itself. The thread is joined before an answer is returned:
/// dispatch may set environment variables right after, which no other thread may be running
/// for.
pub fn run_with_limit(mut command: Command, limit: Duration) -> std::io::Result<Option<(ExitStatus, String)>> {
    let mut child = command.stdout(Stdio::piped()).process_group(0).spawn()?;
    let group = child.id();
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // One byte over the cap tells "too much" from "exactly the cap"; the pipe is closed
        // after it, so a plugin that keeps printing ends on SIGPIPE.
        let read = stdout.take(MAX_OUTPUT_BYTES as u64 + 1).read_to_end(&mut bytes).map(|_| bytes);
        let _ = sender.send(read);
    });
    // In its own group the plugin no longer hears Ctrl+C from the terminal: dpe passes it on.
    let _signals = crate::ffi::guard_signals_for_group(group);
    let deadline = dpe_plugin::deadline_after(limit);
    let read = receive_until(&receiver, deadline);
    if let Some(Ok(bytes)) = &read {
        if bytes.len() > MAX_OUTPUT_BYTES {
            // Said too much: no need to wait for the rest, or for it to exit.
            crate::ffi::kill_group(group);
            let _ = child.wait();
            let _ = reader.join();
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("it printed more than {} KiB (the most dpe reads)", MAX_OUTPUT_BYTES / 1024),
            ));
        }
    }
    loop {
        if crate::ffi::group_signal().is_some() {
            crate::ffi::kill_group(group);
            let _ = child.wait();
            return Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
        }
        match child.try_wait()? {
            Some(status) => match read {
                Some(read) => {
                    let _ = reader.join();
                    let bytes = read?;
                    return Ok(Some((status, String::from_utf8_lossy(&bytes).into_owned())));
                }
                // Exited, but something it started still holds its stdout open.
                None => {
                    crate::ffi::kill_group(group);
                    return Ok(None);
                }
            },
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            None => {
                // The group before the leader is reaped, while its id cannot be reused.
                crate::ffi::kill_group(group);
                let _ = child.wait();
                return Ok(None);
            }
        }
    }
}

/// Waits for the reader's answer until `deadline`, waking every few milliseconds so a
/// Ctrl+C passed on to the plugin is noticed at once.
fn receive_until<T>(receiver: &std::sync::mpsc::Receiver<T>, deadline: Instant) -> Option<T> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left.min(Duration::from_millis(20))) {
            Ok(value) => return Some(value),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                if !left.is_zero() && crate::ffi::group_signal().is_none() => {}
            Err(_) => return None,
        }
    }
}

/// The most a plugin may print when asked for its manifest or its completions.
pub const MAX_OUTPUT_BYTES: usize = dpe_plugin::manifest::MAX_MANIFEST_BYTES;

/// Loads a dynamic-library plugin, turning loader failures into messages that name the
/// library, both ABI versions and the fix.
pub fn load_library(found: &Found) -> Result<LoadedPlugin> {
    LoadedPlugin::load(&found.path).map_err(|err| match err {
        LoadError::Open(reason) => Error::new(format!(
            "cannot load plugin library `{}`: {reason}",
            found.path.display()
        ))
        .with_help(format!("rebuild it for this machine, or remove it with `dpe plugin uninstall {}`", found.name)),
        LoadError::MissingSymbol(symbol, reason) => Error::new(format!(
            "`{}` is not a dpe plugin library: symbol `{symbol}` is missing ({reason})",
            found.path.display()
        ))
        .with_help("export it with `dpe_plugin::export_plugin!(manifest, run)`"),
        LoadError::AbiMismatch { found: abi } => Error::new(format!(
            "plugin library `{}` uses plugin ABI {abi}, but this dpe uses ABI {}",
            found.path.display(),
            dpe_plugin::abi::ABI_VERSION
        ))
        .with_help(format!(
            "rebuild the plugin against dpe-plugin {}, or remove it with `dpe plugin uninstall {}`",
            env!("CARGO_PKG_VERSION"),
            found.name
        )),
    })
}

/// Why this dpe cannot run a plugin with a given manifest.
pub enum Incompatibility {
    /// It speaks another plugin protocol.
    Protocol,
    /// Its `dpe` requirement is not semver.
    InvalidRequirement(semver::Error),
    /// Its `dpe` requirement excludes this dpe.
    Version,
}

/// Whether this dpe can run a plugin with `manifest`: protocol first, then its dpe requirement.
pub fn incompatibility(manifest: &Manifest) -> Option<Incompatibility> {
    if manifest.protocol != dpe_plugin::PROTOCOL_VERSION {
        return Some(Incompatibility::Protocol);
    }
    match semver::VersionReq::parse(&manifest.dpe) {
        Err(err) => Some(Incompatibility::InvalidRequirement(err)),
        Ok(requirement) if !requirement.matches(&dpe_version()) => Some(Incompatibility::Version),
        Ok(_) => None,
    }
}

/// This dpe's version.
pub fn dpe_version() -> semver::Version {
    semver::Version::parse(env!("CARGO_PKG_VERSION")).expect("dpe's own version is semver")
}

/// Checks protocol and semver compatibility with this dpe; the error names both versions.
pub fn check_compatible(found: &Found, manifest: &Manifest) -> Result<()> {
    let ours = dpe_version();
    match incompatibility(manifest) {
        None => Ok(()),
        Some(Incompatibility::Protocol) => Err(Error::new(format!(
            "plugin `{}` at `{}` speaks plugin protocol {}, but this dpe speaks protocol {}",
            found.name,
            found.path.display(),
            manifest.protocol,
            dpe_plugin::PROTOCOL_VERSION
        ))
        .with_help("install a version of the plugin built for this dpe")),
        Some(Incompatibility::InvalidRequirement(e)) => Err(Error::new(format!(
            "plugin `{}` at `{}` has an invalid dpe requirement `{}`: {e}",
            found.name,
            found.path.display(),
            manifest.dpe
        ))
        .with_help("its manifest's `dpe` must be a semver requirement such as `^0.1`; ask its author to fix it")),
        Some(Incompatibility::Version) => Err(Error::new(format!(
            "plugin `{}` {} at `{}` requires dpe {}, but this is dpe {ours}",
            found.name,
            manifest.version,
            found.path.display(),
            manifest.dpe
        ))
        .with_help(format!("install a version of `{}` that supports dpe {ours}, or upgrade dpe", found.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods, reason = "the tests' stand-in plugin is a shell script")]
    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn output_larger_than_a_pipe_is_read_and_a_hang_is_cut_off() {
        let (status, stdout) =
            run_with_limit(sh("head -c 200000 /dev/zero | tr '\\0' x"), Duration::from_secs(60)).unwrap().unwrap();
        assert!(status.success());
        assert_eq!(stdout.len(), 200_000);
        assert!(run_with_limit(sh("sleep 30"), Duration::from_millis(50)).unwrap().is_none());
    }
}

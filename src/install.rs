//! Installing plugins into the user's plugin directory, and removing them.
//!
//! A plugin arrives as a built executable (`dpe-NAME`), a dynamic library (`libdpe_NAME.so`),
//! or a cargo project that is built first. Before anything is written, dpe reads the plugin's
//! manifest and checks its protocol and dpe semver requirement, so an incompatible plugin is
//! refused (unless forced) instead of failing later at dispatch. The copy is atomic: the bytes
//! go to a hidden temp file in the plugin directory, are synced, get their mode, and only then
//! are renamed over the old plugin, so a reader sees the old plugin or the new one, never half
//! of one — also when the copy fails or the user presses Ctrl+C. A receipt
//! (`<file>.receipt.toml`: source, version, sha256, time) sits beside each installed file.

use crate::discovery::{self, Found, Kind, DYLIB_SUFFIX};
use crate::error::{Error, Result};
use crate::ffi::{self, LoadError, LoadedPlugin};
use crate::{manifest_cache, names};
use dpe_plugin::Manifest;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Exit status after an interrupted install (128 + SIGINT), like a shell reports Ctrl+C.
const INTERRUPTED_STATUS: i32 = 130;

/// A plugin file about to be installed.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Absolute path of the file to copy.
    pub path: PathBuf,
    pub kind: Kind,
    /// The cargo project it was built from, if any.
    pub built_from: Option<PathBuf>,
}

/// What `dpe plugin install` found out about a candidate before writing anything.
#[derive(Debug)]
pub struct Inspected {
    pub candidate: Candidate,
    pub name: String,
    pub manifest: Manifest,
    /// Whether the plugin published a manifest (a plain script does not).
    pub published: bool,
    /// Why this dpe would refuse to run it, if it would.
    pub incompatible: Option<Error>,
}

/// The record written beside an installed plugin.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub name: String,
    /// The plugin's own version (`0.0.0` when it publishes no manifest).
    pub version: String,
    pub kind: Kind,
    /// The installed file's name in the plugin directory.
    pub file: String,
    /// Where it was installed from (absolute).
    pub source: PathBuf,
    /// The cargo project that was built to produce `source`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_from: Option<PathBuf>,
    /// sha256 of the installed bytes, lowercase hex.
    pub sha256: String,
    pub size: u64,
    /// UTC, RFC 3339.
    pub installed: String,
    /// The dpe that installed it, and the plugin's requirement on dpe.
    pub dpe_version: String,
    pub dpe_requirement: String,
    /// Installed with `--force` although this dpe does not satisfy the requirement.
    #[serde(default)]
    pub forced: bool,
}

/// The file name a plugin `name` of `kind` gets in the plugin directory. Libraries use `_`
/// where the name has `-`, as cargo names them (`libdpe_my_tool.so` for `my-tool`).
pub fn installed_file_name(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Executable => format!("dpe-{name}"),
        Kind::Dynamic => format!("libdpe_{}{DYLIB_SUFFIX}", name.replace('-', "_")),
    }
}

/// The receipt path for an installed plugin file.
pub fn receipt_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".receipt.toml");
    file.with_file_name(name)
}

/// Reads the receipt beside `file`, if there is a readable one.
pub fn read_receipt(file: &Path) -> Option<Receipt> {
    let text = fs::read_to_string(receipt_path(file)).ok()?;
    toml::from_str(&text).ok()
}

/// Every file in `plugin_dir` that is plugin `name` (an executable, a library, or both).
pub fn installed_files(plugin_dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut files = vec![plugin_dir.join(installed_file_name(name, Kind::Executable))];
    files.push(plugin_dir.join(installed_file_name(name, Kind::Dynamic)));
    // discovery also accepts the library spelt with the name as is (`libdpe_my-tool.so`).
    files.push(plugin_dir.join(format!("libdpe_{name}{DYLIB_SUFFIX}")));
    files.dedup();
    files.into_iter().filter(|f| f.symlink_metadata().is_ok()).collect()
}

// ---------------------------------------------------------------------------------------------
// Finding what to install

/// Turns the user's `PATH` argument into the file to install, building a cargo project first.
/// `prefer_dynamic` picks the library when a project builds both forms of one plugin.
pub fn candidate(arg: &Path, prefer_dynamic: bool) -> Result<Candidate> {
    let path = std::path::absolute(arg).map_err(|e| crate::error::io("resolve", arg, e))?;
    let meta = fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(format!("`{}` does not exist", arg.display()))
            .with_help("give the plugin file (`dpe-NAME` or `libdpe_NAME.so`) or a cargo project directory"),
        _ => crate::error::io("read", &path, e),
    })?;
    if meta.is_dir() {
        if !path.join("Cargo.toml").is_file() {
            return Err(Error::new(format!("`{}` is a directory without a `Cargo.toml`", arg.display()))
                .with_help("give the plugin file (`dpe-NAME` or `libdpe_NAME.so`) or a cargo project directory"));
        }
        return build_cargo_project(&path, prefer_dynamic);
    }
    if !meta.is_file() {
        return Err(Error::new(format!("`{}` is not a regular file", arg.display()))
            .with_help("give the plugin file (`dpe-NAME` or `libdpe_NAME.so`) or a cargo project directory"));
    }
    let kind = if path.to_string_lossy().ends_with(DYLIB_SUFFIX) { Kind::Dynamic } else { Kind::Executable };
    if kind == Kind::Executable && meta.permissions().mode() & 0o111 == 0 {
        return Err(Error::new(format!("`{}` is not executable", arg.display()))
            .with_help(format!("if it is a plugin you trust, run `chmod +x {}` first", arg.display())));
    }
    Ok(Candidate { path, kind, built_from: None })
}

/// A plugin file cargo produced.
#[derive(Debug, Clone, PartialEq)]
struct Artifact {
    path: PathBuf,
    kind: Kind,
    name: String,
}

/// `cargo build --release` in `dir`, then the one `dpe-*` binary or `libdpe_*` cdylib it made.
#[allow(clippy::disallowed_methods, reason = "builds a plugin's Cargo project with the user's `cargo`")]
fn build_cargo_project(dir: &Path, prefer_dynamic: bool) -> Result<Candidate> {
    // `$CARGO` is set when dpe itself runs under cargo (and names the toolchain in use).
    let cargo = std::env::var_os("CARGO").filter(|c| !c.is_empty()).unwrap_or_else(|| "cargo".into());
    let manifest = dir.join("Cargo.toml");
    eprintln!("building `{}` with `cargo build --release`", dir.display());
    let mut child = Command::new(&cargo)
        .args(["build", "--release", "--message-format=json-render-diagnostics", "--manifest-path"])
        .arg(&manifest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            Error::new(format!("could not run `{}`: {e}", Path::new(&cargo).display()))
                .with_help("install Rust (https://rustup.rs), or build the plugin yourself and install the built file")
        })?;
    let mut stdout = String::new();
    let read = child.stdout.take().map(|mut out| out.read_to_string(&mut stdout));
    let status = child.wait().map_err(|e| crate::error::io("wait for cargo building", dir, e))?;
    if ffi::interrupted() {
        return Err(interrupted());
    }
    if !status.success() {
        return Err(Error::new(format!(
            "`cargo build --release` failed in `{}` (status {})",
            dir.display(),
            dpe_plugin::client::exit_code(status)
        ))
        .with_help(format!("fix the errors above, then run `dpe plugin install {}` again", dir.display())));
    }
    if let Some(Err(e)) = read {
        return Err(crate::error::io("read cargo's output for", dir, e));
    }
    let artifacts = parse_artifacts(&stdout, dir);
    pick_artifact(dir, artifacts, prefer_dynamic)
}

/// The plugin files among cargo's `compiler-artifact` messages for packages inside `dir`
/// (dependencies are never plugins to install).
fn parse_artifacts(json_lines: &str, dir: &Path) -> Vec<Artifact> {
    let mut found = Vec::new();
    for line in json_lines.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let in_project = message["manifest_path"].as_str().is_some_and(|m| Path::new(m).starts_with(dir));
        if !in_project {
            continue;
        }
        if let Some(exe) = message["executable"].as_str() {
            let path = PathBuf::from(exe);
            if let Some(name) = file_plugin_name(&path, Kind::Executable) {
                found.push(Artifact { path, kind: Kind::Executable, name });
            }
        }
        for file in message["filenames"].as_array().into_iter().flatten().filter_map(|f| f.as_str()) {
            let path = PathBuf::from(file);
            if let Some(name) = file_plugin_name(&path, Kind::Dynamic) {
                found.push(Artifact { path, kind: Kind::Dynamic, name });
            }
        }
    }
    found.dedup();
    found
}

fn pick_artifact(dir: &Path, mut artifacts: Vec<Artifact>, prefer_dynamic: bool) -> Result<Candidate> {
    let mut names: Vec<&str> = artifacts.iter().map(|a| a.name.as_str()).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(Error::new(format!("building `{}` produced no dpe plugin", dir.display())).with_help(
            "a plugin project builds a binary named `dpe-NAME` ([[bin]] name = \"dpe-NAME\") or a library \
             named `dpe_NAME` with crate-type = [\"cdylib\"]",
        ));
    }
    if names.len() > 1 {
        let list: Vec<String> = artifacts.iter().map(|a| format!("`{}`", a.path.display())).collect();
        return Err(Error::new(format!("building `{}` produced several plugins: {}", dir.display(), list.join(", ")))
            .with_help("install the one you want by its path: `dpe plugin install PATH`"));
    }
    let both =
        artifacts.iter().any(|a| a.kind == Kind::Executable) && artifacts.iter().any(|a| a.kind == Kind::Dynamic);
    let wanted = if prefer_dynamic { Kind::Dynamic } else { Kind::Executable };
    artifacts.sort_by_key(|a| a.kind != wanted);
    let chosen = artifacts.remove(0);
    if prefer_dynamic && chosen.kind != Kind::Dynamic {
        return Err(Error::new(format!(
            "building `{}` produced no dynamic library, only `{}`",
            dir.display(),
            chosen.path.display()
        ))
        .with_help(
            "drop `--dynamic` to install the executable, or add crate-type = [\"cdylib\"] to the project's [lib]",
        ));
    }
    let what = match chosen.kind {
        Kind::Executable => "executable",
        Kind::Dynamic => "dynamic library",
    };
    eprintln!("built `{}` ({what})", chosen.path.display());
    if both && !prefer_dynamic {
        eprintln!("note: the project also built the library form; `--dynamic` installs that instead");
    }
    Ok(Candidate { path: chosen.path, kind: chosen.kind, built_from: Some(dir.to_path_buf()) })
}

/// The plugin name a file's name gives it (`dpe-NAME`, `libdpe_NAME.so`), if it is valid.
pub fn file_plugin_name(path: &Path, kind: Kind) -> Option<String> {
    raw_file_plugin_name(path, kind).filter(|name| names::is_valid(name))
}

/// The name part of `dpe-NAME` or `libdpe_NAME.so`, valid or not.
fn raw_file_plugin_name(path: &Path, kind: Kind) -> Option<String> {
    discovery::name_in_file_name(path.file_name()?.to_str()?, kind)
}

// ---------------------------------------------------------------------------------------------
// Checking it

/// Reads the candidate's manifest and decides its name and compatibility. Runs the executable
/// with `--dpe-manifest` only when it carries the opt-in marker (as dispatch does); loads a
/// library and reads its ABI version before anything else.
pub fn inspect(candidate: Candidate, builtins: &[&str]) -> Result<Inspected> {
    let from_file = raw_file_plugin_name(&candidate.path, candidate.kind);
    if let Some(name) = &from_file {
        // Refused before anything runs: a bad name never gets as far as a manifest request.
        names::validate("plugin", name)?;
    }
    let probe_name = from_file.clone().unwrap_or_default();
    let probe = Found {
        name: probe_name,
        path: candidate.path.clone(),
        kind: candidate.kind,
        source: discovery::Source::PluginDir,
    };
    let published = match candidate.kind {
        // Ctrl+C while the plugin was asked ends the request; the install says it stopped.
        Kind::Executable => {
            manifest_cache::ask(&probe).map_err(|err| if ffi::interrupted() { interrupted() } else { err })?
        }
        Kind::Dynamic => Some(library_manifest(&probe)?),
    };
    let name = match (&from_file, &published) {
        (Some(file_name), Some(m)) if m.name != *file_name => {
            return Err(Error::new(format!(
                "`{}` calls itself `{}` in its manifest, but its file name makes it `{file_name}`",
                candidate.path.display(),
                m.name
            ))
            .with_help(format!(
                "rename the file to `{}`, or fix the manifest's `name`",
                installed_file_name(&m.name, candidate.kind)
            )));
        }
        (Some(file_name), _) => file_name.clone(),
        (None, Some(m)) => m.name.clone(),
        (None, None) => {
            return Err(Error::new(format!("cannot tell the plugin name of `{}`", candidate.path.display()))
                .with_help(
                    "name the file `dpe-NAME` (an executable) or `libdpe_NAME.so` (a library), or publish a manifest",
                ));
        }
    };
    names::validate("plugin", &name)?;
    if builtins.contains(&name.as_str()) {
        return Err(Error::new(format!("`{name}` is a builtin command, so a plugin of that name would never run"))
            .with_help("give the plugin another name"));
    }
    let manifest = published.clone().unwrap_or_else(|| Manifest::default_for(&name));
    let probe = Found { name: name.clone(), ..probe };
    let incompatible = manifest_cache::check_compatible(&probe, &manifest).err();
    Ok(Inspected { candidate, name, manifest, published: published.is_some(), incompatible })
}

/// A library's manifest, with errors that name the library, both ABI versions and the fix.
fn library_manifest(found: &Found) -> Result<Manifest> {
    let library = LoadedPlugin::load(&found.path).map_err(|err| match err {
        LoadError::Open(reason) => Error::new(format!("cannot load `{}` as a plugin library: {reason}", found.path.display()))
            .with_help("a dynamic plugin is a `cdylib` built for this machine; see the README (Dynamic plugins)"),
        LoadError::MissingSymbol(symbol, _) => {
            Error::new(format!("`{}` is not a dpe plugin library: it does not export `{symbol}`", found.path.display()))
                .with_help("build it with crate-type = [\"cdylib\"] and `dpe_plugin::export_plugin!(manifest, run)`")
        }
        LoadError::AbiMismatch { found: abi } => Error::new(format!(
            "plugin library `{}` uses plugin ABI {abi}, but this dpe (version {}) uses ABI {}",
            found.path.display(),
            env!("CARGO_PKG_VERSION"),
            dpe_plugin::abi::ABI_VERSION
        ))
        .with_help(format!(
            "rebuild the plugin against the `dpe-plugin` crate of dpe {} (ABI {}); `--force` cannot help, dpe cannot call a library of another ABI",
            env!("CARGO_PKG_VERSION"),
            dpe_plugin::abi::ABI_VERSION
        )),
    })?;
    let text = library.manifest_json();
    let (manifest, unknown) = manifest_cache::parse(&found.name, &found.path, &text)?;
    if !unknown.is_empty() {
        eprintln!("{}", manifest_cache::unknown_fields_warning(found, &manifest, &unknown));
    }
    Ok(manifest)
}

// ---------------------------------------------------------------------------------------------
// Writing it

/// What an install did.
pub struct Installed {
    pub path: PathBuf,
    pub receipt: Receipt,
    /// The receipt of the plugin this one replaced, if any.
    pub replaced: Option<Receipt>,
}

/// Creates the plugin directory (0755, never writable by others) and refuses one that is.
pub fn ensure_plugin_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| crate::error::io("create the plugin directory", dir, e))?;
    if let Some(open) = crate::fsutil::open_to_others(dir) {
        return Err(Error::new(format!(
            "refusing to install into `{}`: it is {}, so someone else could change what runs",
            dir.display(),
            open.why
        ))
        .with_help(open.fix));
    }
    Ok(())
}

/// Copies the inspected plugin into `plugin_dir` atomically and writes its receipt.
pub fn install(inspected: &Inspected, plugin_dir: &Path, cache_dir: &Path, forced: bool) -> Result<Installed> {
    ensure_plugin_dir(plugin_dir)?;
    let kind = inspected.candidate.kind;
    let file_name = installed_file_name(&inspected.name, kind);
    let target = plugin_dir.join(&file_name);
    let replaced = installed_files(plugin_dir, &inspected.name).iter().find_map(|f| read_receipt(f));

    remove_stale_temp_files(plugin_dir, &file_name);
    let tmp = TempFile::new(plugin_dir.join(format!(".{file_name}.install-{}", std::process::id())));
    let (sha256, size) =
        copy_synced(&inspected.candidate.path, &tmp.path, if kind == Kind::Executable { 0o755 } else { 0o644 })?;
    let receipt = Receipt {
        name: inspected.name.clone(),
        version: inspected.manifest.version.clone(),
        kind,
        file: file_name.clone(),
        source: inspected.candidate.path.clone(),
        built_from: inspected.candidate.built_from.clone(),
        sha256,
        size,
        installed: rfc3339_utc(std::time::SystemTime::now()),
        dpe_version: env!("CARGO_PKG_VERSION").to_string(),
        dpe_requirement: inspected.manifest.dpe.clone(),
        forced,
    };
    let receipt_text = format!(
        "# Written by `dpe plugin install`; `dpe plugin uninstall {}` removes it with the plugin.\n{}",
        inspected.name,
        toml::to_string(&receipt).expect("a receipt serialises")
    );
    let receipt_tmp = TempFile::new(plugin_dir.join(format!(".{file_name}.receipt.install-{}", std::process::id())));
    write_synced(&receipt_tmp.path, receipt_text.as_bytes())?;
    if ffi::interrupted() {
        return Err(interrupted());
    }

    // The commit: the plugin first (so a new plugin never runs under an old receipt's claims
    // for long), then its receipt.
    fs::rename(&tmp.path, &target).map_err(|e| crate::error::io("install the plugin as", &target, e))?;
    tmp.disarm();
    fs::rename(&receipt_tmp.path, receipt_path(&target))
        .map_err(|e| crate::error::io("write the receipt", &receipt_path(&target), e))?;
    receipt_tmp.disarm();
    // A reinstall that changes the kind removes the other form, which would otherwise shadow it
    // (an executable wins over a library in the same directory).
    for other in installed_files(plugin_dir, &inspected.name) {
        if other != target {
            let _ = fs::remove_file(&other);
            let _ = fs::remove_file(receipt_path(&other));
            manifest_cache::forget(cache_dir, &other);
        }
    }
    sync_dir(plugin_dir);
    manifest_cache::forget(cache_dir, &target);
    Ok(Installed { path: target, receipt, replaced })
}

/// Copies `from` to a new file `to` (created with owner-only permissions), hashing as it goes,
/// syncs it, then gives it `mode`. Stops early when the user presses Ctrl+C.
fn copy_synced(from: &Path, to: &Path, mode: u32) -> Result<(String, u64)> {
    let mut source = fs::File::open(from).map_err(|e| crate::error::io("read", from, e))?;
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| crate::error::io("create a file in", to.parent().unwrap_or(to), e))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        if ffi::interrupted() {
            return Err(interrupted());
        }
        let n = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(crate::error::io("read", from, e)),
        };
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n]).map_err(|e| copy_error(from, to, e))?;
        size += n as u64;
    }
    // Mode first, then sync, so what the rename publishes is complete, data and metadata.
    out.set_permissions(fs::Permissions::from_mode(mode)).map_err(|e| copy_error(from, to, e))?;
    out.sync_all().map_err(|e| copy_error(from, to, e))?;
    Ok((format!("{:x}", hasher.finalize()), size))
}

fn copy_error(from: &Path, to: &Path, e: std::io::Error) -> Error {
    Error::new(format!("could not copy `{}` into `{}`: {e}", from.display(), to.parent().unwrap_or(to).display()))
        .with_help("nothing was installed; free some space or fix the directory, then try again")
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| crate::error::io("create", path, e))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).map_err(|e| crate::error::io("write", path, e))
}

/// Removes temp files an install of `file_name` left behind when it was killed outright
/// (SIGKILL, power loss), where no cleanup could run. Only those of processes that are gone:
/// another install running right now keeps its own. Without `/proc` nothing is removed.
fn remove_stale_temp_files(plugin_dir: &Path, file_name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(plugin_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let pid = name
            .strip_prefix(&format!(".{file_name}."))
            .and_then(|rest| rest.strip_prefix("receipt.").or(Some(rest)))
            .and_then(|rest| rest.strip_prefix("install-"))
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if let Some(pid) = pid {
            if !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Syncs a directory so a rename in it survives a crash. Best effort: some filesystems refuse.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

fn interrupted() -> Error {
    Error::new("interrupted: nothing was installed").with_code(INTERRUPTED_STATUS)
}

/// A temp file removed on drop unless disarmed: every early return (an error, Ctrl+C) cleans
/// up after itself.
struct TempFile {
    path: PathBuf,
    armed: std::cell::Cell<bool>,
}

impl TempFile {
    fn new(path: PathBuf) -> TempFile {
        // A leftover from a killed install of the same pid is stale by definition.
        let _ = fs::remove_file(&path);
        TempFile { path, armed: std::cell::Cell::new(true) }
    }

    fn disarm(&self) {
        self.armed.set(false);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed.get() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Removing it

/// What an uninstall removed.
pub struct Removed {
    pub files: Vec<PathBuf>,
    pub receipt: Option<Receipt>,
}

/// Removes every installed form of plugin `name`, their receipts and cached manifests.
pub fn uninstall(plugin_dir: &Path, cache_dir: &Path, name: &str) -> Result<Removed> {
    let files = installed_files(plugin_dir, name);
    let receipt = files.iter().find_map(|f| read_receipt(f));
    for file in &files {
        fs::remove_file(file).map_err(|e| crate::error::io("remove", file, e))?;
        match fs::remove_file(receipt_path(file)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::error::io("remove", &receipt_path(file), e)),
        }
        manifest_cache::forget(cache_dir, file);
    }
    sync_dir(plugin_dir);
    Ok(Removed { files, receipt })
}

// ---------------------------------------------------------------------------------------------

/// `time` as `YYYY-MM-DDTHH:MM:SSZ` (UTC), without a date crate.
pub fn rfc3339_utc(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days, for the proleptic Gregorian calendar.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_795_000_000)), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn names_come_from_file_names() {
        assert_eq!(file_plugin_name(Path::new("/x/dpe-hello"), Kind::Executable).as_deref(), Some("hello"));
        let lib = format!("/x/libdpe_my_tool{DYLIB_SUFFIX}");
        assert_eq!(file_plugin_name(Path::new(&lib), Kind::Dynamic).as_deref(), Some("my-tool"));
        assert_eq!(file_plugin_name(Path::new("/x/hello"), Kind::Executable), None);
        assert_eq!(file_plugin_name(Path::new("/x/dpe-Bad.Name"), Kind::Executable), None);
        assert_eq!(installed_file_name("my-tool", Kind::Dynamic), format!("libdpe_my_tool{DYLIB_SUFFIX}"));
    }

    #[test]
    fn picks_the_plugin_among_cargo_artifacts() {
        let dir = Path::new("/src/hello");
        let lines = [
            r#"{"reason":"compiler-artifact","manifest_path":"/reg/serde/Cargo.toml","filenames":["/t/libserde.rlib"],"executable":null}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/src/hello/Cargo.toml","filenames":["/t/release/libdpe_hello.so","/t/release/libdpe_hello.rlib"],"executable":null}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/src/hello/Cargo.toml","filenames":["/t/release/dpe-hello"],"executable":"/t/release/dpe-hello"}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        let artifacts = parse_artifacts(&lines, dir);
        assert_eq!(artifacts.len(), 2, "{artifacts:?}");
        let exe = pick_artifact(dir, artifacts.clone(), false).unwrap();
        assert_eq!((exe.path.as_path(), exe.kind), (Path::new("/t/release/dpe-hello"), Kind::Executable));
        let lib = pick_artifact(dir, artifacts, true).unwrap();
        assert_eq!(lib.kind, Kind::Dynamic);
        let err = pick_artifact(dir, Vec::new(), false).unwrap_err();
        assert_eq!(err.message, "building `/src/hello` produced no dpe plugin");
    }
}

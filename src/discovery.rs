//! Finding plugins, in the documented order:
//! 1. the user's plugin directory (`$DPE_PLUGIN_DIR`, default `<data dir>/plugins`): an
//!    executable `dpe-NAME`, else a dynamic library `libdpe_NAME.so` (`.dylib` on macOS);
//! 2. an executable `dpe-NAME` beside the `dpe` executable (where first-party plugins live);
//! 3. an executable `dpe-NAME` in a `PATH` directory (empty, relative and `.` entries skipped).
//!
//! Dynamic libraries load only from the plugin directory. Builtins come before all of these and
//! are the dispatcher's business.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Executable,
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    PluginDir,
    BesideDpe,
    Path,
}

/// A plugin file found on disk.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub path: PathBuf,
    pub kind: Kind,
    pub source: Source,
}

pub const DYLIB_SUFFIX: &str = std::env::consts::DLL_SUFFIX;

/// The search directories in order, with what they may hold.
pub fn search_dirs(plugin_dir: &Path) -> Vec<(PathBuf, Source)> {
    let mut dirs = vec![(plugin_dir.to_path_buf(), Source::PluginDir)];
    if let Some(beside) = crate::paths::dpe_exe().ok().and_then(Path::parent) {
        dirs.push((beside.to_path_buf(), Source::BesideDpe));
    }
    dirs.extend(path_dirs().into_iter().map(|d| (d, Source::Path)));
    dirs
}

/// PATH's directories, skipping empty, relative and `.` entries (a relative entry would make
/// what runs depend on the current directory).
pub fn path_dirs() -> Vec<PathBuf> {
    let Some(path) = std::env::var_os("PATH") else { return Vec::new() };
    std::env::split_paths(&path).filter(|dir| dir.is_absolute()).collect()
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Library file names a plugin `name` may have (cargo turns `-` into `_` in library names).
fn library_names(name: &str) -> Vec<String> {
    let mut list = vec![format!("libdpe_{name}{DYLIB_SUFFIX}")];
    if name.contains('-') {
        list.push(format!("libdpe_{}{DYLIB_SUFFIX}", name.replace('-', "_")));
    }
    list
}

/// The plugin `name` that dispatch would run, if any. Stops at the first hit.
pub fn find(name: &str, plugin_dir: &Path) -> Option<Found> {
    let exe_name = format!("dpe-{name}");
    for (dir, source) in search_dirs(plugin_dir) {
        let candidate = dir.join(&exe_name);
        if candidate.is_file() {
            // A non-executable file is still "found" so the user learns why it does not run.
            return Some(Found { name: name.to_string(), path: candidate, kind: Kind::Executable, source });
        }
        if source == Source::PluginDir {
            for lib in library_names(name) {
                let candidate = dir.join(lib);
                if candidate.is_file() {
                    return Some(Found { name: name.to_string(), path: candidate, kind: Kind::Dynamic, source });
                }
            }
        }
    }
    None
}

/// Whether a found executable plugin may be run (has an execute bit).
pub fn is_runnable(found: &Found) -> bool {
    found.kind == Kind::Dynamic || is_executable_file(&found.path)
}

/// Every plugin file in every search directory, in search order (later entries with a name
/// already seen are shadowed by the earlier one).
pub fn all(plugin_dir: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    for (dir, source) in search_dirs(plugin_dir) {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut here: Vec<Found> = entries
            .flatten()
            .filter_map(|entry| plugin_file(&dir, entry.file_name().to_str()?, source))
            .filter(|found| found.path.is_file())
            .collect();
        sort_within_dir(&mut here);
        found.extend(here);
    }
    found
}

/// The plugin a file named `file` in `dir` is, judged by its name alone: `dpe-NAME`, or in the
/// plugin directory also `libdpe_NAME.so`, with a valid NAME.
pub fn plugin_file(dir: &Path, file: &str, source: Source) -> Option<Found> {
    let kinds: &[Kind] =
        if source == Source::PluginDir { &[Kind::Executable, Kind::Dynamic] } else { &[Kind::Executable] };
    kinds.iter().find_map(|&kind| {
        let name = name_in_file_name(file, kind).filter(|name| crate::names::is_valid(name))?;
        Some(Found { name, path: dir.join(file), kind, source })
    })
}

/// The NAME of `dpe-NAME` (an executable) or `libdpe_NAME.so` (a library, where cargo wrote
/// `-` as `_`), valid or not.
pub fn name_in_file_name(file: &str, kind: Kind) -> Option<String> {
    match kind {
        Kind::Executable => file.strip_prefix("dpe-").map(str::to_string),
        Kind::Dynamic => Some(file.strip_prefix("libdpe_")?.strip_suffix(DYLIB_SUFFIX)?.replace('_', "-")),
    }
}

/// One directory's plugins in the order dispatch prefers them: by name, and for one name an
/// executable before a library, as in [`find`].
pub fn sort_within_dir(found: &mut [Found]) {
    found.sort_by(|a, b| a.name.cmp(&b.name).then((a.kind == Kind::Dynamic).cmp(&(b.kind == Kind::Dynamic))));
}

/// Plugin names only, deduplicated and sorted: what `dpe <TAB>` offers.
pub fn names(plugin_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = all(plugin_dir).into_iter().map(|f| f.name).collect();
    names.sort();
    names.dedup();
    names
}

/// Whether a file's bytes contain `needle` (used for the manifest opt-in marker).
pub fn file_contains(path: &Path, needle: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    let needle = needle.as_bytes();
    bytes.windows(needle.len()).any(|w| w == needle)
}

//! `dpe plugin list [--json]`: every plugin file dpe can find, in dispatch order, and whether
//! `dpe NAME` would run it — and if not, exactly why.
//!
//! A plugin that is broken in any way (unreadable, no execute bit, writable by others, a bad
//! manifest, a library of another ABI) becomes a row saying so; it never fails the listing.
//! Files that are not safe to run (writable by others, not executable) are never run to ask
//! for their manifest.

use crate::context::Globals;
use crate::discovery::{self, Found, Kind, Source};
use crate::error::Result;
use crate::ffi::{LoadError, LoadedPlugin};
use crate::install::{self, Receipt};
use crate::manifest_cache::{self, Incompatibility};
use crate::paths::Paths;
use clap::Args;
use dpe_plugin::Manifest;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ListArgs {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Shadowed,
    Incompatible,
    NotExecutable,
    Insecure,
    Broken,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Shadowed => "shadowed",
            Status::Incompatible => "incompatible",
            Status::NotExecutable => "not executable",
            Status::Insecure => "insecure permissions",
            Status::Broken => "broken",
        }
    }
}

/// One row of the listing.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub name: String,
    pub kind: Kind,
    /// `None` when the plugin publishes no manifest, or it could not be read.
    pub version: Option<String>,
    pub description: String,
    pub path: PathBuf,
    pub source: Source,
    pub status: Status,
    /// Why the status is not `ok`.
    pub reason: Option<String>,
    /// The plugin that runs instead, for `shadowed`.
    pub shadowed_by: Option<PathBuf>,
    /// The install receipt, for plugins `dpe plugin install` put in the plugin directory.
    pub receipt: Option<Receipt>,
}

pub fn run(globals: &Globals, _args: ListArgs) -> Result<i32> {
    let paths = Paths::from_env();
    let rows = rows(&paths);
    if globals.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("rows serialise"));
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no plugins found");
        println!(
            "dpe looks in `{}`, beside dpe, and on PATH; `dpe plugin install PATH` adds one",
            paths.plugin_dir.display()
        );
        return Ok(0);
    }
    print!("{}", render(&rows));
    Ok(0)
}

/// Every plugin found, in search order, with its status.
pub fn rows(paths: &Paths) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut seen_paths = std::collections::HashSet::new();
    for found in discovery::all(&paths.plugin_dir) {
        // The same directory may be reached twice (dpe's own directory is also on PATH).
        if !seen_paths.insert(found.path.clone()) {
            continue;
        }
        let winner = rows.iter().find(|r| r.name == found.name).map(|r| r.path.clone());
        rows.push(row(&found, winner, &paths.cache_dir));
    }
    rows
}

fn row(found: &Found, winner: Option<PathBuf>, cache_dir: &Path) -> Row {
    let receipt = (found.source == Source::PluginDir).then(|| install::read_receipt(&found.path)).flatten();
    let mut row = Row {
        name: found.name.clone(),
        kind: found.kind,
        version: None,
        description: String::new(),
        path: found.path.clone(),
        source: found.source,
        status: Status::Ok,
        reason: None,
        shadowed_by: None,
        receipt,
    };
    let set = |row: &mut Row, status: Status, reason: String| {
        // The first problem found is the one reported: shadowed, then permissions, then the
        // manifest — the order in which dispatch would stop.
        if row.status == Status::Ok {
            row.status = status;
            row.reason = Some(reason);
        }
    };
    if let Some(winner) = winner {
        row.shadowed_by = Some(winner.clone());
        set(&mut row, Status::Shadowed, format!("shadowed by `{}`", winner.display()));
    }
    if !discovery::is_runnable(found) {
        set(&mut row, Status::NotExecutable, format!("not executable: run `chmod +x {}`", found.path.display()));
        return row;
    }
    if let Some(reason) = insecure(&found.path) {
        set(&mut row, Status::Insecure, reason);
        return row;
    }
    match manifest_cache::manifest(found, cache_dir) {
        Ok((manifest, published)) => {
            if published {
                row.version = Some(manifest.version.clone());
            }
            row.description = manifest.description.clone();
            if let Some(reason) = incompatibility(&manifest) {
                set(&mut row, Status::Incompatible, reason);
            }
        }
        Err(err) => {
            let (status, reason) = classify_failure(found, err.message);
            set(&mut row, status, reason);
        }
    }
    row
}

/// Why the file or its directory is writable by others, as dispatch would refuse it.
fn insecure(path: &Path) -> Option<String> {
    let (culprit, open) = crate::fsutil::writable_by_others(path)?;
    Some(format!("`{}` is {}: {}", culprit.display(), open.why, open.fix))
}

/// Why this dpe would not run a plugin with `manifest`, naming both versions.
fn incompatibility(manifest: &Manifest) -> Option<String> {
    let ours = manifest_cache::dpe_version();
    Some(match manifest_cache::incompatibility(manifest)? {
        Incompatibility::Protocol => format!(
            "speaks plugin protocol {}, this dpe speaks protocol {}",
            manifest.protocol,
            dpe_plugin::PROTOCOL_VERSION
        ),
        Incompatibility::InvalidRequirement(e) => {
            format!("its dpe requirement `{}` is not valid semver: {e}", manifest.dpe)
        }
        Incompatibility::Version => format!("requires dpe {}, this is dpe {ours}", manifest.dpe),
    })
}

/// A library that cannot be loaded is `incompatible` when it is of another ABI, else `broken`;
/// the reason is said briefly (the row already shows the path).
fn classify_failure(found: &Found, message: String) -> (Status, String) {
    if found.kind == Kind::Dynamic {
        match LoadedPlugin::load(&found.path) {
            Err(LoadError::AbiMismatch { found: abi }) => {
                return (
                    Status::Incompatible,
                    format!(
                        "plugin ABI {abi}, this dpe uses ABI {}: rebuild it against this dpe's `dpe-plugin`",
                        dpe_plugin::abi::ABI_VERSION
                    ),
                )
            }
            Err(LoadError::MissingSymbol(symbol, _)) => {
                return (Status::Broken, format!("not a dpe plugin library: it does not export `{symbol}`"))
            }
            Err(LoadError::Open(reason)) => return (Status::Broken, format!("cannot be loaded: {reason}")),
            Ok(_) => {}
        }
    }
    (Status::Broken, message)
}

/// The human table: one line per plugin, and under a plugin that does not run, why.
pub fn render(rows: &[Row]) -> String {
    let source = |s: Source| match s {
        Source::PluginDir => "plugin dir",
        Source::BesideDpe => "beside dpe",
        Source::Path => "PATH",
    };
    let kind = |k: Kind| match k {
        Kind::Executable => "executable",
        Kind::Dynamic => "dynamic",
    };
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.version.clone().unwrap_or_else(|| "-".into()),
                kind(r.kind).to_string(),
                source(r.source).to_string(),
                r.status.word().to_string(),
                r.path.display().to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "KIND", "SOURCE", "STATUS", "PATH"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for cells in &table {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &[String; 6]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:width$}  ", width = widths[i]));
            }
        }
        text.push('\n');
        text
    };
    let mut out = line(&header);
    for (row, cells) in rows.iter().zip(&table) {
        out.push_str(&line(cells));
        if let Some(reason) = &row.reason {
            out.push_str(&format!("  └ {reason}\n"));
        }
    }
    out
}

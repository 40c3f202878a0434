//! Loading `dpe.toml` layers: built-in defaults < user `config.toml` < workspace `dpe.toml` <
//! project `dpe.toml` < command line.
//!
//! Each file is first checked on its own against the schema (so an error names that file, its
//! line and column, toml's own caret snippet, and for a misspelt key the closest valid one),
//! then its relative paths are made absolute against its directory, then the layers are merged
//! table by table and the result is read once more into [`Config`].

use crate::error::{Error, Result};
use crate::suggest;
use dpe_plugin::Config;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The resolved configuration and the files it came from, lowest layer first.
pub struct Layered {
    pub config: Config,
    pub files: Vec<PathBuf>,
    /// The sha256 of each file's text as read, in the order of `files`: trust is judged on the
    /// very text that was parsed, without reading the file again on the dispatch path.
    pub hashes: Vec<String>,
}

/// Engines a workspace or project `dpe.toml` may name. `[engine] program` runs on the host with
/// the user's rights on every docker call, so a cloned workspace naming any other program
/// (`./evil`, or `sh`, which would run a `run` file from the current directory) would run code
/// before `dpe trust`, the very thing hooks must not do. Any other engine is the user's choice,
/// in their own `config.toml`.
const WORKSPACE_ENGINES: &[&str] = &["docker", "podman"];

/// Reads and merges the user's config and the workspace's and project's files (missing ones are
/// skipped), lowest layer first.
pub fn load(user: &Path, shared: &[PathBuf]) -> Result<Layered> {
    let mut merged = Table::new();
    let mut read = Vec::new();
    let mut hashes = Vec::new();
    for path in std::iter::once(user).chain(shared.iter().map(PathBuf::as_path)) {
        let Some(text) = read_config(path)? else { continue };
        let table = parse_file(path, &text)?;
        if path != user {
            check_engine_choice(path, user, &table)?;
        }
        merge(&mut merged, table);
        read.push(path.to_path_buf());
        hashes.push(crate::trust::hash_bytes(text.as_bytes()));
    }
    let config: Config = Value::Table(merged).try_into().map_err(|err: toml::de::Error| {
        // Each file passed on its own, so a failure here is a combination the schema refuses.
        Error::new(format!("the merged configuration is invalid: {}", err.message()))
    })?;
    Ok(Layered { config, files: read, hashes })
}

/// The most a configuration file may hold: far more than any real one, and a bound on what a
/// workspace someone sent can make dpe read.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads a configuration file, or `None` when there is none. Only a regular file is read: a
/// FIFO would block `open` itself, a device could stream forever. The type is checked before
/// opening, and the open does not block either, in case the path changed in between.
fn read_config(path: &Path) -> Result<Option<String>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::metadata(path) {
        Ok(meta) => check_regular(path, &meta)?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(crate::error::io("read", path, err)),
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| crate::error::io("read", path, err))?;
    let meta = file.metadata().map_err(|err| crate::error::io("read", path, err))?;
    check_regular(path, &meta)?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(Error::new(format!(
            "`{}` is {} bytes, more than a configuration file may hold (16 MiB)",
            path.display(),
            meta.len()
        ))
        .with_help("keep data out of dpe.toml: put it in a file in the project and name that file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES).read_to_end(&mut bytes).map_err(|err| crate::error::io("read", path, err))?;
    String::from_utf8(bytes).map(Some).map_err(|_| {
        Error::new(format!("`{}` is not UTF-8 text", path.display()))
            .with_help("save it as UTF-8 (TOML files are UTF-8)")
    })
}

/// Refuses a configuration path that is not a regular file, naming what it is.
fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a special file"
    };
    Err(Error::new(format!("`{}` is {what}, not a configuration file", path.display()))
        .with_help("replace it with a plain TOML file, or remove it"))
}

/// Refuses an `[engine] program` in a workspace or project file other than a known engine.
fn check_engine_choice(path: &Path, user: &Path, table: &Table) -> Result<()> {
    let program = table.get("engine").and_then(|engine| engine.get("program")).and_then(Value::as_str);
    match program {
        Some(program) if !WORKSPACE_ENGINES.contains(&program) => Err(Error::new(format!(
            "`{}` sets `[engine] program = \"{program}\"`, but a workspace may only choose `docker` or `podman`: \
             the engine runs on your machine on every docker call",
            path.display()
        ))
        .with_help(format!(
            "if you trust that engine, set `[engine] program` in your own `{}` instead",
            user.display()
        ))),
        _ => Ok(()),
    }
}

/// Checks one file against the schema and returns it as a table with absolute paths.
pub fn parse_file(path: &Path, text: &str) -> Result<Table> {
    let mut table: Table = toml::from_str(text).map_err(|err| describe(path, &err))?;
    // Every dispatch reads up to three files: the text is parsed once and checked as a table;
    // only a file the schema refuses is read again as text, for toml's line, column and caret.
    if Value::Table(table.clone()).try_into::<Config>().is_err() {
        if let Err(err) = toml::from_str::<Config>(text) {
            return Err(describe(path, &err));
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    absolutize(&mut table, base);
    Ok(table)
}

/// A config error: file, toml's line/column/caret report, and a did-you-mean for unknown keys.
fn describe(path: &Path, err: &toml::de::Error) -> Error {
    let report = err.to_string();
    let report = report.trim_end().replacen("TOML parse error", "", 1);
    // A value the schema checks (`dpe_plugin::config::Invalid`) ends its message with the fix.
    let (report, help) = match report.rsplit_once("\nhelp: ") {
        Some((report, help)) => (report.to_string(), Some(help.to_string())),
        None => (report, None),
    };
    let mut error = Error::new(format!("invalid configuration in `{}`{report}", path.display()));
    if let Some(help) = help {
        error = error.with_help(help);
    }
    let message = err.message();
    if let Some(unknown) = between(message, "unknown field `", "`") {
        let expected: Vec<&str> = message.split('`').skip(3).step_by(2).collect();
        match suggest::closest(unknown, expected.iter().copied()) {
            Some(best) => error = error.with_help(format!("did you mean `{best}`?")),
            None => {
                error = error.with_help(format!("valid keys here: {}", expected.join(", ")));
            }
        }
    }
    error
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// Keys whose values are paths relative to the file that declares them.
const PATH_KEYS: &[&str] = &["dockerfile", "requirements"];

fn absolutize(table: &mut Table, base: &Path) {
    let join = |value: &mut Value| {
        if let Value::String(text) = value {
            if !text.is_empty() && !Path::new(text.as_str()).is_absolute() {
                *text = base.join(&*text).to_string_lossy().into_owned();
            }
        }
    };
    for key in PATH_KEYS {
        if let Some(value) = table.get_mut(*key) {
            join(value);
        }
    }
    if let Some(Value::Array(list)) = table.get_mut("ca_certificates") {
        list.iter_mut().for_each(join);
    }
    if let Some(Value::Table(services)) = table.get_mut("services") {
        for (_, service) in services.iter_mut() {
            if let Some(build) = service.get_mut("build") {
                join(build);
            }
        }
    }
}

/// Merges `upper` into `lower`: tables key by key, anything else replaced.
pub fn merge(lower: &mut Table, upper: Table) {
    for (key, value) in upper {
        match (lower.get_mut(&key), value) {
            (Some(Value::Table(low)), Value::Table(up)) => merge(low, up),
            (_, value) => {
                lower.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_and_tables_merge() {
        let tmp = tempfile::tempdir().unwrap();
        let user = tmp.path().join("user.toml");
        let project = tmp.path().join("p/dpe.toml");
        std::fs::create_dir_all(project.parent().unwrap()).unwrap();
        std::fs::write(&user, "image = \"scipy\"\n[env]\nA = \"1\"\nB = \"1\"\n").unwrap();
        std::fs::write(&project, "requirements = \"req.txt\"\n[env]\nB = \"2\"\n").unwrap();
        let layered = load(&user, &[tmp.path().join("missing.toml"), project.clone()]).unwrap();
        let config = layered.config;
        assert_eq!(config.image.as_deref(), Some("scipy"));
        assert_eq!(config.env["A"], "1");
        assert_eq!(config.env["B"], "2");
        assert_eq!(config.requirements.unwrap(), tmp.path().join("p/req.txt").to_string_lossy());
        assert_eq!(layered.files, vec![user, project]);
    }

    #[test]
    fn misspelt_key_names_file_line_and_suggestion() {
        let path = Path::new("/w/projects/a/dpe.toml");
        let err = parse_file(path, "apt_packages = []\nimgae = \"scipy\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/w/projects/a/dpe.toml"), "{text}");
        assert!(text.contains("line 2, column 1"), "{text}");
        assert!(text.contains("imgae"), "{text}");
        assert_eq!(err.help.as_deref(), Some("did you mean `image`?"));
    }

    #[test]
    fn only_the_users_config_chooses_an_unusual_engine() {
        let tmp = tempfile::tempdir().unwrap();
        let user = tmp.path().join("config.toml");
        let workspace = tmp.path().join("dpe.toml");
        std::fs::write(&workspace, "[engine]\nprogram = \"podman\"\n").unwrap();
        assert_eq!(load(&user, std::slice::from_ref(&workspace)).unwrap().config.engine.program, "podman");
        std::fs::write(&workspace, "[engine]\nprogram = \"sh\"\n").unwrap();
        let err = load(&user, std::slice::from_ref(&workspace)).err().unwrap();
        assert!(err.message.contains("a workspace may only choose `docker` or `podman`"), "{}", err.message);
        std::fs::write(&workspace, "").unwrap();
        std::fs::write(&user, "[engine]\nprogram = \"nerdctl\"\n").unwrap();
        assert_eq!(load(&user, &[workspace]).unwrap().config.engine.program, "nerdctl");
    }
}

//! Tidy checks that are tests: every builtin command has an integration test that runs it.
//!
//! The check is deliberately plain text: a builtin counts as tested when some file here (this
//! one aside) has a line that runs dpe (`.arg(`, `.args(`, `dpe(`, `run(`) with the command's
//! name as a string literal. It cannot prove the test is good, only that one exists, which is
//! what a reviewer forgets to ask for when a command is added.

use std::path::Path;

/// The builtins: those `src/builtins.rs` lists in `BUILTINS`, and every command file or folder
/// under `src/commands/` (so a new command file is held to the rule before it is wired in).
fn builtins(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("src/builtins.rs")).expect("read src/builtins.rs");
    let line = text.lines().find(|l| l.starts_with("pub const BUILTINS")).expect("src/builtins.rs declares BUILTINS");
    let mut names: Vec<String> = line.split('"').skip(1).step_by(2).map(String::from).collect();
    for entry in std::fs::read_dir(root.join("src/commands")).expect("read src/commands") {
        let path = entry.expect("read src/commands").path();
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("a UTF-8 file name").to_string();
        if stem != "mod" && (path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
            names.push(stem);
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_builtin_command_has_a_test_that_runs_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tests = Vec::new();
    for entry in std::fs::read_dir(root.join("tests/it")).expect("read tests/it") {
        let path = entry.expect("read tests/it").path();
        if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tidy.rs") {
            tests.push(std::fs::read_to_string(&path).expect("read a test file"));
        }
    }
    let runs_dpe = |line: &str| [".arg(", ".args(", "dpe(", "run("].iter().any(|call| line.contains(call));
    let untested: Vec<String> = builtins(root)
        .into_iter()
        .filter(|name| {
            let literal = format!("\"{name}\"");
            !tests.iter().flat_map(|text| text.lines()).any(|line| runs_dpe(line) && line.contains(&literal))
        })
        .collect();
    assert!(
        untested.is_empty(),
        "no test in tests/it runs these builtins: {}; add one that runs `dpe NAME` and checks what users see",
        untested.join(", ")
    );
}

/// The `dpe-*` crates a plugin may depend on: the protocol crate, and the test harness for its
/// tests. Anything else would let one plugin link another (or the core), which the plugin
/// contract forbids: what a plugin needs from another comes through that plugin's commands
/// (`dpe jupyter spec --json`), so any compatible version of it works.
const SHARED: [(&str, bool); 2] = [("dpe-plugin", false), ("dpe-testkit", true)];

/// The `dpe-*` dependencies of one plugin manifest that are not [`SHARED`], each with the table
/// that names it. Every dependency table counts: target-specific ones and build ones too.
fn forbidden_dependencies(manifest: &toml::Table) -> Vec<String> {
    let mut owners: Vec<(String, &toml::Table)> = vec![(String::new(), manifest)];
    for (target, value) in manifest.get("target").and_then(toml::Value::as_table).into_iter().flatten() {
        owners.extend(value.as_table().map(|table| (format!("target.{target}."), table)));
    }
    let mut tables: Vec<(String, &toml::Table)> = Vec::new();
    for (prefix, owner) in owners {
        for kind in ["dependencies", "build-dependencies", "dev-dependencies"] {
            tables.extend(owner.get(kind).and_then(toml::Value::as_table).map(|t| (format!("{prefix}{kind}"), t)));
        }
    }
    let mut forbidden = Vec::new();
    for (kind, table) in tables {
        for (key, value) in table {
            // `alias = { package = "dpe-x", … }` depends on `dpe-x` under another name.
            let name = value.get("package").and_then(toml::Value::as_str).unwrap_or(key);
            let allowed = SHARED
                .iter()
                .any(|(shared, dev_only)| *shared == name && (!dev_only || kind.ends_with("dev-dependencies")));
            if name.starts_with("dpe") && !allowed {
                forbidden.push(format!("[{kind}] {name}"));
            }
        }
    }
    forbidden
}

#[test]
fn no_plugin_depends_on_another_plugin_or_the_core() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root.join("plugins")).expect("read plugins/") {
        let manifest_path = entry.expect("read plugins/").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest_path) else { continue };
        let manifest: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
        checked += 1;
        for dependency in forbidden_dependencies(&manifest) {
            found.push(format!("{}: {dependency}", manifest_path.strip_prefix(root).unwrap().display()));
        }
    }
    assert!(checked >= 5, "found only {checked} plugin crates under plugins/");
    assert!(
        found.is_empty(),
        "plugin crates depend on dpe crates other than dpe-plugin (and dpe-testkit for tests):\n{}\n\
         ask the other plugin through its commands (e.g. `dpe jupyter spec --json`, typed in \
         `dpe_plugin::contract`), and move what both need into plugins/dpe-plugin",
        found.join("\n")
    );
}

#[test]
fn the_dependency_check_sees_every_way_of_naming_a_crate() {
    let manifest: toml::Table = r#"
        [dependencies]
        dpe-plugin = { workspace = true }
        dpe-jupyter = { path = "../jupyter" }
        notebook = { package = "dpe-compose", path = "../compose" }
        serde = "1"
        [dev-dependencies]
        dpe-testkit = { path = "../../tests/testkit" }
        [build-dependencies]
        dpe-testkit = { path = "../../tests/testkit" }
        [target.'cfg(unix)'.dependencies]
        dpe = { path = "../.." }
    "#
    .parse()
    .unwrap();
    assert_eq!(
        forbidden_dependencies(&manifest),
        [
            "[dependencies] dpe-jupyter",
            "[dependencies] dpe-compose",
            "[build-dependencies] dpe-testkit",
            "[target.cfg(unix).dependencies] dpe",
        ]
    );
}

/// The Rust files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("read a folder entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The command line (`src/cli.rs`) dispatches to the builtins (`src/commands/`), so a builtin
/// that reached back into it would make the two a cycle: what both need (`BUILTINS`) lives in
/// a module of its own, and what a builtin needs of the command line arrives as an argument.
/// The completion engine (`src/complete.rs`) is called by the command line the same way, and
/// gets `Cli::command` as an argument.
#[test]
fn no_builtin_reaches_back_into_the_command_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for path in rust_files(&root.join("src/commands")).into_iter().chain([root.join("src/complete.rs")]) {
        let text = std::fs::read_to_string(&path).expect("read a command file");
        for (number, line) in text.lines().enumerate() {
            if line.contains("crate::cli") && !line.trim_start().starts_with("//") {
                found.push(format!("{}:{}: {}", path.strip_prefix(root).unwrap().display(), number + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "builtins use `crate::cli`, which uses them:\n{}", found.join("\n"));
}

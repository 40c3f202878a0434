//! Tidy checks that are tests: every builtin command has an integration test that runs it.
//!
//! The check is deliberately plain text: a builtin counts as tested when some file here (this
//! one aside) has a line that runs dpe (`.arg(`, `.args(`, `dpe(`, `run(`) with the command's
//! name as a string literal. It cannot prove the test is good, only that one exists, which is
//! what a reviewer forgets to ask for when a command is added.

use std::path::Path;

/// The builtins: those `src/cli.rs` lists in `BUILTINS`, and every command file or folder under
/// `src/commands/` (so a new command file is held to the rule before it is wired in).
fn builtins(root: &Path) -> Vec<String> {
    let cli = std::fs::read_to_string(root.join("src/cli.rs")).expect("read src/cli.rs");
    let line = cli.lines().find(|l| l.starts_with("pub const BUILTINS")).expect("src/cli.rs declares BUILTINS");
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

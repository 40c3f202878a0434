//! What `dpe export` and `dpe import` say before any engine is involved: their manifests, usage
//! errors, and files that are not archives.

use crate::support::*;
use dpe_testkit::{binary, Sandbox};

#[test]
fn manifests_describe_both_commands() {
    let sandbox = Sandbox::new();
    let export: serde_json::Value =
        serde_json::from_slice(&ok(sandbox.command(binary("dpe-export")).arg("--dpe-manifest")).stdout).unwrap();
    assert_eq!(export["name"], "export");
    assert_eq!(export["takes_project"], true);
    let options: Vec<&str> =
        export["options"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(options, ["--to", "--tag", "--push", "--with-data", "--json"]);
    let import: serde_json::Value =
        serde_json::from_slice(&ok(sandbox.command(binary("dpe-import")).arg("--dpe-manifest")).stdout).unwrap();
    assert_eq!(import["name"], "import");
    assert_eq!(import["takes_project"], false);
}

#[test]
fn usage_errors_name_the_fix() {
    let sandbox = Sandbox::new();
    sandbox.project("a", PROJECT_TOML);
    let output = dpe(&sandbox, &["export", "a", "--to", "archive"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr(&output), "error: `--to archive` needs a file to write\nhelp: dpe export a --to archive a.dpe\n");
    let output = dpe(&sandbox, &["export", "a", "--to", "lock", "--with-data"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr(&output), "error: `--with-data` goes with `--to archive`\n");
    // An import sets only the project's own tags, so an archive carries no other.
    let output = dpe(&sandbox, &["export", "a", "--to", "archive", "a.dpe", "--tag", "python:3"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: `--tag` names the image `python:3`, but an archive of project `a` carries `dpe-export/PROJECT:VERSION` only\n\
         help: use `--tag dpe-export/a:VERSION`, or `--to image --tag python:3` for an image of your own name\n"
    );
}

#[test]
fn import_refuses_what_is_not_an_archive_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let output = dpe(&sandbox, &["import", "nowhere.dpe"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: no archive `nowhere.dpe`\nhelp: name a file written by `dpe export PROJECT --to archive FILE`\n"
    );
    let file = sandbox.write("workspace/notes.dpe", "just some text, not an archive\n");
    let output = dpe(&sandbox, &["import", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!("error: `{}` is damaged or not a dpe archive: ", file.display())),
        "{message}"
    );
    assert!(tree(&sandbox.workspace().join("projects")).is_empty());
}

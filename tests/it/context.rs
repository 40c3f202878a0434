//! `dpe context`: workspace discovery, project selection, and what plugins receive.

use dpe_testkit::Sandbox;
use serde_json::Value;

#[test]
fn workspace_is_found_from_deep_inside_a_project() {
    let sandbox = Sandbox::new();
    let dir = sandbox.project("project_a", "");
    std::fs::create_dir_all(dir.join("notebooks/deep")).unwrap();
    let output = sandbox.dpe().current_dir(dir.join("notebooks/deep")).args(["--json", "context"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ctx: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(ctx["workspace"], sandbox.workspace().to_string_lossy().as_ref());
    assert_eq!(ctx["project"]["name"], "project_a");
    assert_eq!(ctx["protocol"], 1);
    assert_eq!(ctx["dpe_bin"], dpe_testkit::binary("dpe").to_string_lossy().as_ref());
}

#[test]
fn workspace_flag_and_variable_point_elsewhere() {
    let sandbox = Sandbox::new();
    sandbox.project("x", "");
    let outside = sandbox.path("home");
    let by_flag =
        sandbox.dpe().current_dir(&outside).args(["-C", "../workspace", "--json", "context"]).output().unwrap();
    let ctx: Value = serde_json::from_slice(&by_flag.stdout).unwrap();
    assert_eq!(ctx["workspace"], sandbox.workspace().to_string_lossy().as_ref());
    let by_env = sandbox
        .dpe()
        .current_dir(&outside)
        .env("DPE_WORKSPACE", sandbox.workspace())
        .args(["projects"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&by_env.stdout), "x\n");
}

#[test]
fn human_output_names_workspace_project_and_files() {
    let sandbox = Sandbox::new();
    sandbox.project("project_a", "image = \"scipy\"\n");
    let output = sandbox.dpe().args(["-p", "project_a", "context"]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("workspace:  {}\nproject:    project_a (", sandbox.workspace().display())),
        "{text}"
    );
    assert!(text.contains("image = \"scipy\""), "{text}");
}

#[test]
fn outside_any_workspace_there_is_no_project() {
    let sandbox = Sandbox::new();
    let output = sandbox.dpe().current_dir(sandbox.path("home")).args(["--json", "context"]).output().unwrap();
    assert!(output.status.success());
    let ctx: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(ctx["workspace"].is_null() && ctx["project"].is_null());
    let output = sandbox.dpe().current_dir(sandbox.path("home")).args(["-p", "a", "context"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr)
        .starts_with("error: project `a` was asked for, but there is no workspace here"));
}

#[test]
fn a_workspace_flag_that_is_not_a_workspace_gets_a_sane_fix() {
    let sandbox = Sandbox::new();
    sandbox.project("a", "");
    let file = sandbox.write("workspace/notes.txt", "");
    let run = |dir: &std::path::Path| {
        let output = sandbox.dpe().arg("-C").arg(dir).arg("context").output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert_eq!(
        run(&file),
        format!(
            "error: workspace `{}` is not a directory\nhelp: did you mean the workspace `{}`?\n",
            file.display(),
            sandbox.workspace().display()
        )
    );
    let missing = sandbox.path("nowhere");
    assert_eq!(
        run(&missing),
        format!(
            "error: workspace `{}` does not exist\nhelp: pass the folder holding the workspace's `dpe.toml` (`dpe -C path/to/workspace …`)\n",
            missing.display()
        )
    );
    let plain = sandbox.path("home");
    assert_eq!(
        run(&plain),
        format!(
            "error: `{}` is not a dpe workspace: it has neither `dpe.toml` nor `projects/`\nhelp: pass the folder holding the workspace's `dpe.toml`, or create `{}` to make this folder one\n",
            plain.display(),
            plain.join("dpe.toml").display()
        )
    );
    // A folder inside a workspace points at it.
    let inside = sandbox.workspace().join("projects/a/sub");
    std::fs::create_dir_all(&inside).unwrap();
    assert!(run(&inside).ends_with(&format!("help: did you mean the workspace `{}`?\n", sandbox.workspace().display())));
}

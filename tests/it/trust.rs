//! `dpe trust` for configuration: it records the workspace's and each project's `dpe.toml`,
//! the context tells plugins whether the configuration is trusted, a change needs trusting
//! again, and `--list` shows configuration files beside hooks.

use dpe_testkit::Sandbox;
use serde_json::Value;

fn run(sandbox: &Sandbox, args: &[&str]) -> String {
    let output = sandbox.dpe().args(args).output().unwrap();
    assert!(output.status.success(), "`dpe {}`: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn config_trusted(sandbox: &Sandbox) -> Value {
    let context: Value = serde_json::from_str(&run(sandbox, &["-p", "a", "--json", "context"])).unwrap();
    context["config_trusted"].clone()
}

#[test]
fn trust_records_configuration_and_a_change_needs_trusting_again() {
    let sandbox = Sandbox::new();
    let ws_file = sandbox.write("workspace/dpe.toml", "[jupyter]\nbind = \"0.0.0.0\"\n");
    let a = sandbox.project("a", "image = \"scipy\"\n").join("dpe.toml");
    let b = sandbox.project("b", "image = \"r\"\n").join("dpe.toml");
    let hook = sandbox.write_exe("workspace/hooks/pre-run", "#!/bin/sh\n");
    sandbox.write("config/config.toml", "[env]\nUSER_LEVEL = \"1\"\n");
    assert_eq!(config_trusted(&sandbox), false);
    let list = |sandbox: &Sandbox| run(sandbox, &["trust", "--list"]);
    // Beside the files, what each project (and the workspace alone) reaches outside itself.
    let bind = "`jupyter.bind` publishes the notebook and every port on `0.0.0.0`, beyond this machine";
    assert_eq!(
        list(&sandbox),
        format!(
            "not trusted  {}\nnot trusted  {}\nnot trusted  {}\nnot trusted  {}\n\
             not trusted  the workspace: {bind}\nnot trusted  project a: {bind}\nnot trusted  project b: {bind}\n",
            ws_file.display(),
            a.display(),
            b.display(),
            hook.display()
        )
    );

    assert_eq!(
        run(&sandbox, &["trust"]),
        format!(
            "trusted {}\ntrusted {}\ntrusted {}\ntrusted {}\n\
             trusted the workspace: {bind}\ntrusted project a: {bind}\ntrusted project b: {bind}\n",
            ws_file.display(),
            a.display(),
            b.display(),
            hook.display()
        )
    );
    assert_eq!(config_trusted(&sandbox), true);
    // The same workspace reached another way (`-C` with `..`) is the same trusted workspace.
    let context: Value =
        serde_json::from_str(&run(&sandbox, &["-C", "projects/../../workspace", "-p", "a", "--json", "context"]))
            .unwrap();
    assert_eq!(context["config_trusted"], true);

    // Another project's file changing does not concern project `a`; its own file does, and so
    // does the workspace's. The user's own config never needs trusting.
    std::fs::write(&b, "image = \"julia\"\n").unwrap();
    std::fs::write(sandbox.path("config/config.toml"), "[env]\nUSER_LEVEL = \"2\"\n").unwrap();
    assert_eq!(config_trusted(&sandbox), true);
    std::fs::write(&ws_file, "[jupyter]\nbind = \"0.0.0.0\"\n[services.db]\nvolumes = [\"/:/host\"]\n").unwrap();
    assert_eq!(config_trusted(&sandbox), false);
    assert_eq!(
        list(&sandbox),
        format!(
            "not trusted  {}\ntrusted      {}\nnot trusted  {}\ntrusted      {}\n\
             not trusted  the workspace: {host}\ntrusted      the workspace: {bind}\n\
             not trusted  project a: {host}\ntrusted      project a: {bind}\n\
             not trusted  project b: {host}\ntrusted      project b: {bind}\n",
            ws_file.display(),
            a.display(),
            b.display(),
            hook.display(),
            host = "`services.db.volumes` bind-mounts `/` (`/:/host`)",
        )
    );
    run(&sandbox, &["trust"]);
    assert_eq!(config_trusted(&sandbox), true);
}

#[test]
fn a_workspace_without_configuration_files_is_trusted_only_once_recorded() {
    let sandbox = Sandbox::new();
    std::fs::remove_file(sandbox.path("workspace/dpe.toml")).unwrap();
    std::fs::create_dir_all(sandbox.path("workspace/projects/a")).unwrap();
    sandbox.write("config/config.toml", "[jupyter]\nbind = \"0.0.0.0\"\n");
    let context = |sandbox: &Sandbox| -> Value {
        serde_json::from_str(&run(sandbox, &["-C", ".", "-p", "a", "--json", "context"])).unwrap()
    };
    // A cloned tree of `projects/` alone has no file to hash, and is still someone else's.
    assert_eq!(context(&sandbox)["config_trusted"], false);
    assert_eq!(context(&sandbox)["config"]["jupyter"]["bind"], "0.0.0.0");
    let bind = "`jupyter.bind` publishes the notebook and every port on `0.0.0.0`, beyond this machine";
    assert_eq!(
        run(&sandbox, &["-C", ".", "trust"]),
        format!(
            "trusted {} (no hooks or configuration files)\ntrusted the workspace: {bind}\ntrusted project a: {bind}\n",
            sandbox.workspace().display()
        )
    );
    assert_eq!(context(&sandbox)["config_trusted"], true);
    assert_eq!(context(&sandbox)["accepted_reaches"], serde_json::json!([bind]));
}

#[test]
fn a_folder_the_configuration_names_that_becomes_a_link_is_a_new_reach() {
    let sandbox = Sandbox::new();
    sandbox.project("a", "[services.web]\nimage = \"x\"\nvolumes = [\"./data:/data\"]\n");
    std::fs::create_dir_all(sandbox.path("workspace/projects/a/data")).unwrap();
    std::fs::create_dir_all(sandbox.path("home")).unwrap();
    run(&sandbox, &["trust"]);
    let context = |sandbox: &Sandbox| -> Value {
        serde_json::from_str(&run(sandbox, &["-p", "a", "--json", "context"])).unwrap()
    };
    assert_eq!(context(&sandbox)["config_trusted"], true);
    assert_eq!(context(&sandbox)["accepted_reaches"], serde_json::json!([]));
    // The pull: no file changed, `data` now leads to the home folder. `--list` shows it, not
    // trusted; `dpe trust` records it, and the context carries it as accepted.
    std::fs::remove_dir(sandbox.path("workspace/projects/a/data")).unwrap();
    std::os::unix::fs::symlink(sandbox.path("home"), sandbox.path("workspace/projects/a/data")).unwrap();
    let reach = format!(
        "`services.web.volumes` bind-mounts `{}` (`./data:/data`)",
        std::fs::canonicalize(sandbox.path("home")).unwrap().display()
    );
    let list = run(&sandbox, &["trust", "--list"]);
    assert!(list.ends_with(&format!("not trusted  project a: {reach}\n")), "{list}");
    run(&sandbox, &["trust"]);
    assert_eq!(context(&sandbox)["accepted_reaches"], serde_json::json!([reach]));
}

#[test]
fn a_workspace_reached_through_a_link_is_one_workspace() {
    let sandbox = Sandbox::new();
    sandbox.project("a", "");
    std::os::unix::fs::symlink(sandbox.workspace(), sandbox.path("lab")).unwrap();
    let real = std::fs::canonicalize(sandbox.workspace()).unwrap();
    let via_link: Value =
        serde_json::from_str(&run(&sandbox, &["-C", "../lab", "-p", "a", "--json", "context"])).unwrap();
    assert_eq!(via_link["workspace"], real.to_string_lossy().as_ref());
    assert_eq!(via_link["project"]["dir"], real.join("projects/a").to_string_lossy().as_ref());
}

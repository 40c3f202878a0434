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
    assert_eq!(
        list(&sandbox),
        format!(
            "not trusted  {}\nnot trusted  {}\nnot trusted  {}\nnot trusted  {}\n",
            ws_file.display(),
            a.display(),
            b.display(),
            hook.display()
        )
    );

    assert_eq!(
        run(&sandbox, &["trust"]),
        format!(
            "trusted {}\ntrusted {}\ntrusted {}\ntrusted {}\n",
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
            "not trusted  {}\ntrusted      {}\nnot trusted  {}\ntrusted      {}\n",
            ws_file.display(),
            a.display(),
            b.display(),
            hook.display()
        )
    );
    run(&sandbox, &["trust"]);
    assert_eq!(config_trusted(&sandbox), true);
}

#[test]
fn a_workspace_without_configuration_files_has_nothing_to_distrust() {
    let sandbox = Sandbox::new();
    std::fs::remove_file(sandbox.path("workspace/dpe.toml")).unwrap();
    std::fs::create_dir_all(sandbox.path("workspace/projects/a")).unwrap();
    sandbox.write("config/config.toml", "[jupyter]\nbind = \"0.0.0.0\"\n");
    let context: Value = serde_json::from_str(&run(&sandbox, &["-C", ".", "-p", "a", "--json", "context"])).unwrap();
    assert_eq!(context["config_trusted"], true);
    assert_eq!(context["config"]["jupyter"]["bind"], "0.0.0.0");
    assert_eq!(
        run(&sandbox, &["-C", ".", "trust"]),
        format!("no hooks or configuration files in `{}`\n", sandbox.workspace().display())
    );
}

//! Configuration: layer precedence and the errors a user sees for a broken `dpe.toml`.

use dpe_testkit::Sandbox;
use serde_json::Value;

fn context_json(sandbox: &Sandbox, args: &[&str]) -> Value {
    let output = sandbox.dpe().args(args).args(["--json", "context"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn layers_merge_defaults_user_workspace_project() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "config/config.toml",
        "image = \"user-image\"\napt_packages = [\"git\"]\n[env]\nFROM_USER = \"1\"\nLEVEL = \"user\"\n",
    );
    sandbox.write(
        "workspace/dpe.toml",
        "image = \"ws-image\"\n[env]\nLEVEL = \"workspace\"\n[jupyter]\nready_timeout = 30\n",
    );
    sandbox.project("a", "requirements = \"reqs/dev.txt\"\n[env]\nLEVEL = \"project\"\n");
    let ctx = context_json(&sandbox, &["-p", "a"]);
    let config = &ctx["config"];
    assert_eq!(config["image"], "ws-image");
    assert_eq!(config["apt_packages"], serde_json::json!(["git"]));
    assert_eq!(config["env"]["FROM_USER"], "1");
    assert_eq!(config["env"]["LEVEL"], "project");
    assert_eq!(config["jupyter"]["ready_timeout"], 30);
    // Untouched defaults stay.
    assert_eq!(config["jupyter"]["bind"], "127.0.0.1");
    assert_eq!(config["engine"]["program"], "docker");
    // Relative paths are resolved against the file that declared them.
    let expected = sandbox.workspace().join("projects/a/reqs/dev.txt");
    assert_eq!(config["requirements"], expected.to_string_lossy().as_ref());
    let files: Vec<&str> = ctx["config_files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(files.len(), 3);
    assert!(files[0].ends_with("config/config.toml") && files[2].ends_with("projects/a/dpe.toml"), "{files:?}");
}

#[test]
fn misspelt_key_names_file_line_column_and_the_right_key() {
    let sandbox = Sandbox::new();
    let file = sandbox.project("a", "apt_packages = [\"git\"]\nimgae = \"scipy\"\n").join("dpe.toml");
    let output = sandbox.dpe().args(["-p", "a", "context"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.starts_with(&format!("error: invalid configuration in `{}` at line 2, column 1", file.display())),
        "{text}"
    );
    assert!(text.contains("2 | imgae = \"scipy\"\n  | ^^^^^"), "{text}");
    assert!(text.contains("unknown field `imgae`"), "{text}");
    assert!(text.ends_with("help: did you mean `image`?\n"), "{text}");
}

#[test]
fn misspelt_key_in_a_section_is_caught_too() {
    let sandbox = Sandbox::new();
    sandbox.write("workspace/dpe.toml", "[jupyter]\nprot = 9000\n");
    let output = sandbox.dpe().arg("context").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("line 2, column 1"), "{text}");
    assert!(text.ends_with("help: did you mean `port`?\n"), "{text}");
}

#[test]
fn wrong_types_and_bad_syntax_name_the_place() {
    let sandbox = Sandbox::new();
    sandbox.write("workspace/dpe.toml", "ports = [\"eighty\"]\n");
    let text = String::from_utf8_lossy(&sandbox.dpe().arg("context").output().unwrap().stderr).into_owned();
    assert!(text.contains("dpe.toml` at line 1, column"), "{text}");
    assert!(text.contains("invalid type: string \"eighty\", expected u16"), "{text}");

    sandbox.write("workspace/dpe.toml", "image = \"unterminated\n");
    let output = sandbox.dpe().arg("context").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("dpe.toml` at line 1, column"), "{text}");

    sandbox.write("workspace/dpe.toml", "gpu = \"sometimes\"\n");
    let text = String::from_utf8_lossy(&sandbox.dpe().arg("context").output().unwrap().stderr).into_owned();
    assert!(text.contains("unknown variant `sometimes`, expected one of `off`, `auto`, `required`"), "{text}");
}

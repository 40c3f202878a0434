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

/// Runs `dpe context` on a workspace `dpe.toml` holding `toml` and returns (status, stderr).
fn refused(toml: &str) -> (Option<i32>, String) {
    let sandbox = Sandbox::new();
    let file = sandbox.write("workspace/dpe.toml", toml);
    let output = sandbox.dpe().arg("context").output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr).replace(&file.display().to_string(), "FILE");
    (output.status.code(), text)
}

/// dpe's report for a refused value: the file, toml's line/column/caret under `span` (the text
/// at fault in `source_line`, line `line`), then `rest` (the message and its `help:` line).
fn report(line: usize, source_line: &str, span: &str, rest: &str) -> String {
    let column = source_line.find(span).unwrap();
    let carets = "^".repeat(span.chars().count());
    format!(
        "error: invalid configuration in `FILE` at line {line}, column {}\n  |\n{line} | {source_line}\n  | {}{carets}\n{rest}",
        column + 1,
        " ".repeat(column)
    )
}

#[test]
fn durations_beyond_a_day_are_refused_where_they_are_written() {
    for (table, key, min, default) in [("hooks", "timeout", 1, 300), ("jupyter", "ready_timeout", 0, 120)] {
        let line = format!("{key} = 9223372036854775807");
        let (code, text) = refused(&format!("[{table}]\n{line}\n"));
        assert_eq!(code, Some(1), "{text}");
        let rest = format!(
            "`[{table}] {key}` is 9223372036854775807 seconds: give a number of seconds from {min} to 86400 (one day; default {default})\n"
        );
        assert_eq!(text, report(2, &line, "9223372036854775807", &rest));
    }
    // End to end, where the value used to overflow the clock: a docker call with a hook.
    let sandbox = Sandbox::new();
    sandbox.write("workspace/dpe.toml", "[hooks]\ntimeout = 9223372036854775807\n");
    sandbox.write_exe("config/hooks/pre-docker", "#!/bin/sh\ntrue\n");
    let output = sandbox.dpe().args(["docker", "version", "--format", "x"]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.starts_with("error: invalid configuration in `"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn control_characters_from_a_config_never_reach_the_terminal() {
    // toml quotes the line at fault, raw ESC and BEL included: clear screen, set the title.
    let (code, text) = refused("image = \"x\" # \u{1b}[2J\u{1b}]0;owned\u{7}\n");
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
    assert!(text.contains("1 | image = \"x\" # \\u{1b}[2J\\u{1b}]0;owned\\u{7}\n"), "{text}");
}

#[test]
fn values_that_would_reach_a_dockerfile_or_a_command_line_unsafely_are_refused() {
    const IMAGE_HELP: &str = "help: name an image (`python:3.12-slim`, `quay.io/jupyter/scipy-notebook`) or a \
        Docker Stacks shorthand (`scipy`, `datascience`, `pytorch`, `tensorflow`, `pyspark`), or remove the line for the default\n";
    const ENV_NAME_HELP: &str =
        "help: names use letters, digits and `_` and do not start with a digit (`MY_SETTING`)\n";
    const PIP_HELP: &str = "help: write one package name or specifier per entry, without spaces or options: \
        `python_packages = [\"pandas>=2\"]`\n";
    const APT_HELP: &str = "help: write one package name or specifier per entry, without spaces or options: \
        `apt_packages = [\"curl\"]`\n";
    // (the file, its line at fault, the text toml points at, the message and help)
    let cases: &[(&str, &str, &str, String)] = &[
        (
            "[env]\n\"A=1\\nRUN touch /x\\nENV B\" = \"1\"\n",
            "\"A=1\\nRUN touch /x\\nENV B\" = \"1\"",
            "\"A=1\\nRUN touch /x\\nENV B\"",
            format!("`A=1\\nRUN touch /x\\nENV B` is not a valid environment variable name\n{ENV_NAME_HELP}"),
        ),
        ("[env]\n1ST = \"x\"\n", "1ST = \"x\"", "1ST", format!("`1ST` is not a valid environment variable name\n{ENV_NAME_HELP}")),
        (
            "[env]\nA = \"1\\nRUN touch /x\"\n",
            "A = \"1\\nRUN touch /x\"",
            "\"1\\nRUN touch /x\"",
            "the value of environment variable `A` contains a line break\nhelp: keep the value on one line, or put \
             the text in a file in the project and name that file in the variable\n"
                .to_string(),
        ),
        (
            "python_packages = [\"six\\nRUN touch /x\"]\n",
            "python_packages = [\"six\\nRUN touch /x\"]",
            "[\"six\\nRUN touch /x\"]",
            format!("`six\\nRUN touch /x` in `python_packages` contains whitespace\n{PIP_HELP}"),
        ),
        (
            "python_packages = [\"pandas >= 2\"]\n",
            "python_packages = [\"pandas >= 2\"]",
            "[\"pandas >= 2\"]",
            format!("`pandas >= 2` in `python_packages` contains whitespace\n{PIP_HELP}"),
        ),
        (
            "apt_packages = [\"-oAPT::Get::AllowUnauthenticated=1\"]\n",
            "apt_packages = [\"-oAPT::Get::AllowUnauthenticated=1\"]",
            "[\"-oAPT::Get::AllowUnauthenticated=1\"]",
            format!(
                "`-oAPT::Get::AllowUnauthenticated=1` in `apt_packages` starts with `-`, so it would be read as an option\n{APT_HELP}"
            ),
        ),
        ("apt_packages = [\"\"]\n", "apt_packages = [\"\"]", "[\"\"]", format!("`apt_packages` has an empty entry\n{APT_HELP}")),
        (
            "image = \"--privileged\"\n",
            "image = \"--privileged\"",
            "\"--privileged\"",
            format!("image `--privileged` starts with `-`, so docker would read it as an option\n{IMAGE_HELP}"),
        ),
        ("image = \"\"\n", "image = \"\"", "\"\"", format!("`image` is empty\n{IMAGE_HELP}")),
        (
            "[services.db]\nimage = \"postgres:16 --rm\"\n",
            "image = \"postgres:16 --rm\"",
            "\"postgres:16 --rm\"",
            format!("image `postgres:16 --rm` contains whitespace\n{IMAGE_HELP}"),
        ),
        (
            "[services.db]\nimage = \"postgres\"\n[services.db.env]\n\"X Y\" = \"1\"\n",
            "\"X Y\" = \"1\"",
            "\"X Y\"",
            format!("`X Y` is not a valid environment variable name\n{ENV_NAME_HELP}"),
        ),
        (
            "[engine]\ncompose = \"podman-compose\"\n",
            "compose = \"podman-compose\"",
            "\"podman-compose\"",
            "`podman-compose` is not a compose program\nhelp: `[engine] compose` is `auto` (the default), `plugin` \
             (`docker compose`) or `standalone` (`docker-compose`)\n"
                .to_string(),
        ),
    ];
    for (toml, source_line, span, rest) in cases {
        let line = toml.lines().position(|l| l == *source_line).unwrap() + 1;
        let (code, text) = refused(toml);
        assert_eq!(code, Some(1), "{toml}");
        assert_eq!(text, report(line, source_line, span, rest), "{toml}");
    }
}

#[test]
fn odd_but_valid_values_are_accepted_as_they_are() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "workspace/dpe.toml",
        "image = \"localhost:5000/team/img@sha256:abc\"\npython_packages = [\"pandas>=2,<3\", \"numpy[extra]\"]\n\
         [env]\n_X = 'say \"hi\" $HOME \\ end'\nTAB = \"a\\tb\"\n[engine]\ncompose = \"standalone\"\n",
    );
    let ctx = context_json(&sandbox, &[]);
    assert_eq!(ctx["config"]["env"]["_X"], "say \"hi\" $HOME \\ end");
    assert_eq!(ctx["config"]["env"]["TAB"], "a\tb");
    assert_eq!(ctx["config"]["engine"]["compose"], "standalone");
}

#[test]
fn a_config_that_is_not_a_regular_file_is_refused_without_blocking() {
    let sandbox = Sandbox::new();
    let file = sandbox.project("a", "").join("dpe.toml");
    std::fs::remove_file(&file).unwrap();
    let status = std::process::Command::new("mkfifo").arg(&file).status().unwrap();
    assert!(status.success());
    // Nobody ever writes to the FIFO: reading it would wait forever.
    let mut child = sandbox
        .dpe()
        .args(["-p", "a", "context"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("dpe blocked on a FIFO dpe.toml");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: `{}` is a FIFO (named pipe), not a configuration file\nhelp: replace it with a plain TOML file, or remove it\n",
            file.display()
        )
    );
}

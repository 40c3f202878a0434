//! Dispatch: lookup order and shadowing, did-you-mean, name validation, refused permissions,
//! the context sh and Python plugins see, forwarded global flags, and exit status pass-through.

use dpe_testkit::{set_mode, Sandbox};
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

fn run(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.dpe().args(args).output().expect("run dpe")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A plugin that says who it is.
fn say(label: &str) -> String {
    format!("#!/bin/sh\necho {label}\n")
}

#[test]
fn plugin_dir_shadows_beside_dpe_which_shadows_path() {
    let sandbox = Sandbox::new();
    // A private copy of dpe, so a plugin can sit beside it without touching the build dir.
    let dpe_copy = sandbox.private_dpe();
    let run_copy = |args: &[&str]| sandbox.command(&dpe_copy).args(args).output().unwrap();

    sandbox.write_exe("bin/dpe-hello", &say("from-path"));
    assert_eq!(stdout(&run_copy(&["hello"])), "from-path\n");
    sandbox.write_exe("opt/dpe-hello", &say("beside-dpe"));
    assert_eq!(stdout(&run_copy(&["hello"])), "beside-dpe\n");
    sandbox.write_exe("data/plugins/dpe-hello", &say("plugin-dir"));
    assert_eq!(stdout(&run_copy(&["hello"])), "plugin-dir\n");
}

#[test]
fn builtins_come_before_plugins() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("bin/dpe-projects", &say("plugin"));
    sandbox.project("alpha", "");
    let output = run(&sandbox, &["projects"]);
    assert_eq!(stdout(&output), "alpha\n");
}

#[test]
fn unknown_command_suggests_the_closest_plugin() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("bin/dpe-jupyter", &say("x"));
    let output = run(&sandbox, &["jupytr"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "error: no command or plugin named `jupytr`\nhelp: did you mean `jupyter`?\n");
}

#[test]
fn unknown_command_suggests_a_builtin() {
    let sandbox = Sandbox::new();
    let output = run(&sandbox, &["contxt"]);
    assert_eq!(stderr(&output), "error: no command or plugin named `contxt`\nhelp: did you mean `context`?\n");
}

#[test]
fn a_project_typed_as_a_command_is_explained() {
    let sandbox = Sandbox::new();
    sandbox.project("project_a", "");
    let output = run(&sandbox, &["project_a"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("help: `project_a` is a project: give it to a command"), "{}", stderr(&output));
}

#[test]
fn path_tricks_are_refused_never_looked_up() {
    let sandbox = Sandbox::new();
    // Would run if `..` were ever joined to a search directory.
    sandbox.write_exe("dpe-x", &say("escaped"));
    for name in ["../x", "..", "a/b", ".hidden", "UPPER"] {
        let output = run(&sandbox, &[name]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert_eq!(
            stderr(&output),
            format!("error: `{name}` is not a valid command name\nhelp: commands and plugins use lowercase letters, digits, `-` and `_`; see `dpe --help`\n")
        );
        assert!(stdout(&output).is_empty());
    }
}

#[test]
fn relative_and_dot_path_entries_are_skipped() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("workspace/dpe-local", &say("from-cwd"));
    let output = sandbox
        .dpe()
        .env("PATH", ".:workspace::/usr/bin:/bin")
        .current_dir(sandbox.workspace())
        .arg("local")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).starts_with("error: no command or plugin named `local`"), "{}", stderr(&output));
}

#[test]
fn group_or_world_writable_plugins_are_refused_with_the_fix() {
    let sandbox = Sandbox::new();
    let plugin = sandbox.write_exe("bin/dpe-open", &say("ran"));
    set_mode(&plugin, 0o777);
    let output = run(&sandbox, &["open"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: refusing plugin `{0}`: `{0}` is writable by everyone (mode 777), so someone else could change what runs\nhelp: if you trust it, run `chmod go-w {0}`\n",
            plugin.display()
        )
    );
    assert!(stdout(&output).is_empty());

    // The directory counts too.
    set_mode(&plugin, 0o755);
    set_mode(&sandbox.path("bin"), 0o775);
    let output = run(&sandbox, &["open"]);
    assert!(stderr(&output).contains("is writable by its group (mode 775)"), "{}", stderr(&output));
    set_mode(&sandbox.path("bin"), 0o755);
    assert_eq!(stdout(&run(&sandbox, &["open"])), "ran\n");
}

#[test]
fn a_non_executable_plugin_says_how_to_fix_it() {
    let sandbox = Sandbox::new();
    let plugin = sandbox.write("bin/dpe-lazy", &say("x"));
    set_mode(&plugin, 0o644);
    let output = run(&sandbox, &["lazy"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("help: run `chmod +x {}`", plugin.display())), "{}", stderr(&output));
}

const SH_PLUGIN: &str = r#"#!/bin/sh
# A plugin as a user would write it: five lines of sh.
echo "bin=$DPE_BIN"
echo "protocol=$DPE_PROTOCOL workspace=$DPE_WORKSPACE project=$DPE_PROJECT dir=$DPE_PROJECT_DIR"
echo "plugin=$DPE_PLUGIN verbose=$DPE_VERBOSE json=$DPE_JSON color=$DPE_COLOR state=$DPE_STATE_DIR"
echo "args=$*"
"#;

#[test]
fn sh_plugin_gets_the_context_and_global_flags() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("bin/dpe-show", SH_PLUGIN);
    let dir = sandbox.project("project_a", "");
    let output = sandbox
        .dpe()
        .current_dir(dir.join("."))
        .args(["-v", "--json", "--color", "never", "show", "one", "--two"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let ws = sandbox.workspace();
    assert_eq!(
        stdout(&output),
        format!(
            "bin={}\nprotocol=1 workspace={} project=project_a dir={}\nplugin=show verbose=1 json=1 color=never state={}\nargs=one --two\n",
            dpe_testkit::binary("dpe").display(),
            ws.display(),
            dir.display(),
            sandbox.path("state").display()
        )
    );
}

#[test]
fn python_plugin_reads_the_json_context() {
    let sandbox = Sandbox::new();
    sandbox.write_exe(
        "bin/dpe-pyctx",
        "#!/usr/bin/env python3\nimport json, os, sys\nctx = json.loads(os.environ['DPE_CONTEXT'])\nprint(ctx['protocol'], ctx['project']['name'], ctx['config']['image'], ctx['config']['env']['MODE'], sys.argv[1:])\n",
    );
    sandbox.write("workspace/dpe.toml", "image = \"python:3.12\"\n[env]\nMODE = \"workspace\"\n");
    sandbox.project("project_b", "[env]\nMODE = \"project\"\n");
    let output = run(&sandbox, &["--project", "project_b", "pyctx", "x"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "1 project_b python:3.12 project ['x']\n");
}

/// A plugin that opts into the manifest and takes a project as its first positional.
const TAKES_PROJECT: &str = r#"#!/bin/sh
# dpe-plugin-manifest:v1
if [ "$1" = "--dpe-manifest" ]; then
  echo '{"name":"run","version":"1.2.0","dpe":"^0.1","takes_project":true,"subcommands":[{"name":"stop","takes_project":true},{"name":"list"}]}'
  exit 0
fi
echo "project=$DPE_PROJECT args=$*"
"#;

#[test]
fn first_positional_selects_the_project_when_the_manifest_says_so() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("bin/dpe-run", TAKES_PROJECT);
    sandbox.project("project_a", "");
    sandbox.project("project_b", "");
    assert_eq!(
        stdout(&run(&sandbox, &["run", "project_a", "--detach"])),
        "project=project_a args=project_a --detach\n"
    );
    assert_eq!(stdout(&run(&sandbox, &["run", "stop", "project_b"])), "project=project_b args=stop project_b\n");
    // Not a project: stays an ordinary argument.
    assert_eq!(stdout(&run(&sandbox, &["run", "list"])), "project= args=list\n");
    // --project wins.
    assert_eq!(stdout(&run(&sandbox, &["-p", "project_b", "run", "project_a"])), "project=project_b args=project_a\n");
}

#[test]
fn unknown_project_flag_suggests_the_closest() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("bin/dpe-run", TAKES_PROJECT);
    sandbox.project("project_a", "");
    let output = run(&sandbox, &["--project", "projct_a", "run"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: no project named `projct_a` in `{}`\nhelp: did you mean `project_a`?\n",
            sandbox.workspace().join("projects").display()
        )
    );
}

#[test]
fn a_project_folder_with_capitals_is_named_as_no_project_with_its_fix() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("bin/dpe-run", TAKES_PROJECT);
    std::fs::create_dir_all(sandbox.workspace().join("projects/AdvUpper")).unwrap();
    let projects = sandbox.workspace().join("projects");
    let hint = "project names are lowercase letters, digits, `-` and `_`, so `AdvUpper` is not a project: \
                rename the folder `AdvUpper` to `advupper`";
    let invalid =
        format!("error: `AdvUpper` is not a valid project name\nhelp: {hint} (in `{}`)\n", projects.display());
    for args in [&["-p", "AdvUpper", "run"][..], &["run", "AdvUpper"]] {
        let output = run(&sandbox, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&output), invalid, "{args:?}");
    }
    let output = run(&sandbox, &["-p", "advupper", "run"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("error: no project named `advupper` in `{}`\nhelp: {hint}\n", projects.display())
    );
}

#[test]
fn exit_status_and_signals_pass_through() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("bin/dpe-fail", "#!/bin/sh\nexit 42\n");
    sandbox.write_exe("bin/dpe-killed", "#!/bin/sh\nkill -TERM $$\n");
    assert_eq!(run(&sandbox, &["fail"]).status.code(), Some(42));
    // dpe execs the plugin, so the caller sees exactly what it would see running it directly.
    let output = run(&sandbox, &["killed"]);
    assert_eq!(output.status.signal(), Some(15));
}

#[test]
fn a_plugin_without_manifest_is_never_run_to_ask_for_one() {
    let sandbox = Sandbox::new();
    let marker = sandbox.path("ran-with-args");
    sandbox.write_exe("bin/dpe-naive", &format!("#!/bin/sh\necho \"$*\" >> {}\n", marker.display()));
    assert!(run(&sandbox, &["naive", "real"]).status.success());
    assert!(run(&sandbox, &["naive", "again"]).status.success());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "real\nagain\n");
}

#[test]
fn bare_dpe_lists_builtins_and_plugins() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("bin/dpe-run", TAKES_PROJECT);
    let output = run(&sandbox, &[]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.contains("docker") && text.contains("context"), "{text}");
    // First-party plugins built beside dpe are listed too; `run` is among them.
    let plugins = text.split("\nPlugins:\n").nth(1).expect("a Plugins section");
    assert!(plugins.lines().any(|line| line.trim_start().starts_with("run ") || line.trim() == "run"), "{text}");
}

/// A Python plugin reading its context the documented way: the file in `DPE_CONTEXT_FILE` when
/// that is set, else `DPE_CONTEXT`.
const CONTEXT_READER: &str = "#!/usr/bin/env python3\nimport json, os\n\
    path = os.environ.get('DPE_CONTEXT_FILE')\n\
    ctx = json.load(open(path)) if path else json.loads(os.environ['DPE_CONTEXT'])\n\
    print('file' if path else 'variable', ctx['project']['name'], len(ctx['config']['plugins']['big']['data']))\n";

#[test]
fn a_context_too_large_for_one_variable_reaches_plugins_and_hooks_in_a_file() {
    let sandbox = Sandbox::new();
    sandbox.write_exe("bin/dpe-bigctx", CONTEXT_READER);
    // 200 KiB: past Linux's 128 KiB cap on one environment string.
    let big = "x".repeat(200 * 1024);
    sandbox.project("a", &format!("[plugins.big]\ndata = \"{big}\"\n"));
    sandbox.project("small", "[plugins.big]\ndata = \"xyz\"\n");
    let output = run(&sandbox, &["-p", "a", "bigctx"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("file a {}\n", big.len()));
    // A small context keeps the variable, as before.
    assert_eq!(stdout(&run(&sandbox, &["-p", "small", "bigctx"])), "variable small 3\n");

    // A Rust plugin reads it too (the first-party ones beside dpe): it answers --help only
    // after reading its context.
    let output = run(&sandbox, &["-p", "a", "gpu", "--help"]);
    assert!(output.status.success(), "{}", stderr(&output));

    // Hooks get it the same way, every time dpe runs them.
    let log = sandbox.path("hook-saw");
    let hook = format!(
        "#!/bin/sh\n[ -z \"$DPE_CONTEXT\" ] && python3 -c 'import json,os; print(len(json.load(open(os.environ[\"DPE_CONTEXT_FILE\"]))[\"config\"][\"plugins\"][\"big\"][\"data\"]))' >> {}\n",
        log.display()
    );
    sandbox.write_exe("config/hooks/pre-docker", &hook);
    sandbox.write_exe("config/hooks/post-docker", &hook);
    let _ = run(&sandbox, &["-p", "a", "docker", "version"]);
    let expected = format!("{0}\n{0}\n", big.len());
    assert_eq!(std::fs::read_to_string(&log).unwrap_or_default(), expected);
}

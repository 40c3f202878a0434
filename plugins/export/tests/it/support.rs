//! Shared helpers: the test project (the same configuration as the jupyter plugin's tests, so
//! the environment image's layers are shared), a hand-installed package, and a guard that
//! removes the images a test made.

use dpe_testkit::Sandbox;
use std::path::Path;
use std::process::{Command, Output};

/// The environment every export test uses: a real Jupyter from Debian's packages.
pub const PROJECT_TOML: &str = r#"image = "dpe-test/bookworm:latest"
apt_packages = ["python3-notebook", "python3-pandas", "python3-pip", "python3-venv"]
"#;

/// Runs a command, failing the test with its output when it fails.
pub fn ok(command: &mut Command) -> Output {
    let output = command.output().expect("run command");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `dpe ARGS…` in the sandbox.
pub fn dpe(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut command = sandbox.dpe();
    command.args(args);
    command
}

/// The environment's `spec --json`.
pub fn spec(sandbox: &Sandbox, project: &str) -> serde_json::Value {
    let output = ok(&mut dpe(sandbox, &["jupyter", "spec", project, "--json"]));
    serde_json::from_slice(&output.stdout).expect("spec is JSON")
}

/// Starts the project and installs a tiny wheel by hand into its environment (the wheel is
/// made inside the container, in the project folder, so nothing is downloaded).
pub fn start_and_install_by_hand(sandbox: &Sandbox, project: &str) {
    ok(&mut dpe(sandbox, &["jupyter", project, "--detach"]));
    ok(&mut dpe(sandbox, &["jupyter", "exec", project, "--", "python3", "-c", dpe_testkit::MAKE_WHEEL]));
    ok(&mut dpe(sandbox, &["jupyter", "exec", project, "--", "pip", "install", "dist/tinypkg-0.1-py3-none-any.whl"]));
}

/// `import tinypkg` in the running environment prints its value.
pub fn tinypkg_value(sandbox: &Sandbox, project: &str) -> String {
    let output = ok(&mut dpe(
        sandbox,
        &["jupyter", "exec", project, "--", "python3", "-c", "import tinypkg; print(tinypkg.VALUE)"],
    ));
    stdout(&output).trim().to_string()
}

/// Plain docker, for inspecting and cleaning.
#[allow(clippy::disallowed_methods, reason = "the tests look at the engine past dpe, to see what it really left there")]
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("run docker")
}

/// `REPOSITORY:TAG ID` of the images whose reference matches `pattern` (e.g.
/// `dpe-export/roundtrip`), sorted: to show that a refused import loaded or re-tagged nothing.
/// Scoped to the test's own names, because other tests add and remove images meanwhile.
pub fn tagged(pattern: &str) -> Vec<String> {
    let filter = format!("reference={pattern}");
    let listed = docker(&["images", "--filter", &filter, "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut lines: Vec<String> = stdout(&listed).lines().map(String::from).collect();
    lines.sort();
    lines
}

/// Removes the named images (tags) when dropped.
pub struct ImageCleanup(pub Vec<String>);

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = docker(&["image", "rm", "--force", tag]);
        }
    }
}

/// The file names under `dir`, recursively, sorted, relative.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

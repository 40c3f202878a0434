//! The seam between the checks and the machine: every program the plugin runs and every file
//! it reads goes through [`Host`], so the logic is tested on recorded outputs and runs for real
//! through [`SystemHost`].
//!
//! Host tools (`nvidia-smi`, `nvidia-ctk`) are found on PATH and run directly; every docker
//! call goes through `dpe docker …` (the context's dpe binary), so hooks run and the engine
//! is the one the user configured.

use dpe_plugin::Context;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// What running a program gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The program is not installed (not on PATH).
    NotFound,
    /// It ran: its exit code (`None` when a signal ended it) and output.
    Ran { code: Option<i32>, stdout: String, stderr: String },
    /// It could not be started for another reason.
    Failed(String),
}

impl Outcome {
    pub fn ok(&self) -> Option<&str> {
        match self {
            Outcome::Ran { code: Some(0), stdout, .. } => Some(stdout),
            _ => None,
        }
    }

    /// stdout and stderr together, for classifying failures.
    pub fn text(&self) -> String {
        match self {
            Outcome::Ran { stdout, stderr, .. } => format!("{stdout}\n{stderr}"),
            Outcome::Failed(message) => message.clone(),
            Outcome::NotFound => String::new(),
        }
    }
}

/// The machine as the checks see it.
pub trait Host {
    /// Runs a host program found on PATH.
    fn program(&self, program: &str, args: &[&str]) -> Outcome;
    /// Runs `dpe docker ARGS…`.
    fn docker(&self, args: &[&str]) -> Outcome;
    /// The CDI spec files (path, text) in `/etc/cdi` and `/var/run/cdi`.
    fn cdi_specs(&self) -> Vec<(PathBuf, String)>;
    /// Whether a program is on PATH (without running it).
    fn has_program(&self, program: &str) -> bool;
}

/// The real machine, for one plugin call.
pub struct SystemHost<'a> {
    pub context: &'a Context,
}

/// The directories CDI-aware engines read specs from (the CDI spec's defaults).
pub const CDI_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];

impl Host for SystemHost<'_> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the host's GPU tools (`nvidia-smi`, `nvidia-ctk`) are not the engine"
    )]
    fn program(&self, program: &str, args: &[&str]) -> Outcome {
        let Some(path) = find_on_path(program).or_else(|| wsl_fallback(program)) else { return Outcome::NotFound };
        capture(std::process::Command::new(path).args(args))
    }

    fn docker(&self, args: &[&str]) -> Outcome {
        let mut command = dpe_plugin::client::docker_command(self.context, args);
        match capture(&mut command) {
            Outcome::NotFound => Outcome::Failed(format!("cannot run `{}`: not found", self.context.dpe_bin.display())),
            other => other,
        }
    }

    fn cdi_specs(&self) -> Vec<(PathBuf, String)> {
        let mut specs = Vec::new();
        for dir in CDI_DIRS {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let is_spec = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
                if is_spec {
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        specs.push((path, text));
                    }
                }
            }
        }
        specs
    }

    fn has_program(&self, program: &str) -> bool {
        find_on_path(program).is_some()
    }
}

fn capture(command: &mut std::process::Command) -> Outcome {
    // LC_ALL=C keeps the tools' messages in the English we classify.
    match command.env("LC_ALL", "C").stdin(Stdio::null()).output() {
        Ok(output) => Outcome::Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::NotFound,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Under WSL 2 the driver's tools live in `/usr/lib/wsl/lib`, which a login shell's PATH does
/// not always include.
fn wsl_fallback(program: &str) -> Option<PathBuf> {
    let path = Path::new("/usr/lib/wsl/lib").join(program);
    (program == "nvidia-smi" && is_executable(&path)).then_some(path)
}

/// The first executable `program` on PATH.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

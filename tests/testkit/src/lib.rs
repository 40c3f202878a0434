//! The hermetic harness shared by the core's and the plugins' tests.
//!
//! A [`Sandbox`] is a temp directory holding a fake HOME, dpe's config, data, state and cache
//! directories, a `bin/` for PATH, and a workspace. Commands built from it start from an empty
//! environment, so nothing of the developer's machine leaks in. Docker tests call
//! [`docker_available`]: in CI (`CI` set) a missing engine fails the test; elsewhere the test
//! prints why it skips.

#![allow(
    clippy::disallowed_methods,
    reason = "the test kit runs the binaries under test and the engine directly: it is what checks the choke point from outside"
)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The offline base image `.ci/provision` builds (Debian bookworm, minbase).
pub const BASE_IMAGE: &str = "dpe-test/bookworm:latest";

/// [`BASE_IMAGE`] as `.ci/provision` loads it into Podman (`docker save | podman load`), which
/// names an image without a registry `localhost/…`.
pub const PODMAN_BASE_IMAGE: &str = "localhost/dpe-test/bookworm:latest";

/// The directory holding the built binaries (`dpe`, `dpe-jupyter`, …) of this test run.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DPE_TEST_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // A test executable lives in target/<profile>/deps/; the binaries one level up.
    let exe = std::env::current_exe().expect("current test executable");
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

/// The path of a built workspace binary or library, failing with a clear message when it is
/// missing. `cargo test` leaves a cdylib that is only a dependency in `deps/` without copying
/// it up (as `cargo build` would), so libraries are looked for there first.
pub fn binary(name: &str) -> PathBuf {
    let dir = bin_dir();
    // `deps/` holds what this very build produced (binaries there carry a hash suffix, so only
    // libraries match); the copy beside it may be older.
    let in_deps = dir.join("deps").join(name);
    if in_deps.exists() {
        return in_deps;
    }
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    panic!(
        "{} is not built; run the tests with `cargo test --workspace` (or `cargo build --workspace` first)",
        path.display()
    );
}

/// Whether a Docker engine answers. In CI a missing engine is a failure, not a skip.
pub fn docker_available() -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but no Docker engine answers `docker info`: run .ci/provision");
        }
        eprintln!("skipped: no Docker engine answers `docker info` (run .ci/provision to start one)");
    }
    ok
}

/// Whether Podman answers and holds [`PODMAN_BASE_IMAGE`]. In CI a missing one is a failure,
/// not a skip.
pub fn podman_available() -> bool {
    let answers = |args: &[&str]| podman().args(args).output().map(|o| o.status.success()).unwrap_or(false);
    let why = if !answers(&["info", "--format", "{{.Host.Arch}}"]) {
        "no Podman answers `podman info`"
    } else if !answers(&["image", "exists", PODMAN_BASE_IMAGE]) {
        "Podman lacks the test image `localhost/dpe-test/bookworm:latest`"
    } else {
        return true;
    };
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {why}: run .ci/provision");
    }
    eprintln!("skipped: {why} (run .ci/provision to install Podman and load the image)");
    false
}

/// A `podman` command for the tests' own calls. Podman runs its network tool (netavark), which
/// runs `iptables` from `/usr/sbin`: some machines leave that off a root shell's PATH.
pub fn podman() -> Command {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut command = Command::new("podman");
    command.env("PATH", format!("{path}:/usr/sbin:/sbin"));
    command
}

/// A hermetic temp tree for one test.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new().prefix("dpe-test-").tempdir().expect("temp dir");
        for sub in ["home", "config", "data", "state", "cache", "bin", "workspace/projects"] {
            create_dirs(&dir.path().join(sub));
        }
        let sandbox = Sandbox { dir };
        sandbox.write("workspace/dpe.toml", "");
        sandbox
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn workspace(&self) -> PathBuf {
        self.path("workspace")
    }

    /// A unique, docker-safe name for this sandbox (for labels and object names).
    pub fn id(&self) -> String {
        let name = self.dir.path().file_name().unwrap().to_string_lossy().to_lowercase();
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
    }

    /// Writes a file (creating parents) relative to the sandbox root. New files get mode 0644
    /// and new directories 0755 at most: under a umask of 002 they would be group-writable, and
    /// dpe rightly refuses plugins and hooks that others could write.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path(rel);
        create_dirs(path.parent().unwrap());
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&path)
            .expect("create file");
        file.write_all(text.as_bytes()).expect("write file");
        path
    }

    /// Writes an executable (mode 0755) relative to the sandbox root.
    pub fn write_exe(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.write(rel, text);
        set_mode(&path, 0o755);
        path
    }

    /// Creates a project folder with the given `dpe.toml`.
    pub fn project(&self, name: &str, dpe_toml: &str) -> PathBuf {
        self.write(&format!("workspace/projects/{name}/dpe.toml"), dpe_toml);
        self.path(&format!("workspace/projects/{name}"))
    }

    /// A private `dpe` at `opt/dpe`, so a test controls what sits "beside dpe" (the build dir
    /// holds the first-party plugins). It is a hard link when the filesystem allows: a copy
    /// opened for writing while another test thread forks leaks the write descriptor into that
    /// child until it execs, and running the copy then fails with "Text file busy".
    pub fn private_dpe(&self) -> PathBuf {
        let target = self.path("opt/dpe");
        fs::create_dir_all(target.parent().unwrap()).expect("create opt/");
        if fs::hard_link(binary("dpe"), &target).is_err() {
            fs::copy(binary("dpe"), &target).expect("copy dpe");
            // Give any child that inherited the write descriptor time to exec and drop it.
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        target
    }

    /// A command with an empty environment but for the sandbox's dirs and a minimal PATH
    /// (the sandbox `bin/` first, then the system directories), run in the workspace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env_clear();
        command.current_dir(self.workspace());
        for (key, value) in self.env() {
            command.env(key, value);
        }
        command
    }

    /// `dpe` (the built binary) as [`Sandbox::command`] makes it.
    pub fn dpe(&self) -> Command {
        self.command(binary("dpe"))
    }

    /// Writes a `containers.conf` for Podman into the sandbox and returns the variable that
    /// points Podman at it (`CONTAINERS_CONF`, which replaces every other containers.conf).
    /// Rootful Podman raises each container's open-files limit to the maximum by default; where
    /// the process may not raise it (CI sandboxes without CAP_SYS_RESOURCE) every start fails
    /// with "error setting rlimit". No default ulimits keeps the limits Podman itself has.
    /// This is the tests' environment, not dpe's: dpe passes the engine its environment as is.
    pub fn podman_config(&self) -> (String, String) {
        let path = self.write("podman/containers.conf", "[containers]\ndefault_ulimits = []\n");
        ("CONTAINERS_CONF".to_string(), path.to_string_lossy().into_owned())
    }

    /// The environment [`Sandbox::command`] sets.
    pub fn env(&self) -> Vec<(String, String)> {
        let p = |rel: &str| self.path(rel).to_string_lossy().into_owned();
        let path = format!("{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", p("bin"));
        let mut env = vec![
            ("HOME".to_string(), p("home")),
            ("PATH".to_string(), path),
            ("DPE_CONFIG_DIR".to_string(), p("config")),
            ("DPE_DATA_DIR".to_string(), p("data")),
            ("DPE_STATE_DIR".to_string(), p("state")),
            ("DPE_CACHE_DIR".to_string(), p("cache")),
            ("LANG".to_string(), "C.UTF-8".to_string()),
        ];
        // Tests that talk to the engine need to find it like the user's shell would.
        for key in
            ["DOCKER_HOST", "CI", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"]
        {
            if let Ok(value) = std::env::var(key) {
                env.push((key.to_string(), value));
            }
        }
        env
    }
}

/// Creates `dir` and its missing parents with mode 0755 (the umask can only remove bits).
fn create_dirs(dir: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o755).create(dir).expect("create directory");
}

/// Sets a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Removes every container, volume and network labelled with this workspace (in Docker, or in
/// Podman with [`DockerCleanup::podman`]), when dropped —
/// so a failing docker test leaves nothing behind.
pub struct DockerCleanup {
    workspace: String,
    podman: bool,
}

impl DockerCleanup {
    pub fn new(sandbox: &Sandbox) -> DockerCleanup {
        DockerCleanup { workspace: sandbox.workspace().to_string_lossy().into_owned(), podman: false }
    }

    /// The same, for what the sandbox created in Podman.
    pub fn podman(sandbox: &Sandbox) -> DockerCleanup {
        DockerCleanup { workspace: sandbox.workspace().to_string_lossy().into_owned(), podman: true }
    }

    fn engine(&self) -> Command {
        if self.podman {
            podman()
        } else {
            Command::new("docker")
        }
    }
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        let filter = format!("label=dpe.workspace={}", self.workspace);
        let ids = |args: &[&str]| -> Vec<String> {
            self.engine()
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().map(String::from).collect())
                .unwrap_or_default()
        };
        let containers = ids(&["ps", "-aq", "--filter", &filter]);
        if !containers.is_empty() {
            let _ = self.engine().args(["rm", "-f"]).args(&containers).output();
        }
        let volumes = ids(&["volume", "ls", "-q", "--filter", &filter]);
        if !volumes.is_empty() {
            let _ = self.engine().args(["volume", "rm", "-f"]).args(&volumes).output();
        }
        let networks = ids(&["network", "ls", "-q", "--filter", &filter]);
        if !networks.is_empty() {
            let _ = self.engine().args(["network", "rm"]).args(&networks).output();
        }
    }
}

/// Python that writes a tiny wheel, `dist/tinypkg-0.1-py3-none-any.whl` (`tinypkg.VALUE = 42`),
/// in the current folder: run in a container with the project folder as its workdir, nothing
/// is downloaded.
pub const MAKE_WHEEL: &str = r#"
import base64, hashlib, os, zipfile
files = {"tinypkg/__init__.py": "VALUE = 42\n",
         "tinypkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
         "tinypkg-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: dpe-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
record = ["%s,sha256=%s,%d" % (p, base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b"=").decode(), len(c.encode())) for p, c in files.items()]
files["tinypkg-0.1.dist-info/RECORD"] = "\n".join(record + ["tinypkg-0.1.dist-info/RECORD,,"]) + "\n"
os.makedirs("dist", exist_ok=True)
with zipfile.ZipFile("dist/tinypkg-0.1-py3-none-any.whl", "w") as z:
    for p, c in files.items():
        z.writestr(p, c)
"#;

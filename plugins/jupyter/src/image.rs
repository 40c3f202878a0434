//! The project image: a Dockerfile generated from the project's configuration (or the
//! project's own Dockerfile with dpe's small runtime layer on top), tagged by a content hash of
//! everything that goes into it, and built through `dpe docker build` only when that tag is
//! missing. An unchanged project therefore never rebuilds, and two projects with the same
//! inputs share one image.
//!
//! Layer order matters for cache reuse and for corporate proxies: extra CA certificates come
//! first (before any apt step needs them), then the user's `env`, apt packages, and last dpe's
//! own files, which change most often. Python packages are not in the image at all: `dpe-sync`
//! installs them into the project's environment from its lock when the server starts.

use crate::docker;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::project::{Project, VOLUME_TARGET};
use dpe_plugin::config::{expand_image, DEFAULT_IMAGE};
use dpe_plugin::dockerfile::{self, ca_bundle_env, env_instruction, shell_quote, CA_BUNDLE_SCRIPT, CA_ENV, PROXY_VARS};
use dpe_plugin::Context;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

/// The first process of every container: prepares the venv in the volume, starts the server.
pub const START_SCRIPT: &str = include_str!("dpe-start.sh");
/// Syncs the project's Python environment with its lock (uv), run by `dpe-start`.
pub const SYNC_SCRIPT: &str = include_str!("dpe-sync.py");
/// Where the package cache shared by the user's trusted projects is mounted (a named volume;
/// the image's empty folder, owned by the host user, gives a fresh volume its owner).
pub const SHARED_STORE_TARGET: &str = "/dpe-cache";
/// The repository every project image is tagged in; the tag is the content hash.
pub const IMAGE_REPOSITORY: &str = "dpe-jupyter";

/// What the host contributes to an image: the user ids files must belong to, and the extra CA
/// certificates named in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub uid: u32,
    pub gid: u32,
    /// The value of `DPE_CA_CERTIFICATES`, if set.
    pub ca_env: Option<String>,
}

impl Host {
    pub fn current() -> Host {
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Host { uid, gid, ca_env: std::env::var(CA_ENV).ok().filter(|v| !v.is_empty()) }
    }
}

/// A file of the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path relative to the build context.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A project's own Dockerfile, built first; dpe's layer goes on top of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDockerfile {
    pub path: PathBuf,
    /// The build context: the Dockerfile's directory.
    pub context_dir: PathBuf,
    /// The tag of the user's image, from the hash of its Dockerfile and the files it copies.
    pub tag: String,
}

/// Everything needed to build (or find) a project's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `dpe-jupyter:<hash>`.
    pub tag: String,
    /// The image the generated Dockerfile starts FROM (shorthands expanded).
    pub base_image: String,
    /// Whether the base is a Jupyter Docker Stacks image (start-notebook.py, NB_UID).
    pub stacks: bool,
    pub dockerfile: String,
    pub files: Vec<ContextFile>,
    pub user_dockerfile: Option<UserDockerfile>,
    /// The lock file the build installs (`--from-lock`), for messages.
    pub lock: Option<PathBuf>,
}

/// Whether an image is one of the Jupyter Docker Stacks (they share start-notebook.py, NB_UID).
pub fn is_stacks_image(image: &str) -> bool {
    let name = image.trim_start_matches("docker.io/");
    name.starts_with("quay.io/jupyter/") || name.starts_with("jupyter/")
}

/// Works out the image of a project from its configuration alone, without touching the engine
/// (the tests' shorthand: every command plans through [`plan_with_lock`], lock or not).
#[cfg(test)]
pub fn plan(project: &Project, host: &Host) -> Result<Plan> {
    plan_with_lock(project, host, None)
}

/// Works out the image of a project whose build also installs `lock` (`--from-lock`; see
/// [`crate::lock::for_build`]).
pub fn plan_with_lock(project: &Project, host: &Host, lock: Option<&Lock>) -> Result<Plan> {
    let config = &project.config;
    check_values(config)?;
    let mut files = vec![
        ContextFile { name: "dpe-start".into(), bytes: START_SCRIPT.as_bytes().to_vec() },
        ContextFile { name: "dpe-sync".into(), bytes: SYNC_SCRIPT.as_bytes().to_vec() },
    ];
    let certificates = dockerfile::collect_certificates(&config.ca_certificates, host.ca_env.as_deref())
        .map_err(|refusal| Error::new(refusal.message).with_help(refusal.help))?;
    // No project name in here: two projects with the same inputs share one image.
    let mut text = format!(
        "# Generated by dpe-jupyter {} from a project's dpe.toml; change that, not this file.\n",
        env!("CARGO_PKG_VERSION")
    );

    let (base_image, user_dockerfile) = match &config.dockerfile {
        Some(path) => {
            let user = user_dockerfile(Path::new(path))?;
            let from = last_from(&read_text(&user.path, "the project Dockerfile")?).unwrap_or_default();
            (user.tag.clone(), Some((user, from)))
        }
        None => (expand_image(config.image.as_deref().unwrap_or(DEFAULT_IMAGE)), None),
    };
    let stacks = match &user_dockerfile {
        Some((_, from)) => is_stacks_image(from),
        None => is_stacks_image(&base_image),
    };
    text.push_str(&format!("FROM {base_image}\nUSER root\n"));

    if !certificates.is_empty() {
        for certificate in &certificates {
            files.push(ContextFile { name: format!("dpe-ca/{}", certificate.name), bytes: certificate.bytes.clone() });
        }
        files.push(ContextFile { name: "dpe-ca-bundle".into(), bytes: CA_BUNDLE_SCRIPT.as_bytes().to_vec() });
        text.push_str("COPY dpe-ca/ /usr/local/share/ca-certificates/dpe/\n");
        text.push_str("COPY dpe-ca-bundle /usr/local/bin/dpe-ca-bundle\n");
        text.push_str("RUN sh /usr/local/bin/dpe-ca-bundle\n");
        text.push_str(&ca_bundle_env());
    }

    if user_dockerfile.is_none() {
        for (key, value) in &config.env {
            text.push_str(&env_instruction(key, value));
        }
        let mut apt: Vec<&str> = config.apt_packages.iter().map(String::as_str).collect();
        apt.sort_unstable();
        apt.dedup();
        if !apt.is_empty() {
            text.push_str(&format!(
                "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {} && rm -rf /var/lib/apt/lists/*\n",
                shell_words(&apt)
            ));
        }
        // A requirements file that is named but missing is an error before anything is built.
        requirements_file(project)?;
        // Python packages (requirements, python_packages, pyproject.toml) are not baked in:
        // `dpe-sync` installs them into the project's environment from its lock at start, so
        // projects that differ only in Python packages share this image and a changed package
        // never rebuilds it.
    }
    // A lock (`--from-lock`) comes after everything the configuration installs: it pins what
    // they left open and adds what was installed by hand.
    if let Some(lock) = lock {
        let workdir = if stacks { "/home/jovyan/work" } else { "/work" };
        let (lock_files, lines) = crate::lock::layer(lock, &project.dir, workdir)?;
        files.extend(lock_files);
        text.push_str(&lines);
    }

    // dpe's runtime layer. The empty /dpe owned by the host user is copied by the engine into a
    // fresh named volume, so the volume belongs to the user without a root helper container.
    text.push_str("COPY dpe-start dpe-sync /usr/local/bin/\n");
    let refresh_ca = if certificates.is_empty() { "" } else { "sh /usr/local/bin/dpe-ca-bundle && " };
    text.push_str(&format!(
        "RUN {refresh_ca}chmod 0755 /usr/local/bin/dpe-start && mkdir -p {VOLUME_TARGET} {SHARED_STORE_TARGET} && chown {}:{} {VOLUME_TARGET} {SHARED_STORE_TARGET}\n",
        host.uid, host.gid
    ));
    text.push_str(&format!(
        "ENV VIRTUAL_ENV={VOLUME_TARGET}/venv PATH={VOLUME_TARGET}/venv/bin:$PATH JUPYTER_PATH={VOLUME_TARGET}/venv/share/jupyter PIP_DISABLE_PIP_VERSION_CHECK=1\n"
    ));

    let mut hasher = Sha256::new();
    hasher.update(b"dpe-jupyter image v1\0");
    hasher.update(text.as_bytes());
    for file in &files {
        hasher.update(file.name.as_bytes());
        hasher.update((file.bytes.len() as u64).to_le_bytes());
        hasher.update(&file.bytes);
    }
    let tag = format!("{IMAGE_REPOSITORY}:{}", hex(&hasher.finalize()[..8]));
    files.insert(0, ContextFile { name: "Dockerfile".into(), bytes: text.clone().into_bytes() });
    Ok(Plan {
        tag,
        base_image,
        stacks,
        dockerfile: text,
        files,
        user_dockerfile: user_dockerfile.map(|(u, _)| u),
        lock: lock.map(|l| l.source.clone()),
    })
}

/// The requirements file to bake in: the configured one (which must exist) or the project's
/// `requirements.txt` when there is one.
pub fn requirements_file(project: &Project) -> Result<Option<PathBuf>> {
    match &project.config.requirements {
        Some(path) => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(Error::new(format!("requirements file `{}` does not exist", path.display())).with_help(
                    format!(
                        "fix `requirements` in `{}/dpe.toml`, or remove it to use the project's requirements.txt",
                        project.dir.display()
                    ),
                ));
            }
            Ok(Some(path))
        }
        // The file `dpe_plugin::reach::check` judged (where it really leads) before this runs.
        None => Ok(dpe_plugin::reach::default_requirements(&project.dir)),
    }
}

/// Plans the user's Dockerfile image: its tag hashes the Dockerfile and the sources its
/// COPY/ADD lines name (contents of files; path, size and mtime of files under directories),
/// so editing a notebook in the project folder does not trigger a rebuild.
fn user_dockerfile(path: &Path) -> Result<UserDockerfile> {
    let text = read_text(path, "the project Dockerfile")?;
    let context_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut hasher = Sha256::new();
    hasher.update(b"dpe-jupyter user dockerfile v1\0");
    hasher.update(text.as_bytes());
    for source in copy_sources(&text) {
        let full = in_context(&context_dir, &source);
        hasher.update(source.as_bytes());
        hash_path(&mut hasher, &full);
    }
    Ok(UserDockerfile {
        path: path.to_path_buf(),
        context_dir,
        tag: format!("{IMAGE_REPOSITORY}-base:{}", hex(&hasher.finalize()[..8])),
    })
}

/// Where a COPY source is: docker reads every source inside the build context (`/etc` is
/// `CONTEXT/etc`, `..` stops at the context's root), and so does the hash, which must never
/// walk the host's `/`.
fn in_context(context_dir: &Path, source: &str) -> PathBuf {
    let mut inside = PathBuf::new();
    for component in Path::new(source).components() {
        match component {
            std::path::Component::Normal(part) => inside.push(part),
            std::path::Component::ParentDir => {
                inside.pop();
            }
            _ => {}
        }
    }
    context_dir.join(inside)
}

/// Hashes a COPY source as docker's build context holds it: a file by its contents, a directory
/// by its entries (path, size and mtime of files), a symlink by its target text. Links are never
/// followed, so a cycle (`ln -s . a`) cannot make the walk endless, and pointing a link
/// elsewhere changes the hash as it changes the context.
fn hash_path(hasher: &mut Sha256, path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return };
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(path).unwrap_or_default();
        hasher.update(b"symlink\0");
        hasher.update(target.as_os_str().as_bytes());
    } else if kind.is_file() {
        if let Ok(bytes) = std::fs::read(path) {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    } else if kind.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        for entry in entries {
            let Ok(meta) = std::fs::symlink_metadata(&entry) else { continue };
            hasher.update(entry.as_os_str().as_bytes());
            if meta.is_dir() || meta.file_type().is_symlink() {
                hash_path(hasher, &entry);
            } else {
                hasher.update(meta.len().to_le_bytes());
                hasher.update(meta.mtime().to_le_bytes());
                hasher.update(meta.mtime_nsec().to_le_bytes());
            }
        }
    }
}

/// The source paths of `COPY`/`ADD` lines (not `--from=` copies, not URLs).
fn copy_sources(dockerfile: &str) -> Vec<String> {
    let mut sources = Vec::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        let Some(verb) = words.next() else { continue };
        if !verb.eq_ignore_ascii_case("copy") && !verb.eq_ignore_ascii_case("add") {
            continue;
        }
        let words: Vec<&str> = words.collect();
        if words.iter().any(|w| w.starts_with("--from")) {
            continue;
        }
        let words: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
        if words.len() >= 2 {
            for source in &words[..words.len() - 1] {
                let source = source.trim_matches(|c| c == '[' || c == ']' || c == '"' || c == ',');
                if !source.contains("://") && !source.is_empty() {
                    sources.push(source.to_string());
                }
            }
        }
    }
    sources
}

/// The image of a Dockerfile's last `FROM`.
fn last_from(dockerfile: &str) -> Option<String> {
    dockerfile.lines().rev().find_map(|line| {
        let mut words = line.split_whitespace();
        let verb = words.next()?;
        if !verb.eq_ignore_ascii_case("from") {
            return None;
        }
        words.find(|w| !w.starts_with("--")).map(String::from)
    })
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::new(format!("cannot read {what} `{}`: {e}", path.display()))
            .with_help("fix `dockerfile` in the project's dpe.toml")
    })
}

/// Shell-quotes words for a `RUN` line.
fn shell_words(words: &[&str]) -> String {
    words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
}

/// Refuses a configuration no Dockerfile line can carry safely ([`dockerfile::check_values`]).
fn check_values(config: &dpe_plugin::Config) -> Result<()> {
    dockerfile::check_values(config).map_err(|refusal| Error::new(refusal.message).with_help(refusal.help))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes sure the plan's image exists, building it when its tag is missing or `rebuild` is
/// set. Returns whether a build ran. Build output goes to stderr, so stdout stays clean for
/// `spec --json`.
pub fn ensure(context: &Context, project: &Project, plan: &Plan, rebuild: bool) -> Result<bool> {
    if !rebuild && docker::image_exists(context, &plan.tag)? {
        return Ok(false);
    }
    if let Some(user) = &plan.user_dockerfile {
        if rebuild || !docker::image_exists(context, &user.tag)? {
            eprintln!("dpe: building `{}` from `{}`", project.name, user.path.display());
            let mut args: Vec<String> = vec!["build".into(), "--tag".into(), user.tag.clone()];
            args.extend(["--file".into(), user.path.to_string_lossy().into_owned()]);
            args.extend(build_labels(context, project));
            args.extend(build_args(rebuild));
            args.push(user.context_dir.to_string_lossy().into_owned());
            run_build(context, project, &args, &user.path.to_string_lossy())?;
        }
    } else if !docker::image_exists(context, &plan.base_image)? {
        eprintln!("dpe: pulling `{}`", plan.base_image);
        let output = docker::output(context, &["pull", &plan.base_image])?;
        if !output.status.success() {
            let detail = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return Err(Error::new(format!(
                "image `{}` is not available locally and could not be pulled{}",
                plan.base_image,
                if detail.is_empty() { String::new() } else { format!(": {}", last_line(&detail)) }
            ))
            .with_help(format!(
                "check `image` in `{}/dpe.toml`, or make the image available (`docker pull`, `docker load`, `docker build`)",
                project.dir.display()
            )));
        }
    }

    eprintln!("dpe: building the environment of `{}` ({})", project.name, plan.tag);
    if let Some(lock) = &plan.lock {
        eprintln!(
            "dpe: installing the lock `{}` after the configured packages (`--no-lock` builds without it)",
            lock.display()
        );
    }
    let dir = BuildDir::create(context, plan)?;
    let mut args: Vec<String> = vec!["build".into(), "--tag".into(), plan.tag.clone()];
    args.extend(["--label".into(), format!("dpe.jupyter.base={}", plan.base_image)]);
    args.extend(build_labels(context, project));
    args.extend(build_args(rebuild && plan.user_dockerfile.is_none()));
    args.push(dir.path.to_string_lossy().into_owned());
    if context.verbosity > 0 {
        eprintln!("dpe: generated Dockerfile:\n{}", plan.dockerfile);
    }
    run_build(context, project, &args, "the generated Dockerfile").map(|_| true)
}

/// Who builds: a hash of the user id and the state directory (one per user, and one per
/// sandbox in tests). `dpe jupyter gc` only weighs images carrying its own owner, so it never
/// removes an image another user (or another state directory) built and may still need.
pub fn owner(context: &Context) -> String {
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    crate::project::short_hash(&format!("{uid}:{}", context.state_dir.display()))
}

/// The labels of every image dpe builds: its owner, and the workspace and project that built it
/// (`docker build` gets no labels from the core, which labels only what runs or stores data).
fn build_labels(context: &Context, project: &Project) -> Vec<String> {
    [
        format!("{}={}", docker::LABEL_OWNER, owner(context)),
        format!("dpe.workspace={}", project.workspace.display()),
        format!("dpe.project={}", project.name),
    ]
    .into_iter()
    .flat_map(|label| ["--label".to_string(), label])
    .collect()
}

fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(text).trim()
}

/// `--build-arg NAME` for each proxy variable that is set: without a value, docker reads it
/// from its own environment, so credentials in a proxy URL never reach a command line. These
/// predefined arguments do not affect the layer cache.
fn build_args(no_cache: bool) -> Vec<String> {
    let mut args = Vec::new();
    for name in PROXY_VARS {
        if std::env::var_os(name).is_some() {
            args.push("--build-arg".to_string());
            args.push(name.to_string());
        }
    }
    if no_cache {
        args.push("--no-cache".to_string());
    }
    args
}

/// A temporary build context, removed when dropped.
struct BuildDir {
    path: PathBuf,
}

impl BuildDir {
    fn create(context: &Context, plan: &Plan) -> Result<BuildDir> {
        let path = context.cache_dir.join("jupyter").join(format!(
            "build-{}-{}",
            plan.tag.rsplit(':').next().unwrap_or("x"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        let dir = BuildDir { path };
        for file in &plan.files {
            let target = dir.path.join(&file.name);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(format!("creating `{}`", parent.display()), e))?;
            }
            std::fs::write(&target, &file.bytes)
                .map_err(|e| Error::io(format!("writing `{}`", target.display()), e))?;
        }
        Ok(dir)
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs `dpe docker build ARGS`, forwarding its output to stderr as it comes and remembering
/// the step in progress, so a failure can say which step broke.
fn run_build(context: &Context, project: &Project, args: &[String], what: &str) -> Result<()> {
    let mut child = dpe_plugin::client::docker_command(context, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("running `{} docker build`", context.dpe_bin.display()), e))?;
    let step = Arc::new(Mutex::new(None::<String>));
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let step = Arc::clone(&step);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
                eprintln!("{line}");
                if let Some(found) = build_step(&line) {
                    *step.lock().unwrap() = Some(found);
                }
            }
        })
    })
    .collect();
    let status = child.wait().map_err(|e| Error::io("waiting for `docker build`", e))?;
    for reader in readers {
        let _ = reader.join();
    }
    if status.success() {
        return Ok(());
    }
    let step = step.lock().unwrap().clone();
    let at = step.map(|s| format!(" at step {s}")).unwrap_or_default();
    Err(Error::new(format!("building the image of `{}` from {what} failed{at}", project.name))
        .with_help("the build output above shows why; fix the project's dpe.toml (or Dockerfile) and run again")
        .with_code(dpe_plugin::client::exit_code(status).max(1)))
}

/// Recognises the step a build line starts: the classic builder's `Step 3/7 : RUN …` and
/// BuildKit's `#7 [3/7] RUN …`. Returns `3/7: \`RUN …\``.
pub fn build_step(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix("Step ") {
        let (number, instruction) = rest.split_once(" : ")?;
        return Some(format!("{number} `{}`", shorten(instruction)));
    }
    let rest = line.strip_prefix('#')?;
    let (_, rest) = rest.split_once(" [")?;
    let (number, instruction) = rest.split_once("] ")?;
    if !number.contains('/') {
        return None;
    }
    let number = number.rsplit(' ').next().unwrap_or(number);
    Some(format!("{number} `{}`", shorten(instruction.trim())))
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 100 {
        format!("{}…", text.chars().take(100).collect::<String>())
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpe_plugin::dockerfile::{collect_certificates, CA_BUNDLE};
    use dpe_plugin::Config;
    use std::os::unix::fs::symlink;

    fn project(dir: &Path, config: Config) -> Project {
        Project { name: "p".into(), dir: dir.to_path_buf(), workspace: dir.parent().unwrap().to_path_buf(), config }
    }

    fn host() -> Host {
        Host { uid: 1000, gid: 1000, ca_env: None }
    }

    #[test]
    fn generated_dockerfile_has_packages_in_order_and_owns_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            image: Some("debian:bookworm-slim".into()),
            apt_packages: vec!["python3-pandas".into(), "python3-notebook".into()],
            python_packages: vec!["six>=1".into()],
            env: [("GREETING".to_string(), "a \"b\" $c".to_string())].into(),
            ..Config::default()
        };
        let plan = plan(&project(dir.path(), config), &host()).unwrap();
        assert!(plan.tag.starts_with("dpe-jupyter:"));
        assert!(!plan.stacks);
        let text = &plan.dockerfile;
        assert!(text.contains("FROM debian:bookworm-slim\n"), "{text}");
        assert!(text.contains("ENV GREETING=\"a \\\"b\\\" \\$c\"\n"), "{text}");
        assert!(
            text.contains("apt-get install -y --no-install-recommends python3-notebook python3-pandas &&"),
            "{text}"
        );
        assert!(!text.contains("pip install") && !text.contains("six"), "packages are synced, not built: {text}");
        assert!(text.contains("COPY dpe-start dpe-sync /usr/local/bin/\n"), "{text}");
        assert!(text.contains("chown 1000:1000 /dpe /dpe-cache"), "{text}");
    }

    #[test]
    fn tag_depends_on_every_input_and_only_on_them() {
        let dir = tempfile::tempdir().unwrap();
        let base = Config { image: Some("debian:bookworm-slim".into()), ..Config::default() };
        let a = plan(&project(dir.path(), base.clone()), &host()).unwrap();
        let again = plan(&project(dir.path(), base.clone()), &host()).unwrap();
        assert_eq!(a.tag, again.tag);
        let other_name = Project { name: "q".into(), ..project(dir.path(), base.clone()) };
        assert_eq!(a.tag, plan(&other_name, &host()).unwrap().tag, "same inputs, same image");
        let with_apt = Config { apt_packages: vec!["curl".into()], ..base.clone() };
        assert_ne!(a.tag, plan(&project(dir.path(), with_apt), &host()).unwrap().tag);
        // Python packages live in the synced environment: changing them never rebuilds.
        std::fs::write(dir.path().join("requirements.txt"), "six\n").unwrap();
        let with_req = plan(&project(dir.path(), base.clone()), &host()).unwrap();
        assert_eq!(a.tag, with_req.tag);
        let with_packages = Config { python_packages: vec!["polars".into()], ..base.clone() };
        assert_eq!(a.tag, plan(&project(dir.path(), with_packages), &host()).unwrap().tag);
        let other_user = Host { uid: 1001, ..host() };
        assert_ne!(with_req.tag, plan(&project(dir.path(), base), &other_user).unwrap().tag);
    }

    #[test]
    fn certificates_come_before_apt_and_point_every_client_at_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("corp.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let certs = dir.path().join("more");
        std::fs::create_dir(&certs).unwrap();
        std::fs::write(certs.join("b.crt"), "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n").unwrap();
        std::fs::write(certs.join("notes.txt"), "ignored").unwrap();
        let config = Config {
            image: Some("debian:bookworm-slim".into()),
            apt_packages: vec!["curl".into()],
            ca_certificates: vec![cert.to_string_lossy().into_owned()],
            ..Config::default()
        };
        let host = Host { ca_env: Some(certs.to_string_lossy().into_owned()), ..host() };
        let plan = plan(&project(dir.path(), config), &host).unwrap();
        let names: Vec<&str> = plan.files.iter().map(|f| f.name.as_str()).collect();
        assert!(names.contains(&"dpe-ca/00-corp.crt") && names.contains(&"dpe-ca/01-b.crt"), "{names:?}");
        let text = &plan.dockerfile;
        assert!(text.find("dpe-ca-bundle").unwrap() < text.find("apt-get").unwrap(), "{text}");
        for var in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE"] {
            assert!(text.contains(&format!("{var}={CA_BUNDLE}")), "{var} in {text}");
        }
    }

    #[test]
    fn missing_inputs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { requirements: Some("/nowhere/requirements.txt".into()), ..Config::default() };
        let err = plan(&project(dir.path(), config), &host()).unwrap_err();
        assert_eq!(err.message, "requirements file `/nowhere/requirements.txt` does not exist");
        let err = collect_certificates(&[], Some("/nowhere/ca.crt")).unwrap_err();
        assert_eq!(err.message, "CA certificate `/nowhere/ca.crt` (from `DPE_CA_CERTIFICATES`) does not exist");
    }

    #[test]
    fn stacks_shorthand_expands_and_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { image: Some("scipy".into()), ..Config::default() };
        let plan = plan(&project(dir.path(), config), &host()).unwrap();
        assert_eq!(plan.base_image, "quay.io/jupyter/scipy-notebook:latest");
        assert!(plan.stacks);
        assert!(plan.dockerfile.contains("FROM quay.io/jupyter/scipy-notebook:latest\n"));
    }

    #[test]
    fn project_dockerfile_replaces_the_package_lists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM quay.io/jupyter/pytorch-notebook\nCOPY env.yml /tmp/\n")
            .unwrap();
        std::fs::write(dir.path().join("env.yml"), "a").unwrap();
        let config = Config {
            dockerfile: Some(dir.path().join("Dockerfile").to_string_lossy().into_owned()),
            apt_packages: vec!["curl".into()],
            ..Config::default()
        };
        let first = plan(&project(dir.path(), config.clone()), &host()).unwrap();
        let user = first.user_dockerfile.clone().unwrap();
        assert!(first.stacks);
        assert!(first.dockerfile.contains(&format!("FROM {}\n", user.tag)));
        assert!(!first.dockerfile.contains("apt-get"));
        std::fs::write(dir.path().join("env.yml"), "b").unwrap();
        let second = plan(&project(dir.path(), config), &host()).unwrap();
        assert_ne!(first.tag, second.tag, "a file the Dockerfile copies changed");
    }

    #[test]
    fn values_no_dockerfile_can_carry_are_refused_before_planning() {
        let dir = tempfile::tempdir().unwrap();
        let hostile = [
            Config { env: [("A=1\nRUN touch /x\nENV B".into(), "1".into())].into(), ..Config::default() },
            Config { env: [("A".into(), "1\nRUN touch /x".into())].into(), ..Config::default() },
            Config { python_packages: vec!["six\nRUN touch /x".into()], ..Config::default() },
            Config { apt_packages: vec!["--allow-unauthenticated".into()], ..Config::default() },
            Config { image: Some("x\nRUN touch /x".into()), ..Config::default() },
            Config { image: Some(String::new()), ..Config::default() },
        ];
        for config in hostile {
            let err = plan(&project(dir.path(), config.clone()), &host()).unwrap_err();
            assert!(err.message.starts_with("the configuration cannot go into a Dockerfile: "), "{config:?}: {err}");
            assert!(err.help.is_some(), "{err}");
        }
    }

    #[test]
    fn copy_sources_hash_symlinks_as_links_without_following_them() {
        let dir = tempfile::tempdir().unwrap();
        symlink(".", dir.path().join("a")).unwrap();
        symlink(".", dir.path().join("b")).unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        symlink("../a", dir.path().join("data/loop")).unwrap();
        let dockerfile = dir.path().join("Dockerfile");
        std::fs::write(&dockerfile, "FROM x\nCOPY . /x\nCOPY a b /y/\nCOPY a/b/a/b/data /z\n").unwrap();
        let started = std::time::Instant::now();
        let first = user_dockerfile(&dockerfile).unwrap().tag;
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
        assert_eq!(first, user_dockerfile(&dockerfile).unwrap().tag, "deterministic");
        std::fs::remove_file(dir.path().join("data/loop")).unwrap();
        symlink("../b", dir.path().join("data/loop")).unwrap();
        assert_ne!(first, user_dockerfile(&dockerfile).unwrap().tag, "a link's target is part of the context");
    }

    #[test]
    fn copy_sources_stay_inside_the_build_context() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(in_context(dir.path(), "/etc/passwd"), dir.path().join("etc/passwd"));
        assert_eq!(in_context(dir.path(), "../../x/./y"), dir.path().join("x/y"));
        assert_eq!(in_context(dir.path(), "/"), dir.path());
    }

    #[test]
    fn build_steps_are_recognised_in_both_builders() {
        assert_eq!(build_step("Step 3/7 : RUN apt-get update").unwrap(), "3/7 `RUN apt-get update`");
        assert_eq!(build_step("#7 [3/7] RUN apt-get update").unwrap(), "3/7 `RUN apt-get update`");
        assert_eq!(build_step("#7 [stage 3/7] RUN x").unwrap(), "3/7 `RUN x`");
        assert_eq!(build_step(" ---> Running in 1234"), None);
        assert_eq!(build_step("#5 [internal] load metadata"), None);
    }
}

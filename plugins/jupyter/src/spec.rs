//! The run specification of a project's Jupyter environment: the `dpe jupyter spec --json`
//! contract (used by compose and export) and the source of the `docker run` arguments, so the
//! plugin and its consumers can never disagree on image, mounts, user, ports or token.

use crate::docker::{LABEL_BASE_URL, LABEL_KEY, LABEL_PORT, LABEL_URL_HOST, LABEL_USER, LABEL_WORKDIR};
use crate::image::{self, Host, Plan};
use crate::ports::{Registry, Request, Reservation};
use crate::project::{short_hash, Project, VOLUME_TARGET};
use crate::secrets;
use dpe_plugin::config::GpuMode;
use dpe_plugin::contract::{mount_value, GpuFlags, Mount, PortPair, Resources};
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::collections::BTreeMap;

/// The run specification, typed once for this plugin and its consumers.
pub use dpe_plugin::contract::RunSpec as Spec;

/// The label holding a hash of the run arguments: a stopped container is restarted as it is
/// only when it would be created exactly the same way.
pub const LABEL_CONFIG: &str = "dpe.jupyter.config";

/// The exit status of a server that stopped itself after `[jupyter] idle_timeout` without
/// activity (set by the Jupyter configuration `dpe-start` writes). A server also exits 0 when
/// `docker stop` or the UI's "Shut Down" ends it, so idleness gets a status of its own, one no
/// shell, Python or signal death uses. The container has no restart policy: it stays stopped.
pub const IDLE_EXIT_CODE: i32 = 85;

/// The exit status of a container whose Python environment could not be synced with its lock
/// (`dpe-start` exits with it when `dpe-sync` fails): a status of dpe's own, so a `[jupyter]
/// command` that exits 3 is not taken for a failed sync.
pub const SYNC_EXIT_CODE: i32 = 86;

/// What the caller of [`prepare`] wants beyond the project's configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub rebuild: bool,
    /// `--lan`: publish on every address.
    pub lan: bool,
    /// Host ports other containers publish.
    pub published: Vec<u16>,
    /// Host ports to skip (a `docker run` just lost them).
    pub avoid: Vec<u16>,
    /// Host ports the project's own running container holds.
    pub mine: Vec<u16>,
    /// Engine flags for the GPU, when already asked for (see [`gpu_args`]).
    pub gpu_args: Option<Vec<String>>,
    /// `--from-lock` / `--no-lock`; by default the remembered lock, if any.
    pub lock: crate::lock::Choice,
    /// `--exact`: the sync also removes packages the lock does not name (installed by hand).
    pub exact: bool,
}

/// The outcome of [`prepare`].
pub struct Prepared {
    pub spec: Spec,
    pub reservations: Vec<Reservation>,
}

/// Builds the image if needed, reserves the host ports, ensures the token and env file, asks
/// the gpu plugin for engine flags, and returns the specification.
pub fn prepare(context: &Context, project: &Project, options: &Options) -> Result<Prepared> {
    Project::check_reach(context)?;
    let host = Host::current();
    check_cpus(context, project, true)?;
    let lock = crate::lock::for_build(&context.state_dir, project, &options.lock)?;
    let plan = image::plan_with_lock(project, &host, lock.as_ref())?;
    let plan = crate::imported::adopt(&context.state_dir, project, plan)?;
    // A required GPU that is missing fails before a build is spent on it.
    let mut options = options.clone();
    if options.gpu_args.is_none() {
        options.gpu_args = Some(gpu_args(context, project)?);
    }
    image::ensure(context, project, &plan, options.rebuild)?;
    let (spec, reservations) = assemble(context, project, &plan, &host, &options)?;
    Ok(Prepared { spec, reservations })
}

/// The specification of an already planned image (the part of [`prepare`] that does not build).
pub fn assemble(
    context: &Context,
    project: &Project,
    plan: &Plan,
    host: &Host,
    options: &Options,
) -> Result<(Spec, Vec<Reservation>)> {
    let config = &project.config;
    let bind = if options.lan { "0.0.0.0".to_string() } else { config.jupyter.bind.clone() };
    let key = project.key();

    let mut requests =
        vec![Request { key: key.clone(), project_dir: project.dir.clone(), start: config.jupyter.host_port_start }];
    for port in &config.ports {
        requests.push(Request { key: format!("{key}:port:{port}"), project_dir: project.dir.clone(), start: *port });
    }
    for (service, service_config) in &config.services {
        for port in &service_config.ports {
            requests.push(Request {
                key: format!("{key}:service:{service}:{port}"),
                project_dir: project.dir.clone(),
                start: *port,
            });
        }
    }
    let registry = Registry::new(&context.state_dir);
    let reservations = registry.reserve(&requests, &options.published, &options.avoid, &options.mine, &bind)?;
    let host_of = |key: &str| reservations.iter().find(|r| r.key == key).map(|r| r.port).expect("reserved");

    let token = secrets::ensure_token(&context.state_dir, &key)?;
    let mut variables: Vec<(String, String)> = dpe_plugin::dockerfile::PROXY_VARS
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|value| (name.to_string(), value)))
        .collect();
    let python = python_variables(project)?;
    variables.extend(python.iter().cloned());
    let env_file = secrets::write_env_file(&context.state_dir, &key, &token, &variables)?;

    let gpu_args = match &options.gpu_args {
        Some(args) => args.clone(),
        None => gpu_args(context, project)?,
    };
    let mut spec = build_spec(project, plan, host, &bind, host_of(&key), &token, gpu_args);
    spec.env_file = env_file.to_string_lossy().into_owned();
    python_environment(context, project, options, &python, &mut spec)?;
    spec.ports =
        config.ports.iter().map(|&p| PortPair { container: p, host: host_of(&format!("{key}:port:{p}")) }).collect();
    for (service, service_config) in &config.services {
        let pairs = service_config
            .ports
            .iter()
            .map(|&p| PortPair { container: p, host: host_of(&format!("{key}:service:{service}:{p}")) })
            .collect();
        spec.service_ports.insert(service.clone(), pairs);
    }
    spec.labels.insert(LABEL_CONFIG.into(), short_hash(&run_args(&spec).join("\0")));
    Ok((spec, reservations))
}

/// The label of the package cache volume trusted projects share (`gc` and `rm` keep it).
pub const LABEL_STORE: &str = "dpe.jupyter.store";

/// The label holding a hash of the Python inputs the env file carries: the env file is read
/// when a container is created, so a change there must re-create it like a change of its
/// arguments does.
pub const LABEL_PYTHON: &str = "dpe.jupyter.python";

/// The variables `dpe-sync` reads that may hold credentials or any text (a package URL with a
/// token, an index URL with a password): they travel in the private env file, never on a
/// command line. `python_packages` is one JSON line (the file has no quoting).
/// A requirements file outside the project folder (one `dpe trust` let the project reach, say
/// a list several projects share) is not mounted: its text travels here too, as one JSON line.
pub fn python_variables(project: &Project) -> Result<Vec<(String, String)>> {
    let config = &project.config;
    let mut variables = Vec::new();
    if config.dockerfile.is_none() {
        variables.push((
            "DPE_PY_PACKAGES".to_string(),
            serde_json::to_string(&config.python_packages).expect("a list of strings"),
        ));
        if let Some((file, text)) = outside_requirements(project)? {
            variables.push(("DPE_PY_REQUIREMENTS_TEXT".to_string(), serde_json::to_string(&text).expect("a string")));
            variables.push(("DPE_PY_REQUIREMENTS_FROM".to_string(), file.to_string_lossy().into_owned()));
        }
    }
    if let Some(url) = &config.python.index_url {
        variables.push(("UV_DEFAULT_INDEX".to_string(), url.clone()));
    }
    if !config.python.extra_index_urls.is_empty() {
        variables.push(("UV_INDEX".to_string(), config.python.extra_index_urls.join(" ")));
    }
    Ok(variables)
}

/// The longest requirements text the env file carries (an env file's line is read whole; the
/// engines read lines of 64 KiB).
const REQUIREMENTS_TEXT_MAX: usize = 48 * 1024;

/// The requirements file and its text, when it is outside the project folder.
fn outside_requirements(project: &Project) -> Result<Option<(std::path::PathBuf, String)>> {
    let Some(file) = image::requirements_file(project)? else { return Ok(None) };
    if inside_project(project, &file).is_some() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Error::new(format!("reading the requirements file `{}` failed: {e}", file.display())))?;
    if text.len() > REQUIREMENTS_TEXT_MAX {
        return Err(Error::new(format!(
            "the requirements file `{}` is outside the project folder and larger than {} kB",
            file.display(),
            REQUIREMENTS_TEXT_MAX / 1024
        ))
        .with_help(
            "copy it into the project folder (the environment is synced from there) and point `requirements` at it",
        ));
    }
    Ok(Some((file, text)))
}

/// Where `file` really is below the project folder (links followed, `..` applied), judged as
/// the core's trust check judges what a configuration reaches ([`dpe_plugin::reach`]).
fn inside_project(project: &Project, file: &std::path::Path) -> Option<std::path::PathBuf> {
    let boundary = dpe_plugin::reach::resolve(&project.dir);
    dpe_plugin::reach::resolve(file).strip_prefix(&boundary).ok().map(std::path::Path::to_path_buf)
}

/// Where the project's Python packages come from and how they are synced: the requirements file
/// (as the container sees it), the package store (shared by trusted projects, private
/// otherwise), `--exact`, and the label that re-creates the container when the env file's
/// Python inputs change. A project with its own Dockerfile installs its packages there, as
/// before: its environment is not synced.
fn python_environment(
    context: &Context,
    project: &Project,
    options: &Options,
    python: &[(String, String)],
    spec: &mut Spec,
) -> Result<()> {
    if project.config.dockerfile.is_some() {
        spec.env.insert("DPE_SYNC".into(), "skip".into());
        return Ok(());
    }
    spec.env.extend(sync_variables(project, &spec.workdir, options.exact)?);
    if context.config_trusted {
        spec.store_volume = Some(crate::store::volume_name(context));
        spec.store_target = Some(image::SHARED_STORE_TARGET.into());
        spec.env.insert("DPE_PY_STORE".into(), image::SHARED_STORE_TARGET.into());
        // The environment lives in the store too, beside the cache, so uv hardlinks its
        // packages (links work within one mount). Named after the project's volume: one
        // environment per project, shared by `dpe jupyter` and `dpe compose`.
        spec.env.insert(dpe_plugin::contract::VENV_STORE_VARIABLE.into(), crate::store::environment_path(&spec.volume));
    } else {
        spec.env.insert("DPE_PY_STORE".into(), format!("{VOLUME_TARGET}/python"));
    }
    spec.labels.insert(LABEL_PYTHON.into(), short_hash(&format!("{python:?}")));
    Ok(())
}

/// The variables telling `dpe-sync` where the requirements file is in the container (when it
/// is in the project folder; see [`python_variables`] for one outside) and whether to sync
/// exactly; none hold secrets.
pub fn sync_variables(project: &Project, workdir: &str, exact: bool) -> Result<Vec<(String, String)>> {
    let mut variables = Vec::new();
    if let Some(file) = image::requirements_file(project)? {
        if let Some(relative) = inside_project(project, &file) {
            variables.push(("DPE_PY_REQUIREMENTS".to_string(), format!("{workdir}/{}", relative.to_string_lossy())));
        }
    }
    if exact {
        variables.push(("DPE_SYNC".to_string(), "exact".to_string()));
    }
    Ok(variables)
}

/// The pure part of the specification: everything but the env file, extra ports and labels
/// that hash the result.
pub fn build_spec(
    project: &Project,
    plan: &Plan,
    host: &Host,
    bind: &str,
    host_port: u16,
    token: &str,
    gpu_args: Vec<String>,
) -> Spec {
    let config = &project.config;
    let container_port = config.jupyter.port;
    let base_url = project.base_url();
    let stacks = plan.stacks;
    let workdir = if stacks { "/home/jovyan/work".to_string() } else { "/work".to_string() };

    let mut env = BTreeMap::new();
    for (k, v) in &config.env {
        env.insert(k.clone(), v.clone());
    }
    env.insert("DPE_PROJECT".into(), project.name.clone());
    env.insert("DPE_BASE_URL".into(), base_url.clone());
    env.insert("DPE_JUPYTER_PORT".into(), container_port.to_string());
    // `dpe-start` turns it into the server's own culling and idle shutdown.
    if let Some(seconds) = config.jupyter.idle_timeout_seconds() {
        env.insert("DPE_IDLE_TIMEOUT".into(), seconds.to_string());
    }
    let user = if stacks {
        // Docker Stacks images start as root, move `jovyan` to NB_UID/NB_GID and drop to it.
        if host.uid != 0 {
            env.insert("NB_UID".into(), host.uid.to_string());
            env.insert("NB_GID".into(), host.gid.to_string());
        }
        env.insert("CHOWN_HOME".into(), "yes".into());
        Some("root".to_string())
    } else {
        // Any other image runs as the host user directly; its home lives in the volume.
        env.insert("HOME".into(), format!("{VOLUME_TARGET}/home"));
        Some(format!("{}:{}", host.uid, host.gid))
    };

    let mut command = vec!["dpe-start".to_string()];
    match &config.jupyter.command {
        Some(custom) => command.extend(custom.iter().cloned()),
        None if stacks => {
            command.push("start-notebook.py".into());
            command.push(format!("--ServerApp.base_url={base_url}"));
            if container_port != 8888 {
                command.push(format!("--ServerApp.port={container_port}"));
            }
        }
        None => {}
    }

    let url_host = url_host(bind);
    let url = format!("http://{url_host}:{host_port}{base_url}?token={token}");
    let ready_url = format!("http://{url_host}:{host_port}{base_url}api/status?token={token}");
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_PORT.to_string(), host_port.to_string());
    labels.insert(LABEL_URL_HOST.to_string(), url_host);
    labels.insert(LABEL_BASE_URL.to_string(), base_url.clone());
    labels.insert(LABEL_KEY.to_string(), project.key());
    labels.insert(LABEL_WORKDIR.to_string(), workdir.clone());
    if let Some(user) = &user {
        let exec_user = if stacks { format!("{}:{}", host.uid, host.gid) } else { user.clone() };
        labels.insert(LABEL_USER.to_string(), exec_user);
    }

    Spec {
        project: project.name.clone(),
        workspace: project.workspace.to_string_lossy().into_owned(),
        image: plan.tag.clone(),
        container: project.container_name(),
        volume: project.volume_name(),
        volume_target: VOLUME_TARGET.to_string(),
        workdir: workdir.clone(),
        mount: Mount { source: project.dir.to_string_lossy().into_owned(), target: workdir },
        user,
        env,
        env_file: String::new(),
        command,
        bind: bind.to_string(),
        port: PortPair { container: container_port, host: host_port },
        ports: Vec::new(),
        service_ports: BTreeMap::new(),
        base_url,
        url,
        ready_url,
        gpu_args,
        resources: Resources {
            shm_size: Some(config.shm_size().to_string()),
            memory: config.memory.clone(),
            cpus: config.cpus,
        },
        store_volume: None,
        store_target: None,
        labels,
    }
}

/// `docker run` arguments for a specification (without the leading `run`'s `-d`).
pub fn run_args(spec: &Spec) -> Vec<String> {
    let mut args: Vec<String> = vec!["run".into(), "--detach".into(), "--name".into(), spec.container.clone()];
    for (key, value) in &spec.labels {
        args.push("--label".into());
        args.push(format!("{key}={value}"));
    }
    args.push("--publish".into());
    args.push(format!("{}:{}:{}", spec.bind, spec.port.host, spec.port.container));
    for pair in &spec.ports {
        args.push("--publish".into());
        args.push(format!("{}:{}:{}", spec.bind, pair.host, pair.container));
    }
    args.extend(mount_args(spec));
    args.push("--workdir".into());
    args.push(spec.workdir.clone());
    if let Some(shm_size) = &spec.resources.shm_size {
        args.push(format!("--shm-size={shm_size}"));
    }
    if let Some(memory) = &spec.resources.memory {
        args.push(format!("--memory={memory}"));
    }
    if let Some(cpus) = spec.resources.cpus {
        args.push(format!("--cpus={cpus}"));
    }
    args.extend(spec.user_and_env_args());
    if !spec.env_file.is_empty() {
        args.push("--env-file".into());
        args.push(spec.env_file.clone());
    }
    args.extend(spec.gpu_args.iter().cloned());
    args.push(spec.image.clone());
    args.extend(spec.command.iter().cloned());
    args
}

/// Refuses a `cpus` above the CPUs the engine has, before anything is built or started: docker
/// would refuse the container only once the image is built (and `docker compose` after it made
/// the network), with a message that does not name the setting. `services` adds the project's
/// `[services.NAME]` (for `dpe compose`, which runs them). An engine that does not say how many
/// CPUs it has (Podman answers `docker info` differently) is left to judge for itself.
pub fn check_cpus(context: &Context, project: &Project, services: bool) -> Result<()> {
    let config = &project.config;
    let mut wanted: Vec<(String, f64)> = config.cpus.map(|cpus| ("cpus".to_string(), cpus)).into_iter().collect();
    if services {
        let each = config.services.iter().filter_map(|(name, s)| Some((format!("[services.{name}] cpus"), s.cpus?)));
        wanted.extend(each);
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let out = crate::docker::captured(context, &["info", "--format", "{{.NCPU}}"])?;
    let Some(available) =
        String::from_utf8_lossy(&out.stdout).trim().parse::<u32>().ok().filter(|_| out.status.success())
    else {
        return Ok(());
    };
    match wanted.iter().find(|(_, cpus)| *cpus > f64::from(available)) {
        Some((key, cpus)) => Err(Error::new(format!("`{key} = {cpus}` asks for more CPUs than the engine has ({available})"))
            .with_help(format!(
                "set `{key}` to at most {available} in the dpe.toml of `{}` (fractions such as 1.5 work), or remove it for no limit",
                project.name
            ))),
        None => Ok(()),
    }
}

/// The host part of a URL that reaches a server published on `bind`: the address itself (in
/// brackets when IPv6), or this machine's loopback of the same family for a wildcard bind.
/// Start, `url`, `status`, `list`, the ready probe and compose all read it from here.
pub fn url_host(bind: &str) -> String {
    use std::net::IpAddr;
    match bind.parse::<IpAddr>() {
        Ok(IpAddr::V4(address)) if address.is_unspecified() => "127.0.0.1".to_string(),
        Ok(IpAddr::V6(address)) if address.is_unspecified() => "[::1]".to_string(),
        Ok(IpAddr::V6(address)) => format!("[{address}]"),
        Ok(IpAddr::V4(address)) => address.to_string(),
        // The configuration holds an IP address (it refuses anything else).
        Err(_) => bind.to_string(),
    }
}

/// The `--mount` arguments for the project's volume and folder. `--volume SRC:DST` splits at
/// every colon, so a folder such as `lab:2024` could not be mounted; `--mount` takes named
/// fields instead.
pub fn mount_args(spec: &Spec) -> Vec<String> {
    let mut args = vec![
        "--mount".into(),
        mount_value("volume", &spec.volume, &spec.volume_target, false),
        "--mount".into(),
        mount_value("bind", &spec.mount.source, &spec.mount.target, false),
    ];
    if let (Some(store), Some(target)) = (&spec.store_volume, &spec.store_target) {
        args.push("--mount".into());
        args.push(mount_value("volume", store, target, false));
    }
    args
}

/// Engine flags for the GPU, from the gpu plugin (`dpe gpu flags PROJECT --json`).
pub fn gpu_args(context: &Context, project: &Project) -> Result<Vec<String>> {
    if project.config.gpu == GpuMode::Off {
        return Ok(Vec::new());
    }
    let output = dpe_plugin::client::dpe_command(context, &["gpu", "flags", &project.name, "--json"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::io("running `dpe gpu flags`", e))?;
    let parsed: Option<GpuFlags> = serde_json::from_slice(&output.stdout).ok();
    match (output.status.success(), parsed) {
        (true, Some(flags)) => {
            if let Some(notice) = flags.notice {
                eprintln!("dpe: {notice}");
            }
            Ok(flags.docker_args)
        }
        // `dpe gpu flags` (or the core, when the plugin is missing) printed why and the fix.
        (false, _) if project.config.gpu == GpuMode::Required => {
            Err(Error::quiet(dpe_plugin::client::exit_code(output.status).max(1)))
        }
        _ if project.config.gpu == GpuMode::Required => Err(Error::new(format!(
            "`{}` requires a GPU (`gpu = \"required\"`) but `dpe gpu flags` gave no flags",
            project.name
        ))
        .with_help("run `dpe gpu check` to see why")),
        _ => {
            eprintln!("dpe: no GPU flags for `{}` (`dpe gpu flags` gave none); starting without a GPU", project.name);
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpe_plugin::Config;
    use std::path::PathBuf;

    fn project(config: Config) -> Project {
        Project { name: "project_a".into(), dir: "/w/projects/project_a".into(), workspace: "/w".into(), config }
    }

    fn host() -> Host {
        Host { uid: 1000, gid: 1001, ca_env: None }
    }

    fn spec_for(config: Config) -> Spec {
        let project = project(config);
        let plan = crate::image::plan(&project, &host()).unwrap();
        build_spec(&project, &plan, &host(), "127.0.0.1", 8890, "tok", vec![])
    }

    #[test]
    fn docker_stacks_images_get_nb_uid_root_and_start_notebook() {
        let config = Config { image: Some("scipy".into()), ..Config::default() };
        assert!(crate::image::plan(&project(config.clone()), &host()).unwrap().stacks);
        let spec = spec_for(config);
        assert_eq!(spec.user.as_deref(), Some("root"));
        assert_eq!(spec.env["NB_UID"], "1000");
        assert_eq!(spec.env["NB_GID"], "1001");
        assert_eq!(spec.env["CHOWN_HOME"], "yes");
        assert_eq!(spec.workdir, "/home/jovyan/work");
        assert_eq!(spec.command, ["dpe-start", "start-notebook.py", "--ServerApp.base_url=/project_a/"]);
        let args = run_args(&spec);
        let joined = args.join(" ");
        assert!(joined.contains("--user root"), "{joined}");
        assert!(joined.contains("--env NB_UID=1000"), "{joined}");
        assert!(joined.contains("--mount type=bind,source=/w/projects/project_a,target=/home/jovyan/work"), "{joined}");
        assert!(joined.ends_with("start-notebook.py --ServerApp.base_url=/project_a/"), "{joined}");
    }

    #[test]
    fn other_images_run_as_the_host_user_with_home_in_the_volume() {
        let spec = spec_for(Config { image: Some("debian:bookworm-slim".into()), ..Config::default() });
        assert_eq!(spec.user.as_deref(), Some("1000:1001"));
        assert_eq!(spec.env["HOME"], "/dpe/home");
        assert!(!spec.env.contains_key("NB_UID"));
        assert_eq!(spec.command, ["dpe-start"]);
        assert_eq!(spec.url, "http://127.0.0.1:8890/project_a/?token=tok");
        assert_eq!(spec.ready_url, "http://127.0.0.1:8890/project_a/api/status?token=tok");
        let args = run_args(&spec);
        let joined = args.join(" ");
        assert!(joined.contains("--publish 127.0.0.1:8890:8888"), "{joined}");
        assert!(!joined.contains("tok"), "the token never reaches the command line: {joined}");
    }

    #[test]
    fn configured_command_runs_after_dpe_start() {
        let mut config = Config { image: Some("debian:bookworm-slim".into()), ..Config::default() };
        config.jupyter.command = Some(vec!["jupyter".into(), "lab".into()]);
        config.jupyter.port = 9999;
        let spec = spec_for(config);
        assert_eq!(spec.command, ["dpe-start", "jupyter", "lab"]);
        assert_eq!(spec.port, PortPair { container: 9999, host: 8890 });
        assert_eq!(spec.env["DPE_JUPYTER_PORT"], "9999");
        let _ = PathBuf::new();
    }

    #[test]
    fn resources_become_engine_flags_and_idle_timeout_an_env_variable() {
        let plain = spec_for(Config { image: Some("debian:bookworm-slim".into()), ..Config::default() });
        let joined = run_args(&plain).join(" ");
        assert!(joined.contains(" --shm-size=1g "), "Docker's 64m /dev/shm is never the default: {joined}");
        assert!(!joined.contains("--memory") && !joined.contains("--cpus"), "{joined}");
        assert!(!plain.env.contains_key("DPE_IDLE_TIMEOUT"));

        let mut config = Config {
            image: Some("debian:bookworm-slim".into()),
            shm_size: Some("2g".into()),
            memory: Some("256m".into()),
            cpus: Some(1.5),
            ..Config::default()
        };
        config.jupyter.idle_timeout = Some("2h".into());
        let spec = spec_for(config);
        let args = run_args(&spec);
        let image_at = args.iter().position(|a| a == &spec.image).unwrap();
        let flags: Vec<&str> = args[..image_at]
            .iter()
            .map(String::as_str)
            .filter(|a| a.starts_with("--shm") || a.starts_with("--memory") || a.starts_with("--cpus"))
            .collect();
        assert_eq!(flags, ["--shm-size=2g", "--memory=256m", "--cpus=1.5"]);
        assert_eq!(spec.env["DPE_IDLE_TIMEOUT"], "7200");
        let value = serde_json::to_value(&spec).unwrap();
        assert_eq!(value["resources"], serde_json::json!({"shm_size": "2g", "memory": "256m", "cpus": 1.5}));
    }

    #[test]
    fn spec_json_has_every_contract_field() {
        let spec = spec_for(Config { image: Some("debian:bookworm-slim".into()), ..Config::default() });
        let value = serde_json::to_value(&spec).unwrap();
        for field in [
            "project",
            "workspace",
            "image",
            "container",
            "volume",
            "volume_target",
            "workdir",
            "mount",
            "user",
            "env",
            "env_file",
            "command",
            "bind",
            "port",
            "ports",
            "service_ports",
            "base_url",
            "url",
            "ready_url",
            "gpu_args",
            "resources",
            "labels",
        ] {
            assert!(value.get(field).is_some(), "missing {field}");
        }
        assert!(value.get("stacks").is_none());
        assert_eq!(value["mount"]["target"], "/work");
    }

    /// The URL names the address the server was published on, so it answers there.
    #[test]
    fn urls_name_the_published_address() {
        let image = Config { image: Some("debian:bookworm-slim".into()), ..Config::default() };
        let project = project(image);
        let plan = crate::image::plan(&project, &host()).unwrap();
        let url = |bind: &str| build_spec(&project, &plan, &host(), bind, 8890, "tok", vec![]);
        let v6 = url("::1");
        assert_eq!(v6.url, "http://[::1]:8890/project_a/?token=tok");
        assert_eq!(v6.ready_url, "http://[::1]:8890/project_a/api/status?token=tok");
        assert_eq!(v6.labels[LABEL_URL_HOST], "[::1]");
        assert_eq!(url("127.0.0.2").url, "http://127.0.0.2:8890/project_a/?token=tok");
        assert_eq!(url("0.0.0.0").url, "http://127.0.0.1:8890/project_a/?token=tok");
        assert_eq!(url("::").url, "http://[::1]:8890/project_a/?token=tok");
        assert_eq!(url("192.168.1.5").url, "http://192.168.1.5:8890/project_a/?token=tok");
        assert_eq!(url_host("fe80::1"), "[fe80::1]");
    }

    /// `--volume SRC:DST` split a folder such as `lab:2024`; each `--mount` value is one CSV
    /// record, with fields holding a comma or quote quoted the way the engine reads them.
    #[test]
    fn mounts_survive_colons_commas_and_quotes() {
        let mut spec = spec_for(Config { image: Some("debian:bookworm-slim".into()), ..Config::default() });
        spec.mount.source = "/w/lab:2024,x/pro\"j".into();
        let args = run_args(&spec);
        let at = args.iter().position(|a| a.starts_with("type=bind")).unwrap();
        assert_eq!(args[at - 1], "--mount");
        assert_eq!(args[at], "type=bind,\"source=/w/lab:2024,x/pro\"\"j\",target=/work");
        assert!(args.contains(&format!("type=volume,source={},target=/dpe", spec.volume)), "{args:?}");
        assert!(!args.contains(&"--volume".to_string()), "{args:?}");
        assert_eq!(mount_value("bind", "/a", "/b", true), "type=bind,source=/a,target=/b,readonly");
    }

    #[test]
    fn python_inputs_that_may_hold_secrets_go_to_the_env_file_not_the_command_line() {
        let mut config = Config { image: Some("debian:bookworm-slim".into()), ..Config::default() };
        config.python_packages = vec!["tinypkg@https://u:s3cret@example.org/t.whl".into(), "polars>=1".into()];
        config.python.index_url = Some("https://u:s3cret@mirror.example/simple".into());
        config.python.extra_index_urls = vec!["https://a.example/whl".into(), "https://b.example/whl".into()];
        let project = project(config);
        let variables = python_variables(&project).unwrap();
        assert_eq!(
            variables,
            [
                (
                    "DPE_PY_PACKAGES".to_string(),
                    r#"["tinypkg@https://u:s3cret@example.org/t.whl","polars>=1"]"#.to_string()
                ),
                ("UV_DEFAULT_INDEX".to_string(), "https://u:s3cret@mirror.example/simple".to_string()),
                ("UV_INDEX".to_string(), "https://a.example/whl https://b.example/whl".to_string()),
            ]
        );
        let plan = crate::image::plan(&project, &host()).unwrap();
        let spec = build_spec(&project, &plan, &host(), "127.0.0.1", 8890, "tok", vec![]);
        assert!(!run_args(&spec).join(" ").contains("s3cret"), "{:?}", run_args(&spec));
        assert!(!plan.dockerfile.contains("s3cret") && !plan.dockerfile.contains("polars"), "{}", plan.dockerfile);
    }

    #[test]
    fn the_requirements_file_is_named_as_the_container_sees_it_or_carried_in_the_env_file() {
        let dir = tempfile::tempdir().unwrap();
        let project_dir = dir.path().join("p");
        std::fs::create_dir(&project_dir).unwrap();
        std::fs::write(project_dir.join("requirements.txt"), "six\n").unwrap();
        std::fs::write(dir.path().join("shared.txt"), "six\n").unwrap();
        let mut project = Project {
            name: "p".into(),
            dir: project_dir.clone(),
            workspace: dir.path().to_path_buf(),
            config: Config::default(),
        };
        assert_eq!(
            sync_variables(&project, "/work", true).unwrap(),
            [
                ("DPE_PY_REQUIREMENTS".to_string(), "/work/requirements.txt".to_string()),
                ("DPE_SYNC".to_string(), "exact".to_string())
            ]
        );
        // One outside the project folder (the core lets a trusted project reach it) is not
        // mounted: its text goes to the env file, and nothing names it on the command line.
        project.config.requirements = Some(project_dir.join("../shared.txt").to_string_lossy().into_owned());
        assert_eq!(sync_variables(&project, "/work", false).unwrap(), [], "`..` leads out of the folder");
        project.config.requirements = Some(dir.path().join("shared.txt").to_string_lossy().into_owned());
        assert_eq!(sync_variables(&project, "/work", false).unwrap(), []);
        let variables = python_variables(&project).unwrap();
        assert_eq!(
            variables[1..],
            [
                ("DPE_PY_REQUIREMENTS_TEXT".to_string(), r#""six\n""#.to_string()),
                ("DPE_PY_REQUIREMENTS_FROM".to_string(), dir.path().join("shared.txt").to_string_lossy().into_owned())
            ]
        );
        std::fs::write(dir.path().join("shared.txt"), "six\n".repeat(20_000)).unwrap();
        let err = python_variables(&project).unwrap_err();
        assert!(err.message.ends_with("is outside the project folder and larger than 48 kB"), "{}", err.message);
    }
}

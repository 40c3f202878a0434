//! Turns one project into its [`Fragment`] of the stack.
//!
//! The Jupyter service comes from `dpe jupyter spec PROJECT --json`, so compose runs exactly
//! what `dpe jupyter` runs: the same image (built and cached by the jupyter plugin), volumes,
//! token file, URL and host ports from the shared registry. The project's `[services.NAME]`
//! come from its resolved configuration, which the core layers and validates: this plugin asks
//! for it with `dpe --project PROJECT context --json` (the context `dpe compose PROJECT` would
//! receive), so a broken `dpe.toml` is reported by the core, with its file and line, before
//! anything starts, and settings that reach outside the project are refused unless trusted. A project with a GPU gets the device
//! reservation from `dpe gpu flags PROJECT --json`.

use crate::model::{Fragment, Mount, Published, Resources, ServiceDef, VolumeDef};
use crate::selection::valid_name;
use crate::stack::{dpe, output, Stack};
use dpe_plugin::config::ServiceConfig;
use dpe_plugin::contract::{GpuFlags, PortPair, RunSpec};
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::{Config, Context};
use std::collections::BTreeMap;
use std::path::Path;

/// Asks the plugins and the core about `project` and builds its fragment. Builds the project
/// image if needed (through the jupyter plugin, cached by content).
pub fn load(context: &Context, stack: &Stack, project: &str) -> Result<Fragment> {
    let config = resolved_config(context, project)?;
    let spec = jupyter_spec(context, project)?;
    let gpu = if spec.gpu_args.is_empty() { None } else { gpu_reservation(context, project)? };
    let env_volume_labels = existing_volume_labels(context, &spec.volume);
    fragment(stack, project, &config, &spec, gpu, env_volume_labels)
}

/// The project's configuration as the core resolves it. Settings that reach outside the
/// project are refused here unless the workspace's configuration is trusted: every `up`,
/// `deploy` and `config` asks for each project's configuration first, so nothing is built or
/// started before the refusal.
fn resolved_config(context: &Context, project: &str) -> Result<Config> {
    let text = output(
        dpe(context, Some(project)).args(["--project", project, "context", "--json", "--plugin", "compose"]),
        "dpe context",
    )?;
    let resolved: Context = serde_json::from_str(&text)
        .map_err(|e| Error::new(format!("cannot read the resolved configuration of project `{project}`: {e}")))?;
    dpe_plugin::reach::check(&resolved).map_err(|refusal| Error::new(refusal.message).with_help(refusal.help))?;
    Ok(resolved.config)
}

fn jupyter_spec(context: &Context, project: &str) -> Result<RunSpec> {
    let text = output(dpe(context, Some(project)).args(["jupyter", "spec", project, "--json"]), "dpe jupyter spec")?;
    serde_json::from_str(&text).map_err(|e| {
        Error::new(format!("`dpe jupyter spec {project} --json` printed something that is not a spec: {e}"))
            .with_help("update the jupyter plugin (`dpe plugin list` shows its version)")
    })
}

/// The compose device reservation for a project that uses a GPU.
fn gpu_reservation(context: &Context, project: &str) -> Result<Option<serde_json::Value>> {
    let text = output(dpe(context, Some(project)).args(["gpu", "flags", project, "--json"]), "dpe gpu flags")?;
    let flags: GpuFlags = serde_json::from_str(&text)
        .map_err(|e| Error::new(format!("`dpe gpu flags {project} --json` printed invalid JSON: {e}")))?;
    if !flags.use_gpu {
        return Ok(None);
    }
    Ok(flags.compose.filter(|v| !v.is_null()))
}

/// The labels of a volume that already exists (the jupyter plugin creates the project's volume
/// with its own labels; declaring the same ones keeps compose from warning that they changed).
fn existing_volume_labels(context: &Context, volume: &str) -> Option<BTreeMap<String, String>> {
    let out = dpe(context, None)
        .args(["docker", "volume", "inspect", "--format", "{{json .Labels}}", volume])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice::<Option<BTreeMap<String, String>>>(&out.stdout).ok().flatten()
}

/// The fragment for a project, from its resolved configuration and jupyter spec. Pure, so the
/// mapping is unit-tested.
pub fn fragment(
    stack: &Stack,
    project: &str,
    config: &Config,
    spec: &RunSpec,
    gpu: Option<serde_json::Value>,
    env_volume_labels: Option<BTreeMap<String, String>>,
) -> Result<Fragment> {
    let labels = stack.project_labels(project);
    let project_dir = stack.workspace.project_dir(project);
    let mut volumes = Vec::new();

    let mut jupyter = ServiceDef {
        key: project.to_string(),
        image: Some(spec.image.clone()),
        command: (!spec.command.is_empty()).then(|| spec.command.clone()),
        working_dir: Some(spec.workdir.clone()),
        user: spec.user.clone(),
        environment: spec.env.clone(),
        env_file: Some(spec.env_file.clone()).into_iter().filter(|file| !file.is_empty()).collect(),
        gpu,
        resources: spec.resources.clone(),
        ..ServiceDef::default()
    };
    jupyter.labels = spec.labels.clone();
    jupyter.labels.extend(labels.clone());
    let (volume, target) = (&spec.volume, &spec.volume_target);
    jupyter.volumes.push(Mount { source: volume.clone(), named: true, target: target.clone(), read_only: false });
    volumes.push(VolumeDef {
        key: volume.clone(),
        name: volume.clone(),
        labels: env_volume_labels.unwrap_or_else(|| labels.clone()),
        external: false,
    });
    if let (Some(store), Some(target)) = (&spec.store_volume, &spec.store_target) {
        jupyter.volumes.push(Mount { source: store.clone(), named: true, target: target.clone(), read_only: false });
        volumes.push(VolumeDef { key: store.clone(), name: store.clone(), labels: BTreeMap::new(), external: true });
    }
    jupyter.volumes.push(Mount {
        source: spec.mount.source.clone(),
        named: false,
        target: spec.mount.target.clone(),
        read_only: false,
    });
    let bind = spec.bind.clone();
    let publish = |pair: &PortPair| Published { bind: bind.clone(), host: pair.host, container: pair.container };
    jupyter.ports.push(publish(&spec.port));
    jupyter.ports.extend(spec.ports.iter().map(publish));

    let mut services = Vec::new();
    for (name, service) in &config.services {
        services.push(extra_service(stack, project, &project_dir, name, service, config, spec, &bind, &mut volumes)?);
    }
    // The notebook starts after its project's services (and after they are healthy when they
    // say how to tell), so a first cell that connects to the database finds it.
    jupyter.depends_on = config
        .services
        .iter()
        .map(|(name, service)| (format!("{project}-{name}"), service.healthcheck.is_some()))
        .collect();

    let mut all = vec![jupyter];
    all.extend(services);
    Ok(Fragment {
        project: project.to_string(),
        services: all,
        volumes,
        url: Some(spec.url.clone()),
        ready_url: Some(spec.ready_url.clone()),
        ready_timeout: config.jupyter.ready_timeout,
    })
}

#[allow(clippy::too_many_arguments, reason = "each is one part of the service it builds")]
fn extra_service(
    stack: &Stack,
    project: &str,
    project_dir: &Path,
    name: &str,
    service: &ServiceConfig,
    config: &Config,
    spec: &RunSpec,
    bind: &str,
    volumes: &mut Vec<VolumeDef>,
) -> Result<ServiceDef> {
    let what = format!("service `{name}` of project `{project}`");
    if !valid_name(name) {
        return Err(Error::new(format!("invalid service name `{name}` in project `{project}`"))
            .with_help("service names use lowercase letters, digits, `-` and `_`, starting with a letter or digit"));
    }
    if service.image.is_none() && service.build.is_none() {
        return Err(Error::new(format!("{what} has neither `image` nor `build`"))
            .with_help(format!("set `[services.{name}] image = \"postgres:16\"` (an image the engine has) or `build = \"./{name}\"` (a folder with a Dockerfile)")));
    }
    let key = format!("{project}-{name}");
    let labels = stack.project_labels(project);
    let mut def = ServiceDef {
        key: key.clone(),
        short: Some(name.to_string()),
        // A built service gets a stable image name so swarm (which cannot build) finds it.
        image: service.image.clone().or_else(|| service.build.as_ref().map(|_| format!("{}-{key}:latest", stack.name))),
        build: service.build.as_ref().map(|b| absolute(project_dir, b)),
        command: service.command.clone(),
        environment: service.env.clone(),
        healthcheck: service.healthcheck.clone(),
        labels: labels.clone(),
        resources: Resources { shm_size: service.shm_size.clone(), memory: service.memory.clone(), cpus: service.cpus },
        ..ServiceDef::default()
    };
    for entry in &service.volumes {
        let mount = parse_volume(entry, project_dir).map_err(|problem| {
            Error::new(format!("{what}: volume `{entry}` {problem}"))
                .with_help("write `NAME:/path` for a named volume or `./folder:/path` for a folder of the project (append `:ro` for read-only)")
        })?;
        if mount.named {
            let volume_key = format!("{project}-{}", mount.source);
            if !volumes.iter().any(|v| v.key == volume_key) {
                volumes.push(VolumeDef {
                    key: volume_key.clone(),
                    name: format!("{}-{volume_key}", stack.name),
                    labels: labels.clone(),
                    external: false,
                });
            }
            def.volumes.push(Mount { source: volume_key, ..mount });
        } else {
            def.volumes.push(mount);
        }
    }
    let reserved = spec.service_ports.get(name).cloned().unwrap_or_default();
    for container in &service.ports {
        let Some(pair) = reserved.iter().find(|p| p.container == *container) else {
            return Err(Error::new(format!(
                "the jupyter plugin reserved no host port for container port {container} of {what}"
            ))
            .with_help("update the jupyter plugin; its `spec` must list every service port in `service_ports`"));
        };
        def.ports.push(Published { bind: bind.to_string(), host: pair.host, container: *container });
    }
    for dep in &service.depends_on {
        let Some(target) = config.services.get(dep) else {
            let known: Vec<String> = config.services.keys().filter(|k| *k != name).map(|k| format!("`{k}`")).collect();
            let help = if known.is_empty() {
                "a service can depend only on other services of its own project".to_string()
            } else {
                format!("the other services of project `{project}` are {}", known.join(", "))
            };
            return Err(Error::new(format!("{what} depends on `{dep}`, which project `{project}` does not declare"))
                .with_help(help));
        };
        def.depends_on.push((format!("{project}-{dep}"), target.healthcheck.is_some()));
    }
    Ok(def)
}

/// Parses `SOURCE:TARGET[:ro|:rw]`. A source starting with `.` or `/` is a host path (relative
/// ones are taken from the project folder); anything else names a volume.
fn parse_volume(entry: &str, project_dir: &Path) -> Result<Mount, &'static str> {
    let mut parts: Vec<&str> = entry.split(':').collect();
    let read_only = match parts.last() {
        Some(&"ro") if parts.len() == 3 => true,
        Some(&"rw") if parts.len() == 3 => false,
        _ if parts.len() == 2 => false,
        _ => return Err("is not `SOURCE:TARGET`"),
    };
    parts.truncate(2);
    let (source, target) = (parts[0], parts[1]);
    if !target.starts_with('/') {
        return Err("needs an absolute path inside the container");
    }
    if source.starts_with('.') || source.starts_with('/') {
        return Ok(Mount {
            source: absolute(project_dir, source),
            named: false,
            target: target.to_string(),
            read_only,
        });
    }
    if !valid_name(source) {
        return Err("names a volume with characters other than lowercase letters, digits, `-` and `_`");
    }
    Ok(Mount { source: source.to_string(), named: true, target: target.to_string(), read_only })
}

/// `path` against `base` when relative, without `./` noise.
fn absolute(base: &Path, path: &str) -> String {
    let path = Path::new(path);
    if path.is_absolute() {
        return path.to_string_lossy().into_owned();
    }
    let mut out = base.to_path_buf();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::Workspace;

    fn stack() -> Stack {
        Stack { name: "dpe-ws-12345678".into(), workspace: Workspace { root: "/w".into() }, dir: "/s".into() }
    }

    fn spec() -> RunSpec {
        serde_json::from_str(
            r#"{"project":"a","workspace":"/w","image":"dpe/a:abc","container":"dpe-a","volume":"dpe-a-local",
                "volume_target":"/home/u/.local","workdir":"/home/u/work",
                "mount":{"source":"/w/projects/a","target":"/home/u/work"},"user":"1000:1000",
                "env":{"PYTHONUNBUFFERED":"1"},"env_file":"/s/tokens/a.env","command":["jupyter","lab"],
                "bind":"127.0.0.1","port":{"container":8888,"host":8890},"ports":[{"container":8050,"host":8050}],
                "service_ports":{"db":[{"container":5432,"host":5433}]},"base_url":"/","url":"http://127.0.0.1:8890/?token=t",
                "ready_url":"http://127.0.0.1:8890/api/status?token=t","gpu_args":[],"labels":{"dpe.kind":"env"},
                "resources":{"shm_size":"1g","memory":"256m","cpus":null},"something_new":true}"#,
        )
        .unwrap()
    }

    fn config(toml_services: &str) -> Config {
        let value: toml::Table = toml_services.parse().unwrap();
        let json = serde_json::to_value(value).unwrap();
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn jupyter_and_services_map_to_compose_services() {
        let config = config(
            r#"
            [services.db]
            image = "postgres:16"
            env = { POSTGRES_PASSWORD = "secret" }
            volumes = ["pgdata:/var/lib/postgresql/data", "./init:/docker-entrypoint-initdb.d:ro"]
            ports = [5432]
            healthcheck = { test = ["CMD", "pg_isready"], interval = "2s" }
            shm_size = "256m"
            cpus = 0.5
            [services.web]
            build = "/w/projects/a/web"
            depends_on = ["db"]
            "#,
        );
        let f = fragment(&stack(), "a", &config, &spec(), None, None).unwrap();
        let names: Vec<&str> = f.services.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(names, ["a", "a-db", "a-web"]);
        let jupyter = &f.services[0];
        assert_eq!(jupyter.image.as_deref(), Some("dpe/a:abc"));
        assert_eq!(jupyter.env_file, ["/s/tokens/a.env"]);
        assert_eq!(jupyter.user.as_deref(), Some("1000:1000"));
        assert_eq!(
            jupyter.ports.iter().map(|p| (p.host, p.container)).collect::<Vec<_>>(),
            [(8890, 8888), (8050, 8050)]
        );
        assert_eq!(jupyter.depends_on, [("a-db".to_string(), true), ("a-web".to_string(), false)]);
        assert_eq!(jupyter.labels["dpe.project"], "a");
        assert_eq!(jupyter.labels["dpe.plugin"], "compose");
        assert_eq!(jupyter.labels["dpe.kind"], "env");
        // The notebook's limits are the ones `dpe jupyter` runs with; each service has its own.
        assert_eq!(
            jupyter.resources,
            Resources { shm_size: Some("1g".into()), memory: Some("256m".into()), cpus: None }
        );
        let db = &f.services[1];
        assert_eq!(db.resources, Resources { shm_size: Some("256m".into()), memory: None, cpus: Some(0.5) });
        assert_eq!(f.services[2].resources, Resources::default());
        assert_eq!(db.short.as_deref(), Some("db"));
        assert_eq!(db.ports, [Published { bind: "127.0.0.1".into(), host: 5433, container: 5432 }]);
        assert_eq!(
            db.volumes[0],
            Mount {
                source: "a-pgdata".into(),
                named: true,
                target: "/var/lib/postgresql/data".into(),
                read_only: false
            }
        );
        assert_eq!(db.volumes[1].source, "/w/projects/a/init");
        assert!(db.volumes[1].read_only);
        let web = &f.services[2];
        assert_eq!(web.image.as_deref(), Some("dpe-ws-12345678-a-web:latest"));
        assert_eq!(web.depends_on, [("a-db".to_string(), true)]);
        let vols: Vec<(&str, &str)> = f.volumes.iter().map(|v| (v.key.as_str(), v.name.as_str())).collect();
        assert_eq!(vols, [("dpe-a-local", "dpe-a-local"), ("a-pgdata", "dpe-ws-12345678-a-pgdata")]);
        assert_eq!(f.ready_url.as_deref(), Some("http://127.0.0.1:8890/api/status?token=t"));
    }

    #[test]
    fn the_shared_package_cache_is_mounted_and_declared_external_once() {
        let mut spec = spec();
        spec.store_volume = Some("dpe-python-cache-u1".into());
        spec.store_target = Some("/dpe-cache".into());
        let a = fragment(&stack(), "a", &config(""), &spec, None, None).unwrap();
        let cache =
            Mount { source: "dpe-python-cache-u1".into(), named: true, target: "/dpe-cache".into(), read_only: false };
        assert!(a.services[0].volumes.contains(&cache), "{:?}", a.services[0].volumes);
        let store = a.volumes.iter().find(|v| v.name == "dpe-python-cache-u1").unwrap();
        assert!(store.external && store.labels.is_empty());
        let mut b = a.clone();
        b.project = "b".into();
        let net = BTreeMap::new();
        let text = crate::yaml::to_string(&crate::model::render(&[a, b], &net, crate::model::Target::Compose), &[]);
        // Declared once, external: `down --volumes` never removes the cache other projects use.
        assert_eq!(text.matches("dpe-python-cache-u1:\n").count(), 1, "{text}");
        assert!(text.contains("external: true"), "{text}");
    }

    #[test]
    fn configuration_mistakes_are_named() {
        let no_image = config("[services.db]\nenv = { A = \"1\" }\n");
        let err = fragment(&stack(), "a", &no_image, &spec(), None, None).unwrap_err();
        assert_eq!(err.message, "service `db` of project `a` has neither `image` nor `build`");

        let bad_dep = config("[services.db]\nimage = \"x\"\n[services.web]\nimage = \"y\"\ndepends_on = [\"dbb\"]\n");
        let err = fragment(&stack(), "a", &bad_dep, &spec(), None, None).unwrap_err();
        assert_eq!(err.to_string(), "error: service `web` of project `a` depends on `dbb`, which project `a` does not declare\nhelp: the other services of project `a` are `db`");

        let bad_volume = config("[services.db]\nimage = \"x\"\nvolumes = [\"data:relative\"]\n");
        let err = fragment(&stack(), "a", &bad_volume, &spec(), None, None).unwrap_err();
        assert_eq!(
            err.message,
            "service `db` of project `a`: volume `data:relative` needs an absolute path inside the container"
        );

        let unreserved = config("[services.cache]\nimage = \"redis\"\nports = [6379]\n");
        let err = fragment(&stack(), "a", &unreserved, &spec(), None, None).unwrap_err();
        assert!(err.to_string().contains("reserved no host port for container port 6379 of service `cache`"), "{err}");
    }

    #[test]
    fn existing_volume_labels_are_kept() {
        let labels = BTreeMap::from([("dpe.plugin".to_string(), "jupyter".to_string())]);
        let f = fragment(&stack(), "a", &Config::default(), &spec(), None, Some(labels.clone())).unwrap();
        assert_eq!(f.volumes[0].labels, labels);
    }
}

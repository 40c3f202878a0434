//! The stack in memory: each project's services and volumes, checked for clashes, rendered as a
//! Compose Specification document for `docker compose`/`docker-compose` or for Docker Swarm.
//!
//! A project contributes a [`Fragment`]: its Jupyter service (named after the project) and one
//! service per `[services.NAME]`, named `<project>-<NAME>` and also reachable by the short alias
//! `NAME` on the workspace network. Fragments are kept in the state directory between commands,
//! so `dpe compose up b` while `a` runs writes a file holding both without asking the jupyter
//! plugin about `a` again. Rendering is a pure function of the fragments, which is what the unit
//! tests below pin down.

use crate::yaml::Node;
use dpe_plugin::config::Healthcheck;
use dpe_plugin::sdk::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One project's part of the stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    pub project: String,
    /// Its services, the Jupyter one first.
    pub services: Vec<ServiceDef>,
    pub volumes: Vec<VolumeDef>,
    /// The notebook URL printed once the server answers (token included).
    pub url: Option<String>,
    /// An http URL that answers 200 once the server is up.
    pub ready_url: Option<String>,
    /// How long its server may take to answer, in seconds: the project's own `[jupyter]
    /// ready_timeout` (fragments saved before it was recorded get the default).
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: u64,
}

fn default_ready_timeout() -> u64 {
    dpe_plugin::Config::default().jupyter.ready_timeout
}

/// One compose service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceDef {
    /// The service key: the project name, or `<project>-<name>`.
    pub key: String,
    /// The short name from `[services.NAME]`, used as a network alias; `None` for Jupyter.
    pub short: Option<String>,
    pub image: Option<String>,
    /// An absolute build context.
    pub build: Option<String>,
    pub command: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub env_file: Vec<String>,
    pub volumes: Vec<Mount>,
    pub ports: Vec<Published>,
    /// Service keys this one waits for, and whether it waits for them to be healthy.
    pub depends_on: Vec<(String, bool)>,
    pub healthcheck: Option<Healthcheck>,
    pub labels: BTreeMap<String, String>,
    /// The `deploy.resources.reservations.devices` entry from `dpe gpu flags`.
    pub gpu: Option<serde_json::Value>,
    /// `/dev/shm` size and memory and CPU limits (absent from fragments saved before them).
    #[serde(default)]
    pub resources: Resources,
}

/// A service's `/dev/shm` size and its memory and CPU limits, each the engine's default when
/// unset: the type `dpe jupyter spec` prints the notebook's in, so both read alike.
pub use dpe_plugin::contract::Resources;

/// A volume mount: a named volume (by its key in the file) or a host path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    pub source: String,
    pub named: bool,
    pub target: String,
    pub read_only: bool,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub bind: String,
    pub host: u16,
    pub container: u16,
}

/// A named volume declared in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeDef {
    /// The key in the file.
    pub key: String,
    /// The engine's name for it (stable across compose v1, v2 and swarm).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Made and kept outside the stack (the shared package cache): compose neither creates nor
    /// removes it.
    #[serde(default)]
    pub external: bool,
}

/// Which engine the document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `docker compose` (v2) or `docker-compose` (v1.27+): the Compose Specification.
    Compose,
    /// `docker stack deploy`: no builds, ports published in `host` mode, no start order.
    Swarm,
}

/// Checks that the fragments can live on one network: no two services with the same key, no
/// alias that answers for two services, no host port published twice. Every problem is found
/// before anything starts.
pub fn validate(fragments: &[Fragment]) -> Result<()> {
    // Every name that resolves on the network, and who claims it.
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    let describe = |fragment: &Fragment, service: &ServiceDef| match &service.short {
        Some(short) => format!("service `{short}` of project `{}`", fragment.project),
        None => format!("project `{}`", fragment.project),
    };
    for fragment in fragments {
        for service in &fragment.services {
            let owner = describe(fragment, service);
            let mut claimed = vec![service.key.as_str()];
            if let Some(short) = &service.short {
                claimed.push(short.as_str());
            }
            for name in claimed {
                if let Some(previous) = names.get(name) {
                    if *previous != owner {
                        return Err(Error::new(format!(
                            "service name clash: `{name}` would name both {previous} and {owner} on the workspace network"
                        ))
                        .with_help(format!(
                            "rename one of them in its project's dpe.toml (e.g. `[services.{}_{name}]`), or start them separately",
                            fragment.project
                        )));
                    }
                }
                names.insert(name, owner.clone());
            }
        }
    }
    let mut ports: BTreeMap<u16, String> = BTreeMap::new();
    for fragment in fragments {
        for service in &fragment.services {
            for port in &service.ports {
                let owner = format!("{} (container port {})", describe(fragment, service), port.container);
                if let Some(previous) = ports.insert(port.host, owner.clone()) {
                    return Err(Error::new(format!(
                        "port clash: host port {} is published by both {previous} and {owner}",
                        port.host
                    ))
                    .with_help(
                        "each published port needs its own host port; check the ports registry in the state directory",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The compose document for these fragments. `workspace_labels` label the network.
pub fn render(fragments: &[Fragment], network_labels: &BTreeMap<String, String>, target: Target) -> Node {
    let mut services = Vec::new();
    let mut volumes = Vec::new();
    for fragment in fragments {
        for service in &fragment.services {
            services.push((service.key.clone(), render_service(service, target)));
        }
        for volume in &fragment.volumes {
            // Two projects of one stack share the package cache: it is declared once.
            if volumes.iter().any(|(key, _)| key == &volume.key) {
                continue;
            }
            let mut def = vec![("name".into(), Node::str(escape(&volume.name)))];
            if volume.external {
                def.push(("external".into(), Node::Bool(true)));
            } else {
                def.push(("labels".into(), labels(&volume.labels)));
            }
            volumes.push((volume.key.clone(), Node::Map(def)));
        }
    }
    let mut doc = Vec::new();
    if target == Target::Swarm {
        // `docker stack deploy` (docker 20.10) reads only versioned files; 3.8 has everything
        // used here (volume names, long port syntax, start_period).
        doc.push(("version".into(), Node::str("3.8")));
    }
    doc.push(("services".into(), Node::Map(services)));
    doc.push((
        "networks".into(),
        Node::Map(vec![("default".into(), Node::Map(vec![("labels".into(), labels(network_labels))]))]),
    ));
    if !volumes.is_empty() {
        doc.push(("volumes".into(), Node::Map(volumes)));
    }
    Node::Map(doc)
}

fn render_service(service: &ServiceDef, target: Target) -> Node {
    let mut map: Vec<(String, Node)> = Vec::new();
    if let Some(image) = &service.image {
        map.push(("image".into(), Node::str(escape(image))));
    }
    if let (Some(build), Target::Compose) = (&service.build, target) {
        map.push(("build".into(), Node::str(escape(build))));
    }
    if let Some(command) = &service.command {
        map.push(("command".into(), Node::List(command.iter().map(|c| Node::str(escape(c))).collect())));
    }
    if let Some(dir) = &service.working_dir {
        map.push(("working_dir".into(), Node::str(escape(dir))));
    }
    if let Some(user) = &service.user {
        map.push(("user".into(), Node::str(escape(user))));
    }
    if !service.env_file.is_empty() {
        map.push(("env_file".into(), Node::List(service.env_file.iter().map(|f| Node::str(escape(f))).collect())));
    }
    if !service.environment.is_empty() {
        map.push((
            "environment".into(),
            Node::Map(service.environment.iter().map(|(k, v)| (k.clone(), Node::str(escape(v)))).collect()),
        ));
    }
    let mut mounts: Vec<Node> = service
        .volumes
        .iter()
        .map(|m| {
            if m.named {
                let mode = if m.read_only { ":ro" } else { "" };
                return Node::str(escape(&format!("{}:{}{mode}", m.source, m.target)));
            }
            // The short form splits at every colon, so a folder such as `lab:2024` needs the
            // long one (named volumes never hold a colon).
            let mut fields = vec![
                ("type".into(), Node::str("bind")),
                ("source".into(), Node::str(escape(&m.source))),
                ("target".into(), Node::str(escape(&m.target))),
            ];
            if m.read_only {
                fields.push(("read_only".into(), Node::Bool(true)));
            }
            Node::Map(fields)
        })
        .collect();
    if target == Target::Swarm {
        mounts.extend(swarm_shm(&service.resources));
    }
    if !mounts.is_empty() {
        map.push(("volumes".into(), Node::List(mounts)));
    }
    if !service.ports.is_empty() {
        let ports = service.ports.iter().map(|p| match target {
            // Compose publishes on the configured address (127.0.0.1 by default).
            Target::Compose => {
                let bind = if p.bind.contains(':') { format!("[{}]", p.bind) } else { p.bind.clone() };
                Node::str(format!("{bind}:{}:{}", p.host, p.container))
            }
            // Swarm's ingress mesh does not answer everywhere (not on this machine); `host` mode
            // publishes straight from the container on every address of the node.
            Target::Swarm => Node::Map(vec![
                ("target".into(), Node::Int(p.container.into())),
                ("published".into(), Node::Int(p.host.into())),
                ("protocol".into(), Node::str("tcp")),
                ("mode".into(), Node::str("host")),
            ]),
        });
        map.push(("ports".into(), Node::List(ports.collect())));
    }
    if let Some(short) = &service.short {
        map.push((
            "networks".into(),
            Node::Map(vec![("default".into(), Node::Map(vec![("aliases".into(), Node::strs(&[short]))]))]),
        ));
    }
    // Swarm ignores start order, and its version-3 schema refuses the conditional form.
    if !service.depends_on.is_empty() && target == Target::Compose {
        let deps = service.depends_on.iter().map(|(key, healthy)| {
            let condition = if *healthy { "service_healthy" } else { "service_started" };
            (key.clone(), Node::Map(vec![("condition".into(), Node::str(condition))]))
        });
        map.push(("depends_on".into(), Node::Map(deps.collect())));
    }
    if let Some(check) = &service.healthcheck {
        let mut hc = vec![("test".into(), Node::List(check.test.iter().map(|t| Node::str(escape(t))).collect()))];
        for (key, value) in
            [("interval", &check.interval), ("timeout", &check.timeout), ("start_period", &check.start_period)]
        {
            if let Some(value) = value {
                hc.push((key.into(), Node::str(escape(value))));
            }
        }
        if let Some(retries) = check.retries {
            hc.push(("retries".into(), Node::Int(retries.into())));
        }
        map.push(("healthcheck".into(), Node::Map(hc)));
    }
    if target == Target::Compose {
        map.extend(compose_resources(&service.resources));
    }
    map.push(("labels".into(), labels(&service.labels)));
    let mut deploy = Vec::new();
    let mut resources = Vec::new();
    if target == Target::Swarm {
        resources.extend(swarm_limits(&service.resources));
    }
    if let Some(gpu) = &service.gpu {
        resources
            .push(("reservations".into(), Node::Map(vec![("devices".into(), Node::List(vec![Node::from_json(gpu)]))])));
    }
    if !resources.is_empty() {
        deploy.push(("resources".into(), Node::Map(resources)));
    }
    if target == Target::Swarm {
        // Service names resolve to the tasks' own addresses instead of a virtual IP: the VIP
        // goes through the same IPVS load balancer as the ingress mesh, which does not route on
        // every host (not on this one), while plain DNS round robin always does.
        deploy.push(("endpoint_mode".into(), Node::str("dnsrr")));
        // In a stack, service-level `labels` go to the containers; `deploy.labels` label the
        // swarm service itself, so both carry dpe's labels.
        deploy.push(("labels".into(), labels(&service.labels)));
    }
    if !deploy.is_empty() {
        map.push(("deploy".into(), Node::Map(deploy)));
    }
    Node::Map(map)
}

/// `shm_size`, `mem_limit` and `cpus`: the service-level keys of Compose v1 (1.27+) and v2.
fn compose_resources(resources: &Resources) -> Vec<(String, Node)> {
    let mut keys = Vec::new();
    if let Some(size) = &resources.shm_size {
        keys.push(("shm_size".into(), Node::str(size)));
    }
    if let Some(memory) = &resources.memory {
        keys.push(("mem_limit".into(), Node::str(memory)));
    }
    if let Some(cpus) = resources.cpus {
        keys.push(("cpus".into(), Node::str(cpus.to_string())));
    }
    keys
}

/// `deploy.resources.limits`: where a stack sets memory and CPUs (version 3 wants both as strings;
/// it ignores the service-level keys).
fn swarm_limits(resources: &Resources) -> Option<(String, Node)> {
    let mut limits = Vec::new();
    if let Some(cpus) = resources.cpus {
        limits.push(("cpus".into(), Node::str(cpus.to_string())));
    }
    if let Some(memory) = &resources.memory {
        limits.push(("memory".into(), Node::str(memory)));
    }
    (!limits.is_empty()).then(|| ("limits".into(), Node::Map(limits)))
}

/// `docker stack deploy` ignores `shm_size` ("unsupported option"): a tmpfs of that size mounted
/// on `/dev/shm` takes its place (the engine then mounts no `/dev/shm` of its own, and a tmpfs is
/// world-writable with the sticky bit, as `/dev/shm` is). Version 3 wants the size in bytes.
fn swarm_shm(resources: &Resources) -> Option<Node> {
    let bytes = resources.shm_size.as_deref().and_then(dpe_plugin::config::resource_rules::parse_size)?;
    Some(Node::Map(vec![
        ("type".into(), Node::str("tmpfs")),
        ("target".into(), Node::str("/dev/shm")),
        ("tmpfs".into(), Node::Map(vec![("size".into(), Node::Int(i64::try_from(bytes).unwrap_or(i64::MAX)))])),
    ]))
}

fn labels(labels: &BTreeMap<String, String>) -> Node {
    Node::Map(labels.iter().map(|(k, v)| (k.clone(), Node::str(escape(v)))).collect())
}

/// Compose (v1, v2 and `docker stack deploy`) substitutes `$VAR` in every value of the file;
/// dpe's values are literal, so each `$` is doubled.
pub fn escape(value: &str) -> String {
    value.replace('$', "$$")
}

/// The service keys of the given projects' fragments.
pub fn service_keys<'a>(fragments: &'a [Fragment], projects: &BTreeSet<String>) -> Vec<&'a str> {
    fragments
        .iter()
        .filter(|f| projects.contains(&f.project))
        .flat_map(|f| f.services.iter().map(|s| s.key.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn jupyter(project: &str, host: u16) -> ServiceDef {
        ServiceDef {
            key: project.into(),
            image: Some(format!("dpe/{project}:abc")),
            ports: vec![Published { bind: "127.0.0.1".into(), host, container: 8888 }],
            labels: BTreeMap::from([("dpe.project".into(), project.into())]),
            ..ServiceDef::default()
        }
    }

    fn service(project: &str, short: &str, host: Option<u16>) -> ServiceDef {
        ServiceDef {
            key: format!("{project}-{short}"),
            short: Some(short.into()),
            image: Some("postgres:16".into()),
            ports: host
                .map(|h| vec![Published { bind: "127.0.0.1".into(), host: h, container: 5432 }])
                .unwrap_or_default(),
            ..ServiceDef::default()
        }
    }

    fn fragment(project: &str, services: Vec<ServiceDef>) -> Fragment {
        Fragment { project: project.into(), services, volumes: vec![], url: None, ready_url: None, ready_timeout: 60 }
    }

    #[test]
    fn distinct_names_and_ports_pass() {
        let a = fragment("a", vec![jupyter("a", 8888), service("a", "db", Some(5432))]);
        let c = fragment("c", vec![jupyter("c", 8889), service("c", "cache", None)]);
        validate(&[a, c]).unwrap();
    }

    #[test]
    fn the_same_short_name_in_two_projects_is_a_clash() {
        let a = fragment("a", vec![jupyter("a", 8888), service("a", "db", None)]);
        let c = fragment("c", vec![jupyter("c", 8889), service("c", "db", None)]);
        let err = validate(&[a, c]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "error: service name clash: `db` would name both service `db` of project `a` and service `db` of project `c` on the workspace network\n\
             help: rename one of them in its project's dpe.toml (e.g. `[services.c_db]`), or start them separately"
        );
    }

    #[test]
    fn a_service_named_like_another_project_is_a_clash() {
        let a = fragment("a", vec![jupyter("a", 8888), service("a", "db", None)]);
        let db = fragment("db", vec![jupyter("db", 8889)]);
        let err = validate(&[a, db]).unwrap_err();
        assert!(err.to_string().contains("`db` would name both service `db` of project `a` and project `db`"), "{err}");
        let dashed = fragment("a-db", vec![jupyter("a-db", 8890)]);
        let a = fragment("a", vec![jupyter("a", 8888), service("a", "db", None)]);
        assert!(validate(&[a, dashed]).unwrap_err().to_string().contains("`a-db`"));
    }

    #[test]
    fn a_host_port_published_twice_is_a_clash() {
        let a = fragment("a", vec![jupyter("a", 8888)]);
        let c = fragment("c", vec![jupyter("c", 8888)]);
        let err = validate(&[a, c]).unwrap_err();
        assert!(err.to_string().starts_with(
            "error: port clash: host port 8888 is published by both project `a` (container port 8888) and project `c` (container port 8888)\n"
        ));
    }

    #[test]
    fn compose_document() {
        let mut a = fragment("a", vec![jupyter("a", 8888), service("a", "db", Some(5432))]);
        a.services[0].depends_on = vec![("a-db".into(), true)];
        a.services[0].env_file = vec!["/s/a.env".into()];
        a.services[0].volumes = vec![
            Mount { source: "dpe-a-home".into(), named: true, target: "/home/u/.local".into(), read_only: false },
            Mount { source: "/w/projects/a".into(), named: false, target: "/work".into(), read_only: false },
        ];
        a.services[1].environment = BTreeMap::from([("POSTGRES_PASSWORD".into(), "pa$$".into())]);
        a.services[1].healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "pg_isready".into()],
            interval: Some("2s".into()),
            retries: Some(5),
            ..Healthcheck::default()
        });
        a.volumes = vec![VolumeDef {
            key: "dpe-a-home".into(),
            name: "dpe-a-home".into(),
            labels: BTreeMap::from([("dpe.plugin".into(), "jupyter".into())]),
            external: false,
        }];
        let net = BTreeMap::from([("dpe.plugin".into(), "compose".into())]);
        let text = yaml::to_string(&render(&[a], &net, Target::Compose), &[]);
        assert_eq!(
            text,
            r#"services:
  a:
    image: "dpe/a:abc"
    env_file:
      - "/s/a.env"
    volumes:
      - "dpe-a-home:/home/u/.local"
      - type: "bind"
        source: "/w/projects/a"
        target: "/work"
    ports:
      - "127.0.0.1:8888:8888"
    depends_on:
      a-db:
        condition: "service_healthy"
    labels:
      dpe.project: "a"
  a-db:
    image: "postgres:16"
    environment:
      POSTGRES_PASSWORD: "pa$$$$"
    ports:
      - "127.0.0.1:5432:5432"
    networks:
      default:
        aliases:
          - "db"
    healthcheck:
      test:
        - "CMD"
        - "pg_isready"
      interval: "2s"
      retries: 5
    labels: {}
networks:
  default:
    labels:
      dpe.plugin: "compose"
volumes:
  dpe-a-home:
    name: "dpe-a-home"
    labels:
      dpe.plugin: "jupyter"
"#
        );
    }

    #[test]
    fn gpu_becomes_a_device_reservation() {
        let mut a = fragment("a", vec![jupyter("a", 8888)]);
        a.services[0].gpu = Some(serde_json::json!({"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}));
        let text = yaml::to_string(&render(&[a], &BTreeMap::new(), Target::Compose), &[]);
        assert!(
            text.contains(
                "    deploy:\n      resources:\n        reservations:\n          devices:\n            - capabilities:\n                - \"gpu\"\n              count: \"all\"\n              driver: \"nvidia\"\n"
            ),
            "{text}"
        );
    }

    fn with_resources() -> Fragment {
        let mut a = fragment("a", vec![jupyter("a", 8888), service("a", "db", None)]);
        a.services[0].resources =
            Resources { shm_size: Some("1g".into()), memory: Some("256m".into()), cpus: Some(1.5) };
        a.services[0].gpu = Some(serde_json::json!({"driver": "nvidia", "count": "all"}));
        a.services[1].resources = Resources { shm_size: None, memory: Some("2g".into()), cpus: Some(2.0) };
        a
    }

    #[test]
    fn compose_up_gets_shm_size_mem_limit_and_cpus() {
        let text = yaml::to_string(&render(&[with_resources()], &BTreeMap::new(), Target::Compose), &[]);
        assert!(
            text.contains(
                "    shm_size: \"1g\"\n    mem_limit: \"256m\"\n    cpus: \"1.5\"\n    labels:\n      dpe.project: \"a\"\n    deploy:\n      resources:\n        reservations:\n"
            ),
            "{text}"
        );
        assert!(text.contains("    mem_limit: \"2g\"\n    cpus: \"2\"\n    labels: {}\n"), "{text}");
        assert!(!text.contains("limits") && !text.contains("tmpfs"), "{text}");
        // A service without settings gets none: the engine's defaults.
        let plain = yaml::to_string(
            &render(&[fragment("b", vec![jupyter("b", 8889)])], &BTreeMap::new(), Target::Compose),
            &[],
        );
        assert!(!plain.contains("shm_size") && !plain.contains("mem_limit") && !plain.contains("cpus"), "{plain}");
    }

    #[test]
    fn deploy_gets_resource_limits_and_a_tmpfs_for_shm() {
        let text = yaml::to_string(&render(&[with_resources()], &BTreeMap::new(), Target::Swarm), &[]);
        assert!(
            text.contains(
                "    volumes:\n      - type: \"tmpfs\"\n        target: \"/dev/shm\"\n        tmpfs:\n          size: 1073741824\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "    deploy:\n      resources:\n        limits:\n          cpus: \"1.5\"\n          memory: \"256m\"\n        reservations:\n          devices:\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("        limits:\n          cpus: \"2\"\n          memory: \"2g\"\n      endpoint_mode"),
            "{text}"
        );
        assert!(!text.contains("shm_size") && !text.contains("mem_limit"), "{text}");
    }

    #[test]
    fn swarm_document_publishes_in_host_mode_without_builds_or_start_order() {
        let mut a = fragment("a", vec![jupyter("a", 8888), service("a", "web", None)]);
        a.services[0].depends_on = vec![("a-web".into(), false)];
        a.services[1].build = Some("/w/projects/a/web".into());
        let text = yaml::to_string(&render(&[a], &BTreeMap::new(), Target::Swarm), &[]);
        assert!(text.starts_with("version: \"3.8\"\n"), "{text}");
        assert!(text.contains("    ports:\n      - target: 8888\n        published: 8888\n        protocol: \"tcp\"\n        mode: \"host\"\n"), "{text}");
        assert!(!text.contains("build") && !text.contains("depends_on"), "{text}");
        assert!(
            text.contains("    deploy:\n      endpoint_mode: \"dnsrr\"\n      labels:\n        dpe.project: \"a\"\n"),
            "{text}"
        );
    }

    /// A host folder whose path holds `:` or `,` (a clone named `lab:2024,x`) is mounted with
    /// the long syntax, which names its fields instead of splitting at colons.
    #[test]
    fn bind_mounts_use_the_long_syntax() {
        let mut a = fragment("a", vec![jupyter("a", 8888)]);
        a.services[0].volumes = vec![
            Mount { source: "/w/lab:2024,x/projects/a".into(), named: false, target: "/work".into(), read_only: false },
            Mount { source: "/etc/ca$.pem".into(), named: false, target: "/ca.pem".into(), read_only: true },
        ];
        let text = yaml::to_string(&render(&[a], &BTreeMap::new(), Target::Compose), &[]);
        assert!(
            text.contains(
                "    volumes:\n      - type: \"bind\"\n        source: \"/w/lab:2024,x/projects/a\"\n        target: \"/work\"\n      - type: \"bind\"\n        source: \"/etc/ca$$.pem\"\n        target: \"/ca.pem\"\n        read_only: true\n"
            ),
            "{text}"
        );
    }
}

//! `--to dockerfile DIR`: a standalone, readable Dockerfile and the lock it installs, which
//! rebuild the project's live environment with plain `docker build`, no dpe needed.
//!
//! The Dockerfile follows the same steps as dpe's own image (CA certificates first, then env,
//! apt packages, then Python) so it reads like what the user configured, but pins what dpe
//! leaves open: the base image by registry digest (or by image ID when it has none), the apt
//! packages by the versions installed, and every Python package by the live `pip freeze`,
//! including what was installed by hand into the environment's volume. Packages installed from
//! local files or folders are copied next to the Dockerfile and put back at the same path, so
//! the lock stays exactly what `pip freeze` printed.

use crate::docker::{self, Spec};
use crate::error::{Error, Result};
use crate::lock::Locked;
use crate::probe::Probe;
// The same quoting, checks and CA handling as the images dpe jupyter builds, so both read alike.
use dpe_plugin::dockerfile::{self as shared, ca_bundle_env, env_instruction, shell_quote};
use dpe_plugin::{Config, Context};
use std::fs;
use std::path::{Path, PathBuf};

/// Where a rebuilt environment's files go in the output folder.
pub const LOCK_FILE: &str = "requirements.lock";
const LOCAL_DIR: &str = "local";
const CA_DIR: &str = "ca-certificates";
const CA_SCRIPT: &str = "dpe-ca-bundle.sh";

/// The pinned `FROM` line and the comment explaining it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    pub from: String,
    pub comment: String,
}

/// Pins `image`: by a registry digest of the same repository when the engine knows one, else by
/// image ID with a comment saying why.
pub fn pin_base(image: &str, repo_digests: &[String], id: &str) -> BaseImage {
    let repository = repository_of(image);
    let digest =
        repo_digests.iter().find(|d| d.split('@').next() == Some(repository.as_str())).or_else(|| repo_digests.first());
    match digest {
        Some(digest) => BaseImage {
            from: digest.clone(),
            comment: format!("# Base image `{image}`, pinned by its registry digest."),
        },
        None => BaseImage {
            from: id.to_string(),
            comment: format!(
                "# Base image `{image}`, pinned by image ID: it has no registry digest (it was built or\n\
                 # imported locally), so it cannot be pulled by digest. This resolves only where that exact\n\
                 # image exists: `docker save {image}` here, `docker load` there (or `dpe export --to archive`)."
            ),
        },
    }
}

/// `quay.io/jupyter/scipy-notebook:latest` → `quay.io/jupyter/scipy-notebook`.
fn repository_of(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => without_digest.to_string(),
    }
}

/// A file or folder a lock line installs from, to copy into the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSource {
    /// The path inside the environment (`/work/dist/x.whl`).
    pub inside: String,
    /// Where it is on the host, when it lives in the project folder.
    pub host: Option<PathBuf>,
}

/// The local sources the lock refers to (`name @ file:///…` and editable installs).
pub fn local_sources(lock: &[Locked], spec: &Spec) -> Vec<LocalSource> {
    let mut out = Vec::new();
    for locked in lock {
        let Some(url) = &locked.url else { continue };
        let path = url.strip_prefix("file://").unwrap_or(url);
        if !path.starts_with('/') {
            continue;
        }
        let target = spec.mount.target.trim_end_matches('/');
        let host = path
            .strip_prefix(target)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .map(|rest| Path::new(&spec.mount.source).join(rest.trim_start_matches('/')));
        out.push(LocalSource { inside: path.to_string(), host });
    }
    out
}

/// Everything the Dockerfile says.
pub struct Inputs<'a> {
    pub project: &'a str,
    pub config: &'a Config,
    pub spec: &'a Spec,
    pub probe: &'a Probe,
    pub base: BaseImage,
    /// Whether the base is a Jupyter Docker Stacks image (it brings its own start command).
    pub stacks: bool,
    /// Names of the CA certificate files written to `ca-certificates/`.
    pub certificates: Vec<String>,
    pub has_local: bool,
    pub generated_by: String,
}

/// The Dockerfile text.
pub fn render(inputs: &Inputs) -> String {
    let Inputs { project, config, spec, probe, base, .. } = inputs;
    let mut text = format!(
        "# The environment of dpe project `{project}`, exported by {} from the live environment.\n\
         # It rebuilds without dpe:\n\
         #   docker build -t {project}-env .\n\
         #   docker run --rm -p 127.0.0.1:8888:8888 -v \"/path/to/{project}:{}\" {project}-env\n\
         # Behind a proxy, pass it to the build: --build-arg HTTP_PROXY --build-arg HTTPS_PROXY --build-arg NO_PROXY\n\
         # (docker forwards these standard names without caching them in the image).\n\n",
        inputs.generated_by, spec.workdir
    );
    text.push_str(&base.comment);
    text.push_str(&format!("\nFROM {}\nUSER root\n", base.from));
    if config.dockerfile.is_some() {
        text.push_str(
            "# The project builds from its own Dockerfile; the base above is that image as built\n\
             # here, so its apt packages and settings are already in it.\n",
        );
    }

    if !inputs.certificates.is_empty() {
        text.push_str("\n# Extra CA certificates (a TLS-intercepting proxy), trusted before any download.\n");
        text.push_str(&format!("COPY {CA_DIR}/ /usr/local/share/ca-certificates/dpe/\n"));
        text.push_str(&format!("COPY {CA_SCRIPT} /usr/local/bin/dpe-ca-bundle\nRUN sh /usr/local/bin/dpe-ca-bundle\n"));
        text.push_str(&ca_bundle_env());
    }

    if config.dockerfile.is_none() {
        if !config.env.is_empty() {
            text.push_str("\n# The project's environment variables.\n");
            for (key, value) in &config.env {
                text.push_str(&env_instruction(key, value));
            }
        }
        let mut apt: Vec<String> = config
            .apt_packages
            .iter()
            .map(|p| match probe.apt.get(p) {
                Some(version) => format!("{p}={version}"),
                None => p.clone(),
            })
            .collect();
        apt.sort();
        apt.dedup();
        if !apt.is_empty() {
            text.push_str(
                "\n# apt packages at the versions installed in the live environment. If the mirror has\n\
                 # moved on, drop the `=VERSION` pins to take its current ones.\n",
            );
            text.push_str("RUN apt-get update \\\n && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n");
            for package in &apt {
                text.push_str(&format!("      {} \\\n", shell_quote(package)));
            }
            text.push_str(" && rm -rf /var/lib/apt/lists/*\n");
        }
    }

    text.push_str(&format!(
        "\n# Python {} packages, exactly as `pip freeze` listed them (see {LOCK_FILE}).\n",
        probe.python
    ));
    let pip = if probe.is_venv() {
        text.push_str(&format!(
            "# Like dpe, a virtual environment over the system packages holds what pip installs.\n\
             RUN python3 -m venv --system-site-packages --without-pip {prefix}\n\
             ENV VIRTUAL_ENV={prefix} PATH={prefix}/bin:$PATH\n",
            prefix = probe.prefix
        ));
        "python3 -m pip install"
    } else {
        "PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install"
    };
    if inputs.has_local {
        text.push_str(&format!(
            "# Packages installed from local files, put back at the paths the lock names.\nCOPY {LOCAL_DIR}/ /\n"
        ));
    }
    text.push_str(&format!("COPY {LOCK_FILE} /tmp/dpe/{LOCK_FILE}\n"));
    text.push_str(&format!(
        "RUN PIP_DISABLE_PIP_VERSION_CHECK=1 {pip} --no-cache-dir --no-deps -r /tmp/dpe/{LOCK_FILE}\n"
    ));

    text.push_str(&format!("\nWORKDIR {}\nEXPOSE {}\n", spec.workdir, config.jupyter.port));
    if !inputs.stacks {
        let names: Vec<String> = probe.dists.iter().map(|d| crate::lock::normalize(&d.name)).collect();
        let module = if names.iter().any(|n| n == "jupyterlab") {
            Some(("jupyterlab", "ServerApp.root_dir"))
        } else if names.iter().any(|n| n == "notebook") {
            Some(("notebook", "NotebookApp.notebook_dir"))
        } else {
            None
        };
        if let Some((module, _)) = module {
            text.push_str(&format!(
                "CMD [\"python3\", \"-m\", \"{module}\", \"--ip=0.0.0.0\", \"--port={}\", \"--no-browser\", \"--allow-root\"]\n",
                config.jupyter.port
            ));
        }
    }
    text
}

/// Writes the Dockerfile, lock, certificates and local packages into `dir`, replacing an
/// earlier export there; a folder holding anything else is refused. The files are written to
/// a sibling folder first and moved in place at the end, so `dir` is never half-written.
pub fn write(
    context: &Context,
    dir: &Path,
    inputs: &mut Inputs,
    lock_text: &str,
    lock: &[Locked],
) -> Result<Vec<String>> {
    // Nothing is written for a configuration whose values a Dockerfile cannot carry safely.
    shared::check_values(inputs.config).map_err(|refusal| Error::new(refusal.message).with_help(refusal.help))?;
    // The CA files copied below are read from the project: judged where they lead first.
    dpe_plugin::reach::check(context).map_err(|refusal| Error::new(refusal.message).with_help(refusal.help))?;
    if dir.exists() && !is_replaceable(dir) {
        return Err(Error::new(format!("`{}` exists and is not an earlier dockerfile export", dir.display()))
            .with_help("name an empty or new folder: `dpe export PROJECT --to dockerfile DIR`"));
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating `{}` failed", parent.display()), e))?;
    let staging = tempfile::Builder::new()
        .prefix(".dpe-export-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(format!("creating a folder in `{}` failed", parent.display()), e))?;
    let root = staging.path();
    let mut warnings = Vec::new();

    let certificates = shared::collect_certificates(
        &inputs.config.ca_certificates,
        std::env::var(shared::CA_ENV).ok().filter(|v| !v.is_empty()).as_deref(),
    )
    .map_err(|refusal| Error::new(refusal.message).with_help(refusal.help))?;
    if !certificates.is_empty() {
        fs::create_dir_all(root.join(CA_DIR))
            .map_err(|e| Error::io(format!("creating `{}` failed", root.join(CA_DIR).display()), e))?;
        for certificate in certificates {
            write_file(&root.join(CA_DIR).join(&certificate.name), &certificate.bytes)?;
            inputs.certificates.push(certificate.name);
        }
        write_file(&root.join(CA_SCRIPT), shared::CA_BUNDLE_SCRIPT.as_bytes())?;
    }

    for source in local_sources(lock, inputs.spec) {
        let dest = root.join(LOCAL_DIR).join(source.inside.trim_start_matches('/'));
        let copied = match &source.host {
            Some(host) if host.exists() => copy_tree(host, &dest),
            _ => copy_from_environment(context, inputs.spec, &source.inside, &dest),
        };
        match copied {
            Ok(()) => inputs.has_local = true,
            Err(reason) => warnings.push(format!(
                "`{}` is installed from `{}`, which could not be copied ({reason}); `docker build` needs it there",
                source.inside.rsplit('/').next().unwrap_or(&source.inside),
                source.inside
            )),
        }
    }

    write_file(&root.join(LOCK_FILE), lock_text.as_bytes())?;
    write_file(&root.join("Dockerfile"), render(inputs).as_bytes())?;

    let staged = staging.keep();
    let old = parent.join(format!(".dpe-export-old-{}", std::process::id()));
    if dir.exists() {
        fs::rename(dir, &old).map_err(|e| Error::io(format!("moving aside `{}` failed", dir.display()), e))?;
    }
    if let Err(e) = fs::rename(&staged, dir) {
        let _ = fs::rename(&old, dir);
        let _ = fs::remove_dir_all(&staged);
        return Err(Error::io(format!("writing `{}` failed", dir.display()), e));
    }
    let _ = fs::remove_dir_all(&old);
    Ok(warnings)
}

/// An empty folder or one an earlier export wrote (it holds our Dockerfile and lock).
fn is_replaceable(dir: &Path) -> bool {
    let Ok(mut entries) = fs::read_dir(dir) else { return false };
    if entries.next().is_none() {
        return true;
    }
    let dockerfile = fs::read_to_string(dir.join("Dockerfile")).unwrap_or_default();
    dir.join(LOCK_FILE).is_file() && dockerfile.starts_with("# The environment of dpe project")
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating `{}` failed", parent.display()), e))?;
    }
    fs::write(path, bytes).map_err(|e| Error::io(format!("writing `{}` failed", path.display()), e))
}

fn copy_tree(from: &Path, to: &Path) -> std::result::Result<(), String> {
    let meta = fs::symlink_metadata(from).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        fs::create_dir_all(to).map_err(|e| e.to_string())?;
        for entry in fs::read_dir(from).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if meta.is_file() {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        fs::copy(from, to).map(|_| ()).map_err(|e| e.to_string())
    } else {
        Ok(())
    }
}

/// Copies one file out of the environment (a throwaway container with its volume).
fn copy_from_environment(context: &Context, spec: &Spec, inside: &str, dest: &Path) -> std::result::Result<(), String> {
    let volumes = docker::Volumes::of(context, spec).map_err(|f| f.message)?;
    let mut args = docker::throwaway_args(spec, volumes);
    args.extend(["--entrypoint".into(), "cat".into(), spec.image.clone(), inside.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = docker::checked(context, &args, &format!("reading `{inside}`")).map_err(|f| f.message)?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    fs::write(dest, &output.stdout).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Dist;

    fn spec() -> Spec {
        serde_json::from_value(serde_json::json!({
            "project": "p", "workspace": "/ws", "image": "dpe-jupyter:abc", "container": "dpe-p-1",
            "volume": "dpe-p-1-env", "volume_target": "/dpe", "workdir": "/work",
            "mount": {"source": "/ws/projects/p", "target": "/work"}, "user": "1000:1000",
            "env": {}, "env_file": "", "command": ["dpe-start"], "bind": "127.0.0.1",
            "port": {"container": 8888, "host": 8888}, "base_url": "/p/", "url": "", "ready_url": ""
        }))
        .unwrap()
    }

    fn probe() -> Probe {
        Probe {
            python: "3.11.2".into(),
            executable: "/dpe/venv/bin/python3".into(),
            prefix: "/dpe/venv".into(),
            base_prefix: "/usr".into(),
            dists: vec![Dist {
                name: "notebook".into(),
                version: "6.4.12".into(),
                location: "/usr/lib/python3/dist-packages".into(),
                requires: vec![],
            }],
            apt: [("python3-pandas".to_string(), "1.5.3+dfsg-2".to_string())].into(),
            freeze: String::new(),
            freeze_error: String::new(),
        }
    }

    #[test]
    fn base_is_pinned_by_digest_or_by_id_with_a_reason() {
        let pinned = pin_base(
            "quay.io/jupyter/scipy-notebook:latest",
            &["quay.io/jupyter/scipy-notebook@sha256:1111".into()],
            "sha256:2222",
        );
        assert_eq!(pinned.from, "quay.io/jupyter/scipy-notebook@sha256:1111");
        let local = pin_base("dpe-test/bookworm:latest", &[], "sha256:2222");
        assert_eq!(local.from, "sha256:2222");
        assert!(local.comment.contains("cannot be pulled by digest"), "{}", local.comment);
        assert_eq!(repository_of("localhost:5000/x/y:1"), "localhost:5000/x/y");
        assert_eq!(repository_of("localhost:5000/x/y"), "localhost:5000/x/y");
    }

    #[test]
    fn local_sources_map_the_project_folder_to_the_host() {
        let lock = crate::lock::parse_freeze(
            "a==1\nb @ file:///work/dist/b-1-py3-none-any.whl\nc @ file:///tmp/c.whl\nd @ git+https://x/d\n",
        );
        let sources = local_sources(&lock, &spec());
        assert_eq!(
            sources,
            [
                LocalSource {
                    inside: "/work/dist/b-1-py3-none-any.whl".into(),
                    host: Some("/ws/projects/p/dist/b-1-py3-none-any.whl".into())
                },
                LocalSource { inside: "/tmp/c.whl".into(), host: None },
            ]
        );
    }

    /// The inputs of a project on the offline test image, pinned by ID.
    fn inputs<'a>(config: &'a Config, spec: &'a Spec, probe: &'a Probe, has_local: bool) -> Inputs<'a> {
        Inputs {
            project: "p",
            config,
            spec,
            probe,
            base: pin_base("dpe-test/bookworm:latest", &[], "sha256:2222"),
            stacks: false,
            certificates: vec![],
            has_local,
            generated_by: "dpe export 0.1.0".into(),
        }
    }

    #[test]
    fn a_value_no_dockerfile_can_carry_is_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let context: Context = serde_json::from_value(serde_json::json!({
            "protocol": dpe_plugin::PROTOCOL_VERSION, "dpe_version": "0.1.0", "dpe_bin": "/bin/false",
            "plugin": "export", "workspace": null, "project": null, "config": {}, "config_files": [],
            "state_dir": "/s", "data_dir": "/d", "config_dir": "/c", "cache_dir": "/k",
            "verbosity": 0, "color": "never", "json": false, "no_hooks": false
        }))
        .unwrap();
        let hostile: [(&str, Config); 2] = [
            (
                "the configuration cannot go into a Dockerfile: `A=1\\nRUN touch /x\\nENV B` is not a valid environment variable name",
                Config { env: [("A=1\nRUN touch /x\nENV B".to_string(), "1".to_string())].into(), ..Config::default() },
            ),
            (
                "the configuration cannot go into a Dockerfile: `-oAPT::Get::Foo=1` in `apt_packages` starts with `-`, so it would be read as an option",
                Config { apt_packages: vec!["-oAPT::Get::Foo=1".into()], ..Config::default() },
            ),
        ];
        for (message, config) in hostile {
            let (spec, probe) = (spec(), probe());
            let mut inputs = inputs(&config, &spec, &probe, false);
            let out = tmp.path().join("out");
            let err = write(&context, &out, &mut inputs, "", &[]).unwrap_err();
            assert_eq!(err.message, message);
            assert!(err.help.is_some(), "{err}");
            assert!(!out.exists() && std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "nothing written");
        }
    }

    #[test]
    fn dockerfile_pins_everything_in_dpe_order() {
        let config = Config {
            image: Some("dpe-test/bookworm:latest".into()),
            apt_packages: vec!["python3-pandas".into(), "python3-notebook".into()],
            env: [("MODE".to_string(), "fast $x".to_string())].into(),
            ..Config::default()
        };
        let (spec, probe) = (spec(), probe());
        let inputs = inputs(&config, &spec, &probe, true);
        let text = render(&inputs);
        assert!(text.contains("\nFROM sha256:2222\nUSER root\n"), "{text}");
        assert!(text.contains("ENV MODE=\"fast \\$x\"\n"), "{text}");
        assert!(text.contains("      python3-notebook \\\n      python3-pandas=1.5.3+dfsg-2 \\\n"), "{text}");
        assert!(text.contains("RUN python3 -m venv --system-site-packages --without-pip /dpe/venv\n"), "{text}");
        assert!(text.contains("COPY local/ /\n"), "{text}");
        assert!(text.contains("--no-deps -r /tmp/dpe/requirements.lock\n"), "{text}");
        assert!(text.contains("CMD [\"python3\", \"-m\", \"notebook\""), "{text}");
        let order =
            ["FROM", "ENV MODE", "apt-get", "-m venv", "-r /tmp/dpe/requirements.lock"].map(|s| text.find(s).unwrap());
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
}

//! `--to image`: the project's environment image with the content of its persisted volume
//! baked in, labelled with the project's dpe.toml.
//!
//! `docker commit` does not capture named volumes, and a committed container would also keep
//! the labels dpe puts on containers. So the volume is read out as a tar by a throwaway
//! container and the image is built `FROM` the environment image with `ADD volume.tar
//! TARGET/`: `ADD` unpacks a local tar keeping owners and modes, and an empty named volume
//! mounted at TARGET is filled by the engine from the image on first use, so the packages
//! installed by hand come back wherever the image runs.

use crate::docker::{self, Spec};
use crate::error::{Error, Result};
use dpe_plugin::contract::mount_value;
use dpe_plugin::Context;
use std::fs;
use std::io::{self, Seek, Write};
use std::path::Path;
use std::process::Stdio;

/// Label holding the project's dpe.toml (its text; empty when the project has none).
pub const LABEL_CONFIG: &str = "dpe.toml";
/// Label naming the exported project.
pub const LABEL_PROJECT: &str = "dpe.export.project";
/// Label naming where the volume content lives in the image.
pub const LABEL_VOLUME_TARGET: &str = "dpe.export.volume-target";

/// Paths inside the volume that are never exported: caches, and Jupyter's runtime files, which
/// hold the running server's token.
/// `./python` is an untrusted project's private uv and package cache (`dpe-sync`): the synced
/// environment in `./venv` is what the archive carries, the cache is only downloads.
const VOLUME_EXCLUDES: &[&str] = &["./home/.cache", "./home/.local/share/jupyter/runtime", "./python"];

/// The built image.
#[derive(Debug, Clone)]
pub struct Built {
    pub tag: String,
    pub id: String,
    /// `uid:gid` owning the volume's root, when a volume was baked in.
    pub owner: Option<String>,
}

/// The tag the environment image (without the volume's content) travels under in an archive.
pub fn environment_tag(tag: &str) -> String {
    let (repository, version) = match tag.rsplit_once(':') {
        Some((repository, version)) if !version.contains('/') => (repository, version),
        _ => (tag, "latest"),
    };
    format!("{repository}:{version}-environment")
}

/// The default tag of an exported image.
pub fn default_tag(project: &str) -> String {
    format!("dpe-export/{project}:latest")
}

/// Checks that `tag` is one an archive of `project` may carry, `dpe-export/PROJECT:VERSION`:
/// an import sets this tag and its `…-environment` twin and nothing else, so an archive cannot
/// re-point a tag that belongs to something else.
pub fn check_archive_tag(project: &str, tag: &str) -> Result<(), String> {
    let version = tag.strip_prefix(&format!("dpe-export/{project}:")).unwrap_or("");
    // Docker's tag grammar, leaving room for `-environment` within its 128 characters.
    let version_ok = version.len() <= 100
        && version.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if version_ok && dpe_plugin::names::is_valid(project) {
        return Ok(());
    }
    Err(format!(
        "names the image `{}`, but an archive of project `{}` carries `dpe-export/PROJECT:VERSION` only",
        crate::names::shown(tag.as_bytes()),
        crate::names::shown(project.as_bytes())
    ))
}

/// Builds `tag` from the environment image plus the volume's content (when the volume exists).
pub fn build(context: &Context, spec: &Spec, config_text: &str, tag: &str) -> Result<Built> {
    let volumes = docker::Volumes::of(context, spec)?;
    let volume_exists = volumes.project;
    let spool_dir = context.cache_dir.join("export");
    fs::create_dir_all(&spool_dir).map_err(|e| Error::io(format!("creating `{}` failed", spool_dir.display()), e))?;
    let mut volume_tar = tempfile::tempfile_in(&spool_dir)
        .map_err(|e| Error::io(format!("creating a temporary file in `{}` failed", spool_dir.display()), e))?;
    let mut owner = None;
    if volume_exists {
        eprintln!("dpe: reading the environment volume `{}`", spec.volume);
        read_volume(context, spec, volumes, &mut volume_tar)?;
        volume_tar.rewind().map_err(|e| Error::new(format!("reading the volume copy failed: {e}")))?;
        owner = root_owner(&mut volume_tar);
        volume_tar.rewind().map_err(|e| Error::new(format!("reading the volume copy failed: {e}")))?;
    }

    let mut dockerfile = format!(
        "# The environment of dpe project `{}` with its persisted volume baked in (dpe export).\nFROM {}\n",
        spec.project, spec.image
    );
    if volume_exists {
        dockerfile.push_str(&format!("ADD volume.tar {}/\n", spec.volume_target.trim_end_matches('/')));
    }
    eprintln!("dpe: building `{tag}`");
    let labels = [
        format!("{LABEL_CONFIG}={config_text}"),
        format!("{LABEL_PROJECT}={}", spec.project),
        format!("{LABEL_VOLUME_TARGET}={}", spec.volume_target),
    ];
    let mut args: Vec<&str> = vec!["build", "--quiet", "--tag", tag];
    for label in &labels {
        args.extend(["--label", label.as_str()]);
    }
    args.push("-");
    let mut child = dpe_plugin::client::docker_command(context, &args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("running `dpe docker build` failed: {e}")))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let volume = volume_exists.then_some(&mut volume_tar);
    let sent = send_context(stdin, &dockerfile, volume);
    let output = child.wait_with_output().map_err(|e| Error::new(format!("waiting for `docker build` failed: {e}")))?;
    if !output.status.success() {
        return Err(docker::failed(&format!("building `{tag}`"), &output));
    }
    sent.map_err(|e| Error::new(format!("sending the build context to `docker build` failed: {e}")))?;
    let id = docker::text(context, &["image", "inspect", "--format", "{{.Id}}", tag], &format!("inspecting `{tag}`"))?;
    Ok(Built { tag: tag.to_string(), id, owner })
}

/// Streams the volume as a tar into `out`, through a throwaway root container that mounts it
/// read-only (root, to read every file whatever its owner). A Python environment living in the
/// package store (its folder linked from `./venv`) is read from there and stored as `./venv`
/// itself, so the archive is whole without the store and an import gets the environment.
fn read_volume(context: &Context, spec: &Spec, volumes: docker::Volumes, out: &mut fs::File) -> Result<()> {
    let mut args: Vec<String> = ["run", "--rm", "--network", "none", "--user", "0:0"].map(String::from).into();
    args.extend(["--mount".into(), mount_value("volume", &spec.volume, "/.dpe-volume", true)]);
    let mut script = String::from("cd /.dpe-volume && ");
    let mut script_args: Vec<String> = VOLUME_EXCLUDES.iter().map(|p| format!("--exclude={p}")).collect();
    match (volumes.store, spec.venv_in_store(), &spec.store_target) {
        (true, Some((store, folder)), Some(target)) => {
            args.extend(["--mount".into(), mount_value("volume", store, target, true)]);
            let (parent, name) = folder.rsplit_once('/').unwrap_or(("/", folder));
            // `$1` the store's folder of environments, `$2` this one's name, then the excludes.
            // GNU tar's --transform renames that folder's entries (and hardlinks among them)
            // to `./venv`; the volume's own entries all start with `./`, so none match.
            script.push_str(
                "store=$1 name=$2; shift 2; if [ -L venv ] && [ -d \"$store/$name\" ]; then \
                 exec tar -cf - \"$@\" --exclude=./venv . -C \"$store\" --transform=\"s,^$name,./venv,\" \"$name\"; fi; \
                 exec tar -cf - \"$@\" .",
            );
            script_args.splice(0..0, [parent.to_string(), name.to_string()]);
        }
        _ => script.push_str("exec tar -cf - \"$@\" ."),
    }
    args.extend(["--entrypoint".into(), "sh".into(), spec.image.clone(), "-c".into(), script, "sh".into()]);
    args.extend(script_args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = dpe_plugin::client::docker_command(context, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("running `dpe docker run` failed: {e}")))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let copied = io::copy(&mut stdout, out);
    let output = child.wait_with_output().map_err(|e| Error::new(format!("waiting for `docker run` failed: {e}")))?;
    if !output.status.success() {
        return Err(docker::failed(&format!("reading the volume `{}`", spec.volume), &output)
            .with_help("the environment image needs `tar`; check the project's image"));
    }
    copied.map_err(|e| Error::new(format!("copying the volume `{}` failed: {e}", spec.volume)))?;
    Ok(())
}

/// `uid:gid` of the first entry (`./`, the volume's root) of a tar.
fn root_owner(file: &mut fs::File) -> Option<String> {
    let mut archive = tar::Archive::new(file);
    let entry = archive.entries().ok()?.next()?.ok()?;
    let header = entry.header();
    Some(format!("{}:{}", header.uid().ok()?, header.gid().ok()?))
}

/// Writes the build context (a tar with the Dockerfile and, maybe, the volume's tar).
fn send_context(out: impl Write, dockerfile: &str, volume: Option<&mut fs::File>) -> io::Result<()> {
    let mut tar = tar::Builder::new(io::BufWriter::new(out));
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    if let Some(file) = volume {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.metadata()?.len());
        header.set_mode(0o644);
        tar.append_data(&mut header, "volume.tar", file)?;
    }
    tar.into_inner()?.flush()
}

/// The project's dpe.toml text, or empty when it has none.
pub fn config_text(project_dir: &Path) -> Result<String> {
    let path = project_dir.join("dpe.toml");
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io(format!("reading `{}` failed", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn environment_tags_follow_the_export_tag() {
        assert_eq!(environment_tag("dpe-export/a:latest"), "dpe-export/a:latest-environment");
        assert_eq!(environment_tag("localhost:5000/team/env"), "localhost:5000/team/env:latest-environment");
    }

    #[test]
    fn build_context_holds_the_dockerfile_and_the_volume() {
        let mut volume = tempfile::tempfile().unwrap();
        volume.write_all(b"pretend tar").unwrap();
        volume.rewind().unwrap();
        let mut out = Vec::new();
        send_context(&mut out, "FROM x\n", Some(&mut volume)).unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            seen.push((entry.path().unwrap().to_string_lossy().into_owned(), text));
        }
        assert_eq!(seen, [("Dockerfile".into(), "FROM x\n".into()), ("volume.tar".into(), "pretend tar".into())]);
    }
}

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
/// `.dpe-move-id` marks an environment `dpe-start` is moving into the store (it names that one
/// move, so it never travels).
const VOLUME_EXCLUDES: &[&str] = &["./home/.cache", "./home/.local/share/jupyter/runtime", "./python", ".dpe-move-id"];

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
    let mut in_store = None;
    match (volumes.store, spec.venv_in_store(), &spec.store_target) {
        (true, Some((store, folder)), Some(target)) => {
            args.extend(["--mount".into(), mount_value("volume", store, target, true)]);
            let (parent, name) = folder.rsplit_once('/').unwrap_or(("/", folder));
            // `$1` the store's folder of environments, `$2` this one's name, then the excludes.
            // Two archives, one after the other: the volume without its link, then the
            // environment, whose entries (`NAME/…`) [`merge_environment`] renames to `./venv/…`.
            // Plain `tar -cf`, so any image's tar does (busybox's too).
            script.push_str(
                "store=$1 name=$2; shift 2; if [ -L venv ] && [ -d \"$store/$name\" ]; then \
                 tar -cf - \"$@\" --exclude=./venv . && cd \"$store\" && exec tar -cf - \"$@\" \"$name\"; fi; \
                 exec tar -cf - \"$@\" .",
            );
            script_args.splice(0..0, [parent.to_string(), name.to_string()]);
            in_store = Some(name.to_string());
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
    let copied = match &in_store {
        Some(name) => merge_environment(&mut stdout, out, name),
        None => io::copy(&mut stdout, out).map(|_| ()),
    };
    let output = child.wait_with_output().map_err(|e| Error::new(format!("waiting for `docker run` failed: {e}")))?;
    if !output.status.success() {
        return Err(docker::failed(&format!("reading the volume `{}`", spec.volume), &output)
            .with_help("the environment image needs `tar`; check the project's image"));
    }
    copied.map_err(|e| Error::new(format!("copying the volume `{}` failed: {e}", spec.volume)))?;
    Ok(())
}

/// Copies the volume's archive and the environment's archive after it (`tar` writes them one
/// after the other) into one archive, the environment's entries (`NAME`, `NAME/…`) renamed to
/// `venv`, `venv/…`, hardlinks among them too. The volume's entries all start with `./`, so
/// none is renamed; owners, modes and times are kept.
fn merge_environment(input: impl io::Read, out: &mut fs::File, name: &str) -> io::Result<()> {
    // Names as the builder writes them (it drops a leading `./`), so a hardlink's target is
    // spelt like the entry it names.
    let rename = |path: &Path| -> std::path::PathBuf {
        match path.strip_prefix(name) {
            Ok(rest) => Path::new("venv").join(rest),
            // The volume's root, `./`, stays as it is: it carries the owner of the volume.
            Err(_) => match path.strip_prefix(".") {
                Ok(rest) if !rest.as_os_str().is_empty() => rest.to_path_buf(),
                _ => path.to_path_buf(),
            },
        }
    };
    let mut archive = tar::Archive::new(input);
    // The end of the first archive is two blocks of zeros; the second follows them.
    archive.set_ignore_zeros(true);
    let mut merged = tar::Builder::new(io::BufWriter::new(out));
    merged.follow_symlinks(false);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = rename(&entry.path()?);
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Link => {
                let target = rename(&entry.link_name()?.unwrap_or_default());
                merged.append_link(&mut header, &path, &target)?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                merged.append_link(&mut header, &path, &target)?;
            }
            _ => merged.append_data(&mut header, &path, &mut entry)?,
        }
    }
    merged.into_inner()?.flush()
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
    fn the_environment_from_the_store_becomes_venv_in_the_volume_archive() {
        let archive = |entries: &[(&str, tar::EntryType, &str)]| {
            let mut builder = tar::Builder::new(Vec::new());
            for (path, kind, data) in entries {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(*kind);
                header.set_mode(0o755);
                header.set_uid(1000);
                header.set_gid(1000);
                header.set_size(if *kind == tar::EntryType::Regular { data.len() as u64 } else { 0 });
                if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                    header.set_link_name(data).unwrap();
                }
                let bytes = if *kind == tar::EntryType::Regular { data.as_bytes() } else { &[][..] };
                // Written raw, as tar(1) does: `./`-prefixed names kept as they are.
                let name = header.as_old_mut();
                name.name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                builder.append(&header, bytes).unwrap();
            }
            builder.into_inner().unwrap()
        };
        let dir = tar::EntryType::Directory;
        let mut stream =
            archive(&[("./", dir, ""), ("./home/", dir, ""), ("./home/notes.txt", tar::EntryType::Regular, "hi")]);
        stream.extend(archive(&[
            ("dpe-p-1234abcd-env/", dir, ""),
            ("dpe-p-1234abcd-env/bin/python", tar::EntryType::Symlink, "/usr/bin/python3"),
            ("dpe-p-1234abcd-env/lib/a.py", tar::EntryType::Regular, "A = 1\n"),
            ("dpe-p-1234abcd-env/lib/b.py", tar::EntryType::Link, "dpe-p-1234abcd-env/lib/a.py"),
        ]));
        let mut out = tempfile::tempfile().unwrap();
        merge_environment(&stream[..], &mut out, "dpe-p-1234abcd-env").unwrap();
        out.rewind().unwrap();
        let mut merged = tar::Archive::new(&mut out);
        let listed: Vec<(String, Option<String>, u64, u64)> = merged
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                (e.path().unwrap().display().to_string(), link, e.header().uid().unwrap(), e.header().size().unwrap())
            })
            .collect();
        let names: Vec<(&str, Option<&str>)> = listed.iter().map(|(p, l, _, _)| (p.as_str(), l.as_deref())).collect();
        assert_eq!(
            names,
            [
                ("./", None),
                ("home", None),
                ("home/notes.txt", None),
                ("venv/", None),
                ("venv/bin/python", Some("/usr/bin/python3")),
                ("venv/lib/a.py", None),
                ("venv/lib/b.py", Some("venv/lib/a.py")),
            ]
        );
        assert!(listed.iter().all(|(_, _, uid, _)| *uid == 1000), "{listed:?}");
        out.rewind().unwrap();
        assert_eq!(root_owner(&mut out).as_deref(), Some("1000:1000"));
    }

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

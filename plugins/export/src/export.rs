//! `dpe export PROJECT --to dockerfile|lock|image|archive`: the command line and the four
//! exports. Each asks the jupyter plugin for the environment's specification (which builds
//! the environment image if needed), then reads the live environment through throwaway
//! containers; nothing here changes the project or its volume.

use crate::archive::{self, ArchiveWriter, Manifest};
use crate::docker::{self, Spec};
use crate::dockerfile::{self, Inputs};
use crate::error::{Error, Result};
use crate::image;
use crate::lock;
use crate::names;
use crate::probe;
use crate::progress::{Progress, ProgressReader};
use clap::{Parser, ValueEnum};
use dpe_plugin::sdk::units;
use dpe_plugin::sdk::Plugin;
use dpe_plugin::Context;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Export a project's environment as a Dockerfile, a lock, an image or one archive file.
#[derive(Debug, Parser)]
#[command(name = "dpe export", version)]
pub struct ExportArgs {
    /// The project (default: the one dpe selected, e.g. from the current folder), then the
    /// destination: a folder for `dockerfile` (default `./PROJECT-environment`), a file for
    /// `lock` (default: stdout) and `archive` (required).
    // The id `project` makes the manifest say the command takes a project (`dpe_plugin::sdk`).
    #[arg(id = "project", value_name = "PROJECT] [DEST")]
    pub positionals: Vec<String>,
    /// What to export.
    #[arg(long, value_enum)]
    pub to: Kind,
    /// The image's name for `--to image` and `--to archive` (default `dpe-export/PROJECT:latest`).
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
    /// Push the image to the registry its tag names (`--to image`).
    #[arg(long)]
    pub push: bool,
    /// Put the whole project folder (notebooks, data) into the archive, not only its config.
    #[arg(long)]
    pub with_data: bool,
    /// `--to lock`: print the lock and the diff as one JSON object (as dpe's global `--json`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A standalone Dockerfile plus requirements.lock that rebuild the environment.
    Dockerfile,
    /// The `pip freeze` lock, and how it differs from the declared requirements.
    Lock,
    /// An image with the environment's packages baked in, labelled with dpe.toml.
    Image,
    /// One compressed file with the image and the project, for `dpe import`.
    Archive,
}

impl Plugin for ExportArgs {
    const DPE: &'static str = "^0.1";

    fn run(self, context: &Context) -> Result<()> {
        export(context, &self)
    }
}

/// Splits the positionals into the project and the destination: the first one names the
/// project when it is the project dpe selected from it.
pub fn project_and_dest(
    context: &Context,
    positionals: &[String],
) -> Result<(String, String, PathBuf, Option<String>)> {
    let selected = context.project.as_ref();
    let (project_arg, dest) = match positionals {
        [] => (None, None),
        [one] if selected.is_some_and(|p| &p.name == one) => (Some(one.clone()), None),
        [one] => (None, Some(one.clone())),
        [project, dest] => (Some(project.clone()), Some(dest.clone())),
        [_, _, extra, ..] => {
            return Err(Error::new(format!("unexpected argument `{extra}`"))
                .with_help("usage: dpe export [PROJECT] --to KIND [DEST]")
                .with_code(2))
        }
    };
    let Some(project) = selected else {
        return Err(match project_arg.or(dest) {
            Some(name) => Error::new(format!("no project named `{name}` in this workspace"))
                .with_help("projects are folders under the workspace's `projects/`; `dpe projects` lists them"),
            None => Error::new("no project selected")
                .with_help("name one (`dpe export project_a --to lock`), or run inside a project folder"),
        });
    };
    if let Some(name) = &project_arg {
        dpe_plugin::names::validate("project", name)?;
        if name != &project.name {
            return Err(Error::new(format!("`{name}` is not the selected project `{}`", project.name))
                .with_help(format!("run `dpe export {name} …` from the workspace, or drop `--project`")));
        }
    }
    let workspace = context.workspace.clone().unwrap_or_default().to_string_lossy().into_owned();
    Ok((project.name.clone(), workspace, project.dir.clone(), dest))
}

fn export(context: &Context, args: &ExportArgs) -> Result<()> {
    let (project, _workspace, project_dir, dest) = project_and_dest(context, &args.positionals)?;
    if args.push && args.to != Kind::Image {
        return Err(Error::new("`--push` goes with `--to image`").with_code(2));
    }
    if args.with_data && args.to != Kind::Archive {
        return Err(Error::new("`--with-data` goes with `--to archive`").with_code(2));
    }
    if args.json && args.to != Kind::Lock {
        return Err(Error::new("`--json` goes with `--to lock`").with_code(2));
    }
    if args.to == Kind::Archive && dest.is_none() {
        return Err(Error::new("`--to archive` needs a file to write")
            .with_help(format!("dpe export {project} --to archive {project}.dpe"))
            .with_code(2));
    }
    if let (Kind::Archive, Some(tag)) = (args.to, &args.tag) {
        // An import sets only these tags, so any other would make the archive unimportable.
        image::check_archive_tag(&project, tag).map_err(|why| {
            Error::new(format!("`--tag` {why}"))
                .with_help(format!("use `--tag dpe-export/{project}:VERSION`, or `--to image --tag {tag}` for an image of your own name"))
                .with_code(2)
        })?;
    }
    let spec = docker::spec(context, &project)?;
    match args.to {
        Kind::Lock => export_lock(context, &spec, &project_dir, dest.as_deref(), args.json || context.json),
        Kind::Dockerfile => {
            let dir = dest.map(PathBuf::from).unwrap_or_else(|| PathBuf::from(format!("{project}-environment")));
            export_dockerfile(context, &spec, &dir)
        }
        Kind::Image => {
            let tag = args.tag.clone().unwrap_or_else(|| image::default_tag(&project));
            let built = image::build(context, &spec, &image::config_text(&project_dir)?, &tag)?;
            println!("built `{}` ({})", built.tag, short_id(&built.id));
            if args.push {
                let status = docker::streamed(context, &["push", &built.tag])?;
                if !status.success() {
                    return Err(Error::new(format!("pushing `{}` failed (see above)", built.tag))
                        .with_help("the tag names the registry: `--tag registry.example.com/team/NAME:TAG`; log in with `docker login`")
                        .with_code(dpe_plugin::client::exit_code(status).max(1)));
                }
            }
            Ok(())
        }
        Kind::Archive => {
            let tag = args.tag.clone().unwrap_or_else(|| image::default_tag(&project));
            export_archive(
                context,
                &spec,
                &project_dir,
                &tag,
                Path::new(dest.as_deref().unwrap_or_default()),
                args.with_data,
            )
        }
    }
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// The live environment's lock and what it knows about each distribution.
fn live_lock(context: &Context, spec: &Spec) -> Result<(probe::Probe, Vec<lock::Locked>)> {
    let volumes = docker::Volumes::of(context, spec)?;
    let probe = probe::run(context, spec, volumes, &context.config.apt_packages)?;
    let locked = lock::parse_freeze(&probe.freeze);
    Ok((probe, locked))
}

/// Normalised names of the distributions living in the environment's volume.
fn in_volume(probe: &probe::Probe, spec: &Spec) -> Vec<String> {
    let target = format!("{}/", spec.volume_target.trim_end_matches('/'));
    probe.dists.iter().filter(|d| d.location.starts_with(&target)).map(|d| lock::normalize(&d.name)).collect()
}

fn requirements_path(context: &Context, project_dir: &Path) -> Option<PathBuf> {
    match &context.config.requirements {
        Some(path) => Some(PathBuf::from(path)),
        None => Some(project_dir.join("requirements.txt")).filter(|p| p.is_file()),
    }
}

fn export_lock(context: &Context, spec: &Spec, project_dir: &Path, dest: Option<&str>, json: bool) -> Result<()> {
    let (probe, locked) = live_lock(context, spec)?;
    let declared = lock::declared(requirements_path(context, project_dir).as_deref(), &context.config.python_packages)
        .map_err(Error::new)?;
    let diff = lock::diff(&locked, &declared, &in_volume(&probe, spec));
    if json {
        let value = serde_json::json!({
            "project": spec.project,
            "python": probe.python,
            "lock": probe.freeze,
            "by_hand": diff.by_hand.iter().map(|l| &l.line).collect::<Vec<_>>(),
            "drifted": diff.drifted.iter().map(|(d, v)| serde_json::json!({"name": d.name, "installed": v, "declared": d.text, "origin": d.origin})).collect::<Vec<_>>(),
            "missing": diff.missing.iter().map(|d| serde_json::json!({"name": d.name, "declared": d.text, "origin": d.origin})).collect::<Vec<_>>(),
        });
        if let Some(dest) = dest {
            write_lock(dest, probe.freeze.as_bytes())?;
        }
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
        return Ok(());
    }
    match dest {
        Some(dest) => {
            write_lock(dest, probe.freeze.as_bytes())?;
            eprintln!("wrote `{dest}` ({} packages, Python {})", locked.len(), probe.python);
        }
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(probe.freeze.as_bytes());
            let _ = out.flush();
        }
    }
    eprint!("{}", diff.render());
    Ok(())
}

fn export_dockerfile(context: &Context, spec: &Spec, dir: &Path) -> Result<()> {
    let (probe, locked) = live_lock(context, spec)?;
    let config = &context.config;
    let base_name = if config.dockerfile.is_some() {
        spec.image.clone()
    } else {
        dpe_plugin::config::expand_image(config.image.as_deref().unwrap_or(dpe_plugin::config::DEFAULT_IMAGE))
    };
    let inspected = docker::text(
        context,
        &["image", "inspect", "--format", "{{json .RepoDigests}}\t{{.Id}}", &base_name],
        &format!("inspecting the base image `{base_name}`"),
    )?;
    let (digests, id) = inspected.split_once('\t').unwrap_or((&inspected, ""));
    let digests: Vec<String> = serde_json::from_str::<Option<Vec<String>>>(digests).ok().flatten().unwrap_or_default();
    let stacks = spec.command.iter().any(|c| c.contains("start-notebook"));
    let mut inputs = Inputs {
        project: &spec.project,
        config,
        spec,
        probe: &probe,
        base: dockerfile::pin_base(&base_name, &digests, id),
        stacks,
        certificates: Vec::new(),
        has_local: false,
        generated_by: format!("dpe export {}", env!("CARGO_PKG_VERSION")),
    };
    let warnings = dockerfile::write(context, dir, &mut inputs, &probe.freeze, &locked)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let by_hand = in_volume(&probe, spec).len();
    println!(
        "wrote `{}` and `{}` ({} packages, {by_hand} installed by hand)",
        dir.join("Dockerfile").display(),
        dir.join(dockerfile::LOCK_FILE).display(),
        locked.len()
    );
    println!("build it anywhere with: docker build -t {}-env {}", spec.project, dir.display());
    Ok(())
}

/// Files of the project that go into an archive: everything with `--with-data`, else the
/// configuration (dpe.toml and the requirements file, when they live in the project).
pub fn project_files(project_dir: &Path, with_data: bool, requirements: Option<&Path>) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if with_data {
        walk(project_dir, Path::new(""), &mut files)?;
        return Ok(files);
    }
    for candidate in [Some(project_dir.join("dpe.toml")), requirements.map(Path::to_path_buf)].into_iter().flatten() {
        if let Ok(rel) = candidate.strip_prefix(project_dir) {
            if candidate.is_file() && !files.iter().any(|f| f == rel) {
                if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                    let mut dir = PathBuf::new();
                    for component in parent.components() {
                        dir.push(component);
                        if !files.contains(&dir) {
                            files.push(dir.clone());
                        }
                    }
                }
                files.push(rel.to_path_buf());
            }
        }
    }
    Ok(files)
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| Error::io(format!("reading `{}` failed", dir.display()), e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    entries.sort();
    for name in entries {
        let child = rel.join(&name);
        let meta = fs::symlink_metadata(root.join(&child))
            .map_err(|e| Error::io(format!("reading `{}` failed", root.join(&child).display()), e))?;
        if meta.is_dir() {
            out.push(child.clone());
            walk(root, &child, out)?;
        } else if meta.is_file() || meta.file_type().is_symlink() {
            out.push(child);
        }
    }
    Ok(())
}

/// Whether `import` will accept the project file `rel`: a name it can read, and a symlink
/// only when it points inside the project folder (see [`names::check_link_target`]). What it
/// would refuse is left out, with a warning.
fn archivable(project_dir: &Path, rel: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let checked =
        names::normalize(rel.as_os_str().as_bytes()).and_then(|name| match fs::read_link(project_dir.join(rel)) {
            Ok(target) => names::check_link_target(&name, target.as_os_str().as_bytes()),
            Err(_) => Ok(()),
        });
    if let Err(why) = checked {
        eprintln!("dpe: not archived: `{}` ({why}; an import refuses it)", rel.display());
    }
    checked.is_ok()
}

fn export_archive(
    context: &Context,
    spec: &Spec,
    project_dir: &Path,
    tag: &str,
    file: &Path,
    with_data: bool,
) -> Result<()> {
    let config_text = image::config_text(project_dir)?;
    let files = project_files(project_dir, with_data, requirements_path(context, project_dir).as_deref())?;
    let built = image::build(context, spec, &config_text, tag)?;
    let environment_tag = image::environment_tag(&built.tag);
    docker::checked(context, &["tag", &spec.image, &environment_tag], &format!("tagging `{environment_tag}`"))?;
    let environment_id = docker::text(
        context,
        &["image", "inspect", "--format", "{{.Id}}", &environment_tag],
        &format!("inspecting `{environment_tag}`"),
    )?;
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(parent)
        .map_err(|e| Error::io(format!("creating a file in `{}` failed", parent.display()), e))?;
    // The archive may be written inside the project folder: never archive it into itself.
    let same = |a: &Path, b: &Path| match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|rel| {
            let path = project_dir.join(rel);
            !same(&path, temp.path()) && !same(&path, file)
        })
        .filter(|rel| archivable(project_dir, rel))
        .collect();
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let manifest = Manifest {
        format: archive::FORMAT.to_string(),
        version: archive::FORMAT_VERSION,
        project: spec.project.clone(),
        created,
        dpe_version: context.dpe_version.clone(),
        export_version: env!("CARGO_PKG_VERSION").to_string(),
        image: built.tag.clone(),
        image_id: built.id.clone(),
        source_image: spec.image.clone(),
        environment_image: environment_tag.clone(),
        environment_image_id: environment_id,
        volume_target: Some(spec.volume_target.clone()),
        owner: built.owner.clone(),
        with_data,
        config: serde_json::to_value(&context.config).unwrap_or_default(),
    };
    let writing = |e: std::io::Error| Error::new(format!("writing `{}` failed: {e}", file.display()));
    let out = std::io::BufWriter::with_capacity(1 << 20, temp.as_file().try_clone().map_err(writing)?);
    let mut writer = ArchiveWriter::new(out, &manifest).map_err(writing)?;
    writer.append_project(project_dir, &files).map_err(writing)?;

    let mut child = dpe_plugin::client::docker_command(context, &["save", &built.tag, &environment_tag])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("running `dpe docker save` failed: {e}")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut progress = Progress::new("saving image", None);
    let appended = writer.append_image(ProgressReader { inner: stdout, progress: &mut progress }, created);
    progress.finish();
    let output = child.wait_with_output().map_err(|e| Error::new(format!("waiting for `docker save` failed: {e}")))?;
    if !output.status.success() {
        return Err(docker::failed(&format!("saving `{}`", built.tag), &output));
    }
    let image_bytes = appended.map_err(writing)?;
    let mut out = writer.finish().map_err(writing)?;
    out.flush().map_err(writing)?;
    // A file to hand on, not a secret: the usual mode rather than the temp file's 0600.
    use std::os::unix::fs::PermissionsExt;
    temp.as_file().set_permissions(fs::Permissions::from_mode(0o644)).map_err(writing)?;
    temp.as_file().sync_all().map_err(writing)?;
    temp.persist(file).map_err(|e| writing(e.error))?;

    let size = fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let sha256 = sha256_file(file)?;
    println!(
        "wrote `{}` ({}; image `{}` {} uncompressed; {})",
        file.display(),
        units::binary(size),
        built.tag,
        units::binary(image_bytes),
        if with_data { "with the project folder" } else { "project config only" }
    );
    println!("sha256 {sha256}");
    println!("import it with: dpe import {}", file.display());
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = fs::File::open(path).map_err(|e| Error::io(format!("reading `{}` failed", path.display()), e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(format!("reading `{}` failed", path.display()), e))?;
    Ok(archive::hex(&hasher.finalize()))
}

/// Writes the lock at `dest` atomically (never seen half-written), readable by others as any
/// file handed on is.
fn write_lock(dest: &str, bytes: &[u8]) -> Result<()> {
    dpe_plugin::sdk::fs::write_atomic(Path::new(dest), bytes, 0o644)
        .map_err(|e| Error::io(format!("writing `{dest}` failed"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpe_plugin::ProjectRef;

    fn context(project: Option<&str>) -> Context {
        Context {
            protocol: dpe_plugin::PROTOCOL_VERSION,
            dpe_version: "0.1.0".into(),
            dpe_bin: "/bin/false".into(),
            plugin: Some("export".into()),
            workspace: Some("/w".into()),
            project: project.map(|name| ProjectRef { name: name.into(), dir: format!("/w/projects/{name}").into() }),
            config: Default::default(),
            config_files: vec![],
            config_trusted: false,
            accepted_reaches: vec![],
            state_dir: "/s".into(),
            data_dir: "/d".into(),
            config_dir: "/c".into(),
            cache_dir: "/k".into(),
            verbosity: 0,
            color: "never".into(),
            json: false,
            no_hooks: false,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn positionals_split_into_project_and_destination() {
        let ctx = context(Some("a"));
        let (name, _, _, dest) = project_and_dest(&ctx, &strings(&["a", "out.dpe"])).unwrap();
        assert_eq!((name.as_str(), dest.as_deref()), ("a", Some("out.dpe")));
        let (_, _, _, dest) = project_and_dest(&ctx, &strings(&["a"])).unwrap();
        assert_eq!(dest, None);
        let (_, _, _, dest) = project_and_dest(&ctx, &strings(&["dir"])).unwrap();
        assert_eq!(dest.as_deref(), Some("dir"));
        let none = project_and_dest(&context(None), &strings(&["ghost", "x"])).unwrap_err();
        assert_eq!(none.message, "no project named `ghost` in this workspace");
    }

    #[test]
    fn links_an_import_would_refuse_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("notebooks")).unwrap();
        std::os::unix::fs::symlink("../dpe.toml", dir.path().join("notebooks/config")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("../../outside", dir.path().join("notebooks/out")).unwrap();
        assert!(archivable(dir.path(), Path::new("notebooks")));
        assert!(archivable(dir.path(), Path::new("notebooks/config")));
        assert!(!archivable(dir.path(), Path::new("etc")));
        assert!(!archivable(dir.path(), Path::new("notebooks/out")));
    }

    #[test]
    fn archive_holds_config_or_everything() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("dpe.toml"), "").unwrap();
        fs::write(dir.path().join("requirements.txt"), "six\n").unwrap();
        fs::create_dir(dir.path().join("notebooks")).unwrap();
        fs::write(dir.path().join("notebooks/a.ipynb"), "{}").unwrap();
        let config_only = project_files(dir.path(), false, Some(&dir.path().join("requirements.txt"))).unwrap();
        assert_eq!(config_only, [PathBuf::from("dpe.toml"), PathBuf::from("requirements.txt")]);
        let all = project_files(dir.path(), true, None).unwrap();
        assert_eq!(all, ["dpe.toml", "notebooks", "notebooks/a.ipynb", "requirements.txt"].map(PathBuf::from));
    }

    #[test]
    fn usage_errors_say_what_goes_together() {
        let parsed = ExportArgs::try_parse_from(["dpe export", "a", "--to", "lock", "--push"]).unwrap();
        let err = export(&context(Some("a")), &parsed).unwrap_err();
        assert_eq!((err.message.as_str(), err.code), ("`--push` goes with `--to image`", 2));
        let parsed = ExportArgs::try_parse_from(["dpe export", "a", "--to", "archive"]).unwrap();
        let err = export(&context(Some("a")), &parsed).unwrap_err();
        assert_eq!(err.message, "`--to archive` needs a file to write");
    }

    #[test]
    fn the_manifest_is_the_command_line() {
        dpe_plugin::sdk::assert_manifest::<ExportArgs>(&[
            "export [PROJECT] --to VALUE --tag VALUE --push --with-data --json",
        ]);
    }
}

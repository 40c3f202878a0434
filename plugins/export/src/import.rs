//! `dpe import FILE [--as NAME] [--force]`: brings an archive made by `dpe export --to archive`
//! back as a project that `dpe jupyter NAME` starts without building.
//!
//! Order matters, so a bad file or a refused import changes nothing:
//! 1. check the destination (`projects/NAME` must be free unless `--force`), then read the
//!    whole archive and check its structure and every checksum;
//! 2. read it again: the project files go to a hidden staging folder beside `projects/NAME`,
//!    the image streams into `docker load`, and the loaded image ID must be the recorded one;
//! 3. only then is an existing project replaced (its server stopped, its environment volume
//!    removed, so the imported environment is what it gets) and the staging folder moved in;
//! 4. the image is tagged with the content-hash tag `dpe jupyter` computes for the imported
//!    project on this machine, so it finds its image and does not build. The image carries the
//!    environment volume's content at the volume's path; the engine copies it into the fresh
//!    volume on first start.

use crate::archive::{self, Damage, Verified};
use crate::docker;
use crate::error::{validate_project_name, Failure, Result};
use crate::progress::human_bytes;
use clap::Parser;
use dpe_plugin::manifest::OptionSpec;
use dpe_plugin::{Context, Manifest as PluginManifest};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Bring back a project exported with `dpe export --to archive`.
#[derive(Debug, Parser)]
#[command(name = "dpe import", version)]
pub struct ImportArgs {
    /// The archive file.
    pub file: PathBuf,
    /// The project's name here (default: its name in the archive).
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
    /// Replace an existing project of that name, its environment volume included.
    #[arg(long)]
    pub force: bool,
}

/// `dpe-import --dpe-manifest`.
pub fn manifest() -> PluginManifest {
    let option = |name: &str, description: &str, takes_value: bool| OptionSpec {
        name: name.into(),
        description: description.into(),
        takes_value,
    };
    PluginManifest {
        name: "import".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        dpe: "^0.1".into(),
        protocol: dpe_plugin::PROTOCOL_VERSION,
        description: "Import a project archive made by `dpe export --to archive`".into(),
        takes_project: false,
        subcommands: Vec::new(),
        options: vec![
            option("--as", "the project's name here", true),
            option("--force", "replace an existing project", false),
        ],
        complete: false,
    }
}

/// The plugin's entry point.
pub fn run(context: &Context, args: &[String]) -> i32 {
    let parsed = match ImportArgs::try_parse_from(std::iter::once("dpe import".to_string()).chain(args.iter().cloned()))
    {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { 2 } else { 0 };
        }
    };
    match import(context, &parsed) {
        Ok(()) => 0,
        Err(failure) => failure.report(),
    }
}

fn damaged(file: &Path, damage: Damage) -> Failure {
    match damage {
        Damage::Io(error) => Failure::new(format!("cannot read `{}`: {error}", file.display())),
        Damage::Broken(detail) => Failure::new(format!(
            "`{}` is damaged or not a dpe archive: {detail}",
            file.display()
        ))
        .with_help(
            "nothing was changed; copy the file again, or export it again with `dpe export PROJECT --to archive FILE`",
        ),
    }
}

fn import(context: &Context, args: &ImportArgs) -> Result<()> {
    let Some(workspace) = context.workspace.clone() else {
        return Err(Failure::new("no dpe workspace here")
            .with_help("run `dpe import` inside a workspace (a folder with `dpe.toml` and `projects/`)"));
    };
    if !args.file.is_file() {
        return Err(Failure::new(format!("no archive `{}`", args.file.display()))
            .with_help("name a file written by `dpe export PROJECT --to archive FILE`"));
    }
    // 1. The destination, from the manifest alone (cheap), so a refusal comes at once; then
    // everything is checked before anything changes.
    let peeked = archive::peek_manifest(&args.file).map_err(|d| damaged(&args.file, d))?;
    let name = args.as_name.clone().unwrap_or_else(|| peeked.project.clone());
    validate_project_name(&name)?;
    let projects = workspace.join("projects");
    let target = projects.join(&name);
    let replacing = target.exists();
    if replacing && !args.force {
        return Err(Failure::new(format!("project `{name}` already exists in `{}`", projects.display())).with_help(
            format!(
            "import it under another name with `--as NEW_NAME`, or replace `{name}` and its environment with `--force`"
        ),
        ));
    }
    let verified = archive::verify(&args.file).map_err(|d| damaged(&args.file, d))?;
    let manifest = &verified.manifest;
    if manifest.project != peeked.project {
        return Err(damaged(&args.file, Damage::Broken("its manifest changed while it was read".into())));
    }
    fs::create_dir_all(&projects).map_err(|e| Failure::io("creating", &projects, e))?;

    // 2. Files to staging, image to the engine.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.import-"))
        .tempdir_in(&projects)
        .map_err(|e| Failure::io("creating a folder in", &projects, e))?;
    let staged = staging.path().join("project");
    let image_existed = docker::exists(context, "image", &manifest.image)?;
    load(context, &args.file, &verified, &staged)?;
    let loaded_id = docker::text(
        context,
        &["image", "inspect", "--format", "{{.Id}}", &manifest.image],
        "inspecting the loaded image",
    )?;
    if loaded_id != manifest.image_id {
        if !image_existed {
            let _ = docker::output(context, &["image", "rm", &manifest.image], "removing the loaded image");
        }
        return Err(Failure::new(format!(
            "the loaded image `{}` is {loaded_id}, but the archive recorded {}",
            manifest.image, manifest.image_id
        ))
        .with_help("nothing else was changed; the archive is inconsistent: export it again"));
    }
    if !manifest.with_data && !staged.join("dpe.toml").exists() {
        // A project without its own dpe.toml is still a project; keep the folder.
        fs::create_dir_all(&staged).map_err(|e| Failure::io("creating", &staged, e))?;
    }

    // 3. Replace, then move in.
    if replacing {
        replace_existing(context, &workspace, &name)?;
        let aside = staging.path().join("replaced");
        fs::rename(&target, &aside).map_err(|e| Failure::io("moving aside", &target, e))?;
        if let Err(e) = fs::rename(&staged, &target) {
            let _ = fs::rename(&aside, &target);
            return Err(Failure::io("creating", &target, e));
        }
    } else {
        fs::rename(&staged, &target).map_err(|e| Failure::io("creating", &target, e))?;
    }
    drop(staging);

    // 4. Tag for jupyter.
    let tagged = tag_for_jupyter(context, &name, &verified);
    println!(
        "imported `{name}` into `{}` ({}, image `{}` {})",
        target.display(),
        if manifest.with_data { "with its project folder" } else { "config only" },
        manifest.image,
        human_bytes(verified.image_bytes)
    );
    match tagged {
        Ok(tag) => println!("its environment is ready as `{tag}`: start it with `dpe jupyter {name}`"),
        Err(failure) => {
            eprintln!("warning: {}", failure.message);
            eprintln!("help: `dpe jupyter {name}` will build the environment from its dpe.toml instead");
        }
    }
    Ok(())
}

/// Streams the archive's image into `dpe docker load` while writing its project files.
fn load(context: &Context, file: &Path, verified: &Verified, staged: &Path) -> Result<()> {
    let mut child = dpe_plugin::client::docker_command(context, &["load", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::new(format!("running `dpe docker load` failed: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let unpacked = archive::unpack(file, verified, staged, &mut stdin, "loading");
    let flushed = stdin.flush();
    drop(stdin);
    let output =
        child.wait_with_output().map_err(|e| Failure::new(format!("waiting for `docker load` failed: {e}")))?;
    if !output.status.success() {
        return Err(docker::failed("loading the image", &output));
    }
    unpacked.map_err(|d| damaged(file, d))?;
    flushed.map_err(|e| Failure::new(format!("streaming the image into `docker load` failed: {e}")))?;
    Ok(())
}

/// Before `--force` replaces a project: stop its server and remove its environment volume, so
/// the imported environment is the one it starts with.
fn replace_existing(context: &Context, workspace: &Path, name: &str) -> Result<()> {
    let stop = docker::jupyter(context, name, &["stop", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Failure::new(format!("running `dpe jupyter stop` failed: {e}")))?;
    if !stop.status.success() {
        let detail = String::from_utf8_lossy(&stop.stderr);
        if !detail.contains("not running") {
            return Err(docker::failed(&format!("stopping `{name}`"), &stop)
                .with_help(format!("stop it yourself (`dpe jupyter stop {name}`) and import again")));
        }
    }
    let project = dpe_jupyter::project::Project {
        name: name.to_string(),
        dir: workspace.join("projects").join(name),
        workspace: workspace.to_path_buf(),
        config: Default::default(),
    };
    let volume = project.volume_name();
    if docker::exists(context, "volume", &volume)? {
        // The container (stopped, not removed) still references the volume.
        let container = project.container_name();
        if docker::exists(context, "container", &container)? {
            docker::output(context, &["rm", "--force", &container], &format!("removing the container `{container}`"))?;
        }
        docker::output(
            context,
            &["volume", "rm", &volume],
            &format!("removing the old environment volume `{volume}`"),
        )?;
        eprintln!("dpe: replaced `{name}`: its old environment volume `{volume}` was removed");
    }
    Ok(())
}

/// Tags the loaded image as `dpe jupyter` will look for it: the content-hash tag of the
/// imported project's configuration on this machine. When this user's ids differ from those
/// that owned the environment where it was exported, a one-step build first hands the
/// baked-in environment to this user (as dpe jupyter's own image does for a fresh volume).
fn tag_for_jupyter(context: &Context, name: &str, verified: &Verified) -> Result<String> {
    let manifest = &verified.manifest;
    let output = dpe_plugin::client::dpe_command(context, &["context", "--json", "--plugin", "jupyter"])
        .env(dpe_plugin::env::PROJECT, name)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::new(format!("running `dpe context` failed: {e}")))?;
    if !output.status.success() {
        return Err(docker::failed(&format!("resolving the configuration of `{name}`"), &output));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let resolved = dpe_plugin::Context::from_json(&text).map_err(Failure::new)?;
    let project_ref =
        resolved.project.ok_or_else(|| Failure::new(format!("dpe did not select the imported project `{name}`")))?;
    let project = dpe_jupyter::project::Project {
        name: project_ref.name,
        dir: project_ref.dir,
        workspace: resolved.workspace.unwrap_or_default(),
        config: resolved.config,
    };
    let host = dpe_jupyter::image::Host::current();
    let plan = dpe_jupyter::image::plan(&project, &host)
        .map_err(|e| Failure::new(format!("planning the environment of `{name}` failed: {}", e.message)))?;
    let me = format!("{}:{}", host.uid, host.gid);
    let target = manifest.volume_target.clone().unwrap_or_else(|| dpe_jupyter::project::VOLUME_TARGET.to_string());
    match &manifest.owner {
        Some(owner) if owner != &me => {
            eprintln!("dpe: handing the environment (owned by {owner} where it was exported) to {me}");
            let dockerfile = format!("FROM {}\nUSER root\nRUN chown -R {me} {target}\n", manifest.image);
            let mut child = dpe_plugin::client::docker_command(context, &["build", "--quiet", "--tag", &plan.tag, "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Failure::new(format!("running `dpe docker build` failed: {e}")))?;
            let _ = child.stdin.take().expect("piped stdin").write_all(dockerfile.as_bytes());
            let output = child
                .wait_with_output()
                .map_err(|e| Failure::new(format!("waiting for `docker build` failed: {e}")))?;
            if !output.status.success() {
                return Err(docker::failed(&format!("giving the environment of `{name}` to {me}"), &output));
            }
        }
        _ => {
            docker::output(
                context,
                &["tag", &manifest.image, &plan.tag],
                &format!("tagging `{}` as `{}`", manifest.image, plan.tag),
            )?;
        }
    }
    Ok(plan.tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        let args = ImportArgs::try_parse_from(["dpe import", "a.dpe", "--as", "copy", "--force"]).unwrap();
        assert_eq!(args.file, PathBuf::from("a.dpe"));
        assert_eq!(args.as_name.as_deref(), Some("copy"));
        assert!(args.force);
        assert!(ImportArgs::try_parse_from(["dpe import"]).is_err());
    }

    #[test]
    fn damage_is_reported_with_what_was_kept() {
        let failure = damaged(
            Path::new("a.dpe"),
            Damage::Broken("the archive ends before `dpe-archive.sha256`: it is truncated".into()),
        );
        assert_eq!(
            failure.to_string(),
            "`a.dpe` is damaged or not a dpe archive: the archive ends before `dpe-archive.sha256`: it is truncated\n\
             help: nothing was changed; copy the file again, or export it again with `dpe export PROJECT --to archive FILE`"
        );
    }
}

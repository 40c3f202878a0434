//! `dpe import FILE [--as NAME] [--force]`: brings an archive made by `dpe export --to archive`
//! back as a project that `dpe jupyter NAME` starts without building.
//!
//! Order matters, so a bad file or a refused import changes nothing:
//! 1. check the destination (`projects/NAME`, and its environment volume, must be free unless
//!    `--force`), then read the whole archive and check its structure and every checksum;
//! 2. read it again: the project files go to a hidden staging folder beside `projects/NAME`,
//!    the images stream into `docker load` untagged (the stream's metadata is rewritten, see
//!    [`crate::save_stream`]), and the loaded image IDs must be the recorded ones;
//! 3. only then is an existing project replaced (its container and environment volume
//!    removed) and the staging folder moved in;
//! 4. the project's environment volume is created and filled with the exported volume content
//!    (carried in the exported image at the volume's path), and the environment image, by its
//!    ID, gets a tag of this project alone, which the jupyter plugin sets and records itself
//!    (`dpe jupyter spec NAME --json --adopt ID`): `dpe jupyter NAME` then starts without
//!    building, and no other project ever runs the sender's image. No other tag is set, and
//!    none before the import succeeded.

use crate::archive::{self, Damage, Manifest, Verified};
use crate::docker;
use crate::error::{Error, Result};
use clap::Parser;
use dpe_plugin::contract::{EnvironmentNames, VOLUME_TARGET};
use dpe_plugin::sdk::units;
use dpe_plugin::sdk::Plugin;
use dpe_plugin::Context;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Import a project archive made by `dpe export --to archive`.
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

impl Plugin for ImportArgs {
    const DPE: &'static str = "^0.1";

    fn run(self, context: &Context) -> Result<()> {
        import(context, &self)
    }
}

fn damaged(file: &Path, damage: Damage) -> Error {
    match damage {
        Damage::Io(error) => Error::new(format!("cannot read `{}`: {error}", file.display())),
        Damage::Broken(detail) => Error::new(format!(
            "`{}` is damaged or not a dpe archive: {detail}",
            file.display()
        ))
        .with_help(
            "nothing was changed; copy the file again, or export it again with `dpe export PROJECT --to archive FILE`",
        ),
        Damage::Unsafe(detail) => Error::new(format!("`{}` is unsafe to import: {detail}", file.display()))
            .with_help("nothing was changed; `dpe export` does not write such archives: do not use this file, and ask its sender for a fresh export"),
    }
}

fn import(context: &Context, args: &ImportArgs) -> Result<()> {
    let Some(workspace) = context.workspace.clone() else {
        return Err(Error::new("no dpe workspace here")
            .with_help("run `dpe import` inside a workspace (a folder with `dpe.toml` and `projects/`)"));
    };
    if !args.file.is_file() {
        return Err(Error::new(format!("no archive `{}`", args.file.display()))
            .with_help("name a file written by `dpe export PROJECT --to archive FILE`"));
    }
    // 1. The destination, from the manifest alone (cheap), so a refusal comes at once; then
    // everything is checked before anything changes.
    let peeked = archive::peek_manifest(&args.file).map_err(|d| damaged(&args.file, d))?;
    let name = args.as_name.clone().unwrap_or_else(|| peeked.project.clone());
    dpe_plugin::names::validate("project", &name)?;
    let projects = workspace.join("projects");
    let target = projects.join(&name);
    // The project folder does not exist yet: its environment's names come from the contract.
    let names = EnvironmentNames::new(&name, &workspace);
    let volume = names.volume.clone();
    let replacing = target.exists();
    if replacing && !args.force {
        return Err(Error::new(format!("project `{name}` already exists in `{}`", projects.display())).with_help(
            format!(
            "import it under another name with `--as NEW_NAME`, or replace `{name}` and its environment with `--force`"
        ),
        ));
    }
    if !replacing && !args.force && docker::exists(context, "volume", &volume)? {
        return Err(Error::new(format!(
            "the environment volume `{volume}` of an earlier project `{name}` still exists"
        ))
        .with_help("replace it with `--force`, or import under another name with `--as NEW_NAME`"));
    }
    let verified = archive::verify(&args.file).map_err(|d| damaged(&args.file, d))?;
    let manifest = &verified.manifest;
    if manifest.project != peeked.project {
        return Err(damaged(&args.file, Damage::Broken("its manifest changed while it was read".into())));
    }
    fs::create_dir_all(&projects).map_err(|e| Error::io(format!("creating `{}` failed", projects.display()), e))?;

    // 2. Files to staging, images to the engine.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.import-"))
        .tempdir_in(&projects)
        .map_err(|e| Error::io(format!("creating a folder in `{}` failed", projects.display()), e))?;
    let staged = staging.path().join("project");
    let loaded = load(context, &args.file, &verified, &staged)?;
    for (image, id) in
        [(&manifest.image, &manifest.image_id), (&manifest.environment_image, &manifest.environment_image_id)]
    {
        if !loaded.iter().any(|loaded| bare_id(loaded) == bare_id(id)) {
            let loaded = if loaded.is_empty() { "nothing".to_string() } else { loaded.join(", ") };
            return Err(Error::new(format!(
                "the archive recorded the image `{image}` as {id}, but its image stream loaded {loaded}"
            ))
            .with_help(
                "the project was not created and no tag was set; the archive is inconsistent: export it again",
            ));
        }
    }

    // 3. Replace, then move in.
    let aside = staging.path().join("replaced");
    if args.force {
        remove_environment(context, &name, &names)?;
    }
    if replacing {
        fs::rename(&target, &aside).map_err(|e| Error::io(format!("moving aside `{}` failed", target.display()), e))?;
    }
    if let Err(e) = fs::rename(&staged, &target) {
        if replacing {
            let _ = fs::rename(&aside, &target);
        }
        return Err(Error::io(format!("creating `{}` failed", target.display()), e));
    }

    // 4. The environment: the volume gets the exported content; the image gets jupyter's tag.
    if let Err(failure) = fill_volume(context, &name, &volume, manifest) {
        let _ = docker::checked(context, &["volume", "rm", "--force", &volume], "removing the volume");
        let _ = fs::remove_dir_all(&target);
        if replacing {
            let _ = fs::rename(&aside, &target);
        }
        return Err(failure);
    }
    // The folder it replaced held the user's notebooks and data (a config-only archive brings
    // none of them): it is kept beside the project, never dropped with the staging folder.
    let kept = if replacing { Some(keep_replaced(&aside, &projects, &name)?) } else { None };
    drop(staging);
    let tagged = tag_for_jupyter(context, &name, &manifest.environment_image_id);
    println!(
        "imported `{name}` into `{}` ({}, environment {} in volume `{volume}`)",
        target.display(),
        if manifest.with_data { "with its project folder" } else { "config only" },
        units::binary(verified.image_bytes)
    );
    if let Some(kept) = kept {
        eprintln!(
            "note: the folder `{name}` had before is kept as `{}`: copy back what you need, then delete it",
            kept.display()
        );
    }
    match tagged {
        Ok(tag) => println!("its environment image is `{tag}`: start it with `dpe jupyter {name}`"),
        Err(failure) => {
            eprintln!("warning: {}", failure.message);
            eprintln!("help: `dpe jupyter {name}` will build the environment image from its dpe.toml; the imported packages are in its volume");
        }
    }
    Ok(())
}

/// Moves the project folder an import replaced from the staging folder to a hidden folder of
/// its own beside the projects (`.NAME.replaced-SECONDS`, not a project name), on the same
/// filesystem, so the move is a rename and nothing of it is lost.
fn keep_replaced(aside: &Path, projects: &Path, name: &str) -> Result<PathBuf> {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for attempt in 0..100 {
        let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
        let kept = projects.join(format!(".{name}.replaced-{seconds}{suffix}"));
        if kept.symlink_metadata().is_ok() {
            continue;
        }
        return fs::rename(aside, &kept)
            .map(|()| kept)
            .map_err(|e| Error::io(format!("keeping the replaced folder as `{}` failed", aside.display()), e));
    }
    Err(Error::new(format!("no free name to keep the replaced folder of `{name}` in `{}`", projects.display())))
}

/// Streams the archive's image into `dpe docker load` while writing its project files; returns
/// the IDs of the images loaded (untagged: the stream names no tag).
fn load(context: &Context, file: &Path, verified: &Verified, staged: &Path) -> Result<Vec<String>> {
    let mut child = dpe_plugin::client::docker_command(context, &["load", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("running `dpe docker load` failed: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let unpacked = archive::unpack(file, verified, staged, &mut stdin, "loading");
    let flushed = stdin.flush();
    drop(stdin);
    let output = child.wait_with_output().map_err(|e| Error::new(format!("waiting for `docker load` failed: {e}")))?;
    // A refused archive makes `docker load` fail too (the stream is broken off on purpose):
    // the refusal is the reason to report.
    unpacked.map_err(|d| damaged(file, d))?;
    if !output.status.success() {
        return Err(docker::failed("loading the image", &output));
    }
    flushed.map_err(|e| Error::new(format!("streaming the image into `docker load` failed: {e}")))?;
    Ok(loaded_ids(&String::from_utf8_lossy(&output.stdout)))
}

/// The image IDs in `docker load`'s report, one line per image: `Loaded image ID: sha256:…`
/// (Docker), `Loaded image: sha256:…` (Podman, for an image without a name).
fn loaded_ids(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|line| line.strip_prefix("Loaded image ID: ").or_else(|| line.strip_prefix("Loaded image: ")))
        .map(str::trim)
        .filter(|id| id.starts_with("sha256:"))
        .map(String::from)
        .collect()
}

/// An image ID without its `sha256:` prefix (Podman's inspect leaves it out).
fn bare_id(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// Before `--force` replaces a project: stop its server, remove its container and its
/// environment volume, so the imported environment is the one it starts with. (A lock the old
/// project remembered is forgotten when the imported image is adopted: [`tag_for_jupyter`].)
fn remove_environment(context: &Context, name: &str, names: &EnvironmentNames) -> Result<()> {
    let container = &names.container;
    if docker::exists(context, "container", container)? {
        docker::checked(
            context,
            &["rm", "--force", container],
            &format!("removing the container `{container}` of `{name}`"),
        )?;
    }
    let volume = &names.volume;
    if docker::exists(context, "volume", volume)? {
        docker::checked(
            context,
            &["volume", "rm", volume],
            &format!("removing the old environment volume `{volume}`"),
        )?;
        eprintln!("dpe: replacing `{name}`: its old environment volume `{volume}` was removed");
    }
    Ok(())
}

/// Creates the project's environment volume (through the core, which labels it for the
/// project) and copies the exported environment into it from the archive's image, handing it
/// to this user when other ids owned it where it was exported.
fn fill_volume(context: &Context, name: &str, volume: &str, manifest: &Manifest) -> Result<()> {
    let created = dpe_plugin::client::docker_command(context, &["volume", "create", volume])
        .env(dpe_plugin::env::PROJECT, name)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("running `dpe docker volume create` failed: {e}")))?;
    if !created.status.success() {
        return Err(docker::failed(&format!("creating the volume `{volume}`"), &created));
    }
    // Archives made before the manifest recorded the volume's path all used this one.
    let source = manifest.volume_target.clone().unwrap_or_else(|| VOLUME_TARGET.to_string());
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let me = format!("{uid}:{gid}");
    let mut script = String::from("cp -a \"$1/.\" /.dpe-volume/");
    if manifest.owner.as_deref().is_some_and(|owner| owner != me) {
        eprintln!(
            "dpe: handing the environment (owned by {} where it was exported) to {me}",
            manifest.owner.as_deref().unwrap_or("")
        );
        script.push_str(&format!(" && chown -R {me} /.dpe-volume"));
    }
    let mount = format!("{volume}:/.dpe-volume");
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "0:0",
        "--volume",
        &mount,
        "--entrypoint",
        "sh",
        // By ID: the image is loaded untagged.
        &manifest.image_id,
        "-c",
        &script,
        "sh",
        &source,
    ];
    let filled = dpe_plugin::client::docker_command(context, &args)
        .env(dpe_plugin::env::PROJECT, name)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("running `dpe docker run` failed: {e}")))?;
    if !filled.status.success() {
        return Err(docker::failed(&format!("filling the volume `{volume}` from `{}`", manifest.image_id), &filled));
    }
    Ok(())
}

/// Gives the environment image `id` the tag `dpe jupyter` uses for this project alone, by asking
/// the jupyter plugin to adopt it (`spec --adopt`): it plans the project with its own code,
/// tags the image and records it in its state, so any compatible version of it agrees with
/// itself on the tag. `--no-lock` forgets a lock the replaced project remembered, which would
/// plan another image. The shared content-hash tag is never set: other projects with the same
/// inputs build their own image instead of the sender's.
fn tag_for_jupyter(context: &Context, name: &str, id: &str) -> Result<String> {
    let output = docker::jupyter(context, name, &["spec", name, "--json", "--no-lock", "--adopt", id])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("running `dpe jupyter spec` failed: {e}")))?;
    if !output.status.success() {
        return Err(docker::failed(&format!("adopting the imported image {id} for `{name}`"), &output));
    }
    let spec: docker::Spec = serde_json::from_slice(&output.stdout).map_err(|e| {
        Error::new(format!("`dpe jupyter spec {name} --json` printed something that is not a run specification: {e}"))
    })?;
    Ok(spec.image)
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
    fn loaded_image_ids_are_read_from_the_report() {
        let report = "Loaded image ID: sha256:aa\nLoaded image ID: sha256:bb\nLoaded image: sha256:cc\n";
        assert_eq!(loaded_ids(report), ["sha256:aa", "sha256:bb", "sha256:cc"]);
        assert_eq!(loaded_ids("Loaded image: python:3\n"), Vec::<String>::new());
    }

    #[test]
    fn damage_is_reported_with_what_was_kept() {
        let failure = damaged(
            Path::new("a.dpe"),
            Damage::Broken("the archive ends before `dpe-archive.sha256`: it is truncated".into()),
        );
        assert_eq!(
            failure.to_string(),
            "error: `a.dpe` is damaged or not a dpe archive: the archive ends before `dpe-archive.sha256`: it is truncated\n\
             help: nothing was changed; copy the file again, or export it again with `dpe export PROJECT --to archive FILE`"
        );
    }

    #[test]
    fn the_manifest_is_the_command_line() {
        dpe_plugin::sdk::assert_manifest::<ImportArgs>(&["import --as VALUE --force"]);
    }
}

//! `dpe jupyter gc [--yes]`: finds what dpe made that nothing needs any more and lists it with
//! its size; `--yes` removes it and says how much it freed.
//!
//! What it weighs, and why it is safe on an engine other users share:
//! - **Images** carrying this user's owner label (see [`crate::image::owner`]): one is removable
//!   when no container (running or stopped, anyone's) uses it, it has no tag but dpe's, and no
//!   project's current inputs point to it. The current inputs are planned, building nothing,
//!   for every project of every workspace any dpe label on the engine names whose folder still
//!   exists; a project whose plan fails keeps every image labelled with it. Untagged images of
//!   this owner are builds whose tag moved to a newer one (`--rebuild`, or two builds of the
//!   same inputs at once). An interrupted build leaves no labelled image: `docker build --label`
//!   labels only the last layer, so its intermediate layers are unlabelled build cache, which
//!   no one can tell apart from other builds' and the engine's own prune commands handle.
//! - **Containers and volumes** of Jupyter environments whose project folder or workspace is
//!   gone, and only those whose token lies in this user's state directory (so another user's,
//!   or another sandbox's, are never weighed). A running container is left alone.
//! - **Packages in the store**: a trusted project's environment lives in the package store its
//!   projects share (`envs/VOLUME`); it goes when its project's volume goes (here, or removed
//!   by hand). Its size is what removing it frees: files the cache also links stay.
//!
//! The engine refuses to remove an image a container uses or a volume a container mounts, so a
//! start racing with `gc --yes` loses nothing: what it took is reported as not removed.

use crate::docker::{self, Container, Image, Volume, LABEL_OWNER};
use crate::image::Plan;
use crate::project::Project;
use crate::store::{Environments, Store};
use dpe_plugin::contract::EnvironmentNames;
use dpe_plugin::sdk::{units, Error, Result};
use dpe_plugin::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One thing `gc` would remove.
#[derive(Debug, Clone)]
struct Garbage {
    kind: &'static str,
    /// What the engine removes it by: a tag (each of them), an image ID, a name.
    handles: Vec<String>,
    /// What the table shows.
    name: String,
    /// The project folder it was made for.
    project: String,
    /// Bytes, when the engine says.
    size: Option<u64>,
    why: String,
    /// The project key whose state goes with it (containers, volumes).
    key: Option<String>,
}

pub fn run(context: &Context, yes: bool) -> Result<i32> {
    // The environments in the package store are listed before the volumes they belong to: one
    // a start makes meanwhile has its volume in the later list, and stays.
    let containers = docker::containers(context)?;
    let running: Vec<&str> = containers.iter().map(|c| c.image.as_str()).collect();
    let store = Store::find(context, &running)?;
    let in_store = match &store {
        Some(store) => store.environments(context)?,
        None => Environments::new(),
    };
    let volumes = docker::volumes(context, "label=dpe.plugin=jupyter")?;
    let images = docker::images(context, &[format!("label={LABEL_OWNER}={}", crate::image::owner(context))], &[])?;
    let inputs = Inputs::of(context, &containers, &volumes, &images);
    let mut garbage = stale_environments(context, &containers, &volumes);
    garbage.extend(orphaned_in_store(context, &in_store, &garbage)?);
    let images = unneeded_images(context, &containers, &garbage, &images, &inputs)?;
    garbage.extend(images);
    if garbage.is_empty() {
        eprintln!("dpe: nothing to collect: every dpe image, container and volume of yours is still needed");
        return Ok(0);
    }
    print_table(&garbage);
    let total: u64 = garbage.iter().filter_map(|g| g.size).sum();
    if !yes {
        eprintln!(
            "dpe: {} item(s), {} (a dry run: nothing removed); `dpe jupyter gc --yes` removes them",
            garbage.len(),
            units::decimal(total)
        );
        return Ok(0);
    }
    let failed = remove(context, store.as_ref(), &garbage)?;
    let freed: u64 = garbage.iter().filter(|g| !failed.contains(&g.name)).filter_map(|g| g.size).sum();
    eprintln!("dpe: removed {} item(s), freed {}", garbage.len() - failed.len(), units::decimal(freed));
    if !failed.is_empty() {
        return Err(Error::new(format!("{} item(s) were not removed: {}", failed.len(), join(&failed)))
            .with_help("the engine's messages above say why (most often: a container started using it meanwhile)"));
    }
    Ok(0)
}

/// What the projects of every known workspace build now.
struct Inputs {
    /// The image tags current inputs point to.
    tags: BTreeSet<String>,
    /// Projects whose inputs could not be planned (workspace, project); `*` for a whole
    /// workspace whose projects could not be read.
    unknown: BTreeSet<(String, String)>,
}

impl Inputs {
    fn of(context: &Context, containers: &[Container], volumes: &[Volume], images: &[Image]) -> Inputs {
        let mut workspaces: BTreeSet<String> = containers.iter().map(|c| c.workspace.clone()).collect();
        workspaces.extend(volumes.iter().map(|v| label(&v.labels, "dpe.workspace").to_string()));
        workspaces.extend(images.iter().map(|i| i.label("dpe.workspace").to_string()));
        let mut inputs = Inputs { tags: BTreeSet::new(), unknown: BTreeSet::new() };
        let mut projects: Vec<(String, String)> = Vec::new();
        for workspace in workspaces.iter().filter(|w| Path::new(w).is_absolute()) {
            match std::fs::read_dir(Path::new(workspace).join("projects")) {
                Ok(entries) => projects.extend(
                    entries
                        .flatten()
                        .filter_map(|e| e.file_name().to_str().map(String::from))
                        .filter(|name| dpe_plugin::names::is_valid(name))
                        .map(|name| (workspace.clone(), name)),
                ),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => {
                    inputs.unknown.insert((workspace.clone(), "*".into()));
                }
            }
        }
        // One `dpe context` a project, all at once: a machine with fifty projects waits for one.
        let planned: Vec<Option<Vec<String>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = projects
                .iter()
                .map(|(workspace, name)| scope.spawn(move || current_tags(context, Path::new(workspace), name)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(None)).collect()
        });
        for (project, tags) in projects.into_iter().zip(planned) {
            match tags {
                Some(tags) => inputs.tags.extend(tags),
                None => {
                    inputs.unknown.insert(project);
                }
            }
        }
        inputs
    }

    fn unknown(&self, workspace: &str, project: &str) -> bool {
        self.unknown.contains(&(workspace.to_string(), project.to_string()))
            || self.unknown.contains(&(workspace.to_string(), "*".to_string()))
    }
}

/// The tags a project's current inputs build (its image, and the image of its own Dockerfile),
/// planned from the context the core resolves for it (`dpe context --json`), building nothing.
fn current_tags(context: &Context, workspace: &Path, name: &str) -> Option<Vec<String>> {
    let (_, plan) = current_plan(context, workspace, name)?;
    Some(std::iter::once(plan.tag).chain(plan.user_dockerfile.map(|u| u.tag)).collect())
}

/// The project `name` of `workspace` as the core resolves it now, and the image its current
/// inputs plan (building nothing); `None` when either cannot be worked out.
pub(super) fn current_plan(context: &Context, workspace: &Path, name: &str) -> Option<(Project, Plan)> {
    let resolved = crate::resolved::project_context(context, workspace, name)?;
    let project = Project::from_context(&resolved, None).ok()?;
    // The lock this user's builds of the project install.
    let lock = crate::lock::load_saved(&context.state_dir, &project.key()).ok()?;
    let plan = crate::image::plan_with_lock(&project, &crate::image::Host::current(), lock.as_ref()).ok()?;
    Some((project, plan))
}

/// Why a project's folder no longer holds it, or `None` while it (or its workspace, as far as
/// this user can see) exists.
fn gone(workspace: &str, project: &str) -> Option<&'static str> {
    let missing = |path: &Path| matches!(path.symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    let workspace = Path::new(workspace);
    // Labels dpe did not write (relative paths, names that are paths) prove nothing.
    if !workspace.is_absolute() || !dpe_plugin::names::is_valid(project) {
        return None;
    }
    if missing(workspace) {
        Some("workspace gone")
    } else if missing(&workspace.join("projects").join(project)) {
        Some("project folder gone")
    } else {
        None
    }
}

/// The stopped containers and the volumes of this user's environments whose project is gone.
fn stale_environments(context: &Context, containers: &[Container], volumes: &[Volume]) -> Vec<Garbage> {
    let mine = |key: &str| crate::secrets::read_token(&context.state_dir, key).is_some();
    let folder = |workspace: &str, project: &str| Path::new(workspace).join("projects").join(project);
    let mut out = Vec::new();
    for c in containers.iter().filter(|c| c.plugin == "jupyter" && !c.key.is_empty() && mine(&c.key)) {
        let Some(why) = gone(&c.workspace, &c.project) else { continue };
        if c.running() {
            continue;
        }
        out.push(Garbage {
            kind: "container",
            handles: vec![c.id.clone()],
            name: c.name.clone(),
            project: folder(&c.workspace, &c.project).display().to_string(),
            size: None,
            why: why.into(),
            key: Some(c.key.clone()),
        });
    }
    for v in volumes {
        let (workspace, project) = (label(&v.labels, "dpe.workspace"), label(&v.labels, "dpe.project"));
        let key = EnvironmentNames::new(project, std::path::Path::new(workspace)).key;
        let Some(why) = gone(workspace, project) else { continue };
        // The package cache all trusted projects share outlives the project that made it.
        if !label(&v.labels, crate::spec::LABEL_STORE).is_empty() {
            continue;
        }
        // A container of the project that stays (it runs) still mounts the volume.
        let kept_user = containers
            .iter()
            .any(|c| c.workspace == workspace && c.project == project && !out.iter().any(|g| g.handles[0] == c.id));
        if project.is_empty() || !mine(&key) || kept_user {
            continue;
        }
        out.push(Garbage {
            kind: "volume",
            handles: vec![v.name.clone()],
            name: v.name.clone(),
            project: folder(workspace, project).display().to_string(),
            size: None,
            why: why.into(),
            key: Some(key),
        });
    }
    out
}

/// The environments in the package store whose project volume is gone, or goes in this run
/// (they hold the project's packages; the shared cache stays).
fn orphaned_in_store(context: &Context, in_store: &Environments, leaving: &[Garbage]) -> Result<Vec<Garbage>> {
    if in_store.is_empty() {
        return Ok(Vec::new());
    }
    // Every volume, whoever labelled it: compose's, an older dpe's.
    let existing: BTreeSet<String> = docker::volumes(context, "name=dpe-")?.into_iter().map(|v| v.name).collect();
    Ok(in_store
        .iter()
        .filter_map(|(volume, &bytes)| {
            let leaving = leaving.iter().find(|g| g.kind == "volume" && &g.handles[0] == volume);
            if leaving.is_none() && existing.contains(volume.as_str()) {
                return None;
            }
            Some(Garbage {
                kind: "packages",
                handles: vec![volume.clone()],
                name: crate::store::environment_path(volume),
                project: leaving.map_or_else(|| "-".into(), |g| g.project.clone()),
                size: Some(bytes),
                why: leaving.map_or_else(|| "its project's volume is gone".into(), |g| g.why.clone()),
                key: None,
            })
        })
        .collect())
}

/// This owner's images that no container uses and no current input points to, with the size
/// their own layers add to their base image.
fn unneeded_images(
    context: &Context,
    containers: &[Container],
    leaving: &[Garbage],
    images: &[Image],
    inputs: &Inputs,
) -> Result<Vec<Garbage>> {
    // Containers this `gc` removes too (of deleted projects) no longer hold their images.
    let users = || containers.iter().filter(|c| !leaving.iter().any(|g| g.kind == "container" && g.handles[0] == c.id));
    let used: BTreeSet<&str> = users().map(|c| c.image_id.as_str()).collect();
    let used_names: BTreeSet<&str> = users().map(|c| c.image.as_str()).collect();
    let is_dpe_tag = |tag: &str| {
        let repository = tag.rsplit_once(':').map_or(tag, |(r, _)| r);
        repository == crate::image::IMAGE_REPOSITORY || repository == format!("{}-base", crate::image::IMAGE_REPOSITORY)
    };
    let mut chosen: Vec<(&Image, String)> = Vec::new();
    for image in images {
        if used.contains(image.id.as_str())
            || image.tags.iter().any(|t| used_names.contains(t.as_str()) || !is_dpe_tag(t) || inputs.tags.contains(t))
        {
            continue;
        }
        let (workspace, project) = (image.label("dpe.workspace"), image.label("dpe.project"));
        if inputs.unknown(workspace, project) {
            continue;
        }
        let why = if image.tags.is_empty() {
            "untagged: its tag moved to a newer build".to_string()
        } else if let Some(gone) = gone(workspace, project) {
            gone.to_string()
        } else {
            "superseded: no project's current inputs build it".to_string()
        };
        chosen.push((image, why));
    }
    let bases: Vec<String> = chosen.iter().map(|(i, _)| i.label("dpe.jupyter.base").to_string()).collect();
    let mut wanted: Vec<String> = bases.iter().filter(|b| !b.is_empty()).cloned().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let base_sizes: BTreeMap<String, u64> = docker::images(context, &[], &wanted)?
        .into_iter()
        .flat_map(|i| i.tags.iter().map(|t| (canonical(t), i.size)).collect::<Vec<_>>())
        .collect();
    // Images dpe builds on top of others (a project's own Dockerfile) go first.
    chosen.sort_by_key(|(i, _)| i.tags.iter().any(|t| t.contains("-base:")));
    Ok(chosen
        .into_iter()
        .map(|(image, why)| {
            let base = base_sizes.get(&canonical(image.label("dpe.jupyter.base"))).copied().unwrap_or(0);
            let (workspace, project) = (image.label("dpe.workspace"), image.label("dpe.project"));
            Garbage {
                kind: "image",
                handles: if image.tags.is_empty() { vec![image.id.clone()] } else { image.tags.clone() },
                name: image
                    .tags
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("<none> {}", &image.id[..12.min(image.id.len())])),
                project: if project.is_empty() {
                    "-".into()
                } else {
                    Path::new(workspace).join("projects").join(project).display().to_string()
                },
                size: Some(image.size.saturating_sub(base)),
                why,
                key: None,
            }
        })
        .collect())
}

/// One spelling per image name, whichever engine wrote it: the registry prefixes an engine may
/// add or drop (`localhost/`, `docker.io/`, `docker.io/library/`) removed and `:latest` added, so
/// the base named in a label finds the tag the engine lists.
fn canonical(image: &str) -> String {
    let mut name = dpe_plugin::containers::image_name(image);
    name = name.strip_prefix("docker.io/").unwrap_or(name);
    name = name.strip_prefix("library/").unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Removes containers, then volumes, then the environments in the store whose volume is gone
/// now, then images (one engine call each); returns the names of what is still there
/// afterwards.
fn remove(context: &Context, store: Option<&Store>, garbage: &[Garbage]) -> Result<Vec<String>> {
    let kinds = [
        ("container", &["rm"][..]),
        ("volume", &["volume", "rm"][..]),
        ("packages", &[][..]),
        ("image", &["image", "rm"][..]),
    ];
    for (kind, verb) in kinds {
        let handles: Vec<String> =
            garbage.iter().filter(|g| g.kind == kind).flat_map(|g| g.handles.iter().cloned()).collect();
        if handles.is_empty() {
            continue;
        }
        if kind == "packages" {
            // A volume the engine kept (a container took it meanwhile) keeps its packages.
            let kept = docker::volumes(context, "name=dpe-")?;
            let gone: Vec<String> = handles.into_iter().filter(|h| !kept.iter().any(|v| &v.name == h)).collect();
            if let Some(store) = store {
                store.remove(context, &gone)?;
            }
            continue;
        }
        let mut args: Vec<String> = verb.iter().map(|s| s.to_string()).collect();
        args.extend(handles);
        let out = docker::captured(context, &args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.trim().is_empty() {
            eprintln!("{}", stderr.trim());
        }
    }
    let containers = docker::containers(context)?;
    let volumes = docker::volumes(context, "label=dpe.plugin=jupyter")?;
    let ids: Vec<String> = garbage.iter().filter(|g| g.kind == "image").map(|g| g.handles[0].clone()).collect();
    let images = docker::images(context, &[], &ids)?;
    let in_store = match (store, garbage.iter().any(|g| g.kind == "packages")) {
        (Some(store), true) => store.environments(context)?,
        _ => Environments::new(),
    };
    let mut failed = Vec::new();
    for g in garbage {
        let left = match g.kind {
            "container" => containers.iter().any(|c| c.id == g.handles[0]),
            "volume" => volumes.iter().any(|v| v.name == g.handles[0]),
            "packages" => in_store.contains_key(&g.handles[0]),
            _ => images.iter().any(|i| i.id == g.handles[0] || i.tags.iter().any(|t| g.handles.contains(t))),
        };
        if left {
            failed.push(g.name.clone());
        } else if let Some(key) = &g.key {
            super::rm::forget(context, key)?;
        }
    }
    Ok(failed)
}

fn print_table(garbage: &[Garbage]) {
    let header = ["KIND", "NAME", "PROJECT", "SIZE", "WHY"].map(String::from).to_vec();
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(garbage.iter().map(|g| {
            let size = g.size.map(units::decimal).unwrap_or_else(|| "-".into());
            vec![g.kind.to_string(), g.name.clone(), g.project.clone(), size, g.why.clone()]
        }))
        .collect();
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn label<'a>(labels: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    labels.get(key).map(String::as_str).unwrap_or("")
}

fn join(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_the_engines_print_them() {
        assert_eq!(canonical("dpe-test/bookworm"), "dpe-test/bookworm:latest");
        assert_eq!(canonical("localhost/dpe-test/bookworm:latest"), "dpe-test/bookworm:latest");
        assert_eq!(canonical("docker.io/library/debian:bookworm-slim"), "debian:bookworm-slim");
        assert_eq!(canonical("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(canonical("quay.io/jupyter/scipy-notebook:latest"), "quay.io/jupyter/scipy-notebook:latest");
    }

    #[test]
    fn a_project_is_gone_only_when_its_folder_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("projects/a")).unwrap();
        let ws = dir.path().to_str().unwrap();
        assert_eq!(gone(ws, "a"), None);
        assert_eq!(gone(ws, "b"), Some("project folder gone"));
        assert_eq!(gone(&format!("{ws}/nowhere"), "a"), Some("workspace gone"));
        assert_eq!(gone("relative/nowhere", "a"), None);
        assert_eq!(gone(ws, "../nowhere"), None);
    }
}

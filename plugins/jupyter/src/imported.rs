//! Environments brought in by `dpe import`, usable only by the project they were imported as.
//!
//! An imported environment image is whatever the archive's sender built. The content-hash tag
//! `dpe-jupyter:HASH` is shared by every project with the same inputs, so giving the sender's
//! image that tag would make the user's other projects run it. Instead import tags it with a
//! tag naming this project and this content hash ([`tag_for`]) and records that in the user's
//! private state (`STATE/jupyter/imported/KEY.json`, 0600: only the local user writes it, unlike
//! image labels, which the sender controls). Planning a project then [`adopt`]s the imported
//! tag in place of the shared one only for the very project, workspace and inputs it was
//! imported for; any other project plans, finds or builds its own image as before.
//!
//! `dpe import` (another plugin) never computes the tag or writes the record itself: it asks
//! `dpe jupyter spec PROJECT --json --adopt IMAGE_ID`, which runs [`take_over`] with this
//! plugin's own plan, so an import is tagged exactly as this very version of the plugin plans.

use crate::image::{Plan, IMAGE_REPOSITORY};
use crate::project::Project;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `dpe import` recorded for one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The content-hash tag the project planned when it was imported (`dpe-jupyter:HASH`).
    pub planned: String,
    /// The project's own tag of the imported image ([`tag_for`]).
    pub image: String,
    /// The imported image's ID, as loaded and checked by the import.
    pub id: String,
}

/// Where the record of project `key` lives.
pub fn path(state_dir: &Path, key: &str) -> PathBuf {
    state_dir.join("jupyter").join("imported").join(format!("{key}.json"))
}

/// The tag an imported environment gets: the project's name, its workspace and the content
/// hash, so no other project ever plans it.
pub fn tag_for(project: &Project, planned: &str) -> String {
    let hash = planned.rsplit(':').next().unwrap_or(planned);
    // Docker tags hold 128 characters; the workspace hash keeps a shortened name unique enough.
    let name: String = project.name.chars().take(64).collect();
    format!("{IMAGE_REPOSITORY}-imported:{name}-{}-{hash}", project.workspace_hash())
}

/// Records that `project`, planning `planned`, uses the imported image `id` tagged `image`.
pub fn record(state_dir: &Path, project: &Project, record: &Record) -> Result<()> {
    let path = path(state_dir, &project.key());
    let text = serde_json::to_vec_pretty(record).expect("a record serialises");
    crate::secrets::write_private(&path, &text)
}

/// Forgets what was imported for `project` (a replaced or re-imported project).
pub fn forget(state_dir: &Path, project: &Project) -> Result<()> {
    let path = path(state_dir, &project.key());
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing `{}`", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// Makes the loaded image `id` the environment of `project`, planning `plan` (its own plan,
/// before any import is adopted): tags it with the project's own tag and records that, in
/// place of whatever was imported for the project before. Returns the tag.
pub fn take_over(context: &Context, project: &Project, plan: &Plan, id: &str) -> Result<String> {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::new(format!("`{id}` is not an image ID"))
            .with_help("pass the ID `docker load` printed for the image, e.g. `sha256:0123abcd…`"));
    }
    forget(&context.state_dir, project)?;
    let tag = tag_for(project, &plan.tag);
    crate::docker::text(context, &["tag", id, &tag], &format!("tagging the imported image {id} as `{tag}`"))?;
    record(&context.state_dir, project, &Record { planned: plan.tag.clone(), image: tag.clone(), id: id.to_string() })?;
    Ok(tag)
}

/// The record of `project`, if it was imported.
pub fn read(state_dir: &Path, project: &Project) -> Result<Option<Record>> {
    let path = path(state_dir, &project.key());
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading `{}`", path.display()), e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::new(format!("`{}` is not a record dpe import wrote: {e}", path.display()))
            .with_help(format!("remove it; `dpe jupyter {}` then builds the environment", project.name))
    })
}

/// `plan` with the imported image in place of the shared content-hash tag, when `project` was
/// imported with these very inputs; otherwise `plan` as it is.
pub fn adopt(state_dir: &Path, project: &Project, plan: Plan) -> Result<Plan> {
    match read(state_dir, project)? {
        Some(record) if record.planned == plan.tag => Ok(Plan { tag: record.image, ..plan }),
        _ => Ok(plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(name: &str, workspace: &Path) -> Project {
        Project {
            name: name.into(),
            dir: workspace.join("projects").join(name),
            workspace: workspace.to_path_buf(),
            config: Default::default(),
        }
    }

    #[test]
    fn only_the_imported_project_with_the_same_inputs_adopts_the_imported_image() {
        let state = tempfile::tempdir().unwrap();
        let imported = project("a", Path::new("/w"));
        let plan = crate::image::plan(&imported, &crate::image::Host { uid: 1000, gid: 1000, ca_env: None }).unwrap();
        let image = tag_for(&imported, &plan.tag);
        let hash = plan.tag.strip_prefix("dpe-jupyter:").unwrap();
        assert_eq!(image, format!("dpe-jupyter-imported:a-{}-{hash}", imported.workspace_hash()));
        record(
            state.path(),
            &imported,
            &Record { planned: plan.tag.clone(), image: image.clone(), id: "sha256:1".into() },
        )
        .unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path(state.path(), &imported.key())).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        assert_eq!(adopt(state.path(), &imported, plan.clone()).unwrap().tag, image);
        // Same inputs, another project or another workspace: the shared tag, as before.
        for other in [project("b", Path::new("/w")), project("a", Path::new("/other"))] {
            assert_eq!(adopt(state.path(), &other, plan.clone()).unwrap().tag, plan.tag);
        }
        // The imported project with other inputs plans (and builds) its own image.
        let changed = Plan { tag: "dpe-jupyter:0123456789abcdef".into(), ..plan.clone() };
        assert_eq!(adopt(state.path(), &imported, changed).unwrap().tag, "dpe-jupyter:0123456789abcdef");
        forget(state.path(), &imported).unwrap();
        assert_eq!(adopt(state.path(), &imported, plan.clone()).unwrap().tag, plan.tag);
    }

    /// `--adopt` passes its value to `docker tag`: anything but an image ID (an option, a name
    /// of someone else's image) is refused before the engine or the state is touched.
    #[test]
    fn only_an_image_id_is_taken_over() {
        let state = tempfile::tempdir().unwrap();
        let context: Context = serde_json::from_value(serde_json::json!({
            "protocol": dpe_plugin::PROTOCOL_VERSION, "dpe_version": "0.1.0", "dpe_bin": "/nonexistent/dpe",
            "plugin": "jupyter", "workspace": "/w", "project": null, "config": {}, "config_files": [],
            "state_dir": state.path(), "data_dir": "/d", "config_dir": "/c", "cache_dir": "/k",
            "verbosity": 0, "color": "never", "json": false, "no_hooks": false
        }))
        .unwrap();
        let project = project("a", Path::new("/w"));
        let plan = crate::image::plan(&project, &crate::image::Host { uid: 1000, gid: 1000, ca_env: None }).unwrap();
        let earlier =
            Record { planned: plan.tag.clone(), image: "dpe-jupyter-imported:x".into(), id: "sha256:1".into() };
        record(state.path(), &project, &earlier).unwrap();
        for id in ["--help", "python:3", "sha256:", "sha256:12g4", ""] {
            let err = take_over(&context, &project, &plan, id).unwrap_err();
            assert_eq!(err.message, format!("`{id}` is not an image ID"));
            assert_eq!(
                err.help.as_deref(),
                Some("pass the ID `docker load` printed for the image, e.g. `sha256:0123abcd…`")
            );
        }
        assert_eq!(read(state.path(), &project).unwrap(), Some(earlier), "the earlier record is kept");
    }
}

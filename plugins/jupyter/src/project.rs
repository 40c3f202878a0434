//! The selected project and the names dpe derives from it: container, volume, state keys and
//! the base URL. Names are derived from the workspace path too, so two workspaces that both
//! hold a `project_a` never share a container, a volume, a port or a token.

use dpe_plugin::contract::{engine_spelling, EnvironmentNames};
pub use dpe_plugin::contract::{short_hash, VOLUME_TARGET};
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::{Config, Context};
use std::path::PathBuf;

/// A project ready to be run: its identity and configuration.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    pub workspace: PathBuf,
    pub config: Config,
}

impl Project {
    /// The project the core selected, checking that a positional name given to the plugin agrees.
    pub fn from_context(context: &Context, positional: Option<&str>) -> Result<Project> {
        let Some(project) = &context.project else {
            return Err(match positional {
                Some(name) => Error::new(format!("no project named `{name}` in this workspace"))
                    .with_help(suggestion(context, name)),
                None => Error::new("no project selected").with_help(
                    "name one (`dpe jupyter project_a`), pass `--project NAME`, or run inside a project folder",
                ),
            });
        };
        if let Some(name) = positional {
            if name != project.name {
                return Err(Error::new(format!("`{name}` is not the selected project `{}`", project.name))
                    .with_help(format!("run `dpe jupyter {name}` from the workspace, or drop `--project`")));
            }
        }
        check_name_twin(&project.dir, &project.name)?;
        let workspace = context
            .workspace
            .clone()
            .or_else(|| project.dir.parent().and_then(|p| p.parent()).map(PathBuf::from))
            .unwrap_or_else(|| project.dir.clone());
        Ok(Project { name: project.name.clone(), dir: project.dir.clone(), workspace, config: context.config.clone() })
    }

    /// Refuses settings that reach outside the project (a public `bind`, files read from
    /// elsewhere) unless the workspace's configuration is trusted: the rule every plugin shares
    /// (`dpe_plugin::reach`). Called before anything is built or started.
    pub fn check_reach(context: &Context) -> Result<()> {
        dpe_plugin::reach::check(context).map_err(|refusal| Error::new(refusal.message).with_help(refusal.help))
    }

    /// The engine names of the project's environment, shared with every plugin that finds it
    /// (`dpe_plugin::contract`).
    fn names(&self) -> EnvironmentNames {
        EnvironmentNames::new(&self.name, &self.workspace)
    }

    /// A short, stable hash of the workspace path.
    pub fn workspace_hash(&self) -> String {
        self.names().workspace_hash
    }

    /// The key of this project in the per-user state (ports, tokens): unique per workspace.
    pub fn key(&self) -> String {
        self.names().key
    }

    /// The container name; docker's name uniqueness also serialises two starts of one project.
    pub fn container_name(&self) -> String {
        self.names().container
    }

    /// The named volume holding the project's Python environment and home.
    pub fn volume_name(&self) -> String {
        self.names().volume
    }

    /// The server's base URL: one path per project, so the cookies of several local Jupyters
    /// never collide.
    pub fn base_url(&self) -> String {
        format!("/{}/", self.name)
    }
}

/// Refuses a project whose folder name differs from a sibling's only in `_` and `-` (`a_b` and
/// `a-b`): engine names spell both the same way, so the two would share one container, one
/// environment volume and one lock.
fn check_name_twin(dir: &std::path::Path, name: &str) -> Result<()> {
    let Some(projects) = dir.parent() else { return Ok(()) };
    let Ok(entries) = std::fs::read_dir(projects) else { return Ok(()) };
    let spelt = engine_spelling(name);
    for entry in entries.flatten() {
        let other = entry.file_name().to_string_lossy().into_owned();
        if other != name && engine_spelling(&other) == spelt && entry.path().is_dir() {
            return Err(Error::new(format!(
                "projects `{name}` and `{other}` would share one container and environment: engine names spell `_` as `-`"
            ))
            .with_help(format!("rename one of the two folders in `{}`", projects.display())));
        }
    }
    Ok(())
}

/// A `help:` line for a name that is neither a project nor a subcommand: the closest of both.
fn suggestion(context: &Context, name: &str) -> String {
    let projects: Vec<String> = context
        .workspace
        .as_ref()
        .and_then(|ws| std::fs::read_dir(ws.join("projects")).ok())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|name| dpe_plugin::names::is_valid(name))
        .collect();
    // `AdvUpper` (a folder, but no project) for `AdvUpper` or `advupper`: say why, not "did you mean".
    let projects_dir = context.workspace.as_ref().map(|ws| ws.join("projects"));
    if let Some(folder) = projects_dir.and_then(|dir| dpe_plugin::names::folder_differing_in_case(&dir, name)) {
        return dpe_plugin::names::rename_hint(&folder);
    }
    // The closest subcommand or project wins; a tie goes to the subcommand.
    let limit = |candidate: &str| if candidate.len() <= 3 { 1 } else { 2.max(candidate.len() / 3) };
    let commands = crate::cli::subcommands();
    let subcommands = commands.iter().map(|c| (edit_distance(name, c), 0, format!("`dpe jupyter {c}`")));
    let named = projects.iter().map(|p| (edit_distance(name, p), 1, format!("`{p}`")));
    let candidates = commands.iter().chain(&projects).map(String::as_str);
    let best = subcommands
        .chain(named)
        .zip(candidates)
        .filter(|((distance, _, _), candidate)| *distance <= limit(candidate))
        .map(|(scored, _)| scored)
        .min();
    if let Some((_, _, suggestion)) = best {
        return format!("did you mean {suggestion}?");
    }
    if projects.is_empty() {
        "projects are folders under `projects/` of the workspace".to_string()
    } else {
        let mut projects = projects;
        projects.sort();
        format!("the projects here are: {}", projects.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "))
    }
}

/// Levenshtein distance, for did-you-mean.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(workspace: &str) -> Project {
        Project {
            name: "project_a".into(),
            dir: PathBuf::from(workspace).join("projects/project_a"),
            workspace: workspace.into(),
            config: Config::default(),
        }
    }

    #[test]
    fn a_folder_that_is_no_project_is_never_the_did_you_mean() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("projects/AdvUpper")).unwrap();
        std::fs::create_dir_all(tmp.path().join("projects/other")).unwrap();
        let context: Context = serde_json::from_value(serde_json::json!({
            "protocol": dpe_plugin::PROTOCOL_VERSION, "dpe_version": "0.1.0", "dpe_bin": "/bin/false",
            "plugin": "jupyter", "workspace": tmp.path(), "project": null, "config": {}, "config_files": [],
            "state_dir": "/s", "data_dir": "/d", "config_dir": "/c", "cache_dir": "/k",
            "verbosity": 0, "color": "never", "json": false, "no_hooks": false
        }))
        .unwrap();
        let hint = "project names are lowercase letters, digits, `-` and `_`, so `AdvUpper` is not a project: \
                    rename the folder `AdvUpper` to `advupper`";
        assert_eq!(suggestion(&context, "AdvUpper"), hint);
        assert_eq!(suggestion(&context, "advupper"), hint);
        assert_eq!(suggestion(&context, "othr"), "did you mean `other`?");
        assert_eq!(suggestion(&context, "stpo"), "did you mean `dpe jupyter stop`?");
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("stpo", "stop"), 2);
        assert_eq!(edit_distance("project_a", "project_b"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn names_differ_between_workspaces_and_are_docker_safe() {
        let a = project("/home/u/w1");
        let b = project("/home/u/w2");
        assert_ne!(a.container_name(), b.container_name());
        assert_ne!(a.volume_name(), b.volume_name());
        assert!(a.container_name().starts_with("dpe-project-a-"));
        assert_eq!(a.base_url(), "/project_a/");
    }
}

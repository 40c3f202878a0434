//! Which projects a command acts on.
//!
//! Named projects win; with none named, `[compose] projects = [...]` in the workspace `dpe.toml`
//! selects, and failing that a `which-project` file at the workspace root (one name a line, `#`
//! starts a comment), the layout dpe's users had before dpe. Every name must be a folder under
//! `projects/`; a wrong one is reported with the projects that do exist.

use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace a command runs in.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
}

impl Workspace {
    pub fn from_context(context: &Context) -> Result<Workspace> {
        match &context.workspace {
            Some(root) => Ok(Workspace { root: root.clone() }),
            None => Err(Error::new("not inside a dpe workspace").with_help(
                "run `dpe compose` inside a folder holding a `dpe.toml` (its projects live in `projects/NAME/`)",
            )),
        }
    }

    pub fn project_dir(&self, name: &str) -> PathBuf {
        self.root.join("projects").join(name)
    }

    /// The project folders, sorted.
    pub fn projects(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("projects"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| valid_name(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Checks that `name` is a project of this workspace.
    pub fn check_project(&self, name: &str) -> Result<()> {
        if valid_name(name) && self.project_dir(name).is_dir() {
            return Ok(());
        }
        let known = self.projects();
        let help = if known.is_empty() {
            format!("this workspace has no projects yet; create `{}`", self.project_dir(name).display())
        } else {
            let list: Vec<String> = known.iter().map(|n| format!("`{n}`")).collect();
            format!("the projects of this workspace are {}", list.join(", "))
        };
        Err(Error::new(format!("unknown project `{name}`")).with_help(help))
    }
}

/// Project names follow the core's rule: `[a-z0-9][a-z0-9_-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Where a selection came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Arguments,
    ComposeTable(PathBuf),
    WhichProject(PathBuf),
}

/// The projects to act on: `named` when given, else the workspace's selection. Duplicates are
/// dropped, order kept; every name is checked.
pub fn resolve(context: &Context, workspace: &Workspace, named: &[String]) -> Result<(Vec<String>, Source)> {
    let (names, source) = if !named.is_empty() {
        (named.to_vec(), Source::Arguments)
    } else {
        configured(context, workspace)?.ok_or_else(|| {
            Error::new("no projects selected").with_help(
                "name them (`dpe compose up project_a project_b`), list them in the workspace dpe.toml (`[compose] projects = [\"project_a\"]`), or in a `which-project` file at the workspace root",
            )
        })?
    };
    let mut unique: Vec<String> = Vec::new();
    for name in names {
        workspace.check_project(&name).map_err(|e| match &source {
            Source::Arguments => e,
            Source::ComposeTable(path) | Source::WhichProject(path) => {
                Error { message: format!("{} (selected in {})", e.message, path.display()), ..e }
            }
        })?;
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Ok((unique, source))
}

/// The workspace's own selection, if it has one.
pub fn configured(context: &Context, workspace: &Workspace) -> Result<Option<(Vec<String>, Source)>> {
    let manifest = workspace.root.join("dpe.toml");
    let projects = if context.project.is_none() {
        // With no project selected the core hands over the workspace-level configuration.
        context.config.compose.projects.clone()
    } else {
        // Inside a project folder the context holds that project's layers; the selection is a
        // workspace matter, so read it from the workspace file itself.
        compose_projects_from(&manifest)?
    };
    if !projects.is_empty() {
        return Ok(Some((projects, Source::ComposeTable(manifest))));
    }
    let which = workspace.root.join("which-project");
    if which.is_file() {
        let text =
            fs::read_to_string(&which).map_err(|e| Error::io(format!("cannot read `{}`", which.display()), e))?;
        let names = parse_which_project(&text);
        if names.is_empty() {
            return Err(Error::new(format!("`{}` names no project", which.display()))
                .with_help("write one project name a line (`#` starts a comment)"));
        }
        return Ok(Some((names, Source::WhichProject(which))));
    }
    Ok(None)
}

/// `[compose] projects` of a `dpe.toml`, read without judging the rest of the file (the core
/// validates it).
fn compose_projects_from(path: &Path) -> Result<Vec<String>> {
    let Ok(text) = fs::read_to_string(path) else { return Ok(Vec::new()) };
    let value: toml::Table = text.parse().map_err(|e| Error::new(format!("cannot parse `{}`: {e}", path.display())))?;
    let Some(list) = value.get("compose").and_then(|c| c.get("projects")) else { return Ok(Vec::new()) };
    let bad = || Error::new(format!("`compose.projects` in `{}` must be a list of project names", path.display()));
    let list = list.as_array().ok_or_else(bad)?;
    list.iter().map(|v| v.as_str().map(String::from).ok_or_else(bad)).collect()
}

/// The names in a `which-project` file: one a line, `#` comments, blank lines ignored.
pub fn parse_which_project(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_project_lines() {
        let text = "# projects to run\nproject_a\n\n  project_c   # the database one\n#project_b\n";
        assert_eq!(parse_which_project(text), ["project_a", "project_c"]);
    }

    #[test]
    fn names() {
        assert!(valid_name("project_a") && valid_name("0-x"));
        assert!(!valid_name("Project") && !valid_name("-a") && !valid_name("") && !valid_name("a.b"));
    }

    #[test]
    fn compose_table_is_read_from_the_workspace_file() {
        let dir = std::env::temp_dir().join(format!("dpe-compose-sel-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dpe.toml");
        fs::write(&path, "image = \"x\"\n[compose]\nprojects = [\"a\", \"b\"]\n").unwrap();
        assert_eq!(compose_projects_from(&path).unwrap(), ["a", "b"]);
        fs::write(&path, "[compose]\nprojects = \"a\"\n").unwrap();
        assert!(compose_projects_from(&path).unwrap_err().to_string().contains("must be a list"));
        fs::remove_dir_all(&dir).unwrap();
    }
}

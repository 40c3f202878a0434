//! Plugin and project names: `[a-z0-9][a-z0-9_-]*`, at most 64 bytes. One rule for the core and
//! every plugin, so a name is never a path trick and reads the same in a container name, a URL
//! path and a shell; a folder under `projects/` whose name breaks it is not a project.

/// Whether `name` is a valid plugin or project name. Underscores are allowed because project
/// folders like `project_a` are the norm.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// The one refusal of an invalid name, for the core and every plugin alike: the message and the
/// `help:` line, or `None` when `name` is a valid `kind` (`project`, `plugin`) name.
pub fn refusal(kind: &str, name: &str) -> Option<(String, &'static str)> {
    if is_valid(name) {
        return None;
    }
    let shown = if name.is_empty() { "an empty name".to_string() } else { format!("`{name}`") };
    Some((
        format!("{shown} is not a valid {kind} name"),
        "names use lowercase letters, digits, `-` and `_`, and start with a letter or digit",
    ))
}

/// [`refusal`] as the SDK's error, for a plugin checking a name it was given or read.
pub fn validate(kind: &str, name: &str) -> crate::sdk::Result<()> {
    match refusal(kind, name) {
        None => Ok(()),
        Some((message, help)) => Err(crate::sdk::Error::new(message).with_help(help)),
    }
}

/// The fix for a folder under `projects/` that is not a project because of its name
/// (`AdvUpper`): rename it, to the lowercase name when that one is valid.
pub fn rename_hint(folder: &str) -> String {
    let lower = folder.to_lowercase();
    let rename = if is_valid(&lower) { format!(": rename the folder `{folder}` to `{lower}`") } else { String::new() };
    format!("project names are lowercase letters, digits, `-` and `_`, so `{folder}` is not a project{rename}")
}

/// The folder under `projects/` spelt like `name` but for case, if `name` names none exactly:
/// `AdvUpper` for `advupper`. A name is case-sensitive, so this is only for a `help:` line.
pub fn folder_differing_in_case(projects_dir: &std::path::Path, name: &str) -> Option<String> {
    if projects_dir.join(name).is_dir() && !is_valid(name) {
        return Some(name.to_string());
    }
    std::fs::read_dir(projects_dir)
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .find(|folder| folder != name && folder.eq_ignore_ascii_case(name) && !is_valid(folder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["jupyter", "project_a", "gpu2", "my-plugin", "0day"] {
            assert!(is_valid(name), "{name}");
        }
    }

    #[test]
    fn refuses_path_tricks_and_oddities() {
        for name in ["", "..", ".", "a/b", "../x", "-flag", "_x", "Upper", "a b", "a.b", "x\0"] {
            assert!(!is_valid(name), "{name:?}");
        }
    }

    /// Export checked names with a copy of this rule that had no length cap, so an archive could
    /// name a project no other part of dpe accepts.
    #[test]
    fn the_refusal_reads_alike_everywhere_and_caps_the_length() {
        assert_eq!(validate("project", "project_a"), Ok(()));
        assert_eq!(
            validate("project", "Bad.Name").unwrap_err().to_string(),
            "error: `Bad.Name` is not a valid project name\nhelp: names use lowercase letters, digits, `-` and `_`, and start with a letter or digit"
        );
        assert_eq!(refusal("plugin", "").unwrap().0, "an empty name is not a valid plugin name");
        assert!(validate("project", &"a".repeat(64)).is_ok());
        assert!(validate("project", &"a".repeat(65)).is_err());
    }

    #[test]
    fn a_folder_with_capitals_is_named_with_its_fix() {
        let tmp = std::env::temp_dir().join(format!("dpe-names-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("AdvUpper")).unwrap();
        assert_eq!(folder_differing_in_case(&tmp, "advupper").as_deref(), Some("AdvUpper"));
        assert_eq!(folder_differing_in_case(&tmp, "AdvUpper").as_deref(), Some("AdvUpper"));
        assert_eq!(folder_differing_in_case(&tmp, "other"), None);
        std::fs::remove_dir_all(&tmp).unwrap();
        assert_eq!(
            rename_hint("AdvUpper"),
            "project names are lowercase letters, digits, `-` and `_`, so `AdvUpper` is not a project: rename the folder `AdvUpper` to `advupper`"
        );
    }
}

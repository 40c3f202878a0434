//! Member names and link targets of untrusted tar streams (an archive, and the `docker save`
//! stream inside it), brought to one spelling before anything is checked.
//!
//! A tar names the same file in many ways (`a/b`, `./a//b`, `a/b/`), and what a name means
//! depends on the links unpacked before it. So every name is normalised first, and everything
//! else (duplicates, layout, "below a symlink") is decided on the normal form; a name that
//! cannot be normalised safely (`..`, an absolute path, a control character) is refused.

/// The canonical spelling of a member name: its components joined by `/`, without empty or
/// `.` components (so no leading `./`, no `//`, no trailing `/`). The error says what is wrong
/// with the name, for a message that also names the member.
pub fn normalize(raw: &[u8]) -> Result<String, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "its name is not UTF-8")?;
    // A newline in a name would also forge a line of the checksum list.
    if text.chars().any(char::is_control) {
        return Err("its name holds a control character");
    }
    if text.starts_with('/') {
        return Err("its name is an absolute path");
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("its name climbs out with `..`"),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("its name is empty");
    }
    Ok(parts.join("/"))
}

/// Checks that a symlink at `link` (a normalised name, relative to the tree being unpacked)
/// pointing at `target` stays inside that tree, whatever links it passes through.
///
/// The target must be relative, and its `..` components must all come first and climb no
/// higher than the tree's root. Its parent folders are real folders (nothing is ever unpacked
/// below a link), so the climb is what it looks like; every link it then passes through obeys
/// the same rule and stays inside, and no `..` follows one, so the whole path stays inside.
pub fn check_link_target(link: &str, target: &[u8]) -> Result<(), &'static str> {
    let text = std::str::from_utf8(target).map_err(|_| "its link target is not UTF-8")?;
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err("its link target is empty or holds a control character");
    }
    if text.starts_with('/') {
        return Err("it links to an absolute path, outside the archive");
    }
    let depth = link.split('/').count() - 1;
    let mut climbs = 0;
    let mut descended = false;
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." if descended => return Err("its link target climbs with `..` after a name"),
            ".." => climbs += 1,
            _ => descended = true,
        }
    }
    if climbs > depth {
        return Err("it links outside the archive's folder");
    }
    Ok(())
}

/// A member name as a message shows it: control characters escaped, invalid UTF-8 replaced,
/// so a crafted name cannot drive the terminal.
pub fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// `name` and every folder above it, nearest last: `a/b/c` gives `a`, `a/b`.
pub fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(at, _)| &name[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_name_normalise_to_one() {
        for raw in ["project/h", "project/h/", "./project/h", "project//h", "project/./h/."] {
            assert_eq!(normalize(raw.as_bytes()).unwrap(), "project/h", "{raw}");
        }
    }

    #[test]
    fn unsafe_names_are_refused() {
        assert_eq!(normalize(b"project/../x"), Err("its name climbs out with `..`"));
        assert_eq!(normalize(b"/etc/passwd"), Err("its name is an absolute path"));
        assert_eq!(normalize(b"./"), Err("its name is empty"));
        assert_eq!(normalize(b"a\xffb"), Err("its name is not UTF-8"));
        assert_eq!(normalize(b"a\nb"), Err("its name holds a control character"));
    }

    #[test]
    fn link_targets_stay_inside() {
        assert!(check_link_target("latest", b"notebooks/a.ipynb").is_ok());
        assert!(check_link_target("a/b/l", b"../../x").is_ok());
        assert!(check_link_target("a/l", b"./").is_ok());
        assert!(check_link_target("a/l", b"../../x").is_err());
        assert!(check_link_target("l", b"/etc").is_err());
        assert!(check_link_target("l", b"deep/..").is_err());
        assert!(check_link_target("l", b"").is_err());
    }

    #[test]
    fn names_are_shown_harmlessly() {
        assert_eq!(shown(b"a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
    }
}

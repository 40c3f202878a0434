//! The lock (`pip freeze` of the live environment) and its diff against what the project
//! declares (`requirements` and `python_packages` in dpe.toml): what was installed by hand into
//! the environment's volume, what drifted from its declared version, and what is missing.
//!
//! Version checks implement the common part of PEP 440: release numbers, pre-, post- and
//! dev-releases, local labels, and the operators `==` (with `.*`), `!=`, `<`, `<=`, `>`, `>=`,
//! `~=` and `===`. Environment markers are not evaluated (the requirement is taken as active).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

/// PEP 503 normalisation: `Foo.Bar_baz` and `foo-bar-baz` are the same project.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.trim().chars() {
        if c == '-' || c == '_' || c == '.' {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// One line of a lock: `name==version`, `name @ url`, or an editable install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub name: String,
    pub version: Option<String>,
    /// `file:///…`, `git+https://…` for direct references.
    pub url: Option<String>,
    pub editable: bool,
    pub line: String,
}

/// Parses `pip freeze` output. Comments and options are skipped; pip writes the name of an
/// editable install in the comment line before it.
pub fn parse_freeze(text: &str) -> Vec<Locked> {
    let mut out = Vec::new();
    let mut editable_name: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            // `# Editable install with no version control (pkg==0.1)`
            editable_name = comment
                .rsplit_once('(')
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .and_then(|inner| inner.split_once("=="))
                .map(|(name, _)| name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("-e ").or_else(|| line.strip_prefix("--editable ")) {
            let rest = rest.trim();
            let name = rest
                .rsplit_once("#egg=")
                .map(|(_, egg)| egg.to_string())
                .or_else(|| editable_name.take())
                .unwrap_or_else(|| rest.rsplit('/').next().unwrap_or(rest).to_string());
            out.push(Locked {
                name,
                version: None,
                url: Some(rest.to_string()),
                editable: true,
                line: line.to_string(),
            });
            continue;
        }
        editable_name = None;
        if line.starts_with('-') {
            continue;
        }
        if let Some((name, url)) = line.split_once(" @ ") {
            out.push(Locked {
                name: name.trim().to_string(),
                version: None,
                url: Some(url.trim().to_string()),
                editable: false,
                line: line.to_string(),
            });
        } else if let Some((name, version)) = line.split_once("==") {
            out.push(Locked {
                name: name.trim().to_string(),
                version: Some(version.trim().to_string()),
                url: None,
                editable: false,
                line: line.to_string(),
            });
        }
    }
    out
}

/// A declared requirement: `pandas>=2,<3`, `numpy==1.26.*`, `pkg @ https://…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    /// `(operator, version)` pairs; empty means any version.
    pub specifiers: Vec<(String, String)>,
    pub text: String,
    /// Where it was declared: `requirements.txt:3` or `python_packages`.
    pub origin: String,
}

/// Parses one requirement specifier (PEP 508, markers ignored). `None` for what is not a
/// requirement (options like `-r`, `--index-url`, paths and URLs without a name).
pub fn parse_requirement(text: &str, origin: &str) -> Option<Declared> {
    let text = text.split(" #").next().unwrap_or(text).trim();
    if text.is_empty() || text.starts_with('#') || text.starts_with('-') {
        return None;
    }
    let without_marker = text.split(';').next().unwrap_or(text).trim();
    let end = without_marker
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(without_marker.len());
    let name = &without_marker[..end];
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let mut rest = without_marker[end..].trim();
    if rest.starts_with('[') {
        rest = rest.split_once(']').map(|(_, r)| r.trim()).unwrap_or("");
    }
    let mut specifiers = Vec::new();
    if !rest.starts_with('@') {
        let rest = rest.trim_start_matches('(').trim_end_matches(')');
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let op_len = part.find(|c: char| !"=!<>~".contains(c)).unwrap_or(part.len());
            let (op, version) = part.split_at(op_len);
            if op.is_empty() {
                return None;
            }
            specifiers.push((op.to_string(), version.trim().to_string()));
        }
    }
    Some(Declared { name: name.to_string(), specifiers, text: text.to_string(), origin: origin.to_string() })
}

/// The requirements a project declares: its requirements file (following `-r` includes) and
/// its `python_packages`.
pub fn declared(requirements: Option<&Path>, python_packages: &[String]) -> Result<Vec<Declared>, String> {
    let mut out = Vec::new();
    if let Some(path) = requirements {
        read_requirements(path, &mut out, 0)?;
    }
    for package in python_packages {
        if let Some(req) = parse_requirement(package, "python_packages") {
            out.push(req);
        }
    }
    Ok(out)
}

fn read_requirements(path: &Path, out: &mut Vec<Declared>, depth: usize) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading `{}` failed: {e}", path.display()))?;
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        let include = line.strip_prefix("-r ").or_else(|| line.strip_prefix("--requirement "));
        if let Some(include) = include {
            if depth < 8 {
                let base = path.parent().unwrap_or(Path::new("."));
                read_requirements(&base.join(include.trim()), out, depth + 1)?;
            }
            continue;
        }
        if let Some(req) = parse_requirement(line, &format!("{file}:{}", number + 1)) {
            out.push(req);
        }
    }
    Ok(())
}

/// How the live environment differs from the declaration.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Installed into the environment's volume (by hand, `pip install`) and not declared.
    pub by_hand: Vec<Locked>,
    /// Declared, installed, but not at a version the declaration allows: (declared, installed).
    pub drifted: Vec<(Declared, String)>,
    /// Declared and not installed.
    pub missing: Vec<Declared>,
    /// Declared and satisfied.
    pub satisfied: usize,
}

/// Compares the lock with the declaration. `in_volume` holds the normalised names of the
/// distributions that live in the environment's volume rather than in its image.
pub fn diff(lock: &[Locked], declared: &[Declared], in_volume: &[String]) -> Diff {
    let installed: BTreeMap<String, &Locked> = lock.iter().map(|l| (normalize(&l.name), l)).collect();
    let declared_names: Vec<String> = declared.iter().map(|d| normalize(&d.name)).collect();
    let mut result = Diff::default();
    for locked in lock {
        let key = normalize(&locked.name);
        if in_volume.contains(&key) && !declared_names.contains(&key) {
            result.by_hand.push(locked.clone());
        }
    }
    for req in declared {
        match installed.get(&normalize(&req.name)) {
            None => result.missing.push(req.clone()),
            Some(locked) => {
                let version = locked.version.clone().unwrap_or_default();
                let ok = locked.version.is_none() || req.specifiers.iter().all(|(op, v)| satisfies(&version, op, v));
                if ok {
                    result.satisfied += 1;
                } else {
                    result.drifted.push((req.clone(), version));
                }
            }
        }
    }
    result
}

impl Diff {
    /// The report a person reads.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.by_hand.is_empty() {
            out.push_str(&format!(
                "installed by hand ({}), not declared in dpe.toml or requirements:\n",
                self.by_hand.len()
            ));
            for locked in &self.by_hand {
                out.push_str(&format!("  + {}\n", locked.line));
            }
        }
        if !self.drifted.is_empty() {
            out.push_str(&format!(
                "drifted ({}), installed at a version the declaration does not allow:\n",
                self.drifted.len()
            ));
            for (req, version) in &self.drifted {
                out.push_str(&format!("  ~ {} is {version} (declared `{}` in {})\n", req.name, req.text, req.origin));
            }
        }
        if !self.missing.is_empty() {
            out.push_str(&format!("missing ({}), declared but not installed:\n", self.missing.len()));
            for req in &self.missing {
                out.push_str(&format!("  - {} (declared `{}` in {})\n", req.name, req.text, req.origin));
            }
        }
        if out.is_empty() {
            out.push_str(&format!(
                "the environment matches its declaration ({} declared requirement{} satisfied, nothing installed by hand)\n",
                self.satisfied,
                if self.satisfied == 1 { "" } else { "s" }
            ));
        }
        out
    }
}

/// A PEP 440 version, enough to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// (0 = a, 1 = b, 2 = rc, number)
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: String,
}

fn parse_version(text: &str) -> Option<Version> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_prefix('v').unwrap_or(&text);
    let (public, local) = text.split_once('+').unwrap_or((text, ""));
    let (epoch, rest) = match public.split_once('!') {
        Some((e, r)) => (e.parse().ok()?, r),
        None => (0, public),
    };
    let release_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let release: Vec<u64> =
        rest[..release_end].trim_end_matches('.').split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let mut tail = rest[release_end..].trim_start_matches(['.', '-', '_']);
    let number = |s: &str| -> (u64, usize) {
        let s2 = s.trim_start_matches(['.', '-', '_']);
        let skipped = s.len() - s2.len();
        let end = s2.find(|c: char| !c.is_ascii_digit()).unwrap_or(s2.len());
        (s2[..end].parse().unwrap_or(0), skipped + end)
    };
    let mut pre = None;
    for (tag, kind) in [("alpha", 0), ("beta", 1), ("rc", 2), ("pre", 2), ("preview", 2), ("a", 0), ("b", 1), ("c", 2)]
    {
        if let Some(after) = tail.strip_prefix(tag) {
            let (n, used) = number(after);
            pre = Some((kind, n));
            tail = after[used..].trim_start_matches(['.', '-', '_']);
            break;
        }
    }
    let mut post = None;
    for tag in ["post", "rev", "r"] {
        if let Some(after) = tail.strip_prefix(tag) {
            let (n, used) = number(after);
            post = Some(n);
            tail = after[used..].trim_start_matches(['.', '-', '_']);
            break;
        }
    }
    let mut dev = None;
    if let Some(after) = tail.strip_prefix("dev") {
        let (n, used) = number(after);
        dev = Some(n);
        tail = &after[used..];
    }
    if !tail.is_empty() {
        return None;
    }
    Some(Version { epoch, release, pre, post, dev, local: local.to_string() })
}

fn compare(a: &Version, b: &Version) -> Ordering {
    let len = a.release.len().max(b.release.len());
    let release = |v: &Version| (0..len).map(|i| *v.release.get(i).unwrap_or(&0)).collect::<Vec<_>>();
    // A dev release sorts before its pre-releases; a plain release after them.
    let pre_key = |v: &Version| match (v.pre, v.post, v.dev) {
        (None, None, Some(_)) => (0u8, 0u8, 0u64),
        (Some((kind, n)), _, _) => (1, kind, n),
        _ => (2, 0, 0),
    };
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| release(a).cmp(&release(b)))
        .then_with(|| pre_key(a).cmp(&pre_key(b)))
        .then_with(|| a.post.map(|p| p as i128).unwrap_or(-1).cmp(&b.post.map(|p| p as i128).unwrap_or(-1)))
        .then_with(|| a.dev.map(|d| d as i128).unwrap_or(i128::MAX).cmp(&b.dev.map(|d| d as i128).unwrap_or(i128::MAX)))
}

/// Whether `installed` satisfies `op wanted`. Unparseable versions compare as strings.
pub fn satisfies(installed: &str, op: &str, wanted: &str) -> bool {
    if op == "===" {
        return installed == wanted;
    }
    if op == "==" || op == "!=" {
        let equal = if let Some(prefix) = wanted.strip_suffix(".*") {
            match (parse_version(installed), parse_version(prefix)) {
                (Some(v), Some(p)) => {
                    v.epoch == p.epoch
                        && v.release.iter().take(p.release.len()).eq(p.release.iter())
                        && v.release.len() >= p.release.len()
                }
                _ => installed.starts_with(prefix),
            }
        } else {
            match (parse_version(installed), parse_version(wanted)) {
                // `==1.5` matches `1.5+local` but `==1.5+a` only itself.
                (Some(v), Some(w)) => compare(&v, &w) == Ordering::Equal && (w.local.is_empty() || v.local == w.local),
                _ => installed == wanted,
            }
        };
        return if op == "==" { equal } else { !equal };
    }
    let (Some(v), Some(w)) = (parse_version(installed), parse_version(wanted)) else {
        return true;
    };
    let order = compare(&v, &w);
    match op {
        ">=" => order != Ordering::Less,
        "<=" => order != Ordering::Greater,
        ">" => order == Ordering::Greater,
        "<" => order == Ordering::Less,
        "~=" => {
            // ~=2.2.1 means >=2.2.1, ==2.2.*
            if order == Ordering::Less || w.release.len() < 2 {
                return order != Ordering::Less;
            }
            let prefix = &w.release[..w.release.len() - 1];
            v.release.len() >= prefix.len() && &v.release[..prefix.len()] == prefix
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(normalize("Foo.Bar_baz"), "foo-bar-baz");
        assert_eq!(normalize("ruamel.yaml"), "ruamel-yaml");
        assert_eq!(normalize("python-dateutil"), "python-dateutil");
    }

    #[test]
    fn freeze_lines_of_every_kind() {
        let text = "pandas==1.5.3\ntinypkg @ file:///work/dist/tinypkg-0.1-py3-none-any.whl\n# Editable install with no version control (mylib==0.2)\n-e /work/src/mylib\n";
        let lock = parse_freeze(text);
        assert_eq!(lock.len(), 3);
        assert_eq!(lock[0].version.as_deref(), Some("1.5.3"));
        assert_eq!(lock[1].url.as_deref(), Some("file:///work/dist/tinypkg-0.1-py3-none-any.whl"));
        assert_eq!((lock[2].name.as_str(), lock[2].editable), ("mylib", true));
    }

    #[test]
    fn requirements_parse() {
        let r = parse_requirement("pandas[excel]>=1.5, <3 ; python_version >= '3.8'  # data", "x").unwrap();
        assert_eq!(r.name, "pandas");
        assert_eq!(r.specifiers, [(">=".to_string(), "1.5".to_string()), ("<".to_string(), "3".to_string())]);
        assert!(parse_requirement("-r other.txt", "x").is_none());
        assert!(parse_requirement("./local/dir", "x").is_none());
        assert!(parse_requirement("# c", "x").is_none());
        assert!(parse_requirement("pkg @ https://x/y.whl", "x").unwrap().specifiers.is_empty());
    }

    #[test]
    fn versions_compare_like_pip() {
        assert!(satisfies("1.5.3", ">=", "1.5"));
        assert!(!satisfies("1.5.3", "<", "1.5.3"));
        assert!(satisfies("2.0.0rc1", "<", "2.0.0"));
        assert!(satisfies("2.0.0.dev1", "<", "2.0.0a1"));
        assert!(satisfies("1.0.post1", ">", "1.0"));
        assert!(satisfies("1.26.4", "==", "1.26.*"));
        assert!(!satisfies("1.27.0", "==", "1.26.*"));
        assert!(satisfies("1.5", "==", "1.5.0"));
        assert!(satisfies("1.5+deb1", "==", "1.5"));
        assert!(satisfies("2.2.3", "~=", "2.2.1"));
        assert!(!satisfies("2.3.0", "~=", "2.2.1"));
        assert!(!satisfies("1.5.3", "!=", "1.5.3"));
        assert!(satisfies("1!0.1", ">", "9.0"));
    }

    #[test]
    fn diff_names_by_hand_drifted_and_missing() {
        let lock = parse_freeze("pandas==1.5.3\nsix==1.16.0\ntinypkg==0.1\nnumpy==1.24.2\n");
        let declared = vec![
            parse_requirement("pandas>=2", "requirements.txt:1").unwrap(),
            parse_requirement("six", "requirements.txt:2").unwrap(),
            parse_requirement("requests==2.31.0", "python_packages").unwrap(),
        ];
        let result = diff(&lock, &declared, &["tinypkg".to_string()]);
        assert_eq!(result.by_hand.len(), 1);
        assert_eq!(result.satisfied, 1);
        assert_eq!(
            result.render(),
            "installed by hand (1), not declared in dpe.toml or requirements:\n  + tinypkg==0.1\n\
             drifted (1), installed at a version the declaration does not allow:\n  ~ pandas is 1.5.3 (declared `pandas>=2` in requirements.txt:1)\n\
             missing (1), declared but not installed:\n  - requests (declared `requests==2.31.0` in python_packages)\n"
        );
        let clean = diff(&lock, &declared[1..2], &[]);
        assert_eq!(
            clean.render(),
            "the environment matches its declaration (1 declared requirement satisfied, nothing installed by hand)\n"
        );
    }
}

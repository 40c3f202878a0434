//! The `docker save` stream inside an archive: what it may hold, and which image tags it may
//! set when `docker load` reads it.
//!
//! `docker load` applies the tags a stream names (`manifest.json`'s `RepoTags`, the legacy
//! `repositories` file, `index.json`'s name annotations), so a crafted stream could re-point
//! any local tag (`python:3`, another project's image). [`filter`] parses the stream and writes
//! it out again, member by member, as a fresh tar: a tag-naming member reaches the output only
//! after every tag in it was found among the archive's promised ones. Because `docker load`
//! then reads only what this parser understood (no parser differences), and because the check
//! runs on the very bytes sent to the engine, the guarantee holds even if the file changes
//! between the verifying pass and the loading pass.

use crate::archive::{Damage, HashReader, MAX_MEMBERS};
use crate::names;
use serde_json::Value;
use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::Path;

/// The members `docker load` takes tags from (at the stream's root).
const TAG_FILES: [&str; 3] = ["manifest.json", "repositories", "index.json"];
/// A tag-naming member is read into memory to be checked; `docker save` writes a few KiB.
const MAX_TAG_FILE_BYTES: u64 = 16 << 20;
/// The annotations naming an image in an OCI `index.json` (read by containerd-based engines).
const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Reads the `docker save` stream `input`, refusing anything but files, folders and links that
/// stay inside, and any tag outside `allowed`; writes the same members to `output`. When it
/// refuses (or `input` fails), what was written is followed by a block no tar reader accepts,
/// so a `docker load` reading `output` fails instead of loading the checked part.
pub fn filter(input: &mut dyn Read, output: &mut dyn Write, allowed: &[String]) -> Result<(), Damage> {
    let mut archive = tar::Archive::new(input);
    let mut builder = tar::Builder::new(output);
    match copy_members(&mut archive, &mut builder, allowed) {
        Ok(()) => {
            builder.into_inner()?.flush()?;
            // What follows the end marker is ignored by `docker load` too; read it so the
            // sending side is never cut off.
            io::copy(&mut archive.into_inner(), &mut io::sink())?;
            Ok(())
        }
        Err(damage) => {
            let _ = builder.get_mut().write_all(&[0xff; 512]);
            let _ = builder.get_mut().flush();
            Err(damage)
        }
    }
}

fn copy_members(
    archive: &mut tar::Archive<&mut dyn Read>,
    builder: &mut tar::Builder<&mut dyn Write>,
    allowed: &[String],
) -> Result<(), Damage> {
    let mut seen = HashSet::new();
    let mut not_folders = HashSet::new();
    for (count, entry) in archive.entries()?.enumerate() {
        let mut entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let refuse = |why: &str| Damage::Unsafe(format!("the image stream's member `{}` {why}", names::shown(&raw)));
        if count as u64 >= MAX_MEMBERS {
            return Err(refuse(&format!("is one more than the {MAX_MEMBERS} members a stream may hold")));
        }
        let name = names::normalize(&raw).map_err(|why| refuse(&format!("is refused: {why}")))?;
        if !seen.insert(name.clone()) {
            return Err(refuse("appears twice"));
        }
        if let Some(above) = names::ancestors(&name).find(|a| not_folders.contains(*a)) {
            return Err(refuse(&format!("lies below `{above}`, which is not a folder")));
        }
        let source = entry.header();
        if TAG_FILES.contains(&name.as_str()) && source.entry_type() != tar::EntryType::Regular {
            // `docker load` would read the tags through the link, past this check.
            return Err(refuse("names tags but is not a plain file"));
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(source.mode().unwrap_or(0o644) & 0o777);
        header.set_mtime(source.mtime().unwrap_or(0));
        header.set_size(0);
        match source.entry_type() {
            tar::EntryType::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                builder.append_data(&mut header, format!("{name}/"), io::empty())?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                names::check_link_target(&name, &target).map_err(|why| refuse(&format!("is refused: {why}")))?;
                not_folders.insert(name.clone());
                header.set_entry_type(tar::EntryType::Symlink);
                let target = String::from_utf8_lossy(&target).into_owned();
                builder.append_link(&mut header, &name, Path::new(&target))?;
            }
            tar::EntryType::Regular => {
                not_folders.insert(name.clone());
                let size = entry.size();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                if TAG_FILES.contains(&name.as_str()) {
                    if size > MAX_TAG_FILE_BYTES {
                        return Err(refuse(&format!("declares {size} bytes, over the {MAX_TAG_FILE_BYTES} allowed")));
                    }
                    let mut bytes = Vec::new();
                    (&mut entry).take(MAX_TAG_FILE_BYTES).read_to_end(&mut bytes)?;
                    check_tags(&name, &bytes, allowed)?;
                    builder.append_data(&mut header, &name, &bytes[..])?;
                } else {
                    let mut counted = HashReader::new(&mut entry);
                    builder.append_data(&mut header, &name, &mut counted)?;
                    if counted.count != size {
                        return Err(Damage::Broken(format!("the image stream's member `{name}` is cut short")));
                    }
                }
            }
            other => {
                return Err(refuse(&format!(
                    "is a {other:?} member; a `docker save` stream holds only files, folders and symlinks"
                )))
            }
        }
    }
    Ok(())
}

/// Every tag the member `name` (one of [`TAG_FILES`]) would set must be in `allowed`.
fn check_tags(name: &str, bytes: &[u8], allowed: &[String]) -> Result<(), Damage> {
    let malformed = |what: &str| Damage::Unsafe(format!("the image stream's `{name}` {what}"));
    let value: Value = serde_json::from_slice(bytes).map_err(|e| malformed(&format!("is not valid JSON: {e}")))?;
    let mut tags = Vec::new();
    match name {
        // Go's JSON decoder matches keys ignoring case (`repotags` fills `RepoTags`), so every
        // spelling counts.
        "manifest.json" => {
            let mut lists = Vec::new();
            values_of_key(&value, &|key| key.eq_ignore_ascii_case("RepoTags"), &mut lists);
            for list in lists {
                match list {
                    Value::Null => {}
                    Value::Array(items) => {
                        for item in items {
                            tags.push(item.as_str().ok_or_else(|| malformed("has a tag that is not a string"))?);
                        }
                    }
                    _ => return Err(malformed("has `RepoTags` that are not a list")),
                }
            }
        }
        "repositories" => {
            let repositories = value.as_object().ok_or_else(|| malformed("is not an object"))?;
            for (repository, versions) in repositories {
                let versions =
                    versions.as_object().ok_or_else(|| malformed("has a repository that is not an object"))?;
                for version in versions.keys() {
                    if !allowed.iter().any(|tag| same_reference(tag, &format!("{repository}:{version}"))) {
                        return Err(foreign(&format!("{repository}:{version}"), allowed));
                    }
                }
            }
        }
        _ => check_index(&value, allowed, &malformed)?,
    }
    match tags.into_iter().find(|tag| !allowed.iter().any(|a| same_reference(a, tag))) {
        Some(tag) => Err(foreign(tag, allowed)),
        None => Ok(()),
    }
}

/// An OCI `index.json`: every object of annotations that names an image must name an allowed
/// one (a bare tag in the reference-name annotation counts only beside an allowed full name).
fn check_index(value: &Value, allowed: &[String], malformed: &dyn Fn(&str) -> Damage) -> Result<(), Damage> {
    let mut annotations = Vec::new();
    values_of_key(value, &|key| key.eq_ignore_ascii_case("annotations"), &mut annotations);
    for object in annotations {
        let Some(object) = object.as_object() else { continue };
        let text = |key: &str| -> Result<Option<&str>, Damage> {
            match object.get(key) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text)),
                Some(_) => Err(malformed(&format!("has a `{key}` that is not a string"))),
            }
        };
        let name = text(NAME_ANNOTATION)?;
        if let Some(name) = name {
            if !allowed.iter().any(|a| same_reference(a, name)) {
                return Err(foreign(name, allowed));
            }
        }
        if let Some(reference) = text(REF_ANNOTATION)? {
            let full = allowed.iter().any(|a| same_reference(a, reference));
            let tag_of_name = name.is_some_and(|name| name.rsplit_once(':').is_some_and(|(_, tag)| tag == reference));
            if !full && !tag_of_name {
                return Err(foreign(reference, allowed));
            }
        }
    }
    Ok(())
}

fn foreign(tag: &str, allowed: &[String]) -> Damage {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
    Damage::Unsafe(format!(
        "its image stream would tag `{}`, but an archive may only set its own tags ({})",
        names::shown(tag.as_bytes()),
        allowed.join(" and ")
    ))
}

/// Whether two image references name the same tag, ignoring the default registry's spellings.
fn same_reference(allowed: &str, candidate: &str) -> bool {
    let plain = ["docker.io/", "index.docker.io/"]
        .iter()
        .find_map(|prefix| candidate.strip_prefix(prefix))
        .unwrap_or(candidate);
    plain == allowed
}

/// Every value under a key that `matches`, anywhere in `value`.
fn values_of_key<'a>(value: &'a Value, matches: &dyn Fn(&str) -> bool, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if matches(key) {
                    out.push(inner);
                }
                values_of_key(inner, matches, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| values_of_key(item, matches, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: [&str; 2] = ["dpe-export/a:latest", "dpe-export/a:latest-environment"];

    fn stream(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, *bytes).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn run(input: &[u8]) -> Result<Vec<u8>, String> {
        let allowed: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        match filter(&mut &input[..], &mut out, &allowed) {
            Ok(()) => Ok(out),
            Err(Damage::Unsafe(message) | Damage::Broken(message)) => Err(message),
            Err(Damage::Io(e)) => Err(e.to_string()),
        }
    }

    #[test]
    fn own_tags_pass_and_the_stream_is_written_again() {
        let manifest = br#"[{"Config":"c.json","RepoTags":["dpe-export/a:latest","docker.io/dpe-export/a:latest-environment"],"Layers":["l/layer.tar"]}]"#;
        let index = br#"{"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/dpe-export/a:latest","org.opencontainers.image.ref.name":"latest"}}]}"#;
        let input = stream(&[
            ("c.json", b"{}"),
            ("l/layer.tar", b"layer"),
            ("manifest.json", manifest),
            ("index.json", index),
            ("repositories", br#"{"dpe-export/a":{"latest":"abc"}}"#),
        ]);
        let out = run(&input).unwrap();
        let mut names = Vec::new();
        for entry in tar::Archive::new(&out[..]).entries().unwrap() {
            names.push(entry.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, ["c.json", "l/layer.tar", "manifest.json", "index.json", "repositories"]);
    }

    #[test]
    fn foreign_tags_are_refused_in_every_place_docker_reads_them() {
        let expected = "its image stream would tag `python:3`, but an archive may only set its own tags (`dpe-export/a:latest` and `dpe-export/a:latest-environment`)";
        let cases: [(&str, &[u8]); 5] = [
            ("manifest.json", br#"[{"RepoTags":["dpe-export/a:latest","python:3"]}]"#),
            ("./manifest.json", br#"[{"RepoTags":["dpe-export/a:latest"],"repotags":["python:3"]}]"#),
            ("repositories", br#"{"python":{"3":"abc"}}"#),
            ("index.json", br#"{"manifests":[{"annotations":{"io.containerd.image.name":"python:3"}}]}"#),
            ("index.json", br#"{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"python:3"}}]}"#),
        ];
        for (name, bytes) in cases {
            assert_eq!(run(&stream(&[(name, bytes)])).unwrap_err(), expected, "{name}");
        }
    }

    #[test]
    fn links_and_special_members_are_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "manifest.json", "blobs/x").unwrap();
        let input = builder.into_inner().unwrap();
        assert_eq!(
            run(&input).unwrap_err(),
            "the image stream's member `manifest.json` names tags but is not a plain file"
        );
        let two = stream(&[("manifest.json", b"[]"), ("manifest.json", b"[]")]);
        assert_eq!(run(&two).unwrap_err(), "the image stream's member `manifest.json` appears twice");
    }
}

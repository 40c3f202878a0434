//! The `docker save` stream inside an archive: what it may hold, and the metadata `docker
//! load` reads from it, which dpe writes itself.
//!
//! `docker load` applies the tags a stream names (`manifest.json`'s `RepoTags`, the legacy
//! `repositories` file, `index.json`'s name annotations), so a crafted stream could re-point
//! any local tag (`python:3`, another project's image). Checking the sender's JSON is not
//! enough: the engine parses it with Go's `encoding/json`, whose key matching differs from any
//! other parser (it ignores case with Unicode folding, `ſ` is `s` and `K` is `k`, and the last
//! of two equal keys wins). So [`filter`] never passes the sender's metadata on: it parses
//! `manifest.json` and `index.json` strictly (only the keys `docker save` writes, each once,
//! spelt exactly) and writes fresh ones holding only what loading needs, with no tag at all;
//! `repositories` is left out. The images load untagged, and the import tags them by ID, from
//! the name the user imports as, once everything succeeded. The stream is written out again
//! member by member as a fresh tar, so the check runs on the very bytes sent to the engine,
//! even if the file changes between the verifying pass and the loading pass.

use crate::archive::{Damage, HashReader, MAX_MEMBERS};
use crate::names;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};
use std::path::Path;

/// The members `docker load` takes tags from (at the stream's root).
const TAG_FILES: [&str; 3] = ["manifest.json", "repositories", "index.json"];
/// A tag-naming member is read into memory to be rewritten; `docker save` writes a few KiB.
const MAX_TAG_FILE_BYTES: u64 = 16 << 20;

/// One image of `manifest.json`, as `docker save` writes it. `RepoTags` is read (so a stream
/// `docker save` wrote is accepted) and never written on.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SavedImage {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default, skip_serializing)]
    _repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// An OCI `index.json` (written by newer engines, read by containerd-based ones).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
    #[serde(rename = "annotations", default, skip_serializing)]
    _annotations: Option<BTreeMap<String, String>>,
}

/// One entry of `index.json`; its annotations (which name images) are read and never written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(rename = "annotations", default, skip_serializing)]
    _annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    architecture: String,
    os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Option::is_none")]
    os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

/// Reads the `docker save` stream `input`, refusing anything but files, folders and links that
/// stay inside, and any metadata that is not exactly what `docker save` writes; writes the same
/// members to `output`, its metadata rewritten without tags. When it refuses (or `input`
/// fails), what was written is followed by a block no tar reader accepts, so a `docker load`
/// reading `output` fails instead of loading the checked part.
pub fn filter(input: &mut dyn Read, output: &mut dyn Write) -> Result<(), Damage> {
    let mut archive = tar::Archive::new(input);
    let mut builder = tar::Builder::new(output);
    match copy_members(&mut archive, &mut builder) {
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
                    if let Some(rewritten) = rewrite(&name, &bytes)? {
                        header.set_size(rewritten.len() as u64);
                        builder.append_data(&mut header, &name, &rewritten[..])?;
                    }
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

/// The metadata member `name` (one of [`TAG_FILES`]) as dpe writes it for `docker load`, or
/// `None` when it is left out. The sender's bytes must parse as exactly what `docker save`
/// writes: an unknown key (`repotags`, `RepoTag\u{17f}`), a key given twice or a value of
/// another type is refused, since the engine's parser might read it differently.
fn rewrite(name: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>, Damage> {
    let refuse = |e: serde_json::Error| {
        Damage::Unsafe(format!("the image stream's `{name}` is not what `docker save` writes: {e}"))
    };
    let rewritten = match name {
        "manifest.json" => {
            let images: Vec<SavedImage> = serde_json::from_slice(bytes).map_err(refuse)?;
            serde_json::to_vec(&images).map_err(refuse)?
        }
        "index.json" => {
            let index: Index = serde_json::from_slice(bytes).map_err(refuse)?;
            serde_json::to_vec(&index).map_err(refuse)?
        }
        // The legacy file only names tags; `docker load` reads `manifest.json` instead.
        _ => return Ok(None),
    };
    Ok(Some(rewritten))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn run(input: &[u8]) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        match filter(&mut &input[..], &mut out) {
            Ok(()) => {}
            Err(Damage::Unsafe(message) | Damage::Broken(message)) => return Err(message),
            Err(Damage::Io(e)) => return Err(e.to_string()),
        }
        let mut members = Vec::new();
        for entry in tar::Archive::new(&out[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            members.push((entry.path().unwrap().to_string_lossy().into_owned(), text));
        }
        Ok(members)
    }

    #[test]
    fn the_stream_is_written_again_with_metadata_that_names_no_tag() {
        let manifest =
            br#"[{"Config":"c.json","RepoTags":["dpe-export/a:latest","python:3"],"Layers":["l/layer.tar"]}]"#;
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ab","size":9,"annotations":{"io.containerd.image.name":"docker.io/library/python:3","org.opencontainers.image.ref.name":"3"}}]}"#;
        let input = stream(&[
            ("c.json", b"{}"),
            ("l/layer.tar", b"layer"),
            ("manifest.json", manifest),
            ("index.json", index),
            ("repositories", br#"{"python":{"3":"abc"}}"#),
        ]);
        let members = run(&input).unwrap();
        let expected = [
            ("c.json", "{}"),
            ("l/layer.tar", "layer"),
            ("manifest.json", r#"[{"Config":"c.json","Layers":["l/layer.tar"]}]"#),
            (
                "index.json",
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ab","size":9}]}"#,
            ),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        assert_eq!(members, expected);
    }

    /// Go's `encoding/json` would read each of these keys as `RepoTags` (or `Config`): none is
    /// what `docker save` writes, so the stream is refused.
    #[test]
    fn keys_another_parser_could_read_differently_are_refused() {
        let cases: [(&[u8], &str); 5] = [
            (
                "[{\"Config\":\"c\",\"Layers\":[],\"RepoTag\u{17f}\":[\"python:3\"]}]".as_bytes(),
                "unknown field `RepoTag\u{17f}`, expected one of `Config`, `RepoTags`, `Layers` at line 1 column 38",
            ),
            (
                br#"[{"Config":"c","Layers":[],"repotags":["python:3"]}]"#,
                "unknown field `repotags`, expected one of `Config`, `RepoTags`, `Layers` at line 1 column 37",
            ),
            (br#"[{"Config":"c","Config":"d","Layers":[]}]"#, "duplicate field `Config` at line 1 column 23"),
            (
                br#"[{"Config":"c","Layers":[],"LayerSources":{}}]"#,
                "unknown field `LayerSources`, expected one of `Config`, `RepoTags`, `Layers` at line 1 column 41",
            ),
            (br#"{"Config":"c","Layers":[]}"#, "invalid type: map, expected a sequence at line 1 column 0"),
        ];
        for (manifest, why) in cases {
            assert_eq!(
                run(&stream(&[("manifest.json", manifest)])).unwrap_err(),
                format!("the image stream's `manifest.json` is not what `docker save` writes: {why}")
            );
        }
        let index = br#"{"schemaVersion":2,"manifests":[],"Manifests":[{"mediaType":"m","digest":"d","size":1}]}"#;
        assert_eq!(
            run(&stream(&[("index.json", index)])).unwrap_err(),
            "the image stream's `index.json` is not what `docker save` writes: unknown field `Manifests`, expected one of `schemaVersion`, `mediaType`, `manifests`, `annotations` at line 1 column 45"
        );
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

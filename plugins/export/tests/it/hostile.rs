//! Crafted archives that `dpe import` must refuse: each is a well-formed archive (sound zstd,
//! sound tar, checksums recomputed) with one hostile part. For each, the import fails with a
//! message naming the member, nothing is written outside the destination (a canary folder the
//! links point at keeps its content and mode), and nothing is left behind (the sandbox, state
//! and projects folders included, holds exactly what it held before).

use crate::support::*;
use dpe_testkit::{docker_available, set_mode, DockerCleanup, Sandbox};
use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const HELP: &str = "help: nothing was changed; `dpe export` does not write such archives: do not use this file, and ask its sender for a fresh export\n";

/// One raw tar member: its name and link target exactly as bytes, its type, its content, and
/// optionally a declared size that differs from the content's.
struct Raw {
    name: Vec<u8>,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Vec<u8>,
    declared: Option<u64>,
}

fn file(name: &str, data: &str) -> Raw {
    Raw { name: name.into(), kind: tar::EntryType::Regular, data: data.into(), link: Vec::new(), declared: None }
}

fn folder(name: &str) -> Raw {
    Raw { name: name.into(), kind: tar::EntryType::Directory, data: Vec::new(), link: Vec::new(), declared: None }
}

fn link(name: &str, kind: tar::EntryType, target: &str) -> Raw {
    Raw { name: name.into(), kind, data: Vec::new(), link: target.into(), declared: None }
}

fn special(name: &str, kind: tar::EntryType) -> Raw {
    Raw { name: name.into(), kind, data: Vec::new(), link: Vec::new(), declared: None }
}

/// Appends `raw` with its name and link written into the header as they are (the tar crate's
/// own path setters refuse `..` and absolute paths, which is what these tests need).
fn append_raw(builder: &mut tar::Builder<Vec<u8>>, raw: &Raw) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(raw.kind);
    header.set_mode(0o777);
    header.set_mtime(1_700_000_000);
    header.set_size(raw.declared.unwrap_or(raw.data.len() as u64));
    let gnu = header.as_gnu_mut().unwrap();
    gnu.name[..raw.name.len()].copy_from_slice(&raw.name);
    gnu.linkname[..raw.link.len()].copy_from_slice(&raw.link);
    header.set_cksum();
    builder.append(&header, &raw.data[..]).unwrap();
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A `docker save`-like stream whose manifest.json names `tags`.
fn save_stream(tags: &[&str]) -> Vec<u8> {
    let manifest = serde_json::json!([{"Config": "config.json", "RepoTags": tags, "Layers": []}]).to_string();
    let mut builder = tar::Builder::new(Vec::new());
    append_raw(&mut builder, &file("config.json", "{}"));
    append_raw(&mut builder, &file("manifest.json", &manifest));
    builder.into_inner().unwrap()
}

/// The archive's manifest for `project`, promising `image` (and its `-environment` twin).
fn manifest(project: &str, image: &str) -> serde_json::Value {
    serde_json::json!({
        "format": "dpe-archive", "version": 1, "project": project, "created": 1_700_000_000u64,
        "dpe_version": "0.1.0", "export_version": "0.1.0",
        "image": image, "image_id": format!("sha256:{}", "a".repeat(64)),
        "source_image": "dpe-test/bookworm:latest",
        "environment_image": format!("{image}-environment"), "environment_image_id": format!("sha256:{}", "b".repeat(64)),
        "volume_target": "/opt/venv", "owner": null, "with_data": true, "config": {}
    })
}

/// A whole archive: the manifest, `members`, the image stream in one part, and the checksum
/// list recomputed over all of them (a symlink is summed by its target, as `dpe export` does).
fn archive(manifest: &serde_json::Value, members: &[Raw], stream: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut list = String::new();
    let mut add = |builder: &mut tar::Builder<Vec<u8>>, raw: &Raw| {
        append_raw(builder, raw);
        let summed = if raw.kind == tar::EntryType::Symlink { &raw.link } else { &raw.data };
        list.push_str(&format!("{}  {}\n", sha256(summed), String::from_utf8_lossy(&raw.name)));
    };
    add(&mut builder, &file("dpe-archive.json", &manifest.to_string()));
    for raw in members {
        add(&mut builder, raw);
    }
    let image = Raw { data: stream.to_vec(), ..file("image/docker-save.tar.00000", "") };
    add(&mut builder, &image);
    append_raw(&mut builder, &file("dpe-archive.sha256", &list));
    zstd::encode_all(&builder.into_inner().unwrap()[..], 1).unwrap()
}

/// Everything under the sandbox with each entry's mode: what a refused import must leave
/// exactly as it was. The archive files and the core's cache of plugin manifests (written by
/// any dpe command) aside.
fn snapshot(sandbox: &Sandbox) -> Vec<(String, u32)> {
    tree(sandbox.root())
        .into_iter()
        .filter(|p| !p.ends_with(".dpe") && !p.starts_with("cache"))
        .map(|p| {
            let mode = fs::symlink_metadata(sandbox.root().join(&p)).unwrap().permissions().mode();
            (p, mode)
        })
        .collect()
}

/// A sandbox with a canary folder (mode 0755, one file) for the links to point at.
fn sandbox_with_canary() -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::new();
    let canary = sandbox.path("canary");
    sandbox.write("canary/keep.txt", "canary\n");
    set_mode(&canary, 0o755);
    (sandbox, canary)
}

/// Imports `bytes` and checks the refusal: exit 1, `error: FILE is unsafe to import: DETAIL`
/// with the help line, and the sandbox unchanged.
fn refused(sandbox: &Sandbox, name: &str, bytes: &[u8], detail: &str) {
    let stem: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let path = sandbox.path(&format!("{stem}.dpe"));
    fs::write(&path, bytes).unwrap();
    let before = snapshot(sandbox);
    let output = dpe(sandbox, &["import", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(
        (output.status.code(), stderr(&output)),
        (Some(1), format!("error: `{}` is unsafe to import: {detail}\n{HELP}", path.display())),
        "case {name}"
    );
    assert_eq!(snapshot(sandbox), before, "case {name} changed the sandbox");
}

const PROJECT: &str = "hostile";
const IMAGE: &str = "dpe-export/hostile:latest";

fn own_stream() -> Vec<u8> {
    save_stream(&[IMAGE, &format!("{IMAGE}-environment")])
}

/// The cases on links: (name, members, the refusal's detail).
fn link_cases(canary: &Path) -> Vec<(&'static str, Vec<Raw>, String)> {
    use tar::EntryType::Symlink;
    let canary = canary.to_str().unwrap();
    vec![
        (
            "symlink out, then a file of the same name with a trailing slash",
            vec![link("project/h", Symlink, &format!("{canary}/hook")), file("project/h/", "#!/bin/sh\ntouch pwned\n")],
            "member `project/h` is refused: it links to an absolute path, outside the archive".into(),
        ),
        (
            "symlink out, then a folder of the same name (its mode would be set through the link)",
            vec![link("project/h", Symlink, "../../../canary"), folder("project/h/")],
            "member `project/h` is refused: it links outside the archive's folder".into(),
        ),
        (
            "symlink inside, then a file of the same name with a trailing slash",
            vec![file("project/dpe.toml", ""), link("project/h", Symlink, "dpe.toml"), file("project/h/", "x")],
            "member `project/h/` appears twice (once `./`, `//` and a trailing `/` are removed)".into(),
        ),
        (
            "symlink, then a file below it",
            vec![link("project/d", Symlink, "."), file("project/d/x", "x")],
            "member `project/d/x` lies below `project/d`, which is a file or a symlink: unpacking it could write through the link".into(),
        ),
        (
            "a file, then a file below it",
            vec![file("project/f", ""), file("project/f/x", "x")],
            "member `project/f/x` lies below `project/f`, which is a file or a symlink: unpacking it could write through the link".into(),
        ),
        (
            "a file in a folder, then a symlink replacing that folder",
            vec![file("project/d/x", "x"), link("project/d", Symlink, "x")],
            "member `project/d` would replace a folder that earlier members lie in".into(),
        ),
        (
            "symlink climbing out after a name",
            vec![folder("project/a/"), link("project/a/l", Symlink, "b/../../../canary")],
            "member `project/a/l` is refused: its link target climbs with `..` after a name".into(),
        ),
    ]
}

/// The cases on names, types and sizes: (name, members, the refusal's detail).
fn name_cases(canary: &Path) -> Vec<(&'static str, Vec<Raw>, String)> {
    use tar::EntryType::{Block, Char, Fifo, Link};
    let canary = canary.to_str().unwrap();
    let mut huge = file("project/big.bin", "");
    huge.declared = Some(2 << 40);
    vec![
        (
            "hard link to outside",
            vec![link("project/x", Link, &format!("{canary}/keep.txt"))],
            "member `project/x` is a hard link; an archive holds no hard links".into(),
        ),
        (
            "`..` in a name",
            vec![file("project/../../canary/x", "x")],
            "member `project/../../canary/x` is refused: its name climbs out with `..`".into(),
        ),
        (
            "absolute path",
            vec![file(&format!("{canary}/x"), "x")],
            format!("member `{canary}/x` is refused: its name is an absolute path"),
        ),
        (
            "`./` and `//` spellings of one name",
            vec![file("project/a", "one"), file("./project//a", "two")],
            "member `./project//a` appears twice (once `./`, `//` and a trailing `/` are removed)".into(),
        ),
        (
            "the same name twice",
            vec![file("project/a", "one"), file("project/a", "two")],
            "member `project/a` appears twice (once `./`, `//` and a trailing `/` are removed)".into(),
        ),
        (
            "character device",
            vec![special("project/tty", Char)],
            "member `project/tty` is a device, FIFO or other special file (Char); an archive holds only files, folders and symlinks".into(),
        ),
        (
            "block device",
            vec![special("project/disk", Block)],
            "member `project/disk` is a device, FIFO or other special file (Block); an archive holds only files, folders and symlinks".into(),
        ),
        (
            "FIFO",
            vec![special("project/pipe", Fifo)],
            "member `project/pipe` is a device, FIFO or other special file (Fifo); an archive holds only files, folders and symlinks".into(),
        ),
        (
            "huge declared size",
            vec![huge],
            "member `project/big.bin` declares 2.0 TiB, which takes the archive over the 1.0 TiB it may hold".into(),
        ),
        (
            "a control character in a name",
            vec![file("project/a\nb", "x")],
            "member `project/a\\nb` is refused: its name holds a control character".into(),
        ),
    ]
}

#[test]
fn crafted_project_members_are_refused_and_nothing_is_written_outside() {
    let (sandbox, canary) = sandbox_with_canary();
    let mut cases = link_cases(&canary);
    cases.extend(name_cases(&canary));
    for (name, members, detail) in &cases {
        let bytes = archive(&manifest(PROJECT, IMAGE), members, &own_stream());
        refused(&sandbox, name, &bytes, detail);
        assert_eq!(tree(&canary), ["keep.txt"], "case {name} wrote into the canary folder");
        assert_eq!(fs::metadata(&canary).unwrap().permissions().mode() & 0o777, 0o755, "case {name}");
    }
    // The count is quoted in the issue's closing note: keep it in step with the cases.
    assert_eq!(cases.len(), 17);
}

#[test]
fn an_oversized_manifest_or_checksum_list_is_refused_before_it_is_read() {
    let (sandbox, _canary) = sandbox_with_canary();
    let mut builder = tar::Builder::new(Vec::new());
    append_raw(&mut builder, &Raw { declared: Some(1 << 30), ..file("dpe-archive.json", "{}") });
    let bytes = zstd::encode_all(&builder.into_inner().unwrap()[..], 1).unwrap();
    let detail = "member `dpe-archive.json` declares 1.0 GiB, over the 16.0 MiB it may have";
    refused(&sandbox, "huge manifest", &bytes, detail);
    let mut builder = tar::Builder::new(Vec::new());
    append_raw(&mut builder, &file("dpe-archive.json", &manifest(PROJECT, IMAGE).to_string()));
    append_raw(&mut builder, &Raw { data: own_stream(), ..file("image/docker-save.tar.00000", "") });
    append_raw(&mut builder, &Raw { declared: Some(1 << 30), ..file("dpe-archive.sha256", "") });
    let bytes = zstd::encode_all(&builder.into_inner().unwrap()[..], 1).unwrap();
    let detail = "member `dpe-archive.sha256` declares 1.0 GiB, over the 256.0 MiB it may have";
    refused(&sandbox, "huge checksum list", &bytes, detail);
}

/// `docker load` parses the stream's metadata with Go's `encoding/json`, which matches keys
/// ignoring case with Unicode folding (`ſ` is `s`, `K` is `k`) and lets the last of two equal
/// keys win: anything but the keys `docker save` writes, spelt exactly, once, is refused.
#[test]
fn metadata_another_parser_could_read_differently_is_refused() {
    let (sandbox, _canary) = sandbox_with_canary();
    let stream = |members: &[Raw]| {
        let mut builder = tar::Builder::new(Vec::new());
        members.iter().for_each(|raw| append_raw(&mut builder, raw));
        builder.into_inner().unwrap()
    };
    let why =
        |member: &str, why: &str| format!("the image stream's `{member}` is not what `docker save` writes: {why}");
    let fields = "expected one of `Config`, `RepoTags`, `Layers`";
    let listing =
        |twin: &str| format!(r#"[{{"Config":"c","Layers":[],"RepoTags":["{IMAGE}"],"{twin}":["python:3"]}}]"#);
    // serde_json reports the column (in bytes) of the key's closing quote.
    let column = |twin: &str| listing(twin).rfind(&format!("\"{twin}\"")).unwrap() + twin.len() + 2;
    let index = r#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"d","size":1,"Annotations":{"io.containerd.image.name":"python:3"}}]}"#;
    let cases = [
        (
            "long s folding to RepoTags",
            stream(&[file("manifest.json", &listing("RepoTag\u{17f}"))]),
            why("manifest.json", &format!("unknown field `RepoTag\u{17f}`, {fields} at line 1 column {}", column("RepoTag\u{17f}"))),
        ),
        (
            "lower-case key and ./ spelling",
            stream(&[file("./manifest.json", &listing("repotags"))]),
            why("manifest.json", &format!("unknown field `repotags`, {fields} at line 1 column {}", column("repotags"))),
        ),
        (
            "a key given twice",
            stream(&[file("manifest.json", &listing("RepoTags"))]),
            why("manifest.json", &format!("duplicate field `RepoTags` at line 1 column {}", column("RepoTags"))),
        ),
        (
            "OCI index annotations spelt otherwise",
            stream(&[file("index.json", index)]),
            why("index.json", "unknown field `Annotations`, expected one of `mediaType`, `digest`, `size`, `annotations`, `platform` at line 1 column 84"),
        ),
        (
            "manifest.json as a link to an unchecked file",
            stream(&[
                file("blob", r#"[{"RepoTags":["python:3"]}]"#),
                link("manifest.json", tar::EntryType::Symlink, "blob"),
            ]),
            "the image stream's member `manifest.json` names tags but is not a plain file".to_string(),
        ),
    ];
    for (name, stream, detail) in &cases {
        refused(&sandbox, name, &archive(&manifest(PROJECT, IMAGE), &[], stream), detail);
    }
}

#[test]
fn too_many_members_are_refused() {
    let (sandbox, _canary) = sandbox_with_canary();
    let mut builder = tar::Builder::new(Vec::new());
    append_raw(&mut builder, &file("dpe-archive.json", &manifest(PROJECT, IMAGE).to_string()));
    for i in 0..1_000_000 {
        append_raw(&mut builder, &file(&format!("project/f{i}"), ""));
    }
    let bytes = zstd::encode_all(&builder.into_inner().unwrap()[..], 1).unwrap();
    refused(
        &sandbox,
        "too many members",
        &bytes,
        "member `project/f999999` is one more than the 1000000 members an archive may hold",
    );
}

#[test]
fn an_archive_may_promise_only_its_own_tags() {
    let (sandbox, _canary) = sandbox_with_canary();
    for (promised, detail) in [
        ("python:3", "`dpe-archive.json` names the image `python:3`, but an archive of project `hostile` carries `dpe-export/PROJECT:VERSION` only"),
        ("dpe-export/other:latest", "`dpe-archive.json` names the image `dpe-export/other:latest`, but an archive of project `hostile` carries `dpe-export/PROJECT:VERSION` only"),
    ] {
        let bytes = archive(&manifest(PROJECT, promised), &[], &save_stream(&[promised]));
        refused(&sandbox, promised, &bytes, detail);
    }
}

/// On the real engine: a stream whose metadata names tags the archive does not own (a
/// throwaway victim, and the user's own `dpe-export/PROJECT:latest` of the project the archive
/// claims to be) moves none of them, whether the import fails after loading or succeeds under
/// another name. The imported environment gets one tag, of the project it was imported as,
/// which that project plans; never the content-hash tag other projects with the same inputs
/// would find.
#[test]
fn an_import_sets_no_tag_but_one_of_the_project_it_is_imported_as() {
    if !docker_available() {
        return;
    }
    let (sandbox, _canary) = sandbox_with_canary();
    let _cleanup = DockerCleanup::new(&sandbox);
    let id = sandbox.id();
    let claimed = format!("hostile-{id}");
    let own = format!("dpe-export/{claimed}:latest");
    let victim = format!("dpe-hostile-test/victim-{id}:1");
    let sender = format!("dpe-hostile-test/sender-{id}:1");
    let name = format!("other-{id}");
    let mut images = ImageCleanup(vec![victim.clone(), own.clone(), sender.clone()]);
    let image_id = |tag: &str| stdout(&docker(&["image", "inspect", "--format", "{{.Id}}", tag])).trim().to_string();
    for tag in [&victim, &own] {
        assert!(docker(&["tag", "debian:bookworm-slim", tag]).status.success());
    }
    let before = [image_id(&victim), image_id(&own)];
    let unchanged = |case: &str| assert_eq!([image_id(&victim), image_id(&own)], before, "{case} moved a tag");

    // The sender's image: anything at all, with the folder the volume is filled from.
    let dockerfile = format!("FROM dpe-test/bookworm:latest\nLABEL dpe.test.sender={id}\nRUN mkdir -p /opt/venv\n");
    let mut build = sandbox.command("docker");
    build.args(["build", "--quiet", "--tag", &sender, "-"]).stdin(std::process::Stdio::piped());
    build.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = build.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(dockerfile.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let sender_id = image_id(&sender);
    images.0.push(sender_id.clone());
    let saved = docker(&["save", &sender]);
    assert!(saved.status.success());
    let stream = with_extra_tag(&with_extra_tag(&saved.stdout, &victim), &own);
    // Only the archive holds the image now: loading it would really (re)tag.
    assert!(docker(&["image", "rm", &sender]).status.success());

    let toml = format!("image = \"dpe-test/bookworm:latest\"\nenv = {{ HOSTILE = \"{id}\" }}\n");
    let members = [file("project/dpe.toml", &toml)];
    let mut manifest = manifest(&claimed, &own);
    manifest["environment_image_id"] = sender_id.clone().into();
    manifest["image_id"] = format!("sha256:{}", "0".repeat(64)).into();
    let path = sandbox.path("claims-a-project.dpe");
    fs::write(&path, archive(&manifest, &members, &stream)).unwrap();
    let failed = dpe(&sandbox, &["import", path.to_str().unwrap(), "--as", &name]).output().unwrap();
    assert_eq!(
        (failed.status.code(), stderr(&failed)),
        (
            Some(1),
            format!(
                "error: the archive recorded the image `{own}` as sha256:{}, but its image stream loaded {sender_id}\n\
             help: the project was not created and no tag was set; the archive is inconsistent: export it again\n",
                "0".repeat(64)
            )
        )
    );
    unchanged("a failed import");
    assert!(!sandbox.workspace().join("projects").join(&name).exists());

    manifest["image_id"] = sender_id.clone().into();
    fs::write(&path, archive(&manifest, &members, &stream)).unwrap();
    let imported = ok(&mut dpe(&sandbox, &["import", path.to_str().unwrap(), "--as", &name]));
    unchanged("an import");
    let tags = stdout(&docker(&["image", "inspect", "--format", "{{join .RepoTags \" \"}}", &sender_id]));
    let tag = tags.trim();
    assert!(tag.starts_with(&format!("dpe-jupyter-imported:{name}-")) && !tag.contains(' '), "{tag}");
    assert!(
        stdout(&imported).ends_with(&format!("its environment image is `{tag}`: start it with `dpe jupyter {name}`\n"))
    );
    // The project it was imported as plans that image; the shared tag is not set, so another
    // project with the same dpe.toml builds its own.
    assert_eq!(spec(&sandbox, &name)["image"], tag);
    let hash = tag.rsplit('-').next().unwrap();
    assert!(!docker(&["image", "inspect", &format!("dpe-jupyter:{hash}")]).status.success());
}

/// `stream` (a `docker save`) with `extra` added to its manifest.json's `RepoTags` and to its
/// `repositories` file, the rest copied as it is.
fn with_extra_tag(stream: &[u8], extra: &str) -> Vec<u8> {
    use std::io::Read;
    let mut out = tar::Builder::new(Vec::new());
    for entry in tar::Archive::new(stream).entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path == Path::new("manifest.json") {
            let mut value: serde_json::Value = serde_json::from_slice(&data).unwrap();
            value[0]["RepoTags"].as_array_mut().unwrap().push(extra.into());
            data = value.to_string().into_bytes();
        } else if path == Path::new("repositories") {
            let mut value: serde_json::Value = serde_json::from_slice(&data).unwrap();
            let (repository, tag) = extra.rsplit_once(':').unwrap();
            let id = value
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .clone();
            value[repository] = serde_json::json!({ tag: id });
            data = value.to_string().into_bytes();
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        if header.entry_type() == tar::EntryType::Symlink {
            out.append_link(&mut header, &path, entry.link_name().unwrap().unwrap()).unwrap();
        } else {
            out.append_data(&mut header, &path, &data[..]).unwrap();
        }
    }
    out.into_inner().unwrap()
}

//! The `.dpe` archive: one zstd-compressed tar holding a project's environment image (`docker
//! save`), its configuration, optionally its folder, and the checksums of all of it.
//!
//! Layout, in this order (the order is part of the format and checked on reading):
//! - `dpe-archive.json`: the [`Manifest`] (format, project, image tag and ID, …);
//! - `project/…`: the project's files (its config, or the whole folder with `--with-data`);
//! - `image/docker-save.tar.00000`, `.00001`, …: the `docker save` stream (of the exported
//!   image and the environment image under it; shared layers are stored once) cut into parts of
//!   at most 64 MiB, because a tar header needs its size before the data and `docker save`
//!   does not announce one; concatenated they are exactly what `docker load` reads;
//! - `dpe-archive.sha256`: `sha256sum` lines for every member before it; always last.
//!
//! The zstd frame carries its own checksum, so a cut or flipped byte fails decompression; the
//! member checksums catch everything else. [`verify`] reads the whole file before anything is
//! changed; [`unpack`] reads it again, writing and loading, and checks every member once more
//! (the file could have changed in between). To inspect one by hand:
//! `zstd -dc FILE | tar -t`, and `zstd -dc FILE | tar -xO 'image/*' | docker load`.

use crate::progress::{Progress, ProgressReader};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

pub const MANIFEST_NAME: &str = "dpe-archive.json";
pub const CHECKSUMS_NAME: &str = "dpe-archive.sha256";
pub const FORMAT: &str = "dpe-archive";
pub const FORMAT_VERSION: u32 = 1;
const PROJECT_PREFIX: &str = "project/";
const IMAGE_PREFIX: &str = "image/docker-save.tar.";
const CHUNK: usize = 64 << 20;

/// What the archive says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`]; a reader refuses a newer one.
    pub version: u32,
    /// The exported project's name.
    pub project: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The dpe and plugin versions that wrote it.
    pub dpe_version: String,
    pub export_version: String,
    /// The image in the `docker save` stream: its tag and ID (`sha256:…`).
    pub image: String,
    pub image_id: String,
    /// The image dpe jupyter built the environment from, where it was exported (for the record).
    pub source_image: String,
    /// That environment image (without the volume's content), also in the `docker save`
    /// stream under this tag, and its ID: import tags it as `dpe jupyter` will look for it.
    pub environment_image: String,
    pub environment_image_id: String,
    /// Where the environment's persisted volume is mounted; its content is baked into the image
    /// at this path, so a fresh volume is filled from it on first mount.
    pub volume_target: Option<String>,
    /// `uid:gid` that owned the volume's root where it was exported; an import by another
    /// user hands the baked-in environment to that user.
    #[serde(default)]
    pub owner: Option<String>,
    /// Whether `project/` holds the whole project folder or only its configuration.
    pub with_data: bool,
    /// The project's resolved configuration when exported, for the record.
    pub config: serde_json::Value,
}

/// A writer of archives; members go in the order the format prescribes.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<zstd::Encoder<'static, W>>,
    sums: Vec<(String, String)>,
    image_parts: usize,
    chunk: usize,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `out` with its manifest.
    pub fn new(out: W, manifest: &Manifest) -> io::Result<ArchiveWriter<W>> {
        let mut encoder = zstd::Encoder::new(out, 3)?;
        encoder.include_checksum(true)?;
        let workers = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        if workers > 1 {
            encoder.multithread(workers)?;
        }
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut writer = ArchiveWriter { tar, sums: Vec::new(), image_parts: 0, chunk: CHUNK };
        let json = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
        writer.append_bytes(MANIFEST_NAME, &json, 0o644, manifest.created)?;
        Ok(writer)
    }

    fn append_bytes(&mut self, path: &str, bytes: &[u8], mode: u32, mtime: u64) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(mtime);
        self.tar.append_data(&mut header, path, bytes)?;
        self.sums.push((hex(&Sha256::digest(bytes)), path.to_string()));
        Ok(())
    }

    /// Adds `files` (paths relative to `root`, directories included) under `project/`. Symlinks
    /// are kept as links; sockets and the like are skipped.
    pub fn append_project(&mut self, root: &Path, files: &[PathBuf]) -> io::Result<()> {
        for rel in files {
            let path = root.join(rel);
            let meta = fs::symlink_metadata(&path)?;
            let name = format!("{PROJECT_PREFIX}{}", rel.to_string_lossy());
            let mtime = mtime_of(&meta);
            let mut header = tar::Header::new_gnu();
            header.set_mtime(mtime);
            header.set_mode(mode_of(&meta));
            if meta.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                self.tar.append_data(&mut header, format!("{name}/"), io::empty())?;
                self.sums.push((hex(&Sha256::digest(b"")), format!("{name}/")));
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&path)?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                self.tar.append_link(&mut header, &name, &target)?;
                let digest = Sha256::digest(target.to_string_lossy().as_bytes());
                self.sums.push((hex(&digest), name));
            } else if meta.is_file() {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(meta.len());
                let file = fs::File::open(&path)?;
                let mut reader = HashReader::new(file.take(meta.len()));
                self.tar.append_data(&mut header, &name, &mut reader)?;
                if reader.count != meta.len() {
                    return Err(io::Error::other(format!(
                        "`{}` changed size while it was being archived",
                        path.display()
                    )));
                }
                self.sums.push((reader.hex(), name));
            }
        }
        Ok(())
    }

    /// Adds the `docker save` stream, cut into parts; returns the bytes read.
    pub fn append_image(&mut self, mut stream: impl Read, mtime: u64) -> io::Result<u64> {
        let mut total = 0;
        let mut buffer = Vec::with_capacity(self.chunk);
        loop {
            buffer.clear();
            (&mut stream).take(self.chunk as u64).read_to_end(&mut buffer)?;
            if buffer.is_empty() {
                break;
            }
            total += buffer.len() as u64;
            let name = format!("{IMAGE_PREFIX}{:05}", self.image_parts);
            self.image_parts += 1;
            self.append_bytes(&name, &buffer, 0o644, mtime)?;
        }
        if self.image_parts == 0 {
            return Err(io::Error::other("`docker save` produced no data"));
        }
        Ok(total)
    }

    /// Writes the checksum list and ends the tar and the zstd frame; returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        let list: String = self.sums.iter().map(|(sum, path)| format!("{sum}  {path}\n")).collect();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(list.len() as u64);
        header.set_mode(0o644);
        self.tar.append_data(&mut header, CHECKSUMS_NAME, list.as_bytes())?;
        let encoder = self.tar.into_inner()?;
        encoder.finish()
    }
}

/// What [`verify`] found: a sound archive.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    /// sha256 of the file itself, as `sha256sum` prints it.
    pub file_sha256: String,
    /// Member path → sha256, from the archive's own list (all of which matched).
    pub sums: BTreeMap<String, String>,
    /// Bytes of the `docker save` stream.
    pub image_bytes: u64,
    /// Paths under `project/`, without the prefix.
    pub project_files: Vec<String>,
}

/// Why an archive was refused.
#[derive(Debug)]
pub enum Damage {
    /// The file could not be read at all.
    Io(io::Error),
    /// Truncated, not zstd, not tar, checksums wrong, members out of place.
    Broken(String),
}

impl From<io::Error> for Damage {
    fn from(error: io::Error) -> Damage {
        // Decoding errors surface as io errors; a cut file shows up as an unexpected end of the
        // tar stream or as zstd's "incomplete frame".
        let text = error.to_string();
        if error.kind() == io::ErrorKind::UnexpectedEof || text.contains("incomplete frame") {
            return Damage::Broken("it is truncated (the compressed stream ends early)".to_string());
        }
        Damage::Broken(text)
    }
}

/// Reads only the manifest (the first member): cheap, for deciding early whether an import can
/// go ahead. [`verify`] still checks everything.
pub fn peek_manifest(path: &Path) -> Result<Manifest, Damage> {
    let file = fs::File::open(path).map_err(Damage::Io)?;
    let mut archive = open_tar(file)?;
    let mut layout = Layout::default();
    let first = archive.entries()?.next();
    match first {
        Some(entry) => {
            layout.classify(&mut entry?)?;
            layout.manifest.ok_or_else(|| Damage::Broken(format!("`{MANIFEST_NAME}` is missing")))
        }
        None => Err(Damage::Broken("it holds nothing".to_string())),
    }
}

/// Reads the whole archive at `path` and checks its structure and every checksum, changing
/// nothing. The expensive part is one decompression pass.
pub fn verify(path: &Path) -> Result<Verified, Damage> {
    let file = fs::File::open(path).map_err(Damage::Io)?;
    let size = file.metadata().map_err(Damage::Io)?.len();
    let mut progress = Progress::new("verifying", Some(size));
    let mut outer = HashReader::new(ProgressReader { inner: file, progress: &mut progress });
    let mut archive = open_tar(&mut outer)?;
    let mut layout = Layout::default();
    let mut image_bytes = 0;
    let mut project_files = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let member = layout.classify(&mut entry)?;
        let mut hasher = HashReader::new(&mut entry);
        io::copy(&mut hasher, &mut io::sink())?;
        match &member.kind {
            Kind::Image => image_bytes += hasher.count,
            Kind::Project(rel) => project_files.push(rel.clone()),
            _ => {}
        }
        let digest = member.digest.clone().unwrap_or_else(|| hasher.hex());
        layout.record(&member, digest);
    }
    drain_to_end(archive.into_inner())?;
    let (manifest, sums) = layout.finish()?;
    let file_sha256 = outer.hex();
    progress.finish();
    Ok(Verified { manifest, file_sha256, sums, image_bytes, project_files })
}

/// Reads the archive again: writes `project/` into `project_dir` (created; it must not exist
/// yet) and streams the image parts into `image_sink`, checking each member against the sums
/// [`verify`] read. Returns the number of image bytes written.
pub fn unpack(
    path: &Path,
    verified: &Verified,
    project_dir: &Path,
    image_sink: &mut dyn Write,
    label: &str,
) -> Result<u64, Damage> {
    let file = fs::File::open(path).map_err(Damage::Io)?;
    let size = file.metadata().map_err(Damage::Io)?.len();
    let mut progress = Progress::new(label, Some(size));
    let mut reader = ProgressReader { inner: file, progress: &mut progress };
    let mut archive = open_tar(&mut reader)?;
    fs::create_dir(project_dir).map_err(Damage::Io)?;
    let mut layout = Layout::default();
    let mut image_bytes = 0;
    let mut directories = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let member = layout.classify(&mut entry)?;
        let digest = match &member.kind {
            Kind::Image => {
                let mut hasher = HashReader::new(&mut entry);
                image_bytes += io::copy(&mut hasher, image_sink).map_err(|e| {
                    Damage::Io(io::Error::new(e.kind(), format!("streaming the image into `docker load` failed: {e}")))
                })?;
                hasher.hex()
            }
            Kind::Project(rel) => {
                let dest = project_dir.join(rel);
                let header = entry.header().clone();
                let mtime = header.mtime().unwrap_or(0);
                let mode = header.mode().unwrap_or(0o644) & 0o777;
                match header.entry_type() {
                    tar::EntryType::Directory => {
                        fs::create_dir_all(&dest).map_err(Damage::Io)?;
                        directories.push((dest, mode, mtime));
                        hex(&Sha256::digest(b""))
                    }
                    tar::EntryType::Symlink => {
                        let target = entry.link_name()?.unwrap_or_default().into_owned();
                        std::os::unix::fs::symlink(&target, &dest).map_err(Damage::Io)?;
                        member.digest.clone().unwrap_or_default()
                    }
                    _ => {
                        let mut out = fs::File::create(&dest).map_err(Damage::Io)?;
                        let mut hasher = HashReader::new(&mut entry);
                        io::copy(&mut hasher, &mut out).map_err(Damage::Io)?;
                        use std::os::unix::fs::PermissionsExt;
                        out.set_permissions(fs::Permissions::from_mode(mode)).map_err(Damage::Io)?;
                        let _ = out.set_modified(time_of(mtime));
                        hasher.hex()
                    }
                }
            }
            Kind::Manifest | Kind::Checksums => member.digest.clone().unwrap_or_default(),
        };
        if member.kind != Kind::Checksums && verified.sums.get(&member.path) != Some(&digest) {
            return Err(Damage::Broken(format!("`{}` changed since it was verified", member.path)));
        }
        layout.record(&member, digest);
    }
    drain_to_end(archive.into_inner())?;
    layout.finish()?;
    // Directory modes and times last: writing their files touched them.
    for (dir, mode, mtime) in directories.into_iter().rev() {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o700));
        if let Ok(handle) = fs::File::open(&dir) {
            let _ = handle.set_modified(time_of(mtime));
        }
    }
    progress.finish();
    Ok(image_bytes)
}

type Decoder<R> = zstd::Decoder<'static, io::BufReader<R>>;

fn open_tar<R: Read>(reader: R) -> Result<tar::Archive<Decoder<R>>, Damage> {
    let decoder = zstd::Decoder::new(reader).map_err(|e| Damage::Broken(format!("not a zstd stream: {e}")))?;
    Ok(tar::Archive::new(decoder))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Manifest,
    Project(String),
    Image,
    Checksums,
}

/// A member as [`Layout::classify`] saw it.
struct Member {
    path: String,
    kind: Kind,
    /// The digest when classifying already consumed the content (manifest, checksum list) or
    /// the member has none (a symlink is checksummed by its target).
    digest: Option<String>,
}

/// The layout rules: manifest first, then project files, then consecutive image parts, then
/// the checksum list, then nothing; no name twice; nothing below a symlink.
#[derive(Default)]
struct Layout {
    stage: u8,
    image_parts: usize,
    seen: Vec<(String, String)>,
    manifest: Option<Manifest>,
    listed: Option<String>,
    symlinks: HashSet<String>,
    names: HashSet<String>,
}

impl Layout {
    fn classify<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<Member, Damage> {
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| Damage::Broken("a member's name is not UTF-8".to_string()))?;
        if self.listed.is_some() {
            return Err(Damage::Broken(format!("`{path}` follows the checksum list, which must come last")));
        }
        if !self.names.insert(path.clone()) {
            return Err(Damage::Broken(format!("`{path}` appears twice")));
        }
        let mut digest = None;
        let kind = if path == MANIFEST_NAME {
            if self.stage != 0 {
                return Err(Damage::Broken(format!("`{MANIFEST_NAME}` is not the first member")));
            }
            self.stage = 1;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            self.manifest = Some(parse_manifest(&bytes)?);
            digest = Some(hex(&Sha256::digest(&bytes)));
            Kind::Manifest
        } else if self.stage == 0 {
            return Err(Damage::Broken(format!(
                "the first member is `{path}`, not `{MANIFEST_NAME}`: this is not a dpe archive"
            )));
        } else if let Some(rel) = path.strip_prefix(PROJECT_PREFIX) {
            if self.stage != 1 {
                return Err(Damage::Broken(format!("project file `{path}` comes after the image")));
            }
            let rel = rel.trim_end_matches('/').to_string();
            check_relative(&rel)?;
            if let Some(link) = self.symlinks.iter().find(|link| rel.starts_with(&format!("{link}/"))) {
                return Err(Damage::Broken(format!("`{path}` lies below the symlink `{PROJECT_PREFIX}{link}`")));
            }
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Directory => {}
                tar::EntryType::Symlink => {
                    let target = entry.link_name()?.map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                    digest = Some(hex(&Sha256::digest(target.as_bytes())));
                    self.symlinks.insert(rel.clone());
                }
                other => return Err(Damage::Broken(format!("`{path}` has an unsupported type ({other:?})"))),
            }
            Kind::Project(rel)
        } else if let Some(number) = path.strip_prefix(IMAGE_PREFIX) {
            if self.stage > 2 {
                return Err(Damage::Broken(format!("`{path}` is out of place")));
            }
            self.stage = 2;
            if number != format!("{:05}", self.image_parts) {
                return Err(Damage::Broken(format!(
                    "image part `{path}` is out of order (expected part {:05})",
                    self.image_parts
                )));
            }
            self.image_parts += 1;
            Kind::Image
        } else if path == CHECKSUMS_NAME {
            if self.image_parts == 0 {
                return Err(Damage::Broken("the archive holds no image".to_string()));
            }
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            self.listed = Some(text);
            digest = Some(String::new());
            Kind::Checksums
        } else {
            return Err(Damage::Broken(format!("unexpected member `{path}`")));
        };
        Ok(Member { path, kind, digest })
    }

    fn record(&mut self, member: &Member, digest: String) {
        if member.kind != Kind::Checksums {
            self.seen.push((digest, member.path.clone()));
        }
    }

    fn finish(mut self) -> Result<(Manifest, BTreeMap<String, String>), Damage> {
        let Some(listed) = self.listed.take() else {
            return Err(Damage::Broken(format!("the archive ends before `{CHECKSUMS_NAME}`: it is truncated")));
        };
        let mut sums = BTreeMap::new();
        let mut expected = Vec::new();
        for line in listed.lines() {
            let Some((sum, path)) = line.split_once("  ") else {
                return Err(Damage::Broken(format!("`{CHECKSUMS_NAME}` has a malformed line: `{line}`")));
            };
            expected.push((sum.to_string(), path.to_string()));
            sums.insert(path.to_string(), sum.to_string());
        }
        if expected.len() != self.seen.len() {
            return Err(Damage::Broken(format!(
                "`{CHECKSUMS_NAME}` lists {} members but the archive holds {}",
                expected.len(),
                self.seen.len()
            )));
        }
        for ((want, want_path), (got, got_path)) in expected.iter().zip(&self.seen) {
            if want_path != got_path {
                return Err(Damage::Broken(format!(
                    "`{CHECKSUMS_NAME}` lists `{want_path}` where the archive holds `{got_path}`"
                )));
            }
            if want != got {
                return Err(Damage::Broken(format!(
                    "`{got_path}` does not match its checksum (sha256 {got}, listed {want})"
                )));
            }
        }
        let manifest = self.manifest.take().expect("a manifest precedes the checksum list");
        Ok((manifest, sums))
    }
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest, Damage> {
    #[derive(Deserialize)]
    struct Probe {
        format: Option<String>,
        version: Option<u32>,
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| Damage::Broken(format!("`{MANIFEST_NAME}` is not valid JSON: {e}")))?;
    if probe.format.as_deref() != Some(FORMAT) {
        return Err(Damage::Broken(format!("`{MANIFEST_NAME}` does not describe a dpe archive")));
    }
    let version = probe.version.unwrap_or(0);
    if version > FORMAT_VERSION {
        return Err(Damage::Broken(format!(
            "the archive has format version {version}; this dpe reads version {FORMAT_VERSION} and older"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| Damage::Broken(format!("`{MANIFEST_NAME}` does not parse: {e}")))
}

/// After the tar's end marker only zero padding may follow, and the zstd frame must end
/// properly; reading to the end makes the decoder check the frame checksum.
fn drain_to_end<R: Read>(mut decoder: R) -> Result<(), Damage> {
    let mut buffer = [0u8; 8192];
    loop {
        let n = decoder.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        if buffer[..n].iter().any(|b| *b != 0) {
            return Err(Damage::Broken("data follows the end of the tar stream".to_string()));
        }
    }
}

fn check_relative(rel: &str) -> Result<(), Damage> {
    let path = Path::new(rel);
    let ok = !rel.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(Damage::Broken(format!("project file `{rel}` would land outside the project folder")))
    }
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

fn mtime_of(meta: &fs::Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs()).unwrap_or(0)
}

fn time_of(seconds: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
}

/// A reader that hashes and counts what passes through it.
pub struct HashReader<R> {
    pub inner: R,
    pub hasher: Sha256,
    pub count: u64,
}

impl<R> HashReader<R> {
    pub fn new(inner: R) -> HashReader<R> {
        HashReader { inner, hasher: Sha256::new(), count: 0 }
    }

    pub fn hex(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.to_string(),
            version: FORMAT_VERSION,
            project: "project_a".to_string(),
            created: 1_700_000_000,
            dpe_version: "0.1.0".to_string(),
            export_version: "0.1.0".to_string(),
            image: "dpe-export/project_a:latest".to_string(),
            image_id: "sha256:abc".to_string(),
            source_image: "dpe/project_a:123".to_string(),
            environment_image: "dpe-export/project_a:latest-environment".to_string(),
            environment_image_id: "sha256:def".to_string(),
            volume_target: Some("/opt/venv".to_string()),
            owner: Some("1000:1000".to_string()),
            with_data: true,
            config: serde_json::json!({"image": "dpe-test/bookworm:latest"}),
        }
    }

    /// A project folder and an archive of it with a 3 MiB "image" in 1 MiB parts.
    fn sample() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        fs::create_dir_all(project.join("notebooks")).unwrap();
        fs::write(project.join("dpe.toml"), "image = \"x\"\n").unwrap();
        fs::write(project.join("notebooks/a.ipynb"), "{\"cells\": []}").unwrap();
        std::os::unix::fs::symlink("notebooks/a.ipynb", project.join("latest")).unwrap();
        let files: Vec<PathBuf> =
            ["dpe.toml", "latest", "notebooks", "notebooks/a.ipynb"].iter().map(PathBuf::from).collect();
        let image: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        let mut writer = ArchiveWriter::new(Vec::new(), &manifest()).unwrap();
        writer.chunk = 1 << 20;
        writer.append_project(&project, &files).unwrap();
        assert_eq!(writer.append_image(&image[..], 0).unwrap(), image.len() as u64);
        let bytes = writer.finish().unwrap();
        (dir, project, bytes)
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn round_trip_restores_files_links_and_the_image_stream() {
        let (dir, _project, bytes) = sample();
        let path = write(dir.path(), "a.dpe", &bytes);
        let verified = verify(&path).unwrap();
        assert_eq!(verified.manifest, manifest());
        assert_eq!(verified.image_bytes, 3 << 20);
        assert_eq!(verified.sums.keys().filter(|k| k.starts_with(IMAGE_PREFIX)).count(), 3);
        assert_eq!(verified.project_files, ["dpe.toml", "latest", "notebooks", "notebooks/a.ipynb"]);
        assert_eq!(verified.file_sha256, hex(&Sha256::digest(&bytes)));
        let out = dir.path().join("out");
        let mut image = Vec::new();
        unpack(&path, &verified, &out, &mut image, "loading").unwrap();
        assert_eq!(image.len(), 3 << 20);
        assert!(image.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
        assert_eq!(fs::read_to_string(out.join("notebooks/a.ipynb")).unwrap(), "{\"cells\": []}");
        assert_eq!(fs::read_link(out.join("latest")).unwrap(), Path::new("notebooks/a.ipynb"));
    }

    #[test]
    fn truncated_archives_are_refused() {
        let (dir, _project, bytes) = sample();
        assert_eq!(peek_manifest(&write(dir.path(), "whole.dpe", &bytes)).unwrap(), manifest());
        for cut in [10, bytes.len() / 2, bytes.len() - 40, bytes.len() - 1] {
            let path = write(dir.path(), "cut.dpe", &bytes[..cut]);
            match verify(&path) {
                Err(Damage::Broken(message)) if cut > 10 => {
                    assert_eq!(message, "it is truncated (the compressed stream ends early)", "cut at {cut}")
                }
                Err(Damage::Broken(_)) => {}
                other => panic!("a file cut at {cut} of {} was accepted: {other:?}", bytes.len()),
            }
        }
    }

    #[test]
    fn a_flipped_byte_is_refused() {
        let (dir, _project, mut bytes) = sample();
        let at = bytes.len() / 3;
        bytes[at] ^= 0x40;
        let path = write(dir.path(), "flip.dpe", &bytes);
        assert!(matches!(verify(&path), Err(Damage::Broken(_))));
    }

    #[test]
    fn a_rewritten_member_fails_its_checksum() {
        // Re-pack the same members with one file changed: the zstd frame is sound, the tar is
        // sound, only the listed checksum tells.
        let (dir, _project, bytes) = sample();
        let mut archive = tar::Archive::new(zstd::Decoder::new(&bytes[..]).unwrap());
        let mut builder = tar::Builder::new(Vec::new());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut header = entry.header().clone();
            let path = entry.path().unwrap().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            if path == Path::new("project/dpe.toml") {
                data = b"image = \"evil\"\n".to_vec();
                header.set_size(data.len() as u64);
            }
            if header.entry_type() == tar::EntryType::Symlink {
                let target = entry.link_name().unwrap().unwrap().into_owned();
                builder.append_link(&mut header, &path, &target).unwrap();
            } else {
                builder.append_data(&mut header, &path, &data[..]).unwrap();
            }
        }
        let tampered = zstd::encode_all(&builder.into_inner().unwrap()[..], 1).unwrap();
        let path = write(dir.path(), "tampered.dpe", &tampered);
        match verify(&path) {
            Err(Damage::Broken(message)) => {
                assert!(message.starts_with("`project/dpe.toml` does not match its checksum"), "{message}")
            }
            other => panic!("tampered archive accepted: {other:?}"),
        }
    }

    #[test]
    fn paths_outside_the_project_are_refused() {
        assert!(check_relative("a/b").is_ok());
        assert!(check_relative("../a").is_err());
        assert!(check_relative("/etc/passwd").is_err());
        assert!(check_relative("a/../../b").is_err());
    }

    #[test]
    fn something_else_is_not_a_dpe_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "x.dpe", b"hello, this is not zstd");
        assert!(matches!(verify(&path), Err(Damage::Broken(_))));
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        builder.append_data(&mut header, "other.txt", &b"hi"[..]).unwrap();
        let other = zstd::encode_all(&builder.into_inner().unwrap()[..], 1).unwrap();
        let path = write(dir.path(), "y.dpe", &other);
        match verify(&path) {
            Err(Damage::Broken(message)) => assert!(message.contains("this is not a dpe archive"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}

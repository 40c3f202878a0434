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
//!
//! An archive comes from someone else, so both passes treat it as hostile: names are
//! normalised before any rule ([`crate::names`]), members that could land or link outside,
//! special files and sizes over the caps are refused (`Layout`), files are written by
//! [`crate::extract`] without following links, and the image stream reaches `docker load` only
//! through [`crate::save_stream::filter`], which rewrites its metadata so that it sets no tag.

use crate::extract::Tree;
use crate::image;
use crate::names;
use crate::progress::{Progress, ProgressReader};
use crate::save_stream;
use dpe_plugin::sdk::units;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

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

/// Caps on what one archive may make this machine read and hold. They are checked on the
/// sizes the members declare, before their content is read, and are far above what
/// `dpe export` writes for real projects.
pub const MAX_MEMBERS: u64 = 1_000_000;
pub const MAX_TOTAL_BYTES: u64 = 1 << 40;
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
const MAX_CHECKSUMS_BYTES: u64 = 256 << 20;

/// What [`verify`] found: a sound archive.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    /// sha256 of the file itself, as `sha256sum` prints it.
    pub file_sha256: String,
    /// Member path (normalised) → sha256, from the archive's own list (all of which matched).
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
    /// Crafted to do harm, or indistinguishable from it: a member that would land or link
    /// outside, a special file, an image tag the archive may not set, a size over the caps.
    Unsafe(String),
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

/// Reads the whole archive at `path` and checks its structure, every checksum and the image
/// stream's tags, changing nothing. The expensive part is one decompression pass.
pub fn verify(path: &Path) -> Result<Verified, Damage> {
    let file = fs::File::open(path).map_err(Damage::Io)?;
    let size = file.metadata().map_err(Damage::Io)?.len();
    let mut progress = Progress::new("verifying", Some(size));
    let mut outer = HashReader::new(ProgressReader { inner: file, progress: &mut progress });
    let archive = open_tar(&mut outer)?;
    let mut hash_only = |member: &Member, content: &mut dyn Read| -> Result<String, Damage> {
        let mut hasher = HashReader::new(content);
        io::copy(&mut hasher, &mut io::sink())?;
        Ok(member.digest.clone().unwrap_or_else(|| hasher.hex()))
    };
    let passed = pass(archive, &mut io::sink(), &mut hash_only, None)?;
    let file_sha256 = outer.hex();
    progress.finish();
    Ok(Verified {
        manifest: passed.manifest,
        file_sha256,
        sums: passed.sums,
        image_bytes: passed.image_bytes,
        project_files: passed.project_files,
    })
}

/// Reads the archive again: writes `project/` into `project_dir` (created; it must not exist
/// yet) without following links, and streams the image through [`save_stream::filter`] into
/// `image_sink`, checking each member against the sums [`verify`] read. Returns the number of
/// image bytes read. On failure the stream sent to `image_sink` is made invalid, so a `docker
/// load` reading it loads nothing.
pub fn unpack(
    path: &Path,
    verified: &Verified,
    project_dir: &Path,
    image_sink: &mut (dyn Write + Send),
    label: &str,
) -> Result<u64, Damage> {
    let file = fs::File::open(path).map_err(Damage::Io)?;
    let size = file.metadata().map_err(Damage::Io)?.len();
    let mut progress = Progress::new(label, Some(size));
    let mut reader = ProgressReader { inner: file, progress: &mut progress };
    let archive = open_tar(&mut reader)?;
    let mut tree = Tree::create(project_dir).map_err(Damage::Io)?;
    let mut write = |member: &Member, content: &mut dyn Read| -> Result<String, Damage> {
        let Kind::Project(rel) = &member.kind else { unreachable!("only project members are written") };
        let failed = |e: io::Error| Damage::Unsafe(format!("member `{}` cannot be unpacked safely: {e}", member.path));
        match member.entry_type {
            tar::EntryType::Directory => {
                tree.dir(rel, member.mode, member.mtime).map_err(failed)?;
                Ok(hex(&Sha256::digest(b"")))
            }
            tar::EntryType::Symlink => {
                let target = String::from_utf8_lossy(member.link.as_deref().unwrap_or_default()).into_owned();
                tree.symlink(rel, Path::new(&target)).map_err(failed)?;
                Ok(member.digest.clone().unwrap_or_default())
            }
            _ => {
                let mut hasher = HashReader::new(content);
                tree.file(rel, member.mode, member.mtime, &mut hasher).map_err(failed)?;
                Ok(hasher.hex())
            }
        }
    };
    let passed = pass(archive, image_sink, &mut write, Some(&verified.sums))?;
    tree.finish().map_err(Damage::Io)?;
    progress.finish();
    Ok(passed.image_bytes)
}

type Decoder<R> = zstd::Decoder<'static, io::BufReader<R>>;

fn open_tar<R: Read>(reader: R) -> Result<tar::Archive<Decoder<R>>, Damage> {
    let decoder = zstd::Decoder::new(reader).map_err(|e| Damage::Broken(format!("not a zstd stream: {e}")))?;
    Ok(tar::Archive::new(decoder))
}

/// What one pass over an archive found.
struct Passed {
    manifest: Manifest,
    sums: BTreeMap<String, String>,
    image_bytes: u64,
    project_files: Vec<String>,
}

/// One pass over `archive`, shared by [`verify`] and [`unpack`]: checks the layout; hands every
/// project member to `project`, which returns its digest; streams the image parts through
/// [`save_stream::filter`] into `image_sink`; compares every digest with `expected` (the sums
/// of an earlier pass), when given, and in the end with the archive's own list.
fn pass<R: Read>(
    mut archive: tar::Archive<Decoder<R>>,
    image_sink: &mut (dyn Write + Send),
    project: &mut dyn FnMut(&Member, &mut dyn Read) -> Result<String, Damage>,
    expected: Option<&BTreeMap<String, String>>,
) -> Result<Passed, Damage> {
    let mut layout = Layout::default();
    let mut image_bytes = 0;
    let mut project_files = Vec::new();
    let (manifest, sums) = std::thread::scope(|scope| {
        let mut sink = Some(image_sink);
        let mut feed: Option<ImageFeed> = None;
        let mut members = || -> Result<(), Damage> {
            for entry in archive.entries()? {
                let mut entry = entry?;
                let member = layout.classify(&mut entry)?;
                let digest = match &member.kind {
                    Kind::Image => {
                        if feed.is_none() {
                            feed = Some(ImageFeed::start(scope, sink.take().expect("one image stream")));
                        }
                        let (digest, count) = feed.as_mut().expect("started").copy(&mut entry)?;
                        image_bytes += count;
                        digest
                    }
                    Kind::Project(rel) => {
                        project_files.push(rel.clone());
                        project(&member, &mut entry)?
                    }
                    Kind::Manifest | Kind::Checksums => member.digest.clone().unwrap_or_default(),
                };
                let changed = expected.is_some_and(|sums| sums.get(&member.path) != Some(&digest));
                if member.kind != Kind::Checksums && changed {
                    return Err(Damage::Broken(format!("`{}` changed since it was verified", member.path)));
                }
                layout.record(&member, digest);
            }
            Ok(())
        };
        // The image stream is ended cleanly (so `docker load` may load it) only once the whole
        // archive, its end and its checksum list included, has passed.
        let looped = members().and_then(|()| {
            drain_to_end(archive.into_inner())?;
            layout.finish()
        });
        let filtered = feed.map(|feed| feed.close(looped.is_ok()));
        match (looped, filtered) {
            (Ok(found), None | Some(Ok(()))) => Ok(found),
            // A refused image stream is the reason, whether the loop then stopped because the
            // filter stopped reading or failed on the same bytes for a lesser one (a checksum).
            (_, Some(Err(reason @ Damage::Unsafe(_)))) => Err(reason),
            (Err(Damage::Io(e)), Some(Err(reason))) if e.kind() == io::ErrorKind::BrokenPipe => Err(reason),
            (Err(damage), _) | (Ok(_), Some(Err(damage))) => Err(damage),
        }
    })?;
    Ok(Passed { manifest, sums, image_bytes, project_files })
}

/// The image parts, concatenated, fed to [`save_stream::filter`] on a thread of its own (the
/// filter pulls a tar stream while the archive's parts arrive one member at a time).
struct ImageFeed<'scope> {
    sender: mpsc::SyncSender<Option<Vec<u8>>>,
    worker: std::thread::ScopedJoinHandle<'scope, Result<(), Damage>>,
}

impl<'scope> ImageFeed<'scope> {
    fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        sink: &'scope mut (dyn Write + Send),
    ) -> ImageFeed<'scope> {
        let (sender, receiver) = mpsc::sync_channel(4);
        let worker = scope.spawn(move || {
            let mut input = ChannelReader { receiver, chunk: Vec::new(), at: 0, ended: false };
            save_stream::filter(&mut input, sink)
        });
        ImageFeed { sender, worker }
    }

    /// Sends one image part; returns its sha256 and size. A `BrokenPipe` error means the
    /// filter stopped (see [`ImageFeed::close`] for why).
    fn copy(&mut self, part: &mut dyn Read) -> Result<(String, u64), Damage> {
        let mut hasher = HashReader::new(part);
        loop {
            let mut chunk = vec![0; 1 << 20];
            let n = hasher.read(&mut chunk)?;
            if n == 0 {
                return Ok((hasher.hex(), hasher.count));
            }
            chunk.truncate(n);
            if self.sender.send(Some(chunk)).is_err() {
                return Err(Damage::Io(io::Error::new(io::ErrorKind::BrokenPipe, "the image stream was refused")));
            }
        }
    }

    /// Ends the stream (`complete`) or breaks it off, and returns the filter's verdict.
    fn close(self, complete: bool) -> Result<(), Damage> {
        if complete {
            let _ = self.sender.send(None);
        }
        drop(self.sender);
        self.worker.join().unwrap_or_else(|_| Err(Damage::Broken("checking the image stream failed".to_string())))
    }
}

/// The reading end of an [`ImageFeed`]: a stream that ends cleanly only when told so, and
/// fails when the sending side gave up.
struct ChannelReader {
    receiver: mpsc::Receiver<Option<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.receiver.recv() {
                Ok(Some(chunk)) => (self.chunk, self.at) = (chunk, 0),
                Ok(None) => self.ended = true,
                Err(_) => return Err(io::Error::other("the archive was refused before its image stream ended")),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
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
    /// The normalised name.
    path: String,
    kind: Kind,
    /// The digest when classifying already consumed the content (manifest, checksum list) or
    /// the member has none (a symlink is checksummed by its target).
    digest: Option<String>,
    entry_type: tar::EntryType,
    /// Permission bits and modification time, from the header.
    mode: u32,
    mtime: u64,
    /// A symlink's target.
    link: Option<Vec<u8>>,
}

/// The layout rules: manifest first, then project files, then consecutive image parts, then
/// the checksum list, then nothing; names compared once normalised, none twice; nothing below
/// a symlink or a file; only files, folders and links that stay inside; sizes within the caps.
#[derive(Default)]
struct Layout {
    stage: u8,
    image_parts: usize,
    seen: Vec<(String, String)>,
    manifest: Option<Manifest>,
    listed: Option<String>,
    /// Project members that are not folders (files and symlinks), without the prefix.
    leaves: HashSet<String>,
    /// Project folders so far, named or implied by a member below them.
    folders: HashSet<String>,
    names: HashSet<String>,
    members: u64,
    declared: u64,
}

impl Layout {
    fn classify<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<Member, Damage> {
        let raw = entry.path_bytes().into_owned();
        let refuse = |why: &str| Damage::Unsafe(format!("member `{}` {why}", names::shown(&raw)));
        let size = entry.size();
        self.members += 1;
        self.declared = self.declared.saturating_add(size);
        if self.members > MAX_MEMBERS {
            return Err(refuse(&format!("is one more than the {MAX_MEMBERS} members an archive may hold")));
        }
        if self.declared > MAX_TOTAL_BYTES {
            return Err(refuse(&format!(
                "declares {}, which takes the archive over the {} it may hold",
                units::binary(size),
                units::binary(MAX_TOTAL_BYTES)
            )));
        }
        let path = names::normalize(&raw).map_err(|why| refuse(&format!("is refused: {why}")))?;
        if self.listed.is_some() {
            return Err(Damage::Broken(format!("`{path}` follows the checksum list, which must come last")));
        }
        if !self.names.insert(path.clone()) {
            return Err(refuse("appears twice (once `./`, `//` and a trailing `/` are removed)"));
        }
        let header = entry.header();
        let mut member = Member {
            path: path.clone(),
            kind: Kind::Manifest,
            digest: None,
            entry_type: header.entry_type(),
            mode: header.mode().unwrap_or(0o644) & 0o777,
            mtime: header.mtime().unwrap_or(0),
            link: None,
        };
        if path == MANIFEST_NAME {
            if self.stage != 0 {
                return Err(Damage::Broken(format!("`{MANIFEST_NAME}` is not the first member")));
            }
            self.stage = 1;
            let bytes = read_small(entry, size, MAX_MANIFEST_BYTES).map_err(|why| refuse(&why))?;
            self.manifest = Some(parse_manifest(&bytes)?);
            member.digest = Some(hex(&Sha256::digest(&bytes)));
        } else if self.stage == 0 {
            return Err(Damage::Broken(format!(
                "the first member is `{path}`, not `{MANIFEST_NAME}`: this is not a dpe archive"
            )));
        } else if let Some(rel) = path.strip_prefix(PROJECT_PREFIX) {
            if self.stage != 1 {
                return Err(Damage::Broken(format!("project file `{path}` comes after the image")));
            }
            self.project_member(entry, &mut member, rel).map_err(|why| refuse(&why))?;
            member.kind = Kind::Project(rel.to_string());
        } else if let Some(number) = path.strip_prefix(IMAGE_PREFIX) {
            if self.stage > 2 {
                return Err(Damage::Broken(format!("`{path}` is out of place")));
            }
            self.stage = 2;
            if number != format!("{:05}", self.image_parts) || member.entry_type != tar::EntryType::Regular {
                return Err(Damage::Broken(format!(
                    "image part `{path}` is out of order (expected part {:05})",
                    self.image_parts
                )));
            }
            self.image_parts += 1;
            member.kind = Kind::Image;
        } else if path == CHECKSUMS_NAME {
            if self.image_parts == 0 {
                return Err(Damage::Broken("the archive holds no image".to_string()));
            }
            let bytes = read_small(entry, size, MAX_CHECKSUMS_BYTES).map_err(|why| refuse(&why))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Damage::Broken(format!("`{CHECKSUMS_NAME}` is not UTF-8 text")))?;
            self.listed = Some(text);
            member.digest = Some(String::new());
            member.kind = Kind::Checksums;
        } else {
            return Err(Damage::Broken(format!("unexpected member `{path}`")));
        }
        Ok(member)
    }

    /// The rules for a member under `project/` (its name without the prefix is `rel`); the
    /// error says why it is refused.
    fn project_member<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        member: &mut Member,
        rel: &str,
    ) -> Result<(), String> {
        if let Some(above) = names::ancestors(rel).find(|a| self.leaves.contains(*a)) {
            return Err(format!(
                "lies below `{PROJECT_PREFIX}{above}`, which is a file or a symlink: unpacking it could write through the link"
            ));
        }
        if member.entry_type != tar::EntryType::Directory && self.folders.contains(rel) {
            return Err("would replace a folder that earlier members lie in".to_string());
        }
        self.folders.extend(names::ancestors(rel).map(str::to_string));
        match member.entry_type {
            tar::EntryType::Regular | tar::EntryType::Directory => {}
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                names::check_link_target(rel, &target).map_err(|why| format!("is refused: {why}"))?;
                member.digest = Some(hex(&Sha256::digest(&target)));
                member.link = Some(target);
            }
            tar::EntryType::Link => return Err("is a hard link; an archive holds no hard links".to_string()),
            other => {
                return Err(format!(
                    "is a device, FIFO or other special file ({other:?}); an archive holds only files, folders and symlinks"
                ))
            }
        }
        if member.entry_type == tar::EntryType::Directory {
            self.folders.insert(rel.to_string());
        } else {
            self.leaves.insert(rel.to_string());
        }
        Ok(())
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
            let malformed = || {
                Damage::Broken(format!("`{CHECKSUMS_NAME}` has a malformed line: `{}`", names::shown(line.as_bytes())))
            };
            let (sum, path) = line.split_once("  ").ok_or_else(malformed)?;
            let path = names::normalize(path.as_bytes()).map_err(|_| malformed())?;
            if sums.insert(path.clone(), sum.to_string()).is_some() {
                return Err(malformed());
            }
            expected.push((sum.to_string(), path));
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

/// A member read into memory (the manifest, the checksum list), refused on its declared size
/// before a byte is read, and read no further than the cap whatever the header said.
fn read_small<R: Read>(entry: &mut tar::Entry<R>, declared: u64, cap: u64) -> Result<Vec<u8>, String> {
    if declared > cap {
        return Err(format!("declares {}, over the {} it may have", units::binary(declared), units::binary(cap)));
    }
    let mut bytes = Vec::new();
    entry.by_ref().take(cap).read_to_end(&mut bytes).map_err(|e| format!("cannot be read: {e}"))?;
    Ok(bytes)
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
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| Damage::Broken(format!("`{MANIFEST_NAME}` does not parse: {e}")))?;
    check_promises(&manifest).map_err(|why| Damage::Unsafe(format!("`{MANIFEST_NAME}` {why}")))?;
    Ok(manifest)
}

/// The manifest names the tags the import will set and the IDs they must point at: the tags
/// must be this project's own archive tags (never `python:3` or another project's), the IDs
/// plain image IDs.
fn check_promises(manifest: &Manifest) -> Result<(), String> {
    image::check_archive_tag(&manifest.project, &manifest.image)?;
    let environment = image::environment_tag(&manifest.image);
    if manifest.environment_image != environment {
        return Err(format!(
            "names the environment image `{}`, not `{environment}`",
            names::shown(manifest.environment_image.as_bytes())
        ));
    }
    for id in [&manifest.image_id, &manifest.environment_image_id] {
        let digest = id.strip_prefix("sha256:").unwrap_or("");
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("records `{}`, which is not an image ID", names::shown(id.as_bytes())));
        }
    }
    Ok(())
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

fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

fn mtime_of(meta: &fs::Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs()).unwrap_or(0)
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
            image_id: format!("sha256:{}", "a".repeat(64)),
            source_image: "dpe/project_a:123".to_string(),
            environment_image: "dpe-export/project_a:latest-environment".to_string(),
            environment_image_id: format!("sha256:{}", "d".repeat(64)),
            volume_target: Some("/opt/venv".to_string()),
            owner: Some("1000:1000".to_string()),
            with_data: true,
            config: serde_json::json!({"image": "dpe-test/bookworm:latest"}),
        }
    }

    /// A project folder and an archive of it with a 3 MiB "image" in 1 MiB parts.
    fn sample() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        sample_with(None)
    }

    /// [`sample`] whose image stream's manifest.json also has `extra_key` naming `python:3`.
    fn sample_with(extra_key: Option<&str>) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        fs::create_dir_all(project.join("notebooks")).unwrap();
        fs::write(project.join("dpe.toml"), "image = \"x\"\n").unwrap();
        fs::write(project.join("notebooks/a.ipynb"), "{\"cells\": []}").unwrap();
        std::os::unix::fs::symlink("notebooks/a.ipynb", project.join("latest")).unwrap();
        let files: Vec<PathBuf> =
            ["dpe.toml", "latest", "notebooks", "notebooks/a.ipynb"].iter().map(PathBuf::from).collect();
        let image = save_stream_sample(extra_key);
        let mut writer = ArchiveWriter::new(Vec::new(), &manifest()).unwrap();
        writer.chunk = 1 << 20;
        writer.append_project(&project, &files).unwrap();
        assert_eq!(writer.append_image(&image[..], 0).unwrap(), image.len() as u64);
        let bytes = writer.finish().unwrap();
        (dir, project, bytes)
    }

    /// A `docker save`-like stream: a 3 MiB blob and a manifest.json with the archive's tags
    /// (and `extra_key`).
    fn save_stream_sample(extra_key: Option<&str>) -> Vec<u8> {
        let blob: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        let mut image = serde_json::json!({"Config": "blob", "RepoTags": [manifest().image, manifest().environment_image], "Layers": []});
        if let Some(key) = extra_key {
            image[key] = serde_json::json!(["python:3"]);
        }
        let tags = serde_json::json!([image]).to_string();
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in [("blob", &blob[..]), ("manifest.json", tags.as_bytes())] {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, bytes).unwrap();
        }
        builder.into_inner().unwrap()
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
        assert_eq!(verified.image_bytes, save_stream_sample(None).len() as u64);
        assert_eq!(verified.sums.keys().filter(|k| k.starts_with(IMAGE_PREFIX)).count(), 4);
        assert_eq!(verified.project_files, ["dpe.toml", "latest", "notebooks", "notebooks/a.ipynb"]);
        assert_eq!(verified.file_sha256, hex(&Sha256::digest(&bytes)));
        let out = dir.path().join("out");
        let mut image = Vec::new();
        unpack(&path, &verified, &out, &mut image, "loading").unwrap();
        // The stream is written again member by member: the same members, the same bytes, but
        // for manifest.json, rewritten without tags.
        let mut loaded = tar::Archive::new(&image[..]);
        let mut members = Vec::new();
        for entry in loaded.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            members.push((entry.path().unwrap().to_string_lossy().into_owned(), data));
        }
        let sample = save_stream_sample(None);
        let mut original = tar::Archive::new(&sample[..]);
        let mut blob = Vec::new();
        original.entries().unwrap().next().unwrap().unwrap().read_to_end(&mut blob).unwrap();
        let manifest_json = br#"[{"Config":"blob","Layers":[]}]"#.to_vec();
        assert_eq!(members, [("blob".to_string(), blob), ("manifest.json".to_string(), manifest_json)]);
        assert_eq!(fs::read_to_string(out.join("notebooks/a.ipynb")).unwrap(), "{\"cells\": []}");
        assert_eq!(fs::read_link(out.join("latest")).unwrap(), Path::new("notebooks/a.ipynb"));
    }

    #[test]
    fn a_file_swapped_after_verifying_loads_nothing_it_did_not_check() {
        // The file verified, then replaced by one whose image stream names `python:3` in a key
        // Go's JSON decoder reads as `RepoTags`: the second pass refuses it, and what reached
        // the sink is no loadable stream naming it.
        let (dir, _project, bytes) = sample();
        let path = write(dir.path(), "a.dpe", &bytes);
        let verified = verify(&path).unwrap();
        let (_other, _project, swapped) = sample_with(Some("RepoTag\u{17f}"));
        fs::write(&path, &swapped).unwrap();
        let mut sink = Vec::new();
        let out = dir.path().join("out");
        match unpack(&path, &verified, &out, &mut sink, "loading") {
            Err(Damage::Unsafe(message)) => assert!(
                message.starts_with("the image stream's `manifest.json` is not what `docker save` writes: unknown field `RepoTag\u{17f}`"),
                "{message}"
            ),
            other => panic!("a swapped file was unpacked: {other:?}"),
        }
        assert!(!String::from_utf8_lossy(&sink).contains("python:3"));
        // The stream was broken off: a tar reader fails on it instead of seeing a clean end.
        let mut reader = tar::Archive::new(&sink[..]);
        let read_all = reader.entries().unwrap().try_for_each(|entry| entry.map(|_| ()));
        assert!(read_all.is_err());
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

//! The host-port registry: `$DPE_STATE_DIR/jupyter/ports.json`, shared by every workspace of
//! the user and changed only under an exclusive lock on `ports.lock` (std's `File::lock`).
//!
//! A project keeps its port across starts while the port is free, so bookmarks keep working.
//! A port recorded for one key is never handed to another, so twenty `dpe jupyter` starting at
//! once get twenty different ports. A candidate must also be bindable on the host (no other
//! program holds it) and not published by another container. Entries of projects whose folder
//! no longer exists are stale and reclaimed.

use dpe_plugin::sdk::{self, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};

/// One port the caller wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The registry key (`project-wshash` for Jupyter, with a suffix for extra ports).
    pub key: String,
    /// The project folder; when it disappears the entry is stale.
    pub project_dir: PathBuf,
    /// The first port to try for a new key.
    pub start: u16,
}

/// The port given for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub key: String,
    pub port: u16,
    /// The port remembered before, when it could not be kept.
    pub moved_from: Option<u16>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File_ {
    #[serde(default)]
    ports: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    port: u16,
    project_dir: PathBuf,
}

/// The registry in a state directory.
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    pub fn new(state_dir: &Path) -> Registry {
        Registry { dir: state_dir.join("jupyter") }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("ports.json")
    }

    /// Holds the exclusive lock while `f` runs on the loaded registry, then saves it.
    fn locked<T>(&self, f: impl FnOnce(&mut File_) -> Result<T>) -> Result<T> {
        let lock_path = self.dir.join("ports.lock");
        let lock = crate::project_lock::open_lock_file(&lock_path)?;
        lock.lock().map_err(|e| Error::io(format!("locking `{}`", lock_path.display()), e))?;
        let path = self.path();
        let mut file: File_ = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                eprintln!("warning: `{}` is not valid ({e}); starting a new port registry", path.display());
                File_::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File_::default(),
            Err(e) => return Err(Error::io(format!("reading `{}`", path.display()), e)),
        };
        let result = f(&mut file)?;
        let text = serde_json::to_string_pretty(&file).expect("registry serialises");
        sdk::fs::write_atomic(&path, text.as_bytes(), 0o644)
            .map_err(|e| Error::io(format!("writing `{}`", path.display()), e))?;
        drop(lock);
        Ok(result)
    }

    /// Gives each request a port: the remembered one while it is usable, else the first usable
    /// one from its start. `published` are host ports other containers publish; `avoid` are
    /// ports the caller just failed to bind (a lost race); `mine` are ports the project's own
    /// running container holds (usable for it although not bindable); `bind` is the host address.
    pub fn reserve(
        &self,
        requests: &[Request],
        published: &[u16],
        avoid: &[u16],
        mine: &[u16],
        bind: &str,
    ) -> Result<Vec<Reservation>> {
        // An address, never a host name: a name would be looked up by DNS once per candidate
        // port, for as long as the lock is held. (The configuration refuses one already.)
        let address: IpAddr = bind.parse().map_err(|_| {
            Error::new(format!("cannot publish ports on `{bind}`: it is not an IP address"))
                .with_help("set `[jupyter] bind` to an IP address, such as `127.0.0.1`")
        })?;
        self.locked(|file| {
            // Entries of deleted projects are stale: free their ports for others.
            file.ports.retain(|_, entry| entry.project_dir.is_dir());
            let mut out = Vec::new();
            for request in requests {
                let taken_by_others = |file: &File_, port: u16| {
                    file.ports.iter().any(|(key, entry)| key != &request.key && entry.port == port)
                };
                let usable = |file: &File_, port: u16| {
                    !taken_by_others(file, port)
                        && !avoid.contains(&port)
                        && (mine.contains(&port) || (!published.contains(&port) && bindable(address, port)))
                };
                let remembered = file.ports.get(&request.key).map(|e| e.port);
                let port = match remembered {
                    Some(port) if usable(file, port) => port,
                    _ => {
                        let mut candidate = request.start.max(1024);
                        loop {
                            if usable(file, candidate) {
                                break candidate;
                            }
                            candidate = candidate.checked_add(1).ok_or_else(|| {
                                Error::new(format!("no free host port from {} upwards", request.start))
                                    .with_help("set `[jupyter] host_port_start` to another range")
                            })?;
                        }
                    }
                };
                file.ports.insert(request.key.clone(), Entry { port, project_dir: request.project_dir.clone() });
                out.push(Reservation {
                    key: request.key.clone(),
                    port,
                    moved_from: remembered.filter(|&old| old != port),
                });
            }
            Ok(out)
        })
    }

    /// The remembered port of a key, without reserving anything.
    /// Forgets the project's port (`dpe jupyter rm`, `gc`); `false` when it held none. Without a
    /// registry there is nothing to forget, and none is created.
    pub fn release(&self, key: &str) -> Result<bool> {
        if !self.path().exists() {
            return Ok(false);
        }
        self.locked(|file| Ok(file.ports.remove(key).is_some()))
    }

    pub fn lookup(&self, key: &str) -> Option<u16> {
        let text = std::fs::read_to_string(self.path()).ok()?;
        let file: File_ = serde_json::from_str(&text).ok()?;
        file.ports.get(key).map(|e| e.port)
    }
}

/// Whether a port can be bound on the host address now (another program does not hold it).
pub fn bindable(address: IpAddr, port: u16) -> bool {
    TcpListener::bind((address, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str, dir: &Path, start: u16) -> Request {
        Request { key: key.into(), project_dir: dir.to_path_buf(), start }
    }

    /// A port range nobody else in this test run uses, with its first port free.
    fn free_start() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        port
    }

    #[test]
    fn keeps_a_port_while_free_and_moves_when_held() {
        let state = tempfile::tempdir().unwrap();
        let registry = Registry::new(state.path());
        let start = free_start();
        let a = registry.reserve(&[request("a", state.path(), start)], &[], &[], &[], "127.0.0.1").unwrap();
        let again = registry.reserve(&[request("a", state.path(), start)], &[], &[], &[], "127.0.0.1").unwrap();
        assert_eq!(a[0].port, again[0].port);
        assert_eq!(again[0].moved_from, None);
        let holder = TcpListener::bind(("127.0.0.1", a[0].port)).unwrap();
        let moved = registry.reserve(&[request("a", state.path(), start)], &[], &[], &[], "127.0.0.1").unwrap();
        assert_ne!(moved[0].port, a[0].port);
        assert_eq!(moved[0].moved_from, Some(a[0].port));
        drop(holder);
    }

    #[test]
    fn never_gives_one_port_to_two_keys_even_concurrently() {
        let state = tempfile::tempdir().unwrap();
        let start = free_start();
        let dir = state.path().to_path_buf();
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let registry = Registry::new(&dir);
                    registry.reserve(&[request(&format!("p{i}"), &dir, start)], &[], &[], &[], "127.0.0.1").unwrap()[0]
                        .port
                })
            })
            .collect();
        let mut ports: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 20);
    }

    #[test]
    fn skips_published_and_avoided_ports_and_reclaims_stale_entries() {
        let state = tempfile::tempdir().unwrap();
        let registry = Registry::new(state.path());
        let start = free_start();
        let gone = state.path().join("deleted-project");
        std::fs::create_dir(&gone).unwrap();
        let old = registry.reserve(&[request("old", &gone, start)], &[], &[], &[], "127.0.0.1").unwrap()[0].port;
        std::fs::remove_dir(&gone).unwrap();
        let got = registry.reserve(&[request("new", state.path(), start)], &[], &[], &[], "127.0.0.1").unwrap()[0].port;
        assert_eq!(got, old, "the deleted project's port is reclaimed");
        let got = registry
            .reserve(&[request("b", state.path(), start)], &[start + 1], &[start + 2], &[], "127.0.0.1")
            .unwrap();
        assert!(got[0].port > start + 2 || (got[0].port != start + 1 && got[0].port != start + 2));
        assert_eq!(registry.lookup("new"), Some(old));
    }

    #[test]
    fn a_host_name_is_refused_before_the_registry_is_touched() {
        let state = tempfile::tempdir().unwrap();
        let registry = Registry::new(state.path());
        let err = registry.reserve(&[request("a", state.path(), 8888)], &[], &[], &[], "localhost").unwrap_err();
        assert_eq!(err.message, "cannot publish ports on `localhost`: it is not an IP address");
        assert!(!state.path().join("jupyter").exists(), "the registry was touched");
    }
}

//! One `dpe jupyter` at a time starts or stops a given project (not to be confused with
//! [`crate::lock`], the pip lock installed into the image).
//!
//! Two starts of one project at once used to fight over its container name: the loser removed
//! the winner's container and the winner waited its whole ready timeout. Now start and stop hold
//! an exclusive lock on `$DPE_STATE_DIR/jupyter/project-locks/CONTAINER.lock` (std's
//! `File::lock`, an flock(2)) from the moment they look at the project's container until it
//! answers, is stopped, or the attempt failed; a second caller waits, then finds the server
//! running. The container
//! name is derived from the workspace and the project, and it is the very thing two starts
//! contend for. The OS drops the lock with its holder, so a dpe that is killed or interrupted
//! never leaves it held, and the file (a few bytes, one per project) is never removed: removing
//! it would let a waiter lock a file that a newcomer no longer sees.

use crate::project::Project;
use dpe_plugin::sdk::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a waiter stays silent: a stop that is almost done is not worth a message.
const QUIET_WAIT: Duration = Duration::from_millis(300);

/// Holding this is holding the project's lock; dropping it releases the lock.
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
}

impl ProjectLock {
    /// Waits for the project's lock. The wait polls rather than blocks in flock(2), which the
    /// interrupt handler's SA_RESTART would restart: `cancelled` is asked between tries, and
    /// when it says so the wait ends with `None` (e.g. on Ctrl+C).
    pub fn acquire(state_dir: &Path, project: &Project, cancelled: &dyn Fn() -> bool) -> Result<Option<ProjectLock>> {
        let path = state_dir.join("jupyter").join("project-locks").join(format!("{}.lock", project.container_name()));
        let file = open_lock_file(&path)?;
        let started = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(ProjectLock { _file: file })),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(Error::io(format!("locking `{}`", path.display()), e)),
            }
            if cancelled() {
                return Ok(None);
            }
            if !said && started.elapsed() >= QUIET_WAIT {
                said = true;
                crate::say::err(&format!(
                    "dpe: another dpe is starting or stopping `{}`; waiting for it to finish…",
                    project.name
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Opens (creating it and its folder) a file that is only ever locked, never written.
pub fn open_lock_file(path: &Path) -> Result<File> {
    let dir = path.parent().expect("a lock file is in a folder");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating `{}`", dir.display()), e))?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening `{}`", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn project(workspace: &str) -> Project {
        Project {
            name: "p".into(),
            dir: format!("{workspace}/projects/p").into(),
            workspace: workspace.into(),
            config: Default::default(),
        }
    }

    #[test]
    fn a_second_holder_waits_until_the_first_lets_go() {
        let state = tempfile::tempdir().unwrap();
        let never = || false;
        let first = ProjectLock::acquire(state.path(), &project("/w"), &never).unwrap().unwrap();
        // The same project in another workspace is another lock.
        let other = ProjectLock::acquire(state.path(), &project("/elsewhere"), &never).unwrap();
        assert!(other.is_some());
        let released = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let lock = ProjectLock::acquire(state.path(), &project("/w"), &never).unwrap();
                assert!(released.load(Ordering::SeqCst), "the lock was taken twice");
                lock
            });
            std::thread::sleep(Duration::from_millis(200));
            released.store(true, Ordering::SeqCst);
            drop(first);
            assert!(waiter.join().unwrap().is_some());
        });
    }

    #[test]
    fn a_cancelled_wait_ends_without_the_lock() {
        let state = tempfile::tempdir().unwrap();
        let _held = ProjectLock::acquire(state.path(), &project("/w"), &|| false).unwrap().unwrap();
        assert!(ProjectLock::acquire(state.path(), &project("/w"), &|| true).unwrap().is_none());
    }
}

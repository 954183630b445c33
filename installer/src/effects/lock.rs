//! One run at a time, and only as root.

use crate::exit::{Categorized, Exit};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a run may not start.
#[derive(Debug, Error)]
pub enum LockError {
    /// Not root.
    #[error(
        "toa-install must run as root to install packages and load a kernel module. \
         Next step: run it again with sudo (or as root); `toa-install --dry-run` shows the plan without root"
    )]
    NotRoot,
    /// The lock file cannot be opened.
    #[error("cannot open the lock file {}: {source}. Next step: run as root", .path.display())]
    Open {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another run holds the lock.
    #[error(
        "another toa-install is running{} (it holds {}). \
         Next step: wait for it to finish, then run toa-install again",
        .holder.as_deref().map(|pid| format!(" as process {pid}")).unwrap_or_default(),
        .path.display()
    )]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder's process id, as it wrote it.
        holder: Option<String>,
    },
    /// Locking failed otherwise.
    #[error("cannot lock {}: {source}", .path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: rustix::io::Errno,
    },
}

impl Categorized for LockError {
    fn category(&self) -> Exit {
        match self {
            LockError::NotRoot => Exit::NotRoot,
            LockError::Open { .. } | LockError::Held { .. } | LockError::Lock { .. } => Exit::Usage,
        }
    }
}

/// Refuses to go on without root.
pub fn require_root(euid_is_root: bool) -> Result<(), LockError> {
    if euid_is_root {
        Ok(())
    } else {
        Err(LockError::NotRoot)
    }
}

/// The exclusive run lock; released when dropped (or when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock at `path`, or says who to wait for.
    pub fn acquire(path: &Path) -> Result<RunLock, LockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|source| LockError::Open {
                path: path.to_owned(),
                source,
            })?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let holder = fs::read_to_string(path).unwrap_or_default();
                let holder = Some(holder.trim().to_owned()).filter(|pid| !pid.is_empty());
                Err(LockError::Held {
                    path: path.to_owned(),
                    holder,
                })
            }
            Err(source) => Err(LockError::Lock {
                path: path.to_owned(),
                source,
            }),
        }
        .map(|mut lock| {
            lock.note_pid();
            lock
        })
    }

    fn note_pid(&mut self) {
        let _ = self._file.set_len(0);
        let _ = writeln!(self._file, "{}", std::process::id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toa-install.lock");
        let first = RunLock::acquire(&path).unwrap();
        let err = RunLock::acquire(&path).unwrap_err();
        assert_eq!(err.category(), Exit::Usage);
        assert!(
            err.to_string().contains(&format!(
                "another toa-install is running as process {}",
                std::process::id()
            )),
            "{err}"
        );
        drop(first);
        RunLock::acquire(&path).unwrap();
    }

    #[test]
    fn not_root_is_exit_3() {
        let err = require_root(false).unwrap_err();
        assert_eq!(err.category().code(), 3);
        assert!(err.to_string().contains("sudo"));
        assert!(require_root(true).is_ok());
    }
}

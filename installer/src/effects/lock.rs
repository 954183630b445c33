//! One run at a time, and only as root.

use super::executor::ExecError;
use crate::exit::Exit;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Refuses to go on without root.
pub fn require_root(euid_is_root: bool) -> Result<(), ExecError> {
    if euid_is_root {
        Ok(())
    } else {
        Err(ExecError::new(
            Exit::NotRoot,
            "toa-install must run as root to install packages and load a kernel module. \
             Next step: run it again with sudo (or as root); `toa-install --dry-run` shows the plan without root"
                .to_owned(),
        ))
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
    pub fn acquire(path: &Path) -> Result<RunLock, ExecError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                ExecError::new(
                    Exit::Usage,
                    format!(
                        "cannot open the lock file {}: {e}. Next step: run as root",
                        path.display()
                    ),
                )
            })?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let holder = fs::read_to_string(path).unwrap_or_default();
                Err(ExecError::new(
                    Exit::Usage,
                    format!(
                        "another toa-install is running{} (it holds {}). \
                         Next step: wait for it to finish, then run toa-install again",
                        match holder.trim() {
                            "" => String::new(),
                            pid => format!(" as process {pid}"),
                        },
                        path.display()
                    ),
                ))
            }
            Err(e) => Err(ExecError::new(
                Exit::Usage,
                format!("cannot lock {}: {e}", path.display()),
            )),
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

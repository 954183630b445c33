//! The undo log: every change is written to it before it is made, and a
//! failed run undoes it newest first.

use super::{io_error, run_reported, ExecError, Run};
use crate::effects::host::FileData;
use crate::effects::progress::Progress;
use crate::effects::runner::RunError;
use crate::layout::{MODULE, TRUSTED_PARAM, UNDO_LOG};
use crate::plan::{systemd, timeouts, Cmd};
use crate::system::ebpf::EbpfError;
use serde::{Deserialize, Serialize};
use std::io;
use thiserror::Error;

/// One change the undo could not take back. Reported in the run's
/// `undo_problems`, never the cause of the failure.
#[derive(Debug, Error)]
pub enum UndoError {
    /// A file could not be given its previous contents.
    #[error("cannot restore {path}: {source}")]
    Restore {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A file the run created could not be removed.
    #[error("cannot remove {path}: {source}")]
    Remove {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A directory the run created could not be removed.
    #[error("cannot remove the directory {path}: {source}")]
    RemoveDir {
        /// The directory.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The command undoing a change failed.
    #[error("`{line}` failed: {stderr}")]
    Failed {
        /// The command line.
        line: String,
        /// What it said.
        stderr: String,
    },
    /// The command undoing a change could not be run.
    #[error(transparent)]
    Run(RunError),
    /// The eBPF backend could not be detached or given its list back.
    #[error(transparent)]
    Ebpf(EbpfError),
}

/// One change made by the run, with what undoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum UndoEntry {
    /// A file was written; put back `previous` (or remove it if `None`).
    File {
        /// The path.
        path: String,
        /// What was there before.
        previous: Option<FileData>,
    },
    /// A directory was created; remove it.
    Dir {
        /// The path.
        path: String,
    },
    /// The source was registered with DKMS; `dkms remove` it.
    Dkms {
        /// The module version.
        version: String,
    },
    /// The module was loaded; unload it.
    Loaded,
    /// The eBPF backend was attached; detach it.
    EbpfAttached,
    /// The eBPF backend's trusted networks were replaced; put these back.
    EbpfTrusted {
        /// The list before.
        previous: Vec<String>,
    },
    /// systemd re-read its units: it re-reads them again once the unit
    /// files are restored (at the end of the undo, whatever its place).
    SystemdReloaded,
    /// A unit was enabled (and started); `systemctl disable --now` it.
    UnitEnabled {
        /// The unit.
        unit: String,
    },
    /// Packages were installed; kept, but reported.
    Packages {
        /// Their names.
        packages: Vec<String>,
    },
}

impl Run<'_> {
    /// Appends to the undo log, on disk first.
    pub(super) fn record(&mut self, entry: UndoEntry) -> Result<(), ExecError> {
        self.ensure_state_dir()?;
        self.log.push(entry);
        let text = serde_json::to_vec_pretty(&self.log).unwrap_or_default();
        self.fx
            .write(UNDO_LOG, &text, 0o600)
            .map_err(|e| io_error(UNDO_LOG, e))
    }

    pub(super) fn packages(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|e| match e {
                UndoEntry::Packages { packages } => Some(packages.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    pub(super) fn finish_log(&mut self) {
        let _ = self.fx.remove(UNDO_LOG);
    }

    /// Undoes the log, newest first; returns what could not be undone.
    pub(super) fn undo(&mut self, progress: &mut dyn Progress) -> Vec<String> {
        let mut problems = Vec::new();
        let _ = self.fx.remove(UNDO_LOG);
        let entries = std::mem::take(&mut self.log);
        let reloaded = entries.contains(&UndoEntry::SystemdReloaded);
        for entry in entries.iter().rev() {
            let result = match entry {
                UndoEntry::File { path, previous } if path == TRUSTED_PARAM => match previous {
                    Some(p) => self.fx.write_in_place(path, &p.contents).map_err(|source| {
                        UndoError::Restore {
                            path: path.clone(),
                            source,
                        }
                    }),
                    None => Ok(()),
                },
                UndoEntry::File { path, previous } => match previous {
                    Some(p) => self.fx.write(path, &p.contents, p.mode).map_err(|source| {
                        UndoError::Restore {
                            path: path.clone(),
                            source,
                        }
                    }),
                    None => self
                        .fx
                        .remove(path)
                        .or_else(|e| match e.kind() {
                            io::ErrorKind::NotFound => Ok(()),
                            _ => Err(e),
                        })
                        .map_err(|source| UndoError::Remove {
                            path: path.clone(),
                            source,
                        }),
                },
                UndoEntry::Dir { path } => {
                    self.fx
                        .remove_dir(path)
                        .map_err(|source| UndoError::RemoveDir {
                            path: path.clone(),
                            source,
                        })
                }
                UndoEntry::Dkms { version } => self.undo_command(
                    &Cmd::new(
                        "dkms",
                        &["remove", "-m", MODULE, "-v", version, "--all"],
                        timeouts::DKMS_REMOVE,
                    ),
                    progress,
                ),
                UndoEntry::Loaded => self.undo_command(
                    &Cmd::new("modprobe", &["-r", MODULE], timeouts::MODPROBE),
                    progress,
                ),
                UndoEntry::EbpfAttached => self.fx.ebpf_detach().map_err(UndoError::Ebpf),
                UndoEntry::EbpfTrusted { previous } => {
                    self.fx.ebpf_set_trusted(previous).map_err(UndoError::Ebpf)
                }
                UndoEntry::UnitEnabled { unit } => {
                    self.undo_command(&systemd::disable_now(unit), progress)
                }
                UndoEntry::SystemdReloaded | UndoEntry::Packages { .. } => Ok(()),
            };
            if let Err(problem) = result {
                problems.push(problem.to_string());
            }
        }
        if reloaded {
            if let Err(problem) = self.undo_command(&systemd::daemon_reload(), progress) {
                problems.push(problem.to_string());
            }
        }
        problems
    }

    pub(super) fn undo_command(
        &mut self,
        cmd: &Cmd,
        progress: &mut dyn Progress,
    ) -> Result<(), UndoError> {
        match run_reported(&mut *self.fx, cmd, progress).0 {
            Ok(out) if out.success => Ok(()),
            Ok(out) => Err(UndoError::Failed {
                line: cmd.line(),
                stderr: out.stderr.trim().to_owned(),
            }),
            Err(e) => Err(UndoError::Run(e)),
        }
    }
}

//! What changes the host: the [`Effects`] trait with its real ([`host`])
//! and fake implementations, [`runner`] (every external command, with a
//! time limit), the [`executor`] that carries out a plan with its undo log,
//! the run [`lock`], and [`progress`], which shows what the effects report.

pub mod executor;
/// A recording stand-in for tests.
#[cfg(test)]
pub(crate) mod fake;
pub mod host;
pub mod lock;
pub mod progress;
pub mod runner;

use crate::plan::Cmd;
use crate::system::ebpf::EbpfError;
use host::{FileData, RootedFiles};
use runner::{Output, RunError};
use std::fs;
use std::io;
use std::path::Path;

/// Every side effect of an install run: commands, and files below the
/// root of [`Effects::files`].
pub trait Effects {
    /// Runs a command, killing it (and its children) after its timeout.
    fn run(&mut self, cmd: &Cmd) -> Result<Output, RunError>;
    /// Runs a command like [`Effects::run`], passing each line it prints to
    /// `line` (as it comes, where the implementation can; at the end, in
    /// order, standard output then standard error, where it cannot).
    fn run_watched(&mut self, cmd: &Cmd, line: &mut dyn FnMut(&str)) -> Result<Output, RunError> {
        let out = self.run(cmd)?;
        out.stdout.lines().chain(out.stderr.lines()).for_each(line);
        Ok(out)
    }
    /// The files the effects act on.
    fn files(&self) -> &RootedFiles;
    /// A file's content and mode; `None` when it does not exist.
    fn read(&self, path: &str) -> io::Result<Option<FileData>> {
        self.files().read(path)
    }
    /// Whether a directory exists.
    fn is_dir(&self, path: &str) -> bool {
        self.files().is_dir(path)
    }
    /// Creates one directory (the parent exists).
    fn create_dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.files().create_dir(path, mode)
    }
    /// Replaces a file atomically with `contents` and `mode`.
    fn write(&mut self, path: &str, contents: &[u8], mode: u32) -> io::Result<()> {
        self.files().write(path, contents, mode)
    }
    /// Writes to an existing file in place (a sysfs parameter).
    fn write_in_place(&mut self, path: &str, contents: &[u8]) -> io::Result<()> {
        self.files().write_in_place(path, contents)
    }
    /// Removes a file.
    fn remove(&mut self, path: &str) -> io::Result<()> {
        self.files().remove(path)
    }
    /// Removes an empty directory.
    fn remove_dir(&mut self, path: &str) -> io::Result<()> {
        self.files().remove_dir(path)
    }
    /// Removes a directory with everything in it (symbolic links are
    /// removed, not followed).
    fn remove_tree(&mut self, path: &str) -> io::Result<()> {
        self.files().remove_tree(path)
    }
    /// Attaches the eBPF backend trusting `trusted` (empty: every sender).
    fn ebpf_attach(&mut self, trusted: &[String]) -> Result<(), EbpfError>;
    /// Replaces the attached eBPF backend's trusted networks.
    fn ebpf_set_trusted(&mut self, trusted: &[String]) -> Result<(), EbpfError>;
    /// The attached eBPF backend's trusted networks.
    fn ebpf_trusted(&self) -> Result<Vec<String>, EbpfError>;
    /// Detaches the eBPF backend and unpins everything of it.
    fn ebpf_detach(&mut self) -> Result<(), EbpfError>;
    /// The running toa-install's own bytes.
    fn current_exe(&self) -> io::Result<Vec<u8>> {
        fs::read(std::env::current_exe()?)
    }
    /// A local file for the step that needs one (a fetched toa.ko), read
    /// from this machine, not from below the root.
    fn read_local(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
}

//! The real [`Effects`]: commands on this machine, files below a root
//! directory (`/` on a real run).

use super::runner::{run_command, Output, RunError};
use super::Effects;
use crate::plan::{timeouts, Cmd};
use crate::system::ebpf::{format_nets, parse_nets, EbpfError};
use crate::system::sysroot::{CommandOutput, Host, Uname};
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// A file's content and permission bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileData {
    /// The bytes.
    pub contents: Vec<u8>,
    /// The permission bits.
    pub mode: u32,
}

/// Files of the system below a root directory (`/` on a real run).
#[derive(Debug, Clone)]
pub struct RootedFiles {
    root: PathBuf,
}

impl RootedFiles {
    /// Files below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RootedFiles { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path on this machine of `path` inside the system. `..` is
    /// refused so that nothing lands outside the root.
    pub fn host_path(&self, path: &str) -> io::Result<PathBuf> {
        let rel = Path::new(path.trim_start_matches('/'));
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing path {path:?}: it must be absolute without `..`"),
            ));
        }
        Ok(self.root.join(rel))
    }

    pub(super) fn read(&self, path: &str) -> io::Result<Option<FileData>> {
        let p = self.host_path(path)?;
        match fs::read(&p) {
            Ok(contents) => Ok(Some(FileData {
                contents,
                mode: fs::metadata(&p)?.permissions().mode() & 0o7777,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn is_dir(&self, path: &str) -> bool {
        self.host_path(path).map(|p| p.is_dir()).unwrap_or(false)
    }

    pub(super) fn create_dir(&self, path: &str, mode: u32) -> io::Result<()> {
        let p = self.host_path(path)?;
        fs::create_dir(&p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
    }

    pub(super) fn write(&self, path: &str, contents: &[u8], mode: u32) -> io::Result<()> {
        let p = self.host_path(path)?;
        let name = p
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let tmp = p.with_file_name(format!(".{}.toa-install.tmp", name.to_string_lossy()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &p).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }

    pub(super) fn write_in_place(&self, path: &str, contents: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).open(self.host_path(path)?)?;
        file.write_all(contents)
    }

    pub(super) fn remove(&self, path: &str) -> io::Result<()> {
        fs::remove_file(self.host_path(path)?)
    }

    pub(super) fn remove_dir(&self, path: &str) -> io::Result<()> {
        fs::remove_dir(self.host_path(path)?)
    }

    pub(super) fn remove_tree(&self, path: &str) -> io::Result<()> {
        let p = self.host_path(path)?;
        if p == self.root {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "refusing to remove the root directory",
            ));
        }
        fs::remove_dir_all(p)
    }
}

/// The real thing: commands run on this machine, files below the root.
#[derive(Debug)]
pub struct HostEffects {
    files: RootedFiles,
}

impl HostEffects {
    /// Effects on the running host (`/`).
    pub fn host() -> Self {
        HostEffects {
            files: RootedFiles::new("/"),
        }
    }
}

impl Effects for HostEffects {
    fn run(&mut self, cmd: &Cmd) -> Result<Output, RunError> {
        run_command(cmd, &mut |_| {})
    }
    fn run_watched(&mut self, cmd: &Cmd, line: &mut dyn FnMut(&str)) -> Result<Output, RunError> {
        run_command(cmd, line)
    }
    fn files(&self) -> &RootedFiles {
        &self.files
    }
    fn ebpf_attach(&mut self, trusted: &[String]) -> Result<(), EbpfError> {
        let settings = toa_ebpf::Settings {
            trusted: parse_nets(trusted)?,
            ..toa_ebpf::Settings::default()
        };
        toa_ebpf::attach(&settings)?;
        Ok(())
    }
    fn ebpf_set_trusted(&mut self, trusted: &[String]) -> Result<(), EbpfError> {
        Ok(toa_ebpf::set_trusted(&parse_nets(trusted)?)?)
    }
    fn ebpf_trusted(&self) -> Result<Vec<String>, EbpfError> {
        Ok(format_nets(&toa_ebpf::trusted()?))
    }
    fn ebpf_detach(&mut self) -> Result<(), EbpfError> {
        Ok(toa_ebpf::detach()?)
    }
}

/// The machine this process runs on, for the facts only it can give. Its
/// questions (package databases, `mokutil`) run like every other command,
/// through [`run_command`], killed after [`timeouts::QUERY`].
#[derive(Debug, Default, Clone, Copy)]
pub struct RealHost;

impl Host for RealHost {
    fn uname(&self) -> Uname {
        let u = rustix::system::uname();
        Uname {
            release: u.release().to_string_lossy().into_owned(),
            version: u.version().to_string_lossy().into_owned(),
            machine: u.machine().to_string_lossy().into_owned(),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Option<CommandOutput> {
        let out = run_command(&Cmd::new(program, args, timeouts::QUERY), &mut |_| {}).ok()?;
        Some(CommandOutput {
            success: out.success,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn rooted_paths_cannot_escape() {
        let files = RootedFiles::new("/tmp/root");
        assert_eq!(
            files.host_path("/etc/x").unwrap(),
            Path::new("/tmp/root/etc/x")
        );
        assert!(files.host_path("/etc/../../x").is_err());
    }
}

//! Reading the system being inspected.
//!
//! Everything `detect` learns about a host comes through the two small
//! traits here, so that each rule can be tested against a fixture tree or an
//! in-memory table instead of the machine running the tests:
//!
//! - [`SystemFs`] reads files by their absolute path *inside* the inspected
//!   system. [`RootFs`] maps those paths below a root directory (`/` for the
//!   running host, or an image mounted elsewhere with `--root`), resolving
//!   symbolic links as if that directory were `/`.
//! - [`Host`] answers what only the running kernel can: `uname`, and the
//!   output of a helper program such as `mokutil`.

use crate::exit::{Categorized, Exit};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use thiserror::Error;

/// Read-only access to the files of the inspected system.
///
/// `path` is always absolute as seen from inside that system
/// (`/etc/os-release`), never a path on the machine running the installer.
pub trait SystemFs {
    /// The whole content of a file.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;

    /// The names of the entries of a directory, in no particular order.
    fn read_dir(&self, path: &str) -> io::Result<Vec<String>>;

    /// Whether `path` exists (after following symbolic links).
    fn exists(&self, path: &str) -> bool;

    /// How `path` is shown to the user: the real location when the system is
    /// read from a root other than `/`.
    fn display(&self, path: &str) -> String;

    /// The content of a file as text; invalid UTF-8 is replaced, not fatal.
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        self.read(path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The files of a system rooted at a directory of this machine.
#[derive(Debug, Clone)]
pub struct RootFs {
    root: PathBuf,
    live: bool,
}

/// Symbolic links followed while resolving one path, as the kernel's limit.
const MAX_SYMLINKS: usize = 40;

impl RootFs {
    /// The running host's own files.
    pub fn host() -> Self {
        RootFs {
            root: PathBuf::from("/"),
            live: true,
        }
    }

    /// The files of a system image mounted at `root`.
    ///
    /// A root that is this machine's `/` (however it is spelled) is the
    /// running host.
    pub fn at(root: &Path) -> io::Result<Self> {
        let canonical = root.canonicalize()?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        let live = canonical == Path::new("/");
        Ok(RootFs {
            root: canonical,
            live,
        })
    }

    /// The directory this system is read from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is the running host (root `/`), whose `/proc`, `/sys`
    /// and `uname` describe the same system.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Maps an absolute path inside the system to a path on this machine,
    /// following symbolic links without ever leaving the root: an absolute
    /// link target, or `..` at the top, stays inside it, as under `chroot`.
    fn resolve(&self, path: &str) -> io::Result<PathBuf> {
        if self.live {
            return Ok(PathBuf::from(path));
        }
        let mut pending: VecDeque<OsString> = components(Path::new(path)).collect();
        let mut resolved: Vec<OsString> = Vec::new();
        let mut links = 0;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            let candidate = self.join(&resolved).join(&part);
            let is_link = candidate
                .symlink_metadata()
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false);
            if !is_link {
                resolved.push(part);
                continue;
            }
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(io::Error::other(format!(
                    "too many levels of symbolic links resolving {path}"
                )));
            }
            let target = std::fs::read_link(&candidate)?;
            if target.is_absolute() {
                resolved.clear();
            }
            for (i, item) in components(&target).enumerate() {
                pending.insert(i, item);
            }
        }
        Ok(self.join(&resolved))
    }

    fn join(&self, parts: &[OsString]) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(parts);
        path
    }
}

/// The normal and `..` components of a path; `/` and `.` are dropped.
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

impl SystemFs for RootFs {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.resolve(path)?)
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.resolve(path)?)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).map(|p| p.exists()).unwrap_or(false)
    }

    fn display(&self, path: &str) -> String {
        if self.live {
            path.to_owned()
        } else {
            self.root
                .join(path.trim_start_matches('/'))
                .display()
                .to_string()
        }
    }
}

/// A `--root` directory that cannot be used (a usage error).
#[derive(Debug, Error)]
#[error(
    "--root {}: {source}. Next step: pass the directory where the system image is mounted",
    .dir.display()
)]
pub struct RootError {
    /// The directory given.
    pub dir: PathBuf,
    /// What is wrong with it.
    pub source: io::Error,
}

impl Categorized for RootError {
    fn category(&self) -> Exit {
        Exit::Usage
    }
}

/// The files of the system mounted at `root` (`--root`), or of this host
/// when there is none; the error says what is wrong with the directory.
pub fn open_root(root: Option<&Path>) -> Result<RootFs, RootError> {
    match root {
        None => Ok(RootFs::host()),
        Some(dir) => RootFs::at(dir).map_err(|source| RootError {
            dir: dir.to_owned(),
            source,
        }),
    }
}

/// What `uname(2)` says about the running kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uname {
    /// `uname -r`, e.g. `6.1.0-27-amd64`.
    pub release: String,
    /// `uname -v`, e.g. `#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)`.
    pub version: String,
    /// `uname -m`, e.g. `x86_64`.
    pub machine: String,
}

/// How a helper program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Whether it exited with status 0.
    pub success: bool,
    /// What it printed on standard output.
    pub stdout: String,
    /// What it printed on standard error.
    pub stderr: String,
}

/// Facts only the running host can give.
pub trait Host {
    /// The running kernel's identity.
    fn uname(&self) -> Uname;

    /// Runs `program` with `args` and collects its output; `None` when the
    /// program is not installed, cannot be started or outlives its time limit.
    fn run(&self, program: &str, args: &[&str]) -> Option<CommandOutput>;
}

impl fmt::Display for Uname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.release, self.version, self.machine)
    }
}

/// In-memory stand-ins for unit tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::collections::BTreeMap;

    /// A file tree held in memory: path → content.
    #[derive(Debug, Default, Clone)]
    pub(crate) struct MemFs {
        files: BTreeMap<String, Vec<u8>>,
    }

    impl MemFs {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        pub(crate) fn with(mut self, path: &str, content: impl AsRef<[u8]>) -> Self {
            self.files
                .insert(path.to_owned(), content.as_ref().to_vec());
            self
        }
    }

    impl SystemFs for MemFs {
        fn read(&self, path: &str) -> io::Result<Vec<u8>> {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
            let prefix = format!("{}/", path.trim_end_matches('/'));
            let mut names: Vec<String> = self
                .files
                .keys()
                .filter_map(|p| p.strip_prefix(&prefix))
                .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
                .collect();
            names.dedup();
            if names.is_empty() {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            Ok(names)
        }

        fn exists(&self, path: &str) -> bool {
            let prefix = format!("{}/", path.trim_end_matches('/'));
            self.files.contains_key(path) || self.files.keys().any(|p| p.starts_with(&prefix))
        }

        fn display(&self, path: &str) -> String {
            path.to_owned()
        }
    }

    /// A host with a fixed `uname` and canned command outputs.
    #[derive(Debug, Clone)]
    pub(crate) struct FakeHost {
        pub(crate) uname: Uname,
        pub(crate) commands: BTreeMap<String, CommandOutput>,
    }

    impl FakeHost {
        pub(crate) fn new(release: &str, version: &str, machine: &str) -> Self {
            FakeHost {
                uname: Uname {
                    release: release.to_owned(),
                    version: version.to_owned(),
                    machine: machine.to_owned(),
                },
                commands: BTreeMap::new(),
            }
        }

        pub(crate) fn with_command(mut self, line: &str, success: bool, stdout: &str) -> Self {
            self.commands.insert(
                line.to_owned(),
                CommandOutput {
                    success,
                    stdout: stdout.to_owned(),
                    stderr: String::new(),
                },
            );
            self
        }
    }

    impl Host for FakeHost {
        fn uname(&self) -> Uname {
            self.uname.clone()
        }

        fn run(&self, program: &str, args: &[&str]) -> Option<CommandOutput> {
            let mut line = program.to_owned();
            for arg in args {
                line.push(' ');
                line.push_str(arg);
            }
            self.commands.get(&line).cloned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, RootFs) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "ID=demo\n").unwrap();
        let fs = RootFs::at(root).unwrap();
        (dir, fs)
    }

    #[test]
    fn relative_link_is_followed() {
        let (dir, fs) = tree();
        symlink("../usr/lib/os-release", dir.path().join("etc/os-release")).unwrap();
        assert_eq!(fs.read_to_string("/etc/os-release").unwrap(), "ID=demo\n");
    }

    #[test]
    fn absolute_link_stays_inside_the_root() {
        let (dir, fs) = tree();
        symlink("/usr/lib/os-release", dir.path().join("etc/os-release")).unwrap();
        assert_eq!(fs.read_to_string("/etc/os-release").unwrap(), "ID=demo\n");
    }

    #[test]
    fn dot_dot_cannot_climb_out() {
        let (dir, fs) = tree();
        symlink(
            "../../../../../usr/lib/os-release",
            dir.path().join("etc/x"),
        )
        .unwrap();
        assert_eq!(fs.read_to_string("/etc/x").unwrap(), "ID=demo\n");
        assert!(!fs.exists("/../../etc/passwd-that-is-not-in-the-tree"));
    }

    #[test]
    fn link_loops_are_an_error_not_a_hang() {
        let (dir, fs) = tree();
        symlink("/etc/b", dir.path().join("etc/a")).unwrap();
        symlink("/etc/a", dir.path().join("etc/b")).unwrap();
        assert!(fs.read("/etc/a").is_err());
        assert!(!fs.exists("/etc/a"));
    }

    #[test]
    fn display_shows_the_real_location() {
        let (dir, fs) = tree();
        let shown = fs.display("/etc/os-release");
        assert_eq!(
            shown,
            dir.path()
                .canonicalize()
                .unwrap()
                .join("etc/os-release")
                .display()
                .to_string()
        );
        assert_eq!(RootFs::host().display("/etc/os-release"), "/etc/os-release");
    }

    #[test]
    fn slash_is_the_live_host() {
        assert!(RootFs::at(Path::new("/")).unwrap().is_live());
        let (_dir, fs) = tree();
        assert!(!fs.is_live());
    }

    #[test]
    fn missing_root_is_an_error() {
        assert!(RootFs::at(Path::new("/nonexistent/toa-root")).is_err());
    }
}

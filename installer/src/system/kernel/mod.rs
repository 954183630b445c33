//! The kernel the module is for: which release, and what its release string
//! says about the distribution's packages.
//!
//! The release normally comes from `uname(2)`. With `--kernel-release R` it
//! is `R`; with `--root DIR` and no `R`, it is the newest release that has a
//! directory under `DIR/lib/modules`.

use crate::exit::{Categorized, Exit};
use crate::system::sysroot::{Host, SystemFs};
use serde::Serialize;
use std::cmp::Ordering;
use std::fmt;
use thiserror::Error;

mod headers;
mod release;

pub use headers::{HeaderPackage, HeaderScheme};
pub use release::{
    arch_from_release, debian_flavour, debian_package_version, ubuntu_flavour,
    ubuntu_package_version, ElRelease, SuseRelease,
};

/// The oldest kernel the module is written for (CentOS 7's 3.10).
pub const MIN_SUPPORTED: KernelVersion = KernelVersion {
    major: 3,
    minor: 10,
    patch: 0,
};

/// Why the kernel cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KernelError {
    /// The kernel predates 3.10 (EL6 and similar).
    #[error(
        "kernel {release} is older than {min_major}.{min_minor}, the oldest kernel toa supports \
         (EL6 and other pre-3.10 systems cannot hook the kernel the way toa needs). \
         Next step: upgrade the host to a supported release (for example CentOS 7 or newer) \
         and run toa-install again"
    )]
    TooOld {
        /// The release string.
        release: String,
        /// The oldest supported major.minor.
        min_major: u32,
        /// See `min_major`.
        min_minor: u32,
    },
    /// The release string does not start with `major.minor`.
    #[error(
        "cannot read a kernel version from the release {release:?}. \
         Next step: pass the release exactly as `uname -r` prints it, e.g. --kernel-release 6.1.0-27-amd64"
    )]
    Unparsable {
        /// The release string as given.
        release: String,
    },
    /// `--root` without `--kernel-release`, and the image has no kernel.
    #[error(
        "no kernel found under {dir}: the image has no /lib/modules/<release> directory. \
         Next step: install a kernel into the image, or name the release with --kernel-release R"
    )]
    NoKernelInRoot {
        /// The directory that was searched, as shown to the user.
        dir: String,
    },
}

impl Categorized for KernelError {
    fn category(&self) -> Exit {
        match self {
            KernelError::TooOld { .. } => Exit::Unsupported,
            KernelError::Unparsable { .. } | KernelError::NoKernelInRoot { .. } => Exit::Usage,
        }
    }
}

/// The numeric head of a release: `4.18.0` in `4.18.0-513.el8_9.x86_64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct KernelVersion {
    /// First number.
    pub major: u32,
    /// Second number.
    pub minor: u32,
    /// Third number; 0 when absent (`6.5-rc1`).
    pub patch: u32,
}

impl KernelVersion {
    /// Reads `major.minor[.patch]` from the start of a release string.
    pub fn parse(release: &str) -> Option<Self> {
        let head_len = release
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(release.len());
        let mut numbers = release[..head_len].split('.');
        let major = numbers.next()?.parse().ok()?;
        let minor = numbers.next()?.parse().ok()?;
        let patch = numbers.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(KernelVersion {
            major,
            minor,
            patch,
        })
    }

    /// Whether toa can run on this kernel (3.10 or newer).
    pub fn is_supported(self) -> bool {
        (self.major, self.minor) >= (MIN_SUPPORTED.major, MIN_SUPPORTED.minor)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Where the kernel release came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseSource {
    /// `uname -r` of the running kernel.
    Uname,
    /// `--kernel-release`.
    Argument,
    /// The newest directory under `<root>/lib/modules`.
    NewestInRoot,
}

/// Where the architecture came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchSource {
    /// `uname -m` of the running kernel.
    Uname,
    /// The release string names it (`.x86_64`, `-arm64`).
    Release,
    /// Assumed to be that of the machine running toa-install.
    ThisMachine,
}

/// The kernel toa is to be built or installed for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelInfo {
    /// `uname -r`.
    pub release: String,
    /// `uname -v`, known only for the running kernel.
    pub version: Option<String>,
    /// `uname -m` (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// Where `release` came from.
    pub release_source: ReleaseSource,
    /// Where `arch` came from.
    pub arch_source: ArchSource,
}

impl KernelInfo {
    /// Picks the kernel for this run.
    ///
    /// `live` says whether `fs` is the running host. `requested` is
    /// `--kernel-release`.
    pub fn select(
        fs: &dyn SystemFs,
        host: &dyn Host,
        live: bool,
        requested: Option<&str>,
    ) -> Result<Self, KernelError> {
        let (release, release_source) = match requested {
            Some(release) => (release.trim().to_owned(), ReleaseSource::Argument),
            None if live => (host.uname().release, ReleaseSource::Uname),
            None => (newest_release(fs)?, ReleaseSource::NewestInRoot),
        };
        if KernelVersion::parse(&release).is_none() {
            return Err(KernelError::Unparsable { release });
        }
        let running = live.then(|| host.uname()).filter(|u| u.release == release);
        let (arch, arch_source) = match (&running, arch_from_release(&release)) {
            (Some(u), _) => (u.machine.clone(), ArchSource::Uname),
            (None, Some(arch)) => (arch.to_owned(), ArchSource::Release),
            (None, None) => (host.uname().machine, ArchSource::ThisMachine),
        };
        Ok(KernelInfo {
            version: running.map(|u| u.version),
            release,
            arch,
            release_source,
            arch_source,
        })
    }

    /// The numeric version of the release.
    pub fn kernel_version(&self) -> Option<KernelVersion> {
        KernelVersion::parse(&self.release)
    }

    /// Refuses kernels older than 3.10.
    pub fn check_supported(&self) -> Result<(), KernelError> {
        match self.kernel_version() {
            None => Err(KernelError::Unparsable {
                release: self.release.clone(),
            }),
            Some(v) if !v.is_supported() => Err(KernelError::TooOld {
                release: self.release.clone(),
                min_major: MIN_SUPPORTED.major,
                min_minor: MIN_SUPPORTED.minor,
            }),
            Some(_) => Ok(()),
        }
    }
}

/// The newest kernel release installed in the inspected system.
pub fn newest_release(fs: &dyn SystemFs) -> Result<String, KernelError> {
    let dir = "/lib/modules";
    let none = || KernelError::NoKernelInRoot {
        dir: fs.display(dir),
    };
    let names = fs.read_dir(dir).map_err(|_| none())?;
    names
        .into_iter()
        .filter(|name| KernelVersion::parse(name).is_some())
        .filter(|name| fs.exists(&format!("{dir}/{name}")))
        .max_by(|a, b| compare_releases(a, b))
        .ok_or_else(none)
}

/// Orders release strings the way a person would: runs of digits compare as
/// numbers, so `5.14.0-427.el9` is newer than `5.14.0-70.el9`.
pub fn compare_releases(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_digits(a);
                let (nb, rb) = split_digits(b);
                let na = na.trim_start_matches('0');
                let nb = nb.trim_start_matches('0');
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if order != Ordering::Equal {
                    return order;
                }
                a = ra;
                b = rb;
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn split_digits(s: &[u8]) -> (&str, &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    // Only ASCII digits were taken, so this is valid UTF-8.
    (std::str::from_utf8(&s[..n]).unwrap_or(""), &s[n..])
}

#[cfg(test)]
mod tests;

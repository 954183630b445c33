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

/// Architectures an EL release string may end with.
const RPM_ARCHES: &[&str] = &[
    "x86_64",
    "aarch64",
    "ppc64le",
    "s390x",
    "i686",
    "loongarch64",
];

/// The architecture named by a release string, when it names one.
pub fn arch_from_release(release: &str) -> Option<&'static str> {
    // RPM-style releases end with the architecture (`.x86_64`), before any
    // variant marker (`+debug`, `.debug`).
    let base = release.split('+').next().unwrap_or(release);
    let base = base.strip_suffix(".debug").unwrap_or(base);
    if let Some(arch) = base
        .rsplit('.')
        .next()
        .and_then(|last| RPM_ARCHES.iter().copied().find(|a| *a == last))
    {
        return Some(arch);
    }
    let flavour = debian_flavour(release)?;
    let last = flavour.rsplit('-').next()?;
    Some(match last {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "686" | "pae" => "i686",
        "armmp" | "lpae" => "armv7l",
        "powerpc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loong64" => "loongarch64",
        "64k" if flavour.starts_with("generic") => "aarch64",
        _ => return None,
    })
}

/// The pieces of an Enterprise Linux release string such as
/// `4.18.0-513.5.1.el8_9.x86_64` or `5.14.0-427.13.1.el9_4.x86_64+debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElRelease<'a> {
    /// `4.18.0`.
    pub upstream: &'a str,
    /// The dist tag: `el8_9`.
    pub dist: &'a str,
    /// 8 in `el8_9`.
    pub el_major: u32,
    /// `x86_64`, when the release ends with an architecture.
    pub arch: Option<&'static str>,
    /// `debug`, `rt`, `64k`...: the kernel variant, whose headers are in
    /// `kernel-<variant>-devel`.
    pub variant: Option<&'a str>,
    /// The release without the variant marker: the version of the
    /// `kernel-devel` package.
    pub package_version: &'a str,
}

impl<'a> ElRelease<'a> {
    /// Parses an EL release; `None` when there is no `.elN` dist tag.
    pub fn parse(release: &'a str) -> Option<Self> {
        let (base, variant) = match release.split_once('+') {
            Some((base, variant)) => (base, Some(variant)),
            None => match release.strip_suffix(".debug") {
                Some(base) => (base, Some("debug")),
                None => (release, None),
            },
        };
        let (upstream, rest) = base.split_once('-')?;
        let dist = rest.split('.').find(|part| {
            part.strip_prefix("el")
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        })?;
        let el_major = dist[2..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        let arch = rest
            .rsplit('.')
            .next()
            .and_then(|last| RPM_ARCHES.iter().copied().find(|a| *a == last));
        Some(ElRelease {
            upstream,
            dist,
            el_major,
            arch,
            variant,
            package_version: base,
        })
    }
}

/// The Debian/Ubuntu flavour: `amd64` in `6.1.0-27-amd64`, `cloud-amd64`
/// in `6.1.0-27-cloud-amd64`, `aws` in `6.8.0-1016-aws`, `amd64` in
/// Debian 13's `6.12.48+deb13-amd64`.
pub fn debian_flavour(release: &str) -> Option<&str> {
    let (head, rest) = release.split_once('-')?;
    if head.contains('+') {
        return Some(rest).filter(|r| !r.is_empty());
    }
    let (abi, flavour) = rest.split_once('-')?;
    if abi.is_empty() || !abi.bytes().all(|c| c.is_ascii_digit()) || flavour.is_empty() {
        return None;
    }
    Some(flavour)
}

/// The Ubuntu kernel flavour (`generic`, `lowlatency`, `aws`, `azure`,
/// `gcp`, `oracle`, `kvm`, `raspi`, ...) of a release such as
/// `5.15.0-91-generic`.
pub fn ubuntu_flavour(release: &str) -> Option<&str> {
    debian_flavour(release)
}

/// The Debian package version of the running kernel, read from `uname -v`:
/// `6.1.115-1` in `#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)`.
///
/// The release (`6.1.0-27-amd64`) names the ABI, which stays the same
/// across several package versions; this is the build actually running.
pub fn debian_package_version(uname_version: &str) -> Option<&str> {
    let (_, after) = uname_version.split_once("Debian ")?;
    let version = after.split_whitespace().next()?;
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then_some(version)
}

/// The Ubuntu package version of the running kernel, from the release and
/// `uname -v`: `5.15.0-91.101` for `5.15.0-91-generic` and `#101-Ubuntu SMP
/// ...`; `6.5.0-14.14~22.04.1` for a hardware-enablement kernel built as
/// `#14~22.04.1-Ubuntu`.
pub fn ubuntu_package_version(release: &str, uname_version: &str) -> Option<String> {
    let flavour = ubuntu_flavour(release)?;
    let abi = release.strip_suffix(flavour)?.strip_suffix('-')?;
    let upload = uname_version
        .strip_prefix('#')?
        .split_whitespace()
        .next()?
        .strip_suffix("-Ubuntu")?;
    Some(format!("{abi}.{upload}"))
}

/// A SUSE release such as `5.14.21-150500.55.39-default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuseRelease<'a> {
    /// `5.14.21-150500.55.39`: the version the `-devel` package carries.
    pub version: &'a str,
    /// `default`, `azure`, `rt`, `64kb`...
    pub flavour: &'a str,
}

impl<'a> SuseRelease<'a> {
    /// Splits the flavour off; `None` without one.
    pub fn parse(release: &'a str) -> Option<Self> {
        let (version, flavour) = release.rsplit_once('-')?;
        if !version.contains('-')
            || flavour.is_empty()
            || flavour.starts_with(|c: char| c.is_ascii_digit())
        {
            return None;
        }
        Some(SuseRelease { version, flavour })
    }
}

/// How a distribution names the package with headers for one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderScheme {
    /// `kernel-devel-<release>` (EL; `kernel-<variant>-devel-...` for
    /// `+debug`/`+rt`/`.debug` kernels).
    KernelDevel,
    /// `linux-headers-<release>` (Debian, Ubuntu).
    LinuxHeaders,
    /// `kernel-<flavour>-devel` at version `<release minus -flavour>`
    /// (SUSE).
    SuseFlavourDevel,
}

/// The package that carries the headers of one kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderPackage {
    /// What to hand the package manager: `kernel-devel-3.10.0-1160.el7.x86_64`,
    /// `linux-headers-6.1.0-27-amd64`, `kernel-default-devel-5.14.21-150500.55.39`.
    pub package: String,
    /// The package name alone: `kernel-devel`, `linux-headers-6.1.0-27-amd64`,
    /// `kernel-default-devel`.
    pub name: String,
    /// The package version that matches the running build, when known.
    pub version: Option<String>,
}

impl HeaderScheme {
    /// The header package for `kernel`.
    pub fn package_for(self, kernel: &KernelInfo) -> HeaderPackage {
        let release = kernel.release.as_str();
        let uname_v = kernel.version.as_deref();
        match self {
            HeaderScheme::KernelDevel => {
                let (name, version) = match ElRelease::parse(release) {
                    Some(el) => (
                        match el.variant {
                            Some(v) => format!("kernel-{v}-devel"),
                            None => "kernel-devel".to_owned(),
                        },
                        el.package_version,
                    ),
                    None => ("kernel-devel".to_owned(), release),
                };
                HeaderPackage {
                    package: format!("{name}-{version}"),
                    name,
                    version: Some(version.to_owned()),
                }
            }
            HeaderScheme::LinuxHeaders => {
                let name = format!("linux-headers-{release}");
                let version = uname_v.and_then(|v| {
                    debian_package_version(v)
                        .map(str::to_owned)
                        .or_else(|| ubuntu_package_version(release, v))
                });
                HeaderPackage {
                    package: name.clone(),
                    name,
                    version,
                }
            }
            HeaderScheme::SuseFlavourDevel => {
                let (name, version) = match SuseRelease::parse(release) {
                    Some(s) => (format!("kernel-{}-devel", s.flavour), s.version),
                    None => ("kernel-default-devel".to_owned(), release),
                };
                HeaderPackage {
                    package: format!("{name}-{version}"),
                    name,
                    version: Some(version.to_owned()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::sysroot::fake::{FakeHost, MemFs};

    fn kernel(release: &str, version: Option<&str>) -> KernelInfo {
        KernelInfo {
            release: release.to_owned(),
            version: version.map(str::to_owned),
            arch: "x86_64".to_owned(),
            release_source: ReleaseSource::Argument,
            arch_source: ArchSource::Release,
        }
    }

    #[test]
    fn version_parse_and_minimum() {
        let v = KernelVersion::parse("3.10.0-1160.el7.x86_64").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (3, 10, 0));
        assert!(v.is_supported());
        assert!(!KernelVersion::parse("2.6.32-754.35.1.el6.x86_64")
            .unwrap()
            .is_supported());
        assert!(!KernelVersion::parse("3.9.11").unwrap().is_supported());
        assert!(KernelVersion::parse("6.12.48+deb13-amd64")
            .unwrap()
            .is_supported());
        assert_eq!(
            KernelVersion::parse("6.5-rc1").unwrap(),
            KernelVersion {
                major: 6,
                minor: 5,
                patch: 0
            }
        );
        assert!(KernelVersion::parse("linux").is_none());
        assert!(KernelVersion::parse("6").is_none());
    }

    #[test]
    fn el_releases() {
        let el7 = ElRelease::parse("3.10.0-1160.119.1.el7.x86_64").unwrap();
        assert_eq!(el7.el_major, 7);
        assert_eq!(el7.dist, "el7");
        assert_eq!(el7.arch, Some("x86_64"));
        assert_eq!(el7.upstream, "3.10.0");
        let el8 = ElRelease::parse("4.18.0-513.el8_9.x86_64").unwrap();
        assert_eq!((el8.el_major, el8.dist), (8, "el8_9"));
        let el9 = ElRelease::parse("5.14.0-427.el9.aarch64").unwrap();
        assert_eq!((el9.el_major, el9.arch), (9, Some("aarch64")));
        let debug9 = ElRelease::parse("5.14.0-427.13.1.el9_4.x86_64+debug").unwrap();
        assert_eq!(debug9.variant, Some("debug"));
        assert_eq!(debug9.package_version, "5.14.0-427.13.1.el9_4.x86_64");
        let debug7 = ElRelease::parse("3.10.0-1160.el7.x86_64.debug").unwrap();
        assert_eq!(debug7.variant, Some("debug"));
        assert_eq!(debug7.arch, Some("x86_64"));
        assert!(ElRelease::parse("6.1.0-27-amd64").is_none());
        assert!(ElRelease::parse("5.14.21-150500.55.39-default").is_none());
        assert!(ElRelease::parse("6.6.47-12.oc9.x86_64").is_none());
    }

    #[test]
    fn el_header_packages() {
        let k = kernel("4.18.0-513.el8_9.x86_64", None);
        let p = HeaderScheme::KernelDevel.package_for(&k);
        assert_eq!(p.package, "kernel-devel-4.18.0-513.el8_9.x86_64");
        assert_eq!(p.name, "kernel-devel");
        let k = kernel("5.14.0-427.13.1.el9_4.x86_64+rt", None);
        assert_eq!(
            HeaderScheme::KernelDevel.package_for(&k).package,
            "kernel-rt-devel-5.14.0-427.13.1.el9_4.x86_64"
        );
        let k = kernel("6.6.47-12.oc9.x86_64", None);
        assert_eq!(
            HeaderScheme::KernelDevel.package_for(&k).package,
            "kernel-devel-6.6.47-12.oc9.x86_64"
        );
    }

    #[test]
    fn debian_abi_and_package_version() {
        assert_eq!(debian_flavour("6.1.0-27-amd64"), Some("amd64"));
        assert_eq!(debian_flavour("6.1.0-27-cloud-amd64"), Some("cloud-amd64"));
        assert_eq!(debian_flavour("6.12.48+deb13-amd64"), Some("amd64"));
        assert_eq!(debian_flavour("6.12.48+deb13-rt-arm64"), Some("rt-arm64"));
        assert_eq!(debian_flavour("3.10.0-1160.el7.x86_64"), None);
        assert_eq!(
            debian_package_version("#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)"),
            Some("6.1.158-1")
        );
        assert_eq!(
            debian_package_version("#1 SMP Debian 4.19.316-1 (2024-06-25)"),
            Some("4.19.316-1")
        );
        assert_eq!(debian_package_version("#101-Ubuntu SMP"), None);
        let k = kernel(
            "6.1.0-27-amd64",
            Some("#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)"),
        );
        let p = HeaderScheme::LinuxHeaders.package_for(&k);
        assert_eq!(p.package, "linux-headers-6.1.0-27-amd64");
        assert_eq!(p.version.as_deref(), Some("6.1.115-1"));
    }

    #[test]
    fn ubuntu_flavours_and_versions() {
        assert_eq!(ubuntu_flavour("5.15.0-91-generic"), Some("generic"));
        assert_eq!(ubuntu_flavour("6.8.0-1016-aws"), Some("aws"));
        assert_eq!(ubuntu_flavour("5.15.0-1053-azure"), Some("azure"));
        assert_eq!(ubuntu_flavour("6.8.0-45-lowlatency"), Some("lowlatency"));
        assert_eq!(ubuntu_flavour("5.15.0-91-generic-64k"), Some("generic-64k"));
        assert_eq!(
            ubuntu_package_version(
                "5.15.0-91-generic",
                "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023"
            )
            .as_deref(),
            Some("5.15.0-91.101")
        );
        assert_eq!(
            ubuntu_package_version(
                "6.5.0-14-generic",
                "#14~22.04.1-Ubuntu SMP PREEMPT_DYNAMIC Mon Nov 20 18:15:30 UTC 2023"
            )
            .as_deref(),
            Some("6.5.0-14.14~22.04.1")
        );
        let k = kernel(
            "6.8.0-1016-aws",
            Some("#17-Ubuntu SMP Mon Sep  2 13:48:07 UTC 2024"),
        );
        let p = HeaderScheme::LinuxHeaders.package_for(&k);
        assert_eq!(p.package, "linux-headers-6.8.0-1016-aws");
        assert_eq!(p.version.as_deref(), Some("6.8.0-1016.17"));
    }

    #[test]
    fn suse_releases() {
        let s = SuseRelease::parse("5.14.21-150500.55.39-default").unwrap();
        assert_eq!((s.version, s.flavour), ("5.14.21-150500.55.39", "default"));
        let k = kernel("5.14.21-150500.55.39-default", None);
        let p = HeaderScheme::SuseFlavourDevel.package_for(&k);
        assert_eq!(p.package, "kernel-default-devel-5.14.21-150500.55.39");
        assert_eq!(p.name, "kernel-default-devel");
        let k = kernel("5.14.21-150500.33.51-azure", None);
        assert_eq!(
            HeaderScheme::SuseFlavourDevel.package_for(&k).name,
            "kernel-azure-devel"
        );
        assert!(SuseRelease::parse("6.1.0").is_none());
    }

    #[test]
    fn arch_from_releases() {
        assert_eq!(arch_from_release("3.10.0-1160.el7.x86_64"), Some("x86_64"));
        assert_eq!(arch_from_release("6.6.47-12.oc9.x86_64"), Some("x86_64"));
        assert_eq!(
            arch_from_release("5.14.0-427.el9.aarch64+debug"),
            Some("aarch64")
        );
        assert_eq!(arch_from_release("5.4.119-19.0010.ocrelease.6"), None);
        assert_eq!(arch_from_release("6.1.0-27-arm64"), Some("aarch64"));
        assert_eq!(arch_from_release("6.12.48+deb13-amd64"), Some("x86_64"));
        assert_eq!(arch_from_release("5.15.0-91-generic"), None);
        assert_eq!(arch_from_release("5.15.0-91-generic-64k"), Some("aarch64"));
        assert_eq!(arch_from_release("5.14.21-150500.55.39-default"), None);
    }

    #[test]
    fn release_ordering_is_numeric() {
        assert_eq!(
            compare_releases("5.14.0-427.el9.x86_64", "5.14.0-70.el9.x86_64"),
            Ordering::Greater
        );
        assert_eq!(
            compare_releases("6.1.0-9-amd64", "6.1.0-27-amd64"),
            Ordering::Less
        );
        assert_eq!(
            compare_releases("6.1.0-27-amd64", "6.1.0-27-amd64"),
            Ordering::Equal
        );
        assert_eq!(
            compare_releases("5.10.0-33-amd64", "5.9.0-1-amd64"),
            Ordering::Greater
        );
    }

    #[test]
    fn newest_release_in_root() {
        let fs = MemFs::new()
            .with("/lib/modules/5.14.0-70.el9.x86_64/modules.dep", "")
            .with("/lib/modules/5.14.0-427.el9.x86_64/modules.dep", "")
            .with("/lib/modules/extramodules/x", "");
        assert_eq!(newest_release(&fs).unwrap(), "5.14.0-427.el9.x86_64");
        let empty = MemFs::new().with("/etc/os-release", "");
        assert!(matches!(
            newest_release(&empty),
            Err(KernelError::NoKernelInRoot { .. })
        ));
    }

    #[test]
    fn select_uses_uname_when_live() {
        let host = FakeHost::new(
            "6.1.0-27-amd64",
            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
            "x86_64",
        );
        let k = KernelInfo::select(&MemFs::new(), &host, true, None).unwrap();
        assert_eq!(k.release, "6.1.0-27-amd64");
        assert_eq!(k.release_source, ReleaseSource::Uname);
        assert_eq!(k.arch_source, ArchSource::Uname);
        assert!(k.version.unwrap().contains("Debian 6.1.115-1"));
    }

    #[test]
    fn select_with_other_release_has_no_uname_version() {
        let host = FakeHost::new("6.1.0-27-amd64", "#1 SMP", "aarch64");
        let k = KernelInfo::select(&MemFs::new(), &host, true, Some("6.1.0-28-amd64")).unwrap();
        assert_eq!(k.version, None);
        assert_eq!(
            (k.arch.as_str(), k.arch_source),
            ("x86_64", ArchSource::Release)
        );
        let k = KernelInfo::select(&MemFs::new(), &host, false, Some("6.8.0-45-generic")).unwrap();
        assert_eq!(
            (k.arch.as_str(), k.arch_source),
            ("aarch64", ArchSource::ThisMachine)
        );
    }

    #[test]
    fn too_old_and_garbage() {
        let k = kernel("2.6.32-754.35.1.el6.x86_64", None);
        let err = k.check_supported().unwrap_err();
        assert!(matches!(err, KernelError::TooOld { .. }));
        assert_eq!(err.category(), Exit::Unsupported);
        assert!(err.to_string().contains("older than 3.10"));
        let host = FakeHost::new("6.1.0", "", "x86_64");
        let err = KernelInfo::select(&MemFs::new(), &host, false, Some("latest")).unwrap_err();
        assert_eq!(err.category(), Exit::Usage);
    }
}

//! What a kernel release string says about the distribution's packages:
//! its architecture, its EL, Debian, Ubuntu or SUSE pieces.

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

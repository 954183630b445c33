//! Which distribution the inspected system runs, and what that means for
//! installing toa: package manager, header package, where dkms comes from.
//!
//! Identification reads `/etc/os-release` (then `/usr/lib/os-release`), and
//! on systems that predate it the release files `/etc/redhat-release`,
//! `/etc/centos-release`, `/etc/debian_version` and `/etc/SuSE-release`. All
//! paths are read through [`SystemFs`], so `--root` and fixtures work alike.

mod os_release;
pub mod table;

pub use os_release::OsReleaseFile;
pub use table::{Autoload, DistroRow, DkmsSource, Family, PackageManager, Platform, DISTROS};

use crate::exit::{Categorized, Exit};
use crate::system::sysroot::SystemFs;
use serde::Serialize;
use std::io;
use thiserror::Error;

/// Files that identify a distribution, in the order they are tried.
const OS_RELEASE_PATHS: &[&str] = &["/etc/os-release", "/usr/lib/os-release"];
const REDHAT_RELEASE_PATHS: &[&str] = &["/etc/redhat-release", "/etc/centos-release"];
const DEBIAN_VERSION_PATH: &str = "/etc/debian_version";
const SUSE_RELEASE_PATH: &str = "/etc/SuSE-release";

/// What the system says about itself, before it is matched to the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// os-release `ID`, lower case (`centos`, `ubuntu`, `sles`).
    pub id: String,
    /// os-release `ID_LIKE`, lower case.
    pub id_like: Vec<String>,
    /// os-release `VERSION_ID` (`7`, `22.04`, `15.5`, `V10`), when given.
    pub version_id: Option<String>,
    /// os-release `PLATFORM_ID` (`platform:el8`), when given.
    pub platform_id: Option<String>,
    /// os-release `NAME`.
    pub name: Option<String>,
    /// os-release `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// The file it was read from, as shown to the user.
    pub source: String,
}

impl Identity {
    /// The leading number of `VERSION_ID`: `8` of `8.9`, `10` of Kylin's
    /// `V10`.
    pub fn major(&self) -> Option<u32> {
        leading_number(self.version_id.as_deref()?)
    }

    /// The major `PLATFORM_ID` names: `8` of `platform:el8`,
    /// `platform:an8` or `platform:al8`.
    fn platform_major(&self) -> Option<u32> {
        let platform = self.platform_id.as_deref()?.strip_prefix("platform:")?;
        leading_number(platform.trim_start_matches(|c: char| c.is_ascii_alphabetic()))
    }

    fn describe(&self) -> String {
        format!(
            "ID={}, VERSION_ID={}, NAME={} (from {})",
            self.id,
            self.version_id.as_deref().unwrap_or("(none)"),
            self.name
                .as_deref()
                .map(|n| format!("{n:?}"))
                .unwrap_or_else(|| "(none)".to_owned()),
            self.source
        )
    }
}

/// The digits at the start of `text`, after an optional `V`.
fn leading_number(text: &str) -> Option<u32> {
    let text = text.strip_prefix(['V', 'v']).unwrap_or(text);
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// A system matched to a row of the distribution table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Distro {
    /// What the system says about itself.
    pub identity: Identity,
    /// The matching table row.
    pub row: &'static DistroRow,
    /// Set when the row is a family default chosen through `ID_LIKE`: which
    /// family was assumed and why, for the user to read.
    pub assumed: Option<String>,
}

/// Why the distribution cannot be used.
#[derive(Debug, Error)]
pub enum DistroError {
    /// None of the identifying files exists.
    #[error(
        "cannot tell which Linux distribution this is: none of {tried} exists. \
         Next step: if this is a system image, check that --root points at its top directory; \
         otherwise install gcc, make and the headers of your kernel by hand and run `toa-install --compile`"
    )]
    NotIdentified {
        /// The files looked for, as shown to the user.
        tried: String,
    },
    /// An identifying file exists but cannot be read.
    #[error("cannot read {path}: {source}. Next step: run toa-install as root, or fix the file's permissions")]
    Unreadable {
        /// The file, as shown to the user.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A distribution toa-install has no row for.
    #[error(
        "unsupported distribution: {detected}. toa-install knows CentOS, RHEL, Rocky Linux, AlmaLinux, \
         TencentOS Server, OpenCloudOS, Debian, Ubuntu, SLES and openSUSE Leap. \
         Next step: install gcc, make, dkms and the headers of your running kernel with your package manager, \
         then run `toa-install --compile`"
    )]
    Unknown {
        /// What was detected (ID, VERSION_ID, NAME).
        detected: String,
    },
    /// A known distribution at a release toa-install has no row for.
    #[error(
        "unsupported release: {detected}; toa-install supports {id} {supported}. \
         Next step: install gcc, make, dkms and the headers of your running kernel with your package manager, \
         then run `toa-install --compile`"
    )]
    UnknownRelease {
        /// What was detected (ID, VERSION_ID, NAME).
        detected: String,
        /// os-release `ID`.
        id: String,
        /// The supported majors.
        supported: String,
    },
    /// A release whose kernel is older than 3.10 (EL6 and the like).
    #[error(
        "unsupported system: {detected} is {what}; toa needs kernel 3.10 or newer. \
         Next step: upgrade to a supported release (for example CentOS 7 or newer)"
    )]
    TooOld {
        /// What was detected (ID, VERSION_ID, NAME).
        detected: String,
        /// The refused release and its kernel.
        what: &'static str,
    },
}

impl Categorized for DistroError {
    fn category(&self) -> Exit {
        Exit::Unsupported
    }
}

/// Result of reading the identifying files: who the system says it is.
pub fn identify(fs: &dyn SystemFs) -> Result<Identity, DistroError> {
    for path in OS_RELEASE_PATHS {
        if let Some(text) = read_optional(fs, path)? {
            return Ok(from_os_release(
                &OsReleaseFile::parse(&text),
                fs.display(path),
            ));
        }
    }
    for path in REDHAT_RELEASE_PATHS {
        if let Some(text) = read_optional(fs, path)? {
            if let Some((id, version, name)) = os_release::parse_redhat_release(&text) {
                return Ok(fallback(id, version, name, fs.display(path)));
            }
        }
    }
    if let Some(text) = read_optional(fs, SUSE_RELEASE_PATH)? {
        if let Some((id, version, name)) = os_release::parse_suse_release(&text) {
            return Ok(fallback(id, version, name, fs.display(SUSE_RELEASE_PATH)));
        }
    }
    if let Some(text) = read_optional(fs, DEBIAN_VERSION_PATH)? {
        let version = text.trim().to_owned();
        return Ok(fallback(
            "debian",
            version,
            "Debian GNU/Linux".to_owned(),
            fs.display(DEBIAN_VERSION_PATH),
        ));
    }
    let mut tried: Vec<&str> = OS_RELEASE_PATHS.to_vec();
    tried.extend(REDHAT_RELEASE_PATHS);
    tried.extend([SUSE_RELEASE_PATH, DEBIAN_VERSION_PATH]);
    Err(DistroError::NotIdentified {
        tried: tried.join(", "),
    })
}

/// Identifies the system and matches it to the table.
pub fn detect(fs: &dyn SystemFs) -> Result<Distro, DistroError> {
    classify(identify(fs)?)
}

/// Matches an identity to the table: its own row, else (for an `ID` the
/// table does not know, or whose row is of another family than `ID_LIKE`
/// says) the family default `ID_LIKE` points at.
pub fn classify(identity: Identity) -> Result<Distro, DistroError> {
    let id = identity.id.as_str();
    let major = identity.major();
    let like = like_families(&identity.id_like);
    let own = major
        .and_then(|m| table::lookup_platform(id, m, identity.platform_id.as_deref()))
        // Kylin's desktop (Debian-based) shares `ID=kylin` with its server.
        .filter(|row| like.is_empty() || like.contains(&row.family));
    if let Some(row) = own {
        return Ok(Distro {
            identity,
            row,
            assumed: None,
        });
    }
    let contradicted = major.is_some_and(|m| table::lookup(id, m).is_some());
    if !table::knows_id(id) || contradicted {
        if let Some((row, assumed)) = assume_family(&identity, &like, contradicted) {
            return Ok(Distro {
                identity,
                row,
                assumed: Some(assumed),
            });
        }
    }
    if let Some(old) = major.and_then(|m| table::too_old(id, m)) {
        return Err(DistroError::TooOld {
            detected: identity.describe(),
            what: old.what,
        });
    }
    if table::knows_id(id) {
        return Err(DistroError::UnknownRelease {
            detected: identity.describe(),
            id: identity.id.clone(),
            supported: table::supported_majors(id),
        });
    }
    Err(DistroError::Unknown {
        detected: identity.describe(),
    })
}

/// The families `ID_LIKE` names, in its order.
fn like_families(id_like: &[String]) -> Vec<Family> {
    let mut families = Vec::new();
    for like in id_like {
        let family = match like.as_str() {
            "rhel" | "centos" | "fedora" => Family::El,
            "debian" | "ubuntu" => Family::Debian,
            "suse" | "sles" | "opensuse" => Family::Suse,
            _ => continue,
        };
        if !families.contains(&family) {
            families.push(family);
        }
    }
    families
}

/// The family default for a system the table has no row for, and the line
/// that tells the user what was assumed and why.
fn assume_family(
    identity: &Identity,
    like: &[Family],
    contradicted: bool,
) -> Option<(&'static DistroRow, String)> {
    let id_like = identity.id_like.join(" ");
    let why = if contradicted {
        format!(
            "toa-install's row for ID={} is of another family, but ID_LIKE=\"{id_like}\"",
            identity.id
        )
    } else {
        format!(
            "ID={} is not in toa-install's table but ID_LIKE=\"{id_like}\"",
            identity.id
        )
    };
    for family in like {
        if *family != Family::El {
            let row = table::family_default(*family)?;
            return Some((
                row,
                match family {
                    Family::Debian => format!(
                        "assumed the Debian family: {why} names it; packages are installed \
                         as on Debian (apt-get, linux-headers-<release>)"
                    ),
                    _ => format!(
                        "assumed the SUSE family: {why} names it; packages are installed \
                         as on SUSE (zypper, kernel-<flavour>-devel)"
                    ),
                },
            ));
        }
        // EL rebuilds follow EL's majors; PLATFORM_ID (`platform:el8`) says
        // so even where VERSION_ID counts differently (Alibaba Cloud Linux 3).
        let by_platform = identity
            .platform_major()
            .and_then(table::el_default)
            .map(|row| {
                (
                    row,
                    format!(
                        "PLATFORM_ID={}",
                        identity.platform_id.as_deref().unwrap_or("")
                    ),
                )
            });
        let by_version = || {
            identity.major().and_then(table::el_default).map(|row| {
                (
                    row,
                    format!(
                        "VERSION_ID={}",
                        identity.version_id.as_deref().unwrap_or("")
                    ),
                )
            })
        };
        if let Some((row, source)) = by_platform.or_else(by_version) {
            let major = row.el_major.unwrap_or_default();
            return Some((
                row,
                format!(
                    "assumed Enterprise Linux {major}: {why} names an EL family and {source} \
                     gives major {major}; packages are installed as on EL{major} (kernel-devel, EPEL for dkms)"
                ),
            ));
        }
    }
    None
}

fn read_optional(fs: &dyn SystemFs, path: &str) -> Result<Option<String>, DistroError> {
    match fs.read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(DistroError::Unreadable {
            path: fs.display(path),
            source,
        }),
    }
}

fn from_os_release(file: &OsReleaseFile, source: String) -> Identity {
    let lower = |s: &str| s.to_ascii_lowercase();
    Identity {
        // os-release(5): ID defaults to "linux".
        id: file
            .get("ID")
            .map(lower)
            .unwrap_or_else(|| "linux".to_owned()),
        id_like: file
            .get("ID_LIKE")
            .map(|s| s.split_whitespace().map(lower).collect())
            .unwrap_or_default(),
        version_id: file.get("VERSION_ID").map(str::to_owned),
        platform_id: file.get("PLATFORM_ID").map(str::to_owned),
        name: file.get("NAME").map(str::to_owned),
        pretty_name: file.get("PRETTY_NAME").map(str::to_owned),
        source,
    }
}

fn fallback(id: &str, version: String, name: String, source: String) -> Identity {
    Identity {
        id: id.to_owned(),
        id_like: Vec::new(),
        pretty_name: Some(format!("{name} {version}")),
        version_id: Some(version),
        platform_id: None,
        name: Some(name),
        source,
    }
}

#[cfg(test)]
mod tests;

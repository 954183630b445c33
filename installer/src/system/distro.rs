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
pub use table::{Autoload, DistroRow, DkmsSource, Family, PackageManager, DISTROS};

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
    /// os-release `VERSION_ID` (`7`, `22.04`, `15.5`), when given.
    pub version_id: Option<String>,
    /// os-release `NAME`.
    pub name: Option<String>,
    /// os-release `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// The file it was read from, as shown to the user.
    pub source: String,
}

impl Identity {
    /// The number before the first `.` of `VERSION_ID`.
    pub fn major(&self) -> Option<u32> {
        let version = self.version_id.as_deref()?;
        version.split('.').next()?.parse().ok()
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

/// A system matched to a row of the distribution table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Distro {
    /// What the system says about itself.
    pub identity: Identity,
    /// The matching table row.
    pub row: &'static DistroRow,
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

/// Matches an identity to the table.
pub fn classify(identity: Identity) -> Result<Distro, DistroError> {
    let id = identity.id.as_str();
    let major = identity.major();
    if let Some(row) = major.and_then(|m| table::lookup(id, m)) {
        return Ok(Distro { identity, row });
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
        name: Some(name),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::sysroot::fake::MemFs;

    #[test]
    fn os_release_wins_over_release_files() {
        let fs = MemFs::new()
            .with(
                "/etc/os-release",
                "ID=\"rocky\"\nVERSION_ID=\"9.3\"\nNAME=\"Rocky Linux\"\n",
            )
            .with(
                "/etc/redhat-release",
                "Rocky Linux release 9.3 (Blue Onyx)\n",
            );
        let d = detect(&fs).unwrap();
        assert_eq!(d.row.label, "Rocky Linux 9");
        assert_eq!(d.identity.source, "/etc/os-release");
    }

    #[test]
    fn usr_lib_os_release_is_the_second_choice() {
        let fs = MemFs::new().with("/usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
        assert_eq!(detect(&fs).unwrap().row.family, Family::Debian);
    }

    #[test]
    fn release_file_fallbacks() {
        let fs = MemFs::new().with(
            "/etc/centos-release",
            "CentOS Linux release 7.9.2009 (Core)\n",
        );
        let d = detect(&fs).unwrap();
        assert_eq!((d.row.id, d.row.min_major), ("centos", 7));
        let fs = MemFs::new().with("/etc/debian_version", "11.11\n");
        let d = detect(&fs).unwrap();
        assert_eq!(d.identity.version_id.as_deref(), Some("11.11"));
        assert_eq!(d.row.id, "debian");
        let fs = MemFs::new().with(
            "/etc/SuSE-release",
            "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 5\n",
        );
        assert_eq!(detect(&fs).unwrap().row.label, "SLES 12");
    }

    #[test]
    fn id_is_case_insensitive() {
        let fs = MemFs::new().with(
            "/etc/os-release",
            "ID=\"OpenCloudOS\"\nVERSION_ID=\"8.6\"\n",
        );
        assert_eq!(detect(&fs).unwrap().row.label, "OpenCloudOS 8");
    }

    #[test]
    fn centos6_is_too_old() {
        let fs = MemFs::new().with("/etc/redhat-release", "CentOS release 6.10 (Final)\n");
        let err = detect(&fs).unwrap_err();
        assert!(matches!(err, DistroError::TooOld { .. }), "{err}");
        assert_eq!(err.category(), Exit::Unsupported);
        assert!(err.to_string().contains("EL6"));
    }

    #[test]
    fn unknown_distro_names_what_it_saw_and_suggests_compile() {
        let fs = MemFs::new().with(
            "/etc/os-release",
            "NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n",
        );
        let err = detect(&fs).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ID=arch"), "{text}");
        assert!(text.contains("VERSION_ID=(none)"), "{text}");
        assert!(text.contains("\"Arch Linux\""), "{text}");
        assert!(text.contains("--compile"), "{text}");
    }

    #[test]
    fn unknown_release_of_known_distro() {
        let fs = MemFs::new().with(
            "/etc/os-release",
            "ID=rhel\nVERSION_ID=\"10.0\"\nNAME=\"Red Hat Enterprise Linux\"\n",
        );
        let err = detect(&fs).unwrap_err();
        assert!(matches!(err, DistroError::UnknownRelease { .. }));
        assert!(err.to_string().contains("rhel 7, 8, 9"), "{err}");
    }

    #[test]
    fn nothing_to_read() {
        let err = detect(&MemFs::new()).unwrap_err();
        assert!(matches!(err, DistroError::NotIdentified { .. }));
        assert!(err.to_string().contains("/etc/os-release"));
    }

    #[test]
    fn missing_id_defaults_to_linux() {
        let fs = MemFs::new().with("/etc/os-release", "NAME=Thing\n");
        assert_eq!(identify(&fs).unwrap().id, "linux");
    }
}

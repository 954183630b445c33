//! The one table of supported distributions (SPEC §3.2).
//!
//! A row is matched by the os-release `ID`, the major number of `VERSION_ID`
//! and, where one `ID` covers systems of different families (UOS Server),
//! `PLATFORM_ID`. Everything the installer does differently per distribution
//! is read from the matched row; nothing else in the crate tests a
//! distribution's name. Systems without a row of their own may still get one
//! of the [`FAMILY_DEFAULTS`] through `ID_LIKE` (see `distro::classify`).

use crate::system::kernel::HeaderScheme;
use serde::Serialize;

/// The family a distribution's packaging and kernels belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Red Hat Enterprise Linux, its rebuilds, and the rpm/dnf systems that
    /// package kernels the same way (`kernel-devel-<release>`: openEuler,
    /// Kylin Linux Advanced Server).
    El,
    /// Debian and Ubuntu.
    Debian,
    /// SUSE Linux Enterprise and openSUSE.
    Suse,
}

/// The package manager the installer drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageManager {
    /// `yum` (EL7).
    Yum,
    /// `dnf` (EL8 and newer).
    Dnf,
    /// `apt-get`.
    Apt,
    /// `zypper`.
    Zypper,
}

impl PackageManager {
    /// The command's name.
    pub const fn command(self) -> &'static str {
        match self {
            PackageManager::Yum => "yum",
            PackageManager::Dnf => "dnf",
            PackageManager::Apt => "apt-get",
            PackageManager::Zypper => "zypper",
        }
    }
}

/// Where the `dkms` package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DkmsSource {
    /// The distribution's own repositories.
    Distribution,
    /// EPEL, switched on by installing the `epel-release` package, which the
    /// distribution's own repositories carry.
    EpelReleasePackage,
    /// EPEL as the vendor rebuilds it, switched on by a release package of
    /// another name that conflicts with `epel-release` (Alibaba Cloud Linux
    /// 3's `epel-aliyuncs-release`, preinstalled on its cloud images).
    EpelVendorPackage {
        /// The package that switches the vendor's EPEL on.
        package: &'static str,
    },
    /// EPEL, switched on by installing its release rpm from this address
    /// (RHEL does not carry `epel-release`).
    EpelRpm {
        /// The address of the `epel-release` rpm.
        url: &'static str,
    },
    /// SUSE Package Hub, which has to be activated with `SUSEConnect`.
    SusePackageHub {
        /// `SUSEConnect -p` product, with `{arch}` for the architecture.
        product: &'static str,
    },
}

impl DkmsSource {
    /// The package whose presence shows that the repository carrying dkms
    /// is switched on, when dkms comes from EPEL.
    pub const fn epel_package(self) -> Option<&'static str> {
        match self {
            DkmsSource::EpelReleasePackage | DkmsSource::EpelRpm { .. } => Some("epel-release"),
            DkmsSource::EpelVendorPackage { package } => Some(package),
            DkmsSource::Distribution | DkmsSource::SusePackageHub { .. } => None,
        }
    }
}

/// What a row asks of os-release `PLATFORM_ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Platform {
    /// Anything, or nothing.
    Any,
    /// Exactly this value (`platform:uelc20`).
    Is(&'static str),
    /// No `PLATFORM_ID` at all.
    Absent,
}

impl Platform {
    /// Whether a system with this `PLATFORM_ID` fits.
    pub fn matches(self, platform_id: Option<&str>) -> bool {
        match self {
            Platform::Any => true,
            Platform::Is(want) => platform_id == Some(want),
            Platform::Absent => platform_id.is_none(),
        }
    }

    /// Whether no system fits both.
    #[cfg(test)]
    fn disjoint(self, other: Platform) -> bool {
        match (self, other) {
            (Platform::Is(a), Platform::Is(b)) => a != b,
            (Platform::Is(_), Platform::Absent) | (Platform::Absent, Platform::Is(_)) => true,
            _ => false,
        }
    }
}

/// How the module is loaded at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Autoload {
    /// `/etc/modules-load.d/toa.conf`, read by `systemd-modules-load`.
    SystemdModulesLoad,
}

impl Autoload {
    /// The file the installer writes.
    pub const fn path(self) -> &'static str {
        match self {
            Autoload::SystemdModulesLoad => crate::layout::AUTOLOAD_CONF,
        }
    }
}

/// One supported distribution release line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistroRow {
    /// os-release `ID`, lower case.
    pub id: &'static str,
    /// Lowest matching major of `VERSION_ID`.
    pub min_major: u32,
    /// Highest matching major of `VERSION_ID`.
    pub max_major: u32,
    /// What `PLATFORM_ID` has to say.
    pub platform: Platform,
    /// What the row covers, for people: `CentOS 7`.
    pub label: &'static str,
    /// Packaging family.
    pub family: Family,
    /// The Enterprise Linux major the release is built from (EL rebuilds
    /// only; openEuler and its derivatives have none).
    pub el_major: Option<u32>,
    /// The package manager.
    pub package_manager: PackageManager,
    /// How the header package of a kernel is named.
    pub headers: HeaderScheme,
    /// Where `dkms` comes from.
    pub dkms: DkmsSource,
    /// Packages needed to compile a module besides the headers and dkms.
    pub toolchain: &'static [&'static str],
    /// How the module is loaded at boot.
    pub autoload: Autoload,
}

const EL7_TOOLS: &[&str] = &["gcc", "make"];
/// Kernels 4.x and newer run objtool during module builds, which needs libelf.
const EL8_TOOLS: &[&str] = &["gcc", "make", "elfutils-libelf-devel"];
const DEB_TOOLS: &[&str] = &["gcc", "make"];
const SUSE_TOOLS: &[&str] = &["gcc", "make"];

const fn el(
    id: &'static str,
    major: u32,
    label: &'static str,
    el_major: u32,
    dkms: DkmsSource,
) -> DistroRow {
    let (package_manager, toolchain) = if el_major <= 7 {
        (PackageManager::Yum, EL7_TOOLS)
    } else {
        (PackageManager::Dnf, EL8_TOOLS)
    };
    DistroRow {
        id,
        min_major: major,
        max_major: major,
        platform: Platform::Any,
        label,
        family: Family::El,
        el_major: Some(el_major),
        package_manager,
        headers: HeaderScheme::KernelDevel,
        dkms,
        toolchain,
        autoload: Autoload::SystemdModulesLoad,
    }
}

const fn deb(id: &'static str, min: u32, max: u32, label: &'static str) -> DistroRow {
    DistroRow {
        id,
        min_major: min,
        max_major: max,
        platform: Platform::Any,
        label,
        family: Family::Debian,
        el_major: None,
        package_manager: PackageManager::Apt,
        headers: HeaderScheme::LinuxHeaders,
        dkms: DkmsSource::Distribution,
        toolchain: DEB_TOOLS,
        autoload: Autoload::SystemdModulesLoad,
    }
}

const fn suse(id: &'static str, major: u32, label: &'static str, dkms: DkmsSource) -> DistroRow {
    DistroRow {
        id,
        min_major: major,
        max_major: major,
        platform: Platform::Any,
        label,
        family: Family::Suse,
        el_major: None,
        package_manager: PackageManager::Zypper,
        headers: HeaderScheme::SuseFlavourDevel,
        dkms,
        toolchain: SUSE_TOOLS,
        autoload: Autoload::SystemdModulesLoad,
    }
}

/// openEuler and the systems built from it: dnf and `kernel-devel` like
/// EL8, but no EL major, and dkms in their own repositories.
const fn euler(id: &'static str, min: u32, max: u32, label: &'static str) -> DistroRow {
    // EL8's packaging (dnf, kernel-devel, libelf) without its major or EPEL.
    DistroRow {
        max_major: max,
        el_major: None,
        dkms: DkmsSource::Distribution,
        ..el(id, min, label, 8, DkmsSource::Distribution)
    }
}

const EPEL: DkmsSource = DkmsSource::EpelReleasePackage;

/// Every supported distribution release.
pub static DISTROS: &[DistroRow] = &[
    el("centos", 7, "CentOS 7", 7, EPEL),
    el("centos", 8, "CentOS Linux 8 / Stream 8", 8, EPEL),
    el("centos", 9, "CentOS Stream 9", 9, EPEL),
    el(
        "rhel",
        7,
        "RHEL 7",
        7,
        DkmsSource::EpelRpm {
            url: "https://dl.fedoraproject.org/pub/epel/epel-release-latest-7.noarch.rpm",
        },
    ),
    el(
        "rhel",
        8,
        "RHEL 8",
        8,
        DkmsSource::EpelRpm {
            url: "https://dl.fedoraproject.org/pub/epel/epel-release-latest-8.noarch.rpm",
        },
    ),
    el(
        "rhel",
        9,
        "RHEL 9",
        9,
        DkmsSource::EpelRpm {
            url: "https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm",
        },
    ),
    el("rocky", 8, "Rocky Linux 8", 8, EPEL),
    el("rocky", 9, "Rocky Linux 9", 9, EPEL),
    el("almalinux", 8, "AlmaLinux 8", 8, EPEL),
    el("almalinux", 9, "AlmaLinux 9", 9, EPEL),
    // TencentOS Server 2.4 is EL7 userland with a 4.14 kernel, whose module
    // builds run objtool and so need libelf like EL8.
    DistroRow {
        toolchain: EL8_TOOLS,
        ..el("tencentos", 2, "TencentOS Server 2", 7, EPEL)
    },
    el("tencentos", 3, "TencentOS Server 3", 8, EPEL),
    el("opencloudos", 8, "OpenCloudOS 8", 8, EPEL),
    el("opencloudos", 9, "OpenCloudOS 9", 9, EPEL),
    // Anolis OS 7 runs either the CentOS 7 kernel or ANCK 4.19, whose module
    // builds run objtool and so need libelf.
    DistroRow {
        toolchain: EL8_TOOLS,
        ..el("anolis", 7, "Anolis OS 7", 7, EPEL)
    },
    el("anolis", 8, "Anolis OS 8", 8, EPEL),
    // Alibaba Cloud Linux 2 is EL7 userland with a 4.19 kernel (objtool).
    DistroRow {
        toolchain: EL8_TOOLS,
        ..el("alinux", 2, "Alibaba Cloud Linux 2", 7, EPEL)
    },
    el(
        "alinux",
        3,
        "Alibaba Cloud Linux 3",
        8,
        DkmsSource::EpelVendorPackage {
            package: "epel-aliyuncs-release",
        },
    ),
    euler("openeuler", 20, 24, "openEuler 20.03-24.03"),
    // Kylin Linux Advanced Server V10 is built from openEuler 20.03.
    euler("kylin", 10, 10, "Kylin Linux Advanced Server V10"),
    // UOS Server 20 comes in three editions under one ID: 1050a (EL8-based,
    // platform:uelc20), 1050e (openEuler-based, platform:uel20) and 1050d
    // (Debian-based, no PLATFORM_ID).
    DistroRow {
        platform: Platform::Is("platform:uelc20"),
        ..el("uos", 20, "UOS Server 20 (1050a, EL8-based)", 8, EPEL)
    },
    DistroRow {
        platform: Platform::Is("platform:uel20"),
        ..euler("uos", 20, 20, "UOS Server 20 (1050e, openEuler-based)")
    },
    DistroRow {
        platform: Platform::Absent,
        ..deb("uos", 20, 20, "UOS 20 (1050d, Debian-based)")
    },
    deb("debian", 10, 13, "Debian 10-13"),
    deb("ubuntu", 18, 24, "Ubuntu 18.04-24.04"),
    suse(
        "sles",
        12,
        "SLES 12",
        DkmsSource::SusePackageHub {
            product: "PackageHub/{version}/{arch}",
        },
    ),
    suse(
        "sles",
        15,
        "SLES 15",
        DkmsSource::SusePackageHub {
            product: "PackageHub/{version}/{arch}",
        },
    ),
    suse(
        "opensuse-leap",
        15,
        "openSUSE Leap 15",
        DkmsSource::Distribution,
    ),
];

/// Rows for systems without a row of their own whose `ID_LIKE` names a
/// family: EL of a known major, Debian, SUSE. Their `id` is the family
/// they stand for, never matched against a system's `ID`.
pub static FAMILY_DEFAULTS: &[DistroRow] = &[
    el("rhel", 7, "EL 7 compatible", 7, EPEL_7_RPM),
    el("rhel", 8, "EL 8 compatible", 8, EPEL_8_RPM),
    el("rhel", 9, "EL 9 compatible", 9, EPEL_9_RPM),
    deb("debian", 0, u32::MAX, "Debian compatible"),
    suse("suse", 0, "SUSE compatible", DkmsSource::Distribution),
];

// An unknown EL rebuild may name its EPEL switch differently (Oracle
// Linux's `oracle-epel-release-el8`); Fedora's own release rpm works on all.
const EPEL_7_RPM: DkmsSource = DkmsSource::EpelRpm {
    url: "https://dl.fedoraproject.org/pub/epel/epel-release-latest-7.noarch.rpm",
};
const EPEL_8_RPM: DkmsSource = DkmsSource::EpelRpm {
    url: "https://dl.fedoraproject.org/pub/epel/epel-release-latest-8.noarch.rpm",
};
const EPEL_9_RPM: DkmsSource = DkmsSource::EpelRpm {
    url: "https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm",
};

/// The family default for EL major `major`, if there is one.
pub fn el_default(major: u32) -> Option<&'static DistroRow> {
    FAMILY_DEFAULTS
        .iter()
        .find(|row| row.family == Family::El && row.el_major == Some(major))
}

/// The family default for a family without majors (Debian, SUSE).
pub fn family_default(family: Family) -> Option<&'static DistroRow> {
    FAMILY_DEFAULTS
        .iter()
        .find(|row| row.family == family && row.el_major.is_none())
}

/// Releases refused outright: their kernels predate 3.10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOldRow {
    /// os-release `ID` (or the ID inferred from a release file).
    pub id: &'static str,
    /// Every major up to this one is refused.
    pub max_major: u32,
    /// What the user is told.
    pub what: &'static str,
}

/// Known releases whose kernels are older than 3.10.
pub static TOO_OLD: &[TooOldRow] = &[
    TooOldRow {
        id: "centos",
        max_major: 6,
        what: "EL6 (kernel 2.6.32)",
    },
    TooOldRow {
        id: "rhel",
        max_major: 6,
        what: "EL6 (kernel 2.6.32)",
    },
    TooOldRow {
        id: "sles",
        max_major: 11,
        what: "SLES 11 (kernel 3.0)",
    },
    TooOldRow {
        id: "debian",
        max_major: 7,
        what: "Debian 7 (kernel 3.2)",
    },
    TooOldRow {
        id: "ubuntu",
        max_major: 12,
        what: "Ubuntu 12.04 (kernel 3.2)",
    },
];

/// The row for `id` at major `major`, on a system without `PLATFORM_ID`
/// or where it does not matter.
pub fn lookup(id: &str, major: u32) -> Option<&'static DistroRow> {
    lookup_platform(id, major, None)
}

/// The row for `id` at major `major` with this `PLATFORM_ID`.
pub fn lookup_platform(
    id: &str,
    major: u32,
    platform_id: Option<&str>,
) -> Option<&'static DistroRow> {
    DISTROS.iter().find(|row| {
        row.id == id
            && (row.min_major..=row.max_major).contains(&major)
            && row.platform.matches(platform_id)
    })
}

/// Whether `id` appears in the table at all.
pub fn knows_id(id: &str) -> bool {
    DISTROS.iter().any(|row| row.id == id)
}

/// The majors of `id` the table supports, for messages: `7, 8, 9`.
pub fn supported_majors(id: &str) -> String {
    let mut parts = Vec::new();
    for row in DISTROS.iter().filter(|row| row.id == id) {
        let part = if row.min_major == row.max_major {
            row.min_major.to_string()
        } else {
            format!("{}-{}", row.min_major, row.max_major)
        };
        // UOS has one major in three rows.
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    parts.join(", ")
}

/// The refusal row for `id` at major `major`, if that release is too old.
pub fn too_old(id: &str, major: u32) -> Option<&'static TooOldRow> {
    TOO_OLD
        .iter()
        .find(|row| row.id == id && major <= row.max_major)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_do_not_overlap() {
        for (i, a) in DISTROS.iter().enumerate() {
            assert!(a.min_major <= a.max_major, "{}", a.label);
            for b in &DISTROS[i + 1..] {
                let overlap = a.id == b.id
                    && a.min_major <= b.max_major
                    && b.min_major <= a.max_major
                    && !a.platform.disjoint(b.platform);
                assert!(!overlap, "{} overlaps {}", a.label, b.label);
            }
        }
    }

    #[test]
    fn every_spec_distro_has_a_row() {
        for (id, major) in [
            ("centos", 7),
            ("centos", 8),
            ("centos", 9),
            ("rhel", 7),
            ("rhel", 8),
            ("rhel", 9),
            ("rocky", 8),
            ("rocky", 9),
            ("almalinux", 8),
            ("almalinux", 9),
            ("tencentos", 2),
            ("tencentos", 3),
            ("opencloudos", 8),
            ("opencloudos", 9),
            ("debian", 10),
            ("debian", 13),
            ("ubuntu", 18),
            ("ubuntu", 24),
            ("sles", 12),
            ("sles", 15),
            ("opensuse-leap", 15),
            ("anolis", 7),
            ("anolis", 8),
            ("alinux", 2),
            ("alinux", 3),
            ("openeuler", 20),
            ("openeuler", 22),
            ("kylin", 10),
        ] {
            assert!(lookup(id, major).is_some(), "{id} {major}");
        }
        for (platform, family) in [
            (Some("platform:uelc20"), Family::El),
            (Some("platform:uel20"), Family::El),
            (None, Family::Debian),
        ] {
            let row = lookup_platform("uos", 20, platform).unwrap();
            assert_eq!(row.family, family, "{platform:?}");
        }
        assert!(lookup_platform("uos", 20, Some("platform:other")).is_none());
        assert!(lookup("debian", 14).is_none());
        assert!(lookup("arch", 0).is_none());
    }

    #[test]
    fn families_are_consistent() {
        for row in DISTROS.iter().chain(FAMILY_DEFAULTS) {
            match row.family {
                Family::El => {
                    assert_eq!(row.headers, HeaderScheme::KernelDevel);
                    let expect = if row.el_major == Some(7) {
                        PackageManager::Yum
                    } else {
                        PackageManager::Dnf
                    };
                    assert_eq!(row.package_manager, expect, "{}", row.label);
                }
                Family::Debian => {
                    assert_eq!(row.package_manager, PackageManager::Apt);
                    assert_eq!(row.headers, HeaderScheme::LinuxHeaders);
                }
                Family::Suse => {
                    assert_eq!(row.package_manager, PackageManager::Zypper);
                    assert_eq!(row.headers, HeaderScheme::SuseFlavourDevel);
                }
            }
        }
    }

    #[test]
    fn el6_is_too_old() {
        assert!(too_old("centos", 6).is_some());
        assert!(too_old("centos", 7).is_none());
        assert_eq!(supported_majors("centos"), "7, 8, 9");
        assert_eq!(supported_majors("debian"), "10-13");
        assert_eq!(supported_majors("uos"), "20");
    }

    #[test]
    fn family_defaults_cover_each_el_major_and_family() {
        for major in [7, 8, 9] {
            assert_eq!(el_default(major).unwrap().el_major, Some(major));
        }
        assert!(el_default(6).is_none());
        assert!(el_default(10).is_none());
        assert_eq!(
            family_default(Family::Debian).unwrap().package_manager,
            PackageManager::Apt
        );
        assert_eq!(
            family_default(Family::Suse).unwrap().package_manager,
            PackageManager::Zypper
        );
        assert!(family_default(Family::El).is_none());
    }
}

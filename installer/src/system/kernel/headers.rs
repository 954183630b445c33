//! The package that carries one kernel's headers, per distribution scheme.

use super::{debian_package_version, ubuntu_package_version, ElRelease, KernelInfo, SuseRelease};
use serde::Serialize;

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

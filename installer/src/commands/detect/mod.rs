//! `toa-install detect`: everything the installer would base its plan on,
//! gathered in one report, printed as text or JSON.
//!
//! Gathering never stops at the first problem: an unknown distribution still
//! gets its kernel and Secure Boot state reported, so the user sees the whole
//! picture. The most fundamental problem decides the exit code.

pub use crate::commands::facts::Target;
use crate::commands::facts::{self, HostFacts};
use crate::commands::report::Output;
pub use crate::commands::report::Problem;
use crate::effects::host::RealHost;
pub use crate::effects::progress::Verbosity;
use crate::exit::{Categorized, Exit};
use crate::system::distro::{Autoload, Distro, DistroError, DkmsSource, Family, PackageManager};
use crate::system::kernel::{ArchSource, HeaderPackage, KernelError, KernelInfo, ReleaseSource};
use crate::system::security::{OurModule, SecurityState};
use crate::system::sysroot::open_root;
use serde::Serialize;
use std::io::Write as _;
use std::path::Path;

mod text;

pub use text::render_text;

/// `toa-install detect`: detects the system at `root` (default: this host)
/// for `kernel_release` and prints the report.
pub fn main(output: &Output, root: Option<&Path>, kernel_release: Option<&str>) -> Exit {
    let fs = match open_root(root) {
        Ok(fs) => fs,
        Err(e) => return output.fail(e.category(), &e.to_string()),
    };
    let ours = OurModule::this_release();
    let target = Target {
        fs: &fs,
        host: &RealHost,
        live: fs.is_live(),
        kernel_release,
        ours: &ours,
    };
    let report = detect(target, fs.root().display().to_string());
    let exit = report.exit();

    if output.json {
        output.print_json(&report);
        return exit;
    }

    let text = render_text(&report, output.verbosity());
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    let mut stderr = std::io::stderr().lock();
    if output.verbosity() != Verbosity::Quiet {
        for warning in &report.warnings {
            let _ = writeln!(stderr, "warning: {}", warning.message);
        }
    }
    if let Some(error) = &report.error {
        let _ = writeln!(stderr, "error: {}", error.message);
    }
    exit
}

/// The distribution part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistroReport {
    /// os-release `ID`.
    pub id: String,
    /// os-release `VERSION_ID`.
    pub version_id: Option<String>,
    /// os-release `NAME`.
    pub name: Option<String>,
    /// os-release `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// os-release `ID_LIKE`.
    pub id_like: Vec<String>,
    /// The file it was read from.
    pub source: String,
    /// The table row matched, when supported (`CentOS 7`).
    pub matched: Option<&'static str>,
    /// Packaging family.
    pub family: Option<Family>,
    /// Enterprise Linux major, on EL.
    pub el_major: Option<u32>,
    /// Package manager.
    pub package_manager: Option<PackageManager>,
    /// Where dkms comes from.
    pub dkms: Option<DkmsReport>,
    /// Compiler toolchain packages.
    pub toolchain: Vec<&'static str>,
    /// Boot-time autoload.
    pub autoload: Option<AutoloadReport>,
}

/// Where dkms comes from, with placeholders filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DkmsReport {
    /// `distribution`, `epel-release-package`, `epel-vendor-package`,
    /// `epel-rpm`, `suse-package-hub`.
    pub kind: &'static str,
    /// The package that enables the repository (`epel-release`).
    pub repo_package: Option<&'static str>,
    /// The rpm to install by address (RHEL).
    pub url: Option<&'static str>,
    /// The `SUSEConnect -p` product.
    pub product: Option<String>,
}

/// How the module is loaded at boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutoloadReport {
    /// The mechanism.
    pub mechanism: Autoload,
    /// The file written.
    pub path: &'static str,
}

/// The kernel part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelReport {
    /// The release.
    pub release: String,
    /// `uname -v`, for the running kernel.
    pub version: Option<String>,
    /// Architecture.
    pub arch: String,
    /// `major.minor.patch` of the release.
    pub number: Option<String>,
    /// Where the release came from.
    pub release_source: ReleaseSource,
    /// Where the architecture came from.
    pub arch_source: ArchSource,
}

/// The header package part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeadersReport {
    /// The package.
    #[serde(flatten)]
    pub package: HeaderPackage,
    /// Whether `/lib/modules/<release>/build` already holds a kernel build tree.
    pub installed: bool,
}

/// Everything `detect` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Whether toa-install can install on this system as detected.
    pub supported: bool,
    /// The directory the system was read from.
    pub root: String,
    /// Whether that is the running host.
    pub live: bool,
    /// Distribution, when it could be identified.
    pub distro: Option<DistroReport>,
    /// Kernel, when one could be chosen.
    pub kernel: Option<KernelReport>,
    /// Header package, when distribution and kernel are known.
    pub headers: Option<HeadersReport>,
    /// Secure Boot, lockdown, SUSE gate, loaded toa module.
    pub security: SecurityState,
    /// What will stop a later install step, with the next step for each.
    pub warnings: Vec<Problem>,
    /// Why the system is not supported, if it is not.
    pub error: Option<Problem>,
}

impl Report {
    /// The exit category of this run.
    pub fn exit(&self) -> Exit {
        self.error.as_ref().map_or(Exit::Ok, |e| e.category)
    }
}

/// Runs every detection against `target`.
pub fn detect(target: Target<'_>, root_display: String) -> Report {
    let gathered = facts::gather(target);
    let mismatch = gathered.el_mismatch();
    let HostFacts {
        identity,
        distro,
        kernel,
        security,
    } = gathered;
    let mut warnings: Vec<Problem> = security
        .issues()
        .iter()
        .map(|issue| Problem::of(issue))
        .collect();
    if let Some(assumed) = distro.as_ref().ok().and_then(|d| d.assumed.clone()) {
        warnings.push(Problem::new(Exit::Unsupported, assumed));
    }
    warnings.extend(mismatch);

    let kernel_support = kernel.as_ref().map(KernelInfo::check_supported);
    let error = first_error(&distro, &kernel, kernel_support);

    let distro_report = match (&distro, identity) {
        (Ok(d), _) => Some(distro_report(
            d,
            kernel.as_ref().ok().map(|k| k.arch.as_str()),
        )),
        (Err(_), Some(identity)) => Some(DistroReport {
            id: identity.id,
            version_id: identity.version_id,
            name: identity.name,
            pretty_name: identity.pretty_name,
            id_like: identity.id_like,
            source: identity.source,
            matched: None,
            family: None,
            el_major: None,
            package_manager: None,
            dkms: None,
            toolchain: Vec::new(),
            autoload: None,
        }),
        (Err(_), None) => None,
    };
    let headers = match (&distro, &kernel) {
        (Ok(d), Ok(k)) => Some(HeadersReport {
            package: d.row.headers.package_for(k),
            installed: target
                .fs
                .exists(&format!("/lib/modules/{}/build/Makefile", k.release)),
        }),
        _ => None,
    };
    let kernel_report = kernel.ok().map(|k| KernelReport {
        number: k.kernel_version().map(|v| v.to_string()),
        release: k.release,
        version: k.version,
        arch: k.arch,
        release_source: k.release_source,
        arch_source: k.arch_source,
    });
    Report {
        supported: error.is_none(),
        root: root_display,
        live: target.live,
        distro: distro_report,
        kernel: kernel_report,
        headers,
        security,
        warnings,
        error,
    }
}

/// The error that decides the exit code: a mistyped `--kernel-release`
/// first, then the distribution, then a too-old kernel.
fn first_error(
    distro: &Result<Distro, DistroError>,
    kernel: &Result<KernelInfo, KernelError>,
    kernel_support: Result<Result<(), KernelError>, &KernelError>,
) -> Option<Problem> {
    if let Err(e) = kernel {
        if e.category() == Exit::Usage {
            return Some(Problem::of(e));
        }
    }
    if let Err(e) = distro {
        return Some(Problem::of(e));
    }
    match kernel_support {
        Err(e) => Some(Problem::of(e)),
        Ok(Err(e)) => Some(Problem::of(&e)),
        Ok(Ok(())) => None,
    }
}

fn distro_report(d: &Distro, arch: Option<&str>) -> DistroReport {
    let row = d.row;
    let id = &d.identity;
    DistroReport {
        id: id.id.clone(),
        version_id: id.version_id.clone(),
        name: id.name.clone(),
        pretty_name: id.pretty_name.clone(),
        id_like: id.id_like.clone(),
        source: id.source.clone(),
        matched: Some(row.label),
        family: Some(row.family),
        el_major: row.el_major,
        package_manager: Some(row.package_manager),
        dkms: Some(dkms_report(row.dkms, id.version_id.as_deref(), arch)),
        toolchain: row.toolchain.to_vec(),
        autoload: Some(AutoloadReport {
            mechanism: row.autoload,
            path: row.autoload.path(),
        }),
    }
}

fn dkms_report(source: DkmsSource, version_id: Option<&str>, arch: Option<&str>) -> DkmsReport {
    let none = DkmsReport {
        kind: "distribution",
        repo_package: None,
        url: None,
        product: None,
    };
    match source {
        DkmsSource::Distribution => none,
        DkmsSource::EpelReleasePackage => DkmsReport {
            kind: "epel-release-package",
            repo_package: Some("epel-release"),
            ..none
        },
        DkmsSource::EpelVendorPackage { package } => DkmsReport {
            kind: "epel-vendor-package",
            repo_package: Some(package),
            ..none
        },
        DkmsSource::EpelRpm { url } => DkmsReport {
            kind: "epel-rpm",
            url: Some(url),
            ..none
        },
        DkmsSource::SusePackageHub { product } => DkmsReport {
            kind: "suse-package-hub",
            product: Some(
                product
                    .replace("{version}", version_id.unwrap_or("?"))
                    .replace("{arch}", arch.unwrap_or("$(uname -m)")),
            ),
            ..none
        },
    }
}

#[cfg(test)]
mod tests;

//! `toa-install detect`: everything the installer would base its plan on,
//! gathered in one report, printed as text or JSON.
//!
//! Gathering never stops at the first problem: an unknown distribution still
//! gets its kernel and Secure Boot state reported, so the user sees the whole
//! picture. The most fundamental problem decides the exit code.

pub use crate::commands::report::Problem;
pub use crate::effects::progress::Verbosity;
use crate::exit::{Categorized, Exit};
use crate::system::distro::{
    self, Autoload, Distro, DistroError, DkmsSource, Family, PackageManager,
};
use crate::system::kernel::{
    ArchSource, ElRelease, HeaderPackage, KernelError, KernelInfo, ReleaseSource,
};
use crate::system::security::{LoadedToa, Lockdown, OurModule, SecureBoot, SecurityState};
use crate::system::sysroot::{Host, SystemFs};
use serde::Serialize;
use std::fmt::Write as _;

/// Inputs of a detection run.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// The inspected system's files.
    pub fs: &'a dyn SystemFs,
    /// The machine running toa-install.
    pub host: &'a dyn Host,
    /// Whether `fs` is the running host's own `/`.
    pub live: bool,
    /// `--kernel-release`.
    pub kernel_release: Option<&'a str>,
    /// How to recognise this project's module.
    pub ours: &'a OurModule,
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
    let (distro, identity): (Result<Distro, DistroError>, _) = match distro::identify(target.fs) {
        Ok(identity) => (distro::classify(identity.clone()), Some(identity)),
        Err(e) => (Err(e), None),
    };
    let kernel = KernelInfo::select(target.fs, target.host, target.live, target.kernel_release);
    let family = distro.as_ref().ok().map(|d| d.row.family);
    let security = SecurityState::inspect(target.fs, target.host, target.live, family, target.ours);

    let mut warnings: Vec<Problem> = security
        .issues()
        .iter()
        .map(|issue| Problem::of(issue))
        .collect();
    if let Some(assumed) = distro.as_ref().ok().and_then(|d| d.assumed.clone()) {
        warnings.push(Problem::new(Exit::Unsupported, assumed));
    }
    if let (Ok(d), Ok(k)) = (&distro, &kernel) {
        if let Some(mismatch) = el_mismatch(d, k) {
            warnings.push(mismatch);
        }
    }

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

/// An EL system with a kernel built for another EL major.
fn el_mismatch(d: &Distro, k: &KernelInfo) -> Option<Problem> {
    let system = d.row.el_major?;
    let kernel = ElRelease::parse(&k.release)?.el_major;
    (system != kernel).then(|| {
        Problem::new(
            Exit::HeadersUnavailable,
            format!(
                "kernel {} is built for EL{kernel} but the system is {} (EL{system}), \
             so its kernel-devel package is unlikely to be in the configured repositories. \
             Next step: check the release (`uname -r`, or --kernel-release), \
             or install the headers by hand and use --compile",
                k.release, d.row.label
            ),
        )
    })
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

/// The report as text for a terminal. Problems are included; the caller
/// decides where they go.
pub fn render_text(report: &Report, verbosity: Verbosity) -> String {
    let mut out = String::new();
    if verbosity == Verbosity::Quiet {
        return out;
    }
    let verbose = verbosity == Verbosity::Verbose;
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<15}{value}");
    };
    if !report.live {
        line("System root", report.root.clone());
    }
    match &report.distro {
        Some(d) => {
            let shown = d
                .pretty_name
                .clone()
                .or_else(|| d.name.clone())
                .unwrap_or_else(|| d.id.clone());
            let mut text = format!("{shown} (ID={}", d.id);
            if let Some(v) = &d.version_id {
                let _ = write!(text, ", VERSION_ID={v}");
            }
            text.push(')');
            if verbose {
                let _ = write!(text, " from {}", d.source);
            }
            line("Distribution", text);
            if let (Some(family), Some(pm)) = (d.family, d.package_manager) {
                let family = match (family, d.el_major) {
                    (Family::El, Some(m)) => format!("Enterprise Linux {m}"),
                    (Family::El, None) => "Enterprise Linux".to_owned(),
                    (Family::Debian, _) => "Debian".to_owned(),
                    (Family::Suse, _) => "SUSE".to_owned(),
                };
                line(
                    "Family",
                    format!("{family}, package manager {}", pm.command()),
                );
            }
            if let Some(dkms) = &d.dkms {
                line("DKMS from", describe_dkms(dkms));
            }
            if !d.toolchain.is_empty() {
                line("Toolchain", d.toolchain.join(" "));
            }
            if let Some(a) = &d.autoload {
                line("Autoload", format!("{} (systemd-modules-load)", a.path));
            }
        }
        None => line("Distribution", "not identified".to_owned()),
    }
    if let Some(k) = &report.kernel {
        let mut text = format!("{} ({})", k.release, k.arch);
        if verbose {
            let _ = write!(
                text,
                " release from {}, arch from {}",
                source_name(&k.release_source),
                source_name(&k.arch_source)
            );
        }
        line("Kernel", text);
        if verbose {
            if let Some(v) = &k.version {
                line("Kernel build", v.clone());
            }
        }
    }
    if let Some(h) = &report.headers {
        let mut text = h.package.package.clone();
        if let Some(v) = h
            .package
            .version
            .as_deref()
            .filter(|v| !h.package.package.ends_with(*v))
        {
            let _ = write!(text, " (version {v})");
        }
        text.push_str(if h.installed {
            ", installed"
        } else {
            ", not installed"
        });
        line("Headers", text);
    }
    let s = &report.security;
    let mut sb = match s.secure_boot {
        SecureBoot::Enabled => "enabled",
        SecureBoot::Disabled => "disabled",
        SecureBoot::NotEfi => "not available (BIOS boot)",
        SecureBoot::Unknown => "unknown",
    }
    .to_owned();
    if let (true, Some(src)) = (verbose, &s.secure_boot_source) {
        let _ = write!(sb, " from {src}");
    }
    line("Secure Boot", sb);
    line(
        "Lockdown",
        match s.lockdown {
            Lockdown::None => "none",
            Lockdown::Integrity => "integrity",
            Lockdown::Confidentiality => "confidentiality",
            Lockdown::NotSupported => "not supported by this kernel",
            Lockdown::Unknown => "unknown",
        }
        .to_owned(),
    );
    if let Some(gate) = &s.suse_gate {
        line(
            "SUSE gate",
            if gate.allowed {
                "unsupported modules allowed".to_owned()
            } else {
                "unsupported modules refused".to_owned()
            },
        );
    }
    line(
        "toa module",
        match &s.toa_module {
            LoadedToa::NotLoaded => "not loaded".to_owned(),
            LoadedToa::Ours { version } => format!("loaded, ours (version {version})"),
            LoadedToa::Foreign { version, .. } => format!(
                "loaded, NOT ours (version {})",
                version.as_deref().unwrap_or("none")
            ),
        },
    );
    out
}

fn source_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('-', " ")))
        .unwrap_or_default()
}

fn describe_dkms(d: &DkmsReport) -> String {
    match (d.repo_package, d.url, &d.product) {
        (Some(pkg), _, _) => format!("EPEL (install the {pkg} package first)"),
        (_, Some(url), _) => format!("EPEL (install {url} first)"),
        (_, _, Some(product)) => format!("SUSE Package Hub (SUSEConnect -p {product})"),
        _ => "the distribution's repositories".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::sysroot::fake::{FakeHost, MemFs};

    fn run(fs: &MemFs, live: bool, release: Option<&str>) -> Report {
        let host = FakeHost::new(
            "6.1.0-27-amd64",
            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
            "x86_64",
        );
        let ours = OurModule::this_release();
        detect(
            Target {
                fs,
                host: &host,
                live,
                kernel_release: release,
                ours: &ours,
            },
            "/".to_owned(),
        )
    }

    #[test]
    fn live_debian() {
        let fs = MemFs::new()
            .with(
                "/etc/os-release",
                "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
            )
            .with("/lib/modules/6.1.0-27-amd64/build/Makefile", "");
        let r = run(&fs, true, None);
        assert_eq!(r.exit(), Exit::Ok);
        let h = r.headers.unwrap();
        assert_eq!(h.package.package, "linux-headers-6.1.0-27-amd64");
        assert_eq!(h.package.version.as_deref(), Some("6.1.115-1"));
        assert!(h.installed);
        let text = render_text(&run(&fs, true, None), Verbosity::Normal);
        assert!(
            text.contains("linux-headers-6.1.0-27-amd64 (version 6.1.115-1), installed"),
            "{text}"
        );
    }

    #[test]
    fn unknown_distro_still_reports_kernel() {
        let fs = MemFs::new().with(
            "/etc/os-release",
            "ID=alpine\nVERSION_ID=3.19.1\nNAME=\"Alpine Linux\"\n",
        );
        let r = run(&fs, true, None);
        assert_eq!(r.exit(), Exit::Unsupported);
        assert!(r.kernel.is_some());
        assert_eq!(r.distro.as_ref().unwrap().id, "alpine");
        assert!(r.headers.is_none());
        assert!(r.error.unwrap().message.contains("--compile"));
    }

    #[test]
    fn bad_release_is_a_usage_error_even_on_unknown_distro() {
        let fs = MemFs::new().with("/etc/os-release", "ID=alpine\n");
        let r = run(&fs, false, Some("banana"));
        assert_eq!(r.exit(), Exit::Usage);
    }

    #[test]
    fn old_kernel_on_supported_distro() {
        let fs = MemFs::new().with("/etc/os-release", "ID=centos\nVERSION_ID=\"7\"\n");
        let r = run(&fs, false, Some("2.6.32-754.el6.x86_64"));
        assert_eq!(r.exit(), Exit::Unsupported);
        assert!(r.error.unwrap().message.contains("older than 3.10"));
        assert!(r
            .warnings
            .iter()
            .any(|w| w.category == Exit::HeadersUnavailable));
    }

    #[test]
    fn quiet_prints_nothing() {
        let fs = MemFs::new().with("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
        assert!(render_text(&run(&fs, true, None), Verbosity::Quiet).is_empty());
    }
}

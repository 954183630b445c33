//! `detect`'s report as text.

use super::{DkmsReport, Report, Verbosity};
use crate::system::distro::Family;
use crate::system::security::{LoadedToa, Lockdown, SecureBoot};
use serde::Serialize;
use std::fmt::Write as _;

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

//! What may stop the kernel from accepting toa.ko, found before anything is
//! changed: Secure Boot and lockdown (signed modules only), SUSE's gate on
//! unsupported modules, and another `toa` module already loaded.
//!
//! Every fact is read through [`SystemFs`], so fixture trees can stand in
//! for `/sys` and `/proc`. Only `mokutil` goes through [`Host`], and only for
//! the running host.

use crate::exit::{Categorized, Exit};
use crate::layout::TOA_SYSFS;
use crate::system::distro::Family;
use crate::system::sysroot::{Host, SystemFs};
use serde::Serialize;
use thiserror::Error;

/// The EFI global-variable GUID that `SecureBoot` lives under.
const EFI_GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
const EFI_DIR: &str = "/sys/firmware/efi";
const EFIVARS_DIR: &str = "/sys/firmware/efi/efivars";
/// The kernel lockdown state, read by `detect` and to explain a refused load.
pub const LOCKDOWN: &str = "/sys/kernel/security/lockdown";
const SECURITYFS: &str = "/sys/kernel/security";
const SIG_ENFORCE: &str = "/sys/module/module/parameters/sig_enforce";
const PROC_UNSUPPORTED: &str = "/proc/sys/kernel/unsupported";
/// SUSE's modprobe setting; `/etc` overrides the vendor directories.
const SUSE_MODPROBE_CONFS: &[&str] = &[
    "/etc/modprobe.d/10-unsupported-modules.conf",
    "/usr/lib/modprobe.d/10-unsupported-modules.conf",
    "/lib/modprobe.d/10-unsupported-modules.conf",
];

/// Whether the firmware boots with Secure Boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureBoot {
    /// Secure Boot is on.
    Enabled,
    /// EFI boot without Secure Boot.
    Disabled,
    /// Legacy BIOS boot: there is no Secure Boot.
    NotEfi,
    /// Nothing to tell (e.g. an image without `/sys`).
    Unknown,
}

/// The kernel's lockdown mode (`/sys/kernel/security/lockdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lockdown {
    /// `[none]`.
    None,
    /// `[integrity]`: unsigned modules are refused.
    Integrity,
    /// `[confidentiality]`: unsigned modules are refused.
    Confidentiality,
    /// securityfs is there but the kernel has no lockdown file.
    NotSupported,
    /// Nothing to tell (e.g. an image without `/sys`).
    Unknown,
}

/// SUSE's gate on modules not marked as supported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuseGate {
    /// `/proc/sys/kernel/unsupported` (0 refuses, 1 warns, 2 allows).
    pub kernel_unsupported: Option<u8>,
    /// `allow_unsupported_modules` from modprobe's configuration.
    pub allow_unsupported_modules: Option<bool>,
    /// The file `allow_unsupported_modules` was read from.
    pub modprobe_conf: Option<String>,
    /// Whether an unsupported module such as toa.ko may load.
    pub allowed: bool,
}

/// A `toa` module found loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LoadedToa {
    /// No module called `toa` is loaded.
    NotLoaded,
    /// This project's module is loaded.
    Ours {
        /// Its `version`.
        version: String,
    },
    /// A module called `toa` from elsewhere (a vendor, an older hand build).
    Foreign {
        /// Its `version`, if it declares one.
        version: Option<String>,
        /// Its `srcversion`.
        srcversion: Option<String>,
    },
}

/// How this project's module identifies itself in `/sys/module/toa`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurModule {
    /// `MODULE_VERSION`.
    pub version: String,
    /// The `srcversion` of the build toa-install installed, when known.
    pub srcversion: Option<String>,
}

impl OurModule {
    /// The module version this toa-install ships (the workspace version,
    /// which `module-c-shim/version.h` repeats).
    pub fn this_release() -> Self {
        OurModule {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            srcversion: None,
        }
    }
}

/// Everything found about module loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityState {
    /// Firmware Secure Boot.
    pub secure_boot: SecureBoot,
    /// Where `secure_boot` was read.
    pub secure_boot_source: Option<String>,
    /// Kernel lockdown.
    pub lockdown: Lockdown,
    /// `module.sig_enforce`.
    pub sig_enforce: Option<bool>,
    /// SUSE's unsupported-module gate (SUSE systems only).
    pub suse_gate: Option<SuseGate>,
    /// A module already loaded under the name `toa`.
    pub toa_module: LoadedToa,
}

/// Something that will stop toa.ko from loading, with the way out.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SecurityIssue {
    /// Only signed modules load.
    #[error(
        "the kernel only loads signed modules ({reason}). \
         Next step: sign toa.ko with a key enrolled in the MOK list (DKMS signs with /var/lib/dkms/mok.key: \
         `mokutil --import /var/lib/dkms/mok.pub`, reboot and confirm the key), or turn Secure Boot off in the firmware"
    )]
    SignatureRequired {
        /// What makes it so.
        reason: String,
    },
    /// SUSE refuses unsupported modules.
    #[error(
        "SUSE refuses modules not marked as supported ({setting}). \
         Next step: set `allow_unsupported_modules 1` in /etc/modprobe.d/10-unsupported-modules.conf \
         and run `sysctl -w kernel.unsupported=1`; note the kernel is then tainted as running an unsupported module"
    )]
    SuseGateClosed {
        /// The setting that closes the gate.
        setting: String,
    },
    /// Another module named `toa` is loaded.
    #[error(
        "another toa module is already loaded (version {}, srcversion {}). \
         Next step: find where it comes from (`modinfo toa`), stop what installs it, \
         unload it with `rmmod toa` when no service relies on it, then run toa-install again",
        version.as_deref().unwrap_or("none"),
        srcversion.as_deref().unwrap_or("unknown")
    )]
    ForeignModule {
        /// Its version.
        version: Option<String>,
        /// Its srcversion.
        srcversion: Option<String>,
    },
}

impl Categorized for SecurityIssue {
    fn category(&self) -> Exit {
        match self {
            SecurityIssue::SignatureRequired { .. } | SecurityIssue::SuseGateClosed { .. } => {
                Exit::LoadRefused
            }
            SecurityIssue::ForeignModule { .. } => Exit::Conflict,
        }
    }
}

impl SecurityState {
    /// Reads every fact. `live` says whether `fs` is the running host (only
    /// then is `mokutil` asked). `family` is the distribution family, when
    /// known.
    pub fn inspect(
        fs: &dyn SystemFs,
        host: &dyn Host,
        live: bool,
        family: Option<Family>,
        ours: &OurModule,
    ) -> Self {
        let (secure_boot, secure_boot_source) = secure_boot(fs, host, live);
        SecurityState {
            secure_boot,
            secure_boot_source,
            lockdown: lockdown(fs),
            sig_enforce: read_trimmed(fs, SIG_ENFORCE).and_then(|v| match v.as_str() {
                "Y" | "1" => Some(true),
                "N" | "0" => Some(false),
                _ => None,
            }),
            suse_gate: suse_gate(fs, family),
            toa_module: loaded_toa(fs, ours),
        }
    }

    /// What will stop toa.ko from loading, most fundamental first.
    pub fn issues(&self) -> Vec<SecurityIssue> {
        let mut issues = Vec::new();
        if let LoadedToa::Foreign {
            version,
            srcversion,
        } = &self.toa_module
        {
            issues.push(SecurityIssue::ForeignModule {
                version: version.clone(),
                srcversion: srcversion.clone(),
            });
        }
        if let Some(reason) = self.signature_reason() {
            issues.push(SecurityIssue::SignatureRequired { reason });
        }
        if let Some(gate) = self.suse_gate.as_ref().filter(|g| !g.allowed) {
            let setting = match (gate.kernel_unsupported, &gate.modprobe_conf) {
                (Some(0), _) => "kernel.unsupported is 0".to_owned(),
                (_, Some(conf)) => format!("allow_unsupported_modules 0 in {conf}"),
                _ => "unsupported modules are not allowed".to_owned(),
            };
            issues.push(SecurityIssue::SuseGateClosed { setting });
        }
        issues
    }

    /// Why only signed modules will load, if they are.
    fn signature_reason(&self) -> Option<String> {
        let mut reasons = Vec::new();
        match self.lockdown {
            Lockdown::Integrity => reasons.push("lockdown is integrity"),
            Lockdown::Confidentiality => reasons.push("lockdown is confidentiality"),
            // Kernels without the lockdown LSM (EL7, EL8) enforce module
            // signatures themselves when booted with Secure Boot.
            Lockdown::NotSupported if self.secure_boot == SecureBoot::Enabled => {
                reasons.push("Secure Boot is enabled")
            }
            _ => {}
        }
        if self.sig_enforce == Some(true) {
            reasons.push("module.sig_enforce is set");
        }
        (!reasons.is_empty()).then(|| reasons.join(", "))
    }
}

fn read_trimmed(fs: &dyn SystemFs, path: &str) -> Option<String> {
    fs.read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn secure_boot(fs: &dyn SystemFs, host: &dyn Host, live: bool) -> (SecureBoot, Option<String>) {
    if !fs.exists(EFI_DIR) {
        // With sysfs present, no efi directory means a BIOS boot; without
        // sysfs (an image) there is nothing to tell.
        return if fs.exists("/sys/firmware") {
            (SecureBoot::NotEfi, Some(fs.display("/sys/firmware")))
        } else {
            (SecureBoot::Unknown, None)
        };
    }
    let efivar = format!("{EFIVARS_DIR}/SecureBoot-{EFI_GLOBAL_GUID}");
    if let Ok(bytes) = fs.read(&efivar) {
        // efivarfs: 4 bytes of attributes, then the value.
        if let Some(&value) = bytes.get(4) {
            return (from_byte(value), Some(fs.display(&efivar)));
        }
    }
    let legacy = format!("/sys/firmware/efi/vars/SecureBoot-{EFI_GLOBAL_GUID}/data");
    if let Ok(bytes) = fs.read(&legacy) {
        if let Some(&value) = bytes.first() {
            return (from_byte(value), Some(fs.display(&legacy)));
        }
    }
    if live {
        if let Some(out) = host.run("mokutil", &["--sb-state"]) {
            let text = format!("{}{}", out.stdout, out.stderr);
            if text.contains("SecureBoot enabled") {
                return (SecureBoot::Enabled, Some("mokutil --sb-state".to_owned()));
            }
            if text.contains("SecureBoot disabled") {
                return (SecureBoot::Disabled, Some("mokutil --sb-state".to_owned()));
            }
        }
    }
    // efivarfs mounted and readable, but the firmware has no SecureBoot
    // variable: the firmware does not do Secure Boot.
    let efivars_listed = fs
        .read_dir(EFIVARS_DIR)
        .map(|names| !names.is_empty())
        .unwrap_or(false);
    if efivars_listed && !fs.exists(&efivar) {
        (SecureBoot::Disabled, Some(fs.display(EFIVARS_DIR)))
    } else {
        (SecureBoot::Unknown, None)
    }
}

fn from_byte(value: u8) -> SecureBoot {
    if value == 1 {
        SecureBoot::Enabled
    } else {
        SecureBoot::Disabled
    }
}

/// Parses `none [integrity] confidentiality`: the bracketed word is active.
pub fn parse_lockdown(text: &str) -> Option<Lockdown> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    match &text[start..end] {
        "none" => Some(Lockdown::None),
        "integrity" => Some(Lockdown::Integrity),
        "confidentiality" => Some(Lockdown::Confidentiality),
        _ => None,
    }
}

fn lockdown(fs: &dyn SystemFs) -> Lockdown {
    match fs.read_to_string(LOCKDOWN) {
        Ok(text) => parse_lockdown(&text).unwrap_or(Lockdown::Unknown),
        Err(_) if fs.exists(SECURITYFS) && !fs.exists(LOCKDOWN) => Lockdown::NotSupported,
        Err(_) => Lockdown::Unknown,
    }
}

/// The last `allow_unsupported_modules` setting in a modprobe config file.
pub fn parse_allow_unsupported(text: &str) -> Option<bool> {
    let mut setting = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() == Some("allow_unsupported_modules") {
            match words.next() {
                Some("0") | Some("no") | Some("false") => setting = Some(false),
                Some("1") | Some("yes") | Some("true") => setting = Some(true),
                _ => {}
            }
        }
    }
    setting
}

fn suse_gate(fs: &dyn SystemFs, family: Option<Family>) -> Option<SuseGate> {
    let kernel_unsupported = read_trimmed(fs, PROC_UNSUPPORTED).and_then(|v| v.parse().ok());
    let (allow_unsupported_modules, modprobe_conf) = SUSE_MODPROBE_CONFS
        .iter()
        .find_map(|path| {
            let text = fs.read_to_string(path).ok()?;
            Some((parse_allow_unsupported(&text), Some(fs.display(path))))
        })
        .unwrap_or((None, None));
    let nothing_found = kernel_unsupported.is_none() && modprobe_conf.is_none();
    if family != Some(Family::Suse) && nothing_found {
        return None;
    }
    let allowed = kernel_unsupported != Some(0) && allow_unsupported_modules != Some(false);
    Some(SuseGate {
        kernel_unsupported,
        allow_unsupported_modules,
        modprobe_conf,
        allowed,
    })
}

fn loaded_toa(fs: &dyn SystemFs, ours: &OurModule) -> LoadedToa {
    if !fs.exists(TOA_SYSFS) {
        return LoadedToa::NotLoaded;
    }
    let version = read_trimmed(fs, &format!("{TOA_SYSFS}/version")).filter(|v| !v.is_empty());
    let srcversion = read_trimmed(fs, &format!("{TOA_SYSFS}/srcversion")).filter(|v| !v.is_empty());
    let version_matches = version.as_deref() == Some(ours.version.as_str());
    let srcversion_matches = match (&ours.srcversion, &srcversion) {
        (Some(expected), Some(found)) => expected == found,
        (Some(_), None) => false,
        (None, _) => true,
    };
    match version {
        Some(version) if version_matches && srcversion_matches => LoadedToa::Ours { version },
        version => LoadedToa::Foreign {
            version,
            srcversion,
        },
    }
}

#[cfg(test)]
mod tests;

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
mod tests {
    use super::*;
    use crate::system::sysroot::fake::{FakeHost, MemFs};

    const SB_VAR: &str =
        "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

    fn host() -> FakeHost {
        FakeHost::new("6.1.0-27-amd64", "#1 SMP", "x86_64")
    }

    fn ours() -> OurModule {
        OurModule {
            version: "0.1.0".to_owned(),
            srcversion: None,
        }
    }

    fn inspect(fs: &MemFs, live: bool, family: Option<Family>) -> SecurityState {
        SecurityState::inspect(fs, &host(), live, family, &ours())
    }

    #[test]
    fn lockdown_format() {
        assert_eq!(
            parse_lockdown("none [integrity] confidentiality\n"),
            Some(Lockdown::Integrity)
        );
        assert_eq!(
            parse_lockdown("[none] integrity confidentiality\n"),
            Some(Lockdown::None)
        );
        assert_eq!(
            parse_lockdown("none integrity [confidentiality]\n"),
            Some(Lockdown::Confidentiality)
        );
        assert_eq!(parse_lockdown("none integrity"), None);
    }

    #[test]
    fn efivar_enabled_with_lockdown_needs_signatures() {
        let fs = MemFs::new()
            .with(SB_VAR, [0x06, 0x00, 0x00, 0x00, 0x01])
            .with(LOCKDOWN, "none [integrity] confidentiality\n");
        let s = inspect(&fs, false, Some(Family::Debian));
        assert_eq!(s.secure_boot, SecureBoot::Enabled);
        assert_eq!(s.lockdown, Lockdown::Integrity);
        let issues = s.issues();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].category(), Exit::LoadRefused);
        assert!(issues[0].to_string().contains("mokutil --import"));
    }

    #[test]
    fn efivar_disabled() {
        let fs = MemFs::new()
            .with(SB_VAR, [0x06, 0x00, 0x00, 0x00, 0x00])
            .with(LOCKDOWN, "[none] integrity confidentiality\n");
        let s = inspect(&fs, false, None);
        assert_eq!(s.secure_boot, SecureBoot::Disabled);
        assert!(s.issues().is_empty());
    }

    #[test]
    fn truncated_efivar_falls_back_to_mokutil_when_live() {
        let fs = MemFs::new().with(SB_VAR, [0x06, 0x00]);
        let h = host().with_command("mokutil --sb-state", true, "SecureBoot enabled\n");
        let s = SecurityState::inspect(&fs, &h, true, None, &ours());
        assert_eq!(s.secure_boot, SecureBoot::Enabled);
        assert_eq!(s.secure_boot_source.as_deref(), Some("mokutil --sb-state"));
        // Not asked for an image: mokutil would describe this machine.
        let s = SecurityState::inspect(&fs, &h, false, None, &ours());
        assert_eq!(s.secure_boot, SecureBoot::Unknown);
    }

    #[test]
    fn bios_boot_and_images() {
        let fs = MemFs::new().with("/sys/firmware/acpi/tables/DSDT", "");
        assert_eq!(inspect(&fs, true, None).secure_boot, SecureBoot::NotEfi);
        let image = MemFs::new().with("/etc/os-release", "ID=debian\n");
        let s = inspect(&image, false, Some(Family::Debian));
        assert_eq!(s.secure_boot, SecureBoot::Unknown);
        assert_eq!(s.lockdown, Lockdown::Unknown);
        assert_eq!(s.suse_gate, None);
        assert_eq!(s.toa_module, LoadedToa::NotLoaded);
        assert!(s.issues().is_empty());
    }

    #[test]
    fn el7_secure_boot_without_lockdown_file() {
        let fs = MemFs::new()
            .with(
                "/sys/firmware/efi/vars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c/data",
                [1],
            )
            .with("/sys/kernel/security/ima/policy", "");
        let s = inspect(&fs, false, Some(Family::El));
        assert_eq!(s.secure_boot, SecureBoot::Enabled);
        assert_eq!(s.lockdown, Lockdown::NotSupported);
        assert!(matches!(
            s.issues().as_slice(),
            [SecurityIssue::SignatureRequired { .. }]
        ));
    }

    #[test]
    fn sig_enforce_alone() {
        let fs = MemFs::new().with(SIG_ENFORCE, "Y\n");
        let s = inspect(&fs, false, None);
        assert_eq!(s.sig_enforce, Some(true));
        assert!(s.issues()[0].to_string().contains("sig_enforce"));
    }

    #[test]
    fn suse_gate_from_modprobe_conf() {
        let conf =
            "#\n# Every kernel module has a flag 'supported'.\n#\nallow_unsupported_modules 0\n";
        let fs = MemFs::new().with("/etc/modprobe.d/10-unsupported-modules.conf", conf);
        let s = inspect(&fs, false, Some(Family::Suse));
        let gate = s.suse_gate.clone().unwrap();
        assert_eq!(gate.allow_unsupported_modules, Some(false));
        assert!(!gate.allowed);
        let issues = s.issues();
        assert_eq!(issues[0].category(), Exit::LoadRefused);
        assert!(issues[0]
            .to_string()
            .contains("allow_unsupported_modules 1"));
    }

    #[test]
    fn suse_gate_from_proc_and_etc_override() {
        let fs = MemFs::new()
            .with(PROC_UNSUPPORTED, "1\n")
            .with(
                "/etc/modprobe.d/10-unsupported-modules.conf",
                "allow_unsupported_modules 1\n",
            )
            .with(
                "/lib/modprobe.d/10-unsupported-modules.conf",
                "allow_unsupported_modules 0\n",
            );
        let gate = inspect(&fs, true, Some(Family::Suse)).suse_gate.unwrap();
        assert!(gate.allowed);
        assert_eq!(gate.kernel_unsupported, Some(1));
        let fs = MemFs::new().with(PROC_UNSUPPORTED, "0\n");
        let s = inspect(&fs, true, Some(Family::Suse));
        assert!(s.issues()[0]
            .to_string()
            .contains("kernel.unsupported is 0"));
    }

    #[test]
    fn suse_gate_unknown_is_not_a_problem() {
        let s = inspect(&MemFs::new(), false, Some(Family::Suse));
        assert!(s.suse_gate.unwrap().allowed);
    }

    #[test]
    fn allow_unsupported_parsing() {
        assert_eq!(
            parse_allow_unsupported("allow_unsupported_modules 1 # yes"),
            Some(true)
        );
        assert_eq!(
            parse_allow_unsupported("# allow_unsupported_modules 1"),
            None
        );
        assert_eq!(
            parse_allow_unsupported("allow_unsupported_modules 1\nallow_unsupported_modules 0\n"),
            Some(false)
        );
    }

    #[test]
    fn toa_module_states() {
        let none = MemFs::new();
        assert_eq!(inspect(&none, true, None).toa_module, LoadedToa::NotLoaded);

        let ours_loaded = MemFs::new()
            .with("/sys/module/toa/version", "0.1.0\n")
            .with("/sys/module/toa/srcversion", "ABCDEF0123456789ABCDEF0\n");
        assert_eq!(
            inspect(&ours_loaded, true, None).toa_module,
            LoadedToa::Ours {
                version: "0.1.0".to_owned()
            }
        );

        let vendor = MemFs::new().with("/sys/module/toa/srcversion", "5F1E2D3C4B5A69788796A5B\n");
        let s = inspect(&vendor, true, None);
        assert_eq!(
            s.toa_module,
            LoadedToa::Foreign {
                version: None,
                srcversion: Some("5F1E2D3C4B5A69788796A5B".to_owned())
            }
        );
        assert_eq!(s.issues()[0].category(), Exit::Conflict);
        assert!(s.issues()[0].to_string().contains("rmmod toa"));

        let other_version = MemFs::new().with("/sys/module/toa/version", "2.0.0.0\n");
        assert!(matches!(
            inspect(&other_version, true, None).toa_module,
            LoadedToa::Foreign { .. }
        ));
    }

    #[test]
    fn known_srcversion_must_match() {
        let fs = MemFs::new()
            .with("/sys/module/toa/version", "0.1.0\n")
            .with("/sys/module/toa/srcversion", "AAAA\n");
        let expect = OurModule {
            version: "0.1.0".to_owned(),
            srcversion: Some("BBBB".to_owned()),
        };
        let s = SecurityState::inspect(&fs, &host(), true, None, &expect);
        assert!(matches!(s.toa_module, LoadedToa::Foreign { .. }));
    }

    #[test]
    fn our_version_matches_the_module_source() {
        let header = concat!(env!("CARGO_MANIFEST_DIR"), "/../module-c-shim/version.h");
        let Ok(text) = std::fs::read_to_string(header) else {
            return;
        };
        let ours = OurModule::this_release();
        assert!(
            text.contains(&format!("\"{}\"", ours.version)),
            "module-c-shim/version.h and the workspace version disagree"
        );
    }
}

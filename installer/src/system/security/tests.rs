use super::*;
use crate::system::sysroot::fake::{FakeHost, MemFs};

const SB_VAR: &str = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

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
    let conf = "#\n# Every kernel module has a flag 'supported'.\n#\nallow_unsupported_modules 0\n";
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

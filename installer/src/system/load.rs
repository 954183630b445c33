//! Why the kernel refused to load toa.ko, in words and exit codes.
//!
//! `modprobe` and `insmod` print the kernel's errno as text; each known one
//! maps to an exit category (SPEC §3.4) and the next step.

use crate::exit::Exit;
use crate::system::security::{parse_lockdown, Lockdown};

/// A load failure, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// The exit category.
    pub category: Exit,
    /// What happened and what to do.
    pub message: String,
}

/// Explains `modprobe`'s standard error. `lockdown` is the content of
/// `/sys/kernel/security/lockdown`, when readable.
pub fn explain(stderr: &str, lockdown: Option<&str>) -> LoadFailure {
    let said = stderr.trim();
    let locked = matches!(
        lockdown.and_then(parse_lockdown),
        Some(Lockdown::Integrity | Lockdown::Confidentiality)
    );
    let (category, next) = if said.contains("Key was rejected by service") {
        (
            Exit::LoadRefused,
            "The kernel requires modules signed with a trusted key (Secure Boot or module.sig_enforce). \
             Next step: enroll DKMS's key (`mokutil --import /var/lib/dkms/mok.pub`, reboot, confirm), \
             then run `toa-install --compile`; or turn Secure Boot off",
        )
    } else if said.contains("Operation not permitted") && locked {
        (
            Exit::LoadRefused,
            "Kernel lockdown refuses unsigned modules. \
             Next step: enroll DKMS's key (`mokutil --import /var/lib/dkms/mok.pub`, reboot, confirm), \
             then run `toa-install --compile`; or turn Secure Boot off",
        )
    } else if said.contains("Invalid module format") || said.contains("Exec format error") {
        (
            Exit::LoadFailed,
            "toa.ko was built for another kernel (see `dmesg | tail` for the vermagic or symbol mismatch). \
             Next step: run `toa-install --compile` so it is built against the running kernel's headers",
        )
    } else if said.contains("File exists") {
        (
            Exit::Conflict,
            "A module named toa is already loaded. \
             Next step: check it with `modinfo toa` and `cat /sys/module/toa/version`; \
             unload it with `rmmod toa` if it is not ours, then run toa-install again",
        )
    } else if said.contains("Unknown symbol") || said.contains("Unknown symbol in module") {
        (
            Exit::LoadFailed,
            "The kernel lacks a symbol toa.ko needs. Next step: send `dmesg | tail` and \
             `toa-install detect` to the toa developers",
        )
    } else {
        (
            Exit::LoadFailed,
            "Next step: see `dmesg | tail` for the kernel's reason",
        )
    };
    LoadFailure {
        category,
        message: format!("loading toa failed: {said}. {next}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_errors() {
        let e = explain(
            "modprobe: ERROR: could not insert 'toa': Key was rejected by service",
            None,
        );
        assert_eq!(e.category, Exit::LoadRefused);
        assert!(e.message.contains("mokutil --import"), "{}", e.message);
        let e = explain(
            "modprobe: ERROR: could not insert 'toa': Operation not permitted",
            Some("none [integrity] confidentiality\n"),
        );
        assert_eq!(e.category, Exit::LoadRefused);
        assert!(e.message.contains("lockdown"));
        let e = explain(
            "modprobe: ERROR: could not insert 'toa': Operation not permitted",
            Some("[none] integrity confidentiality\n"),
        );
        assert_eq!(e.category, Exit::LoadFailed);
        let e = explain(
            "insmod: ERROR: could not insert module toa.ko: Invalid module format",
            None,
        );
        assert_eq!(e.category, Exit::LoadFailed);
        assert!(e.message.contains("--compile"));
        let e = explain(
            "insmod: ERROR: could not insert module toa.ko: File exists",
            None,
        );
        assert_eq!(e.category, Exit::Conflict);
        assert_eq!(e.category.code(), 12);
        assert!(e.message.contains("rmmod toa"));
    }
}

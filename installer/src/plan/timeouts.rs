//! How long each external command may run before it is killed, once for
//! every command toa-install runs (install, uninstall, undo, queries).

use std::time::Duration;

/// Installing or removing packages (downloads included).
pub const PACKAGE: Duration = Duration::from_secs(30 * 60);
/// Refreshing or enabling a package repository.
pub const REPO: Duration = Duration::from_secs(10 * 60);
/// A question to the host (package databases, `mokutil`): answers at once
/// or is stuck.
pub const QUERY: Duration = Duration::from_secs(60);
/// `dkms add`.
pub const DKMS_ADD: Duration = Duration::from_secs(2 * 60);
/// Compiling the module (`dkms build`, or `make` for a mirror).
pub const BUILD: Duration = Duration::from_secs(20 * 60);
/// `dkms install`.
pub const DKMS_INSTALL: Duration = Duration::from_secs(5 * 60);
/// `dkms remove`.
pub const DKMS_REMOVE: Duration = Duration::from_secs(5 * 60);
/// `depmod`.
pub const DEPMOD: Duration = Duration::from_secs(5 * 60);
/// Loading or unloading the module (`modprobe`, `modprobe -r`, `rmmod`).
pub const MODPROBE: Duration = Duration::from_secs(60);
/// `systemctl` (reload, enable, start, stop): systemd's own job timeouts
/// are longer, but a oneshot toa unit finishes in well under a second.
pub const SYSTEMCTL: Duration = Duration::from_secs(2 * 60);

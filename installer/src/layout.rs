//! Every file and kernel parameter toa-install reads or writes, once.
//!
//! Paths the host's own facts come from (EFI variables, lockdown, os-release)
//! stay with the code in `system/` that reads them.
//!
//! Paths are absolute as on the running host; `--root` is applied by the
//! `system::sysroot` seam and the effects, never here.

/// Spells out a path below one of the directories above, at compile time,
/// so that each directory is written only once.
macro_rules! toa_sysfs {
    () => {
        "/sys/module/toa"
    };
}
macro_rules! state_dir {
    () => {
        "/var/lib/toa-install"
    };
}
macro_rules! systemd_units {
    () => {
        "/etc/systemd/system"
    };
}
macro_rules! dkms_root {
    () => {
        "/var/lib/dkms"
    };
}

/// The module's name, as `modprobe` and `/sys/module` know it.
pub const MODULE: &str = "toa";
/// The file names a built or installed toa module may have.
pub const MODULE_FILES: [&str; 4] = ["toa.ko", "toa.ko.xz", "toa.ko.zst", "toa.ko.gz"];

/// Present while the module is loaded.
pub const TOA_SYSFS: &str = toa_sysfs!();
/// The live `trusted` parameter of a loaded module.
pub const TRUSTED_PARAM: &str = concat!(toa_sysfs!(), "/parameters/trusted");
/// The option kinds the loaded module accepts (fixed at load).
pub const KINDS_PARAM: &str = concat!(toa_sysfs!(), "/parameters/kinds");
/// The module's per-CPU counters.
pub const STATS: &str = "/proc/net/toa_stats";
/// The running kernel's release.
pub const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

/// Options for the module at load time.
pub const MODPROBE_CONF: &str = "/etc/modprobe.d/toa.conf";
/// Where boot-time loading is configured, read by `systemd-modules-load`
/// (every supported distribution boots with systemd).
pub const AUTOLOAD_CONF: &str = "/etc/modules-load.d/toa.conf";

/// Units toa-install writes go where the administrator's own units go, so
/// that a package's unit of the same name (in /lib/systemd/system) never
/// shadows them.
pub const SYSTEMD_UNIT_DIR: &str = systemd_units!();
/// Present when the host was booted with systemd (what `sd_booted(3)`
/// checks).
pub const SYSTEMD_BOOTED: &str = "/run/systemd/system";
/// The oneshot service that writes the metrics file (`--metrics-textfile`).
pub const METRICS_SERVICE: &str = "toa-metrics.service";
/// The timer that starts [`METRICS_SERVICE`].
pub const METRICS_TIMER: &str = "toa-metrics.timer";
/// The file written in the `--metrics-textfile` directory
/// (node_exporter's textfile collector reads `*.prom`).
pub const METRICS_FILE: &str = "toa.prom";

/// A unit file toa-install writes.
pub fn unit_path(unit: &str) -> String {
    format!("{SYSTEMD_UNIT_DIR}/{unit}")
}

/// The link `systemctl enable` makes for a unit wanted by `target`.
pub fn unit_enabled_link(target: &str, unit: &str) -> String {
    format!("{SYSTEMD_UNIT_DIR}/{target}.wants/{unit}")
}

/// The metrics file in a textfile directory.
pub fn metrics_file(dir: &str) -> String {
    format!("{}/{METRICS_FILE}", dir.trim_end_matches('/'))
}

/// The eBPF backend's unit, which attaches the programs again at boot
/// (bpffs does not outlive a boot).
pub const EBPF_UNIT_NAME: &str = "toa-ebpf.service";
/// Its file.
pub const EBPF_UNIT: &str = concat!(systemd_units!(), "/toa-ebpf.service");
/// The link `systemctl enable` makes for it (`WantedBy=multi-user.target`).
pub const EBPF_UNIT_WANTED: &str = concat!(
    systemd_units!(),
    "/multi-user.target.wants/toa-ebpf.service"
);
/// Where the unit runs toa-install from: a copy of the installing binary,
/// because `curl | sh` runs toa-install from a temporary directory.
pub const EBPF_LOADER_DIR: &str = "/usr/local/lib/toa";
/// The copy itself.
pub const EBPF_LOADER: &str = "/usr/local/lib/toa/toa-install";
/// Where the eBPF backend pins its programs, maps and links.
pub const EBPF_PIN_DIR: &str = toa_ebpf::PIN_DIR;

/// Where toa-install keeps its state file and undo log.
pub const STATE_DIR: &str = state_dir!();
/// The state file of the installation.
pub const STATE_FILE: &str = concat!(state_dir!(), "/state.json");
/// The undo log of the run in progress.
pub const UNDO_LOG: &str = concat!(state_dir!(), "/undo.json");
/// One run at a time: an exclusive `flock` on this file. It lives on the
/// runtime file system so that it never outlives a boot.
pub const LOCK_FILE: &str = "/run/toa-install.lock";

/// DKMS's tree for toa: one directory per registered version, and one
/// `kernel-<release>-<arch>` link per kernel it is installed for.
pub const DKMS_TREE: &str = concat!(dkms_root!(), "/toa");
/// The signing key DKMS uses when it exists (enrolled with `mokutil`).
pub const DKMS_MOK_KEY: &str = concat!(dkms_root!(), "/mok.pub");

/// `/usr/src/toa-<version>`, the source DKMS builds from.
pub fn source_dir() -> String {
    format!("/usr/src/{MODULE}-{}", crate::bundle::VERSION)
}

/// Where a prebuilt module is installed.
pub fn prebuilt_path(release: &str) -> String {
    format!("/lib/modules/{release}/extra/{MODULE}.ko")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelled_out_paths() {
        assert_eq!(TRUSTED_PARAM, "/sys/module/toa/parameters/trusted");
        assert_eq!(STATE_FILE, "/var/lib/toa-install/state.json");
        assert_eq!(UNDO_LOG, "/var/lib/toa-install/undo.json");
        assert_eq!(DKMS_TREE, "/var/lib/dkms/toa");
        assert_eq!(DKMS_MOK_KEY, "/var/lib/dkms/mok.pub");
        assert!(TOA_SYSFS.ends_with(MODULE) && DKMS_TREE.ends_with(MODULE));
        assert!(EBPF_UNIT.ends_with(EBPF_UNIT_NAME) && EBPF_UNIT_WANTED.ends_with(EBPF_UNIT_NAME));
        assert!(EBPF_LOADER.starts_with(EBPF_LOADER_DIR));
    }
}

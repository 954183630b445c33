//! What a plan is computed from: the request ([`Options`]), the host as
//! `detect` sees it ([`Facts`]) and what is already in place ([`State`]).

use super::{dkms_conf, metrics, packages, MirrorSource};
use crate::bundle::{self, MODULE_SOURCE};
use crate::layout::{
    source_dir, DKMS_MOK_KEY, DKMS_TREE, MODPROBE_CONF, MODULE_FILES, STATE_FILE, TRUSTED_PARAM,
};
use crate::state::{Source, StateFile};
use crate::system::distro::{Distro, DistroRow, PackageManager};
use crate::system::ebpf::EbpfFacts;
use crate::system::installed::{self, Owner};
use crate::system::kernel::{HeaderPackage, KernelInfo};
use crate::system::security::{LoadedToa, SecurityState};
use crate::system::sysroot::{Host, SystemFs};
use std::collections::BTreeSet;

/// The options that shape a plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// `--compile`: build through DKMS even when a mirror is given.
    pub compile: bool,
    /// `--prebuilt-only`: never compile.
    pub prebuilt_only: bool,
    /// `--mirror` and `--offline`, in the order to try them.
    pub mirrors: Vec<MirrorSource>,
    /// `--trust`, already validated; `None` keeps the current setting.
    pub trust: Option<Vec<String>>,
    /// `--metrics-textfile`, already checked; `None` leaves the metrics
    /// timer as it is (installed or not).
    pub metrics_textfile: Option<metrics::Textfile>,
}

/// What the plan is computed for: the host as `detect` sees it.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The distribution's row in the table.
    pub row: &'static DistroRow,
    /// os-release `VERSION_ID` (`15.5`).
    pub version_id: Option<String>,
    /// The kernel to install for.
    pub kernel: KernelInfo,
    /// Secure Boot, lockdown, SUSE gate, a loaded toa.
    pub security: SecurityState,
}

impl Facts {
    /// Facts for a detected distribution.
    pub fn new(distro: &Distro, kernel: KernelInfo, security: SecurityState) -> Self {
        Facts {
            row: distro.row,
            version_id: distro.identity.version_id.clone(),
            kernel,
            security,
        }
    }

    /// The package with this kernel's headers.
    pub fn headers(&self) -> HeaderPackage {
        self.row.headers.package_for(&self.kernel)
    }

    /// Every package the compile path needs, in install order of
    /// importance: headers, toolchain, dkms.
    pub fn build_packages(&self) -> Vec<String> {
        let mut packages = vec![self.headers().package];
        packages.extend(self.row.toolchain.iter().map(|p| (*p).to_owned()));
        packages.push("dkms".to_owned());
        packages
    }

    /// The packages whose presence the plan depends on.
    pub fn packages_to_query(&self) -> Vec<String> {
        let mut packages = self.build_packages();
        if let Some(epel) = self.row.dkms.epel_package() {
            packages.push(epel.to_owned());
        }
        packages
    }

    pub(super) fn release(&self) -> &str {
        &self.kernel.release
    }
}

/// What is already in place on the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// Which `toa` module is loaded.
    pub loaded: Option<LoadedToa>,
    /// The live `trusted` parameter, when loaded.
    pub live_trusted: Option<String>,
    /// Packages (as asked for) that are installed.
    pub installed_packages: BTreeSet<String>,
    /// `/usr/src/toa-<version>` holds exactly the bundled source and our
    /// `dkms.conf`.
    pub source_in_place: bool,
    /// DKMS knows `toa/<version>`.
    pub dkms_added: bool,
    /// DKMS built it for this kernel.
    pub dkms_built: bool,
    /// Whose toa.ko is installed for this kernel (DKMS's, a prebuilt one
    /// toa-install copied, or one nobody accounts for).
    pub installed: Owner,
    /// The content of `/etc/modprobe.d/toa.conf`.
    pub modprobe_conf: Option<String>,
    /// The content of the autoload file.
    pub autoload_conf: Option<String>,
    /// DKMS has a signing key (it signs what it builds).
    pub dkms_signing_key: bool,
    /// The state file records this installation: this kernel, and the
    /// source the evidence shows (DKMS or prebuilt) when it shows one.
    pub recorded: bool,
    /// The eBPF backend's pieces (read by [`EbpfFacts::read`]; this reads
    /// them without probing the kernel).
    pub ebpf: EbpfFacts,
    /// The metrics timer's units and recorded directory.
    pub metrics: metrics::Current,
}

impl State {
    /// Reads the current state through the traits.
    pub fn read(fs: &dyn SystemFs, host: &dyn Host, facts: &Facts, root: Option<&str>) -> State {
        let release = facts.release();
        let arch = &facts.kernel.arch;
        let version = bundle::VERSION;
        let src = source_dir();
        let source_in_place = MODULE_SOURCE
            .iter()
            .all(|f| fs.read(&format!("{src}/{}", f.path)).ok().as_deref() == Some(f.contents))
            && fs.read_to_string(&format!("{src}/dkms.conf")).ok() == Some(dkms_conf());
        let dkms_dir = format!("{DKMS_TREE}/{version}");
        let built = MODULE_FILES
            .iter()
            .any(|name| fs.exists(&format!("{dkms_dir}/{release}/{arch}/module/{name}")));
        let read = |p: &str| fs.read_to_string(p).ok();
        let state_file: Option<StateFile> = fs
            .read(STATE_FILE)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let installed = installed::owner(fs, release, state_file.as_ref());
        let metrics = metrics::Current::read(fs, state_file.as_ref());
        let recorded = state_file.is_some_and(|s| {
            s.kernel_release == release
                && installed.source_name().is_none_or(|n| s.source.name() == n)
        });
        State {
            loaded: Some(facts.security.toa_module.clone()),
            live_trusted: read(TRUSTED_PARAM).map(|s| s.trim().to_owned()),
            installed_packages: installed_packages(
                host,
                facts.row.package_manager,
                &facts.packages_to_query(),
                root,
            ),
            source_in_place,
            dkms_added: fs.exists(&format!("{dkms_dir}/source")),
            dkms_built: built,
            installed,
            modprobe_conf: read(MODPROBE_CONF),
            autoload_conf: read(facts.row.autoload.path()),
            dkms_signing_key: fs.exists(DKMS_MOK_KEY),
            recorded,
            ebpf: EbpfFacts::read(fs, root.is_none(), false),
            metrics,
        }
    }

    pub(super) fn loaded_ours(&self) -> bool {
        matches!(self.loaded, Some(LoadedToa::Ours { .. }))
    }

    /// How the installed toa.ko got there, as far as the evidence shows.
    pub(super) fn installed_source(&self) -> Source {
        match self.installed {
            Owner::Dkms { .. } => Source::Dkms,
            Owner::Prebuilt => Source::Prebuilt,
            Owner::Nothing | Owner::Unaccounted { .. } => Source::Installed,
        }
    }
}

/// Asks the package database which of `packages` are installed. A system
/// read with `--root` is asked through the database inside it.
pub fn installed_packages(
    host: &dyn Host,
    manager: PackageManager,
    packages: &[String],
    root: Option<&str>,
) -> BTreeSet<String> {
    let Some((program, mut args)) = packages::database_query(manager, root) else {
        return BTreeSet::new();
    };
    match manager {
        PackageManager::Apt => {
            args.extend(["-W", "-f=${Package} ${db:Status-Abbrev}\\n"].map(String::from))
        }
        _ => args.push("-q".to_owned()),
    }
    args.extend(packages.iter().cloned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(out) = host.run(program, &argv) else {
        return BTreeSet::new();
    };
    match manager {
        PackageManager::Apt => parse_dpkg_query(&out.stdout),
        _ => parse_rpm_query(packages, &out.stdout),
    }
}

/// `dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n'`: `ii` is installed.
pub fn parse_dpkg_query(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|line| {
            let (name, status) = line.split_once(' ')?;
            status
                .trim_start()
                .starts_with("ii")
                .then(|| name.to_owned())
        })
        .collect()
}

/// `rpm -q a b c`: one line per argument, `package X is not installed` for
/// the missing ones, in argument order.
pub fn parse_rpm_query(asked: &[String], stdout: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    if lines.len() != asked.len() {
        return BTreeSet::new();
    }
    asked
        .iter()
        .zip(lines)
        .filter(|(_, line)| !line.contains("is not installed"))
        .map(|(name, _)| name.clone())
        .collect()
}

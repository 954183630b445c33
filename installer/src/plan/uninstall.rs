//! What `uninstall` removes: [`Found::read`] looks at what of toa is in
//! place (the loaded module, the autoload and options files, DKMS
//! registrations, sources under `/usr/src`, prebuilt modules under
//! `/lib/modules/*/extra`, the state under `/var/lib/toa-install`), and
//! [`plan`] is a pure function from that to an ordered list of [`Step`]s.

use crate::layout::{
    AUTOLOAD_CONF, DKMS_TREE, EBPF_LOADER_DIR, EBPF_PIN_DIR, EBPF_UNIT, EBPF_UNIT_NAME,
    EBPF_UNIT_WANTED, MODPROBE_CONF, MODULE, STATE_DIR, STATE_FILE, SYSTEMD_BOOTED, TOA_SYSFS,
};
use crate::plan::{installed_packages, metrics, packages, systemd, timeouts, Cmd};
use crate::state::StateFile;
use crate::system::distro::PackageManager;
use crate::system::installed;
use crate::system::security::{LoadedToa, OurModule, SecurityState};
use crate::system::sysroot::{Host, SystemFs};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// What of toa is on the system.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    /// The module loaded under the name `toa`.
    pub loaded: Option<LoadedToa>,
    /// Modules that use toa (`/sys/module/toa/holders`).
    pub holders: Vec<String>,
    /// `/sys/module/toa/refcnt`.
    pub refcnt: Option<u64>,
    /// `/etc/modules-load.d/toa.conf` exists.
    pub autoload_conf: bool,
    /// `/etc/modprobe.d/toa.conf` exists.
    pub modprobe_conf: bool,
    /// Versions of toa DKMS knows (`/var/lib/dkms/toa/<version>`).
    pub dkms_versions: Vec<String>,
    /// toa source trees under `/usr/src` (their `dkms.conf` names toa).
    pub source_dirs: Vec<String>,
    /// Source trees that belong to a package (`toa-dkms`), with its name:
    /// those and their DKMS registration are the package's to remove.
    pub packaged: Vec<(String, String)>,
    /// Kernel releases with a prebuilt `/lib/modules/<release>/extra/toa.ko`:
    /// one DKMS did not build (on EL and SUSE DKMS installs to the same
    /// path; `dkms remove`, or the package owning the registration, takes
    /// that one away).
    pub prebuilt: Vec<String>,
    /// The state file, when readable.
    pub state: Option<StateFile>,
    /// `/var/lib/toa-install` exists.
    pub state_dir: bool,
    /// Of the packages the state file records, those still installed.
    pub packages_still_installed: BTreeSet<String>,
    /// The metrics timer's units and file (`--metrics-textfile`).
    pub metrics: metrics::Current,
    /// The eBPF backend's pieces.
    pub ebpf: EbpfFound,
}

/// What of the eBPF backend is on the system.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EbpfFound {
    /// Something is pinned under the pin directory.
    pub pinned: bool,
    /// The unit file exists.
    pub unit: bool,
    /// The unit is enabled.
    pub enabled: bool,
    /// The unit's copy of toa-install exists.
    pub loader: bool,
    /// systemd runs the host (else no `systemctl`).
    pub systemd: bool,
}

fn sorted_dir(fs: &dyn SystemFs, path: &str) -> Vec<String> {
    let mut names = fs.read_dir(path).unwrap_or_default();
    names.sort();
    names
}

/// Whether a `dkms.conf` is toa's.
fn is_toa_dkms_conf(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l == format!("PACKAGE_NAME=\"{MODULE}\"") || l == format!("PACKAGE_NAME={MODULE}")
    })
}

/// The package that owns `path`, asked of the package database (inside
/// the image with `--root`).
fn package_owning(
    host: &dyn Host,
    manager: PackageManager,
    path: &str,
    root: Option<&str>,
) -> Option<String> {
    let (program, mut args) = packages::database_query(manager, root)?;
    let (flag, format) = match manager {
        PackageManager::Apt => ("-S", None),
        _ => ("-qf", Some("--queryformat=%{NAME}\\n")),
    };
    args.push(flag.to_owned());
    args.extend(format.map(str::to_owned));
    args.push(path.to_owned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = host.run(program, &argv)?;
    if !out.success {
        return None;
    }
    parse_owner(manager, &out.stdout)
}

/// `dpkg-query -S PATH` says `pkg: PATH` (or `pkg1, pkg2: PATH`); `rpm -qf
/// --queryformat '%{NAME}\n' PATH` says the name.
pub fn parse_owner(manager: PackageManager, stdout: &str) -> Option<String> {
    let line = stdout.lines().next()?.trim();
    let name = match manager {
        PackageManager::Apt => line.split_once(": ")?.0.split(',').next()?.trim(),
        _ if line.contains("not owned") => return None,
        _ => line,
    };
    let name = name.split(':').next()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

impl Found {
    /// Looks at the system through `fs`; the package database is asked
    /// through `host` (with `manager`, when the distribution is known).
    pub fn read(
        fs: &dyn SystemFs,
        host: &dyn Host,
        manager: Option<PackageManager>,
        root: Option<&str>,
    ) -> Found {
        let ours = OurModule::this_release();
        let loaded = SecurityState::inspect(fs, host, false, None, &ours).toa_module;
        let holders = sorted_dir(fs, &format!("{TOA_SYSFS}/holders"));
        let refcnt = fs
            .read_to_string(&format!("{TOA_SYSFS}/refcnt"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let dkms_versions = sorted_dir(fs, DKMS_TREE)
            .into_iter()
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        let source_dirs: Vec<String> = sorted_dir(fs, "/usr/src")
            .into_iter()
            .filter(|name| name.starts_with(&format!("{MODULE}-")))
            .map(|name| format!("/usr/src/{name}"))
            .filter(|dir| {
                fs.read_to_string(&format!("{dir}/dkms.conf"))
                    .is_ok_and(|t| is_toa_dkms_conf(&t))
            })
            .collect();
        let packaged = match manager {
            Some(m) => source_dirs
                .iter()
                .filter_map(|dir: &String| {
                    package_owning(host, m, &format!("{dir}/dkms.conf"), root)
                        .map(|p| (dir.clone(), p))
                })
                .collect(),
            None => Vec::new(),
        };
        let prebuilt = sorted_dir(fs, "/lib/modules")
            .into_iter()
            .filter(|release| {
                fs.exists(&crate::layout::prebuilt_path(release))
                    && !installed::prebuilt_path_is_dkms_build(fs, release)
            })
            .collect();
        let state: Option<StateFile> = fs
            .read(STATE_FILE)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let packages_still_installed = match (&state, manager) {
            (Some(s), Some(m)) if !s.packages_installed.is_empty() => {
                installed_packages(host, m, &s.packages_installed, root)
            }
            _ => BTreeSet::new(),
        };
        Found {
            metrics: metrics::Current::read(fs, state.as_ref()),
            loaded: Some(loaded),
            holders,
            refcnt,
            autoload_conf: fs.exists(AUTOLOAD_CONF),
            modprobe_conf: fs.exists(MODPROBE_CONF),
            dkms_versions,
            source_dirs,
            packaged,
            prebuilt,
            state,
            state_dir: fs.exists(STATE_DIR),
            packages_still_installed,
            ebpf: EbpfFound {
                // Pins and systemd belong to the running system only.
                pinned: root.is_none() && fs.exists(EBPF_PIN_DIR),
                unit: fs.exists(EBPF_UNIT),
                enabled: fs.exists(EBPF_UNIT_WANTED),
                loader: fs.exists(EBPF_LOADER_DIR),
                systemd: root.is_none() && fs.exists(SYSTEMD_BOOTED),
            },
        }
    }

    /// Whether the loaded `toa` is one toa-install put there: this
    /// version, or a version DKMS or the state file knows.
    pub(crate) fn loaded_is_ours(&self) -> bool {
        match &self.loaded {
            Some(LoadedToa::Ours { .. }) => true,
            Some(LoadedToa::Foreign {
                version: Some(v), ..
            }) => {
                self.dkms_versions.contains(v)
                    || self.state.as_ref().is_some_and(|s| &s.version == v)
            }
            _ => false,
        }
    }
}

/// What `uninstall` was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// `--purge-deps`: remove the packages toa-install installed.
    pub purge_deps: bool,
}

/// One thing `uninstall` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Unload the module (`modprobe -r`, else `rmmod`).
    Unload {
        /// The command.
        cmd: Cmd,
        /// What holds the module, for the message when it is in use.
        holders: Vec<String>,
    },
    /// `systemctl` on units toa-install wrote.
    Systemctl {
        /// What it is for.
        purpose: String,
        /// The command.
        cmd: Cmd,
    },
    /// Detach the eBPF programs and unpin everything of them.
    DetachEbpf,
    /// Remove one file.
    RemoveFile {
        /// The path.
        path: String,
        /// What it was.
        purpose: String,
    },
    /// Remove a directory with its content.
    RemoveTree {
        /// The path.
        path: String,
        /// What it was.
        purpose: String,
    },
    /// `dkms remove ... --all`: the registration, builds and the modules
    /// DKMS installed.
    DkmsRemove {
        /// The version.
        version: String,
        /// The command.
        cmd: Cmd,
    },
    /// Rebuild a kernel's module index.
    Depmod {
        /// The command.
        cmd: Cmd,
    },
    /// Remove packages toa-install installed (`--purge-deps`).
    RemovePackages {
        /// Exactly these.
        packages: Vec<String>,
        /// The command.
        cmd: Cmd,
    },
}

impl Step {
    /// Remove the file at `path`, which is `purpose`.
    fn remove_file(path: &str, purpose: &str) -> Step {
        Step::RemoveFile {
            path: path.to_owned(),
            purpose: purpose.to_owned(),
        }
    }

    /// One line saying what the step does.
    pub fn summary(&self) -> String {
        match self {
            Step::Unload { cmd, .. } => format!("unload the module: {cmd}"),
            Step::Systemctl { purpose, cmd } => format!("{purpose}: {cmd}"),
            Step::DetachEbpf => {
                format!("detach the eBPF programs and unpin {EBPF_PIN_DIR}")
            }
            Step::RemoveFile { path, purpose } => format!("remove {purpose}: {path}"),
            Step::RemoveTree { path, purpose } => format!("remove {purpose}: {path}"),
            Step::DkmsRemove { version, cmd } => {
                format!("remove toa {version} from DKMS (all kernels): {cmd}")
            }
            Step::Depmod { cmd } => format!("update the module index: {cmd}"),
            Step::RemovePackages { cmd, .. } => {
                format!("remove the packages toa-install installed: {cmd}")
            }
        }
    }
}

/// The uninstall plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The steps, in order; empty when nothing of toa is left.
    pub steps: Vec<Step>,
    /// What is left alone, and why.
    pub warnings: Vec<String>,
}

impl Plan {
    /// The plan as `--dry-run` prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.steps.is_empty() {
            out.push_str("nothing of toa is installed: nothing to do.\n");
            return out;
        }
        out.push_str("Plan to uninstall toa:\n");
        for (i, step) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "{:>3}. {}", i + 1, step.summary());
        }
        out
    }
}

/// The eBPF backend: nothing attaches it at boot any more, then it is
/// detached, then the copy of toa-install the unit ran goes.
fn ebpf_steps(found: &EbpfFound, steps: &mut Vec<Step>) {
    if found.unit && found.systemd {
        steps.extend(systemd::uninstall_steps(
            &[EBPF_UNIT_NAME.to_owned()],
            crate::plan::ebpf::ENABLE,
        ));
    } else {
        if found.enabled {
            steps.push(Step::remove_file(EBPF_UNIT_WANTED, "the unit's enablement"));
        }
        if found.unit {
            steps.push(Step::remove_file(
                EBPF_UNIT,
                "the unit that attaches the eBPF programs at boot",
            ));
        }
    }
    if found.pinned {
        steps.push(Step::DetachEbpf);
    }
    if found.loader {
        steps.push(Step::RemoveTree {
            path: EBPF_LOADER_DIR.to_owned(),
            purpose: "the copy of toa-install the unit ran".to_owned(),
        });
    }
}

/// Computes the plan: a pure function of what was found.
pub fn plan(found: &Found, options: Options, manager: Option<PackageManager>) -> Plan {
    // The timer first: it reads the module's counters.
    let mut steps = metrics::uninstall_steps(&found.metrics);
    let mut warnings = Vec::new();
    if found.loaded_is_ours() {
        steps.push(Step::Unload {
            cmd: Cmd::new("modprobe", &["-r", MODULE], timeouts::MODPROBE),
            holders: found.holders.clone(),
        });
    } else if let Some(LoadedToa::Foreign { version, .. }) = &found.loaded {
        warnings.push(format!(
            "a toa module toa-install did not install is loaded (version {}): it is left \
             loaded. Next step: `modinfo toa` shows where it comes from; `rmmod toa` unloads it",
            version.as_deref().unwrap_or("none")
        ));
    }
    ebpf_steps(&found.ebpf, &mut steps);
    if found.autoload_conf {
        steps.push(Step::remove_file(AUTOLOAD_CONF, "loading at boot"));
    }
    if found.modprobe_conf {
        steps.push(Step::remove_file(
            MODPROBE_CONF,
            "the module options (trusted list)",
        ));
    }
    let packaged_version = |version: &str| {
        found
            .packaged
            .iter()
            .any(|(dir, _)| dir == &format!("/usr/src/{MODULE}-{version}"))
    };
    for (dir, package) in &found.packaged {
        let remove = match manager {
            Some(PackageManager::Apt) => format!("apt-get purge {package}"),
            Some(PackageManager::Yum | PackageManager::Dnf) | None => format!("rpm -e {package}"),
            Some(PackageManager::Zypper) => format!("zypper remove {package}"),
        };
        warnings.push(format!(
            "{dir} and its DKMS registration belong to the package {package}: left to it. \
             Next step: `{remove}` removes them"
        ));
    }
    for version in found.dkms_versions.iter().filter(|v| !packaged_version(v)) {
        steps.push(Step::DkmsRemove {
            version: version.clone(),
            cmd: Cmd::new(
                "dkms",
                &["remove", &format!("{MODULE}/{version}"), "--all"],
                timeouts::DKMS_REMOVE,
            ),
        });
    }
    for dir in found
        .source_dirs
        .iter()
        .filter(|d| !found.packaged.iter().any(|(p, _)| p == *d))
    {
        steps.push(Step::RemoveTree {
            path: dir.clone(),
            purpose: "the module source".to_owned(),
        });
    }
    for release in &found.prebuilt {
        steps.push(Step::RemoveFile {
            path: crate::layout::prebuilt_path(release),
            purpose: format!("the prebuilt module for {release}"),
        });
        steps.push(Step::Depmod {
            cmd: Cmd::new("depmod", &["-a", release], timeouts::DEPMOD),
        });
    }
    let recorded: Vec<String> = found
        .state
        .as_ref()
        .map(|s| s.packages_installed.clone())
        .unwrap_or_default();
    let still: Vec<String> = recorded
        .iter()
        .filter(|p| found.packages_still_installed.contains(*p))
        .cloned()
        .collect();
    if options.purge_deps {
        match (still.is_empty(), manager) {
            (true, _) if found.state.is_none() => warnings.push(format!(
                "--purge-deps: {STATE_FILE} does not exist, so no package is known to be \
                 installed by toa-install; none is removed"
            )),
            (true, _) => {}
            (false, Some(manager)) => steps.push(Step::RemovePackages {
                cmd: packages::remove_cmd(manager, &still),
                packages: still.clone(),
            }),
            (false, None) => warnings.push(format!(
                "--purge-deps: the distribution is not recognised, so its package manager is \
                 unknown; remove these packages by hand: {}",
                still.join(" ")
            )),
        }
    } else if !still.is_empty() {
        warnings.push(format!(
            "kept the packages toa-install installed: {}. Once uninstalled, toa-install no \
             longer keeps a record of them: remove them with the package manager if nothing \
             else needs them (`toa-install uninstall --purge-deps` removes them as part of the \
             uninstall)",
            still.join(" ")
        ));
    }
    if found.state_dir {
        steps.push(Step::RemoveTree {
            path: STATE_DIR.to_owned(),
            purpose: "toa-install's state".to_owned(),
        });
    }
    Plan { steps, warnings }
}

//! The install plan: what `toa-install` will do on this host, decided before
//! anything is changed.
//!
//! [`plan`] is a pure function of the host's facts ([`Facts`]), the command
//! line ([`Options`]) and what is already in place ([`State`], read through
//! [`SystemFs`] and [`Host`] by [`State::read`]). It returns an ordered list
//! of [`Step`]s with exact package names, command lines, timeouts and file
//! contents; `--dry-run` prints it and the executor carries it out. Steps
//! whose effect is already in place are left out, so a second run on an
//! installed host plans nothing.

mod cmd;
pub mod diagnose;
pub mod ebpf;
mod facts;
pub mod metrics;
pub mod packages;
pub mod selftest;
mod step;
pub mod systemd;
pub mod timeouts;
pub mod uninstall;

use crate::bundle::{self, MODULE_SOURCE};
use crate::exit::{Categorized, Exit};
use crate::layout::{prebuilt_path, source_dir, DKMS_MOK_KEY, EBPF_PIN_DIR, MODPROBE_CONF, MODULE};
pub use crate::state::{Kind, Source};
use crate::system::distro::{DkmsSource, PackageManager};
use crate::system::installed::Owner;
use crate::system::security::SecurityIssue;
use selftest::{Net, NetError};
use serde::Serialize;
use std::fmt::Write as _;
use thiserror::Error;

pub use cmd::{human_duration, quote, Cmd};
pub use facts::{installed_packages, parse_dpkg_query, parse_rpm_query, Facts, Options, State};
pub use step::{MirrorSource, Step};

/// `dkms/dkms.conf`, the project's one DKMS configuration, with
/// `#MODULE_VERSION#` still in it (the packages fill it in the same way).
pub const DKMS_CONF_TEMPLATE: &str = include_str!("../../../dkms/dkms.conf");

/// The `dkms.conf` written next to the source: [`DKMS_CONF_TEMPLATE`] for
/// this version.
pub fn dkms_conf() -> String {
    DKMS_CONF_TEMPLATE.replace("#MODULE_VERSION#", bundle::VERSION)
}

/// `/etc/modprobe.d/toa.conf` for a trusted list.
pub fn modprobe_conf(trusted: &[String]) -> String {
    format!(
        "# Written by toa-install: the proxies whose TOA option is honoured.\n\
         options {MODULE} trusted={}\n",
        trusted.join(",")
    )
}

/// The autoload file.
pub fn autoload_conf() -> String {
    format!("# Written by toa-install: load toa at boot.\n{MODULE}\n")
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The distribution row (`CentOS 7`).
    pub distro: &'static str,
    /// The kernel release.
    pub kernel_release: String,
    /// How toa.ko gets onto the system.
    pub source: Source,
    /// The steps, in order. Empty: nothing to do.
    pub steps: Vec<Step>,
    /// The steps run instead when the prebuilt cannot be used (no entry
    /// for this kernel, download or checksum failure, wrong vermagic).
    pub fallback: Option<Vec<Step>>,
}

impl Plan {
    /// The backend the plan installs.
    pub fn backend(&self) -> Kind {
        self.source.backend()
    }

    /// Whether the run changes anything.
    pub fn changes_nothing(&self) -> bool {
        self.steps.is_empty()
    }

    /// The plan as `--dry-run` prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.changes_nothing() {
            let _ = writeln!(
                out,
                "toa {} is already installed and loaded for {} on {}: nothing to do.",
                bundle::VERSION,
                self.kernel_release,
                self.distro
            );
            return out;
        }
        let how = match self.source {
            Source::Installed => "module already installed",
            Source::Prebuilt => "prebuilt module",
            Source::Dkms => "compile through DKMS",
            Source::Ebpf => "eBPF backend: no module",
        };
        let _ = writeln!(
            out,
            "Plan for {}, kernel {} ({how}):",
            self.distro, self.kernel_release
        );
        render_steps(&mut out, &self.steps);
        if let Some(fallback) = &self.fallback {
            let _ = writeln!(out, "If no verified prebuilt module is found, instead:");
            render_steps(&mut out, fallback);
        }
        out
    }
}

fn render_steps(out: &mut String, steps: &[Step]) {
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "{:>3}. {}", i + 1, step.summary());
        if let Step::WriteFile { contents, .. } = step {
            for line in contents.lines() {
                let _ = writeln!(out, "       | {line}");
            }
        }
    }
}

/// Why no plan can be made: each is found before anything is changed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlanError {
    /// The kernel would refuse the module.
    #[error(transparent)]
    Security(#[from] SecurityIssue),
    /// Both `--compile` and `--prebuilt-only`.
    #[error(
        "--compile and --prebuilt-only contradict each other. \
         Next step: pass one of them, or neither to try a prebuilt first and compile otherwise"
    )]
    CompileAndPrebuiltOnly,
    /// `--prebuilt-only` without a mirror.
    #[error(
        "--prebuilt-only needs a mirror to take the module from. \
         Next step: pass --mirror URL (or set TOA_MIRROR) or --offline DIR"
    )]
    NoMirror,
    /// Only signed modules load, and a prebuilt cannot be signed here.
    #[error(
        "the kernel only loads signed modules ({reason}) and a prebuilt toa.ko is not signed with a key this host trusts. \
         Next step: create and enroll a DKMS signing key (`dkms generate_mok`, then `mokutil --import {DKMS_MOK_KEY}` \
         and reboot to confirm it), then run `toa-install --compile`"
    )]
    PrebuiltUnsigned {
        /// What makes signatures mandatory.
        reason: String,
    },
    /// The eBPF backend was asked for while toa's module is loaded.
    #[error(
        "toa's kernel module is loaded: the module backend is active, and the two backends \
         never run at once. Next step: keep it (`toa-install --backend module`), or run \
         `toa-install uninstall` first and then `toa-install --backend ebpf`"
    )]
    ModuleActive,
    /// The eBPF backend was asked for while another TOA module is loaded.
    #[error(
        "a `toa` module toa-install did not install is loaded, and it rewrites addresses \
         itself: the eBPF backend would apply TOA a second time. Next step: `modinfo toa` \
         shows where it comes from; `rmmod toa` (and removing it from the boot) before \
         `toa-install --backend ebpf`"
    )]
    ForeignModuleActive,
    /// The module backend was asked for while the eBPF backend is attached.
    #[error(
        "toa's eBPF backend is attached (pinned under {EBPF_PIN_DIR}): the eBPF backend is \
         active, and the two backends never run at once. Next step: keep it \
         (`toa-install --backend ebpf`), or run `toa-install uninstall` first and then \
         `toa-install --backend module`"
    )]
    EbpfActive,
    /// The kernel cannot run the eBPF programs.
    #[error(
        "this kernel cannot run toa's eBPF backend (it needs Linux 5.10 or newer with BPF, \
         cgroup v2 and sk_storage); missing: {}. Next step: use the kernel module \
         (`toa-install --backend module`), or boot a kernel that has them",
        missing.join("; ")
    )]
    EbpfUnsupported {
        /// One line per missing feature.
        missing: Vec<String>,
    },
}

impl Categorized for PlanError {
    fn category(&self) -> Exit {
        match self {
            PlanError::Security(issue) => issue.category(),
            PlanError::CompileAndPrebuiltOnly | PlanError::NoMirror => Exit::Usage,
            PlanError::PrebuiltUnsigned { .. } => Exit::LoadRefused,
            PlanError::ModuleActive | PlanError::ForeignModuleActive | PlanError::EbpfActive => {
                Exit::Conflict
            }
            PlanError::EbpfUnsupported { .. } => Exit::Unsupported,
        }
    }
}

/// Computes the plan.
pub fn plan(facts: &Facts, options: &Options, state: &State) -> Result<Plan, PlanError> {
    if options.compile && options.prebuilt_only {
        return Err(PlanError::CompileAndPrebuiltOnly);
    }
    if options.prebuilt_only && options.mirrors.is_empty() {
        return Err(PlanError::NoMirror);
    }
    if state.ebpf.pinned {
        return Err(PlanError::EbpfActive);
    }
    let mut issues = facts.security.issues();
    // A foreign module conflicts whatever we do; signatures and the SUSE
    // gate only matter when something is still to be loaded.
    let base = Plan {
        distro: facts.row.label,
        kernel_release: facts.kernel.release.clone(),
        source: Source::Installed,
        steps: Vec::new(),
        fallback: None,
    };
    if let Some(pos) = issues
        .iter()
        .position(|i| matches!(i, SecurityIssue::ForeignModule { .. }))
    {
        return Err(issues.swap_remove(pos).into());
    }

    if state.loaded_ours() {
        let steps = finish(facts, options, state, state.installed_source(), false);
        return Ok(Plan { steps, ..base });
    }

    if let Some(issue) = issues
        .iter()
        .find(|i| matches!(i, SecurityIssue::SuseGateClosed { .. }))
    {
        return Err(issue.clone().into());
    }
    let signature = issues.iter().find_map(|i| match i {
        SecurityIssue::SignatureRequired { reason } => Some(reason.clone()),
        _ => None,
    });

    // A toa.ko nobody accounts for is replaced, not loaded.
    if let Owner::Dkms { .. } | Owner::Prebuilt = state.installed {
        let steps = finish(facts, options, state, state.installed_source(), true);
        return Ok(Plan {
            source: Source::Installed,
            steps,
            ..base
        });
    }

    let use_prebuilt = !options.compile && !options.mirrors.is_empty();
    if use_prebuilt {
        if let Some(reason) = &signature {
            if options.prebuilt_only || !state.dkms_signing_key {
                return Err(PlanError::PrebuiltUnsigned {
                    reason: reason.clone(),
                });
            }
        }
    }
    if let (Some(_), false) = (&signature, state.dkms_signing_key) {
        // Without a key DKMS builds an unsigned module too.
        let issue = issues
            .into_iter()
            .find(|i| matches!(i, SecurityIssue::SignatureRequired { .. }));
        if let Some(issue) = issue {
            return Err(issue.into());
        }
    }

    let compile = || {
        let mut steps = compile_steps(facts, state);
        steps.extend(finish(facts, options, state, Source::Dkms, true));
        steps
    };
    if use_prebuilt && signature.is_none() {
        let mut steps = vec![
            Step::FetchPrebuilt {
                mirrors: options.mirrors.clone(),
                kernel_release: facts.kernel.release.clone(),
                kernel_version: facts.kernel.version.clone(),
                arch: facts.kernel.arch.clone(),
            },
            Step::InstallPrebuilt {
                path: prebuilt_path(facts.release()),
            },
            Step::Run {
                purpose: "update the module index".to_owned(),
                cmd: Cmd::new("depmod", &["-a", facts.release()], timeouts::DEPMOD),
                failure: Exit::LoadFailed,
            },
        ];
        steps.extend(finish(facts, options, state, Source::Prebuilt, true));
        return Ok(Plan {
            source: Source::Prebuilt,
            steps,
            fallback: (!options.prebuilt_only).then(compile),
            ..base
        });
    }
    Ok(Plan {
        source: Source::Dkms,
        steps: compile(),
        ..base
    })
}

/// Packages, source, DKMS.
fn compile_steps(facts: &Facts, state: &State) -> Vec<Step> {
    let mut steps = Vec::new();
    let manager = facts.row.package_manager;
    let missing: Vec<String> = facts
        .build_packages()
        .into_iter()
        .filter(|p| !state.installed_packages.contains(p))
        .collect();
    let dkms_missing = missing.iter().any(|p| p == "dkms");
    let epel_missing = facts
        .row
        .dkms
        .epel_package()
        .is_some_and(|p| !state.installed_packages.contains(p));
    if dkms_missing {
        match facts.row.dkms {
            DkmsSource::Distribution => {}
            DkmsSource::EpelReleasePackage if epel_missing => {
                steps.push(install(
                    manager,
                    &["epel-release".to_owned()],
                    "EPEL, which carries dkms",
                ));
            }
            DkmsSource::EpelVendorPackage { package } if epel_missing => {
                steps.push(install(
                    manager,
                    &[package.to_owned()],
                    "the vendor's EPEL, which carries dkms",
                ));
            }
            DkmsSource::EpelRpm { url } if epel_missing => {
                steps.push(install(
                    manager,
                    &[url.to_owned()],
                    "EPEL, which carries dkms",
                ));
            }
            DkmsSource::EpelReleasePackage
            | DkmsSource::EpelRpm { .. }
            | DkmsSource::EpelVendorPackage { .. } => {}
            DkmsSource::SusePackageHub { product } => {
                let product = product
                    .replace("{version}", facts.version_id.as_deref().unwrap_or(""))
                    .replace("{arch}", &facts.kernel.arch);
                steps.push(Step::Run {
                    purpose: "activate SUSE Package Hub, which carries dkms".to_owned(),
                    cmd: Cmd::new("SUSEConnect", &["-p", &product], timeouts::REPO),
                    failure: Exit::HeadersUnavailable,
                });
            }
        }
    }
    if !missing.is_empty() {
        if manager == PackageManager::Apt {
            steps.push(Step::Run {
                purpose: "refresh the package lists".to_owned(),
                cmd: Cmd::new("apt-get", &["update"], timeouts::REPO)
                    .env("DEBIAN_FRONTEND", "noninteractive"),
                failure: Exit::HeadersUnavailable,
            });
        }
        steps.push(install(
            manager,
            &missing,
            "the kernel headers, compiler and dkms",
        ));
    }
    let version = bundle::VERSION;
    if !state.source_in_place {
        let dir = source_dir();
        steps.push(Step::WriteSource {
            dir: dir.clone(),
            files: MODULE_SOURCE.iter().map(|f| f.path.to_owned()).collect(),
        });
        steps.push(Step::WriteFile {
            path: format!("{dir}/dkms.conf"),
            contents: dkms_conf(),
            mode: 0o644,
        });
    }
    let release = facts.release();
    if !state.dkms_added {
        steps.push(Step::DkmsAdd {
            cmd: Cmd::new(
                "dkms",
                &["add", "-m", MODULE, "-v", version],
                timeouts::DKMS_ADD,
            ),
        });
    }
    if !state.dkms_built {
        steps.push(Step::DkmsBuild {
            cmd: Cmd::new(
                "dkms",
                &["build", "-m", MODULE, "-v", version, "-k", release],
                timeouts::BUILD,
            ),
            make_log: format!("/var/lib/dkms/{MODULE}/{version}/build/make.log"),
        });
    }
    steps.push(Step::DkmsInstall {
        cmd: Cmd::new(
            "dkms",
            &["install", "-m", MODULE, "-v", version, "-k", release],
            timeouts::DKMS_INSTALL,
        ),
    });
    steps
}

fn install(manager: PackageManager, packages: &[String], purpose: &str) -> Step {
    let cmd = packages::install_cmd(manager, packages);
    Step::InstallPackages {
        packages: packages.to_vec(),
        purpose: purpose.to_owned(),
        cmd,
    }
}

/// Load, trust, verify, persist, record: whatever of it is not in place.
/// `load` says whether the module still has to be loaded.
fn finish(
    facts: &Facts,
    options: &Options,
    state: &State,
    source: Source,
    load: bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let trusted = options.trust.as_ref().map(|t| t.join(","));
    if load {
        let mut cmd = Cmd::new("modprobe", &[MODULE], timeouts::MODPROBE);
        if let Some(t) = &trusted {
            cmd = cmd.args([format!("trusted={t}")]);
        }
        steps.push(Step::Load { cmd });
    } else if let Some(t) = &trusted {
        if state.live_trusted.as_deref() != Some(t.as_str()) {
            steps.push(Step::SetTrusted { value: t.clone() });
        }
    }
    let modprobe = options.trust.as_ref().map(|t| modprobe_conf(t));
    let write_modprobe = modprobe.is_some() && modprobe != state.modprobe_conf;
    let write_autoload = state.autoload_conf.as_deref() != Some(autoload_conf().as_str());
    if !steps.is_empty() || write_modprobe || write_autoload || !state.recorded {
        steps.push(Step::Verify);
    }
    // The metrics timer reads the counters; it is not the module, so it
    // needs no self-test of its own and comes after the module's files.
    let metrics = metrics::install_steps(options.metrics_textfile.as_ref(), &state.metrics);
    if let (true, Some(contents)) = (write_modprobe, modprobe) {
        steps.push(Step::WriteFile {
            path: MODPROBE_CONF.to_owned(),
            contents,
            mode: 0o644,
        });
    }
    if write_autoload {
        steps.push(Step::WriteFile {
            path: facts.row.autoload.path().to_owned(),
            contents: autoload_conf(),
            mode: 0o644,
        });
    }
    steps.extend(metrics);
    if !steps.is_empty() {
        steps.push(Step::RecordState {
            source,
            kernel_release: facts.kernel.release.clone(),
            metrics_textfile: options.metrics_textfile.as_ref().map(|t| t.dir.clone()),
        });
    }
    steps
}

/// Why a `--trust` value is not a network.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CidrError {
    /// Not an address at all (a host name, a list...).
    #[error("{text:?} is not an IPv4 or IPv6 network such as 10.0.0.0/8 or 2001:db8::/32")]
    NotANetwork {
        /// The value as given.
        text: String,
    },
    /// An address with a prefix length out of range.
    #[error("{text:?}: {source}")]
    BadPrefix {
        /// The value as given.
        text: String,
        /// Which lengths the family allows.
        source: NetError,
    },
}

impl Categorized for CidrError {
    fn category(&self) -> Exit {
        Exit::Usage
    }
}

/// Checks one `--trust` value: an IPv4 or IPv6 network in CIDR notation
/// (`10.0.0.0/8`, `2001:db8::/32`); a bare address means just that host.
pub fn parse_cidr(text: &str) -> Result<String, CidrError> {
    match Net::parse(text) {
        Ok(Net { addr, prefix }) => Ok(format!("{addr}/{prefix}")),
        Err(NetError::NotAnAddress) => Err(CidrError::NotANetwork {
            text: text.to_owned(),
        }),
        Err(source @ NetError::BadPrefix { .. }) => Err(CidrError::BadPrefix {
            text: text.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;

//! The host facts the commands start from, gathered one way: `detect`
//! reports all of them, `install` plans from them, `uninstall` needs only
//! the distribution's package manager ([`distro`]).

use crate::commands::report::Problem;
use crate::exit::Exit;
use crate::system::distro::{self, Distro, DistroError, Identity};
use crate::system::kernel::{ElRelease, KernelError, KernelInfo};
use crate::system::security::{OurModule, SecurityState};
use crate::system::sysroot::{Host, SystemFs};

/// Where the facts are read.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// The inspected system's files.
    pub fs: &'a dyn SystemFs,
    /// The machine running toa-install.
    pub host: &'a dyn Host,
    /// Whether `fs` is the running host's own `/`.
    pub live: bool,
    /// `--kernel-release`.
    pub kernel_release: Option<&'a str>,
    /// How to recognise this project's module.
    pub ours: &'a OurModule,
}

/// What toa-install knows about the target system. Gathering never stops at
/// the first problem: each part says on its own whether it could be read.
pub struct HostFacts {
    /// The os-release identity, when it could be read (even for a
    /// distribution toa-install does not support).
    pub identity: Option<Identity>,
    /// The supported distribution.
    pub distro: Result<Distro, DistroError>,
    /// The kernel this run is for.
    pub kernel: Result<KernelInfo, KernelError>,
    /// Secure Boot, lockdown, the SUSE gate, a loaded toa.
    pub security: SecurityState,
}

/// The distribution of the system in `fs`: its identity when os-release
/// could be read, and the table row it matches.
pub fn distro(fs: &dyn SystemFs) -> (Option<Identity>, Result<Distro, DistroError>) {
    match distro::identify(fs) {
        Ok(identity) => (Some(identity.clone()), distro::classify(identity)),
        Err(e) => (None, Err(e)),
    }
}

/// Gathers every fact about `target`.
pub fn gather(target: Target<'_>) -> HostFacts {
    let (identity, distro) = distro(target.fs);
    let kernel = KernelInfo::select(target.fs, target.host, target.live, target.kernel_release);
    let family = distro.as_ref().ok().map(|d| d.row.family);
    let security = SecurityState::inspect(target.fs, target.host, target.live, family, target.ours);
    HostFacts {
        identity,
        distro,
        kernel,
        security,
    }
}

impl HostFacts {
    /// An EL system running a kernel built for another EL major: its
    /// kernel-devel package is unlikely to be found.
    pub fn el_mismatch(&self) -> Option<Problem> {
        let (Ok(d), Ok(k)) = (&self.distro, &self.kernel) else {
            return None;
        };
        let system = d.row.el_major?;
        let kernel = ElRelease::parse(&k.release)?.el_major;
        (system != kernel).then(|| {
            Problem::new(
                Exit::HeadersUnavailable,
                format!(
                    "kernel {} is built for EL{kernel} but the system is {} (EL{system}), \
             so its kernel-devel package is unlikely to be in the configured repositories. \
             Next step: check the release (`uname -r`, or --kernel-release), \
             or install the headers by hand and use --compile",
                    k.release, d.row.label
                ),
            )
        })
    }
}

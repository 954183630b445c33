//! What differs between ways of getting TOA into the kernel: [`module`], the
//! toa kernel module, prebuilt or built by DKMS; and [`ebpf`], programs
//! built into toa-install. The commands talk to the [`Backend`] trait and
//! find the one in use with [`active`]; the two never run at once.

pub mod ebpf;
pub mod module;

use crate::layout::{EBPF_PIN_DIR, STATE_FILE, TOA_SYSFS};
use crate::plan::uninstall::{self, Found};
use crate::plan::{Facts, Options, Plan, PlanError, State};
use crate::state::{Source, StateFile};
use crate::system::distro::PackageManager;
use crate::system::stats::CountersError;
use crate::system::sysroot::SystemFs;
use std::collections::BTreeMap;

pub use module::status::Status;

/// One way of getting TOA into the kernel.
pub trait Backend {
    /// The steps that install it, from the host's facts and the request.
    fn plan_install(
        &self,
        facts: &Facts,
        options: &Options,
        state: &State,
    ) -> Result<Plan, PlanError>;

    /// The steps that take it off the host again: one plan removes
    /// whatever of either backend is there, so that nothing is left.
    fn plan_uninstall(
        &self,
        found: &Found,
        options: uninstall::Options,
        manager: Option<PackageManager>,
    ) -> uninstall::Plan {
        uninstall::plan(found, options, manager)
    }

    /// What is installed and loaded.
    fn status(&self, fs: &dyn SystemFs) -> Status;

    /// Its counters (`/proc/net/toa_stats`), summed over CPUs.
    fn counters(&self, fs: &dyn SystemFs) -> Result<BTreeMap<String, u64>, CountersError>;
}

pub use crate::state::Kind;

impl Kind {
    /// Its implementation.
    pub fn backend(self) -> &'static dyn Backend {
        match self {
            Kind::Module => &module::ModuleBackend,
            Kind::Ebpf => &ebpf::EbpfBackend,
        }
    }
}

/// The backend running now: a loaded `toa` module, or pinned eBPF programs.
pub fn active(fs: &dyn SystemFs) -> Option<Kind> {
    if fs.exists(TOA_SYSFS) {
        Some(Kind::Module)
    } else if fs.exists(EBPF_PIN_DIR) {
        Some(Kind::Ebpf)
    } else {
        None
    }
}

/// The backend to report on: the one running, else the one the state file
/// records, else the module.
pub fn current(fs: &dyn SystemFs) -> Kind {
    active(fs).unwrap_or_else(|| {
        let recorded: Option<StateFile> = fs
            .read(STATE_FILE)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match recorded {
            Some(s) if s.source == Source::Ebpf => Kind::Ebpf,
            _ => Kind::Module,
        }
    })
}

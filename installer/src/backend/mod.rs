//! What differs between ways of getting TOA into the kernel. Today there is
//! one backend, [`module`]: the toa kernel module, prebuilt or built by
//! DKMS. A second (eBPF) implements [`Backend`] next to it; the commands
//! only talk to the trait.

pub mod module;

use crate::plan::uninstall::{self, Found};
use crate::plan::{Facts, Options, Plan, PlanError, State};
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

    /// The steps that take it off the host again.
    fn plan_uninstall(
        &self,
        found: &Found,
        options: uninstall::Options,
        manager: Option<PackageManager>,
    ) -> uninstall::Plan;

    /// What is installed and loaded.
    fn status(&self, fs: &dyn SystemFs) -> Status;

    /// Its counters (`/proc/net/toa_stats`), summed over CPUs.
    fn counters(&self, fs: &dyn SystemFs) -> Result<BTreeMap<String, u64>, CountersError>;
}

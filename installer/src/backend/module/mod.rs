//! The toa kernel module: prebuilt modules fetched from a mirror (and the
//! mirror's format), or built on the host by DKMS; loaded with `modprobe`
//! and at boot through `modules-load.d`.

pub mod mirror;
pub mod prebuilt;
pub mod status;

use super::Backend;
use crate::plan::{self, Facts, Options, Plan, PlanError, State};
use crate::system::stats::{self, CountersError};
use crate::system::sysroot::SystemFs;
use std::collections::BTreeMap;

/// The toa kernel module.
#[derive(Debug, Default, Clone, Copy)]
pub struct ModuleBackend;

impl Backend for ModuleBackend {
    fn plan_install(
        &self,
        facts: &Facts,
        options: &Options,
        state: &State,
    ) -> Result<Plan, PlanError> {
        plan::plan(facts, options, state)
    }

    fn status(&self, fs: &dyn SystemFs) -> status::Status {
        status::gather(fs)
    }

    fn counters(&self, fs: &dyn SystemFs) -> Result<BTreeMap<String, u64>, CountersError> {
        stats::read(fs)
    }
}

//! The eBPF backend: the programs built into toa-install (`bpf/`, loaded by
//! the `toa-ebpf` crate), attached to the cgroup v2 root, pinned under
//! `/sys/fs/bpf/toa`, and attached again at boot by `toa-ebpf.service`.
//! No module, no headers, no compiler: for hosts that refuse unsigned
//! modules (Secure Boot, `module.sig_enforce`, lockdown) or have no headers.

use super::Backend;
use crate::bundle;
use crate::layout::{EBPF_UNIT, EBPF_UNIT_WANTED, STATE_FILE, SYSTEMD_BOOTED};
use crate::plan::{self, Facts, Options, Plan, PlanError, State};
use crate::state::StateFile;
use crate::system::ebpf::{format_nets, EbpfError};
use crate::system::stats::CountersError;
use crate::system::sysroot::SystemFs;
use std::collections::BTreeMap;

pub use super::module::status::Status;

/// The eBPF backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct EbpfBackend;

impl Backend for EbpfBackend {
    fn plan_install(
        &self,
        facts: &Facts,
        options: &Options,
        state: &State,
    ) -> Result<Plan, PlanError> {
        plan::ebpf::plan(facts, &state.ebpf, &state.metrics, options)
    }

    fn status(&self, fs: &dyn SystemFs) -> Status {
        let state: Option<StateFile> = fs
            .read(STATE_FILE)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut warnings = Vec::new();
        let live = toa_ebpf::status();
        let (attached, trusted, counters) = match &live {
            Ok(s) => (
                s.attached,
                format_nets(&s.trusted),
                s.counters
                    .totals()
                    .into_iter()
                    .map(|(n, v)| (n.to_owned(), v))
                    .collect(),
            ),
            Err(toa_ebpf::Error::NotAttached) => (false, Vec::new(), BTreeMap::new()),
            Err(e) => {
                warnings.push(format!("cannot read the eBPF backend: {e}"));
                (false, Vec::new(), BTreeMap::new())
            }
        };
        let autoload = fs.exists(EBPF_UNIT_WANTED);
        if attached && trusted.is_empty() {
            warnings.push(
                "the trusted list is empty: TOA is honoured from every sender, so any client \
                 that can reach this host can claim any address. Next step: \
                 `toa-install --trust CIDR` with the networks of your proxies"
                    .to_owned(),
            );
        }
        if let Ok(s) = &live {
            if !s.attached {
                warnings.push(
                    "the eBPF backend is only partly pinned (a detach or attach was \
                     interrupted). Next step: `toa-install uninstall`, then `toa-install`"
                        .to_owned(),
                );
            }
        }
        if live.is_err() && state.is_some() {
            warnings.push(
                "toa's eBPF backend is recorded as installed but not attached: servers see the \
                 proxy's address. Next step: `systemctl start toa-ebpf.service` or run \
                 `toa-install`"
                    .to_owned(),
            );
        }
        if state.is_some() && !autoload {
            warnings.push(if fs.exists(SYSTEMD_BOOTED) {
                format!("{EBPF_UNIT} is not enabled: nothing attaches toa at boot. Next step: run `toa-install` again")
            } else {
                "this host does not run systemd: nothing attaches toa at boot. Next step: run \
                 `toa-install attach` from the boot scripts"
                    .to_owned()
            });
        }
        let metrics = super::module::status::metrics_summary(fs, state.as_ref(), &mut warnings);
        Status {
            metrics,
            backend: attached.then(|| "ebpf".to_owned()),
            loaded: attached,
            version: attached.then(|| bundle::VERSION.to_owned()),
            srcversion: None,
            source: state.as_ref().map(|s| s.source.name().to_owned()),
            installed_for: state.map(|s| s.kernel_release),
            autoload,
            trusted_source: attached.then(|| crate::layout::EBPF_PIN_DIR.to_owned()),
            trusted,
            counters,
            warnings,
        }
    }

    fn counters(&self, _fs: &dyn SystemFs) -> Result<BTreeMap<String, u64>, CountersError> {
        let counters = toa_ebpf::counters().map_err(EbpfError::from)?;
        Ok(counters
            .totals()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect())
    }
}

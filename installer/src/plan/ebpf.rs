//! The install plan of the eBPF backend: attach the programs built into
//! toa-install, apply `--trust` to the live trie, verify, then set up the
//! unit that attaches them again at every boot. Pure, like [`super::plan`]:
//! steps already in effect are left out, so a second run plans nothing.

use super::systemd::{self, Enable, Installed, Unit};
use super::{metrics, Facts, Options, Plan, PlanError, Source, Step};
use crate::layout::{EBPF_LOADER, EBPF_UNIT_NAME};
use crate::system::ebpf::{EbpfFacts, Support};
use crate::system::security::LoadedToa;

/// The unit that attaches the programs at boot with `trusted`. It runs
/// before the network is configured (`network-pre.target`), so no server
/// accepts a connection before TOA is honoured.
pub fn unit(trusted: &[String]) -> String {
    let trust: String = trusted.iter().map(|t| format!(" --trust {t}")).collect();
    format!(
        "# Written by toa-install: attaches toa's eBPF programs at boot (bpffs does not\n\
         # keep them across a reboot). Removed by `toa-install uninstall`.\n\
         [Unit]\n\
         Description=toa: real client addresses behind L4 proxies (eBPF backend)\n\
         DefaultDependencies=no\n\
         After=local-fs.target\n\
         Before=network-pre.target shutdown.target\n\
         Wants=network-pre.target\n\
         Conflicts=shutdown.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         ExecStart={EBPF_LOADER} attach{trust}\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The `--trust` list in a unit [`unit`] wrote.
pub fn unit_trusted(text: &str) -> Vec<String> {
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("ExecStart=")) else {
        return Vec::new();
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "--trust")
        .map(|w| w[1].to_owned())
        .collect()
}

/// The unit is enabled for the normal boot target; it orders itself
/// before the network with `Before=network-pre.target`.
pub const ENABLE: Enable = Enable {
    unit: EBPF_UNIT_NAME,
    wanted_by: "multi-user.target",
};

/// Computes the eBPF backend's plan.
pub fn plan(
    facts: &Facts,
    ebpf: &EbpfFacts,
    metrics: &metrics::Current,
    options: &Options,
) -> Result<Plan, PlanError> {
    match &facts.security.toa_module {
        LoadedToa::Ours { .. } => return Err(PlanError::ModuleActive),
        LoadedToa::Foreign { .. } => return Err(PlanError::ForeignModuleActive),
        LoadedToa::NotLoaded => {}
    }
    if let Support::Missing(missing) = &ebpf.support {
        return Err(PlanError::EbpfUnsupported {
            missing: missing.clone(),
        });
    }
    // The list in effect after this run: --trust, else what is attached,
    // else what the unit would attach at boot, else none (trust all).
    let trusted = options
        .trust
        .clone()
        .or_else(|| ebpf.live_trusted.clone())
        .or_else(|| ebpf.unit.as_deref().map(unit_trusted))
        .unwrap_or_default();
    let mut steps = Vec::new();
    if !ebpf.attached {
        steps.push(Step::AttachEbpf {
            trusted: trusted.clone(),
        });
    } else if ebpf.live_trusted.as_ref() != Some(&trusted) {
        steps.push(Step::SetEbpfTrusted {
            trusted: trusted.clone(),
        });
    }
    let persist = ebpf.systemd;
    let write_loader = persist && !ebpf.loader_current;
    let installed = Installed {
        files: vec![(EBPF_UNIT_NAME.to_owned(), ebpf.unit.clone())],
        enabled: ebpf.unit_enabled,
    };
    let unit_steps = if persist {
        let units = [Unit {
            name: EBPF_UNIT_NAME,
            contents: unit(&trusted),
        }];
        systemd::install_steps(&units, ENABLE, &installed)
    } else {
        Vec::new()
    };
    if !steps.is_empty() || write_loader || !unit_steps.is_empty() || !ebpf.recorded {
        steps.push(Step::Verify);
    }
    if write_loader {
        steps.push(Step::CopyLoader {
            path: EBPF_LOADER.to_owned(),
        });
    }
    steps.extend(unit_steps);
    // The metrics timer reads the counters of whichever backend runs.
    steps.extend(metrics::install_steps(
        options.metrics_textfile.as_ref(),
        metrics,
    ));
    if !steps.is_empty() {
        steps.push(Step::RecordState {
            source: Source::Ebpf,
            kernel_release: facts.kernel.release.clone(),
            metrics_textfile: options.metrics_textfile.as_ref().map(|t| t.dir.clone()),
        });
    }
    Ok(Plan {
        distro: facts.row.label,
        kernel_release: facts.kernel.release.clone(),
        source: Source::Ebpf,
        steps,
        fallback: None,
    })
}

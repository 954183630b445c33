//! The install plan of the eBPF backend: attach the programs built into
//! toa-install, apply `--trust` to the live trie, verify, then set up the
//! unit that attaches them again at every boot. Pure, like [`super::plan`]:
//! steps already in effect are left out, so a second run plans nothing.

use super::{timeouts, Cmd, Facts, Options, Plan, PlanError, Source, Step};
use crate::layout::{EBPF_LOADER, EBPF_UNIT, EBPF_UNIT_NAME};
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

fn systemctl(args: &[&str]) -> Cmd {
    Cmd::new("systemctl", args, timeouts::SYSTEMCTL)
}

/// Computes the eBPF backend's plan.
pub fn plan(facts: &Facts, ebpf: &EbpfFacts, options: &Options) -> Result<Plan, PlanError> {
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
    let contents = unit(&trusted);
    let write_unit = persist && ebpf.unit.as_deref() != Some(contents.as_str());
    let enable = persist && !ebpf.unit_enabled;
    if !steps.is_empty() || write_loader || write_unit || enable || !ebpf.recorded {
        steps.push(Step::Verify);
    }
    if write_loader {
        steps.push(Step::CopyLoader {
            path: EBPF_LOADER.to_owned(),
        });
    }
    if write_unit {
        steps.push(Step::WriteFile {
            path: EBPF_UNIT.to_owned(),
            contents,
            mode: 0o644,
        });
        steps.push(Step::Run {
            purpose: "make systemd read the unit".to_owned(),
            cmd: systemctl(&["daemon-reload"]),
            failure: crate::exit::Exit::PersistFailed,
        });
    }
    if enable {
        steps.push(Step::EnableUnit {
            unit: EBPF_UNIT_NAME.to_owned(),
            cmd: systemctl(&["enable", EBPF_UNIT_NAME]),
        });
    }
    if !steps.is_empty() {
        steps.push(Step::RecordState {
            source: Source::Ebpf,
            kernel_release: facts.kernel.release.clone(),
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

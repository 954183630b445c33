//! `toa-install attach`: attaches the eBPF backend, or sets the trusted
//! networks of the attached one. `toa-ebpf.service` runs it at boot (bpffs
//! does not keep pins across a reboot); `install --backend ebpf` is what an
//! operator runs.

use crate::commands::report::Output;
use crate::effects::host::HostEffects;
use crate::effects::Effects as _;
use crate::exit::{Categorized, Exit};
use crate::layout::TOA_SYSFS;
use crate::plan::{self, PlanError};
use crate::system::sysroot::{RootFs, SystemFs as _};

/// Attaches (or re-trusts) and says what it did.
pub fn main(output: &Output, trust: &[String]) -> Exit {
    if !super::euid_is_root() {
        return output.fail(
            Exit::NotRoot,
            "toa-install attach needs root (it loads eBPF programs). Next step: run it with sudo",
        );
    }
    let mut trusted = Vec::new();
    for t in trust {
        match plan::parse_cidr(t) {
            Ok(net) => trusted.push(net),
            Err(e) => return output.fail(e.category(), &format!("--trust {t}: {e}")),
        }
    }
    // The two backends never run at once: a module loaded first wins.
    if RootFs::host().exists(TOA_SYSFS) {
        let e = PlanError::ModuleActive;
        return output.fail(e.category(), &e.to_string());
    }
    let mut fx = HostEffects::host();
    let attached = toa_ebpf::is_attached();
    if toa_ebpf::is_present() && !attached {
        // An interrupted attach or detach left part of it pinned.
        if let Err(e) = fx.ebpf_detach() {
            return output.fail(e.category(), &e.to_string());
        }
    }
    let result = if attached {
        fx.ebpf_set_trusted(&trusted)
    } else {
        fx.ebpf_attach(&trusted)
    };
    if let Err(e) = result {
        return output.fail(e.category(), &e.to_string());
    }
    if !output.quiet && !output.json {
        let list = if trusted.is_empty() {
            "every sender".to_owned()
        } else {
            trusted.join(", ")
        };
        println!(
            "toa eBPF backend {} (trusted: {list})",
            if attached {
                "was attached: trusted networks set"
            } else {
                "attached"
            }
        );
    }
    if output.json {
        output.print_json(&serde_json::json!({
            "attached": true, "was_attached": attached, "trusted": trusted,
        }));
    }
    Exit::Ok
}

//! The eBPF backend as it is on this host: what the kernel offers, what is
//! pinned under [`EBPF_PIN_DIR`], and the unit that attaches it at boot.
//! Reads only; attaching and detaching are the effects' (through the
//! `toa-ebpf` crate).

use crate::exit::{Categorized, Exit};
use crate::layout::{
    EBPF_LOADER, EBPF_PIN_DIR, EBPF_UNIT, EBPF_UNIT_WANTED, STATE_FILE, SYSTEMD_BOOTED,
};
use crate::state::{Source, StateFile};
use crate::system::sysroot::SystemFs;
use std::net::IpAddr;
use thiserror::Error;

/// A failure of the eBPF backend, in the installer's categories.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct EbpfError(#[from] pub toa_ebpf::Error);

impl Categorized for EbpfError {
    fn category(&self) -> Exit {
        match &self.0 {
            toa_ebpf::Error::Unsupported { .. } => Exit::Unsupported,
            toa_ebpf::Error::Permission(_) => Exit::NotRoot,
            toa_ebpf::Error::AlreadyAttached => Exit::Conflict,
            toa_ebpf::Error::Invalid(_) => Exit::Usage,
            toa_ebpf::Error::Load { .. } => Exit::LoadRefused,
            _ => Exit::LoadFailed,
        }
    }
}

/// What the kernel lacks for the eBPF backend, as far as it could be
/// found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Everything the programs need is there (the verifier accepted each).
    Ready,
    /// One line per missing feature.
    Missing(Vec<String>),
    /// Not probed: the reason (not root in a dry run, another root, ...).
    Unknown(String),
}

impl Default for Support {
    fn default() -> Self {
        Support::Unknown("not probed".to_owned())
    }
}

/// The eBPF backend's pieces on this host (default: none of them, kernel
/// not probed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EbpfFacts {
    /// Whether the kernel can run it.
    pub support: Support,
    /// Something is pinned under [`EBPF_PIN_DIR`].
    pub pinned: bool,
    /// Every program is attached (its link pinned).
    pub attached: bool,
    /// The trusted networks of the attached backend (`None`: not attached).
    pub live_trusted: Option<Vec<String>>,
    /// The unit file's contents.
    pub unit: Option<String>,
    /// `systemctl enable` made the unit's link.
    pub unit_enabled: bool,
    /// The host booted with systemd.
    pub systemd: bool,
    /// The unit's copy of toa-install is this binary, byte for byte.
    pub loader_current: bool,
    /// The unit's copy of toa-install exists.
    pub loader_present: bool,
    /// The state file records the eBPF backend.
    pub recorded: bool,
}

impl EbpfFacts {
    /// Looks at the host through `fs`. The kernel and the pins are only
    /// asked on the live system (`live`), and the kernel only when `probe`
    /// (a trial load needs root).
    pub fn read(fs: &dyn SystemFs, live: bool, probe: bool) -> EbpfFacts {
        let pinned = live && fs.exists(EBPF_PIN_DIR);
        let attached = pinned && toa_ebpf::is_attached();
        let live_trusted = attached
            .then(|| toa_ebpf::trusted().ok().map(|n| format_nets(&n)))
            .flatten();
        let support = match (live, probe) {
            (false, _) => Support::Unknown("not the running system (--root)".to_owned()),
            (true, false) => Support::Unknown("probing the kernel needs root".to_owned()),
            // Attached already: the kernel ran the programs' verifier then.
            (true, true) if attached => Support::Ready,
            (true, true) => match toa_ebpf::probe() {
                Ok(p) if p.missing.is_empty() => Support::Ready,
                Ok(p) => Support::Missing(p.missing),
                Err(e) => Support::Unknown(e.to_string()),
            },
        };
        let loader = fs.read(EBPF_LOADER).ok();
        // The running binary is read only to compare it with an existing copy:
        // every install reads these facts, most hosts have no copy.
        let loader_current = loader.as_ref().is_some_and(|copy| {
            std::env::current_exe()
                .and_then(std::fs::read)
                .is_ok_and(|this| &this == copy)
        });
        EbpfFacts {
            support,
            pinned,
            attached,
            live_trusted,
            unit: fs.read_to_string(EBPF_UNIT).ok(),
            unit_enabled: fs.exists(EBPF_UNIT_WANTED),
            systemd: fs.exists(SYSTEMD_BOOTED),
            loader_current,
            loader_present: loader.is_some(),
            recorded: fs
                .read(STATE_FILE)
                .ok()
                .and_then(|b| serde_json::from_slice::<StateFile>(&b).ok())
                .is_some_and(|s| s.source == Source::Ebpf),
        }
    }
}

/// `--trust` values (already checked CIDRs) as the loader takes them.
pub fn parse_nets(list: &[String]) -> Result<Vec<(IpAddr, u8)>, EbpfError> {
    list.iter()
        .map(|text| {
            let (addr, len) = text.split_once('/').unwrap_or((text, ""));
            let addr: IpAddr = addr.parse().map_err(|_| invalid(text))?;
            let len = match len {
                "" if addr.is_ipv4() => 32,
                "" => 128,
                l => l.parse().map_err(|_| invalid(text))?,
            };
            Ok((addr, len))
        })
        .collect()
}

fn invalid(text: &str) -> EbpfError {
    EbpfError(toa_ebpf::Error::Invalid(format!(
        "{text:?} is not a network such as 10.0.0.0/8"
    )))
}

/// Networks as `--trust` spells them, sorted IPv4 first.
pub fn format_nets(nets: &[(IpAddr, u8)]) -> Vec<String> {
    let mut sorted = nets.to_vec();
    sorted.sort_by_key(|(a, l)| (a.is_ipv6(), *a, *l));
    sorted.iter().map(|(a, l)| format!("{a}/{l}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_round_trip() {
        let list = vec!["2001:db8::/32".to_owned(), "10.0.0.0/8".to_owned()];
        let nets = parse_nets(&list).unwrap();
        assert_eq!(format_nets(&nets), ["10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(
            parse_nets(&["192.0.2.7".to_owned()]).unwrap(),
            [("192.0.2.7".parse().unwrap(), 32)]
        );
        let err = parse_nets(&["proxy".to_owned()]).unwrap_err();
        assert_eq!(err.category(), Exit::Usage);
    }
}

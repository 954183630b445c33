//! Which proxy network a sender belongs to, and how clients are shown.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::plan::selftest::Net;

/// Whether `net` contains `ip` (families must match).
pub fn contains(net: &Net, ip: IpAddr) -> bool {
    match (net.addr, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(net.prefix))
                .unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(net.prefix))
                .unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The network of `ip` with `prefix` bits, its host bits cleared.
fn network_of(ip: IpAddr, prefix: u8) -> Net {
    let addr = match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    Net { addr, prefix }
}

pub(super) fn net_text(n: &Net) -> String {
    format!("{}/{}", n.addr, n.prefix)
}

/// The group a sender belongs to: the most specific trusted network holding
/// it, else its /24 or /64; and whether that is a trusted one.
pub fn group_of(ip: IpAddr, trusted: &[Net]) -> (Net, bool) {
    match trusted
        .iter()
        .filter(|n| contains(n, ip))
        .max_by_key(|n| n.prefix)
    {
        Some(n) => (network_of(n.addr, n.prefix), true),
        None => (network_of(ip, if ip.is_ipv4() { 24 } else { 64 }), false),
    }
}

/// Whether client addresses appear in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// `203.0.113.x`, `2001:db8:c::x`: enough to recognise, not to identify.
    Masked,
    /// `203.0.113.7:51000` (`--show-clients`).
    Shown,
}

/// A client address as the report shows it.
pub fn show_client(c: SocketAddr, privacy: Privacy) -> String {
    match (privacy, c.ip()) {
        (Privacy::Shown, _) => c.to_string(),
        (Privacy::Masked, IpAddr::V4(a)) => {
            let o = a.octets();
            format!("{}.{}.{}.x", o[0], o[1], o[2])
        }
        (Privacy::Masked, IpAddr::V6(a)) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}::x", s[0], s[1], s[2])
        }
    }
}

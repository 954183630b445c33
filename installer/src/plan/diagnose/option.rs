//! Reading a captured option area with the module's own rule (SPEC §2.1).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::system::capture::{tcp_options, TcpOption};

/// The option kinds the module accepts by default (its `kinds` parameter).
pub const DEFAULT_KINDS: [u8; 3] = [254, 253, 200];
/// Option length carrying port and IPv4 address.
pub const LEN_V4: u8 = 8;
/// Option length carrying port and IPv6 address.
pub const LEN_V6: u8 = 20;

/// A TOA option as the module would take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toa {
    /// The option kind.
    pub kind: u8,
    /// Its length: [`LEN_V4`] or [`LEN_V6`].
    pub len: u8,
    /// The client it names.
    pub client: SocketAddr,
}

/// What the module reads from one option area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionRead {
    /// The first recognised TOA option (SPEC §2.1: the first one wins).
    pub toa: Option<Toa>,
    /// The walk ended on a malformed option (`toa_malformed`).
    pub malformed: bool,
}

/// Reads an option area as the module does (SPEC §2.1): an option counts
/// only when its kind is in `kinds` and its length is 8 or 20; the walk
/// goes on after a match only to report a malformed tail.
pub fn read_toa(area: &[u8], kinds: &[u8]) -> OptionRead {
    let mut read = OptionRead::default();
    for opt in tcp_options(area) {
        match opt {
            TcpOption::Malformed => read.malformed = true,
            TcpOption::Option { kind, bytes } => {
                if read.toa.is_some() || !kinds.contains(&kind) {
                    continue;
                }
                let port = || u16::from_be_bytes([bytes[2], bytes[3]]);
                read.toa = match bytes.len() as u8 {
                    LEN_V4 => {
                        let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
                        Some(SocketAddr::new(ip.into(), port()))
                    }
                    LEN_V6 => {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(&bytes[4..20]);
                        Some(SocketAddr::new(Ipv6Addr::from(b).into(), port()))
                    }
                    _ => None,
                }
                .map(|client| Toa {
                    kind,
                    len: bytes.len() as u8,
                    client,
                });
            }
        }
    }
    read
}

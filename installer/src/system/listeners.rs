//! Listening TCP sockets and their address families, from
//! `/proc/net/tcp` (AF_INET) and `/proc/net/tcp6` (AF_INET6) of the
//! current network namespace.
//!
//! Why the family matters (SPEC §2.2): an AF_INET listener handed an IPv6
//! client by TOA gets a `sockaddr_in6` from `accept()`, which applications
//! with a `sockaddr_in`-sized buffer see truncated.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;
use thiserror::Error;

use crate::system::sysroot::SystemFs;

/// IPv4 TCP sockets of this network namespace.
pub const PROC_NET_TCP: &str = "/proc/net/tcp";
/// IPv6 TCP sockets (absent when the kernel has no IPv6).
pub const PROC_NET_TCP6: &str = "/proc/net/tcp6";
/// The `st` column's value for TCP_LISTEN.
const TCP_LISTEN: &str = "0A";

/// A listening socket's address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Family {
    /// AF_INET: IPv4 clients only.
    #[serde(rename = "AF_INET")]
    Inet,
    /// AF_INET6: IPv6 clients, and IPv4 ones as `::ffff:a.b.c.d` unless
    /// IPV6_V6ONLY.
    #[serde(rename = "AF_INET6")]
    Inet6,
}

impl Family {
    /// `AF_INET` or `AF_INET6`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "AF_INET",
            Family::Inet6 => "AF_INET6",
        }
    }
}

/// One listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    /// The address it is bound to (unspecified: every address).
    pub addr: SocketAddr,
    /// Its family.
    pub family: Family,
}

/// Why the socket tables could not be read.
#[derive(Debug, Error)]
pub enum ListenersError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A line is not in the kernel's format.
    #[error("{path} line {line}: unexpected format {text:?}")]
    Format {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:port` (IPv6), as the kernel
/// prints them: each 32-bit word in the host's byte order.
fn parse_hex_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip: IpAddr = match addr.len() {
        8 => Ipv4Addr::from(word(0)?).into(),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Ipv6Addr::from(b).into()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The listening sockets of one `/proc/net/tcp{,6}` table.
pub fn parse_table(
    path: &str,
    text: &str,
    family: Family,
) -> Result<Vec<Listener>, ListenersError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || ListenersError::Format {
            path: path.to_owned(),
            line: i + 1,
            text: line.to_owned(),
        };
        let mut cols = line.split_whitespace();
        let (_slot, local, _remote, state) = (cols.next(), cols.next(), cols.next(), cols.next());
        let (Some(local), Some(state)) = (local, state) else {
            return Err(bad());
        };
        if state != TCP_LISTEN {
            continue;
        }
        let addr = parse_hex_addr(local).ok_or_else(bad)?;
        out.push(Listener { addr, family });
    }
    Ok(out)
}

/// The listening TCP sockets on `ports` (all of them when empty), IPv4
/// first. A missing `/proc/net/tcp6` means no IPv6: no AF_INET6 listener.
pub fn listening(fs: &dyn SystemFs, ports: &[u16]) -> Result<Vec<Listener>, ListenersError> {
    let mut all = Vec::new();
    for (path, family) in [(PROC_NET_TCP, Family::Inet), (PROC_NET_TCP6, Family::Inet6)] {
        let text = match fs.read_to_string(path) {
            Ok(t) => t,
            Err(e) if family == Family::Inet6 && e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ListenersError::Read {
                    path: fs.display(path),
                    source,
                })
            }
        };
        all.extend(parse_table(&fs.display(path), &text, family)?);
    }
    all.retain(|l| ports.is_empty() || ports.contains(&l.addr.port()));
    all.sort_by_key(|l| (l.family, l.addr));
    all.dedup();
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::sysroot::fake::MemFs;

    // Real lines (a little-endian host): 0.0.0.0:8080 and 127.0.0.1:53
    // listening, one established connection.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18793 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 17020 1 0000000000000000 100 0 0 10 5\n\
   2: 0F02000A:1F90 0202000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 20400 1 0000000000000000 20 4 30 10 -1\n";
    // [::]:8080 and [2001:db8::1]:443 listening
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18795 1 0000000000000000 100 0 0 10 0\n\
   1: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18796 1 0000000000000000 100 0 0 10 0\n";

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_both_tables() {
        let fs = MemFs::new()
            .with(PROC_NET_TCP, TCP)
            .with(PROC_NET_TCP6, TCP6);
        let all = listening(&fs, &[]).unwrap();
        let got: Vec<(String, &str)> = all
            .iter()
            .map(|l| (l.addr.to_string(), l.family.name()))
            .collect();
        assert_eq!(
            got,
            [
                ("0.0.0.0:8080".to_owned(), "AF_INET"),
                ("127.0.0.1:53".to_owned(), "AF_INET"),
                ("[::]:8080".to_owned(), "AF_INET6"),
                ("[2001:db8::1]:443".to_owned(), "AF_INET6"),
            ]
        );
        let on_8080 = listening(&fs, &[8080]).unwrap();
        assert_eq!(on_8080.len(), 2);
        assert!(listening(&fs, &[9]).unwrap().is_empty());
    }

    #[test]
    fn no_ipv6_table_means_no_ipv6_listeners() {
        let fs = MemFs::new().with(PROC_NET_TCP, TCP);
        assert_eq!(listening(&fs, &[8080]).unwrap().len(), 1);
        let fs = MemFs::new();
        assert!(matches!(
            listening(&fs, &[]),
            Err(ListenersError::Read { .. })
        ));
    }

    #[test]
    fn rejects_what_is_not_the_kernel_format() {
        let text = "header\n   0: zz:1F90 00000000:0000 0A\n";
        let e = parse_table("t", text, Family::Inet).unwrap_err();
        assert!(e.to_string().contains("t line 2"), "{e}");
        assert!(parse_table("t", "header\n   0:\n", Family::Inet).is_err());
        assert!(parse_hex_addr("0100007F").is_none());
        assert!(parse_hex_addr("01000:0035").is_none());
    }

    #[test]
    fn reads_this_machines_tables() {
        let fs = crate::system::sysroot::RootFs::host();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let found = listening(&fs, &[port]).unwrap();
        assert_eq!(
            found,
            [Listener {
                addr: l.local_addr().unwrap(),
                family: Family::Inet
            }]
        );
    }
}

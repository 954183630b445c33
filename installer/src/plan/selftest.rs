//! The self-test's addresses, chosen from the module's `trusted` list:
//! pure, so that the plan can check a `--trusted` value and `verify` can
//! pick the addresses it uses the same way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;
/// A trusted network, as the module prints it (`10.0.0.0/8`, a bare
/// address meaning /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

/// Why a text is not a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NetError {
    /// What comes before `/` is not an IPv4 or IPv6 address.
    #[error("not an IPv4 or IPv6 address")]
    NotAnAddress,
    /// The prefix length is not a number up to the address's bits.
    #[error("the prefix length must be 0 to {max}")]
    BadPrefix {
        /// 32 or 128.
        max: u8,
    },
}

impl Net {
    /// `10.0.0.0/8`, `2001:db8::/32`; a bare address means just that host
    /// (/32 or /128).
    pub fn parse(text: &str) -> Result<Net, NetError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| NetError::NotAnAddress)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(NetError::BadPrefix { max })?,
        };
        Ok(Net { addr, prefix })
    }
}

/// An entry of the module's trusted list that is not a network.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("trusted list entry {item:?}: {source}")]
pub struct TrustedEntryError {
    /// The entry.
    pub item: String,
    /// Why it is not a network.
    pub source: NetError,
}

/// Parses the module's `trusted` parameter (comma-separated, maybe a
/// trailing newline; empty means "trust every sender").
pub fn parse_trusted(text: &str) -> Result<Vec<Net>, TrustedEntryError> {
    text.trim()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            Net::parse(item).map_err(|source| TrustedEntryError {
                item: item.to_owned(),
                source,
            })
        })
        .collect()
}

/// The addresses of one family's test connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// The tun's own address (the listener side).
    pub local: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The proxy that sends the TOA.
    pub proxy: IpAddr,
    /// Whether the module trusts `proxy` (else TOA must be ignored).
    pub trusted: bool,
}

fn v4_at(net: Ipv4Addr, prefix: u8, offset: u32) -> Ipv4Addr {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Ipv4Addr::from((u32::from(net) & mask).wrapping_add(offset))
}

fn v6_at(net: Ipv6Addr, prefix: u8, offset: u128) -> Ipv6Addr {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    Ipv6Addr::from((u128::from(net) & mask).wrapping_add(offset))
}

/// Picks the addresses for each family. An empty list trusts everyone:
/// the documentation ranges (198.51.100.1/24 with proxy .2, 2001:db8::1/64
/// with proxy ::2). Otherwise the first trusted network of the family: its
/// first host is the tun's address and its second the proxy (for a /31,
/// /32, /127 or /128: the network's address is the proxy and its neighbour
/// the tun's, on a /31 or /127). No network of the family: the default
/// addresses, not trusted.
pub fn choose(trusted: &[Net]) -> (Addrs, Addrs) {
    let default4 = Addrs {
        local: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        prefix: 24,
        proxy: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        trusted: true,
    };
    let default6 = Addrs {
        local: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        prefix: 64,
        proxy: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        trusted: true,
    };
    if trusted.is_empty() {
        return (default4, default6);
    }
    let v4 = trusted
        .iter()
        .find_map(|n| match n.addr {
            IpAddr::V4(a) if n.prefix <= 30 => Some(Addrs {
                local: IpAddr::V4(v4_at(a, n.prefix, 1)),
                prefix: 30,
                proxy: IpAddr::V4(v4_at(a, n.prefix, 2)),
                trusted: true,
            }),
            IpAddr::V4(a) => {
                let proxy = v4_at(a, n.prefix, 0);
                Some(Addrs {
                    local: IpAddr::V4(Ipv4Addr::from(u32::from(proxy) ^ 1)),
                    prefix: 31,
                    proxy: IpAddr::V4(proxy),
                    trusted: true,
                })
            }
            IpAddr::V6(_) => None,
        })
        .unwrap_or(Addrs {
            trusted: false,
            ..default4
        });
    let v6 = trusted
        .iter()
        .find_map(|n| match n.addr {
            IpAddr::V6(a) if n.prefix <= 126 => Some(Addrs {
                local: IpAddr::V6(v6_at(a, n.prefix, 1)),
                prefix: 126,
                proxy: IpAddr::V6(v6_at(a, n.prefix, 2)),
                trusted: true,
            }),
            IpAddr::V6(a) => {
                let proxy = v6_at(a, n.prefix, 0);
                Some(Addrs {
                    local: IpAddr::V6(Ipv6Addr::from(u128::from(proxy) ^ 1)),
                    prefix: 127,
                    proxy: IpAddr::V6(proxy),
                    trusted: true,
                })
            }
            IpAddr::V4(_) => None,
        })
        .unwrap_or(Addrs {
            trusted: false,
            ..default6
        });
    (v4, v6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_parses_the_module_format() {
        assert_eq!(parse_trusted("\n").unwrap(), []);
        let l = parse_trusted("10.0.0.0/8,2001:db8::/32,192.0.2.9\n").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[2].prefix, 32);
        assert_eq!(l[1].prefix, 32);
        assert!(parse_trusted("10.0.0.0/33").is_err());
        assert!(parse_trusted("nope").is_err());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_list_uses_documentation_ranges() {
        let (a4, a6) = choose(&[]);
        assert_eq!(
            (a4.local, a4.proxy, a4.prefix),
            (ip("198.51.100.1"), ip("198.51.100.2"), 24)
        );
        assert_eq!(
            (a6.local, a6.proxy, a6.prefix),
            (ip("2001:db8::1"), ip("2001:db8::2"), 64)
        );
        assert!(a4.trusted && a6.trusted);
    }

    #[test]
    fn proxies_come_from_the_trusted_list() {
        let l = parse_trusted("10.0.0.0/8,2001:db8:5::/48").unwrap();
        let (a4, a6) = choose(&l);
        assert_eq!(
            (a4.local, a4.proxy, a4.prefix),
            (ip("10.0.0.1"), ip("10.0.0.2"), 30)
        );
        assert_eq!(
            (a6.local, a6.proxy, a6.prefix),
            (ip("2001:db8:5::1"), ip("2001:db8:5::2"), 126)
        );
        assert!(a4.trusted && a6.trusted);
    }

    #[test]
    fn single_addresses_are_the_proxy() {
        let l = parse_trusted("192.0.2.9,2001:db8::10/128").unwrap();
        let (a4, a6) = choose(&l);
        assert_eq!(
            (a4.local, a4.proxy, a4.prefix),
            (ip("192.0.2.8"), ip("192.0.2.9"), 31)
        );
        assert_eq!(
            (a6.local, a6.proxy, a6.prefix),
            (ip("2001:db8::11"), ip("2001:db8::10"), 127)
        );
    }

    #[test]
    fn a_family_outside_the_list_is_not_trusted() {
        let l = parse_trusted("10.0.0.0/8").unwrap();
        let (a4, a6) = choose(&l);
        assert!(a4.trusted);
        assert!(!a6.trusted);
        assert_eq!(a6.proxy, ip("2001:db8::2"));
    }
}

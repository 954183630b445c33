//! `toa-install verify`: the end-to-end self-test (SPEC §3.1).
//!
//! In a private network namespace (a thread of its own calls
//! `unshare(CLONE_NEWNET)`, so the caller's namespace is untouched), a tun
//! peer plays an L4 proxy and opens one IPv4 and one IPv6 connection to local
//! listeners, the final ACK of each handshake carrying TOA (kind 254) for a
//! client address from the documentation ranges. The test passes only when
//! `accept()` and `getpeername()` return exactly those client addresses,
//! `/proc/net/toa_stats` is readable inside the namespace and
//! `syn_recv_sock_toa` rose.
//!
//! The module honours TOA only from the networks in its `trusted` list (when
//! the list is not empty). The namespace being private, the test can take
//! its addresses from inside that list: for each family, the first trusted
//! network gives the tun's own address and the proxy's. A family the list
//! does not cover cannot carry an honoured TOA without changing the list,
//! which is global; for it the test checks instead that the option is
//! (correctly) ignored, and says so.

use crate::executor::Verifier;
use crate::layout::{STATS, TRUSTED_PARAM};
use crate::peer::{toa_option, CloseMode, ConnectSpec, Peer, PeerConfig};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use thiserror::Error;

/// The module's counters.
/// The TOA option kind the test sends.
pub const KIND: u8 = 254;
/// The injected client addresses (TEST-NET-3, 2001:db8:c::/48).
pub const CLIENT4: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 51000);
/// The injected IPv6 client.
pub const CLIENT6: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7)),
    51006,
);
/// How long any single wait may take.
const WAIT: Duration = Duration::from_secs(5);
const PORT4: u16 = 8080;
const PORT6: u16 = 8086;
const PROXY_PORT: u16 = 40000;

/// Sums the per-CPU columns of `/proc/net/toa_stats`.
pub fn parse_stats(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut m = BTreeMap::new();
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (name, vals) = line
            .split_once(':')
            .ok_or_else(|| format!("{STATS}: line without ':': {line:?}"))?;
        let mut sum = 0u64;
        for v in vals.split_whitespace() {
            sum += v
                .parse::<u64>()
                .map_err(|_| format!("{STATS}: bad number {v:?} in {line:?}"))?;
        }
        m.insert(name.trim().to_owned(), sum);
    }
    if !m.contains_key("syn_recv_sock_toa") {
        return Err(format!("{STATS} has no syn_recv_sock_toa counter"));
    }
    Ok(m)
}

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

/// Parses the module's `trusted` parameter (comma-separated, maybe a
/// trailing newline; empty means "trust every sender").
pub fn parse_trusted(text: &str) -> Result<Vec<Net>, String> {
    text.trim()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| Net::parse(item).map_err(|e| format!("trusted list entry {item:?}: {e}")))
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

/// A passing self-test: what was checked, and what could not be.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Report {
    /// One line per check that passed.
    pub checks: Vec<String>,
    /// What could not be exercised, and why.
    pub warnings: Vec<String>,
}

/// Runs the self-test against the live module, reading its trusted list
/// from sysfs (or taking `trusted` when sysfs has none).
pub fn run(trusted: Option<&[String]>) -> Result<Report, String> {
    let text = match std::fs::read_to_string(TRUSTED_PARAM) {
        Ok(t) => t,
        Err(e) => match trusted {
            Some(list) => list.join(","),
            None => {
                return Err(format!(
                    "cannot read {TRUSTED_PARAM} ({e}): is toa loaded? Next step: `toa-install` loads it"
                ))
            }
        },
    };
    let nets = parse_trusted(&text)?;
    let (a4, a6) = choose(&nets);
    let handle = std::thread::Builder::new()
        .name("toa-verify".to_owned())
        .spawn(move || in_namespace(a4, a6, text.trim().to_owned()))
        .map_err(|e| format!("cannot start the self-test thread: {e}"))?;
    handle
        .join()
        .map_err(|_| "the self-test thread panicked".to_owned())?
}

fn read_stats() -> Result<BTreeMap<String, u64>, String> {
    let text = std::fs::read_to_string(STATS)
        .map_err(|e| format!("cannot read {STATS} inside the test namespace: {e}"))?;
    parse_stats(&text)
}

fn in_namespace(a4: Addrs, a6: Addrs, trusted_text: String) -> Result<Report, String> {
    // SAFETY: unshare affects only this thread, which ends with the test.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "cannot create a private network namespace: {} (needs root / CAP_SYS_ADMIN)",
            std::io::Error::last_os_error()
        ));
    }
    crate::peer::set_link_up("lo").map_err(|e| format!("cannot bring lo up: {e}"))?;
    let (IpAddr::V4(l4), IpAddr::V6(l6)) = (a4.local, a6.local) else {
        return Err("internal error: address families swapped".to_owned());
    };
    let peer = Peer::open(
        &PeerConfig::new("toaverify0")
            .ipv4(l4, a4.prefix)
            .ipv6(l6, a6.prefix),
    )
    .map_err(|e| format!("cannot open the test tun device: {e}"))?;
    let before = read_stats()?;
    let mut report = Report::default();
    let mut honoured = 0u64;
    for (addrs, port, client) in [(a4, PORT4, CLIENT4), (a6, PORT6, CLIENT6)] {
        let family = if client.is_ipv4() { "IPv4" } else { "IPv6" };
        let proxy = SocketAddr::new(addrs.proxy, PROXY_PORT);
        let seen = one_connection(&peer, addrs.local, port, proxy, client)?;
        if addrs.trusted {
            check_seen(family, "accept()", client, seen.0)?;
            check_seen(family, "getpeername()", client, seen.1)?;
            honoured += 1;
            report.checks.push(format!(
                "{family}: TOA for {client} sent by {proxy} reached accept() and getpeername()"
            ));
        } else {
            check_seen(family, "accept()", proxy, seen.0)?;
            check_seen(family, "getpeername()", proxy, seen.1)?;
            report.warnings.push(format!(
                "{family}: TOA not exercised: the module's trusted list ({trusted_text}) has no {family} network, \
                 so the module ignores TOA from every {family} sender (checked: it did). \
                 Add the {family} networks of your proxies with --trust CIDR to use TOA over {family}"
            ));
        }
    }
    let after = read_stats()?;
    let rose = after["syn_recv_sock_toa"].saturating_sub(before["syn_recv_sock_toa"]);
    if rose < honoured {
        return Err(format!(
            "syn_recv_sock_toa in {STATS} rose by {rose}, expected at least {honoured}"
        ));
    }
    report.checks.push(format!(
        "{STATS} readable; syn_recv_sock_toa rose by {rose}"
    ));
    Ok(report)
}

fn check_seen(
    family: &str,
    call: &str,
    expected: SocketAddr,
    got: SocketAddr,
) -> Result<(), String> {
    let got = SocketAddr::new(got.ip().to_canonical(), got.port());
    if got == expected {
        Ok(())
    } else {
        Err(format!(
            "{family}: {call} returned {got}, expected {expected} (the address injected with TOA{})",
            if got.ip() == expected.ip() { "" } else { " was not applied" }
        ))
    }
}

/// Opens one connection carrying TOA for `client` from `proxy` to a
/// listener on `local:port`; returns what `accept()` and `getpeername()`
/// said.
pub fn one_connection(
    peer: &Peer,
    local: IpAddr,
    port: u16,
    proxy: SocketAddr,
    client: SocketAddr,
) -> Result<(SocketAddr, SocketAddr), String> {
    let bind = SocketAddr::new(local, port);
    // A fresh IPv6 address may not be usable for a moment (the device
    // becoming ready): retry until the wait is over.
    let deadline = Instant::now() + WAIT;
    let listener = loop {
        match TcpListener::bind(bind) {
            Ok(l) => break l,
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrNotAvailable
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("cannot listen on {bind}: {e}")),
        }
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let spec = ConnectSpec::new(proxy, bind)
        .ack_options(toa_option(KIND, client))
        .payload(b"toa-install verify".to_vec())
        .close(CloseMode::Hold)
        .timeout(WAIT);
    let conn = peer
        .connect(&spec)
        .map_err(|e| format!("connection {proxy} -> {bind}: {e}"))?;
    let deadline = Instant::now() + WAIT;
    let (stream, accepted): (TcpStream, SocketAddr) = loop {
        match listener.accept() {
            Ok(pair) => break pair,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(format!("accept() on {bind}: nothing within {WAIT:?}"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept() on {bind}: {e}")),
        }
    };
    let peername = stream
        .peer_addr()
        .map_err(|e| format!("getpeername() on {bind}: {e}"))?;
    drop(stream);
    let _ = conn.abort();
    Ok((accepted, peername))
}

/// The [`Verifier`] the installer uses.
#[derive(Debug, Default)]
pub struct NetnsVerifier;

impl Verifier for NetnsVerifier {
    fn verify(&self, trusted: Option<&[String]>) -> Result<(), String> {
        run(trusted).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_sum_columns() {
        let t = "            CPU0  CPU1\nsyn_recv_sock_toa : 3 4\nhook_missed : 1 0\n";
        let s = parse_stats(t).unwrap();
        assert_eq!(s["syn_recv_sock_toa"], 7);
        assert_eq!(s["hook_missed"], 1);
        assert!(parse_stats("h\nfoo : 1\n").is_err());
        assert!(parse_stats("h\nsyn_recv_sock_toa : x\n").is_err());
    }

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

    #[test]
    fn mismatch_says_expected_and_got() {
        let e = check_seen(
            "IPv4",
            "accept()",
            CLIENT4,
            "198.51.100.2:40000".parse().unwrap(),
        )
        .unwrap_err();
        assert!(
            e.contains("203.0.113.7:51000") && e.contains("198.51.100.2:40000"),
            "{e}"
        );
        let mapped: SocketAddr = "[::ffff:203.0.113.7]:51000".parse().unwrap();
        check_seen("IPv4", "accept()", CLIENT4, mapped).unwrap();
    }
}

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

use crate::backend::{self, Kind};
use crate::commands::report::{Output, Problem};
use crate::effects::executor::{Verifier, VerifyFailure};
use crate::exit::{Categorized, Exit};
use crate::layout::{STATS, TRUSTED_PARAM};
use crate::peer::{toa_option, CloseMode, ConnectSpec, Peer, PeerConfig, PeerError};
use crate::plan::selftest::{choose, parse_trusted, Addrs, TrustedEntryError};
use crate::system::ebpf::{format_nets, EbpfError};
use crate::system::stats::{parse_stats, CountersError};
use crate::system::sysroot::RootFs;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use thiserror::Error;

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

/// A passing self-test: what was checked, and what could not be.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Report {
    /// One line per check that passed.
    pub checks: Vec<String>,
    /// What could not be exercised, and why.
    pub warnings: Vec<String>,
}

/// Why the self-test failed. Every case is exit 8 (SPEC §3.4).
#[derive(Debug, Error)]
pub enum VerifyError {
    /// The module's trusted list is not in sysfs and none was given.
    #[error("cannot read {path} ({source}): is toa loaded? Next step: `toa-install` loads it", path = TRUSTED_PARAM)]
    NotLoaded {
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The eBPF backend's trusted networks could not be read.
    #[error("cannot read the eBPF backend's trusted networks: {0}")]
    EbpfTrusted(EbpfError),
    /// The module's trusted list does not parse.
    #[error(transparent)]
    Trusted(TrustedEntryError),
    /// The thread that enters the namespace could not be started.
    #[error("cannot start the self-test thread: {0}")]
    Thread(std::io::Error),
    /// The thread that entered the namespace panicked.
    #[error("the self-test thread panicked")]
    Panicked,
    /// The counters could not be read.
    #[error("cannot read {path} inside the test namespace: {source}", path = STATS)]
    ReadStats {
        /// Why.
        source: std::io::Error,
    },
    /// The counters do not parse.
    #[error(transparent)]
    Stats(CountersError),
    /// `unshare(CLONE_NEWNET)` failed.
    #[error("cannot create a private network namespace: {0} (needs root / CAP_SYS_ADMIN)")]
    Namespace(std::io::Error),
    /// The namespace's loopback stayed down.
    #[error("cannot bring lo up: {0}")]
    Loopback(PeerError),
    /// The chosen addresses came back in the wrong families.
    #[error("internal error: address families swapped")]
    FamiliesSwapped,
    /// The tun peer could not be made.
    #[error("cannot open the test tun device: {0}")]
    Tun(PeerError),
    /// `syn_recv_sock_toa` did not count every honoured TOA.
    #[error("syn_recv_sock_toa in {counters} rose by {rose}, expected at least {honoured}")]
    CounterFlat {
        /// Where the counters were read.
        counters: &'static str,
        /// By how much it rose.
        rose: u64,
        /// How many connections carried an honoured TOA.
        honoured: u64,
    },
    /// `accept()` or `getpeername()` returned another address.
    #[error(
        "{family}: {call} returned {got}, expected {expected} (the address injected with TOA{})",
        not_applied(.got, .expected)
    )]
    Mismatch {
        /// IPv4 or IPv6.
        family: &'static str,
        /// `accept()` or `getpeername()`.
        call: &'static str,
        /// The injected (or, untrusted, the proxy's) address.
        expected: SocketAddr,
        /// What the call returned.
        got: SocketAddr,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {bind}: {source}")]
    Listen {
        /// Its address.
        bind: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The listener could not be made non-blocking.
    #[error("listener: {0}")]
    Listener(std::io::Error),
    /// The peer's handshake failed.
    #[error("connection {proxy} -> {bind}: {source}")]
    Connect {
        /// The proxy's address.
        proxy: SocketAddr,
        /// The listener's.
        bind: SocketAddr,
        /// Why (boxed: the peer's error is large).
        source: Box<PeerError>,
    },
    /// No connection arrived in time.
    #[error("accept() on {bind}: nothing within {wait:?}", wait = WAIT)]
    AcceptTimeout {
        /// The listener's address.
        bind: SocketAddr,
    },
    /// `accept()` failed.
    #[error("accept() on {bind}: {source}")]
    Accept {
        /// The listener's address.
        bind: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// `getpeername()` failed.
    #[error("getpeername() on {bind}: {source}")]
    PeerName {
        /// The listener's address.
        bind: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl Categorized for VerifyError {
    fn category(&self) -> Exit {
        Exit::VerifyFailed
    }
}

/// The end of a mismatch message: whether TOA was ignored altogether.
fn not_applied(got: &SocketAddr, expected: &SocketAddr) -> &'static str {
    if got.ip() == expected.ip() {
        ""
    } else {
        " was not applied"
    }
}

/// `toa-install verify`: runs the self-test and prints the result.
pub fn main(output: &Output, root: Option<&Path>, kernel_release: Option<&str>) -> Exit {
    if let Some(exit) = output.refuse_root_options(root, kernel_release, "verify") {
        return exit;
    }
    if !super::euid_is_root() {
        let message = "toa-install verify needs root (it creates a network namespace and a tun device). Next step: run it again with sudo";
        return output.fail(Exit::NotRoot, message);
    }
    let result = run(None);
    if output.json {
        let doc = match &result {
            Ok(report) => serde_json::json!({
                "passed": true, "checks": report.checks, "warnings": report.warnings, "error": null,
            }),
            Err(e) => serde_json::json!({
                "passed": false, "checks": [], "warnings": [],
                "error": Problem::of(e),
            }),
        };
        println!("{doc:#}");
    } else {
        match &result {
            Ok(report) => {
                if !output.quiet {
                    for check in &report.checks {
                        println!("ok: {check}");
                    }
                    for warning in &report.warnings {
                        eprintln!("warning: {warning}");
                    }
                    println!("toa verify: passed");
                }
            }
            Err(e) => eprintln!("error: toa verify failed: {e}"),
        }
    }
    match result {
        Ok(_) => Exit::Ok,
        Err(e) => e.category(),
    }
}

/// Where the eBPF backend's counters are, in messages.
const EBPF_COUNTERS: &str = "the eBPF backend's counters (toa-install stats)";

/// Runs the self-test against the active backend, reading its trusted list
/// from the module's sysfs or the eBPF backend's maps (or taking `trusted`
/// when the module has none in sysfs).
pub fn run(trusted: Option<&[String]>) -> Result<Report, VerifyError> {
    let kind = backend::active(&RootFs::host()).unwrap_or(Kind::Module);
    let text = match kind {
        Kind::Ebpf => toa_ebpf::trusted()
            .map(|n| format_nets(&n).join(","))
            .map_err(|e| VerifyError::EbpfTrusted(e.into()))?,
        Kind::Module => match std::fs::read_to_string(TRUSTED_PARAM) {
            Ok(t) => t,
            Err(e) => match trusted {
                Some(list) => list.join(","),
                None => return Err(VerifyError::NotLoaded { source: e }),
            },
        },
    };
    let nets = parse_trusted(&text).map_err(VerifyError::Trusted)?;
    let (a4, a6) = choose(&nets);
    let handle = std::thread::Builder::new()
        .name("toa-verify".to_owned())
        .spawn(move || in_namespace(kind, a4, a6, text.trim().to_owned()))
        .map_err(VerifyError::Thread)?;
    handle.join().map_err(|_| VerifyError::Panicked)?
}

fn read_stats(kind: Kind) -> Result<BTreeMap<String, u64>, VerifyError> {
    if kind == Kind::Ebpf {
        return kind
            .backend()
            .counters(&RootFs::host())
            .map_err(VerifyError::Stats);
    }
    let text =
        std::fs::read_to_string(STATS).map_err(|source| VerifyError::ReadStats { source })?;
    parse_stats(&text).map_err(VerifyError::Stats)
}

fn in_namespace(
    kind: Kind,
    a4: Addrs,
    a6: Addrs,
    trusted_text: String,
) -> Result<Report, VerifyError> {
    // SAFETY: unshare affects only this thread, which ends with the test.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(VerifyError::Namespace(std::io::Error::last_os_error()));
    }
    crate::peer::set_link_up("lo").map_err(VerifyError::Loopback)?;
    let (IpAddr::V4(l4), IpAddr::V6(l6)) = (a4.local, a6.local) else {
        return Err(VerifyError::FamiliesSwapped);
    };
    let peer = Peer::open(
        &PeerConfig::new("toaverify0")
            .ipv4(l4, a4.prefix)
            .ipv6(l6, a6.prefix),
    )
    .map_err(VerifyError::Tun)?;
    let before = read_stats(kind)?;
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
                "{family}: TOA not exercised: toa's trusted list ({trusted_text}) has no {family} network, \
                 so toa ignores TOA from every {family} sender (checked: it did). \
                 Add the {family} networks of your proxies with --trust CIDR to use TOA over {family}"
            ));
        }
    }
    let after = read_stats(kind)?;
    let rose = after["syn_recv_sock_toa"].saturating_sub(before["syn_recv_sock_toa"]);
    let counters = match kind {
        Kind::Module => STATS,
        Kind::Ebpf => EBPF_COUNTERS,
    };
    if rose < honoured {
        return Err(VerifyError::CounterFlat {
            counters,
            rose,
            honoured,
        });
    }
    report.checks.push(format!(
        "{counters} readable; syn_recv_sock_toa rose by {rose}"
    ));
    Ok(report)
}

fn check_seen(
    family: &'static str,
    call: &'static str,
    expected: SocketAddr,
    got: SocketAddr,
) -> Result<(), VerifyError> {
    let got = SocketAddr::new(got.ip().to_canonical(), got.port());
    if got == expected {
        Ok(())
    } else {
        Err(VerifyError::Mismatch {
            family,
            call,
            expected,
            got,
        })
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
) -> Result<(SocketAddr, SocketAddr), VerifyError> {
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
            Err(source) => return Err(VerifyError::Listen { bind, source }),
        }
    };
    listener
        .set_nonblocking(true)
        .map_err(VerifyError::Listener)?;
    let spec = ConnectSpec::new(proxy, bind)
        .ack_options(toa_option(KIND, client))
        .payload(b"toa-install verify".to_vec())
        .close(CloseMode::Hold)
        .timeout(WAIT);
    let conn = peer.connect(&spec).map_err(|e| VerifyError::Connect {
        proxy,
        bind,
        source: Box::new(e),
    })?;
    let deadline = Instant::now() + WAIT;
    let (stream, accepted): (TcpStream, SocketAddr) = loop {
        match listener.accept() {
            Ok(pair) => break pair,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(VerifyError::AcceptTimeout { bind });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => return Err(VerifyError::Accept { bind, source }),
        }
    };
    let peername = stream
        .peer_addr()
        .map_err(|source| VerifyError::PeerName { bind, source })?;
    drop(stream);
    let _ = conn.abort();
    Ok((accepted, peername))
}

/// The [`Verifier`] the installer uses.
#[derive(Debug, Default)]
pub struct NetnsVerifier;

impl Verifier for NetnsVerifier {
    fn verify(&self, trusted: Option<&[String]>) -> Result<(), VerifyFailure> {
        run(trusted).map(|_| ()).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_says_expected_and_got() {
        let e = check_seen(
            "IPv4",
            "accept()",
            CLIENT4,
            "198.51.100.2:40000".parse().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("203.0.113.7:51000") && e.contains("198.51.100.2:40000"),
            "{e}"
        );
        let mapped: SocketAddr = "[::ffff:203.0.113.7]:51000".parse().unwrap();
        check_seen("IPv4", "accept()", CLIENT4, mapped).unwrap();
    }

    /// The words users and the VM tests see, exactly; every case exits 8.
    #[test]
    fn messages_are_exact() {
        let ignored = check_seen(
            "IPv4",
            "getpeername()",
            CLIENT4,
            "198.51.100.2:40000".parse().unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            ignored.to_string(),
            "IPv4: getpeername() returned 198.51.100.2:40000, expected 203.0.113.7:51000 \
             (the address injected with TOA was not applied)"
        );
        let port_only = check_seen(
            "IPv4",
            "accept()",
            CLIENT4,
            "203.0.113.7:1".parse().unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            port_only.to_string(),
            "IPv4: accept() returned 203.0.113.7:1, expected 203.0.113.7:51000 \
             (the address injected with TOA)"
        );
        let bind: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        assert_eq!(
            VerifyError::AcceptTimeout { bind }.to_string(),
            "accept() on 10.0.0.1:8080: nothing within 5s"
        );
        assert_eq!(
            VerifyError::CounterFlat {
                counters: STATS,
                rose: 1,
                honoured: 2
            }
            .to_string(),
            format!("syn_recv_sock_toa in {STATS} rose by 1, expected at least 2")
        );
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            VerifyError::NotLoaded { source: missing }.to_string(),
            format!(
                "cannot read {TRUSTED_PARAM} (entity not found): is toa loaded? \
                 Next step: `toa-install` loads it"
            )
        );
        assert_eq!(ignored.category(), Exit::VerifyFailed);
    }
}

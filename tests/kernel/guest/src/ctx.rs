//! What every case shares: the tun peers, the two listeners, the module,
//! and "open a connection with these option bytes and report what the
//! server saw".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use toa_install::peer::{CloseMode, ConnectSpec, Connection, Peer, PeerConfig};

use crate::kmod::{Kmod, Stats};
use crate::net::{abort_close, errname, read_some, wait_fd, Family, Listener, RawAddr, ServerView};

/// The first tun: the host side's addresses.
pub const LOCAL4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const LOCAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The "proxy" sending through the first tun.
pub const PROXY4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const PROXY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// The second tun (concurrency): host side and proxy.
pub const LOCAL4_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const LOCAL6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
pub const PROXY4_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const PROXY6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);

/// Listener ports.
pub const PORT4: u16 = 8080;
pub const PORT6: u16 = 8086;

/// How long any single wait may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long the final ACK of a handshake gets to create the child socket
/// before [`Ctx::open_ack`] concludes that the kernel dropped it (generous
/// for TCG; a drop the listener reports ends the wait early).
pub const ACK_WAIT: Duration = Duration::from_secs(3);

/// What became of a handshake's final ACK sent without payload.
pub enum AckFate {
    /// It created the child: what the server sees (the token was read back
    /// from the accepted socket) and the open client end.
    Created(ServerView, Connection),
    /// Nothing to accept within [`ACK_WAIT`]: the kernel discarded the
    /// segment before any socket was created (since Linux 6.7 it does so
    /// for option lists tcp_do_parse_auth_options() rejects). The server's
    /// end is still a request sock; the client end is open.
    Dropped {
        /// The client end, established on our side.
        conn: Connection,
        /// How much the listener's drop count (SO_MEMINFO) rose, if known.
        listener_drops: Option<u64>,
    },
}

/// Shared state of a run.
pub struct Ctx {
    pub kmod: Kmod,
    pub peer: Peer,
    peer_b: Option<Peer>,
    pub l4: Listener,
    pub l6: Listener,
    /// Connections for the concurrency case.
    pub count: usize,
    next_client: AtomicU32,
    next_token: AtomicU32,
}

impl Ctx {
    pub fn new(kmod: Kmod, count: usize) -> Result<Ctx, String> {
        let _ = toa_install::peer::set_link_up("lo");
        let peer = Peer::open(&PeerConfig::new("toa0").ipv4(LOCAL4, 24).ipv6(LOCAL6, 64))
            .map_err(|e| e.to_string())?;
        Ok(Ctx {
            kmod,
            peer,
            peer_b: None,
            l4: Listener::open(Family::V4, PORT4)?,
            l6: Listener::open(Family::V6, PORT6)?,
            count,
            next_client: AtomicU32::new(0),
            next_token: AtomicU32::new(0),
        })
    }

    /// The second tun (192.0.2.1/24, 2001:db8:1::1/64), created on first use.
    pub fn peer_b(&mut self) -> Result<Peer, String> {
        if self.peer_b.is_none() {
            let p = Peer::open(
                &PeerConfig::new("toa1")
                    .ipv4(LOCAL4_B, 24)
                    .ipv6(LOCAL6_B, 64),
            )
            .map_err(|e| e.to_string())?;
            self.peer_b = Some(p);
        }
        Ok(self.peer_b.clone().unwrap())
    }

    pub fn listener(&self, f: Family) -> &Listener {
        match f {
            Family::V4 => &self.l4,
            Family::V6 => &self.l6,
        }
    }

    /// A fresh injected client address: 203.0.113.x or 2001:db8:c::x, each
    /// with its own port.
    pub fn client(&self, v6: bool) -> SocketAddr {
        client_addr(self.next_client.fetch_add(1, Ordering::Relaxed), v6)
    }

    /// With the module under test, `addr`; with `--no-module`, nothing is
    /// ever honoured.
    pub fn honour(&self, addr: SocketAddr) -> Option<SocketAddr> {
        self.kmod.enabled.then_some(addr)
    }

    pub fn stats(&self) -> Result<Option<Stats>, String> {
        self.kmod.stats()
    }

    /// Wait (up to 5 s) until sum(ip6_address_alloc) == sum(ip6_address_free)
    /// (records are freed through RCU when sockets are destroyed).
    pub fn settle_records(&self, ck: &mut Check) {
        if !self.kmod.enabled {
            return;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            match self.stats() {
                Ok(Some(s)) => {
                    let (a, f) = (s.get("ip6_address_alloc"), s.get("ip6_address_free"));
                    if a == f {
                        return;
                    }
                    if Instant::now() >= deadline {
                        ck.fail(format!(
                            "ip6_address_alloc {a} != ip6_address_free {f} after 5 s"
                        ));
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    ck.fail(e);
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Open a connection from `proxy` to listener `fam` whose final ACK
    /// carries `options`, accept it, and compare what the server sees with
    /// `expect_client` (`None`: the proxy's own address). The server socket
    /// is then aborted (SO_LINGER 0) and the client forgotten.
    pub fn probe(
        &self,
        ck: &mut Check,
        label: &str,
        fam: Family,
        proxy: IpAddr,
        options: &[u8],
        expect_client: Option<SocketAddr>,
    ) {
        let Some((view, conn)) = self.open(ck, label, &self.peer, fam, proxy, options) else {
            return;
        };
        expect_view(
            ck,
            label,
            fam,
            &view,
            conn.local_addr(),
            conn.remote_addr(),
            expect_client,
            !self.kmod.enabled,
        );
        let ServerView { fd, .. } = view;
        abort_close(fd);
        conn.forget();
    }

    /// Like [`Ctx::probe`] but returns the open connection's two ends.
    pub fn open(
        &self,
        ck: &mut Check,
        label: &str,
        peer: &Peer,
        fam: Family,
        proxy: IpAddr,
        options: &[u8],
    ) -> Option<(ServerView, Connection)> {
        let l = self.listener(fam);
        l.drain();
        let dst_ip: IpAddr = match proxy {
            IpAddr::V4(_) if peer.name() == "toa1" => LOCAL4_B.into(),
            IpAddr::V4(_) => LOCAL4.into(),
            IpAddr::V6(_) if peer.name() == "toa1" => LOCAL6_B.into(),
            IpAddr::V6(_) => LOCAL6.into(),
        };
        let token = self.token();
        let spec = ConnectSpec::new(SocketAddr::new(proxy, 0), SocketAddr::new(dst_ip, l.port))
            .ack_options(options.to_vec())
            .payload(token.clone().into_bytes())
            .close(CloseMode::Hold)
            .timeout(WAIT);
        let conn = match self.peer_connect(peer, &spec) {
            Ok(c) => c,
            Err(e) => {
                ck.fail(format!("{label}: connect: {e}"));
                return None;
            }
        };
        let (fd, accepted) = match l.accept(WAIT) {
            Ok(x) => x,
            Err(e) => {
                ck.fail(format!("{label}: {e}"));
                return None;
            }
        };
        check_token(ck, label, &fd, &token);
        Some((ServerView::of(fd, accepted), conn))
    }

    /// Open a connection from `proxy` to listener `fam` whose final ACK
    /// carries `options` and no payload, then see whether that ACK created
    /// the child: poll the listener for up to [`ACK_WAIT`] (stopping early
    /// if the listener counts a drop). When it did, send a token, accept and
    /// check the token ([`AckFate::Created`]); otherwise return the held
    /// client ([`AckFate::Dropped`]), to be completed with
    /// [`Ctx::complete`].
    pub fn open_ack(
        &self,
        ck: &mut Check,
        label: &str,
        fam: Family,
        proxy: IpAddr,
        options: &[u8],
    ) -> Option<AckFate> {
        let l = self.listener(fam);
        l.drain();
        let dst_ip: IpAddr = match proxy {
            IpAddr::V4(_) => LOCAL4.into(),
            IpAddr::V6(_) => LOCAL6.into(),
        };
        let spec = ConnectSpec::new(SocketAddr::new(proxy, 0), SocketAddr::new(dst_ip, l.port))
            .ack_options(options.to_vec())
            .close(CloseMode::Hold)
            .timeout(WAIT);
        let drops_before = l.drops();
        let conn = match self.peer_connect(&self.peer, &spec) {
            Ok(c) => c,
            Err(e) => {
                ck.fail(format!("{label}: connect: {e}"));
                return None;
            }
        };
        let deadline = Instant::now() + ACK_WAIT;
        let created = loop {
            if wait_fd(l.raw(), libc::POLLIN, Duration::from_millis(50)) {
                break true;
            }
            let dropped = matches!((drops_before, l.drops()), (Some(a), Some(b)) if b > a);
            if dropped || Instant::now() >= deadline {
                // One last look, in case the child came with the drop count.
                break wait_fd(l.raw(), libc::POLLIN, Duration::ZERO);
            }
        };
        if !created {
            let listener_drops = match (drops_before, l.drops()) {
                (Some(a), Some(b)) => Some(b.wrapping_sub(a)),
                _ => None,
            };
            return Some(AckFate::Dropped {
                conn,
                listener_drops,
            });
        }
        self.complete(ck, label, fam, conn)
            .map(|(view, conn)| AckFate::Created(view, conn))
    }

    /// Send a token on `conn` in a plain data segment (no options), accept
    /// on listener `fam` and read the token back from the accepted socket.
    /// For an [`AckFate::Dropped`] connection, that segment is what
    /// completes the handshake.
    pub fn complete(
        &self,
        ck: &mut Check,
        label: &str,
        fam: Family,
        mut conn: Connection,
    ) -> Option<(ServerView, Connection)> {
        let token = self.token();
        if let Err(e) = conn.send(token.as_bytes()) {
            ck.fail(format!("{label}: send: {e}"));
            return None;
        }
        let (fd, accepted) = match self.listener(fam).accept(WAIT) {
            Ok(x) => x,
            Err(e) => {
                ck.fail(format!("{label}: {e}"));
                return None;
            }
        };
        check_token(ck, label, &fd, &token);
        Some((ServerView::of(fd, accepted), conn))
    }

    fn token(&self) -> String {
        format!(
            "probe {}\n",
            self.next_token.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn peer_connect(&self, peer: &Peer, spec: &ConnectSpec) -> Result<Connection, String> {
        peer.connect(spec).map_err(|e| e.to_string())
    }
}

/// Read `token` from the accepted socket: it proves the accepted
/// connection is the one just opened.
fn check_token(ck: &mut Check, label: &str, fd: &OwnedFd, token: &str) {
    let (got, _) = read_some(fd.as_raw_fd(), token.len(), WAIT);
    if got != token.as_bytes() {
        ck.fail(format!(
            "{label}: accepted socket read {:?}, expected {:?} (wrong connection?)",
            String::from_utf8_lossy(&got),
            token
        ));
    }
}

/// The n-th injected client address.
pub fn client_addr(n: u32, v6: bool) -> SocketAddr {
    let host = (n % 250 + 1) as u8;
    let port = (1024 + n % 60000) as u16;
    if v6 {
        SocketAddr::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, u16::from(host)).into(),
            port,
        )
    } else {
        SocketAddr::new(Ipv4Addr::new(203, 0, 113, host).into(), port)
    }
}

/// What accept()/getpeername() must return on listener `fam` for a
/// connection from `proxy` when the TOA carries `client` (SPEC 2.2).
pub fn expected_peer(fam: Family, proxy: SocketAddr, client: Option<SocketAddr>) -> RawAddr {
    let a = client.unwrap_or(proxy);
    match (fam, a) {
        (Family::V4, SocketAddr::V4(_)) => RawAddr::of(a),
        (Family::V4, SocketAddr::V6(_)) => RawAddr::of(a), // sockaddr_in6, len 28
        (Family::V6, SocketAddr::V4(v4)) => RawAddr::of(SocketAddr::new(
            IpAddr::V6(v4.ip().to_ipv6_mapped()),
            v4.port(),
        )),
        (Family::V6, SocketAddr::V6(_)) => RawAddr::of(a),
    }
}

/// What getsockname() must return: the local address, unchanged.
pub fn expected_local(fam: Family, local: SocketAddr) -> RawAddr {
    expected_peer(fam, local, None)
}

fn same(a: &RawAddr, b: &RawAddr) -> bool {
    a.len == b.len && a.family == b.family && a.addr == b.addr
}

/// Compare a server view with SPEC 2.2.
#[allow(clippy::too_many_arguments)]
pub fn expect_view(
    ck: &mut Check,
    label: &str,
    fam: Family,
    view: &ServerView,
    proxy: SocketAddr,
    local: SocketAddr,
    client: Option<SocketAddr>,
    no_module: bool,
) {
    // The eBPF backend cannot change a sockaddr's family: an IPv6 client on
    // an AF_INET socket keeps the proxy there (SPEC 2.2, documented
    // difference) and is served through getsockopt only.
    let family_fits = !(fam == Family::V4 && matches!(client, Some(SocketAddr::V6(_))));
    let peer_client = if crate::ebpf::active() && !family_fits {
        None
    } else {
        client
    };
    let want = expected_peer(fam, proxy, peer_client);
    if !same(&view.accept, &want) {
        ck.fail(format!(
            "{label}: accept() gave {}, want {want}",
            view.accept
        ));
    }
    match &view.peer {
        Ok(p) if same(p, &want) => {}
        Ok(p) => ck.fail(format!("{label}: getpeername() gave {p}, want {want}")),
        Err(e) => ck.fail(format!("{label}: getpeername() failed: {}", errname(*e))),
    }
    let want_local = expected_local(fam, local);
    match &view.local {
        Ok(p) if same(p, &want_local) => {}
        Ok(p) => ck.fail(format!(
            "{label}: getsockname() gave {p}, want {want_local}"
        )),
        Err(e) => ck.fail(format!("{label}: getsockname() failed: {}", errname(*e))),
    }
    match (client, &view.lookup) {
        (Some(c @ SocketAddr::V6(_)), Ok(got)) if got.ip() == c.ip() && got.port() == c.port() => {}
        (Some(c @ SocketAddr::V6(_)), r) => ck.fail(format!(
            "{label}: getsockopt(TOA_SO_GET_LOOKUP) gave {}, want {c}",
            show_lookup(r)
        )),
        (_, Err(e)) if *e == crate::ebpf::lookup_none_errno() => {}
        // Without the module the option does not exist at all.
        (_, Err(_)) if no_module => {}
        (_, r) => ck.fail(format!(
            "{label}: getsockopt(TOA_SO_GET_LOOKUP) gave {}, want {}",
            show_lookup(r),
            errname(crate::ebpf::lookup_none_errno())
        )),
    }
}

fn show_lookup(r: &Result<SocketAddr, i32>) -> String {
    match r {
        Ok(a) => a.to_string(),
        Err(e) if *e < 0 => format!("a result of {} bytes", -e),
        Err(e) => errname(*e),
    }
}

/// A counter expectation.
#[derive(Clone, Copy, Debug)]
pub enum Delta {
    /// Rose by exactly n.
    Exactly(u64),
    /// Rose by at least n.
    AtLeast(u64),
}

/// Collected failures of one case.
#[derive(Default)]
pub struct Check {
    pub fails: Vec<String>,
}

impl Check {
    pub fn fail(&mut self, m: impl Into<String>) {
        self.fails.push(m.into());
    }

    /// Compare counter deltas (skipped with `--no-module`).
    pub fn deltas(
        &mut self,
        label: &str,
        before: &Option<Stats>,
        after: &Option<Stats>,
        want: &[(&str, Delta)],
    ) {
        let (Some(b), Some(a)) = (before, after) else {
            return;
        };
        for (name, d) in want {
            let got = a.get(name).wrapping_sub(b.get(name));
            let ok = match d {
                Delta::Exactly(n) => got == *n,
                Delta::AtLeast(n) => got >= *n,
            };
            if !ok {
                self.fail(format!("{label}: {name} rose by {got}, want {d:?}"));
            }
        }
    }

    pub fn done(self) -> Result<(), String> {
        if self.fails.is_empty() {
            Ok(())
        } else {
            Err(self.fails.join("; "))
        }
    }
}

/// Read the counters, recording a failure if that fails.
pub fn snap(ctx: &Ctx, ck: &mut Check) -> Option<Stats> {
    match ctx.stats() {
        Ok(s) => s,
        Err(e) => {
            ck.fail(e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn spec_2_2_rows() {
        let proxy4 = sa("198.51.100.2:20000");
        let proxy6 = sa("[2001:db8::2]:20000");
        let c4 = sa("203.0.113.7:51000");
        let c6 = sa("[2001:db8:c::7]:51000");
        // AF_INET + IPv4: sockaddr_in with the client.
        assert_eq!(expected_peer(Family::V4, proxy4, Some(c4)), RawAddr::of(c4));
        assert_eq!(RawAddr::of(c4).len, 16);
        // AF_INET6 + IPv6: sockaddr_in6 with the client.
        assert_eq!(expected_peer(Family::V6, proxy6, Some(c6)), RawAddr::of(c6));
        // AF_INET6 + IPv4: v4-mapped.
        let m = expected_peer(Family::V6, proxy4, Some(c4));
        assert_eq!((m.family, m.len), (libc::AF_INET6, 28));
        assert_eq!(m.addr, Some(("::ffff:203.0.113.7".parse().unwrap(), 51000)));
        assert_eq!(m.canonical(), Some(c4));
        // AF_INET + IPv6: sockaddr_in6, length 28.
        let x = expected_peer(Family::V4, proxy4, Some(c6));
        assert_eq!((x.family, x.len), (libc::AF_INET6, 28));
        // No TOA: the proxy, mapped on the AF_INET6 listener.
        assert_eq!(expected_peer(Family::V4, proxy4, None), RawAddr::of(proxy4));
        let p = expected_peer(Family::V6, proxy4, None);
        assert_eq!(
            p.addr,
            Some(("::ffff:198.51.100.2".parse().unwrap(), 20000))
        );
    }

    #[test]
    fn injected_addresses_stay_in_documentation_ranges() {
        for n in [0, 1, 249, 250, 9999, 1_000_000] {
            let a = client_addr(n, false);
            assert!(a.to_string().starts_with("203.0.113."));
            let b = client_addr(n, true);
            assert!(b.to_string().starts_with("[2001:db8:c::"));
        }
        assert_ne!(client_addr(1, false), client_addr(2, false));
    }
}

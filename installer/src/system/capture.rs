//! A live look at the handshakes arriving for some TCP ports: an AF_PACKET
//! socket with a classic BPF filter (no libpcap), and the per-flow state that
//! finds the one segment of each connection the kernel reads TOA from.
//!
//! What is matched (SPEC §2.1: the option is read from the segment that
//! completes the three-way handshake, where the kernel creates the child):
//! - in the kernel, the filter keeps incoming (not locally sent) unfragmented
//!   IPv4 and IPv6 TCP segments to one of the ports whose flags, ignoring
//!   FIN/PSH/URG/ECE/CWR, are exactly SYN or exactly ACK, truncated to
//!   [`SNAP_LEN`] bytes (the largest IPv4 + TCP header). IPv6 extension
//!   headers are not followed: such segments are not seen.
//! - here, [`FlowTracker`] remembers each SYN (client ISN) and reports the
//!   first ACK of the same flow whose sequence number is ISN + 1: the final
//!   ACK of the handshake. A SYN with data and a Fast Open cookie is reported
//!   itself (the kernel may create the child from it) and its flow forgotten.
//!   Connections whose SYN came before the capture started are not reported.
//!   At most [`MAX_PENDING`] half-open flows are remembered, each for
//!   [`PENDING_TTL`]; SYNs beyond that are counted, not tracked, so a SYN
//!   flood cannot grow memory.

use std::collections::HashMap;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use thiserror::Error;

mod filter;
pub use filter::filter_program;

/// Bytes kept of each matching packet: a 60-byte IPv4 header and a 60-byte
/// TCP header (an IPv6 one is 40 + 60).
pub const SNAP_LEN: u32 = 120;
/// Ports one capture watches at most (the filter's jumps must stay short).
pub const MAX_PORTS: usize = 32;
/// Half-open flows remembered at most.
pub const MAX_PENDING: usize = 65_536;
/// How long a SYN waits for its final ACK.
pub const PENDING_TTL: Duration = Duration::from_secs(30);

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_TCP: u8 = 6;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
/// Option kind of TCP Fast Open (RFC 7413).
const TCPOPT_FASTOPEN: u8 = 34;
const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;

/// Why capturing failed, with what to do about it.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// More ports than one filter holds.
    #[error("at most {MAX_PORTS} ports can be watched at once, {0} were given")]
    TooManyPorts(usize),
    /// No port given.
    #[error("no port to watch: give at least one --port")]
    NoPorts,
    /// The packet socket could not be made (not root: no CAP_NET_RAW).
    #[error(
        "cannot open a packet socket (AF_PACKET): {0}; watching traffic needs root (CAP_NET_RAW)"
    )]
    Socket(io::Error),
    /// The kernel refused the filter.
    #[error("the kernel refused the packet filter (SO_ATTACH_FILTER): {0}")]
    Filter(io::Error),
    /// Reading packets failed.
    #[error("reading captured packets failed: {0}")]
    Receive(io::Error),
}

/// The segment a connection's TOA is read from, as captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The sender (the proxy, when there is one).
    pub src: SocketAddr,
    /// The local address and watched port.
    pub dst: SocketAddr,
    /// The TCP option area, unparsed.
    pub options: Vec<u8>,
    /// Reported from a Fast Open SYN rather than a final ACK.
    pub fast_open: bool,
}

/// The parts of a captured TCP segment the tracker needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// TCP flags.
    pub flags: u8,
    /// The option area.
    pub options: Vec<u8>,
    /// Payload bytes the IP header announces (the capture keeps none).
    pub payload_len: usize,
}

/// One option of a TCP option area, or where the area stops making sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// A well-formed option (never NOP or EOL): kind, length byte, payload.
    Option {
        /// The kind byte.
        kind: u8,
        /// The whole option, kind and length bytes included.
        bytes: &'a [u8],
    },
    /// A length below 2 or past the end of the area: the walk ends here.
    Malformed,
}

/// Walks an option area as the kernel's `tcp_parse_options` does (SPEC
/// §2.1): EOL ends it, NOP advances one byte, an option with a length below
/// 2 or running past the end yields [`TcpOption::Malformed`] and ends it,
/// every other option is yielded whole.
pub fn tcp_options(area: &[u8]) -> impl Iterator<Item = TcpOption<'_>> {
    let mut off = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        while !done && off < area.len() {
            match area[off] {
                TCPOPT_EOL => done = true,
                TCPOPT_NOP => off += 1,
                kind => {
                    let len = area.get(off + 1).map(|l| usize::from(*l));
                    match len {
                        Some(len) if len >= 2 && len <= area.len() - off => {
                            let bytes = &area[off..off + len];
                            off += len;
                            return Some(TcpOption::Option { kind, bytes });
                        }
                        _ => {
                            done = true;
                            return Some(TcpOption::Malformed);
                        }
                    }
                }
            }
        }
        None
    })
}

/// Parses a captured network-layer packet (`proto` is its EtherType). `None`
/// for anything but a whole TCP header: not TCP, a fragment, truncated.
pub fn parse_seen(proto: u16, p: &[u8]) -> Option<Seen> {
    let (src, dst, tcp, tcp_total): (IpAddr, IpAddr, &[u8], usize) = match proto {
        ETH_P_IP => {
            if p.len() < 20 || p[0] >> 4 != 4 || p[9] != IPPROTO_TCP {
                return None;
            }
            if u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0 {
                return None;
            }
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            if ihl < 20 || total < ihl || p.len() < ihl {
                return None;
            }
            let s = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let d = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            (s.into(), d.into(), &p[ihl..], total - ihl)
        }
        ETH_P_IPV6 => {
            if p.len() < 40 || p[0] >> 4 != 6 || p[6] != IPPROTO_TCP {
                return None;
            }
            let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
            let s = Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).ok()?);
            let d = Ipv6Addr::from(<[u8; 16]>::try_from(&p[24..40]).ok()?);
            (s.into(), d.into(), &p[40..], plen)
        }
        _ => return None,
    };
    if tcp.len() < 20 {
        return None;
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    if doff < 20 || doff > tcp.len() || doff > tcp_total {
        return None;
    }
    Some(Seen {
        src: SocketAddr::new(src, u16::from_be_bytes([tcp[0], tcp[1]])),
        dst: SocketAddr::new(dst, u16::from_be_bytes([tcp[2], tcp[3]])),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        flags: tcp[13],
        options: tcp[20..doff].to_vec(),
        payload_len: tcp_total - doff,
    })
}

struct Pending {
    isn: u32,
    since: Instant,
}

/// Half-open flows from their SYN to the final ACK (bounded, see the module
/// documentation).
pub struct FlowTracker {
    pending: HashMap<(SocketAddr, SocketAddr), Pending>,
    capacity: usize,
    ttl: Duration,
    untracked: u64,
}

impl FlowTracker {
    /// A tracker holding at most `capacity` flows for `ttl` each.
    pub fn new(capacity: usize, ttl: Duration) -> FlowTracker {
        FlowTracker {
            pending: HashMap::new(),
            capacity,
            ttl,
            untracked: 0,
        }
    }

    /// SYNs not tracked because the table was full.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Half-open flows remembered now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes one segment seen at `now`; returns the handshake it completes.
    pub fn observe(&mut self, seg: &Seen, now: Instant) -> Option<Handshake> {
        let key = (seg.src, seg.dst);
        match seg.flags & (TCP_SYN | TCP_ACK | TCP_RST) {
            TCP_SYN => {
                let fast_open = seg.payload_len > 0
                    && tcp_options(&seg.options).any(|o| {
                        matches!(o, TcpOption::Option { kind: TCPOPT_FASTOPEN, bytes } if bytes.len() > 2)
                    });
                if fast_open {
                    self.pending.remove(&key);
                    return Some(handshake(seg, true));
                }
                if !self.pending.contains_key(&key) && self.pending.len() >= self.capacity {
                    let ttl = self.ttl;
                    self.pending
                        .retain(|_, p| now.saturating_duration_since(p.since) < ttl);
                }
                if self.pending.contains_key(&key) || self.pending.len() < self.capacity {
                    self.pending.insert(
                        key,
                        Pending {
                            isn: seg.seq,
                            since: now,
                        },
                    );
                } else {
                    self.untracked += 1;
                }
                None
            }
            TCP_ACK => {
                let p = self.pending.get(&key)?;
                if p.isn.wrapping_add(1) != seg.seq {
                    return None;
                }
                let fresh = now.saturating_duration_since(p.since) < self.ttl;
                self.pending.remove(&key);
                fresh.then(|| handshake(seg, false))
            }
            _ => None,
        }
    }
}

fn handshake(seg: &Seen, fast_open: bool) -> Handshake {
    Handshake {
        src: seg.src,
        dst: seg.dst,
        options: seg.options.clone(),
        fast_open,
    }
}

/// What a capture saw besides the handshakes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets the filter passed and this process read.
    pub packets: u64,
    /// Packets the kernel dropped because this process read too slowly.
    pub kernel_drops: u64,
    /// SYNs not tracked because too many flows were half open.
    pub untracked: u64,
}

/// A packet socket watching some ports.
pub struct Capture {
    fd: OwnedFd,
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

impl Capture {
    /// Opens the socket with the filter for `ports`. Packets are queued only
    /// from here on: the socket is bound to every protocol after the filter
    /// is attached, so nothing unfiltered slips in.
    pub fn open(ports: &[u16]) -> Result<Capture, CaptureError> {
        let program = filter_program(ports)?;
        // SAFETY: plain socket(2); the result is checked.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(CaptureError::Socket(last_error()));
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let prog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `program`, alive for the call; the kernel copies it.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(CaptureError::Filter(last_error()));
        }
        // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(CaptureError::Socket(last_error()));
        }
        Ok(Capture { fd })
    }

    /// Watches for `duration`, calling `on` with each handshake.
    pub fn run(
        &self,
        duration: Duration,
        mut on: impl FnMut(Handshake),
    ) -> Result<CaptureStats, CaptureError> {
        let mut tracker = FlowTracker::new(MAX_PENDING, PENDING_TTL);
        let mut stats = CaptureStats::default();
        let deadline = Instant::now() + duration;
        let mut buf = [0u8; SNAP_LEN as usize];
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wait = (deadline - now).min(Duration::from_millis(250));
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as libc::c_int) };
            if n < 0 {
                let e = last_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(CaptureError::Receive(e));
            }
            if n == 0 {
                continue;
            }
            // SAFETY: an all-zero sockaddr_ll is valid for the kernel to fill.
            let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
            let mut from_len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf` and `from` are valid for the lengths passed.
            let got = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut from_len,
                )
            };
            if got < 0 {
                let e = last_error();
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) {
                    continue;
                }
                return Err(CaptureError::Receive(e));
            }
            stats.packets += 1;
            let proto = u16::from_be(from.sll_protocol);
            if let Some(seen) = parse_seen(proto, &buf[..got as usize]) {
                if let Some(h) = tracker.observe(&seen, Instant::now()) {
                    on(h);
                }
            }
        }
        stats.untracked = tracker.untracked();
        stats.kernel_drops = self.kernel_drops()?;
        Ok(stats)
    }

    fn kernel_drops(&self) -> Result<u64, CaptureError> {
        // SAFETY: all-zero tpacket_stats is valid for the kernel to fill.
        let mut st: libc::tpacket_stats = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `st` is valid for `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(CaptureError::Receive(last_error()));
        }
        Ok(u64::from(st.tp_drops))
    }
}

#[cfg(test)]
mod tests;

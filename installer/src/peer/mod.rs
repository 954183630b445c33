//! A hand-made TCP client over a tun device.
//!
//! [`Peer::open`] creates a tun device (`IFF_TUN | IFF_NO_PI`), brings it up
//! and gives it an IPv4 and/or IPv6 address. The kernel then routes the
//! device's prefixes into it, so [`Peer::connect`] can play any host on those
//! prefixes (an L4 proxy such as `198.51.100.2` or `2001:db8::2`) and open a
//! TCP connection to a local listener, writing the IP packets itself:
//!
//! * the SYN carries only an MSS option (no timestamps, SACK or window
//!   scaling, so nothing is negotiated that could interfere);
//! * the final ACK of the handshake carries exactly the option bytes given
//!   in [`ConnectSpec::ack_options`] (a TOA option, a malformed one, two of
//!   them, ...), padded with EOL to a multiple of 4;
//! * then the optional payload, and the chosen [`CloseMode`].
//!
//! Sequence numbers are tracked properly, so this works with SYN cookies.
//! Every wait is bounded by [`ConnectSpec::timeout`]. Several connections may
//! be in flight on one peer (packets are sorted by 4-tuple), and a [`Peer`]
//! can be cloned and used from several threads.
//!
//! ```no_run
//! use toa_install::peer::{toa_option, CloseMode, ConnectSpec, Peer, PeerConfig};
//! # fn main() -> Result<(), toa_install::peer::PeerError> {
//! let peer = Peer::open(&PeerConfig::new("toa0").ipv4("198.51.100.1".parse().unwrap(), 24))?;
//! let spec = ConnectSpec::new("198.51.100.2:0".parse().unwrap(), "198.51.100.1:8080".parse().unwrap())
//!     .ack_options(toa_option(254, "203.0.113.7:51000".parse().unwrap()))
//!     .payload(b"hello".to_vec())
//!     .close(CloseMode::Hold);
//! let conn = peer.connect(&spec)?;
//! // ... accept() on the listener returns 203.0.113.7:51000 with toa.ko loaded ...
//! conn.abort()?;
//! # Ok(()) }
//! ```

mod conn;
mod packet;
mod tun;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use conn::Connection;
pub use packet::{
    checksum, flags, pad_options, parse_packet, tcp_checksum_v4, tcp_checksum_v6, toa_option,
    ParseError, Segment, MAX_OPTIONS,
};
pub use tun::{set_link_up, Tun};

/// What went wrong, phrased so that the next step is clear.
#[derive(Debug)]
pub enum PeerError {
    /// `/dev/net/tun` is absent or the tun driver is not loaded.
    TunMissing,
    /// The operation needs CAP_NET_ADMIN.
    NotPermitted(String),
    /// Interface name empty, too long or with odd characters.
    BadName(String),
    /// A malformed address or prefix length.
    BadAddress(String),
    /// The device has no IPv6 configuration (IPv6 disabled).
    Ipv6Unavailable(String),
    /// Option bytes that cannot be put in a TCP header.
    BadOptions(String),
    /// Source and destination are of different address families.
    FamilyMismatch {
        /// Source given.
        src: SocketAddr,
        /// Destination given.
        dst: SocketAddr,
    },
    /// A connection with the same 4-tuple is already open on this peer.
    FlowBusy(SocketAddr, SocketAddr),
    /// Nothing came in time.
    Timeout {
        /// Our end.
        local: SocketAddr,
        /// The server's end.
        remote: SocketAddr,
        /// What we were waiting for.
        waiting_for: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// The server reset the connection.
    Reset {
        /// Our end.
        local: SocketAddr,
        /// The server's end.
        remote: SocketAddr,
        /// In which step.
        during: &'static str,
    },
    /// The connection was already closed or reset.
    Closed,
    /// Any other system call failure.
    Io {
        /// What we were doing.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl PeerError {
    pub(crate) fn from_io(what: String, source: io::Error) -> PeerError {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => PeerError::NotPermitted(what),
            _ => PeerError::Io { what, source },
        }
    }
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::TunMissing => write!(
                f,
                "/dev/net/tun missing: load the tun module (modprobe tun) or create the node (mknod /dev/net/tun c 10 200)"
            ),
            PeerError::NotPermitted(what) => {
                write!(f, "cannot {what}: permission denied (run as root / with CAP_NET_ADMIN)")
            }
            PeerError::BadName(n) => write!(
                f,
                "bad interface name {n:?}: use 1 to 15 letters, digits, '-', '_' or '.'"
            ),
            PeerError::BadAddress(a) => write!(f, "bad address or prefix {a}"),
            PeerError::Ipv6Unavailable(n) => write!(
                f,
                "interface {n} has no IPv6 configuration: IPv6 is disabled (ipv6.disable=1 or net.ipv6.conf.*.disable_ipv6=1)"
            ),
            PeerError::BadOptions(m) => write!(f, "bad TCP options: {m}"),
            PeerError::FamilyMismatch { src, dst } => write!(
                f,
                "source {src} and destination {dst} are of different address families"
            ),
            PeerError::FlowBusy(l, r) => {
                write!(f, "a connection {l} -> {r} is already open on this peer")
            }
            PeerError::Timeout {
                local,
                remote,
                waiting_for,
                after,
            } => write!(
                f,
                "{local} -> {remote}: no {waiting_for} within {after:?} (is a listener there, and is the address routed to the tun?)"
            ),
            PeerError::Reset {
                local,
                remote,
                during,
            } => write!(f, "{local} -> {remote}: reset by the server during {during}"),
            PeerError::Closed => write!(f, "the connection is already closed"),
            PeerError::Io { what, source } => write!(f, "cannot {what}: {source}"),
        }
    }
}

impl std::error::Error for PeerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PeerError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How a connection opened by [`Peer::connect`] ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseMode {
    /// Send FIN, wait for the server's FIN and acknowledge it, so that the
    /// server's socket really closes (the server must close its end).
    Fin,
    /// Send RST right away.
    Rst,
    /// Keep the connection open; the caller closes the returned
    /// [`Connection`] (dropping it sends RST).
    Hold,
}

/// One connection to open.
#[derive(Clone, Debug)]
pub struct ConnectSpec {
    /// Our address (anything routed to the tun); port 0 picks a free port.
    pub src: SocketAddr,
    /// The listener.
    pub dst: SocketAddr,
    /// Raw option bytes for the final ACK, at most 40; padded with EOL.
    pub ack_options: Vec<u8>,
    /// Sent after the handshake (PSH|ACK), if not empty.
    pub payload: Vec<u8>,
    /// What to do after the payload.
    pub close: CloseMode,
    /// Bound on each wait (SYN-ACK, server FIN, ...).
    pub timeout: Duration,
}

impl ConnectSpec {
    /// A connection from `src` to `dst` without options or payload, closed
    /// with FIN, waiting at most 5 s for each answer.
    pub fn new(src: SocketAddr, dst: SocketAddr) -> ConnectSpec {
        ConnectSpec {
            src,
            dst,
            ack_options: Vec::new(),
            payload: Vec::new(),
            close: CloseMode::Fin,
            timeout: Duration::from_secs(5),
        }
    }

    /// Set the final ACK's option bytes.
    pub fn ack_options(mut self, o: Vec<u8>) -> Self {
        self.ack_options = o;
        self
    }

    /// Set the payload.
    pub fn payload(mut self, p: Vec<u8>) -> Self {
        self.payload = p;
        self
    }

    /// Set the close mode.
    pub fn close(mut self, c: CloseMode) -> Self {
        self.close = c;
        self
    }

    /// Set the per-wait timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
}

/// How to set up the tun device of a [`Peer`].
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// The host side's IPv4 address and prefix length.
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// The host side's IPv6 address and prefix length.
    pub ipv6: Option<(Ipv6Addr, u8)>,
}

impl PeerConfig {
    /// A device called `name`, no addresses yet.
    pub fn new(name: &str) -> PeerConfig {
        PeerConfig {
            name: name.to_string(),
            ipv4: None,
            ipv6: None,
        }
    }

    /// Give the device this IPv4 address/prefix.
    pub fn ipv4(mut self, addr: Ipv4Addr, prefix: u8) -> Self {
        self.ipv4 = Some((addr, prefix));
        self
    }

    /// Give the device this IPv6 address/prefix (DAD switched off).
    pub fn ipv6(mut self, addr: Ipv6Addr, prefix: u8) -> Self {
        self.ipv6 = Some((addr, prefix));
        self
    }
}

/// A tun device and the TCP connections played through it. Cheap to clone;
/// clones share the device. The device is removed when the last clone and
/// the last [`Connection`] are dropped.
#[derive(Clone)]
pub struct Peer {
    shared: Arc<conn::Shared>,
}

impl Peer {
    /// Create the tun device, bring it up and assign the addresses.
    pub fn open(cfg: &PeerConfig) -> Result<Peer, PeerError> {
        let tun = Tun::create(&cfg.name)?;
        tun.set_up()?;
        if let Some((a, p)) = cfg.ipv4 {
            tun.add_ipv4(a, p)?;
        }
        if let Some((a, p)) = cfg.ipv6 {
            tun.add_ipv6(a, p)?;
        }
        Ok(Peer::from_tun(tun))
    }

    /// Use a tun device configured by the caller.
    pub fn from_tun(tun: Tun) -> Peer {
        Peer {
            shared: Arc::new(conn::Shared::new(tun)),
        }
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        self.shared.tun.name()
    }

    /// Packets read from the device that belonged to no open connection
    /// (router solicitations, MLD reports, late retransmissions...).
    pub fn stray_packets(&self) -> u64 {
        self.shared.stray_packets()
    }

    /// Open a connection as described by `spec`: handshake, final ACK with
    /// the option bytes, payload, then the close mode. With
    /// [`CloseMode::Hold`] the returned connection is open; otherwise it is
    /// already closed and only tells what was exchanged.
    pub fn connect(&self, spec: &ConnectSpec) -> Result<Connection, PeerError> {
        let src = SocketAddr::new(spec.src.ip().to_canonical(), spec.src.port());
        let dst = SocketAddr::new(spec.dst.ip().to_canonical(), spec.dst.port());
        if matches!(
            (src.ip(), dst.ip()),
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_))
        ) {
            return Err(PeerError::FamilyMismatch { src, dst });
        }
        let options = pad_options(&spec.ack_options)?;
        let mut c = Connection::handshake(&self.shared, src, dst, options, spec.timeout)?;
        if !spec.payload.is_empty() {
            c.send(&spec.payload)?;
        }
        match spec.close {
            CloseMode::Hold => {}
            CloseMode::Fin => {
                c.shutdown_write()?;
                c.await_peer_close()?;
            }
            CloseMode::Rst => c.reset()?,
        }
        Ok(c)
    }
}

//! The connection state machine and the demultiplexer that sorts packets
//! read from the tun into per-connection queues.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::packet::{flags, parse_packet, Segment};
use super::{PeerError, Tun};

/// (our address, the server's address)
type FlowKey = (SocketAddr, SocketAddr);

/// Segments kept per connection before the oldest are dropped.
const QUEUE_CAP: usize = 1024;
/// How often an unanswered SYN is sent again.
const SYN_RETRY: Duration = Duration::from_millis(1000);
/// Our receive window (no scaling is offered).
const WINDOW: u16 = 65535;
/// Range of source ports picked when the spec says port 0.
const PORT_BASE: u32 = 20000;
const PORT_SPAN: u32 = 40000;

struct Demux {
    /// A thread is polling the device; others wait on the condvar.
    reading: bool,
    flows: HashMap<FlowKey, VecDeque<Segment>>,
    stray: u64,
    buf: Vec<u8>,
}

pub(crate) struct Shared {
    pub(crate) tun: Tun,
    demux: Mutex<Demux>,
    arrived: Condvar,
    next_port: AtomicU32,
    ip_id: AtomicU16,
    rng: AtomicU64,
}

fn lock(m: &Mutex<Demux>) -> MutexGuard<'_, Demux> {
    // A panic elsewhere must not wedge every other connection.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn new(tun: Tun) -> Shared {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (u64::from(std::process::id()) << 32)
            ^ (&tun as *const Tun as u64);
        Shared {
            tun,
            demux: Mutex::new(Demux {
                reading: false,
                flows: HashMap::new(),
                stray: 0,
                buf: vec![0; 65536],
            }),
            arrived: Condvar::new(),
            next_port: AtomicU32::new((seed % u64::from(PORT_SPAN)) as u32),
            ip_id: AtomicU16::new(seed as u16),
            rng: AtomicU64::new(seed),
        }
    }

    pub(crate) fn stray_packets(&self) -> u64 {
        lock(&self.demux).stray
    }

    /// A 32-bit random number (splitmix64), for initial sequence numbers.
    fn random(&self) -> u32 {
        let mut z = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u32
    }

    /// Register a flow; picks a source port when `src` has port 0.
    fn register(&self, src: SocketAddr, dst: SocketAddr) -> Result<SocketAddr, PeerError> {
        let mut d = lock(&self.demux);
        if src.port() != 0 {
            if d.flows.contains_key(&(src, dst)) {
                return Err(PeerError::FlowBusy(src, dst));
            }
            d.flows.insert((src, dst), VecDeque::new());
            return Ok(src);
        }
        for _ in 0..PORT_SPAN {
            let n = self.next_port.fetch_add(1, Ordering::Relaxed) % PORT_SPAN;
            let local = SocketAddr::new(src.ip(), (PORT_BASE + n) as u16);
            if let std::collections::hash_map::Entry::Vacant(e) = d.flows.entry((local, dst)) {
                e.insert(VecDeque::new());
                return Ok(local);
            }
        }
        Err(PeerError::FlowBusy(src, dst))
    }

    fn unregister(&self, key: &FlowKey) {
        lock(&self.demux).flows.remove(key);
    }

    fn send(&self, seg: &Segment) -> Result<(), PeerError> {
        let id = self.ip_id.fetch_add(1, Ordering::Relaxed);
        let p = seg.to_packet(id)?;
        self.tun
            .write_packet(&p)
            .map_err(|e| PeerError::from_io(format!("write a packet to {}", self.tun.name()), e))
    }

    /// Read whatever the device has and sort it into the flow queues.
    fn drain(&self, d: &mut Demux) -> Result<(), PeerError> {
        loop {
            let Demux {
                buf, flows, stray, ..
            } = d;
            let n = match self.tun.read_packet(buf) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(PeerError::from_io(
                        format!("read from {}", self.tun.name()),
                        e,
                    ))
                }
            };
            match parse_packet(&buf[..n]) {
                Ok(seg) => match flows.get_mut(&(seg.dst, seg.src)) {
                    Some(q) => {
                        if q.len() >= QUEUE_CAP {
                            q.pop_front();
                        }
                        q.push_back(seg);
                    }
                    None => *stray += 1,
                },
                Err(_) => *stray += 1,
            }
        }
    }

    /// The next segment of flow `key`, or `None` once `deadline` passes.
    fn recv(&self, key: &FlowKey, deadline: Instant) -> Result<Option<Segment>, PeerError> {
        let mut d = lock(&self.demux);
        loop {
            if let Some(seg) = d.flows.get_mut(key).and_then(|q| q.pop_front()) {
                return Ok(Some(seg));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let left = deadline - now;
            if d.reading {
                d = self
                    .arrived
                    .wait_timeout(d, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            // Read whatever is already there before sleeping.
            let r = self.drain(&mut d);
            if r.is_err() || d.flows.get(key).is_some_and(|q| !q.is_empty()) {
                self.arrived.notify_all();
                r?;
                continue;
            }
            d.reading = true;
            drop(d);
            let ms = left.as_millis().clamp(1, 200) as i32;
            let polled = self.tun.wait_readable(ms);
            d = lock(&self.demux);
            let r = match polled {
                Ok(true) => self.drain(&mut d),
                Ok(false) => Ok(()),
                Err(e) => Err(PeerError::from_io(format!("poll {}", self.tun.name()), e)),
            };
            d.reading = false;
            self.arrived.notify_all();
            r?;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Established,
    /// Our FIN is sent.
    FinSent,
    /// Closed by both FINs, by our RST or by the server's.
    Closed,
}

/// One hand-made TCP connection. Dropping an open connection sends RST.
pub struct Connection {
    shared: Arc<Shared>,
    local: SocketAddr,
    remote: SocketAddr,
    /// The padded option bytes of the final ACK, sent again if the server
    /// repeats its SYN-ACK.
    ack_options: Vec<u8>,
    snd_nxt: u32,
    snd_una: u32,
    rcv_nxt: u32,
    mss: usize,
    state: State,
    peer_fin: bool,
    received: Vec<u8>,
    timeout: Duration,
}

impl Connection {
    /// SYN, SYN-ACK, ACK carrying `options` (already padded).
    pub(crate) fn handshake(
        shared: &Arc<Shared>,
        src: SocketAddr,
        dst: SocketAddr,
        options: Vec<u8>,
        timeout: Duration,
    ) -> Result<Connection, PeerError> {
        let local = shared.register(src, dst)?;
        let isn = shared.random();
        let mut c = Connection {
            shared: Arc::clone(shared),
            local,
            remote: dst,
            ack_options: options,
            snd_nxt: isn.wrapping_add(1),
            snd_una: isn,
            rcv_nxt: 0,
            mss: 536,
            state: State::Closed, // until the SYN-ACK: dropping sends nothing
            peer_fin: false,
            received: Vec::new(),
            timeout,
        };
        let our_mss: u16 = if dst.is_ipv4() { 1460 } else { 1440 };
        let syn = Segment {
            src: local,
            dst,
            seq: isn,
            ack: 0,
            flags: flags::SYN,
            window: WINDOW,
            options: {
                let m = our_mss.to_be_bytes();
                vec![2, 4, m[0], m[1]]
            },
            payload: Vec::new(),
        };
        let key = (local, dst);
        let deadline = Instant::now() + timeout;
        let mut next_syn = Instant::now();
        let synack = loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(c.timeout_error("SYN-ACK"));
            }
            if now >= next_syn {
                shared.send(&syn)?;
                next_syn = now + SYN_RETRY;
            }
            let Some(seg) = shared.recv(&key, next_syn.min(deadline))? else {
                continue;
            };
            if seg.has(flags::RST) {
                return Err(PeerError::Reset {
                    local,
                    remote: dst,
                    during: "the handshake (is anything listening there?)",
                });
            }
            if seg.has(flags::SYN | flags::ACK) && seg.ack == isn.wrapping_add(1) {
                break seg;
            }
        };
        c.rcv_nxt = synack.seq.wrapping_add(1);
        c.snd_una = synack.ack;
        if let Some(m) = synack.mss() {
            c.mss = usize::from(m.clamp(64, 1440));
        }
        c.state = State::Established;
        c.send_ack(true)?;
        Ok(c)
    }

    /// Our end (with the port actually used).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server's end.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Data the server sent so far.
    pub fn received(&self) -> &[u8] {
        &self.received
    }

    /// Whether the server has sent its FIN.
    pub fn peer_closed(&self) -> bool {
        self.peer_fin
    }

    /// Whether the connection is over (both FINs, or a reset).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn timeout_error(&self, waiting_for: &'static str) -> PeerError {
        PeerError::Timeout {
            local: self.local,
            remote: self.remote,
            waiting_for,
            after: self.timeout,
        }
    }

    fn segment(&self, fl: u8, options: Vec<u8>, payload: Vec<u8>) -> Segment {
        Segment {
            src: self.local,
            dst: self.remote,
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: fl,
            window: WINDOW,
            options,
            payload,
        }
    }

    /// A bare ACK; `with_options` for the handshake's final ACK.
    fn send_ack(&self, with_options: bool) -> Result<(), PeerError> {
        let o = if with_options {
            self.ack_options.clone()
        } else {
            Vec::new()
        };
        self.shared.send(&self.segment(flags::ACK, o, Vec::new()))
    }

    /// Send data (PSH|ACK segments of at most the server's MSS). Not
    /// retransmitted: the tun does not lose packets.
    pub fn send(&mut self, data: &[u8]) -> Result<(), PeerError> {
        if self.state != State::Established {
            return Err(PeerError::Closed);
        }
        for chunk in data.chunks(self.mss) {
            let seg = self.segment(flags::PSH | flags::ACK, Vec::new(), chunk.to_vec());
            self.shared.send(&seg)?;
            self.snd_nxt = self.snd_nxt.wrapping_add(chunk.len() as u32);
        }
        Ok(())
    }

    /// Handle one segment from the server: take in-order data, answer with
    /// ACKs, note FIN and RST.
    fn process(&mut self, seg: Segment) -> Result<(), PeerError> {
        if seg.has(flags::RST) {
            self.state = State::Closed;
            return Err(PeerError::Reset {
                local: self.local,
                remote: self.remote,
                during: "the connection",
            });
        }
        if seg.has(flags::SYN) {
            // The server did not see our final ACK: repeat it, options too.
            if seg.has(flags::ACK) && !self.peer_fin {
                return self.send_ack(true);
            }
            return Ok(());
        }
        if seg.has(flags::ACK)
            && seq_after(seg.ack, self.snd_una)
            && !seq_after(seg.ack, self.snd_nxt)
        {
            self.snd_una = seg.ack;
        }
        let mut need_ack = false;
        if !seg.payload.is_empty() {
            need_ack = true;
            if seg.seq == self.rcv_nxt {
                self.received.extend_from_slice(&seg.payload);
                self.rcv_nxt = self.rcv_nxt.wrapping_add(seg.payload.len() as u32);
            }
        }
        if seg.has(flags::FIN) {
            need_ack = true;
            let fin_seq = seg.seq.wrapping_add(seg.payload.len() as u32);
            if fin_seq == self.rcv_nxt && !self.peer_fin {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                self.peer_fin = true;
            }
        }
        if need_ack {
            self.send_ack(false)?;
        }
        if self.state == State::FinSent && self.peer_fin && self.snd_una == self.snd_nxt {
            self.state = State::Closed;
        }
        Ok(())
    }

    /// Handle whatever the server sends for up to `wait`.
    pub fn pump(&mut self, wait: Duration) -> Result<(), PeerError> {
        let deadline = Instant::now() + wait;
        let key = (self.local, self.remote);
        while let Some(seg) = self.shared.recv(&key, deadline)? {
            self.process(seg)?;
        }
        Ok(())
    }

    /// Send our FIN (half close).
    pub fn shutdown_write(&mut self) -> Result<(), PeerError> {
        if self.state != State::Established {
            return Err(PeerError::Closed);
        }
        let seg = self.segment(flags::FIN | flags::ACK, Vec::new(), Vec::new());
        self.shared.send(&seg)?;
        self.snd_nxt = self.snd_nxt.wrapping_add(1);
        self.state = State::FinSent;
        Ok(())
    }

    /// Wait for the server's FIN (taking and acknowledging any data before
    /// it) and for our FIN to be acknowledged; the server's socket is then
    /// gone (or in TIME_WAIT if the server closed first).
    pub fn await_peer_close(&mut self) -> Result<(), PeerError> {
        if self.state == State::Established {
            self.shutdown_write()?;
        }
        let deadline = Instant::now() + self.timeout;
        let key = (self.local, self.remote);
        while self.state != State::Closed {
            match self.shared.recv(&key, deadline)? {
                Some(seg) => self.process(seg)?,
                None => return Err(self.timeout_error("FIN from the server")),
            }
        }
        Ok(())
    }

    /// Send RST now.
    pub fn reset(&mut self) -> Result<(), PeerError> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.state = State::Closed;
        let seg = self.segment(flags::RST | flags::ACK, Vec::new(), Vec::new());
        self.shared.send(&seg)
    }

    /// Close with FIN (waiting for the server's) and release the flow.
    pub fn close(mut self) -> Result<(), PeerError> {
        self.await_peer_close()
    }

    /// Reset and release the flow.
    pub fn abort(mut self) -> Result<(), PeerError> {
        self.reset()
    }

    /// Release the flow without sending anything (e.g. the server already
    /// reset the connection).
    pub fn forget(mut self) {
        self.state = State::Closed;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.reset();
        self.shared.unregister(&(self.local, self.remote));
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("state", &self.state)
            .field("snd_nxt", &self.snd_nxt)
            .field("rcv_nxt", &self.rcv_nxt)
            .finish()
    }
}

/// `a` is after `b` in sequence space.
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::seq_after;

    #[test]
    fn sequence_comparison_wraps() {
        assert!(seq_after(1, 0));
        assert!(!seq_after(0, 1));
        assert!(!seq_after(5, 5));
        assert!(seq_after(2, u32::MAX - 1));
        assert!(!seq_after(u32::MAX - 1, 2));
    }
}

//! IPv4/IPv6 + TCP segments: building, parsing and checksums.
//!
//! Only what a hand-made TCP client needs: no IP options, no fragments, no
//! IPv6 extension headers (a packet carrying them is simply not TCP to us).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::PeerError;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;

/// TCP header flags.
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
}

/// Longest TCP option area (60-byte header less the fixed 20).
pub const MAX_OPTIONS: usize = 40;

/// One TCP segment with its addresses, as built or as parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags ([`flags`]).
    pub flags: u8,
    /// Receive window (unscaled).
    pub window: u16,
    /// Raw option area (a multiple of 4 bytes when built by [`Segment::to_packet`]).
    pub options: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Segment {
    /// True when every bit of `f` is set.
    pub fn has(&self, f: u8) -> bool {
        self.flags & f == f
    }

    /// Sequence space this segment occupies (payload, plus one for SYN and FIN).
    pub fn seq_len(&self) -> u32 {
        self.payload.len() as u32
            + u32::from(self.has(flags::SYN))
            + u32::from(self.has(flags::FIN))
    }

    /// The MSS option value, when the segment carries one.
    pub fn mss(&self) -> Option<u16> {
        let o = &self.options;
        let mut i = 0;
        while i < o.len() {
            match o[i] {
                0 => return None,
                1 => i += 1,
                kind => {
                    let len = *o.get(i + 1)? as usize;
                    if len < 2 || i + len > o.len() {
                        return None;
                    }
                    if kind == 2 && len == 4 {
                        return Some(u16::from_be_bytes([o[i + 2], o[i + 3]]));
                    }
                    i += len;
                }
            }
        }
        None
    }

    /// Serialize into a whole IP packet, checksums included.
    ///
    /// Fails when the addresses are of different families or the option area
    /// is longer than 40 bytes or not a multiple of 4 (see [`pad_options`]).
    pub fn to_packet(&self, ip_id: u16) -> Result<Vec<u8>, PeerError> {
        if self.options.len() > MAX_OPTIONS || !self.options.len().is_multiple_of(4) {
            return Err(PeerError::BadOptions(format!(
                "option area of {} bytes: must be a multiple of 4 and at most {MAX_OPTIONS}",
                self.options.len()
            )));
        }
        let tcp = self.tcp_bytes();
        match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut tcp = tcp;
                let c = tcp_checksum_v4(s, d, &tcp);
                tcp[16..18].copy_from_slice(&c.to_be_bytes());
                let mut p = ipv4_header(s, d, ip_id, tcp.len());
                p.extend_from_slice(&tcp);
                Ok(p)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut tcp = tcp;
                let c = tcp_checksum_v6(&s, &d, &tcp);
                tcp[16..18].copy_from_slice(&c.to_be_bytes());
                let mut p = ipv6_header(&s, &d, tcp.len());
                p.extend_from_slice(&tcp);
                Ok(p)
            }
            _ => Err(PeerError::FamilyMismatch {
                src: self.src,
                dst: self.dst,
            }),
        }
    }

    /// The TCP header and payload, checksum field zero.
    fn tcp_bytes(&self) -> Vec<u8> {
        let hlen = 20 + self.options.len();
        let mut t = Vec::with_capacity(hlen + self.payload.len());
        t.extend_from_slice(&self.src.port().to_be_bytes());
        t.extend_from_slice(&self.dst.port().to_be_bytes());
        t.extend_from_slice(&self.seq.to_be_bytes());
        t.extend_from_slice(&self.ack.to_be_bytes());
        t.push(((hlen / 4) as u8) << 4);
        t.push(self.flags);
        t.extend_from_slice(&self.window.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        t.extend_from_slice(&self.options);
        t.extend_from_slice(&self.payload);
        t
    }
}

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, id: u16, tcp_len: usize) -> Vec<u8> {
    let total = (20 + tcp_len) as u16;
    let mut h = Vec::with_capacity(20 + tcp_len);
    h.extend_from_slice(&[0x45, 0]);
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0x40, 0]); // don't fragment
    h.extend_from_slice(&[64, IPPROTO_TCP, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn ipv6_header(src: &Ipv6Addr, dst: &Ipv6Addr, tcp_len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(40 + tcp_len);
    h.extend_from_slice(&[0x60, 0, 0, 0]);
    h.extend_from_slice(&(tcp_len as u16).to_be_bytes());
    h.extend_from_slice(&[IPPROTO_TCP, 64]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        let mut bytes = *part;
        if let Some(hi) = odd.take() {
            if let Some((&lo, rest)) = bytes.split_first() {
                sum += u64::from(u16::from_be_bytes([hi, lo]));
                bytes = rest;
            } else {
                odd = Some(hi);
                continue;
            }
        }
        let mut chunks = bytes.chunks_exact(2);
        for c in &mut chunks {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            odd = Some(*last);
        }
    }
    if let Some(hi) = odd {
        sum += u64::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// TCP checksum with the IPv4 pseudo-header; `tcp` is header plus payload.
pub fn tcp_checksum_v4(src: Ipv4Addr, dst: Ipv4Addr, tcp: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = IPPROTO_TCP;
    pseudo[10..12].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
    checksum(&[&pseudo, tcp])
}

/// TCP checksum with the IPv6 pseudo-header; `tcp` is header plus payload.
pub fn tcp_checksum_v6(src: &Ipv6Addr, dst: &Ipv6Addr, tcp: &[u8]) -> u16 {
    let mut pseudo = [0u8; 40];
    pseudo[0..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    pseudo[32..36].copy_from_slice(&(tcp.len() as u32).to_be_bytes());
    pseudo[39] = IPPROTO_TCP;
    checksum(&[&pseudo, tcp])
}

/// Why a packet read from the tun is not a TCP segment we can use.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not IPv4/IPv6, or cut short.
    Truncated,
    /// Another protocol (ICMP, UDP, an extension header, ...).
    NotTcp,
    /// A checksum did not verify.
    BadChecksum,
}

/// Parse one IP packet (as read from an `IFF_TUN|IFF_NO_PI` device).
///
/// Checksums are verified: the kernel computes them in software for a tun
/// without offloads, so a bad one means a bug.
pub fn parse_packet(p: &[u8]) -> Result<Segment, ParseError> {
    let version = p.first().ok_or(ParseError::Truncated)? >> 4;
    let (src_ip, dst_ip, tcp): (IpAddr, IpAddr, &[u8]) = match version {
        4 => {
            if p.len() < 20 {
                return Err(ParseError::Truncated);
            }
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            if ihl < 20 || total < ihl || p.len() < total {
                return Err(ParseError::Truncated);
            }
            if p[9] != IPPROTO_TCP {
                return Err(ParseError::NotTcp);
            }
            // Fragments are not ours.
            if u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0 {
                return Err(ParseError::NotTcp);
            }
            if checksum(&[&p[..ihl]]) != 0 {
                return Err(ParseError::BadChecksum);
            }
            let s = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let d = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            let tcp = &p[ihl..total];
            if tcp.len() >= 20 && tcp_checksum_v4(s, d, tcp) != 0 {
                return Err(ParseError::BadChecksum);
            }
            (s.into(), d.into(), tcp)
        }
        6 => {
            if p.len() < 40 {
                return Err(ParseError::Truncated);
            }
            let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
            if p.len() < 40 + plen {
                return Err(ParseError::Truncated);
            }
            if p[6] != IPPROTO_TCP {
                return Err(ParseError::NotTcp);
            }
            let s = Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap());
            let d = Ipv6Addr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap());
            let tcp = &p[40..40 + plen];
            if tcp.len() >= 20 && tcp_checksum_v6(&s, &d, tcp) != 0 {
                return Err(ParseError::BadChecksum);
            }
            (s.into(), d.into(), tcp)
        }
        _ => return Err(ParseError::Truncated),
    };
    if tcp.len() < 20 {
        return Err(ParseError::Truncated);
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    if doff < 20 || doff > tcp.len() {
        return Err(ParseError::Truncated);
    }
    Ok(Segment {
        src: SocketAddr::new(src_ip, u16::from_be_bytes([tcp[0], tcp[1]])),
        dst: SocketAddr::new(dst_ip, u16::from_be_bytes([tcp[2], tcp[3]])),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        flags: tcp[13],
        window: u16::from_be_bytes([tcp[14], tcp[15]]),
        options: tcp[20..doff].to_vec(),
        payload: tcp[doff..].to_vec(),
    })
}

/// A TOA option: `[kind, 8, port, IPv4]` or `[kind, 20, port, IPv6]`, in
/// network byte order. Nothing is checked: any kind may be used.
pub fn toa_option(kind: u8, client: SocketAddr) -> Vec<u8> {
    let mut o = Vec::with_capacity(20);
    match client.ip() {
        IpAddr::V4(a) => {
            o.extend_from_slice(&[kind, 8]);
            o.extend_from_slice(&client.port().to_be_bytes());
            o.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            o.extend_from_slice(&[kind, 20]);
            o.extend_from_slice(&client.port().to_be_bytes());
            o.extend_from_slice(&a.octets());
        }
    }
    o
}

/// Pad raw option bytes with EOL (0) to a multiple of 4; fails above 40 bytes.
pub fn pad_options(raw: &[u8]) -> Result<Vec<u8>, PeerError> {
    let padded = raw.len().div_ceil(4) * 4;
    if padded > MAX_OPTIONS {
        return Err(PeerError::BadOptions(format!(
            "{} option bytes pad to {padded}, more than the {MAX_OPTIONS} a TCP header holds",
            raw.len()
        )));
    }
    let mut v = raw.to_vec();
    v.resize(padded, 0);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc1071_style_vectors() {
        // The classic IPv4 header example: checksum 0xb861.
        let h = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
        assert_eq!(checksum(&[&h]), 0xb861);
        // RFC 1071 section 3 sample data: sum 0xddf2, checksum 0x220d.
        let d = hex("0001 f203 f4f5 f6f7");
        assert_eq!(checksum(&[&d]), 0x220d);
        // Split at an odd boundary gives the same result.
        assert_eq!(checksum(&[&d[..3], &d[3..5], &[], &d[5..]]), 0x220d);
        // Odd length: the last byte is padded with zero.
        assert_eq!(checksum(&[&[0x01]]), !0x0100);
    }

    // A SYN from 198.51.100.2:40000 to 198.51.100.1:8080, seq 1, MSS 1460,
    // window 65535. Checksums computed independently (Python, by hand).
    const SYN_V4: &str = "4500 002c 0001 4000 4006 e660 c633 6402 c633 6401
                          9c40 1f90 0000 0001 0000 0000 6002 ffff 87ea 0000
                          0204 05b4";

    fn syn_v4() -> Segment {
        Segment {
            src: "198.51.100.2:40000".parse().unwrap(),
            dst: "198.51.100.1:8080".parse().unwrap(),
            seq: 1,
            ack: 0,
            flags: flags::SYN,
            window: 65535,
            options: vec![2, 4, 0x05, 0xb4],
            payload: vec![],
        }
    }

    #[test]
    fn build_ipv4_syn_matches_vector() {
        assert_eq!(syn_v4().to_packet(1).unwrap(), hex(SYN_V4));
    }

    #[test]
    fn parse_ipv4_syn_vector() {
        let s = parse_packet(&hex(SYN_V4)).unwrap();
        assert_eq!(s, syn_v4());
        assert_eq!(s.mss(), Some(1460));
        assert_eq!(s.seq_len(), 1);
    }

    // ACK+PSH from [2001:db8::2]:40000 to [2001:db8::1]:8086 with a TOA
    // option (254, 20, port 51000, 2001:db8:c::7) and payload "hi".
    const ACK_V6: &str = "6000 0000 002a 0640
        2001 0db8 0000 0000 0000 0000 0000 0002
        2001 0db8 0000 0000 0000 0000 0000 0001
        9c40 1f96 0000 0064 0000 00c8 a018 ffff ebbb 0000
        fe14 c738 2001 0db8 000c 0000 0000 0000 0000 0007
        6869";

    fn ack_v6() -> Segment {
        Segment {
            src: "[2001:db8::2]:40000".parse().unwrap(),
            dst: "[2001:db8::1]:8086".parse().unwrap(),
            seq: 100,
            ack: 200,
            flags: flags::ACK | flags::PSH,
            window: 65535,
            options: toa_option(254, "[2001:db8:c::7]:51000".parse().unwrap()),
            payload: b"hi".to_vec(),
        }
    }

    #[test]
    fn build_ipv6_matches_vector() {
        assert_eq!(ack_v6().to_packet(0).unwrap(), hex(ACK_V6));
    }

    #[test]
    fn parse_ipv6_vector() {
        let s = parse_packet(&hex(ACK_V6)).unwrap();
        assert_eq!(s, ack_v6());
        assert_eq!(s.seq_len(), 2);
        assert!(s.has(flags::ACK | flags::PSH));
        assert!(!s.has(flags::SYN));
    }

    #[test]
    fn corrupted_packets_are_rejected() {
        let mut p = hex(SYN_V4);
        p[30] ^= 1; // a TCP byte
        assert_eq!(parse_packet(&p), Err(ParseError::BadChecksum));
        let mut p = hex(SYN_V4);
        p[8] = 63; // TTL: IP header checksum
        assert_eq!(parse_packet(&p), Err(ParseError::BadChecksum));
        let mut p = hex(ACK_V6);
        p[60] ^= 0x80;
        assert_eq!(parse_packet(&p), Err(ParseError::BadChecksum));
        assert_eq!(parse_packet(&hex(SYN_V4)[..30]), Err(ParseError::Truncated));
        assert_eq!(parse_packet(&[]), Err(ParseError::Truncated));
        // ICMPv6 (next header 58) is not TCP.
        let mut p = hex(ACK_V6);
        p[6] = 58;
        assert_eq!(parse_packet(&p), Err(ParseError::NotTcp));
    }

    #[test]
    fn toa_option_bytes() {
        assert_eq!(
            toa_option(254, "203.0.113.7:51000".parse().unwrap()),
            vec![254, 8, 0xc7, 0x38, 203, 0, 113, 7]
        );
        let v6 = toa_option(253, "[2001:db8:c::7]:443".parse().unwrap());
        assert_eq!(v6.len(), 20);
        assert_eq!(&v6[..4], &[253, 20, 0x01, 0xbb]);
        assert_eq!(
            &v6[4..],
            &"2001:db8:c::7".parse::<Ipv6Addr>().unwrap().octets()
        );
    }

    #[test]
    fn padding() {
        assert_eq!(pad_options(&[]).unwrap(), Vec::<u8>::new());
        assert_eq!(
            pad_options(&[1, 2, 3, 4, 5]).unwrap(),
            vec![1, 2, 3, 4, 5, 0, 0, 0]
        );
        assert_eq!(pad_options(&[9; 40]).unwrap().len(), 40);
        assert!(pad_options(&[9; 41]).is_err());
        let mut s = syn_v4();
        s.options = vec![1, 1, 1];
        assert!(s.to_packet(0).is_err());
    }

    #[test]
    fn mixed_families_are_refused() {
        let mut s = syn_v4();
        s.dst = "[2001:db8::1]:80".parse().unwrap();
        assert!(matches!(
            s.to_packet(0),
            Err(PeerError::FamilyMismatch { .. })
        ));
    }

    #[test]
    fn mss_walk() {
        let mut s = syn_v4();
        s.options = vec![1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 0x05, 0xa0];
        assert_eq!(s.mss(), Some(1440));
        s.options = vec![0, 0, 2, 4, 0x05, 0xa0, 0, 0];
        assert_eq!(s.mss(), None);
        s.options = vec![1, 9, 1, 0];
        assert_eq!(s.mss(), None);
    }
}

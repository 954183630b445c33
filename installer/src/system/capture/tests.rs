use super::*;
use crate::peer::{flags, toa_option, Segment};

/// Runs a classic BPF program the way the kernel does for a packet socket
/// (the subset `filter_program` uses); out-of-bounds loads drop the packet.
fn run_filter(prog: &[libc::sock_filter], pkt: &[u8], proto: u16, pkttype: u8) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let load = |off: u32, size: usize| -> Option<u32> {
        let off = off as i32;
        if off == libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL {
            return Some(u32::from(proto));
        }
        if off == libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE {
            return Some(u32::from(pkttype));
        }
        let off = usize::try_from(off).ok()?;
        let b = pkt.get(off..off + size)?;
        Some(b.iter().fold(0u32, |v, byte| (v << 8) | u32::from(*byte)))
    };
    loop {
        let i = prog[pc];
        let c = u32::from(i.code);
        pc += 1;
        let size = |c: u32| match c & 0x18 {
            x if x == libc::BPF_W => 4,
            x if x == libc::BPF_H => 2,
            _ => 1,
        };
        let class = c & 0x07;
        if class == libc::BPF_LD {
            let off = if c & 0xe0 == libc::BPF_IND {
                x.wrapping_add(i.k)
            } else {
                i.k
            };
            match load(off, size(c)) {
                Some(v) => a = v,
                None => return 0,
            }
        } else if class == libc::BPF_LDX {
            if c & 0xe0 == libc::BPF_MSH {
                match load(i.k, 1) {
                    Some(v) => x = (v & 0x0f) * 4,
                    None => return 0,
                }
            } else {
                assert_eq!(c & 0xe0, libc::BPF_IMM, "ldx mode");
                x = i.k;
            }
        } else if class == libc::BPF_ALU {
            assert_eq!(c & 0xf0, libc::BPF_AND);
            a &= i.k;
        } else if class == libc::BPF_JMP {
            let op = c & 0xf0;
            if op == libc::BPF_JA {
                pc += i.k as usize;
                continue;
            }
            let taken = if op == libc::BPF_JEQ {
                a == i.k
            } else {
                assert_eq!(op, libc::BPF_JSET, "jump op");
                a & i.k != 0
            };
            pc += usize::from(if taken { i.jt } else { i.jf });
        } else {
            assert_eq!(class, libc::BPF_RET, "class");
            return i.k;
        }
    }
}

fn v4(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn seg(src: &str, dst: &str, seq: u32, f: u8, options: Vec<u8>, payload: &[u8]) -> Segment {
    Segment {
        src: v4(src),
        dst: v4(dst),
        seq,
        ack: 0,
        flags: f,
        window: 1000,
        options,
        payload: payload.to_vec(),
    }
}

fn packet(s: &Segment) -> Vec<u8> {
    s.to_packet(1).unwrap()
}

const PROXY: &str = "198.51.100.2:40000";
const SERVER: &str = "192.0.2.1:8080";
const PROXY6: &str = "[2001:db8::2]:40000";
const SERVER6: &str = "[2001:db8::1]:8080";

fn toa(client: &str) -> Vec<u8> {
    crate::peer::pad_options(&toa_option(254, client.parse().unwrap())).unwrap()
}

#[test]
fn the_filter_keeps_syns_and_acks_to_the_ports() {
    let prog = filter_program(&[443, 8080]).unwrap();
    let host = libc::PACKET_HOST;
    let ip = 0x0800u16;
    let cases: &[(u8, &str, u32)] = &[
        (flags::SYN, SERVER, SNAP_LEN),
        (flags::ACK, SERVER, SNAP_LEN),
        (flags::ACK | flags::PSH, SERVER, SNAP_LEN),
        (flags::ACK | flags::FIN, SERVER, SNAP_LEN),
        (flags::SYN | flags::ACK, SERVER, 0),
        (flags::RST, SERVER, 0),
        (flags::RST | flags::ACK, SERVER, 0),
        (flags::SYN, "192.0.2.1:443", SNAP_LEN),
        (flags::SYN, "192.0.2.1:80", 0),
        (flags::ACK, "192.0.2.1:8081", 0),
    ];
    for (f, dst, want) in cases {
        let p = packet(&seg(PROXY, dst, 1, *f, toa("203.0.113.7:51000"), b""));
        assert_eq!(
            run_filter(&prog, &p, ip, host),
            *want,
            "flags {f:#x} to {dst}"
        );
    }
    // the source port does not count
    let p = packet(&seg(
        "198.51.100.2:8080",
        "192.0.2.1:9",
        1,
        flags::SYN,
        vec![],
        b"",
    ));
    assert_eq!(run_filter(&prog, &p, ip, host), 0);
    // locally sent packets are not the proxy's
    let p = packet(&seg(PROXY, SERVER, 1, flags::SYN, vec![], b""));
    assert_eq!(run_filter(&prog, &p, ip, libc::PACKET_OUTGOING), 0);
    // other protocols and fragments
    assert_eq!(run_filter(&prog, &p, 0x0806, host), 0);
    let mut frag = p.clone();
    frag[6] = 0x20; // more fragments
    assert_eq!(run_filter(&prog, &frag, ip, host), 0);
    let mut later = p.clone();
    later[7] = 0x10; // offset 16 * 8
    assert_eq!(run_filter(&prog, &later, ip, host), 0);
    let mut udp = p.clone();
    udp[9] = 17;
    assert_eq!(run_filter(&prog, &udp, ip, host), 0);
    // IP options move the TCP header: the filter follows the header length
    let mut with_opts = p[..20].to_vec();
    with_opts[0] = 0x46;
    with_opts.extend_from_slice(&[1, 1, 1, 0]);
    with_opts.extend_from_slice(&p[20..]);
    assert_eq!(run_filter(&prog, &with_opts, ip, host), SNAP_LEN);
}

#[test]
fn the_filter_keeps_ipv6_too() {
    let prog = filter_program(&[8080]).unwrap();
    let mk = |f| {
        let mut s = seg(PROXY, SERVER, 7, f, vec![], b"");
        s.src = PROXY6.parse().unwrap();
        s.dst = SERVER6.parse().unwrap();
        packet(&s)
    };
    assert_eq!(
        run_filter(&prog, &mk(flags::SYN), 0x86dd, libc::PACKET_HOST),
        SNAP_LEN
    );
    assert_eq!(
        run_filter(&prog, &mk(flags::ACK), 0x86dd, libc::PACKET_HOST),
        SNAP_LEN
    );
    assert_eq!(
        run_filter(
            &prog,
            &mk(flags::SYN | flags::ACK),
            0x86dd,
            libc::PACKET_HOST
        ),
        0
    );
    let mut ext = mk(flags::SYN);
    ext[6] = 0; // a hop-by-hop header first: not followed
    assert_eq!(run_filter(&prog, &ext, 0x86dd, libc::PACKET_HOST), 0);
}

#[test]
fn the_filter_takes_up_to_max_ports() {
    assert!(matches!(filter_program(&[]), Err(CaptureError::NoPorts)));
    let many: Vec<u16> = (1..=MAX_PORTS as u16 + 1).collect();
    assert!(matches!(
        filter_program(&many),
        Err(CaptureError::TooManyPorts(33))
    ));
    let prog = filter_program(&many[..MAX_PORTS]).unwrap();
    for port in [1u16, MAX_PORTS as u16] {
        let p = packet(&seg(
            PROXY,
            &format!("192.0.2.1:{port}"),
            1,
            flags::SYN,
            vec![],
            b"",
        ));
        assert_eq!(run_filter(&prog, &p, 0x0800, libc::PACKET_HOST), SNAP_LEN);
    }
    let p = packet(&seg(PROXY, "192.0.2.1:33", 1, flags::SYN, vec![], b""));
    assert_eq!(run_filter(&prog, &p, 0x0800, libc::PACKET_HOST), 0);
}

#[test]
fn option_walk_follows_the_kernel() {
    let kinds = |area: &[u8]| -> Vec<Option<u8>> {
        tcp_options(area)
            .map(|o| match o {
                TcpOption::Option { kind, .. } => Some(kind),
                TcpOption::Malformed => None,
            })
            .collect()
    };
    assert_eq!(kinds(&[]), vec![]);
    assert_eq!(kinds(&[1, 1, 1]), vec![]);
    assert_eq!(kinds(&[0, 254, 8, 0, 0, 0, 0, 0, 0]), vec![]);
    assert_eq!(kinds(&[2, 4, 5, 0xb4, 1, 254, 2]), vec![Some(2), Some(254)]);
    assert_eq!(kinds(&[254]), vec![None]);
    assert_eq!(kinds(&[254, 1, 0]), vec![None]);
    assert_eq!(kinds(&[2, 4, 5, 0xb4, 254, 30, 1]), vec![Some(2), None]);
    assert_eq!(kinds(&[2, 2, 0, 7, 0]), vec![Some(2)]);
    let area = [1, 3, 3, 7];
    assert_eq!(
        tcp_options(&area).next(),
        Some(TcpOption::Option {
            kind: 3,
            bytes: &[3, 3, 7]
        })
    );
}

#[test]
fn parse_seen_reads_captured_headers() {
    let s = seg(
        PROXY,
        SERVER,
        42,
        flags::ACK,
        toa("203.0.113.7:51000"),
        b"hello",
    );
    let p = packet(&s);
    let seen = parse_seen(0x0800, &p).unwrap();
    assert_eq!(seen.src, v4(PROXY));
    assert_eq!(seen.dst, v4(SERVER));
    assert_eq!(seen.seq, 42);
    assert_eq!(seen.flags, flags::ACK);
    assert_eq!(seen.options, s.options);
    assert_eq!(seen.payload_len, 5);
    // the snap length cuts payload, never the header
    let cut = &p[..(SNAP_LEN as usize).min(p.len() - 3)];
    assert_eq!(parse_seen(0x0800, cut).unwrap().payload_len, 5);
    // a cut header is not parsed
    assert_eq!(parse_seen(0x0800, &p[..30]), None);
    assert_eq!(parse_seen(0x86dd, &p), None);
    let mut s6 = s.clone();
    s6.src = PROXY6.parse().unwrap();
    s6.dst = SERVER6.parse().unwrap();
    let seen6 = parse_seen(0x86dd, &packet(&s6)).unwrap();
    assert_eq!((seen6.src, seen6.payload_len), (s6.src, 5));
}

fn seen(src: &str, seq: u32, f: u8, options: Vec<u8>, payload: usize) -> Seen {
    Seen {
        src: v4(src),
        dst: v4(SERVER),
        seq,
        flags: f,
        options,
        payload_len: payload,
    }
}

#[test]
fn the_final_ack_completes_a_tracked_syn() {
    let mut t = FlowTracker::new(8, PENDING_TTL);
    let t0 = Instant::now();
    let opts = toa("203.0.113.7:51000");
    assert_eq!(
        t.observe(&seen(PROXY, 99, flags::ACK, opts.clone(), 0), t0),
        None,
        "no SYN seen"
    );
    assert_eq!(
        t.observe(&seen(PROXY, 100, flags::SYN, vec![2, 4, 5, 0xb4], 0), t0),
        None
    );
    assert_eq!(
        t.observe(&seen(PROXY, 5, flags::ACK, opts.clone(), 0), t0),
        None,
        "wrong seq"
    );
    let h = t
        .observe(&seen(PROXY, 101, flags::ACK, opts.clone(), 0), t0)
        .unwrap();
    assert_eq!(
        h,
        Handshake {
            src: v4(PROXY),
            dst: v4(SERVER),
            options: opts.clone(),
            fast_open: false
        }
    );
    assert_eq!(t.pending(), 0);
    // the next data segment of that connection is not a handshake
    assert_eq!(
        t.observe(&seen(PROXY, 101, flags::ACK, opts.clone(), 10), t0),
        None
    );
    // ISN wrap-around
    t.observe(&seen(PROXY, u32::MAX, flags::SYN, vec![], 0), t0);
    assert!(t
        .observe(&seen(PROXY, 0, flags::ACK, vec![], 0), t0)
        .is_some());
}

#[test]
fn a_fast_open_syn_is_the_handshake() {
    let mut t = FlowTracker::new(8, PENDING_TTL);
    let t0 = Instant::now();
    let mut opts = toa("203.0.113.7:51000");
    opts.extend_from_slice(&[34, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
    let h = t
        .observe(&seen(PROXY, 7, flags::SYN, opts.clone(), 100), t0)
        .unwrap();
    assert!(h.fast_open);
    assert_eq!(
        t.observe(&seen(PROXY, 8 + 100, flags::ACK, vec![], 0), t0),
        None
    );
    // a cookie request (no cookie, no data) is an ordinary SYN
    assert_eq!(
        t.observe(&seen(PROXY, 7, flags::SYN, vec![34, 2], 0), t0),
        None
    );
    assert!(
        !t.observe(&seen(PROXY, 8, flags::ACK, vec![], 0), t0)
            .unwrap()
            .fast_open
    );
}

#[test]
fn memory_is_bounded_and_old_syns_expire() {
    let ttl = Duration::from_secs(10);
    let mut t = FlowTracker::new(2, ttl);
    let t0 = Instant::now();
    t.observe(&seen("198.51.100.2:1", 1, flags::SYN, vec![], 0), t0);
    t.observe(&seen("198.51.100.2:2", 1, flags::SYN, vec![], 0), t0);
    t.observe(&seen("198.51.100.2:3", 1, flags::SYN, vec![], 0), t0);
    assert_eq!((t.pending(), t.untracked()), (2, 1));
    // a retransmitted SYN of a tracked flow is still taken
    t.observe(&seen("198.51.100.2:2", 50, flags::SYN, vec![], 0), t0);
    assert_eq!(t.untracked(), 1);
    assert!(t
        .observe(&seen("198.51.100.2:2", 51, flags::ACK, vec![], 0), t0)
        .is_some());
    // once expired, entries make room; a late ACK is not reported
    let later = t0 + ttl + Duration::from_secs(1);
    assert_eq!(
        t.observe(&seen("198.51.100.2:1", 2, flags::ACK, vec![], 0), later),
        None
    );
    t.observe(&seen("198.51.100.2:4", 1, flags::SYN, vec![], 0), t0);
    t.observe(&seen("198.51.100.2:6", 1, flags::SYN, vec![], 0), t0);
    t.observe(&seen("198.51.100.2:5", 1, flags::SYN, vec![], 0), later);
    assert_eq!(t.pending(), 1, "the expired :4 and :6 were purged for :5");
    assert_eq!(t.untracked(), 1);
    assert!(t
        .observe(&seen("198.51.100.2:5", 2, flags::ACK, vec![], 0), later)
        .is_some());
}

//! The tun peer against the running kernel, each test in a private network
//! namespace of its own thread (unshare(CLONE_NEWNET) moves only the calling
//! thread). These need root and /dev/net/tun; without them they fail, loudly,
//! rather than pass without having tested anything.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use toa_install::peer::{toa_option, CloseMode, ConnectSpec, Peer, PeerConfig, PeerError};

fn private_netns() -> bool {
    // SAFETY: plain syscalls.
    if unsafe { libc::geteuid() } != 0 {
        panic!("needs root (CAP_NET_ADMIN) for a network namespace and a tun: run as root");
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        panic!("/dev/net/tun missing: load the tun module (modprobe tun)");
    }
    // SAFETY: affects only this thread (and threads it spawns).
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        panic!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
    }
    true
}

fn peer() -> Peer {
    toa_install::peer::set_link_up("lo").unwrap();
    Peer::open(
        &PeerConfig::new("tpeer0")
            .ipv4("198.51.100.1".parse().unwrap(), 24)
            .ipv6("2001:db8::1".parse().unwrap(), 64),
    )
    .unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Accept `n` connections; for each (in a thread of its own) read to EOF,
/// answer "pong:<data>" and close. Returns the peer addresses.
fn echo_server(l: TcpListener, n: usize) -> std::thread::JoinHandle<Vec<SocketAddr>> {
    std::thread::spawn(move || {
        let mut peers = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..n {
            let (mut s, a) = l.accept().unwrap();
            peers.push(a);
            workers.push(std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut data = Vec::new();
                s.read_to_end(&mut data).unwrap();
                s.write_all(b"pong:").unwrap();
                s.write_all(&data).unwrap();
            }));
        }
        for w in workers {
            w.join().unwrap();
        }
        peers
    })
}

#[test]
fn handshake_data_and_fin_both_families() {
    if !private_netns() {
        return;
    }
    let p = peer();
    for (listen, src, dst) in [
        (
            "198.51.100.1:7001",
            "198.51.100.2:40001",
            "198.51.100.1:7001",
        ),
        (
            "[2001:db8::1]:7002",
            "[2001:db8::2]:40002",
            "[2001:db8::1]:7002",
        ),
        ("[::]:7003", "198.51.100.3:40003", "198.51.100.1:7003"),
    ] {
        let server = echo_server(TcpListener::bind(listen).unwrap(), 1);
        let spec = ConnectSpec::new(sa(src), sa(dst))
            .ack_options(toa_option(254, sa("203.0.113.7:51000")))
            .payload(b"ping".to_vec())
            .close(CloseMode::Fin);
        let c = p.connect(&spec).unwrap();
        assert!(c.is_closed());
        assert_eq!(c.received(), b"pong:ping");
        let peers = server.join().unwrap();
        // No toa.ko here: the server sees the sender itself.
        assert_eq!(peers[0].ip().to_canonical(), sa(src).ip());
        assert_eq!(peers[0].port(), sa(src).port());
    }
}

#[test]
fn reset_timeout_and_bad_options() {
    if !private_netns() {
        return;
    }
    let p = peer();
    let spec = ConnectSpec::new(sa("198.51.100.2:0"), sa("198.51.100.1:9"))
        .timeout(Duration::from_secs(2));
    assert!(matches!(p.connect(&spec), Err(PeerError::Reset { .. })));
    // An address that is not local: nobody answers.
    let t0 = Instant::now();
    let spec = ConnectSpec::new(sa("198.51.100.2:0"), sa("198.51.100.9:80"))
        .timeout(Duration::from_millis(300));
    let e = p.connect(&spec).unwrap_err();
    assert!(matches!(e, PeerError::Timeout { .. }), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    let spec =
        ConnectSpec::new(sa("198.51.100.2:0"), sa("198.51.100.1:9")).ack_options(vec![1; 41]);
    assert!(matches!(p.connect(&spec), Err(PeerError::BadOptions(_))));
    let spec = ConnectSpec::new(sa("198.51.100.2:0"), sa("[2001:db8::1]:9"));
    assert!(matches!(
        p.connect(&spec),
        Err(PeerError::FamilyMismatch { .. })
    ));
}

#[test]
fn many_in_flight_and_threads_share_a_peer() {
    if !private_netns() {
        return;
    }
    let p = peer();
    let l = TcpListener::bind("[::]:7010").unwrap();
    const HELD: usize = 10;
    const THREADS: usize = 4;
    const PER: usize = 50;
    let server = echo_server(l, HELD + THREADS * PER);
    // Hold several open at once, alternating families, then close them in
    // reverse order.
    let mut held = Vec::new();
    for i in 0..HELD {
        let (src, dst) = if i % 2 == 0 {
            ("198.51.100.2:0", "198.51.100.1:7010")
        } else {
            ("[2001:db8::2]:0", "[2001:db8::1]:7010")
        };
        let spec = ConnectSpec::new(sa(src), sa(dst))
            .payload(format!("held{i}").into_bytes())
            .close(CloseMode::Hold);
        held.push(p.connect(&spec).unwrap());
    }
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..PER {
                    let spec = ConnectSpec::new(sa("198.51.100.4:0"), sa("198.51.100.1:7010"))
                        .payload(format!("t{t}c{i}").into_bytes());
                    let c = p.connect(&spec).unwrap();
                    assert_eq!(c.received(), format!("pong:t{t}c{i}").as_bytes());
                }
            })
        })
        .collect();
    for (i, mut c) in held.into_iter().enumerate().rev() {
        c.shutdown_write().unwrap();
        c.await_peer_close().unwrap();
        assert_eq!(c.received(), format!("pong:held{i}").as_bytes());
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.join().unwrap().len(), HELD + THREADS * PER);
}

#[test]
fn works_with_syn_cookies_forced() {
    if !private_netns() {
        return;
    }
    let p = peer();
    // Per network namespace; this thread's namespace is private.
    std::fs::write("/proc/sys/net/ipv4/tcp_syncookies", "2").unwrap();
    let netstat = || {
        let t = std::fs::read_to_string("/proc/thread-self/net/netstat").unwrap();
        let mut l = t.lines().filter(|l| l.starts_with("TcpExt:"));
        let (h, v) = (l.next().unwrap(), l.next().unwrap());
        let i = h
            .split_whitespace()
            .position(|f| f == "SyncookiesSent")
            .unwrap();
        v.split_whitespace().nth(i).unwrap().parse::<u64>().unwrap()
    };
    let sent = netstat();
    let server = echo_server(TcpListener::bind("[::]:7020").unwrap(), 2);
    for (src, dst, opt) in [
        (
            "198.51.100.2:0",
            "198.51.100.1:7020",
            toa_option(254, sa("203.0.113.9:1234")),
        ),
        (
            "[2001:db8::2]:0",
            "[2001:db8::1]:7020",
            toa_option(253, sa("[2001:db8:c::9]:1234")),
        ),
    ] {
        let spec = ConnectSpec::new(sa(src), sa(dst))
            .ack_options(opt)
            .payload(b"cookie".to_vec());
        assert_eq!(p.connect(&spec).unwrap().received(), b"pong:cookie");
    }
    server.join().unwrap();
    assert!(netstat() >= sent + 2, "SYN cookies were not used");
}

#[test]
fn rst_close_and_server_reset() {
    if !private_netns() {
        return;
    }
    let p = peer();
    let l = TcpListener::bind("198.51.100.1:7030").unwrap();
    let spec = ConnectSpec::new(sa("198.51.100.2:0"), sa("198.51.100.1:7030"))
        .payload(b"x".to_vec())
        .close(CloseMode::Rst);
    let c = p.connect(&spec).unwrap();
    assert!(c.is_closed());
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    // The data, then the reset.
    assert_eq!(s.read(&mut buf).unwrap(), 1);
    assert!(s.read(&mut buf).is_err());
    // A held connection sees the server's abortive close as a reset.
    let spec =
        ConnectSpec::new(sa("198.51.100.2:0"), sa("198.51.100.1:7030")).close(CloseMode::Hold);
    let mut c = p.connect(&spec).unwrap();
    let (s, _) = l.accept().unwrap();
    let s = socket_linger0(s);
    drop(s);
    let e = c.await_peer_close().unwrap_err();
    assert!(matches!(e, PeerError::Reset { .. }), "{e}");
}

fn socket_linger0(s: std::net::TcpStream) -> std::net::TcpStream {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a struct linger for SO_LINGER.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            std::mem::size_of_val(&l) as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
    s
}

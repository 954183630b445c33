//! The plumbing of `toa-install verify` against the running kernel, without
//! toa.ko: in a private network namespace, the tun addresses `verify`
//! chooses (the documentation ranges, and those taken from trusted
//! networks: /30, /31, /126, /127) carry a handshake from the proxy to a
//! local listener, and accept() agrees with getpeername(). Without the
//! module the server sees the proxy itself. Like peer_netns.rs these need
//! root and /dev/net/tun and fail loudly without them. The module's part
//! (TOA honoured, counters) runs in the VM.

use std::net::{IpAddr, SocketAddr};
use toa_install::commands::verify::{one_connection, CLIENT4, CLIENT6};
use toa_install::peer::{Peer, PeerConfig};
use toa_install::plan::selftest::{choose, parse_trusted, Addrs};

fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: plain syscalls; unshare affects only this thread.
        if unsafe { libc::geteuid() } != 0 {
            panic!("needs root (CAP_NET_ADMIN) for a network namespace and a tun: run as root");
        }
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
        }
        toa_install::peer::set_link_up("lo").unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn exercise(trusted: &str) {
    let nets = parse_trusted(trusted).unwrap();
    let (a4, a6): (Addrs, Addrs) = choose(&nets);
    let module = std::path::Path::new("/sys/module/toa").exists();
    let trusted = trusted.to_owned();
    in_netns(move || {
        let (IpAddr::V4(l4), IpAddr::V6(l6)) = (a4.local, a6.local) else {
            panic!("families swapped")
        };
        let peer = Peer::open(
            &PeerConfig::new("tverify0")
                .ipv4(l4, a4.prefix)
                .ipv6(l6, a6.prefix),
        )
        .unwrap();
        for (a, port, client) in [(a4, 9080, CLIENT4), (a6, 9086, CLIENT6)] {
            let proxy = SocketAddr::new(a.proxy, 40000);
            let (accepted, peername) = one_connection(&peer, a.local, port, proxy, client)
                .unwrap_or_else(|e| panic!("{trusted:?} {a:?}: {e}"));
            assert_eq!(accepted, peername);
            if !module {
                assert_eq!(accepted, proxy, "{trusted:?}");
            }
        }
    });
}

#[test]
fn default_addresses_carry_a_handshake() {
    exercise("");
}

#[test]
fn addresses_from_trusted_networks_carry_a_handshake() {
    exercise("10.0.0.0/8,2001:db8:5::/48");
    exercise("192.0.2.9,2001:db8::10/128");
    exercise("10.1.2.2/31,2001:db8::/127");
}

//! Many full connections (handshake with TOA, payload, FIN both ways) from
//! one or more client threads, each on its own tun, against the two
//! listeners served by one accept thread each. The client sends the address
//! the server must see as its payload; the server compares.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use toa_install::peer::{toa_option, CloseMode, ConnectSpec, Peer};

use crate::ctx::{client_addr, Ctx, WAIT};
use crate::net::{read_to_eof, Family, Listener};

/// One client thread's tun and addresses.
#[derive(Clone)]
pub struct Client {
    pub peer: Peer,
    pub proxy4: IpAddr,
    pub proxy6: IpAddr,
    pub local4: IpAddr,
    pub local6: IpAddr,
}

/// What happened.
#[derive(Debug, Default)]
pub struct Outcome {
    pub accepted: usize,
    pub mismatches: usize,
    pub first_mismatch: Option<String>,
    pub client_errors: usize,
    pub first_error: Option<String>,
    pub server_errors: usize,
    pub elapsed: Duration,
}

/// Run `total` connections spread over `clients`; the injected addresses
/// are numbered from `first`.
pub fn run(ctx: &Ctx, clients: &[Client], total: usize, first: u32) -> Outcome {
    let stop = AtomicBool::new(false);
    let accepted = AtomicUsize::new(0);
    let server_errors = AtomicUsize::new(0);
    let mismatches = Mutex::new((0usize, None::<String>));
    let errors = Mutex::new((0usize, None::<String>));
    let honour = ctx.kmod.enabled;
    let start = Instant::now();
    std::thread::scope(|s| {
        for l in [&ctx.l4, &ctx.l6] {
            let (stop, accepted, server_errors, mismatches) =
                (&stop, &accepted, &server_errors, &mismatches);
            s.spawn(move || serve(l, stop, accepted, server_errors, mismatches));
        }
        let per = total / clients.len().max(1);
        let mut handles = Vec::new();
        for (k, c) in clients.iter().enumerate() {
            let n = if k == 0 {
                total - per * (clients.len() - 1)
            } else {
                per
            };
            let errors = &errors;
            let base = first + (k * total) as u32;
            handles.push(s.spawn(move || {
                for i in 0..n {
                    if let Err(e) = one(ctx, c, i, base + i as u32, honour) {
                        let mut g = errors.lock().unwrap();
                        g.0 += 1;
                        g.1.get_or_insert(e);
                    }
                }
            }));
        }
        for h in handles {
            let _ = h.join();
        }
        // Let the servers finish what is queued, then stop them.
        let deadline = Instant::now() + WAIT;
        while accepted.load(Ordering::Relaxed) < total && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed();
    let (m, fm) = mismatches.into_inner().unwrap();
    let (e, fe) = errors.into_inner().unwrap();
    Outcome {
        accepted: accepted.into_inner(),
        mismatches: m,
        first_mismatch: fm,
        client_errors: e,
        first_error: fe,
        server_errors: server_errors.into_inner(),
        elapsed,
    }
}

/// The i-th connection of a client: one of four listener/family patterns.
fn one(ctx: &Ctx, c: &Client, i: usize, n: u32, honour: bool) -> Result<(), String> {
    let (fam, v6_proxy, kind, v6_client) = match i % 4 {
        0 => (Family::V4, false, 254, false),
        1 => (Family::V6, true, 253, true),
        2 => (Family::V6, false, 200, false),
        _ => (Family::V6, true, 254, true),
    };
    let client = client_addr(n, v6_client);
    let (proxy, local) = if v6_proxy {
        (c.proxy6, c.local6)
    } else {
        (c.proxy4, c.local4)
    };
    let src = SocketAddr::new(proxy, (10000 + i % 50000) as u16);
    let expect = if honour { client } else { src };
    let spec = ConnectSpec::new(src, SocketAddr::new(local, ctx.listener(fam).port))
        .ack_options(toa_option(kind, client))
        .payload(expect.to_string().into_bytes())
        .close(CloseMode::Fin)
        .timeout(WAIT);
    c.peer
        .connect(&spec)
        .map(|_| ())
        .map_err(|e| format!("connection {i} on {}: {e}", c.peer.name()))
}

fn serve(
    l: &Listener,
    stop: &AtomicBool,
    accepted: &AtomicUsize,
    server_errors: &AtomicUsize,
    mismatches: &Mutex<(usize, Option<String>)>,
) {
    loop {
        let (fd, addr) = match l.accept(Duration::from_millis(50)) {
            Ok(x) => x,
            Err(_) if stop.load(Ordering::Relaxed) => return,
            Err(_) => continue,
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        let Some(data) = read_to_eof(fd.as_raw_fd(), WAIT) else {
            server_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let want = String::from_utf8_lossy(&data);
        let got = addr
            .canonical()
            .map(|a| a.to_string())
            .unwrap_or_else(|| addr.to_string());
        if got != want {
            let mut g = mismatches.lock().unwrap();
            g.0 += 1;
            g.1.get_or_insert(format!("{} accept() gave {got}, want {want}", l.family));
        }
        // Normal close: the client's FIN is in, so this sends our FIN and
        // the socket is gone once the client acknowledges it.
        drop(fd);
    }
}

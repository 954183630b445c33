//! `bench`: the module's cost, measured in one run by alternating rounds
//! with the module loaded and unloaded (medians), timed with CLOCK_MONOTONIC.

use std::mem;
use std::os::fd::AsRawFd;
use std::time::Duration;

use toa_install::peer::{toa_option, Connection};

use crate::ctx::{
    Check, Ctx, LOCAL4, LOCAL4_B, LOCAL6, LOCAL6_B, PROXY4, PROXY4_B, PROXY6, PROXY6_B,
};
use crate::kmod::slab_bytes;
use crate::net::{abort_close, monotonic_ns, Family, ServerView};
use crate::traffic::{self, Client};

/// Bench sizes.
pub struct BenchOpts {
    /// Rounds per state.
    pub rounds: usize,
    /// Connections per accept-rate round.
    pub conns: usize,
    /// getpeername() calls per round.
    pub calls: usize,
    /// Connections held for the memory figure.
    pub hold: usize,
    /// Memory rounds per state.
    pub mem_rounds: usize,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn set_loaded(ctx: &Ctx, loaded: bool) -> Result<(), String> {
    set_state(ctx, if loaded { Some("") } else { None })
}

/// Load the module with these parameters (reloading it if it is loaded
/// with others), or unload it (None).
fn set_state(ctx: &Ctx, params: Option<&str>) -> Result<(), String> {
    if !ctx.kmod.enabled {
        return Ok(());
    }
    if ctx.kmod.is_loaded() {
        ctx.kmod.unload()?;
    }
    match params {
        Some(p) => ctx.kmod.load(p),
        None => Ok(()),
    }
}

/// The getname hook the loaded module uses.
fn active_hook() -> String {
    std::fs::read_to_string("/sys/module/toa/parameters/getname_hook")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

fn hook_missed(ctx: &Ctx) -> u64 {
    match ctx.stats() {
        Ok(Some(s)) => s.get("hook_missed"),
        _ => 0,
    }
}

/// One held TOA connection: (server view, client).
fn open_one(ctx: &Ctx, ck: &mut Check, n: usize) -> Option<(ServerView, Connection)> {
    let c = ctx.client(false);
    ctx.open(
        ck,
        &format!("bench connection {n}"),
        &ctx.peer,
        Family::V4,
        PROXY4.into(),
        &toa_option(254, c),
    )
}

fn getpeername_ns(ctx: &Ctx, calls: usize) -> Result<f64, String> {
    let mut ck = Check::default();
    let (view, conn) = open_one(ctx, &mut ck, 0).ok_or_else(|| ck.fails.join("; "))?;
    let fd = view.fd.as_raw_fd();
    // SAFETY: zeroed storage is valid.
    let mut st: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let t0 = monotonic_ns();
    for _ in 0..calls {
        let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: st holds len bytes.
        unsafe { libc::getpeername(fd, &mut st as *mut _ as *mut libc::sockaddr, &mut len) };
    }
    let ns = (monotonic_ns() - t0) as f64 / calls.max(1) as f64;
    abort_close(view.fd);
    conn.forget();
    Ok(ns)
}

/// Bytes of `Slab:` per held TOA connection.
fn memory_per_conn(ctx: &Ctx, hold: usize) -> Result<f64, String> {
    let mut ck = Check::default();
    std::thread::sleep(Duration::from_millis(300));
    let before = slab_bytes().ok_or("no Slab: in /proc/meminfo")?;
    let mut held = Vec::with_capacity(hold);
    for i in 0..hold {
        match open_one(ctx, &mut ck, i) {
            Some(x) => held.push(x),
            None => break,
        }
    }
    let after = slab_bytes().ok_or("no Slab: in /proc/meminfo")?;
    let n = held.len();
    for (view, conn) in held {
        abort_close(view.fd);
        conn.forget();
    }
    std::thread::sleep(Duration::from_millis(300));
    if n < hold {
        return Err(format!(
            "only {n} of {hold} connections opened: {}",
            ck.fails.join("; ")
        ));
    }
    Ok((after as f64 - before as f64) / n as f64)
}

pub fn run(ctx: &mut Ctx, o: &BenchOpts) -> Result<(), String> {
    // Two client threads on two tuns keep the accept side busy, so the
    // figure is throughput rather than one thread's round-trip latency.
    let clients = [
        Client {
            peer: ctx.peer.clone(),
            proxy4: PROXY4.into(),
            proxy6: PROXY6.into(),
            local4: LOCAL4.into(),
            local6: LOCAL6.into(),
        },
        Client {
            peer: ctx.peer_b()?,
            proxy4: PROXY4_B.into(),
            proxy6: PROXY6_B.into(),
            local4: LOCAL4_B.into(),
            local6: LOCAL6_B.into(),
        },
    ];
    // Three states in turn: the default hook, unloaded, and the kretprobe
    // hook, so both hooking choices are measured against the same baseline.
    const STATES: [Option<&str>; 3] = [Some(""), None, Some("getname_hook=kretprobe")];
    let mut rates: [Vec<f64>; 3] = [vec![], vec![], vec![]];
    let mut gps: [Vec<f64>; 3] = [vec![], vec![], vec![]];
    let mut hooks = [String::new(), "unloaded".to_string(), String::new()];
    let mut missed = 0;
    let mut base = 1_000_000u32;
    for r in 0..STATES.len() * o.rounds {
        let state = r % STATES.len();
        set_state(ctx, STATES[state])?;
        if STATES[state].is_some() {
            hooks[state] = active_hook();
        }
        let out = traffic::run(ctx, &clients, o.conns, base);
        base += 2 * o.conns as u32;
        // Unloaded, every address is the proxy's: a mismatch is expected.
        let mismatches = if STATES[state].is_some() {
            out.mismatches
        } else {
            0
        };
        if out.accepted != o.conns || out.client_errors > 0 || mismatches > 0 {
            println!(
                "# bench round {r}: {} accepted, {} client errors ({}), {} mismatches ({})",
                out.accepted,
                out.client_errors,
                out.first_error.unwrap_or_default(),
                mismatches,
                out.first_mismatch.unwrap_or_default()
            );
        }
        let rate = out.accepted as f64 / out.elapsed.as_secs_f64();
        let gp = getpeername_ns(ctx, o.calls)?;
        println!(
            "# bench round {r} ({}): {rate:.0} accepted/s, getpeername {gp:.0} ns",
            hooks[state]
        );
        if STATES[state].is_some() {
            missed += hook_missed(ctx);
        }
        rates[state].push(rate);
        gps[state].push(gp);
    }
    let rate: Vec<f64> = rates.iter_mut().map(|v| median(v)).collect();
    let gp: Vec<f64> = gps.iter_mut().map(|v| median(v)).collect();
    for state in [0, 2] {
        let tag = if state == 0 { "" } else { "_alternative" };
        println!(
            "BENCH accept_rate{tag} hook={} loaded={:.0} unloaded={:.0} ratio={:.3}",
            hooks[state],
            rate[state],
            rate[1],
            rate[state] / rate[1]
        );
        println!(
            "BENCH getpeername_ns{tag} hook={} loaded={:.0} unloaded={:.0} ratio={:.3}",
            hooks[state],
            gp[state],
            gp[1],
            gp[state] / gp[1]
        );
    }
    println!("BENCH hook_missed={missed}");

    // Slab caches grow on first use and keep their pages: one unmeasured
    // round first, then alternate states and take medians.
    set_loaded(ctx, true)?;
    memory_per_conn(ctx, o.hold)?;
    let (mut mem_on, mut mem_off) = (vec![], vec![]);
    for r in 0..2 * o.mem_rounds {
        let loaded = r % 2 == 0;
        set_loaded(ctx, loaded)?;
        let m = memory_per_conn(ctx, o.hold)?;
        println!(
            "# bench memory round {r} ({}): {m:.0} slab bytes per connection",
            if loaded { "loaded" } else { "unloaded" }
        );
        if loaded {
            mem_on.push(m);
        } else {
            mem_off.push(m);
        }
    }
    let (m_on, m_off) = (median(&mut mem_on), median(&mut mem_off));
    println!(
        "BENCH slab_bytes_per_conn loaded={m_on:.0} unloaded={m_off:.0} module_extra={:.0} (held={})",
        m_on - m_off,
        o.hold
    );
    Ok(())
}

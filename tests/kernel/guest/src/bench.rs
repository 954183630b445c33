//! `bench`: what each backend costs, measured in one boot against the same
//! baseline: nothing loaded, toa.ko (both getname hooks) and the eBPF
//! backend (attached to the cgroup v2 root, as toa-install attaches it).
//! Timed with CLOCK_MONOTONIC, which under QEMU -icount counts instructions.
//!
//! Order effects (caches warmed or a slab grown by the state before) are
//! spread evenly: round r runs the states in the list's order rotated by r,
//! so over a multiple of the list's length of rounds each state runs at
//! each position equally often. Figures are medians per state.

use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use toa_install::peer::{toa_option, Connection};

use crate::ctx::{
    Check, Ctx, LOCAL4, LOCAL4_B, LOCAL6, LOCAL6_B, PROXY4, PROXY4_B, PROXY6, PROXY6_B,
};
use crate::ebpf;
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

/// What is attached while a round runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// Nothing: the baseline.
    None,
    /// toa.ko, loaded with these parameters.
    Module(&'static str),
    /// The eBPF backend with its default settings.
    Ebpf,
    /// Empty programs at the eBPF backend's hooks: what the kernel's hooks
    /// cost before toa's programs do anything (no addresses rewritten).
    EmptyHooks,
}

/// The states rotated through in the speed rounds.
const STATES: [Backend; 5] = [
    Backend::None,
    Backend::Module(""),
    Backend::Module("getname_hook=kretprobe"),
    Backend::Ebpf,
    Backend::EmptyHooks,
];

/// The states rotated through in the memory rounds.
const MEM_STATES: [Backend; 3] = [Backend::None, Backend::Module(""), Backend::Ebpf];

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

/// Make `b` the only thing attached; `hook` holds the empty program while
/// [`Backend::EmptyHooks`] is on. Returns the state's label.
fn set_backend(ctx: &Ctx, hook: &mut Option<EmptyHooks>, b: Backend) -> Result<String, String> {
    *hook = None;
    if ctx.kmod.is_loaded() {
        ctx.kmod.unload()?;
    }
    if ebpf::is_loaded() {
        ebpf::unload()?;
    }
    Ok(match b {
        Backend::None => "none".into(),
        Backend::Module(params) => {
            ctx.kmod.load(params)?;
            format!("module hook={}", active_hook())
        }
        Backend::Ebpf => {
            ebpf::load("")?;
            "ebpf".into()
        }
        Backend::EmptyHooks => {
            *hook = Some(EmptyHooks::attach()?);
            "ebpf_empty_programs".into()
        }
    })
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

/// Empty programs (`return 1`) attached to the cgroup v2 root at every
/// hook the eBPF backend uses, each loaded from two hand-written
/// instructions: what the kernel's hooks cost before toa's programs do
/// anything. Dropping it detaches them.
struct EmptyHooks {
    _links: Vec<OwnedFd>,
}

impl EmptyHooks {
    fn attach() -> Result<EmptyHooks, String> {
        use aya_obj::generated::bpf_attach_type as at;
        use aya_obj::generated::bpf_prog_type as pt;
        let root = toa_ebpf::probe()
            .map_err(|e| e.to_string())?
            .cgroup2
            .ok_or("no cgroup v2 hierarchy")?;
        let cg = std::fs::File::open(&root).map_err(|e| format!("open {}: {e}", root.display()))?;
        let hooks = [
            (pt::BPF_PROG_TYPE_SOCK_OPS, at::BPF_CGROUP_SOCK_OPS),
            (
                pt::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                at::BPF_CGROUP_INET4_GETPEERNAME,
            ),
            (
                pt::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                at::BPF_CGROUP_INET6_GETPEERNAME,
            ),
            (pt::BPF_PROG_TYPE_CGROUP_SOCKOPT, at::BPF_CGROUP_GETSOCKOPT),
        ];
        let mut links = Vec::with_capacity(hooks.len());
        for (prog_type, attach_type) in hooks {
            let prog = empty_program(prog_type as u32, attach_type as u32)
                .map_err(|e| format!("load an empty {prog_type:?} program: {e}"))?;
            let mut a = [0u32; 32];
            // BPF_LINK_CREATE: prog_fd, target_fd, attach_type, flags.
            a[0] = prog.as_raw_fd() as u32;
            a[1] = cg.as_raw_fd() as u32;
            a[2] = attach_type as u32;
            let link = bpf(aya_obj::generated::bpf_cmd::BPF_LINK_CREATE, &mut a)
                .map_err(|e| format!("attach an empty program at {attach_type:?}: {e}"))?;
            links.push(link);
        }
        Ok(EmptyHooks { _links: links })
    }
}

/// BPF_PROG_LOAD of `r0 = 1; exit`.
fn empty_program(prog_type: u32, attach_type: u32) -> std::io::Result<OwnedFd> {
    let insns: [u64; 2] = [0x0000_0001_0000_00b7, 0x95];
    let license = c"GPL";
    let mut a = [0u32; 32];
    // union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns,
    // license, ..., expected_attach_type (word 17).
    a[0] = prog_type;
    a[1] = insns.len() as u32;
    (a[2], a[3]) = split(insns.as_ptr() as u64);
    (a[4], a[5]) = split(license.as_ptr() as u64);
    a[17] = attach_type;
    bpf(aya_obj::generated::bpf_cmd::BPF_PROG_LOAD, &mut a)
}

fn split(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

/// bpf(cmd, attr), for commands that return a new file descriptor.
fn bpf(cmd: aya_obj::generated::bpf_cmd, attr: &mut [u32; 32]) -> std::io::Result<OwnedFd> {
    // SAFETY: attr is a valid buffer of the size passed; the pointers in it
    // outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_int,
            attr.as_mut_ptr(),
            mem::size_of_val(attr) as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
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

/// One figure's line: `with` against the baseline `without`.
fn figure(name: &str, label: &str, with: f64, without: f64) {
    println!(
        "BENCH {name} backend={label} with={with:.0} without={without:.0} ratio={:.3}",
        with / without
    );
}

pub fn run(ctx: &mut Ctx, o: &BenchOpts) -> Result<(), String> {
    if !ctx.kmod.enabled || ctx.kmod.ebpf {
        return Err(
            "the bench loads toa.ko and attaches the eBPF backend itself: \
                    run it without --no-module and --backend"
                .into(),
        );
    }
    ebpf::probe()?;
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
    let n = STATES.len();
    let mut rates: Vec<Vec<f64>> = vec![vec![]; n];
    let mut gps: Vec<Vec<f64>> = vec![vec![]; n];
    let mut labels = vec![String::new(); n];
    let mut hook = None;
    let mut missed = 0;
    let mut base = 1_000_000u32;
    for r in 0..o.rounds {
        for i in 0..n {
            let state = (i + r) % n;
            let b = STATES[state];
            labels[state] = set_backend(ctx, &mut hook, b)?;
            let gp = getpeername_ns(ctx, o.calls)?;
            gps[state].push(gp);
            let out = traffic::run(ctx, &clients, o.conns, base);
            base += 2 * o.conns as u32;
            // Without toa's programs, every address is the proxy's: a
            // mismatch is expected.
            let rewrites = !matches!(b, Backend::None | Backend::EmptyHooks);
            let mismatches = if rewrites { out.mismatches } else { 0 };
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
            println!(
                "# bench round {r} ({}): {rate:.0} accepted/s, getpeername {gp:.0} ns",
                labels[state]
            );
            if matches!(b, Backend::Module(_)) {
                missed += hook_missed(ctx);
            }
            rates[state].push(rate);
        }
    }
    let rate: Vec<f64> = rates.iter_mut().map(|v| median(v)).collect();
    let gp: Vec<f64> = gps.iter_mut().map(|v| median(v)).collect();
    let none = STATES.iter().position(|&b| b == Backend::None).unwrap();
    println!(
        "BENCH rounds={} order=rotated states={}",
        o.rounds,
        labels.join(",").replace(' ', ":")
    );
    for (state, &b) in STATES.iter().enumerate() {
        if b == Backend::None {
            continue;
        }
        figure("accept_rate", &labels[state], rate[state], rate[none]);
        figure("getpeername_ns", &labels[state], gp[state], gp[none]);
    }
    println!("BENCH hook_missed={missed}");

    // Slab caches grow on first use and keep their pages: one unmeasured
    // round per backend first, then the states rotated as above.
    let m = MEM_STATES.len();
    let mut mem: Vec<Vec<f64>> = vec![vec![]; m];
    let mut mem_labels = vec![String::new(); m];
    for &b in &MEM_STATES {
        set_backend(ctx, &mut hook, b)?;
        memory_per_conn(ctx, o.hold)?;
    }
    for r in 0..o.mem_rounds {
        for i in 0..m {
            let state = (i + r) % m;
            mem_labels[state] = set_backend(ctx, &mut hook, MEM_STATES[state])?;
            let bytes = memory_per_conn(ctx, o.hold)?;
            println!(
                "# bench memory round {r} ({}): {bytes:.0} slab bytes per connection",
                mem_labels[state]
            );
            mem[state].push(bytes);
        }
    }
    set_backend(ctx, &mut hook, Backend::None)?;
    let mem: Vec<f64> = mem.iter_mut().map(|v| median(v)).collect();
    let none = MEM_STATES.iter().position(|&b| b == Backend::None).unwrap();
    for (state, &b) in MEM_STATES.iter().enumerate() {
        if b != Backend::None {
            println!(
                "BENCH slab_bytes_per_conn backend={} with={:.0} without={:.0} extra={:.0} (held={})",
                mem_labels[state],
                mem[state],
                mem[none],
                mem[state] - mem[none],
                o.hold
            );
        }
    }
    Ok(())
}

//! The eBPF backend under test, driven through toa-ebpf (the loader
//! toa-install uses): the same operations the cases perform on toa.ko
//! (load with parameters, unload, trusted, kinds, counters).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use toa_install::plan::selftest::parse_trusted;

/// Set once at start-up with `--backend ebpf`: expectations that differ
/// from the module's (SPEC 2.2's documented difference row) read it.
pub static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whether getsockopt(TOA_SO_GET_LOOKUP) can fail with ENOENT here (Linux
/// 5.18+); before, it keeps the kernel's ENOPROTOOPT.
pub static SOCKOPT_ERRNO: AtomicBool = AtomicBool::new(false);

/// Whether the eBPF backend is the one under test.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The errno getsockopt(TOA_SO_GET_LOOKUP) gives without an IPv6 record.
pub fn lookup_none_errno() -> i32 {
    if active() && !SOCKOPT_ERRNO.load(Ordering::Relaxed) {
        libc::ENOPROTOOPT
    } else {
        libc::ENOENT
    }
}

/// Probe the kernel and print what was found (a line per fact).
pub fn probe() -> Result<(), String> {
    let p = toa_ebpf::probe().map_err(|e| e.to_string())?;
    println!(
        "# ebpf: cgroup2 at {:?}, bpffs {}, getsockopt errno {}",
        p.cgroup2,
        if p.bpffs { "mounted" } else { "not mounted" },
        if p.sockopt_errno {
            "settable (ENOENT)"
        } else {
            "fixed (ENOPROTOOPT)"
        }
    );
    SOCKOPT_ERRNO.store(p.sockopt_errno, Ordering::Relaxed);
    if !p.missing.is_empty() {
        return Err(format!("missing: {}", p.missing.join("; ")));
    }
    Ok(())
}

/// Attach with module-style parameters ("" or "kinds=254,200").
pub fn load(params: &str) -> Result<(), String> {
    let mut s = toa_ebpf::Settings::default();
    for p in params.split_whitespace() {
        match p.split_once('=') {
            Some(("kinds", v)) => {
                s.kinds = v
                    .split(',')
                    .map(|k| k.parse().map_err(|_| format!("bad kind {k:?}")))
                    .collect::<Result<_, _>>()?
            }
            Some(("trusted", v)) => s.trusted = nets(v)?,
            _ => return Err(format!("unknown parameter {p:?}")),
        }
    }
    toa_ebpf::attach(&s).map(|_| ()).map_err(|e| e.to_string())
}

fn nets(v: &str) -> Result<Vec<(std::net::IpAddr, u8)>, String> {
    Ok(parse_trusted(v)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|n| (n.addr, n.prefix))
        .collect())
}

/// Detach and unpin.
pub fn unload() -> Result<(), String> {
    toa_ebpf::detach().map_err(|e| e.to_string())
}

/// Whether anything is pinned.
pub fn is_loaded() -> bool {
    toa_ebpf::is_present()
}

/// Attached with the default kinds and an empty trusted list.
pub fn ensure_default() -> Result<(), String> {
    if is_loaded() {
        let kinds = toa_ebpf::kinds().map_err(|e| e.to_string())?;
        if kinds == [200, 253, 254] {
            return toa_ebpf::set_trusted(&[]).map_err(|e| e.to_string());
        }
        unload()?;
    }
    load("")
}

/// The counters in /proc/net/toa_stats's layout.
pub fn stats_text() -> Result<String, String> {
    toa_ebpf::counters()
        .map(|c| c.to_string())
        .map_err(|e| e.to_string())
}

/// Replace the trusted list live; an invalid list is EINVAL and changes
/// nothing, as the module's parameter.
pub fn set_trusted(v: &str) -> std::io::Result<()> {
    let n = nets(v).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    toa_ebpf::set_trusted(&n).map_err(std::io::Error::other)
}

/// The trusted list as the module prints it.
pub fn trusted() -> std::io::Result<String> {
    let t = toa_ebpf::trusted().map_err(std::io::Error::other)?;
    Ok(t.iter()
        .map(|(a, l)| format!("{a}/{l}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// The kinds as the module prints them.
pub fn kinds() -> std::io::Result<String> {
    let k = toa_ebpf::kinds().map_err(std::io::Error::other)?;
    Ok(k.iter().map(u8::to_string).collect::<Vec<_>>().join(","))
}

/// After the final detach: nothing pinned, and no program of ours left in
/// the kernel (they go once their last reference does, after an RCU grace
/// period: wait up to 5 s).
pub fn check_gone() -> Result<(), String> {
    if std::path::Path::new(toa_ebpf::PIN_DIR).exists() {
        return Err(format!("{} still exists after detach", toa_ebpf::PIN_DIR));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = toa_ebpf::loaded_program_names()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|n| n.starts_with("toa_"))
            .collect::<Vec<_>>();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("programs still loaded 5 s after detach: {left:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

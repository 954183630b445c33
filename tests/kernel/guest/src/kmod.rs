//! Loading and unloading toa.ko with the raw syscalls, its parameters and
//! its counters.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::ebpf;
use crate::net::errname;

/// Counter names, in the order of `TOA_STAT_NAMES` (uapi/toa.h): the one
/// list both backends share.
pub use toa_ebpf::STAT_NAMES;

const STATS: &str = "/proc/net/toa_stats";
const TRUSTED: &str = "/sys/module/toa/parameters/trusted";
const KINDS: &str = "/sys/module/toa/parameters/kinds";

/// Counter totals (columns summed).
#[derive(Clone, Debug, Default)]
pub struct Stats(pub BTreeMap<String, u64>);

impl Stats {
    /// A counter's total (0 when absent).
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }
}

/// Parse `/proc/net/toa_stats` with toa-install's parser, then require
/// every counter the cases read.
pub fn parse_stats(text: &str) -> Result<Stats, String> {
    let m = toa_install::system::stats::parse_stats(text).map_err(|e| e.to_string())?;
    for n in STAT_NAMES {
        if !m.contains_key(n) {
            return Err(format!("toa_stats lacks counter {n}"));
        }
    }
    Ok(Stats(m))
}

/// The backend under test: toa.ko, or with `ebpf` the eBPF programs
/// (crate::ebpf; the same parameters, counters and operations); with
/// `enabled == false` (`--no-module`) nothing is loaded and every
/// expectation is "unchanged".
pub struct Kmod {
    /// Path of toa.ko.
    pub path: PathBuf,
    /// False with `--no-module`.
    pub enabled: bool,
    /// The eBPF backend instead of toa.ko (`--backend ebpf`).
    pub ebpf: bool,
}

impl Kmod {
    /// Whether /sys/module/toa exists (eBPF: whether anything is pinned).
    pub fn is_loaded(&self) -> bool {
        if self.ebpf {
            return ebpf::is_loaded();
        }
        std::path::Path::new("/sys/module/toa").exists()
    }

    /// finit_module(fd, params, 0) (eBPF: attach with those parameters).
    pub fn load(&self, params: &str) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.ebpf {
            return ebpf::load(params);
        }
        let f = File::open(&self.path).map_err(|e| format!("open {}: {e}", self.path.display()))?;
        let p = CString::new(params).map_err(|_| "NUL in module parameters".to_string())?;
        // SAFETY: valid fd and NUL-terminated parameter string.
        let r = unsafe {
            libc::syscall(
                libc::SYS_finit_module,
                f.as_raw_fd(),
                p.as_ptr(),
                0 as libc::c_int,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!(
                "finit_module({}, {params:?}): {e}",
                self.path.display()
            ));
        }
        Ok(())
    }

    /// delete_module("toa", O_NONBLOCK), retrying EBUSY/EAGAIN for up to 10 s
    /// (eBPF: detach and unpin).
    pub fn unload(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.ebpf {
            return ebpf::unload();
        }
        let name = CString::new("toa").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: NUL-terminated module name.
            let r =
                unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
            if r == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            let transient = e == libc::EBUSY || e == libc::EAGAIN;
            if !transient || Instant::now() >= deadline {
                return Err(format!("delete_module(toa): {}", errname(e)));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Make sure the module is loaded with default parameters and an empty
    /// trusted list.
    pub fn ensure_default(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.ebpf {
            return ebpf::ensure_default();
        }
        if self.is_loaded() {
            let kinds = std::fs::read_to_string(KINDS).unwrap_or_default();
            let default_kinds = ["254", "253", "200"].iter().all(|k| kinds.contains(k));
            if default_kinds {
                if !self.trusted().unwrap_or_default().trim().is_empty() {
                    self.set_trusted("")
                        .map_err(|e| format!("clear trusted: {e}"))?;
                }
                return Ok(());
            }
            self.unload()?;
        }
        self.load("")
    }

    /// Counter totals; `None` with `--no-module`.
    pub fn stats(&self) -> Result<Option<Stats>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let text = if self.ebpf {
            ebpf::stats_text()?
        } else {
            std::fs::read_to_string(STATS).map_err(|e| format!("read {STATS}: {e}"))?
        };
        parse_stats(&text).map(Some)
    }

    /// Write the trusted list, newline-terminated as `echo` writes it
    /// (sysfs drops a zero-length write, so "" alone would not clear it).
    pub fn set_trusted(&self, v: &str) -> std::io::Result<()> {
        if self.ebpf {
            return ebpf::set_trusted(v);
        }
        std::fs::write(TRUSTED, format!("{v}\n"))
    }

    /// Read the trusted list.
    pub fn trusted(&self) -> std::io::Result<String> {
        if self.ebpf {
            return ebpf::trusted();
        }
        std::fs::read_to_string(TRUSTED)
    }

    /// Read the kinds parameter.
    pub fn kinds(&self) -> std::io::Result<String> {
        if self.ebpf {
            return ebpf::kinds();
        }
        std::fs::read_to_string(KINDS)
    }
}

/// Read one TcpExt counter from /proc/net/netstat (e.g. SyncookiesSent).
pub fn tcp_ext(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines();
    while let (Some(h), Some(v)) = (lines.next(), lines.next()) {
        if !h.starts_with("TcpExt:") {
            continue;
        }
        let i = h.split_whitespace().position(|f| f == name)?;
        return v.split_whitespace().nth(i)?.parse().ok();
    }
    None
}

/// Every `TcpExt` counter of /proc/net/netstat whose name starts with one
/// of `prefixes` (empty when the file cannot be read).
pub fn tcp_ext_matching(prefixes: &[&str]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string("/proc/net/netstat") else {
        return m;
    };
    let mut lines = text.lines();
    while let (Some(h), Some(v)) = (lines.next(), lines.next()) {
        if !h.starts_with("TcpExt:") {
            continue;
        }
        for (name, val) in h.split_whitespace().zip(v.split_whitespace()).skip(1) {
            if prefixes.iter().any(|p| name.starts_with(p)) {
                if let Ok(n) = val.parse() {
                    m.insert(name.to_string(), n);
                }
            }
        }
    }
    m
}

/// `Slab:` of /proc/meminfo in bytes.
pub fn slab_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("Slab:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_layout() {
        let mut t = String::from("                                 CPU0         CPU1\n");
        for (i, n) in STAT_NAMES.iter().enumerate() {
            t.push_str(&format!("{n:<24}:{:>12}{:>13}\n", i, 2 * i));
        }
        let s = parse_stats(&t).unwrap();
        assert_eq!(s.get("syn_recv_sock_toa"), 0);
        assert_eq!(s.get("toa_malformed"), 9);
        assert_eq!(s.get("hook_missed"), 27);
        assert!(parse_stats("hdr\nsyn_recv_sock_toa : 1\n").is_err());
        assert!(parse_stats("hdr\nfoo 1\n").is_err());
    }
}

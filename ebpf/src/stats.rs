//! The counters of the eBPF backend, printed in /proc/net/toa_stats's layout
//! (module-c-shim/stats.c), so that scripts parsing that file work on the
//! output of `toa-install stats` unchanged.

use std::fmt;

/// Counter names, in the order of `TOA_STAT_NAMES` (include/uapi/toa.h)
/// and of `enum toa_bpf_stat` (bpf/toa.h).
pub const STAT_NAMES: [&str; 10] = [
    "syn_recv_sock_toa",
    "syn_recv_sock_no_toa",
    "syn_recv_sock_untrusted",
    "toa_malformed",
    "getname_toa_ok",
    "getname_toa_mismatch",
    "getname_toa_empty",
    "ip6_address_alloc",
    "ip6_address_free",
    "hook_missed",
];

/// One row per counter (STAT_NAMES order), one value per possible CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `per_cpu[counter][cpu]`.
    pub per_cpu: Vec<Vec<u64>>,
}

impl Counters {
    /// A counter's sum over the CPUs (0 for an unknown name).
    pub fn total(&self, name: &str) -> u64 {
        STAT_NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.per_cpu.get(i))
            .map_or(0, |r| r.iter().sum())
    }

    /// (name, sum) for every counter.
    pub fn totals(&self) -> Vec<(&'static str, u64)> {
        STAT_NAMES.iter().map(|n| (*n, self.total(n))).collect()
    }
}

/// The /proc/net/toa_stats layout: a header row of CPUs, then one row per
/// counter.
impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpus = self.per_cpu.first().map_or(0, Vec::len);
        write!(f, "{:<25}", "")?;
        for c in 0..cpus {
            write!(f, " {:>15}", format!("CPU{c}"))?;
        }
        writeln!(f)?;
        for (name, row) in STAT_NAMES.iter().zip(&self.per_cpu) {
            write!(f, "{name:<24}:")?;
            for v in row {
                write!(f, " {v:>15}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_the_modules() {
        let c = Counters {
            per_cpu: (0..10).map(|i| vec![i, 2 * i]).collect(),
        };
        let text = c.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(
            lines[0],
            format!("{:<25} {:>15} {:>15}", "", "CPU0", "CPU1")
        );
        assert_eq!(
            lines[4],
            format!("{:<24}: {:>15} {:>15}", "toa_malformed", 3, 6)
        );
        assert_eq!(c.total("toa_malformed"), 9);
        assert_eq!(c.total("nope"), 0);
        assert_eq!(c.totals().len(), 10);
    }
}

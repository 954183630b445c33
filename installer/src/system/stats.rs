//! The module's counters, `/proc/net/toa_stats`: read by `verify`, `status`
//! and each backend's `counters`.

use crate::layout::STATS;
use crate::system::sysroot::SystemFs;
use std::collections::BTreeMap;

/// Reads and sums the counters of the loaded module.
pub fn read(fs: &dyn SystemFs) -> Result<BTreeMap<String, u64>, String> {
    fs.read_to_string(STATS)
        .map_err(|e| e.to_string())
        .and_then(|t| parse_stats(&t))
}

/// Sums the per-CPU columns of `/proc/net/toa_stats`.
pub fn parse_stats(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut m = BTreeMap::new();
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (name, vals) = line
            .split_once(':')
            .ok_or_else(|| format!("{STATS}: line without ':': {line:?}"))?;
        let mut sum = 0u64;
        for v in vals.split_whitespace() {
            sum += v
                .parse::<u64>()
                .map_err(|_| format!("{STATS}: bad number {v:?} in {line:?}"))?;
        }
        m.insert(name.trim().to_owned(), sum);
    }
    if !m.contains_key("syn_recv_sock_toa") {
        return Err(format!("{STATS} has no syn_recv_sock_toa counter"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_sum_columns() {
        let t = "            CPU0  CPU1\nsyn_recv_sock_toa : 3 4\nhook_missed : 1 0\n";
        let s = parse_stats(t).unwrap();
        assert_eq!(s["syn_recv_sock_toa"], 7);
        assert_eq!(s["hook_missed"], 1);
        assert!(parse_stats("h\nfoo : 1\n").is_err());
        assert!(parse_stats("h\nsyn_recv_sock_toa : x\n").is_err());
    }
}

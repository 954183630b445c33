//! The module's counters, `/proc/net/toa_stats`: read by `verify`, `status`
//! and each backend's `counters`.

use crate::layout::STATS;
use crate::system::sysroot::SystemFs;
use std::collections::BTreeMap;
use std::io;
use thiserror::Error;

/// Why the counters cannot be had.
#[derive(Debug, Error)]
pub enum CountersError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] io::Error),
    /// A line has no `name:`.
    #[error("{path}: line without ':': {line:?}", path = STATS)]
    NoName {
        /// The line.
        line: String,
    },
    /// A column is not a count.
    #[error("{path}: bad number {value:?} in {line:?}", path = STATS)]
    BadNumber {
        /// The column.
        value: String,
        /// Its line.
        line: String,
    },
    /// The eBPF backend's counter map could not be read.
    #[error(transparent)]
    Ebpf(#[from] crate::system::ebpf::EbpfError),
    /// The counter every module version has is missing.
    #[error("{path} has no syn_recv_sock_toa counter", path = STATS)]
    NoSynRecvCounter,
}

/// Reads and sums the counters of the loaded module.
pub fn read(fs: &dyn SystemFs) -> Result<BTreeMap<String, u64>, CountersError> {
    parse_stats(&fs.read_to_string(STATS)?)
}

/// Sums the per-CPU columns of `/proc/net/toa_stats`.
pub fn parse_stats(text: &str) -> Result<BTreeMap<String, u64>, CountersError> {
    let mut m = BTreeMap::new();
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (name, vals) = line.split_once(':').ok_or_else(|| CountersError::NoName {
            line: line.to_owned(),
        })?;
        let mut sum = 0u64;
        for v in vals.split_whitespace() {
            sum += v.parse::<u64>().map_err(|_| CountersError::BadNumber {
                value: v.to_owned(),
                line: line.to_owned(),
            })?;
        }
        m.insert(name.trim().to_owned(), sum);
    }
    if !m.contains_key("syn_recv_sock_toa") {
        return Err(CountersError::NoSynRecvCounter);
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

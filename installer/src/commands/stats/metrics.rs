//! The counters in the two formats `toa-install stats` prints, pure:
//! `/proc/net/toa_stats`'s layout (one row per counter, one column per CPU,
//! as Tencent's and DPVS's modules print it) and the Prometheus text
//! exposition format (for node_exporter's textfile collector).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How a counter of SPEC §2.4 appears in Prometheus: metric name, its help,
/// and the `result` label when the metric has one.
struct Mapping {
    counter: &'static str,
    metric: &'static str,
    label: Option<&'static str>,
}

const HANDSHAKES: &str = "toa_handshakes_total";
const GETNAME: &str = "toa_getname_total";
const RECORDS_ALLOCATED: &str = "toa_records_allocated_total";
const RECORDS_FREED: &str = "toa_records_freed_total";
const HOOK_MISSED: &str = "toa_hook_missed_total";
const INFO: &str = "toa_info";
const TRUSTED_ENTRIES: &str = "toa_trusted_entries";
/// Counters a backend reports beyond SPEC §2.4: `toa_<name>_total`.
const OTHER_PREFIX: &str = "toa_";

const MAPPINGS: [Mapping; 10] = [
    Mapping {
        counter: "syn_recv_sock_toa",
        metric: HANDSHAKES,
        label: Some("toa"),
    },
    Mapping {
        counter: "syn_recv_sock_no_toa",
        metric: HANDSHAKES,
        label: Some("no_toa"),
    },
    Mapping {
        counter: "syn_recv_sock_untrusted",
        metric: HANDSHAKES,
        label: Some("untrusted"),
    },
    Mapping {
        counter: "toa_malformed",
        metric: HANDSHAKES,
        label: Some("malformed"),
    },
    Mapping {
        counter: "getname_toa_ok",
        metric: GETNAME,
        label: Some("ok"),
    },
    Mapping {
        counter: "getname_toa_mismatch",
        metric: GETNAME,
        label: Some("mismatch"),
    },
    Mapping {
        counter: "getname_toa_empty",
        metric: GETNAME,
        label: Some("empty"),
    },
    Mapping {
        counter: "ip6_address_alloc",
        metric: RECORDS_ALLOCATED,
        label: None,
    },
    Mapping {
        counter: "ip6_address_free",
        metric: RECORDS_FREED,
        label: None,
    },
    Mapping {
        counter: "hook_missed",
        metric: HOOK_MISSED,
        label: None,
    },
];

fn help(metric: &str) -> &'static str {
    match metric {
        HANDSHAKES => "Connections accepted, by what their handshake carried: a trusted TOA (toa), none (no_toa), TOA from outside the trusted list (untrusted); malformed counts segments with a malformed TCP option list.",
        GETNAME => "getpeername/accept/getsockopt calls: answered with the TOA address (ok), family did not fit the caller (mismatch), socket without TOA (empty).",
        RECORDS_ALLOCATED => "Per-connection TOA records allocated.",
        RECORDS_FREED => "Per-connection TOA records freed; equals the allocations once every connection is closed.",
        HOOK_MISSED => "Hook invocations the kernel could not deliver (kretprobe nmissed); must stay 0.",
        INFO => "The active toa backend and its version (always 1).",
        TRUSTED_ENTRIES => "Networks in the trusted list; 0 trusts every sender.",
        _ => "A toa counter.",
    }
}

/// What the exposition shows besides the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// `module` or `ebpf`.
    pub backend: String,
    /// The backend's version.
    pub version: String,
    /// Entries in the trusted list.
    pub trusted_entries: usize,
}

/// Escapes a label value (backslash, double quote, newline).
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A metric name made of a counter name: `[a-zA-Z0-9_]` kept, the rest `_`.
fn metric_name(counter: &str) -> String {
    let clean: String = counter
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = clean.strip_prefix(OTHER_PREFIX).unwrap_or(&clean);
    format!("{OTHER_PREFIX}{base}_total")
}

/// The counters (summed over CPUs) in the Prometheus text exposition
/// format, HELP and TYPE before each metric family. Every counter of SPEC
/// §2.4 appears (0 when the backend lacks it); other counters follow as
/// `toa_<name>_total`.
pub fn prometheus(counters: &BTreeMap<String, u64>, info: &Info) -> String {
    // metric name -> (label, value) samples, in MAPPINGS order
    type Samples = Vec<(Option<&'static str>, u64)>;
    let mut families: Vec<(&str, Samples)> = Vec::new();
    for m in &MAPPINGS {
        let value = counters.get(m.counter).copied().unwrap_or(0);
        match families.iter_mut().find(|(name, _)| *name == m.metric) {
            Some((_, samples)) => samples.push((m.label, value)),
            None => families.push((m.metric, vec![(m.label, value)])),
        }
    }
    let mut out = String::new();
    for (name, samples) in &families {
        let _ = writeln!(out, "# HELP {name} {}", help(name));
        let _ = writeln!(out, "# TYPE {name} counter");
        for (label, value) in samples {
            match label {
                Some(l) => {
                    let _ = writeln!(out, "{name}{{result=\"{l}\"}} {value}");
                }
                None => {
                    let _ = writeln!(out, "{name} {value}");
                }
            }
        }
    }
    for (counter, value) in counters {
        if MAPPINGS.iter().any(|m| m.counter == counter) {
            continue;
        }
        let name = metric_name(counter);
        let _ = writeln!(
            out,
            "# HELP {name} {} (the backend's {counter})",
            help(&name)
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {value}");
    }
    let _ = writeln!(out, "# HELP {INFO} {}", help(INFO));
    let _ = writeln!(out, "# TYPE {INFO} gauge");
    let _ = writeln!(
        out,
        "{INFO}{{backend=\"{}\",version=\"{}\"}} 1",
        label_value(&info.backend),
        label_value(&info.version)
    );
    let _ = writeln!(out, "# HELP {TRUSTED_ENTRIES} {}", help(TRUSTED_ENTRIES));
    let _ = writeln!(out, "# TYPE {TRUSTED_ENTRIES} gauge");
    let _ = writeln!(out, "{TRUSTED_ENTRIES} {}", info.trusted_entries);
    out
}

/// Per-CPU counters in `/proc/net/toa_stats`'s layout (module-c-shim's
/// stats.c): a header of `CPUn` columns, then `name:` and one value per CPU.
pub fn proc_layout(rows: &[(String, Vec<u64>)]) -> String {
    let cpus = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let mut out = format!("{:<25}", "");
    for cpu in 0..cpus {
        let _ = write!(out, " {:>15}", format!("CPU{cpu}"));
    }
    out.push('\n');
    for (name, values) in rows {
        let _ = write!(out, "{name:<24}:");
        for cpu in 0..cpus {
            let _ = write!(out, " {:>15}", values.get(cpu).copied().unwrap_or(0));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::stats::parse_stats;
    use std::process::Command;

    const PROC: &str = "                                     CPU0            CPU1
syn_recv_sock_toa       :               3               4
syn_recv_sock_no_toa    :               1               0
syn_recv_sock_untrusted :               0               2
toa_malformed           :               0               1
getname_toa_ok          :              10               5
getname_toa_mismatch    :               0               0
getname_toa_empty       :               2               0
ip6_address_alloc       :               7               0
ip6_address_free        :               6               1
hook_missed             :               0               0
";

    fn info() -> Info {
        Info {
            backend: "module".to_owned(),
            version: "0.1.0".to_owned(),
            trusted_entries: 2,
        }
    }

    #[test]
    fn the_exposition_carries_the_sums() {
        let counters = parse_stats(PROC).unwrap();
        let text = prometheus(&counters, &info());
        for line in [
            "toa_handshakes_total{result=\"toa\"} 7",
            "toa_handshakes_total{result=\"no_toa\"} 1",
            "toa_handshakes_total{result=\"untrusted\"} 2",
            "toa_handshakes_total{result=\"malformed\"} 1",
            "toa_getname_total{result=\"ok\"} 15",
            "toa_getname_total{result=\"mismatch\"} 0",
            "toa_getname_total{result=\"empty\"} 2",
            "toa_records_allocated_total 7",
            "toa_records_freed_total 7",
            "toa_hook_missed_total 0",
            "toa_info{backend=\"module\",version=\"0.1.0\"} 1",
            "toa_trusted_entries 2",
            "# TYPE toa_handshakes_total counter",
            "# TYPE toa_info gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        // one HELP and one TYPE per family, before its samples
        assert_eq!(text.matches("# TYPE toa_handshakes_total").count(), 1);
        assert_eq!(
            text.matches("# HELP ").count(),
            text.matches("# TYPE ").count()
        );
    }

    #[test]
    fn missing_and_extra_counters() {
        let mut counters = BTreeMap::new();
        counters.insert("ringbuf-lost".to_owned(), 3);
        counters.insert("toa_map_full".to_owned(), 1);
        let text = prometheus(&counters, &info());
        assert!(
            text.contains("\ntoa_handshakes_total{result=\"toa\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("\ntoa_ringbuf_lost_total 3\n"), "{text}");
        assert!(text.contains("\ntoa_map_full_total 1\n"), "{text}");
        assert!(text.contains("# TYPE toa_ringbuf_lost_total counter"));
    }

    #[test]
    fn label_values_are_escaped() {
        let i = Info {
            backend: "a\"b\\c\nd".to_owned(),
            version: "1".to_owned(),
            trusted_entries: 0,
        };
        let text = prometheus(&BTreeMap::new(), &i);
        assert!(
            text.contains("toa_info{backend=\"a\\\"b\\\\c\\nd\",version=\"1\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn the_proc_layout_is_the_modules() {
        let rows: Vec<(String, Vec<u64>)> = PROC
            .lines()
            .skip(1)
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (
                    n.trim().to_owned(),
                    v.split_whitespace().map(|x| x.parse().unwrap()).collect(),
                )
            })
            .collect();
        assert_eq!(proc_layout(&rows), PROC);
    }

    /// Debian's `prometheus` package's promtool (ci/install-deps installs it).
    #[test]
    fn promtool_accepts_the_exposition() {
        let counters = parse_stats(PROC).unwrap();
        let mut counters2 = counters.clone();
        counters2.insert("extra_thing".to_owned(), 9);
        let text = prometheus(&counters2, &info());
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (Debian package prometheus; ci/install-deps installs it)");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool check metrics: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

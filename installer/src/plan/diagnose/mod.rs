//! `toa-install doctor`'s reasoning, pure: from the facts gathered on the
//! host (backend, trusted list, counters before and after, listeners,
//! conflicts) and the handshakes captured on the wire, the findings and
//! next steps, grouped per proxy source network.
//!
//! Each captured handshake is read with the module's own rule (SPEC §2.1,
//! [`read_toa`]) and put in its sender's group: the trusted network that
//! contains the sender (the most specific one), else its /24 (IPv4) or /64
//! (IPv6). Client addresses are masked unless asked for ([`Privacy`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::plan::selftest::Net;
use crate::system::capture::{CaptureStats, Handshake};
use crate::system::listeners::{Family, Listener};

mod group;
mod option;
mod text;

use group::net_text;
pub use group::{contains, group_of, show_client, Privacy};
pub use option::{read_toa, OptionRead, Toa, DEFAULT_KINDS, LEN_V4, LEN_V6};
pub use text::render_text;

/// Client addresses shown per group at most.
const CLIENT_SAMPLES: usize = 3;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Works as it should.
    Ok,
    /// Worth knowing; not a failure.
    Warning,
    /// Something stops TOA from working: doctor exits 10.
    Problem,
}

/// One finding, with the next step in its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// What, and what to do.
    pub text: String,
}

fn finding(severity: Severity, text: impl Into<String>) -> Finding {
    Finding {
        severity,
        text: text.into(),
    }
}

/// Handshakes from one proxy source network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The network (`198.51.100.0/24`).
    pub network: String,
    /// It is (inside) a network of the trusted list; with an empty list
    /// every sender is trusted.
    pub trusted: bool,
    /// Handshakes seen.
    pub handshakes: u64,
    /// Of those, carrying a recognised TOA option, per format
    /// (`kind 254 len 8 (IPv4)`).
    pub toa_formats: BTreeMap<String, u64>,
    /// Carrying a recognised TOA option.
    pub toa: u64,
    /// Carrying TOA from outside the trusted list (toa ignores it).
    pub untrusted: u64,
    /// Carrying none.
    pub none: u64,
    /// With a malformed option list.
    pub malformed: u64,
    /// Completed by a Fast Open SYN.
    pub fast_open: u64,
    /// A few of the clients named (masked unless `--show-clients`).
    pub clients: Vec<String>,
    /// The diagnosis in words.
    pub diagnosis: Finding,
}

#[derive(Default)]
struct Tally {
    trusted: bool,
    handshakes: u64,
    formats: BTreeMap<(u8, u8), u64>,
    toa: u64,
    none: u64,
    malformed: u64,
    fast_open: u64,
    clients: BTreeSet<String>,
}

fn format_name(kind: u8, len: u8) -> String {
    let fam = if len == LEN_V4 { "IPv4" } else { "IPv6" };
    format!("kind {kind} len {len} ({fam})")
}

fn percent(part: u64, whole: u64) -> u64 {
    (part * 100 + whole / 2) / whole.max(1)
}

fn diagnose_group(net: &str, t: &Tally, trust_empty: bool) -> Finding {
    let formats = t
        .formats
        .keys()
        .map(|(k, l)| format!("kind {k} len {l}"))
        .collect::<Vec<_>>()
        .join(" and ");
    let share = percent(t.toa, t.handshakes);
    if t.toa == 0 {
        let malformed = if t.malformed > 0 {
            format!(
                " ({} of them with a malformed option list, which ends the kernel's walk)",
                t.malformed
            )
        } else {
            String::new()
        };
        return finding(
            Severity::Problem,
            format!(
                "the proxy at {net} sends none on its {} handshake(s){malformed}: the forwarding \
                 rule's client-IP mode is not TOA (set it in the proxy's console); if these are \
                 direct clients rather than a proxy, nothing needs doing",
                t.handshakes
            ),
        );
    }
    if !t.trusted {
        return finding(
            Severity::Problem,
            format!(
                "the proxy at {net} sends TOA ({formats}) on {share} % of handshakes but is \
                 outside trusted, so toa ignores it: add --trust {net}"
            ),
        );
    }
    let trust = if trust_empty {
        "the trusted list is empty (every sender is trusted)"
    } else {
        "it is inside trusted"
    };
    if t.toa == t.handshakes {
        finding(
            Severity::Ok,
            format!("the proxy at {net} sends {formats} on {share} % of handshakes, and {trust}: TOA works"),
        )
    } else {
        finding(
            Severity::Problem,
            format!(
                "the proxy at {net} sends {formats} on only {share} % of handshakes ({} of {}), \
                 and {trust}: the others reach applications with the proxy's address; check \
                 every forwarding rule and backend of this proxy for the TOA client-IP mode",
                t.toa, t.handshakes
            ),
        )
    }
}

/// Groups captured handshakes and diagnoses each group.
pub fn group_handshakes(
    handshakes: &[Handshake],
    trusted: &[Net],
    kinds: &[u8],
    privacy: Privacy,
) -> Vec<Group> {
    let mut tallies: BTreeMap<(u8, IpAddr, u8), Tally> = BTreeMap::new();
    for h in handshakes {
        let (net, inside) = group_of(h.src.ip(), trusted);
        let fam = u8::from(net.addr.is_ipv6());
        let t = tallies.entry((fam, net.addr, net.prefix)).or_default();
        t.trusted = inside || trusted.is_empty();
        t.handshakes += 1;
        t.fast_open += u64::from(h.fast_open);
        let read = read_toa(&h.options, kinds);
        t.malformed += u64::from(read.malformed);
        match read.toa {
            Some(toa) => {
                t.toa += 1;
                *t.formats.entry((toa.kind, toa.len)).or_default() += 1;
                if t.clients.len() < CLIENT_SAMPLES {
                    t.clients.insert(show_client(toa.client, privacy));
                }
            }
            None => t.none += 1,
        }
    }
    tallies
        .into_iter()
        .map(|((_, addr, prefix), t)| {
            let network = net_text(&Net { addr, prefix });
            Group {
                diagnosis: diagnose_group(&network, &t, trusted.is_empty()),
                trusted: t.trusted,
                handshakes: t.handshakes,
                toa_formats: t
                    .formats
                    .iter()
                    .map(|((k, l), n)| (format_name(*k, *l), *n))
                    .collect(),
                toa: t.toa,
                untrusted: if t.trusted { 0 } else { t.toa },
                none: t.none,
                malformed: t.malformed,
                fast_open: t.fast_open,
                clients: t.clients.into_iter().collect(),
                network,
            }
        })
        .collect()
}

/// The active backend as read from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backend {
    /// `module` (or `ebpf`).
    pub name: String,
    /// Its version.
    pub version: Option<String>,
}

/// Everything doctor looked at.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The active backend; `None` when toa is not running.
    pub backend: Option<Backend>,
    /// The trusted list as the backend has it (text, as printed).
    pub trusted: Vec<String>,
    /// The kinds the backend accepts.
    pub kinds: Vec<u8>,
    /// Counters (summed over CPUs) when doctor started, and when it ended.
    pub counters_before: BTreeMap<String, u64>,
    /// See `counters_before`.
    pub counters_after: BTreeMap<String, u64>,
    /// Another TOA module loaded (its name and how it was recognised).
    pub foreign: Vec<String>,
    /// Why the kernel would refuse to load a module, when it would.
    pub modules_refused: Option<String>,
    /// The ports watched.
    pub ports: Vec<u16>,
    /// Listening sockets on them.
    pub listeners: Vec<Listener>,
    /// The capture, when one ran: seconds, handshakes, statistics.
    pub capture: Option<(u64, Vec<Handshake>, CaptureStats)>,
    /// How client addresses are shown.
    pub privacy: Option<Privacy>,
}

/// doctor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The active backend.
    pub backend: Option<Backend>,
    /// The trusted list.
    pub trusted: Vec<String>,
    /// Counter changes while doctor watched (after minus before).
    pub counters_moved: BTreeMap<String, u64>,
    /// The counters at the end.
    pub counters: BTreeMap<String, u64>,
    /// The listening sockets on the watched ports.
    pub listeners: Vec<Listener>,
    /// Seconds of capture, when one ran.
    pub captured_seconds: Option<u64>,
    /// Capture statistics.
    pub capture_packets: u64,
    /// Packets the kernel dropped before doctor read them.
    pub capture_drops: u64,
    /// Per proxy source network.
    pub groups: Vec<Group>,
    /// Findings not about one group.
    pub findings: Vec<Finding>,
    /// Any problem found (exit 10).
    pub problem: bool,
}

fn counter(m: &BTreeMap<String, u64>, name: &str) -> u64 {
    m.get(name).copied().unwrap_or(0)
}

/// Puts it all together.
pub fn diagnose(facts: &Facts) -> Report {
    let privacy = facts.privacy.unwrap_or(Privacy::Masked);
    let trusted: Vec<Net> = facts
        .trusted
        .iter()
        .filter_map(|t| Net::parse(t).ok())
        .collect();
    let kinds = if facts.kinds.is_empty() {
        DEFAULT_KINDS.to_vec()
    } else {
        facts.kinds.clone()
    };
    let mut findings = Vec::new();
    let mut push = |s, t: String| findings.push(finding(s, t));

    for f in &facts.foreign {
        push(
            Severity::Problem,
            format!(
                "another TOA module is loaded ({f}): two hooks on the same paths conflict. Next \
                 step: unload it (`modprobe -r` it, and remove its autoload) before using toa"
            ),
        );
    }
    let ebpf_active = facts.backend.as_ref().is_some_and(|b| b.name == "ebpf");
    if let (Some(why), false) = (&facts.modules_refused, ebpf_active) {
        // with toa running it matters at the next load (reboot, upgrade)
        let severity = if facts.backend.is_some() {
            Severity::Warning
        } else {
            Severity::Problem
        };
        push(
            severity,
            format!(
                "the kernel refuses to load modules: {why} (the eBPF backend needs no module: \
                 `toa-install --backend ebpf`)"
            ),
        );
    }
    match &facts.backend {
        None => push(
            Severity::Problem,
            "toa is not running: servers see the proxy's address. Next step: run `toa-install`"
                .to_owned(),
        ),
        Some(b) => {
            push(
                Severity::Ok,
                format!(
                    "backend {} {} is active",
                    b.name,
                    b.version.as_deref().unwrap_or("(version unknown)")
                ),
            );
            if facts.trusted.is_empty() {
                push(
                    Severity::Warning,
                    "the trusted list is empty: TOA is honoured from every sender, so anyone who \
                     reaches this host can claim any client address. Next step: `toa-install \
                     --trust CIDR` with your proxies' networks"
                        .to_owned(),
                );
            }
        }
    }

    let after = &facts.counters_after;
    let moved: BTreeMap<String, u64> = after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(counter(&facts.counters_before, k)),
            )
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    if facts.backend.is_some() {
        let (toa, no_toa, untrusted, malformed) = (
            counter(after, "syn_recv_sock_toa"),
            counter(after, "syn_recv_sock_no_toa"),
            counter(after, "syn_recv_sock_untrusted"),
            counter(after, "toa_malformed"),
        );
        if toa == 0 && untrusted == 0 && no_toa > 0 {
            push(
                Severity::Warning,
                format!(
                    "no TOA seen at all since load: {no_toa} connection(s), none with a \
                     recognised option"
                ),
            );
        } else if toa == 0 && untrusted > 0 {
            push(
                Severity::Warning,
                format!(
                    "since load TOA came only from untrusted senders ({untrusted} connection(s)): \
                     the trusted list does not name your proxy"
                ),
            );
        } else if toa > 0 {
            push(
                Severity::Ok,
                format!("since load {toa} connection(s) carried a trusted TOA"),
            );
        }
        if malformed > 0 {
            push(
                Severity::Warning,
                format!("{malformed} segment(s) since load had a malformed TCP option list"),
            );
        }
        if counter(after, "hook_missed") > 0 {
            push(
                Severity::Problem,
                "hook_missed is not zero: some connections were not inspected".to_owned(),
            );
        }
    }

    let mut groups = Vec::new();
    let (mut captured_seconds, mut capture_packets, mut capture_drops) = (None, 0, 0);
    if let Some((secs, handshakes, stats)) = &facts.capture {
        captured_seconds = Some(*secs);
        capture_packets = stats.packets;
        capture_drops = stats.kernel_drops;
        groups = group_handshakes(handshakes, &trusted, &kinds, privacy);
        let ports = facts
            .ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if groups.is_empty() {
            push(
                Severity::Warning,
                format!(
                    "no handshake arrived for port(s) {ports} in {secs} s: nothing to judge. \
                     Next step: run doctor while connections come in through the proxy (or \
                     longer, with --seconds)"
                ),
            );
        }
        if stats.kernel_drops > 0 || stats.untracked > 0 {
            push(
                Severity::Warning,
                format!(
                    "the capture missed packets ({} dropped by the kernel, {} SYNs not tracked): \
                     the counts are a sample",
                    stats.kernel_drops, stats.untracked
                ),
            );
        }
        let v6_toa = handshakes
            .iter()
            .any(|h| matches!(read_toa(&h.options, &kinds).toa, Some(t) if t.client.is_ipv6()));
        for port in &facts.ports {
            let on_port: Vec<&Listener> = facts
                .listeners
                .iter()
                .filter(|l| l.addr.port() == *port)
                .collect();
            if on_port.is_empty() {
                push(
                    Severity::Problem,
                    format!("nothing listens on TCP port {port}"),
                );
            }
            if v6_toa {
                for l in on_port.iter().filter(|l| l.family == Family::Inet) {
                    push(
                        Severity::Warning,
                        format!(
                            "IPv6 clients arrive in TOA and {} listens as AF_INET: accept() and \
                             getpeername() return a sockaddr_in6 for them (SPEC §2.2), which an \
                             application passing a sockaddr_in-sized buffer sees truncated. Next \
                             step: listen on AF_INET6 (::), or pass a sockaddr_storage and check \
                             the family",
                            l.addr
                        ),
                    );
                }
            }
        }
    }
    let problem = findings.iter().any(|f| f.severity == Severity::Problem)
        || groups
            .iter()
            .any(|g| g.diagnosis.severity == Severity::Problem);
    Report {
        backend: facts.backend.clone(),
        trusted: facts.trusted.clone(),
        counters_moved: moved,
        counters: after.clone(),
        listeners: facts.listeners.clone(),
        captured_seconds,
        capture_packets,
        capture_drops,
        groups,
        findings,
        problem,
    }
}

#[cfg(test)]
mod tests;

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
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

use crate::plan::selftest::Net;
use crate::system::capture::{tcp_options, CaptureStats, Handshake, TcpOption};
use crate::system::listeners::{Family, Listener};

/// The option kinds the module accepts by default (its `kinds` parameter).
pub const DEFAULT_KINDS: [u8; 3] = [254, 253, 200];
/// Option length carrying port and IPv4 address.
pub const LEN_V4: u8 = 8;
/// Option length carrying port and IPv6 address.
pub const LEN_V6: u8 = 20;
/// Client addresses shown per group at most.
const CLIENT_SAMPLES: usize = 3;

/// A TOA option as the module would take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toa {
    /// The option kind.
    pub kind: u8,
    /// Its length: [`LEN_V4`] or [`LEN_V6`].
    pub len: u8,
    /// The client it names.
    pub client: SocketAddr,
}

/// What the module reads from one option area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionRead {
    /// The first recognised TOA option (SPEC §2.1: the first one wins).
    pub toa: Option<Toa>,
    /// The walk ended on a malformed option (`toa_malformed`).
    pub malformed: bool,
}

/// Reads an option area as the module does (SPEC §2.1): an option counts
/// only when its kind is in `kinds` and its length is 8 or 20; the walk
/// goes on after a match only to report a malformed tail.
pub fn read_toa(area: &[u8], kinds: &[u8]) -> OptionRead {
    let mut read = OptionRead::default();
    for opt in tcp_options(area) {
        match opt {
            TcpOption::Malformed => read.malformed = true,
            TcpOption::Option { kind, bytes } => {
                if read.toa.is_some() || !kinds.contains(&kind) {
                    continue;
                }
                let port = || u16::from_be_bytes([bytes[2], bytes[3]]);
                read.toa = match bytes.len() as u8 {
                    LEN_V4 => {
                        let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
                        Some(SocketAddr::new(ip.into(), port()))
                    }
                    LEN_V6 => {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(&bytes[4..20]);
                        Some(SocketAddr::new(Ipv6Addr::from(b).into(), port()))
                    }
                    _ => None,
                }
                .map(|client| Toa {
                    kind,
                    len: bytes.len() as u8,
                    client,
                });
            }
        }
    }
    read
}

/// Whether `net` contains `ip` (families must match).
pub fn contains(net: &Net, ip: IpAddr) -> bool {
    match (net.addr, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(net.prefix))
                .unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(net.prefix))
                .unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The network of `ip` with `prefix` bits, its host bits cleared.
fn network_of(ip: IpAddr, prefix: u8) -> Net {
    let addr = match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    Net { addr, prefix }
}

fn net_text(n: &Net) -> String {
    format!("{}/{}", n.addr, n.prefix)
}

/// The group a sender belongs to: the most specific trusted network holding
/// it, else its /24 or /64; and whether that is a trusted one.
pub fn group_of(ip: IpAddr, trusted: &[Net]) -> (Net, bool) {
    match trusted
        .iter()
        .filter(|n| contains(n, ip))
        .max_by_key(|n| n.prefix)
    {
        Some(n) => (network_of(n.addr, n.prefix), true),
        None => (network_of(ip, if ip.is_ipv4() { 24 } else { 64 }), false),
    }
}

/// Whether client addresses appear in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// `203.0.113.x`, `2001:db8:c::x`: enough to recognise, not to identify.
    Masked,
    /// `203.0.113.7:51000` (`--show-clients`).
    Shown,
}

/// A client address as the report shows it.
pub fn show_client(c: SocketAddr, privacy: Privacy) -> String {
    match (privacy, c.ip()) {
        (Privacy::Shown, _) => c.to_string(),
        (Privacy::Masked, IpAddr::V4(a)) => {
            let o = a.octets();
            format!("{}.{}.{}.x", o[0], o[1], o[2])
        }
        (Privacy::Masked, IpAddr::V6(a)) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}::x", s[0], s[1], s[2])
        }
    }
}

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
    /// Carrying TOA from outside the trusted list (the module ignores it).
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
                 outside trusted, so the module ignores it: add --trust {net}"
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
    if let Some(why) = &facts.modules_refused {
        // with toa running it matters at the next load (reboot, upgrade)
        let severity = if facts.backend.is_some() {
            Severity::Warning
        } else {
            Severity::Problem
        };
        push(
            severity,
            format!("the kernel refuses to load modules: {why}"),
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

fn mark(s: Severity) -> &'static str {
    match s {
        Severity::Ok => "ok",
        Severity::Warning => "warning",
        Severity::Problem => "PROBLEM",
    }
}

/// The report as text.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let backend = r
        .backend
        .as_ref()
        .map(|b| format!("{} {}", b.name, b.version.as_deref().unwrap_or("-")))
        .unwrap_or_else(|| "none".to_owned());
    let _ = writeln!(out, "backend:   {backend}");
    let _ = writeln!(
        out,
        "trusted:   {}",
        if r.trusted.is_empty() {
            "(empty: every sender)".to_owned()
        } else {
            r.trusted.join(",")
        }
    );
    if !r.counters_moved.is_empty() {
        let moved = r
            .counters_moved
            .iter()
            .map(|(k, v)| format!("{k} +{v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "counters moved while watching: {moved}");
    }
    for l in &r.listeners {
        let _ = writeln!(out, "listener:  {} ({})", l.addr, l.family.name());
    }
    if let Some(secs) = r.captured_seconds {
        let _ = writeln!(
            out,
            "captured:  {secs} s, {} packet(s), {} handshake(s) in {} group(s)",
            r.capture_packets,
            r.groups.iter().map(|g| g.handshakes).sum::<u64>(),
            r.groups.len()
        );
    }
    for g in &r.groups {
        let formats = g
            .toa_formats
            .iter()
            .map(|(f, n)| format!("{f}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "\nproxy network {}{}:\n  handshakes {}, with TOA {}{}, outside trusted {}, without TOA {}, malformed {}{}",
            g.network,
            if g.trusted { " (trusted)" } else { "" },
            g.handshakes,
            g.toa,
            if formats.is_empty() { String::new() } else { format!(" ({formats})") },
            g.untrusted,
            g.none,
            g.malformed,
            if g.fast_open > 0 { format!(", fast open {}", g.fast_open) } else { String::new() },
        );
        if !g.clients.is_empty() {
            let _ = writeln!(out, "  clients: {}", g.clients.join(", "));
        }
        let _ = writeln!(
            out,
            "  {}: {}",
            mark(g.diagnosis.severity),
            g.diagnosis.text
        );
    }
    out.push('\n');
    for f in &r.findings {
        let _ = writeln!(out, "{}: {}", mark(f.severity), f.text);
    }
    let _ = writeln!(
        out,
        "{}",
        if r.problem {
            "result: a problem was found (see PROBLEM above)"
        } else {
            "result: healthy"
        }
    );
    out
}

#[cfg(test)]
mod tests;

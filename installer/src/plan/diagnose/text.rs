//! doctor's report as text.

use std::fmt::Write as _;

use super::{Report, Severity};

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

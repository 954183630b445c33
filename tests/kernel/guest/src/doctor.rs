//! `toa-install doctor`'s live look at traffic, in a booted kernel: the
//! packet capture (AF_PACKET + classic BPF) sees the handshakes the tun
//! peers send, and the diagnosis groups and judges them. Three proxy
//! networks: 198.51.100.0/24 (trusted, sends TOA), 192.0.2.0/24 (sends TOA,
//! not trusted), 2001:db8::/64 (trusted, sends none); then a capture while
//! nothing arrives.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use toa_install::peer::toa_option;
use toa_install::plan::diagnose::{self, Backend, Facts, Privacy, Severity};
use toa_install::system::capture::Capture;
use toa_install::system::listeners::listening;
use toa_install::system::sysroot::RootFs;

use crate::ctx::{expect_view, Check, Ctx, PORT4, PORT6, PROXY4, PROXY4_B, PROXY6};
use crate::net::{abort_close, Family};

const TRUSTED: &str = "198.51.100.0/24,2001:db8::/64";
const SECONDS: u64 = 5;

/// The active backend's counter totals (the module's /proc/net/toa_stats
/// or the eBPF counters map, in the same layout).
fn counters(ctx: &Ctx) -> BTreeMap<String, u64> {
    ctx.kmod
        .stats()
        .ok()
        .flatten()
        .map(|stats| stats.0)
        .unwrap_or_default()
}

/// Watches the two listeners' ports for `SECONDS` while `traffic` runs.
fn watch(
    ctx: &mut Ctx,
    ck: &mut Check,
    traffic: impl FnOnce(&mut Ctx, &mut Check),
) -> Result<diagnose::Report, String> {
    let ports = vec![PORT4, PORT6];
    let capture = Capture::open(&ports).map_err(|e| e.to_string())?;
    let before = counters(ctx);
    let watcher = std::thread::spawn(move || {
        let mut seen = Vec::new();
        capture
            .run(Duration::from_secs(SECONDS), |h| seen.push(h))
            .map(|stats| (seen, stats))
    });
    traffic(ctx, ck);
    let (handshakes, stats) = watcher
        .join()
        .map_err(|_| "the capture thread panicked".to_owned())?
        .map_err(|e| e.to_string())?;
    let listeners = listening(&RootFs::host(), &ports).map_err(|e| e.to_string())?;
    let facts = Facts {
        backend: ctx.kmod.enabled.then(|| Backend {
            name: if ctx.kmod.ebpf { "ebpf" } else { "module" }.to_owned(),
            version: std::fs::read_to_string("/sys/module/toa/version")
                .ok()
                .map(|v| v.trim().to_owned()),
        }),
        trusted: TRUSTED.split(',').map(str::to_owned).collect(),
        counters_before: before,
        counters_after: counters(ctx),
        ports,
        listeners,
        capture: Some((SECONDS, handshakes, stats)),
        privacy: Some(Privacy::Masked),
        ..Facts::default()
    };
    let report = diagnose::diagnose(&facts);
    for line in diagnose::render_text(&report).lines() {
        println!("# doctor: {line}");
    }
    Ok(report)
}

pub fn doctor(ctx: &mut Ctx) -> Result<(), String> {
    let mut ck = Check::default();
    if ctx.kmod.enabled {
        ctx.kmod
            .set_trusted(TRUSTED)
            .map_err(|e| format!("write trusted={TRUSTED}: {e}"))?;
    }
    let b = ctx.peer_b()?;
    let report = watch(ctx, &mut ck, |ctx, ck| {
        let p4: IpAddr = PROXY4.into();
        for i in 0..3 {
            let client = ctx.client(false);
            ctx.probe(
                ck,
                &format!("trusted TOA {i}"),
                Family::V4,
                p4,
                &toa_option(254, client),
                ctx.honour(client),
            );
        }
        for i in 0..2 {
            let label = format!("untrusted TOA {i}");
            let client = ctx.client(false);
            let opts = toa_option(254, client);
            if let Some((view, conn)) = ctx.open(ck, &label, &b, Family::V4, PROXY4_B.into(), &opts)
            {
                expect_view(
                    ck,
                    &label,
                    Family::V4,
                    &view,
                    conn.local_addr(),
                    conn.remote_addr(),
                    None,
                    !ctx.kmod.enabled,
                );
                abort_close(view.fd);
                conn.forget();
            }
        }
        for i in 0..2 {
            ctx.probe(
                ck,
                &format!("no TOA {i}"),
                Family::V6,
                PROXY6.into(),
                &[],
                None,
            );
        }
    })?;
    let want = [
        (
            "198.51.100.0/24",
            3,
            3,
            0,
            0,
            Severity::Ok,
            "sends kind 254 len 8 on 100 % of handshakes, and it is inside trusted: TOA works",
        ),
        (
            "192.0.2.0/24",
            2,
            2,
            2,
            0,
            Severity::Problem,
            "but is outside trusted, so toa ignores it: add --trust 192.0.2.0/24",
        ),
        (
            "2001:db8::/64",
            2,
            0,
            0,
            2,
            Severity::Problem,
            "sends none on its 2 handshake(s): the forwarding rule's client-IP mode is not TOA",
        ),
    ];
    if report.groups.len() != want.len() {
        ck.fail(format!(
            "{} groups, want {}: {:?}",
            report.groups.len(),
            want.len(),
            report.groups.iter().map(|g| &g.network).collect::<Vec<_>>()
        ));
    }
    for (net, n, toa, untrusted, none, sev, text) in want {
        match report.groups.iter().find(|g| g.network == net) {
            None => ck.fail(format!("no group {net}")),
            Some(g) => {
                let got = (
                    g.handshakes,
                    g.toa,
                    g.untrusted,
                    g.none,
                    g.diagnosis.severity,
                );
                if got != (n, toa, untrusted, none, sev) {
                    ck.fail(format!(
                        "{net}: (handshakes, toa, untrusted, none, severity) = {got:?}, want {:?}",
                        (n, toa, untrusted, none, sev)
                    ));
                }
                if !g.diagnosis.text.contains(text) {
                    ck.fail(format!(
                        "{net}: diagnosis {:?} lacks {text:?}",
                        g.diagnosis.text
                    ));
                }
                if g.clients.iter().any(|c| !c.ends_with(".x")) {
                    ck.fail(format!("{net}: clients not masked: {:?}", g.clients));
                }
            }
        }
    }
    if !report.problem {
        ck.fail("the report finds no problem, want one (untrusted and TOA-less proxies)");
    }
    if ctx.kmod.enabled {
        for (counter, want) in [
            ("syn_recv_sock_toa", 3),
            ("syn_recv_sock_untrusted", 2),
            ("syn_recv_sock_no_toa", 2),
        ] {
            let moved = report.counters_moved.get(counter).copied().unwrap_or(0);
            if moved != want {
                ck.fail(format!(
                    "{counter} moved by {moved} while watching, want {want}"
                ));
            }
        }
    }
    let quiet = watch(ctx, &mut ck, |_, _| {})?;
    if !quiet.groups.is_empty() {
        ck.fail(format!(
            "nothing was sent, yet {} group(s) reported",
            quiet.groups.len()
        ));
    }
    if !diagnose::render_text(&quiet).contains("no handshake arrived for port(s) 8080, 8086 in 5 s")
    {
        ck.fail("the quiet capture does not say that nothing arrived");
    }
    ck.done()
}

use super::*;
use crate::peer::{pad_options, toa_option};
use std::net::SocketAddr;

const K: &[u8] = &DEFAULT_KINDS;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Rows of tests/parser/test_parse.c (the module's own parser tests), as
/// (name, option bytes, kinds, recognised client, malformed).
#[test]
fn reads_options_like_the_module() {
    // 10.1.2.3:8080 and [2001:db8::1]:443 as in test_parse.c's P4A and P6A
    let p4a = [0x1f, 0x90, 10, 1, 2, 3];
    let mut p6a = vec![0x01, 0xbb, 0x20, 0x01, 0x0d, 0xb8];
    p6a.extend_from_slice(&[0; 11]);
    p6a.push(1);
    let o4 = |k: u8| [&[k, 8][..], &p4a[..]].concat();
    let o6 = |k: u8| [&[k, 20][..], &p6a[..]].concat();
    let c4 = Some("10.1.2.3:8080");
    let c6 = Some("[2001:db8::1]:443");
    let mss = [2, 4, 5, 0xb4];
    type Row<'a> = (&'a str, Vec<u8>, &'a [u8], Option<&'a str>, bool);
    let rows: Vec<Row> = vec![
        ("254/8 ipv4", o4(254), K, c4, false),
        ("254/20 ipv6", o6(254), K, c6, false),
        ("253/20 ipv6", o6(253), K, c6, false),
        ("200/8 ipv4", o4(200), K, c4, false),
        (
            "253/8: every kind takes both lengths",
            o4(253),
            K,
            c4,
            false,
        ),
        ("empty list", vec![], K, None, false),
        (
            "zero length option",
            [&[254, 0][..], &p4a].concat(),
            K,
            None,
            true,
        ),
        ("length 1", [&[254, 1][..], &p4a].concat(), K, None, true),
        (
            "length 8 past end by one",
            vec![254, 8, 0x1f, 0x90, 10, 1, 2],
            K,
            None,
            true,
        ),
        (
            "length past end after valid options",
            [&mss[..], &[254, 30][..], &p4a].concat(),
            K,
            None,
            true,
        ),
        ("kind byte alone", vec![254], K, None, true),
        (
            "TOA then kind byte alone",
            [o4(254), vec![254]].concat(),
            K,
            c4,
            true,
        ),
        (
            "EOL first hides TOA",
            [vec![0], o4(254)].concat(),
            K,
            None,
            false,
        ),
        (
            "EOL then garbage: not malformed",
            [&mss[..], &[0, 254, 0, 5, 1, 0xff][..]].concat(),
            K,
            None,
            false,
        ),
        (
            "TOA, EOL, malformed bytes",
            [o6(253), vec![0, 9, 0, 9]].concat(),
            K,
            c6,
            false,
        ),
        (
            "3 NOPs then TOA",
            [vec![1, 1, 1], o6(254)].concat(),
            K,
            c6,
            false,
        ),
        (
            "254 len 6 then TOA",
            [vec![254, 6, 1, 2, 3, 4], o4(254)].concat(),
            K,
            c4,
            false,
        ),
        (
            "254 len 9 then TOA",
            [&[254, 9][..], &p4a, &[4][..], &o6(254)].concat(),
            K,
            c6,
            false,
        ),
        (
            "wrong lengths only",
            [&[254, 10][..], &p4a, &[0, 0, 200, 4, 1, 2][..]].concat(),
            K,
            None,
            false,
        ),
        (
            "unknown kind 201/8 is not TOA",
            [o4(201), o6(200)].concat(),
            K,
            c6,
            false,
        ),
        ("set {201}", o4(201), &[201], c4, false),
        (
            "first recognised wins",
            [o4(254), o6(253)].concat(),
            K,
            c4,
            false,
        ),
        ("noise 0xff", vec![0xff; 40], K, None, true),
        ("noise 0x02 (20 empty options)", vec![2; 40], K, None, false),
    ];
    for (name, bytes, kinds, client, malformed) in rows {
        let r = read_toa(&bytes, kinds);
        assert_eq!(r.toa.map(|t| t.client), client.map(sa), "{name}");
        assert_eq!(r.malformed, malformed, "{name}");
    }
    let r = read_toa(&o6(253), K);
    assert_eq!(r.toa.map(|t| (t.kind, t.len)), Some((253, LEN_V6)));
}

fn net(s: &str) -> Net {
    Net::parse(s).unwrap()
}

#[test]
fn groups_by_trusted_network_else_24_or_64() {
    let trusted = [
        net("198.51.100.0/24"),
        net("198.51.100.128/25"),
        net("2001:db8:100::/48"),
    ];
    let g = |ip: &str| {
        let (n, t) = group_of(ip.parse().unwrap(), &trusted);
        (net_text(&n), t)
    };
    assert_eq!(g("198.51.100.200"), ("198.51.100.128/25".to_owned(), true));
    assert_eq!(g("198.51.100.2"), ("198.51.100.0/24".to_owned(), true));
    assert_eq!(g("192.0.2.77"), ("192.0.2.0/24".to_owned(), false));
    assert_eq!(
        g("2001:db8:100:5::9"),
        ("2001:db8:100::/48".to_owned(), true)
    );
    assert_eq!(
        g("2001:db8:7:8:9::1"),
        ("2001:db8:7:8::/64".to_owned(), false)
    );
    assert!(contains(&net("0.0.0.0/0"), "1.2.3.4".parse().unwrap()));
    assert!(contains(&net("::/0"), "::1".parse().unwrap()));
    assert!(!contains(&net("0.0.0.0/0"), "::1".parse().unwrap()));
    assert!(contains(&net("192.0.2.1"), "192.0.2.1".parse().unwrap()));
    assert!(!contains(&net("192.0.2.1"), "192.0.2.2".parse().unwrap()));
}

#[test]
fn clients_are_masked_unless_shown() {
    assert_eq!(
        show_client(sa("203.0.113.7:51000"), Privacy::Masked),
        "203.0.113.x"
    );
    assert_eq!(
        show_client(sa("[2001:db8:c::7]:1"), Privacy::Masked),
        "2001:db8:c::x"
    );
    assert_eq!(
        show_client(sa("203.0.113.7:51000"), Privacy::Shown),
        "203.0.113.7:51000"
    );
}

fn hs(src: &str, options: Vec<u8>) -> Handshake {
    Handshake {
        src: sa(src),
        dst: sa("192.0.2.1:8080"),
        options,
        fast_open: false,
    }
}

fn toa_opts(kind: u8, client: &str) -> Vec<u8> {
    pad_options(&toa_option(kind, sa(client))).unwrap()
}

/// A trusted proxy sending TOA, an untrusted one, one sending none.
fn three_proxies() -> Vec<Handshake> {
    let mut v = Vec::new();
    for i in 0..4 {
        v.push(hs(
            &format!("198.51.100.{}:4000{i}", 2 + i % 2),
            toa_opts(254, &format!("203.0.113.{i}:5100{i}")),
        ));
    }
    for i in 0..3 {
        v.push(hs(
            &format!("192.0.2.50:4100{i}"),
            toa_opts(254, "[2001:db8:c::7]:443"),
        ));
    }
    for i in 0..2 {
        v.push(hs(&format!("10.9.8.7:4200{i}"), vec![2, 4, 5, 0xb4]));
    }
    v
}

#[test]
fn each_group_gets_its_counts_and_diagnosis() {
    let groups = group_handshakes(
        &three_proxies(),
        &[net("198.51.100.0/24")],
        K,
        Privacy::Masked,
    );
    let by = |n: &str| groups.iter().find(|g| g.network == n).unwrap();
    let ok = by("198.51.100.0/24");
    assert_eq!(
        (ok.handshakes, ok.toa, ok.untrusted, ok.none, ok.trusted),
        (4, 4, 0, 0, true)
    );
    assert_eq!(
        ok.toa_formats,
        BTreeMap::from([("kind 254 len 8 (IPv4)".to_owned(), 4)])
    );
    assert_eq!(ok.diagnosis.severity, Severity::Ok);
    assert_eq!(
        ok.diagnosis.text,
        "the proxy at 198.51.100.0/24 sends kind 254 len 8 on 100 % of handshakes, and it is inside trusted: TOA works"
    );
    assert_eq!(ok.clients, ["203.0.113.x"]);
    let out = by("192.0.2.0/24");
    assert_eq!(
        (
            out.handshakes,
            out.toa,
            out.untrusted,
            out.none,
            out.trusted
        ),
        (3, 3, 3, 0, false)
    );
    assert_eq!(out.diagnosis.severity, Severity::Problem);
    assert!(
        out.diagnosis
            .text
            .contains("sends TOA (kind 254 len 20) on 100 % of handshakes but is outside trusted"),
        "{}",
        out.diagnosis.text
    );
    assert!(out.diagnosis.text.ends_with("add --trust 192.0.2.0/24"));
    let none = by("10.9.8.0/24");
    assert_eq!((none.handshakes, none.toa, none.none), (2, 0, 2));
    assert!(none.diagnosis.text.starts_with(
        "the proxy at 10.9.8.0/24 sends none on its 2 handshake(s): the forwarding rule's client-IP mode is not TOA (set it in the proxy's console)"
    ), "{}", none.diagnosis.text);
    assert_eq!(none.diagnosis.severity, Severity::Problem);
    // IPv4 groups first, in address order
    let order: Vec<&str> = groups.iter().map(|g| g.network.as_str()).collect();
    assert_eq!(order, ["10.9.8.0/24", "192.0.2.0/24", "198.51.100.0/24"]);
}

#[test]
fn partial_toa_and_malformed_lists_are_problems() {
    let mut v = vec![hs("198.51.100.2:1", toa_opts(200, "203.0.113.1:1"))];
    v.push(hs("198.51.100.2:2", vec![]));
    v.push(hs("198.51.100.2:3", vec![254, 1, 0, 0]));
    let g = &group_handshakes(&v, &[], K, Privacy::Shown)[0];
    assert_eq!(
        (g.handshakes, g.toa, g.none, g.malformed, g.trusted),
        (3, 1, 2, 1, true)
    );
    assert_eq!(g.diagnosis.severity, Severity::Problem);
    assert!(
        g.diagnosis
            .text
            .contains("on only 33 % of handshakes (1 of 3)"),
        "{}",
        g.diagnosis.text
    );
    assert!(
        g.diagnosis.text.contains("the trusted list is empty"),
        "{}",
        g.diagnosis.text
    );
    assert_eq!(g.clients, ["203.0.113.1:1"]);
}

fn running() -> Facts {
    Facts {
        backend: Some(Backend {
            name: "module".to_owned(),
            version: Some("0.1.0".to_owned()),
        }),
        trusted: vec!["198.51.100.0/24".to_owned()],
        ports: vec![8080],
        listeners: vec![Listener {
            addr: sa("0.0.0.0:8080"),
            family: Family::Inet,
        }],
        ..Facts::default()
    }
}

#[test]
fn a_healthy_host() {
    let mut f = running();
    f.counters_before = BTreeMap::from([("syn_recv_sock_toa".to_owned(), 10)]);
    f.counters_after = BTreeMap::from([
        ("syn_recv_sock_toa".to_owned(), 14),
        ("hook_missed".to_owned(), 0),
    ]);
    let good: Vec<Handshake> = three_proxies().into_iter().take(4).collect();
    f.capture = Some((
        5,
        good,
        CaptureStats {
            packets: 8,
            ..Default::default()
        },
    ));
    let r = diagnose(&f);
    assert!(!r.problem, "{}", render_text(&r));
    assert_eq!(
        r.counters_moved,
        BTreeMap::from([("syn_recv_sock_toa".to_owned(), 4)])
    );
    let text = render_text(&r);
    assert!(text.contains("proxy network 198.51.100.0/24 (trusted):\n  handshakes 4, with TOA 4 (kind 254 len 8 (IPv4): 4), outside trusted 0, without TOA 0, malformed 0\n"), "{text}");
    assert!(
        text.contains("ok: backend module 0.1.0 is active"),
        "{text}"
    );
    assert!(text.ends_with("result: healthy\n"), "{text}");
}

#[test]
fn ipv6_toa_on_an_inet_listener_warns() {
    let mut f = running();
    f.capture = Some((5, three_proxies(), CaptureStats::default()));
    let r = diagnose(&f);
    assert!(r.problem);
    assert!(
        r.findings.iter().any(|x| x.severity == Severity::Warning
            && x.text.contains("0.0.0.0:8080 listens as AF_INET")),
        "{:?}",
        r.findings
    );
    f.listeners[0] = Listener {
        addr: sa("[::]:8080"),
        family: Family::Inet6,
    };
    let r = diagnose(&f);
    assert!(!r
        .findings
        .iter()
        .any(|x| x.text.contains("listens as AF_INET")));
}

#[test]
fn nothing_arriving_says_so() {
    let mut f = running();
    f.capture = Some((5, vec![], CaptureStats::default()));
    let r = diagnose(&f);
    assert!(!r.problem);
    assert!(render_text(&r).contains("warning: no handshake arrived for port(s) 8080 in 5 s"));
    f.listeners.clear();
    let r = diagnose(&f);
    assert!(r.problem);
    assert!(render_text(&r).contains("PROBLEM: nothing listens on TCP port 8080"));
}

#[test]
fn conflicts_and_counters() {
    let mut f = running();
    f.trusted.clear();
    f.foreign = vec!["toa_vendor (its hooks on tcp_v4_syn_recv_sock)".to_owned()];
    f.modules_refused = Some("module.sig_enforce=1 and toa.ko is not signed".to_owned());
    f.counters_after = BTreeMap::from([
        ("syn_recv_sock_toa".to_owned(), 0),
        ("syn_recv_sock_no_toa".to_owned(), 5),
        ("toa_malformed".to_owned(), 2),
        ("hook_missed".to_owned(), 1),
    ]);
    let r = diagnose(&f);
    let text = render_text(&r);
    for want in [
        "PROBLEM: another TOA module is loaded (toa_vendor",
        "warning: the kernel refuses to load modules: module.sig_enforce=1",
        "warning: the trusted list is empty",
        "warning: no TOA seen at all since load: 5 connection(s)",
        "warning: 2 segment(s) since load had a malformed TCP option list",
        "PROBLEM: hook_missed is not zero",
        "result: a problem was found",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    f.counters_after = BTreeMap::from([("syn_recv_sock_untrusted".to_owned(), 3)]);
    assert!(
        render_text(&diagnose(&f)).contains("since load TOA came only from untrusted senders (3")
    );
    let r = diagnose(&Facts::default());
    assert!(r.problem);
    assert!(render_text(&r).contains("PROBLEM: toa is not running"));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["problem"], true);
}

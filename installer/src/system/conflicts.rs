//! Other TOA implementations on the host, and a kernel that loads no
//! modules at all: what `doctor` reports as conflicts.

use crate::layout::MODULE;
use crate::system::sysroot::SystemFs;

/// Loaded modules, one per line, the name first.
const PROC_MODULES: &str = "/proc/modules";
/// Registered kprobes (debugfs), `address type symbol+offset [module] [flags]`.
const KPROBES_LIST: &str = "/sys/kernel/debug/kprobes/list";
/// 1 once module loading has been switched off until the next boot.
const MODULES_DISABLED: &str = "/proc/sys/kernel/modules_disabled";
/// The kernel functions toa hooks (module-c-shim/hook.c): another module
/// probing them handles TOA too.
const HOOKED: [&str; 3] = [
    "tcp_v4_syn_recv_sock",
    "tcp_v6_syn_recv_sock",
    "inet_sock_destruct",
];

/// Loaded modules other than ours that handle TOA: named like one
/// (`toa_vendor`, `ctoa`) or hooking the functions toa hooks.
pub fn other_toa_modules(fs: &dyn SystemFs) -> Vec<String> {
    let mut found = Vec::new();
    let modules = fs.read_to_string(PROC_MODULES).unwrap_or_default();
    let loaded: Vec<&str> = modules
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for name in &loaded {
        if *name != MODULE && name.to_ascii_lowercase().contains("toa") {
            found.push(format!("module `{name}` is loaded (its name says TOA)"));
        }
    }
    // The kprobes list names no owner (its brackets are the probed symbol's
    // module and flags such as [FTRACE]), so count: toa registers one probe
    // on each hooked function, and any beyond that belongs to someone else.
    let ours = usize::from(loaded.contains(&MODULE));
    if let Ok(text) = fs.read_to_string(KPROBES_LIST) {
        for symbol in HOOKED {
            let probes = text
                .lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .filter(|s| s.split('+').next() == Some(symbol))
                .count();
            if probes > ours {
                found.push(format!(
                    "{} probe(s) on {symbol}, {ours} of them toa's: another module hooks it, as toa does",
                    probes
                ));
            }
        }
    }
    found
}

/// Why no module can be loaded, when `kernel.modules_disabled` says so.
pub fn modules_disabled(fs: &dyn SystemFs) -> Option<String> {
    let v = fs.read_to_string(MODULES_DISABLED).ok()?;
    (v.trim() == "1")
        .then(|| "kernel.modules_disabled is 1: no module loads until the next boot".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::sysroot::fake::MemFs;

    #[test]
    fn finds_other_toa_modules_by_name_and_by_hooks() {
        // toa loaded with its three probes (as a 6.1 kernel lists them, with
        // the [FTRACE] flag), plus a second module probing tcp_v4_syn_recv_sock.
        let probes = "ffffffff81a0  r  tcp_v4_syn_recv_sock+0x0    [FTRACE]\n\
                      ffffffff81b0  r  tcp_v6_syn_recv_sock+0x0    [FTRACE]\n\
                      ffffffff81c0  k  inet_sock_destruct+0x0    [FTRACE]\n\
                      ffffffff81c0  k  do_sys_open+0x0    [FTRACE]\n";
        let fs = MemFs::new()
            .with(
                PROC_MODULES,
                "toa 16384 0 - Live 0x0\ntoa_vendor 20480 0 - Live 0x0\next4 1 0 - Live 0x0\n",
            )
            .with(
                KPROBES_LIST,
                format!("{probes}ffffffff81a0  k  tcp_v4_syn_recv_sock+0x0    [FTRACE]\n"),
            );
        assert_eq!(
            other_toa_modules(&fs),
            [
                "module `toa_vendor` is loaded (its name says TOA)",
                "2 probe(s) on tcp_v4_syn_recv_sock, 1 of them toa's: another module hooks it, as toa does",
            ]
        );
        // toa alone: its own probes are no conflict.
        let alone = MemFs::new()
            .with(PROC_MODULES, "toa 16384 0 - Live 0x0\n")
            .with(KPROBES_LIST, probes);
        assert!(other_toa_modules(&alone).is_empty());
        // toa not loaded: every probe on those functions is someone else's.
        let foreign = MemFs::new().with(KPROBES_LIST, probes);
        assert_eq!(other_toa_modules(&foreign).len(), 3);
        assert!(other_toa_modules(&MemFs::new()).is_empty());
    }

    #[test]
    fn modules_disabled_is_read() {
        assert!(modules_disabled(&MemFs::new().with(MODULES_DISABLED, "1\n")).is_some());
        assert!(modules_disabled(&MemFs::new().with(MODULES_DISABLED, "0\n")).is_none());
        assert!(modules_disabled(&MemFs::new()).is_none());
    }
}

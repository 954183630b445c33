//! Other TOA implementations on the host, and a kernel that loads no
//! modules at all: what `doctor` reports as conflicts.

use crate::layout::MODULE;
use crate::system::sysroot::SystemFs;

/// Loaded modules, one per line, the name first.
const PROC_MODULES: &str = "/proc/modules";
/// Registered kprobes (debugfs), `address type symbol+offset [module]`.
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
    if let Ok(text) = fs.read_to_string(PROC_MODULES) {
        for name in text.lines().filter_map(|l| l.split_whitespace().next()) {
            if name != MODULE && name.to_ascii_lowercase().contains("toa") {
                found.push(format!("module `{name}` is loaded (its name says TOA)"));
            }
        }
    }
    if let Ok(text) = fs.read_to_string(KPROBES_LIST) {
        for line in text.lines() {
            let Some(owner) = line
                .rsplit_once('[')
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(m, _)| m)
            else {
                continue;
            };
            let Some(symbol) = line
                .split_whitespace()
                .nth(2)
                .and_then(|s| s.split('+').next())
            else {
                continue;
            };
            if owner != MODULE && HOOKED.contains(&symbol) {
                let text = format!("module `{owner}` hooks {symbol}, as toa does");
                if !found.contains(&text) {
                    found.push(text);
                }
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
        let fs = MemFs::new()
            .with(
                PROC_MODULES,
                "toa 16384 0 - Live 0x0\ntoa_vendor 20480 0 - Live 0x0\next4 1 0 - Live 0x0\n",
            )
            .with(
                KPROBES_LIST,
                "ffffffff81a0  r  tcp_v4_syn_recv_sock+0x0    [toa]\n\
                 ffffffff81a0  k  tcp_v4_syn_recv_sock+0x0    [vtoa]\n\
                 ffffffff81b0  k  tcp_v6_syn_recv_sock+0x0    [vtoa]\n\
                 ffffffff81c0  k  do_sys_open+0x0    [tracer]\n",
            );
        assert_eq!(
            other_toa_modules(&fs),
            [
                "module `toa_vendor` is loaded (its name says TOA)",
                "module `vtoa` hooks tcp_v4_syn_recv_sock, as toa does",
                "module `vtoa` hooks tcp_v6_syn_recv_sock, as toa does",
            ]
        );
        assert!(other_toa_modules(&MemFs::new()).is_empty());
    }

    #[test]
    fn modules_disabled_is_read() {
        assert!(modules_disabled(&MemFs::new().with(MODULES_DISABLED, "1\n")).is_some());
        assert!(modules_disabled(&MemFs::new().with(MODULES_DISABLED, "0\n")).is_none());
        assert!(modules_disabled(&MemFs::new()).is_none());
    }
}

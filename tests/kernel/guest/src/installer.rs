//! The static `toa-install` binary itself, in the booted kernel: the
//! initramfs carries it as /toa/toa-install. With the eBPF backend it must
//! attach the programs (`attach`, what toa-ebpf.service runs at boot),
//! pass its own self-test, print the counters in /proc/net/toa_stats's
//! layout, change the trusted networks live and uninstall leaving nothing
//! pinned. With the module it must verify the loaded module and refuse to
//! attach eBPF beside it (exit 12).

use std::process::{Command, Output};

use crate::ctx::Ctx;
use crate::ebpf;

/// Where the initramfs puts the binary.
pub const BINARY: &str = "/toa/toa-install";

fn run(args: &[&str]) -> Result<Output, String> {
    let out = Command::new(BINARY)
        .args(args)
        .output()
        .map_err(|e| format!("{BINARY} {}: {e}", args.join(" ")))?;
    println!(
        "# toa-install {} -> {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        indent(&out.stdout),
        indent(&out.stderr)
    );
    Ok(out)
}

fn indent(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .lines()
        .map(|l| format!("#   {l}\n"))
        .collect()
}

fn expect(args: &[&str], code: i32) -> Result<String, String> {
    let out = run(args)?;
    if out.status.code() != Some(code) {
        return Err(format!(
            "toa-install {} exited {:?}, expected {code}: {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn has(text: &str, needle: &str, what: &str) -> Result<(), String> {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("{what}: no {needle:?} in {text:?}"))
    }
}

/// The case.
pub fn toa_install(ctx: &mut Ctx) -> Result<(), String> {
    // uninstall takes its run lock there
    std::fs::create_dir_all("/run").map_err(|e| format!("mkdir /run: {e}"))?;
    if ctx.kmod.ebpf {
        with_ebpf(ctx)
    } else {
        with_module()
    }
}

fn with_ebpf(ctx: &mut Ctx) -> Result<(), String> {
    // The harness attached through the library; the binary attaches anew.
    ctx.kmod.unload()?;
    let said = expect(
        &[
            "attach",
            "--trust",
            "10.0.0.0/8",
            "--trust",
            "2001:db8::/32",
        ],
        0,
    )?;
    has(&said, "toa eBPF backend attached", "attach")?;
    let verified = expect(&["verify"], 0)?;
    has(&verified, "ok: IPv4: TOA for", "verify")?;
    has(&verified, "ok: IPv6: TOA for", "verify")?;
    has(&verified, "toa verify: passed", "verify")?;
    let stats = expect(&["stats"], 0)?;
    let first = stats.lines().next().unwrap_or_default();
    has(first, "CPU0", "stats header")?;
    let toa = crate::kmod::parse_stats(&stats)?.get("syn_recv_sock_toa");
    if toa < 2 {
        return Err(format!(
            "stats: syn_recv_sock_toa {toa} after verify's two TOA handshakes"
        ));
    }
    let status = expect(&["status"], 0)?;
    has(&status, "backend:   ebpf", "status")?;
    has(&status, "trusted:   10.0.0.0/8,2001:db8::/32", "status")?;
    let again = expect(&["attach", "--trust", "192.0.2.0/24"], 0)?;
    has(&again, "trusted networks set", "attach when attached")?;
    let live = toa_ebpf::trusted().map_err(|e| e.to_string())?;
    if live != [("192.0.2.0".parse().unwrap(), 24)] {
        return Err(format!("trusted after the second attach: {live:?}"));
    }
    let gone = expect(&["uninstall", "--yes"], 0)?;
    has(&gone, "toa is uninstalled", "uninstall")?;
    ebpf::check_gone()?;
    let nothing = expect(&["uninstall", "--yes"], 0)?;
    has(&nothing, "nothing", "second uninstall")
}

fn with_module() -> Result<(), String> {
    let verified = expect(&["verify"], 0)?;
    has(&verified, "toa verify: passed", "verify")?;
    let status = expect(&["status"], 0)?;
    has(&status, "backend:   module", "status")?;
    let refused = run(&["attach"])?;
    if refused.status.code() != Some(12) {
        return Err(format!(
            "attach beside the module exited {:?}, expected 12",
            refused.status.code()
        ));
    }
    if toa_ebpf::is_present() {
        return Err("attach beside the module pinned something".into());
    }
    Ok(())
}

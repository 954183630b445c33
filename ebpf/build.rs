//! Compiles the eBPF programs (../bpf/) with clang into one object that
//! src/lib.rs embeds, so toa-install stays one static file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap();
    let bpf = root.join("bpf");
    let shim = root.join("module-c-shim");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("toa.bpf.o");
    for dir in [&bpf] {
        for e in std::fs::read_dir(dir).expect("read bpf/").flatten() {
            println!("cargo:rerun-if-changed={}", e.path().display());
        }
    }
    println!("cargo:rerun-if-changed={}", shim.join("parse.h").display());
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    // linux/types.h wants asm/types.h, which Debian keeps per architecture.
    let asm = Path::new("/usr/include").join(format!("{}-linux-gnu", std::env::consts::ARCH));
    let status = Command::new(&clang)
        // -mcpu=v2 (Linux 4.14+): compare-with-immediate jumps (JLT/JLE),
        // whose bounds 5.10's verifier tracks; v1 puts the constant in a
        // register first.
        .args(["-target", "bpf", "-mcpu=v2", "-O2", "-g", "-ffreestanding"])
        .args(["-Wall", "-Wextra", "-Werror"])
        .arg(format!("-I{}", shim.display()))
        .arg(format!("-I{}", asm.display()))
        .arg("-c")
        .arg(bpf.join("toa.c"))
        .arg("-o")
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed ({s}) compiling {}", bpf.join("toa.c").display()),
        Err(e) => panic!(
            "cannot run {clang} ({e}): the eBPF programs are compiled with clang; \
             install it (Debian/Ubuntu: apt-get install clang linux-libc-dev) or set CLANG=/path/to/clang"
        ),
    }
}

//! toa-kernel-cases: runs inside a QEMU guest (as /init's child) and asserts
//! toa.ko's behaviour through hand-made TCP connections over a tun device.
//!
//! Prints `CASE <name>: PASS` or `CASE <name>: FAIL <what differed>` per
//! case, then `CASES: <n> passed, <m> failed`; exits 1 if any failed.

mod bench;
mod cases;
mod ctx;
mod demo;
mod doctor;
mod ebpf;
mod installer;
mod kmod;
mod net;
mod traffic;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::bench::BenchOpts;
use crate::ctx::Ctx;
use crate::kmod::Kmod;

const USAGE: &str = "\
usage: toa-kernel-cases [OPTIONS]          run the cases
       toa-kernel-cases bench [OPTIONS]    measure what toa.ko and the eBPF
                                           backend cost against nothing loaded
       toa-kernel-cases demo-client --proxy IP --client IP:PORT --port N
                                           one TOA connection to a local server

options:
  --module PATH   toa.ko to load (default /toa/toa.ko)
  --backend B     module (default) or ebpf: attach the eBPF programs with
                  toa-ebpf instead of loading toa.ko
  --case NAME     run only this case (repeatable)
  --list          list the cases and exit
  --count N       connections in the concurrency case (default 10000)
  --no-module     load nothing and expect every address unchanged: checks
                  the test plumbing on a kernel without toa.ko
bench options:
  --rounds N      rounds; each runs every state (nothing, toa.ko with each
                  getname hook, eBPF, an empty getpeername program), in an
                  order rotated by one per round (5)
  --conns N       connections per accept-rate round (1000)
  --calls N       getpeername() calls per round (200000)
  --hold N        connections held for the memory figure (2000)
  --mem-rounds N  memory rounds (nothing, toa.ko, eBPF, rotated), after one
                  warm-up round per state (3)
";

struct Args {
    bench: bool,
    module: PathBuf,
    cases: Vec<String>,
    list: bool,
    count: usize,
    no_module: bool,
    ebpf: bool,
    bench_opts: BenchOpts,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        bench: false,
        module: PathBuf::from("/toa/toa.ko"),
        cases: Vec::new(),
        list: false,
        count: 10_000,
        no_module: false,
        ebpf: false,
        bench_opts: BenchOpts {
            rounds: 5,
            conns: 1000,
            calls: 200_000,
            hold: 2000,
            mem_rounds: 3,
        },
    };
    let mut it = std::env::args().skip(1);
    let num = |v: Option<String>, flag: &str| -> Result<usize, String> {
        v.ok_or(format!("{flag} needs a value"))?
            .parse()
            .map_err(|_| format!("{flag} needs a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "bench" => a.bench = true,
            "--module" => a.module = it.next().ok_or("--module needs a path")?.into(),
            "--case" => a.cases.push(it.next().ok_or("--case needs a name")?),
            "--list" => a.list = true,
            "--count" => a.count = num(it.next(), "--count")?,
            "--no-module" => a.no_module = true,
            "--backend" => match it.next().as_deref() {
                Some("module") => a.ebpf = false,
                Some("ebpf") => a.ebpf = true,
                _ => return Err("--backend needs module or ebpf".into()),
            },
            "--rounds" => a.bench_opts.rounds = num(it.next(), "--rounds")?,
            "--conns" => a.bench_opts.conns = num(it.next(), "--conns")?,
            "--calls" => a.bench_opts.calls = num(it.next(), "--calls")?,
            "--hold" => a.bench_opts.hold = num(it.next(), "--hold")?,
            "--mem-rounds" => a.bench_opts.mem_rounds = num(it.next(), "--mem-rounds")?,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    for c in &a.cases {
        if !cases::CASES.iter().any(|(n, _)| n == c) {
            return Err(format!("unknown case {c:?} (see --list)"));
        }
    }
    Ok(a)
}

fn raise_fd_limit() {
    let want = 65536;
    let l = libc::rlimit {
        rlim_cur: want,
        rlim_max: want,
    };
    // SAFETY: a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
        // Not root: keep the hard limit.
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid pointer.
        unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur);
            cur.rlim_cur = cur.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &cur);
        }
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("demo-client") {
        return match demo::parse(std::env::args().skip(2)).and_then(|o| demo::run(&o)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("toa-kernel-cases demo-client: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("toa-kernel-cases: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        for (n, _) in cases::CASES {
            println!("{n}");
        }
        return ExitCode::SUCCESS;
    }
    raise_fd_limit();
    // Quiet panics: they are reported as case failures.
    std::panic::set_hook(Box::new(|_| {}));
    let kmod = Kmod {
        path: args.module.clone(),
        enabled: !args.no_module,
        ebpf: args.ebpf,
    };
    if kmod.ebpf && kmod.enabled {
        ebpf::ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = ebpf::probe() {
            println!("CASE probe: FAIL {e}");
            println!("CASES: 0 passed, 1 failed");
            return ExitCode::from(1);
        }
    }
    if kmod.enabled && !kmod.ebpf && !args.module.exists() {
        eprintln!(
            "toa-kernel-cases: {} not found (pass --module PATH, or --no-module to check the plumbing only)",
            args.module.display()
        );
        return ExitCode::from(2);
    }
    let mut ctx = match Ctx::new(kmod, args.count) {
        Ok(c) => c,
        Err(e) => {
            println!("CASE setup: FAIL {e}");
            println!("CASES: 0 passed, 1 failed");
            return ExitCode::from(1);
        }
    };
    if args.bench {
        let r = bench::run(&mut ctx, &args.bench_opts);
        if ctx.kmod.enabled && !ctx.kmod.ebpf && ctx.kmod.is_loaded() {
            let _ = ctx.kmod.unload();
        }
        if ebpf::is_loaded() {
            let _ = ebpf::unload();
        }
        return match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                println!("BENCH FAIL {e}");
                ExitCode::from(1)
            }
        };
    }
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in cases::CASES {
        if !args.cases.is_empty() && !args.cases.iter().any(|c| c == name) {
            continue;
        }
        let r = ctx.kmod.ensure_default().and_then(|()| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut ctx)))
                .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(p))))
        });
        match r {
            Ok(()) => {
                passed += 1;
                println!("CASE {name}: PASS");
            }
            Err(e) => {
                failed += 1;
                println!("CASE {name}: FAIL {e}");
            }
        }
    }
    if ctx.kmod.enabled && ctx.kmod.is_loaded() {
        if let Err(e) = ctx.kmod.unload() {
            failed += 1;
            println!("CASE final_unload: FAIL {e}");
        }
    }
    if ctx.kmod.enabled && ctx.kmod.ebpf {
        match ebpf::check_gone() {
            Ok(()) => {
                passed += 1;
                println!("CASE detach_leaves_nothing: PASS");
            }
            Err(e) => {
                failed += 1;
                println!("CASE detach_leaves_nothing: FAIL {e}");
            }
        }
    }
    println!("CASES: {passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

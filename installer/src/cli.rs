//! The command line: what `toa-install` accepts, and running it.

use crate::commands::detect::{self, Target, Verbosity};
use crate::commands::report::{ErrorDoc, Problem};
use crate::effects::host::RealHost;
use crate::effects::progress::{Display, Reporter};
use crate::exit::{Categorized, Exit};
use crate::plan::Plan;
use crate::system::security::OurModule;
use crate::system::sysroot::{open_root, RootFs};
use clap::{ArgAction, Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// Installs the toa kernel module, which makes servers behind an L4 proxy
/// (EdgeOne, CLB, LVS, DPVS) see the real client address in accept() and
/// getpeername().
#[derive(Debug, Parser)]
#[command(
    name = "toa-install",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = Exit::help()
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Without a command: install (see `toa-install install --help`).
    #[command(flatten)]
    pub install: InstallArgs,

    /// What to do (default: install).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `toa-install install` (or bare `toa-install`).
#[derive(Debug, Clone, Args, Default)]
pub struct InstallArgs {
    /// Build the module on this host through DKMS (installing the kernel
    /// headers, gcc, make and dkms) instead of trying a prebuilt module.
    #[arg(long, conflicts_with = "prebuilt_only")]
    pub compile: bool,

    /// Use a prebuilt module from --mirror/--offline only; never compile.
    #[arg(long)]
    pub prebuilt_only: bool,

    /// A prebuilt-module mirror (an HTTPS URL holding index.json);
    /// repeatable, tried in order. Default: the TOA_MIRROR environment
    /// variable.
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,

    /// A copy of a mirror in a local directory (no network needed).
    #[arg(long, value_name = "DIR")]
    pub offline: Option<PathBuf>,

    /// Honour TOA only from senders in this network (your proxies, e.g.
    /// 10.0.0.0/8); repeatable. Written to /etc/modprobe.d/toa.conf and
    /// applied to the loaded module. Without it the current list is kept.
    #[arg(long = "trust", value_name = "CIDR")]
    pub trust: Vec<String>,

    /// Print the exact plan (packages, commands, files) and change nothing.
    /// Does not need root; works with --root and --kernel-release.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask anything (for automation). toa-install never prompts, so
    /// this is accepted for scripts that always pass it.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print one JSON document on standard output instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print nothing but errors; the exit code tells the outcome.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more: where each fact was read from (detect); each command run,
    /// how long it took and the end of its output when it failed (install,
    /// uninstall).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Inspect the system image mounted at DIR instead of this host
    /// (for image pipelines and support cases). Its kernel is the newest
    /// one under DIR/lib/modules unless --kernel-release says otherwise.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Work for kernel release R (as `uname -r` prints it) instead of the
    /// running kernel.
    #[arg(long, global = true, value_name = "R")]
    pub kernel_release: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install and load toa for the running kernel (the default command):
    /// nothing if it is already installed and loaded; else a verified
    /// prebuilt module from --mirror/--offline; else compile it through
    /// DKMS. Then load it, apply --trust, run the self-test, and only then
    /// set up loading at boot. A failure undoes what the run did (installed
    /// packages are kept and listed). Needs root, except with --dry-run.
    Install(InstallArgs),

    /// Show what toa-install sees: distribution, package manager, kernel,
    /// header package, Secure Boot and lockdown, SUSE's unsupported-module
    /// gate, and any toa module already loaded. Changes nothing and does not
    /// need root.
    ///
    /// Exits 0 when toa-install supports this system, 4 when it does not
    /// (unknown distribution, EL6, kernel older than 3.10), 2 when
    /// --root/--kernel-release cannot be used. Problems that would stop a
    /// later install (Secure Boot, SUSE gate, a foreign toa module) are
    /// listed as warnings with the next step.
    Detect,

    /// Show whether toa is loaded, its version, how toa-install installed
    /// it (prebuilt or dkms), whether it loads at boot, the trusted list
    /// (with a warning when it is empty: every sender is then believed),
    /// and a summary of its counters. Changes nothing; does not need root.
    Status,

    /// End-to-end self-test of the loaded module: in a private network
    /// namespace (nothing outside it is touched), a test peer plays an L4
    /// proxy and opens an IPv4 and an IPv6 connection carrying TOA to local
    /// listeners. Passes only if accept() and getpeername() return exactly
    /// the injected client addresses and /proc/net/toa_stats counted them.
    /// The test proxy's addresses are taken from the module's trusted list
    /// when it is set. Needs root. Exits 10 when the test fails.
    Verify,

    /// Why does my server still see the proxy's address? Reports the active
    /// backend, its version, the trusted list, whether the counters moved,
    /// conflicts (another TOA module, a kernel that refuses modules, an
    /// empty trusted list), the listening sockets on --port; and, with
    /// --port, watches for --seconds the handshakes arriving for those ports
    /// (a packet socket; nothing is changed) and says per proxy network
    /// whether it sends TOA, which kind, and whether it is trusted, with the
    /// next step. Client addresses are masked unless --show-clients. Needs
    /// root. Exits 0 when healthy, 10 when a problem was found.
    Doctor(DoctorArgs),

    /// Print toa's counters: in /proc/net/toa_stats's layout (one column
    /// per CPU), or summed in the Prometheus text exposition format.
    /// Does not need root.
    Stats(StatsArgs),

    /// Take toa off this host: unload it (saying what uses it when it
    /// cannot be), remove /etc/modules-load.d/toa.conf and
    /// /etc/modprobe.d/toa.conf, `dkms remove` it for every kernel, delete
    /// its source under /usr/src, any prebuilt toa.ko under
    /// /lib/modules/*/extra (then depmod), and toa-install's state in
    /// /var/lib/toa-install. Packages toa-install installed are kept unless
    /// --purge-deps; a source tree and DKMS registration that belong to a
    /// package (toa-dkms) are left to it, with the command that removes
    /// them. Running it again finds nothing to do and exits 0.
    /// Needs root, except with --dry-run.
    ///
    /// Exits 9 when the module cannot be unloaded (then nothing is
    /// removed), 7 when `dkms remove` fails, 5 when removing packages
    /// fails; a run stopped part way is finished by running it again.
    Uninstall(UninstallArgs),

    /// Prebuilt mirrors, for operators hosting their own.
    #[command(subcommand)]
    Mirror(MirrorCommand),
}

/// `toa-install uninstall`.
#[derive(Debug, Clone, Args, Default)]
pub struct UninstallArgs {
    /// Also remove the packages toa-install installed (exactly those listed
    /// in /var/lib/toa-install/state.json: headers, compiler, dkms...).
    #[arg(long)]
    pub purge_deps: bool,

    /// Print what would be removed and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask anything (toa-install never prompts; accepted for
    /// scripts that always pass it).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `toa-install doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// A TCP port your servers listen on behind the proxy (repeatable):
    /// its handshakes are watched and its listeners checked.
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,

    /// How long to watch the ports.
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::commands::doctor::DEFAULT_SECONDS,
        value_parser = clap::value_parser!(u64).range(1..=crate::commands::doctor::MAX_SECONDS)
    )]
    pub seconds: u64,

    /// Show client addresses in full (default: 203.0.113.x, for support logs).
    #[arg(long)]
    pub show_clients: bool,
}

/// `toa-install stats`.
#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// The layout of the output.
    #[arg(long, value_enum, default_value = "proc")]
    pub format: crate::commands::stats::Format,

    /// Replace FILE atomically instead of printing (for node_exporter's
    /// textfile collector).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `toa-install mirror ...`.
#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Build toa.ko against each kernel header tree and write a mirror
    /// (index.json plus one .tar.gz per kernel) that `toa-install --mirror`
    /// or `--offline` can use. Entries already in the output directory for
    /// other kernels are kept. Needs make and gcc, not root.
    ///
    /// Example: toa-install mirror build --kernel-tree /usr/src/linux-headers-6.1.0-27-amd64 --out /srv/toa
    Build {
        /// A configured kernel build tree, as /lib/modules/<release>/build
        /// points to (repeatable).
        #[arg(long = "kernel-tree", value_name = "DIR", required = true)]
        kernel_trees: Vec<PathBuf>,

        /// The mirror directory to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,

        /// The distribution label stored in the index (default: this
        /// host's, e.g. debian-12).
        #[arg(long, value_name = "NAME")]
        distro: Option<String>,
    },
}

impl GlobalArgs {
    /// Where `install` and `uninstall` show their progress: nothing with
    /// `--json`, `--quiet` or `--dry-run` (the plan is the output).
    fn reporter(&self, dry_run: bool) -> Reporter<std::io::Stderr> {
        let silent = self.json || dry_run;
        let verbosity = if silent {
            Verbosity::Quiet
        } else {
            self.verbosity()
        };
        Reporter::stderr(Display::for_stderr(silent || self.quiet), verbosity)
    }

    fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

/// Runs the parsed command line and returns how the run ended.
pub fn run(cli: &Cli) -> Exit {
    match &cli.command {
        None => run_install(&cli.global, &cli.install),
        Some(Command::Install(args)) => run_install(&cli.global, args),
        Some(Command::Detect) => run_detect(&cli.global),
        Some(Command::Verify) => run_verify(&cli.global),
        Some(Command::Status) => run_status(&cli.global),
        Some(Command::Doctor(args)) => run_doctor(&cli.global, args),
        Some(Command::Stats(args)) => run_stats(&cli.global, args),
        Some(Command::Uninstall(args)) => run_uninstall(&cli.global, args),
        Some(Command::Mirror(MirrorCommand::Build {
            kernel_trees,
            out,
            distro,
        })) => run_mirror_build(&cli.global, kernel_trees, out, distro.as_deref()),
    }
}

fn run_install(args: &GlobalArgs, install: &InstallArgs) -> Exit {
    let mut mirrors = install.mirrors.clone();
    if mirrors.is_empty() {
        if let Ok(url) = std::env::var("TOA_MIRROR") {
            mirrors.extend(url.split_whitespace().map(str::to_owned));
        }
    }
    let request = crate::commands::install::Request {
        compile: install.compile,
        prebuilt_only: install.prebuilt_only,
        mirrors,
        offline: install.offline.clone(),
        trust: install.trust.clone(),
        dry_run: install.dry_run,
        root: args.root.clone(),
        kernel_release: args.kernel_release.clone(),
        quiet: args.quiet || args.json,
    };
    let mut progress = args.reporter(install.dry_run);
    let doc = crate::commands::install::run(&request, euid_is_root(), &mut progress);
    drop(progress);
    let done = if doc.changed {
        "toa is installed, loaded, verified and set to load at boot."
    } else {
        "toa is already installed and loaded: nothing changed."
    };
    let ending = Ending {
        plan: doc.plan.as_ref().map(Plan::render),
        done,
        warnings: &doc.warnings,
        packages: ("packages installed", &doc.packages_installed),
        error: doc.error.as_ref(),
    };
    print_ending(args, &doc, doc.exit(), ending)
}

fn run_uninstall(args: &GlobalArgs, uninstall: &UninstallArgs) -> Exit {
    if args.kernel_release.is_some() {
        return fail(
            args,
            Exit::Usage,
            "uninstall removes toa for every kernel: --kernel-release does not apply. \
             Next step: run it without --kernel-release",
        );
    }
    let request = crate::commands::uninstall::Request {
        purge_deps: uninstall.purge_deps,
        dry_run: uninstall.dry_run,
        root: args.root.clone(),
    };
    let mut progress = args.reporter(uninstall.dry_run);
    let doc = crate::commands::uninstall::run(&request, euid_is_root(), &mut progress);
    drop(progress);
    let done = if doc.changed {
        "toa is uninstalled."
    } else {
        "nothing of toa is installed: nothing changed."
    };
    let ending = Ending {
        plan: doc.plan.as_ref().map(crate::plan::uninstall::Plan::render),
        done,
        warnings: &doc.warnings,
        packages: ("packages removed", &doc.packages_removed),
        error: doc.error.as_ref(),
    };
    print_ending(args, &doc, doc.exit(), ending)
}

/// What an `install` or `uninstall` run prints when it ends.
struct Ending<'a> {
    /// The `--dry-run` plan.
    plan: Option<String>,
    /// Said on success (unless `--quiet`).
    done: &'a str,
    warnings: &'a [String],
    /// What the run did with packages, and which.
    packages: (&'a str, &'a [String]),
    error: Option<&'a ErrorDoc>,
}

/// Prints how a run ended: the JSON document `doc` with `--json`;
/// otherwise the plan or the success line on standard output, then the
/// warnings and packages (unless `--quiet`) and the error on standard
/// error.
fn print_ending<D: serde::Serialize>(
    args: &GlobalArgs,
    doc: &D,
    exit: Exit,
    end: Ending<'_>,
) -> Exit {
    if args.json {
        let mut stdout = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut stdout, doc);
        let _ = writeln!(stdout);
        return exit;
    }
    if let Some(plan) = end.plan {
        print!("{plan}");
        if !args.quiet {
            eprintln!("(dry run: nothing was changed)");
        }
    } else if exit == Exit::Ok && !args.quiet {
        println!("{}", end.done);
    }
    if !args.quiet {
        for warning in end.warnings {
            eprintln!("warning: {warning}");
        }
        let (what, packages) = end.packages;
        if !packages.is_empty() {
            eprintln!("{what}: {}", packages.join(" "));
        }
    }
    if let Some(error) = end.error {
        eprintln!("error: {}", error.problem.message);
        for problem in &error.undo_problems {
            eprintln!("error: not undone: {problem}");
        }
    }
    exit
}

fn run_detect(args: &GlobalArgs) -> Exit {
    let fs = match open_root(args.root.as_deref()) {
        Ok(fs) => fs,
        Err(message) => return fail(args, Exit::Usage, &message),
    };
    let ours = OurModule::this_release();
    let target = Target {
        fs: &fs,
        host: &RealHost,
        live: fs.is_live(),
        kernel_release: args.kernel_release.as_deref(),
        ours: &ours,
    };
    let report = detect::detect(target, fs.root().display().to_string());
    let exit = report.exit();

    if args.json {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe is the reader's choice; nothing useful to report.
        let _ = serde_json::to_writer_pretty(&mut stdout, &report);
        let _ = writeln!(stdout);
        return exit;
    }

    let text = detect::render_text(&report, args.verbosity());
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    let mut stderr = std::io::stderr().lock();
    if args.verbosity() != Verbosity::Quiet {
        for warning in &report.warnings {
            let _ = writeln!(stderr, "warning: {}", warning.message);
        }
    }
    if let Some(error) = &report.error {
        let _ = writeln!(stderr, "error: {}", error.message);
    }
    exit
}

fn refuse_root_options(args: &GlobalArgs, command: &str) -> Option<Exit> {
    if args.root.is_some() || args.kernel_release.is_some() {
        let message = format!(
            "{command} works on the running system only: --root and --kernel-release are for `detect` and `--dry-run`. Next step: run it without them on the host itself"
        );
        return Some(fail(args, Exit::Usage, &message));
    }
    None
}

fn euid_is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn run_status(args: &GlobalArgs) -> Exit {
    if let Some(exit) = refuse_root_options(args, "status") {
        return exit;
    }
    let status = crate::commands::status::gather(&RootFs::host());
    if args.json {
        let mut stdout = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut stdout, &status);
        let _ = writeln!(stdout);
        return Exit::Ok;
    }
    if !args.quiet {
        print!("{}", crate::commands::status::render_text(&status));
        for warning in &status.warnings {
            eprintln!("warning: {warning}");
        }
    }
    Exit::Ok
}

fn run_doctor(args: &GlobalArgs, doctor: &DoctorArgs) -> Exit {
    use crate::commands::doctor;
    if let Some(exit) = refuse_root_options(args, "doctor") {
        return exit;
    }
    if !euid_is_root() {
        let message = "toa-install doctor needs root (it reads the kernel's settings and watches traffic with a packet socket). Next step: run it again with sudo";
        return fail(args, Exit::NotRoot, message);
    }
    let request = doctor::Request {
        ports: doctor.ports.clone(),
        seconds: doctor.seconds,
        privacy: if doctor.show_clients {
            crate::plan::diagnose::Privacy::Shown
        } else {
            crate::plan::diagnose::Privacy::Masked
        },
    };
    if !args.json && !args.quiet && !request.ports.is_empty() {
        eprintln!(
            "watching the handshakes for port(s) {} for {} s...",
            request
                .ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            request.seconds
        );
    }
    let report = match doctor::run(&RootFs::host(), &RealHost, &request) {
        Ok(r) => r,
        Err(e) => return fail(args, e.category(), &e.to_string()),
    };
    if args.json {
        let mut stdout = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut stdout, &report);
        let _ = writeln!(stdout);
    } else if !args.quiet {
        print!("{}", crate::plan::diagnose::render_text(&report));
    }
    if report.problem {
        Exit::VerifyFailed
    } else {
        Exit::Ok
    }
}

fn run_stats(args: &GlobalArgs, stats: &StatsArgs) -> Exit {
    use crate::commands::stats;
    if let Some(exit) = refuse_root_options(args, "stats") {
        return exit;
    }
    let result =
        stats::render(&RootFs::host(), stats.format).and_then(|text| match &stats.output {
            Some(path) => stats::write_atomically(path, &text),
            None => {
                print!("{text}");
                Ok(())
            }
        });
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => fail(args, e.category(), &e.to_string()),
    }
}

fn run_verify(args: &GlobalArgs) -> Exit {
    if let Some(exit) = refuse_root_options(args, "verify") {
        return exit;
    }
    if !euid_is_root() {
        let message = "toa-install verify needs root (it creates a network namespace and a tun device). Next step: run it again with sudo";
        return fail(args, Exit::NotRoot, message);
    }
    let result = crate::commands::verify::run(None);
    if args.json {
        let doc = match &result {
            Ok(report) => serde_json::json!({
                "passed": true, "checks": report.checks, "warnings": report.warnings, "error": null,
            }),
            Err(message) => serde_json::json!({
                "passed": false, "checks": [], "warnings": [],
                "error": Problem::new(Exit::VerifyFailed, message.clone()),
            }),
        };
        println!("{doc:#}");
    } else {
        match &result {
            Ok(report) => {
                if !args.quiet {
                    for check in &report.checks {
                        println!("ok: {check}");
                    }
                    for warning in &report.warnings {
                        eprintln!("warning: {warning}");
                    }
                    println!("toa verify: passed");
                }
            }
            Err(message) => eprintln!("error: toa verify failed: {message}"),
        }
    }
    match result {
        Ok(_) => Exit::Ok,
        Err(_) => Exit::VerifyFailed,
    }
}

fn run_mirror_build(
    args: &GlobalArgs,
    trees: &[PathBuf],
    out: &std::path::Path,
    distro: Option<&str>,
) -> Exit {
    let distro = distro.map(str::to_owned).unwrap_or_else(|| {
        crate::system::distro::identify(&RootFs::host())
            .map(|id| match id.version_id {
                Some(v) => format!("{}-{v}", id.id),
                None => id.id,
            })
            .unwrap_or_else(|_| "unknown".to_owned())
    });
    let quiet = args.quiet || args.json;
    let mut progress = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    match crate::backend::module::mirror::build(trees, out, &distro, &mut progress) {
        Ok(index) => {
            if args.json {
                let doc = serde_json::json!({"changed": true, "index": index});
                println!("{doc:#}");
            } else if !args.quiet {
                println!(
                    "{} now holds {} prebuilt module(s); serve it over HTTPS and pass --mirror URL, \
                     or copy it and pass --offline DIR",
                    out.display(),
                    index.entries.len()
                );
            }
            Exit::Ok
        }
        Err(e) => fail(args, e.category(), &e.to_string()),
    }
}

/// Reports an error that stopped the command before it produced a report:
/// as a JSON document with `--json`, else on standard error.
fn fail(args: &GlobalArgs, exit: Exit, message: &str) -> Exit {
    if args.json {
        let doc = serde_json::json!({
            "supported": false,
            "error": Problem::new(exit, message.to_owned()),
        });
        println!("{doc:#}");
    } else {
        eprintln!("error: {message}");
    }
    exit
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "toa-install",
            "detect",
            "--json",
            "--root",
            "/img",
            "--kernel-release",
            "6.1.0-27-amd64",
            "-v",
        ])
        .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.root, Some(PathBuf::from("/img")));
        assert_eq!(cli.global.kernel_release.as_deref(), Some("6.1.0-27-amd64"));
        assert_eq!(cli.global.verbosity(), Verbosity::Verbose);
    }

    #[test]
    fn mirror_build_takes_several_trees() {
        let cli = Cli::try_parse_from([
            "toa-install",
            "mirror",
            "build",
            "--kernel-tree",
            "/a",
            "--kernel-tree",
            "/b",
            "--out",
            "/srv/toa",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Mirror(MirrorCommand::Build { kernel_trees, .. })) => {
                assert_eq!(kernel_trees, [PathBuf::from("/a"), PathBuf::from("/b")])
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["toa-install", "mirror", "build", "--out", "/x"]).is_err());
    }

    #[test]
    fn quiet_and_verbose_conflict() {
        let err = Cli::try_parse_from(["toa-install", "-q", "-v", "detect"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(Exit::Usage.code()));
    }
}

//! The command line: what `toa-install` accepts, parsed and handed to
//! [`commands`].

use crate::commands::{self, report::Output};
use crate::exit::Exit;
use crate::plan::diagnose::Privacy;
use clap::{ArgAction, Args, Parser, Subcommand};
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
    /// 10.0.0.0/8); repeatable. Applied live (the module's parameter, the
    /// eBPF backend's trie) and kept for boot (/etc/modprobe.d/toa.conf,
    /// toa-ebpf.service). Without it the current list is kept.
    #[arg(long = "trust", value_name = "CIDR")]
    pub trust: Vec<String>,

    /// How TOA gets into the kernel: `module` (the toa kernel module,
    /// prebuilt or compiled), `ebpf` (programs built into toa-install: no
    /// module, headers or compiler; Linux 5.10+ with cgroup v2), or `auto`:
    /// the module where it can be fetched or built and loaded, else eBPF,
    /// with one line saying why. The two never run at once (exit 12).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: crate::commands::install::Choice,
    /// Also have a systemd timer write toa's counters to DIR/toa.prom every
    /// 15 s (replaced atomically), for node_exporter's textfile collector
    /// (DIR is its --collector.textfile.directory, and must exist). The
    /// units are /etc/systemd/system/toa-metrics.{service,timer}; they run
    /// this toa-install binary. Again with another DIR moves the file
    /// there. Without this option an installed timer is kept as it is;
    /// `toa-install uninstall` removes it and DIR/toa.prom. Needs systemd
    /// (exit 4 without).
    #[arg(long, value_name = "DIR")]
    pub metrics_textfile: Option<PathBuf>,

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
    /// set up loading at boot. Where the module cannot be fetched, built or
    /// loaded, the eBPF backend instead (--backend). A failure undoes what
    /// the run did (installed packages are kept and listed). Needs root,
    /// except with --dry-run.
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

    /// Show which backend is active (module or ebpf), its version, how
    /// toa-install installed it (prebuilt, dkms or ebpf), whether it comes
    /// back at boot, the trusted list
    /// (with a warning when it is empty: every sender is then believed),
    /// a summary of its counters, and the --metrics-textfile timer when set
    /// up. Changes nothing; does not need root.
    Status,

    /// End-to-end self-test of the active backend: in a private network
    /// namespace (nothing outside it is touched), a test peer plays an L4
    /// proxy and opens an IPv4 and an IPv6 connection carrying TOA to local
    /// listeners. Passes only if accept() and getpeername() return exactly
    /// the injected client addresses and the counters counted them. The
    /// test proxy's addresses are taken from the trusted list when it is
    /// set. Needs root. Exits 10 when the test fails.
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
    /// cannot be); disable and remove toa-ebpf.service, detach and unpin
    /// the eBPF backend and remove /usr/local/lib/toa; remove
    /// /etc/modules-load.d/toa.conf and
    /// /etc/modprobe.d/toa.conf, `dkms remove` it for every kernel, delete
    /// its source under /usr/src, any prebuilt toa.ko under
    /// /lib/modules/*/extra (then depmod), and toa-install's state in
    /// /var/lib/toa-install, and the metrics timer (--metrics-textfile):
    /// stopped, its units and DIR/toa.prom removed. Packages toa-install installed are kept unless
    /// --purge-deps; a source tree and DKMS registration that belong to a
    /// package (toa-dkms) are left to it, with the command that removes
    /// them. Running it again finds nothing to do and exits 0.
    /// Needs root, except with --dry-run.
    ///
    /// Exits 9 when the module cannot be unloaded (then nothing is
    /// removed), 7 when `dkms remove` fails, 5 when removing packages
    /// fails; a run stopped part way is finished by running it again.
    Uninstall(UninstallArgs),

    /// Attach the eBPF backend (or, attached, set its trusted networks).
    /// toa-ebpf.service runs it at boot; to install, use `toa-install
    /// --backend ebpf`. Needs root. Exits 12 when toa's module is loaded.
    Attach(AttachArgs),

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

/// `toa-install attach`.
#[derive(Debug, Clone, Args, Default)]
pub struct AttachArgs {
    /// Honour TOA only from senders in this network; repeatable. None:
    /// every sender.
    #[arg(long = "trust", value_name = "CIDR")]
    pub trust: Vec<String>,
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
    /// How the commands print.
    pub fn output(&self) -> Output {
        Output {
            json: self.json,
            quiet: self.quiet,
            verbose: self.verbose,
        }
    }
}

/// Runs the parsed command line and returns how the run ended.
pub fn run(cli: &Cli) -> Exit {
    let global = &cli.global;
    let output = global.output();
    let root = global.root.as_deref();
    let kernel_release = global.kernel_release.as_deref();
    match &cli.command {
        None => commands::install::main(&output, &install_request(global, &cli.install)),
        Some(Command::Install(args)) => {
            commands::install::main(&output, &install_request(global, args))
        }
        Some(Command::Detect) => commands::detect::main(&output, root, kernel_release),
        Some(Command::Verify) => commands::verify::main(&output, root, kernel_release),
        Some(Command::Status) => commands::status::main(&output, root, kernel_release),
        Some(Command::Doctor(args)) => {
            let request = commands::doctor::Request {
                ports: args.ports.clone(),
                seconds: args.seconds,
                privacy: if args.show_clients {
                    Privacy::Shown
                } else {
                    Privacy::Masked
                },
            };
            commands::doctor::main(&output, root, kernel_release, &request)
        }
        Some(Command::Stats(args)) => commands::stats::main(
            &output,
            root,
            kernel_release,
            args.format,
            args.output.as_deref(),
        ),
        Some(Command::Uninstall(args)) => {
            let request = commands::uninstall::Request {
                purge_deps: args.purge_deps,
                dry_run: args.dry_run,
                root: global.root.clone(),
            };
            commands::uninstall::main(&output, kernel_release, &request)
        }
        Some(Command::Attach(args)) => commands::attach::main(&output, &args.trust),
        Some(Command::Mirror(MirrorCommand::Build {
            kernel_trees,
            out,
            distro,
        })) => commands::mirror::main(&output, kernel_trees, out, distro.as_deref()),
    }
}

/// The install request the options make; `--mirror` defaults to the
/// `TOA_MIRROR` environment variable.
fn install_request(global: &GlobalArgs, install: &InstallArgs) -> commands::install::Request {
    let mut mirrors = install.mirrors.clone();
    if mirrors.is_empty() {
        if let Ok(url) = std::env::var("TOA_MIRROR") {
            mirrors.extend(url.split_whitespace().map(str::to_owned));
        }
    }
    commands::install::Request {
        compile: install.compile,
        prebuilt_only: install.prebuilt_only,
        mirrors,
        offline: install.offline.clone(),
        trust: install.trust.clone(),
        dry_run: install.dry_run,
        root: global.root.clone(),
        kernel_release: global.kernel_release.clone(),
        quiet: global.quiet || global.json,
        backend: install.backend,
        metrics_textfile: install.metrics_textfile.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::progress::Verbosity;
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
        assert_eq!(cli.global.output().verbosity(), Verbosity::Verbose);
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
    fn the_metrics_service_runs_a_command_line_we_accept() {
        use crate::commands::stats::Format;
        use crate::plan::metrics::{service, Textfile};
        let unit = service(&Textfile {
            dir: "/var/lib/prometheus/node-exporter".to_owned(),
            exec: "/usr/sbin/toa-install".to_owned(),
        });
        let line = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        let cli = Cli::try_parse_from(line.split(' ')).unwrap();
        match cli.command {
            Some(Command::Stats(args)) => {
                assert_eq!(args.format, Format::Prometheus);
                assert_eq!(
                    args.output,
                    Some(PathBuf::from("/var/lib/prometheus/node-exporter/toa.prom"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quiet_and_verbose_conflict() {
        let err = Cli::try_parse_from(["toa-install", "-q", "-v", "detect"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(Exit::Usage.code()));
    }
}

//! The install plan: what `toa-install` will do on this host, decided before
//! anything is changed.
//!
//! [`plan`] is a pure function of the host's facts ([`Facts`]), the command
//! line ([`Options`]) and what is already in place ([`State`], read through
//! [`SystemFs`] and [`Host`] by [`State::read`]). It returns an ordered list
//! of [`Step`]s with exact package names, command lines, timeouts and file
//! contents; `--dry-run` prints it and the executor carries it out. Steps
//! whose effect is already in place are left out, so a second run on an
//! installed host plans nothing.

pub mod selftest;
pub mod timeouts;
pub mod uninstall;

use crate::bundle::{self, MODULE_SOURCE};
use crate::exit::{Categorized, Exit};
use crate::layout::{
    prebuilt_path, source_dir, DKMS_MOK_KEY, DKMS_TREE, MODPROBE_CONF, MODULE, MODULE_FILES,
    STATE_FILE, TRUSTED_PARAM,
};
pub use crate::state::Source;
use crate::state::StateFile;
use crate::system::distro::{Distro, DistroRow, DkmsSource, PackageManager};
use crate::system::installed::{self, Owner};
use crate::system::kernel::{HeaderPackage, KernelInfo};
use crate::system::security::{LoadedToa, SecurityIssue, SecurityState};
use crate::system::sysroot::{Host, SystemFs};
use selftest::{Net, NetError};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::time::Duration;
use thiserror::Error;

/// An external command with its arguments, environment and time limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmd {
    /// The program, looked up in `PATH`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The command is killed after this long.
    #[serde(serialize_with = "seconds")]
    pub timeout: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl Cmd {
    /// `program args...` with no extra environment.
    pub fn new(program: &str, args: &[&str], timeout: Duration) -> Self {
        Cmd {
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
            timeout,
        }
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, more: I) -> Self {
        self.args.extend(more.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The command line as a shell would take it.
    pub fn line(&self) -> String {
        let mut words: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        words.push(quote(&self.program));
        words.extend(self.args.iter().map(|a| quote(a)));
        words.join(" ")
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  [timeout {}]",
            self.line(),
            human_duration(self.timeout)
        )
    }
}

/// `90s`, `5m`, `1h30m`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Where a prebuilt module may come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "location", rename_all = "kebab-case")]
pub enum MirrorSource {
    /// A mirror on the web (`--mirror URL`).
    Url(String),
    /// A mirror copied to a local directory (`--offline DIR`).
    Dir(String),
}

impl fmt::Display for MirrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorSource::Url(url) => f.write_str(url),
            MirrorSource::Dir(dir) => write!(f, "{dir} (offline)"),
        }
    }
}

/// One thing the installer does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Install packages with the distribution's package manager.
    InstallPackages {
        /// Exactly the packages asked for.
        packages: Vec<String>,
        /// Why they are needed.
        purpose: String,
        /// The command.
        cmd: Cmd,
    },
    /// Run a command whose failure is reported in `failure`'s category.
    Run {
        /// What it is for.
        purpose: String,
        /// The command.
        cmd: Cmd,
        /// The exit category when it fails.
        failure: Exit,
    },
    /// Copy the bundled module source to `dir`.
    WriteSource {
        /// `/usr/src/toa-<version>`.
        dir: String,
        /// The relative paths written.
        files: Vec<String>,
    },
    /// Write a file (replacing what is there; the old content is kept in
    /// the undo log).
    WriteFile {
        /// Absolute path.
        path: String,
        /// The whole new content.
        contents: String,
        /// Permission bits.
        mode: u32,
    },
    /// `dkms add`.
    DkmsAdd {
        /// The command.
        cmd: Cmd,
    },
    /// `dkms build`.
    DkmsBuild {
        /// The command.
        cmd: Cmd,
        /// DKMS's build log, shown on failure.
        make_log: String,
    },
    /// `dkms install`.
    DkmsInstall {
        /// The command.
        cmd: Cmd,
    },
    /// Find the module for this kernel in a mirror, download it, check its
    /// sha256, unpack it privately and check its `vermagic`.
    FetchPrebuilt {
        /// Mirrors, tried in order.
        mirrors: Vec<MirrorSource>,
        /// The kernel it must be built for.
        kernel_release: String,
        /// `uname -v`, preferred when the mirror has several builds.
        kernel_version: Option<String>,
        /// The architecture.
        arch: String,
    },
    /// Copy the fetched module into the kernel's module tree.
    InstallPrebuilt {
        /// `/lib/modules/<release>/extra/toa.ko`.
        path: String,
    },
    /// Load the module.
    Load {
        /// The command.
        cmd: Cmd,
    },
    /// Change the `trusted` parameter of the loaded module.
    SetTrusted {
        /// The new list.
        value: String,
    },
    /// The end-to-end self-test (`toa-install verify`).
    Verify,
    /// Record what was installed in the state file.
    RecordState {
        /// How toa.ko got onto the system.
        source: Source,
        /// The kernel it is installed for.
        kernel_release: String,
    },
}

impl Step {
    /// One line saying what the step does (files' contents follow on
    /// further lines in [`Plan::render`]).
    pub fn summary(&self) -> String {
        match self {
            Step::InstallPackages { purpose, cmd, .. } => format!("install {purpose}: {cmd}"),
            Step::Run { purpose, cmd, .. } => format!("{purpose}: {cmd}"),
            Step::WriteSource { dir, files } => format!(
                "copy the bundled module source to {dir}: {}",
                files.join(" ")
            ),
            Step::WriteFile { path, mode, .. } => format!("write {path} (mode {mode:04o})"),
            Step::DkmsAdd { cmd } => format!("register the source with DKMS: {cmd}"),
            Step::DkmsBuild { cmd, .. } => format!("build toa.ko: {cmd}"),
            Step::DkmsInstall { cmd } => format!("install toa.ko: {cmd}"),
            Step::FetchPrebuilt {
                mirrors,
                kernel_release,
                arch,
                ..
            } => {
                let from: Vec<String> = mirrors.iter().map(|m| m.to_string()).collect();
                format!(
                    "fetch the prebuilt toa.ko for {kernel_release} ({arch}) from {}; \
                     check sha256 and vermagic",
                    from.join(", then ")
                )
            }
            Step::InstallPrebuilt { path } => format!("install the prebuilt toa.ko as {path}"),
            Step::Load { cmd } => format!("load the module: {cmd}"),
            Step::SetTrusted { value } => {
                format!("set the live trusted list: write {value:?} to {TRUSTED_PARAM}")
            }
            Step::Verify => "verify: TOA handshakes over IPv4 and IPv6 in a private network \
                             namespace must reach accept() and getpeername()"
                .to_owned(),
            Step::RecordState { source, .. } => format!(
                "record the installation ({}) in {STATE_FILE}",
                match source {
                    Source::Installed => "already installed",
                    Source::Prebuilt => "prebuilt",
                    Source::Dkms => "dkms",
                }
            ),
        }
    }
}

/// The options that shape a plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// `--compile`: build through DKMS even when a mirror is given.
    pub compile: bool,
    /// `--prebuilt-only`: never compile.
    pub prebuilt_only: bool,
    /// `--mirror` and `--offline`, in the order to try them.
    pub mirrors: Vec<MirrorSource>,
    /// `--trust`, already validated; `None` keeps the current setting.
    pub trust: Option<Vec<String>>,
}

/// What the plan is computed for: the host as `detect` sees it.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The distribution's row in the table.
    pub row: &'static DistroRow,
    /// os-release `VERSION_ID` (`15.5`).
    pub version_id: Option<String>,
    /// The kernel to install for.
    pub kernel: KernelInfo,
    /// Secure Boot, lockdown, SUSE gate, a loaded toa.
    pub security: SecurityState,
}

impl Facts {
    /// Facts for a detected distribution.
    pub fn new(distro: &Distro, kernel: KernelInfo, security: SecurityState) -> Self {
        Facts {
            row: distro.row,
            version_id: distro.identity.version_id.clone(),
            kernel,
            security,
        }
    }

    /// The package with this kernel's headers.
    pub fn headers(&self) -> HeaderPackage {
        self.row.headers.package_for(&self.kernel)
    }

    /// Every package the compile path needs, in install order of
    /// importance: headers, toolchain, dkms.
    pub fn build_packages(&self) -> Vec<String> {
        let mut packages = vec![self.headers().package];
        packages.extend(self.row.toolchain.iter().map(|p| (*p).to_owned()));
        packages.push("dkms".to_owned());
        packages
    }

    /// The packages whose presence the plan depends on.
    pub fn packages_to_query(&self) -> Vec<String> {
        let mut packages = self.build_packages();
        if matches!(
            self.row.dkms,
            DkmsSource::EpelReleasePackage | DkmsSource::EpelRpm { .. }
        ) {
            packages.push("epel-release".to_owned());
        }
        packages
    }

    fn release(&self) -> &str {
        &self.kernel.release
    }
}

/// What is already in place on the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// Which `toa` module is loaded.
    pub loaded: Option<LoadedToa>,
    /// The live `trusted` parameter, when loaded.
    pub live_trusted: Option<String>,
    /// Packages (as asked for) that are installed.
    pub installed_packages: BTreeSet<String>,
    /// `/usr/src/toa-<version>` holds exactly the bundled source and our
    /// `dkms.conf`.
    pub source_in_place: bool,
    /// DKMS knows `toa/<version>`.
    pub dkms_added: bool,
    /// DKMS built it for this kernel.
    pub dkms_built: bool,
    /// Whose toa.ko is installed for this kernel (DKMS's, a prebuilt one
    /// toa-install copied, or one nobody accounts for).
    pub installed: Owner,
    /// The content of `/etc/modprobe.d/toa.conf`.
    pub modprobe_conf: Option<String>,
    /// The content of the autoload file.
    pub autoload_conf: Option<String>,
    /// DKMS has a signing key (it signs what it builds).
    pub dkms_signing_key: bool,
    /// The state file records this installation: this kernel, and the
    /// source the evidence shows (DKMS or prebuilt) when it shows one.
    pub recorded: bool,
}

impl State {
    /// Reads the current state through the traits.
    pub fn read(fs: &dyn SystemFs, host: &dyn Host, facts: &Facts, root: Option<&str>) -> State {
        let release = facts.release();
        let arch = &facts.kernel.arch;
        let version = bundle::VERSION;
        let src = source_dir();
        let source_in_place = MODULE_SOURCE
            .iter()
            .all(|f| fs.read(&format!("{src}/{}", f.path)).ok().as_deref() == Some(f.contents))
            && fs.read_to_string(&format!("{src}/dkms.conf")).ok() == Some(dkms_conf());
        let dkms_dir = format!("{DKMS_TREE}/{version}");
        let built = MODULE_FILES
            .iter()
            .any(|name| fs.exists(&format!("{dkms_dir}/{release}/{arch}/module/{name}")));
        let read = |p: &str| fs.read_to_string(p).ok();
        let state_file: Option<StateFile> = fs
            .read(STATE_FILE)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let installed = installed::owner(fs, release, state_file.as_ref());
        let recorded = state_file.is_some_and(|s| {
            s.kernel_release == release
                && installed.source_name().is_none_or(|n| s.source.name() == n)
        });
        State {
            loaded: Some(facts.security.toa_module.clone()),
            live_trusted: read(TRUSTED_PARAM).map(|s| s.trim().to_owned()),
            installed_packages: installed_packages(
                host,
                facts.row.package_manager,
                &facts.packages_to_query(),
                root,
            ),
            source_in_place,
            dkms_added: fs.exists(&format!("{dkms_dir}/source")),
            dkms_built: built,
            installed,
            modprobe_conf: read(MODPROBE_CONF),
            autoload_conf: read(facts.row.autoload.path()),
            dkms_signing_key: fs.exists(DKMS_MOK_KEY),
            recorded,
        }
    }

    fn loaded_ours(&self) -> bool {
        matches!(self.loaded, Some(LoadedToa::Ours { .. }))
    }

    /// How the installed toa.ko got there, as far as the evidence shows.
    fn installed_source(&self) -> Source {
        match self.installed {
            Owner::Dkms { .. } => Source::Dkms,
            Owner::Prebuilt => Source::Prebuilt,
            Owner::Nothing | Owner::Unaccounted { .. } => Source::Installed,
        }
    }
}

/// Asks the package database which of `packages` are installed. A system
/// read with `--root` is asked through the database inside it.
pub fn installed_packages(
    host: &dyn Host,
    manager: PackageManager,
    packages: &[String],
    root: Option<&str>,
) -> BTreeSet<String> {
    let mut args: Vec<String> = Vec::new();
    let program = match manager {
        PackageManager::Apt => {
            if let Some(root) = root {
                args.push(format!("--admindir={root}/var/lib/dpkg"));
            }
            args.extend(["-W", "-f=${Package} ${db:Status-Abbrev}\\n"].map(String::from));
            "dpkg-query"
        }
        PackageManager::Yum | PackageManager::Dnf | PackageManager::Zypper => {
            if let Some(root) = root {
                // The image's own database, named: a host's rpm may look
                // elsewhere (Debian's defaults to ~/.rpmdb) and would create
                // an empty database inside the image. No database, nothing
                // installed.
                if !std::path::Path::new(root).join("var/lib/rpm").is_dir() {
                    return BTreeSet::new();
                }
                args.extend(["--root", root, "--dbpath", "/var/lib/rpm"].map(str::to_owned));
            }
            args.push("-q".to_owned());
            "rpm"
        }
    };
    args.extend(packages.iter().cloned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(out) = host.run(program, &argv) else {
        return BTreeSet::new();
    };
    match manager {
        PackageManager::Apt => parse_dpkg_query(&out.stdout),
        _ => parse_rpm_query(packages, &out.stdout),
    }
}

/// `dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n'`: `ii` is installed.
pub fn parse_dpkg_query(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|line| {
            let (name, status) = line.split_once(' ')?;
            status
                .trim_start()
                .starts_with("ii")
                .then(|| name.to_owned())
        })
        .collect()
}

/// `rpm -q a b c`: one line per argument, `package X is not installed` for
/// the missing ones, in argument order.
pub fn parse_rpm_query(asked: &[String], stdout: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    if lines.len() != asked.len() {
        return BTreeSet::new();
    }
    asked
        .iter()
        .zip(lines)
        .filter(|(_, line)| !line.contains("is not installed"))
        .map(|(name, _)| name.clone())
        .collect()
}

/// `dkms/dkms.conf`, the project's one DKMS configuration, with
/// `#MODULE_VERSION#` still in it (the packages fill it in the same way).
pub const DKMS_CONF_TEMPLATE: &str = include_str!("../../../dkms/dkms.conf");

/// The `dkms.conf` written next to the source: [`DKMS_CONF_TEMPLATE`] for
/// this version.
pub fn dkms_conf() -> String {
    DKMS_CONF_TEMPLATE.replace("#MODULE_VERSION#", bundle::VERSION)
}

/// `/etc/modprobe.d/toa.conf` for a trusted list.
pub fn modprobe_conf(trusted: &[String]) -> String {
    format!(
        "# Written by toa-install: the proxies whose TOA option is honoured.\n\
         options {MODULE} trusted={}\n",
        trusted.join(",")
    )
}

/// The autoload file.
pub fn autoload_conf() -> String {
    format!("# Written by toa-install: load toa at boot.\n{MODULE}\n")
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The distribution row (`CentOS 7`).
    pub distro: &'static str,
    /// The kernel release.
    pub kernel_release: String,
    /// How toa.ko gets onto the system.
    pub source: Source,
    /// The steps, in order. Empty: nothing to do.
    pub steps: Vec<Step>,
    /// The steps run instead when the prebuilt cannot be used (no entry
    /// for this kernel, download or checksum failure, wrong vermagic).
    pub fallback: Option<Vec<Step>>,
}

impl Plan {
    /// Whether the run changes anything.
    pub fn changes_nothing(&self) -> bool {
        self.steps.is_empty()
    }

    /// The plan as `--dry-run` prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.changes_nothing() {
            let _ = writeln!(
                out,
                "toa {} is already installed and loaded for {} on {}: nothing to do.",
                bundle::VERSION,
                self.kernel_release,
                self.distro
            );
            return out;
        }
        let how = match self.source {
            Source::Installed => "module already installed",
            Source::Prebuilt => "prebuilt module",
            Source::Dkms => "compile through DKMS",
        };
        let _ = writeln!(
            out,
            "Plan for {}, kernel {} ({how}):",
            self.distro, self.kernel_release
        );
        render_steps(&mut out, &self.steps);
        if let Some(fallback) = &self.fallback {
            let _ = writeln!(out, "If no verified prebuilt module is found, instead:");
            render_steps(&mut out, fallback);
        }
        out
    }
}

fn render_steps(out: &mut String, steps: &[Step]) {
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "{:>3}. {}", i + 1, step.summary());
        if let Step::WriteFile { contents, .. } = step {
            for line in contents.lines() {
                let _ = writeln!(out, "       | {line}");
            }
        }
    }
}

/// Why no plan can be made: each is found before anything is changed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlanError {
    /// The kernel would refuse the module.
    #[error(transparent)]
    Security(#[from] SecurityIssue),
    /// Both `--compile` and `--prebuilt-only`.
    #[error(
        "--compile and --prebuilt-only contradict each other. \
         Next step: pass one of them, or neither to try a prebuilt first and compile otherwise"
    )]
    CompileAndPrebuiltOnly,
    /// `--prebuilt-only` without a mirror.
    #[error(
        "--prebuilt-only needs a mirror to take the module from. \
         Next step: pass --mirror URL (or set TOA_MIRROR) or --offline DIR"
    )]
    NoMirror,
    /// Only signed modules load, and a prebuilt cannot be signed here.
    #[error(
        "the kernel only loads signed modules ({reason}) and a prebuilt toa.ko is not signed with a key this host trusts. \
         Next step: create and enroll a DKMS signing key (`dkms generate_mok`, then `mokutil --import {DKMS_MOK_KEY}` \
         and reboot to confirm it), then run `toa-install --compile`"
    )]
    PrebuiltUnsigned {
        /// What makes signatures mandatory.
        reason: String,
    },
}

impl Categorized for PlanError {
    fn category(&self) -> Exit {
        match self {
            PlanError::Security(issue) => issue.category(),
            PlanError::CompileAndPrebuiltOnly | PlanError::NoMirror => Exit::Usage,
            PlanError::PrebuiltUnsigned { .. } => Exit::LoadRefused,
        }
    }
}

/// Computes the plan.
pub fn plan(facts: &Facts, options: &Options, state: &State) -> Result<Plan, PlanError> {
    if options.compile && options.prebuilt_only {
        return Err(PlanError::CompileAndPrebuiltOnly);
    }
    if options.prebuilt_only && options.mirrors.is_empty() {
        return Err(PlanError::NoMirror);
    }
    let mut issues = facts.security.issues();
    // A foreign module conflicts whatever we do; signatures and the SUSE
    // gate only matter when something is still to be loaded.
    let base = Plan {
        distro: facts.row.label,
        kernel_release: facts.kernel.release.clone(),
        source: Source::Installed,
        steps: Vec::new(),
        fallback: None,
    };
    if let Some(pos) = issues
        .iter()
        .position(|i| matches!(i, SecurityIssue::ForeignModule { .. }))
    {
        return Err(issues.swap_remove(pos).into());
    }

    if state.loaded_ours() {
        let steps = finish(facts, options, state, state.installed_source(), false);
        return Ok(Plan { steps, ..base });
    }

    if let Some(issue) = issues
        .iter()
        .find(|i| matches!(i, SecurityIssue::SuseGateClosed { .. }))
    {
        return Err(issue.clone().into());
    }
    let signature = issues.iter().find_map(|i| match i {
        SecurityIssue::SignatureRequired { reason } => Some(reason.clone()),
        _ => None,
    });

    // A toa.ko nobody accounts for is replaced, not loaded.
    if let Owner::Dkms { .. } | Owner::Prebuilt = state.installed {
        let steps = finish(facts, options, state, state.installed_source(), true);
        return Ok(Plan {
            source: Source::Installed,
            steps,
            ..base
        });
    }

    let use_prebuilt = !options.compile && !options.mirrors.is_empty();
    if use_prebuilt {
        if let Some(reason) = &signature {
            if options.prebuilt_only || !state.dkms_signing_key {
                return Err(PlanError::PrebuiltUnsigned {
                    reason: reason.clone(),
                });
            }
        }
    }
    if let (Some(_), false) = (&signature, state.dkms_signing_key) {
        // Without a key DKMS builds an unsigned module too.
        let issue = issues
            .into_iter()
            .find(|i| matches!(i, SecurityIssue::SignatureRequired { .. }));
        if let Some(issue) = issue {
            return Err(issue.into());
        }
    }

    let compile = || {
        let mut steps = compile_steps(facts, state);
        steps.extend(finish(facts, options, state, Source::Dkms, true));
        steps
    };
    if use_prebuilt && signature.is_none() {
        let mut steps = vec![
            Step::FetchPrebuilt {
                mirrors: options.mirrors.clone(),
                kernel_release: facts.kernel.release.clone(),
                kernel_version: facts.kernel.version.clone(),
                arch: facts.kernel.arch.clone(),
            },
            Step::InstallPrebuilt {
                path: prebuilt_path(facts.release()),
            },
            Step::Run {
                purpose: "update the module index".to_owned(),
                cmd: Cmd::new("depmod", &["-a", facts.release()], timeouts::DEPMOD),
                failure: Exit::LoadFailed,
            },
        ];
        steps.extend(finish(facts, options, state, Source::Prebuilt, true));
        return Ok(Plan {
            source: Source::Prebuilt,
            steps,
            fallback: (!options.prebuilt_only).then(compile),
            ..base
        });
    }
    Ok(Plan {
        source: Source::Dkms,
        steps: compile(),
        ..base
    })
}

/// Packages, source, DKMS.
fn compile_steps(facts: &Facts, state: &State) -> Vec<Step> {
    let mut steps = Vec::new();
    let manager = facts.row.package_manager;
    let missing: Vec<String> = facts
        .build_packages()
        .into_iter()
        .filter(|p| !state.installed_packages.contains(p))
        .collect();
    let dkms_missing = missing.iter().any(|p| p == "dkms");
    let epel_missing = !state.installed_packages.contains("epel-release");
    if dkms_missing {
        match facts.row.dkms {
            DkmsSource::Distribution => {}
            DkmsSource::EpelReleasePackage if epel_missing => {
                steps.push(install(
                    manager,
                    &["epel-release".to_owned()],
                    "EPEL, which carries dkms",
                ));
            }
            DkmsSource::EpelRpm { url } if epel_missing => {
                steps.push(install(
                    manager,
                    &[url.to_owned()],
                    "EPEL, which carries dkms",
                ));
            }
            DkmsSource::EpelReleasePackage | DkmsSource::EpelRpm { .. } => {}
            DkmsSource::SusePackageHub { product } => {
                let product = product
                    .replace("{version}", facts.version_id.as_deref().unwrap_or(""))
                    .replace("{arch}", &facts.kernel.arch);
                steps.push(Step::Run {
                    purpose: "activate SUSE Package Hub, which carries dkms".to_owned(),
                    cmd: Cmd::new("SUSEConnect", &["-p", &product], timeouts::REPO),
                    failure: Exit::HeadersUnavailable,
                });
            }
        }
    }
    if !missing.is_empty() {
        if manager == PackageManager::Apt {
            steps.push(Step::Run {
                purpose: "refresh the package lists".to_owned(),
                cmd: Cmd::new("apt-get", &["update"], timeouts::REPO)
                    .env("DEBIAN_FRONTEND", "noninteractive"),
                failure: Exit::HeadersUnavailable,
            });
        }
        steps.push(install(
            manager,
            &missing,
            "the kernel headers, compiler and dkms",
        ));
    }
    let version = bundle::VERSION;
    if !state.source_in_place {
        let dir = source_dir();
        steps.push(Step::WriteSource {
            dir: dir.clone(),
            files: MODULE_SOURCE.iter().map(|f| f.path.to_owned()).collect(),
        });
        steps.push(Step::WriteFile {
            path: format!("{dir}/dkms.conf"),
            contents: dkms_conf(),
            mode: 0o644,
        });
    }
    let release = facts.release();
    if !state.dkms_added {
        steps.push(Step::DkmsAdd {
            cmd: Cmd::new(
                "dkms",
                &["add", "-m", MODULE, "-v", version],
                timeouts::DKMS_ADD,
            ),
        });
    }
    if !state.dkms_built {
        steps.push(Step::DkmsBuild {
            cmd: Cmd::new(
                "dkms",
                &["build", "-m", MODULE, "-v", version, "-k", release],
                timeouts::BUILD,
            ),
            make_log: format!("/var/lib/dkms/{MODULE}/{version}/build/make.log"),
        });
    }
    steps.push(Step::DkmsInstall {
        cmd: Cmd::new(
            "dkms",
            &["install", "-m", MODULE, "-v", version, "-k", release],
            timeouts::DKMS_INSTALL,
        ),
    });
    steps
}

fn install(manager: PackageManager, packages: &[String], purpose: &str) -> Step {
    let cmd = match manager {
        PackageManager::Yum | PackageManager::Dnf => {
            Cmd::new(manager.command(), &["install", "-y"], timeouts::PACKAGE)
        }
        PackageManager::Apt => Cmd::new(
            "apt-get",
            &["install", "-y", "--no-install-recommends"],
            timeouts::PACKAGE,
        )
        .env("DEBIAN_FRONTEND", "noninteractive"),
        PackageManager::Zypper => Cmd::new(
            "zypper",
            &["--non-interactive", "install", "--no-recommends"],
            timeouts::PACKAGE,
        ),
    }
    .args(packages.iter().cloned());
    Step::InstallPackages {
        packages: packages.to_vec(),
        purpose: purpose.to_owned(),
        cmd,
    }
}

/// Load, trust, verify, persist, record: whatever of it is not in place.
/// `load` says whether the module still has to be loaded.
fn finish(
    facts: &Facts,
    options: &Options,
    state: &State,
    source: Source,
    load: bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let trusted = options.trust.as_ref().map(|t| t.join(","));
    if load {
        let mut cmd = Cmd::new("modprobe", &[MODULE], timeouts::MODPROBE);
        if let Some(t) = &trusted {
            cmd = cmd.args([format!("trusted={t}")]);
        }
        steps.push(Step::Load { cmd });
    } else if let Some(t) = &trusted {
        if state.live_trusted.as_deref() != Some(t.as_str()) {
            steps.push(Step::SetTrusted { value: t.clone() });
        }
    }
    let modprobe = options.trust.as_ref().map(|t| modprobe_conf(t));
    let write_modprobe = modprobe.is_some() && modprobe != state.modprobe_conf;
    let write_autoload = state.autoload_conf.as_deref() != Some(autoload_conf().as_str());
    if !steps.is_empty() || write_modprobe || write_autoload || !state.recorded {
        steps.push(Step::Verify);
    }
    if let (true, Some(contents)) = (write_modprobe, modprobe) {
        steps.push(Step::WriteFile {
            path: MODPROBE_CONF.to_owned(),
            contents,
            mode: 0o644,
        });
    }
    if write_autoload {
        steps.push(Step::WriteFile {
            path: facts.row.autoload.path().to_owned(),
            contents: autoload_conf(),
            mode: 0o644,
        });
    }
    if !steps.is_empty() {
        steps.push(Step::RecordState {
            source,
            kernel_release: facts.kernel.release.clone(),
        });
    }
    steps
}

/// Checks one `--trust` value: an IPv4 or IPv6 network in CIDR notation
/// (`10.0.0.0/8`, `2001:db8::/32`); a bare address means just that host.
pub fn parse_cidr(text: &str) -> Result<String, String> {
    match Net::parse(text) {
        Ok(Net { addr, prefix }) => Ok(format!("{addr}/{prefix}")),
        Err(NetError::NotAnAddress) => Err(format!(
            "{text:?} is not an IPv4 or IPv6 network such as 10.0.0.0/8 or 2001:db8::/32"
        )),
        Err(e @ NetError::BadPrefix { .. }) => Err(format!("{text:?}: {e}")),
    }
}

#[cfg(test)]
mod tests;

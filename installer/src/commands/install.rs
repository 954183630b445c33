//! `toa-install` / `toa-install install`: detect, plan, then (unless
//! `--dry-run`) carry the plan out with the real effects, the mirror
//! fetcher and the namespace self-test.

use crate::backend::ebpf::EbpfBackend;
use crate::backend::module::prebuilt::MirrorFetcher;
use crate::backend::module::ModuleBackend;
use crate::backend::{Backend, Kind};
use crate::commands::facts::{self, HostFacts, Target};
use crate::commands::report::{Ending, ErrorDoc, Output};
use crate::commands::verify::NetnsVerifier;
use crate::effects::executor::{execute, Outcome, Services, StepTiming};
use crate::effects::host::HostEffects;
use crate::effects::host::RealHost;
use crate::effects::lock::{require_root, RunLock};
use crate::effects::progress::{Display, Progress};
use crate::exit::{Categorized, Exit};
use crate::layout::{LOCK_FILE, SYSTEMD_BOOTED};
use crate::plan::{self, metrics, CidrError, Facts, MirrorSource, Options, Plan, State};
use crate::system::ebpf::{EbpfFacts, Support};
use crate::system::installed::Owner;
use crate::system::security::OurModule;
use crate::system::sysroot::{open_root, CommandOutput, Host, Uname};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// What `install` was asked for, already parsed.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--compile`.
    pub compile: bool,
    /// `--prebuilt-only`.
    pub prebuilt_only: bool,
    /// `--mirror` (or `TOA_MIRROR`).
    pub mirrors: Vec<String>,
    /// `--offline`.
    pub offline: Option<PathBuf>,
    /// `--trust`, raw.
    pub trust: Vec<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `--kernel-release`.
    pub kernel_release: Option<String>,
    /// Print less.
    pub quiet: bool,
    /// `--backend`.
    pub backend: Choice,
    /// `--metrics-textfile`.
    pub metrics_textfile: Option<PathBuf>,
}

/// How an `install` run ended, ready to print.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Document {
    /// Whether anything changed.
    pub changed: bool,
    /// The backend installed (`null` when no plan was made).
    pub backend: Option<Kind>,
    /// `installed`, `prebuilt` or `dkms` (`null` when no plan was made).
    pub source: Option<plan::Source>,
    /// The steps carried out (with `--dry-run`: the steps that would be).
    pub steps: Vec<String>,
    /// Things worth knowing.
    pub warnings: Vec<String>,
    /// Why the run failed.
    pub error: Option<ErrorDoc>,
    /// `--dry-run`: the whole plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Packages installed by the run (kept after a failure).
    pub packages_installed: Vec<String>,
    /// Where the time went (a run that carried a plan out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

/// Where an install run's time went: the whole run, the part spent waiting
/// for external commands (the package database queries of detection, the
/// package manager, dkms with the make and gcc under it, modprobe, depmod)
/// and each step, the first being detection and planning. The rest is
/// toa-install's own work (detection, planning, the download and checks of
/// a prebuilt, the self-test, writing files).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Timings {
    /// From the start of the run to its end, in milliseconds.
    pub total_millis: u64,
    /// Spent in external commands, in milliseconds.
    pub external_millis: u64,
    /// Per step.
    pub steps: Vec<StepTiming>,
}

impl Document {
    fn failed(exit: Exit, message: String) -> Document {
        Document {
            changed: false,
            backend: None,
            source: None,
            steps: Vec::new(),
            warnings: Vec::new(),
            error: Some(ErrorDoc::new(exit, message)),
            plan: None,
            packages_installed: Vec::new(),
            timings: None,
        }
    }

    /// The exit status.
    pub fn exit(&self) -> Exit {
        self.error.as_ref().map_or(Exit::Ok, |e| e.problem.category)
    }
}

/// The `--mirror`/`--offline` sources, in the order tried: the local copy
/// first, then the URLs as given.
pub fn mirror_sources(offline: Option<&Path>, urls: &[String]) -> Vec<MirrorSource> {
    let mut out = Vec::new();
    if let Some(dir) = offline {
        out.push(MirrorSource::Dir(dir.display().to_string()));
    }
    out.extend(urls.iter().map(|u| MirrorSource::Url(u.clone())));
    out
}

/// Why the command line asks for something no host can do.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    /// `--root`/`--kernel-release` outside a dry run.
    #[error(
        "--root and --kernel-release only work with --dry-run (and `detect`): installing \
         changes the running system only. Next step: add --dry-run to see the plan for that \
         image, or drop them to install on this host"
    )]
    RootNeedsDryRun,
    /// A `--trust` value that is not a network.
    #[error("--trust {value}: {source}")]
    Trust {
        /// The value as given.
        value: String,
        /// Why it is not a network.
        source: CidrError,
    },
}

impl Categorized for RequestError {
    fn category(&self) -> Exit {
        match self {
            RequestError::RootNeedsDryRun => Exit::Usage,
            RequestError::Trust { source, .. } => source.category(),
        }
    }
}

/// Checks the options that do not depend on the host.
pub fn check_request(req: &Request) -> Result<Options, RequestError> {
    if (req.root.is_some() || req.kernel_release.is_some()) && !req.dry_run {
        return Err(RequestError::RootNeedsDryRun);
    }
    let trust = if req.trust.is_empty() {
        None
    } else {
        let mut list = Vec::new();
        for t in &req.trust {
            list.push(plan::parse_cidr(t).map_err(|source| RequestError::Trust {
                value: t.clone(),
                source,
            })?);
        }
        Some(list)
    };
    Ok(Options {
        compile: req.compile,
        prebuilt_only: req.prebuilt_only,
        mirrors: mirror_sources(req.offline.as_deref(), &req.mirrors),
        trust,
        // Checked against the host in `run`.
        metrics_textfile: None,
    })
}

/// Which backend `install` uses (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Choice {
    /// The module where it can be fetched or built and loaded; otherwise
    /// the eBPF backend, with one line saying why.
    #[default]
    Auto,
    /// The kernel module only.
    Module,
    /// The eBPF backend only.
    Ebpf,
}

/// Whether a failure of the module backend is one the eBPF backend does not
/// have: no headers, no build, a refused or failed load.
fn ebpf_avoids(category: Exit) -> bool {
    matches!(
        category,
        Exit::HeadersUnavailable
            | Exit::Download
            | Exit::BuildFailed
            | Exit::LoadRefused
            | Exit::LoadFailed
    )
}

/// The first sentence of a message, for the one line saying why.
fn first_sentence(message: &str) -> &str {
    let line = message.lines().next().unwrap_or_default();
    line.split_once(". ").map_or(line, |(s, _)| s)
}

/// The line saying why auto chose the eBPF backend.
fn fallback_note(module_error: &str) -> String {
    format!(
        "the kernel module cannot be used here: {}; using the eBPF backend instead",
        first_sentence(module_error)
    )
}

/// Runs `install`; `progress` hears of each step and each external command
/// as it runs.
pub fn run(req: &Request, euid_is_root: bool, progress: &mut dyn Progress) -> Document {
    let start = Instant::now();
    let mut options = match check_request(req) {
        Ok(o) => o,
        Err(e) => return Document::failed(e.category(), e.to_string()),
    };
    if !req.dry_run {
        if let Err(e) = require_root(euid_is_root) {
            return Document::failed(e.category(), e.to_string());
        }
    }
    let fs = match open_root(req.root.as_deref()) {
        Ok(fs) => fs,
        Err(e) => return Document::failed(e.category(), e.to_string()),
    };
    let live = fs.is_live();
    if let Some(dir) = &req.metrics_textfile {
        match metrics::check(
            &fs,
            live,
            &dir.display().to_string(),
            running_binary(),
            &temporary_dirs(),
        ) {
            Ok(t) => options.metrics_textfile = Some(t),
            Err(e) => return Document::failed(e.category(), e.to_string()),
        }
    }
    let host = TimedHost::default();
    let ours = OurModule::this_release();
    let gathered = facts::gather(Target {
        fs: &fs,
        host: &host,
        live,
        kernel_release: req.kernel_release.as_deref(),
        ours: &ours,
    });
    let mismatch = gathered.el_mismatch();
    let HostFacts {
        distro,
        kernel,
        security,
        ..
    } = gathered;
    let distro = match distro {
        Ok(d) => d,
        Err(e) => return Document::failed(e.category(), e.to_string()),
    };
    let kernel = match kernel.and_then(|k| {
        k.check_supported()?;
        Ok(k)
    }) {
        Ok(k) => k,
        Err(e) => return Document::failed(e.category(), e.to_string()),
    };
    let facts = Facts::new(&distro, kernel, security);
    let root_text = req.root.as_ref().map(|r| r.display().to_string());
    let mut state = State::read(&fs, &host, &facts, root_text.as_deref());
    // A trial load of the programs needs root (and the running kernel).
    state.ebpf = EbpfFacts::read(&fs, live, live && euid_is_root);
    let ebpf_plan = || EbpfBackend.plan_install(&facts, &options, &state);
    let mut notes = Vec::new();
    let planned = match req.backend {
        Choice::Module => ModuleBackend.plan_install(&facts, &options, &state),
        Choice::Ebpf => ebpf_plan(),
        // The backend in place stays; else the module, else eBPF.
        Choice::Auto if state.ebpf.pinned => ebpf_plan(),
        Choice::Auto => match ModuleBackend.plan_install(&facts, &options, &state) {
            Err(e) if ebpf_avoids(e.category()) => match ebpf_plan() {
                Ok(p) => {
                    notes.push(fallback_note(&e.to_string()));
                    Ok(p)
                }
                Err(ebpf) => {
                    return Document::failed(
                        e.category(),
                        format!("{e}\n(the eBPF backend cannot be used either: {ebpf})"),
                    )
                }
            },
            other => other,
        },
    };
    let plan = match planned {
        Ok(p) => p,
        Err(e) => return Document::failed(e.category(), e.to_string()),
    };
    let module = plan.source != plan::Source::Ebpf;
    // A DKMS build needs the kernel's headers: say up front when its
    // package is unlikely to be found (SPEC: detected up front), so a failure to install
    // it comes with the reason.
    let headers: Vec<String> = mismatch
        .filter(|_| plan.source == plan::Source::Dkms)
        .map(|problem| problem.message)
        .into_iter()
        .collect();
    // A toa.ko that neither DKMS nor our state file accounts for (another
    // TOA module, or ours with its state file lost) is replaced: say so.
    let mut up_front = headers.clone();
    up_front.extend(match &state.installed {
        Owner::Unaccounted { path } if module && !plan.changes_nothing() => vec![format!(
            "{path} was there, installed neither by DKMS nor by toa-install; this run installs \
             toa's own module, which replaces it or, from DKMS's updates/ directory, takes \
             precedence over it"
        )],
        _ => Vec::new(),
    });
    up_front.extend(notes);
    if !module && !state.ebpf.systemd && !plan.changes_nothing() {
        up_front.push(
            "this host does not run systemd, so nothing attaches toa's eBPF programs again \
             after a reboot. Next step: run `toa-install attach` (with the same --trust) from the \
             boot scripts"
                .to_owned(),
        );
    }
    // A system known only through ID_LIKE: say which family was assumed.
    up_front.splice(0..0, distro.assumed.clone());
    let planning = StepTiming {
        step: "detect the system and plan".to_owned(),
        millis: millis(start.elapsed()),
        external_millis: millis(host.spent.get()),
    };
    if req.dry_run {
        if module && req.backend == Choice::Auto && !plan.changes_nothing() {
            up_front.push(match &state.ebpf.support {
                Support::Missing(_) => "if the module cannot be built or loaded, the run fails: \
                                        this kernel cannot run the eBPF backend either"
                    .to_owned(),
                _ => "if the module cannot be built or loaded, the eBPF backend is used instead"
                    .to_owned(),
            });
        }
        return Document {
            changed: false,
            backend: Some(plan.backend()),
            source: Some(plan.source),
            steps: plan.steps.iter().map(|s| s.summary()).collect(),
            warnings: up_front,
            error: None,
            plan: Some(plan),
            packages_installed: Vec::new(),
            timings: None,
        };
    }
    let _lock = match RunLock::acquire(Path::new(LOCK_FILE)) {
        Ok(l) => l,
        Err(e) => return Document::failed(e.category(), e.to_string()),
    };
    let display = Display::for_stderr(req.quiet);
    let fetcher = MirrorFetcher::new(Duration::from_secs(15), Duration::from_secs(120), display);
    let verifier = NetnsVerifier;
    let mut fx = HostEffects::host();
    let mut services = Services {
        fetcher: &fetcher,
        verifier: &verifier,
        trusted: options.trust.clone(),
        progress,
    };
    let mut result = execute(&plan, &mut fx, &mut services);
    let mut kept = Vec::new();
    let mut ran = plan.backend();
    // The module failed where eBPF would not, and the host is as it was:
    // auto goes on with eBPF.
    if let Err(e) = &result {
        if module
            && req.backend == Choice::Auto
            && ebpf_avoids(e.category)
            && e.undo_problems.is_empty()
        {
            let note = fallback_note(&e.message);
            match EbpfBackend.plan_install(&facts, &options, &state) {
                Ok(ebpf) => {
                    services.progress.note(&note);
                    up_front.push(note);
                    kept.clone_from(&e.packages_kept);
                    ran = ebpf.backend();
                    result = execute(&ebpf, &mut fx, &mut services);
                }
                Err(ebpf) => {
                    if let Err(e) = &mut result {
                        e.message = format!(
                            "{}\n(the eBPF backend cannot be used either: {ebpf})",
                            e.message
                        );
                    }
                }
            }
        }
    }
    match result {
        Ok(Outcome {
            changed,
            source,
            steps,
            packages_installed,
            warnings,
            timings,
        }) => Document {
            changed,
            backend: Some(ran),
            source: Some(source),
            steps,
            warnings: up_front.into_iter().chain(warnings).collect(),
            error: None,
            plan: None,
            packages_installed: kept.into_iter().chain(packages_installed).collect(),
            timings: Some({
                let mut steps = vec![planning];
                steps.extend(timings);
                Timings {
                    total_millis: millis(start.elapsed()),
                    external_millis: steps.iter().map(|t| t.external_millis).sum(),
                    steps,
                }
            }),
        },
        Err(e) => Document {
            changed: false,
            backend: Some(ran),
            source: Some(plan.source),
            steps: Vec::new(),
            warnings: headers,
            error: Some(ErrorDoc {
                undo_problems: e.undo_problems,
                ..ErrorDoc::new(e.category, e.message)
            }),
            plan: None,
            packages_installed: kept.into_iter().chain(e.packages_kept).collect(),
            timings: None,
        },
    }
}

/// This toa-install's path, for the metrics timer to run.
fn running_binary() -> Result<String, String> {
    std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map(|p| p.display().to_string())
        .map_err(|e| e.to_string())
}

/// Directories whose files do not outlive the run or the boot: the
/// install script's `mktemp -d` is below `TMPDIR` or /tmp.
fn temporary_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = ["/tmp", "/var/tmp", "/dev/shm", "/run"]
        .map(str::to_owned)
        .to_vec();
    if let Ok(t) = std::fs::canonicalize(std::env::temp_dir()) {
        dirs.push(t.display().to_string());
    }
    dirs
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The real host, keeping count of the time its commands (the package
/// database queries of detection) take, so that `timings` can tell them
/// from toa-install's own work.
#[derive(Debug, Default)]
struct TimedHost {
    spent: std::cell::Cell<Duration>,
}

impl Host for TimedHost {
    fn uname(&self) -> Uname {
        RealHost.uname()
    }

    fn run(&self, program: &str, args: &[&str]) -> Option<CommandOutput> {
        let start = Instant::now();
        let out = RealHost.run(program, args);
        self.spent.set(self.spent.get() + start.elapsed());
        out
    }
}

/// `toa-install install`: runs it with progress on standard error and
/// prints how it ended.
pub fn main(output: &Output, req: &Request) -> Exit {
    let mut progress = output.reporter(req.dry_run);
    let doc = run(req, super::euid_is_root(), &mut progress);
    drop(progress);
    let done = match (doc.backend, doc.changed) {
        (Some(Kind::Ebpf), true) if !Path::new(SYSTEMD_BOOTED).exists() => {
            "toa's eBPF backend is attached and verified (nothing attaches it at boot: see the \
             warning)."
        }
        (Some(Kind::Ebpf), true) => {
            "toa's eBPF backend is attached, verified and set to attach at boot."
        }
        (Some(Kind::Ebpf), false) => "toa's eBPF backend is already attached: nothing changed.",
        (_, true) => "toa is installed, loaded, verified and set to load at boot.",
        (_, false) => "toa is already installed and loaded: nothing changed.",
    };
    let ending = Ending {
        plan: doc.plan.as_ref().map(Plan::render),
        done,
        warnings: &doc.warnings,
        packages: ("packages installed", &doc.packages_installed),
        error: doc.error.as_ref(),
    };
    output.print_ending(&doc, doc.exit(), ending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_needs_dry_run() {
        let req = Request {
            root: Some("/img".into()),
            ..Request::default()
        };
        let err = check_request(&req).unwrap_err();
        let (exit, message) = (err.category(), err.to_string());
        assert_eq!(exit, Exit::Usage);
        assert!(message.contains("--dry-run"), "{message}");
        let req = Request {
            kernel_release: Some("6.1.0-27-amd64".into()),
            ..Request::default()
        };
        assert_eq!(check_request(&req).unwrap_err().category(), Exit::Usage);
        let req = Request {
            root: Some("/img".into()),
            dry_run: true,
            ..Request::default()
        };
        assert!(check_request(&req).is_ok());
    }

    #[test]
    fn not_root_is_exit_3_before_anything() {
        let doc = run(&Request::default(), false, &mut |_: &str| {});
        assert_eq!(doc.exit(), Exit::NotRoot);
        assert!(!doc.changed);
    }

    #[test]
    fn bad_trust_is_a_usage_error() {
        let req = Request {
            trust: vec!["10.0.0.0/99".into()],
            ..Request::default()
        };
        assert_eq!(check_request(&req).unwrap_err().category(), Exit::Usage);
    }

    #[test]
    fn offline_is_tried_before_urls() {
        let s = mirror_sources(Some(Path::new("/m")), &["https://a".into()]);
        assert_eq!(
            s,
            [
                MirrorSource::Dir("/m".into()),
                MirrorSource::Url("https://a".into())
            ]
        );
    }
}

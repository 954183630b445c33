//! Carrying out a [`Plan`]: every side effect goes through [`Effects`], every
//! change is written to an undo log first, and a failed run undoes what it
//! did (files restored byte for byte, the DKMS registration removed, the
//! module unloaded). Packages are kept and reported.
//!
//! [`HostEffects`] is the real implementation: commands through `duct`, each
//! in its own process group and killed with it when its timeout passes;
//! files below a root directory. Tests use [`fake::FakeEffects`], which
//! records commands and answers from a script, on a temporary root.

use crate::effects::progress::Progress;
use crate::effects::runner::{last_lines, Output, RunError};
use crate::effects::Effects;
use crate::exit::{Categorized, Exit};
use crate::layout::STATE_DIR;
use crate::plan::{Cmd, Plan, Source, Step};
use serde::Serialize;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thiserror::Error;

mod steps;
mod undo;

pub use undo::UndoEntry;

/// What a finished run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Whether anything changed.
    pub changed: bool,
    /// How toa.ko got onto the system.
    pub source: Source,
    /// The steps carried out, as one line each.
    pub steps: Vec<String>,
    /// Packages installed by this run.
    pub packages_installed: Vec<String>,
    /// Things worth knowing (a prebuilt refused and compiled instead...).
    pub warnings: Vec<String>,
    /// How long each step took, and how much of it external commands.
    pub timings: Vec<StepTiming>,
}

/// How long one step took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepTiming {
    /// The step, as one line.
    pub step: String,
    /// Wall time of the whole step, in milliseconds.
    pub millis: u64,
    /// Of which spent waiting for external commands (package manager,
    /// dkms, make, gcc, modprobe, depmod), in milliseconds.
    pub external_millis: u64,
}

/// A failed run.
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize)]
#[error("{message}")]
pub struct ExecError {
    /// The exit category.
    pub category: Exit,
    /// What failed and the next step.
    pub message: String,
    /// What the undo could not put back (empty: the host is as before,
    /// apart from `packages_kept`).
    pub undo_problems: Vec<String>,
    /// Packages installed by the run and kept.
    pub packages_kept: Vec<String>,
}

impl ExecError {
    /// An error of `category`.
    pub fn new(category: Exit, message: String) -> Self {
        ExecError {
            category,
            message,
            undo_problems: Vec::new(),
            packages_kept: Vec::new(),
        }
    }
}

impl Categorized for ExecError {
    fn category(&self) -> Exit {
        self.category
    }
}

/// A prebuilt module could not be had: the error of the layer that fetches
/// (the effects cannot name it), saying what went wrong and the next step.
/// The run goes on with the plan's `fallback` steps (compiling through
/// DKMS) when it has them.
pub type FetchFailure = Box<dyn std::error::Error + Send + Sync>;

/// Gets a checked prebuilt toa.ko onto this machine.
pub trait Fetcher {
    /// Fetches the module the step names; returns the local path of a
    /// toa.ko whose sha256 and vermagic were checked.
    fn fetch(&self, step: &Step) -> Result<PathBuf, FetchFailure>;
}

/// Why the self-test failed: the error of the layer that runs it (the
/// executor only words it into an [`ExecError`] of exit 8).
pub type VerifyFailure = Box<dyn std::error::Error + Send + Sync>;

/// The end-to-end self-test.
pub trait Verifier {
    /// Passes when TOA reaches `accept()` and `getpeername()`.
    fn verify(&self, trusted: Option<&[String]>) -> Result<(), VerifyFailure>;
}

/// What the executor needs besides [`Effects`].
pub struct Services<'a> {
    /// Prebuilt modules.
    pub fetcher: &'a dyn Fetcher,
    /// The self-test.
    pub verifier: &'a dyn Verifier,
    /// The trusted list the run sets (for the self-test).
    pub trusted: Option<Vec<String>>,
    /// Where progress goes: a line per step ("[3/12] build toa.ko ..."),
    /// and each external command as it runs.
    pub progress: &'a mut dyn Progress,
}

/// Runs a plan. On failure, undoes what this run did and says what is left.
pub fn execute(
    plan: &Plan,
    fx: &mut dyn Effects,
    services: &mut Services<'_>,
) -> Result<Outcome, ExecError> {
    let mut run = Run {
        fx,
        log: Vec::new(),
        fetched: None,
        done: Vec::new(),
        warnings: Vec::new(),
        timings: Vec::new(),
        external: Duration::ZERO,
    };
    if plan.changes_nothing() {
        return Ok(Outcome {
            changed: false,
            source: plan.source,
            steps: Vec::new(),
            packages_installed: Vec::new(),
            warnings: Vec::new(),
            timings: Vec::new(),
        });
    }
    let mut source = plan.source;
    let result = match run.steps(&plan.steps, services) {
        Err(StepError::Fetch(failure)) => match &plan.fallback {
            Some(fallback) => {
                let note = format!("{failure} Compiling through DKMS instead.");
                services.progress.note(&note);
                run.warnings.push(note);
                source = Source::Dkms;
                run.steps(fallback, services)
            }
            None => Err(StepError::Failed(ExecError::new(
                Exit::Download,
                format!("{failure} (--prebuilt-only: not compiling instead)"),
            ))),
        },
        other => other,
    };
    let packages = run.packages();
    match result {
        Ok(()) => {
            run.finish_log();
            Ok(Outcome {
                changed: true,
                source,
                steps: run.done,
                packages_installed: packages,
                warnings: run.warnings,
                timings: run.timings,
            })
        }
        Err(e) => {
            let mut err = match e {
                StepError::Failed(err) => err,
                StepError::Fetch(f) => ExecError::new(Exit::Download, f.to_string()),
            };
            err.undo_problems = run.undo(&mut *services.progress);
            err.packages_kept = packages;
            Err(err)
        }
    }
}

enum StepError {
    Fetch(FetchFailure),
    Failed(ExecError),
}

impl From<ExecError> for StepError {
    fn from(e: ExecError) -> Self {
        StepError::Failed(e)
    }
}

struct Run<'a> {
    fx: &'a mut dyn Effects,
    log: Vec<UndoEntry>,
    fetched: Option<PathBuf>,
    done: Vec<String>,
    warnings: Vec<String>,
    timings: Vec<StepTiming>,
    /// Time spent in external commands so far.
    external: Duration,
}

impl Run<'_> {
    fn steps(&mut self, steps: &[Step], services: &mut Services<'_>) -> Result<(), StepError> {
        for (i, step) in steps.iter().enumerate() {
            services
                .progress
                .step(&format!("[{}/{}] {}", i + 1, steps.len(), step.summary()));
            let start = Instant::now();
            let external_before = self.external;
            self.step(step, services)?;
            self.timings.push(StepTiming {
                step: step.summary(),
                millis: millis(start.elapsed()),
                external_millis: millis(self.external.saturating_sub(external_before)),
            });
            self.done.push(step.summary());
        }
        Ok(())
    }

    // step() is in steps.rs.

    fn command(
        &mut self,
        cmd: &Cmd,
        failure: Exit,
        services: &mut Services<'_>,
    ) -> Result<Output, ExecError> {
        let (result, elapsed) = run_reported(&mut *self.fx, cmd, &mut *services.progress);
        self.external += elapsed;
        result.map_err(|e| {
            let next = match e {
                RunError::NotFound { .. } => {
                    "Next step: install it with the distribution's package manager"
                }
                RunError::TimedOut { .. } => {
                    "Next step: check the network and the package mirrors, then run toa-install again"
                }
                RunError::Io { .. } => "Next step: run toa-install as root",
            };
            ExecError::new(failure, format!("{e}. {next}"))
        })
    }

    /// Writes a file after logging what was there.
    fn write_file(&mut self, path: &str, contents: &[u8], mode: u32) -> Result<(), ExecError> {
        let previous = self.fx.read(path).map_err(|e| io_error(path, e))?;
        if previous
            .as_ref()
            .is_some_and(|p| p.contents == contents && p.mode == mode)
        {
            return Ok(());
        }
        self.record(UndoEntry::File {
            path: path.to_owned(),
            previous,
        })?;
        self.fx
            .write(path, contents, mode)
            .map_err(|e| io_error(path, e))
    }

    /// The directories from `dir` up that do not exist yet, outermost first.
    fn missing_dirs(&self, dir: &str) -> Vec<String> {
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur.filter(|d| !d.is_empty() && *d != "/" && !self.fx.is_dir(d)) {
            missing.push(d.to_owned());
            cur = parent(d);
        }
        missing.reverse();
        missing
    }

    /// Creates `dir` and missing parents, logging each.
    fn ensure_dirs(&mut self, dir: &str) -> Result<(), ExecError> {
        for d in self.missing_dirs(dir) {
            self.record(UndoEntry::Dir { path: d.clone() })?;
            self.fx.create_dir(&d, 0o755).map_err(|e| io_error(&d, e))?;
        }
        Ok(())
    }

    /// Creates the state directory. It holds the undo log itself, so each
    /// directory is logged once made, at the head of the log.
    fn ensure_state_dir(&mut self) -> Result<(), ExecError> {
        for d in self.missing_dirs(STATE_DIR) {
            self.fx.create_dir(&d, 0o755).map_err(|e| io_error(&d, e))?;
            self.log.insert(0, UndoEntry::Dir { path: d });
        }
        Ok(())
    }
}

/// Runs `cmd` through `fx`, telling `progress` when it starts, what it
/// prints and how it ended; returns how long it took too.
pub(crate) fn run_reported(
    fx: &mut dyn Effects,
    cmd: &Cmd,
    progress: &mut dyn Progress,
) -> (Result<Output, RunError>, Duration) {
    progress.command_started(cmd);
    let start = Instant::now();
    let result = fx.run_watched(cmd, &mut |line| progress.command_output(line));
    let elapsed = start.elapsed();
    progress.command_finished(cmd, elapsed, result.as_ref());
    (result, elapsed)
}

/// A `systemctl` command on toa-install's units that failed; `again` is
/// the command to run once it is fixed.
pub(crate) fn systemctl_failed(purpose: &str, cmd: &Cmd, out: &Output, again: &str) -> ExecError {
    ExecError::new(
        Exit::PersistFailed,
        format!(
            "{purpose} failed: `{}`\n{}\nNext step: `systemctl status` and `journalctl -xe` say \
             why; fix that, then run {again} again",
            cmd.line(),
            out.tail(20)
        ),
    )
}

/// A `dkms` command that failed: its output and where to look next.
pub(crate) fn dkms_failed(cmd: &Cmd, out: &Output) -> ExecError {
    ExecError::new(
        Exit::BuildFailed,
        format!(
            "`{}` failed:\n{}\nNext step: see `dkms status toa`",
            cmd.line(),
            out.tail(20)
        ),
    )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn parent(path: &str) -> Option<&str> {
    let trimmed = path.trim_end_matches('/');
    let (dir, _) = trimmed.rsplit_once('/')?;
    Some(if dir.is_empty() { "/" } else { dir })
}

fn io_error(path: &str, e: io::Error) -> ExecError {
    ExecError::new(
        Exit::Usage,
        format!("cannot write {path}: {e}. Next step: check that / is writable and run as root"),
    )
}

fn persist_error(path: &str, e: ExecError) -> ExecError {
    ExecError::new(
        Exit::PersistFailed,
        format!("{} (while writing {path})", e.message),
    )
}

/// The message when installing packages fails: a missing header package
/// (an old running kernel whose headers left the repositories) gets its own.
fn packages_failed(packages: &[String], cmd: &Cmd, out: &Output) -> String {
    let text = format!("{}{}", out.stdout, out.stderr);
    let header = packages
        .iter()
        .find(|p| p.starts_with("kernel-") || p.starts_with("linux-headers-"));
    let missing = header.filter(|h| {
        [
            format!("No package {h} available"),
            format!("Unable to locate package {h}"),
            format!("No match for argument: {h}"),
            format!("'{h}' not found in package names"),
            format!("Couldn't find any package by glob '{h}'"),
        ]
        .iter()
        .any(|needle| text.contains(needle.as_str()))
    });
    match missing {
        Some(h) if header_release(h).is_some_and(|r| !is_distribution_release(r)) => format!(
            "the header package {h} is not in the configured repositories, and cannot be: kernel {} \
             is not named like the distribution's own kernels (a custom or self-built kernel?), \
             so the distribution packages no headers for it. \
             Next step: build toa against that kernel's build tree, either with \
             `make KDIR=<build tree>` in module-c-shim/ and `insmod toa.ko`, or with \
             `toa-install mirror build --kernel-tree <build tree> --out <dir>` and then \
             `toa-install --offline <dir>`",
            header_release(h).unwrap_or_default()
        ),
        Some(h) => format!(
            "the header package {h} for the running kernel is not in the configured repositories \
             (the running kernel is probably older than the newest one available). \
             Next step: update the kernel and reboot into it (then run toa-install again), \
             or install {h} from an archive/vault repository, or use a prebuilt module with --mirror"
        ),
        None => format!(
            "installing packages failed: `{}`\n{}\nNext step: fix the package manager's problem above \
             (repositories, network, locks), then run toa-install again",
            cmd.line(),
            out.tail(20)
        ),
    }
}

/// The kernel release a header package is for, when its name carries it
/// whole (`kernel-devel-<release>`, `linux-headers-<release>`; SUSE's
/// `kernel-<flavour>-devel-<version>` does not).
fn header_release(package: &str) -> Option<&str> {
    package
        .strip_prefix("kernel-devel-")
        .or_else(|| package.strip_prefix("linux-headers-"))
}

/// Debian architecture names, which Debian-based kernels (UOS's
/// `4.19.0-server-amd64`) carry as a flavour.
const DEBIAN_ARCH_FLAVOURS: &[&str] = &[
    "amd64", "arm64", "armmp", "armhf", "i386", "686", "ppc64el", "s390x", "loong64", "sw64",
    "mips64el", "riscv64",
];

/// Whether `release` is named like a distribution's kernel: a package
/// release after the first `-` (`3.10.0-1160.el7.x86_64`, `6.1.0-27-amd64`,
/// `4.14.105-19-0024`, `5.14.21-150500.55.39-default`), or a Debian
/// architecture flavour (`4.19.0-server-amd64`). A self-built kernel
/// (`6.6.0`, `6.6.0-custom`, `6.1.0-mybuild`, `6.6.0+`) is neither.
fn is_distribution_release(release: &str) -> bool {
    let Some((_, rest)) = release.split_once('-') else {
        return false;
    };
    rest.starts_with(|c: char| c.is_ascii_digit())
        || rest
            .split('-')
            .any(|part| DEBIAN_ARCH_FLAVOURS.contains(&part))
}

#[cfg(test)]
mod tests;

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
use crate::exit::{Categorized, Exit};
use crate::layout::{prebuilt_path, MODULE, STATE_DIR, STATE_FILE, TRUSTED_PARAM, UNDO_LOG};
use crate::plan::{Cmd, Plan, Source, Step};
pub use crate::state::StateFile;
use crate::system::installed;
use crate::system::load;
use crate::{bundle, bundle::MODULE_SOURCE};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit status 0.
    pub success: bool,
    /// The exit code, when it exited (not killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// The last `n` lines of standard output followed by standard error.
    pub fn tail(&self, n: usize) -> String {
        last_lines(&format!("{}{}", self.stdout, self.stderr), n)
    }
}

/// Why a command did not run to its end.
#[derive(Debug, Error)]
pub enum RunError {
    /// The program is not installed.
    #[error("{program} is not installed (not found in PATH)")]
    NotFound {
        /// The program.
        program: String,
    },
    /// It ran longer than its timeout and was killed with its children.
    #[error("`{line}` did not finish within {}s and was stopped", timeout.as_secs())]
    TimedOut {
        /// The command line.
        line: String,
        /// Its time limit.
        timeout: Duration,
    },
    /// It could not be started or waited for.
    #[error("cannot run `{line}`: {source}")]
    Io {
        /// The command line.
        line: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A file's content and permission bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileData {
    /// The bytes.
    pub contents: Vec<u8>,
    /// The permission bits.
    pub mode: u32,
}

/// Every side effect of an install run: commands, and files below the
/// root of [`Effects::files`].
pub trait Effects {
    /// Runs a command, killing it (and its children) after its timeout.
    fn run(&mut self, cmd: &Cmd) -> Result<Output, RunError>;
    /// Runs a command like [`Effects::run`], passing each line it prints to
    /// `line` (as it comes, where the implementation can; at the end, in
    /// order, standard output then standard error, where it cannot).
    fn run_watched(&mut self, cmd: &Cmd, line: &mut dyn FnMut(&str)) -> Result<Output, RunError> {
        let out = self.run(cmd)?;
        out.stdout.lines().chain(out.stderr.lines()).for_each(line);
        Ok(out)
    }
    /// The files the effects act on.
    fn files(&self) -> &RootedFiles;
    /// A file's content and mode; `None` when it does not exist.
    fn read(&self, path: &str) -> io::Result<Option<FileData>> {
        self.files().read(path)
    }
    /// Whether a directory exists.
    fn is_dir(&self, path: &str) -> bool {
        self.files().is_dir(path)
    }
    /// Creates one directory (the parent exists).
    fn create_dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.files().create_dir(path, mode)
    }
    /// Replaces a file atomically with `contents` and `mode`.
    fn write(&mut self, path: &str, contents: &[u8], mode: u32) -> io::Result<()> {
        self.files().write(path, contents, mode)
    }
    /// Writes to an existing file in place (a sysfs parameter).
    fn write_in_place(&mut self, path: &str, contents: &[u8]) -> io::Result<()> {
        self.files().write_in_place(path, contents)
    }
    /// Removes a file.
    fn remove(&mut self, path: &str) -> io::Result<()> {
        self.files().remove(path)
    }
    /// Removes an empty directory.
    fn remove_dir(&mut self, path: &str) -> io::Result<()> {
        self.files().remove_dir(path)
    }
    /// Removes a directory with everything in it (symbolic links are
    /// removed, not followed).
    fn remove_tree(&mut self, path: &str) -> io::Result<()> {
        self.files().remove_tree(path)
    }
    /// A local file for the step that needs one (a fetched toa.ko), read
    /// from this machine, not from below the root.
    fn read_local(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
}

/// Files of the system below a root directory (`/` on a real run).
#[derive(Debug, Clone)]
pub struct RootedFiles {
    root: PathBuf,
}

impl RootedFiles {
    /// Files below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RootedFiles { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path on this machine of `path` inside the system. `..` is
    /// refused so that nothing lands outside the root.
    pub fn host_path(&self, path: &str) -> io::Result<PathBuf> {
        let rel = Path::new(path.trim_start_matches('/'));
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing path {path:?}: it must be absolute without `..`"),
            ));
        }
        Ok(self.root.join(rel))
    }

    fn read(&self, path: &str) -> io::Result<Option<FileData>> {
        let p = self.host_path(path)?;
        match fs::read(&p) {
            Ok(contents) => Ok(Some(FileData {
                contents,
                mode: fs::metadata(&p)?.permissions().mode() & 0o7777,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn is_dir(&self, path: &str) -> bool {
        self.host_path(path).map(|p| p.is_dir()).unwrap_or(false)
    }

    fn create_dir(&self, path: &str, mode: u32) -> io::Result<()> {
        let p = self.host_path(path)?;
        fs::create_dir(&p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
    }

    fn write(&self, path: &str, contents: &[u8], mode: u32) -> io::Result<()> {
        let p = self.host_path(path)?;
        let name = p
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let tmp = p.with_file_name(format!(".{}.toa-install.tmp", name.to_string_lossy()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &p).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }

    fn write_in_place(&self, path: &str, contents: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).open(self.host_path(path)?)?;
        file.write_all(contents)
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        fs::remove_file(self.host_path(path)?)
    }

    fn remove_dir(&self, path: &str) -> io::Result<()> {
        fs::remove_dir(self.host_path(path)?)
    }

    fn remove_tree(&self, path: &str) -> io::Result<()> {
        let p = self.host_path(path)?;
        if p == self.root {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "refusing to remove the root directory",
            ));
        }
        fs::remove_dir_all(p)
    }
}

/// The real thing: commands run on this machine, files below the root.
#[derive(Debug)]
pub struct HostEffects {
    files: RootedFiles,
}

impl HostEffects {
    /// Effects on the running host (`/`).
    pub fn host() -> Self {
        HostEffects {
            files: RootedFiles::new("/"),
        }
    }
}

/// Runs `cmd` with `duct`: stdin closed, `LC_ALL=C` so messages can be
/// recognised, in a new process group that is killed as a whole when the
/// timeout passes. Standard output and error are collected apart, and
/// each line is passed to `on_line` as it is printed.
pub fn run_command(cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<Output, RunError> {
    let line = cmd.line();
    let io_err = |source| RunError::Io {
        line: line.clone(),
        source,
    };
    let (stdout_read, stdout_write) = io::pipe().map_err(io_err)?;
    let (stderr_read, stderr_write) = io::pipe().map_err(io_err)?;
    let mut expr = duct::cmd(&cmd.program, &cmd.args)
        .stdin_null()
        .stdout_file(stdout_write)
        .stderr_file(stderr_write)
        .unchecked()
        .env("LC_ALL", "C")
        .before_spawn(|c| {
            c.process_group(0);
            Ok(())
        });
    for (k, v) in &cmd.env {
        expr = expr.env(k, v);
    }
    let started = expr.start();
    // The expression holds the pipes' write ends: they must close here for
    // the readers to see the end of the output when the command ends.
    drop(expr);
    let handle = started.map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => RunError::NotFound {
            program: cmd.program.clone(),
        },
        _ => io_err(source),
    })?;
    let (tx, rx) = mpsc::channel();
    read_lines(stdout_read, Stream::Stdout, tx.clone());
    read_lines(stderr_read, Stream::Stderr, tx);
    let deadline = Instant::now() + cmd.timeout;
    // Children that outlive the command (make's jobs) keep its pipes
    // open; the whole group goes when the command is stopped.
    let kill_group = |handle: &duct::Handle| {
        for pid in handle.pids() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        }
    };
    let mut output = Output::default();
    // The exit status, and when it came.
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let status = loop {
        match rx.recv_timeout(POLL) {
            Ok((stream, chunk)) => {
                let text = String::from_utf8_lossy(&chunk);
                match stream {
                    Stream::Stdout => output.stdout.push_str(&text),
                    Stream::Stderr => output.stderr.push_str(&text),
                }
                // A progress line rewritten with `\r` shows its last state.
                let shown = text.trim_end().rsplit('\r').next().unwrap_or_default();
                if !shown.trim().is_empty() {
                    on_line(shown);
                }
            }
            // Both pipes closed: every writer is gone.
            Err(mpsc::RecvTimeoutError::Disconnected) => match exited {
                Some((status, _)) => break status,
                None => std::thread::sleep(POLL),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        match exited {
            // A daemon the command left behind may hold the pipes for
            // good: its output is not waited for long.
            Some((status, at)) if at.elapsed() >= OUTPUT_GRACE => break status,
            Some(_) => {}
            None => {
                if let Some(out) = handle.try_wait().map_err(io_err)? {
                    exited = Some((out.status, Instant::now()));
                } else if Instant::now() >= deadline {
                    kill_group(&handle);
                    let _ = handle.kill();
                    return Err(RunError::TimedOut {
                        line,
                        timeout: cmd.timeout,
                    });
                }
            }
        }
    };
    output.success = status.success();
    output.code = status.code();
    Ok(output)
}

/// How often a running command is looked at.
const POLL: Duration = Duration::from_millis(20);
/// How long output is still collected after the command exited.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Which pipe a chunk of output came from.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Reads `pipe` line by line on a thread of its own, sending each line
/// (with its newline) until the pipe closes or nobody listens.
fn read_lines(pipe: io::PipeReader, stream: Stream, tx: mpsc::Sender<(Stream, Vec<u8>)>) {
    std::thread::spawn(move || {
        let mut reader = io::BufReader::new(pipe);
        loop {
            let mut chunk = Vec::new();
            match reader.read_until(b'\n', &mut chunk) {
                Ok(0) => break,
                Ok(_) => {
                    if tx.send((stream, chunk)).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
}

impl Effects for HostEffects {
    fn run(&mut self, cmd: &Cmd) -> Result<Output, RunError> {
        run_command(cmd, &mut |_| {})
    }
    fn run_watched(&mut self, cmd: &Cmd, line: &mut dyn FnMut(&str)) -> Result<Output, RunError> {
        run_command(cmd, line)
    }
    fn files(&self) -> &RootedFiles {
        &self.files
    }
}

/// Refuses to go on without root.
pub fn require_root(euid_is_root: bool) -> Result<(), ExecError> {
    if euid_is_root {
        Ok(())
    } else {
        Err(ExecError::new(
            Exit::NotRoot,
            "toa-install must run as root to install packages and load a kernel module. \
             Next step: run it again with sudo (or as root); `toa-install --dry-run` shows the plan without root"
                .to_owned(),
        ))
    }
}

/// The exclusive run lock; released when dropped (or when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock at `path`, or says who to wait for.
    pub fn acquire(path: &Path) -> Result<RunLock, ExecError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                ExecError::new(
                    Exit::Usage,
                    format!(
                        "cannot open the lock file {}: {e}. Next step: run as root",
                        path.display()
                    ),
                )
            })?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let holder = fs::read_to_string(path).unwrap_or_default();
                Err(ExecError::new(
                    Exit::Usage,
                    format!(
                        "another toa-install is running{} (it holds {}). \
                         Next step: wait for it to finish, then run toa-install again",
                        match holder.trim() {
                            "" => String::new(),
                            pid => format!(" as process {pid}"),
                        },
                        path.display()
                    ),
                ))
            }
            Err(e) => Err(ExecError::new(
                Exit::Usage,
                format!("cannot lock {}: {e}", path.display()),
            )),
        }
        .map(|mut lock| {
            lock.note_pid();
            lock
        })
    }

    fn note_pid(&mut self) {
        let _ = self._file.set_len(0);
        let _ = writeln!(self._file, "{}", std::process::id());
    }
}

/// One change made by the run, with what undoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum UndoEntry {
    /// A file was written; put back `previous` (or remove it if `None`).
    File {
        /// The path.
        path: String,
        /// What was there before.
        previous: Option<FileData>,
    },
    /// A directory was created; remove it.
    Dir {
        /// The path.
        path: String,
    },
    /// The source was registered with DKMS; `dkms remove` it.
    Dkms {
        /// The module version.
        version: String,
    },
    /// The module was loaded; unload it.
    Loaded,
    /// Packages were installed; kept, but reported.
    Packages {
        /// Their names.
        packages: Vec<String>,
    },
}

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

/// A prebuilt module could not be had; `fallback` says whether compiling
/// instead is right (no entry, download, checksum, vermagic) or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// What went wrong and the next step.
    pub message: String,
}

/// Gets a checked prebuilt toa.ko onto this machine.
pub trait Fetcher {
    /// Fetches the module the step names; returns the local path of a
    /// toa.ko whose sha256 and vermagic were checked.
    fn fetch(&self, step: &Step) -> Result<PathBuf, FetchFailure>;
}

/// The end-to-end self-test.
pub trait Verifier {
    /// Passes when TOA reaches `accept()` and `getpeername()`.
    fn verify(&self, trusted: Option<&[String]>) -> Result<(), String>;
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
        state_dir_created: false,
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
                let note = format!("{} Compiling through DKMS instead.", failure.message);
                services.progress.note(&note);
                run.warnings.push(note);
                source = Source::Dkms;
                run.steps(fallback, services)
            }
            None => Err(StepError::Failed(ExecError::new(
                Exit::Download,
                format!(
                    "{} (--prebuilt-only: not compiling instead)",
                    failure.message
                ),
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
                StepError::Fetch(f) => ExecError::new(Exit::Download, f.message),
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
    state_dir_created: bool,
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

    fn step(&mut self, step: &Step, services: &mut Services<'_>) -> Result<(), StepError> {
        match step {
            Step::InstallPackages { packages, cmd, .. } => {
                let out = self.command(cmd, Exit::HeadersUnavailable, services)?;
                if !out.success {
                    return Err(ExecError::new(
                        Exit::HeadersUnavailable,
                        packages_failed(packages, cmd, &out),
                    )
                    .into());
                }
                self.record(UndoEntry::Packages {
                    packages: packages.clone(),
                })?;
            }
            Step::Run {
                purpose,
                cmd,
                failure,
            } => {
                let out = self.command(cmd, *failure, services)?;
                if !out.success {
                    return Err(ExecError::new(
                        *failure,
                        format!("{purpose} failed: `{}`\n{}", cmd.line(), out.tail(20)),
                    )
                    .into());
                }
            }
            Step::WriteSource { dir, files } => {
                self.ensure_dirs(dir)?;
                for path in files {
                    let file = MODULE_SOURCE
                        .iter()
                        .find(|f| f.path == *path)
                        .ok_or_else(|| {
                            ExecError::new(Exit::BuildFailed, format!("{path} is not bundled"))
                        })?;
                    let target = format!("{dir}/{path}");
                    if let Some(parent) = parent(&target) {
                        self.ensure_dirs(parent)?;
                    }
                    self.write_file(&target, file.contents, 0o644)?;
                }
            }
            Step::WriteFile {
                path,
                contents,
                mode,
            } => {
                if let Some(parent) = parent(path) {
                    self.ensure_dirs(parent)?;
                }
                self.write_file(path, contents.as_bytes(), *mode)
                    .map_err(|e| persist_error(path, e))?;
            }
            Step::DkmsAdd { cmd } => {
                let out = self.command(cmd, Exit::BuildFailed, services)?;
                // "already added" is what we want.
                let already = out.stderr.contains("already been added")
                    || out.stdout.contains("already been added");
                if !out.success && !already {
                    return Err(ExecError::new(
                        Exit::BuildFailed,
                        format!("`{}` failed:\n{}", cmd.line(), out.tail(20)),
                    )
                    .into());
                }
                if !already {
                    self.record(UndoEntry::Dkms {
                        version: bundle::VERSION.to_owned(),
                    })?;
                }
            }
            Step::DkmsBuild { cmd, make_log } => {
                let out = self.command(cmd, Exit::BuildFailed, services)?;
                if !out.success {
                    let log = self
                        .fx
                        .read(make_log)
                        .ok()
                        .flatten()
                        .map(|f| last_lines(&String::from_utf8_lossy(&f.contents), 30))
                        .unwrap_or_else(|| out.tail(30));
                    return Err(ExecError::new(
                        Exit::BuildFailed,
                        format!(
                            "building toa.ko failed: `{}`. The end of {make_log}:\n{log}\n\
                             Next step: check that the headers match the running kernel \
                             (`ls /lib/modules/$(uname -r)/build`) and report the log above with \
                             `toa-install detect` to the toa developers",
                            cmd.line()
                        ),
                    )
                    .into());
                }
            }
            Step::DkmsInstall { cmd } => {
                let out = self.command(cmd, Exit::BuildFailed, services)?;
                if !out.success {
                    return Err(dkms_failed(cmd, &out).into());
                }
            }
            Step::FetchPrebuilt { .. } => {
                let path = services.fetcher.fetch(step).map_err(StepError::Fetch)?;
                self.fetched = Some(path);
            }
            Step::InstallPrebuilt { path } => {
                let local = self.fetched.clone().ok_or_else(|| {
                    ExecError::new(Exit::Download, "no prebuilt module was fetched".to_owned())
                })?;
                let bytes = self.fx.read_local(&local).map_err(|e| {
                    ExecError::new(
                        Exit::Download,
                        format!("cannot read {}: {e}", local.display()),
                    )
                })?;
                if let Some(dir) = parent(path) {
                    self.ensure_dirs(dir)?;
                }
                self.write_file(path, &bytes, 0o644)?;
            }
            Step::Load { cmd } => {
                let out = self.command(cmd, Exit::LoadFailed, services)?;
                if !out.success {
                    let lockdown = self
                        .fx
                        .read("/sys/kernel/security/lockdown")
                        .ok()
                        .flatten()
                        .map(|f| String::from_utf8_lossy(&f.contents).into_owned());
                    let failure = load::explain(&out.stderr, lockdown.as_deref());
                    return Err(ExecError::new(failure.category, failure.message).into());
                }
                self.record(UndoEntry::Loaded)?;
            }
            Step::SetTrusted { value } => {
                let previous = self
                    .fx
                    .read(TRUSTED_PARAM)
                    .map_err(|e| io_error(TRUSTED_PARAM, e))?;
                self.record(UndoEntry::File {
                    path: TRUSTED_PARAM.to_owned(),
                    previous,
                })?;
                self.fx
                    .write_in_place(TRUSTED_PARAM, value.as_bytes())
                    .map_err(|e| {
                        ExecError::new(
                            Exit::LoadFailed,
                            format!(
                                "the module refused the trusted list {value:?} ({e}). \
                                 Next step: check each --trust value is a network such as 10.0.0.0/8"
                            ),
                        )
                    })?;
            }
            Step::Verify => {
                services
                    .verifier
                    .verify(services.trusted.as_deref())
                    .map_err(|e| {
                        ExecError::new(
                            Exit::VerifyFailed,
                            format!("the self-test failed: {e}. Nothing was made persistent"),
                        )
                    })?;
            }
            Step::RecordState {
                source,
                kernel_release,
            } => {
                let previous: Option<StateFile> = self
                    .fx
                    .read(STATE_FILE)
                    .ok()
                    .flatten()
                    .and_then(|f| serde_json::from_slice(&f.contents).ok());
                let mut packages = previous.map(|p| p.packages_installed).unwrap_or_default();
                for p in self.packages() {
                    if !packages.contains(&p) {
                        packages.push(p);
                    }
                }
                let state = StateFile {
                    version: bundle::VERSION.to_owned(),
                    source: *source,
                    kernel_release: kernel_release.clone(),
                    packages_installed: packages,
                    srcversion: match source {
                        Source::Prebuilt => self
                            .fx
                            .read(&prebuilt_path(kernel_release))
                            .ok()
                            .flatten()
                            .and_then(|f| installed::srcversion(&f.contents)),
                        Source::Installed | Source::Dkms => None,
                    },
                };
                let text = serde_json::to_string_pretty(&state).unwrap_or_default() + "\n";
                self.ensure_state_dir()?;
                self.write_file(STATE_FILE, text.as_bytes(), 0o644)?;
            }
        }
        Ok(())
    }

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

    /// Creates `dir` and missing parents, logging each.
    fn ensure_dirs(&mut self, dir: &str) -> Result<(), ExecError> {
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur.filter(|d| !d.is_empty() && *d != "/" && !self.fx.is_dir(d)) {
            missing.push(d.to_owned());
            cur = parent(d);
        }
        for d in missing.into_iter().rev() {
            self.record(UndoEntry::Dir { path: d.clone() })?;
            self.fx.create_dir(&d, 0o755).map_err(|e| io_error(&d, e))?;
        }
        Ok(())
    }

    fn ensure_state_dir(&mut self) -> Result<(), ExecError> {
        if self.fx.is_dir(STATE_DIR) {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut cur = Some(STATE_DIR);
        while let Some(d) = cur.filter(|d| *d != "/" && !self.fx.is_dir(d)) {
            missing.push(d.to_owned());
            cur = parent(d);
        }
        for d in missing.into_iter().rev() {
            self.fx.create_dir(&d, 0o755).map_err(|e| io_error(&d, e))?;
            self.log.insert(0, UndoEntry::Dir { path: d });
        }
        self.state_dir_created = true;
        Ok(())
    }

    /// Appends to the undo log, on disk first.
    fn record(&mut self, entry: UndoEntry) -> Result<(), ExecError> {
        self.ensure_state_dir()?;
        self.log.push(entry);
        let text = serde_json::to_vec_pretty(&self.log).unwrap_or_default();
        self.fx
            .write(UNDO_LOG, &text, 0o600)
            .map_err(|e| io_error(UNDO_LOG, e))
    }

    fn packages(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|e| match e {
                UndoEntry::Packages { packages } => Some(packages.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn finish_log(&mut self) {
        let _ = self.fx.remove(UNDO_LOG);
    }

    /// Undoes the log, newest first; returns what could not be undone.
    fn undo(&mut self, progress: &mut dyn Progress) -> Vec<String> {
        let mut problems = Vec::new();
        let _ = self.fx.remove(UNDO_LOG);
        let entries = std::mem::take(&mut self.log);
        for entry in entries.iter().rev() {
            let result = match entry {
                UndoEntry::File { path, previous } if path == TRUSTED_PARAM => match previous {
                    Some(p) => self
                        .fx
                        .write_in_place(path, &p.contents)
                        .map_err(|e| format!("cannot restore {path}: {e}")),
                    None => Ok(()),
                },
                UndoEntry::File { path, previous } => match previous {
                    Some(p) => self
                        .fx
                        .write(path, &p.contents, p.mode)
                        .map_err(|e| format!("cannot restore {path}: {e}")),
                    None => self
                        .fx
                        .remove(path)
                        .or_else(|e| match e.kind() {
                            io::ErrorKind::NotFound => Ok(()),
                            _ => Err(e),
                        })
                        .map_err(|e| format!("cannot remove {path}: {e}")),
                },
                UndoEntry::Dir { path } => self
                    .fx
                    .remove_dir(path)
                    .map_err(|e| format!("cannot remove the directory {path}: {e}")),
                UndoEntry::Dkms { version } => self.undo_command(
                    &Cmd::new(
                        "dkms",
                        &["remove", "-m", MODULE, "-v", version, "--all"],
                        Duration::from_secs(300),
                    ),
                    progress,
                ),
                UndoEntry::Loaded => self.undo_command(
                    &Cmd::new("modprobe", &["-r", MODULE], Duration::from_secs(60)),
                    progress,
                ),
                UndoEntry::Packages { .. } => Ok(()),
            };
            if let Err(problem) = result {
                problems.push(problem);
            }
        }
        problems
    }

    fn undo_command(&mut self, cmd: &Cmd, progress: &mut dyn Progress) -> Result<(), String> {
        match run_reported(&mut *self.fx, cmd, progress).0 {
            Ok(out) if out.success => Ok(()),
            Ok(out) => Err(format!("`{}` failed: {}", cmd.line(), out.stderr.trim())),
            Err(e) => Err(e.to_string()),
        }
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

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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

/// A recording stand-in for tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;

    /// A scripted answer: commands whose line starts with `prefix` get
    /// `output`, and `creates` files appear below the root. The answer
    /// added last wins.
    #[derive(Debug, Clone)]
    pub(crate) struct Answer {
        pub(crate) prefix: String,
        pub(crate) output: Output,
        pub(crate) creates: Vec<(String, String)>,
        pub(crate) removes: Vec<String>,
    }

    /// Files in a temporary root; commands recorded and answered from a
    /// script (unknown commands succeed with no output).
    pub(crate) struct FakeEffects {
        pub(crate) files: RootedFiles,
        pub(crate) commands: Vec<String>,
        pub(crate) answers: Vec<Answer>,
    }

    impl FakeEffects {
        pub(crate) fn new(root: &Path) -> Self {
            FakeEffects {
                files: RootedFiles::new(root),
                commands: Vec::new(),
                answers: Vec::new(),
            }
        }

        pub(crate) fn answer(
            mut self,
            prefix: &str,
            success: bool,
            stderr: &str,
            creates: &[(&str, &str)],
        ) -> Self {
            self.answers.push(Answer {
                prefix: prefix.to_owned(),
                output: Output {
                    success,
                    code: Some(if success { 0 } else { 1 }),
                    stdout: String::new(),
                    stderr: stderr.to_owned(),
                },
                creates: creates
                    .iter()
                    .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
                    .collect(),
                removes: Vec::new(),
            });
            self
        }

        pub(crate) fn answer_removing(mut self, prefix: &str, removes: &[&str]) -> Self {
            self.answers.push(Answer {
                prefix: prefix.to_owned(),
                output: Output {
                    success: true,
                    code: Some(0),
                    ..Output::default()
                },
                creates: Vec::new(),
                removes: removes.iter().map(|p| (*p).to_owned()).collect(),
            });
            self
        }
    }

    impl Effects for FakeEffects {
        fn run(&mut self, cmd: &Cmd) -> Result<Output, RunError> {
            let line = cmd.line();
            self.commands.push(line.clone());
            let Some(answer) = self
                .answers
                .iter()
                .rev()
                .find(|a| line.starts_with(&a.prefix))
            else {
                return Ok(Output {
                    success: true,
                    code: Some(0),
                    ..Output::default()
                });
            };
            for (path, contents) in &answer.creates {
                let p = self.files.host_path(path).unwrap();
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, contents).unwrap();
            }
            for path in &answer.removes {
                let p = self.files.host_path(path).unwrap();
                let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
            }
            Ok(answer.output.clone())
        }
        fn files(&self) -> &RootedFiles {
            &self.files
        }
    }
}

#[cfg(test)]
mod tests;

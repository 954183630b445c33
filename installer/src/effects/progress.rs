//! What `install` and `uninstall` show while they work (SPEC §3.4): a
//! spinner for each external command on a terminal, plain timestamped
//! lines otherwise, nothing with `--quiet` or `--json`.
//!
//! The executors report through [`Progress`]: a step starts, a note, an
//! external command starts, prints a line, ends. [`Reporter`] turns that
//! into output according to the [`Display`] and the [`Verbosity`]:
//!
//! - quiet: nothing (the caller prints the final error);
//! - normal: one line per step (and notes such as a prebuilt refused);
//! - verbose (`-v`): also each command line run, how it ended and how long
//!   it took, and the end of its output when it failed.
//!
//! On a terminal a spinner runs under the lines while a command runs,
//! showing its name, the time so far and the last line it printed; it is
//! cleared when the command ends, whichever way, and when the reporter is
//! dropped. The spinner is drawn on standard error only, never on the
//! standard output that carries `--json` documents.

use crate::effects::runner::{Output, RunError};
use crate::plan::Cmd;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// How much text output to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Only problems.
    Quiet,
    /// The facts and problems.
    Normal,
    /// Also where each fact came from.
    Verbose,
}

/// How progress is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// indicatif bars and spinners on standard error (a terminal).
    Bar,
    /// Plain timestamped lines.
    Lines,
    /// Nothing.
    Quiet,
}

impl Display {
    /// Nothing when `quiet`; bars when standard error is a terminal; lines
    /// otherwise.
    pub fn for_stderr(quiet: bool) -> Display {
        if quiet {
            Display::Quiet
        } else if io::stderr().is_terminal() {
            Display::Bar
        } else {
            Display::Lines
        }
    }
}

/// What a run reports while it works.
pub trait Progress {
    /// A step starts (`[3/12] build toa.ko: ...`).
    fn step(&mut self, line: &str);
    /// Something worth saying between steps (a prebuilt refused...).
    fn note(&mut self, line: &str);
    /// An external command is about to run.
    fn command_started(&mut self, _cmd: &Cmd) {}
    /// A line the running command printed (standard output or error).
    fn command_output(&mut self, _line: &str) {}
    /// The command ended after `elapsed`, or could not be run.
    fn command_finished(
        &mut self,
        _cmd: &Cmd,
        _elapsed: Duration,
        _result: Result<&Output, &RunError>,
    ) {
    }
}

/// A closure takes the step lines and notes (tests collect them).
impl<F: FnMut(&str)> Progress for F {
    fn step(&mut self, line: &str) {
        self(line)
    }
    fn note(&mut self, line: &str) {
        self(line)
    }
}

/// How many lines of a failed command's output `-v` shows.
const FAILURE_TAIL: usize = 20;
/// The longest command output line shown next to the spinner.
const MESSAGE_CHARS: usize = 160;

/// Draws a run's progress: lines on `out`, spinners on standard error.
pub struct Reporter<W: Write> {
    out: W,
    display: Display,
    verbose: bool,
    start: Instant,
    spinner_target: fn() -> ProgressDrawTarget,
    spinner: Option<ProgressBar>,
}

impl Reporter<io::Stderr> {
    /// Progress on standard error.
    pub fn stderr(display: Display, verbosity: Verbosity) -> Self {
        let mut reporter = Reporter::new(io::stderr(), display, verbosity);
        reporter.spinner_target = ProgressDrawTarget::stderr;
        reporter
    }
}

impl<W: Write> Reporter<W> {
    /// Lines on `out`; spinners (with [`Display::Bar`]) are kept but not
    /// drawn: only [`Reporter::stderr`] draws them.
    pub fn new(out: W, display: Display, verbosity: Verbosity) -> Self {
        let display = match verbosity {
            Verbosity::Quiet => Display::Quiet,
            Verbosity::Normal | Verbosity::Verbose => display,
        };
        Reporter {
            out,
            display,
            verbose: verbosity == Verbosity::Verbose,
            start: Instant::now(),
            spinner_target: ProgressDrawTarget::hidden,
            spinner: None,
        }
    }

    /// Whether a spinner is running (a command has started and not ended).
    pub fn spinning(&self) -> bool {
        self.spinner.is_some()
    }

    /// What was written, for callers that write to memory.
    pub fn into_inner(mut self) -> W
    where
        W: Default,
    {
        self.clear_spinner();
        std::mem::take(&mut self.out)
    }

    /// Writes `text`, each line with the time since the start, above the
    /// spinner when one runs.
    fn line(&mut self, text: &str) {
        if self.display == Display::Quiet {
            return;
        }
        let stamp = format!("[{:7.1}s]", self.start.elapsed().as_secs_f64());
        let Reporter { out, spinner, .. } = self;
        let mut write = || {
            for line in text.lines() {
                let _ = writeln!(out, "{stamp} {line}");
            }
            let _ = out.flush();
        };
        match spinner {
            Some(pb) => pb.suspend(write),
            None => write(),
        }
    }

    fn clear_spinner(&mut self) {
        if let Some(pb) = self.spinner.take() {
            pb.finish_and_clear();
        }
    }
}

impl<W: Write> Progress for Reporter<W> {
    fn step(&mut self, line: &str) {
        self.line(line);
    }

    fn note(&mut self, line: &str) {
        self.line(line);
    }

    fn command_started(&mut self, cmd: &Cmd) {
        if self.display == Display::Quiet {
            return;
        }
        if self.verbose {
            self.line(&format!("  running: {}", cmd.line()));
        }
        if self.display == Display::Bar {
            self.clear_spinner();
            let pb = ProgressBar::with_draw_target(None, (self.spinner_target)());
            pb.set_style(
                ProgressStyle::with_template("{spinner} {prefix} ({elapsed}) {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_prefix(short_name(cmd));
            pb.enable_steady_tick(Duration::from_millis(120));
            self.spinner = Some(pb);
        }
    }

    fn command_output(&mut self, line: &str) {
        if let Some(pb) = &self.spinner {
            let line = line.trim();
            if !line.is_empty() {
                pb.set_message(line.chars().take(MESSAGE_CHARS).collect::<String>());
            }
        }
    }

    fn command_finished(
        &mut self,
        cmd: &Cmd,
        elapsed: Duration,
        result: Result<&Output, &RunError>,
    ) {
        self.clear_spinner();
        if !self.verbose || self.display == Display::Quiet {
            return;
        }
        let took = format!("{:.1}s", elapsed.as_secs_f64());
        match result {
            Ok(out) if out.success => self.line(&format!("  ok in {took}: {}", cmd.line())),
            Ok(out) => {
                let how = match out.code {
                    Some(code) => format!("exit status {code}"),
                    None => "killed by a signal".to_owned(),
                };
                self.line(&format!("  failed ({how}) in {took}: {}", cmd.line()));
                let tail = out.tail(FAILURE_TAIL);
                if !tail.trim().is_empty() {
                    self.line(&format!("  the end of its output:\n{}", indent(&tail)));
                }
            }
            Err(e) => self.line(&format!("  failed in {took}: {e}")),
        }
    }
}

impl<W: Write> Drop for Reporter<W> {
    fn drop(&mut self) {
        self.clear_spinner();
    }
}

/// `dkms build`, `apt-get install`: the program and its first argument
/// that is not an option, when that is a short word (not a script).
fn short_name(cmd: &Cmd) -> String {
    let verb = cmd.args.iter().find(|a| !a.starts_with('-')).filter(|a| {
        a.len() <= 24
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    });
    match verb {
        Some(verb) => format!("{} {verb}", cmd.program),
        None => cmd.program.clone(),
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Cmd {
        Cmd::new(
            "dkms",
            &["build", "-m", "toa", "-v", "0.1.0"],
            Duration::from_secs(60),
        )
    }

    fn failed() -> Output {
        Output {
            success: false,
            code: Some(2),
            stdout: "checking\n".to_owned(),
            stderr: "Error! Bad return status\n".to_owned(),
        }
    }

    fn ok() -> Output {
        Output {
            success: true,
            code: Some(0),
            ..Output::default()
        }
    }

    /// Runs a step with one failing command and one that works through a
    /// reporter writing to memory; returns the text without timestamps.
    fn transcript(display: Display, verbosity: Verbosity) -> Vec<String> {
        let mut r = Reporter::new(Vec::new(), display, verbosity);
        r.step("[1/2] build toa.ko");
        r.command_started(&cmd());
        r.command_output("make -C /lib/modules/6.1.0/build");
        r.command_finished(&cmd(), Duration::from_millis(1500), Ok(&failed()));
        r.note("a note");
        r.command_started(&cmd());
        r.command_finished(&cmd(), Duration::from_millis(200), Ok(&ok()));
        let text = String::from_utf8(r.into_inner()).unwrap();
        text.lines()
            .map(|l| {
                let (stamp, rest) = l.split_once("s] ").unwrap();
                assert!(stamp.starts_with('['), "{l}");
                rest.to_owned()
            })
            .collect()
    }

    #[test]
    fn quiet_prints_nothing() {
        for display in [Display::Bar, Display::Lines, Display::Quiet] {
            assert!(transcript(display, Verbosity::Quiet).is_empty());
        }
        assert!(transcript(Display::Quiet, Verbosity::Verbose).is_empty());
    }

    #[test]
    fn normal_prints_one_line_per_step_and_notes() {
        assert_eq!(
            transcript(Display::Lines, Verbosity::Normal),
            ["[1/2] build toa.ko", "a note"]
        );
    }

    #[test]
    fn verbose_adds_commands_durations_and_the_tail_of_a_failure() {
        assert_eq!(
            transcript(Display::Lines, Verbosity::Verbose),
            [
                "[1/2] build toa.ko",
                "  running: dkms build -m toa -v 0.1.0",
                "  failed (exit status 2) in 1.5s: dkms build -m toa -v 0.1.0",
                "  the end of its output:",
                "    | checking",
                "    | Error! Bad return status",
                "a note",
                "  running: dkms build -m toa -v 0.1.0",
                "  ok in 0.2s: dkms build -m toa -v 0.1.0",
            ]
        );
    }

    #[test]
    fn a_command_that_cannot_run_is_reported_with_its_reason() {
        let mut r = Reporter::new(Vec::new(), Display::Lines, Verbosity::Verbose);
        let err = RunError::NotFound {
            program: "dkms".to_owned(),
        };
        r.command_started(&cmd());
        r.command_finished(&cmd(), Duration::ZERO, Err(&err));
        let text = String::from_utf8(r.into_inner()).unwrap();
        assert!(
            text.contains("failed in 0.0s: dkms is not installed"),
            "{text}"
        );
    }

    #[test]
    fn the_spinner_runs_only_while_a_command_runs() {
        let mut r = Reporter::new(Vec::new(), Display::Bar, Verbosity::Normal);
        r.step("[1/1] install packages");
        assert!(!r.spinning());
        r.command_started(&cmd());
        assert!(r.spinning());
        r.command_output("Unpacking gcc ...");
        assert_eq!(
            r.spinner.as_ref().map(ProgressBar::message).as_deref(),
            Some("Unpacking gcc ...")
        );
        // A failure clears it like a success does.
        r.command_finished(&cmd(), Duration::ZERO, Ok(&failed()));
        assert!(!r.spinning());
        // Lines mode never starts one.
        let mut r = Reporter::new(Vec::new(), Display::Lines, Verbosity::Verbose);
        r.command_started(&cmd());
        assert!(!r.spinning());
    }

    #[test]
    fn dropping_the_reporter_clears_a_running_spinner() {
        let mut r = Reporter::new(Vec::new(), Display::Bar, Verbosity::Normal);
        r.command_started(&cmd());
        let pb = r.spinner.clone().unwrap();
        drop(r);
        assert!(pb.is_finished());
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name(&cmd()), "dkms build");
        let apt = Cmd::new("apt-get", &["-y", "install", "gcc"], Duration::ZERO);
        assert_eq!(short_name(&apt), "apt-get install");
        assert_eq!(
            short_name(&Cmd::new("depmod", &["-a"], Duration::ZERO)),
            "depmod"
        );
        let script = Cmd::new("sh", &["-c", "echo a; echo b"], Duration::ZERO);
        assert_eq!(short_name(&script), "sh");
    }
}

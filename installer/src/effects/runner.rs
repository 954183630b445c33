//! Running external commands: `duct`, stdin closed, `LC_ALL=C` so messages
//! can be recognised, each in its own process group killed as a whole when
//! its time limit passes. Every command toa-install runs goes through here.

use crate::plan::Cmd;
use std::io::{self, BufRead as _};
use std::os::unix::process::CommandExt;
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

/// The last `n` lines of `text`.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Cmd;
    use std::time::{Duration, Instant};

    #[test]
    fn commands_time_out_with_their_children() {
        let start = Instant::now();
        let cmd = Cmd::new(
            "sh",
            &["-c", "sleep 30 & sleep 30; echo never"],
            Duration::from_millis(300),
        );
        let err = run_command(&cmd, &mut |_| {}).unwrap_err();
        assert!(matches!(err, RunError::TimedOut { .. }), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        let err = run_command(
            &Cmd::new("toa-no-such-program", &[], Duration::from_secs(1)),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, RunError::NotFound { .. }));
        let mut lines = Vec::new();
        let out = run_command(
            &Cmd::new(
                "sh",
                &[
                    "-c",
                    "echo $X; echo oops >&2; printf 'get 1%%\\rget 100%%\\n'; exit 3",
                ],
                Duration::from_secs(5),
            )
            .env("X", "hello"),
            &mut |l| lines.push(l.to_owned()),
        )
        .unwrap();
        assert_eq!((out.success, out.code), (false, Some(3)));
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("hello\nget 1%\rget 100%\n", "oops\n")
        );
        // Each line as it comes; a line rewritten with \r in its last state.
        lines.sort();
        assert_eq!(lines, ["get 100%", "hello", "oops"]);
    }

    #[test]
    fn a_child_left_running_with_the_pipes_does_not_hold_the_command() {
        let start = Instant::now();
        let out = run_command(
            &Cmd::new(
                "sh",
                &["-c", "sleep 4 & echo started"],
                Duration::from_secs(30),
            ),
            &mut |_| {},
        )
        .unwrap();
        assert!(out.success);
        assert_eq!(out.stdout, "started\n");
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }
}

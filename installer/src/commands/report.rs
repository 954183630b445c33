//! The error part of every JSON document the commands print, in one
//! shape: `category`, `exit_code` and `message`, plus `undo_problems`
//! after a failed install or uninstall; and how every command prints its
//! ending ([`Output`]).

use crate::effects::progress::{Display, Reporter, Verbosity};
use crate::exit::{Categorized, Exit};
use serde::Serialize;
use std::io::Write as _;
use std::path::Path;

/// A problem, with its exit category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The category's name (`unsupported`, `load-refused`, ...).
    pub category: Exit,
    /// The exit code that category maps to.
    pub exit_code: u8,
    /// What is wrong and what to do next.
    pub message: String,
}

impl Problem {
    /// A problem of `category`.
    pub fn new(category: Exit, message: String) -> Self {
        Problem {
            category,
            exit_code: category.code(),
            message,
        }
    }

    /// The problem an error describes.
    pub fn of(err: &dyn Categorized) -> Self {
        Problem::new(err.category(), err.to_string())
    }
}

/// A failed install or uninstall in the JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDoc {
    /// What failed.
    #[serde(flatten)]
    pub problem: Problem,
    /// What a failed undo left behind.
    pub undo_problems: Vec<String>,
}

impl ErrorDoc {
    /// A failure of `category` with nothing left to undo.
    pub fn new(category: Exit, message: String) -> Self {
        ErrorDoc {
            problem: Problem::new(category, message),
            undo_problems: Vec::new(),
        }
    }
}

/// How the commands print: the `--json`, `--quiet` and `--verbose` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Output {
    /// Print one JSON document on standard output instead of text.
    pub json: bool,
    /// Print nothing but errors.
    pub quiet: bool,
    /// How many times `--verbose` was given.
    pub verbose: u8,
}

impl Output {
    /// Where `install` and `uninstall` show their progress: nothing with
    /// `--json`, `--quiet` or `--dry-run` (the plan is the output).
    pub fn reporter(&self, dry_run: bool) -> Reporter<std::io::Stderr> {
        let silent = self.json || dry_run;
        let verbosity = if silent {
            Verbosity::Quiet
        } else {
            self.verbosity()
        };
        Reporter::stderr(Display::for_stderr(silent || self.quiet), verbosity)
    }

    /// How much the text output says.
    pub fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }

    /// Prints `doc` as the run's JSON document on standard output.
    pub fn print_json<D: Serialize + ?Sized>(&self, doc: &D) {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe is the reader's choice; nothing useful to report.
        let _ = serde_json::to_writer_pretty(&mut stdout, doc);
        let _ = writeln!(stdout);
    }

    /// Reports an error that stopped the command before it produced a
    /// report: as a JSON document with `--json`, else on standard error.
    pub fn fail(&self, exit: Exit, message: &str) -> Exit {
        if self.json {
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

    /// Prints how an `install` or `uninstall` run ended: the JSON document
    /// `doc` with `--json`; otherwise the plan or the success line on
    /// standard output, then the warnings and packages (unless `--quiet`)
    /// and the error on standard error.
    pub fn print_ending<D: Serialize>(&self, doc: &D, exit: Exit, end: Ending<'_>) -> Exit {
        if self.json {
            self.print_json(doc);
            return exit;
        }
        if let Some(plan) = end.plan {
            print!("{plan}");
            if !self.quiet {
                eprintln!("(dry run: nothing was changed)");
            }
        } else if exit == Exit::Ok && !self.quiet {
            println!("{}", end.done);
        }
        if !self.quiet {
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

    /// Refuses `--root` and `--kernel-release` for a command that works on
    /// the running system only.
    pub fn refuse_root_options(
        &self,
        root: Option<&Path>,
        kernel_release: Option<&str>,
        command: &str,
    ) -> Option<Exit> {
        if root.is_some() || kernel_release.is_some() {
            let message = format!(
                "{command} works on the running system only: --root and --kernel-release are for `detect` and `--dry-run`. Next step: run it without them on the host itself"
            );
            return Some(self.fail(Exit::Usage, &message));
        }
        None
    }
}

/// What an `install` or `uninstall` run prints when it ends.
pub struct Ending<'a> {
    /// The `--dry-run` plan.
    pub plan: Option<String>,
    /// Said on success (unless `--quiet`).
    pub done: &'a str,
    /// Things worth knowing.
    pub warnings: &'a [String],
    /// What the run did with packages, and which.
    pub packages: (&'a str, &'a [String]),
    /// Why the run failed.
    pub error: Option<&'a ErrorDoc>,
}

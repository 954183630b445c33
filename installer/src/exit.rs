//! Exit codes: one per category of outcome (SPEC §3.4).
//!
//! Scripts and the Ansible role branch on these numbers, so they never
//! change meaning. Every error type of the installer says which category it
//! belongs to; `main` turns the category into the process's exit status.

use serde::Serialize;
use std::fmt;

/// The category of a run's outcome, with its fixed exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exit {
    /// 0: done, or nothing to do.
    Ok,
    /// 2: the command line was wrong.
    Usage,
    /// 3: the command needs root.
    NotRoot,
    /// 4: this distribution, release or kernel is not supported.
    Unsupported,
    /// 5: kernel headers or the compiler toolchain cannot be had.
    HeadersUnavailable,
    /// 6: a download failed or its checksum did not match.
    Download,
    /// 7: building the module failed.
    BuildFailed,
    /// 8: the kernel refuses the module (signature, lockdown, SUSE's
    /// unsupported-module gate).
    LoadRefused,
    /// 9: loading the module failed for another reason.
    LoadFailed,
    /// 10: the end-to-end self-test failed.
    VerifyFailed,
    /// 11: boot-time autoload (or the `--metrics-textfile` timer) could not
    /// be set up.
    PersistFailed,
    /// 12: another `toa` module is already loaded.
    Conflict,
}

impl Exit {
    /// Every category, in code order.
    pub const ALL: [Exit; 12] = [
        Exit::Ok,
        Exit::Usage,
        Exit::NotRoot,
        Exit::Unsupported,
        Exit::HeadersUnavailable,
        Exit::Download,
        Exit::BuildFailed,
        Exit::LoadRefused,
        Exit::LoadFailed,
        Exit::VerifyFailed,
        Exit::PersistFailed,
        Exit::Conflict,
    ];

    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Usage => 2,
            Exit::NotRoot => 3,
            Exit::Unsupported => 4,
            Exit::HeadersUnavailable => 5,
            Exit::Download => 6,
            Exit::BuildFailed => 7,
            Exit::LoadRefused => 8,
            Exit::LoadFailed => 9,
            Exit::VerifyFailed => 10,
            Exit::PersistFailed => 11,
            Exit::Conflict => 12,
        }
    }

    /// A short stable name, used in JSON output.
    pub const fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Usage => "usage",
            Exit::NotRoot => "not-root",
            Exit::Unsupported => "unsupported",
            Exit::HeadersUnavailable => "headers-unavailable",
            Exit::Download => "download",
            Exit::BuildFailed => "build-failed",
            Exit::LoadRefused => "load-refused",
            Exit::LoadFailed => "load-failed",
            Exit::VerifyFailed => "verify-failed",
            Exit::PersistFailed => "persist-failed",
            Exit::Conflict => "conflict",
        }
    }

    /// What the code means, in a few words, for `--help`.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Usage => "usage",
            Exit::NotRoot => "not root",
            Exit::Unsupported => "unsupported system",
            Exit::HeadersUnavailable => "headers/toolchain unavailable",
            Exit::Download => "download or checksum failure",
            Exit::BuildFailed => "build failed",
            Exit::LoadRefused => "load refused (signature/lockdown/SUSE gate)",
            Exit::LoadFailed => "load failed",
            Exit::VerifyFailed => "verification failed",
            Exit::PersistFailed => "persistence failed",
            Exit::Conflict => "another toa module loaded",
        }
    }

    /// The exit codes paragraph of `--help`.
    pub fn help() -> String {
        let codes: Vec<String> = Exit::ALL
            .iter()
            .map(|e| format!("{} {}", e.code(), e.meaning()))
            .collect();
        format!("Exit codes: {}.", codes.join(", "))
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// An error that knows which exit category it belongs to.
pub trait Categorized: std::error::Error {
    /// The category, hence the exit code.
    fn category(&self) -> Exit;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_spec() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn help_lists_every_code_in_order() {
        let help = Exit::help();
        assert!(
            help.starts_with("Exit codes: 0 ok, 2 usage, 3 not root,"),
            "{help}"
        );
        assert!(help.ends_with(", 12 another toa module loaded."), "{help}");
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = Exit::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Exit::ALL.len());
    }

    #[test]
    fn serializes_as_its_name() {
        assert_eq!(
            serde_json::to_string(&Exit::LoadRefused).unwrap(),
            "\"load-refused\""
        );
    }
}

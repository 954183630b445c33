//! `toa-install doctor`: root, read-only. Gathers what toa is doing on this
//! host (backend, version, trusted list, counters before and after, conflicts,
//! listeners) and, with `--port`, watches the handshakes arriving for those
//! ports; the diagnosis itself is `plan::diagnose`.

use std::collections::BTreeMap;
use std::time::Duration;

use thiserror::Error;

use crate::backend::{self as backends, Kind};
use crate::commands::report::Output;
use crate::effects::host::RealHost;
use crate::exit::{Categorized, Exit};
use crate::layout::{KINDS_PARAM, MODULE};
use crate::plan::diagnose::{self, Backend, Facts, Privacy, Report};
use crate::system::capture::{Capture, CaptureError};
use crate::system::conflicts;
use crate::system::listeners::{listening, ListenersError};
use crate::system::security::{OurModule, SecurityIssue, SecurityState};
use crate::system::sysroot::{Host, RootFs, SystemFs};
use std::path::Path;

/// `--seconds` when not given.
pub const DEFAULT_SECONDS: u64 = 30;
/// The longest capture `--seconds` allows.
pub const MAX_SECONDS: u64 = 600;

/// What to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Ports whose handshakes are watched (none: no capture).
    pub ports: Vec<u16>,
    /// How long to watch.
    pub seconds: u64,
    /// Whether client addresses appear in full.
    pub privacy: Privacy,
}

/// Why doctor could not finish its look.
#[derive(Debug, Error)]
pub enum DoctorError {
    /// Watching the traffic failed.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The socket tables could not be read.
    #[error(transparent)]
    Listeners(#[from] ListenersError),
}

impl Categorized for DoctorError {
    fn category(&self) -> Exit {
        Exit::Unsupported
    }
}

fn read_trimmed(fs: &dyn SystemFs, path: &str) -> Option<String> {
    fs.read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// The option kinds the loaded module accepts (`kinds` parameter).
fn kinds(fs: &dyn SystemFs) -> Vec<u8> {
    read_trimmed(fs, KINDS_PARAM)
        .map(|t| t.split(',').filter_map(|k| k.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Looks, watches, and diagnoses.
pub fn run(fs: &dyn SystemFs, host: &dyn Host, req: &Request) -> Result<Report, DoctorError> {
    let kind = backends::current(fs);
    let backend = kind.backend();
    let status = backend.status(fs);
    let counters = || backend.counters(fs).unwrap_or_else(|_| BTreeMap::new());
    let before = counters();
    let security = SecurityState::inspect(fs, host, true, None, &OurModule::this_release());
    let mut foreign = Vec::new();
    let mut modules_refused = None;
    for issue in security.issues() {
        match issue {
            SecurityIssue::ForeignModule { .. } => {
                foreign.push(format!("`{MODULE}` is not this project's module: {issue}"))
            }
            SecurityIssue::SignatureRequired { .. } | SecurityIssue::SuseGateClosed { .. } => {
                modules_refused = Some(issue.to_string())
            }
        }
    }
    foreign.extend(conflicts::other_toa_modules(fs));
    if let Some(why) = conflicts::modules_disabled(fs) {
        modules_refused = Some(why);
    }
    let listeners = listening(fs, &req.ports)?;
    let capture = if req.ports.is_empty() {
        None
    } else {
        let cap = Capture::open(&req.ports)?;
        let mut seen = Vec::new();
        let stats = cap.run(Duration::from_secs(req.seconds), |h| seen.push(h))?;
        Some((req.seconds, seen, stats))
    };
    let facts = Facts {
        backend: status.loaded.then(|| Backend {
            name: kind.name().to_owned(),
            version: status.version.clone(),
        }),
        trusted: status.trusted.clone(),
        kinds: match kind {
            Kind::Module => kinds(fs),
            Kind::Ebpf => toa_ebpf::kinds().unwrap_or_default(),
        },
        counters_before: before,
        counters_after: counters(),
        foreign,
        modules_refused,
        ports: req.ports.clone(),
        listeners,
        capture,
        privacy: Some(req.privacy),
    };
    Ok(diagnose::diagnose(&facts))
}

/// `toa-install doctor`: prints the findings; exit 10 when one is a problem.
pub fn main(
    output: &Output,
    root: Option<&Path>,
    kernel_release: Option<&str>,
    request: &Request,
) -> Exit {
    if let Some(exit) = output.refuse_root_options(root, kernel_release, "doctor") {
        return exit;
    }
    if !super::euid_is_root() {
        let message = "toa-install doctor needs root (it reads the kernel's settings and watches traffic with a packet socket). Next step: run it again with sudo";
        return output.fail(Exit::NotRoot, message);
    }
    if !output.json && !output.quiet && !request.ports.is_empty() {
        let ports: Vec<String> = request.ports.iter().map(u16::to_string).collect();
        eprintln!(
            "watching the handshakes for port(s) {} for {} s...",
            ports.join(", "),
            request.seconds
        );
    }
    let report = match run(&RootFs::host(), &RealHost, request) {
        Ok(report) => report,
        Err(e) => return output.fail(e.category(), &e.to_string()),
    };
    if output.json {
        output.print_json(&report);
    } else if !output.quiet {
        print!("{}", diagnose::render_text(&report));
    }
    if report.problem {
        Exit::VerifyFailed
    } else {
        Exit::Ok
    }
}

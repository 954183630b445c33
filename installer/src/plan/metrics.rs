//! `--metrics-textfile DIR`: a systemd timer that has `toa-install stats
//! --format prometheus --output DIR/toa.prom` replace the file every
//! [`INTERVAL_SECS`] seconds, for node_exporter's textfile collector.
//! The units are written and enabled through [`super::systemd`].

use super::systemd::{self, Enable, Installed, Unit};
use super::{uninstall, Step};
use crate::exit::{Categorized, Exit};
use crate::layout::{metrics_file, METRICS_SERVICE, METRICS_TIMER, SYSTEMD_BOOTED};
use crate::state::StateFile;
use crate::system::sysroot::SystemFs;
use serde::Serialize;
use thiserror::Error;

/// How often the file is rewritten (node_exporter scrapes every 15 s by
/// default, so a scrape never sees a file older than one interval).
pub const INTERVAL_SECS: u64 = 15;

/// The timer is what is enabled; the service is started by it.
pub const ENABLE: Enable = Enable {
    unit: METRICS_TIMER,
    wanted_by: "timers.target",
};

const UNITS: [&str; 2] = [METRICS_SERVICE, METRICS_TIMER];

/// The request: where the file goes and which toa-install writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Textfile {
    /// The textfile directory, absolute, without a trailing slash.
    pub dir: String,
    /// The toa-install the service runs, absolute.
    pub exec: String,
}

/// The service: one `stats` run (it prints nothing but errors, which go to
/// the journal). The command line is `cli`'s: a test parses it.
pub fn service(t: &Textfile) -> String {
    format!(
        "# Written by toa-install (--metrics-textfile); removed by toa-install uninstall.\n\
         [Unit]\n\
         Description=Write toa's counters for node_exporter's textfile collector\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={} stats --format prometheus --output {}\n",
        t.exec,
        metrics_file(&t.dir)
    )
}

/// The timer: first run a second after it starts (at boot, or at once on
/// install), then every [`INTERVAL_SECS`].
pub fn timer() -> String {
    format!(
        "# Written by toa-install (--metrics-textfile); removed by toa-install uninstall.\n\
         [Unit]\n\
         Description=Write toa's counters every {INTERVAL_SECS} s\n\
         \n\
         [Timer]\n\
         OnActiveSec=1s\n\
         OnUnitActiveSec={INTERVAL_SECS}s\n\
         AccuracySec=1s\n\
         \n\
         [Install]\n\
         WantedBy={}\n",
        ENABLE.wanted_by
    )
}

/// What of the metrics timer is in place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Current {
    /// The unit files and the timer's enable link.
    pub units: Installed,
    /// The directory the state file records.
    pub dir: Option<String>,
    /// The recorded directory's `toa.prom`, when it exists.
    pub file: Option<String>,
}

impl Current {
    /// Reads the units and, from the state file, the directory.
    pub fn read(fs: &dyn SystemFs, state: Option<&StateFile>) -> Current {
        let dir = state.and_then(|s| s.metrics_textfile.clone());
        Current {
            units: Installed::read(fs, &UNITS, ENABLE),
            file: dir.as_deref().map(metrics_file).filter(|f| fs.exists(f)),
            dir,
        }
    }
}

/// The install steps: none without `--metrics-textfile` (an installed
/// timer is left as it is) or when the same directory is in place; the
/// units and their reload and enable otherwise, and the file in a
/// previously recorded other directory removed (it would go stale).
pub fn install_steps(request: Option<&Textfile>, current: &Current) -> Vec<Step> {
    let Some(t) = request else {
        return Vec::new();
    };
    let units = [
        Unit {
            name: METRICS_SERVICE,
            contents: service(t),
        },
        Unit {
            name: METRICS_TIMER,
            contents: timer(),
        },
    ];
    let mut steps = systemd::install_steps(&units, ENABLE, &current.units);
    if let (Some(old), Some(file)) = (&current.dir, &current.file) {
        if *old != t.dir {
            steps.push(Step::RemoveFile {
                path: file.clone(),
                purpose: "the metrics file in the previous directory".to_owned(),
            });
        }
    }
    steps
}

/// The uninstall steps: the timer stopped and its units removed, then the
/// metrics file (a file left behind would report stale counters).
pub fn uninstall_steps(current: &Current) -> Vec<uninstall::Step> {
    let mut steps = systemd::uninstall_steps(&current.units.present(), ENABLE);
    if let Some(file) = &current.file {
        steps.push(uninstall::Step::RemoveFile {
            path: file.clone(),
            purpose: "the metrics file".to_owned(),
        });
    }
    steps
}

/// Why `--metrics-textfile` cannot be set up; found before anything
/// changes.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TextfileError {
    /// A relative path, or one systemd would read differently.
    #[error(
        "--metrics-textfile {dir:?}: the directory must be an absolute path of letters, digits \
         and . _ - + / only (it goes into a systemd unit). Next step: pass the directory \
         node_exporter's --collector.textfile.directory names, e.g. \
         /var/lib/prometheus/node-exporter"
    )]
    BadPath {
        /// As given.
        dir: String,
    },
    /// The directory is not there.
    #[error(
        "--metrics-textfile {dir}: no such directory. Next step: pass the directory \
         node_exporter's --collector.textfile.directory names (it creates it when installed \
         from the distribution's package), or create it first: mkdir -p {dir}"
    )]
    NoDir {
        /// As given.
        dir: String,
    },
    /// No systemd to run the timer.
    #[error(
        "--metrics-textfile needs systemd to run its timer, and this host was not booted with \
         systemd ({booted} is missing). Next step: run `toa-install stats --format prometheus \
         --output DIR/toa.prom` every 15 s from your own scheduler instead"
    )]
    NoSystemd {
        /// The directory whose absence says so.
        booted: &'static str,
    },
    /// This toa-install will not be there for the timer to run.
    #[error(
        "--metrics-textfile: this toa-install runs from {exe}, a temporary directory that is \
         removed (the install script downloads it there), so the timer could not run it. Next \
         step: install toa-install for good (the toa-install package, or \
         `install -m 0755 {exe} /usr/local/sbin/toa-install`) and run that one"
    )]
    TemporaryBinary {
        /// The running binary.
        exe: String,
    },
    /// The running binary's path cannot be found or used.
    #[error(
        "--metrics-textfile: cannot tell where this toa-install is ({reason}), which the timer \
         must run. Next step: run toa-install by its full path, e.g. /usr/sbin/toa-install"
    )]
    NoBinary {
        /// Why.
        reason: String,
    },
}

impl Categorized for TextfileError {
    fn category(&self) -> Exit {
        match self {
            TextfileError::NoSystemd { .. } => Exit::Unsupported,
            _ => Exit::Usage,
        }
    }
}

/// A path systemd takes as one word, as written (no quoting, no `%`
/// specifiers, no escapes).
fn plain_path(path: &str) -> bool {
    path.starts_with('/')
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+/".contains(c))
}

/// Checks `--metrics-textfile DIR` against the host: a plain absolute
/// directory that exists (read through `fs`, so below `--root` too),
/// systemd running (on the live host only: an image is not booted), and a
/// toa-install the timer can run.
///
/// The timer runs `exe`, the running binary (`current_exe`, which Linux
/// reads from /proc/self/exe, already free of symbolic links). From the
/// deb or rpm that is /usr/sbin/toa-install: an upgrade replaces that file,
/// so the timer runs the upgraded one. `curl | sh` runs toa-install from a
/// `mktemp -d` directory it deletes afterwards: a binary below one of
/// `temporary` is refused (with the command that installs it for good)
/// rather than written into a unit that would fail every 15 s.
pub fn check(
    fs: &dyn SystemFs,
    live: bool,
    dir: &str,
    exe: Result<String, String>,
    temporary: &[String],
) -> Result<Textfile, TextfileError> {
    let trimmed = match dir.trim_end_matches('/') {
        "" => "/",
        d => d,
    };
    if !plain_path(trimmed) {
        return Err(TextfileError::BadPath {
            dir: dir.to_owned(),
        });
    }
    if fs.read_dir(trimmed).is_err() {
        return Err(TextfileError::NoDir {
            dir: trimmed.to_owned(),
        });
    }
    if live && !fs.exists(SYSTEMD_BOOTED) {
        return Err(TextfileError::NoSystemd {
            booted: SYSTEMD_BOOTED,
        });
    }
    let exe = exe.map_err(|reason| TextfileError::NoBinary { reason })?;
    if !plain_path(&exe) {
        return Err(TextfileError::NoBinary {
            reason: format!("{exe:?} is not a plain absolute path"),
        });
    }
    if temporary
        .iter()
        .any(|t| exe.starts_with(&format!("{}/", t.trim_end_matches('/'))))
    {
        return Err(TextfileError::TemporaryBinary { exe });
    }
    Ok(Textfile {
        dir: trimmed.to_owned(),
        exec: exe,
    })
}

/// The metrics timer as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The file it writes (`null`: units without a recorded directory).
    pub file: Option<String>,
    /// `toa-metrics.timer`.
    pub timer: &'static str,
    /// Its enable link exists.
    pub enabled: bool,
}

impl Current {
    /// `None` when toa-install set up no metrics timer.
    pub fn summary(&self) -> Option<Summary> {
        (self.dir.is_some() || !self.units.present().is_empty()).then(|| Summary {
            file: self.dir.as_deref().map(metrics_file),
            timer: METRICS_TIMER,
            enabled: self.units.enabled,
        })
    }
}

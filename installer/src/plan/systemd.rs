//! systemd units that toa-install writes and owns (the metrics timer, and
//! any unit a backend needs): the steps that put them in place and enable
//! them, and the steps that take them away again. Pure, like the rest of
//! `plan`; [`Installed::read`] looks at what is there through [`SystemFs`].
//!
//! Install: [`install_steps`] writes each unit whose file differs
//! ([`Step::WriteFile`], undone byte for byte), reloads systemd when a file
//! changed ([`Step::Systemctl`] undone by reloading again once the files
//! are restored), and enables and starts the unit to enable when it is not
//! enabled yet (undone by `disable --now`), or restarts it when it was
//! enabled and its files changed. Nothing is planned when all is in place.
//!
//! Uninstall: [`uninstall_steps`] stops and disables, removes the files,
//! and reloads.

use super::{timeouts, uninstall, Cmd, Step};
use crate::layout::{unit_enabled_link, unit_path};
use crate::system::sysroot::SystemFs;
use serde::Serialize;

/// One unit file toa-install writes below
/// [`crate::layout::SYSTEMD_UNIT_DIR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `toa-metrics.timer`.
    pub name: &'static str,
    /// The whole file.
    pub contents: String,
}

/// The unit of a set that is enabled, and the target that wants it (its
/// `[Install] WantedBy=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enable {
    /// The unit `systemctl enable --now` is given.
    pub unit: &'static str,
    /// `timers.target`.
    pub wanted_by: &'static str,
}

/// What undoes a [`Step::Systemctl`] when a later step fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "unit", rename_all = "kebab-case")]
pub enum SystemctlUndo {
    /// Nothing to undo (a restart).
    Nothing,
    /// Reload again once the unit files are restored.
    Reload,
    /// `systemctl disable --now` the unit.
    Disable(String),
}

/// What of a set of units is in place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Installed {
    /// Each unit's file, as it is (`None`: absent), in the order asked.
    pub files: Vec<(String, Option<String>)>,
    /// The enable link exists.
    pub enabled: bool,
}

impl Installed {
    /// Reads the unit files named in `units` and `enable`'s link.
    pub fn read(fs: &dyn SystemFs, units: &[&str], enable: Enable) -> Installed {
        Installed {
            files: units
                .iter()
                .map(|u| ((*u).to_owned(), fs.read_to_string(&unit_path(u)).ok()))
                .collect(),
            enabled: fs.exists(&unit_enabled_link(enable.wanted_by, enable.unit)),
        }
    }

    /// The units whose file exists.
    pub fn present(&self) -> Vec<String> {
        self.files
            .iter()
            .filter(|(_, c)| c.is_some())
            .map(|(u, _)| u.clone())
            .collect()
    }

    fn contents(&self, unit: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(u, _)| u == unit)
            .and_then(|(_, c)| c.as_deref())
    }
}

fn systemctl(args: &[&str]) -> Cmd {
    Cmd::new("systemctl", args, timeouts::SYSTEMCTL)
}

/// `systemctl daemon-reload`.
pub fn daemon_reload() -> Cmd {
    systemctl(&["daemon-reload"])
}

/// `systemctl disable --now UNIT`: stops it and removes its enable link.
pub fn disable_now(unit: &str) -> Cmd {
    systemctl(&["disable", "--now", unit])
}

/// The steps that put `units` in place and `enable` enabled and running.
pub fn install_steps(units: &[Unit], enable: Enable, installed: &Installed) -> Vec<Step> {
    let mut steps: Vec<Step> = units
        .iter()
        .filter(|u| installed.contents(u.name) != Some(u.contents.as_str()))
        .map(|u| Step::WriteFile {
            path: unit_path(u.name),
            contents: u.contents.clone(),
            mode: 0o644,
        })
        .collect();
    let changed = !steps.is_empty();
    if changed {
        steps.push(Step::Systemctl {
            purpose: "make systemd read the new units".to_owned(),
            cmd: daemon_reload(),
            undo: SystemctlUndo::Reload,
        });
    }
    if !installed.enabled {
        steps.push(Step::Systemctl {
            purpose: format!("enable and start {}", enable.unit),
            cmd: systemctl(&["enable", "--now", enable.unit]),
            undo: SystemctlUndo::Disable(enable.unit.to_owned()),
        });
    } else if changed {
        steps.push(Step::Systemctl {
            purpose: format!("restart {} with its new settings", enable.unit),
            cmd: systemctl(&["restart", enable.unit]),
            undo: SystemctlUndo::Nothing,
        });
    }
    steps
}

/// The steps that take away the `present` units: `enable` is stopped and
/// disabled first, the other units stopped, then the files go and systemd
/// forgets them.
pub fn uninstall_steps(present: &[String], enable: Enable) -> Vec<uninstall::Step> {
    if present.is_empty() {
        return Vec::new();
    }
    let mut steps = Vec::new();
    if present.iter().any(|u| u == enable.unit) {
        steps.push(uninstall::Step::Systemctl {
            purpose: format!("stop and disable {}", enable.unit),
            cmd: disable_now(enable.unit),
        });
    }
    for unit in present.iter().filter(|u| *u != enable.unit) {
        steps.push(uninstall::Step::Systemctl {
            purpose: format!("stop {unit}"),
            cmd: systemctl(&["stop", unit]),
        });
    }
    for unit in present {
        steps.push(uninstall::Step::RemoveFile {
            path: unit_path(unit),
            purpose: format!("the unit {unit}"),
        });
    }
    steps.push(uninstall::Step::Systemctl {
        purpose: "make systemd forget the removed units".to_owned(),
        cmd: daemon_reload(),
    });
    steps
}

//! One module per subcommand of `toa-install`, each thin: gather facts,
//! ask the plan, run it through the effects, report. Each has a `main`
//! that `cli` calls with the parsed request; [`report`] prints the ending.

pub mod attach;
pub mod detect;
pub mod doctor;
pub mod facts;
pub mod install;
pub mod mirror;
pub mod report;
pub mod stats;
pub mod status;
pub mod uninstall;
pub mod verify;

/// Whether toa-install runs as root.
fn euid_is_root() -> bool {
    rustix::process::geteuid().is_root()
}

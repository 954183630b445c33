//! One module per subcommand of `toa-install`, each thin: gather facts,
//! ask the plan, run it through the effects, report.

pub mod detect;
pub mod doctor;
pub mod install;
pub mod report;
pub mod stats;
pub mod status;
pub mod uninstall;
pub mod verify;

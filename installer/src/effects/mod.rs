//! What changes the host: the [`executor::Effects`] trait with its real and
//! fake implementations, command running with time limits, the undo log,
//! the run lock, and [`progress`], which shows what the effects report.

pub mod executor;
pub mod progress;

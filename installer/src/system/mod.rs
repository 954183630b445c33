//! Read-only facts about the host.

pub mod capture;
pub mod listeners;

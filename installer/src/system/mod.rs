//! Facts about the host, read-only: what is installed, which distribution
//! and kernel, what the security settings allow, and the module's counters.
//! Everything here reads through the [`sysroot`] seam so that tests can
//! hand it a fake host.

pub mod capture;
pub mod conflicts;
pub mod distro;
pub mod ebpf;
pub mod installed;
pub mod kernel;
pub mod listeners;
pub mod load;
pub mod modinfo;
pub mod security;
pub mod stats;
pub mod sysroot;

//! `toa-install`: installs, checks and self-tests the toa kernel module.
//!
//! For now the crate is a library. [`peer`] speaks TCP by hand through a tun
//! device, so that a test can open connections whose final ACK carries any
//! TCP option bytes (a TOA option, a malformed one, ...) towards a local
//! listener. It powers the kernel test bench (`tests/kernel/guest`) and
//! `toa-install verify`.

pub mod peer;

// The `toa-install` command: `detect` and the pieces it stands on.
pub mod bundle;
pub mod cli;
pub mod detect;
pub mod diagnose;
pub mod distro;
pub mod executor;
pub mod exit;
pub mod install;
pub mod installed;
pub mod kernel;
pub mod load;
pub mod metrics;
pub mod mirror;
pub mod modinfo;
pub mod plan;
pub mod prebuilt;
pub mod progress;
pub mod security;
pub mod status;
pub mod sysroot;
pub mod system;
pub mod uninstall;
pub mod verify;

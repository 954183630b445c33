//! `toa-install`: installs, checks and self-tests the toa kernel module.
//!
//! The modules below are layers, listed from the bottom up; each may import
//! only the ones above it in this list (see `ARCHITECTURE.md`, enforced by
//! `tests/layers.rs`). [`peer`] speaks TCP by hand through a tun device, so
//! that a test can open connections whose final ACK carries any TCP option
//! bytes; it powers the kernel test bench (`tests/kernel/guest`) and
//! `toa-install verify`.

pub mod exit;
pub mod peer;

pub mod bundle;
pub mod layout;
pub mod state;

pub mod system;

pub mod plan;

pub mod effects;

pub mod backend;

pub mod commands;

pub mod cli;

//! The toa kernel module: prebuilt modules fetched from a mirror (and the
//! mirror's format), or built on the host by DKMS.

pub mod mirror;
pub mod prebuilt;

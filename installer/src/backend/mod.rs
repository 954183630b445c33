//! What differs between ways of getting TOA into the kernel. Today there is
//! one backend, [`module`]: the toa kernel module, prebuilt or built by DKMS.

pub mod module;

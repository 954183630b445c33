//! `toa-install status`: is toa loaded, which version, how it was
//! installed, whether it loads at boot, whom it trusts, and its counters.

use crate::backend::module::ModuleBackend;
use crate::backend::{Backend, Status};
use crate::system::sysroot::SystemFs;

pub use crate::backend::module::status::render_text;

/// The status of the installed backend.
pub fn gather(fs: &dyn SystemFs) -> Status {
    ModuleBackend.status(fs)
}

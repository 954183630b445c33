//! `toa-install status`: is toa loaded, which version, how it was
//! installed, whether it loads at boot, whom it trusts, and its counters.

use crate::backend::{self, Status};
use crate::commands::report::Output;
use crate::exit::Exit;
use crate::system::sysroot::{RootFs, SystemFs};
use std::path::Path;

pub use crate::backend::module::status::render_text;

/// The status of the installed backend.
pub fn gather(fs: &dyn SystemFs) -> Status {
    backend::current(fs).backend().status(fs)
}

/// `toa-install status`: prints the running system's status.
pub fn main(output: &Output, root: Option<&Path>, kernel_release: Option<&str>) -> Exit {
    if let Some(exit) = output.refuse_root_options(root, kernel_release, "status") {
        return exit;
    }
    let status = gather(&RootFs::host());
    if output.json {
        output.print_json(&status);
        return Exit::Ok;
    }
    if !output.quiet {
        print!("{}", render_text(&status));
        for warning in &status.warnings {
            eprintln!("warning: {warning}");
        }
    }
    Exit::Ok
}

//! `toa-install mirror build`: prebuilt modules for operators hosting
//! their own mirror.

use crate::commands::report::Output;
use crate::exit::{Categorized, Exit};
use crate::system::sysroot::RootFs;
use std::path::{Path, PathBuf};

/// Builds a mirror in `out` from the kernel build `trees`, labelled with
/// `distro` (default: this host's).
pub fn main(output: &Output, trees: &[PathBuf], out: &Path, distro: Option<&str>) -> Exit {
    let distro = distro.map(str::to_owned).unwrap_or_else(|| {
        crate::system::distro::identify(&RootFs::host())
            .map(|id| match id.version_id {
                Some(v) => format!("{}-{v}", id.id),
                None => id.id,
            })
            .unwrap_or_else(|_| "unknown".to_owned())
    });
    let quiet = output.quiet || output.json;
    let mut progress = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    match crate::backend::module::mirror::build(trees, out, &distro, &mut progress) {
        Ok(index) => {
            if output.json {
                let doc = serde_json::json!({"changed": true, "index": index});
                println!("{doc:#}");
            } else if !output.quiet {
                println!(
                    "{} now holds {} prebuilt module(s); serve it over HTTPS and pass --mirror URL, \
                     or copy it and pass --offline DIR",
                    out.display(),
                    index.entries.len()
                );
            }
            Exit::Ok
        }
        Err(e) => output.fail(e.category(), &e.to_string()),
    }
}

//! `toa-install stats`: the counters, in `/proc/net/toa_stats`'s layout or
//! in the Prometheus text exposition format (for node_exporter's textfile
//! collector; `--output FILE` replaces FILE atomically).

use std::io::{self, Write as _};
use std::path::Path;

use thiserror::Error;

use crate::backend::{self, Kind};
use crate::commands::report::Output;
use crate::exit::{Categorized, Exit};
use crate::layout::STATS;
use crate::system::ebpf::EbpfError;
use crate::system::stats::CountersError;
use crate::system::sysroot::{RootFs, SystemFs};

pub mod metrics;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One row per counter, one column per CPU, as `/proc/net/toa_stats`.
    Proc,
    /// The Prometheus text exposition format, summed over CPUs.
    Prometheus,
}

/// Why there are no counters to show.
#[derive(Debug, Error)]
pub enum StatsError {
    /// toa is not running.
    #[error("toa is not loaded, so it has no counters. Next step: run `toa-install`")]
    NotLoaded,
    /// The counters could not be read.
    #[error("cannot read the counters: {0}")]
    Read(CountersError),
    /// `--output` could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
}

impl Categorized for StatsError {
    fn category(&self) -> Exit {
        Exit::VerifyFailed
    }
}

/// The counters of the active backend in `format`.
pub fn render(fs: &dyn SystemFs, format: Format) -> Result<String, StatsError> {
    let kind = backend::current(fs);
    let backend = kind.backend();
    let status = backend.status(fs);
    if !status.loaded {
        return Err(StatsError::NotLoaded);
    }
    match format {
        Format::Proc if kind == Kind::Module => fs
            .read_to_string(STATS)
            .map_err(|e| StatsError::Read(e.into())),
        // The same layout, from the per-CPU counter map.
        Format::Proc => toa_ebpf::counters()
            .map(|c| c.to_string())
            .map_err(|e| StatsError::Read(EbpfError::from(e).into())),
        Format::Prometheus => {
            let counters = backend.counters(fs).map_err(StatsError::Read)?;
            let info = metrics::Info {
                backend: kind.name().to_owned(),
                version: status.version.unwrap_or_else(|| "unknown".to_owned()),
                trusted_entries: status.trusted.len(),
            };
            Ok(metrics::prometheus(&counters, &info))
        }
    }
}

/// Replaces `path` with `text` atomically: a reader (node_exporter) sees the
/// old file or the new one, never half of one. The temporary file is in the
/// same directory, so the rename never crosses file systems.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), StatsError> {
    let err = |source| StatsError::Write {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".toa.prom.")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    // node_exporter runs as its own user: the file must be readable by all.
    use std::os::unix::fs::PermissionsExt as _;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// `toa-install stats`: prints the counters, or replaces `file` with them.
pub fn main(
    output: &Output,
    root: Option<&Path>,
    kernel_release: Option<&str>,
    format: Format,
    file: Option<&Path>,
) -> Exit {
    if let Some(exit) = output.refuse_root_options(root, kernel_release, "stats") {
        return exit;
    }
    let result = render(&RootFs::host(), format).and_then(|text| match file {
        Some(path) => write_atomically(path, &text),
        None => {
            print!("{text}");
            Ok(())
        }
    });
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => output.fail(e.category(), &e.to_string()),
    }
}

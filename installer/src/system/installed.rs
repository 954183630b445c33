//! Whose toa.ko is installed for a kernel, decided from evidence that
//! cannot be mistaken for something else.
//!
//! The path alone says nothing: `dkms/dkms.conf` installs to
//! `DEST_MODULE_LOCATION=/extra`, so on EL (and SUSE) a module DKMS built
//! and a prebuilt one toa-install copied both live at
//! `/lib/modules/<release>/extra/toa.ko` (Debian's DKMS uses
//! `updates/dkms` instead). So:
//!
//! - DKMS's is the one DKMS says it installed: its `kernel-<release>-<arch>`
//!   link in `/var/lib/dkms/toa` points to a version built for the release
//!   (what `dkms status` reads), or the installed file is byte for byte a
//!   module DKMS built for that release.
//! - A prebuilt is one the state file records as copied for that release,
//!   with the `srcversion` of the file in place (when it recorded one).
//! - Anything else at the prebuilt path is accounted for by neither.
//!
//! The same rules serve every distribution family, `install`, `status` and
//! `uninstall`.

use crate::layout::{prebuilt_path, DKMS_TREE, MODULE_FILES};
use crate::state::{Source, StateFile};
use crate::system::modinfo;
use crate::system::sysroot::SystemFs;
use serde::Serialize;

/// Where DKMS installs toa under `/lib/modules/<release>`: `/extra` as
/// `dkms.conf` asks, `updates/dkms` where the distribution's DKMS overrides
/// it (Debian, Ubuntu).
const DKMS_DESTINATIONS: [&str; 3] = ["extra", "updates/dkms", "updates"];

/// How the toa.ko of one kernel got there.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Owner {
    /// No toa.ko is installed for the kernel.
    #[default]
    Nothing,
    /// DKMS built and installed it.
    Dkms {
        /// The toa version DKMS installed.
        version: String,
    },
    /// toa-install copied a prebuilt module there (the state file says so).
    Prebuilt,
    /// A toa.ko is at the prebuilt path that neither DKMS nor the state
    /// file accounts for.
    Unaccounted {
        /// Where it is.
        path: String,
    },
}

impl Owner {
    /// `dkms` or `prebuilt`, as the state file and `status` name them.
    pub fn source_name(&self) -> Option<&'static str> {
        match self {
            Owner::Dkms { .. } => Some("dkms"),
            Owner::Prebuilt => Some("prebuilt"),
            Owner::Nothing | Owner::Unaccounted { .. } => None,
        }
    }
}

/// Whose toa.ko is installed for `release`; `state` is toa-install's state
/// file, when there is one.
pub fn owner(fs: &dyn SystemFs, release: &str, state: Option<&StateFile>) -> Owner {
    let builds = dkms_builds(fs, release);
    // A file in place that DKMS built is DKMS's, whatever else says so.
    let installed = installed_files(fs, release);
    if let Some((version, _)) = builds.iter().find(|(_, b)| installed.contains(b)) {
        return Owner::Dkms {
            version: version.clone(),
        };
    }
    let path = prebuilt_path(release);
    let file = fs.read(&path).ok();
    if let Some(bytes) = &file {
        let recorded = state.is_some_and(|s| {
            s.source == Source::Prebuilt
                && s.kernel_release == release
                && (s.srcversion.is_none() || s.srcversion == srcversion(bytes))
        });
        if recorded {
            return Owner::Prebuilt;
        }
    }
    // DKMS marks what it installed with a link (what `dkms status` reads).
    if let (Some((version, _)), true) = (builds.first(), dkms_linked(fs, release)) {
        return Owner::Dkms {
            version: version.clone(),
        };
    }
    match file {
        Some(_) => Owner::Unaccounted { path },
        None => Owner::Nothing,
    }
}

/// Whether the file at the prebuilt path of `release` is a module DKMS
/// built (on EL and SUSE, DKMS installs there): `dkms remove` takes it
/// away, or the package that owns the DKMS registration does.
pub fn prebuilt_path_is_dkms_build(fs: &dyn SystemFs, release: &str) -> bool {
    fs.read(&prebuilt_path(release))
        .is_ok_and(|bytes| dkms_builds(fs, release).iter().any(|(_, b)| *b == bytes))
}

/// The toa.ko files installed for `release` where DKMS may put them.
fn installed_files(fs: &dyn SystemFs, release: &str) -> Vec<Vec<u8>> {
    DKMS_DESTINATIONS
        .iter()
        .flat_map(|dir| {
            MODULE_FILES.iter().filter_map(move |name| {
                fs.read(&format!("/lib/modules/{release}/{dir}/{name}"))
                    .ok()
            })
        })
        .collect()
}

/// Whether DKMS's `kernel-<release>-<arch>` link exists and resolves (one
/// whose build is gone marks nothing).
fn dkms_linked(fs: &dyn SystemFs, release: &str) -> bool {
    fs.read_dir(DKMS_TREE)
        .unwrap_or_default()
        .into_iter()
        .any(|name| is_kernel_link(&name, release) && fs.exists(&format!("{DKMS_TREE}/{name}")))
}

/// `kernel-<release>-<arch>`: the architecture has no `-`.
fn is_kernel_link(name: &str, release: &str) -> bool {
    name.strip_prefix("kernel-")
        .and_then(|rest| rest.strip_prefix(release))
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|arch| !arch.is_empty() && !arch.contains('-'))
}

/// The modules DKMS built for `release`: (version, content), versions in
/// order.
fn dkms_builds(fs: &dyn SystemFs, release: &str) -> Vec<(String, Vec<u8>)> {
    let mut versions: Vec<String> = fs
        .read_dir(DKMS_TREE)
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    versions.sort();
    let mut out = Vec::new();
    for version in versions {
        let base = format!("{DKMS_TREE}/{version}/{release}");
        let mut arches = fs.read_dir(&base).unwrap_or_default();
        arches.sort();
        for arch in arches {
            for name in MODULE_FILES {
                if let Ok(bytes) = fs.read(&format!("{base}/{arch}/module/{name}")) {
                    out.push((version.clone(), bytes));
                }
            }
        }
    }
    out
}

/// The `srcversion` in a module's `.modinfo` (none for a compressed file).
pub fn srcversion(bytes: &[u8]) -> Option<String> {
    modinfo::read_modinfo(bytes)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "srcversion")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests;

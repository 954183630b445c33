//! The prebuilt mirror (SPEC §3.3): `index.json` plus one `.tar.gz` per
//! kernel, each holding `toa.ko`.
//!
//! ```json
//! {"format": 1, "entries": [{"distro": "debian-12", "kernel_release": "6.1.0-27-amd64",
//!   "kernel_version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)", "arch": "x86_64",
//!   "toa_version": "0.1.0", "file": "toa-0.1.0-6.1.0-27-amd64-x86_64.tar.gz", "sha256": "..."}]}
//! ```
//!
//! [`build`] makes one from kernel header trees (`toa-install mirror build`).

use crate::bundle::{self, MODULE_SOURCE};
use crate::effects::runner::{run_command, RunError};
use crate::exit::{Categorized, Exit};
use crate::plan::Cmd;
use crate::system::kernel::arch_from_release;
use crate::system::modinfo::{self, vermagic_release};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The index format this toa-install reads and writes.
pub const FORMAT: u32 = 1;
/// The index's file name.
pub const INDEX: &str = "index.json";

/// A mirror's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// [`FORMAT`].
    pub format: u32,
    /// One per prebuilt module.
    pub entries: Vec<Entry>,
}

/// One prebuilt module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The distribution it was built for (`debian-12`), for people.
    pub distro: String,
    /// `uname -r` of the kernel.
    pub kernel_release: String,
    /// `uname -v` of the kernel, when known ("" otherwise).
    #[serde(default)]
    pub kernel_version: String,
    /// `uname -m`.
    pub arch: String,
    /// The toa version inside.
    pub toa_version: String,
    /// The archive, relative to the index.
    pub file: String,
    /// The archive's sha256, lower-case hex.
    pub sha256: String,
}

impl Index {
    /// The entry for this kernel and toa version: an exact `uname -v` match
    /// is preferred over one for the same release only.
    pub fn select(&self, release: &str, version: Option<&str>, arch: &str) -> Option<&Entry> {
        let candidates = self.entries.iter().filter(|e| {
            e.kernel_release == release && e.arch == arch && e.toa_version == bundle::VERSION
        });
        let mut best = None;
        for e in candidates {
            if version.is_some_and(|v| v == e.kernel_version) {
                return Some(e);
            }
            best.get_or_insert(e);
        }
        best
    }
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a mirror could not be built.
#[derive(Debug, Error)]
pub enum MirrorBuildError {
    /// The directory is not a configured kernel build tree.
    #[error(
        "{dir} is not a kernel build tree: {missing} is missing. \
         Next step: pass the directory /lib/modules/<release>/build points to, after installing the headers package"
    )]
    NotATree {
        /// The directory.
        dir: String,
        /// The missing file.
        missing: String,
    },
    /// `make` failed.
    #[error("building toa.ko against {dir} failed:\n{log}\nNext step: check that gcc and make are installed and that the tree matches a supported kernel")]
    Build {
        /// The tree.
        dir: String,
        /// The end of make's output.
        log: String,
    },
    /// The module's vermagic does not name the tree's release.
    #[error("toa.ko built against {dir} says vermagic {vermagic:?}, not {release}")]
    Vermagic {
        /// The tree.
        dir: String,
        /// What the module says.
        vermagic: String,
        /// What the tree says.
        release: String,
    },
    /// Reading or writing files.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
}

impl Categorized for MirrorBuildError {
    fn category(&self) -> Exit {
        match self {
            MirrorBuildError::NotATree { .. } => Exit::HeadersUnavailable,
            MirrorBuildError::Build { .. } | MirrorBuildError::Vermagic { .. } => Exit::BuildFailed,
            MirrorBuildError::Io { .. } => Exit::Usage,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> MirrorBuildError {
    let what = what.into();
    move |source| MirrorBuildError::Io { what, source }
}

/// What a kernel build tree says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeInfo {
    /// `UTS_RELEASE` from `include/generated/utsrelease.h` (what `uname -r`
    /// says on that kernel), else `include/config/kernel.release`. Debian's
    /// header packages differ: their `kernel.release` holds the upstream
    /// version (`6.1.176`), `utsrelease.h` the ABI release
    /// (`6.1.0-50-amd64`) that modules' vermagic carries.
    pub release: String,
    /// `UTS_VERSION` from `include/generated/compile.h`, when shipped.
    pub version: String,
    /// From `CONFIG_X86_64`/`CONFIG_ARM64` in `autoconf.h`, else the release.
    pub arch: String,
}

/// Reads a kernel build tree's release, version and architecture.
pub fn tree_info(dir: &Path) -> Result<TreeInfo, MirrorBuildError> {
    let release_file = dir.join("include/config/kernel.release");
    let config_release = fs::read_to_string(&release_file)
        .map_err(|_| MirrorBuildError::NotATree {
            dir: dir.display().to_string(),
            missing: "include/config/kernel.release".to_owned(),
        })?
        .trim()
        .to_owned();
    let release = fs::read_to_string(dir.join("include/generated/utsrelease.h"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let rest = l.trim().strip_prefix("#define UTS_RELEASE")?;
                Some(rest.trim().trim_matches('"').to_owned())
            })
        })
        .filter(|r| !r.is_empty())
        .unwrap_or(config_release);
    let version = fs::read_to_string(dir.join("include/generated/compile.h"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let rest = l.trim().strip_prefix("#define UTS_VERSION")?;
                Some(rest.trim().trim_matches('"').to_owned())
            })
        })
        .unwrap_or_default();
    let autoconf = fs::read_to_string(dir.join("include/generated/autoconf.h")).unwrap_or_default();
    let arch = if autoconf.contains("#define CONFIG_X86_64 1") {
        "x86_64".to_owned()
    } else if autoconf.contains("#define CONFIG_ARM64 1") {
        "aarch64".to_owned()
    } else {
        arch_from_release(&release)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                rustix::system::uname()
                    .machine()
                    .to_string_lossy()
                    .into_owned()
            })
    };
    Ok(TreeInfo {
        release,
        version,
        arch,
    })
}

/// Builds toa.ko against each tree and writes the archives and `index.json`
/// into `out`, keeping entries already there for other kernels. `progress`
/// gets one line per kernel.
pub fn build(
    trees: &[PathBuf],
    out: &Path,
    distro: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Index, MirrorBuildError> {
    fs::create_dir_all(out).map_err(io_err(format!("creating {}", out.display())))?;
    let index_path = out.join(INDEX);
    let mut index = match fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MirrorBuildError::Io {
            what: format!("reading {}", index_path.display()),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?,
        Err(_) => Index {
            format: FORMAT,
            entries: Vec::new(),
        },
    };
    for tree in trees {
        let info = tree_info(tree)?;
        progress(&format!(
            "building toa {} for {} ({}) against {}",
            bundle::VERSION,
            info.release,
            info.arch,
            tree.display()
        ));
        let ko = compile(tree, &info)?;
        let file = format!(
            "{}-{}-{}-{}.tar.gz",
            crate::layout::MODULE,
            bundle::VERSION,
            info.release,
            info.arch
        );
        let archive = archive(&ko).map_err(io_err("packing toa.ko"))?;
        write_atomic(&out.join(&file), &archive)?;
        let entry = Entry {
            distro: distro.to_owned(),
            kernel_release: info.release.clone(),
            kernel_version: info.version.clone(),
            arch: info.arch.clone(),
            toa_version: bundle::VERSION.to_owned(),
            file,
            sha256: sha256_hex(&archive),
        };
        index.entries.retain(|e| {
            !(e.kernel_release == entry.kernel_release
                && e.arch == entry.arch
                && e.kernel_version == entry.kernel_version
                && e.toa_version == entry.toa_version)
        });
        index.entries.push(entry);
    }
    let mut text = serde_json::to_vec_pretty(&index).unwrap_or_default();
    text.push(b'\n');
    write_atomic(&index_path, &text)?;
    Ok(index)
}

fn compile(tree: &Path, info: &TreeInfo) -> Result<Vec<u8>, MirrorBuildError> {
    let work = tempfile::tempdir().map_err(io_err("creating a build directory"))?;
    for f in MODULE_SOURCE {
        let path = work.path().join(f.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err("writing the module source"))?;
        }
        fs::write(&path, f.contents).map_err(io_err("writing the module source"))?;
    }
    let dir = tree.display().to_string();
    let cmd = Cmd::new(
        "make",
        &[
            "-C",
            &dir,
            &format!("M={}", work.path().display()),
            "modules",
        ],
        crate::plan::timeouts::BUILD,
    );
    let out = run_command(&cmd, &mut |_| {}).map_err(|e| MirrorBuildError::Build {
        dir: dir.clone(),
        log: match e {
            RunError::NotFound { .. } => format!("{e}; install make and gcc"),
            e => e.to_string(),
        },
    })?;
    if !out.success {
        let text = format!("{}{}", out.stdout, out.stderr);
        let lines: Vec<&str> = text.lines().collect();
        return Err(MirrorBuildError::Build {
            dir,
            log: lines[lines.len().saturating_sub(30)..].join("\n"),
        });
    }
    let ko = fs::read(work.path().join("toa.ko")).map_err(io_err("reading the built toa.ko"))?;
    let vermagic = modinfo::vermagic(&ko).map_err(|e| MirrorBuildError::Vermagic {
        dir: dir.clone(),
        vermagic: e.to_string(),
        release: info.release.clone(),
    })?;
    if vermagic_release(&vermagic) != info.release {
        return Err(MirrorBuildError::Vermagic {
            dir,
            vermagic,
            release: info.release.clone(),
        });
    }
    Ok(ko)
}

/// A `.tar.gz` holding `toa.ko` (mode 0644, owned by root, time 0 so the
/// same module always gives the same archive).
pub fn archive(ko: &[u8]) -> io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(ko.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, "toa.ko", ko)?;
    tar.into_inner()?.finish()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MirrorBuildError> {
    let tmp = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(io_err(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests;

//! Fetching a prebuilt toa.ko from a mirror (SPEC §3.3): pick the entry for
//! the kernel, download it (reqwest, rustls, connect and read timeouts,
//! a progress bar on a terminal), check its sha256, unpack `toa.ko` into a
//! private 0700 directory, and compare its `vermagic` with the kernel
//! release before anything may load it.
//!
//! Every failure is a [`PrebuiltError`] naming the mirror and the next step;
//! the executor then compiles instead, or stops with exit 6 under
//! `--prebuilt-only`.

use crate::backend::module::mirror::{self, Index, INDEX};
use crate::effects::executor::{FetchFailure, Fetcher};
use crate::effects::progress::Display;
use crate::exit::{Categorized, Exit};
use crate::plan::{MirrorSource, Step};
use crate::system::modinfo::{self, vermagic_release, ModinfoError};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use thiserror::Error;

/// The largest archive or module accepted (a toa.ko is well under 2 MiB).
const MAX_BYTES: u64 = 64 << 20;

/// Why a prebuilt module could not be had from a mirror. The executor
/// compiles instead, or stops with exit 6 under `--prebuilt-only`.
#[derive(Debug, Error)]
pub enum PrebuiltError {
    /// The step handed over is not a fetch.
    #[error("internal error: not a fetch step")]
    NotAFetchStep,
    /// Every mirror failed; one reason each.
    #[error("no usable prebuilt module: {}.", join(.reasons))]
    NoneUsable {
        /// Why each mirror failed, in order.
        reasons: Vec<PrebuiltError>,
    },
    /// No HTTPS client can be made here.
    #[error(
        "cannot set up HTTPS ({why}). Next step: install the CA certificates \
         (the ca-certificates package), or copy the mirror here and pass --offline DIR"
    )]
    Https {
        /// The client's error and its causes.
        why: String,
    },
    /// A local file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file or download is over [`MAX_BYTES`].
    #[error("{what} is larger than {max} bytes", max = MAX_BYTES)]
    TooLarge {
        /// The file, URL or member.
        what: String,
    },
    /// The request got no answer.
    #[error("{}", describe(.url, .source))]
    Request {
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body broke off.
    #[error("downloading {url} failed: {}", io_reason(.source))]
    Download {
        /// The URL.
        url: String,
        /// Why.
        source: io::Error,
    },
    /// The body was shorter than announced.
    #[error("downloading {url} failed: got {got} of {expected} bytes")]
    Short {
        /// The URL.
        url: String,
        /// Bytes received.
        got: usize,
        /// Bytes announced.
        expected: u64,
    },
    /// The index is not JSON of the mirror's shape.
    #[error("{mirror}: {index} is not a toa mirror index ({source})", index = INDEX)]
    NotAnIndex {
        /// The mirror.
        mirror: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The index is of another format version.
    #[error(
        "{mirror}: {index} has format {format}, this toa-install reads format {ours}",
        index = INDEX,
        ours = mirror::FORMAT
    )]
    Format {
        /// The mirror.
        mirror: String,
        /// The index's format.
        format: u32,
    },
    /// The mirror has nothing for this kernel.
    #[error(
        "{mirror} has no prebuilt toa {version} for kernel {release} ({arch})",
        version = crate::bundle::VERSION
    )]
    NoEntry {
        /// The mirror.
        mirror: String,
        /// The kernel release.
        release: String,
        /// The architecture.
        arch: String,
    },
    /// The index names an archive outside the mirror.
    #[error("{mirror}: refusing the archive name {name:?}")]
    BadName {
        /// The mirror.
        mirror: String,
        /// The name.
        name: String,
    },
    /// The archive is not the one the index describes.
    #[error(
        "checksum mismatch for {file} from {mirror}: the index says sha256 {expected}, the file has {actual}"
    )]
    Checksum {
        /// The archive.
        file: String,
        /// The mirror.
        mirror: String,
        /// The index's sha256.
        expected: String,
        /// The file's.
        actual: String,
    },
    /// The private directory for the module could not be made.
    #[error("cannot create a private directory: {0}")]
    TempDir(io::Error),
    /// The archive could not be unpacked.
    #[error("{file}: {source}")]
    Unpack {
        /// The archive.
        file: String,
        /// Why.
        source: Box<PrebuiltError>,
    },
    /// The unpacked toa.ko has no readable vermagic.
    #[error("{file} from {mirror}: {source}")]
    Modinfo {
        /// The archive.
        file: String,
        /// The mirror.
        mirror: String,
        /// Why.
        source: ModinfoError,
    },
    /// The module was built for another kernel.
    #[error(
        "refusing the prebuilt toa.ko from {mirror}: its vermagic is {vermagic:?} but the kernel is {release}"
    )]
    Vermagic {
        /// The mirror.
        mirror: String,
        /// The module's vermagic.
        vermagic: String,
        /// The running kernel.
        release: String,
    },
    /// Not a gzip-compressed tar archive.
    #[error("not a .tar.gz archive: {0}")]
    NotTarGz(io::Error),
    /// The archive breaks off or is damaged.
    #[error("corrupt or truncated archive: {0}")]
    Corrupt(io::Error),
    /// A member's name cannot be read.
    #[error("corrupt archive: {0}")]
    CorruptName(io::Error),
    /// A member would land outside the directory.
    #[error("refusing the archive: it contains the unsafe path {}", .0.display())]
    UnsafePath(PathBuf),
    /// A member is a link, a device...
    #[error("refusing the archive: {} is not a regular file", .0.display())]
    NotRegular(PathBuf),
    /// The unpacked module could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The archive has no toa.ko.
    #[error("the archive holds no toa.ko")]
    NoModule,
}

impl Categorized for PrebuiltError {
    fn category(&self) -> Exit {
        Exit::Download
    }
}

fn join(reasons: &[PrebuiltError]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Downloads prebuilt modules.
pub struct MirrorFetcher {
    /// Made on the first download: a run that never downloads (`--compile`,
    /// `--offline`) must not depend on HTTPS being usable (a minimal
    /// system has no CA certificates, and the client refuses to build).
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
    connect: Duration,
    read: Duration,
    display: Display,
    start: Instant,
    /// Unpacked modules live here until the run ends.
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

impl MirrorFetcher {
    /// A fetcher with these timeouts. It cannot fail: the HTTPS client is
    /// made, and may fail, at the first download.
    pub fn new(connect: Duration, read: Duration, display: Display) -> Self {
        MirrorFetcher {
            client: OnceLock::new(),
            connect,
            read,
            display,
            start: Instant::now(),
            dirs: Mutex::new(Vec::new()),
        }
    }

    /// The HTTP client, made on first use.
    fn client(&self) -> Result<&reqwest::blocking::Client, PrebuiltError> {
        self.client
            .get_or_init(|| {
                // reqwest is built without a default crypto provider: use ring.
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::blocking::Client::builder()
                    .connect_timeout(self.connect)
                    .timeout(self.read)
                    .user_agent(concat!("toa-install/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| {
                        let mut why = e.to_string();
                        let mut source = std::error::Error::source(&e);
                        while let Some(s) = source {
                            why.push_str(&format!(": {s}"));
                            source = s.source();
                        }
                        why
                    })
            })
            .as_ref()
            .map_err(|why| PrebuiltError::Https { why: why.clone() })
    }

    fn say(&self, line: &str) {
        if self.display == Display::Lines {
            eprintln!("[{:7.1}s] {line}", self.start.elapsed().as_secs_f64());
        }
    }

    /// Reads a file of a mirror completely (bounded by [`MAX_BYTES`]).
    fn get(&self, mirror: &MirrorSource, file: &str, bar: bool) -> Result<Vec<u8>, PrebuiltError> {
        match mirror {
            MirrorSource::Dir(dir) => {
                let path = Path::new(dir).join(file);
                let read = |source| PrebuiltError::Read {
                    path: path.clone(),
                    source,
                };
                let f = fs::File::open(&path).map_err(read)?;
                let mut bytes = Vec::new();
                f.take(MAX_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(read)?;
                if bytes.len() as u64 > MAX_BYTES {
                    return Err(PrebuiltError::TooLarge {
                        what: path.display().to_string(),
                    });
                }
                Ok(bytes)
            }
            MirrorSource::Url(base) => {
                let url = format!("{}/{file}", base.trim_end_matches('/'));
                self.say(&format!("downloading {url}"));
                let response =
                    self.client()?
                        .get(&url)
                        .send()
                        .map_err(|source| PrebuiltError::Request {
                            url: url.clone(),
                            source,
                        })?;
                let status = response.status();
                if !status.is_success() {
                    return Err(PrebuiltError::Status {
                        url,
                        status: status.as_u16(),
                    });
                }
                let length = response.content_length();
                if length.is_some_and(|l| l > MAX_BYTES) {
                    return Err(PrebuiltError::TooLarge { what: url });
                }
                let progress = (bar && self.display == Display::Bar).then(|| {
                    let pb = ProgressBar::new(length.unwrap_or(0));
                    pb.set_style(
                        ProgressStyle::with_template(
                            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    pb.set_message(file.to_owned());
                    pb
                });
                let mut bytes = Vec::new();
                let mut reader = response.take(MAX_BYTES + 1);
                let mut chunk = [0u8; 64 * 1024];
                loop {
                    let n = match reader.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(source) => {
                            if let Some(pb) = &progress {
                                pb.abandon();
                            }
                            return Err(PrebuiltError::Download { url, source });
                        }
                    };
                    bytes.extend_from_slice(&chunk[..n]);
                    if let Some(pb) = &progress {
                        pb.set_position(bytes.len() as u64);
                    }
                }
                if let Some(pb) = &progress {
                    pb.finish_and_clear();
                }
                if let Some(expected) = length.filter(|l| *l != bytes.len() as u64) {
                    return Err(PrebuiltError::Short {
                        url,
                        got: bytes.len(),
                        expected,
                    });
                }
                self.say(&format!("downloaded {url} ({} bytes)", bytes.len()));
                Ok(bytes)
            }
        }
    }

    /// Tries one mirror.
    fn try_mirror(
        &self,
        mirror: &MirrorSource,
        release: &str,
        version: Option<&str>,
        arch: &str,
    ) -> Result<PathBuf, PrebuiltError> {
        let index_bytes = self.get(mirror, INDEX, false)?;
        let index: Index =
            serde_json::from_slice(&index_bytes).map_err(|source| PrebuiltError::NotAnIndex {
                mirror: mirror.to_string(),
                source,
            })?;
        if index.format != mirror::FORMAT {
            return Err(PrebuiltError::Format {
                mirror: mirror.to_string(),
                format: index.format,
            });
        }
        let entry = index
            .select(release, version, arch)
            .ok_or_else(|| PrebuiltError::NoEntry {
                mirror: mirror.to_string(),
                release: release.to_owned(),
                arch: arch.to_owned(),
            })?;
        if entry.file.contains('/') || entry.file.starts_with('.') {
            return Err(PrebuiltError::BadName {
                mirror: mirror.to_string(),
                name: entry.file.clone(),
            });
        }
        let archive = self.get(mirror, &entry.file, true)?;
        let actual = mirror::hex(&Sha256::digest(&archive));
        if !actual.eq_ignore_ascii_case(&entry.sha256) {
            return Err(PrebuiltError::Checksum {
                file: entry.file.clone(),
                mirror: mirror.to_string(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("toa-prebuilt-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(PrebuiltError::TempDir)?;
        let ko = unpack(&archive, dir.path()).map_err(|e| PrebuiltError::Unpack {
            file: entry.file.clone(),
            source: Box::new(e),
        })?;
        let bytes = fs::read(&ko).map_err(|source| PrebuiltError::Read {
            path: ko.clone(),
            source,
        })?;
        let vermagic = modinfo::vermagic(&bytes).map_err(|source| PrebuiltError::Modinfo {
            file: entry.file.clone(),
            mirror: mirror.to_string(),
            source,
        })?;
        if vermagic_release(&vermagic) != release {
            return Err(PrebuiltError::Vermagic {
                mirror: mirror.to_string(),
                vermagic: vermagic.trim().to_owned(),
                release: release.to_owned(),
            });
        }
        self.say(&format!(
            "{} from {mirror}: sha256 and vermagic ({release}) match",
            entry.file
        ));
        if let Ok(mut dirs) = self.dirs.lock() {
            dirs.push(dir);
        }
        Ok(ko)
    }
}

impl Fetcher for MirrorFetcher {
    fn fetch(&self, step: &Step) -> Result<PathBuf, FetchFailure> {
        let Step::FetchPrebuilt {
            mirrors,
            kernel_release,
            kernel_version,
            arch,
        } = step
        else {
            return Err(PrebuiltError::NotAFetchStep.into());
        };
        let mut reasons = Vec::new();
        for mirror in mirrors {
            match self.try_mirror(mirror, kernel_release, kernel_version.as_deref(), arch) {
                Ok(path) => return Ok(path),
                Err(reason) => {
                    self.say(&reason.to_string());
                    reasons.push(reason);
                }
            }
        }
        Err(PrebuiltError::NoneUsable { reasons }.into())
    }
}

/// Why a request failed, in words.
fn describe(url: &str, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("{url} did not answer in time (timed out)")
    } else if e.is_connect() {
        format!("cannot connect to {url}: {}", chain(e))
    } else {
        format!("requesting {url} failed: {}", chain(e))
    }
}

fn io_reason(e: &io::Error) -> String {
    let text = chain(e);
    if e.kind() == io::ErrorKind::TimedOut || text.contains("timed out") {
        format!("timed out ({text})")
    } else {
        text
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Unpacks `toa.ko` from a `.tar.gz` into `dir`, refusing absolute paths,
/// `..`, links and anything but regular files.
pub fn unpack(archive: &[u8], dir: &Path) -> Result<PathBuf, PrebuiltError> {
    let gz = flate2::read::GzDecoder::new(archive);
    let mut tar = tar::Archive::new(gz);
    let entries = tar.entries().map_err(PrebuiltError::NotTarGz)?;
    let mut found = None;
    for entry in entries {
        let mut entry = entry.map_err(PrebuiltError::Corrupt)?;
        let path = entry
            .path()
            .map_err(PrebuiltError::CorruptName)?
            .into_owned();
        if path.is_absolute()
            || path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(PrebuiltError::UnsafePath(path));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(PrebuiltError::NotRegular(path));
        }
        if path.file_name().and_then(|n| n.to_str()) != Some("toa.ko") || found.is_some() {
            continue;
        }
        if entry.size() > MAX_BYTES {
            return Err(PrebuiltError::TooLarge {
                what: "toa.ko".to_owned(),
            });
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(PrebuiltError::Corrupt)?;
        let target = dir.join("toa.ko");
        fs::write(&target, &bytes).map_err(|source| PrebuiltError::Write {
            path: target.clone(),
            source,
        })?;
        found = Some(target);
    }
    found.ok_or(PrebuiltError::NoModule)
}

#[cfg(test)]
mod tests;

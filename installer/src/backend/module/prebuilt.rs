//! Fetching a prebuilt toa.ko from a mirror (SPEC §3.3): pick the entry for
//! the kernel, download it (reqwest, rustls, connect and read timeouts,
//! a progress bar on a terminal), check its sha256, unpack `toa.ko` into a
//! private 0700 directory, and compare its `vermagic` with the kernel
//! release before anything may load it.
//!
//! Every failure is a [`FetchFailure`] naming the mirror and the next step;
//! the executor then compiles instead, or stops with exit 6 under
//! `--prebuilt-only`.

use crate::backend::module::mirror::{self, Index, INDEX};
use crate::effects::executor::{FetchFailure, Fetcher};
use crate::effects::progress::Display;
use crate::plan::{MirrorSource, Step};
use crate::system::modinfo::{self, vermagic_release};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The largest archive or module accepted (a toa.ko is well under 2 MiB).
const MAX_BYTES: u64 = 64 << 20;

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
    fn client(&self) -> Result<&reqwest::blocking::Client, String> {
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
                        format!(
                            "cannot set up HTTPS ({why}). Next step: install the CA certificates \
                             (the ca-certificates package), or copy the mirror here and pass --offline DIR"
                        )
                    })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn say(&self, line: &str) {
        if self.display == Display::Lines {
            eprintln!("[{:7.1}s] {line}", self.start.elapsed().as_secs_f64());
        }
    }

    /// Reads a file of a mirror completely (bounded by [`MAX_BYTES`]).
    fn get(&self, mirror: &MirrorSource, file: &str, bar: bool) -> Result<Vec<u8>, String> {
        match mirror {
            MirrorSource::Dir(dir) => {
                let path = Path::new(dir).join(file);
                let f = fs::File::open(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let mut bytes = Vec::new();
                f.take(MAX_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if bytes.len() as u64 > MAX_BYTES {
                    return Err(format!(
                        "{} is larger than {MAX_BYTES} bytes",
                        path.display()
                    ));
                }
                Ok(bytes)
            }
            MirrorSource::Url(base) => {
                let url = format!("{}/{file}", base.trim_end_matches('/'));
                self.say(&format!("downloading {url}"));
                let response = self
                    .client()?
                    .get(&url)
                    .send()
                    .map_err(|e| describe(&url, &e))?;
                let status = response.status();
                if !status.is_success() {
                    return Err(format!("{url} answered HTTP {}", status.as_u16()));
                }
                let length = response.content_length();
                if length.is_some_and(|l| l > MAX_BYTES) {
                    return Err(format!("{url} is larger than {MAX_BYTES} bytes"));
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
                        Err(e) => {
                            if let Some(pb) = &progress {
                                pb.abandon();
                            }
                            return Err(format!("downloading {url} failed: {}", io_reason(&e)));
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
                if let Some(l) = length.filter(|l| *l != bytes.len() as u64) {
                    return Err(format!(
                        "downloading {url} failed: got {} of {l} bytes",
                        bytes.len()
                    ));
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
    ) -> Result<PathBuf, String> {
        let index_bytes = self.get(mirror, INDEX, false)?;
        let index: Index = serde_json::from_slice(&index_bytes)
            .map_err(|e| format!("{mirror}: {INDEX} is not a toa mirror index ({e})"))?;
        if index.format != mirror::FORMAT {
            return Err(format!(
                "{mirror}: {INDEX} has format {}, this toa-install reads format {}",
                index.format,
                mirror::FORMAT
            ));
        }
        let entry = index.select(release, version, arch).ok_or_else(|| {
            format!(
                "{mirror} has no prebuilt toa {} for kernel {release} ({arch})",
                crate::bundle::VERSION
            )
        })?;
        if entry.file.contains('/') || entry.file.starts_with('.') {
            return Err(format!(
                "{mirror}: refusing the archive name {:?}",
                entry.file
            ));
        }
        let archive = self.get(mirror, &entry.file, true)?;
        let actual = mirror::hex(&Sha256::digest(&archive));
        if !actual.eq_ignore_ascii_case(&entry.sha256) {
            return Err(format!(
                "checksum mismatch for {} from {mirror}: the index says sha256 {}, the file has {actual}",
                entry.file, entry.sha256
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("toa-prebuilt-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(|e| format!("cannot create a private directory: {e}"))?;
        let ko = unpack(&archive, dir.path()).map_err(|e| format!("{}: {e}", entry.file))?;
        let bytes = fs::read(&ko).map_err(|e| format!("cannot read {}: {e}", ko.display()))?;
        let vermagic =
            modinfo::vermagic(&bytes).map_err(|e| format!("{} from {mirror}: {e}", entry.file))?;
        if vermagic_release(&vermagic) != release {
            return Err(format!(
                "refusing the prebuilt toa.ko from {mirror}: its vermagic is {:?} but the kernel is {release}",
                vermagic.trim()
            ));
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
            return Err(FetchFailure {
                message: "internal error: not a fetch step".to_owned(),
            });
        };
        let mut reasons = Vec::new();
        for mirror in mirrors {
            match self.try_mirror(mirror, kernel_release, kernel_version.as_deref(), arch) {
                Ok(path) => return Ok(path),
                Err(reason) => {
                    self.say(&reason);
                    reasons.push(reason);
                }
            }
        }
        Err(FetchFailure {
            message: format!("no usable prebuilt module: {}.", reasons.join("; ")),
        })
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
pub fn unpack(archive: &[u8], dir: &Path) -> Result<PathBuf, String> {
    let gz = flate2::read::GzDecoder::new(archive);
    let mut tar = tar::Archive::new(gz);
    let entries = tar
        .entries()
        .map_err(|e| format!("not a .tar.gz archive: {e}"))?;
    let mut found = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("corrupt or truncated archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("corrupt archive: {e}"))?
            .into_owned();
        if path.is_absolute()
            || path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!(
                "refusing the archive: it contains the unsafe path {}",
                path.display()
            ));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "refusing the archive: {} is not a regular file",
                path.display()
            ));
        }
        if path.file_name().and_then(|n| n.to_str()) != Some("toa.ko") || found.is_some() {
            continue;
        }
        if entry.size() > MAX_BYTES {
            return Err(format!("toa.ko is larger than {MAX_BYTES} bytes"));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("corrupt or truncated archive: {e}"))?;
        let target = dir.join("toa.ko");
        fs::write(&target, &bytes)
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        found = Some(target);
    }
    found.ok_or_else(|| "the archive holds no toa.ko".to_owned())
}

#[cfg(test)]
mod tests;

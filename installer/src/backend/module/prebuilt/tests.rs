//! A mirror on 127.0.0.1 serving good and bad archives.

use super::*;
use crate::backend::module::mirror::{archive, sha256_hex, Entry, FORMAT};
use crate::effects::executor::{execute, Services, Verifier, VerifyFailure};
use crate::effects::fake::FakeEffects;
use crate::exit::Exit;
use crate::plan::{Cmd, Plan, Source};
use crate::system::modinfo::fixture_ko;
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

const RELEASE: &str = "6.1.0-27-amd64";

#[derive(Clone)]
enum Reply {
    Ok(Vec<u8>),
    /// Announces the full length, sends half, closes.
    Truncated(Vec<u8>),
    /// Accepts and never answers.
    Stall,
}

/// A tiny HTTP/1.1 server: one request per connection; unknown paths 404.
fn serve(routes: HashMap<String, Reply>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let routes = Arc::clone(&routes);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut byte = [0u8; 1];
                while !buf.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => buf.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                match routes.get(&path) {
                    Some(Reply::Ok(body)) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(body);
                    }
                    Some(Reply::Truncated(body)) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(&body[..body.len() / 2]);
                    }
                    Some(Reply::Stall) => std::thread::sleep(Duration::from_secs(30)),
                    None => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    format!("http://{addr}/toa")
}

fn ko(vermagic_release: &str) -> Vec<u8> {
    fixture_ko(&[
        ("version", crate::bundle::VERSION),
        (
            "vermagic",
            &format!("{vermagic_release} SMP preempt mod_unload modversions "),
        ),
    ])
}

fn index_for(archive: &[u8], sha: Option<&str>) -> Vec<u8> {
    let index = Index {
        format: FORMAT,
        entries: vec![Entry {
            distro: "debian-12".to_owned(),
            kernel_release: RELEASE.to_owned(),
            kernel_version: String::new(),
            arch: "x86_64".to_owned(),
            toa_version: crate::bundle::VERSION.to_owned(),
            file: "toa.tar.gz".to_owned(),
            sha256: sha
                .map(str::to_owned)
                .unwrap_or_else(|| sha256_hex(archive)),
        }],
    };
    serde_json::to_vec(&index).unwrap()
}

/// A mirror whose archive is `archive_reply`, indexed with `sha` (default:
/// the archive's real sha256).
fn mirror(archive_bytes: Vec<u8>, archive_reply: Reply, sha: Option<&str>) -> String {
    let mut routes = HashMap::new();
    routes.insert(
        "/toa/index.json".to_owned(),
        Reply::Ok(index_for(&archive_bytes, sha)),
    );
    routes.insert("/toa/toa.tar.gz".to_owned(), archive_reply);
    serve(routes)
}

fn fetcher() -> MirrorFetcher {
    MirrorFetcher::new(
        Duration::from_secs(2),
        Duration::from_millis(800),
        Display::Quiet,
    )
}

fn step(mirrors: Vec<MirrorSource>) -> Step {
    Step::FetchPrebuilt {
        mirrors,
        kernel_release: RELEASE.to_owned(),
        kernel_version: None,
        arch: "x86_64".to_owned(),
    }
}

/// The fetcher is returned too: the unpacked module lives as long as it.
fn fetch_from(url: String) -> (MirrorFetcher, Result<PathBuf, FetchFailure>) {
    let f = fetcher();
    let result = f.fetch(&step(vec![MirrorSource::Url(url)]));
    (f, result)
}

struct Pass;
impl Verifier for Pass {
    fn verify(&self, _: Option<&[String]>) -> Result<(), VerifyFailure> {
        Ok(())
    }
}

/// Runs a prebuilt plan (with or without the compile fallback) on a
/// scratch root: returns the outcome's source or the exit code and message.
fn install_from(url: String, fallback: bool) -> Result<Source, (u8, String)> {
    let root = tempfile::tempdir().unwrap();
    let plan = Plan {
        distro: "Debian 10-13",
        kernel_release: RELEASE.to_owned(),
        source: Source::Prebuilt,
        steps: vec![
            step(vec![MirrorSource::Url(url)]),
            Step::InstallPrebuilt {
                path: format!("/lib/modules/{RELEASE}/extra/toa.ko"),
            },
        ],
        fallback: fallback.then(|| {
            vec![Step::DkmsInstall {
                cmd: Cmd::new("dkms", &["install"], Duration::from_secs(1)),
            }]
        }),
    };
    let mut fx = FakeEffects::new(root.path());
    let f = fetcher();
    let mut progress = |_: &str| {};
    let mut services = Services {
        fetcher: &f,
        verifier: &Pass,
        trusted: None,
        progress: &mut progress,
    };
    let result = execute(&plan, &mut fx, &mut services);
    let installed = root
        .path()
        .join(format!("lib/modules/{RELEASE}/extra/toa.ko"));
    match result {
        Ok(outcome) => {
            assert_eq!(installed.exists(), outcome.source == Source::Prebuilt);
            Ok(outcome.source)
        }
        Err(e) => {
            assert!(!installed.exists());
            Err((e.category.code(), e.message))
        }
    }
}

#[test]
fn good_archive_is_unpacked_privately_and_installed() {
    let module = ko(RELEASE);
    let tgz = archive(&module).unwrap();
    let url = mirror(tgz.clone(), Reply::Ok(tgz), None);
    let (_f, result) = fetch_from(url.clone());
    let path = result.unwrap();
    assert_eq!(fs::read(&path).unwrap(), module);
    let mode = fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert_eq!(install_from(url, true), Ok(Source::Prebuilt));
}

fn assert_falls_back(url: String, expect: &str) {
    let err = fetch_from(url.clone()).1.unwrap_err();
    assert!(err.to_string().contains(expect), "{err}");
    assert_eq!(install_from(url.clone(), true), Ok(Source::Dkms));
    let (code, message) = install_from(url, false).unwrap_err();
    assert_eq!(code, Exit::Download.code());
    assert!(message.contains(expect), "{message}");
    assert!(message.contains("--prebuilt-only"), "{message}");
}

#[test]
fn wrong_sha256_falls_back() {
    let tgz = archive(&ko(RELEASE)).unwrap();
    let wrong = "0".repeat(64);
    let url = mirror(tgz.clone(), Reply::Ok(tgz), Some(&wrong));
    assert_falls_back(url, "checksum mismatch for toa.tar.gz");
}

#[test]
fn truncated_archive_falls_back() {
    let tgz = archive(&ko(RELEASE)).unwrap();
    let url = mirror(tgz.clone(), Reply::Truncated(tgz), None);
    assert_falls_back(url, "downloading http://127.0.0.1");
}

#[test]
fn wrong_vermagic_is_refused_before_any_load() {
    let tgz = archive(&ko("6.1.0-26-amd64")).unwrap();
    let url = mirror(tgz.clone(), Reply::Ok(tgz), None);
    assert_falls_back(
        url,
        "its vermagic is \"6.1.0-26-amd64 SMP preempt mod_unload modversions\" but the kernel is 6.1.0-27-amd64",
    );
}

#[test]
fn missing_index_404_falls_back() {
    let url = serve(HashMap::new());
    assert_falls_back(url, "index.json answered HTTP 404");
}

#[test]
fn no_entry_for_this_kernel_falls_back() {
    let mut routes = HashMap::new();
    routes.insert(
        "/toa/index.json".to_owned(),
        Reply::Ok(br#"{"format": 1, "entries": []}"#.to_vec()),
    );
    let url = serve(routes);
    assert_falls_back(
        url,
        "has no prebuilt toa 0.1.0 for kernel 6.1.0-27-amd64 (x86_64)",
    );
}

#[test]
fn stalled_server_times_out_and_falls_back() {
    let tgz = archive(&ko(RELEASE)).unwrap();
    let url = mirror(tgz, Reply::Stall, None);
    let start = Instant::now();
    let err = fetch_from(url.clone()).1.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_falls_back(url, "timed out");
}

#[test]
fn second_mirror_is_tried_after_the_first_fails() {
    let module = ko(RELEASE);
    let tgz = archive(&module).unwrap();
    let good = mirror(tgz.clone(), Reply::Ok(tgz), None);
    let bad = serve(HashMap::new());
    let f = fetcher();
    let path = f
        .fetch(&step(vec![MirrorSource::Url(bad), MirrorSource::Url(good)]))
        .unwrap();
    assert_eq!(fs::read(path).unwrap(), module);
}

#[test]
fn offline_directory_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = archive(&ko(RELEASE)).unwrap();
    fs::write(dir.path().join("index.json"), index_for(&tgz, None)).unwrap();
    fs::write(dir.path().join("toa.tar.gz"), &tgz).unwrap();
    let offline = MirrorSource::Dir(dir.path().display().to_string());
    let f = fetcher();
    assert!(f.fetch(&step(vec![offline.clone()])).is_ok());
    // No HTTPS client was made: a host without CA certificates (where
    // making one fails) can install from a local copy.
    assert!(f.client.get().is_none());
    fs::write(dir.path().join("toa.tar.gz"), &tgz[..tgz.len() - 10]).unwrap();
    let err = fetcher().fetch(&step(vec![offline])).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[test]
fn unsafe_archives_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["../toa.ko", "/etc/toa.ko"] {
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // Written raw: the tar crate's own setters refuse such names.
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        builder.append(&header, &b"abc"[..]).unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        let err = unpack(&bytes, dir.path()).unwrap_err();
        assert!(err.to_string().contains("unsafe path"), "{err}");
    }
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    builder
        .append_link(&mut header, "toa.ko", "/etc/shadow")
        .unwrap();
    let bytes = builder.into_inner().unwrap().finish().unwrap();
    assert!(unpack(&bytes, dir.path())
        .unwrap_err()
        .to_string()
        .contains("not a regular file"));
    assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// The words the executor passes on, exactly: reasons joined in order.
#[test]
fn failure_messages_are_exact() {
    let none = PrebuiltError::NoneUsable {
        reasons: vec![
            PrebuiltError::Status {
                url: "https://a.example/index.json".to_owned(),
                status: 404,
            },
            PrebuiltError::Unpack {
                file: "toa.tar.gz".to_owned(),
                source: Box::new(PrebuiltError::NoModule),
            },
        ],
    };
    assert_eq!(
        none.to_string(),
        "no usable prebuilt module: https://a.example/index.json answered HTTP 404; \
         toa.tar.gz: the archive holds no toa.ko."
    );
    assert_eq!(
        PrebuiltError::Https {
            why: "no CA certificates".to_owned()
        }
        .to_string(),
        "cannot set up HTTPS (no CA certificates). Next step: install the CA certificates \
         (the ca-certificates package), or copy the mirror here and pass --offline DIR"
    );
    assert_eq!(none.category(), Exit::Download);
}

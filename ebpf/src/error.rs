//! The one error type of the eBPF backend; every message says what to do.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, with enough context to act on.
#[derive(Debug)]
pub enum Error {
    /// The kernel lacks something the programs need.
    Unsupported {
        /// One line per missing feature.
        missing: Vec<String>,
    },
    /// A bpf() call was refused for lack of privilege.
    Permission(String),
    /// The verifier (or the kernel) refused a program.
    Load {
        /// The program's name in the object.
        program: String,
        /// The kernel's answer, with the verifier log's last lines.
        detail: String,
    },
    /// Attaching a program to the cgroup failed.
    Attach {
        /// The program's name in the object.
        program: String,
        /// The kernel's answer.
        detail: String,
    },
    /// Pinning or opening something under the pin directory failed.
    Pin {
        /// The pin path.
        path: PathBuf,
        /// The kernel's answer.
        detail: String,
    },
    /// Reading or updating a map failed.
    Map {
        /// The map's name.
        name: &'static str,
        /// The kernel's answer.
        detail: String,
    },
    /// The backend is not attached (nothing pinned).
    NotAttached,
    /// The backend is attached already (attach refuses to stack a second copy).
    AlreadyAttached,
    /// A value the caller passed cannot be used.
    Invalid(String),
    /// A file operation failed.
    Io {
        /// What was being done, e.g. "read /proc/self/mountinfo".
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported { missing } => write!(
                f,
                "this kernel cannot run toa's eBPF backend (needs Linux 5.10 or newer with cgroup v2 and BPF); missing: {}",
                missing.join("; ")
            ),
            Error::Permission(what) => write!(
                f,
                "{what}: permission denied; run as root (CAP_BPF and CAP_NET_ADMIN), and check that lockdown or a seccomp policy does not forbid bpf()"
            ),
            Error::Load { program, detail } => write!(
                f,
                "the kernel refused to load eBPF program {program}: {detail}"
            ),
            Error::Attach { program, detail } => write!(
                f,
                "cannot attach eBPF program {program} to the cgroup v2 root: {detail}"
            ),
            Error::Pin { path, detail } => write!(
                f,
                "{}: {detail} (is bpffs mounted on /sys/fs/bpf?)",
                path.display()
            ),
            Error::Map { name, detail } => write!(f, "eBPF map {name}: {detail}"),
            Error::NotAttached => write!(
                f,
                "toa's eBPF backend is not attached (nothing pinned under {})",
                crate::PIN_DIR
            ),
            Error::AlreadyAttached => write!(
                f,
                "toa's eBPF backend is attached already (pinned under {}); detach it first",
                crate::PIN_DIR
            ),
            Error::Invalid(m) => f.write_str(m),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Shorthand for `Result<T, Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// An `Error::Io` for `what`.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

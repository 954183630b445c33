//! One thing the installer does, and where a prebuilt module may come from.

use super::systemd::SystemctlUndo;
use super::Cmd;
use crate::exit::Exit;
use crate::layout::{EBPF_PIN_DIR, STATE_FILE, TRUSTED_PARAM};
use crate::state::Source;
use serde::Serialize;
use std::fmt;

/// Where a prebuilt module may come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "location", rename_all = "kebab-case")]
pub enum MirrorSource {
    /// A mirror on the web (`--mirror URL`).
    Url(String),
    /// A mirror copied to a local directory (`--offline DIR`).
    Dir(String),
}

impl fmt::Display for MirrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorSource::Url(url) => f.write_str(url),
            MirrorSource::Dir(dir) => write!(f, "{dir} (offline)"),
        }
    }
}

/// One thing the installer does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Install packages with the distribution's package manager.
    InstallPackages {
        /// Exactly the packages asked for.
        packages: Vec<String>,
        /// Why they are needed.
        purpose: String,
        /// The command.
        cmd: Cmd,
    },
    /// Run a command whose failure is reported in `failure`'s category.
    Run {
        /// What it is for.
        purpose: String,
        /// The command.
        cmd: Cmd,
        /// The exit category when it fails.
        failure: Exit,
    },
    /// Copy the bundled module source to `dir`.
    WriteSource {
        /// `/usr/src/toa-<version>`.
        dir: String,
        /// The relative paths written.
        files: Vec<String>,
    },
    /// Write a file (replacing what is there; the old content is kept in
    /// the undo log).
    WriteFile {
        /// Absolute path.
        path: String,
        /// The whole new content.
        contents: String,
        /// Permission bits.
        mode: u32,
    },
    /// Remove a file (its content is kept in the undo log).
    RemoveFile {
        /// Absolute path.
        path: String,
        /// What it is.
        purpose: String,
    },
    /// `systemctl` on units toa-install writes (see `plan::systemd`).
    Systemctl {
        /// What it is for.
        purpose: String,
        /// The command.
        cmd: Cmd,
        /// What undoes it when a later step fails.
        undo: SystemctlUndo,
    },
    /// `dkms add`.
    DkmsAdd {
        /// The command.
        cmd: Cmd,
    },
    /// `dkms build`.
    DkmsBuild {
        /// The command.
        cmd: Cmd,
        /// DKMS's build log, shown on failure.
        make_log: String,
    },
    /// `dkms install`.
    DkmsInstall {
        /// The command.
        cmd: Cmd,
    },
    /// Find the module for this kernel in a mirror, download it, check its
    /// sha256, unpack it privately and check its `vermagic`.
    FetchPrebuilt {
        /// Mirrors, tried in order.
        mirrors: Vec<MirrorSource>,
        /// The kernel it must be built for.
        kernel_release: String,
        /// `uname -v`, preferred when the mirror has several builds.
        kernel_version: Option<String>,
        /// The architecture.
        arch: String,
    },
    /// Copy the fetched module into the kernel's module tree.
    InstallPrebuilt {
        /// `/lib/modules/<release>/extra/toa.ko`.
        path: String,
    },
    /// Load the module.
    Load {
        /// The command.
        cmd: Cmd,
    },
    /// Change the `trusted` parameter of the loaded module.
    SetTrusted {
        /// The new list.
        value: String,
    },
    /// Attach the eBPF programs to the cgroup v2 root and pin them.
    AttachEbpf {
        /// The trusted networks (empty: every sender).
        trusted: Vec<String>,
    },
    /// Replace the attached eBPF backend's trusted networks, live.
    SetEbpfTrusted {
        /// The new list (empty: every sender).
        trusted: Vec<String>,
    },
    /// Copy the running toa-install to where the boot-time unit runs it.
    CopyLoader {
        /// The copy.
        path: String,
    },
    /// The end-to-end self-test (`toa-install verify`).
    Verify,
    /// Record what was installed in the state file.
    RecordState {
        /// How toa.ko got onto the system.
        source: Source,
        /// The kernel it is installed for.
        kernel_release: String,
        /// `--metrics-textfile`'s directory; `None` keeps what the state
        /// file records.
        #[serde(skip_serializing_if = "Option::is_none")]
        metrics_textfile: Option<String>,
    },
}

impl Step {
    /// One line saying what the step does (files' contents follow on
    /// further lines in [`Plan::render`]).
    pub fn summary(&self) -> String {
        match self {
            Step::InstallPackages { purpose, cmd, .. } => format!("install {purpose}: {cmd}"),
            Step::Run { purpose, cmd, .. } => format!("{purpose}: {cmd}"),
            Step::WriteSource { dir, files } => format!(
                "copy the bundled module source to {dir}: {}",
                files.join(" ")
            ),
            Step::WriteFile { path, mode, .. } => format!("write {path} (mode {mode:04o})"),
            Step::RemoveFile { path, purpose } => format!("remove {purpose}: {path}"),
            Step::Systemctl { purpose, cmd, .. } => format!("{purpose}: {cmd}"),
            Step::DkmsAdd { cmd } => format!("register the source with DKMS: {cmd}"),
            Step::DkmsBuild { cmd, .. } => format!("build toa.ko: {cmd}"),
            Step::DkmsInstall { cmd } => format!("install toa.ko: {cmd}"),
            Step::FetchPrebuilt {
                mirrors,
                kernel_release,
                arch,
                ..
            } => {
                let from: Vec<String> = mirrors.iter().map(|m| m.to_string()).collect();
                format!(
                    "fetch the prebuilt toa.ko for {kernel_release} ({arch}) from {}; \
                     check sha256 and vermagic",
                    from.join(", then ")
                )
            }
            Step::InstallPrebuilt { path } => format!("install the prebuilt toa.ko as {path}"),
            Step::Load { cmd } => format!("load the module: {cmd}"),
            Step::SetTrusted { value } => {
                format!("set the live trusted list: write {value:?} to {TRUSTED_PARAM}")
            }
            Step::AttachEbpf { trusted } => format!(
                "attach the eBPF programs to the cgroup v2 root and pin them under \
                 {EBPF_PIN_DIR} (trusted: {})",
                trusted_text(trusted)
            ),
            Step::SetEbpfTrusted { trusted } => format!(
                "set the eBPF backend's trusted networks, live: {}",
                trusted_text(trusted)
            ),
            Step::CopyLoader { path } => {
                format!("copy this toa-install to {path}, which the boot-time unit runs")
            }
            Step::Verify => "verify: TOA handshakes over IPv4 and IPv6 in a private network \
                             namespace must reach accept() and getpeername()"
                .to_owned(),
            Step::RecordState { source, .. } => format!(
                "record the installation ({}) in {STATE_FILE}",
                match source {
                    Source::Installed => "already installed",
                    Source::Prebuilt => "prebuilt",
                    Source::Dkms => "dkms",
                    Source::Ebpf => "ebpf",
                }
            ),
        }
    }
}

fn trusted_text(trusted: &[String]) -> String {
    if trusted.is_empty() {
        "every sender".to_owned()
    } else {
        trusted.join(", ")
    }
}

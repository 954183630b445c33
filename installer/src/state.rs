//! The state file: what toa-install installed, for `status` and `uninstall`.
//! It lives at [`crate::layout::STATE_FILE`].

use serde::{Deserialize, Serialize};

/// How toa.ko gets onto the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Nothing to build: it is already installed.
    Installed,
    /// A verified prebuilt module from a mirror.
    Prebuilt,
    /// Compiled on this host through DKMS.
    Dkms,
    /// No module: the eBPF programs built into toa-install.
    Ebpf,
}

impl Source {
    /// The name the state file and `status` use.
    pub const fn name(self) -> &'static str {
        match self {
            Source::Installed => "installed",
            Source::Prebuilt => "prebuilt",
            Source::Dkms => "dkms",
            Source::Ebpf => "ebpf",
        }
    }
}

impl Source {
    /// The backend this source belongs to.
    pub const fn backend(self) -> Kind {
        match self {
            Source::Ebpf => Kind::Ebpf,
            Source::Installed | Source::Prebuilt | Source::Dkms => Kind::Module,
        }
    }
}

/// Which backend gets TOA into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The kernel module.
    Module,
    /// The eBPF programs.
    Ebpf,
}

impl Kind {
    /// Its name on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Module => "module",
            Kind::Ebpf => "ebpf",
        }
    }
}

/// The state file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// The module version.
    pub version: String,
    /// How the module got there (`installed`: found in place).
    pub source: Source,
    /// The kernel release.
    pub kernel_release: String,
    /// Packages toa-install installed (removed by `uninstall --purge-deps`).
    pub packages_installed: Vec<String>,
    /// The `srcversion` of the prebuilt toa.ko copied into place, which
    /// tells it from another toa.ko at the same path (DKMS's on EL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srcversion: Option<String>,
    /// `--metrics-textfile`: the directory the metrics timer writes
    /// `toa.prom` to, for `status` and `uninstall` (which removes the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_textfile: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_serialized_form() {
        for s in [
            Source::Installed,
            Source::Prebuilt,
            Source::Dkms,
            Source::Ebpf,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
    }
}

//! The module's status: is toa loaded, which version, how it was
//! installed, whether it loads at boot, whom it trusts, and its counters.
//! Reads files only; changes nothing.

use crate::layout::{
    AUTOLOAD_CONF, MODPROBE_CONF, MODULE, OSRELEASE, STATE_FILE, TOA_SYSFS, TRUSTED_PARAM,
};
use crate::plan::metrics;
use crate::state::{Source, StateFile};
use crate::system::installed::{self, Owner};
use crate::system::stats;
use crate::system::sysroot::SystemFs;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The active backend (`module`, `ebpf`), `null` when neither is.
    pub backend: Option<String>,
    /// `/sys/module/toa` exists (the eBPF backend: its programs are attached).
    pub loaded: bool,
    /// The loaded module's `version`.
    pub version: Option<String>,
    /// The loaded module's `srcversion`.
    pub srcversion: Option<String>,
    /// How the running kernel's toa.ko got there: `dkms` when DKMS
    /// installed it, `prebuilt` when toa-install copied it (the state file
    /// records it, with the file's `srcversion`); else what the state file
    /// says (`installed`: found in place), `null` without one. Where the
    /// state file disagrees with the evidence, the evidence wins and a
    /// warning says so.
    pub source: Option<String>,
    /// The kernel release it was installed for.
    pub installed_for: Option<String>,
    /// `/etc/modules-load.d/toa.conf` names the module.
    pub autoload: bool,
    /// The trusted networks: the live list when loaded, else the one in
    /// `/etc/modprobe.d/toa.conf`.
    pub trusted: Vec<String>,
    /// Where `trusted` was read.
    pub trusted_source: Option<String>,
    /// The counters of `/proc/net/toa_stats`, summed over CPUs.
    pub counters: BTreeMap<String, u64>,
    /// The metrics timer (`--metrics-textfile`), when set up.
    pub metrics: Option<metrics::Summary>,
    /// What deserves attention.
    pub warnings: Vec<String>,
}

fn read_trimmed(fs: &dyn SystemFs, path: &str) -> Option<String> {
    fs.read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `trusted=` value of an options line for toa in a modprobe.d file.
pub fn trusted_from_modprobe_conf(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("options") && words.next() == Some(MODULE)).then_some(words)
        })
        .flatten()
        .filter_map(|w| w.strip_prefix("trusted="))
        .map(|v| v.trim_matches('"').to_owned())
        .next_back()
}

/// Gathers the status from the files of `fs`.
pub fn gather(fs: &dyn SystemFs) -> Status {
    let loaded = fs.exists(TOA_SYSFS);
    let version = read_trimmed(fs, &format!("{TOA_SYSFS}/version")).filter(|v| !v.is_empty());
    let srcversion = read_trimmed(fs, &format!("{TOA_SYSFS}/srcversion")).filter(|v| !v.is_empty());
    let mut warnings = Vec::new();
    let state: Option<StateFile> = match fs.read(STATE_FILE) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(s) => Some(s),
            Err(e) => {
                warnings.push(format!("{STATE_FILE} is unreadable ({e})"));
                None
            }
        },
        Err(_) => None,
    };
    let release = read_trimmed(fs, OSRELEASE)
        .filter(|r| !r.is_empty())
        .or_else(|| state.as_ref().map(|s| s.kernel_release.clone()));
    let owner = release
        .as_deref()
        .map(|r| installed::owner(fs, r, state.as_ref()))
        .unwrap_or_default();
    let source = match (&owner, &state) {
        (Owner::Dkms { .. } | Owner::Prebuilt, _) => owner.source_name().map(str::to_owned),
        (Owner::Unaccounted { path }, _) => {
            warnings.push(format!(
                "{path} was installed neither by DKMS nor by toa-install (no record of it in \
                 {STATE_FILE}). Next step: `modinfo {path}` shows what it is; `toa-install` \
                 replaces it"
            ));
            None
        }
        (Owner::Nothing, state) => state.as_ref().map(|s| s.source.name().to_owned()),
    };
    if let (Owner::Dkms { version }, Some(s), Some(r)) = (&owner, &state, &release) {
        if s.source != Source::Dkms && &s.kernel_release == r {
            warnings.push(format!(
                "{STATE_FILE} says toa was installed as {}, but DKMS installed toa {version} for \
                 {r}: that is the module in place. Next step: run `toa-install` to update the record",
                s.source.name()
            ));
        }
    }
    let autoload = fs
        .read_to_string(AUTOLOAD_CONF)
        .map(|t| t.lines().map(str::trim).any(|l| l == MODULE))
        .unwrap_or(false);
    let (trusted, trusted_source) = if loaded {
        match read_trimmed(fs, TRUSTED_PARAM) {
            Some(t) => (split_list(&t), Some(TRUSTED_PARAM.to_owned())),
            None => (Vec::new(), None),
        }
    } else {
        match fs
            .read_to_string(MODPROBE_CONF)
            .ok()
            .and_then(|t| trusted_from_modprobe_conf(&t))
        {
            Some(t) => (split_list(&t), Some(MODPROBE_CONF.to_owned())),
            None => (Vec::new(), None),
        }
    };
    let mut counters = BTreeMap::new();
    if loaded {
        match stats::read(fs) {
            Ok(c) => counters = c,
            Err(e) => warnings.push(format!("cannot read the counters: {e}")),
        }
    }
    if !loaded {
        warnings.push(
            "toa is not loaded: servers see the proxy's address. Next step: run `toa-install`"
                .to_owned(),
        );
    } else {
        if state.is_none() {
            warnings.push(format!(
                "a toa module is loaded but toa-install has no record of installing it ({STATE_FILE})"
            ));
        }
        if trusted.is_empty() {
            warnings.push(
                "the trusted list is empty: TOA is honoured from every sender, so any client that \
                 can reach this host can claim any address. Next step: `toa-install --trust CIDR` \
                 with the networks of your proxies"
                    .to_owned(),
            );
        }
        if counters.get("hook_missed").copied().unwrap_or(0) > 0 {
            warnings.push(
                "hook_missed is not zero: some connections were not inspected (kretprobe \
                 instances exhausted)"
                    .to_owned(),
            );
        }
    }
    let metrics = metrics_summary(fs, state.as_ref(), &mut warnings);
    if state.is_some() && !autoload {
        warnings.push(format!(
            "{AUTOLOAD_CONF} does not load toa at boot. Next step: run `toa-install` again"
        ));
    }
    Status {
        backend: loaded.then(|| "module".to_owned()),
        loaded,
        version,
        srcversion,
        source,
        installed_for: state.map(|s| s.kernel_release),
        autoload,
        trusted,
        trusted_source,
        counters,
        metrics,
        warnings,
    }
}

/// The metrics timer, for either backend's status; a warning when it is
/// set up but not enabled.
pub fn metrics_summary(
    fs: &dyn SystemFs,
    state: Option<&StateFile>,
    warnings: &mut Vec<String>,
) -> Option<metrics::Summary> {
    let metrics = metrics::Current::read(fs, state).summary();
    if let Some(m) = metrics.as_ref().filter(|m| !m.enabled) {
        warnings.push(format!(
            "{} is not enabled: the metrics file is not being written. Next step: \
             `systemctl enable --now {}`, or run `toa-install --metrics-textfile DIR` again",
            m.timer, m.timer
        ));
    }
    metrics
}

/// The status as text.
pub fn render_text(s: &Status) -> String {
    let mut out = String::new();
    let na = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".to_owned());
    let _ = writeln!(out, "backend:   {}", na(&s.backend));
    let _ = writeln!(out, "loaded:    {}", if s.loaded { "yes" } else { "no" });
    let _ = writeln!(out, "version:   {}", na(&s.version));
    let _ = writeln!(
        out,
        "source:    {}{}",
        na(&s.source),
        s.installed_for
            .as_ref()
            .map(|k| format!(" (for kernel {k})"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "autoload:  {}", if s.autoload { "yes" } else { "no" });
    let _ = writeln!(
        out,
        "trusted:   {}",
        if s.trusted.is_empty() && s.trusted_source.is_none() && !s.loaded {
            "(not configured)".to_owned()
        } else if s.trusted.is_empty() {
            "(empty: every sender)".to_owned()
        } else {
            s.trusted.join(",")
        }
    );
    if let Some(m) = &s.metrics {
        let _ = writeln!(
            out,
            "metrics:   {} every {} s by {} ({})",
            m.file.as_deref().unwrap_or("(no directory recorded)"),
            metrics::INTERVAL_SECS,
            m.timer,
            if m.enabled { "enabled" } else { "not enabled" }
        );
    }
    if !s.counters.is_empty() {
        let get = |n: &str| s.counters.get(n).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "counters:  toa {} / no toa {} / untrusted {} / malformed {} / hook missed {}",
            get("syn_recv_sock_toa"),
            get("syn_recv_sock_no_toa"),
            get("syn_recv_sock_untrusted"),
            get("toa_malformed"),
            get("hook_missed")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::STATS;
    use crate::system::sysroot::fake::MemFs;

    const STATE: &str = r#"{"version":"0.1.0","source":"dkms","kernel_release":"6.1.0-27-amd64","packages_installed":[]}"#;

    fn stats() -> String {
        "  CPU0 CPU1\nsyn_recv_sock_toa : 2 3\nsyn_recv_sock_no_toa : 1 0\nhook_missed : 0 0\n"
            .to_owned()
    }

    #[test]
    fn loaded_and_recorded() {
        let fs = MemFs::new()
            .with("/sys/module/toa/version", "0.1.0\n")
            .with("/sys/module/toa/srcversion", "ABC\n")
            .with(TRUSTED_PARAM, "10.0.0.0/8,2001:db8::/32\n")
            .with(STATE_FILE, STATE)
            .with(AUTOLOAD_CONF, "# x\ntoa\n")
            .with(STATS, stats());
        let s = gather(&fs);
        assert!(s.loaded && s.autoload);
        assert_eq!(s.version.as_deref(), Some("0.1.0"));
        assert_eq!(s.source.as_deref(), Some("dkms"));
        assert_eq!(s.trusted, ["10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(s.counters["syn_recv_sock_toa"], 5);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let text = render_text(&s);
        assert!(text.contains("toa 5 / no toa 1"), "{text}");
    }

    #[test]
    fn empty_trusted_list_warns() {
        let fs = MemFs::new()
            .with("/sys/module/toa/version", "0.1.0\n")
            .with(TRUSTED_PARAM, "\n")
            .with(STATE_FILE, STATE)
            .with(AUTOLOAD_CONF, "toa\n")
            .with(STATS, stats());
        let s = gather(&fs);
        assert!(s.trusted.is_empty());
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("trusted list is empty")));
    }

    #[test]
    fn not_loaded_reads_the_configured_list() {
        let fs = MemFs::new().with(
            MODPROBE_CONF,
            "# toa-install\noptions toa trusted=10.0.0.0/8,192.0.2.1\n",
        );
        let s = gather(&fs);
        assert!(!s.loaded && !s.autoload);
        assert_eq!(s.trusted, ["10.0.0.0/8", "192.0.2.1"]);
        assert!(s.warnings.iter().any(|w| w.contains("not loaded")));
        assert!(s.counters.is_empty());
    }

    #[test]
    fn modprobe_conf_parsing() {
        assert_eq!(
            trusted_from_modprobe_conf("options toa kinds=254 trusted=\"10.0.0.0/8\"\n").as_deref(),
            Some("10.0.0.0/8")
        );
        assert_eq!(
            trusted_from_modprobe_conf("options other trusted=1.2.3.4\n"),
            None
        );
        assert_eq!(
            trusted_from_modprobe_conf("# options toa trusted=1.2.3.4\n"),
            None
        );
    }
}

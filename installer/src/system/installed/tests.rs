//! Whose toa.ko is in place, on fake roots: DKMS's and a prebuilt one at
//! the same `/extra/toa.ko` path on EL, a stale state file; and what the
//! install plan, `status` and `uninstall` make of each.

use super::*;
use crate::bundle;
use crate::commands::status;
use crate::layout::STATE_FILE;
use crate::plan::uninstall;
use crate::plan::{self, Facts, Options, Source, State, Step};
use crate::system::distro::table::lookup;
use crate::system::distro::PackageManager;
use crate::system::kernel::{ArchSource, KernelInfo, ReleaseSource};
use crate::system::modinfo::fixture_ko;
use crate::system::security::{LoadedToa, Lockdown, SecureBoot, SecurityState};
use crate::system::sysroot::fake::FakeHost;
use crate::system::sysroot::RootFs;
use std::fs;
use std::path::Path;

const EL: &str = "5.14.0-427.13.1.el9_4.x86_64";
const DEBIAN: &str = "6.1.0-27-amd64";

fn module(srcversion: &str, release: &str) -> Vec<u8> {
    fixture_ko(&[
        ("version", bundle::VERSION),
        ("srcversion", srcversion),
        ("name", "toa"),
        (
            "vermagic",
            &format!("{release} SMP mod_unload modversions "),
        ),
    ])
}

fn dkms_ko(release: &str) -> Vec<u8> {
    module("D1D1D1D1D1D1D1D1D1D1D1D", release)
}

fn prebuilt_ko(release: &str) -> Vec<u8> {
    module("9F9F9F9F9F9F9F9F9F9F9F9", release)
}

fn put(root: &Path, path: &str, contents: &[u8]) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, contents).unwrap();
}

/// What `dkms add`, `build` and `install` leave for `release`: the build in
/// DKMS's tree, its `kernel-<release>-x86_64` link, and the installed copy
/// in `dest` below `/lib/modules/<release>`.
fn dkms_installed(root: &Path, release: &str, dest: &str) {
    let v = bundle::VERSION;
    fs::create_dir_all(root.join(format!("var/lib/dkms/toa/{v}/source"))).unwrap();
    put(
        root,
        &format!("{DKMS_TREE}/{v}/{release}/x86_64/module/toa.ko"),
        &dkms_ko(release),
    );
    std::os::unix::fs::symlink(
        format!("{v}/{release}/x86_64"),
        root.join(format!("var/lib/dkms/toa/kernel-{release}-x86_64")),
    )
    .unwrap();
    put(
        root,
        &format!("/lib/modules/{release}/{dest}/toa.ko"),
        &dkms_ko(release),
    );
}

fn state_file(source: Source, release: &str, srcversion: Option<&str>) -> StateFile {
    StateFile {
        version: bundle::VERSION.to_owned(),
        source,
        kernel_release: release.to_owned(),
        packages_installed: Vec::new(),
        srcversion: srcversion.map(str::to_owned),
        metrics_textfile: None,
    }
}

fn record(root: &Path, state: &StateFile) {
    put(root, STATE_FILE, &serde_json::to_vec(state).unwrap());
}

/// A root with the running kernel's release in `/proc`, as `status` reads it.
fn root(release: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    put(
        dir.path(),
        "/proc/sys/kernel/osrelease",
        format!("{release}\n").as_bytes(),
    );
    dir
}

fn read_state(root: &Path) -> Option<StateFile> {
    fs::read(root.join(STATE_FILE.trim_start_matches('/')))
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
}

fn owner_in(root: &Path, release: &str) -> Owner {
    let fs = RootFs::at(root).unwrap();
    owner(&fs, release, read_state(root).as_ref())
}

fn rocky9(loaded: LoadedToa) -> Facts {
    Facts {
        row: lookup("rocky", 9).unwrap(),
        version_id: Some("9.4".to_owned()),
        kernel: KernelInfo {
            release: EL.to_owned(),
            version: Some("#1 SMP PREEMPT_DYNAMIC Wed May 1 19:11:28 UTC 2024".to_owned()),
            arch: "x86_64".to_owned(),
            release_source: ReleaseSource::Uname,
            arch_source: ArchSource::Uname,
        },
        security: SecurityState {
            secure_boot: SecureBoot::Disabled,
            secure_boot_source: None,
            lockdown: Lockdown::None,
            sig_enforce: Some(false),
            suse_gate: None,
            toa_module: loaded,
        },
    }
}

fn ours() -> LoadedToa {
    LoadedToa::Ours {
        version: bundle::VERSION.to_owned(),
    }
}

fn with_mirror() -> Options {
    let urls = ["https://mirror.example.com/toa".to_owned()];
    let mirrors = crate::commands::install::mirror_sources(None, &urls);
    Options {
        mirrors,
        ..Options::default()
    }
}

fn state_in(root: &Path, facts: &Facts) -> State {
    let fs = RootFs::at(root).unwrap();
    State::read(&fs, &FakeHost::new(EL, "#1", "x86_64"), facts, None)
}

fn found_in(root: &Path, manager: PackageManager) -> uninstall::Found {
    let fs = RootFs::at(root).unwrap();
    uninstall::Found::read(&fs, &FakeHost::new(EL, "#1", "x86_64"), Some(manager), None)
}

fn summaries(steps: &[Step]) -> Vec<String> {
    steps.iter().map(Step::summary).collect()
}

fn record_step(steps: &[Step]) -> Option<Source> {
    steps.iter().find_map(|s| match s {
        Step::RecordState { source, .. } => Some(*source),
        _ => None,
    })
}

/// With the module not loaded and a mirror given, the plan loads the
/// toa.ko in place (nothing fetched, nothing built) and records it as
/// `source`; returns the state read.
fn loads_in_place(root: &Path, source: Source) -> State {
    let facts = rocky9(LoadedToa::NotLoaded);
    let state = state_in(root, &facts);
    let p = plan::plan(&facts, &with_mirror(), &state).unwrap();
    assert_eq!(p.source, Source::Installed);
    assert!(p.fallback.is_none());
    assert!(
        matches!(p.steps[0], Step::Load { .. }),
        "{:?}",
        summaries(&p.steps)
    );
    assert!(!p.steps.iter().any(|s| matches!(
        s,
        Step::FetchPrebuilt { .. }
            | Step::InstallPrebuilt { .. }
            | Step::DkmsBuild { .. }
            | Step::DkmsInstall { .. }
    )));
    assert_eq!(record_step(&p.steps), Some(source));
    state
}

/// `status` on `root` names `source` and warns with a line containing
/// `warning`.
fn status_warns(root: &Path, source: Option<&str>, warning: &str) {
    let s = status::gather(&RootFs::at(root).unwrap());
    assert_eq!(s.source.as_deref(), source);
    assert!(
        s.warnings.iter().any(|w| w.contains(warning)),
        "{:?}",
        s.warnings
    );
}

fn plans_prebuilt_removal(found: &uninstall::Found) -> bool {
    uninstall::plan(found, uninstall::Options::default(), Some(PackageManager::Dnf))
        .steps
        .iter()
        .any(|s| matches!(s, uninstall::Step::RemoveFile { path, .. } if path.ends_with("/extra/toa.ko")))
}

#[test]
fn el_dkms_build_at_extra_without_a_state_file_is_dkms() {
    let dir = root(EL);
    let r = dir.path();
    dkms_installed(r, EL, "extra");
    let dkms = Owner::Dkms {
        version: bundle::VERSION.to_owned(),
    };
    assert_eq!(owner_in(r, EL), dkms);

    // Not loaded: it is loaded as it is, never replaced by a prebuilt, and
    // recorded as DKMS's.
    let state = loads_in_place(r, Source::Dkms);
    assert_eq!(state.installed, dkms);
    assert!(!state.recorded);

    // `status` names DKMS; `uninstall` leaves the file to `dkms remove`.
    let s = status::gather(&RootFs::at(r).unwrap());
    assert_eq!(s.source.as_deref(), Some("dkms"));
    let found = found_in(r, PackageManager::Dnf);
    assert!(found.prebuilt.is_empty(), "{:?}", found.prebuilt);
    assert!(!plans_prebuilt_removal(&found));
    assert_eq!(found.dkms_versions, [bundle::VERSION]);
}

#[test]
fn a_dkms_build_is_recognised_by_its_bytes_without_the_link() {
    let dir = root(EL);
    let r = dir.path();
    dkms_installed(r, EL, "extra");
    fs::remove_file(r.join(format!("var/lib/dkms/toa/kernel-{EL}-x86_64"))).unwrap();
    assert!(matches!(owner_in(r, EL), Owner::Dkms { .. }));
    // And by its link when the installed copy is compressed.
    let dir = root(EL);
    let r = dir.path();
    dkms_installed(r, EL, "extra");
    let extra = r.join(format!("lib/modules/{EL}/extra"));
    fs::rename(extra.join("toa.ko"), extra.join("toa.ko.xz")).unwrap();
    fs::write(extra.join("toa.ko.xz"), b"xz bytes").unwrap();
    assert!(matches!(owner_in(r, EL), Owner::Dkms { .. }));
    // A link whose build is gone marks nothing.
    fs::remove_dir_all(r.join(format!("var/lib/dkms/toa/{}/{EL}", bundle::VERSION))).unwrap();
    assert_eq!(owner_in(r, EL), Owner::Nothing);
}

#[test]
fn el_prebuilt_at_extra_with_its_state_file_is_prebuilt() {
    let dir = root(EL);
    let r = dir.path();
    let ko = prebuilt_ko(EL);
    put(r, &crate::layout::prebuilt_path(EL), &ko);
    record(
        r,
        &state_file(Source::Prebuilt, EL, srcversion(&ko).as_deref()),
    );
    // DKMS has the source registered, but built nothing for this kernel.
    fs::create_dir_all(r.join(format!("var/lib/dkms/toa/{}/source", bundle::VERSION))).unwrap();
    assert_eq!(owner_in(r, EL), Owner::Prebuilt);

    let state = loads_in_place(r, Source::Prebuilt);
    assert_eq!(state.installed, Owner::Prebuilt);
    assert!(state.recorded);

    let s = status::gather(&RootFs::at(r).unwrap());
    assert_eq!(s.source.as_deref(), Some("prebuilt"));
    assert!(
        !s.warnings.iter().any(|w| w.contains("DKMS")),
        "{:?}",
        s.warnings
    );
    let found = found_in(r, PackageManager::Dnf);
    assert_eq!(found.prebuilt, [EL]);
    assert!(plans_prebuilt_removal(&found));
}

#[test]
fn a_file_whose_srcversion_is_not_the_recorded_one_is_replaced() {
    let dir = root(EL);
    let r = dir.path();
    put(r, &crate::layout::prebuilt_path(EL), &prebuilt_ko(EL));
    record(
        r,
        &state_file(Source::Prebuilt, EL, Some("0123456789ABCDEF0123456")),
    );
    let unaccounted = Owner::Unaccounted {
        path: crate::layout::prebuilt_path(EL),
    };
    assert_eq!(owner_in(r, EL), unaccounted);
    let facts = rocky9(LoadedToa::NotLoaded);
    let p = plan::plan(&facts, &with_mirror(), &state_in(r, &facts)).unwrap();
    assert_eq!(p.source, Source::Prebuilt);
    assert!(matches!(p.steps[0], Step::FetchPrebuilt { .. }));
    status_warns(r, None, "neither by DKMS nor by toa-install");
    // A state file for another kernel, or none, does not account for it
    // either.
    record(
        r,
        &state_file(Source::Prebuilt, "5.14.0-1.el9.x86_64", None),
    );
    assert_eq!(owner_in(r, EL), unaccounted);
    fs::remove_file(r.join(STATE_FILE.trim_start_matches('/'))).unwrap();
    assert_eq!(owner_in(r, EL), unaccounted);
}

#[test]
fn a_stale_state_file_claiming_prebuilt_loses_to_dkms() {
    let dir = root(EL);
    let r = dir.path();
    dkms_installed(r, EL, "extra");
    record(
        r,
        &state_file(
            Source::Prebuilt,
            EL,
            srcversion(&prebuilt_ko(EL)).as_deref(),
        ),
    );
    let dkms = Owner::Dkms {
        version: bundle::VERSION.to_owned(),
    };
    assert_eq!(owner_in(r, EL), dkms);
    // Without a srcversion in the record, the file's bytes still decide.
    record(r, &state_file(Source::Prebuilt, EL, None));
    assert_eq!(owner_in(r, EL), dkms);

    // Loaded and persisted: the run only verifies and records DKMS.
    put(
        r,
        "/etc/modules-load.d/toa.conf",
        plan::autoload_conf().as_bytes(),
    );
    let facts = rocky9(ours());
    let state = state_in(r, &facts);
    assert!(!state.recorded);
    let p = plan::plan(&facts, &Options::default(), &state).unwrap();
    assert_eq!(
        summaries(&p.steps),
        [
            "verify: TOA handshakes over IPv4 and IPv6 in a private network namespace must reach accept() and getpeername()",
            "record the installation (dkms) in /var/lib/toa-install/state.json",
        ]
    );
    // Once recorded, a second run changes nothing.
    record(r, &state_file(Source::Dkms, EL, None));
    let state = state_in(r, &facts);
    assert!(state.recorded);
    assert!(plan::plan(&facts, &Options::default(), &state)
        .unwrap()
        .changes_nothing());

    // `status` believes DKMS and says the record is stale.
    record(r, &state_file(Source::Prebuilt, EL, None));
    status_warns(r, Some("dkms"), "says toa was installed as prebuilt");
    // `uninstall` does not delete DKMS's module as if it were a prebuilt.
    let found = found_in(r, PackageManager::Dnf);
    assert!(found.prebuilt.is_empty(), "{:?}", found.prebuilt);
    assert!(!plans_prebuilt_removal(&found));
}

#[test]
fn debian_dkms_in_updates_and_a_prebuilt_in_extra_are_told_apart() {
    let dir = root(DEBIAN);
    let r = dir.path();
    dkms_installed(r, DEBIAN, "updates/dkms");
    put(
        r,
        &crate::layout::prebuilt_path(DEBIAN),
        &prebuilt_ko(DEBIAN),
    );
    // modprobe prefers updates/: DKMS's is the module in use.
    assert!(matches!(owner_in(r, DEBIAN), Owner::Dkms { .. }));
    // The prebuilt copy is not DKMS's: uninstall removes it, and
    // `dkms remove` the rest.
    let found = found_in(r, PackageManager::Apt);
    assert_eq!(found.prebuilt, [DEBIAN]);
    let p = uninstall::plan(
        &found,
        uninstall::Options::default(),
        Some(PackageManager::Apt),
    );
    assert!(p
        .steps
        .iter()
        .any(|s| matches!(s, uninstall::Step::DkmsRemove { .. })));
    assert!(p.steps.iter().any(
        |s| matches!(s, uninstall::Step::RemoveFile { path, .. } if path.ends_with("/extra/toa.ko"))
    ));
}

#[test]
fn kernel_links_are_matched_exactly() {
    assert!(is_kernel_link(
        "kernel-6.1.0-27-amd64-x86_64",
        "6.1.0-27-amd64"
    ));
    assert!(!is_kernel_link("kernel-6.1.0-27-amd64-x86_64", "6.1.0-27"));
    assert!(!is_kernel_link("kernel-6.1.0-27-amd64-", "6.1.0-27-amd64"));
    assert!(!is_kernel_link("6.1.0-27-amd64-x86_64", "6.1.0-27-amd64"));
}

//! The uninstall plan (snapshots) and its execution against a temporary
//! root with scripted commands.

use super::*;
use crate::commands::detect::Verbosity;
use crate::effects::fake::FakeEffects;
use crate::effects::progress::{Display, Reporter};
use crate::plan::uninstall::*;
use crate::state::StateFile;
use crate::system::distro::PackageManager;
use crate::system::security::LoadedToa;
use crate::system::sysroot::fake::FakeHost;
use crate::system::sysroot::RootFs;
use std::collections::BTreeSet;
use std::fs;

const RELEASE: &str = "6.1.0-27-amd64";
const PACKAGES: [&str; 3] = ["linux-headers-6.1.0-27-amd64", "dkms", "gcc"];

/// Compares with `src/commands/uninstall/snapshots/<name>.txt`;
/// `TOA_UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/commands/uninstall/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("TOA_UPDATE_SNAPSHOTS").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "uninstall plan {name} differs from {}; run with TOA_UPDATE_SNAPSHOTS=1 to accept.\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn state_file(packages: &[&str]) -> StateFile {
    StateFile {
        version: crate::bundle::VERSION.to_owned(),
        source: crate::state::Source::Dkms,
        kernel_release: RELEASE.to_owned(),
        packages_installed: packages.iter().map(|p| (*p).to_owned()).collect(),
        srcversion: None,
        metrics_textfile: Some(TEXTFILE_DIR.to_owned()),
    }
}

const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";

/// The metrics timer as `--metrics-textfile` leaves it.
fn metrics_timer() -> crate::plan::metrics::Current {
    use crate::plan::metrics::{self, Textfile};
    let t = Textfile {
        dir: TEXTFILE_DIR.to_owned(),
        exec: "/usr/sbin/toa-install".to_owned(),
    };
    metrics::Current {
        units: crate::plan::systemd::Installed {
            files: vec![
                ("toa-metrics.service".to_owned(), Some(metrics::service(&t))),
                ("toa-metrics.timer".to_owned(), Some(metrics::timer())),
            ],
            enabled: true,
        },
        file: Some(crate::layout::metrics_file(TEXTFILE_DIR)),
        dir: Some(t.dir),
    }
}

fn everything() -> Found {
    Found {
        loaded: Some(LoadedToa::Ours {
            version: crate::bundle::VERSION.to_owned(),
        }),
        holders: Vec::new(),
        refcnt: Some(0),
        autoload_conf: true,
        modprobe_conf: true,
        dkms_versions: vec![crate::bundle::VERSION.to_owned()],
        source_dirs: vec![format!("/usr/src/toa-{}", crate::bundle::VERSION)],
        packaged: Vec::new(),
        prebuilt: vec![RELEASE.to_owned()],
        state: Some(state_file(&PACKAGES)),
        state_dir: true,
        packages_still_installed: ["dkms", "gcc"].map(str::to_owned).into(),
        ebpf: Default::default(),
        metrics: metrics_timer(),
    }
}

fn render(p: &Plan) -> String {
    let mut out = p.render();
    for w in &p.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

#[test]
fn snapshots() {
    let found = everything();
    for (name, manager) in [
        ("debian", PackageManager::Apt),
        ("rocky", PackageManager::Dnf),
        ("centos-7", PackageManager::Yum),
        ("sles", PackageManager::Zypper),
    ] {
        let purge = plan(&found, Options { purge_deps: true }, Some(manager));
        snapshot(&format!("{name}-purge-deps"), &render(&purge));
    }
    let keep = plan(&found, Options::default(), Some(PackageManager::Apt));
    snapshot("debian-keep-packages", &render(&keep));
}

#[test]
fn purge_removes_exactly_the_recorded_packages_still_installed() {
    let p = plan(
        &everything(),
        Options { purge_deps: true },
        Some(PackageManager::Apt),
    );
    let removed: Vec<&Step> = p
        .steps
        .iter()
        .filter(|s| matches!(s, Step::RemovePackages { .. }))
        .collect();
    assert_eq!(removed.len(), 1);
    match removed[0] {
        Step::RemovePackages { packages, cmd } => {
            // the header package was recorded but is gone already
            assert_eq!(packages, &["dkms", "gcc"]);
            assert_eq!(
                cmd.line(),
                "DEBIAN_FRONTEND=noninteractive apt-get purge -y dkms gcc"
            );
        }
        _ => unreachable!(),
    }
    // Without --purge-deps the packages stay and the user is told.
    let p = plan(&everything(), Options::default(), Some(PackageManager::Apt));
    assert!(!p
        .steps
        .iter()
        .any(|s| matches!(s, Step::RemovePackages { .. })));
    assert!(p.warnings.iter().any(|w| w.contains("dkms gcc")), "{p:?}");
}

#[test]
fn nothing_installed_plans_nothing() {
    let found = Found {
        loaded: Some(LoadedToa::NotLoaded),
        ..Found::default()
    };
    let p = plan(
        &found,
        Options { purge_deps: true },
        Some(PackageManager::Apt),
    );
    assert!(p.steps.is_empty());
    assert_eq!(p.render(), "nothing of toa is installed: nothing to do.\n");
}

#[test]
fn a_foreign_module_is_left_loaded() {
    let found = Found {
        loaded: Some(LoadedToa::Foreign {
            version: Some("2.0.0.0".to_owned()),
            srcversion: None,
        }),
        autoload_conf: true,
        ..Found::default()
    };
    let p = plan(&found, Options::default(), None);
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Unload { .. })));
    assert!(p.warnings[0].contains("2.0.0.0"), "{:?}", p.warnings);
    // An older toa of ours that DKMS still knows is unloaded.
    let found = Found {
        dkms_versions: vec!["2.0.0.0".to_owned()],
        ..found
    };
    let p = plan(&found, Options::default(), None);
    assert!(matches!(p.steps[0], Step::Unload { .. }));
}

/// A Debian 12 root with everything toa-install leaves behind after a DKMS
/// install and a prebuilt one.
fn installed_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let v = crate::bundle::VERSION;
    let files: Vec<(String, String)> = vec![
        (
            "etc/os-release".into(),
            "ID=debian\nVERSION_ID=\"12\"\n".into(),
        ),
        ("etc/modules-load.d/toa.conf".into(), "toa\n".into()),
        ("etc/modules-load.d/other.conf".into(), "tun\n".into()),
        (
            "etc/modprobe.d/toa.conf".into(),
            "options toa trusted=10.0.0.0/8\n".into(),
        ),
        (
            format!("usr/src/toa-{v}/dkms.conf"),
            crate::plan::dkms_conf(),
        ),
        (format!("usr/src/toa-{v}/main.c"), "/* toa */\n".into()),
        (
            "usr/src/linux-headers-6.1.0-27-amd64/Makefile".into(),
            "x\n".into(),
        ),
        (format!("var/lib/dkms/toa/{v}/source"), String::new()),
        (
            format!("lib/modules/{RELEASE}/updates/dkms/toa.ko"),
            "ko".into(),
        ),
        (format!("lib/modules/{RELEASE}/extra/toa.ko"), "ko".into()),
        (
            format!("lib/modules/{RELEASE}/kernel/net/tun.ko"),
            "ko".into(),
        ),
        (
            "var/lib/toa-install/state.json".into(),
            serde_json::to_string(&state_file(&PACKAGES)).unwrap(),
        ),
        ("sys/module/toa/version".into(), format!("{v}\n")),
        ("sys/module/toa/refcnt".into(), "0\n".into()),
    ];
    for (path, contents) in files {
        let p = r.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, contents).unwrap();
    }
    fs::create_dir_all(r.join("sys/module/toa/holders")).unwrap();
    dir
}

fn found_in(root: &Path) -> Found {
    let fs = RootFs::at(root).unwrap();
    let host = FakeHost::new(RELEASE, "#1", "x86_64").with_command(
        "dpkg-query -W -f=${Package} ${db:Status-Abbrev}\\n linux-headers-6.1.0-27-amd64 dkms gcc",
        true,
        "linux-headers-6.1.0-27-amd64 ii \ndkms ii \ngcc ii \n",
    );
    Found::read(&fs, &host, Some(PackageManager::Apt), None)
}

/// Files and directories below `root`.
fn listing(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.insert(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn reads_what_is_installed() {
    let root = installed_root();
    let found = found_in(root.path());
    assert!(found.loaded_is_ours());
    assert!(found.autoload_conf && found.modprobe_conf && found.state_dir);
    assert_eq!(found.dkms_versions, [crate::bundle::VERSION]);
    assert_eq!(
        found.source_dirs,
        [format!("/usr/src/toa-{}", crate::bundle::VERSION)]
    );
    assert_eq!(found.prebuilt, [RELEASE]);
    assert_eq!(found.packages_still_installed.len(), 3);
}

#[test]
fn removes_everything_then_finds_nothing_to_do() {
    let root = installed_root();
    let r = root.path();
    let v = crate::bundle::VERSION;
    let found = found_in(r);
    let p = plan(
        &found,
        Options { purge_deps: true },
        Some(PackageManager::Apt),
    );
    let dkms_dir = format!("/var/lib/dkms/toa/{v}");
    let dkms_ko = format!("/lib/modules/{RELEASE}/updates/dkms/toa.ko");
    let mut fx = FakeEffects::new(r)
        .answer_removing("modprobe -r toa", &["/sys/module/toa"])
        .answer_removing(
            &format!("dkms remove toa/{v} --all"),
            &[&dkms_dir, &dkms_ko],
        );
    let mut lines = Vec::new();
    let outcome = execute(&p, &mut fx, &mut |l: &str| lines.push(l.to_owned())).unwrap();
    assert!(outcome.changed);
    assert_eq!(
        outcome.packages_removed,
        ["linux-headers-6.1.0-27-amd64", "dkms", "gcc"]
    );
    assert_eq!(
        fx.commands,
        [
            "modprobe -r toa".to_owned(),
            format!("dkms remove toa/{v} --all"),
            format!("depmod -a {RELEASE}"),
            "DEBIAN_FRONTEND=noninteractive apt-get purge -y linux-headers-6.1.0-27-amd64 dkms gcc"
                .to_owned(),
        ]
    );
    assert_eq!(lines.len(), p.steps.len());
    let left = listing(r);
    let toa: Vec<&String> = left
        .iter()
        .filter(|p| p.contains("toa") && !p.starts_with("sys"))
        .collect();
    assert!(toa.is_empty(), "left behind: {toa:?}");
    // What is not toa's stays.
    for kept in [
        "etc/modules-load.d/other.conf",
        "usr/src/linux-headers-6.1.0-27-amd64/Makefile",
        "lib/modules/6.1.0-27-amd64/kernel/net/tun.ko",
    ] {
        assert!(left.contains(kept), "{kept} was removed");
    }
    // Idempotent: a second run finds nothing.
    let again = plan(
        &found_in(r),
        Options { purge_deps: true },
        Some(PackageManager::Apt),
    );
    assert!(again.steps.is_empty(), "{again:?}");
    let mut fx = FakeEffects::new(r);
    let outcome = execute(&again, &mut fx, &mut |_: &str| {}).unwrap();
    assert!(!outcome.changed);
    assert!(fx.commands.is_empty());
}

#[test]
fn a_module_in_use_stops_before_anything_is_removed() {
    let root = installed_root();
    let r = root.path();
    fs::create_dir_all(r.join("sys/module/toa/holders/toa_helper")).unwrap();
    let before = listing(r);
    let p = plan(&found_in(r), Options::default(), Some(PackageManager::Apt));
    let mut fx = FakeEffects::new(r).answer(
        "modprobe -r toa",
        false,
        "modprobe: FATAL: Module toa is in use.",
        &[],
    );
    let err = execute(&p, &mut fx, &mut |_: &str| {}).unwrap_err();
    assert_eq!(err.category, Exit::LoadFailed);
    assert!(err.message.contains("toa_helper"), "{}", err.message);
    assert!(
        err.message.contains("Nothing was removed"),
        "{}",
        err.message
    );
    assert_eq!(fx.commands, ["modprobe -r toa"]);
    assert_eq!(listing(r), before);
}

#[test]
fn rmmod_is_tried_when_modprobe_cannot_find_the_module_file() {
    let root = installed_root();
    let r = root.path();
    let p = plan(&found_in(r), Options::default(), Some(PackageManager::Apt));
    let mut fx = FakeEffects::new(r)
        .answer(
            "modprobe -r toa",
            false,
            "modprobe: FATAL: Module toa not found.",
            &[],
        )
        .answer_removing("rmmod toa", &["/sys/module/toa"]);
    execute(&p, &mut fx, &mut |_: &str| {}).unwrap();
    assert_eq!(&fx.commands[..2], ["modprobe -r toa", "rmmod toa"]);
}

#[test]
fn dry_run_without_root_changes_nothing() {
    let root = installed_root();
    let before = listing(root.path());
    let doc = run(
        &Request {
            purge_deps: true,
            dry_run: true,
            root: Some(root.path().to_path_buf()),
        },
        false,
        &mut |_: &str| {},
    );
    assert_eq!(doc.exit(), Exit::Ok);
    assert!(doc.plan.is_some());
    assert!(doc.steps.iter().any(|s| s.contains("dkms remove")));
    assert_eq!(listing(root.path()), before);
}

#[test]
fn not_root_is_exit_3() {
    let doc = run(&Request::default(), false, &mut |_: &str| {});
    assert_eq!(doc.exit(), Exit::NotRoot);
    let doc = run(
        &Request {
            root: Some("/img".into()),
            ..Request::default()
        },
        true,
        &mut |_: &str| {},
    );
    assert_eq!(doc.exit(), Exit::Usage);
}

#[test]
fn owners_are_parsed() {
    assert_eq!(
        parse_owner(
            PackageManager::Apt,
            "toa-dkms: /usr/src/toa-0.1.0/dkms.conf\n"
        )
        .as_deref(),
        Some("toa-dkms")
    );
    assert_eq!(
        parse_owner(PackageManager::Apt, "toa-dkms:amd64, other: /x\n").as_deref(),
        Some("toa-dkms")
    );
    assert_eq!(
        parse_owner(PackageManager::Dnf, "toa-dkms\n").as_deref(),
        Some("toa-dkms")
    );
    assert_eq!(
        parse_owner(
            PackageManager::Yum,
            "file /usr/src/toa-0.1.0/dkms.conf is not owned by any package\n"
        ),
        None
    );
    assert_eq!(parse_owner(PackageManager::Apt, ""), None);
}

#[test]
fn a_packaged_install_is_left_to_its_package() {
    let root = installed_root();
    let r = root.path();
    let v = crate::bundle::VERSION;
    let fs = RootFs::at(r).unwrap();
    let host = FakeHost::new(RELEASE, "#1", "x86_64").with_command(
        &format!("dpkg-query -S /usr/src/toa-{v}/dkms.conf"),
        true,
        &format!("toa-dkms: /usr/src/toa-{v}/dkms.conf\n"),
    );
    let found = Found::read(&fs, &host, Some(PackageManager::Apt), None);
    assert_eq!(
        found.packaged,
        [(format!("/usr/src/toa-{v}"), "toa-dkms".to_owned())]
    );
    let p = plan(&found, Options::default(), Some(PackageManager::Apt));
    assert!(
        !p.steps.iter().any(|s| matches!(s, Step::DkmsRemove { .. })
            || matches!(s, Step::RemoveTree { path, .. } if path.starts_with("/usr/src"))),
        "{p:?}"
    );
    // Its own files toa-install still removes.
    assert!(p.steps.iter().any(
        |s| matches!(s, Step::RemoveFile { path, .. } if path == "/etc/modules-load.d/toa.conf")
    ));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("toa-dkms") && w.contains("apt-get purge toa-dkms")),
        "{:?}",
        p.warnings
    );
}

/// An uninstall whose `dkms remove` fails, as `verbosity` shows it (each
/// on a fresh installed root).
fn failing_uninstall_transcript(verbosity: Verbosity) -> String {
    let root = installed_root();
    let found = found_in(root.path());
    let mut fx = FakeEffects::new(root.path())
        .answer(
            "dkms remove",
            false,
            "Error! Could not remove: the tree is locked",
            &[],
        )
        .answer_removing("modprobe -r toa", &["/sys/module/toa"]);
    let mut reporter = Reporter::new(Vec::new(), Display::Lines, verbosity);
    let p = plan(&found, Options::default(), Some(PackageManager::Apt));
    let err = execute(&p, &mut fx, &mut reporter).unwrap_err();
    assert_eq!(err.category, Exit::BuildFailed);
    String::from_utf8(reporter.into_inner()).unwrap()
}

#[test]
fn verbose_uninstall_shows_each_command_and_why_it_failed() {
    let verbose = failing_uninstall_transcript(Verbosity::Verbose);
    assert!(
        verbose.contains("s]   running: modprobe -r toa\n"),
        "{verbose}"
    );
    assert!(verbose.contains("s: modprobe -r toa\n"), "{verbose}");
    let dkms = format!("dkms remove toa/{} --all", crate::bundle::VERSION);
    assert!(
        verbose.contains(&format!("s]   running: {dkms}\n")),
        "{verbose}"
    );
    assert!(
        verbose.contains(&format!("s: {dkms}\n")) && verbose.contains("failed (exit status 1) in "),
        "{verbose}"
    );
    assert!(
        verbose.contains("s]     | Error! Could not remove: the tree is locked\n"),
        "{verbose}"
    );
    let normal = failing_uninstall_transcript(Verbosity::Normal);
    assert!(!normal.contains("running:"), "{normal}");
    assert!(normal.contains("] [1/"), "{normal}");
    assert!(failing_uninstall_transcript(Verbosity::Quiet).is_empty());
}

fn ebpf_installed() -> Found {
    Found {
        state: Some(StateFile {
            source: crate::state::Source::Ebpf,
            ..state_file(&[])
        }),
        state_dir: true,
        ebpf: EbpfFound {
            pinned: true,
            unit: true,
            enabled: true,
            loader: true,
            systemd: true,
        },
        ..Found::default()
    }
}

#[test]
fn ebpf_snapshot() {
    let p = plan(
        &ebpf_installed(),
        Options::default(),
        Some(PackageManager::Apt),
    );
    snapshot("ebpf", &render(&p));
}

#[test]
fn ebpf_is_detached_and_nothing_of_it_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (path, text) in [
        ("etc/systemd/system/toa-ebpf.service", "[Unit]\n"),
        ("usr/local/lib/toa/toa-install", "binary"),
        ("var/lib/toa-install/state.json", "{}"),
    ] {
        fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
        fs::write(root.join(path), text).unwrap();
    }
    let p = plan(
        &ebpf_installed(),
        Options::default(),
        Some(PackageManager::Apt),
    );
    let mut fx = FakeEffects::new(root);
    fx.ebpf = Some(vec!["10.0.0.0/8".to_owned()]);
    let mut progress = |_: &str| {};
    let outcome = execute(&p, &mut fx, &mut progress).unwrap();
    assert!(outcome.changed);
    assert_eq!(fx.ebpf, None);
    assert_eq!(
        fx.commands,
        [
            "systemctl disable --now toa-ebpf.service",
            "systemctl daemon-reload",
            "ebpf detach"
        ]
    );
    assert!(!root.join("etc/systemd/system/toa-ebpf.service").exists());
    assert!(!root.join("usr/local/lib/toa").exists());
    assert!(!root.join("var/lib/toa-install").exists());
}

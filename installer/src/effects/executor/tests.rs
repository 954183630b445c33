//! The executor against a temporary root and scripted commands.

use super::*;
use crate::commands::detect::Verbosity;
use crate::commands::detect::{self, Target};
use crate::effects::fake::FakeEffects;
use crate::effects::progress::{Display, Reporter};
use crate::plan::{self, Facts, MirrorSource, Options, State};
use crate::state::StateFile;
use crate::system::distro::table::lookup;
use crate::system::kernel::{ArchSource, KernelInfo, ReleaseSource};
use crate::system::security::{OurModule, SecurityState};
use crate::system::sysroot::fake::FakeHost;
use crate::system::sysroot::RootFs;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

const RELEASE: &str = "6.1.0-27-amd64";
const DKMS: &str = "/var/lib/dkms/toa/0.1.0";

struct Verdict(Result<(), String>, AtomicUsize);
impl Verifier for Verdict {
    fn verify(&self, _trusted: Option<&[String]>) -> Result<(), VerifyFailure> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.clone().map_err(Into::into)
    }
}
fn pass() -> Verdict {
    Verdict(Ok(()), AtomicUsize::new(0))
}

struct Fetch(Result<PathBuf, String>);
impl Fetcher for Fetch {
    fn fetch(&self, _step: &Step) -> Result<PathBuf, FetchFailure> {
        self.0.clone().map_err(Into::into)
    }
}
fn no_prebuilt() -> Fetch {
    Fetch(Err(
        "no prebuilt toa.ko for 6.1.0-27-amd64 (x86_64) in https://m.example".to_owned(),
    ))
}

/// A Debian 12 image: the directories its packages own, an old
/// /etc/modprobe.d/toa.conf the run will replace.
fn debian_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for d in [
        "etc/modprobe.d",
        "var/lib/dkms",
        "usr/src",
        "sys/module",
        "lib/modules",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(
        r.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    let old = r.join("etc/modprobe.d/toa.conf");
    fs::write(&old, "options toa trusted=192.0.2.0/24\n").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o640)).unwrap();
    fs::create_dir_all(r.join(format!("lib/modules/{RELEASE}/build"))).unwrap();
    dir
}

/// Every file and directory below `root` with its content and mode.
fn tree(root: &Path) -> BTreeMap<String, (Option<Vec<u8>>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                stack.push(path);
                out.insert(rel, (None, meta.permissions().mode()));
            } else {
                out.insert(
                    rel,
                    (Some(fs::read(&path).unwrap()), meta.permissions().mode()),
                );
            }
        }
    }
    out
}

/// Facts and state read from the root, as the CLI does.
fn facts_and_state(root: &Path, host: &FakeHost) -> (Facts, State) {
    let fs = RootFs::at(root).unwrap();
    let ours = OurModule::this_release();
    let report = detect::detect(
        Target {
            fs: &fs,
            host,
            live: false,
            kernel_release: Some(RELEASE),
            ours: &ours,
        },
        String::new(),
    );
    assert!(report.supported, "{report:?}");
    let facts = Facts {
        row: lookup("debian", 12).unwrap(),
        version_id: Some("12".to_owned()),
        kernel: KernelInfo {
            release: RELEASE.to_owned(),
            version: None,
            arch: "x86_64".to_owned(),
            release_source: ReleaseSource::Argument,
            arch_source: ArchSource::Release,
        },
        security: SecurityState::inspect(&fs, host, false, None, &ours),
    };
    let state = State::read(&fs, host, &facts, None);
    (facts, state)
}

fn host_with_packages() -> FakeHost {
    FakeHost::new(RELEASE, "#1", "x86_64").with_command(
        "dpkg-query -W -f=${Package} ${db:Status-Abbrev}\\n linux-headers-6.1.0-27-amd64 gcc make dkms",
        true,
        "linux-headers-6.1.0-27-amd64 ii \ngcc ii \nmake ii \ndkms ii \n",
    )
}

fn trust() -> Options {
    Options {
        trust: Some(vec!["10.0.0.0/8".to_owned()]),
        ..Options::default()
    }
}

/// Commands behave like DKMS and modprobe do on disk.
fn working_dkms(root: &Path) -> FakeEffects {
    FakeEffects::new(root)
        .answer("dkms add", true, "", &[(&format!("{DKMS}/source"), "")])
        .answer(
            "dkms build",
            true,
            "",
            &[(&format!("{DKMS}/{RELEASE}/x86_64/module/toa.ko"), "ko")],
        )
        .answer(
            "dkms install",
            true,
            "",
            &[(&format!("/var/lib/dkms/toa/kernel-{RELEASE}-x86_64"), "")],
        )
        .answer(
            "modprobe toa",
            true,
            "",
            &[
                ("/sys/module/toa/version", "0.1.0\n"),
                ("/sys/module/toa/parameters/trusted", "10.0.0.0/8\n"),
            ],
        )
        .answer_removing("dkms remove", &["/var/lib/dkms/toa"])
        .answer_removing("modprobe -r toa", &["/sys/module/toa"])
}

fn execute_with(
    plan: &Plan,
    fx: &mut dyn Effects,
    fetch: &Fetch,
    verdict: &Verdict,
) -> (Result<Outcome, ExecError>, Vec<String>) {
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    let mut services = Services {
        fetcher: fetch,
        verifier: verdict,
        trusted: Some(vec!["10.0.0.0/8".to_owned()]),
        progress: &mut progress,
    };
    let result = execute(plan, fx, &mut services);
    (result, lines)
}

/// The compile plan for a Debian root without packages, and effects under
/// which `dkms build` fails, leaving `make_log` as DKMS's make.log.
fn failing_build(root: &Path, make_log: &str) -> (Plan, FakeEffects) {
    let host = FakeHost::new(RELEASE, "#1", "x86_64");
    let (facts, state) = facts_and_state(root, &host);
    let plan = plan::plan(&facts, &trust(), &state).unwrap();
    let log_path = format!("{DKMS}/build/make.log");
    let fx = working_dkms(root).answer(
        "dkms build",
        false,
        "Error! Bad return status for module build on kernel: 6.1.0-27-amd64 (x86_64)",
        &[(&log_path, make_log)],
    );
    (plan, fx)
}

#[test]
fn a_failed_build_leaves_the_root_byte_identical() {
    let dir = debian_root();
    let root = dir.path();
    let before = tree(root);
    let (plan, mut fx) = failing_build(
        root,
        "CC [M] main.o\nmain.c:12:1: error: unknown type name 'kprobe'\nmake: *** [Makefile:14] Error 2\n",
    );
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let err = result.unwrap_err();
    assert_eq!(err.category, Exit::BuildFailed);
    assert_eq!(err.category.code(), 7);
    assert!(
        err.message.contains("unknown type name 'kprobe'"),
        "{}",
        err.message
    );
    assert!(err
        .message
        .contains("/var/lib/dkms/toa/0.1.0/build/make.log"));
    assert!(err.undo_problems.is_empty(), "{:?}", err.undo_problems);
    assert_eq!(
        err.packages_kept,
        ["linux-headers-6.1.0-27-amd64", "gcc", "make", "dkms"]
    );
    assert!(
        fx.commands
            .contains(&"dkms remove -m toa -v 0.1.0 --all".to_owned()),
        "{:?}",
        fx.commands
    );
    assert_eq!(tree(root), before);
}

#[test]
fn a_failed_verify_unloads_and_writes_nothing_persistent() {
    let dir = debian_root();
    let root = dir.path();
    let before = tree(root);
    let host = host_with_packages();
    let (facts, state) = facts_and_state(root, &host);
    let plan = plan::plan(&facts, &trust(), &state).unwrap();
    let mut fx = working_dkms(root);
    let verdict = Verdict(
        Err("accept() returned 198.51.100.2:40000, not 203.0.113.7:51000".to_owned()),
        AtomicUsize::new(0),
    );
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &verdict);
    let err = result.unwrap_err();
    assert_eq!(err.category, Exit::VerifyFailed);
    assert!(err.packages_kept.is_empty());
    let tail: Vec<&str> = fx
        .commands
        .iter()
        .rev()
        .take(2)
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        ["dkms remove -m toa -v 0.1.0 --all", "modprobe -r toa"]
    );
    assert_eq!(tree(root), before);
}

#[test]
fn a_second_run_changes_nothing() {
    let dir = debian_root();
    let root = dir.path();
    let host = host_with_packages();
    let (facts, state) = facts_and_state(root, &host);
    let plan = plan::plan(&facts, &trust(), &state).unwrap();
    let mut fx = working_dkms(root);
    let (result, lines) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let outcome = result.unwrap();
    assert!(outcome.changed);
    assert_eq!(outcome.source, Source::Dkms);
    assert!(
        lines[0].starts_with("[1/10] copy the bundled module source"),
        "{lines:?}"
    );
    assert!(!root.join("var/lib/toa-install/undo.json").exists());
    assert_eq!(
        fs::read_to_string(root.join("etc/modprobe.d/toa.conf")).unwrap(),
        plan::modprobe_conf(&["10.0.0.0/8".to_owned()])
    );
    let recorded: StateFile =
        serde_json::from_slice(&fs::read(root.join("var/lib/toa-install/state.json")).unwrap())
            .unwrap();
    assert_eq!(recorded.source, Source::Dkms);
    assert_eq!(recorded.kernel_release, RELEASE);

    let (facts, state) = facts_and_state(root, &host);
    let again = plan::plan(&facts, &trust(), &state).unwrap();
    assert!(again.changes_nothing(), "{}", again.render());
    let before = tree(root);
    let mut fx = FakeEffects::new(root);
    let (result, _) = execute_with(&again, &mut fx, &no_prebuilt(), &pass());
    assert!(!result.unwrap().changed);
    assert!(fx.commands.is_empty());
    assert_eq!(tree(root), before);
}

#[test]
fn prebuilt_failure_falls_back_to_compile() {
    let dir = debian_root();
    let root = dir.path();
    let host = host_with_packages();
    let (facts, state) = facts_and_state(root, &host);
    let options = Options {
        mirrors: vec![MirrorSource::Url("https://m.example".to_owned())],
        ..trust()
    };
    let plan = plan::plan(&facts, &options, &state).unwrap();
    let mut fx = working_dkms(root);
    let (result, lines) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let outcome = result.unwrap();
    assert_eq!(outcome.source, Source::Dkms);
    assert_eq!(
        outcome.warnings,
        ["no prebuilt toa.ko for 6.1.0-27-amd64 (x86_64) in https://m.example Compiling through DKMS instead."]
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("Compiling through DKMS instead")));

    // --prebuilt-only: exit 6 and nothing changed.
    let dir = debian_root();
    let before = tree(dir.path());
    let only = Options {
        prebuilt_only: true,
        ..options
    };
    let plan = plan::plan(&facts, &only, &state).unwrap();
    let mut fx = working_dkms(dir.path());
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let err = result.unwrap_err();
    assert_eq!(err.category.code(), 6);
    assert!(err.message.contains("--prebuilt-only"), "{}", err.message);
    assert!(fx.commands.is_empty());
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn prebuilt_is_installed_and_indexed() {
    let dir = debian_root();
    let root = dir.path();
    let host = host_with_packages();
    let (facts, state) = facts_and_state(root, &host);
    let options = Options {
        mirrors: vec![MirrorSource::Dir("/srv/mirror".to_owned())],
        ..Options::default()
    };
    let plan = plan::plan(&facts, &options, &state).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let ko = scratch.path().join("toa.ko");
    let module = crate::system::modinfo::fixture_ko(&[
        ("version", "0.1.0"),
        ("srcversion", "0123456789ABCDEF0123456"),
        ("vermagic", "6.1.0-27-amd64 SMP mod_unload "),
    ]);
    fs::write(&ko, &module).unwrap();
    let mut fx = working_dkms(root);
    let (result, _) = execute_with(&plan, &mut fx, &Fetch(Ok(ko)), &pass());
    let outcome = result.unwrap();
    assert_eq!(outcome.source, Source::Prebuilt);
    // One timing per step carried out; only commands count as external.
    assert_eq!(outcome.timings.len(), outcome.steps.len());
    for t in &outcome.timings {
        assert!(t.external_millis <= t.millis, "{t:?}");
        if !t.step.starts_with("update the module index") && !t.step.starts_with("load the module")
        {
            assert_eq!(t.external_millis, 0, "{t:?}");
        }
    }
    let installed = root.join(format!("lib/modules/{RELEASE}/extra/toa.ko"));
    assert_eq!(fs::read(&installed).unwrap(), module);
    assert_eq!(
        fx.commands,
        ["depmod -a 6.1.0-27-amd64", "modprobe toa"],
        "no compiler, no package manager"
    );
    // The record names the file by its srcversion, so the next run knows
    // the toa.ko at extra/ for a prebuilt it copied, not DKMS's.
    let recorded: StateFile =
        serde_json::from_slice(&fs::read(root.join("var/lib/toa-install/state.json")).unwrap())
            .unwrap();
    assert_eq!(recorded.source, Source::Prebuilt);
    assert_eq!(
        recorded.srcversion.as_deref(),
        Some("0123456789ABCDEF0123456")
    );
    let (facts, state) = facts_and_state(root, &host);
    assert_eq!(state.installed, crate::system::installed::Owner::Prebuilt);
    assert!(state.recorded);
    let again = plan::plan(&facts, &options, &state).unwrap();
    assert!(
        !again
            .steps
            .iter()
            .any(|s| matches!(s, Step::FetchPrebuilt { .. })),
        "{}",
        again.render()
    );
}

#[test]
fn load_refused_by_signature_is_exit_8_and_undone() {
    let dir = debian_root();
    let root = dir.path();
    let before = tree(root);
    let host = host_with_packages();
    let (facts, state) = facts_and_state(root, &host);
    let plan = plan::plan(&facts, &trust(), &state).unwrap();
    let mut fx = working_dkms(root).answer(
        "modprobe toa",
        false,
        "modprobe: ERROR: could not insert 'toa': Key was rejected by service\n",
        &[],
    );
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let err = result.unwrap_err();
    assert_eq!(err.category.code(), 8);
    assert!(err.message.contains("Key was rejected"), "{}", err.message);
    assert!(!fx.commands.contains(&"modprobe -r toa".to_owned()));
    assert_eq!(tree(root), before);
}

#[test]
fn missing_header_package_is_explained() {
    let dir = debian_root();
    let root = dir.path();
    let before = tree(root);
    let host = FakeHost::new(RELEASE, "#1", "x86_64");
    let (facts, state) = facts_and_state(root, &host);
    let plan = plan::plan(&facts, &trust(), &state).unwrap();
    let mut fx = FakeEffects::new(root).answer(
        "DEBIAN_FRONTEND=noninteractive apt-get install",
        false,
        "E: Unable to locate package linux-headers-6.1.0-27-amd64\n",
        &[],
    );
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let err = result.unwrap_err();
    assert_eq!(err.category.code(), 5);
    assert!(
        err.message.contains("linux-headers-6.1.0-27-amd64 for the running kernel is not in the configured repositories"),
        "{}",
        err.message
    );
    assert_eq!(tree(root), before);
}

#[test]
fn distribution_and_custom_kernel_releases() {
    for release in [
        "3.10.0-1160.119.1.el7.x86_64",
        "5.14.0-362.8.1.el9_3.x86_64+debug",
        "4.14.105-19-0024",
        "5.10.134-19.3.1.an8.x86_64",
        "4.19.90-24.4.v2101.ky10.x86_64",
        "6.1.0-27-amd64",
        "6.12.48+deb13-amd64",
        "5.15.0-91-generic",
        "4.19.0-server-amd64",
        "4.19.0-amd64-desktop",
        "5.14.21-150500.55.39-default",
    ] {
        assert!(super::is_distribution_release(release), "{release}");
    }
    for release in [
        "6.6.0",
        "6.6.0+",
        "6.6.0-custom",
        "6.1.0-mybuild",
        "6.8.0-rc3",
    ] {
        assert!(!super::is_distribution_release(release), "{release}");
    }
    assert_eq!(
        super::header_release("kernel-devel-6.6.0-custom"),
        Some("6.6.0-custom")
    );
    assert_eq!(
        super::header_release("kernel-default-devel-5.14.21-150500.55.39"),
        None
    );
}

/// The exit-5 message for a header package the repositories cannot have.
fn missing_headers_message(packages: &[&str], manager_output: &str) -> String {
    let packages: Vec<String> = packages.iter().map(|p| (*p).to_owned()).collect();
    let cmd = crate::plan::Cmd::new("dnf", &["install", "-y"], std::time::Duration::from_secs(1));
    let out = crate::effects::runner::Output {
        success: false,
        code: Some(1),
        stdout: String::new(),
        stderr: manager_output.to_owned(),
    };
    super::packages_failed(&packages, &cmd, &out)
}

#[test]
fn missing_headers_of_a_custom_kernel_point_at_its_build_tree() {
    for (header, output) in [
        (
            "kernel-devel-6.6.0-custom",
            "No match for argument: kernel-devel-6.6.0-custom\n",
        ),
        (
            "linux-headers-6.1.0-mybuild",
            "E: Unable to locate package linux-headers-6.1.0-mybuild\n",
        ),
    ] {
        let message = missing_headers_message(&[header, "gcc", "dkms"], output);
        for needle in [
            "not named like the distribution's own kernels",
            "make KDIR=<build tree>",
            "toa-install mirror build --kernel-tree <build tree>",
            "--offline <dir>",
        ] {
            assert!(message.contains(needle), "{needle} not in: {message}");
        }
    }
    // A distribution kernel keeps the old advice (update and reboot).
    let message = missing_headers_message(
        &["kernel-devel-3.10.0-1160.el7.x86_64"],
        "No package kernel-devel-3.10.0-1160.el7.x86_64 available.\n",
    );
    assert!(
        message.contains("update the kernel and reboot"),
        "{message}"
    );
    assert!(!message.contains("KDIR"), "{message}");
}

/// A failed build as each verbosity shows it: the reporter writes to
/// memory; the timestamps are cut off.
fn failed_build_transcript(display: Display, verbosity: Verbosity) -> Vec<String> {
    let dir = debian_root();
    let (plan, mut fx) = failing_build(dir.path(), "make: *** Error 2\n");
    let mut reporter = Reporter::new(Vec::new(), display, verbosity);
    let mut services = Services {
        fetcher: &no_prebuilt(),
        verifier: &pass(),
        trusted: None,
        progress: &mut reporter,
    };
    let err = execute(&plan, &mut fx, &mut services).unwrap_err();
    assert_eq!(err.category, Exit::BuildFailed);
    // Whatever the display, no spinner outlives the failed command.
    assert!(!reporter.spinning());
    String::from_utf8(reporter.into_inner())
        .unwrap()
        .lines()
        .map(|l| l.split_once("s] ").unwrap().1.to_owned())
        .collect()
}

#[test]
fn quiet_runs_print_nothing_even_when_they_fail() {
    for display in [Display::Bar, Display::Lines] {
        assert!(failed_build_transcript(display, Verbosity::Quiet).is_empty());
    }
}

#[test]
fn normal_runs_print_one_line_per_step_and_no_commands() {
    let lines = failed_build_transcript(Display::Lines, Verbosity::Normal);
    assert!(lines.iter().all(|l| l.starts_with('[')), "{lines:#?}");
    assert!(
        lines.last().unwrap().contains("build toa.ko: dkms build"),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("running:")));
}

#[test]
fn verbose_runs_show_each_command_its_time_and_a_failure_s_output() {
    let lines = failed_build_transcript(Display::Lines, Verbosity::Verbose);
    let build = "dkms build -m toa -v 0.1.0 -k 6.1.0-27-amd64";
    let at = lines
        .iter()
        .position(|l| *l == format!("  running: {build}"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        lines[at + 1].starts_with("  failed (exit status 1) in ")
            && lines[at + 1].ends_with(&format!("s: {build}")),
        "{lines:#?}"
    );
    assert_eq!(
        lines[at + 3],
        "    | Error! Bad return status for module build on kernel: 6.1.0-27-amd64 (x86_64)"
    );
    // Commands that worked, with their time, and the undo's own commands.
    assert!(lines
        .iter()
        .any(|l| l.starts_with("  ok in ") && l.ends_with("s: dkms add -m toa -v 0.1.0")));
    assert!(lines
        .iter()
        .any(|l| l == "  running: dkms remove -m toa -v 0.1.0 --all"));
}

/// The eBPF plan for a fresh systemd host (the kernel probed ready).
fn ebpf_plan(root: &Path) -> Plan {
    let host = host_with_packages();
    let (facts, _) = facts_and_state(root, &host);
    let ebpf = crate::system::ebpf::EbpfFacts {
        support: crate::system::ebpf::Support::Ready,
        systemd: true,
        ..Default::default()
    };
    plan::ebpf::plan(&facts, &ebpf, &Default::default(), &trust()).unwrap()
}

#[test]
fn ebpf_attaches_then_persists_the_unit_and_the_loader() {
    let dir = debian_root();
    let root = dir.path();
    let plan = ebpf_plan(root);
    let mut fx = FakeEffects::new(root);
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let outcome = result.unwrap();
    assert!(outcome.changed);
    assert_eq!(fx.ebpf.as_deref(), Some(&["10.0.0.0/8".to_owned()][..]));
    assert_eq!(
        fx.commands,
        [
            "ebpf attach [10.0.0.0/8]",
            "systemctl daemon-reload",
            "systemctl enable --now toa-ebpf.service"
        ]
    );
    let unit = fs::read_to_string(root.join("etc/systemd/system/toa-ebpf.service")).unwrap();
    assert!(unit.contains("attach --trust 10.0.0.0/8"), "{unit}");
    let loader = root.join("usr/local/lib/toa/toa-install");
    assert_eq!(fs::read(&loader).unwrap(), b"toa-install binary");
    assert_eq!(
        fs::metadata(&loader).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let state: StateFile =
        serde_json::from_slice(&fs::read(root.join("var/lib/toa-install/state.json")).unwrap())
            .unwrap();
    assert_eq!(state.source, Source::Ebpf);
}

#[test]
fn ebpf_failed_verify_detaches_and_leaves_nothing() {
    let dir = debian_root();
    let root = dir.path();
    let before = tree(root);
    let plan = ebpf_plan(root);
    let mut fx = FakeEffects::new(root);
    let verdict = Verdict(
        Err("getpeername() returned the proxy".to_owned()),
        AtomicUsize::new(0),
    );
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &verdict);
    let err = result.unwrap_err();
    assert_eq!(err.category, Exit::VerifyFailed);
    assert!(err.undo_problems.is_empty(), "{:?}", err.undo_problems);
    assert_eq!(fx.ebpf, None);
    assert_eq!(fx.commands.last().map(String::as_str), Some("ebpf detach"));
    assert_eq!(tree(root), before);
}

#[test]
fn ebpf_refused_by_the_verifier_is_exit_8_and_leaves_nothing() {
    let dir = debian_root();
    let root = dir.path();
    let before = tree(root);
    let plan = ebpf_plan(root);
    let mut fx = FakeEffects::new(root);
    fx.ebpf_refused = true;
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let err = result.unwrap_err();
    assert_eq!(err.category, Exit::LoadRefused);
    assert!(err.message.contains("toa_sockops"), "{}", err.message);
    assert!(err.message.contains("--backend module"), "{}", err.message);
    assert_eq!(tree(root), before);
}

#[test]
fn ebpf_failed_enable_takes_the_unit_and_the_programs_away() {
    let dir = debian_root();
    let root = dir.path();
    let before = tree(root);
    let plan = ebpf_plan(root);
    let mut fx = FakeEffects::new(root).answer(
        "systemctl enable",
        false,
        "Failed to enable unit: Access denied",
        &[],
    );
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let err = result.unwrap_err();
    assert_eq!(err.category, Exit::PersistFailed);
    assert!(err.message.contains("Access denied"), "{}", err.message);
    assert_eq!(fx.ebpf, None);
    assert_eq!(tree(root), before);
}
mod metrics;

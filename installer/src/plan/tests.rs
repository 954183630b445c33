//! Per-distribution snapshots of what `toa-install --dry-run` prints, and
//! the rules that shape a plan.

use super::*;
use crate::system::distro::table::lookup;
use crate::system::ebpf::EbpfFacts;
use crate::system::kernel::{ArchSource, KernelInfo, ReleaseSource};
use crate::system::security::{LoadedToa, Lockdown, SecureBoot, SecurityState};
use crate::system::sysroot::fake::{FakeHost, MemFs};
use std::time::Duration;

fn security() -> SecurityState {
    SecurityState {
        secure_boot: SecureBoot::Disabled,
        secure_boot_source: None,
        lockdown: Lockdown::None,
        sig_enforce: Some(false),
        suse_gate: None,
        toa_module: LoadedToa::NotLoaded,
    }
}

fn facts(id: &str, version_id: &str, release: &str, version: &str) -> Facts {
    let major = version_id.split('.').next().unwrap().parse().unwrap();
    facts_for(lookup(id, major).unwrap(), version_id, release, version)
}

fn facts_for(
    row: &'static crate::system::distro::DistroRow,
    version_id: &str,
    release: &str,
    version: &str,
) -> Facts {
    Facts {
        row,
        version_id: Some(version_id.to_owned()),
        kernel: KernelInfo {
            release: release.to_owned(),
            version: Some(version.to_owned()),
            arch: "x86_64".to_owned(),
            release_source: ReleaseSource::Uname,
            arch_source: ArchSource::Uname,
        },
        security: security(),
    }
}

fn centos7() -> Facts {
    facts(
        "centos",
        "7",
        "3.10.0-1160.119.1.el7.x86_64",
        "#1 SMP Tue Jun 4 14:43:51 UTC 2024",
    )
}
fn rocky9() -> Facts {
    facts(
        "rocky",
        "9.4",
        "5.14.0-427.13.1.el9_4.x86_64",
        "#1 SMP PREEMPT_DYNAMIC Wed May 1 19:11:28 UTC 2024",
    )
}
fn ubuntu2204() -> Facts {
    facts(
        "ubuntu",
        "22.04",
        "5.15.0-91-generic",
        "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023",
    )
}
fn debian12() -> Facts {
    facts(
        "debian",
        "12",
        "6.1.0-27-amd64",
        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
    )
}
fn sles15() -> Facts {
    let mut f = facts(
        "sles",
        "15.5",
        "5.14.21-150500.55.39-default",
        "#1 SMP PREEMPT_DYNAMIC Thu Nov 9 11:19:51 UTC 2023 (8c0ba94)",
    );
    f.security.suse_gate = Some(crate::system::security::SuseGate {
        kernel_unsupported: Some(1),
        allow_unsupported_modules: Some(true),
        modprobe_conf: Some("/etc/modprobe.d/10-unsupported-modules.conf".to_owned()),
        allowed: true,
    });
    f
}

/// The systems added with issue 10: named rows, UOS's editions (told apart
/// by PLATFORM_ID) and an EL clone known only through ID_LIKE.
fn china_clouds() -> Vec<(&'static str, Facts)> {
    use crate::system::distro::table::{el_default, lookup_platform};
    vec![
        (
            "anolis-8",
            facts(
                "anolis",
                "8.8",
                "5.10.134-19.3.1.an8.x86_64",
                "#1 SMP Sat May 2 16:03:33 CST 2026",
            ),
        ),
        (
            "alinux-2",
            facts(
                "alinux",
                "2.1903",
                "4.19.91-26.6.al7.x86_64",
                "#1 SMP Tue Mar 23 09:55:14 CST 2021",
            ),
        ),
        (
            "alinux-3",
            facts(
                "alinux",
                "3",
                "5.10.134-16.3.al8.x86_64",
                "#1 SMP Fri Dec 8 10:00:00 CST 2023",
            ),
        ),
        (
            "openeuler-22.03",
            facts(
                "openeuler",
                "22.03",
                "5.10.0-182.0.0.95.oe2203sp3.x86_64",
                "#1 SMP Sat Dec 30 13:10:36 CST 2023",
            ),
        ),
        (
            "kylin-v10",
            facts_for(
                lookup("kylin", 10).unwrap(),
                "V10",
                "4.19.90-89.11.v2401.ky10.x86_64",
                "#1 SMP Tue May 7 18:33:01 CST 2024",
            ),
        ),
        (
            "uos-20-uelc20",
            facts_for(
                lookup_platform("uos", 20, Some("platform:uelc20")).unwrap(),
                "20",
                "4.19.0-91.82.42.uelc20.x86_64",
                "#1 SMP Wed Jun 7 10:00:00 CST 2023",
            ),
        ),
        (
            "uos-20-1050d",
            facts_for(
                lookup_platform("uos", 20, None).unwrap(),
                "20",
                "4.19.0-server-amd64",
                "#5104 SMP Wed Jun 7 10:00:00 CST 2023",
            ),
        ),
        (
            "el9-compatible",
            facts_for(
                el_default(9).unwrap(),
                "9.2",
                "5.14.0-284.25.1.el9_2.x86_64",
                "#1 SMP PREEMPT_DYNAMIC Wed Jul 26 10:00:00 UTC 2023",
            ),
        ),
    ]
}

fn compile() -> Options {
    Options {
        compile: true,
        trust: Some(vec!["10.0.0.0/8".to_owned()]),
        ..Options::default()
    }
}

fn prebuilt() -> Options {
    Options {
        mirrors: vec![MirrorSource::Url(
            "https://mirror.example.com/toa".to_owned(),
        )],
        ..Options::default()
    }
}

fn render(facts: &Facts, options: &Options) -> String {
    plan(facts, options, &State::default()).unwrap().render()
}

/// Compares with `src/plan/snapshots/<name>.txt`; `TOA_UPDATE_SNAPSHOTS=1`
/// rewrites the file instead (review the diff before committing it).
fn snapshot(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/plan/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("TOA_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "plan {name} differs from {}; run with TOA_UPDATE_SNAPSHOTS=1 to accept.\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn snapshots_per_distro() {
    for (name, f) in [
        ("centos-7", centos7()),
        ("rocky-9", rocky9()),
        ("ubuntu-22.04", ubuntu2204()),
        ("debian-12", debian12()),
        ("sles-15", sles15()),
    ]
    .into_iter()
    .chain(china_clouds())
    {
        snapshot(&format!("{name}-compile"), &render(&f, &compile()));
        snapshot(&format!("{name}-prebuilt"), &render(&f, &prebuilt()));
    }
}

fn installed_state(facts: &Facts, trusted: &str) -> State {
    State {
        loaded: Some(LoadedToa::Ours {
            version: bundle::VERSION.to_owned(),
        }),
        live_trusted: Some(trusted.to_owned()),
        installed_packages: facts.packages_to_query().into_iter().collect(),
        source_in_place: true,
        dkms_added: true,
        dkms_built: true,
        installed: Owner::Dkms {
            version: bundle::VERSION.to_owned(),
        },
        modprobe_conf: Some(modprobe_conf(&[trusted.to_owned()])),
        autoload_conf: Some(autoload_conf()),
        dkms_signing_key: false,
        recorded: true,
        ebpf: EbpfFacts::default(),
        metrics: Default::default(),
    }
}

#[test]
fn installed_and_loaded_changes_nothing() {
    for f in [centos7(), rocky9(), ubuntu2204(), debian12(), sles15()] {
        let state = installed_state(&f, "10.0.0.0/8");
        for options in [compile(), prebuilt(), Options::default()] {
            let p = plan(&f, &options, &state).unwrap();
            assert!(p.changes_nothing(), "{}", p.render());
            assert_eq!(p.source, Source::Installed);
        }
    }
    let p = plan(
        &debian12(),
        &compile(),
        &installed_state(&debian12(), "10.0.0.0/8"),
    )
    .unwrap();
    assert_eq!(
        p.render(),
        "toa 0.1.0 is already installed and loaded for 6.1.0-27-amd64 on Debian 10-13: nothing to do.\n"
    );
}

#[test]
fn new_trust_on_a_loaded_module_is_applied_live_then_persisted() {
    let f = debian12();
    let state = installed_state(&f, "10.0.0.0/8");
    let options = Options {
        trust: Some(vec!["192.0.2.0/24".to_owned(), "2001:db8::/32".to_owned()]),
        ..Options::default()
    };
    let p = plan(&f, &options, &state).unwrap();
    snapshot("debian-12-new-trust", &p.render());
}

#[test]
fn a_run_killed_before_persisting_converges() {
    // Loaded and verified, but killed before the autoload file was written.
    let f = rocky9();
    let mut state = installed_state(&f, "");
    state.modprobe_conf = None;
    state.autoload_conf = None;
    state.recorded = false;
    let p = plan(&f, &Options::default(), &state).unwrap();
    let kinds: Vec<String> = p.steps.iter().map(Step::summary).collect();
    assert_eq!(
        kinds,
        [
            "verify: TOA handshakes over IPv4 and IPv6 in a private network namespace must reach accept() and getpeername()",
            "write /etc/modules-load.d/toa.conf (mode 0644)",
            "record the installation (dkms) in /var/lib/toa-install/state.json",
        ]
    );
}

#[test]
fn installed_but_not_loaded_only_loads() {
    let f = centos7();
    let mut state = installed_state(&f, "");
    state.loaded = Some(LoadedToa::NotLoaded);
    state.live_trusted = None;
    let p = plan(&f, &prebuilt(), &state).unwrap();
    assert_eq!(p.source, Source::Installed);
    assert!(p.fallback.is_none());
    assert!(matches!(p.steps[0], Step::Load { .. }), "{}", p.render());
    assert_eq!(
        p.steps[0].summary(),
        "load the module: modprobe toa  [timeout 1m]"
    );
}

#[test]
fn only_missing_packages_are_installed() {
    let f = centos7();
    let mut state = State {
        installed_packages: ["gcc", "make", "epel-release"]
            .map(String::from)
            .into_iter()
            .collect(),
        dkms_added: true,
        ..State::default()
    };
    let p = plan(&f, &compile(), &state).unwrap();
    let first = p.steps[0].summary();
    assert_eq!(
        first,
        "install the kernel headers, compiler and dkms: yum install -y kernel-devel-3.10.0-1160.119.1.el7.x86_64 dkms  [timeout 30m]"
    );
    assert!(!p.steps.iter().any(|s| matches!(s, Step::DkmsAdd { .. })));
    // dkms already there: EPEL is not needed.
    state.installed_packages.remove("epel-release");
    state.installed_packages.insert("dkms".to_owned());
    let p = plan(&f, &compile(), &state).unwrap();
    assert!(!p.render().contains("epel-release"), "{}", p.render());
}

#[test]
fn rhel_gets_epel_from_its_url() {
    let f = facts("rhel", "8.9", "4.18.0-513.el8_9.x86_64", "#1 SMP");
    let p = plan(&f, &compile(), &State::default()).unwrap();
    assert_eq!(
        p.steps[0].summary(),
        "install EPEL, which carries dkms: dnf install -y https://dl.fedoraproject.org/pub/epel/epel-release-latest-8.noarch.rpm  [timeout 30m]"
    );
}

#[test]
fn prebuilt_only_has_no_fallback_and_needs_a_mirror() {
    let options = Options {
        prebuilt_only: true,
        ..prebuilt()
    };
    let p = plan(&debian12(), &options, &State::default()).unwrap();
    assert!(p.fallback.is_none());
    assert!(!p.render().contains("dkms"));
    let err = plan(
        &debian12(),
        &Options {
            prebuilt_only: true,
            ..Options::default()
        },
        &State::default(),
    )
    .unwrap_err();
    assert_eq!(err, PlanError::NoMirror);
    assert_eq!(err.category(), Exit::Usage);
    let both = Options {
        compile: true,
        prebuilt_only: true,
        ..prebuilt()
    };
    assert_eq!(
        plan(&debian12(), &both, &State::default()).unwrap_err(),
        PlanError::CompileAndPrebuiltOnly
    );
}

#[test]
fn no_mirror_means_compile() {
    let p = plan(&debian12(), &Options::default(), &State::default()).unwrap();
    assert_eq!(p.source, Source::Dkms);
    assert!(p.fallback.is_none());
}

#[test]
fn foreign_module_is_a_conflict_before_anything() {
    let mut f = ubuntu2204();
    f.security.toa_module = LoadedToa::Foreign {
        version: Some("2.0.0.0".to_owned()),
        srcversion: Some("ABCDEF".to_owned()),
    };
    let err = plan(&f, &compile(), &State::default()).unwrap_err();
    assert_eq!(err.category(), Exit::Conflict);
    assert!(err.to_string().contains("rmmod toa"), "{err}");
}

#[test]
fn signatures_required() {
    let mut f = debian12();
    f.security.lockdown = Lockdown::Integrity;
    // No DKMS key: neither path can produce a module the kernel accepts.
    for options in [compile(), prebuilt()] {
        let err = plan(&f, &options, &State::default()).unwrap_err();
        assert_eq!(err.category(), Exit::LoadRefused, "{err}");
    }
    // With a DKMS key the compile path signs; the prebuilt is skipped.
    let state = State {
        dkms_signing_key: true,
        ..State::default()
    };
    let p = plan(&f, &prebuilt(), &state).unwrap();
    assert_eq!(p.source, Source::Dkms);
    let err = plan(
        &f,
        &Options {
            prebuilt_only: true,
            ..prebuilt()
        },
        &state,
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::PrebuiltUnsigned { .. }));
    assert!(err.to_string().contains("--compile"), "{err}");
}

#[test]
fn suse_gate_closed_is_refused_up_front() {
    let mut f = sles15();
    if let Some(gate) = f.security.suse_gate.as_mut() {
        gate.kernel_unsupported = Some(0);
        gate.allowed = false;
    }
    let err = plan(&f, &compile(), &State::default()).unwrap_err();
    assert_eq!(err.category(), Exit::LoadRefused);
    assert!(err.to_string().contains("allow_unsupported_modules 1"));
}

#[test]
fn state_is_read_through_the_traits() {
    let f = debian12();
    let src = source_dir();
    let mut fs = MemFs::new()
        .with("/sys/module/toa/parameters/trusted", "10.0.0.0/8\n")
        .with(&format!("{src}/dkms.conf"), dkms_conf())
        .with("/var/lib/dkms/toa/0.1.0/source", "")
        .with(
            "/var/lib/dkms/toa/0.1.0/6.1.0-27-amd64/x86_64/module/toa.ko.xz",
            "",
        )
        .with("/var/lib/dkms/toa/kernel-6.1.0-27-amd64-x86_64", "")
        .with("/etc/modules-load.d/toa.conf", autoload_conf());
    for file in MODULE_SOURCE {
        fs = fs.with(&format!("{src}/{}", file.path), file.contents);
    }
    let host = FakeHost::new("6.1.0-27-amd64", "#1", "x86_64").with_command(
        "dpkg-query -W -f=${Package} ${db:Status-Abbrev}\\n linux-headers-6.1.0-27-amd64 gcc make dkms",
        false,
        "linux-headers-6.1.0-27-amd64 ii \ngcc ii \nmake rc \n",
    );
    let state = State::read(&fs, &host, &f, None);
    assert_eq!(state.live_trusted.as_deref(), Some("10.0.0.0/8"));
    assert!(state.source_in_place);
    assert!(state.dkms_added && state.dkms_built);
    assert_eq!(
        state.installed,
        Owner::Dkms {
            version: "0.1.0".to_owned()
        }
    );
    assert_eq!(
        state.installed_packages,
        ["gcc", "linux-headers-6.1.0-27-amd64"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert!(state.autoload_conf.is_some() && state.modprobe_conf.is_none());
    // One changed source byte and the source is rewritten.
    let fs = fs.with(&format!("{src}/main.c"), "changed");
    assert!(!State::read(&fs, &host, &f, None).source_in_place);
}

#[test]
fn rpm_query_output() {
    let asked: Vec<String> = ["kernel-devel-3.10.0-1160.el7.x86_64", "gcc", "dkms"]
        .map(String::from)
        .to_vec();
    let out = "kernel-devel-3.10.0-1160.el7.x86_64\ngcc-4.8.5-44.el7.x86_64\npackage dkms is not installed\n";
    let got = parse_rpm_query(&asked, out);
    assert!(got.contains("gcc") && got.contains("kernel-devel-3.10.0-1160.el7.x86_64"));
    assert!(!got.contains("dkms"));
    // Output that does not line up is not trusted: everything is missing.
    assert!(parse_rpm_query(&asked, "gcc\n").is_empty());
}

#[test]
fn trust_values() {
    assert_eq!(parse_cidr("10.0.0.0/8").unwrap(), "10.0.0.0/8");
    assert_eq!(parse_cidr("192.0.2.7").unwrap(), "192.0.2.7/32");
    assert_eq!(parse_cidr("2001:db8::/32").unwrap(), "2001:db8::/32");
    assert!(parse_cidr("10.0.0.0/33")
        .unwrap_err()
        .to_string()
        .contains("0 to 32"));
    assert!(parse_cidr("proxy.example.com").is_err());
    assert!(parse_cidr("10.0.0.0/8,10.1.0.0/16").is_err());
}

#[test]
fn commands_are_shell_quoted() {
    let cmd = Cmd::new(
        "echo",
        &["a b", "it's", "plain-1.0"],
        Duration::from_secs(90),
    );
    assert_eq!(
        cmd.to_string(),
        r"echo 'a b' 'it'\''s' plain-1.0  [timeout 1m30s]"
    );
    assert_eq!(human_duration(Duration::from_secs(3600 * 2)), "2h");
}

mod ebpf {
    use super::*;
    use crate::layout::{EBPF_LOADER, EBPF_UNIT};
    use crate::plan::ebpf::{unit, unit_trusted};
    use crate::system::ebpf::Support;

    fn ebpf_plan(f: &Facts, e: &EbpfFacts, o: &Options) -> Result<Plan, PlanError> {
        crate::plan::ebpf::plan(f, e, &Default::default(), o)
    }

    fn fresh() -> EbpfFacts {
        EbpfFacts {
            support: Support::Ready,
            systemd: true,
            ..EbpfFacts::default()
        }
    }

    fn trust(list: &[&str]) -> Options {
        Options {
            trust: Some(list.iter().map(|s| (*s).to_owned()).collect()),
            ..Options::default()
        }
    }

    fn in_place(trusted: &[&str]) -> EbpfFacts {
        let list: Vec<String> = trusted.iter().map(|s| (*s).to_owned()).collect();
        EbpfFacts {
            pinned: true,
            attached: true,
            live_trusted: Some(list.clone()),
            unit: Some(unit(&list)),
            unit_enabled: true,
            loader_current: true,
            loader_present: true,
            recorded: true,
            ..fresh()
        }
    }

    fn kinds(p: &Plan) -> Vec<&'static str> {
        p.steps
            .iter()
            .map(|s| match s {
                Step::AttachEbpf { .. } => "attach",
                Step::SetEbpfTrusted { .. } => "trust",
                Step::Verify => "verify",
                Step::CopyLoader { .. } => "loader",
                Step::WriteFile { .. } => "unit",
                Step::Systemctl { cmd, .. } if cmd.args[0] == "daemon-reload" => "reload",
                Step::Systemctl { cmd, .. } => match cmd.args[0].as_str() {
                    "enable" => "enable",
                    "restart" => "restart",
                    _ => "other",
                },
                Step::RecordState { .. } => "record",
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn fresh_host_attaches_verifies_then_persists() {
        let f = debian12();
        let p = ebpf_plan(&f, &fresh(), &trust(&["10.0.0.0/8"])).unwrap();
        assert_eq!(p.source, Source::Ebpf);
        assert_eq!(
            kinds(&p),
            ["attach", "verify", "loader", "unit", "reload", "enable", "record"]
        );
        assert!(matches!(&p.steps[0], Step::AttachEbpf { trusted } if trusted == &["10.0.0.0/8"]));
        match &p.steps[3] {
            Step::WriteFile { path, contents, .. } => {
                assert_eq!(path, EBPF_UNIT);
                assert!(contents.contains(&format!(
                    "ExecStart={EBPF_LOADER} attach --trust 10.0.0.0/8\n"
                )));
                assert!(contents.contains("Before=network-pre.target"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn second_run_changes_nothing() {
        let f = debian12();
        let facts = in_place(&["10.0.0.0/8"]);
        for options in [trust(&["10.0.0.0/8"]), Options::default()] {
            let p = ebpf_plan(&f, &facts, &options).unwrap();
            assert!(p.changes_nothing(), "{}", p.render());
        }
    }

    #[test]
    fn new_trust_is_applied_live_and_for_boot() {
        let f = debian12();
        let p = ebpf_plan(&f, &in_place(&["10.0.0.0/8"]), &trust(&["192.0.2.0/24"])).unwrap();
        assert_eq!(
            kinds(&p),
            ["trust", "verify", "unit", "reload", "restart", "record"]
        );
    }

    #[test]
    fn without_systemd_nothing_is_persisted() {
        let f = debian12();
        let facts = EbpfFacts {
            systemd: false,
            ..fresh()
        };
        let p = ebpf_plan(&f, &facts, &Options::default()).unwrap();
        assert_eq!(kinds(&p), ["attach", "verify", "record"]);
    }

    #[test]
    fn the_unit_keeps_the_list_when_not_attached() {
        // After a boot where the unit failed: attach with the unit's list.
        let f = debian12();
        let facts = EbpfFacts {
            unit: Some(unit(&["10.0.0.0/8".to_owned(), "2001:db8::/32".to_owned()])),
            ..fresh()
        };
        let p = ebpf_plan(&f, &facts, &Options::default()).unwrap();
        assert!(
            matches!(&p.steps[0], Step::AttachEbpf { trusted } if trusted == &["10.0.0.0/8", "2001:db8::/32"])
        );
        assert_eq!(
            unit_trusted(&unit(&["a/1".to_owned(), "b/2".to_owned()])),
            ["a/1", "b/2"]
        );
        assert!(unit_trusted(&unit(&[])).is_empty());
    }

    #[test]
    fn never_both_backends() {
        let f = debian12();
        let mut with_module = f.clone();
        with_module.security.toa_module = LoadedToa::Ours {
            version: bundle::VERSION.to_owned(),
        };
        let err = ebpf_plan(&with_module, &fresh(), &Options::default()).unwrap_err();
        assert_eq!(err.category(), Exit::Conflict);
        assert!(err.to_string().contains("toa-install uninstall"), "{err}");
        with_module.security.toa_module = LoadedToa::Foreign {
            version: None,
            srcversion: None,
        };
        let err = ebpf_plan(&with_module, &fresh(), &Options::default()).unwrap_err();
        assert_eq!(err.category(), Exit::Conflict);
        // and the module plan refuses while eBPF is pinned
        let state = State {
            ebpf: in_place(&[]),
            ..State::default()
        };
        let err = plan(&f, &compile(), &state).unwrap_err();
        assert_eq!(err.category(), Exit::Conflict);
        assert!(err.to_string().contains("eBPF backend is active"), "{err}");
    }

    #[test]
    fn a_kernel_without_the_features_is_exit_4_with_what_is_missing() {
        let f = debian12();
        let facts = EbpfFacts {
            support: Support::Missing(vec!["cgroup sockopt programs (Linux 5.10)".to_owned()]),
            ..fresh()
        };
        let err = ebpf_plan(&f, &facts, &Options::default()).unwrap_err();
        assert_eq!(err.category(), Exit::Unsupported);
        assert!(err.to_string().contains("cgroup sockopt programs"), "{err}");
    }
}
mod metrics;

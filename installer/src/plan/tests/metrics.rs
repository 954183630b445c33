//! `--metrics-textfile`: the timer's steps in the install and uninstall
//! plans, and the checks made before anything changes.

use super::*;
use crate::layout::{unit_enabled_link, unit_path, SYSTEMD_BOOTED};
use crate::plan::metrics::{self, Current, Textfile, TextfileError};
use crate::plan::systemd::Installed;
use crate::plan::uninstall;
use crate::state::StateFile;
use crate::system::sysroot::fake::MemFs;

const DIR: &str = "/var/lib/prometheus/node-exporter";
const EXE: &str = "/usr/sbin/toa-install";

fn textfile(dir: &str) -> Textfile {
    Textfile {
        dir: dir.to_owned(),
        exec: EXE.to_owned(),
    }
}

fn with_metrics(dir: &str) -> Options {
    Options {
        metrics_textfile: Some(textfile(dir)),
        ..Options::default()
    }
}

/// The timer installed for `dir`, enabled, its file there.
fn timer_in_place(dir: &str) -> Current {
    Current {
        units: Installed {
            files: vec![
                (
                    "toa-metrics.service".to_owned(),
                    Some(metrics::service(&textfile(dir))),
                ),
                ("toa-metrics.timer".to_owned(), Some(metrics::timer())),
            ],
            enabled: true,
        },
        dir: Some(dir.to_owned()),
        file: Some(format!("{dir}/toa.prom")),
    }
}

fn summaries(p: &Plan) -> Vec<String> {
    p.steps.iter().map(Step::summary).collect()
}

#[test]
fn a_fresh_install_with_the_timer() {
    let f = debian12();
    let options = Options {
        metrics_textfile: Some(textfile(DIR)),
        ..compile()
    };
    let p = plan(&f, &options, &State::default()).unwrap();
    snapshot("debian-12-metrics-textfile", &p.render());
    let json = serde_json::to_value(&p).unwrap();
    let last = json["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["step"], "record-state");
    assert_eq!(last["metrics_textfile"], DIR);
}

#[test]
fn the_timer_alone_on_an_installed_module() {
    let f = debian12();
    let state = installed_state(&f, "10.0.0.0/8");
    let p = plan(&f, &with_metrics(DIR), &state).unwrap();
    assert_eq!(
        summaries(&p),
        [
            "write /etc/systemd/system/toa-metrics.service (mode 0644)",
            "write /etc/systemd/system/toa-metrics.timer (mode 0644)",
            "make systemd read the new units: systemctl daemon-reload  [timeout 2m]",
            "enable and start toa-metrics.timer: systemctl enable --now toa-metrics.timer  [timeout 2m]",
            "record the installation (dkms) in /var/lib/toa-install/state.json",
        ]
    );
    let Step::WriteFile { contents, .. } = &p.steps[0] else {
        panic!("{:?}", p.steps[0]);
    };
    assert!(contents.contains(
        "ExecStart=/usr/sbin/toa-install stats --format prometheus --output \
         /var/lib/prometheus/node-exporter/toa.prom\n"
    ));
}

#[test]
fn the_same_directory_again_changes_nothing() {
    let f = debian12();
    let mut state = installed_state(&f, "10.0.0.0/8");
    state.metrics = timer_in_place(DIR);
    let p = plan(&f, &with_metrics(DIR), &state).unwrap();
    assert!(p.changes_nothing(), "{}", p.render());
}

#[test]
fn without_the_option_an_installed_timer_is_left_alone() {
    let f = debian12();
    let mut state = installed_state(&f, "10.0.0.0/8");
    state.metrics = timer_in_place(DIR);
    assert!(plan(&f, &Options::default(), &state)
        .unwrap()
        .changes_nothing());
    // Nor is one whose files were edited by hand.
    state.metrics.units.files[1].1 = Some("edited".to_owned());
    assert!(plan(&f, &Options::default(), &state)
        .unwrap()
        .changes_nothing());
}

#[test]
fn another_directory_replaces_the_first() {
    let f = debian12();
    let mut state = installed_state(&f, "10.0.0.0/8");
    state.metrics = timer_in_place("/srv/old");
    let p = plan(&f, &with_metrics(DIR), &state).unwrap();
    assert_eq!(
        summaries(&p),
        [
            "write /etc/systemd/system/toa-metrics.service (mode 0644)",
            "make systemd read the new units: systemctl daemon-reload  [timeout 2m]",
            "restart toa-metrics.timer with its new settings: systemctl restart toa-metrics.timer  [timeout 2m]",
            "remove the metrics file in the previous directory: /srv/old/toa.prom",
            "record the installation (dkms) in /var/lib/toa-install/state.json",
        ]
    );
}

#[test]
fn a_disabled_timer_is_enabled_again() {
    let f = debian12();
    let mut state = installed_state(&f, "10.0.0.0/8");
    state.metrics = timer_in_place(DIR);
    state.metrics.units.enabled = false;
    let p = plan(&f, &with_metrics(DIR), &state).unwrap();
    assert_eq!(
        summaries(&p)[0],
        "enable and start toa-metrics.timer: systemctl enable --now toa-metrics.timer  [timeout 2m]"
    );
    assert_eq!(p.steps.len(), 2);
}

fn host_fs() -> MemFs {
    MemFs::new()
        .with(&format!("{DIR}/.keep"), "")
        .with(&format!("{SYSTEMD_BOOTED}/.keep"), "")
}

#[test]
fn checks_before_anything_changes() {
    let fs = host_fs();
    let ok = |dir: &str| metrics::check(&fs, true, dir, Ok(EXE.to_owned()), &["/tmp".to_owned()]);
    assert_eq!(ok(DIR), Ok(textfile(DIR)));
    assert_eq!(ok(&format!("{DIR}/")), Ok(textfile(DIR)));
    for bad in ["relative/dir", "/with space", "/per%cent", "/quo\"te"] {
        let e = ok(bad).unwrap_err();
        assert!(matches!(e, TextfileError::BadPath { .. }), "{bad}: {e}");
        assert_eq!(e.category(), Exit::Usage);
    }
    let e = ok("/srv/missing").unwrap_err();
    assert_eq!(e.category(), Exit::Usage);
    assert!(e.to_string().contains("mkdir -p /srv/missing"), "{e}");

    let no_systemd = MemFs::new().with(&format!("{DIR}/.keep"), "");
    let e = metrics::check(&no_systemd, true, DIR, Ok(EXE.to_owned()), &[]).unwrap_err();
    assert_eq!(e.category(), Exit::Unsupported);
    assert!(e.to_string().contains("/run/systemd/system"), "{e}");
    // An image (--root) is not booted: its systemd is not asked for.
    assert!(metrics::check(&no_systemd, false, DIR, Ok(EXE.to_owned()), &[]).is_ok());

    let e = metrics::check(
        &fs,
        true,
        DIR,
        Ok("/tmp/tmp.x1/toa-install-x86_64".to_owned()),
        &["/tmp".to_owned()],
    )
    .unwrap_err();
    assert!(matches!(e, TextfileError::TemporaryBinary { .. }), "{e}");
    assert!(e.to_string().contains("/usr/local/sbin/toa-install"), "{e}");
    // /tmpfoo is not below /tmp.
    assert!(metrics::check(
        &fs,
        true,
        DIR,
        Ok("/tmpfoo/toa-install".to_owned()),
        &["/tmp".to_owned()]
    )
    .is_ok());
    let e = metrics::check(&fs, true, DIR, Err("gone".to_owned()), &[]).unwrap_err();
    assert!(matches!(e, TextfileError::NoBinary { .. }), "{e}");
}

#[test]
fn what_is_in_place_is_read_from_files() {
    let state = StateFile {
        version: "0.1.0".to_owned(),
        source: Source::Dkms,
        kernel_release: "6.1.0-27-amd64".to_owned(),
        packages_installed: Vec::new(),
        srcversion: None,
        metrics_textfile: Some(DIR.to_owned()),
    };
    let fs = MemFs::new()
        .with(
            &unit_path("toa-metrics.service"),
            metrics::service(&textfile(DIR)),
        )
        .with(&unit_path("toa-metrics.timer"), metrics::timer())
        .with(
            &unit_enabled_link("timers.target", "toa-metrics.timer"),
            metrics::timer(),
        )
        .with(&format!("{DIR}/toa.prom"), "toa_info 1\n");
    assert_eq!(Current::read(&fs, Some(&state)), timer_in_place(DIR));
    let summary = timer_in_place(DIR).summary().unwrap();
    assert_eq!(
        summary.file.as_deref(),
        Some("/var/lib/prometheus/node-exporter/toa.prom")
    );
    assert!(summary.enabled);
    assert_eq!(Current::default().summary(), None);
}

#[test]
fn uninstall_stops_the_timer_first_and_removes_its_file() {
    let found = uninstall::Found {
        metrics: timer_in_place(DIR),
        ..uninstall::Found::default()
    };
    let p = uninstall::plan(&found, uninstall::Options::default(), None);
    let lines: Vec<String> = p.steps.iter().map(uninstall::Step::summary).collect();
    assert_eq!(
        lines,
        [
            "stop and disable toa-metrics.timer: systemctl disable --now toa-metrics.timer  [timeout 2m]",
            "stop toa-metrics.service: systemctl stop toa-metrics.service  [timeout 2m]",
            "remove the unit toa-metrics.service: /etc/systemd/system/toa-metrics.service",
            "remove the unit toa-metrics.timer: /etc/systemd/system/toa-metrics.timer",
            "make systemd forget the removed units: systemctl daemon-reload  [timeout 2m]",
            "remove the metrics file: /var/lib/prometheus/node-exporter/toa.prom",
        ]
    );
    // Nothing of it there: nothing planned.
    let none = uninstall::plan(
        &uninstall::Found::default(),
        uninstall::Options::default(),
        None,
    );
    assert!(none.steps.is_empty());
}

//! The metrics timer's steps carried out: rolled back with the rest when a
//! later step fails, recorded in the state file, and planned away on the
//! next run.

use super::*;
use crate::plan::metrics::Textfile;

const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
const ENABLED_LINK: &str = "/etc/systemd/system/timers.target.wants/toa-metrics.timer";

fn with_metrics(dir: &str) -> Options {
    Options {
        metrics_textfile: Some(Textfile {
            dir: dir.to_owned(),
            exec: "/usr/sbin/toa-install".to_owned(),
        }),
        ..trust()
    }
}

/// A Debian root with the textfile directory, and effects under which
/// `systemctl enable` makes its link as systemd does.
fn root_and_effects() -> (tempfile::TempDir, FakeEffects) {
    let dir = debian_root();
    fs::create_dir_all(dir.path().join(TEXTFILE_DIR.trim_start_matches('/'))).unwrap();
    let fx = working_dkms(dir.path())
        .answer(
            "systemctl enable --now toa-metrics.timer",
            true,
            "",
            &[(ENABLED_LINK, "")],
        )
        .answer_removing("systemctl disable --now toa-metrics.timer", &[ENABLED_LINK]);
    (dir, fx)
}

#[test]
fn a_failed_enable_undoes_the_whole_run() {
    let (dir, fx) = root_and_effects();
    let root = dir.path();
    let before = tree(root);
    let host = host_with_packages();
    let (facts, state) = facts_and_state(root, &host);
    let plan = plan::plan(&facts, &with_metrics(TEXTFILE_DIR), &state).unwrap();
    let mut fx = fx.answer(
        "systemctl enable --now toa-metrics.timer",
        false,
        "Failed to enable unit: Access denied",
        &[],
    );
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    let err = result.unwrap_err();
    assert_eq!(err.category, Exit::PersistFailed);
    assert!(err.message.contains("Access denied"), "{}", err.message);
    assert!(err.undo_problems.is_empty(), "{:?}", err.undo_problems);
    // Disabled (it may have been enabled before start failed), the module
    // unloaded, DKMS's registration removed, and systemd made to forget the units last, once their
    // files are gone.
    let tail: Vec<&str> = fx
        .commands
        .iter()
        .rev()
        .take(4)
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "systemctl daemon-reload",
            "dkms remove -m toa -v 0.1.0 --all",
            "modprobe -r toa",
            "systemctl disable --now toa-metrics.timer",
        ]
    );
    assert_eq!(tree(root), before);
}

#[test]
fn installed_recorded_and_then_unchanged() {
    let (dir, mut fx) = root_and_effects();
    let root = dir.path();
    let host = host_with_packages();
    let (facts, state) = facts_and_state(root, &host);
    let plan = plan::plan(&facts, &with_metrics(TEXTFILE_DIR), &state).unwrap();
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    assert!(result.unwrap().changed);
    assert!(fx.commands.contains(&"systemctl daemon-reload".to_owned()));
    assert!(root.join("etc/systemd/system/toa-metrics.service").exists());
    assert!(root.join("etc/systemd/system/toa-metrics.timer").exists());
    let recorded = || -> StateFile {
        serde_json::from_slice(&fs::read(root.join("var/lib/toa-install/state.json")).unwrap())
            .unwrap()
    };
    assert_eq!(recorded().metrics_textfile.as_deref(), Some(TEXTFILE_DIR));

    // Same directory: nothing to do. No option: nothing either.
    let (facts, state) = facts_and_state(root, &host);
    for options in [with_metrics(TEXTFILE_DIR), trust()] {
        let again = plan::plan(&facts, &options, &state).unwrap();
        assert!(again.changes_nothing(), "{}", again.render());
    }

    // A new trusted list without the option keeps the recorded directory.
    let other = Options {
        trust: Some(vec!["192.0.2.0/24".to_owned()]),
        ..Options::default()
    };
    let plan = plan::plan(&facts, &other, &state).unwrap();
    let mut fx = FakeEffects::new(root);
    let (result, _) = execute_with(&plan, &mut fx, &no_prebuilt(), &pass());
    assert!(result.unwrap().changed);
    assert_eq!(recorded().metrics_textfile.as_deref(), Some(TEXTFILE_DIR));
}

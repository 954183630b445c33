//! Runs the real `toa-install uninstall` against fixture trees: `--dry-run
//! --root` plans the removal of what is there and changes nothing; options
//! that do not apply are refused with exit 2.

use assert_cmd::Command;
use serde_json::Value;
use std::fs;
use std::path::Path;

fn write(root: &Path, path: &str, contents: &str) {
    let p = root.join(path);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, contents).unwrap();
}

/// A Debian 12 image with a DKMS install of toa and its files.
fn installed_image() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    write(r, "etc/modules-load.d/toa.conf", "toa\n");
    write(
        r,
        "etc/modprobe.d/toa.conf",
        "options toa trusted=10.0.0.0/8\n",
    );
    write(
        r,
        "usr/src/toa-0.1.0/dkms.conf",
        "PACKAGE_NAME=\"toa\"\nPACKAGE_VERSION=\"0.1.0\"\n",
    );
    write(r, "var/lib/dkms/toa/0.1.0/source", "");
    write(
        r,
        "var/lib/toa-install/state.json",
        r#"{"version":"0.1.0","source":"dkms","kernel_release":"6.1.0-27-amd64","packages_installed":[]}"#,
    );
    fs::create_dir_all(r.join("lib/modules/6.1.0-27-amd64")).unwrap();
    dir
}

fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.display().to_string());
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dry_run_plans_the_removal_and_changes_nothing() {
    let image = installed_image();
    let before = listing(image.path());
    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["uninstall", "--dry-run", "--root"])
        .arg(image.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "remove loading at boot: /etc/modules-load.d/toa.conf",
        "/etc/modprobe.d/toa.conf",
        "dkms remove toa/0.1.0 --all",
        "/usr/src/toa-0.1.0",
        "/var/lib/toa-install",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    assert_eq!(listing(image.path()), before);

    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["uninstall", "--dry-run", "--json", "--root"])
        .arg(image.path())
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["changed"], false);
    assert_eq!(doc["error"], Value::Null);
    assert_eq!(doc["steps"].as_array().unwrap().len(), 5, "{doc:#}");
}

#[test]
fn an_empty_image_has_nothing_to_uninstall() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\n",
    );
    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["uninstall", "--dry-run", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "nothing of toa is installed: nothing to do.\n"
    );
}

#[test]
fn options_that_do_not_apply_are_usage_errors() {
    let image = installed_image();
    for args in [
        vec!["uninstall", "--root", image.path().to_str().unwrap()],
        vec![
            "uninstall",
            "--dry-run",
            "--kernel-release",
            "6.1.0-27-amd64",
        ],
    ] {
        let out = Command::cargo_bin("toa-install")
            .unwrap()
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

//! Runs the real `toa-install` binary in its install mode against fixture
//! trees: `--dry-run --root` prints each distribution's plan and changes
//! nothing; `--root` without `--dry-run` and a run without root are refused
//! with their exit codes.

use assert_cmd::Command;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/distros")
        .join(name)
}

/// Every file under `dir` with its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                todo.push(path.clone());
                out.insert(path, (Vec::new(), meta.permissions().mode()));
            } else if meta.is_file() {
                out.insert(
                    path.clone(),
                    (std::fs::read(&path).unwrap(), meta.permissions().mode()),
                );
            } else {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(path, (target.into_os_string().into_encoded_bytes(), 0));
            }
        }
    }
    out
}

#[test]
fn dry_run_prints_each_distros_plan_and_changes_nothing() {
    for (name, release, header_package, package_manager) in [
        (
            "debian-12",
            "6.1.0-27-amd64",
            "linux-headers-6.1.0-27-amd64",
            "apt-get",
        ),
        (
            "centos-7",
            "3.10.0-1160.el7.x86_64",
            "kernel-devel-3.10.0-1160.el7.x86_64",
            "yum",
        ),
        (
            "rocky-9",
            "5.14.0-362.8.1.el9_3.x86_64",
            "kernel-devel-5.14.0-362.8.1.el9_3.x86_64",
            "dnf",
        ),
        (
            "ubuntu-22.04",
            "5.15.0-91-generic",
            "linux-headers-5.15.0-91-generic",
            "apt-get",
        ),
        (
            "opensuse-leap-15.5",
            "5.14.21-150500.55.39-default",
            "kernel-default-devel-5.14.21-150500.55.39",
            "zypper",
        ),
    ] {
        let root = fixture(name);
        let before = snapshot(&root);
        let out = Command::cargo_bin("toa-install")
            .unwrap()
            .args(["--dry-run", "--compile", "--trust", "10.0.0.0/8", "--root"])
            .arg(&root)
            .args(["--kernel-release", release])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stdout}\n{stderr}");
        assert!(
            stdout.contains(&format!("kernel {release}")),
            "{name}: {stdout}"
        );
        assert!(stdout.contains(header_package), "{name}: {stdout}");
        assert!(stdout.contains(package_manager), "{name}: {stdout}");
        assert!(stdout.contains("dkms build -m toa -v"), "{name}: {stdout}");
        assert!(stdout.contains("trusted=10.0.0.0/8"), "{name}: {stdout}");
        assert!(stderr.contains("nothing was changed"), "{name}: {stderr}");
        assert_eq!(
            snapshot(&root),
            before,
            "{name}: the dry run changed the fixture"
        );
    }
}

#[test]
fn dry_run_on_sles_with_the_gate_closed_is_exit_8() {
    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["--dry-run", "--backend", "module", "--root"])
        .arg(fixture("sles-15-sp5"))
        .args(["--kernel-release", "5.14.21-150500.55.39-default"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("allow_unsupported_modules"), "{stderr}");
}

#[test]
fn dry_run_auto_falls_back_to_ebpf_with_the_reason() {
    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["--dry-run", "--json", "--trust", "10.0.0.0/8", "--root"])
        .arg(fixture("sles-15-sp5"))
        .args(["--kernel-release", "5.14.21-150500.55.39-default"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["backend"], "ebpf", "{doc:#}");
    assert_eq!(doc["source"], "ebpf", "{doc:#}");
    let warnings = doc["warnings"].to_string();
    assert!(
        warnings.contains("the kernel module cannot be used here: SUSE refuses modules"),
        "{warnings}"
    );
    let steps = doc["steps"].to_string();
    assert!(steps.contains("attach the eBPF programs"), "{steps}");
    assert!(steps.contains("10.0.0.0/8"), "{steps}");
}

#[test]
fn dry_run_json_is_one_document() {
    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["install", "--dry-run", "--json", "--root"])
        .arg(fixture("debian-12"))
        .args(["--kernel-release", "6.1.0-27-amd64"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["changed"], false);
    assert_eq!(doc["source"], "dkms");
    assert!(doc["error"].is_null());
    assert!(doc["warnings"].is_array());
    assert!(doc["steps"].as_array().unwrap().len() > 5);
    assert_eq!(doc["plan"]["kernel_release"], "6.1.0-27-amd64");
}

#[test]
fn root_without_dry_run_is_a_usage_error() {
    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["--yes", "--root"])
        .arg(fixture("debian-12"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--dry-run"), "{stderr}");
}

#[test]
fn unsupported_distribution_is_exit_4() {
    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["--dry-run", "--json", "--root"])
        .arg(fixture("alpine-3.19"))
        .args(["--kernel-release", "6.6.0-0-lts"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["exit_code"], 4);
}

/// Not root: exit 3 and says so. As root, the binary is run as `nobody`
/// through setpriv when it is there; otherwise the unit test
/// `install::tests::not_root_is_exit_3_before_anything` covers the check.
#[test]
fn not_root_is_exit_3() {
    let bin = assert_cmd::cargo::cargo_bin("toa-install");
    // SAFETY: plain syscall.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        if !Path::new("/usr/bin/setpriv").exists() {
            eprintln!("setpriv missing: the unit test covers the root check");
            return;
        }
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    let out = cmd.args(["--yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if root && stderr.contains("setpriv") {
        eprintln!("setpriv could not drop privileges here: {stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("root"), "{stderr}");
}

/// Copies `src` into `dst` (files and directories only, as the fixtures are).
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

#[test]
fn a_toa_ko_nobody_installed_is_named_in_a_warning() {
    let root = std::env::temp_dir().join(format!("toa-install-unaccounted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    copy_tree(&fixture("debian-12"), &root);
    let extra = root.join("lib/modules/6.1.0-27-amd64/extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("toa.ko"), b"someone else's module").unwrap();
    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["--dry-run", "--json", "--compile", "--root"])
        .arg(&root)
        .args(["--kernel-release", "6.1.0-27-amd64"])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = doc["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("/lib/modules/6.1.0-27-amd64/extra/toa.ko was there, installed neither by DKMS nor by toa-install")),
        "{warnings:?}"
    );
    assert!(!doc["steps"].as_array().unwrap().is_empty());
}

#[test]
fn a_kernel_built_for_another_el_major_is_warned_about_before_compiling() {
    // detect reports it; install must too, since the build it plans needs
    // that kernel's kernel-devel package.
    let out = Command::cargo_bin("toa-install")
        .unwrap()
        .args(["install", "--dry-run", "--compile", "--json", "--root"])
        .arg(fixture("rocky-9"))
        .args(["--kernel-release", "4.18.0-513.5.1.el8_9.x86_64"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = doc["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("built for EL8")),
        "{doc:#}"
    );
}

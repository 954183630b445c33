use super::*;
use crate::system::modinfo::fixture_ko;

fn entry(release: &str, version: &str, arch: &str) -> Entry {
    Entry {
        distro: "debian-12".to_owned(),
        kernel_release: release.to_owned(),
        kernel_version: version.to_owned(),
        arch: arch.to_owned(),
        toa_version: bundle::VERSION.to_owned(),
        file: format!("{release}-{version}.tar.gz"),
        sha256: String::new(),
    }
}

#[test]
fn select_prefers_the_exact_build() {
    let index = Index {
        format: FORMAT,
        entries: vec![
            entry("6.1.0-27-amd64", "#1 Debian 6.1.115-1", "x86_64"),
            entry("6.1.0-27-amd64", "#1 Debian 6.1.119-1", "x86_64"),
            entry("6.1.0-27-arm64", "#1 Debian 6.1.119-1", "aarch64"),
        ],
    };
    let e = index
        .select("6.1.0-27-amd64", Some("#1 Debian 6.1.119-1"), "x86_64")
        .unwrap();
    assert_eq!(e.kernel_version, "#1 Debian 6.1.119-1");
    let e = index.select("6.1.0-27-amd64", None, "x86_64").unwrap();
    assert_eq!(e.kernel_version, "#1 Debian 6.1.115-1");
    assert!(index.select("6.1.0-28-amd64", None, "x86_64").is_none());
    assert!(index.select("6.1.0-27-amd64", None, "aarch64").is_none());
}

/// A fake kernel tree whose Makefile "builds" toa.ko by copying a
/// fixture module into M=, as Kbuild would put the real one there.
fn fake_tree(release: &str, vermagic: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::create_dir_all(r.join("include/config")).unwrap();
    fs::create_dir_all(r.join("include/generated")).unwrap();
    fs::write(
        r.join("include/config/kernel.release"),
        format!("{release}\n"),
    )
    .unwrap();
    fs::write(
        r.join("include/generated/autoconf.h"),
        "#define CONFIG_X86_64 1\n",
    )
    .unwrap();
    fs::write(
        r.join("fixture.ko"),
        fixture_ko(&[("version", bundle::VERSION), ("vermagic", vermagic)]),
    )
    .unwrap();
    fs::write(
        r.join("Makefile"),
        "modules:\n\ttest -f $(M)/Kbuild && test -f $(M)/compat/compat.h\n\tcp fixture.ko $(M)/toa.ko\n",
    )
    .unwrap();
    dir
}

#[test]
fn build_writes_archives_and_index() {
    let a = fake_tree("6.1.0-27-amd64", "6.1.0-27-amd64 SMP mod_unload ");
    let b = fake_tree("6.12.48+deb13-amd64", "6.12.48+deb13-amd64 SMP mod_unload ");
    let out = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let index = build(
        &[a.path().to_path_buf(), b.path().to_path_buf()],
        out.path(),
        "debian-12",
        &mut |l| lines.push(l.to_owned()),
    )
    .unwrap();
    assert_eq!(index.entries.len(), 2);
    assert_eq!(lines.len(), 2);
    let e = &index.entries[0];
    assert_eq!(
        (e.kernel_release.as_str(), e.arch.as_str(), e.file.as_str()),
        (
            "6.1.0-27-amd64",
            "x86_64",
            "toa-0.1.0-6.1.0-27-amd64-x86_64.tar.gz"
        )
    );
    let archive = fs::read(out.path().join(&e.file)).unwrap();
    assert_eq!(sha256_hex(&archive), e.sha256);
    let on_disk: Index =
        serde_json::from_slice(&fs::read(out.path().join(INDEX)).unwrap()).unwrap();
    assert_eq!(on_disk, index);
    // Building again replaces, not duplicates.
    let again = build(
        &[a.path().to_path_buf()],
        out.path(),
        "debian-12",
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(again.entries.len(), 2);
}

#[test]
fn build_refuses_a_module_for_another_kernel() {
    let tree = fake_tree("6.1.0-27-amd64", "6.1.0-26-amd64 SMP ");
    let out = tempfile::tempdir().unwrap();
    let err = build(&[tree.path().to_path_buf()], out.path(), "x", &mut |_| {}).unwrap_err();
    assert_eq!(err.category(), Exit::BuildFailed);
    assert!(err.to_string().contains("6.1.0-26-amd64"), "{err}");
}

#[test]
fn debian_trees_take_the_release_from_utsrelease_h() {
    let dir = fake_tree(
        "6.1.176",
        "6.1.0-50-amd64 SMP preempt mod_unload modversions ",
    );
    fs::write(
        dir.path().join("include/generated/utsrelease.h"),
        "#define UTS_RELEASE \"6.1.0-50-amd64\"\n",
    )
    .unwrap();
    let info = tree_info(dir.path()).unwrap();
    assert_eq!(info.release, "6.1.0-50-amd64");
    assert_eq!(info.arch, "x86_64");
    let out = tempfile::tempdir().unwrap();
    let index = build(
        &[dir.path().to_path_buf()],
        out.path(),
        "debian-12",
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(index.entries[0].kernel_release, "6.1.0-50-amd64");
}

#[test]
fn build_needs_a_tree() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = build(&[dir.path().to_path_buf()], out.path(), "x", &mut |_| {}).unwrap_err();
    assert_eq!(err.category(), Exit::HeadersUnavailable);
    assert!(err.to_string().contains("kernel.release"), "{err}");
}

use super::*;
use crate::system::sysroot::fake::{FakeHost, MemFs};

fn kernel(release: &str, version: Option<&str>) -> KernelInfo {
    KernelInfo {
        release: release.to_owned(),
        version: version.map(str::to_owned),
        arch: "x86_64".to_owned(),
        release_source: ReleaseSource::Argument,
        arch_source: ArchSource::Release,
    }
}

#[test]
fn version_parse_and_minimum() {
    let v = KernelVersion::parse("3.10.0-1160.el7.x86_64").unwrap();
    assert_eq!((v.major, v.minor, v.patch), (3, 10, 0));
    assert!(v.is_supported());
    assert!(!KernelVersion::parse("2.6.32-754.35.1.el6.x86_64")
        .unwrap()
        .is_supported());
    assert!(!KernelVersion::parse("3.9.11").unwrap().is_supported());
    assert!(KernelVersion::parse("6.12.48+deb13-amd64")
        .unwrap()
        .is_supported());
    assert_eq!(
        KernelVersion::parse("6.5-rc1").unwrap(),
        KernelVersion {
            major: 6,
            minor: 5,
            patch: 0
        }
    );
    assert!(KernelVersion::parse("linux").is_none());
    assert!(KernelVersion::parse("6").is_none());
}

#[test]
fn el_releases() {
    let el7 = ElRelease::parse("3.10.0-1160.119.1.el7.x86_64").unwrap();
    assert_eq!(el7.el_major, 7);
    assert_eq!(el7.dist, "el7");
    assert_eq!(el7.arch, Some("x86_64"));
    assert_eq!(el7.upstream, "3.10.0");
    let el8 = ElRelease::parse("4.18.0-513.el8_9.x86_64").unwrap();
    assert_eq!((el8.el_major, el8.dist), (8, "el8_9"));
    let el9 = ElRelease::parse("5.14.0-427.el9.aarch64").unwrap();
    assert_eq!((el9.el_major, el9.arch), (9, Some("aarch64")));
    let debug9 = ElRelease::parse("5.14.0-427.13.1.el9_4.x86_64+debug").unwrap();
    assert_eq!(debug9.variant, Some("debug"));
    assert_eq!(debug9.package_version, "5.14.0-427.13.1.el9_4.x86_64");
    let debug7 = ElRelease::parse("3.10.0-1160.el7.x86_64.debug").unwrap();
    assert_eq!(debug7.variant, Some("debug"));
    assert_eq!(debug7.arch, Some("x86_64"));
    assert!(ElRelease::parse("6.1.0-27-amd64").is_none());
    assert!(ElRelease::parse("5.14.21-150500.55.39-default").is_none());
    assert!(ElRelease::parse("6.6.47-12.oc9.x86_64").is_none());
}

#[test]
fn el_header_packages() {
    let k = kernel("4.18.0-513.el8_9.x86_64", None);
    let p = HeaderScheme::KernelDevel.package_for(&k);
    assert_eq!(p.package, "kernel-devel-4.18.0-513.el8_9.x86_64");
    assert_eq!(p.name, "kernel-devel");
    let k = kernel("5.14.0-427.13.1.el9_4.x86_64+rt", None);
    assert_eq!(
        HeaderScheme::KernelDevel.package_for(&k).package,
        "kernel-rt-devel-5.14.0-427.13.1.el9_4.x86_64"
    );
    let k = kernel("6.6.47-12.oc9.x86_64", None);
    assert_eq!(
        HeaderScheme::KernelDevel.package_for(&k).package,
        "kernel-devel-6.6.47-12.oc9.x86_64"
    );
}

#[test]
fn debian_abi_and_package_version() {
    assert_eq!(debian_flavour("6.1.0-27-amd64"), Some("amd64"));
    assert_eq!(debian_flavour("6.1.0-27-cloud-amd64"), Some("cloud-amd64"));
    assert_eq!(debian_flavour("6.12.48+deb13-amd64"), Some("amd64"));
    assert_eq!(debian_flavour("6.12.48+deb13-rt-arm64"), Some("rt-arm64"));
    assert_eq!(debian_flavour("3.10.0-1160.el7.x86_64"), None);
    assert_eq!(
        debian_package_version("#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)"),
        Some("6.1.158-1")
    );
    assert_eq!(
        debian_package_version("#1 SMP Debian 4.19.316-1 (2024-06-25)"),
        Some("4.19.316-1")
    );
    assert_eq!(debian_package_version("#101-Ubuntu SMP"), None);
    let k = kernel(
        "6.1.0-27-amd64",
        Some("#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)"),
    );
    let p = HeaderScheme::LinuxHeaders.package_for(&k);
    assert_eq!(p.package, "linux-headers-6.1.0-27-amd64");
    assert_eq!(p.version.as_deref(), Some("6.1.115-1"));
}

#[test]
fn ubuntu_flavours_and_versions() {
    assert_eq!(ubuntu_flavour("5.15.0-91-generic"), Some("generic"));
    assert_eq!(ubuntu_flavour("6.8.0-1016-aws"), Some("aws"));
    assert_eq!(ubuntu_flavour("5.15.0-1053-azure"), Some("azure"));
    assert_eq!(ubuntu_flavour("6.8.0-45-lowlatency"), Some("lowlatency"));
    assert_eq!(ubuntu_flavour("5.15.0-91-generic-64k"), Some("generic-64k"));
    assert_eq!(
        ubuntu_package_version(
            "5.15.0-91-generic",
            "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023"
        )
        .as_deref(),
        Some("5.15.0-91.101")
    );
    assert_eq!(
        ubuntu_package_version(
            "6.5.0-14-generic",
            "#14~22.04.1-Ubuntu SMP PREEMPT_DYNAMIC Mon Nov 20 18:15:30 UTC 2023"
        )
        .as_deref(),
        Some("6.5.0-14.14~22.04.1")
    );
    let k = kernel(
        "6.8.0-1016-aws",
        Some("#17-Ubuntu SMP Mon Sep  2 13:48:07 UTC 2024"),
    );
    let p = HeaderScheme::LinuxHeaders.package_for(&k);
    assert_eq!(p.package, "linux-headers-6.8.0-1016-aws");
    assert_eq!(p.version.as_deref(), Some("6.8.0-1016.17"));
}

#[test]
fn suse_releases() {
    let s = SuseRelease::parse("5.14.21-150500.55.39-default").unwrap();
    assert_eq!((s.version, s.flavour), ("5.14.21-150500.55.39", "default"));
    let k = kernel("5.14.21-150500.55.39-default", None);
    let p = HeaderScheme::SuseFlavourDevel.package_for(&k);
    assert_eq!(p.package, "kernel-default-devel-5.14.21-150500.55.39");
    assert_eq!(p.name, "kernel-default-devel");
    let k = kernel("5.14.21-150500.33.51-azure", None);
    assert_eq!(
        HeaderScheme::SuseFlavourDevel.package_for(&k).name,
        "kernel-azure-devel"
    );
    assert!(SuseRelease::parse("6.1.0").is_none());
}

#[test]
fn arch_from_releases() {
    assert_eq!(arch_from_release("3.10.0-1160.el7.x86_64"), Some("x86_64"));
    assert_eq!(arch_from_release("6.6.47-12.oc9.x86_64"), Some("x86_64"));
    assert_eq!(
        arch_from_release("5.14.0-427.el9.aarch64+debug"),
        Some("aarch64")
    );
    assert_eq!(arch_from_release("5.4.119-19.0010.ocrelease.6"), None);
    assert_eq!(arch_from_release("6.1.0-27-arm64"), Some("aarch64"));
    assert_eq!(arch_from_release("6.12.48+deb13-amd64"), Some("x86_64"));
    assert_eq!(arch_from_release("5.15.0-91-generic"), None);
    assert_eq!(arch_from_release("5.15.0-91-generic-64k"), Some("aarch64"));
    assert_eq!(arch_from_release("5.14.21-150500.55.39-default"), None);
}

#[test]
fn release_ordering_is_numeric() {
    assert_eq!(
        compare_releases("5.14.0-427.el9.x86_64", "5.14.0-70.el9.x86_64"),
        Ordering::Greater
    );
    assert_eq!(
        compare_releases("6.1.0-9-amd64", "6.1.0-27-amd64"),
        Ordering::Less
    );
    assert_eq!(
        compare_releases("6.1.0-27-amd64", "6.1.0-27-amd64"),
        Ordering::Equal
    );
    assert_eq!(
        compare_releases("5.10.0-33-amd64", "5.9.0-1-amd64"),
        Ordering::Greater
    );
}

#[test]
fn newest_release_in_root() {
    let fs = MemFs::new()
        .with("/lib/modules/5.14.0-70.el9.x86_64/modules.dep", "")
        .with("/lib/modules/5.14.0-427.el9.x86_64/modules.dep", "")
        .with("/lib/modules/extramodules/x", "");
    assert_eq!(newest_release(&fs).unwrap(), "5.14.0-427.el9.x86_64");
    let empty = MemFs::new().with("/etc/os-release", "");
    assert!(matches!(
        newest_release(&empty),
        Err(KernelError::NoKernelInRoot { .. })
    ));
}

#[test]
fn select_uses_uname_when_live() {
    let host = FakeHost::new(
        "6.1.0-27-amd64",
        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
        "x86_64",
    );
    let k = KernelInfo::select(&MemFs::new(), &host, true, None).unwrap();
    assert_eq!(k.release, "6.1.0-27-amd64");
    assert_eq!(k.release_source, ReleaseSource::Uname);
    assert_eq!(k.arch_source, ArchSource::Uname);
    assert!(k.version.unwrap().contains("Debian 6.1.115-1"));
}

#[test]
fn select_with_other_release_has_no_uname_version() {
    let host = FakeHost::new("6.1.0-27-amd64", "#1 SMP", "aarch64");
    let k = KernelInfo::select(&MemFs::new(), &host, true, Some("6.1.0-28-amd64")).unwrap();
    assert_eq!(k.version, None);
    assert_eq!(
        (k.arch.as_str(), k.arch_source),
        ("x86_64", ArchSource::Release)
    );
    let k = KernelInfo::select(&MemFs::new(), &host, false, Some("6.8.0-45-generic")).unwrap();
    assert_eq!(
        (k.arch.as_str(), k.arch_source),
        ("aarch64", ArchSource::ThisMachine)
    );
}

#[test]
fn too_old_and_garbage() {
    let k = kernel("2.6.32-754.35.1.el6.x86_64", None);
    let err = k.check_supported().unwrap_err();
    assert!(matches!(err, KernelError::TooOld { .. }));
    assert_eq!(err.category(), Exit::Unsupported);
    assert!(err.to_string().contains("older than 3.10"));
    let host = FakeHost::new("6.1.0", "", "x86_64");
    let err = KernelInfo::select(&MemFs::new(), &host, false, Some("latest")).unwrap_err();
    assert_eq!(err.category(), Exit::Usage);
}

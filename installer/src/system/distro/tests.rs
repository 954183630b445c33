use super::*;
use crate::system::sysroot::fake::MemFs;

#[test]
fn os_release_wins_over_release_files() {
    let fs = MemFs::new()
        .with(
            "/etc/os-release",
            "ID=\"rocky\"\nVERSION_ID=\"9.3\"\nNAME=\"Rocky Linux\"\n",
        )
        .with(
            "/etc/redhat-release",
            "Rocky Linux release 9.3 (Blue Onyx)\n",
        );
    let d = detect(&fs).unwrap();
    assert_eq!(d.row.label, "Rocky Linux 9");
    assert_eq!(d.identity.source, "/etc/os-release");
}

#[test]
fn usr_lib_os_release_is_the_second_choice() {
    let fs = MemFs::new().with("/usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    assert_eq!(detect(&fs).unwrap().row.family, Family::Debian);
}

#[test]
fn release_file_fallbacks() {
    let fs = MemFs::new().with(
        "/etc/centos-release",
        "CentOS Linux release 7.9.2009 (Core)\n",
    );
    let d = detect(&fs).unwrap();
    assert_eq!((d.row.id, d.row.min_major), ("centos", 7));
    let fs = MemFs::new().with("/etc/debian_version", "11.11\n");
    let d = detect(&fs).unwrap();
    assert_eq!(d.identity.version_id.as_deref(), Some("11.11"));
    assert_eq!(d.row.id, "debian");
    let fs = MemFs::new().with(
        "/etc/SuSE-release",
        "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 5\n",
    );
    assert_eq!(detect(&fs).unwrap().row.label, "SLES 12");
}

#[test]
fn id_is_case_insensitive() {
    let fs = MemFs::new().with(
        "/etc/os-release",
        "ID=\"OpenCloudOS\"\nVERSION_ID=\"8.6\"\n",
    );
    assert_eq!(detect(&fs).unwrap().row.label, "OpenCloudOS 8");
}

#[test]
fn centos6_is_too_old() {
    let fs = MemFs::new().with("/etc/redhat-release", "CentOS release 6.10 (Final)\n");
    let err = detect(&fs).unwrap_err();
    assert!(matches!(err, DistroError::TooOld { .. }), "{err}");
    assert_eq!(err.category(), Exit::Unsupported);
    assert!(err.to_string().contains("EL6"));
}

#[test]
fn unknown_distro_names_what_it_saw_and_suggests_compile() {
    let fs = MemFs::new().with(
        "/etc/os-release",
        "NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n",
    );
    let err = detect(&fs).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ID=arch"), "{text}");
    assert!(text.contains("VERSION_ID=(none)"), "{text}");
    assert!(text.contains("\"Arch Linux\""), "{text}");
    assert!(text.contains("--compile"), "{text}");
}

#[test]
fn unknown_release_of_known_distro() {
    let fs = MemFs::new().with(
        "/etc/os-release",
        "ID=rhel\nVERSION_ID=\"10.0\"\nNAME=\"Red Hat Enterprise Linux\"\n",
    );
    let err = detect(&fs).unwrap_err();
    assert!(matches!(err, DistroError::UnknownRelease { .. }));
    assert!(err.to_string().contains("rhel 7, 8, 9"), "{err}");
}

#[test]
fn nothing_to_read() {
    let err = detect(&MemFs::new()).unwrap_err();
    assert!(matches!(err, DistroError::NotIdentified { .. }));
    assert!(err.to_string().contains("/etc/os-release"));
}

#[test]
fn kylin_server_version_and_platform_majors() {
    let id = |text: &str| identify(&MemFs::new().with("/etc/os-release", text)).unwrap();
    assert_eq!(id("ID=kylin\nVERSION_ID=\"V10\"\n").major(), Some(10));
    assert_eq!(id("ID=x\nVERSION_ID=\"22.03\"\n").major(), Some(22));
    assert_eq!(id("ID=x\nVERSION_ID=rolling\n").major(), None);
    let al = id("ID=x\nVERSION_ID=3\nPLATFORM_ID=\"platform:al8\"\n");
    assert_eq!((al.major(), al.platform_major()), (Some(3), Some(8)));
    assert_eq!(
        id("ID=x\nPLATFORM_ID=platform:f39\n").platform_major(),
        Some(39)
    );
}

#[test]
fn platform_id_beats_version_id_for_el_clones() {
    // Alibaba Cloud Linux 3 counts its own versions; PLATFORM_ID says EL8.
    let fs = MemFs::new().with(
        "/etc/os-release",
        "ID=newclone\nID_LIKE=\"rhel fedora centos\"\nVERSION_ID=3\nPLATFORM_ID=\"platform:al8\"\n",
    );
    let d = detect(&fs).unwrap();
    assert_eq!(d.row.el_major, Some(8));
    assert!(d.assumed.unwrap().contains("PLATFORM_ID=platform:al8"));
    // Without PLATFORM_ID, VERSION_ID decides.
    let fs = MemFs::new().with(
        "/etc/os-release",
        "ID=newclone\nID_LIKE=centos\nVERSION_ID=\"7.9\"\n",
    );
    let d = detect(&fs).unwrap();
    assert_eq!(
        (d.row.el_major, d.row.package_manager),
        (Some(7), PackageManager::Yum)
    );
    assert!(d.assumed.unwrap().contains("VERSION_ID=7.9"));
}

#[test]
fn id_like_names_the_family_when_the_id_row_is_of_another() {
    // Kylin's desktop edition is Debian-based and shares ID=kylin with the
    // rpm-based server (whose row this is).
    let fs = MemFs::new().with(
        "/etc/os-release",
        "ID=kylin\nID_LIKE=debian\nVERSION_ID=\"v10\"\n",
    );
    let d = detect(&fs).unwrap();
    assert_eq!(d.row.family, Family::Debian);
    let why = d.assumed.unwrap();
    assert!(
        why.contains("row for ID=kylin is of another family"),
        "{why}"
    );
    // The server itself matches its row and assumes nothing.
    let fs = MemFs::new().with("/etc/os-release", "ID=kylin\nVERSION_ID=\"V10\"\n");
    let d = detect(&fs).unwrap();
    assert_eq!((d.row.family, d.assumed), (Family::El, None));
}

#[test]
fn id_like_does_not_rescue_a_known_id_at_an_unknown_release() {
    let fs = MemFs::new().with(
        "/etc/os-release",
        "ID=rocky\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"10.0\"\nPLATFORM_ID=\"platform:el10\"\n",
    );
    assert!(matches!(
        detect(&fs).unwrap_err(),
        DistroError::UnknownRelease { .. }
    ));
}

#[test]
fn no_known_family_keeps_todays_refusal() {
    let fs = MemFs::new().with(
        "/etc/os-release",
        "ID=gentoo\nID_LIKE=\"other\"\nNAME=Gentoo\n",
    );
    let err = detect(&fs).unwrap_err();
    assert!(matches!(err, DistroError::Unknown { .. }), "{err}");
    assert_eq!(err.category(), Exit::Unsupported);
}

#[test]
fn missing_id_defaults_to_linux() {
    let fs = MemFs::new().with("/etc/os-release", "NAME=Thing\n");
    assert_eq!(identify(&fs).unwrap().id, "linux");
}

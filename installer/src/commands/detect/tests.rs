use super::*;
use crate::system::sysroot::fake::{FakeHost, MemFs};

fn run(fs: &MemFs, live: bool, release: Option<&str>) -> Report {
    let host = FakeHost::new(
        "6.1.0-27-amd64",
        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
        "x86_64",
    );
    let ours = OurModule::this_release();
    detect(
        Target {
            fs,
            host: &host,
            live,
            kernel_release: release,
            ours: &ours,
        },
        "/".to_owned(),
    )
}

#[test]
fn live_debian() {
    let fs = MemFs::new()
        .with(
            "/etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .with("/lib/modules/6.1.0-27-amd64/build/Makefile", "");
    let r = run(&fs, true, None);
    assert_eq!(r.exit(), Exit::Ok);
    let h = r.headers.unwrap();
    assert_eq!(h.package.package, "linux-headers-6.1.0-27-amd64");
    assert_eq!(h.package.version.as_deref(), Some("6.1.115-1"));
    assert!(h.installed);
    let text = render_text(&run(&fs, true, None), Verbosity::Normal);
    assert!(
        text.contains("linux-headers-6.1.0-27-amd64 (version 6.1.115-1), installed"),
        "{text}"
    );
}

#[test]
fn unknown_distro_still_reports_kernel() {
    let fs = MemFs::new().with(
        "/etc/os-release",
        "ID=alpine\nVERSION_ID=3.19.1\nNAME=\"Alpine Linux\"\n",
    );
    let r = run(&fs, true, None);
    assert_eq!(r.exit(), Exit::Unsupported);
    assert!(r.kernel.is_some());
    assert_eq!(r.distro.as_ref().unwrap().id, "alpine");
    assert!(r.headers.is_none());
    assert!(r.error.unwrap().message.contains("--compile"));
}

#[test]
fn bad_release_is_a_usage_error_even_on_unknown_distro() {
    let fs = MemFs::new().with("/etc/os-release", "ID=alpine\n");
    let r = run(&fs, false, Some("banana"));
    assert_eq!(r.exit(), Exit::Usage);
}

#[test]
fn old_kernel_on_supported_distro() {
    let fs = MemFs::new().with("/etc/os-release", "ID=centos\nVERSION_ID=\"7\"\n");
    let r = run(&fs, false, Some("2.6.32-754.el6.x86_64"));
    assert_eq!(r.exit(), Exit::Unsupported);
    assert!(r.error.unwrap().message.contains("older than 3.10"));
    assert!(r
        .warnings
        .iter()
        .any(|w| w.category == Exit::HeadersUnavailable));
}

#[test]
fn quiet_prints_nothing() {
    let fs = MemFs::new().with("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    assert!(render_text(&run(&fs, true, None), Verbosity::Quiet).is_empty());
}

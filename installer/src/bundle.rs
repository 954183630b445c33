//! The module source toa-install carries, so that DKMS and `mirror build`
//! can compile toa.ko on hosts that have nothing but this binary.
//!
//! [`MODULE_SOURCE`] is the one list of files taken from `module-c-shim/`;
//! a test checks that it names every source file there and nothing else.

/// One file of the module source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the module's top directory (`compat/compat.h`).
    pub path: &'static str,
    /// The file's bytes, as they were when toa-install was built.
    pub contents: &'static [u8],
}

macro_rules! bundle {
    ($($path:literal),* $(,)?) => {
        &[$(SourceFile {
            path: $path,
            contents: include_bytes!(concat!("../../module-c-shim/", $path)),
        }),*]
    };
}

/// Every file needed to build toa.ko: `Kbuild`, `Makefile`, `*.c`, `*.h`,
/// `compat/*`, `include/uapi/toa.h` and `version.h`.
pub static MODULE_SOURCE: &[SourceFile] = bundle![
    "Kbuild",
    "Makefile",
    "getname.c",
    "hook.c",
    "lookup.c",
    "main.c",
    "parse.c",
    "stats.c",
    "store.c",
    "trust.c",
    "parse.h",
    "toa.h",
    "version.h",
    "compat/Kbuild.include",
    "compat/compat.h",
    "include/uapi/toa.h",
];

/// The module version the bundled source declares (`TOA_VERSION` in
/// `version.h`).
pub fn module_version() -> Option<&'static str> {
    let header = MODULE_SOURCE.iter().find(|f| f.path == "version.h")?;
    let text = std::str::from_utf8(header.contents).ok()?;
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("#define TOA_VERSION")?;
        rest.trim().strip_prefix('"')?.strip_suffix('"')
    })
}

/// The version toa-install installs: the module's, which the workspace
/// version repeats (checked by a test).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{rel}/"), out);
            } else {
                out.push(rel);
            }
        }
    }

    #[test]
    fn list_matches_the_module_directory() {
        let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("../module-c-shim");
        let mut found = Vec::new();
        walk(&top, "", &mut found);
        // Build products and editor leftovers are not source.
        found.retain(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            let source = name == "Kbuild"
                || name == "Makefile"
                || name.ends_with(".c")
                || name.ends_with(".h")
                || p.starts_with("compat/");
            source && !name.starts_with('.') && !name.ends_with(".mod.c")
        });
        found.sort();
        let mut listed: Vec<String> = MODULE_SOURCE.iter().map(|f| f.path.to_owned()).collect();
        listed.sort();
        assert_eq!(listed, found);
    }

    /// `dkms/MANIFEST` is this list, one path a line, for the packaging
    /// scripts; `TOA_UPDATE_SNAPSHOTS=1` rewrites it (as it does the plan
    /// snapshots, which list the same files).
    #[test]
    fn manifest_is_the_list() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dkms/MANIFEST");
        let listed: String = MODULE_SOURCE
            .iter()
            .map(|f| format!("{}\n", f.path))
            .collect();
        if std::env::var_os("TOA_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &listed).unwrap();
        }
        let manifest = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            manifest, listed,
            "dkms/MANIFEST must list MODULE_SOURCE, in order; run with TOA_UPDATE_SNAPSHOTS=1 to rewrite it"
        );
    }

    #[test]
    fn dkms_conf_is_the_template_for_this_version() {
        let template = crate::plan::DKMS_CONF_TEMPLATE;
        assert_eq!(template.matches("#MODULE_VERSION#").count(), 1);
        let conf = crate::plan::dkms_conf();
        assert!(conf.contains(&format!("PACKAGE_VERSION=\"{VERSION}\"\n")));
        for line in [
            "PACKAGE_NAME=\"toa\"",
            "BUILT_MODULE_NAME[0]=\"toa\"",
            "DEST_MODULE_LOCATION[0]=\"/extra\"",
            "AUTOINSTALL=\"yes\"",
        ] {
            assert!(conf.lines().any(|l| l == line), "dkms.conf lacks {line}");
        }
    }

    #[test]
    fn module_and_installer_versions_agree() {
        assert_eq!(module_version(), Some(VERSION));
    }
}

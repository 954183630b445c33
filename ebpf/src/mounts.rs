//! Where the cgroup v2 hierarchy and bpffs are mounted, from
//! /proc/self/mountinfo (the unified hierarchy may sit at /sys/fs/cgroup or,
//! on hybrid v1/v2 hosts, at /sys/fs/cgroup/unified or elsewhere).

use std::path::PathBuf;

use crate::error::{io, Result};

/// The mount table this process sees.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One mountinfo line: the mount's root within its filesystem, where it is
/// mounted, and the filesystem type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Root of the mount within the filesystem ("/" for a whole hierarchy).
    pub root: String,
    /// Mount point.
    pub point: PathBuf,
    /// Filesystem type.
    pub fstype: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let fstype = post.split(' ').next()?;
            Some(Mount {
                root: unescape(f.get(3)?),
                point: PathBuf::from(unescape(f.get(4)?)),
                fstype: fstype.to_string(),
            })
        })
        .collect()
}

/// The first mount of the whole cgroup v2 hierarchy (root "/"), if any.
pub fn cgroup2_root(mounts: &[Mount]) -> Option<PathBuf> {
    mounts
        .iter()
        .find(|m| m.fstype == "cgroup2" && m.root == "/")
        .map(|m| m.point.clone())
}

/// Whether `dir` is a bpffs mount point.
pub fn is_bpffs(mounts: &[Mount], dir: &str) -> bool {
    mounts
        .iter()
        .any(|m| m.fstype == "bpf" && m.point == std::path::Path::new(dir))
}

/// Read this process's mount table.
pub fn read() -> Result<Vec<Mount>> {
    let text = std::fs::read_to_string(MOUNTINFO).map_err(io(format!("read {MOUNTINFO}")))?;
    Ok(parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
26 25 0:23 / /sys rw,nosuid shared:2 - sysfs sysfs rw
27 26 0:24 / /sys/fs/cgroup ro shared:3 - tmpfs tmpfs ro,mode=755
28 27 0:25 / /sys/fs/cgroup/unified rw shared:4 - cgroup2 cgroup2 rw,nsdelegate
29 27 0:26 / /sys/fs/cgroup/systemd rw shared:5 - cgroup cgroup rw,name=systemd
30 26 0:27 / /sys/fs/bpf rw shared:6 - bpf bpf rw,mode=700
";

    #[test]
    fn hybrid_host_finds_the_unified_hierarchy() {
        let m = parse(HYBRID);
        assert_eq!(
            cgroup2_root(&m),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert!(is_bpffs(&m, "/sys/fs/bpf"));
        assert!(!is_bpffs(&m, "/sys"));
    }

    #[test]
    fn a_sub_cgroup_bind_mount_is_not_the_root() {
        let m = parse(
            "40 1 0:30 /system.slice /mnt/x rw - cgroup2 cgroup2 rw\n\
             41 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(cgroup2_root(&m), Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(cgroup2_root(&m[..1]), None);
    }

    #[test]
    fn escapes_and_v1_only() {
        let m = parse("50 1 0:31 / /mnt/a\\040b rw - cgroup2 none rw\n");
        assert_eq!(m[0].point, PathBuf::from("/mnt/a b"));
        let v1 = parse("29 27 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
        assert_eq!(cgroup2_root(&v1), None);
    }
}

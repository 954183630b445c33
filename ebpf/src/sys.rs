//! The two bpf() commands the loader issues itself: BPF_LINK_CREATE for a
//! cgroup attachment (aya 0.14 cannot hand out a getsockopt link as a
//! pinnable FdLink) and BPF_OBJ_PIN to pin that link.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use aya_obj::generated::bpf_cmd;

/// A zeroed `union bpf_attr` large enough for every command used here; the
/// kernel accepts a larger attr as long as the tail is zero.
#[repr(C, align(8))]
struct Attr([u32; 32]);

fn bpf(cmd: bpf_cmd, attr: &mut Attr) -> std::io::Result<i64> {
    // SAFETY: attr is a valid, initialised buffer of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_int,
            attr as *mut Attr,
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// BPF_LINK_CREATE: attach `prog` to the cgroup `target` as a bpf_link
/// (several programs per hook can coexist; the link's last reference going
/// away detaches it).
pub fn link_create(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: u32,
) -> std::io::Result<OwnedFd> {
    let mut a = Attr([0; 32]);
    // struct { __u32 prog_fd; __u32 target_fd; __u32 attach_type; __u32 flags; }
    a.0[0] = prog.as_raw_fd() as u32;
    a.0[1] = target.as_raw_fd() as u32;
    a.0[2] = attach_type;
    let fd = bpf(bpf_cmd::BPF_LINK_CREATE, &mut a)?;
    // SAFETY: the kernel returned a new file descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_OBJ_PIN: pin `fd` at `path` on bpffs.
pub fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut a = Attr([0; 32]);
    // struct { __aligned_u64 pathname; __u32 bpf_fd; __u32 file_flags; }
    let ptr = c.as_ptr() as u64;
    a.0[0] = ptr as u32;
    a.0[1] = (ptr >> 32) as u32;
    a.0[2] = fd.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_OBJ_PIN, &mut a).map(|_| ())
}

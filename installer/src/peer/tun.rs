//! A tun device (`IFF_TUN | IFF_NO_PI`) and its address configuration,
//! through ioctls only (no `ip` tool).

use std::ffi::CString;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::PeerError;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca; // _IOW('T', 202, int)
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFNAMSIZ: usize = 16;

/// `struct ifreq` with the union used as flags.
#[repr(C)]
struct IfReqFlags {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `struct ifreq` with the union used as an IPv4 socket address.
#[repr(C)]
struct IfReqAddr {
    name: [u8; IFNAMSIZ],
    addr: libc::sockaddr_in,
    _pad: [u8; 8],
}

/// `struct ifreq` with the union used as an interface index.
#[repr(C)]
struct IfReqIndex {
    name: [u8; IFNAMSIZ],
    index: libc::c_int,
    _pad: [u8; 20],
}

/// `struct in6_ifreq` (linux/ipv6.h).
#[repr(C)]
struct In6IfReq {
    addr: libc::in6_addr,
    prefixlen: u32,
    ifindex: libc::c_int,
}

fn ifname(name: &str) -> Result<[u8; IFNAMSIZ], PeerError> {
    let ok = !name.is_empty()
        && name.len() < IFNAMSIZ
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok {
        return Err(PeerError::BadName(name.to_string()));
    }
    let mut n = [0u8; IFNAMSIZ];
    n[..name.len()].copy_from_slice(name.as_bytes());
    Ok(n)
}

fn last_error(what: String) -> PeerError {
    let e = io::Error::last_os_error();
    PeerError::from_io(what, e)
}

/// A datagram socket used only as a handle for interface ioctls.
fn ioctl_socket(family: libc::c_int) -> Result<OwnedFd, PeerError> {
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        let what = if family == libc::AF_INET6 {
            "open an AF_INET6 socket (is IPv6 disabled in this kernel?)"
        } else {
            "open an AF_INET socket"
        };
        return Err(last_error(what.to_string()));
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// # Safety
/// `arg` must point to the structure the request expects.
unsafe fn ioctl<T>(fd: RawFd, req: libc::c_ulong, arg: *mut T) -> io::Result<()> {
    // The request argument type differs between libc flavours.
    if libc::ioctl(fd, req as _, arg) < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Bring an interface up (`SIOCGIFFLAGS` + `SIOCSIFFLAGS`), e.g. `lo` in a new
/// network namespace.
pub fn set_link_up(name: &str) -> Result<(), PeerError> {
    let sock = ioctl_socket(libc::AF_INET)?;
    let mut req = IfReqFlags {
        name: ifname(name)?,
        flags: 0,
        _pad: [0; 22],
    };
    // SAFETY: req is a properly sized struct ifreq.
    unsafe { ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) }
        .map_err(|e| PeerError::from_io(format!("read the flags of interface {name}"), e))?;
    req.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: as above.
    unsafe { ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) }
        .map_err(|e| PeerError::from_io(format!("bring interface {name} up"), e))
}

fn write_sysctl(path: &str, value: &str) -> Result<(), PeerError> {
    std::fs::write(path, value).map_err(|e| PeerError::from_io(format!("write {path}"), e))
}

/// An open tun device. The device disappears when this is dropped.
#[derive(Debug)]
pub struct Tun {
    fd: OwnedFd,
    name: String,
}

impl Tun {
    /// Create (or attach to) tun device `name` in `IFF_TUN | IFF_NO_PI` mode,
    /// non-blocking.
    pub fn create(name: &str) -> Result<Tun, PeerError> {
        let n = ifname(name)?;
        let path = CString::new("/dev/net/tun").unwrap();
        // SAFETY: valid NUL-terminated path.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
                    PeerError::TunMissing
                }
                _ => PeerError::from_io("open /dev/net/tun".to_string(), e),
            });
        }
        // SAFETY: fresh descriptor owned from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = IfReqFlags {
            name: n,
            flags: IFF_TUN | IFF_NO_PI,
            _pad: [0; 22],
        };
        // SAFETY: TUNSETIFF takes a struct ifreq.
        unsafe { ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) }.map_err(|e| {
            if e.raw_os_error() == Some(libc::EBADFD) || e.raw_os_error() == Some(libc::ENODEV) {
                PeerError::TunMissing
            } else {
                PeerError::from_io(format!("create tun device {name} (TUNSETIFF)"), e)
            }
        })?;
        let end = req.name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        let name = String::from_utf8_lossy(&req.name[..end]).into_owned();
        Ok(Tun { fd, name })
    }

    /// The interface name the kernel gave the device.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bring the device up.
    pub fn set_up(&self) -> Result<(), PeerError> {
        set_link_up(&self.name)
    }

    fn ifindex(&self) -> Result<libc::c_int, PeerError> {
        let sock = ioctl_socket(libc::AF_INET)?;
        let mut req = IfReqIndex {
            name: ifname(&self.name)?,
            index: 0,
            _pad: [0; 20],
        };
        // SAFETY: SIOCGIFINDEX takes a struct ifreq.
        unsafe { ioctl(sock.as_raw_fd(), libc::SIOCGIFINDEX, &mut req) }
            .map_err(|e| PeerError::from_io(format!("look up interface {}", self.name), e))?;
        Ok(req.index)
    }

    /// Assign an IPv4 address with its prefix length (adds the on-link route).
    pub fn add_ipv4(&self, addr: Ipv4Addr, prefix: u8) -> Result<(), PeerError> {
        if prefix > 32 {
            return Err(PeerError::BadAddress(format!("{addr}/{prefix}")));
        }
        let sock = ioctl_socket(libc::AF_INET)?;
        let sin = |a: Ipv4Addr| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(a.octets()),
            },
            sin_zero: [0; 8],
        };
        let mut req = IfReqAddr {
            name: ifname(&self.name)?,
            addr: sin(addr),
            _pad: [0; 8],
        };
        // SAFETY: SIOCSIFADDR takes a struct ifreq holding a sockaddr_in.
        unsafe { ioctl(sock.as_raw_fd(), libc::SIOCSIFADDR, &mut req) }.map_err(|e| {
            PeerError::from_io(format!("assign {addr} to {} (SIOCSIFADDR)", self.name), e)
        })?;
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        req.addr = sin(Ipv4Addr::from(mask));
        // SAFETY: as above.
        unsafe { ioctl(sock.as_raw_fd(), libc::SIOCSIFNETMASK, &mut req) }.map_err(|e| {
            PeerError::from_io(
                format!("set netmask /{prefix} on {} (SIOCSIFNETMASK)", self.name),
                e,
            )
        })
    }

    /// Assign an IPv6 address with its prefix length. Duplicate address
    /// detection is switched off on the device first, and the call returns
    /// once the address can be bound: even without DAD the kernel clears its
    /// tentative flag from a workqueue, and a bind() before that fails with
    /// EADDRNOTAVAIL.
    pub fn add_ipv6(&self, addr: Ipv6Addr, prefix: u8) -> Result<(), PeerError> {
        if prefix > 128 {
            return Err(PeerError::BadAddress(format!("{addr}/{prefix}")));
        }
        let conf = format!("/proc/sys/net/ipv6/conf/{}", self.name);
        if !std::path::Path::new(&conf).exists() {
            return Err(PeerError::Ipv6Unavailable(self.name.clone()));
        }
        write_sysctl(&format!("{conf}/accept_dad"), "0")?;
        write_sysctl(&format!("{conf}/dad_transmits"), "0")?;
        let sock = ioctl_socket(libc::AF_INET6)?;
        let mut req = In6IfReq {
            addr: libc::in6_addr {
                s6_addr: addr.octets(),
            },
            prefixlen: u32::from(prefix),
            ifindex: self.ifindex()?,
        };
        // SAFETY: SIOCSIFADDR on an AF_INET6 socket takes a struct in6_ifreq.
        unsafe { ioctl(sock.as_raw_fd(), libc::SIOCSIFADDR, &mut req) }.map_err(|e| {
            PeerError::from_io(
                format!("assign {addr}/{prefix} to {} (SIOCSIFADDR)", self.name),
                e,
            )
        })?;
        wait_bindable(addr, &self.name)
    }

    /// Read one packet if one is waiting (`Ok(None)` otherwise).
    pub fn read_packet(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: buf is valid for buf.len() bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            if n >= 0 {
                return Ok(Some(n as usize));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return Ok(None),
                io::ErrorKind::Interrupted => continue,
                _ => return Err(e),
            }
        }
    }

    /// Write one whole IP packet.
    pub fn write_packet(&self, p: &[u8]) -> io::Result<()> {
        loop {
            // SAFETY: p is valid for p.len() bytes.
            let n = unsafe {
                libc::write(
                    self.fd.as_raw_fd(),
                    p.as_ptr() as *const libc::c_void,
                    p.len(),
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Wait until a packet can be read or `timeout_ms` passes. Returns
    /// whether the device is readable.
    pub fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(e);
        }
        Ok(n > 0)
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

// Layout checks: these structures are handed to the kernel.
const _: () = assert!(mem::size_of::<IfReqFlags>() == 40);
const _: () = assert!(mem::size_of::<IfReqAddr>() == 40);
const _: () = assert!(mem::size_of::<IfReqIndex>() == 40);
const _: () = assert!(mem::size_of::<In6IfReq>() == 24);

/// Waits (3 s at most) until `addr` can be bound, i.e. is no longer
/// tentative.
fn wait_bindable(addr: Ipv6Addr, dev: &str) -> Result<(), PeerError> {
    let start = std::time::Instant::now();
    loop {
        match std::net::UdpSocket::bind((addr, 0)) {
            Ok(_) => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EADDRNOTAVAIL)
                    && start.elapsed() < std::time::Duration::from_secs(3) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => {
                return Err(PeerError::from_io(
                    format!("{addr} on {dev} did not become usable"),
                    e,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(ifname("toa0").is_ok());
        assert!(ifname("").is_err());
        assert!(ifname("a-very-long-name0").is_err());
        assert!(ifname("bad/name").is_err());
        assert_eq!(&ifname("lo").unwrap()[..3], b"lo\0");
    }
}

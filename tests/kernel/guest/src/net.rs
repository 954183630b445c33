//! The server side: listeners, and what accept(), getpeername(),
//! getsockname() and getsockopt(TOA_SO_GET_LOOKUP) return for a connection.

use std::fmt;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// `TOA_SO_GET_LOOKUP` from `module-c-shim/include/uapi/toa.h`.
pub const TOA_SO_GET_LOOKUP: libc::c_int = 4096;

/// `SO_MEMINFO` from `asm-generic/socket.h` (x86_64 uses the generic value).
const SO_MEMINFO: libc::c_int = 55;

/// Which listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// AF_INET on 0.0.0.0.
    V4,
    /// AF_INET6 on [::], IPV6_V6ONLY=0.
    V6,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "AF_INET",
            Family::V6 => "AF_INET6",
        })
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Name of an errno value, for messages.
pub fn errname(e: i32) -> String {
    match e {
        libc::ENOENT => "ENOENT".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENOPROTOOPT => "ENOPROTOOPT".into(),
        libc::ENOTCONN => "ENOTCONN".into(),
        libc::EAGAIN => "EAGAIN".into(),
        libc::EBUSY => "EBUSY".into(),
        libc::EEXIST => "EEXIST".into(),
        libc::EPERM => "EPERM".into(),
        _ => format!("errno {e}"),
    }
}

/// A socket address exactly as the kernel returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawAddr {
    /// The length the kernel wrote back.
    pub len: u32,
    /// `sa_family`.
    pub family: i32,
    /// Address and port (v4-mapped IPv6 kept as IPv6); `None` for other
    /// families.
    pub addr: Option<(IpAddr, u16)>,
}

impl RawAddr {
    /// What an application would get for `addr` (len 16 for IPv4, 28 for IPv6).
    pub fn of(addr: SocketAddr) -> RawAddr {
        match addr {
            SocketAddr::V4(a) => RawAddr {
                len: 16,
                family: libc::AF_INET,
                addr: Some((IpAddr::V4(*a.ip()), a.port())),
            },
            SocketAddr::V6(a) => RawAddr {
                len: 28,
                family: libc::AF_INET6,
                addr: Some((IpAddr::V6(*a.ip()), a.port())),
            },
        }
    }

    /// The address with v4-mapped IPv6 turned into IPv4.
    pub fn canonical(&self) -> Option<SocketAddr> {
        self.addr
            .map(|(ip, port)| SocketAddr::new(ip.to_canonical(), port))
    }

    fn from_storage(st: &libc::sockaddr_storage, len: libc::socklen_t) -> RawAddr {
        let family = i32::from(st.ss_family);
        let addr = match family {
            libc::AF_INET if len as usize >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin = unsafe { &*(st as *const _ as *const libc::sockaddr_in) };
                Some((
                    IpAddr::V4(Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes())),
                    u16::from_be(sin.sin_port),
                ))
            }
            libc::AF_INET6 if len as usize >= 24 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6 = unsafe { &*(st as *const _ as *const libc::sockaddr_in6) };
                Some((
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                    u16::from_be(sin6.sin6_port),
                ))
            }
            _ => None,
        };
        RawAddr { len, family, addr }
    }
}

impl fmt::Display for RawAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fam = match self.family {
            libc::AF_INET => "AF_INET".to_string(),
            libc::AF_INET6 => "AF_INET6".to_string(),
            n => format!("family {n}"),
        };
        match self.addr {
            Some((IpAddr::V6(ip), port)) => write!(f, "{fam} [{ip}]:{port} len {}", self.len),
            Some((ip, port)) => write!(f, "{fam} {ip}:{port} len {}", self.len),
            None => write!(f, "{fam} len {}", self.len),
        }
    }
}

type GetName =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn get_name(fd: RawFd, f: GetName) -> Result<RawAddr, i32> {
    // SAFETY: zeroed sockaddr_storage is a valid value.
    let mut st: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: st is large enough for any address; len says so.
    if unsafe { f(fd, &mut st as *mut _ as *mut libc::sockaddr, &mut len) } < 0 {
        return Err(errno());
    }
    Ok(RawAddr::from_storage(&st, len))
}

/// getpeername() with a sockaddr_storage buffer.
pub fn peer_name(fd: RawFd) -> Result<RawAddr, i32> {
    get_name(fd, libc::getpeername)
}

/// getsockname() with a sockaddr_storage buffer.
pub fn sock_name(fd: RawFd) -> Result<RawAddr, i32> {
    get_name(fd, libc::getsockname)
}

/// getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP): the IPv6 client and port.
pub fn toa_lookup(fd: RawFd) -> Result<SocketAddr, i32> {
    let mut buf = [0u8; 20];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: buf holds len bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_IP,
            TOA_SO_GET_LOOKUP,
            buf.as_mut_ptr() as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(errno());
    }
    if len != 20 {
        return Err(-(len as i32)); // reported as an odd length
    }
    let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&buf[..16]).unwrap());
    Ok(SocketAddr::new(
        IpAddr::V6(ip),
        u16::from_be_bytes([buf[16], buf[17]]),
    ))
}

fn setsockopt_int(fd: RawFd, level: i32, name: i32, v: i32) -> Result<(), i32> {
    // SAFETY: an int option.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &v as *const i32 as *const libc::c_void,
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Wait for `events` on `fd` for at most `timeout`; true when ready.
pub fn wait_fd(fd: RawFd, events: i16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) };
        if n > 0 {
            return true;
        }
        if n == 0 || errno() != libc::EINTR || left.is_zero() {
            return false;
        }
    }
}

/// A listening TCP socket.
pub struct Listener {
    fd: OwnedFd,
    /// Which family.
    pub family: Family,
    /// Its port.
    pub port: u16,
}

impl Listener {
    /// Listen on 0.0.0.0:port (V4) or [::]:port with IPV6_V6ONLY=0 (V6).
    pub fn open(family: Family, port: u16) -> Result<Listener, String> {
        let af = match family {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        };
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(af, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(format!("socket({family}): {}", errname(errno())));
        }
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)
            .map_err(|e| format!("SO_REUSEADDR: {}", errname(e)))?;
        let r = match family {
            Family::V4 => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: port.to_be(),
                    sin_addr: libc::in_addr { s_addr: 0 },
                    sin_zero: [0; 8],
                };
                // SAFETY: a valid sockaddr_in.
                unsafe {
                    libc::bind(
                        raw,
                        &sin as *const _ as *const libc::sockaddr,
                        mem::size_of_val(&sin) as libc::socklen_t,
                    )
                }
            }
            Family::V6 => {
                setsockopt_int(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0)
                    .map_err(|e| format!("IPV6_V6ONLY=0: {}", errname(e)))?;
                // SAFETY: zeroed sockaddr_in6 is [::]:0.
                let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = port.to_be();
                // SAFETY: a valid sockaddr_in6.
                unsafe {
                    libc::bind(
                        raw,
                        &sin6 as *const _ as *const libc::sockaddr,
                        mem::size_of_val(&sin6) as libc::socklen_t,
                    )
                }
            }
        };
        if r < 0 {
            return Err(format!("bind {family} port {port}: {}", errname(errno())));
        }
        // SAFETY: listen(2) on our socket.
        if unsafe { libc::listen(raw, 4096) } < 0 {
            return Err(format!("listen {family}: {}", errname(errno())));
        }
        Ok(Listener { fd, family, port })
    }

    /// The raw descriptor.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Segments the kernel dropped on this listener (`SK_MEMINFO_DROPS` of
    /// getsockopt(SO_MEMINFO)); among them the final ACKs of handshakes
    /// that were discarded before the child socket was created (for
    /// instance for malformed options, `SKB_DROP_REASON_TCP_AUTH_HDR`).
    /// `None` when the kernel does not say.
    pub fn drops(&self) -> Option<u64> {
        let mut info = [0u32; 16];
        let mut len = mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: info holds len bytes.
        let r = unsafe {
            libc::getsockopt(
                self.raw(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr() as *mut libc::c_void,
                &mut len,
            )
        };
        let i = libc::SK_MEMINFO_DROPS as usize;
        if r < 0 || (len as usize) < (i + 1) * mem::size_of::<u32>() {
            return None;
        }
        Some(u64::from(info[i]))
    }

    /// accept() with a sockaddr_storage buffer, waiting at most `timeout`.
    pub fn accept(&self, timeout: Duration) -> Result<(OwnedFd, RawAddr), String> {
        if !wait_fd(self.raw(), libc::POLLIN, timeout) {
            return Err(format!(
                "{} listener: nothing to accept within {timeout:?}",
                self.family
            ));
        }
        // SAFETY: zeroed storage is valid.
        let mut st: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: st holds len bytes.
        let fd = unsafe {
            libc::accept4(
                self.raw(),
                &mut st as *mut _ as *mut libc::sockaddr,
                &mut len,
                libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(format!("accept on {}: {}", self.family, errname(errno())));
        }
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok((fd, RawAddr::from_storage(&st, len)))
    }

    /// Accept and abort whatever is queued (left over by a failed case).
    pub fn drain(&self) -> usize {
        let mut n = 0;
        while let Ok((fd, _)) = self.accept(Duration::ZERO) {
            abort_close(fd);
            n += 1;
        }
        n
    }
}

/// Close with SO_LINGER {1, 0}: RST, the socket is destroyed at once.
pub fn abort_close(fd: OwnedFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a struct linger.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            mem::size_of_val(&l) as libc::socklen_t,
        );
    }
    drop(fd);
}

/// Read until `want` bytes, EOF or `timeout`. Returns the bytes and whether
/// EOF was seen.
pub fn read_some(fd: RawFd, want: usize, timeout: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while out.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !wait_fd(fd, libc::POLLIN, left) {
            return (out, false);
        }
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n == 0 {
            return (out, true);
        }
        if n < 0 {
            if errno() == libc::EINTR || errno() == libc::EAGAIN {
                continue;
            }
            return (out, false);
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    (out, false)
}

/// Read to EOF (at most `timeout`); `None` when EOF did not come.
pub fn read_to_eof(fd: RawFd, timeout: Duration) -> Option<Vec<u8>> {
    let (data, eof) = read_some(fd, usize::MAX, timeout);
    eof.then_some(data)
}

/// Everything the server saw for one connection.
pub struct ServerView {
    /// The accepted socket.
    pub fd: OwnedFd,
    /// What accept() wrote.
    pub accept: RawAddr,
    /// getpeername().
    pub peer: Result<RawAddr, i32>,
    /// getsockname().
    pub local: Result<RawAddr, i32>,
    /// getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP).
    pub lookup: Result<SocketAddr, i32>,
}

impl ServerView {
    /// Query an accepted socket.
    pub fn of(fd: OwnedFd, accept: RawAddr) -> ServerView {
        let raw = fd.as_raw_fd();
        ServerView {
            peer: peer_name(raw),
            local: sock_name(raw),
            lookup: toa_lookup(raw),
            fd,
            accept,
        }
    }
}

/// Current CLOCK_MONOTONIC reading in nanoseconds.
pub fn monotonic_ns() -> u64 {
    // SAFETY: zeroed timespec is valid.
    let mut ts: libc::timespec = unsafe { mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

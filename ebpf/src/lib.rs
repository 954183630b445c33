//! toa's eBPF backend: the programs of `bpf/`, compiled by build.rs and
//! embedded here, and everything a loader does with them: probe the kernel,
//! attach to the cgroup v2 root and pin under [`PIN_DIR`] (so they stay after
//! the loading process exits), report, change the trusted networks and the
//! option kinds live, read the counters, and detach leaving nothing.
//!
//! Each call works on what is pinned, so separate processes (toa-install
//! install, then status, then --trust) see the same backend.

mod error;
pub mod mounts;
mod stats;
mod sys;

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, Map, MapData, PerCpuArray};
use aya::programs::ProgramType;
use aya::sys::{is_helper_supported, is_map_supported, is_program_supported, BpfHelper};
use aya::{Ebpf, EbpfLoader};

pub use error::{Error, Result};
pub use stats::{Counters, STAT_NAMES};

/// Where programs, maps and links are pinned.
pub const PIN_DIR: &str = "/sys/fs/bpf/toa";
/// Where bpffs is expected.
pub const BPFFS: &str = "/sys/fs/bpf";
/// The option kinds honoured by default (SPEC 2.1).
pub const DEFAULT_KINDS: [u8; 3] = [254, 253, 200];
/// Entries each trusted-network trie holds (bpf/toa.h).
pub const TRUSTED_MAX: usize = 1024;

/// The object built from bpf/toa.c.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/toa.bpf.o"));

/// Map names (bpf/toa.h); each is pinned as PIN_DIR/<name>.
const MAP_PEERS: &str = "toa_peers";
const MAP_CONFIG: &str = "toa_config";
const MAP_TRUSTED4: &str = "toa_trusted4";
const MAP_TRUSTED6: &str = "toa_trusted6";
const MAP_STATS: &str = "toa_stats";
const MAPS: [&str; 5] = [MAP_PEERS, MAP_CONFIG, MAP_TRUSTED4, MAP_TRUSTED6, MAP_STATS];

/// The programs (function names in bpf/), attached in this order: the
/// readers first, the sock_ops program that creates records last.
const PROGRAMS: [&str; 4] = [
    "toa_getpeername4",
    "toa_getpeername6",
    "toa_getsockopt",
    "toa_sockops",
];

fn pin_path(name: &str) -> PathBuf {
    Path::new(PIN_DIR).join(name)
}

fn link_pin(program: &str) -> PathBuf {
    pin_path(&format!("link_{program}"))
}

fn prog_pin(program: &str) -> PathBuf {
    pin_path(&format!("prog_{program}"))
}

/// Every path the backend pins, links first (unpinning a link detaches).
fn all_pins() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = PROGRAMS.iter().map(|p| link_pin(p)).collect();
    v.extend(PROGRAMS.iter().map(|p| prog_pin(p)));
    v.extend(MAPS.iter().map(|m| pin_path(m)));
    v
}

/// toa_config[0] (struct toa_bpf_config in bpf/toa.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct BpfConfig {
    kind_bits: [u32; 8],
    trust_all: u32,
    sockopt_errno: u32,
}

// SAFETY: plain old data, no padding (10 x u32).
unsafe impl aya::Pod for BpfConfig {}

fn kind_bits(kinds: &[u8]) -> [u32; 8] {
    let mut b = [0u32; 8];
    for &k in kinds {
        b[usize::from(k >> 5)] |= 1 << (k & 31);
    }
    b
}

fn kinds_of(bits: &[u32; 8]) -> Vec<u8> {
    (0..=255u8)
        .filter(|&k| bits[usize::from(k >> 5)] >> (k & 31) & 1 == 1)
        .collect()
}

/// What [`attach`] sets up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Option kinds to honour (each with length 8 or 20).
    pub kinds: Vec<u8>,
    /// Trusted proxy networks (address, prefix length); empty trusts all.
    pub trusted: Vec<(IpAddr, u8)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            kinds: DEFAULT_KINDS.to_vec(),
            trusted: Vec::new(),
        }
    }
}

/// What the kernel offers; [`Probe::missing`] empty means the backend can run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// The cgroup v2 hierarchy's mount point.
    pub cgroup2: Option<PathBuf>,
    /// Whether bpffs is mounted on [`BPFFS`] (attach mounts it otherwise).
    pub bpffs: bool,
    /// Whether a getsockopt program may set any errno (Linux 5.18+); before
    /// that, getsockopt(TOA_SO_GET_LOOKUP) without a record fails with the
    /// kernel's ENOPROTOOPT rather than ENOENT.
    pub sockopt_errno: bool,
    /// One line per missing feature.
    pub missing: Vec<String>,
}

fn perm_or(e: std::io::Error, what: &str) -> Error {
    if e.raw_os_error() == Some(libc::EPERM) {
        Error::Permission(what.to_string())
    } else {
        Error::Io {
            what: what.to_string(),
            source: e,
        }
    }
}

/// The error chain of `e` on one line; a verifier log's last lines included.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn program_error(program: &str, e: aya::programs::ProgramError) -> Error {
    use aya::programs::ProgramError;
    match &e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            // EACCES is the verifier's "no"; only EPERM is about privilege.
            if io_error.raw_os_error() == Some(libc::EPERM) {
                return Error::Permission(format!("load eBPF program {program}"));
            }
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(12).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Error::Load {
                program: program.to_string(),
                detail: format!("{io_error}; verifier: {}", tail.join(" | ")),
            }
        }
        _ => Error::Load {
            program: program.to_string(),
            detail: chain(&e),
        },
    }
}

/// Probe the running kernel: program types, map types, helpers, cgroup v2,
/// then a trial load of every program (which checks attach types and context
/// fields too). Nothing is attached or pinned.
pub fn probe() -> Result<Probe> {
    let mut p = probe_features()?;
    if p.missing.is_empty() {
        // The decisive check: the verifier accepts every program here.
        let mut ebpf = load_object()?;
        for name in PROGRAMS {
            if let Err(e) = load_program(&mut ebpf, name) {
                p.missing.push(e.to_string());
            }
        }
    }
    Ok(p)
}

/// [`probe`] without the trial load (attach loads for real anyway).
fn probe_features() -> Result<Probe> {
    let mounts = mounts::read()?;
    let mut p = Probe {
        cgroup2: mounts::cgroup2_root(&mounts),
        bpffs: mounts::is_bpffs(&mounts, BPFFS),
        ..Probe::default()
    };
    if p.cgroup2.is_none() {
        p.missing.push(
            "no cgroup v2 hierarchy is mounted (boot with systemd.unified_cgroup_hierarchy=1, or mount -t cgroup2 none /sys/fs/cgroup/unified)".into(),
        );
    }
    // The kernel's BPF features do not change while a process runs: probe
    // them once (each probe loads a program; attach cycles add up).
    static KERNEL: OnceLock<std::result::Result<(Vec<String>, bool), String>> = OnceLock::new();
    let (missing, errno) = KERNEL
        .get_or_init(|| probe_kernel().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::Invalid)?;
    p.missing.extend(missing);
    p.sockopt_errno = errno;
    Ok(p)
}

/// Program types, helpers and map types: (what is missing, whether a
/// getsockopt program may set any errno).
fn probe_kernel() -> Result<(Vec<String>, bool)> {
    let mut missing = Vec::new();
    let progs = [
        (ProgramType::SockOps, "sock_ops programs"),
        (ProgramType::CgroupSockAddr, "cgroup sock_addr programs"),
        (ProgramType::CgroupSockopt, "cgroup sockopt programs"),
    ];
    for (t, name) in progs {
        match is_program_supported(t) {
            Ok(true) => match is_helper_supported(t, BpfHelper::BPF_FUNC_sk_storage_get) {
                Ok(true) => {}
                Ok(false) => missing.push(format!("bpf_sk_storage_get() from {name} (Linux 5.10)")),
                Err(e) => return Err(probe_error(&e)),
            },
            Ok(false) => missing.push(format!("{name} (Linux 5.10)")),
            Err(e) => return Err(probe_error(&e)),
        }
    }
    for (t, name) in [
        (
            aya::maps::MapType::SkStorage,
            "BPF_MAP_TYPE_SK_STORAGE maps",
        ),
        (aya::maps::MapType::LpmTrie, "BPF_MAP_TYPE_LPM_TRIE maps"),
        (
            aya::maps::MapType::PerCpuArray,
            "BPF_MAP_TYPE_PERCPU_ARRAY maps",
        ),
    ] {
        match is_map_supported(t) {
            Ok(true) => {}
            Ok(false) => missing.push(name.to_string()),
            Err(e) => return Err(probe_error(&e)),
        }
    }
    let errno = matches!(
        is_helper_supported(ProgramType::CgroupSockopt, BpfHelper::BPF_FUNC_get_retval),
        Ok(true)
    );
    Ok((missing, errno))
}

fn probe_error(e: &dyn std::error::Error) -> Error {
    let text = chain(e);
    if text.contains("Operation not permitted") || text.contains("Permission denied") {
        Error::Permission("probe the kernel's BPF features".into())
    } else {
        Error::Invalid(format!("probing the kernel's BPF features failed: {text}"))
    }
}

fn load_object() -> Result<Ebpf> {
    EbpfLoader::new().load(OBJECT).map_err(|e| {
        let text = chain(&e);
        if text.contains("Operation not permitted") {
            Error::Permission("create toa's eBPF maps".into())
        } else {
            Error::Map {
                name: "(creating the maps)",
                detail: text,
            }
        }
    })
}

/// Load (verify) one program of the object.
fn load_program(ebpf: &mut Ebpf, name: &str) -> Result<()> {
    let prog = ebpf.program_mut(name).ok_or_else(|| Error::Load {
        program: name.to_string(),
        detail: "not in the embedded object".into(),
    })?;
    let r = match prog {
        aya::programs::Program::SockOps(p) => p.load(),
        aya::programs::Program::CgroupSockAddr(p) => p.load(),
        aya::programs::Program::CgroupSockopt(p) => p.load(),
        _ => {
            return Err(Error::Load {
                program: name.to_string(),
                detail: "unexpected program type in the embedded object".into(),
            })
        }
    };
    r.map_err(|e| program_error(name, e))
}

/// The attach type of each program (the section names in bpf/ say the same).
fn attach_type(program: &str) -> u32 {
    use aya_obj::generated::bpf_attach_type as t;
    (match program {
        "toa_getpeername4" => t::BPF_CGROUP_INET4_GETPEERNAME,
        "toa_getpeername6" => t::BPF_CGROUP_INET6_GETPEERNAME,
        "toa_getsockopt" => t::BPF_CGROUP_GETSOCKOPT,
        _ => t::BPF_CGROUP_SOCK_OPS,
    }) as u32
}

/// Attach one loaded program to the cgroup and pin its link.
fn attach_program(ebpf: &mut Ebpf, name: &str, cgroup: &std::fs::File) -> Result<()> {
    let prog = ebpf.program(name).expect("loaded before");
    let fd = prog.fd().map_err(|e| program_error(name, e))?;
    let link = sys::link_create(fd.as_fd(), cgroup.as_fd(), attach_type(name)).map_err(|e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            Error::Permission(format!("attach eBPF program {name}"))
        } else {
            Error::Attach {
                program: name.to_string(),
                detail: format!("BPF_LINK_CREATE: {e} (cgroup bpf_link needs Linux 5.7)"),
            }
        }
    })?;
    let lp = link_pin(name);
    sys::obj_pin(link.as_fd(), &lp).map_err(|e| Error::Pin {
        path: lp.clone(),
        detail: format!("BPF_OBJ_PIN: {e}"),
    })
}

fn pin_error(path: &Path) -> impl Fn(aya::pin::PinError) -> Error + '_ {
    move |e| Error::Pin {
        path: path.to_path_buf(),
        detail: chain(&e),
    }
}

/// Mount bpffs on [`BPFFS`] unless it is there (systemd mounts it; minimal
/// systems and containers may not).
fn ensure_bpffs() -> Result<()> {
    if mounts::is_bpffs(&mounts::read()?, BPFFS) {
        return Ok(());
    }
    std::fs::create_dir_all(BPFFS).map_err(error::io(format!("create {BPFFS}")))?;
    let src = c"bpf";
    let dst = std::ffi::CString::new(BPFFS).expect("no NUL");
    // SAFETY: valid NUL-terminated strings; no data argument.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(perm_or(
            std::io::Error::last_os_error(),
            &format!("mount bpffs on {BPFFS}"),
        ));
    }
    Ok(())
}

/// Whether the backend is attached: every link is pinned.
pub fn is_attached() -> bool {
    PROGRAMS.iter().all(|p| link_pin(p).exists())
}

/// Whether anything of the backend is pinned (attached, or half left over).
pub fn is_present() -> bool {
    Path::new(PIN_DIR).exists()
}

/// Load, configure, attach to the cgroup v2 root and pin. Refuses when
/// something is pinned already; on failure removes what it pinned.
pub fn attach(settings: &Settings) -> Result<Probe> {
    if is_present() {
        return Err(Error::AlreadyAttached);
    }
    validate(settings)?;
    let p = probe_features()?;
    if !p.missing.is_empty() {
        return Err(Error::Unsupported {
            missing: p.missing.clone(),
        });
    }
    let cg_path = p.cgroup2.clone().expect("probe found it");
    ensure_bpffs()?;
    std::fs::create_dir_all(PIN_DIR).map_err(|e| perm_or(e, &format!("create {PIN_DIR}")))?;
    let r = attach_pinned(settings, &p, &cg_path);
    if r.is_err() {
        let _ = remove_pins();
    }
    r.map(|()| p)
}

fn attach_pinned(settings: &Settings, p: &Probe, cg_path: &Path) -> Result<()> {
    let mut ebpf = load_object()?;
    for name in MAPS {
        let path = pin_path(name);
        ebpf.map(name)
            .ok_or(Error::Map {
                name: MAP_PEERS,
                detail: format!("{name} is not in the embedded object"),
            })?
            .pin(&path)
            .map_err(pin_error(&path))?;
    }
    let cfg = BpfConfig {
        kind_bits: kind_bits(&settings.kinds),
        trust_all: 1,
        sockopt_errno: u32::from(p.sockopt_errno),
    };
    write_config(&cfg)?;
    set_trusted(&settings.trusted)?;
    let cgroup = std::fs::File::open(cg_path)
        .map_err(error::io(format!("open the cgroup {}", cg_path.display())))?;
    for name in PROGRAMS {
        load_program(&mut ebpf, name)?;
        let pp = prog_pin(name);
        ebpf.program_mut(name)
            .expect("loaded")
            .pin(&pp)
            .map_err(pin_error(&pp))?;
        attach_program(&mut ebpf, name, &cgroup)?;
    }
    Ok(())
}

fn validate(settings: &Settings) -> Result<()> {
    for &k in &settings.kinds {
        if k <= 1 {
            return Err(Error::Invalid(format!(
                "option kind {k} cannot carry an address (0 is EOL, 1 is NOP)"
            )));
        }
    }
    if settings.kinds.is_empty() {
        return Err(Error::Invalid(
            "no option kinds given (the default is 254,253,200)".into(),
        ));
    }
    check_nets(&settings.trusted)
}

fn check_nets(nets: &[(IpAddr, u8)]) -> Result<()> {
    for (a, len) in nets {
        let max = if a.is_ipv4() { 32 } else { 128 };
        if *len > max {
            return Err(Error::Invalid(format!(
                "{a}/{len}: the prefix length is at most {max}"
            )));
        }
    }
    let (n4, n6) = nets.iter().fold(
        (0, 0),
        |(a, b), (ip, _)| {
            if ip.is_ipv4() {
                (a + 1, b)
            } else {
                (a, b + 1)
            }
        },
    );
    if n4 > TRUSTED_MAX || n6 > TRUSTED_MAX {
        return Err(Error::Invalid(format!(
            "at most {TRUSTED_MAX} IPv4 and {TRUSTED_MAX} IPv6 trusted networks"
        )));
    }
    Ok(())
}

/// Remove every pin (links first, which detaches the programs), then the
/// directory. Nothing pinned is not an error.
fn remove_pins() -> Result<()> {
    for p in all_pins() {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(perm_or(e, &format!("unpin {}", p.display()))),
        }
    }
    match std::fs::remove_dir(PIN_DIR) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            what: format!("remove {PIN_DIR} (something not toa's is pinned there?)"),
            source: e,
        }),
    }
}

/// Detach and unpin everything; the kernel frees programs, maps and every
/// socket's record once nothing refers to them. Not attached: NotAttached.
pub fn detach() -> Result<()> {
    if !is_present() {
        return Err(Error::NotAttached);
    }
    remove_pins()
}

fn open_map(name: &'static str) -> Result<Map> {
    let path = pin_path(name);
    if !path.exists() {
        return Err(Error::NotAttached);
    }
    let md = MapData::from_pin(&path).map_err(|e| Error::Map {
        name,
        detail: chain(&e),
    })?;
    Ok(match name {
        MAP_CONFIG => Map::Array(md),
        MAP_STATS => Map::PerCpuArray(md),
        _ => Map::LpmTrie(md),
    })
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> Error {
    move |e| Error::Map {
        name,
        detail: chain(&e),
    }
}

fn config_map() -> Result<Array<MapData, BpfConfig>> {
    let m = open_map(MAP_CONFIG)?;
    Array::try_from(m).map_err(map_err(MAP_CONFIG))
}

fn read_config() -> Result<BpfConfig> {
    config_map()?.get(&0, 0).map_err(map_err(MAP_CONFIG))
}

fn write_config(cfg: &BpfConfig) -> Result<()> {
    config_map()?.set(0, cfg, 0).map_err(map_err(MAP_CONFIG))
}

/// Keep only the network bits of `a` (10.1.2.3/8 -> 10.0.0.0/8).
fn masked<const N: usize>(mut b: [u8; N], len: u8) -> [u8; N] {
    for (i, byte) in b.iter_mut().enumerate() {
        let bits = (i as u32) * 8;
        let keep = u32::from(len).saturating_sub(bits).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    b
}

fn sync_trie<const N: usize>(name: &'static str, want: &[([u8; N], u8)]) -> Result<()> {
    let m = open_map(name)?;
    let mut trie: LpmTrie<MapData, [u8; N], u8> = LpmTrie::try_from(m).map_err(map_err(name))?;
    for (addr, len) in want {
        trie.insert(&Key::new(u32::from(*len), *addr), 1, 0)
            .map_err(map_err(name))?;
    }
    let have: Vec<Key<[u8; N]>> = trie.keys().filter_map(|k| k.ok()).collect();
    for k in have {
        let keep = want
            .iter()
            .any(|(a, l)| u32::from(*l) == k.prefix_len() && *a == k.data());
        if !keep {
            trie.remove(&k).map_err(map_err(name))?;
        }
    }
    Ok(())
}

/// Replace the trusted networks, live. Empty trusts every sender. A
/// non-empty list is in the tries before it takes effect; an empty one
/// takes effect before the tries are emptied.
pub fn set_trusted(nets: &[(IpAddr, u8)]) -> Result<()> {
    check_nets(nets)?;
    let mut cfg = read_config()?;
    if nets.is_empty() {
        cfg.trust_all = 1;
        write_config(&cfg)?;
    }
    let v4: Vec<([u8; 4], u8)> = nets
        .iter()
        .filter_map(|(a, l)| match a {
            IpAddr::V4(a) => Some((masked(a.octets(), *l), *l)),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<([u8; 16], u8)> = nets
        .iter()
        .filter_map(|(a, l)| match a {
            IpAddr::V6(a) => Some((masked(a.octets(), *l), *l)),
            IpAddr::V4(_) => None,
        })
        .collect();
    sync_trie(MAP_TRUSTED4, &v4)?;
    sync_trie(MAP_TRUSTED6, &v6)?;
    if !nets.is_empty() {
        cfg.trust_all = 0;
        write_config(&cfg)?;
    }
    Ok(())
}

/// The trusted networks as pinned (empty: every sender is trusted).
pub fn trusted() -> Result<Vec<(IpAddr, u8)>> {
    let cfg = read_config()?;
    if cfg.trust_all == 1 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let t4: LpmTrie<MapData, [u8; 4], u8> =
        LpmTrie::try_from(open_map(MAP_TRUSTED4)?).map_err(map_err(MAP_TRUSTED4))?;
    for k in t4.keys() {
        let k = k.map_err(map_err(MAP_TRUSTED4))?;
        out.push((IpAddr::from(k.data()), k.prefix_len() as u8));
    }
    let t6: LpmTrie<MapData, [u8; 16], u8> =
        LpmTrie::try_from(open_map(MAP_TRUSTED6)?).map_err(map_err(MAP_TRUSTED6))?;
    for k in t6.keys() {
        let k = k.map_err(map_err(MAP_TRUSTED6))?;
        out.push((IpAddr::from(k.data()), k.prefix_len() as u8));
    }
    Ok(out)
}

/// Replace the honoured option kinds, live.
pub fn set_kinds(kinds: &[u8]) -> Result<()> {
    validate(&Settings {
        kinds: kinds.to_vec(),
        trusted: Vec::new(),
    })?;
    let mut cfg = read_config()?;
    cfg.kind_bits = kind_bits(kinds);
    write_config(&cfg)
}

/// The honoured option kinds, ascending.
pub fn kinds() -> Result<Vec<u8>> {
    Ok(kinds_of(&read_config()?.kind_bits))
}

/// The counters, per CPU.
pub fn counters() -> Result<Counters> {
    let arr: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(open_map(MAP_STATS)?).map_err(map_err(MAP_STATS))?;
    let mut rows = Vec::with_capacity(STAT_NAMES.len());
    for i in 0..STAT_NAMES.len() as u32 {
        let v = arr.get(&i, 0).map_err(map_err(MAP_STATS))?;
        rows.push(v.iter().copied().collect());
    }
    Ok(Counters { per_cpu: rows })
}

/// Names of every BPF program loaded in the kernel (ours start with
/// "toa_"; the kernel keeps 15 characters of a name).
pub fn loaded_program_names() -> Result<Vec<String>> {
    let mut v = Vec::new();
    for info in aya::programs::loaded_programs() {
        // A program freed between listing its id and opening it is gone.
        let info = match info {
            Ok(i) => i,
            Err(e) if chain(&e).contains("No such file or directory") => continue,
            Err(e) => return Err(probe_error(&e)),
        };
        v.push(String::from_utf8_lossy(info.name()).into_owned());
    }
    Ok(v)
}

/// What is attached, for `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Every link pinned.
    pub attached: bool,
    /// Honoured kinds.
    pub kinds: Vec<u8>,
    /// Trusted networks (empty: all).
    pub trusted: Vec<(IpAddr, u8)>,
    /// getsockopt can return ENOENT/EINVAL (else ENOPROTOOPT).
    pub sockopt_errno: bool,
    /// Counters.
    pub counters: Counters,
}

/// The attached backend's state.
pub fn status() -> Result<Status> {
    if !is_present() {
        return Err(Error::NotAttached);
    }
    let cfg = read_config()?;
    Ok(Status {
        attached: is_attached(),
        kinds: kinds_of(&cfg.kind_bits),
        trusted: trusted()?,
        sockopt_errno: cfg.sockopt_errno == 1,
        counters: counters()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_bits_round_trip() {
        let b = kind_bits(&DEFAULT_KINDS);
        assert_eq!(kinds_of(&b), vec![200, 253, 254]);
        assert_eq!(b[254 >> 5], (1 << (254 & 31)) | (1 << (253 & 31)));
        assert_eq!(kinds_of(&kind_bits(&[2, 255])), vec![2, 255]);
    }

    #[test]
    fn config_layout_matches_bpf_toa_h() {
        assert_eq!(std::mem::size_of::<BpfConfig>(), 40);
    }

    #[test]
    fn networks_are_masked() {
        assert_eq!(masked([10, 1, 2, 3], 8), [10, 0, 0, 0]);
        assert_eq!(masked([198, 51, 100, 77], 25), [198, 51, 100, 0]);
        assert_eq!(masked([198, 51, 100, 255], 25), [198, 51, 100, 128]);
        assert_eq!(masked([1, 2, 3, 4], 0), [0; 4]);
        assert_eq!(masked([1, 2, 3, 4], 32), [1, 2, 3, 4]);
    }

    #[test]
    fn settings_are_checked() {
        let bad = Settings {
            kinds: vec![1],
            ..Settings::default()
        };
        assert!(validate(&bad).is_err());
        let bad = Settings {
            trusted: vec![("10.0.0.0".parse().unwrap(), 33)],
            ..Settings::default()
        };
        assert!(validate(&bad).is_err());
        assert!(validate(&Settings::default()).is_ok());
    }

    #[test]
    fn the_object_has_every_program_and_map() {
        let obj = aya_obj_names();
        for p in PROGRAMS {
            assert!(obj.contains(&p.to_string()), "{p} missing");
        }
        for m in MAPS {
            assert!(obj.contains(&m.to_string()), "{m} missing");
        }
    }

    /// Symbol names in the embedded object (no kernel needed).
    fn aya_obj_names() -> Vec<String> {
        let o = aya_obj::Object::parse(OBJECT).expect("parse the embedded object");
        let mut v: Vec<String> = o.programs.keys().cloned().collect();
        v.extend(o.maps.keys().cloned());
        v
    }
}

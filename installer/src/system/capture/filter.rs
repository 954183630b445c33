//! The classic BPF filter the packet socket runs in the kernel.

use super::{
    CaptureError, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, MAX_PORTS, SNAP_LEN, TCP_ACK, TCP_RST, TCP_SYN,
};

/// The classic BPF program described in the module documentation, for a
/// `SOCK_DGRAM` packet socket (the packet starts at the network header).
pub fn filter_program(ports: &[u16]) -> Result<Vec<libc::sock_filter>, CaptureError> {
    if ports.is_empty() {
        return Err(CaptureError::NoPorts);
    }
    if ports.len() > MAX_PORTS {
        return Err(CaptureError::TooManyPorts(ports.len()));
    }
    const V4: usize = 5;
    const V6: usize = 11;
    const TCP: usize = 14;
    const PORTS: usize = 18;
    let accept = PORTS + 1 + ports.len();
    let drop = accept + 1;
    let code = |c: u32| c as u16;
    let stmt = |c: u32, k: u32| libc::sock_filter {
        code: code(c),
        jt: 0,
        jf: 0,
        k,
    };
    // jump at instruction `at` to `t` when true, `f` when false
    let jump = |at: usize, c: u32, k: u32, t: usize, f: usize| libc::sock_filter {
        code: code(libc::BPF_JMP | c | libc::BPF_K),
        jt: (t - at - 1) as u8,
        jf: (f - at - 1) as u8,
        k,
    };
    let ad = |what: i32| (libc::SKF_AD_OFF + what) as u32;
    let mut p = vec![
        stmt(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            ad(libc::SKF_AD_PKTTYPE),
        ),
        jump(1, libc::BPF_JEQ, u32::from(libc::PACKET_OUTGOING), drop, 2),
        stmt(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            ad(libc::SKF_AD_PROTOCOL),
        ),
        jump(3, libc::BPF_JEQ, u32::from(ETH_P_IP), V4, 4),
        jump(4, libc::BPF_JEQ, u32::from(ETH_P_IPV6), V6, drop),
        // V4: TCP, not a fragment (MF or an offset), X = header length
        stmt(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 9),
        jump(6, libc::BPF_JEQ, u32::from(IPPROTO_TCP), 7, drop),
        stmt(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 6),
        jump(8, libc::BPF_JSET, 0x3fff, drop, 9),
        stmt(libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH, 0),
        libc::sock_filter {
            code: code(libc::BPF_JMP | libc::BPF_JA),
            jt: 0,
            jf: 0,
            k: (TCP - 10 - 1) as u32,
        },
        // V6: TCP right after the fixed header
        stmt(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 6),
        jump(12, libc::BPF_JEQ, u32::from(IPPROTO_TCP), 13, drop),
        stmt(libc::BPF_LDX | libc::BPF_W | libc::BPF_IMM, 40),
        // TCP: flags without FIN/PSH/URG/ECE/CWR exactly SYN or exactly ACK
        stmt(libc::BPF_LD | libc::BPF_B | libc::BPF_IND, 13),
        stmt(
            libc::BPF_ALU | libc::BPF_AND | libc::BPF_K,
            u32::from(TCP_SYN | TCP_ACK | TCP_RST),
        ),
        jump(16, libc::BPF_JEQ, u32::from(TCP_SYN), PORTS, 17),
        jump(17, libc::BPF_JEQ, u32::from(TCP_ACK), PORTS, drop),
        stmt(libc::BPF_LD | libc::BPF_H | libc::BPF_IND, 2),
    ];
    for (i, port) in ports.iter().enumerate() {
        let at = PORTS + 1 + i;
        let next = if i + 1 == ports.len() { drop } else { at + 1 };
        p.push(jump(at, libc::BPF_JEQ, u32::from(*port), accept, next));
    }
    p.push(stmt(libc::BPF_RET | libc::BPF_K, SNAP_LEN));
    p.push(stmt(libc::BPF_RET | libc::BPF_K, 0));
    debug_assert_eq!(p.len(), drop + 1);
    Ok(p)
}

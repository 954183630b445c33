// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup/getsockopt: getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP) answers
 * struct toa_ip6_peer for a connection whose TOA carried IPv6 (SPEC 2.2).
 * The kernel itself has no such option (ENOPROTOOPT); this program sets the
 * result.  Every other option passes through untouched.
 *
 * Errors: kernels before 5.18 let a getsockopt program replace the kernel's
 * error only by 0, so there a missing record and a short buffer leave the
 * kernel's ENOPROTOOPT; from 5.18 on (the loader probes for it and sets
 * sockopt_errno) they fail with ENOENT and EINVAL as with toa.ko.
 */
#include "toa.h"

/* struct toa_ip6_peer: in6_addr then a port, padded to 20 bytes. */
#define TOA_IP6_PEER_SIZE	20

/*
 * One 4-byte store per context field: clang would merge neighbouring
 * optlen and retval stores into one 8-byte store the verifier refuses.
 */
#define toa_ctx_store(field, v)	(*(volatile __s32 *)&(field) = (v))
static __always_inline int toa_fail(struct bpf_sockopt *so,
				     struct toa_bpf_config *cfg, int err)
{
	/* Nothing to copy back: the caller's buffer stays as it was. */
	toa_ctx_store(so->optlen, 0);
	if (cfg && cfg->sockopt_errno)
		toa_ctx_store(so->retval, -err);
	return 1;
}

SEC("cgroup/getsockopt")
int toa_getsockopt(struct bpf_sockopt *so)
{
	struct toa_bpf_config *cfg;
	struct toa_peer *rec;
	struct bpf_sock *sk;
	__u8 *out = so->optval;
	__u8 *end = so->optval_end;
	int i;

	if (so->level != SOL_IP || so->optname != TOA_SO_GET_LOOKUP) {
		/* Kernel memory, not a copy: leave it to the kernel. */
		if (so->level == SOL_TCP && so->optname == TCP_ZEROCOPY_RECEIVE)
			return 1;
		/*
		 * optlen 0: copy nothing back, so the kernel's own answer
		 * (already in the caller's buffer) and error stand, whatever
		 * the buffer's size.
		 */
		toa_ctx_store(so->optlen, 0);
		return 1;
	}
	cfg = toa_config_get();
	sk = so->sk;
	if (!sk)
		return toa_fail(so, cfg, ENOENT);
	if (out + TOA_IP6_PEER_SIZE > end)
		return toa_fail(so, cfg, EINVAL);
	rec = bpf_sk_storage_get(&toa_peers, sk, 0, 0);
	if (!rec || rec->a.family != TOA_FAMILY_IP6) {
		toa_stat_inc(TOA_STAT_GETNAME_TOA_EMPTY);
		return toa_fail(so, cfg, ENOENT);
	}
	for (i = 0; i < 16; i++)
		out[i] = rec->a.addr[i];
	out[16] = rec->a.port[0];
	out[17] = rec->a.port[1];
	out[18] = 0;
	out[19] = 0;
	toa_ctx_store(so->optlen, TOA_IP6_PEER_SIZE);
	toa_ctx_store(so->retval, 0);
	toa_stat_inc(TOA_STAT_GETNAME_TOA_OK);
	return 1;
}

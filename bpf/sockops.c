// SPDX-License-Identifier: GPL-2.0
/*
 * sock_ops: when the passive side's child socket becomes established, read
 * the TOA option of the segment that completed the handshake (the final
 * ACK, also with SYN cookies; the SYN under TCP Fast Open) and keep the
 * client address in the socket's local storage.  When a socket that has a
 * record closes, count the record freed.
 *
 * At BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB the kernel (tcp_init_transfer ->
 * bpf_skops_established, since 5.10) hands that segment over with
 * [skb_data, skb_data_end) covering exactly its TCP header.
 */
#include "toa.h"

#define TCP_CLOSE	7

static __always_inline int toa_trusted(struct bpf_sock_ops *ops,
					struct toa_bpf_config *cfg)
{
	if (cfg->trust_all)
		return 1;
	if (ops->family == AF_INET6 && (ops->remote_ip6[0] != 0 ||
					 ops->remote_ip6[1] != 0 ||
					 ops->remote_ip6[2] != bpf_htonl(0xffff))) {
		struct toa_trust6_key k6 = { .prefixlen = 128 };
		__u32 *w = (__u32 *)k6.addr;

		w[0] = ops->remote_ip6[0];
		w[1] = ops->remote_ip6[1];
		w[2] = ops->remote_ip6[2];
		w[3] = ops->remote_ip6[3];
		return bpf_map_lookup_elem(&toa_trusted6, &k6) != 0;
	} else {
		/* IPv4, also a v4-mapped peer of an AF_INET6 listener */
		struct toa_trust4_key k4 = { .prefixlen = 32 };
		/*
		 * Volatile reads of both: clang would otherwise load through a
		 * pointer selected between the two context fields, a variable
		 * context offset the verifier refuses.
		 */
		__u32 mapped = *(volatile __u32 *)&ops->remote_ip6[3];
		__u32 ip4 = *(volatile __u32 *)&ops->remote_ip4;

		*(__u32 *)k4.addr = ops->family == AF_INET6 ? mapped : ip4;
		return bpf_map_lookup_elem(&toa_trusted4, &k4) != 0;
	}
}

static __always_inline void toa_established(struct bpf_sock_ops *ops)
{
	const __u8 *data = (const __u8 *)(long)ops->skb_data;
	const __u8 *end = (const __u8 *)(long)ops->skb_data_end;
	struct toa_bpf_config *cfg = toa_config_get();
	struct toa_address addr = {};
	struct toa_peer *rec;
	struct bpf_sock *sk;
	unsigned int res;

	if (!cfg)
		return;
	/* A TCP header is 20 bytes, then the options. */
	if (data + 20 > end) {
		toa_stat_inc(TOA_STAT_SYN_RECV_SOCK_NO_TOA);
		return;
	}
	res = toa_walk(data + 20, end, cfg->kind_bits, &addr);
	if (res & TOA_PARSE_MALFORMED)
		toa_stat_inc(TOA_STAT_TOA_MALFORMED);
	if (!(res & TOA_PARSE_FOUND)) {
		toa_stat_inc(TOA_STAT_SYN_RECV_SOCK_NO_TOA);
		return;
	}
	if (!toa_trusted(ops, cfg)) {
		toa_stat_inc(TOA_STAT_SYN_RECV_SOCK_UNTRUSTED);
		return;
	}
	sk = ops->sk;
	if (!sk)
		return;
	rec = bpf_sk_storage_get(&toa_peers, sk, 0,
				 BPF_SK_STORAGE_GET_F_CREATE);
	if (!rec) {
		toa_stat_inc(TOA_STAT_SYN_RECV_SOCK_NO_TOA);
		return;
	}
	rec->a = addr;
	/*
	 * Let the close of this socket reach us (BPF_SOCK_OPS_STATE_CB), to
	 * count the record freed; sockets without a record are spared the
	 * program's run at each of their state changes.
	 */
	bpf_sock_ops_cb_flags_set(ops, ops->bpf_sock_ops_cb_flags |
				  BPF_SOCK_OPS_STATE_CB_FLAG);
	toa_stat_inc(TOA_STAT_IP6_ADDRESS_ALLOC);
	toa_stat_inc(TOA_STAT_SYN_RECV_SOCK_TOA);
}

static __always_inline void toa_closed(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;

	if (ops->args[1] != TCP_CLOSE || !sk)
		return;
	/* -ENOENT for a socket without a record */
	if (bpf_sk_storage_delete(&toa_peers, sk) == 0)
		toa_stat_inc(TOA_STAT_IP6_ADDRESS_FREE);
}

SEC("sockops")
int toa_sockops(struct bpf_sock_ops *ops)
{
	switch (ops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		toa_established(ops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		toa_closed(ops);
		break;
	}
	return 1;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup/getpeername4 and cgroup/getpeername6: what accept() and
 * getpeername() return on a socket with a TOA record (SPEC 2.2).
 *
 * These hooks may rewrite the address and port but not the family of the
 * sockaddr: an IPv6 client on an AF_INET socket cannot be answered with a
 * sockaddr_in6 as toa.ko does.  Such a socket keeps the proxy's address,
 * counted in getname_toa_mismatch; its client is served through
 * getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP) (getsockopt.c).
 */
#include "toa.h"

static __always_inline struct toa_peer *toa_record(struct bpf_sock_addr *sa)
{
	struct bpf_sock *sk = sa->sk;
	struct toa_peer *rec;

	if (sa->protocol != IPPROTO_TCP || !sk)
		return 0;
	rec = bpf_sk_storage_get(&toa_peers, sk, 0, 0);
	if (!rec)
		toa_stat_inc(TOA_STAT_GETNAME_TOA_EMPTY);
	return rec;
}

SEC("cgroup/getpeername4")
int toa_getpeername4(struct bpf_sock_addr *sa)
{
	struct toa_peer *rec = toa_record(sa);

	if (!rec)
		return 1;
	if (rec->a.family != TOA_FAMILY_IP4) {
		toa_stat_inc(TOA_STAT_GETNAME_TOA_MISMATCH);
		return 1;
	}
	sa->user_ip4 = *(__u32 *)rec->a.addr;
	sa->user_port = *(__u16 *)rec->a.port;
	toa_stat_inc(TOA_STAT_GETNAME_TOA_OK);
	return 1;
}

SEC("cgroup/getpeername6")
int toa_getpeername6(struct bpf_sock_addr *sa)
{
	struct toa_peer *rec = toa_record(sa);
	__u32 *a;

	if (!rec)
		return 1;
	a = (__u32 *)rec->a.addr;
	if (rec->a.family == TOA_FAMILY_IP4) {
		/* ::ffff:a.b.c.d */
		sa->user_ip6[0] = 0;
		sa->user_ip6[1] = 0;
		sa->user_ip6[2] = bpf_htonl(0xffff);
		sa->user_ip6[3] = a[0];
	} else {
		sa->user_ip6[0] = a[0];
		sa->user_ip6[1] = a[1];
		sa->user_ip6[2] = a[2];
		sa->user_ip6[3] = a[3];
	}
	sa->user_port = *(__u16 *)rec->a.port;
	toa_stat_inc(TOA_STAT_GETNAME_TOA_OK);
	return 1;
}

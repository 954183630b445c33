/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * toa: what userspace sees of the TOA module.
 *
 * accept() and getpeername() need nothing from this header: with toa.ko
 * loaded they return the client address carried in the TCP option.  This
 * header is for code that asks for the IPv6 client address explicitly, the
 * interface Tencent CLB (NAT64) and DPVS clients already use:
 *
 *	struct toa_ip6_peer peer;
 *	socklen_t len = sizeof(peer);
 *	if (getsockopt(fd, IPPROTO_IP, TOA_SO_GET_LOOKUP, &peer, &len) == 0)
 *		... peer.addr is the client, ntohs(peer.port) its port ...
 *
 * It fails with ENOENT when the connection carried no IPv6 TOA (no option,
 * an IPv4 option, or an untrusted sender) and with EINVAL when len is
 * smaller than sizeof(struct toa_ip6_peer).
 */
#ifndef _UAPI_TOA_H
#define _UAPI_TOA_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/in6.h>
#else
#include <stdint.h>
#include <netinet/in.h>
#endif

#define TOA_SO_BASE		4096
#define TOA_SO_GET_LOOKUP	(TOA_SO_BASE)
#define TOA_SO_GET_MAX		(TOA_SO_BASE)

struct toa_ip6_peer {
	struct in6_addr addr;	/* client address */
	uint16_t port;		/* client port, network byte order */
};

/* Counter names in /proc/net/toa_stats, in the order they are printed. */
#define TOA_STAT_NAMES					\
	"syn_recv_sock_toa", "syn_recv_sock_no_toa",	\
	"syn_recv_sock_untrusted", "toa_malformed",	\
	"getname_toa_ok", "getname_toa_mismatch",	\
	"getname_toa_empty", "ip6_address_alloc",	\
	"ip6_address_free", "hook_missed"

#endif /* _UAPI_TOA_H */

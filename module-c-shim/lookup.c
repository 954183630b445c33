// SPDX-License-Identifier: GPL-2.0
/*
 * getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP): the IPv6 client address, the
 * interface Tencent CLB (NAT64) and DPVS clients call.  It is registered as
 * a netfilter socket option, the kernel's own extension point for IPv4
 * socket options; IPv6 sockets reach it too, since they hand SOL_IP options
 * to the IPv4 code.
 */
#include <linux/module.h>
#include <linux/netfilter.h>
#include <linux/uaccess.h>
#include <net/sock.h>

#include "toa.h"
#include "uapi/toa.h"

static int toa_lookup_get(struct sock *sk, int cmd, void __user *user,
			  int *len)
{
	struct toa_ip6_peer peer;
	struct toa_address addr;

	if (cmd != TOA_SO_GET_LOOKUP || *len < (int)sizeof(peer))
		return -EINVAL;
	if (!toa_store_lookup(sk, &addr) || addr.family != TOA_FAMILY_IP6) {
		toa_stat_inc(TOA_STAT_GETNAME_TOA_EMPTY);
		return -ENOENT;
	}

	memset(&peer, 0, sizeof(peer));
	memcpy(&peer.addr, addr.addr, sizeof(peer.addr));
	memcpy(&peer.port, addr.port, sizeof(peer.port));
	if (copy_to_user(user, &peer, sizeof(peer)))
		return -EFAULT;
	*len = sizeof(peer);
	toa_stat_inc(TOA_STAT_GETNAME_TOA_OK);
	return 0;
}

static struct nf_sockopt_ops toa_lookup_ops = {
	.pf = PF_INET,
	.get_optmin = TOA_SO_BASE,
	.get_optmax = TOA_SO_GET_MAX + 1,
	.get = toa_lookup_get,
	.owner = THIS_MODULE,
};

int toa_lookup_init(void)
{
	return nf_register_sockopt(&toa_lookup_ops);
}

void toa_lookup_exit(void)
{
	nf_unregister_sockopt(&toa_lookup_ops);
}

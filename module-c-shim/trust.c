// SPDX-License-Identifier: GPL-2.0
/*
 * The `trusted` parameter: the proxies' source ranges.
 *
 * Anyone who reaches the origin directly can put a TOA option in their own
 * packets, so when the list is non-empty an option is honoured only from a
 * sender inside it.  The list is replaced whole under RCU: a write that does
 * not parse is rejected with -EINVAL and the old list stays in force.
 */
#include <linux/inet.h>
#include <linux/inetdevice.h>
#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/ipv6.h>

#include "toa.h"

#define TOA_TRUST_MAX		64
/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" and a NUL */
#define TOA_CIDR_TEXT_MAX	(INET6_ADDRSTRLEN + 5)

struct toa_cidr {
	u8 family;	/* AF_INET or AF_INET6 */
	u8 prefix;
	union {
		__be32 ip4;
		struct in6_addr ip6;
	} net;
};

struct toa_trust_list {
	struct rcu_head rcu;
	unsigned int count;
	struct toa_cidr cidr[];
};

static struct toa_trust_list __rcu *toa_trusted;
static DEFINE_MUTEX(toa_trust_mutex);
static bool toa_trust_closed;	/* set by module exit: no more writes */

static bool toa_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Parse "addr" or "addr/prefix" (exactly len bytes) into *cidr. */
static int toa_cidr_parse(const char *text, size_t len, struct toa_cidr *cidr)
{
	char buf[TOA_CIDR_TEXT_MAX];
	const char *end;
	char *slash;
	size_t alen;
	u8 max;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	alen = slash ? (size_t)(slash - buf) : len;

	memset(cidr, 0, sizeof(*cidr));
	if (memchr(buf, ':', alen)) {
		if (!in6_pton(buf, alen, cidr->net.ip6.s6_addr, -1, &end) ||
		    end != buf + alen)
			return -EINVAL;
		cidr->family = AF_INET6;
		max = 128;
	} else {
		if (!in4_pton(buf, alen, (u8 *)&cidr->net.ip4, -1, &end) ||
		    end != buf + alen)
			return -EINVAL;
		cidr->family = AF_INET;
		max = 32;
	}

	if (!slash)
		cidr->prefix = max;
	else if (kstrtou8(slash + 1, 10, &cidr->prefix) || cidr->prefix > max)
		return -EINVAL;

	/* Keep the network only, so matching and printing agree. */
	if (cidr->family == AF_INET) {
		cidr->net.ip4 &= inet_make_mask(cidr->prefix);
	} else {
		/* ipv6_addr_prefix() clears its output first: not in place. */
		struct in6_addr addr = cidr->net.ip6;

		ipv6_addr_prefix(&cidr->net.ip6, &addr, cidr->prefix);
	}
	return 0;
}

/* Parse a comma-separated list; an empty list gives *out = NULL. */
static int toa_trust_parse(const char *val, struct toa_trust_list **out)
{
	const char *start = val, *end = val + strlen(val);
	struct toa_trust_list *list;
	unsigned int count = 1;
	const char *p;
	int err;

	*out = NULL;
	while (start < end && toa_is_blank(*start))
		start++;
	while (end > start && toa_is_blank(end[-1]))
		end--;
	if (start == end)
		return 0;

	for (p = start; p < end; p++)
		count += *p == ',';
	if (count > TOA_TRUST_MAX)
		return -EINVAL;
	list = kzalloc(sizeof(*list) + count * sizeof(list->cidr[0]),
		       GFP_KERNEL);
	if (!list)
		return -ENOMEM;

	for (p = start; p <= end; p++) {
		const char *tok_start = start, *tok_end = p;

		if (p != end && *p != ',')
			continue;
		while (tok_start < tok_end && toa_is_blank(*tok_start))
			tok_start++;
		while (tok_end > tok_start && toa_is_blank(tok_end[-1]))
			tok_end--;
		err = toa_cidr_parse(tok_start, tok_end - tok_start,
				     &list->cidr[list->count]);
		if (err) {
			kfree(list);
			return err;
		}
		list->count++;
		start = p + 1;
	}
	*out = list;
	return 0;
}

static int toa_trusted_set(const char *val, const struct kernel_param *kp)
{
	struct toa_trust_list *list, *old;
	int err;

	err = toa_trust_parse(val, &list);
	if (err) {
		pr_warn("trusted: rejected '%.*s', keeping the old list\n",
			(int)strcspn(val, "\n"), val);
		return err;
	}

	mutex_lock(&toa_trust_mutex);
	if (toa_trust_closed) {
		mutex_unlock(&toa_trust_mutex);
		kfree(list);
		return -ENODEV;
	}
	old = rcu_dereference_protected(toa_trusted,
					lockdep_is_held(&toa_trust_mutex));
	rcu_assign_pointer(toa_trusted, list);
	mutex_unlock(&toa_trust_mutex);

	if (old)
		kfree_rcu(old, rcu);
	return 0;
}

static int toa_trusted_get(char *buf, const struct kernel_param *kp)
{
	const struct toa_trust_list *list;
	unsigned int i;
	int len = 0;

	mutex_lock(&toa_trust_mutex);
	list = rcu_dereference_protected(toa_trusted,
					 lockdep_is_held(&toa_trust_mutex));
	for (i = 0; list && i < list->count; i++) {
		const struct toa_cidr *c = &list->cidr[i];

		if (c->family == AF_INET)
			len += scnprintf(buf + len, PAGE_SIZE - len,
					 "%s%pI4/%u", i ? "," : "",
					 &c->net.ip4, c->prefix);
		else
			len += scnprintf(buf + len, PAGE_SIZE - len,
					 "%s%pI6c/%u", i ? "," : "",
					 &c->net.ip6, c->prefix);
	}
	mutex_unlock(&toa_trust_mutex);
	len += scnprintf(buf + len, PAGE_SIZE - len, "\n");
	return len;
}

static const struct kernel_param_ops toa_trusted_ops = {
	.set = toa_trusted_set,
	.get = toa_trusted_get,
};

module_param_cb(trusted, &toa_trusted_ops, NULL, 0644);
MODULE_PARM_DESC(trusted,
		 "Comma-separated IPv4/IPv6 CIDRs of the proxies; TOA from other senders is ignored (empty: trust every sender)");

static bool toa_cidr_contains(const struct toa_cidr *c, int family,
			      const void *addr)
{
	if (c->family != family)
		return false;
	if (family == AF_INET)
		return !((*(const __be32 *)addr ^ c->net.ip4) &
			 inet_make_mask(c->prefix));
	return ipv6_prefix_equal(addr, &c->net.ip6, c->prefix);
}

/* An empty list trusts every sender. */
static bool toa_trust_allows(int family, const void *addr)
{
	const struct toa_trust_list *list;
	bool allowed;
	unsigned int i;

	rcu_read_lock();
	list = rcu_dereference(toa_trusted);
	allowed = !list;
	for (i = 0; list && !allowed && i < list->count; i++)
		allowed = toa_cidr_contains(&list->cidr[i], family, addr);
	rcu_read_unlock();
	return allowed;
}

bool toa_trust_allows_ip4(__be32 saddr)
{
	return toa_trust_allows(AF_INET, &saddr);
}

bool toa_trust_allows_ip6(const struct in6_addr *saddr)
{
	return toa_trust_allows(AF_INET6, saddr);
}

/* Called once no probe can run any more. */
void toa_trust_exit(void)
{
	struct toa_trust_list *list;

	mutex_lock(&toa_trust_mutex);
	toa_trust_closed = true;
	list = rcu_dereference_protected(toa_trusted,
					 lockdep_is_held(&toa_trust_mutex));
	RCU_INIT_POINTER(toa_trusted, NULL);
	mutex_unlock(&toa_trust_mutex);
	kfree(list);
}

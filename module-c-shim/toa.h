/* SPDX-License-Identifier: GPL-2.0 */
/* Declarations shared by the module's files, one block per file. */
#ifndef _TOA_H
#define _TOA_H

#include <linux/percpu.h>
#include <linux/types.h>
#include "parse.h"

struct sock;
struct sk_buff;
struct in6_addr;

/*
 * stats.c: per-CPU counters, /proc/net/toa_stats in every namespace.
 * The names printed are TOA_STAT_NAMES (uapi/toa.h), in this order.
 */
enum toa_stat {
	TOA_STAT_SYN_RECV_SOCK_TOA,
	TOA_STAT_SYN_RECV_SOCK_NO_TOA,
	TOA_STAT_SYN_RECV_SOCK_UNTRUSTED,
	TOA_STAT_TOA_MALFORMED,
	TOA_STAT_GETNAME_TOA_OK,
	TOA_STAT_GETNAME_TOA_MISMATCH,
	TOA_STAT_GETNAME_TOA_EMPTY,
	/* Records of either family: the names are Tencent's, kept for tools. */
	TOA_STAT_IP6_ADDRESS_ALLOC,
	TOA_STAT_IP6_ADDRESS_FREE,
	TOA_STAT_HOOK_MISSED,	/* read through toa_stats_set_missed() */
	TOA_STAT_COUNT
};

struct toa_stats {
	u64 count[TOA_STAT_COUNT];
};
DECLARE_PER_CPU(struct toa_stats, toa_stats);

/* Inline: getpeername() counts on every call. */
static inline void toa_stat_inc(enum toa_stat stat)
{
	this_cpu_inc(toa_stats.count[stat]);
}

void toa_stats_set_missed(unsigned long (*missed)(void));
int toa_stats_init(void);
void toa_stats_exit(void);

/* store.c: per-connection records keyed by socket */
int toa_store_init(void);
void toa_store_exit(void);
int toa_store_add(const struct sock *sk, const struct toa_address *addr);
bool toa_store_lookup(const struct sock *sk, struct toa_address *addr);
const struct toa_address *toa_store_find_rcu(const struct sock *sk);
void toa_store_remove(const struct sock *sk);

/* trust.c: the `trusted` parameter */
bool toa_trust_allows_ip4(__be32 saddr);
bool toa_trust_allows_ip6(const struct in6_addr *saddr);
void toa_trust_exit(void);

/* main.c: the `kinds` parameter */
extern struct toa_kind_set toa_kinds;

/* hook.c: probes on the kernel's TCP and socket functions */
int toa_hooks_init(void);
void toa_hooks_exit(void);
struct kretprobe;
int toa_kretprobes_register(struct kretprobe *const *probes, unsigned int n,
			    unsigned int instances_per_cpu);
void toa_kretprobes_unregister(struct kretprobe *const *probes, unsigned int n);
unsigned long toa_kretprobes_missed(struct kretprobe *const *probes,
				    unsigned int n);

/* getname.c: accept() and getpeername() */
int toa_getname_init(void);
void toa_getname_exit(void);
unsigned long toa_getname_missed(void);

/* lookup.c: getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP) */
int toa_lookup_init(void);
void toa_lookup_exit(void);

#endif /* _TOA_H */

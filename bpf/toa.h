/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the eBPF programs share: the helpers they call, their maps, the
 * configuration the loader writes, and the counters.
 *
 * Map names are part of the loader's interface (ebpf/src/lib.rs pins them
 * under /sys/fs/bpf/toa/ by these names).
 */
#ifndef _TOA_BPF_H
#define _TOA_BPF_H

#include <linux/types.h>
#include <linux/bpf.h>

#include "walk.h"

#define SEC(name)	__attribute__((section(name), used))
#define __uint(name, val)	int (*name)[val]
#define __type(name, val)	__typeof__(val) *name

#define AF_INET		2
#define AF_INET6	10
#define IPPROTO_TCP	6
#define SOL_IP		0
#define SOL_TCP		6
#define TCP_ZEROCOPY_RECEIVE	35
#define ENOENT		2
#define EINVAL		22

#define bpf_htonl(x)	__builtin_bswap32(x)	/* BPF here is little-endian */
#define bpf_htons(x)	__builtin_bswap16(x)

#define TOA_SO_GET_LOOKUP	4096	/* include/uapi/toa.h */

/* Helpers, by their stable numbers from linux/bpf.h. */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) =
	(void *)BPF_FUNC_map_lookup_elem;
static void *(*bpf_sk_storage_get)(void *map, void *sk, void *value,
				   __u64 flags) =
	(void *)BPF_FUNC_sk_storage_get;
static long (*bpf_sk_storage_delete)(void *map, void *sk) =
	(void *)BPF_FUNC_sk_storage_delete;
static long (*bpf_sock_ops_cb_flags_set)(struct bpf_sock_ops *ops,
					 int flags) =
	(void *)BPF_FUNC_sock_ops_cb_flags_set;

/* Counter indices: the order of TOA_STAT_NAMES in include/uapi/toa.h. */
enum toa_bpf_stat {
	TOA_STAT_SYN_RECV_SOCK_TOA,
	TOA_STAT_SYN_RECV_SOCK_NO_TOA,
	TOA_STAT_SYN_RECV_SOCK_UNTRUSTED,
	TOA_STAT_TOA_MALFORMED,
	TOA_STAT_GETNAME_TOA_OK,
	TOA_STAT_GETNAME_TOA_MISMATCH,
	TOA_STAT_GETNAME_TOA_EMPTY,
	TOA_STAT_IP6_ADDRESS_ALLOC,
	TOA_STAT_IP6_ADDRESS_FREE,
	TOA_STAT_HOOK_MISSED,	/* nothing can miss a BPF hook: stays 0 */
	TOA_STAT_COUNT
};

/* toa_config[0], written by the loader. */
struct toa_bpf_config {
	__u32 kind_bits[8];	/* struct toa_kind_set */
	__u32 trust_all;	/* 1: the trusted list is empty */
	__u32 sockopt_errno;	/* 1: a getsockopt program may set any errno */
};

struct toa_trust4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct toa_trust6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/*
 * A record: 4-byte aligned (the kernel allocates it 8-byte aligned), so
 * that clang reads the address and port in words, not byte by byte.
 */
struct toa_peer {
	struct toa_address a;
} __attribute__((aligned(4)));

/* The client address of each socket created from a trusted TOA. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct toa_peer);
} toa_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct toa_bpf_config);
} toa_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct toa_trust4_key);
	__type(value, __u8);
} toa_trusted4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct toa_trust6_key);
	__type(value, __u8);
} toa_trusted6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TOA_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} toa_stats SEC(".maps");

static __always_inline void toa_stat_inc(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&toa_stats, &stat);

	/*
	 * Atomic although per-CPU: a program run in process context (socket
	 * backlog, getpeername) can be interrupted on its CPU by one in softirq.
	 */
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline struct toa_bpf_config *toa_config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&toa_config, &zero);
}

#endif /* _TOA_BPF_H */

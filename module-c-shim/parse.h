/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The TCP option walk that finds a TOA option.  It is one pure function with
 * no kernel dependencies, so that the very same file is compiled into the
 * module and into the userspace unit tests and fuzzer (tests/parser/).
 */
#ifndef _TOA_PARSE_H
#define _TOA_PARSE_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stddef.h>
#include <stdint.h>
#endif

#define TOA_OPT_LEN_IP4		8	/* kind, len, port(2), IPv4(4) */
#define TOA_OPT_LEN_IP6		20	/* kind, len, port(2), IPv6(16) */
#define TOA_TCP_OPTIONS_MAX	40	/* 60-byte header less the fixed 20 */

/* A set of option kinds, one bit per kind. */
struct toa_kind_set {
	uint32_t bits[8];
};

static inline void toa_kind_set_add(struct toa_kind_set *set, uint8_t kind)
{
	set->bits[kind >> 5] |= (uint32_t)1 << (kind & 31);
}

static inline int toa_kind_set_has(const struct toa_kind_set *set,
				   uint8_t kind)
{
	return (set->bits[kind >> 5] >> (kind & 31)) & 1;
}

enum toa_family {
	TOA_FAMILY_NONE = 0,
	TOA_FAMILY_IP4 = 4,
	TOA_FAMILY_IP6 = 6,
};

/* The client address as carried on the wire (network byte order). */
struct toa_address {
	uint8_t family;		/* enum toa_family */
	uint8_t kind;		/* the option kind it came in */
	uint8_t port[2];
	uint8_t addr[16];	/* IPv4 uses the first 4 bytes */
};

/* Result bits of toa_parse_options(). */
#define TOA_PARSE_FOUND		0x1	/* *out holds the first recognised option */
#define TOA_PARSE_MALFORMED	0x2	/* the option list was malformed */

unsigned int toa_parse_options(const uint8_t *opts, size_t len,
			       const struct toa_kind_set *kinds,
			       struct toa_address *out);

#endif /* _TOA_PARSE_H */

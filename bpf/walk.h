/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The TOA option walk of SPEC 2.1, written for the BPF verifier: it reads
 * the option bytes in place through a [p, end) pair of pointers, the way a
 * sock_ops program sees the TCP header (skb_data .. skb_data_end), with a
 * bounds check before every read and a loop the verifier can count.
 *
 * It is plain C with no BPF dependency, so tests/parser compiles this very
 * header for the host and holds it to the same table of cases and the same
 * differential fuzzer as module-c-shim/parse.c.  The rules are those of
 * parse.c (and of the kernel's tcp_parse_options()); the shape differs only
 * for the verifier.
 *
 * Precondition: end - opts <= TOA_TCP_OPTIONS_MAX (the kernel never has
 * more option bytes than that); the walk stops after that many bytes.
 */
#ifndef _TOA_BPF_WALK_H
#define _TOA_BPF_WALK_H

#include "parse.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define TOA_WALK_EOL	0
#define TOA_WALK_NOP	1

static __always_inline int toa_walk_kind_known(const uint32_t *kind_bits,
					       uint8_t kind)
{
	return (kind_bits[(kind >> 5) & 7] >> (kind & 31)) & 1;
}

/* Copy the recognised option at p (length 8 or 20, inside [p, end)). */
static __always_inline int toa_walk_copy(const uint8_t *p, const uint8_t *end,
					 struct toa_address *out)
{
	int i;

	/* Constant-size checks the verifier can use. */
	if (p + TOA_OPT_LEN_IP4 > end)
		return 0;
	out->family = TOA_FAMILY_IP4;
	out->kind = p[0];
	out->port[0] = p[2];
	out->port[1] = p[3];
	for (i = 0; i < 4; i++)
		out->addr[i] = p[4 + i];
	for (i = 4; i < 16; i++)
		out->addr[i] = 0;
	if (p[1] == TOA_OPT_LEN_IP6) {
		if (p + TOA_OPT_LEN_IP6 > end)
			return 0;
		out->family = TOA_FAMILY_IP6;
		for (i = 4; i < 16; i++)
			out->addr[i] = p[4 + i];
	}
	return 1;
}

/*
 * Returns TOA_PARSE_FOUND and/or TOA_PARSE_MALFORMED like
 * toa_parse_options(); *out is written only with TOA_PARSE_FOUND.
 * kind_bits is a struct toa_kind_set's bits[8].
 *
 * The loop only notes where the first recognised option is; the copy
 * happens once, after it, which keeps the verifier's search small.
 */
static __always_inline unsigned int toa_walk(const uint8_t *opts,
					     const uint8_t *end,
					     const uint32_t *kind_bits,
					     struct toa_address *out)
{
	unsigned int malformed = 0;
	/*
	 * 64-bit on purpose: 5.10's verifier loses a bound checked on a 32-bit
	 * subregister before the value is added to a packet pointer.
	 */
	uint64_t found_off = 0;	/* where the first recognised option is */
	uint64_t off = 0;
	int found = 0;

	/*
	 * Every step advances at least one byte, so the walk ends within 40
	 * steps; the bound on off is all the verifier needs to see that (a
	 * separate step counter would multiply the states it explores).
	 */
#ifdef __clang__
#pragma clang loop unroll(disable)
#endif
	while (off < TOA_TCP_OPTIONS_MAX) {
		/* off < 40 here: the mask changes nothing but bounds p for
		 * verifiers that lose the loop's comparison (5.10) */
		const uint8_t *p = opts + (off & 63);
		uint8_t kind, optlen;

		if (p + 1 > end)
			break;
		kind = p[0];
		if (kind == TOA_WALK_EOL)
			break;
		if (kind == TOA_WALK_NOP) {
			off++;
			continue;
		}
		if (p + 2 > end) {
			malformed = TOA_PARSE_MALFORMED;
			break;
		}
		optlen = p[1];
		if (optlen < 2 || p + optlen > end) {
			malformed = TOA_PARSE_MALFORMED;
			break;
		}
		if (!found && toa_walk_kind_known(kind_bits, kind) &&
		    (optlen == TOA_OPT_LEN_IP4 || optlen == TOA_OPT_LEN_IP6)) {
			found = 1;
			found_off = off;
		}
		off += optlen;
	}
	if (found && found_off < TOA_TCP_OPTIONS_MAX &&
	    toa_walk_copy(opts + (found_off & 63), end, out))
		return TOA_PARSE_FOUND | malformed;
	return malformed;
}

#endif /* _TOA_BPF_WALK_H */

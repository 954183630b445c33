// SPDX-License-Identifier: GPL-2.0
/*
 * Walk a TCP option area the way the kernel's tcp_parse_options() does and
 * return the first option whose kind is in the set and whose length is 8
 * (IPv4) or 20 (IPv6).
 *
 * The walk never reads outside opts[0..len): every read of a length byte or
 * payload is preceded by a check against what is left.  An option shorter
 * than 2 bytes or longer than what is left ends the walk and marks the list
 * malformed; only an option recognised before that point counts.  The walk
 * goes on after a match so that a malformed tail is still reported.
 */
#include "parse.h"

#define TCPOPT_EOL	0
#define TCPOPT_NOP	1

static void toa_copy_address(struct toa_address *out, const uint8_t *opt,
			     uint8_t optlen)
{
	uint8_t alen = optlen - 4;
	uint8_t i;

	out->family = optlen == TOA_OPT_LEN_IP4 ? TOA_FAMILY_IP4 : TOA_FAMILY_IP6;
	out->kind = opt[0];
	out->port[0] = opt[2];
	out->port[1] = opt[3];
	for (i = 0; i < sizeof(out->addr); i++)
		out->addr[i] = i < alen ? opt[4 + i] : 0;
}

unsigned int toa_parse_options(const uint8_t *opts, size_t len,
			       const struct toa_kind_set *kinds,
			       struct toa_address *out)
{
	unsigned int result = 0;
	size_t off = 0;

	while (off < len) {
		uint8_t kind = opts[off];
		uint8_t optlen;

		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			off++;
			continue;
		}
		if (len - off < 2) {
			result |= TOA_PARSE_MALFORMED;
			break;
		}
		optlen = opts[off + 1];
		if (optlen < 2 || optlen > len - off) {
			result |= TOA_PARSE_MALFORMED;
			break;
		}
		if (!(result & TOA_PARSE_FOUND) && toa_kind_set_has(kinds, kind) &&
		    (optlen == TOA_OPT_LEN_IP4 || optlen == TOA_OPT_LEN_IP6)) {
			toa_copy_address(out, opts + off, optlen);
			result |= TOA_PARSE_FOUND;
		}
		off += optlen;
	}
	return result;
}

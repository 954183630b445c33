// SPDX-License-Identifier: GPL-2.0
/*
 * Reference model of the TOA option walk (SPEC.md section 2.1).
 *
 * Phase 1 builds a table next[i] for every offset i of the option area,
 * reachable or not: where a walk standing on i goes next, or that it stops
 * there (EOL or end of data) or fails there (malformed option).
 * Phase 2 follows the chain from offset 0 and keeps the first option whose
 * kind is in the set and whose family, looked up by length, is known.
 */
#include <string.h>

#include "model.h"

#define NEXT_STOP	(-1L)	/* EOL: the list ends, not an error */
#define NEXT_BAD	(-2L)	/* malformed option: ends in error */

static long next[MODEL_MAX_LEN];

/* Address family by option length; 0 means "not a TOA length". */
static const uint8_t family_of_len[256] = {
	[8] = TOA_FAMILY_IP4,
	[20] = TOA_FAMILY_IP6,
};

static int in_set(const struct toa_kind_set *kinds, unsigned int kind)
{
	return (kinds->bits[kind / 32] & (1u << (kind % 32))) != 0;
}

static void build_table(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		long rest = (long)n - (long)i;

		if (p[i] == 0)
			next[i] = NEXT_STOP;
		else if (p[i] == 1)
			next[i] = (long)i + 1;
		else if (rest == 1)		/* kind byte, no length */
			next[i] = NEXT_BAD;
		else if (p[i + 1] <= 1 || (long)p[i + 1] > rest)
			next[i] = NEXT_BAD;
		else
			next[i] = (long)i + p[i + 1];
	}
}

int model_parse(const uint8_t *p, size_t n, const struct toa_kind_set *kinds,
		struct toa_address *out, struct model_walk *w)
{
	struct toa_address found;
	int have = 0, bad = 0;
	long at = 0;
	size_t nodes = 0;

	if (n > MODEL_MAX_LEN)
		return -1;
	build_table(p, n);

	while (at >= 0 && (size_t)at < n) {
		long to = next[at];

		if (to == NEXT_BAD) {
			bad = 1;
			break;
		}
		if (to == NEXT_STOP)
			break;
		if (p[at] != 1) {
			uint8_t fam = family_of_len[p[at + 1]];

			if (w)
				w->node[nodes] = (size_t)at;
			nodes++;
			if (!have && fam && in_set(kinds, p[at])) {
				memset(&found, 0, sizeof(found));
				found.family = fam;
				found.kind = p[at];
				memcpy(found.port, p + at + 2, 2);
				memcpy(found.addr, p + at + 4,
				       fam == TOA_FAMILY_IP4 ? 4 : 16);
				have = 1;
			}
		}
		at = to;
	}
	if (w) {
		w->count = nodes;
		w->malformed = bad;
	}
	if (have)
		*out = found;
	return (have ? TOA_PARSE_FOUND : 0) | (bad ? TOA_PARSE_MALFORMED : 0);
}

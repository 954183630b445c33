/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reference model of toa_parse_options() for differential testing.  It is
 * written from SPEC.md section 2.1, not from parse.c, and in another shape:
 * a successor table over every offset, then a chain walk over that table.
 */
#ifndef _TOA_MODEL_H
#define _TOA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"

#define MODEL_MAX_LEN	4096	/* longest option area it takes */

struct model_walk {
	size_t node[MODEL_MAX_LEN];	/* offsets of the options walked */
	size_t count;
	int malformed;		/* the walk ended on a bad option */
};

/*
 * Same contract as toa_parse_options().  Returns -1 (and touches nothing)
 * when n > MODEL_MAX_LEN.  w may be NULL; when given it receives the offsets
 * of every option, recognised or not, that the walk stepped on.
 */
int model_parse(const uint8_t *p, size_t n, const struct toa_kind_set *kinds,
		struct toa_address *out, struct model_walk *w);

#endif /* _TOA_MODEL_H */

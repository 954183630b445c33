/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Byte 0 of a fuzz input (and of every seed the unit test writes) selects
 * the kind set; the rest is the option area.
 */
#ifndef _TOA_FUZZ_SETS_H
#define _TOA_FUZZ_SETS_H

#include <string.h>

#include "parse.h"

enum {
	SEL_DEFAULT = 0,	/* 254, 253, 200: the module's default */
	SEL_254 = 1,
	SEL_253 = 2,
	SEL_200 = 3,
	SEL_EMPTY = 4,
	SEL_ALL = 5,		/* every kind 0..255, even EOL and NOP */
	SEL_SELF = 6,		/* the single kind equal to the selector */
	SEL_MOD8 = 7,		/* every kind k with k % 8 == sel >> 5 */
};

static inline void fuzz_kind_set(uint8_t sel, struct toa_kind_set *set)
{
	unsigned int k;

	memset(set, 0, sizeof(*set));
	switch (sel & 7) {
	case SEL_DEFAULT:
		toa_kind_set_add(set, 254);
		toa_kind_set_add(set, 253);
		toa_kind_set_add(set, 200);
		break;
	case SEL_254:
		toa_kind_set_add(set, 254);
		break;
	case SEL_253:
		toa_kind_set_add(set, 253);
		break;
	case SEL_200:
		toa_kind_set_add(set, 200);
		break;
	case SEL_EMPTY:
		break;
	case SEL_ALL:
		memset(set->bits, 0xff, sizeof(set->bits));
		break;
	case SEL_SELF:
		toa_kind_set_add(set, sel);
		break;
	case SEL_MOD8:
		for (k = sel >> 5; k < 256; k += 8)
			toa_kind_set_add(set, (uint8_t)k);
		break;
	}
}

#endif /* _TOA_FUZZ_SETS_H */

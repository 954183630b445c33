// SPDX-License-Identifier: GPL-2.0
/* bpf/walk.h compiled for the host, unchanged. */
#include "bpf_walk.h"
#include "walk.h"

unsigned int toa_bpf_walk(const uint8_t *opts, size_t len,
			  const struct toa_kind_set *kinds,
			  struct toa_address *out)
{
	return toa_walk(opts, opts + len, kinds->bits, out);
}

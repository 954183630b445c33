/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The eBPF backend's option walk (bpf/walk.h) behind toa_parse_options()'s
 * signature, so the table tests and the fuzzer hold both to the same rules.
 */
#ifndef _TOA_TEST_BPF_WALK_H
#define _TOA_TEST_BPF_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"

/* len must be at most TOA_TCP_OPTIONS_MAX, as in a TCP header. */
unsigned int toa_bpf_walk(const uint8_t *opts, size_t len,
			  const struct toa_kind_set *kinds,
			  struct toa_address *out);

#endif /* _TOA_TEST_BPF_WALK_H */

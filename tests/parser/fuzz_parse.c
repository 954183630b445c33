// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: toa_parse_options() and the eBPF backend's walk
 * (bpf/walk.h) against the reference model.
 *
 * Input: byte 0 selects the kind set (fuzz_sets.h), the rest is the option
 * area, of any length up to MODEL_MAX_LEN (the kernel never passes more
 * than 40, but the parser must not care).  The parser runs on the whole
 * area and on its first 40 bytes; each result must match the model and
 * satisfy the invariants below, or the target aborts.  The eBPF walk runs
 * on every area of at most 40 bytes (always on the 40-byte prefix) and must
 * give the model's result and address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "model.h"
#include "fuzz_sets.h"
#include "bpf_walk.h"

#define FILL	0x5a

static struct model_walk walk;

static void die(const char *why, const uint8_t *p, size_t n)
{
	size_t i;

	fprintf(stderr, "fuzz_parse: %s\nopts (%zu):", why, n);
	for (i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n");
	abort();
}

static int all_fill(const struct toa_address *a)
{
	const uint8_t *b = (const uint8_t *)a;
	size_t i;

	for (i = 0; i < sizeof(*a); i++)
		if (b[i] != FILL)
			return 0;
	return 1;
}

/* The address must be a copy of an option the walk stepped on. */
static int at_boundary(const uint8_t *p, const struct toa_address *a)
{
	uint8_t len = a->family == TOA_FAMILY_IP4 ? 8 : 20;
	size_t i, j;

	for (i = 0; i < walk.count; i++) {
		const uint8_t *o = p + walk.node[i];

		if (o[0] != a->kind || o[1] != len ||
		    memcmp(o + 2, a->port, 2) ||
		    memcmp(o + 4, a->addr, len - 4))
			continue;
		for (j = len - 4; j < sizeof(a->addr); j++)
			if (a->addr[j])
				return 0;
		return 1;
	}
	return 0;
}

static void one(const uint8_t *p, size_t n, const struct toa_kind_set *set)
{
	struct toa_address out, mout;
	unsigned int res;
	int mres;

	memset(&out, FILL, sizeof(out));
	res = toa_parse_options(p, n, set, &out);
	memset(&mout, FILL, sizeof(mout));
	mres = model_parse(p, n, set, &mout, &walk);

	if (res & ~(unsigned int)(TOA_PARSE_FOUND | TOA_PARSE_MALFORMED))
		die("unknown result bits", p, n);
	if ((int)res != mres)
		die("result differs from the model", p, n);
	if (n <= TOA_TCP_OPTIONS_MAX) {
		struct toa_address bout;
		uint8_t *copy = malloc(n ? n : 1);
		unsigned int bres;

		if (!copy)
			abort();
		memcpy(copy, p, n);
		memset(&bout, FILL, sizeof(bout));
		bres = toa_bpf_walk(copy, n, set, &bout);
		free(copy);
		if ((int)bres != mres)
			die("eBPF walk: result differs from the model", p, n);
		if ((bres & TOA_PARSE_FOUND) ?
		    memcmp(&bout, &mout, sizeof(bout)) != 0 : !all_fill(&bout))
			die("eBPF walk: address differs from the model", p, n);
	}
	if (!(res & TOA_PARSE_FOUND)) {
		if (!all_fill(&out))
			die("*out written without FOUND", p, n);
		return;
	}
	if (memcmp(&out, &mout, sizeof(out)))
		die("address differs from the model", p, n);
	if (out.family != TOA_FAMILY_IP4 && out.family != TOA_FAMILY_IP6)
		die("bad family", p, n);
	if (n < TOA_OPT_LEN_IP4 || out.kind <= 1 ||
	    !toa_kind_set_has(set, out.kind))
		die("found an impossible option", p, n);
	if (!at_boundary(p, &out))
		die("address not at an option boundary", p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct toa_kind_set set;
	const uint8_t *p = data + 1;
	size_t n;

	if (size < 1 || size - 1 > MODEL_MAX_LEN)
		return -1;	/* reject: not added to the corpus */
	n = size - 1;
	fuzz_kind_set(data[0], &set);
	one(p, n, &set);
	if (n > TOA_TCP_OPTIONS_MAX)
		one(p, TOA_TCP_OPTIONS_MAX, &set);
	return 0;
}

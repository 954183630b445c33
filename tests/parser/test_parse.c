// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of toa_parse_options() (module-c-shim/parse.c, compiled here
 * unchanged).  A table of hand-written cases with hand-written answers, a
 * few generated sweeps, and exhaustive property checks over every 2-byte
 * and every 3-byte option area.
 *
 * Usage: test_parse [--seeds DIR]   (DIR: write one fuzz seed per table row)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "model.h"
#include "fuzz_sets.h"
#include "bpf_walk.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define FILL		0xa5	/* pattern *out is pre-filled with */

/* Payloads: port (2 bytes) then address. */
#define P4A	0x1f, 0x90, 10, 1, 2, 3		/* 10.1.2.3:8080 */
#define P4B	0x00, 0x50, 192, 0, 2, 7		/* 192.0.2.7:80 */
/* [2001:db8::1]:443 */
#define P6A	0x01, 0xbb, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, \
		0, 0, 0, 0, 0, 0, 0, 1
/* [fe80::211:22ff:fe33:4455]:4660 */
#define P6B	0x12, 0x34, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, \
		0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55

/* Options: kind, length, payload. */
#define O4(k, p)	(k), 8, p
#define O6(k, p)	(k), 20, p

/* Expected addresses, built from the same payload macros. */
#define W4_(k, p0, p1, a0, a1, a2, a3) \
	{ .family = 4, .kind = (k), .port = { p0, p1 }, \
	  .addr = { a0, a1, a2, a3 } }
#define W4(k, ...)	W4_(k, __VA_ARGS__)
#define W6_(k, p0, p1, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, \
	    a12, a13, a14, a15) \
	{ .family = 6, .kind = (k), .port = { p0, p1 }, \
	  .addr = { a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, \
		    a12, a13, a14, a15 } }
#define W6(k, ...)	W6_(k, __VA_ARGS__)

/* Common real-stack options. */
#define MSS	0x02, 0x04, 0x05, 0xb4			/* MSS 1460 */
#define WS	0x03, 0x03, 0x07			/* window scale 7 */
#define SACKOK	0x04, 0x02
#define TS	0x08, 0x0a, 0x00, 0x12, 0xd6, 0x87, 0x9a, 0x01, 0x02, 0x03
#define SACK1	0x05, 0x0a, 0x11, 0x22, 0x33, 0x44, 0x11, 0x22, 0x3c, 0x44
#define NOP	0x01
#define EOL	0x00

#define FOUND	TOA_PARSE_FOUND
#define MALF	TOA_PARSE_MALFORMED

/* Option bytes of a row; sizeof() on a compound literal gives the length. */
#define B(...)	.opts = (const uint8_t[]){ __VA_ARGS__ }, \
		.len = sizeof((const uint8_t[]){ __VA_ARGS__ })
/* A kind set, 0-terminated (kind 0 cannot be listed; use KALL). */
#define K(...)	.kinds = (const int[]){ __VA_ARGS__, 0 }
#define KNONE	.kinds = (const int[]){ 0 }
#define KALL	.all_kinds = 1

#define N8(x)	x, x, x, x, x, x, x, x
#define N40(x)	N8(x), N8(x), N8(x), N8(x), N8(x)
#define PAIR4(a, b)	a, b, a, b, a, b, a, b
#define PAIR8(a, b)	PAIR4(a, b), PAIR4(a, b)
#define PAIR20(a, b)	PAIR8(a, b), PAIR8(a, b), PAIR4(a, b)

struct row {
	const char *name;
	const uint8_t *opts;
	size_t len;
	const int *kinds;	/* NULL: the default set {254, 253, 200} */
	int all_kinds;		/* every kind 0..255 */
	unsigned int res;
	struct toa_address want;
};

static const struct row rows[] = {
	/* Accepted formats, default set. */
	{ "254/8 ipv4", B(O4(254, P4A)), .res = FOUND, .want = W4(254, P4A) },
	{ "254/20 ipv6", B(O6(254, P6A)), .res = FOUND,
	  .want = W6(254, P6A) },
	{ "253/20 ipv6", B(O6(253, P6B)), .res = FOUND,
	  .want = W6(253, P6B) },
	{ "200/8 ipv4", B(O4(200, P4B)), .res = FOUND, .want = W4(200, P4B) },
	{ "253/8: every kind takes both lengths", B(O4(253, P4B)),
	  .res = FOUND, .want = W4(253, P4B) },
	{ "200/20: every kind takes both lengths", B(O6(200, P6A)),
	  .res = FOUND, .want = W6(200, P6A) },
	{ "ipv4 payload all-ones",
	  B(254, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	  .res = FOUND,
	  .want = { .family = 4, .kind = 254, .port = { 0xff, 0xff },
		    .addr = { 0xff, 0xff, 0xff, 0xff } } },

	/* Empty and degenerate lists. */
	{ "empty list", .opts = (const uint8_t *)"", .len = 0, .res = 0 },
	{ "zero length option", B(254, 0, P4A), .res = MALF },
	{ "zero length unknown kind", B(5, 0), .res = MALF },
	{ "length 1", B(254, 1, P4A), .res = MALF },
	{ "length 1 unknown kind", B(30, 1, 0, 0), .res = MALF },
	{ "length 8 past end by one", B(254, 8, 0x1f, 0x90, 10, 1, 2),
	  .res = MALF },
	{ "length 20 past end by one", B(254, 20, 0x01, 0xbb, N8(0), 0, 0, 0,
					 0, 0, 0, 0), .res = MALF },
	{ "length 255 in 40 bytes", B(7, 255, N8(1), N8(1), N8(1), N8(1),
				      1, 1, 1, 1, 1, 1), .res = MALF },
	{ "length past end after valid options", B(MSS, 254, 30, P4A),
	  .res = MALF },
	{ "kind byte alone", B(254), .res = MALF },
	{ "kind byte alone after NOPs", B(NOP, NOP, 254), .res = MALF },
	{ "unknown kind alone at end", B(MSS, 2), .res = MALF },
	{ "TOA then kind byte alone", B(O4(254, P4A), 254),
	  .res = FOUND | MALF, .want = W4(254, P4A) },

	/* EOL and NOP. */
	{ "EOL alone", B(EOL), .res = 0 },
	{ "EOL first hides TOA", B(EOL, O4(254, P4A)), .res = 0 },
	{ "EOL in the middle hides TOA", B(NOP, MSS, EOL, O4(254, P4A)),
	  .res = 0 },
	{ "EOL then garbage: not malformed", B(MSS, EOL, 254, 0, 5, 1, 0xff),
	  .res = 0 },
	{ "TOA, EOL, malformed bytes", B(O6(253, P6A), EOL, 9, 0, 9),
	  .res = FOUND, .want = W6(253, P6A) },
	{ "NOP alone", B(NOP), .res = 0 },
	{ "NOPs only", B(NOP, NOP, NOP), .res = 0 },
	{ "NOP then TOA", B(NOP, O4(254, P4A)), .res = FOUND,
	  .want = W4(254, P4A) },
	{ "3 NOPs then TOA", B(NOP, NOP, NOP, O6(254, P6B)), .res = FOUND,
	  .want = W6(254, P6B) },
	{ "32 NOPs then TOA (40 bytes)", B(N8(NOP), N8(NOP), N8(NOP),
					   N8(NOP), O4(200, P4A)),
	  .res = FOUND, .want = W4(200, P4A) },
	{ "NOPs between TOA and tail", B(O4(254, P4A), NOP, NOP, SACKOK),
	  .res = FOUND, .want = W4(254, P4A) },
	{ "set {1,254}: NOP is never a TOA", K(1, 254),
	  B(NOP, 8, 0x1f, 0x90, 10, 1, 2, 3), .res = MALF },
	{ "all kinds: EOL is never a TOA", KALL, B(EOL, 8, P4A), .res = 0 },
	{ "all kinds: NOP skipped, kind 8 len 8", KALL,
	  B(NOP, 8, 8, P4A), .res = FOUND, .want = W4(8, P4A) },

	/* TOA kind with the wrong length: stepped over. */
	{ "254 len 2 then TOA", B(254, 2, O4(254, P4B)), .res = FOUND,
	  .want = W4(254, P4B) },
	{ "254 len 6 then TOA", B(254, 6, 1, 2, 3, 4, O4(254, P4B)),
	  .res = FOUND, .want = W4(254, P4B) },
	{ "254 len 7 then TOA", B(254, 7, 0x1f, 0x90, 10, 1, 2, O4(254, P4B)),
	  .res = FOUND, .want = W4(254, P4B) },
	{ "254 len 9 then TOA", B(254, 9, P4A, 4, O4(254, P4B)),
	  .res = FOUND, .want = W4(254, P4B) },
	{ "253 len 19 then TOA", B(253, 19, N8(0xee), N8(0xee), 0xee,
				   O6(253, P6B)),
	  .res = FOUND, .want = W6(253, P6B) },
	{ "253 len 21 then TOA", B(253, 21, N8(0xee), N8(0xee), 0xee, 0xee,
				   0xee, O4(200, P4A)),
	  .res = FOUND, .want = W4(200, P4A) },
	{ "wrong lengths only", B(254, 10, P4A, 0, 0, 200, 4, 1, 2),
	  .res = 0 },

	/* Unknown kinds with valid lengths. */
	{ "unknown kinds then TOA", B(MSS, WS, 34, 2, 255, 4, 9, 9,
				      201, 8, P4B, O4(254, P4A)),
	  .res = FOUND, .want = W4(254, P4A) },
	{ "unknown kind 20 bytes then TOA", B(6, 20, N8(0xfe), N8(0xfe),
					      0xfe, 0xfe, O4(200, P4B)),
	  .res = FOUND, .want = W4(200, P4B) },
	{ "unknown kinds only", B(2, 2, 3, 3, 0, 255, 2, 252, 8, P4A),
	  .res = 0 },

	/* 40 bytes of noise. */
	{ "noise 0x00", B(N40(0x00)), .res = 0 },
	{ "noise 0x01", B(N40(0x01)), .res = 0 },
	{ "noise 0xff", B(N40(0xff)), .res = MALF },
	{ "noise 0xfe", B(N40(0xfe)), .res = MALF },
	{ "noise 0xaa", B(N40(0xaa)), .res = MALF },
	{ "noise 0x02 (20 empty options)", B(N40(0x02)), .res = 0 },
	{ "noise 0x03 (kind alone at the end)", B(N40(0x03)), .res = MALF },
	{ "noise 0x04", B(N40(0x04)), .res = 0 },
	{ "noise 0x08", B(N40(0x08)), .res = 0 },
	{ "noise 0x08, set {8}", K(8), B(N40(0x08)), .res = FOUND,
	  .want = { .family = 4, .kind = 8, .port = { 8, 8 },
		    .addr = { 8, 8, 8, 8 } } },
	{ "noise 0x14, set {20}", K(20), B(N40(0x14)), .res = FOUND,
	  .want = { .family = 6, .kind = 20, .port = { 20, 20 },
		    .addr = { N8(20), N8(20) } } },
	{ "noise fe 08", B(PAIR20(254, 8)), .res = FOUND,
	  .want = { .family = 4, .kind = 254, .port = { 254, 8 },
		    .addr = { 254, 8, 254, 8 } } },
	{ "noise fe 14", B(PAIR20(254, 20)), .res = FOUND,
	  .want = { .family = 6, .kind = 254, .port = { 254, 20 },
		    .addr = { PAIR8(254, 20) } } },
	{ "noise fe 28 (one 40-byte option)", B(PAIR20(254, 40)), .res = 0 },
	{ "noise 01 fe (NOP, then 254 len 1)", B(PAIR20(1, 254)),
	  .res = MALF },
	{ "noise counting 0..39", B(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
				    12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
				    22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
				    32, 33, 34, 35, 36, 37, 38, 39),
	  .res = 0 },
	{ "noise counting 1..40", B(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
				    13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
				    23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
				    33, 34, 35, 36, 37, 38, 39, 40),
	  /* NOP, 2/3, 5/6, 11/12, then 23/24 runs past the end */
	  .res = MALF },

	/* Duplicates: the first wins. */
	{ "dup v4 A then v4 B", B(O4(254, P4A), O4(254, P4B)), .res = FOUND,
	  .want = W4(254, P4A) },
	{ "dup v4 B then v4 A", B(O4(254, P4B), O4(254, P4A)), .res = FOUND,
	  .want = W4(254, P4B) },
	{ "dup v4 then v6", B(O4(254, P4A), O6(254, P6A)), .res = FOUND,
	  .want = W4(254, P4A) },
	{ "dup v6 then v4", B(O6(253, P6A), O4(254, P4A)), .res = FOUND,
	  .want = W6(253, P6A) },
	{ "dup v6 A then v6 B (40 bytes)", B(O6(254, P6A), O6(253, P6B)),
	  .res = FOUND, .want = W6(254, P6A) },
	{ "dup 200 then 254", B(O4(200, P4B), O4(254, P4A)), .res = FOUND,
	  .want = W4(200, P4B) },
	{ "dup, second one malformed-length", B(O4(254, P4A), 254, 30, P4B),
	  .res = FOUND | MALF, .want = W4(254, P4A) },

	/* TOA followed by a malformed tail. */
	{ "TOA then zero length", B(O4(254, P4A), 5, 0), .res = FOUND | MALF,
	  .want = W4(254, P4A) },
	{ "TOA then length 1", B(O6(254, P6A), 254, 1, 0, 0),
	  .res = FOUND | MALF, .want = W6(254, P6A) },
	{ "TOA then length past end", B(O4(200, P4B), MSS, 8, 10, 1),
	  .res = FOUND | MALF, .want = W4(200, P4B) },
	{ "dup: second TOA ignored, no error", B(O4(254, P4A), 254, 8, P4B),
	  .res = FOUND, .want = W4(254, P4A) },
	{ "TOA then TOA cut short", B(O4(254, P4A), 254, 8, 0x00, 0x50, 192),
	  .res = FOUND | MALF, .want = W4(254, P4A) },
	{ "malformed before TOA: TOA not honoured", B(5, 0, O4(254, P4A)),
	  .res = MALF },
	{ "past-end option swallowing a TOA", B(9, 12, O4(254, P4A)),
	  .res = MALF },

	/* Kind sets. */
	{ "set {254}: 200/8 ignored", K(254), B(O4(200, P4A)), .res = 0 },
	{ "set {254}: 253/20 ignored", K(254), B(O6(253, P6A)), .res = 0 },
	{ "set {254}: 200/8 skipped, 254 taken", K(254),
	  B(O4(200, P4A), O4(254, P4B)), .res = FOUND, .want = W4(254, P4B) },
	{ "set {200}: 254 ignored", K(200), B(O4(254, P4A)), .res = 0 },
	{ "set {253}: 254 skipped, 253 taken", K(253),
	  B(O4(254, P4A), O6(253, P6B)), .res = FOUND, .want = W6(253, P6B) },
	{ "set {30}: custom kind", K(30), B(O4(254, P4A), O4(30, P4B)),
	  .res = FOUND, .want = W4(30, P4B) },
	{ "set {2}: MSS kind with length 8", K(2), B(O4(2, P4A)),
	  .res = FOUND, .want = W4(2, P4A) },
	{ "set {255}", K(255), B(O6(255, P6B)), .res = FOUND,
	  .want = W6(255, P6B) },
	{ "empty set", KNONE, B(O4(254, P4A), O6(253, P6A)), .res = 0 },
	{ "empty set, malformed", KNONE, B(O4(254, P4A), 1, 1, 3),
	  .res = MALF },
	{ "all kinds: unknown option first", KALL,
	  B(O4(77, P4B), O4(254, P4A)), .res = FOUND, .want = W4(77, P4B) },

	/* Exactly 40 bytes. */
	{ "one option of 40 bytes", B(254, 40, N8(0x11), N8(0x11), N8(0x11),
				     N8(0x11), 0x11, 0x11, 0x11, 0x11, 0x11,
				     0x11), .res = 0 },
	{ "one option of 41 in 40 bytes", B(254, 41, N8(0x11), N8(0x11),
					    N8(0x11), N8(0x11), 0x11, 0x11,
					    0x11, 0x11, 0x11, 0x11),
	  .res = MALF },
	{ "20 NOPs and a v6 TOA (40 bytes)", B(N8(NOP), N8(NOP), 1, 1, 1, 1,
					       O6(254, P6A)),
	  .res = FOUND, .want = W6(254, P6A) },
	{ "TOA ending exactly at byte 40", B(MSS, WS, SACKOK, TS, NOP,
					     O6(254, P6B)),
	  .res = FOUND, .want = W6(254, P6B) },

	/* As real stacks send them. */
	{ "ACK: NOP NOP TS, TOA appended (LVS)", B(NOP, NOP, TS,
						   O4(254, P4A)),
	  .res = FOUND, .want = W4(254, P4A) },
	{ "ACK: TOA first, then NOP NOP TS", B(O4(254, P4A), NOP, NOP, TS),
	  .res = FOUND, .want = W4(254, P4A) },
	{ "ACK: NOP NOP TS, v6 TOA", B(NOP, NOP, TS, O6(253, P6A)),
	  .res = FOUND, .want = W6(253, P6A) },
	{ "ACK: NOP NOP SACK NOP NOP TS, TOA", B(NOP, NOP, SACK1, NOP, NOP,
						 TS, O4(200, P4B)),
	  .res = FOUND, .want = W4(200, P4B) },
	{ "SYN (TFO): MSS SACKOK TS NOP WS, TOA", B(MSS, SACKOK, TS, NOP, WS,
						    O4(254, P4B)),
	  .res = FOUND, .want = W4(254, P4B) },
	{ "SYN: MSS NOP WS SACKOK TS EOL-padded", B(MSS, NOP, WS, SACKOK,
						    TS, EOL, EOL, EOL),
	  .res = 0 },
	{ "SYN: TFO cookie, TOA", B(MSS, 34, 10, N8(0x5c), O4(254, P4A)),
	  .res = FOUND, .want = W4(254, P4A) },
	{ "MD5 signature then TOA", B(19, 18, N8(0x77), N8(0x77),
				      O4(254, P4A), NOP, NOP),
	  .res = FOUND, .want = W4(254, P4A) },
	{ "ACK: TS without NOPs, TOA, EOL", B(TS, O4(254, P4A), EOL, EOL),
	  .res = FOUND, .want = W4(254, P4A) },
	{ "ACK: TS with length 0 (attack), TOA", B(NOP, NOP, 8, 0, 1, 2,
						   O4(254, P4A)),
	  .res = MALF },
};

static unsigned int passed, failed;
/* Areas the eBPF walk was compared on, and how many differed. */
static unsigned long bpf_compared, bpf_differed;

static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void dump(const char *what, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	printf("  %s:", what);
	for (i = 0; i < n; i++)
		printf(" %02x", b[i]);
	printf("\n");
}

/*
 * The eBPF walk (bpf/walk.h) on an area of at most 40 bytes must give what
 * parse.c gave: the same result bits and, when found, the same address, and
 * leave *out alone otherwise.  It runs on its own exactly sized heap copy.
 */
static void bpf_same(const uint8_t *opts, size_t len,
		     const struct toa_kind_set *set, unsigned int res,
		     const struct toa_address *out)
{
	struct toa_address bout;
	unsigned int bres;
	uint8_t *copy;

	if (len > TOA_TCP_OPTIONS_MAX)
		return;
	copy = malloc(len ? len : 1);
	if (!copy) {
		perror("malloc");
		exit(2);
	}
	memcpy(copy, opts, len);
	memset(&bout, FILL, sizeof(bout));
	bres = toa_bpf_walk(copy, len, set, &bout);
	free(copy);
	bpf_compared++;
	if (bres == res && !memcmp(&bout, out, sizeof(bout)))
		return;
	bpf_differed++;
	if (bpf_differed <= 10) {
		printf("FAIL: bpf walk: result %#x, parse.c %#x\n", bres, res);
		dump("opts", opts, len);
		dump("bpf ", &bout, sizeof(bout));
		dump("c   ", out, sizeof(*out));
	}
}

/*
 * Run the parser on an exactly sized heap copy (so ASan sees any read past
 * the end) with *out pre-filled with a pattern; the eBPF walk must agree.
 */
static unsigned int parse(const uint8_t *opts, size_t len,
			  const struct toa_kind_set *set,
			  struct toa_address *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	unsigned int res;

	if (!copy) {
		perror("malloc");
		exit(2);
	}
	memcpy(copy, opts, len);
	memset(out, FILL, sizeof(*out));
	res = toa_parse_options(copy, len, set, out);
	free(copy);
	bpf_same(opts, len, set, res, out);
	return res;
}

static int untouched(const struct toa_address *a)
{
	const uint8_t *b = (const uint8_t *)a;
	size_t i;

	for (i = 0; i < sizeof(*a); i++)
		if (b[i] != FILL)
			return 0;
	return 1;
}

/* Check one result against the expected one; 1 when it matches. */
static int check(const char *name, const uint8_t *opts, size_t len,
		 const struct toa_kind_set *set, unsigned int want_res,
		 const struct toa_address *want)
{
	struct toa_address out;
	unsigned int res = parse(opts, len, set, &out);
	int ok = 1;

	if (res != want_res) {
		fail(name, "result %#x, want %#x", res, want_res);
		ok = 0;
	} else if (res & TOA_PARSE_FOUND) {
		if (memcmp(&out, want, sizeof(out))) {
			fail(name, "wrong address");
			dump("got ", &out, sizeof(out));
			dump("want", want, sizeof(*want));
			ok = 0;
		}
	} else if (!untouched(&out)) {
		fail(name, "*out written without FOUND");
		ok = 0;
	}
	if (!ok)
		dump("opts", opts, len);
	return ok;
}

static void set_default(struct toa_kind_set *set)
{
	memset(set, 0, sizeof(*set));
	toa_kind_set_add(set, 254);
	toa_kind_set_add(set, 253);
	toa_kind_set_add(set, 200);
}

static void row_set(const struct row *r, struct toa_kind_set *set)
{
	const int *k;

	if (r->all_kinds) {
		memset(set->bits, 0xff, sizeof(set->bits));
		return;
	}
	if (!r->kinds) {
		set_default(set);
		return;
	}
	memset(set, 0, sizeof(*set));
	for (k = r->kinds; *k; k++)
		toa_kind_set_add(set, (uint8_t)*k);
}

static void result(int ok)
{
	if (ok)
		passed++;
	else
		failed++;
}

static void run_rows(void)
{
	struct toa_kind_set set;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		row_set(&rows[i], &set);
		result(check(rows[i].name, rows[i].opts, rows[i].len, &set,
			     rows[i].res, &rows[i].want));
	}
}

/*
 * Lengths 0..255 of a TOA kind at the start of a 40-byte area padded with
 * NOPs, and of a 255-byte area (the parser itself has no 40-byte cap).
 */
static void sweep_lengths(size_t area)
{
	static const uint8_t kinds[] = { 254, 253, 200, 5 };
	struct toa_kind_set set;
	uint8_t buf[255];
	char name[80];
	unsigned int k, l;
	int ok = 1;

	set_default(&set);
	for (k = 0; k < ARRAY_SIZE(kinds); k++) {
		for (l = 0; l < 256; l++) {
			struct toa_address want;
			unsigned int res;
			size_t i;

			memset(buf, NOP, sizeof(buf));
			buf[0] = kinds[k];
			buf[1] = (uint8_t)l;
			for (i = 2; i < 20 && i < l; i++)
				buf[i] = (uint8_t)(0x30 + i);
			memset(&want, 0, sizeof(want));
			if (l < 2 || l > area) {
				res = TOA_PARSE_MALFORMED;
			} else if ((l == 8 || l == 20) && kinds[k] != 5) {
				res = TOA_PARSE_FOUND;
				want.family = l == 8 ? 4 : 6;
				want.kind = kinds[k];
				memcpy(want.port, buf + 2, 2);
				memcpy(want.addr, buf + 4, l - 4);
			} else {
				res = 0;
			}
			snprintf(name, sizeof(name), "length sweep %zu: %u/%u",
				 area, kinds[k], l);
			ok &= check(name, buf, area, &set, res, &want);
		}
	}
	result(ok);
}

/*
 * Every (kind, length) pair as the first option, followed by a valid TOA
 * (B) when there is room: the first option wins if it is recognised,
 * else B does, unless the first option is malformed.
 */
static void sweep_pairs(void)
{
	const uint8_t tail[] = { O4(254, P4B) };
	const struct toa_address wb = W4(254, P4B);
	struct toa_kind_set set;
	uint8_t buf[300];
	char name[80];
	unsigned int k, l;
	int ok = 1;

	set_default(&set);
	for (k = 2; k < 256; k++) {
		for (l = 0; l < 256; l++) {
			struct toa_address want = wb;
			unsigned int res = TOA_PARSE_FOUND;
			size_t len = l < 2 ? 2 + sizeof(tail) :
					     l + sizeof(tail);

			memset(buf, 0x44, sizeof(buf));
			buf[0] = (uint8_t)k;
			buf[1] = (uint8_t)l;
			memcpy(buf + (l < 2 ? 2 : l), tail, sizeof(tail));
			if (l < 2) {
				res = TOA_PARSE_MALFORMED;
			} else if ((l == 8 || l == 20) &&
				   (k == 254 || k == 253 || k == 200)) {
				memset(&want, 0, sizeof(want));
				want.family = l == 8 ? 4 : 6;
				want.kind = (uint8_t)k;
				memcpy(want.port, buf + 2, 2);
				memcpy(want.addr, buf + 4, l - 4);
			}
			snprintf(name, sizeof(name), "pair %u/%u + TOA", k, l);
			ok &= check(name, buf, len, &set, res, &want);
			/* Same option, one byte short: always malformed. */
			if (l >= 3) {
				snprintf(name, sizeof(name),
					 "pair %u/%u short by one", k, l);
				ok &= check(name, buf, l - 1, &set,
					    TOA_PARSE_MALFORMED, NULL);
			}
		}
	}
	result(ok);
}

/* Result of a 1-byte area [a]: from the spec, by hand. */
static unsigned int expect1(uint8_t a)
{
	return a <= 1 ? 0 : TOA_PARSE_MALFORMED;
}

/* Result of a 2-byte area [a, b]: from the spec, by hand. */
static unsigned int expect2(uint8_t a, uint8_t b)
{
	if (a == 0)
		return 0;
	if (a == 1)
		return expect1(b);
	return b == 2 ? 0 : TOA_PARSE_MALFORMED;
}

/* Result of a 3-byte area [a, b, c]: from the spec, by hand. */
static unsigned int expect3(uint8_t a, uint8_t b, uint8_t c)
{
	if (a == 0)
		return 0;
	if (a == 1)
		return expect2(b, c);
	if (b == 2)
		return expect1(c);
	return b == 3 ? 0 : TOA_PARSE_MALFORMED;
}

/*
 * Invariants on one short area (shorter than any TOA): no FOUND, *out
 * untouched, no unknown result bits, the hand-derived result, and the
 * reference model agrees.
 */
static int short_invariants(const uint8_t *b, size_t n,
			    const struct toa_kind_set *set, unsigned int want)
{
	struct toa_address out, mout;
	unsigned int res;
	int mres;

	memset(&out, FILL, sizeof(out));
	res = toa_parse_options(b, n, set, &out);
	bpf_same(b, n, set, res, &out);
	memset(&mout, FILL, sizeof(mout));
	mres = model_parse(b, n, set, &mout, NULL);
	if (res == want && untouched(&out) && mres == (int)res)
		return 1;
	printf("FAIL: property: result %#x, want %#x, model %#x, out %s\n",
	       res, want, (unsigned int)mres,
	       untouched(&out) ? "untouched" : "WRITTEN");
	dump("opts", b, n);
	return 0;
}

static void exhaustive2(void)
{
	struct toa_kind_set sets[3];
	unsigned int v, s;
	int ok = 1;

	set_default(&sets[0]);
	memset(&sets[1], 0, sizeof(sets[1]));
	memset(sets[2].bits, 0xff, sizeof(sets[2].bits));
	for (s = 0; s < 3; s++) {
		for (v = 0; v < 65536 && ok; v++) {
			uint8_t *b = malloc(2);

			b[0] = (uint8_t)(v >> 8);
			b[1] = (uint8_t)v;
			ok = short_invariants(b, 2, &sets[s],
					      expect2(b[0], b[1]));
			free(b);
		}
		for (v = 0; v < 256 && ok; v++) {
			uint8_t b = (uint8_t)v;

			ok = short_invariants(&b, 1, &sets[s], expect1(b));
		}
	}
	result(ok);
}

static void exhaustive3(void)
{
	struct toa_kind_set set;
	uint8_t *b = malloc(3);
	unsigned int v;
	int ok = 1;

	memset(set.bits, 0xff, sizeof(set.bits));
	for (v = 0; v < (1u << 24) && ok; v++) {
		b[0] = (uint8_t)(v >> 16);
		b[1] = (uint8_t)(v >> 8);
		b[2] = (uint8_t)v;
		ok = short_invariants(b, 3, &set, expect3(b[0], b[1], b[2]));
	}
	free(b);
	result(ok);
}

/* The model must agree with every table row too (it is the fuzz oracle). */
static void model_rows(void)
{
	struct toa_kind_set set;
	int ok = 1;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		struct toa_address out;
		int mres;

		row_set(&rows[i], &set);
		memset(&out, FILL, sizeof(out));
		mres = model_parse(rows[i].opts, rows[i].len, &set, &out,
				   NULL);
		if (mres != (int)rows[i].res ||
		    ((mres & TOA_PARSE_FOUND) ?
		     memcmp(&out, &rows[i].want, sizeof(out)) != 0 :
		     !untouched(&out))) {
			printf("FAIL: model: %s\n", rows[i].name);
			ok = 0;
		}
	}
	result(ok);
}

static int write_seeds(const char *dir)
{
	struct toa_kind_set set, dflt, one;
	char path[4096];
	size_t i;

	set_default(&dflt);
	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		uint8_t sel = SEL_DEFAULT;
		unsigned int s;
		FILE *f;

		/* Pick the selector whose set is this row's, if any. */
		row_set(&rows[i], &set);
		for (s = 0; s < 256; s++) {
			fuzz_kind_set((uint8_t)s, &one);
			if (!memcmp(&one, &set, sizeof(set))) {
				sel = (uint8_t)s;
				break;
			}
		}
		snprintf(path, sizeof(path), "%s/row-%03zu", dir, i);
		f = fopen(path, "wb");
		if (!f) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			return 1;
		}
		fputc(sel, f);
		fwrite(rows[i].opts, 1, rows[i].len, f);
		if (fclose(f))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: %s [--seeds DIR]\n", argv[0]);
		return 2;
	}
	run_rows();
	model_rows();
	sweep_lengths(40);
	sweep_lengths(255);
	sweep_pairs();
	exhaustive2();
	exhaustive3();
	printf("parser: %u passed, %u failed\n", passed, failed);
	printf("bpf walk: %lu areas compared with parse.c, %lu differed\n",
	       bpf_compared, bpf_differed);
	return failed || bpf_differed || !bpf_compared ? 1 : 0;
}

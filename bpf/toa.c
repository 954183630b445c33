// SPDX-License-Identifier: GPL-2.0
/*
 * The eBPF backend of toa as one object, so that every hook shares the same
 * maps: each hook lives in its own file, included here.
 */
#include "sockops.c"
#include "getpeername.c"
#include "getsockopt.c"

char _license[] SEC("license") = "GPL";

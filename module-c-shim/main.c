// SPDX-License-Identifier: GPL-2.0
/*
 * toa: hand accept() and getpeername() the client address that a layer-4
 * proxy (LVS FULLNAT, DPVS, Tencent CLB/EdgeOne, Huawei ELB) carried in a TCP
 * option, so unmodified applications see the client instead of the proxy.
 */
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "toa.h"
#include "version.h"

#define TOA_KINDS_MAX 8

/* Default 254, 253, 200: see SPEC §2.1 for who sends which. */
struct toa_kind_set toa_kinds = {
	.bits = {
		[200 >> 5] = 1u << (200 & 31),
		[254 >> 5] = (1u << (254 & 31)) | (1u << (253 & 31)),
	},
};

static int toa_kinds_set(const char *val, const struct kernel_param *kp)
{
	struct toa_kind_set kinds = {};
	unsigned int count = 0;
	char *copy, *cursor, *tok;
	int err = 0;

	copy = kstrdup(val, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	cursor = strim(copy);
	while (!err && (tok = strsep(&cursor, ",")) != NULL) {
		u8 kind;

		/* 0 and 1 are EOL and NOP: they cannot carry an address. */
		if (kstrtou8(strim(tok), 10, &kind) || kind < 2 ||
		    ++count > TOA_KINDS_MAX)
			err = -EINVAL;
		else
			toa_kind_set_add(&kinds, kind);
	}
	kfree(copy);
	if (err) {
		pr_err("kinds: '%.*s' is not a list of up to %d option kinds from 2 to 255\n",
		       (int)strcspn(val, "\n"), val, TOA_KINDS_MAX);
		return err;
	}
	toa_kinds = kinds;
	return 0;
}

static int toa_kinds_get(char *buf, const struct kernel_param *kp)
{
	const char *sep = "";
	int len = 0, kind;

	for (kind = 255; kind >= 2; kind--) {
		if (!toa_kind_set_has(&toa_kinds, kind))
			continue;
		len += scnprintf(buf + len, PAGE_SIZE - len, "%s%d", sep, kind);
		sep = ",";
	}
	len += scnprintf(buf + len, PAGE_SIZE - len, "\n");
	return len;
}

static const struct kernel_param_ops toa_kinds_ops = {
	.set = toa_kinds_set,
	.get = toa_kinds_get,
};

/* Read-only once loaded: the probes read the set without locking. */
module_param_cb(kinds, &toa_kinds_ops, NULL, 0444);
MODULE_PARM_DESC(kinds,
		 "Comma-separated TCP option kinds that carry the client address, each with length 8 (IPv4) or 20 (IPv6) (default 254,253,200)");

static int __init toa_init(void)
{
	int err;

	err = toa_store_init();
	if (err)
		goto fail;
	err = toa_stats_init();
	if (err)
		goto fail_store;
	err = toa_lookup_init();
	if (err) {
		pr_err("cannot register getsockopt %d (error %d)\n",
		       4096, err);
		goto fail_stats;
	}
	/* Last: from here on connections get records. */
	err = toa_hooks_init();
	if (err)
		goto fail_lookup;

	pr_info("version %s loaded\n", TOA_VERSION);
	return 0;

fail_lookup:
	toa_lookup_exit();
fail_stats:
	toa_stats_exit();
fail_store:
	toa_store_exit();
fail:
	toa_trust_exit();
	return err;
}

static void __exit toa_exit(void)
{
	toa_hooks_exit();
	toa_lookup_exit();
	toa_stats_exit();
	toa_store_exit();
	toa_trust_exit();
	pr_info("version %s unloaded\n", TOA_VERSION);
}

module_init(toa_init);
module_exit(toa_exit);

MODULE_LICENSE("GPL");
MODULE_VERSION(TOA_VERSION);
MODULE_AUTHOR("The toa developers");
MODULE_DESCRIPTION("TCP Option Address: the real client address behind layer-4 proxies for accept() and getpeername()");

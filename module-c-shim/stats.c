// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU counters and /proc/net/toa_stats.
 *
 * The file exists in every network namespace (toa-install verify reads it
 * from a private one) and shows the same global counters everywhere.  The
 * layout, a header row of CPUs then one row per counter, is the one the
 * Tencent and DPVS modules print, so existing monitoring keeps working.
 */
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <net/net_namespace.h>

#include "compat/compat.h"
#include "toa.h"
#include "uapi/toa.h"

DEFINE_PER_CPU(struct toa_stats, toa_stats);

static const char *const toa_stat_names[] = { TOA_STAT_NAMES };

/* The probes count what they miss themselves; hook.c says how to sum it. */
static unsigned long (*toa_stats_missed)(void);

void toa_stats_set_missed(unsigned long (*missed)(void))
{
	WRITE_ONCE(toa_stats_missed, missed);
}

static int toa_stats_show(struct seq_file *seq, void *v)
{
	unsigned long (*missed_fn)(void) = READ_ONCE(toa_stats_missed);
	unsigned long missed = missed_fn ? missed_fn() : 0;
	int stat, cpu;

	seq_printf(seq, "%-25s", "");
	for_each_possible_cpu(cpu) {
		char name[16];

		snprintf(name, sizeof(name), "CPU%d", cpu);
		seq_printf(seq, " %15s", name);
	}
	seq_putc(seq, '\n');

	for (stat = 0; stat < TOA_STAT_COUNT; stat++) {
		bool first = true;

		seq_printf(seq, "%-24s:", toa_stat_names[stat]);
		for_each_possible_cpu(cpu) {
			u64 value;

			/* The probes keep one total; show it as CPU0's. */
			if (stat == TOA_STAT_HOOK_MISSED)
				value = first ? missed : 0;
			else
				value = per_cpu(toa_stats, cpu).count[stat];
			seq_printf(seq, " %15llu", (unsigned long long)value);
			first = false;
		}
		seq_putc(seq, '\n');
	}
	return 0;
}

#ifndef TOA_HAVE_PROC_CREATE_SINGLE
static int toa_stats_open(struct inode *inode, struct file *file)
{
	return single_open(file, toa_stats_show, NULL);
}

static const struct file_operations toa_stats_fops = {
	.owner = THIS_MODULE,
	.open = toa_stats_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
};
#endif

static int __net_init toa_stats_net_init(struct net *net)
{
#ifdef TOA_HAVE_PROC_CREATE_SINGLE
	if (!proc_create_single("toa_stats", 0444, net->proc_net,
				toa_stats_show))
		return -ENOMEM;
#else
	if (!proc_create("toa_stats", 0444, net->proc_net, &toa_stats_fops))
		return -ENOMEM;
#endif
	return 0;
}

static void __net_exit toa_stats_net_exit(struct net *net)
{
	remove_proc_entry("toa_stats", net->proc_net);
}

static struct pernet_operations toa_stats_net_ops = {
	.init = toa_stats_net_init,
	.exit = toa_stats_net_exit,
};

int toa_stats_init(void)
{
	/* A name for every counter, and a counter for every name. */
	BUILD_BUG_ON(ARRAY_SIZE(toa_stat_names) != TOA_STAT_COUNT);
	return register_pernet_subsys(&toa_stats_net_ops);
}

void toa_stats_exit(void)
{
	unregister_pernet_subsys(&toa_stats_net_ops);
}

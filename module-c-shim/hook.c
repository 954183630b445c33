// SPDX-License-Identifier: GPL-2.0
/*
 * Probes on the kernel functions where TOA matters.
 *
 *  tcp_v4_syn_recv_sock, tcp_v6_syn_recv_sock (kretprobes): the child socket
 *	is created from the segment completing the handshake (the final ACK,
 *	a SYN cookie's ACK, or a Fast Open SYN); its options decide the record.
 *  inet_getname, inet6_getname: accept() and getpeername() answers are
 *	rewritten after the kernel filled them in (getname.c).
 *  inet_sock_destruct (kprobe): every inet socket ends here, whether it was
 *	accepted, never accepted or torn down half-made; its record goes too.
 *
 * Probes attach by symbol name, so nothing needs the symbols exported (6.12
 * stopped exporting tcp_v4_syn_recv_sock) and no kernel memory is written.
 * Only argument positions are relied upon, and those are the same from 3.10
 * to today even where a backport added a seventh syn_recv_sock argument.
 */
#include <linux/kprobes.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/skbuff.h>
#include <linux/tcp.h>
#include <net/sock.h>

#include "compat/compat.h"
#include "toa.h"

#ifndef CONFIG_KRETPROBES
#error "toa needs a kernel built with CONFIG_KPROBES and CONFIG_KRETPROBES"
#endif

/* ---- child socket creation ---------------------------------------------- */

struct toa_syn_recv_call {
	const struct sk_buff *skb;
};

static bool toa_sender_trusted(const struct sk_buff *skb)
{
	if (skb->protocol == htons(ETH_P_IP))
		return toa_trust_allows_ip4(ip_hdr(skb)->saddr);
	if (skb->protocol == htons(ETH_P_IPV6))
		return toa_trust_allows_ip6(&ipv6_hdr(skb)->saddr);
	return false;
}

/* Decide and keep what the child socket's peer address should read. */
static void toa_child_created(const struct sock *child,
			      const struct sk_buff *skb)
{
	const unsigned char *tail = skb_tail_pointer(skb);
	const unsigned char *start;
	const struct tcphdr *th;
	struct toa_address addr;
	unsigned int hlen, res;

	if (!skb_transport_header_was_set(skb))
		goto no_toa;
	start = skb_transport_header(skb);
	if (start < skb->head || start + sizeof(*th) > tail)
		goto no_toa;
	th = (const struct tcphdr *)start;
	hlen = th->doff * 4;
	if (hlen < sizeof(*th) || start + hlen > tail)
		goto no_toa;

	res = toa_parse_options(start + sizeof(*th), hlen - sizeof(*th),
				&toa_kinds, &addr);
	if (res & TOA_PARSE_MALFORMED)
		toa_stat_inc(TOA_STAT_TOA_MALFORMED);
	if (!(res & TOA_PARSE_FOUND))
		goto no_toa;
	if (!toa_sender_trusted(skb)) {
		toa_stat_inc(TOA_STAT_SYN_RECV_SOCK_UNTRUSTED);
		return;
	}
	if (toa_store_add(child, &addr)) {
		pr_warn_ratelimited("no memory for a record, the connection keeps the proxy address\n");
		goto no_toa;
	}
	toa_stat_inc(TOA_STAT_SYN_RECV_SOCK_TOA);
	return;
no_toa:
	toa_stat_inc(TOA_STAT_SYN_RECV_SOCK_NO_TOA);
}

static int toa_syn_recv_entry(struct kretprobe_instance *ri,
			      struct pt_regs *regs)
{
	struct toa_syn_recv_call *call = (void *)ri->data;

	/* (const struct sock *sk, struct sk_buff *skb, ...) */
	call->skb = (const struct sk_buff *)toa_regs_arg(regs, 1);
	return 0;
}

static int toa_syn_recv4_return(struct kretprobe_instance *ri,
				struct pt_regs *regs)
{
	struct toa_syn_recv_call *call = (void *)ri->data;
	struct sock *child = (struct sock *)regs_return_value(regs);

	if (!IS_ERR_OR_NULL(child))
		toa_child_created(child, call->skb);
	return 0;
}

static int toa_syn_recv6_return(struct kretprobe_instance *ri,
				struct pt_regs *regs)
{
	struct toa_syn_recv_call *call = (void *)ri->data;
	struct sock *child = (struct sock *)regs_return_value(regs);

	/*
	 * An IPv4 segment on an IPv6 listener (v4-mapped) is handed on to
	 * tcp_v4_syn_recv_sock, whose probe has already seen it.
	 */
	if (call->skb->protocol == htons(ETH_P_IP))
		return 0;
	if (!IS_ERR_OR_NULL(child))
		toa_child_created(child, call->skb);
	return 0;
}

/* ---- socket destruction -------------------------------------------------- */

static int toa_sock_destruct_pre(struct kprobe *kp, struct pt_regs *regs)
{
	toa_store_remove((const struct sock *)toa_regs_arg(regs, 0));
	return 0;
}

/* ---- kretprobe arrays --------------------------------------------------- */

/*
 * Register probes[0..n) in order, each with room for instances_per_cpu calls
 * in flight per possible CPU; on failure those already registered are
 * unregistered again.
 */
int toa_kretprobes_register(struct kretprobe *const *probes, unsigned int n,
			    unsigned int instances_per_cpu)
{
	unsigned int i;
	int err;

	for (i = 0; i < n; i++) {
		probes[i]->maxactive = num_possible_cpus() * instances_per_cpu;
		err = register_kretprobe(probes[i]);
		if (err) {
			pr_err("cannot probe %s (error %d)\n",
			       probes[i]->kp.symbol_name, err);
			toa_kretprobes_unregister(probes, i);
			return err;
		}
	}
	return 0;
}

/* Unregister probes[0..n) in reverse order. */
void toa_kretprobes_unregister(struct kretprobe *const *probes, unsigned int n)
{
	while (n--)
		unregister_kretprobe(probes[n]);
}

/* Calls the probes could not follow: no free instance, or recursion. */
unsigned long toa_kretprobes_missed(struct kretprobe *const *probes,
				    unsigned int n)
{
	unsigned long missed = 0;

	while (n--)
		missed += probes[n]->nmissed + probes[n]->kp.nmissed;
	return missed;
}

/* ---- registration ---------------------------------------------------------- */

/*
 * Each CPU has at most one syn_recv_sock call in flight per softirq nesting
 * level; running out of instances shows as hook_missed.
 */
#define TOA_SYN_RECV_INSTANCES_PER_CPU	8

static struct kretprobe toa_syn_recv4_probe = {
	.kp.symbol_name = "tcp_v4_syn_recv_sock",
	.entry_handler = toa_syn_recv_entry,
	.handler = toa_syn_recv4_return,
	.data_size = sizeof(struct toa_syn_recv_call),
};

static struct kretprobe toa_syn_recv6_probe = {
	.kp.symbol_name = "tcp_v6_syn_recv_sock",
	.entry_handler = toa_syn_recv_entry,
	.handler = toa_syn_recv6_return,
	.data_size = sizeof(struct toa_syn_recv_call),
};

static struct kprobe toa_destruct_probe = {
	.symbol_name = "inet_sock_destruct",
	.pre_handler = toa_sock_destruct_pre,
};

/*
 * Registration order matters: the destruct probe first, so that no record
 * can outlive its socket, then the getname hooks, then record creation.
 */
static struct kretprobe *const toa_kretprobes[] = {
	&toa_syn_recv4_probe,
	&toa_syn_recv6_probe,
};

/* hook_missed in /proc/net/toa_stats: every probe's missed count. */
static unsigned long toa_hooks_missed(void)
{
	return toa_destruct_probe.nmissed + toa_getname_missed() +
	       toa_kretprobes_missed(toa_kretprobes,
				     ARRAY_SIZE(toa_kretprobes));
}

int toa_hooks_init(void)
{
	int err;

	err = register_kprobe(&toa_destruct_probe);
	if (err) {
		pr_err("cannot probe %s (error %d)\n",
		       toa_destruct_probe.symbol_name, err);
		return err;
	}
	err = toa_getname_init();
	if (err)
		goto fail_destruct;
	err = toa_kretprobes_register(toa_kretprobes,
				      ARRAY_SIZE(toa_kretprobes),
				      TOA_SYN_RECV_INSTANCES_PER_CPU);
	if (err)
		goto fail_getname;
	toa_stats_set_missed(toa_hooks_missed);
	return 0;

fail_getname:
	toa_getname_exit();
fail_destruct:
	unregister_kprobe(&toa_destruct_probe);
	return err;
}

/*
 * After this returns no handler is running or will run: unregistering waits
 * for handlers in flight, and pending kretprobe returns are disowned.
 * Record creation goes first, destruction last.
 */
void toa_hooks_exit(void)
{
	toa_stats_set_missed(NULL);
	toa_kretprobes_unregister(toa_kretprobes, ARRAY_SIZE(toa_kretprobes));
	toa_getname_exit();
	unregister_kprobe(&toa_destruct_probe);
}

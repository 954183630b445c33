// SPDX-License-Identifier: GPL-2.0
/*
 * accept() and getpeername(): rewrite the peer address that inet_getname()
 * and inet6_getname() just filled in with the client address of the
 * socket's record.
 *
 * Two ways to run code after those functions, chosen at load time by the
 * getname_hook parameter:
 *
 *  ftrace (the default where the kernel has it, 5.11+): an ftrace callback
 *	at the function's entry sends the call to a wrapper in this module,
 *	which calls the real function and rewrites its answer.  On x86 the
 *	wrapper calls the function's body past ftrace's entry call, so its own
 *	call is not traced again; elsewhere that call is recognised by its
 *	return address and let through.  Where the kernel has
 *	DYNAMIC_FTRACE_WITH_ARGS the callback asks for the argument registers
 *	only, not for all of them.  A getpeername() with a record then costs
 *	less than a quarter of what a return probe adds (ci/bench).
 *  kretprobe (everywhere, and the fallback): a return probe rewrites the
 *	answer on the way out.
 *
 * Unloading with the ftrace hook waits for every call redirected into the
 * wrapper to have left it; see toa_getname_ftrace_exit().
 */
#include <linux/delay.h>
#include <linux/ftrace.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/net.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <net/sock.h>	/* before inet_common.h, which needs it on 5.10 */
#include <net/inet_common.h>
#include <net/ipv6.h>

#include "compat/compat.h"
#include "toa.h"

#if defined(TOA_HAVE_FTRACE_GET_REGS) && defined(CONFIG_DYNAMIC_FTRACE_WITH_REGS) && \
	!defined(TOA_GETNAME_HAS_LEN_ARG)
#define TOA_GETNAME_FTRACE
#endif

enum toa_getname_hook {
	TOA_GETNAME_HOOK_AUTO,
	TOA_GETNAME_HOOK_KRETPROBE,
	TOA_GETNAME_HOOK_FTRACE,
};

static const char *const toa_getname_hook_names[] = {
	[TOA_GETNAME_HOOK_AUTO] = "auto",
	[TOA_GETNAME_HOOK_KRETPROBE] = "kretprobe",
	[TOA_GETNAME_HOOK_FTRACE] = "ftrace",
};

static int toa_getname_hook = TOA_GETNAME_HOOK_AUTO;
static int toa_getname_hook_active = TOA_GETNAME_HOOK_AUTO;

/* ---- the rewrite ----------------------------------------------------------- */

/*
 * Kernel callers of getname (sunrpc, ocfs2, ...) may pass a buffer sized for
 * their own family; only syscalls (accept, getpeername, io_uring accept) are
 * known to pass a sockaddr_storage, so only they get a family change.
 */
static bool toa_caller_has_storage(void)
{
	return current->mm && !(current->flags & PF_KTHREAD);
}

/*
 * Write addr into the peer address the kernel filled in.  Returns the new
 * address length, or len when nothing was changed.
 */
static __always_inline int toa_rewrite_addr(const struct toa_address *addr,
					    struct sockaddr *uaddr, int len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)uaddr;
	struct sockaddr_in *sin = (struct sockaddr_in *)uaddr;

	if (uaddr->sa_family == AF_INET && addr->family == TOA_FAMILY_IP4) {
		memcpy(&sin->sin_port, addr->port, sizeof(sin->sin_port));
		memcpy(&sin->sin_addr, addr->addr, sizeof(sin->sin_addr));
	} else if (uaddr->sa_family == AF_INET6) {
		memcpy(&sin6->sin6_port, addr->port, sizeof(sin6->sin6_port));
		if (addr->family == TOA_FAMILY_IP4)
			ipv6_addr_set_v4mapped(*(const __be32 *)addr->addr,
					       &sin6->sin6_addr);
		else
			memcpy(&sin6->sin6_addr, addr->addr,
			       sizeof(sin6->sin6_addr));
		sin6->sin6_flowinfo = 0;
		sin6->sin6_scope_id = 0;
	} else if (uaddr->sa_family == AF_INET) {
		/* An IPv6 client on an IPv4 socket: answer a sockaddr_in6. */
		toa_stat_inc(TOA_STAT_GETNAME_TOA_MISMATCH);
		if (!toa_caller_has_storage())
			return len;
		memset(sin6, 0, sizeof(*sin6));
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_port, addr->port, sizeof(sin6->sin6_port));
		memcpy(&sin6->sin6_addr, addr->addr, sizeof(sin6->sin6_addr));
		len = sizeof(*sin6);
	} else {
		return len;
	}
	toa_stat_inc(TOA_STAT_GETNAME_TOA_OK);
	return len;
}

/*
 * The rewrite reads the record in place, under RCU: no copy, and nothing
 * on this path calls out of the module but the RCU read lock.
 */
static __always_inline int toa_rewrite_peer(const struct socket *sock,
					    struct sockaddr *uaddr, int len)
{
	const struct sock *sk = sock->sk;
	const struct toa_address *addr;

	if (!sk || sk->sk_protocol != IPPROTO_TCP)
		return len;
	rcu_read_lock();
	addr = toa_store_find_rcu(sk);
	if (addr)
		len = toa_rewrite_addr(addr, uaddr, len);
	else
		toa_stat_inc(TOA_STAT_GETNAME_TOA_EMPTY);
	rcu_read_unlock();
	return len;
}

/* ---- the kretprobe hook ------------------------------------------------------ */

struct toa_getname_call {
	struct socket *sock;
	struct sockaddr *uaddr;
#ifdef TOA_GETNAME_HAS_LEN_ARG
	int *uaddr_len;
#endif
};

static int toa_getname_entry(struct kretprobe_instance *ri,
			     struct pt_regs *regs)
{
	struct toa_getname_call *call = (void *)ri->data;
	int peer;

	call->sock = (struct socket *)toa_regs_arg(regs, 0);
	call->uaddr = (struct sockaddr *)toa_regs_arg(regs, 1);
#ifdef TOA_GETNAME_HAS_LEN_ARG
	call->uaddr_len = (int *)toa_regs_arg(regs, 2);
	peer = (int)toa_regs_arg(regs, 3);
#else
	peer = (int)toa_regs_arg(regs, 2);
#endif
	/* getsockname() is never changed: skip the return probe. */
	return peer ? 0 : 1;
}

static int toa_getname_return(struct kretprobe_instance *ri,
			      struct pt_regs *regs)
{
	struct toa_getname_call *call = (void *)ri->data;
	long ret = (long)regs_return_value(regs);

#ifdef TOA_GETNAME_HAS_LEN_ARG
	/* Old API: 0 on success, the length through a pointer. */
	if (ret == 0)
		*call->uaddr_len = toa_rewrite_peer(call->sock, call->uaddr,
						    *call->uaddr_len);
#else
	/* Since 4.17: the length is the return value. */
	if (ret > 0)
		toa_regs_set_return(regs, toa_rewrite_peer(call->sock,
							   call->uaddr,
							   (int)ret));
#endif
	return 0;
}

/* getname runs in process context and may sleep: room for many callers. */
#define TOA_GETNAME_INSTANCES_PER_CPU	64

static struct kretprobe toa_getname4_probe = {
	.kp.symbol_name = "inet_getname",
	.entry_handler = toa_getname_entry,
	.handler = toa_getname_return,
	.data_size = sizeof(struct toa_getname_call),
};

static struct kretprobe toa_getname6_probe = {
	.kp.symbol_name = "inet6_getname",
	.entry_handler = toa_getname_entry,
	.handler = toa_getname_return,
	.data_size = sizeof(struct toa_getname_call),
};

static struct kretprobe *const toa_getname_probes[] = {
	&toa_getname4_probe,
	&toa_getname6_probe,
};

/* ---- the ftrace hook ----------------------------------------------------------- */

#ifdef TOA_GETNAME_FTRACE

struct toa_getname_ftrace {
	struct ftrace_ops ops;
	const char *name;
	unsigned long func;		/* inet_getname or inet6_getname */
	unsigned long wrapper;		/* where peer lookups are sent */
	/* What the wrapper calls: func itself, or its body past ftrace's call. */
	int (*body)(struct socket *sock, struct sockaddr *uaddr, int peer);
};

static struct toa_getname_ftrace toa_getname4_hook, toa_getname6_hook;

/*
 * Set while a wrapper calls func through its entry, so that the callback
 * sees its own wrapper's call and must let it through.
 */
static bool toa_getname_reenters;

/* Calls sent into a wrapper that have not yet left it. */
static atomic_t toa_getname_redirected = ATOMIC_INIT(0);

/* A wrapper: the real function's answer, rewritten. */
static __always_inline int
toa_getname_wrapped(const struct toa_getname_ftrace *hook, struct socket *sock,
		    struct sockaddr *uaddr, int peer)
{
	int ret = hook->body(sock, uaddr, peer);

	if (ret > 0)
		ret = toa_rewrite_peer(sock, uaddr, ret);
	atomic_dec(&toa_getname_redirected);
	return ret;
}

static int notrace toa_inet_getname(struct socket *sock,
				    struct sockaddr *uaddr, int peer)
{
	return toa_getname_wrapped(&toa_getname4_hook, sock, uaddr, peer);
}

static int notrace toa_inet6_getname(struct socket *sock,
				     struct sockaddr *uaddr, int peer)
{
	return toa_getname_wrapped(&toa_getname6_hook, sock, uaddr, peer);
}

/*
 * Runs at the entry of inet_getname()/inet6_getname().  Peer lookups are
 * sent to the wrapper (unless the wrapper is the caller); getsockname()
 * (peer == 0) goes straight on.
 */
static void notrace toa_getname_redirect(unsigned long ip,
					 unsigned long parent_ip,
					 struct ftrace_ops *ops,
					 struct ftrace_regs *fregs)
{
	struct toa_getname_ftrace *hook =
		container_of(ops, struct toa_getname_ftrace, ops);

	if (!toa_fregs_arg(fregs, 2))
		return;
	if (toa_getname_reenters && within_module(parent_ip, THIS_MODULE))
		return;
	atomic_inc(&toa_getname_redirected);
	toa_fregs_set_ip(fregs, hook->wrapper);
}

static struct toa_getname_ftrace toa_getname4_hook = {
	.ops.func = toa_getname_redirect,
	.ops.flags = TOA_FTRACE_IPMODIFY_FLAGS,
	.name = "inet_getname",
	.func = (unsigned long)inet_getname,
	.wrapper = (unsigned long)toa_inet_getname,
};

static struct toa_getname_ftrace toa_getname6_hook = {
	.ops.func = toa_getname_redirect,
	.ops.flags = TOA_FTRACE_IPMODIFY_FLAGS,
	.name = "inet6_getname",
	.func = (unsigned long)inet6_getname,
	.wrapper = (unsigned long)toa_inet6_getname,
};

/*
 * The wrappers call the body of the hooked function, past the call that
 * ftrace patches in at its entry, so that their own call does not go
 * through ftrace a second time.  Where that is not possible (another
 * architecture, indirect branch tracking enforced, an entry not laid out as
 * expected) they call the function itself and the callback lets them pass.
 */
static void toa_getname_ftrace_bodies(void)
{
	unsigned long body4 = toa_ftrace_body(toa_getname4_hook.func);
	unsigned long body6 = toa_ftrace_body(toa_getname6_hook.func);

	if (body4 && body6) {
		toa_getname4_hook.body = (void *)body4;
		toa_getname6_hook.body = (void *)body6;
		toa_getname_reenters = false;
	} else {
		toa_getname4_hook.body = inet_getname;
		toa_getname6_hook.body = inet6_getname;
		toa_getname_reenters = true;
	}
}

static int toa_getname_ftrace_attach(struct toa_getname_ftrace *hook)
{
	int err;

	err = ftrace_set_filter_ip(&hook->ops, hook->func, 0, 0);
	if (err) {
		pr_err("cannot trace %s (error %d)\n", hook->name, err);
		return err;
	}
	err = register_ftrace_function(&hook->ops);
	if (err) {
		pr_err("cannot hook %s through ftrace (error %d)\n",
		       hook->name, err);
		ftrace_set_filter_ip(&hook->ops, hook->func, 1, 0);
	}
	return err;
}

static void toa_getname_ftrace_detach(struct toa_getname_ftrace *hook)
{
	unregister_ftrace_function(&hook->ops);
	ftrace_set_filter_ip(&hook->ops, hook->func, 1, 0);
}

static int toa_getname_ftrace_init(void)
{
	int err;

	/* Before any call can be redirected: the wrappers read these. */
	toa_getname_ftrace_bodies();
	err = toa_getname_ftrace_attach(&toa_getname4_hook);
	if (err)
		return err;
	err = toa_getname_ftrace_attach(&toa_getname6_hook);
	if (err)
		toa_getname_ftrace_detach(&toa_getname4_hook);
	return err;
}

/*
 * Once the callbacks are gone no new call enters a wrapper.  Wait for those
 * inside to leave: first for the count to drop (a call may sleep in
 * lock_sock()), then for every task to pass a voluntary schedule, so none is
 * still between the count's decrement and the wrapper's return.
 */
static void toa_getname_ftrace_exit(void)
{
	toa_getname_ftrace_detach(&toa_getname6_hook);
	toa_getname_ftrace_detach(&toa_getname4_hook);
	while (atomic_read(&toa_getname_redirected))
		msleep(1);
	synchronize_rcu_tasks();
}

#endif /* TOA_GETNAME_FTRACE */

/* ---- choice ---------------------------------------------------------------------- */

int toa_getname_init(void)
{
#ifdef TOA_GETNAME_FTRACE
	if (toa_getname_hook != TOA_GETNAME_HOOK_KRETPROBE) {
		int err = toa_getname_ftrace_init();

		if (!err) {
			toa_getname_hook_active = TOA_GETNAME_HOOK_FTRACE;
			return 0;
		}
		if (toa_getname_hook == TOA_GETNAME_HOOK_FTRACE)
			return err;
		pr_info("using kretprobes for getname instead\n");
	}
#else
	if (toa_getname_hook == TOA_GETNAME_HOOK_FTRACE) {
		pr_err("getname_hook=ftrace: this kernel's ftrace cannot redirect calls\n");
		return -EOPNOTSUPP;
	}
#endif
	toa_getname_hook_active = TOA_GETNAME_HOOK_KRETPROBE;
	return toa_kretprobes_register(toa_getname_probes,
				       ARRAY_SIZE(toa_getname_probes),
				       TOA_GETNAME_INSTANCES_PER_CPU);
}

void toa_getname_exit(void)
{
#ifdef TOA_GETNAME_FTRACE
	if (toa_getname_hook_active == TOA_GETNAME_HOOK_FTRACE) {
		toa_getname_ftrace_exit();
		return;
	}
#endif
	toa_kretprobes_unregister(toa_getname_probes,
				  ARRAY_SIZE(toa_getname_probes));
}

unsigned long toa_getname_missed(void)
{
	if (toa_getname_hook_active == TOA_GETNAME_HOOK_KRETPROBE)
		return toa_kretprobes_missed(toa_getname_probes,
					     ARRAY_SIZE(toa_getname_probes));
	return 0;
}

static int toa_getname_hook_set(const char *val, const struct kernel_param *kp)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(toa_getname_hook_names); i++) {
		if (sysfs_streq(val, toa_getname_hook_names[i])) {
			toa_getname_hook = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int toa_getname_hook_get(char *buf, const struct kernel_param *kp)
{
	/* Once loaded, what is in use; before, what was asked for. */
	int hook = toa_getname_hook_active != TOA_GETNAME_HOOK_AUTO ?
		   toa_getname_hook_active : toa_getname_hook;

	return scnprintf(buf, PAGE_SIZE, "%s\n", toa_getname_hook_names[hook]);
}

static const struct kernel_param_ops toa_getname_hook_ops = {
	.set = toa_getname_hook_set,
	.get = toa_getname_hook_get,
};

module_param_cb(getname_hook, &toa_getname_hook_ops, NULL, 0444);
MODULE_PARM_DESC(getname_hook,
		 "How accept()/getpeername() answers are rewritten: auto (ftrace where the kernel allows, else kretprobe), ftrace or kretprobe; reading it shows the one in use");

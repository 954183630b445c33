// SPDX-License-Identifier: GPL-2.0
/*
 * Per-connection records: the client address of every socket created from a
 * segment with a trusted TOA, keyed by the socket's address.
 *
 * sk_user_data is not ours (sockmap, kTLS and tunnels own it), so the module
 * keeps its own hash table.  Readers (getpeername, accept, getsockopt) walk a
 * bucket under RCU; writers (socket creation in softirq, socket destruction
 * in any context) take the bucket's lock with interrupts disabled: they run
 * in probe handlers, which may already have interrupts off (a kprobe's
 * pre-handler; on 3.10 a kretprobe's handler too), where re-enabling bottom
 * halves is not allowed (3.10 warns and would run softirqs there).  A record
 * is removed when its socket is destroyed, so a recycled socket address never
 * finds a stale record.
 */
#include <linux/atomic.h>
#include <linux/hash.h>
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <net/sock.h>

#include "toa.h"

#define TOA_STORE_BITS		14
#define TOA_STORE_LOCK_BITS	8

struct toa_record {
	struct hlist_node node;
	const struct sock *sk;
	struct toa_address addr;
	struct rcu_head rcu;
};

static struct hlist_head toa_buckets[1 << TOA_STORE_BITS];
static spinlock_t toa_bucket_locks[1 << TOA_STORE_LOCK_BITS];

/* Lets socket destruction skip the table while no record exists. */
static atomic_t toa_live_records = ATOMIC_INIT(0);

static u32 toa_store_hash(const struct sock *sk)
{
	return hash_ptr((void *)sk, TOA_STORE_BITS);
}

static spinlock_t *toa_bucket_lock(u32 hash)
{
	return &toa_bucket_locks[hash & ((1 << TOA_STORE_LOCK_BITS) - 1)];
}

/* Writers only, with the bucket's lock held. */
static struct toa_record *toa_store_find_locked(struct hlist_head *bucket,
						const struct sock *sk)
{
	struct toa_record *rec;

	hlist_for_each_entry(rec, bucket, node)
		if (rec->sk == sk)
			return rec;
	return NULL;
}

static void toa_record_unlink(struct toa_record *rec)
{
	hlist_del_rcu(&rec->node);
	atomic_dec(&toa_live_records);
	kfree_rcu(rec, rcu);
	toa_stat_inc(TOA_STAT_IP6_ADDRESS_FREE);
}

int toa_store_add(const struct sock *sk, const struct toa_address *addr)
{
	u32 hash = toa_store_hash(sk);
	struct toa_record *rec, *old;
	spinlock_t *lock = toa_bucket_lock(hash);
	unsigned long flags;

	rec = kmalloc(sizeof(*rec), GFP_ATOMIC);
	if (!rec)
		return -ENOMEM;
	rec->sk = sk;
	rec->addr = *addr;
	toa_stat_inc(TOA_STAT_IP6_ADDRESS_ALLOC);

	spin_lock_irqsave(lock, flags);
	/*
	 * A record left for this address means the destruction of an earlier
	 * socket there was not seen (a missed probe): it is stale, replace it.
	 */
	old = toa_store_find_locked(&toa_buckets[hash], sk);
	if (old)
		toa_record_unlink(old);
	hlist_add_head_rcu(&rec->node, &toa_buckets[hash]);
	atomic_inc(&toa_live_records);
	spin_unlock_irqrestore(lock, flags);
	return 0;
}

/*
 * The address recorded for sk, or NULL; the caller holds rcu_read_lock()
 * for as long as it reads it.  A record never changes once added.
 */
const struct toa_address *notrace toa_store_find_rcu(const struct sock *sk)
{
	struct toa_record *rec;

	if (!atomic_read(&toa_live_records))
		return NULL;
	hlist_for_each_entry_rcu(rec, &toa_buckets[toa_store_hash(sk)], node)
		if (rec->sk == sk)
			return &rec->addr;
	return NULL;
}

/* A copy of the address recorded for sk, for callers outside RCU. */
bool toa_store_lookup(const struct sock *sk, struct toa_address *addr)
{
	const struct toa_address *found;

	rcu_read_lock();
	found = toa_store_find_rcu(sk);
	if (found)
		*addr = *found;
	rcu_read_unlock();
	return found != NULL;
}

void toa_store_remove(const struct sock *sk)
{
	u32 hash;
	spinlock_t *lock;
	struct toa_record *rec;
	unsigned long flags;

	if (!atomic_read(&toa_live_records))
		return;
	hash = toa_store_hash(sk);
	lock = toa_bucket_lock(hash);
	spin_lock_irqsave(lock, flags);
	rec = toa_store_find_locked(&toa_buckets[hash], sk);
	if (rec)
		toa_record_unlink(rec);
	spin_unlock_irqrestore(lock, flags);
}

int toa_store_init(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(toa_bucket_locks); i++)
		spin_lock_init(&toa_bucket_locks[i]);
	for (i = 0; i < ARRAY_SIZE(toa_buckets); i++)
		INIT_HLIST_HEAD(&toa_buckets[i]);
	return 0;
}

/* Called once no probe can run any more: frees every record left. */
void toa_store_exit(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(toa_buckets); i++) {
		spinlock_t *lock = toa_bucket_lock(i);
		struct toa_record *rec;
		struct hlist_node *tmp;

		spin_lock_irq(lock);
		hlist_for_each_entry_safe(rec, tmp, &toa_buckets[i], node)
			toa_record_unlink(rec);
		spin_unlock_irq(lock);
	}
	/* Wait for the kfree_rcu() callbacks queued above. */
	rcu_barrier();
}

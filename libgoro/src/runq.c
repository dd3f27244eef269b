// SPDX-License-Identifier: MIT
/*
 * runq.c - run queues: per-P lock-free rings and the global queue.
 *
 * Each P has a ring of RUNQ_SIZE goroutines plus runnext (Go's proc.go):
 *
 *  - Only the P's owner puts: it writes the slot, then publishes the new
 *    tail with a release store.  Head is advanced by CAS, by the owner
 *    (runqget) and by thieves (runqgrab) alike, so a slot is consumed by
 *    exactly one of them; the owner reads head with acquire to know how
 *    many slots are free.
 *  - A full ring moves half of itself plus the new G to the global
 *    queue in one batch (runqputslow), so the global lock is taken once
 *    per RUNQ_SIZE/2 puts at worst.
 *  - runnext holds the G readied last by the running goroutine (goready,
 *    new goroutines): it runs next and inherits the time slice, which
 *    makes a producer/consumer pair ping-pong on one P.  Thieves take
 *    runnext only when the ring is empty, and only after a short sleep
 *    when the owner is running, since it is likely to run it at once.
 *  - Invariants: 0 <= tail - head <= RUNQ_SIZE (unsigned wrap); slots in
 *    [head, tail) hold runnable Gs; runqempty() is exact only for the
 *    owner, a hint for others.
 *
 * The global queue is a FIFO under sched.lock; globrunqget moves up to
 * half of a fair share of it into the local ring.  sched.runqsize is
 * written under the lock but read without it as a hint (schedule's
 * every-61-ticks check), hence its atomic stores.  It is a ring of
 * pointers, grown by doubling, not Go's list linked through the Gs:
 * here each struct g sits on its own stack page, and a list made every
 * overflow and every take touch (and miss in the TLB on) one page per
 * goroutine, twice; the ring touches none of them.
 */
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime.h"

static inline uint32_t load_acq(uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

bool runqempty(struct p *pp)
{
	/* runnext may be set while the ring looks empty: check in a loop so
	 * that a concurrent move of runnext into the ring is not missed. */
	for (;;) {
		uint32_t head = load_acq(&pp->runqhead);
		uint32_t tail = load_acq(&pp->runqtail);
		struct g *next = __atomic_load_n(&pp->runnext, __ATOMIC_ACQUIRE);

		if (tail == load_acq(&pp->runqtail))
			return head == tail && !next;
	}
}

uint32_t runqlen(struct p *pp)
{
	uint32_t head = load_acq(&pp->runqhead);
	uint32_t tail = load_acq(&pp->runqtail);

	return tail - head;
}

/* The ring is full: move half of it and gp to the global queue. */
bool runqputslow(struct p *pp, struct g *gp, uint32_t head, uint32_t tail)
{
	struct g *batch[RUNQ_SIZE / 2 + 1];
	uint32_t n = (tail - head) / 2;

	if (n != RUNQ_SIZE / 2)
		throw("runqputslow: queue is not full");
	for (uint32_t i = 0; i < n; i++)
		batch[i] = __atomic_load_n(&pp->runq[(head + i) % RUNQ_SIZE],
					   __ATOMIC_RELAXED);
	if (!__atomic_compare_exchange_n(&pp->runqhead, &head, head + n, false,
					 __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		return false;
	batch[n] = gp;
	lock(&sched.lock);
	globrunqputarray(batch, n + 1);
	unlock(&sched.lock);
	return true;
}

/*
 * next sits in the runnext of a running P.  Its owner readied it a
 * moment ago and, after a hand-off, is likely to block and run it at
 * once: give it that moment rather than bounce next between Ps.  A
 * sleep, as Go's usleep(3): sched_yield returns at once when this CPU
 * has nothing else to run, and the thief took runnext under the owner's
 * nose (select, four producers and one consumer: the producers ran on
 * both Ps and fought over the channel locks, 180-210 -> 126-134 ns/op).
 * But a G readied by a waker that runs on (goready_par: a buffered
 * channel's producer or consumer) is taken after a yield only: there
 * the owner does not block soon, and the pair runs on both Ps (chanbuf:
 * 11-13 ns/op, 15-20 with the sleep).  A spin instead of the sleep, on
 * runnext or on the clock alone, slowed the owner (pingpong procs=2
 * 75 -> 135-190 ns/op: this host's two CPUs are likely SMT siblings).
 */
static void runnext_backoff(struct g *next)
{
	if (__atomic_load_n(&next->readypar, __ATOMIC_RELAXED))
		sched_yield();
	else
		usleep(3);
}

/*
 * Grab half of pp's queue into batch[batchhead...] (a ring of the same
 * size); returns how many.  Runs on a thief.
 */
static uint32_t runqgrab(struct p *pp, struct g **batch, uint32_t batchhead,
			 bool stealrunnext)
{
	for (;;) {
		uint32_t head = load_acq(&pp->runqhead);
		uint32_t tail = load_acq(&pp->runqtail);
		uint32_t n = tail - head;

		n -= n / 2;
		if (n == 0) {
			struct g *next;

			if (!stealrunnext)
				return 0;
			next = __atomic_load_n(&pp->runnext, __ATOMIC_ACQUIRE);
			if (!next)
				return 0;
			if (__atomic_load_n(&pp->status, __ATOMIC_RELAXED) ==
			    P_RUNNING)
				runnext_backoff(next);
			if (!__atomic_compare_exchange_n(&pp->runnext, &next,
							 NULL, false,
							 __ATOMIC_ACQUIRE,
							 __ATOMIC_RELAXED))
				continue;
			batch[batchhead % RUNQ_SIZE] = next;
			return 1;
		}
		if (n > RUNQ_SIZE / 2)	/* read inconsistent head and tail */
			continue;
		for (uint32_t i = 0; i < n; i++)
			batch[(batchhead + i) % RUNQ_SIZE] =
				__atomic_load_n(&pp->runq[(head + i) % RUNQ_SIZE],
						__ATOMIC_RELAXED);
		if (__atomic_compare_exchange_n(&pp->runqhead, &head, head + n,
						false, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
			return n;
	}
}

/* Steal half of p2's queue into pp's (owned); return one G to run. */
struct g *runqsteal(struct p *pp, struct p *p2, bool stealrunnext)
{
	uint32_t tail = pp->runqtail;
	uint32_t n = runqgrab(p2, pp->runq, tail, stealrunnext);
	struct g *gp;

	if (n == 0)
		return NULL;
	n--;
	gp = __atomic_load_n(&pp->runq[(tail + n) % RUNQ_SIZE],
			     __ATOMIC_RELAXED);
	if (n == 0)
		return gp;
	if (tail + n - load_acq(&pp->runqhead) >= RUNQ_SIZE)
		throw("runqsteal: runq overflow");
	__atomic_store_n(&pp->runqtail, tail + n, __ATOMIC_RELEASE);
	return gp;
}

/* Global queue; sched.lock held. */

/* Room for n more: double the ring (its entries move to [0, size)). */
static void globrunqgrow(uint32_t n)
{
	uint32_t size = (uint32_t)sched.runqsize, cap = sched.runqcap;
	struct g **nq;

	if (size + n <= cap)
		return;
	while (cap < size + n)
		cap = cap ? 2 * cap : 1024;
	nq = malloc(cap * sizeof(*nq));
	if (!nq)
		throw("globrunqput: out of memory");
	for (uint32_t i = 0; i < size; i++)
		nq[i] = sched.runq[(sched.runqhead + i) & (sched.runqcap - 1)];
	free(sched.runq);
	sched.runq = nq;
	sched.runqhead = 0;
	sched.runqcap = cap;
}

static inline void globrunqpush(struct g *gp)
{
	uint32_t size = (uint32_t)sched.runqsize;

	sched.runq[(sched.runqhead + size) & (sched.runqcap - 1)] = gp;
	__atomic_store_n(&sched.runqsize, (int32_t)size + 1, __ATOMIC_RELAXED);
}

void globrunqput(struct g *gp)
{
	globrunqgrow(1);
	globrunqpush(gp);
}

void globrunqputarray(struct g **batch, uint32_t n)
{
	globrunqgrow(n);
	for (uint32_t i = 0; i < n; i++)
		globrunqpush(batch[i]);
}

/* q (linked through schedlink, n long) to the tail, emptied. */
void globrunqputbatch(struct gqueue *q, int32_t n)
{
	struct g *gp, *next;

	globrunqgrow((uint32_t)n);
	for (gp = q->head; gp; gp = next) {
		next = gp->schedlink;
		gp->schedlink = NULL;
		globrunqpush(gp);
	}
	q->head = q->tail = NULL;
}

static inline struct g *globrunqpop(void)
{
	struct g *gp = sched.runq[sched.runqhead];

	sched.runqhead = (sched.runqhead + 1) & (sched.runqcap - 1);
	__atomic_store_n(&sched.runqsize, sched.runqsize - 1, __ATOMIC_RELAXED);
	return gp;
}

/* Take a fair share of the global queue (at most max, 0: no limit),
 * moving all but the returned G to pp's ring.  sched.lock held. */
struct g *globrunqget(struct p *pp, int32_t max)
{
	int32_t n, procs = __atomic_load_n(&gomaxprocs, __ATOMIC_RELAXED);
	struct g *gp;

	if (sched.runqsize == 0)
		return NULL;
	n = sched.runqsize / procs + 1;
	if (n > sched.runqsize)
		n = sched.runqsize;
	if (max > 0 && n > max)
		n = max;
	if (n > RUNQ_SIZE / 2)
		n = RUNQ_SIZE / 2;
	gp = globrunqpop();
	for (n--; n > 0; n--)
		runqput(pp, globrunqpop(), false);
	return gp;
}

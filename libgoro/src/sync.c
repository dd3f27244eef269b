// SPDX-License-Identifier: MIT
/*
 * sync.c - goro_mutex, goro_rwmutex, goro_waitgroup, goro_once and
 * goro_cond: Go's package sync over the semaphores of sema.c.
 *
 * Every object's zero value is ready, so none has an init that must run
 * (goro_cond_init only stores the mutex pointer).  They never allocate:
 * the waiters are sudogs on the waiting goroutines' stacks.
 *
 * Mutex.  state = MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING | waiters
 * << MUTEX_WAITER_SHIFT; sema counts wake-ups handed to sleepers.
 *  - Normal mode: waiters queue FIFO, but a woken waiter competes with
 *    goroutines arriving right now, which usually win (they are already
 *    running on a CPU).  An arriving goroutine spins a little
 *    (sync_can_spin/sync_do_spin: only with several Ps, an idle run
 *    queue, at most 4 rounds) when the lock is held and not starving,
 *    and sets MUTEX_WOKEN so that unlock does not wake a sleeper that
 *    would only lose the race.  This gives the throughput.
 *  - Starvation mode: a waiter that has waited more than 1 ms sets
 *    MUTEX_STARVING.  Unlock then hands ownership directly to the first
 *    waiter (semrelease1 with handoff: the waiter runs next on this P),
 *    and newcomers neither spin nor grab the lock: they queue at the
 *    tail.  A woken waiter that requeues goes to the head (LIFO) since
 *    it waited longest.  The last waiter, or one that waited < 1 ms,
 *    switches back to normal mode.  This bounds the tail latency.
 *  Invariants: MUTEX_WOKEN is set by at most one goroutine at a time and
 *  cleared by it; in starvation mode the lock is never free-but-claimable:
 *  the waker keeps MUTEX_LOCKED clear and the handed-off waiter sets it.
 *
 * RWMutex.  reader_count counts readers; a writer subtracts
 * RWMUTEX_MAX_READERS so new readers see a negative count and sleep on
 * reader_sem, then waits on writer_sem for the readers that were inside
 * (reader_wait) to leave.  Writers exclude each other with the mutex w.
 *
 * WaitGroup.  state: counter in the high 32 bits, waiter count in the
 * low 32.  When the counter reaches zero with waiters, the Add that did
 * it zeroes state and releases the semaphore once per waiter.
 *
 * Cond.  Go's notifyList: each waiter takes a ticket (wait++) before it
 * unlocks the mutex, then sleeps unless notify already passed it.
 * Signal wakes the waiter holding ticket `notify` and advances it;
 * broadcast advances notify to wait and wakes all.  Tickets make a
 * signal sent between a waiter's unlock and its sleep count for it.
 *
 * Alternatives rejected: a futex-based mutex would block the M (the
 * whole P) rather than the goroutine; a FIFO-only mutex gives every
 * acquisition a context switch under contention.
 */
#include <stdint.h>

#include <goro.h>

#include "chan.h"
#include "runtime.h"

/* ---------------------------------------------------------------------
 * Mutex
 * ------------------------------------------------------------------- */

static inline int32_t load32(int32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline bool cas32(int32_t *p, int32_t old, int32_t new)
{
	return __atomic_compare_exchange_n(p, &old, new, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

static void mutex_lock_slow(struct goro_mutex *m)
{
	int64_t waitstart = 0;
	bool starving = false, awoke = false;
	int iter = 0;
	int32_t old = load32(&m->state), new;

	for (;;) {
		/* Spin while locked in normal mode: it may be released soon. */
		if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED &&
		    sync_can_spin(iter)) {
			/* Tell unlock not to wake a sleeper while we spin. */
			if (!awoke && !(old & MUTEX_WOKEN) &&
			    (old >> MUTEX_WAITER_SHIFT) != 0 &&
			    cas32(&m->state, old, old | MUTEX_WOKEN))
				awoke = true;
			sync_do_spin();
			iter++;
			old = load32(&m->state);
			continue;
		}
		new = old;
		/* Never grab a starving mutex: it belongs to the waiters. */
		if (!(old & MUTEX_STARVING))
			new |= MUTEX_LOCKED;
		if (old & (MUTEX_LOCKED | MUTEX_STARVING))
			new += 1 << MUTEX_WAITER_SHIFT;
		/* Switch to starvation mode, unless it was unlocked meanwhile. */
		if (starving && (old & MUTEX_LOCKED))
			new |= MUTEX_STARVING;
		if (awoke) {
			if (!(new & MUTEX_WOKEN))
				throw("sync: inconsistent mutex state");
			new &= ~MUTEX_WOKEN;
		}
		if (!cas32(&m->state, old, new)) {
			old = load32(&m->state);
			continue;
		}
		if (!(old & (MUTEX_LOCKED | MUTEX_STARVING)))
			return;		/* locked with the CAS */

		/* Waited before: go back to the head of the queue. */
		bool lifo = waitstart != 0;

		if (!waitstart)
			waitstart = nanotime();
		semacquire1(&m->sema, lifo, WAIT_SYNC_MUTEX_LOCK);
		starving = starving ||
			   nanotime() - waitstart > STARVATION_THRESHOLD_NS;
		old = load32(&m->state);
		if (old & MUTEX_STARVING) {
			/*
			 * Ownership was handed to us: the state is
			 * inconsistent (LOCKED clear, we still counted as a
			 * waiter) until we fix it here.
			 */
			int32_t delta = MUTEX_LOCKED - (1 << MUTEX_WAITER_SHIFT);

			if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) ||
			    (old >> MUTEX_WAITER_SHIFT) == 0)
				throw("sync: inconsistent mutex state");
			if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1)
				delta -= MUTEX_STARVING;
			__atomic_add_fetch(&m->state, delta, __ATOMIC_ACQ_REL);
			return;
		}
		awoke = true;
		iter = 0;
	}
}

GORO_API void goro_mutex_lock(struct goro_mutex *m)
{
	if (likely(cas32(&m->state, 0, MUTEX_LOCKED)))
		return;
	mutex_lock_slow(m);
}

GORO_API bool goro_mutex_trylock(struct goro_mutex *m)
{
	int32_t old = load32(&m->state);

	if (old & (MUTEX_LOCKED | MUTEX_STARVING))
		return false;
	return cas32(&m->state, old, old | MUTEX_LOCKED);
}

static void mutex_unlock_slow(struct goro_mutex *m, int32_t new)
{
	int32_t old;

	if (!((new + MUTEX_LOCKED) & MUTEX_LOCKED))
		throw("sync: unlock of unlocked mutex");
	if (new & MUTEX_STARVING) {
		/* Hand ownership to the first waiter and let it run now. */
		semrelease1(&m->sema, true);
		return;
	}
	old = new;
	for (;;) {
		/*
		 * Nobody to wake, or someone already woken / spinning, or
		 * the lock was taken again: its owner will do the wake-up.
		 */
		if ((old >> MUTEX_WAITER_SHIFT) == 0 ||
		    (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)))
			return;
		new = (old - (1 << MUTEX_WAITER_SHIFT)) | MUTEX_WOKEN;
		if (cas32(&m->state, old, new)) {
			semrelease1(&m->sema, false);
			return;
		}
		old = load32(&m->state);
	}
}

GORO_API void goro_mutex_unlock(struct goro_mutex *m)
{
	int32_t new = __atomic_sub_fetch(&m->state, MUTEX_LOCKED,
					 __ATOMIC_RELEASE);

	if (unlikely(new != 0))
		mutex_unlock_slow(m, new);
}

/* ---------------------------------------------------------------------
 * RWMutex
 * ------------------------------------------------------------------- */

#define RWMUTEX_MAX_READERS	(1 << 30)

GORO_API void goro_rwmutex_rlock(struct goro_rwmutex *rw)
{
	if (__atomic_add_fetch(&rw->reader_count, 1, __ATOMIC_ACQ_REL) < 0)
		/* A writer is pending: wait for it. */
		semacquire1(&rw->reader_sem, false, WAIT_SYNC_RWMUTEX_RLOCK);
}

GORO_API void goro_rwmutex_runlock(struct goro_rwmutex *rw)
{
	int32_t r = __atomic_sub_fetch(&rw->reader_count, 1,
				       __ATOMIC_ACQ_REL);

	if (likely(r >= 0))
		return;
	if (r + 1 == 0 || r + 1 == -RWMUTEX_MAX_READERS)
		throw("sync: RUnlock of unlocked RWMutex");
	/* A writer is pending: the last reader it waits for wakes it. */
	if (__atomic_sub_fetch(&rw->reader_wait, 1, __ATOMIC_ACQ_REL) == 0)
		semrelease1(&rw->writer_sem, false);
}

GORO_API void goro_rwmutex_lock(struct goro_rwmutex *rw)
{
	int32_t r;

	goro_mutex_lock(&rw->w);
	/* Announce the writer; r = readers still inside. */
	r = __atomic_add_fetch(&rw->reader_count, -RWMUTEX_MAX_READERS,
			       __ATOMIC_ACQ_REL) + RWMUTEX_MAX_READERS;
	if (r != 0 &&
	    __atomic_add_fetch(&rw->reader_wait, r, __ATOMIC_ACQ_REL) != 0)
		semacquire1(&rw->writer_sem, false, WAIT_SYNC_RWMUTEX_LOCK);
}

GORO_API void goro_rwmutex_unlock(struct goro_rwmutex *rw)
{
	int32_t r = __atomic_add_fetch(&rw->reader_count, RWMUTEX_MAX_READERS,
				       __ATOMIC_ACQ_REL);

	if (r >= RWMUTEX_MAX_READERS)
		throw("sync: Unlock of unlocked RWMutex");
	/* Let in the readers that arrived while we held it. */
	for (int32_t i = 0; i < r; i++)
		semrelease1(&rw->reader_sem, false);
	goro_mutex_unlock(&rw->w);
}

/* ---------------------------------------------------------------------
 * WaitGroup
 * ------------------------------------------------------------------- */

GORO_API void goro_waitgroup_add(struct goro_waitgroup *wg, int delta)
{
	uint64_t state = __atomic_add_fetch(&wg->state,
					    (uint64_t)(int64_t)delta << 32,
					    __ATOMIC_ACQ_REL);
	int32_t v = (int32_t)(state >> 32);
	uint32_t w = (uint32_t)state;

	if (v < 0)
		gopanic("sync: negative WaitGroup counter");
	if (w != 0 && delta > 0 && v == delta)
		gopanic("sync: WaitGroup misuse: Add called concurrently with Wait");
	if (v > 0 || w == 0)
		return;
	/*
	 * Counter is 0 with waiters: nobody may change state now (an Add
	 * would be a misuse, a Wait sees 0 and returns).  Reset the waiter
	 * count and wake them all.
	 */
	if (__atomic_load_n(&wg->state, __ATOMIC_ACQUIRE) != state)
		gopanic("sync: WaitGroup misuse: Add called concurrently with Wait");
	__atomic_store_n(&wg->state, 0, __ATOMIC_RELEASE);
	for (; w != 0; w--)
		semrelease1(&wg->sema, false);
}

GORO_API void goro_waitgroup_done(struct goro_waitgroup *wg)
{
	goro_waitgroup_add(wg, -1);
}

GORO_API void goro_waitgroup_wait(struct goro_waitgroup *wg)
{
	uint64_t state = __atomic_load_n(&wg->state, __ATOMIC_ACQUIRE);

	for (;;) {
		if ((int32_t)(state >> 32) == 0)
			return;
		if (__atomic_compare_exchange_n(&wg->state, &state, state + 1,
						false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			semacquire1(&wg->sema, false, WAIT_SYNC_WAITGROUP_WAIT);
			if (__atomic_load_n(&wg->state, __ATOMIC_ACQUIRE) != 0)
				gopanic("sync: WaitGroup is reused before previous Wait has returned");
			return;
		}
	}
}

/* ---------------------------------------------------------------------
 * Once
 * ------------------------------------------------------------------- */

GORO_API void goro_once_do(struct goro_once *o, void (*fn)(void *arg),
			   void *arg)
{
	/*
	 * done is set only after fn returned, so a caller that sees it set
	 * also sees fn's effects; callers that race with the first one wait
	 * on the mutex until fn is done.
	 */
	if (likely(__atomic_load_n(&o->done, __ATOMIC_ACQUIRE)))
		return;
	goro_mutex_lock(&o->m);
	if (!__atomic_load_n(&o->done, __ATOMIC_RELAXED)) {
		fn(arg);
		__atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
	}
	goro_mutex_unlock(&o->m);
}

/* ---------------------------------------------------------------------
 * Cond (notifyList)
 * ------------------------------------------------------------------- */

_Static_assert(sizeof(((struct goro_cond *)0)->lock) >= sizeof(struct rtlock),
	       "goro_cond.lock must hold an rtlock");

static inline struct rtlock *notify_lock(struct goro_cond *c)
{
	return (struct rtlock *)&c->lock;
}

/* a < b in wrapping ticket arithmetic */
static inline bool ticket_less(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static bool notify_parkcommit(struct g *gp, void *arg)
{
	(void)gp;
	unlock(arg);
	return true;
}

GORO_API void goro_cond_init(struct goro_cond *c, struct goro_mutex *l)
{
	c->l = l;
}

GORO_API void goro_cond_wait(struct goro_cond *c)
{
	struct sudog s;
	uint32_t t;

	if (!c->l)
		throw("sync: goro_cond_wait on a goro_cond without a mutex");
	t = __atomic_fetch_add(&c->wait, 1, __ATOMIC_ACQ_REL);
	goro_mutex_unlock(c->l);

	lock(notify_lock(c));
	if (ticket_less(t, __atomic_load_n(&c->notify, __ATOMIC_RELAXED))) {
		/* Notified between the unlock and here. */
		unlock(notify_lock(c));
		goto relock;
	}
	s.g = getg();
	s.ticket = t;
	s.next = NULL;
	if (c->tail)
		((struct sudog *)c->tail)->next = &s;
	else
		c->head = &s;
	c->tail = &s;
	gopark(notify_parkcommit, notify_lock(c), WAIT_SYNC_COND_WAIT);
relock:
	goro_mutex_lock(c->l);
}

GORO_API void goro_cond_signal(struct goro_cond *c)
{
	struct sudog *s, *p, *n;
	struct g *gp;
	uint32_t t;

	/* Fast path: no waiter since the last notification. */
	if (__atomic_load_n(&c->wait, __ATOMIC_ACQUIRE) ==
	    __atomic_load_n(&c->notify, __ATOMIC_ACQUIRE))
		return;

	lock(notify_lock(c));
	t = c->notify;
	if (t == __atomic_load_n(&c->wait, __ATOMIC_ACQUIRE)) {
		unlock(notify_lock(c));
		return;
	}
	__atomic_store_n(&c->notify, t + 1, __ATOMIC_RELEASE);
	/*
	 * The waiter with ticket t may not have queued yet: then it sees
	 * notify > t when it gets the lock and does not sleep.
	 */
	for (p = NULL, s = c->head; s; p = s, s = s->next) {
		if (s->ticket != t)
			continue;
		n = s->next;
		if (p)
			p->next = n;
		else
			c->head = n;
		if (!n)
			c->tail = p;
		gp = s->g;
		unlock(notify_lock(c));
		goready(gp);
		return;
	}
	unlock(notify_lock(c));
}

GORO_API void goro_cond_broadcast(struct goro_cond *c)
{
	struct sudog *s, *next;

	if (__atomic_load_n(&c->wait, __ATOMIC_ACQUIRE) ==
	    __atomic_load_n(&c->notify, __ATOMIC_ACQUIRE))
		return;

	lock(notify_lock(c));
	s = c->head;
	c->head = NULL;
	c->tail = NULL;
	__atomic_store_n(&c->notify, __atomic_load_n(&c->wait, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	unlock(notify_lock(c));

	while (s) {
		next = s->next;		/* s vanishes once its g runs */
		goready(s->g);
		s = next;
	}
}

// SPDX-License-Identifier: MIT
/*
 * time.c - timers: per-P 4-ary heaps run by the scheduler (Go >= 1.14).
 *
 * Each P keeps its timers in a 4-ary min-heap on `when` under its
 * timerslock, and publishes the earliest `when` in timer0when (0: none)
 * so that the scheduler can skip the lock when nothing is due.  Timers
 * run from the scheduler: schedule() and findrunnable() check their own
 * P, stealwork() the other Ps' (so a P gone idle still has its timers
 * run), and the one M that sleeps for timers (sched.pollm) sleeps until
 * the earliest timer0when of all Ps.  A 4-ary heap halves the depth of a
 * binary one and keeps a node's children in one cache line.
 *
 * Invariants, under pp->timerslock: t->pp == pp, pp->timers[t->idx].t
 * == t and pp->timers[t->idx].when == t->when for every queued t (the
 * heap compares its own copies of when: a timer is often embedded in a
 * goroutine, one page each, and sifting through them would miss the
 * TLB at every step); a timer not queued has t->pp == NULL;
 * pp->timer0when == pp->timers[0].when, or 0 when the heap is empty.
 * t->pp changes only under the lock of the heap it leaves or joins, so
 * deltimer() finds a timer by locking t->pp and checking it again.
 *
 * A timer's function runs with no lock held, after the timer left the
 * heap (or, periodic, was re-queued), on an M holding a P; so it may
 * goready() and re-arm timers, and deltimer() racing with it returns
 * false.
 */
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "goro.h"
#include "runtime.h"

int64_t nanotime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

GORO_API int64_t goro_nanotime(void)
{
	return nanotime();
}

static void update_timer0(struct p *pp)
{
	__atomic_store_n(&pp->timer0when,
			 pp->ntimers ? pp->timers[0].when : 0,
			 __ATOMIC_RELEASE);
}

static void heap_set(struct p *pp, int32_t i, struct timerwhen tw)
{
	pp->timers[i] = tw;
	tw.t->idx = i;
}

static void siftup(struct p *pp, int32_t i)
{
	struct timerwhen tw = pp->timers[i];

	while (i > 0) {
		int32_t parent = (i - 1) / 4;

		if (tw.when >= pp->timers[parent].when)
			break;
		heap_set(pp, i, pp->timers[parent]);
		i = parent;
	}
	heap_set(pp, i, tw);
}

static void siftdown(struct p *pp, int32_t i)
{
	struct timerwhen tw = pp->timers[i];
	int32_t n = pp->ntimers;

	for (;;) {
		int32_t c = 4 * i + 1, best = -1;
		int64_t w = tw.when;

		for (int32_t k = c; k < c + 4 && k < n; k++) {
			if (pp->timers[k].when < w) {
				w = pp->timers[k].when;
				best = k;
			}
		}
		if (best < 0)
			break;
		heap_set(pp, i, pp->timers[best]);
		i = best;
	}
	heap_set(pp, i, tw);
}

/* pp->timerslock held. */
static void doaddtimer(struct p *pp, struct timer *t)
{
	if (pp->ntimers == pp->timerscap) {
		int32_t ncap = pp->timerscap ? 2 * pp->timerscap : 64;
		struct timerwhen *n = realloc(pp->timers, ncap * sizeof(*n));

		if (!n)
			throw("addtimer: out of memory");
		pp->timers = n;
		pp->timerscap = ncap;
	}
	pp->timers[pp->ntimers] = (struct timerwhen){ t->when, t };
	t->idx = pp->ntimers++;
	__atomic_store_n(&t->pp, pp, __ATOMIC_RELEASE);
	siftup(pp, t->idx);
	update_timer0(pp);
}

/* pp->timerslock held. */
static void dodeltimer(struct p *pp, int32_t i)
{
	struct timer *t = pp->timers[i].t;
	int32_t last = --pp->ntimers;

	__atomic_store_n(&t->pp, NULL, __ATOMIC_RELEASE);
	if (i != last) {
		heap_set(pp, i, pp->timers[last]);
		siftdown(pp, i);
		siftup(pp, i);	/* no-op if siftdown moved a child up */
	}
	update_timer0(pp);
}

void addtimer(struct timer *t)
{
	struct m *mp = getm();
	struct p *pp;
	int64_t when;
	bool first;

	if (!mp || !mp->p)
		throw("addtimer: no P");
	if (__atomic_load_n(&t->pp, __ATOMIC_ACQUIRE))
		throw("addtimer: timer already queued");
	if (t->when < 0)
		t->when = INT64_MAX;
	pp = mp->p;
	lock(&pp->timerslock);
	doaddtimer(pp, t);
	/* Read under the lock: once it is dropped the timer may fire on
	 * another M, and a periodic one moves its when. */
	first = t->idx == 0;
	when = t->when;
	unlock(&pp->timerslock);
	if (first)
		wakenetpoller(when);
}

bool deltimer(struct timer *t)
{
	for (;;) {
		struct p *pp = __atomic_load_n(&t->pp, __ATOMIC_ACQUIRE);

		if (!pp)
			return false;
		lock(&pp->timerslock);
		if (t->pp == pp) {
			dodeltimer(pp, t->idx);
			unlock(&pp->timerslock);
			return true;
		}
		unlock(&pp->timerslock);
	}
}

bool deltimer_sync(struct timer *t)
{
	bool pending = deltimer(t);

	while (__atomic_load_n(&t->running, __ATOMIC_ACQUIRE))
		sched_yield();
	return pending;
}

bool modtimer(struct timer *t, int64_t when, int64_t period,
	      void (*f)(void *arg, uintptr_t seq, int64_t delta),
	      void *arg, uintptr_t seq)
{
	bool pending = deltimer(t);

	t->when = when;
	t->period = period;
	t->f = f;
	t->arg = arg;
	t->seq = seq;
	addtimer(t);
	return pending;
}

bool resettimer(struct timer *t, int64_t when)
{
	return modtimer(t, when, t->period, t->f, t->arg, t->seq);
}

/*
 * Run pp's timers due at now; returns now (read if 0).  *polluntil
 * (when non-NULL) is lowered to pp's next timer; *ran says a timer ran.
 */
int64_t checktimers(struct p *pp, int64_t now, int64_t *polluntil, bool *ran)
{
	int64_t next = nobarrier_timer0(pp);

	if (ran)
		*ran = false;
	if (!next)
		return now;
	if (!now)
		now = nanotime();
	if (now >= next) {
		lock(&pp->timerslock);
		while (pp->ntimers && pp->timers[0].when <= now) {
			struct timer *t = pp->timers[0].t;
			void (*f)(void *, uintptr_t, int64_t) = t->f;
			void *arg = t->arg;
			uintptr_t seq = t->seq;
			int64_t delta = now - t->when;

			/* Before t->pp is cleared: deltimer_sync() that
			 * finds the timer gone waits for the call. */
			__atomic_add_fetch(&t->running, 1, __ATOMIC_RELAXED);
			if (t->period > 0) {
				t->when += t->period *
					   (1 + delta / t->period);
				pp->timers[0].when = t->when;
				siftdown(pp, 0);
				update_timer0(pp);
			} else {
				dodeltimer(pp, 0);
			}
			unlock(&pp->timerslock);
			f(arg, seq, delta);
			__atomic_sub_fetch(&t->running, 1, __ATOMIC_RELEASE);
			if (ran)
				*ran = true;
			lock(&pp->timerslock);
		}
		unlock(&pp->timerslock);
		next = nobarrier_timer0(pp);
	}
	if (polluntil && next && (!*polluntil || next < *polluntil))
		*polluntil = next;
	return now;
}

/* Move every timer of from to to (world stopped). */
void movetimers(struct p *to, struct p *from)
{
	struct p *first = to->id < from->id ? to : from;
	struct p *second = first == to ? from : to;

	lock(&first->timerslock);
	lock(&second->timerslock);
	while (from->ntimers) {
		struct timer *t = from->timers[from->ntimers - 1].t;

		dodeltimer(from, from->ntimers - 1);
		doaddtimer(to, t);
	}
	unlock(&second->timerslock);
	unlock(&first->timerslock);
}

bool timers_pending(void)
{
	int32_t procs = __atomic_load_n(&gomaxprocs, __ATOMIC_ACQUIRE);

	for (int32_t i = 0; i < procs; i++)
		if (nobarrier_timer0(allp[i]))
			return true;
	return false;
}

static void goroutineready(void *arg, uintptr_t seq, int64_t delta)
{
	(void)seq;
	(void)delta;
	goready(arg);
}

/* unlockf of goro_sleep: queue the timer once the goroutine is parked,
 * so that it cannot fire on a goroutine still running. */
static bool resetforsleep(struct g *gp, void *arg)
{
	(void)gp;
	addtimer(arg);
	return true;
}

GORO_API void goro_sleep(int64_t ns)
{
	struct g *gp = getg();
	struct timer *t;

	if (ns <= 0)
		return;
	if (!gp || (gp->flags & G_FLAG_G0)) {
		struct timespec ts = { ns / 1000000000, ns % 1000000000 };

		while (nanosleep(&ts, &ts))
			;
		return;
	}
	t = &gp->sleeptimer;
	t->when = nanotime() + ns;
	if (t->when < 0)
		t->when = INT64_MAX;
	t->period = 0;
	t->f = goroutineready;
	t->arg = gp;
	t->seq = 0;
	gopark(resetforsleep, t, WAIT_SLEEP);
}

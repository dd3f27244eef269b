// SPDX-License-Identifier: MIT
/*
 * mgcsweep.c - the lazy, concurrent sweep (Go's mgcsweep.go, in C).
 *
 * A collection's pause ends with every in-use span holding the marks of
 * the cycle in its markbits, on its central's (or the large list's)
 * lists; it does not sweep them.  It adds 2 to mheap.sweepgen, which
 * turns the "swept" lists into the "unswept" ones (malloc.h), and starts
 * the world.  A span is then swept, exactly once, by whoever takes it
 * off an unswept list first:
 *
 *  1. an allocation that needs a span of its class (sweep_cachespan,
 *     from mcentral_cachespan): it sweeps the class's unswept spans
 *     until one has a free object (an empty one is used as it is), and
 *     puts the full ones on the swept full list, at most SWEEP_BUDGET
 *     spans per refill (Go's spanBudget), then falls back to a new span;
 *  2. the page heap, before it grows (sweep_reclaim, from mheap_alloc):
 *     swept garbage may give back the pages it needs (Go's reclaim);
 *  3. the background sweeper, a thread of SCHED_IDLE priority (Go's
 *     bgsweep goroutine, which yields whenever other work waits): it
 *     uses idle CPU time only, class after class, then the large list;
 *  4. the next cycle, before it marks (sweep_finish): a mark must see
 *     allocbits that are the last cycle's marks, so everything left is
 *     swept then, by the collecting goroutine, with the world running.
 *
 * Sweeping a small span makes its markbits its allocbits (a swap of the
 * two bitmaps' roles), clears the new markbits, resets freeindex, and
 * poisons the freed objects in the ASan build; an empty span goes back
 * to the page heap (unless an allocation wants it); an unmarked large
 * object goes back at once.
 *
 * Ownership, not atomics, keeps sweepers apart: a span is taken off an
 * unswept list under its list's lock and is then the sweeper's alone
 * until it puts it on a swept list (or frees it), as a cached span is
 * its mcache's.  `sweepers` counts the spans being swept, incremented
 * under the same lock, so that sweep_finish, which empties the lists
 * and then waits for the count to drop to 0, cannot miss one.  The
 * lists of a cycle only empty: nothing goes on an unswept list until the
 * next pause, so once the cursor has passed a class it never goes back.
 *
 * Accounting: heap_live was set by the pause to the bytes marked (Go's
 * heapLive = heapMarked at mark termination); a span swept for a cache
 * then adds its free bytes like any cached span.  The objects freed are
 * counted as they are swept.
 *
 * Alternatives rejected: an eager sweep in the pause (what this
 * replaced: about 1 ns per object slot of the heap with the world
 * stopped, 1 ms for a 1 GiB heap of 64-byte objects and more); sweeping
 * in the pause only the spans the caches held, as Go 1.3 did (still
 * O(heap) in the pause for the rest).
 */
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "malloc.h"

#define SWEEP_BUDGET	100	/* unswept spans one refill looks at */
#define RECLAIM_BUDGET	256	/* spans swept before the heap grows */

uint64_t sweep_nfreed, sweep_freed;
static uint32_t sweepers;	/* spans being swept (atomic) */
static uint32_t sweepcursor;	/* next class to sweep, then the large
				 * list (== NUM_SPAN_CLASSES) (atomic) */
static uint32_t sweepdone = 1;	/* no unswept span left on a list */

static pthread_mutex_t bgmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bgcv = PTHREAD_COND_INITIALIZER;
static uint64_t bggen;		/* bumped by each sweep_start */

bool sweep_done(void)
{
	return __atomic_load_n(&sweepdone, __ATOMIC_ACQUIRE);
}

static void poison_freed(struct mspan *s)
{
#if defined(__SANITIZE_ADDRESS__)
	uint64_t *mb = span_markbits(s);
	const uint64_t *ab = span_allocbits(s);

	for (uint32_t i = 0; i < s->nelems; i++)
		if ((i < s->freeindex || bit_get(ab, i)) && !bit_get(mb, i))
			malloc_poison((void *)(s->base + (uintptr_t)i *
					       s->elemsize), s->elemsize);
#else
	(void)s;
#endif
}

/* Sweep one small span the caller owns; true if it is now empty. */
static bool sweepspan(struct mspan *s)
{
	uint64_t *mb = span_markbits(s);
	uint32_t marked = 0, freed;

	if (debug.invariants && !span_is_valid(s))
		throw("sweep: span is not valid");
	/* the pause's walk skips granules without such spans (mheap.c) */
	if (debug.invariants && !spanclass_noscan(s->spanclass) &&
	    !heap_pages_any(s->base, s->base + (s->npages << PAGE_SHIFT),
			    RUNS_SCAN))
		throw("sweep: scan span in a granule the collector skips");
	for (int i = 0; i < BITMAP_WORDS; i++)
		marked += (uint32_t)__builtin_popcountll(mb[i]);
	if (marked > s->nalloc)
		throw("sweep: more objects marked than allocated");
	freed = s->nalloc - marked;
	if (freed) {
		poison_freed(s);
		s->needzero = true;
		__atomic_add_fetch(&sweep_nfreed, freed, __ATOMIC_RELAXED);
		__atomic_add_fetch(&sweep_freed, (uint64_t)freed * s->elemsize,
				   __ATOMIC_RELAXED);
	}
	s->ab ^= 1;
	memset(span_markbits(s), 0, sizeof(s->bits[0]));
	s->freeindex = 0;
	s->nalloc = marked;
	__atomic_store_n(&s->sweepgen,
			 __atomic_load_n(&mheap_->sweepgen, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	return marked == 0;
}

/* Take an unswept span of c (partial first), counted in sweepers. */
static struct mspan *take_unswept(struct mcentral *c)
{
	struct spanlist *l;
	struct mspan *s;
	unsigned int un;

	lock(&c->lock);
	un = sweep_swept_idx() ^ 1;
	l = &c->partial[un];
	if (!l->first)
		l = &c->full[un];
	s = l->first;
	if (s) {
		spanlist_del(l, s);
		__atomic_add_fetch(&sweepers, 1, __ATOMIC_RELAXED);
	}
	unlock(&c->lock);
	return s;
}

static void put_swept(struct mcentral *c, struct mspan *s)
{
	unsigned int sw;

	lock(&c->lock);
	sw = sweep_swept_idx();
	spanlist_push(s->nalloc < s->nelems ? &c->partial[sw] : &c->full[sw],
		      s);
	unlock(&c->lock);
}

static void sweeper_done(void)
{
	__atomic_sub_fetch(&sweepers, 1, __ATOMIC_RELEASE);
}

/* A span of class sc with a free object, swept now; NULL if the budget
 * ran out or none is left unswept. */
struct mspan *sweep_cachespan(uint8_t sc)
{
	struct mcentral *c = &mheap_->central[sc];

	if (sweep_done())
		return NULL;
	for (int n = 0; n < SWEEP_BUDGET; n++) {
		struct mspan *s = take_unswept(c);

		if (!s)
			break;
		sweepspan(s);
		if (s->nalloc < s->nelems) {
			/* ours now, empty or not: the caller caches it */
			sweeper_done();
			return s;
		}
		put_swept(c, s);
		sweeper_done();
	}
	return NULL;
}

/* The large list: sweep its first unswept object.  Pages freed, 0 if
 * it stayed, -1 if none is left. */
static long sweep_large_one(void)
{
	struct spanlist *from, *to;
	struct mspan *s;
	long freed = 0;

	lock(&mheap_->lock);
	from = &mheap_->large[sweep_swept_idx() ^ 1];
	to = &mheap_->large[sweep_swept_idx()];
	s = from->first;
	if (!s) {
		unlock(&mheap_->lock);
		return -1;
	}
	spanlist_del(from, s);
	if (bit_get(span_markbits(s), 0)) {
		span_markbits(s)[0] = 0;
		__atomic_store_n(&s->sweepgen, mheap_->sweepgen,
				 __ATOMIC_RELAXED);
		spanlist_push(to, s);
	} else {
		freed = (long)s->npages;
		__atomic_add_fetch(&sweep_nfreed, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&sweep_freed, s->npages << PAGE_SHIFT,
				   __ATOMIC_RELAXED);
		mheap_free_locked(s);
	}
	unlock(&mheap_->lock);
	return freed;
}

/* Sweep one span of any class: pages it gave back to the heap (0 if it
 * stayed), -1 once nothing is left to sweep (sweepers may still be at
 * work on the spans they took). */
static long sweepone(void)
{
	uint32_t i;
	long freed;

	/* acquire: pairs with sweep_start's release, so that a sweeper
	 * still in its loop from the last cycle sees this cycle's
	 * markbits (TSan found the missing edge: gc_stress) */
	while ((i = __atomic_load_n(&sweepcursor, __ATOMIC_ACQUIRE)) <
	       NUM_SPAN_CLASSES) {
		struct mcentral *c = &mheap_->central[i];
		struct mspan *s = take_unswept(c);

		if (!s) {
			__atomic_compare_exchange_n(&sweepcursor, &i, i + 1,
						    false, __ATOMIC_ACQ_REL,
						    __ATOMIC_ACQUIRE);
			continue;
		}
		freed = 0;
		if (sweepspan(s)) {
			freed = (long)s->npages;
			mheap_free(s);
		} else {
			put_swept(c, s);
		}
		sweeper_done();
		return freed;
	}
	freed = sweep_large_one();
	if (freed < 0)
		__atomic_store_n(&sweepdone, 1, __ATOMIC_RELEASE);
	return freed;
}

/* Before the heap grows by npages: sweep until about that much came
 * back, within a budget (the background sweeper does the rest). */
void sweep_reclaim(uintptr_t npages)
{
	uintptr_t got = 0;

	for (int n = 0; n < RECLAIM_BUDGET && got < npages; n++) {
		long f = sweepone();

		if (f < 0)
			break;
		got += (uintptr_t)f;
	}
}

/* Sweep everything that is left and wait for the sweepers in flight:
 * from here until the next pause every span is swept. */
void sweep_finish(void)
{
	while (sweepone() >= 0)
		;
	while (__atomic_load_n(&sweepers, __ATOMIC_ACQUIRE))
		sched_yield();
}

/* The pause, world stopped, every cache flushed: turn the swept lists
 * into the unswept ones and wake the background sweeper. */
void sweep_start(void)
{
	if (!sweep_done() || __atomic_load_n(&sweepers, __ATOMIC_RELAXED))
		throw("sweep_start: the last cycle's sweep is not finished");
	/* release: publishes the mark's bits to every sweeper, to those
	 * that go by the lists' parity (take_unswept) as to those that go
	 * by the cursor */
	__atomic_store_n(&mheap_->sweepgen, mheap_->sweepgen + 2,
			 __ATOMIC_RELEASE);
	__atomic_store_n(&sweepcursor, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&sweepdone, 0, __ATOMIC_RELEASE);
	/* no lock in the pause: a sweeper thread that holds bgmu is not
	 * stopped; a missed wake-up costs only idle-time sweeping, and
	 * the next sweep_start or the allocations sweep instead */
	if (pthread_mutex_trylock(&bgmu) == 0) {
		bggen++;
		pthread_cond_signal(&bgcv);
		pthread_mutex_unlock(&bgmu);
	}
}

static void *bgsweep(void *arg)
{
	struct sched_param sp = { 0 };
	uint64_t seen = 0;

	(void)arg;
	/* idle CPU time only, as Go's bgsweep yields to any other work */
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	for (;;) {
		pthread_mutex_lock(&bgmu);
		while (bggen == seen)
			pthread_cond_wait(&bgcv, &bgmu);
		seen = bggen;
		pthread_mutex_unlock(&bgmu);
		while (sweepone() >= 0)
			;
	}
	return NULL;
}

void sweep_init(void)
{
	pthread_t th;

	if (pthread_create(&th, NULL, bgsweep, NULL) == 0)
		pthread_detach(th);
}

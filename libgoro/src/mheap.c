// SPDX-License-Identifier: MIT
/*
 * mheap.c - the page heap (Go's mheap.go and mgcscavenge.go, in C).
 *
 * Model.  Memory comes from the OS in 64 MiB arenas, aligned to their
 * size so that an address finds its arena with a shift (arena_l1, a
 * lazily committed 16 MiB table covering the 47-bit user half), and its
 * span with one more load (heaparena.spans, a page -> span map).  That
 * lookup is what conservative scanning needs: any word that points
 * inside an in-use span, interior or not, finds its object in O(1).
 *
 * Pages are handed out as spans.  Free spans sit on exact-size lists
 * (1..127 pages) or on one list of larger spans searched best-fit, as
 * Go's mheap did before its radix tree: a C heap has far fewer spans
 * than a Go one, and the lists need no allocation of their own.  A free
 * span coalesces with free neighbours at once, so the lists hold maximal
 * runs.  The heap grows by carving the current arena's unused tail;
 * objects larger than what is left get an arena (or several contiguous
 * ones) of their own and the tail goes on the free lists.
 *
 * Scavenger.  A free span remembers when it went free and how many of
 * its pages were given back (MADV_DONTNEED: the pages read as zero
 * afterwards and cost no RSS).  A background thread wakes every second
 * and releases the spans free for more than SCAV_IDLE_NS; the collector
 * asks for more at once when the heap is over GOMEMLIMIT.  madvise runs
 * with the lock dropped: the scavenger first takes the spans off the
 * lists (SPAN_SCAV, invisible to allocation and coalescing), then puts
 * them back.
 *
 * Invariants (mheap_is_valid checks them under GORODEBUG=invariants=1):
 * a free span is on the list of its size, its ends map to it, and its
 * neighbours are not free (it would have been coalesced with them);
 * released pages never exceed a span's pages; in-use + free + what the
 * scavenger holds + the arena's uncarved tail == mheap.sys.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "malloc.h"

#define SCAV_IDLE_NS	(2 * 1000000000LL)	/* free this long: released */
#define SCAV_BATCH	16
#define SPANPOOL_CHUNK	(1UL << 20)

struct mheap *mheap_;
struct heaparena **arena_l1;
static struct rtlock initlock;
static pthread_t scavthread;

/* ---------------------------------------------------------------------
 * Metadata
 * ------------------------------------------------------------------- */

static void *sysmap(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* mheap.lock held. */
static struct mspan *span_new(void)
{
	struct mspan *s = mheap_->spanpool;

	if (!s) {
		char *chunk = sysmap(SPANPOOL_CHUNK);
		size_t n = SPANPOOL_CHUNK / sizeof(*s);

		if (!chunk)
			throw("out of memory (span structs)");
		for (size_t i = 0; i < n; i++) {
			s = (struct mspan *)chunk + i;
			s->next = mheap_->spanpool;
			mheap_->spanpool = s;
		}
		s = mheap_->spanpool;
	}
	mheap_->spanpool = s->next;
	memset(s, 0, sizeof(*s));
	return s;
}

static void span_dispose(struct mspan *s)
{
	__atomic_store_n(&s->state, SPAN_DEAD, __ATOMIC_RELAXED);
	s->next = mheap_->spanpool;
	mheap_->spanpool = s;
}

static struct mspan **spanmap_slot(uintptr_t p)
{
	struct heaparena *ha = arena_l1[p >> ARENA_SHIFT];

	return ha ? &ha->spans[(p & (ARENA_BYTES - 1)) >> PAGE_SHIFT] : NULL;
}

static void spanmap_set(uintptr_t base, uintptr_t npages, struct mspan *s)
{
	for (uintptr_t i = 0; i < npages; i++)
		__atomic_store_n(spanmap_slot(base + (i << PAGE_SHIFT)), s,
				 __ATOMIC_RELAXED);
}

/* Only the ends of a free span are looked up (coalescing). */
static void spanmap_set_ends(struct mspan *s)
{
	__atomic_store_n(spanmap_slot(s->base), s, __ATOMIC_RELAXED);
	__atomic_store_n(spanmap_slot(s->base + ((s->npages - 1) << PAGE_SHIFT)),
			 s, __ATOMIC_RELAXED);
}

static struct mspan *free_span_at(uintptr_t p)
{
	struct mspan **slot;
	struct mspan *s;

	if (p >> 47 || !arena_l1[p >> ARENA_SHIFT])
		return NULL;
	slot = spanmap_slot(p);
	s = *slot;
	if (!s || s->state != SPAN_FREE)
		return NULL;
	if (p != s->base && p != s->base + ((s->npages - 1) << PAGE_SHIFT))
		return NULL;
	return s;
}

static struct spanlist *freelist_for(uintptr_t npages)
{
	return npages < HEAP_FREE_LISTS ? &mheap_->free[npages]
					: &mheap_->freelarge;
}

/* ---------------------------------------------------------------------
 * Growing
 * ------------------------------------------------------------------- */

/* Map n bytes (a multiple of ARENA_BYTES) aligned to ARENA_BYTES and
 * give each arena its page map.  mheap.lock held. */
static uintptr_t arena_map(size_t n)
{
	uintptr_t p, base;
	char *raw = mmap(NULL, n + ARENA_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (raw == MAP_FAILED)
		return 0;
	p = (uintptr_t)raw;
	base = (p + ARENA_BYTES - 1) & ~(ARENA_BYTES - 1);
	if (base > p)
		munmap(raw, base - p);
	if (base + n < p + n + ARENA_BYTES)
		munmap((void *)(base + n), p + n + ARENA_BYTES - base - n);
	if ((base + n) >> 47) {
		munmap((void *)base, n);
		return 0;
	}
	for (uintptr_t a = base; a < base + n; a += ARENA_BYTES) {
		struct heaparena *ha = sysmap(sizeof(*ha));

		if (!ha)
			throw("out of memory (arena metadata)");
		__atomic_store_n(&arena_l1[a >> ARENA_SHIFT], ha,
				 __ATOMIC_RELEASE);
	}
	gc_arena_mapped(base, n);	/* dirty-page tracking (mgc.c) */
	mheap_->sys += n;
	mheap_->released += n;		/* untouched: costs no memory yet */
	if (!mheap_->arena_hi || base < mheap_->arena_lo)
		mheap_->arena_lo = base;
	if (base + n > mheap_->arena_hi)
		mheap_->arena_hi = base + n;
	return base;
}

/* A free span of npages pages, not on any list.  mheap.lock held. */
static struct mspan *heap_grow(uintptr_t npages)
{
	size_t bytes = npages << PAGE_SHIFT;
	struct mspan *s;
	uintptr_t base;

	if (mheap_->curarena_end - mheap_->curarena < bytes) {
		size_t n = (bytes + ARENA_BYTES - 1) & ~(ARENA_BYTES - 1);
		uintptr_t a = arena_map(n);

		if (!a)
			return NULL;
		if (mheap_->curarena_end > mheap_->curarena) {
			/* the old tail becomes an ordinary free span */
			s = span_new();
			s->base = mheap_->curarena;
			s->npages = (mheap_->curarena_end - mheap_->curarena)
				    >> PAGE_SHIFT;
			__atomic_store_n(&s->state, SPAN_INUSE, __ATOMIC_RELAXED);
			mheap_->inuse += s->npages << PAGE_SHIFT;
			spanmap_set_ends(s);
			mheap_free_locked(s);
			/* never touched: it is still counted as released */
			s->nreleased += (mheap_->curarena_end -
					 mheap_->curarena) >> PAGE_SHIFT;
		}
		mheap_->curarena = a;
		mheap_->curarena_end = a + n;
	}
	base = mheap_->curarena;
	mheap_->curarena += bytes;
	mheap_->released -= bytes;	/* counted released until carved */
	s = span_new();
	s->base = base;
	s->npages = npages;
	s->needzero = false;	/* fresh from mmap */
	return s;
}

/* ---------------------------------------------------------------------
 * Allocation and freeing
 * ------------------------------------------------------------------- */

static struct mspan *freelist_find(uintptr_t npages)
{
	struct mspan *best = NULL;

	for (uintptr_t n = npages; n < HEAP_FREE_LISTS; n++)
		if (mheap_->free[n].first)
			return mheap_->free[n].first;
	for (struct mspan *s = mheap_->freelarge.first; s; s = s->next)
		if (s->npages >= npages && (!best || s->npages < best->npages))
			best = s;
	return best;
}

/* The part of [lo, hi) (heap addresses) in lo's arena: that arena (NULL
 * if none is mapped there; atomic, for the collector's walks without a
 * lock), its base, and the part's pages [i, n) and end. */
struct arena_piece {
	struct heaparena *ha;
	uintptr_t base, end, i, n;
};

static struct arena_piece arena_piece(uintptr_t lo, uintptr_t hi)
{
	struct arena_piece a;

	a.base = lo & ~(ARENA_BYTES - 1);
	a.end = hi - a.base > ARENA_BYTES ? a.base + ARENA_BYTES : hi;
	a.i = (lo - a.base) >> PAGE_SHIFT;
	a.n = (a.end - a.base + PAGE_SIZE_GC - 1) >> PAGE_SHIFT;
	a.ha = __atomic_load_n(&arena_l1[lo >> ARENA_SHIFT], __ATOMIC_ACQUIRE);
	return a;
}

static uint64_t *heap_bitmap(struct heaparena *ha, enum heap_runs which)
{
	switch (which) {
	case RUNS_KEPT:
		return ha->wpkept;
	case RUNS_WRITTEN:
		return ha->wpwritten;
	default:
		return ha->scanbits;
	}
}

/* Set or clear the bits of [lo, hi)'s pages (mapped arenas) in the
 * bitmap which names (not RUNS_SCAN_UNKEPT), a word at a time. */
void heap_pagebits(uintptr_t lo, uintptr_t hi, enum heap_runs which,
		   bool set)
{
	while (lo < hi) {
		struct arena_piece a = arena_piece(lo, hi);
		uint64_t *bm = a.ha ? heap_bitmap(a.ha, which) : NULL;

		for (uintptr_t i = a.i; bm && i < a.n;) {
			uintptr_t k = 64 - i % 64 < a.n - i ? 64 - i % 64
							    : a.n - i;
			uint64_t mask = (k == 64 ? ~0ULL : (1ULL << k) - 1)
					<< (i % 64);

			if (set)
				__atomic_or_fetch(&bm[i / 64], mask,
						  __ATOMIC_RELAXED);
			else
				__atomic_and_fetch(&bm[i / 64], ~mask,
						   __ATOMIC_RELAXED);
			i += k;
		}
		lo = a.end;
	}
}

/* Set (in use) or clear (freed) the scanbits of s's pages; a freed page
 * is no longer "written while kept" either.  mheap.lock held. */
static void span_account_scan(struct mspan *s, bool inuse)
{
	uintptr_t end = s->base + (s->npages << PAGE_SHIFT);

	if (inuse == s->scanacct || (inuse && spanclass_noscan(s->spanclass)))
		return;
	s->scanacct = inuse;
	heap_pagebits(s->base, end, RUNS_SCAN, inuse);
	if (!inuse)
		heap_pagebits(s->base, end, RUNS_WRITTEN, false);
}

static uint64_t runs_word(struct heaparena *ha, uintptr_t w,
			  enum heap_runs which)
{
	if (which == RUNS_SCAN_UNKEPT)
		return runs_word(ha, w, RUNS_SCAN) &
		       ~runs_word(ha, w, RUNS_KEPT);
	return __atomic_load_n(&heap_bitmap(ha, which)[w], __ATOMIC_RELAXED);
}

/* The first page in [i, n) that which reports (or does not), or n. */
static uintptr_t runs_next(struct heaparena *ha, uintptr_t i,
			   uintptr_t n, enum heap_runs which, bool set)
{
	while (i < n) {
		uint64_t x = runs_word(ha, i / 64, which);

		x = (set ? x : ~x) & (~0ULL << (i % 64));
		if (x) {
			i = (i & ~63UL) + (uintptr_t)__builtin_ctzll(x);
			return i < n ? i : n;
		}
		i = (i | 63) + 1;
	}
	return n;
}

/*
 * Call fn on each run of [lo, hi) (heap arenas) of the pages which
 * names, clipped to [lo, hi); runs less than gap bytes apart are one.
 * No lock: in-use spans are exact with the world stopped, a hint
 * otherwise, as heap_pages_any (mgc.c protects, rescans and unprotects
 * only those: free pages and pointer-free spans hold nothing the
 * collector reads).
 */
void heap_runs(uintptr_t lo, uintptr_t hi, enum heap_runs which,
	       uintptr_t gap, void (*fn)(uintptr_t lo, uintptr_t hi))
{
	uintptr_t rlo = 0, rhi = 0;	/* the run being gathered */

	while (lo < hi) {
		struct arena_piece p = arena_piece(lo, hi);

		while (p.ha && p.i < p.n) {
			uintptr_t j, a, b;

			p.i = runs_next(p.ha, p.i, p.n, which, true);
			if (p.i == p.n)
				break;
			j = runs_next(p.ha, p.i, p.n, which, false);
			a = p.base + (p.i << PAGE_SHIFT);
			b = p.base + (j << PAGE_SHIFT);
			a = a > lo ? a : lo;
			b = b < p.end ? b : p.end;
			if (rhi && a - rhi <= gap) {
				rhi = b;
			} else {
				if (rhi)
					fn(rlo, rhi);
				rlo = a;
				rhi = b;
			}
			p.i = j;
		}
		lo = p.end;
	}
	if (rhi)
		fn(rlo, rhi);
}

/* Whether a page of [lo, hi) (heap arenas) is one which names; no lock,
 * for the collector (mgc.c): exact with the world stopped, a hint
 * otherwise. */
bool heap_pages_any(uintptr_t lo, uintptr_t hi, enum heap_runs which)
{
	while (lo < hi) {
		struct arena_piece p = arena_piece(lo, hi);

		if (p.ha && runs_next(p.ha, p.i, p.n, which, true) < p.n)
			return true;
		lo = p.end;
	}
	return false;
}

/*
 * An in-use span of npages for spanclass (large: a single object).
 * Its memory is zero unless s->needzero.  NULL when out of memory.
 */
struct mspan *mheap_alloc(uintptr_t npages, uint8_t spanclass, bool large)
{
	struct mspan *s, *rest;

	lock(&mheap_->lock);
	s = freelist_find(npages);
	if (!s && !sweep_done()) {
		/* garbage not swept yet may free what is needed: sweep some
		 * before the heap grows (Go's mheap.reclaim); lock order puts
		 * the centrals' locks before ours */
		unlock(&mheap_->lock);
		sweep_reclaim(npages);
		lock(&mheap_->lock);
		s = freelist_find(npages);
	}
	if (s) {
		spanlist_del(freelist_for(s->npages), s);
	} else {
		s = heap_grow(npages);
		if (!s) {
			unlock(&mheap_->lock);
			return NULL;
		}
	}
	if (s->npages > npages) {
		rest = span_new();
		rest->base = s->base + (npages << PAGE_SHIFT);
		rest->npages = s->npages - npages;
		rest->needzero = s->needzero;
		rest->freed_at = s->freed_at;
		/* released pages: assume they sit in the remainder first */
		rest->nreleased = s->nreleased < rest->npages ? s->nreleased
							      : rest->npages;
		s->nreleased -= rest->nreleased;
		s->npages = npages;
		__atomic_store_n(&rest->state, SPAN_FREE, __ATOMIC_RELAXED);
		spanmap_set_ends(rest);
		spanlist_push(freelist_for(rest->npages), rest);
	}
	mheap_->released -= (uint64_t)s->nreleased << PAGE_SHIFT;
	s->nreleased = 0;
	mheap_->inuse += npages << PAGE_SHIFT;
	s->spanclass = spanclass;
	s->freeindex = 0;
	s->nalloc = 0;
	s->incache = false;
	s->ab = 0;
	memset(s->bits, 0, sizeof(s->bits));
	__atomic_store_n(&s->sweepgen, mheap_->sweepgen, __ATOMIC_RELAXED);
	if (large) {
		s->elemsize = (uint32_t)((npages << PAGE_SHIFT) > UINT32_MAX ?
					 UINT32_MAX : npages << PAGE_SHIFT);
		s->nelems = 1;
		s->divmul = 0;
		s->freeindex = 1;	/* the object is allocated */
		s->nalloc = 1;
		spanlist_push(&mheap_->large[sweep_swept_idx()], s);
	} else {
		s->elemsize = class_to_size[spanclass_sizeclass(spanclass)];
		s->nelems = (uint32_t)((npages << PAGE_SHIFT) / s->elemsize);
		s->divmul = (uint32_t)(UINT32_MAX / s->elemsize + 1);
	}
	spanmap_set(s->base, npages, s);
	span_account_scan(s, true);
	__atomic_store_n(&s->state, SPAN_INUSE, __ATOMIC_RELEASE);
	unlock(&mheap_->lock);
	malloc_unpoison((void *)s->base, npages << PAGE_SHIFT);
	return s;
}

/* Give an in-use span's pages back to the heap.  mheap.lock held. */
void mheap_free_locked(struct mspan *s)
{
	struct mspan *prev, *next;

	if (s->state == SPAN_INUSE) {
		span_account_scan(s, false);
		mheap_->inuse -= s->npages << PAGE_SHIFT;
		s->freed_at = nanotime();
		s->needzero = true;
		malloc_poison((void *)s->base, s->npages << PAGE_SHIFT);
	}
	prev = s->base ? free_span_at(s->base - PAGE_SIZE_GC) : NULL;
	if (prev) {
		spanlist_del(freelist_for(prev->npages), prev);
		s->base = prev->base;
		s->npages += prev->npages;
		s->nreleased += prev->nreleased;
		s->needzero |= prev->needzero;
		if (prev->freed_at > s->freed_at)
			s->freed_at = prev->freed_at;
		span_dispose(prev);
	}
	next = free_span_at(s->base + (s->npages << PAGE_SHIFT));
	if (next) {
		spanlist_del(freelist_for(next->npages), next);
		s->npages += next->npages;
		s->nreleased += next->nreleased;
		s->needzero |= next->needzero;
		if (next->freed_at > s->freed_at)
			s->freed_at = next->freed_at;
		span_dispose(next);
	}
	__atomic_store_n(&s->state, SPAN_FREE, __ATOMIC_RELEASE);
	s->incache = false;
	spanmap_set_ends(s);
	spanlist_push(freelist_for(s->npages), s);
}

void mheap_free(struct mspan *s)
{
	lock(&mheap_->lock);
	mheap_free_locked(s);
	unlock(&mheap_->lock);
}

/* The equations above; mheap.lock held. */
bool mheap_is_valid(void)
{
	uint64_t free = 0;

	for (int i = 0; i <= HEAP_FREE_LISTS; i++) {
		struct spanlist *l = i < HEAP_FREE_LISTS ? &mheap_->free[i]
							 : &mheap_->freelarge;

		for (struct mspan *s = l->first; s; s = s->next) {
			uintptr_t end = s->base + (s->npages << PAGE_SHIFT);

			if (s->state != SPAN_FREE || freelist_for(s->npages) != l ||
			    *spanmap_slot(s->base) != s ||
			    *spanmap_slot(end - PAGE_SIZE_GC) != s ||
			    s->nreleased > s->npages ||
			    free_span_at(s->base - PAGE_SIZE_GC) ||
			    free_span_at(end) ||
			    heap_pages_any(s->base, end, RUNS_SCAN))
				return false;
			free += s->npages << PAGE_SHIFT;
		}
	}
	return mheap_->inuse + free + mheap_->scavout +
	       (mheap_->curarena_end - mheap_->curarena) == mheap_->sys;
}

/* ---------------------------------------------------------------------
 * Scavenger
 * ------------------------------------------------------------------- */

/* Take up to SCAV_BATCH free spans with pages to release.  Locked. */
static int scav_collect(struct mspan **batch, bool all, int64_t now)
{
	int n = 0;

	for (int i = 0; i <= HEAP_FREE_LISTS && n < SCAV_BATCH; i++) {
		struct spanlist *l = i < HEAP_FREE_LISTS ? &mheap_->free[i]
							 : &mheap_->freelarge;
		struct mspan *s = l->first, *next;

		for (; s && n < SCAV_BATCH; s = next) {
			next = s->next;
			if (s->nreleased == s->npages)
				continue;
			if (!all && now - s->freed_at < SCAV_IDLE_NS)
				continue;
			spanlist_del(l, s);
			__atomic_store_n(&s->state, SPAN_SCAV, __ATOMIC_RELAXED);
			mheap_->scavout += s->npages << PAGE_SHIFT;
			batch[n++] = s;
		}
	}
	return n;
}

/*
 * Give free pages back to the OS: those idle for a while, or (all) every
 * free page, until about `want` bytes were released.
 */
void mheap_scavenge(uint64_t want, bool all)
{
	struct mspan *batch[SCAV_BATCH];
	uint64_t done = 0;
	int n;

	if (!mheap_)
		return;
	while (done < want) {
		lock(&mheap_->lock);
		n = scav_collect(batch, all, nanotime());
		unlock(&mheap_->lock);
		if (!n)
			break;
		for (int i = 0; i < n; i++) {
			struct mspan *s = batch[i];

			madvise((void *)s->base, s->npages << PAGE_SHIFT,
				MADV_DONTNEED);
			done += (s->npages - s->nreleased) << PAGE_SHIFT;
		}
		lock(&mheap_->lock);
		for (int i = 0; i < n; i++) {
			struct mspan *s = batch[i];

			mheap_->released += (s->npages - s->nreleased)
					    << PAGE_SHIFT;
			s->nreleased = s->npages;
			mheap_->scavout -= s->npages << PAGE_SHIFT;
			mheap_free_locked(s);
		}
		unlock(&mheap_->lock);
	}
}

/* Bytes of heap memory the OS backs: mapped minus released. */
uint64_t mheap_retained(void)
{
	uint64_t v;

	lock(&mheap_->lock);
	v = mheap_->sys - mheap_->released;
	unlock(&mheap_->lock);
	return v;
}

static void *bgscavenge(void *arg)
{
	struct timespec ts = { .tv_sec = 1 };

	(void)arg;
	for (;;) {
		nanosleep(&ts, NULL);
		mheap_scavenge(UINT64_MAX, false);
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * Start-up
 * ------------------------------------------------------------------- */

int mheap_init(void)
{
	struct mheap *h;
	struct heaparena **l1;

	if (__atomic_load_n(&mheap_, __ATOMIC_ACQUIRE))
		return 0;
	lock(&initlock);
	if (mheap_) {
		unlock(&initlock);
		return 0;
	}
	l1 = sysmap(sizeof(*l1) << ARENA_L1_BITS);
	h = sysmap(sizeof(*h));
	if (!l1 || !h)
		throw("out of memory (heap metadata)");
	for (int i = 0; i < NUM_SPAN_CLASSES; i++)
		h->central[i].spanclass = (uint8_t)i;
	arena_l1 = l1;
	__atomic_store_n(&mheap_, h, __ATOMIC_RELEASE);
	if (pthread_create(&scavthread, NULL, bgscavenge, NULL) == 0)
		pthread_detach(scavthread);
	unlock(&initlock);
	return 0;
}

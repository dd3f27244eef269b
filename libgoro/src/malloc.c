// SPDX-License-Identifier: MIT
/*
 * malloc.c - the GC heap's allocator (Go's malloc.go, mcache.go,
 * mcentral.go and sizeclasses.go, in C).
 *
 * Allocation paths, fastest first (Go's malloc.go, "Allocating small
 * objects"):
 *
 *  1. Tiny: pointer-free objects under 16 bytes are packed into the
 *     current 16-byte block of the P's mcache (aligned to their size's
 *     natural alignment).  The block is freed when none of them is
 *     reachable.  No lock, no atomic.
 *  2. Small (up to 32 KiB): the size rounds up to one of Go's 67 size
 *     classes; the P's mcache holds one span per class (and per
 *     scan/noscan, so that the collector never scans pointer-free
 *     objects), and the next free object is the next zero bit of the
 *     span's allocbits at or after freeindex.  No lock, no atomic: only
 *     the M holding the P touches its mcache, and libgoro's text is never
 *     preempted asynchronously (preempt.c), so a goroutine cannot lose
 *     its P in the middle.
 *  3. The mcache's span is full: it goes back to its class's mcentral
 *     (lock), and the mcache takes a swept span with free objects from
 *     the central, or sweeps unswept ones of its class until one has a
 *     free object (the sweep is lazy: mgcsweep.c), or takes a new one
 *     from the page heap (mheap.c).
 *  4. Large objects get a span of their own from the page heap.
 *
 * Threads without a P (g0 between goroutines has one; foreign threads
 * and a goroutine inside goro_syscall_enter/exit do not) share one
 * mcache under a lock, lockedcache.  The collector holds that lock for
 * its whole stop-the-world, which is what stops foreign threads'
 * allocations during a collection.  Their stacks are not scanned; a
 * ring of each foreign thread's last 16 objects (foreign_keep) covers
 * the moment between goro_alloc's return and the store into a root.
 *
 * Zeroing: memory fresh from mmap is zero; any span that was swept or
 * reused is needzero and its objects are cleared when handed out.
 * Everything goro_alloc returns is zeroed, noscan or not, as Go's.
 *
 * Accounting.  heap_live (Go's heapLive) counts whole spans once an
 * mcache takes them, minus what they still had free when given back,
 * plus large objects; the collector's pause resets it to the bytes
 * marked.  It is
 * what the pacer compares with its trigger, at span granularity, so that
 * the fast path never touches a shared counter.
 *
 * The refill path is also where the collector's work meets the
 * allocator (gc_maybe_start): a cycle starts there, an allocation during
 * a concurrent mark assists it there (mgc.c), and a goroutine asked to
 * yield (a stop-the-world waiting) does so there.  With GORODEBUG=
 * gcblack=1 an object allocated during a mark is marked before it is
 * returned (gc_markalloc: one load of a flag on the fast path, an atomic
 * OR only while a mark runs).
 * Exact counts (mallocs, bytes) are per mcache, summed by
 * goro_read_memstats.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"
#include "malloc.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

/* Go's size classes (sizeclasses.go): object size and span pages. */
const uint32_t class_to_size[NUM_SIZE_CLASSES] = {
	0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208,
	224, 240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704,
	768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072,
	3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472,
	9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480,
	21760, 24576, 27264, 28672, 32768,
};

const uint8_t class_to_npages[NUM_SIZE_CLASSES] = {
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3,
	2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10, 7, 4,
};

/* size_to_class8[(s + 7) / 8] for s <= 1024, size_to_class128[(s -
 * 1024 + 127) / 128] above; filled by malloc_init. */
static uint8_t size_to_class8[1024 / 8 + 1];
static uint8_t size_to_class128[(MAX_SMALL_SIZE - 1024) / 128 + 1];

static struct mcache *lockedcache;
static struct rtlock lockedcache_mu;
static uint64_t zerobase;	/* what goro_alloc(0) returns, as Go's */
static uint64_t largebytes, nlarge;	/* atomic */
static bool malloc_ready;

int size_to_class(size_t size)
{
	if (size <= 1024)
		return size_to_class8[(size + 7) >> 3];
	return size_to_class128[(size - 1024 + 127) >> 7];
}

void malloc_poison(void *p, size_t n)
{
#if defined(__SANITIZE_ADDRESS__)
	ASAN_POISON_MEMORY_REGION(p, n);
#else
	(void)p;
	(void)n;
#endif
}

void malloc_unpoison(void *p, size_t n)
{
#if defined(__SANITIZE_ADDRESS__)
	ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
	(void)p;
	(void)n;
#endif
}

static void malloc_init_slow(void)
{
	static struct rtlock mu;
	int c = 1;

	lock(&mu);
	if (malloc_ready)
		goto out;
	for (size_t s = 0; s <= 1024; s += 8) {
		while (class_to_size[c] < s)
			c++;
		size_to_class8[s >> 3] = (uint8_t)c;
	}
	for (size_t s = 1024; s <= MAX_SMALL_SIZE; s += 128) {
		while (class_to_size[c] < s)
			c++;
		size_to_class128[(s - 1024) >> 7] = (uint8_t)c;
	}
	mheap_init();
	lockedcache = calloc(1, sizeof(*lockedcache));
	if (!lockedcache)
		throw("out of memory (mcache)");
	gc_init_once();
	__atomic_store_n(&malloc_ready, true, __ATOMIC_RELEASE);
out:
	unlock(&mu);
}

void malloc_init_public(void)
{
	if (unlikely(!__atomic_load_n(&malloc_ready, __ATOMIC_ACQUIRE)))
		malloc_init_slow();
}

/* ---------------------------------------------------------------------
 * mcentral
 * ------------------------------------------------------------------- */



/*
 * A span of class sc with a free object, owned by the caller's cache:
 * a swept one from the central, else one swept now (mgcsweep.c: the
 * sweep is lazy, and an allocation that needs a span sweeps for it),
 * else a new one from the page heap.
 */
static struct mspan *mcentral_cachespan(uint8_t sc)
{
	struct mcentral *c = &mheap_->central[sc];
	struct spanlist *l;
	struct mspan *s;

	lock(&c->lock);
	l = &c->partial[sweep_swept_idx()];
	s = l->first;
	if (s)
		spanlist_del(l, s);
	unlock(&c->lock);
	if (!s)
		s = sweep_cachespan(sc);
	if (!s) {
		int cl = spanclass_sizeclass(sc);

		s = mheap_alloc(class_to_npages[cl], sc, false);
		if (!s)
			return NULL;
	}
	s->incache = true;
	__atomic_add_fetch(&heap_live, (uint64_t)(s->nelems - s->nalloc) *
			   s->elemsize, __ATOMIC_RELAXED);
	return s;
}

/* A span back from a cache is swept: it goes on the swept lists (the
 * collector's pause flushes every cache before it turns them into the
 * unswept ones). */
static void mcentral_uncachespan(struct mspan *s)
{
	struct mcentral *c = &mheap_->central[s->spanclass];
	unsigned int sw;

	__atomic_sub_fetch(&heap_live, (uint64_t)(s->nelems - s->nalloc) *
			   s->elemsize, __ATOMIC_RELAXED);
	lock(&c->lock);
	sw = sweep_swept_idx();
	s->incache = false;
	spanlist_push(s->nalloc < s->nelems ? &c->partial[sw] : &c->full[sw],
		      s);
	unlock(&c->lock);
}

/* Return every span of c to the centrals (the collector, world
 * stopped, or the owner). */
void mcache_flush(struct mcache *c)
{
	for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
		if (c->alloc[i]) {
			mcentral_uncachespan(c->alloc[i]);
			c->alloc[i] = NULL;
		}
	}
	c->tiny = 0;
	c->tinyoffset = 0;
}

/* ---------------------------------------------------------------------
 * mcache
 * ------------------------------------------------------------------- */

static inline void *span_nextfree(struct mspan *s)
{
	uint32_t i = s->freeindex;
	const uint64_t *ab = span_allocbits(s);

	while (i < s->nelems) {
		uint64_t w = ~ab[i >> 6] >> (i & 63);

		if (w) {
			i += (uint32_t)__builtin_ctzll(w);
			if (i >= s->nelems)
				break;
			s->freeindex = i + 1;
			s->nalloc++;
			return (void *)(s->base + (uintptr_t)i * s->elemsize);
		}
		i = (i | 63) + 1;
	}
	s->freeindex = s->nelems;
	return NULL;
}

/* Replace c's span of class sc with one that has a free object. */
static struct mspan *mcache_refill(struct mcache *c, uint8_t sc)
{
	struct mspan *s = c->alloc[sc];

	if (s)
		mcentral_uncachespan(s);
	s = mcentral_cachespan(sc);
	c->alloc[sc] = s;
	return s;
}

/*
 * Clear a small object (8 to 64 bytes, a multiple of 8) with at most
 * eight overlapping word stores.  A plain loop is turned by the
 * compiler into an inline "rep stos", whose start-up cost is most of
 * the allocation for a 16-byte object (binarytrees spent a quarter of
 * its time there).
 */
static inline void zero_small(void *p, uint32_t size)
{
	uint64_t *w = p;
	uint32_t n = size / 8;

	w[0] = 0;
	w[n - 1] = 0;
	if (n <= 2)
		return;
	w[1] = 0;
	w[n - 2] = 0;
	if (n <= 4)
		return;
	w[2] = 0;
	w[3] = 0;
	w[n - 3] = 0;
	w[n - 4] = 0;
}

static inline void stat_add(uint64_t *v, uint64_t d)
{
	__atomic_store_n(v, *v + d, __ATOMIC_RELAXED);
}

static void *alloc_small(struct mcache *c, size_t size, bool noscan,
			 bool *refilled)
{
	uint8_t sc = spanclass_make(size_to_class(size), noscan);
	struct mspan *s = c->alloc[sc];
	void *p = s ? span_nextfree(s) : NULL;

	if (unlikely(!p)) {
		s = mcache_refill(c, sc);
		if (!s)
			return NULL;
		*refilled = true;
		p = span_nextfree(s);
		if (!p)
			throw("mcache_refill: span has no free object");
	}
	/* allocate black during a mark (mgc.c): one load of a flag that
	 * changes twice a cycle, an atomic OR only while marking */
	if (unlikely(__atomic_load_n(&gcblackalloc, __ATOMIC_RELAXED)))
		gc_markalloc(c, s, (uintptr_t)p);
	malloc_unpoison(p, s->elemsize);
	if (s->needzero) {
		if (s->elemsize <= 64) {
			zero_small(p, s->elemsize);
		} else {
			memset(p, 0, s->elemsize);
		}
	}
	stat_add(&c->nmalloc, 1);
	stat_add(&c->nbytes, s->elemsize);
	return p;
}

static void *alloc_tiny(struct mcache *c, size_t size, bool *refilled)
{
	uintptr_t off = c->tinyoffset;
	void *p;

	if (!(size & 7))
		off = (off + 7) & ~7UL;
	else if (!(size & 3))
		off = (off + 3) & ~3UL;
	else if (!(size & 1))
		off = (off + 1) & ~1UL;
	if (c->tiny && off + size <= TINY_SIZE) {
		c->tinyoffset = off + size;
		stat_add(&c->ntiny, 1);
		return (void *)(c->tiny + off);
	}
	p = alloc_small(c, TINY_SIZE, true, refilled);
	if (!p)
		return NULL;
	/* keep the block with more room left, as Go does */
	if (!c->tiny || size < c->tinyoffset) {
		c->tiny = (uintptr_t)p;
		c->tinyoffset = size;
	}
	return p;
}

static void *alloc_large(struct mcache *c, size_t size, bool noscan)
{
	uintptr_t npages = (size + PAGE_SIZE_GC - 1) >> PAGE_SHIFT;
	struct mspan *s;

	if (size > (1ULL << 46))
		return NULL;
	s = mheap_alloc(npages, spanclass_make(0, noscan), true);
	if (!s)
		return NULL;
	if (s->needzero)
		memset((void *)s->base, 0, npages << PAGE_SHIFT);
	if (unlikely(__atomic_load_n(&gcblackalloc, __ATOMIC_RELAXED)))
		gc_markalloc(c, s, s->base);
	__atomic_add_fetch(&heap_live, npages << PAGE_SHIFT, __ATOMIC_RELAXED);
	__atomic_add_fetch(&largebytes, npages << PAGE_SHIFT, __ATOMIC_RELAXED);
	__atomic_add_fetch(&nlarge, 1, __ATOMIC_RELAXED);
	return (void *)s->base;
}

struct mcache *lockedcache_lock(void)
{
	lock(&lockedcache_mu);
	return lockedcache;
}

void lockedcache_unlock(void)
{
	unlock(&lockedcache_mu);
}

/* The P's mcache, made on first use; NULL when the thread has no P. */
static struct mcache *p_mcache(struct m *mp)
{
	struct p *pp = mp ? mp->p : NULL;

	if (!pp)
		return NULL;
	if (unlikely(!pp->mcache)) {
		struct mcache *c = calloc(1, sizeof(*c));

		if (!c)
			throw("out of memory (mcache)");
		__atomic_store_n(&pp->mcache, c, __ATOMIC_RELEASE);
	}
	return pp->mcache;
}

/*
 * A thread that is not a goroutine is not scanned: between goro_alloc's
 * return and the store of the pointer into a root, the object would be
 * reachable from nothing the collector sees.  So each such thread keeps
 * its last FOREIGN_KEEP objects in a ring of root memory (rootalloc),
 * freed with the thread.
 */
#define FOREIGN_KEEP	16

struct foreignring {
	void *obj[FOREIGN_KEEP];
	unsigned int next;
};

static pthread_key_t foreignkey;
static pthread_once_t foreignonce = PTHREAD_ONCE_INIT;

static void foreignring_free(void *r)
{
	rootfree(r);
}

static void foreignkey_init(void)
{
	if (pthread_key_create(&foreignkey, foreignring_free))
		throw("pthread_key_create");
}

static void foreign_keep(void *p)
{
	struct foreignring *r;

	if (!p || getm())
		return;		/* Ms are goroutines' or g0's */
	pthread_once(&foreignonce, foreignkey_init);
	r = pthread_getspecific(foreignkey);
	if (!r) {
		r = rootalloc(sizeof(*r));
		if (!r || pthread_setspecific(foreignkey, r))
			throw("out of memory (foreign thread ring)");
	}
	r->obj[r->next++ % FOREIGN_KEEP] = p;
}

static void *mallocgc(size_t size, bool noscan)
{
	struct m *mp;
	struct mcache *c;
	bool refilled = false, locked = false;
	void *p;

	if (unlikely(!size))
		return &zerobase;
	malloc_init_public();
	mp = acquirem();	/* the P's mcache, across page faults */
	c = p_mcache(mp);
	if (!c) {
		c = lockedcache_lock();
		locked = true;
	}
	if (noscan && size < TINY_SIZE)
		p = alloc_tiny(c, size, &refilled);
	else if (size <= MAX_SMALL_SIZE)
		p = alloc_small(c, size, noscan, &refilled);
	else {
		p = alloc_large(c, size, noscan);
		refilled = true;
	}
	if (locked) {
		foreign_keep(p);	/* before a collection can see it */
		lockedcache_unlock();
	}
	releasem(mp);
	if (refilled || unlikely(debug.gcstress)) {
		gc_maybe_start();
		/* a safe point (Go's mallocgc is one too): a goroutine that
		 * only computes and allocates, in text that cannot be
		 * preempted asynchronously (static executables), must not
		 * hold a stop-the-world for the rest of its run; and one
		 * that can stops here before the signal lands */
		if (!locked) {
			stw_check();
			preempt_check();
		}
	}
	return p;
}

GORO_API void *goro_alloc(size_t size)
{
	return mallocgc(size, false);
}

GORO_API void *goro_alloc_noscan(size_t size)
{
	return mallocgc(size, true);
}

/* Cumulative allocation counts (any thread, approximate while others
 * allocate). */
void malloc_counts(uint64_t *nmalloc, uint64_t *nbytes)
{
	uint64_t n = __atomic_load_n(&nlarge, __ATOMIC_RELAXED);
	uint64_t b = __atomic_load_n(&largebytes, __ATOMIC_RELAXED);

	for (int32_t i = 0; i < MAXPROCS; i++) {
		struct p *pp = __atomic_load_n(&allp[i], __ATOMIC_ACQUIRE);
		struct mcache *c;

		if (!pp)
			break;
		c = __atomic_load_n(&pp->mcache, __ATOMIC_ACQUIRE);
		if (!c)
			continue;
		n += __atomic_load_n(&c->nmalloc, __ATOMIC_RELAXED);
		b += __atomic_load_n(&c->nbytes, __ATOMIC_RELAXED);
	}
	if (lockedcache) {
		n += __atomic_load_n(&lockedcache->nmalloc, __ATOMIC_RELAXED);
		b += __atomic_load_n(&lockedcache->nbytes, __ATOMIC_RELAXED);
	}
	*nmalloc = n;
	*nbytes = b;
}

/* ---------------------------------------------------------------------
 * Root memory (runtime objects that may hold GC pointers)
 * ------------------------------------------------------------------- */

struct rootblk {
	struct rootblk *next, *prev;
	size_t size;
	size_t pad;
};

static struct rtlock rootmu;
static struct rootblk *roots;

void *rootalloc(size_t size)
{
	struct rootblk *b;

	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	b = calloc(1, sizeof(*b) + size);
	if (!b)
		return NULL;
	b->size = size;
	lock(&rootmu);
	b->prev = NULL;
	b->next = roots;
	if (roots)
		roots->prev = b;
	roots = b;
	unlock(&rootmu);
	return b + 1;
}

void rootfree(void *p)
{
	struct rootblk *b;

	if (!p)
		return;
	b = (struct rootblk *)p - 1;
	lock(&rootmu);
	if (b->prev)
		b->prev->next = b->next;
	else
		roots = b->next;
	if (b->next)
		b->next->prev = b->prev;
	unlock(&rootmu);
	free(b);
}

/* Call fn on every root block (the collector, world stopped). */
void rootblocks_each(void (*fn)(uintptr_t lo, uintptr_t hi))
{
	lock(&rootmu);
	for (struct rootblk *b = roots; b; b = b->next)
		fn((uintptr_t)(b + 1), (uintptr_t)(b + 1) + b->size);
	unlock(&rootmu);
}

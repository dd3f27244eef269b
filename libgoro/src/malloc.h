/* SPDX-License-Identifier: MIT */
/*
 * malloc.h - the GC heap's internal objects (Go's mheap.go, mcache.go,
 * mcentral.go, sizeclasses.go, in C), shared by malloc.c (size classes,
 * per-P caches, central lists, goro_alloc), mheap.c (arenas, the page
 * heap, span lookup, the scavenger) and mgc.c (the collector).
 *
 * Objects and invariants:
 *
 *  - The heap is made of 64 MiB arenas, mmap'd on demand and 64 MiB
 *    aligned.  arena_index() maps any address to its arena's metadata
 *    (struct heaparena) in O(1); the arena's spans[] maps each 8 KiB page
 *    to the span holding it.  For an in-use span every page maps to it
 *    (so that an interior pointer finds its object); for a free span
 *    only its first and last pages are meaningful (coalescing).
 *  - A span (struct mspan) is a run of pages: free (on the page heap's
 *    lists), or in use for one size class (small objects) or for one
 *    large object (spanclass 0 or 1).  Span structs and arena metadata
 *    are mmap'd apart from the arenas, never in the data segment: the
 *    collector scans the data segment and must not see them.
 *  - Allocation state of a small span is Go's: objects below freeindex
 *    are allocated; at or above it, allocbits tells (1 = allocated at
 *    the last sweep).  An object is free iff idx >= freeindex and its
 *    allocbit is 0.  Marking sets markbits; the sweep makes markbits the
 *    new allocbits and resets freeindex to 0.
 *  - A small span is owned either by one mcache (s->incache) or by its
 *    class's mcentral (on `partial` if it has a free object, else on
 *    `full`).  Large spans are on mheap.large.  So the sweep finds every
 *    in-use span on those lists once the mcaches are flushed.
 *  - Lazy sweep (mgcsweep.c, Go's sweepgen): mheap.sweepgen grows by 2
 *    at each mark termination.  s->sweepgen == sweepgen - 2: the span
 *    holds the marks of the last cycle and is not swept; sweepgen - 1:
 *    a sweeper owns it; sweepgen: swept (or new, or in an mcache).  Each
 *    central and the large list has two lists of each kind, indexed by
 *    sweepgen parity (sweep_swept_idx()): adding 2 to
 *    sweepgen turns every swept list into an unswept one in O(1).  Only
 *    swept spans are cached or marked; every span is swept before the
 *    next mark begins.
 *
 * Lock order: gc's worldsema (a goroutine sema), lockedcache.lock,
 * mcentral.lock, mheap.lock.
 */
#ifndef GORO_MALLOC_H
#define GORO_MALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#define PAGE_SHIFT	13
#define PAGE_SIZE_GC	(1UL << PAGE_SHIFT)		/* 8 KiB */
#define ARENA_SHIFT	26
#define ARENA_BYTES	(1UL << ARENA_SHIFT)		/* 64 MiB */
#define ARENA_PAGES	(ARENA_BYTES >> PAGE_SHIFT)
#define ARENA_L1_BITS	(47 - ARENA_SHIFT)		/* user half of x86-64 */
#define MAX_SMALL_SIZE	32768
#define NUM_SIZE_CLASSES 68
#define NUM_SPAN_CLASSES (NUM_SIZE_CLASSES * 2)
#define MAX_OBJS_SPAN	(PAGE_SIZE_GC / 8)		/* class 1 in 1 page */
#define BITMAP_WORDS	((int)(MAX_OBJS_SPAN / 64))
#define TINY_SIZE	16
#define HEAP_FREE_LISTS	128			/* exact lists: 1..127 pages */

enum span_state {
	SPAN_DEAD = 0,		/* struct unused, on the span pool */
	SPAN_FREE,		/* pages on the page heap */
	SPAN_INUSE,		/* objects */
	SPAN_SCAV,		/* taken off the heap by the scavenger */
};

struct mspan {
	struct mspan *next, *prev;	/* list it is on */
	uintptr_t base;
	uintptr_t npages;
	uint32_t state;			/* enum span_state (atomic) */
	uint8_t spanclass;		/* sizeclass << 1 | noscan */
	bool incache;			/* owned by an mcache */
	bool needzero;			/* memory may be dirty */
	uint8_t ab;			/* which bits[] is allocbits */
	bool scanacct;			/* its pages' scanbits are set */
	uint32_t elemsize;
	uint32_t nelems;
	uint32_t freeindex;
	uint32_t nalloc;		/* allocated at the last sweep + since */
	uint32_t divmul;		/* (off * divmul) >> 32 == off / elemsize */
	uint32_t nreleased;		/* free span: pages given back to the OS */
	uint32_t sweepgen;		/* see above (atomic) */
	int64_t freed_at;		/* free span: nanotime it went free */
	uint64_t bits[2][BITMAP_WORDS];	/* allocbits and markbits */
};

static inline uint64_t *span_allocbits(struct mspan *s)
{
	return s->bits[s->ab];
}

static inline uint64_t *span_markbits(struct mspan *s)
{
	return s->bits[s->ab ^ 1];
}

static inline uint8_t spanclass_make(int sizeclass, bool noscan)
{
	return (uint8_t)(sizeclass << 1 | (noscan ? 1 : 0));
}

static inline int spanclass_sizeclass(uint8_t sc)
{
	return sc >> 1;
}

static inline bool spanclass_noscan(uint8_t sc)
{
	return sc & 1;
}

/*
 * The collector walks the heap's page tables in granules of 16 MiB
 * (mgc.c's passes and pause); a granule without an in-use span that may
 * hold pointers has nothing to rescan, and the walk skips it.
 */
#define HEAP_GRANULE_SHIFT	24

struct heaparena {
	struct mspan *spans[ARENA_PAGES];
	/* a bit per page of an in-use span that may hold pointers:
	 * written under mheap.lock, read atomically by the collector */
	uint64_t scanbits[ARENA_PAGES / 64];
	/* The collector's (mgc.c): pages it left write-protected after the
	 * last pause (full spans: nothing is allocated in them until the
	 * next mark), and pages found written while so left, which it
	 * does not leave again (cleared here when their span is freed). */
	uint64_t wpkept[ARENA_PAGES / 64];
	uint64_t wpwritten[ARENA_PAGES / 64];
};

/* Which pages heap_runs and heap_pages_any report: in-use spans that
 * may hold pointers (scanbits), those of them not in wpkept, the wpkept
 * pages, or the wpwritten ones. */
enum heap_runs { RUNS_SCAN, RUNS_SCAN_UNKEPT, RUNS_KEPT, RUNS_WRITTEN };

struct spanlist {
	struct mspan *first;
};

/* Doubly linked span lists (central lists, the heap's free lists);
 * the caller holds the list's lock.  Defined below struct mspan. */
static inline void spanlist_push(struct spanlist *l, struct mspan *s);
static inline void spanlist_del(struct spanlist *l, struct mspan *s);

struct mcentral {
	struct rtlock lock;
	uint8_t spanclass;
	/* [sweepgen >> 1 & 1]: swept; the other one: not swept yet */
	struct spanlist partial[2];	/* not in a cache, has free objects */
	struct spanlist full[2];	/* not in a cache, no free object */
} __attribute__((aligned(64)));

/* A per-P cache (and one locked cache for threads without a P). */
struct mcache {
	struct mspan *alloc[NUM_SPAN_CLASSES];
	uintptr_t tiny;			/* current 16-byte tiny block */
	uintptr_t tinyoffset;
	/* statistics, written by the owner, read by anyone (relaxed) */
	uint64_t nmalloc;
	uint64_t nbytes;
	uint64_t ntiny;
	/* bytes allocated black during this mark (owner writes, the
	 * collector reads with the world stopped) */
	uint64_t blackbytes;
};

struct mheap {
	struct rtlock lock;
	struct spanlist free[HEAP_FREE_LISTS];	/* free spans of n pages */
	struct spanlist freelarge;		/* free spans >= 128 pages */
	struct spanlist large[2];		/* in-use large objects, by
						 * sweepgen parity as centrals */
	uint32_t sweepgen;			/* atomic; written in the pause */
	struct mspan *spanpool;			/* unused span structs */
	uintptr_t curarena, curarena_end;	/* unused tail of an arena */
	uint64_t sys;				/* bytes of arenas mapped */
	uint64_t inuse;				/* bytes of in-use spans */
	uint64_t released;			/* free bytes given back */
	uint64_t scavout;			/* free bytes the scavenger
						 * holds off the lists */
	uintptr_t arena_lo, arena_hi;		/* bounds of all arenas */
	struct mcentral central[NUM_SPAN_CLASSES];
};

extern struct mheap *mheap_;
extern struct heaparena **arena_l1;

/* Size classes (malloc.c). */
extern const uint32_t class_to_size[NUM_SIZE_CLASSES];
extern const uint8_t class_to_npages[NUM_SIZE_CLASSES];
int size_to_class(size_t size);

/* mheap.c */
int mheap_init(void);
void heap_runs(uintptr_t lo, uintptr_t hi, enum heap_runs which,
	       uintptr_t gap, void (*fn)(uintptr_t lo, uintptr_t hi));
bool heap_pages_any(uintptr_t lo, uintptr_t hi, enum heap_runs which);
void heap_pagebits(uintptr_t lo, uintptr_t hi, enum heap_runs which,
		   bool set);
struct mspan *mheap_alloc(uintptr_t npages, uint8_t spanclass, bool large);
void mheap_free(struct mspan *s);
void mheap_free_locked(struct mspan *s);
void mheap_scavenge(uint64_t want, bool all);
uint64_t mheap_retained(void);
bool mheap_is_valid(void);

/* An in-use small span's equations (GORODEBUG=invariants=1). */
static inline bool span_is_valid(const struct mspan *s)
{
	return s->state == SPAN_INUSE && !s->incache &&
	       s->nalloc <= s->nelems && s->freeindex <= s->nelems &&
	       (uint64_t)s->nelems * s->elemsize <= s->npages << PAGE_SHIFT;
}

/* The in-use span holding p, or NULL (no lock: the world is stopped or
 * p is an object the caller owns). */
static inline struct mspan *spanof(uintptr_t p)
{
	struct heaparena *ha;
	struct mspan *s;

	if (p >> 47)
		return NULL;
	ha = __atomic_load_n(&arena_l1[p >> ARENA_SHIFT], __ATOMIC_ACQUIRE);
	if (!ha)
		return NULL;
	s = __atomic_load_n(&ha->spans[(p & (ARENA_BYTES - 1)) >> PAGE_SHIFT],
			    __ATOMIC_RELAXED);
	if (!s || __atomic_load_n(&s->state, __ATOMIC_RELAXED) != SPAN_INUSE ||
	    p < s->base || p >= s->base + (s->npages << PAGE_SHIFT))
		return NULL;
	return s;
}

static inline uint32_t span_objindex(struct mspan *s, uintptr_t p)
{
	return (uint32_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
}

static inline bool bit_get(const uint64_t *b, uint32_t i)
{
	return b[i >> 6] >> (i & 63) & 1;
}

static inline void bit_set(uint64_t *b, uint32_t i)
{
	b[i >> 6] |= 1ULL << (i & 63);
}

/* malloc.c: mcaches, centrals, statistics. */
void mcache_flush(struct mcache *c);
struct mcache *lockedcache_lock(void);
void lockedcache_unlock(void);
void malloc_counts(uint64_t *nmalloc, uint64_t *nbytes);
void malloc_poison(void *p, size_t n);
void malloc_unpoison(void *p, size_t n);
void malloc_init_public(void);
void rootblocks_each(void (*fn)(uintptr_t lo, uintptr_t hi));

/*
 * Store rbx, r12, r13, r14 and r15 (the callee-saved registers that can
 * hold data: rbp is the frame pointer) in r[0..4].  goro_syscall_enter
 * calls it first thing, so they are still its caller's values: a
 * goroutine in a syscall keeps running, and the collector scans these
 * copies in place of its registers.  The address goes in rax, which
 * holds none of them.
 */
static inline __attribute__((always_inline))
void gc_save_calleesaved(uintptr_t r[5])
{
	__asm__ volatile("movq %%rbx, 0(%0)\n\t"
			 "movq %%r12, 8(%0)\n\t"
			 "movq %%r13, 16(%0)\n\t"
			 "movq %%r14, 24(%0)\n\t"
			 "movq %%r15, 32(%0)"
			 : : "a"(r) : "memory");
}

/* mgc.c: the collector, from the allocator. */
extern uint64_t heap_live;	/* atomic: bytes in spans handed out */
extern uint64_t next_gc;	/* atomic: the heap goal */
extern uint32_t worldsema;	/* serialises stop-the-worlds */
extern uint32_t gcblackalloc;	/* atomic: a mark runs, new objects are
				 * marked when allocated */
void gc_maybe_start(void);
void gc_init_once(void);
void gc_markalloc(struct mcache *c, struct mspan *s, uintptr_t p);
void gc_arena_mapped(uintptr_t base, size_t n);

/* mgcsweep.c: the lazy sweep. */
static inline unsigned int sweep_swept_idx(void)
{
	/* acquire: pairs with sweep_start's release, so that a sweeper
	 * that took its cursor before the pause but its span after it
	 * sees the pause's marks (TSan: gc_conc) */
	return __atomic_load_n(&mheap_->sweepgen, __ATOMIC_ACQUIRE) >> 1 & 1;
}

struct mspan *sweep_cachespan(uint8_t sc);
void sweep_reclaim(uintptr_t npages);
void sweep_finish(void);
void sweep_start(void);
bool sweep_done(void);
void sweep_init(void);
extern uint64_t sweep_nfreed, sweep_freed;	/* atomic, cumulative */

/*
 * Root memory for the runtime's own objects that may hold GC pointers
 * (channel buffers): malloc'd, zeroed, on a list the collector scans.
 */
void *rootalloc(size_t size);
void rootfree(void *p);

static inline void spanlist_push(struct spanlist *l, struct mspan *s)
{
	s->prev = NULL;
	s->next = l->first;
	if (l->first)
		l->first->prev = s;
	l->first = s;
}

static inline void spanlist_del(struct spanlist *l, struct mspan *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
}


#endif /* GORO_MALLOC_H */

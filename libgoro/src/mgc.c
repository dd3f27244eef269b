// SPDX-License-Identifier: MIT
/*
 * mgc.c - the garbage collector (Go's mgc.go, mgcmark.go, mgcsweep.go,
 * mgcpacer.go and mfinal.go, in C): conservative, non-moving
 * mark-sweep over the heap of malloc.c / mheap.c.
 *
 * Phases of one cycle (gc_run), all inside one stop-the-world today:
 *
 *  1. Serialise with worldsema (also taken by goro_set_maxprocs), stop
 *     the world with the scheduler's protocol (proc.c), then take
 *     lockedcache's lock (threads without a P allocate under it: this is
 *     what stops them) and return every mcache's spans to the centrals.
 *  2. Mark.  Roots, every word of them taken as a possible pointer:
 *       - the collecting goroutine's stack from its own frame up, with
 *         its callee-saved registers spilled into that frame first;
 *       - every other goroutine's stack from its saved sp up (parked and
 *         runnable ones switched through switch.S, which pushed their
 *         callee-saved registers there; an asynchronously preempted one
 *         has every register saved there by preempt.S), and its struct g
 *         (start argument, sleep timer);  a goroutine between
 *         goro_syscall_enter and _exit is still running: its whole
 *         stack is scanned, and the callee-saved registers its caller
 *         had when it called goro_syscall_enter (saved there), not the
 *         registers it has now: a pointer loaded into a register after
 *         goro_syscall_enter, and the heap objects it writes meanwhile,
 *         are not seen;
 *       - the writable PT_LOAD segments (data, bss) of the executable
 *         and of every loaded shared object (dl_iterate_phdr).  The
 *         heap's own metadata is mmap'd, never there, so it is not seen;
 *       - runtime memory that holds user values: channels (rootalloc),
 *         the timers queued on every P, finalizers queued to run;
 *       - ranges added with goro_add_root();
 *       - each foreign thread's ring of its last 16 objects (malloc.c).
 *     A word that points anywhere inside an allocated object (interior
 *     pointers included) marks it; objects allocated noscan are never
 *     scanned.  The grey set is an explicit mark stack (mmap'd, grows),
 *     never recursion: the collector runs on the goroutine's stack.
 *     Up to GOMAXPROCS - 1 helper threads mark beside it, sharing work
 *     through a pool of buffers (drain_parallel).
 *  3. Finalizers: an object with a finalizer that is still unmarked is
 *     queued for the finalizer goroutine, and it and all it reaches are
 *     marked: they live until the finalizer has run, and are freed by the
 *     next cycle if the finalizer did not resurrect them.
 *  4. Sweep (eager, in the same pause): each small span's markbits become
 *     its allocbits, freeindex goes back to 0, empty spans go back to
 *     the page heap; unmarked large objects too.  In the ASan build the
 *     freed objects are poisoned, so a use after a wrong free is caught.
 *  5. Pace: next_gc = marked * (1 + GOGC/100) (at least 4 MiB), capped
 *     so that the heap stays under GOMEMLIMIT; start the world again.
 *
 * What is not seen, so must not hold the only pointer to an object:
 * memory from malloc/mmap (register it with goro_add_root), the stacks
 * of threads that are not goroutines (goro_main's caller, foreign
 * threads), thread-local variables, ASan's fake stacks.
 *
 * A collection starts when an allocation that had to refill finds
 * heap_live >= next_gc, and only on a goroutine (a foreign thread's
 * allocation leaves it to the next goroutine that allocates).  Without
 * asynchronous preemption (static executables, TSan) a goroutine that
 * never calls the runtime delays the stop-the-world, as it delays
 * goro_set_maxprocs.
 *
 * Not yet: concurrent mark (the plan: dirty-page tracking with
 * soft-dirty bits or PAGEMAP_SCAN, rescanned in a short final pause, so
 * that C code needs no write barrier), lazy sweep, mark assists.  Until
 * then the pause grows with the live heap (about 30 ns per live object
 * per marker here).
 */
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "goro.h"
#include "malloc.h"
#include "probes.h"

#define HEAP_MINIMUM	(4ULL << 20)
#define NO_SANITIZE	__attribute__((no_sanitize_address, \
				       no_sanitize_thread, noinline))

uint64_t heap_live;
uint64_t next_gc = HEAP_MINIMUM;
uint32_t worldsema = 1;

static int32_t gcpercent = 100;
static int64_t memlimit = INT64_MAX;
static uint64_t heap_marked;

/* statistics (relaxed atomics: read by goro_read_memstats anywhere) */
static uint32_t num_gc, num_forced_gc;
static uint64_t pause_total, pause_ring[256], last_gc_unix;
static uint64_t nfree, freed_bytes;
static int64_t gc_start_time;

/* A marker's grey objects: (object, length) pairs on an mmap'd stack. */
struct gcwork {
	uintptr_t *stack;
	size_t sp, cap;
};

/* The marker running on this thread: the collecting goroutine's (it
 * cannot move to another thread while the world is stopped) or a mark
 * helper's. */
static __thread struct gcwork *tls_gcw
	__attribute__((tls_model("initial-exec")));
static struct gcwork gcw_main;
static bool gc_parallel;	/* several markers: set markbits atomically */

/* Bounds of the arenas, stored inverted: the data segment is a root and
 * must hold no pointer into the heap. */
static uintptr_t arena_lo_inv, arena_hi_inv = UINTPTR_MAX;

/* ---------------------------------------------------------------------
 * Roots added by the program
 * ------------------------------------------------------------------- */

struct rootrange {
	uintptr_t lo, hi;
};

static struct rtlock addroot_mu;
static struct rootrange *addroots;
static size_t naddroots, addrootcap;

GORO_API int goro_add_root(void *p, size_t len)
{
	struct rootrange *n;

	if (!p || !len || (uintptr_t)p + len < (uintptr_t)p)
		return -EINVAL;
	lock(&addroot_mu);
	if (naddroots == addrootcap) {
		size_t cap = addrootcap ? addrootcap * 2 : 16;

		n = realloc(addroots, cap * sizeof(*n));
		if (!n) {
			unlock(&addroot_mu);
			return -ENOMEM;
		}
		addroots = n;
		addrootcap = cap;
	}
	addroots[naddroots].lo = (uintptr_t)p;
	addroots[naddroots].hi = (uintptr_t)p + len;
	naddroots++;
	unlock(&addroot_mu);
	return 0;
}

GORO_API int goro_remove_root(void *p)
{
	int err = -ENOENT;

	lock(&addroot_mu);
	for (size_t i = 0; i < naddroots; i++) {
		if (addroots[i].lo == (uintptr_t)p) {
			addroots[i] = addroots[--naddroots];
			err = 0;
			break;
		}
	}
	unlock(&addroot_mu);
	return err;
}

/* ---------------------------------------------------------------------
 * Finalizers (Go's mfinal.go): a table keyed by address, a queue, and
 * one goroutine that runs them.
 * ------------------------------------------------------------------- */

struct finalizer {
	struct finalizer *next;
	uintptr_t p;
	void (*fn)(void *p);
};

static struct rtlock finlock;
static struct finalizer **fintab;
static size_t fintabsize, nfin;
static struct finalizer *finq;		/* queued to run, in order */
static struct finalizer **finqtail = &finq;
static struct g *fing;			/* the finalizer goroutine */
static bool fingwait, fingstarted;

static size_t finhash(uintptr_t p)
{
	return (size_t)((p >> 3) * 0x9e3779b97f4a7c15ULL >> 20) &
	       (fintabsize - 1);
}

/* finlock held. */
static int fintab_grow(void)
{
	size_t size = fintabsize ? fintabsize * 2 : 256;
	struct finalizer **t = calloc(size, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < fintabsize; i++) {
		struct finalizer *f, *next;

		for (f = fintab[i]; f; f = next) {
			size_t h;

			next = f->next;
			fintabsize = size;
			h = finhash(f->p);
			fintabsize = size / 2;
			f->next = t[h];
			t[h] = f;
		}
	}
	free(fintab);
	fintab = t;
	fintabsize = size;
	return 0;
}

static bool fing_parkcommit(struct g *gp, void *arg)
{
	(void)arg;
	fing = gp;
	unlock(&finlock);
	return true;
}

static void runfinq(void *arg)
{
	struct finalizer *f;
	void *volatile obj;

	(void)arg;
	for (;;) {
		lock(&finlock);
		while (!finq) {
			fingwait = true;
			gopark(fing_parkcommit, NULL, WAIT_FINALIZER_WAIT);
			lock(&finlock);
		}
		f = finq;
		obj = (void *)f->p;	/* on our stack from here on */
		finq = f->next;
		if (!finq)
			finqtail = &finq;
		unlock(&finlock);
		f->fn(obj);
		obj = NULL;
		/* f->p is no longer a root from here on */
		free(f);
	}
}

/* Wake (or start) the finalizer goroutine if finalizers are queued.
 * Goroutine context, no lock held. */
static void wakefing(void)
{
	struct g *gp = NULL;
	bool start = false;

	lock(&finlock);
	if (finq && fingwait) {
		fingwait = false;
		gp = fing;
	} else if (finq && !fingstarted) {
		fingstarted = true;
		start = true;
	}
	unlock(&finlock);
	if (gp)
		goready(gp);
	if (start && goro_spawn(runfinq, NULL, NULL))
		throw("cannot start the finalizer goroutine");
}

GORO_API int goro_set_finalizer(void *p, void (*fn)(void *p))
{
	struct finalizer **pf, *f;
	uintptr_t a = (uintptr_t)p;
	bool start = false;
	int err = 0;

	malloc_init_public();
	if (!spanof(a))
		return -EINVAL;
	lock(&finlock);
	if (!fintabsize && fintab_grow()) {
		err = -ENOMEM;
		goto out;
	}
	for (pf = &fintab[finhash(a)]; *pf; pf = &(*pf)->next)
		if ((*pf)->p == a)
			break;
	if (!fn) {
		if (!*pf) {
			err = -ENOENT;
			goto out;
		}
		f = *pf;
		*pf = f->next;
		free(f);
		nfin--;
		goto out;
	}
	if (*pf) {
		(*pf)->fn = fn;
		goto out;
	}
	if (nfin >= fintabsize && fintab_grow()) {
		err = -ENOMEM;
		goto out;
	}
	f = malloc(sizeof(*f));
	if (!f) {
		err = -ENOMEM;
		goto out;
	}
	f->p = a;
	f->fn = fn;
	f->next = fintab[finhash(a)];
	fintab[finhash(a)] = f;
	nfin++;
	/* Start the finalizer goroutine now, on a goroutine: started only
	 * when the first finalizers are due, it would often reuse the stack
	 * of the goroutine that dropped them, stale pointers included. */
	if (!fingstarted && getm() && getg() == getm()->curg) {
		fingstarted = true;
		start = true;
	}
out:
	unlock(&finlock);
	if (start && goro_spawn(runfinq, NULL, NULL))
		throw("cannot start the finalizer goroutine");
	return err;
}

/* ---------------------------------------------------------------------
 * Mark
 * ------------------------------------------------------------------- */

static __attribute__((noinline)) void mstack_grow(struct gcwork *w)
{
	size_t ncap = w->cap ? w->cap * 2 : (1 << 16);
	void *n = w->cap ? mremap(w->stack, w->cap * sizeof(uintptr_t),
				  ncap * sizeof(uintptr_t), MREMAP_MAYMOVE)
			 : mmap(NULL, ncap * sizeof(uintptr_t),
				PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (n == MAP_FAILED)
		throw("out of memory (mark stack)");
	w->stack = n;
	w->cap = ncap;
}

static inline void mstack_push(uintptr_t obj, uintptr_t len)
{
	struct gcwork *w = tls_gcw;

	if (unlikely(w->sp + 2 > w->cap))
		mstack_grow(w);
	w->stack[w->sp++] = obj;
	w->stack[w->sp++] = len;
}

static uintptr_t span_objbase(struct mspan *s, uint32_t idx)
{
	return s->base + (uintptr_t)idx * s->elemsize;
}

static bool span_isfree(struct mspan *s, uint32_t idx)
{
	return idx >= s->freeindex && !bit_get(span_allocbits(s), idx);
}

/* Mark the object p points into, if any; true if newly marked. */
static inline bool greyobject(uintptr_t p)
{
	struct mspan *s;
	uint32_t idx;
	uint64_t *mb;

	if (p < ~arena_lo_inv || p >= ~arena_hi_inv)
		return false;
	s = spanof(p);
	if (!s)
		return false;
	idx = s->nelems == 1 ? 0 : span_objindex(s, p);
	if (idx >= s->nelems || span_isfree(s, idx))
		return false;
	mb = span_markbits(s);
	/* atomic: other markers may set bits in this word meanwhile */
	if (__atomic_load_n(&mb[idx >> 6], __ATOMIC_RELAXED) >> (idx & 63) & 1)
		return false;
	if (gc_parallel) {
		uint64_t bit = 1ULL << (idx & 63);

		if (__atomic_fetch_or(&mb[idx >> 6], bit, __ATOMIC_RELAXED) &
		    bit)
			return false;	/* another marker won */
	} else {
		bit_set(mb, idx);
	}
	if (!spanclass_noscan(s->spanclass))
		mstack_push(span_objbase(s, idx), s->nelems == 1 ?
			    s->npages << PAGE_SHIFT : s->elemsize);
	return true;
}

NO_SANITIZE static void scanblock(uintptr_t lo, uintptr_t hi)
{
	lo = (lo + 7) & ~7UL;
	for (; lo + 8 <= hi; lo += 8)
		greyobject(*(volatile uintptr_t *)lo);
}

/*
 * Parallel mark.  While the world is stopped, up to GOMAXPROCS - 1
 * helper threads (plain pthreads, made on first use) mark beside the
 * collecting goroutine.  Each marker drains its own stack; a marker with
 * plenty of work moves a buffer of it to the shared pool whenever
 * another one is idle; a marker that runs dry takes a buffer from the
 * pool or goes idle.  Marking ends when every marker is idle and the
 * pool is empty.  Markbits are then set with an atomic OR, so that an
 * object is scanned once even when two markers reach it together.
 */
#define WBUF_PAIRS	512
#define MAX_HELPERS	7

struct wbuf {
	struct wbuf *next;
	size_t n;			/* words used */
	uintptr_t e[2 * WBUF_PAIRS];
};

static pthread_mutex_t poolmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t poolcv = PTHREAD_COND_INITIALIZER;
static struct wbuf *pool;
static int nidle;		/* markers waiting for work (atomic reads) */
static int nactive;		/* markers that joined this phase */
static bool markdone;
static uint64_t markgen;	/* a new parallel phase starts */
static int nhelpers;

/* Move part of w's stack to the pool for an idle marker. */
static void export_work(struct gcwork *w)
{
	struct wbuf *b = malloc(sizeof(*b));

	if (!b)
		return;		/* keep it: only balance is lost */
	/* the bottom of the stack: the oldest grey objects, far from what
	 * this marker scans next (no sharing of cache lines) */
	b->n = 2 * WBUF_PAIRS;
	memcpy(b->e, w->stack, b->n * sizeof(uintptr_t));
	w->sp -= b->n;
	memmove(w->stack, w->stack + b->n, w->sp * sizeof(uintptr_t));
	pthread_mutex_lock(&poolmu);
	b->next = pool;
	pool = b;
	pthread_cond_signal(&poolcv);
	pthread_mutex_unlock(&poolmu);
}

/* Refill w from the pool; false when marking is over. */
static bool import_work(struct gcwork *w)
{
	struct wbuf *b;

	pthread_mutex_lock(&poolmu);
	for (;;) {
		if ((b = pool)) {
			pool = b->next;
			break;
		}
		if (markdone)
			break;
		/* nidle is read without the lock by drain_work */
		if (__atomic_add_fetch(&nidle, 1, __ATOMIC_RELAXED) ==
		    nactive) {
			markdone = true;
			pthread_cond_broadcast(&poolcv);
			__atomic_sub_fetch(&nidle, 1, __ATOMIC_RELAXED);
			break;
		}
		pthread_cond_wait(&poolcv, &poolmu);
		__atomic_sub_fetch(&nidle, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&poolmu);
	if (!b)
		return false;
	while (w->sp + b->n > w->cap)
		mstack_grow(w);
	memcpy(w->stack + w->sp, b->e, b->n * sizeof(uintptr_t));
	w->sp += b->n;
	free(b);
	return true;
}

/*
 * Scan grey objects until none is left (with helpers: until every
 * marker ran dry).  Objects popped go through a small FIFO and are
 * prefetched on the way in, so that the cache miss of each overlaps the
 * scanning of the ones before it (Boehm's and Go's mark prefetching).
 */
#define PREFETCH_Q	8

static void drain_work(struct gcwork *w, bool shared)
{
	uintptr_t qobj[PREFETCH_Q], qlen[PREFETCH_Q];
	unsigned int head = 0, n = 0, tick = 0;

	for (;;) {
		if (w->sp) {
			uintptr_t len = w->stack[--w->sp];
			uintptr_t obj = w->stack[--w->sp];
			unsigned int slot = (head + n) % PREFETCH_Q;

			__builtin_prefetch((void *)obj);
			if (shared && !(++tick & 63) &&
			    w->sp >= 4 * WBUF_PAIRS &&
			    __atomic_load_n(&nidle, __ATOMIC_RELAXED))
				export_work(w);
			if (n < PREFETCH_Q) {
				qobj[slot] = obj;
				qlen[slot] = len;
				n++;
				continue;
			}
			/* full: scan the oldest, queue this one in its place */
			scanblock(qobj[head], qobj[head] + qlen[head]);
			qobj[head] = obj;
			qlen[head] = len;
			head = (head + 1) % PREFETCH_Q;
		} else if (n) {
			scanblock(qobj[head], qobj[head] + qlen[head]);
			head = (head + 1) % PREFETCH_Q;
			n--;
		} else if (!shared || !import_work(w)) {
			break;
		}
	}
}

static void drain(void)
{
	drain_work(tls_gcw, false);
}

/*
 * A helper joins a phase only while it is not over, so marking never
 * waits for a helper that is slow to wake: the markers that joined and
 * are idle with an empty pool are all the markers there are.
 */
static void *mark_helper(void *arg)
{
	struct gcwork w = { 0 };
	uint64_t seen = 0;

	(void)arg;
	tls_gcw = &w;
	for (;;) {
		pthread_mutex_lock(&poolmu);
		while (markgen == seen || markdone)
			pthread_cond_wait(&poolcv, &poolmu);
		seen = markgen;
		nactive++;
		pthread_mutex_unlock(&poolmu);
		drain_work(&w, true);
	}
	return NULL;
}

/* Drain the collecting goroutine's stack with up to GOMAXPROCS - 1
 * helpers.  When it returns no helper touches the heap. */
static void drain_parallel(void)
{
	int want = __atomic_load_n(&gomaxprocs, __ATOMIC_RELAXED) - 1;

	if (want > MAX_HELPERS)
		want = MAX_HELPERS;
	while (nhelpers < want) {
		pthread_t th;

		if (pthread_create(&th, NULL, mark_helper, NULL))
			break;
		pthread_detach(th);
		nhelpers++;
	}
	if (want <= 0 || !nhelpers || !tls_gcw->sp) {
		drain();
		return;
	}
	pthread_mutex_lock(&poolmu);
	nactive = 1;
	__atomic_store_n(&nidle, 0, __ATOMIC_RELAXED);
	markdone = false;
	__atomic_store_n(&gc_parallel, true, __ATOMIC_RELAXED);
	markgen++;
	pthread_cond_broadcast(&poolcv);
	pthread_mutex_unlock(&poolmu);
	drain_work(tls_gcw, true);
	pthread_mutex_lock(&poolmu);
	__atomic_store_n(&gc_parallel, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&poolmu);
}

static int scan_phdr(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	/* The sanitizer runtimes' own state is huge (TSan's is hundreds of
	 * MiB of bss) and never holds the program's pointers. */
	if (info->dlpi_name && (strstr(info->dlpi_name, "/libtsan.so") ||
				strstr(info->dlpi_name, "/libasan.so")))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo;

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
			continue;
		lo = info->dlpi_addr + ph->p_vaddr;
		scanblock(lo, lo + ph->p_memsz);
	}
	return 0;
}

/* The collecting goroutine's own stack, from this frame up. */
NO_SANITIZE static void scan_mystack(struct g *me)
{
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);

	scanblock(here, me->stack_hi);
}

static void scan_g(struct g *gp, struct g *me)
{
	uint32_t st = readgstatus(gp);

	if (gp == me || st == G_DEAD || st == G_IDLE)
		return;
	if (st == G_SYSCALL || st == G_RUNNING) {
		/* still running: no saved sp, registers unseen */
		scanblock(gp->stack_lo, gp->stack_hi);
		scanblock((uintptr_t)gp->syscallregs,
			  (uintptr_t)(gp->syscallregs + 5));
	} else if (!gp->sched.sp)
		scanblock(gp->stack_lo, gp->stack_hi);
	else
		scanblock(gp->sched.sp, gp->stack_hi);
	greyobject((uintptr_t)gp->startarg);
}

static void scan_timers(void)
{
	for (int i = 0; i < MAXPROCS && allp[i]; i++) {
		struct p *pp = allp[i];

		lock(&pp->timerslock);
		for (int32_t j = 0; j < pp->ntimers; j++) {
			struct timer *t = pp->timers[j].t;

			greyobject((uintptr_t)t);
			scanblock((uintptr_t)t, (uintptr_t)(t + 1));
		}
		unlock(&pp->timerslock);
	}
}

static void markroots(struct g *me)
{
	scan_mystack(me);
	lock(&allglock);
	for (size_t i = 0; i < allglen; i++)
		scan_g(allgs[i], me);
	unlock(&allglock);
	greyobject((uintptr_t)me->startarg);
	dl_iterate_phdr(scan_phdr, NULL);
	rootblocks_each(scanblock);
	scan_timers();
	lock(&addroot_mu);
	for (size_t i = 0; i < naddroots; i++)
		scanblock(addroots[i].lo, addroots[i].hi);
	unlock(&addroot_mu);
	lock(&finlock);
	for (struct finalizer *f = finq; f; f = f->next)
		greyobject(f->p);
	unlock(&finlock);
	drain_parallel();
}

static bool ismarked(uintptr_t p)
{
	struct mspan *s = spanof(p);
	uint32_t idx;

	if (!s)
		return true;
	idx = s->nelems == 1 ? 0 : span_objindex(s, p);
	return bit_get(span_markbits(s), idx);
}

/* Queue the finalizers of unreachable objects, then keep those alive
 * (and what they reach) until their finalizers ran. */
static int markfinalizers(void)
{
	struct finalizer *ready = NULL, *f, **pf;
	int n = 0;

	lock(&finlock);
	for (size_t i = 0; i < fintabsize; i++) {
		for (pf = &fintab[i]; (f = *pf);) {
			if (ismarked(f->p)) {
				pf = &f->next;
				continue;
			}
			*pf = f->next;
			nfin--;
			f->next = ready;
			ready = f;
		}
	}
	for (f = ready; f; f = f->next) {
		greyobject(f->p);
		n++;
	}
	while (ready) {
		f = ready;
		ready = f->next;
		f->next = NULL;
		*finqtail = f;
		finqtail = &f->next;
	}
	unlock(&finlock);
	drain();
	return n;
}

/* ---------------------------------------------------------------------
 * Sweep
 * ------------------------------------------------------------------- */

static uint64_t sweep_marked, sweep_freed, sweep_nfreed;

static void poison_freed(struct mspan *s)
{
#if defined(__SANITIZE_ADDRESS__)
	uint64_t *mb = span_markbits(s);

	for (uint32_t i = 0; i < s->nelems; i++)
		if (!span_isfree(s, i) && !bit_get(mb, i))
			malloc_poison((void *)span_objbase(s, i), s->elemsize);
#else
	(void)s;
#endif
}

/* Sweep one small span; true if it is now empty (freed to the heap). */
static bool sweepspan(struct mspan *s)
{
	uint64_t *mb = span_markbits(s);
	uint32_t marked = 0, freed;

	if (debug.invariants && !span_is_valid(s))
		throw("sweep: span is not valid");
	for (int i = 0; i < BITMAP_WORDS; i++)
		marked += (uint32_t)__builtin_popcountll(mb[i]);
	freed = s->nalloc - marked;
	if (freed) {
		poison_freed(s);
		s->needzero = true;
	}
	sweep_nfreed += freed;
	sweep_freed += (uint64_t)freed * s->elemsize;
	sweep_marked += (uint64_t)marked * s->elemsize;
	s->ab ^= 1;
	memset(span_markbits(s), 0, sizeof(s->bits[0]));
	s->freeindex = 0;
	s->nalloc = marked;
	return marked == 0;
}

static void sweep_list(struct spanlist *from, struct spanlist *partial,
		       struct spanlist *full)
{
	struct mspan *s, *next;

	for (s = from->first; s; s = next) {
		next = s->next;
		s->next = s->prev = NULL;
		if (sweepspan(s)) {
			mheap_free_locked(s);
			continue;
		}
		s->prev = NULL;
		if (s->nalloc < s->nelems) {
			s->next = partial->first;
			if (partial->first)
				partial->first->prev = s;
			partial->first = s;
		} else {
			s->next = full->first;
			if (full->first)
				full->first->prev = s;
			full->first = s;
		}
	}
	from->first = NULL;
}

static void sweep(void)
{
	struct mspan *s, *next;

	sweep_marked = sweep_freed = sweep_nfreed = 0;
	for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
		struct mcentral *c = &mheap_->central[i];
		struct spanlist partial = { NULL }, full = { NULL };

		sweep_list(&c->partial, &partial, &full);
		sweep_list(&c->full, &partial, &full);
		c->partial = partial;
		c->full = full;
	}
	for (s = mheap_->large.first; s; s = next) {
		uint64_t bytes = s->npages << PAGE_SHIFT;

		next = s->next;
		if (bit_get(span_markbits(s), 0)) {
			span_markbits(s)[0] = 0;
			sweep_marked += bytes;
			continue;
		}
		if (s->prev)
			s->prev->next = s->next;
		else
			mheap_->large.first = s->next;
		if (s->next)
			s->next->prev = s->prev;
		s->next = s->prev = NULL;
		sweep_nfreed++;
		sweep_freed += bytes;
		mheap_free_locked(s);
	}
}

/* ---------------------------------------------------------------------
 * Pacing
 * ------------------------------------------------------------------- */

/* The next trigger from the marked heap, GOGC and GOMEMLIMIT. */
static void gcpace(void)
{
	int32_t pct = __atomic_load_n(&gcpercent, __ATOMIC_RELAXED);
	int64_t lim = __atomic_load_n(&memlimit, __ATOMIC_RELAXED);
	uint64_t marked = __atomic_load_n(&heap_marked, __ATOMIC_RELAXED);
	uint64_t goal = UINT64_MAX;

	if (pct >= 0) {
		uint64_t min = HEAP_MINIMUM * (uint64_t)pct / 100;

		goal = marked + marked * (uint64_t)pct / 100;
		if (goal < min)
			goal = min;
	}
	if (lim != INT64_MAX) {
		/* leave 5% of the limit for what is not heap objects */
		uint64_t lgoal = (uint64_t)lim - (uint64_t)lim / 20;

		if (lgoal < marked + (1 << 20))
			lgoal = marked + (1 << 20);
		if (lgoal < goal)
			goal = lgoal;
	}
	__atomic_store_n(&next_gc, goal, __ATOMIC_RELAXED);
}

static int32_t parse_gogc(void)
{
	const char *s = getenv("GOGC");
	char *end;
	long v;

	if (!s || !*s)
		return 100;
	if (!strcmp(s, "off"))
		return -1;
	v = strtol(s, &end, 10);
	if (*end || v > INT32_MAX / 2) {
		print_str("goro: GOGC=");
		print_str(s);
		print_str(" is not a number or off; using 100\n");
		return 100;
	}
	return v < 0 ? -1 : (int32_t)v;
}

static int64_t parse_gomemlimit(void)
{
	static const struct { const char *sfx; int shift; } units[] = {
		{ "TiB", 40 }, { "GiB", 30 }, { "MiB", 20 }, { "KiB", 10 },
		{ "B", 0 }, { "", 0 },
	};
	const char *s = getenv("GOMEMLIMIT");
	char *end;
	long long v;

	if (!s || !*s || !strcmp(s, "off"))
		return INT64_MAX;
	v = strtoll(s, &end, 10);
	for (size_t i = 0; v >= 0 && end != s && i < 6; i++) {
		if (strcmp(end, units[i].sfx))
			continue;
		if (v > (INT64_MAX >> units[i].shift))
			return INT64_MAX;
		return (int64_t)v << units[i].shift;
	}
	print_str("goro: GOMEMLIMIT=");
	print_str(s);
	print_str(" is not a size (e.g. 512MiB) or off; no limit\n");
	return INT64_MAX;
}

void gc_init_once(void)
{
	gcpercent = parse_gogc();
	memlimit = parse_gomemlimit();
	gc_start_time = nanotime();
	gcpace();
}

/* ---------------------------------------------------------------------
 * A cycle
 * ------------------------------------------------------------------- */

static void gctrace(uint32_t n, int64_t t0, int64_t tmark, int64_t tsweep,
		    int64_t tend, uint64_t before, uint64_t marked,
		    int nfinq, bool forced)
{
	char buf[256];
	int len;

	len = snprintf(buf, sizeof(buf),
		       "gc %u @%.3fs %d%%: %.3f+%.3f+%.3f ms clock, "
		       "%llu->%llu->%llu MB, %llu MB goal, %d P, "
		       "%d finalizers queued%s\n",
		       n, (double)(t0 - gc_start_time) / 1e9, 0,
		       (double)(tmark - t0) / 1e6,
		       (double)(tsweep - tmark) / 1e6,
		       (double)(tend - tsweep) / 1e6,
		       (unsigned long long)(before >> 20),
		       (unsigned long long)(before >> 20),
		       (unsigned long long)(marked >> 20),
		       (unsigned long long)(next_gc >> 20),
		       __atomic_load_n(&gomaxprocs, __ATOMIC_RELAXED),
		       nfinq, forced ? " (forced)" : "");
	if (len > 0 && write(2, buf, (size_t)len) < 0)
		return;
}

/* The world is stopped and the heap locked: flush, mark, sweep. */
static int gc_stopped(struct g *me, int64_t *tmark, int64_t *tsweep)
{
	struct mcache *lc = lockedcache_lock();
	int nfinq;

	for (int i = 0; i < MAXPROCS && allp[i]; i++)
		if (allp[i]->mcache)
			mcache_flush(allp[i]->mcache);
	mcache_flush(lc);
	lock(&mheap_->lock);
	arena_lo_inv = ~mheap_->arena_lo;
	arena_hi_inv = ~mheap_->arena_hi;
	*tmark = nanotime();
	GORO_PROBE1(gc_mark, num_gc + 1);
	tls_gcw = &gcw_main;
	markroots(me);
	nfinq = markfinalizers();
	*tsweep = nanotime();
	GORO_PROBE1(gc_sweep, num_gc + 1);
	sweep();
	if (debug.invariants && !mheap_is_valid())
		throw("gc: page heap is not valid");
	unlock(&mheap_->lock);
	lockedcache_unlock();
	return nfinq;
}

NO_SANITIZE static void gc_run(bool forced, uint32_t seen)
{
	struct g *me = getg();
	int64_t t0, tmark, tsweep, tend;
	uint64_t before, pause;
	uint32_t n;
	int nfinq;

	goro_sema_acquire(&worldsema);
	if (!forced && __atomic_load_n(&num_gc, __ATOMIC_RELAXED) != seen) {
		/* someone collected while we waited */
		goro_sema_release(&worldsema, false);
		return;
	}
	t0 = nanotime();
	GORO_PROBE2(gc_start, seen + 1, forced);
	stoptheworld_gc();
	/* spill callee-saved registers into this frame: scanned below */
	__builtin_unwind_init();
	before = __atomic_load_n(&heap_live, __ATOMIC_RELAXED);
	nfinq = gc_stopped(me, &tmark, &tsweep);
	__atomic_store_n(&heap_live, sweep_marked, __ATOMIC_RELAXED);
	__atomic_store_n(&heap_marked, sweep_marked, __ATOMIC_RELAXED);
	__atomic_add_fetch(&nfree, sweep_nfreed, __ATOMIC_RELAXED);
	__atomic_add_fetch(&freed_bytes, sweep_freed, __ATOMIC_RELAXED);
	gcpace();
	tend = nanotime();
	pause = (uint64_t)(tend - t0);
	n = __atomic_load_n(&num_gc, __ATOMIC_RELAXED);
	__atomic_store_n(&pause_ring[n % 256], pause, __ATOMIC_RELAXED);
	__atomic_add_fetch(&pause_total, pause, __ATOMIC_RELAXED);
	if (forced)
		__atomic_add_fetch(&num_forced_gc, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&num_gc, n + 1, __ATOMIC_RELEASE);
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		__atomic_store_n(&last_gc_unix, (uint64_t)ts.tv_sec *
				 1000000000ULL + (uint64_t)ts.tv_nsec,
				 __ATOMIC_RELAXED);
	}
	starttheworld_gc();
	{
		uint64_t live = sweep_marked;

		GORO_PROBE3(gc_end, n + 1, pause, live);
	}
	goro_sema_release(&worldsema, false);
	if (debug.gctrace)
		gctrace(n + 1, t0, tmark, tsweep, tend, before, sweep_marked,
			nfinq, forced);
	if (nfinq)
		wakefing();
	if (memlimit != INT64_MAX) {
		uint64_t used = mheap_retained();

		if (used > (uint64_t)memlimit)
			mheap_scavenge(used - (uint64_t)memlimit, true);
	}
}

/* May the calling thread stop the world?  A goroutine on its P, holding
 * no runtime lock. */
static bool can_collect(void)
{
	struct m *mp = getm();

	return mp && mp->curg && getg() == mp->curg && mp->p && !mp->locks &&
	       readgstatus(mp->curg) == G_RUNNING;
}

void gc_maybe_start(void)
{
	static uint32_t stresscount;
	uint32_t seen = __atomic_load_n(&num_gc, __ATOMIC_ACQUIRE);

	if (unlikely(debug.gcstress)) {
		if (__atomic_add_fetch(&stresscount, 1, __ATOMIC_RELAXED) %
		    (uint32_t)debug.gcstress == 0 && can_collect())
			gc_run(false, seen);
		return;
	}
	if (__atomic_load_n(&heap_live, __ATOMIC_RELAXED) <
	    __atomic_load_n(&next_gc, __ATOMIC_RELAXED) || !can_collect())
		return;
	gc_run(false, seen);
}

/* ---------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------- */

GORO_API int goro_gc(void)
{
	malloc_init_public();
	if (!can_collect())
		return -EPERM;
	gc_run(true, 0);
	return 0;
}

GORO_API int goro_set_gc_percent(int percent)
{
	int32_t old;

	malloc_init_public();
	old = __atomic_exchange_n(&gcpercent, percent < 0 ? -1 : percent,
				  __ATOMIC_RELAXED);
	gcpace();
	return old;
}

GORO_API int64_t goro_set_memory_limit(int64_t bytes)
{
	int64_t old;

	malloc_init_public();
	if (bytes < 0)
		return __atomic_load_n(&memlimit, __ATOMIC_RELAXED);
	old = __atomic_exchange_n(&memlimit, bytes, __ATOMIC_RELAXED);
	gcpace();
	return old;
}

GORO_API void goro_read_memstats(struct goro_memstats *st)
{
	uint64_t nmalloc, nbytes, fr, frb;
	uint32_t n;

	malloc_init_public();
	memset(st, 0, sizeof(*st));
	malloc_stats(&nmalloc, &nbytes);
	fr = __atomic_load_n(&nfree, __ATOMIC_RELAXED);
	frb = __atomic_load_n(&freed_bytes, __ATOMIC_RELAXED);
	st->mallocs = nmalloc;
	st->frees = fr;
	st->total_alloc = nbytes;
	st->heap_alloc = nbytes > frb ? nbytes - frb : 0;
	st->heap_objects = nmalloc > fr ? nmalloc - fr : 0;
	lock(&mheap_->lock);
	st->heap_sys = mheap_->sys;
	st->heap_inuse = mheap_->inuse;
	st->heap_released = mheap_->released;
	unlock(&mheap_->lock);
	st->heap_idle = st->heap_sys - st->heap_inuse;
	st->next_gc = __atomic_load_n(&next_gc, __ATOMIC_RELAXED);
	st->last_gc_unix_ns = __atomic_load_n(&last_gc_unix, __ATOMIC_RELAXED);
	st->pause_total_ns = __atomic_load_n(&pause_total, __ATOMIC_RELAXED);
	n = __atomic_load_n(&num_gc, __ATOMIC_ACQUIRE);
	st->num_gc = n;
	st->num_forced_gc = __atomic_load_n(&num_forced_gc, __ATOMIC_RELAXED);
	for (int i = 0; i < 256; i++)
		st->pause_ns[i] = __atomic_load_n(&pause_ring[i],
						  __ATOMIC_RELAXED);
}

// SPDX-License-Identifier: MIT
/*
 * stack.c - goroutine stacks: arenas, guards, overflow detection.
 *
 * Goals: a million parked goroutines in a process whose vm.max_map_count
 * is 65530, about one committed page each, and a stack overflow reported
 * as "goroutine N stack overflow", never silent corruption.
 *
 * Layout.  Default-size stacks are slots carved out of arenas: one
 * anonymous MAP_NORESERVE mapping of STACK_ARENA_SLOTS slots (~1 GiB of
 * address space, committed lazily by page faults), so a million stacks
 * are ~250 mappings, not a million.  A slot is, from low to high address:
 *
 *	[ guard, STACK_GUARD bytes ][ usable stack ... ][ struct g ]
 *
 * struct g sits at the top of its own stack: the goroutine's first frames
 * share its page, so a parked goroutine with shallow frames costs one
 * resident page in all (no separate G allocation).  Slots never return
 * to the arena: a dead G keeps its stack and goes to a free list
 * (proc.c's gfput/gfget, as Go's); Gs pushed from a P's cache to the
 * global list get their stack below the top page released with
 * MADV_DONTNEED, so memory a deep goroutine once used goes back to the
 * kernel while the address space stays reserved.  Stacks of other sizes
 * (goro_attr.stack_size above the default) get a mapping each and the
 * same layout; smaller requests take a default slot, since address space
 * costs nothing until touched.  Each arena ends with a byte per slot
 * (g->stackmark): the collector's note that it read the stack of a
 * parked goroutine that has not run since (mgc.c, "Parked stacks"),
 * kept apart from the slots so that the pause reads the notes of a
 * hundred thousand stacks in 25 pages rather than a page each; a big
 * stack's note is in its g (g->bigmark), read as the big list is.
 *
 * Guards.  A PROT_NONE page per stack would split the arena's mapping
 * into two VMAs per stack (the kernel tracks protection per VMA), and a
 * million stacks would need two million of them.  So:
 *
 *  1. Linux >= 6.13 has MADV_GUARD_INSTALL: guard regions installed in
 *     the page tables, inside one VMA.  Probed once; when it works, every
 *     stack gets a real guard at no VMA cost.
 *  2. Otherwise guards are mprotect(PROT_NONE), which costs two VMAs per
 *     stack; they are installed while a budget of a quarter of
 *     vm.max_map_count lasts (about 8 000 stacks at the default), which
 *     covers every program that does not keep tens of thousands of
 *     goroutines alive.
 *  3. Stacks beyond the budget have no guard; their lowest 64 bytes must
 *     stay zero (a never-touched page reads as zero without being
 *     committed, so the check costs no memory), and the scheduler checks
 *     them every time such a goroutine switches away.  An overflow is
 *     then caught late, possibly after it wrote into the slot below, so
 *     this is a last resort that reports and exits rather than running on
 *     with a corrupt neighbour; GORODEBUG=stackguard=0 forces it for
 *     testing.
 *
 * A guard hit is a SIGSEGV whose address lies in the running goroutine's
 * guard (or just below its stack: a frame larger than the guard can step
 * over it, which -fstack-clash-protection prevents); the handler runs on
 * the M's alternate signal stack, since the goroutine's own is exhausted,
 * and prints "fatal error: goroutine N stack overflow" with tracebacks.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL	102
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#define PAGE_SIZE_		4096UL
#define STACK_DEFAULT		(256UL << 10)
#define STACK_MIN		(16UL << 10)
#define STACK_GUARD		(16UL << 10)
#define G_SIZE			((sizeof(struct g) + 63) & ~63UL)
#define STACK_SLOT		(STACK_GUARD + STACK_DEFAULT)
#define CANARY_BYTES		64
#define SIGSTACK_SIZE		(64UL << 10)

static struct rtlock stacklock;
static uintptr_t arena_next, arena_end;	/* bump allocation, stacklock */

/*
 * Every arena's base, in order, and the number of slots handed out: the
 * collector walks the Gs as slots (stack_slot_g), by index, rather than
 * through the all-G list, whose every step is a dependent miss on a page
 * of its own.  Written under stacklock, read without it: a base is
 * stored before the count that covers it is released.  Arenas and their
 * slots are never given back.  The table is reserved, not committed:
 * 64 Ki arenas are some 70 TiB of stacks.
 */
#define MAX_STACK_ARENAS	65536
static uintptr_t *stack_arenas;
static size_t stack_nslots_pub;	/* slots handed out (atomic) */
static struct g *bigstacks;		/* the other stacks (stacklink) */
static int guard_mode;			/* 0 none, 1 madvise, 2 mprotect */
static long guard_budget;		/* mprotect guards left */
static bool guard_probed;
static struct sigaction old_segv;

/* G_FLAG_NOGUARD (runtime.h): this stack got no guard, the canary only */

static long read_max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
	long v = 65530;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

/* Guard [lo, lo + STACK_GUARD); false if the stack stays unguarded. */
static bool guard_install(uintptr_t lo)
{
	if (!guard_probed) {
		guard_probed = true;
		guard_mode = 0;
		if (debug.stackguard) {
			if (!madvise((void *)lo, STACK_GUARD, MADV_GUARD_INSTALL))
				guard_mode = 1;
			else
				guard_mode = 2;
			guard_budget = read_max_map_count() / 4;
		}
		if (guard_mode == 1)
			return true;
	}
	if (guard_mode == 1)
		return !madvise((void *)lo, STACK_GUARD, MADV_GUARD_INSTALL);
	if (guard_mode == 2 && guard_budget > 0) {
		if (mprotect((void *)lo, STACK_GUARD, PROT_NONE))
			return false;
		guard_budget--;
		return true;
	}
	return false;
}

#define ARENA_SLOTS_LEN		(STACK_SLOT * STACK_ARENA_SLOTS)
#define ARENA_MARKS_LEN		STACK_ARENA_SLOTS

static uintptr_t arena_grow(void)
{
	size_t len = ARENA_SLOTS_LEN + ARENA_MARKS_LEN;
	size_t narenas = stack_nslots_pub / STACK_ARENA_SLOTS;
	void *p;

	if (!stack_arenas) {
		p = mmap(NULL, MAX_STACK_ARENAS * sizeof(*stack_arenas),
			 PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return 0;
		stack_arenas = p;
	}
	if (narenas >= MAX_STACK_ARENAS)
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	stack_arenas[narenas] = (uintptr_t)p;
	/* A huge page would commit 2 MiB for a stack's one page. */
	madvise(p, len, MADV_NOHUGEPAGE);
	arena_next = (uintptr_t)p;
	arena_end = arena_next + ARENA_SLOTS_LEN;
	return arena_next;
}

/* A new G on a new stack of at least size bytes; NULL when out of memory. */
struct g *stackalloc_g(size_t size)
{
	uintptr_t base;
	size_t map, slot = 0;
	struct g *gp;
	bool guarded;

	if (size <= STACK_DEFAULT) {
		map = STACK_SLOT;
		lock(&stacklock);
		if (arena_next == arena_end && !arena_grow()) {
			unlock(&stacklock);
			return NULL;
		}
		base = arena_next;
		arena_next += STACK_SLOT;
		slot = stack_nslots_pub;
		/* the slot reads as a G_IDLE g until it is made below */
		__atomic_store_n(&stack_nslots_pub, stack_nslots_pub + 1,
				 __ATOMIC_RELEASE);
		guarded = guard_install(base);
		unlock(&stacklock);
	} else {
		void *p;

		map = STACK_GUARD + ((size + G_SIZE + PAGE_SIZE_ - 1) &
				     ~(PAGE_SIZE_ - 1));
		p = mmap(NULL, map, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		madvise(p, map, MADV_NOHUGEPAGE);
		base = (uintptr_t)p;
		lock(&stacklock);
		guarded = guard_install(base);
		unlock(&stacklock);
	}
	gp = (struct g *)(base + map - G_SIZE);
	memset(gp, 0, sizeof(*gp));
	gp->guard_lo = base;
	gp->stack_lo = base + STACK_GUARD;
	gp->stack_hi = (uintptr_t)gp;
	gp->stack_map = map;
	gp->magic = G_MAGIC;
	if (map != STACK_SLOT)
		gp->flags |= G_FLAG_BIGSTACK;
	if (!guarded)
		gp->flags |= G_FLAG_NOGUARD;
	gp->stackmark = map == STACK_SLOT ? stack_slot_mark(slot)
					  : &gp->bigmark;
	gp->atomicstatus = G_DEAD;
	if (map != STACK_SLOT) {
		lock(&stacklock);
		gp->stacklink = bigstacks;
		__atomic_store_n(&bigstacks, gp, __ATOMIC_RELEASE);
		unlock(&stacklock);
	}
	return gp;
}

size_t stack_nslots(void)
{
	return __atomic_load_n(&stack_nslots_pub, __ATOMIC_ACQUIRE);
}

/* The g of slot i < stack_nslots(); G_IDLE while it is being made. */
struct g *stack_slot_g(size_t i)
{
	uintptr_t base = __atomic_load_n(&stack_arenas[i / STACK_ARENA_SLOTS],
					 __ATOMIC_RELAXED);

	return (struct g *)(base + (i % STACK_ARENA_SLOTS + 1) * STACK_SLOT -
			    G_SIZE);
}

/* Slot i's mark byte (i < stack_nslots()). */
uint8_t *stack_slot_mark(size_t i)
{
	uintptr_t base = __atomic_load_n(&stack_arenas[i / STACK_ARENA_SLOTS],
					 __ATOMIC_RELAXED);

	return (uint8_t *)(base + ARENA_SLOTS_LEN) + i % STACK_ARENA_SLOTS;
}

/* Every stack's mark byte to v: the slots' arena by arena, then the
 * big stacks' (a g made after this holds 0 until the next fill). */
void stack_marks_fill(uint8_t v)
{
	size_t n = stack_nslots();

	for (struct g *gp = stack_big_first(); gp;
	     gp = __atomic_load_n(&gp->stacklink, __ATOMIC_ACQUIRE))
		__atomic_store_n(&gp->bigmark, v, __ATOMIC_RELAXED);

	for (size_t i = 0; i < n; i += STACK_ARENA_SLOTS) {
		uint8_t *w = stack_slot_mark(i);
		size_t k = n - i < STACK_ARENA_SLOTS ? n - i :
						       STACK_ARENA_SLOTS;

		for (size_t j = 0; j < k; j++)
			__atomic_store_n(&w[j], v, __ATOMIC_RELAXED);
	}
}

/* The Gs whose stacks are mappings of their own (larger than default). */
struct g *stack_big_first(void)
{
	return __atomic_load_n(&bigstacks, __ATOMIC_ACQUIRE);
}

/*
 * Give back the pages of gp's (dead) stack below the page holding g.
 * Most goroutines never leave that page, and a madvise per dead G is
 * most of the cost of a spawn: look at the top word of the page below
 * first.  Frames are contiguous (-fstack-clash-protection probes every
 * page), so a goroutine that went deeper wrote there - a return address
 * or a saved frame pointer, almost surely non-zero.  An untouched page
 * reads as zero through the shared zero page, costing no memory; a deep
 * stack that happens to hold a zero there keeps its pages until the
 * next deep goroutine on it: memory, never correctness.
 */
__attribute__((no_sanitize_address))
static uint64_t peek_stack_word(uintptr_t addr)
{
	return __atomic_load_n((uint64_t *)addr, __ATOMIC_RELAXED);
}

void stackfree_unused(struct g *gp)
{
	uintptr_t top = gp->stack_hi & ~(PAGE_SIZE_ - 1);

	if (top <= gp->stack_lo)
		return;
	if (!peek_stack_word(top - sizeof(uint64_t)))
		return;
	madvise((void *)gp->stack_lo, top - gp->stack_lo, MADV_DONTNEED);
}

/* Before a (re)used stack runs a new goroutine. */
void stack_reset(struct g *gp)
{
#if defined(__SANITIZE_ADDRESS__)
	/* Frames of the previous goroutine never returned: clear their
	 * redzones' poison. */
	__asan_unpoison_memory_region((void *)gp->stack_lo,
				      gp->stack_hi - gp->stack_lo);
#endif
	(void)gp;
}

/* The canary check of an unguarded stack: its lowest bytes are zero. */
bool stack_canary_dead(struct g *gp)
{
	const uint64_t *c = (const uint64_t *)gp->stack_lo;
	uint64_t acc = 0;

	for (size_t i = 0; i < CANARY_BYTES / 8; i++)
		acc |= c[i];
	return acc != 0;
}

static void segv_handler(int sig, siginfo_t *si, void *uctx)
{
	struct g *gp = getg();
	uintptr_t addr = (uintptr_t)si->si_addr;
	ucontext_t *uc = uctx;

	if (gp && !(gp->flags & G_FLAG_G0) && gp->magic == G_MAGIC &&
	    addr >= gp->guard_lo - (64UL << 10) &&
	    addr < gp->stack_lo + PAGE_SIZE_) {
		print_str("runtime: goroutine stack exceeds ");
		print_u64(gp->stack_hi - gp->stack_lo);
		print_str("-byte limit\nruntime: sp=");
		print_hex(uc->uc_mcontext.gregs[REG_RSP]);
		print_str(" stack=[");
		print_hex(gp->stack_lo);
		print_str(", ");
		print_hex(gp->stack_hi);
		print_str("]\nfatal error: goroutine ");
		print_u64(gp->goid);
		print_str(" stack overflow\n\n");
		traceback_ctx(gp, uc->uc_mcontext.gregs[REG_RBP],
			      uc->uc_mcontext.gregs[REG_RIP]);
		tracebackothers(gp);
		fatal_exit();
	}
	if (old_segv.sa_handler == SIG_DFL || old_segv.sa_handler == SIG_IGN) {
		print_str("panic: runtime error: invalid memory address or "
			  "nil pointer dereference\n[signal ");
		print_str(sig == SIGBUS ? "SIGBUS: bus error" :
			  "SIGSEGV: segmentation violation");
		print_str(" addr=");
		print_hex(addr);
		print_str(" pc=");
		print_hex(uc->uc_mcontext.gregs[REG_RIP]);
		print_str("]\n\n");
		tracebackothers(NULL);
		fatal_exit();
	}
	/* Not ours: let the previous handler (ASan's...) see the fault
	 * again when the instruction restarts. */
	sigaction(sig, &old_segv, NULL);
}

/* An alternate signal stack for the calling thread (M). */
int stack_sigstack(struct m *mp)
{
	stack_t ss = { 0 };
	void *p = mmap(NULL, SIGSTACK_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	ss.ss_sp = p;
	ss.ss_size = SIGSTACK_SIZE;
	if (sigaltstack(&ss, NULL)) {
		munmap(p, SIGSTACK_SIZE);
		return -errno;
	}
	mp->sigstack = p;
	return 0;
}

int stackinit(void)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old_segv))
		return -errno;
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * runtime.h - libgoro's internal header: the G/M/P objects, the scheduler
 * entry points that blocking primitives use, runtime locks and notes,
 * timers, and the fatal paths.
 *
 * Who owns what (Go's runtime2.go, in C):
 *
 *  - struct g is a goroutine.  It lives at the top of its own stack
 *    (stack.c), so a parked goroutine costs one committed page when its
 *    frames fit beside it.  Its status moves between the G_* states below
 *    only through casgstatus(); a G's scheduling fields belong to the M
 *    that runs it (G_RUNNING) or to whoever holds the queue it is on.
 *  - struct m is an OS thread.  Its g0 is the scheduler context: the
 *    thread's own stack, where schedule() loops.  Goroutines run on their
 *    own stacks and return to g0 for every scheduling decision, as Go's
 *    mcall does, so that the decision never runs on a stack that may be
 *    handed to another M at the same moment.
 *  - struct p is a processor: the right to run goroutines, with a local
 *    run queue, a free-G cache and a timer heap.  GOMAXPROCS Ps exist;
 *    an M runs Go code only while it holds a P.
 *  - struct schedt (one, `sched`) holds the global run queue, idle M and
 *    P lists and the free-G list, under sched.lock.
 *
 * Lock order: sched.lock, then pp->timerslock, then allglock.  None of
 * them is held across a context switch; blocking primitives hold their
 * own locks only up to the unlockf of gopark().
 *
 * RUNTIME-CONTRACT.md fixes the first block of declarations below: the
 * sync and channel code is written against them.
 */
#ifndef GORO_RUNTIME_H
#define GORO_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/arch.h"

#define GORO_API	__attribute__((visibility("default")))

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/* ---------------------------------------------------------------------
 * The contract with sync/chan code (RUNTIME-CONTRACT.md)
 * ------------------------------------------------------------------- */

struct g;

/*
 * The running goroutine (the M's g0 when called on the scheduler) and
 * M, from thread-local storage (proc.c).  A goroutine may resume on
 * another thread after any call that can switch, and compilers take the
 * thread pointer as constant within a function: so the load is asm
 * volatile with a memory clobber, never cached or moved across a call.
 * gottpoff works in the executable (relaxed by the linker) and in
 * libgoro.so alike.
 */
#define GORO_TLS_LOAD(sym, out)						\
	asm volatile("movq " #sym "@gottpoff(%%rip), %0\n\t"		\
		     "movq %%fs:(%0), %0" : "=r"(out) : : "memory")

static inline struct g *getg(void)
{
	struct g *gp;

	GORO_TLS_LOAD(goro_tls_g, gp);
	return gp;
}

enum waitreason {
	WAIT_ZERO = 0,
	WAIT_CHAN_RECEIVE, WAIT_CHAN_SEND, WAIT_CHAN_RECEIVE_NIL,
	WAIT_CHAN_SEND_NIL, WAIT_SELECT, WAIT_SELECT_NO_CASES,
	WAIT_SYNC_MUTEX_LOCK, WAIT_SYNC_RWMUTEX_RLOCK, WAIT_SYNC_RWMUTEX_LOCK,
	WAIT_SEMACQUIRE, WAIT_SYNC_COND_WAIT, WAIT_SYNC_WAITGROUP_WAIT,
	WAIT_SLEEP, WAIT_TIMER_GOROUTINE_IDLE, WAIT_IO_WAIT, WAIT_GC,
	WAIT_PREEMPTED, WAIT_FORCE_GC_IDLE, WAIT_FINALIZER_WAIT,
	WAIT_REASON_MAX,
};
const char *waitreason_string(enum waitreason r);

/*
 * gopark: park the current goroutine.  On g0, the scheduler marks it
 * G_WAITING and calls unlockf(gp, arg); if that returns false the
 * goroutine runs again at once.  unlockf may be NULL.  A waker may
 * goready() the goroutine only after unlockf ran (i.e. under the lock
 * unlockf releases), never before.
 */
void gopark(bool (*unlockf)(struct g *gp, void *arg), void *arg,
	    enum waitreason reason);

/* goready: make gp (G_WAITING) runnable in the current P's runnext and
 * wake an idle P if there is one.  Callable from goroutines and g0. */
void goready(struct g *gp);
/* goready_par: the same, for a waker that runs on (a buffered channel's
 * producer or consumer): an idle P may take gp from runnext at once. */
void goready_par(struct g *gp);
/*
 * goready in two halves around the unlock of the lock the caller holds
 * (a channel's, as its peer is dequeued): goready_locked puts gp in
 * runnext, wakep_after_unlock looks for an idle P.  The unlock between
 * them is a locked exchange, a full fence on x86: it orders the store
 * before the load as wakep's fence would, one locked instruction fewer
 * per channel hand-off.  gp may run on another P before the unlock: it
 * must wait for that lock before it touches what the lock guards.  A
 * full ring spills to the global queue (runqputslow): sched.lock nests
 * inside the caller's lock, and no channel lock is taken under it.
 */
void goready_locked(struct g *gp);
void wakep_after_unlock(void);

/* goyield: current goroutine to the local run queue's tail, reschedule. */
void goyield(void);
/* goro_syscall_enter that hands the P off at once (a long call). */
void entersyscallblock(void);

/* CLOCK_MONOTONIC nanoseconds (vDSO). */
int64_t nanotime(void);

/* Runtime locks: spin, then futex.  Zero value unlocked.  Never park the
 * goroutine; never hold one across gopark() (except as its unlockf's). */
struct rtlock {
	uint32_t key;
};
static inline void lock(struct rtlock *l);	/* below: inline */
static inline void unlock(struct rtlock *l);

/* Fatal paths: print without allocating, all goroutines, exit 2. */
__attribute__((noreturn)) void throw(const char *msg);
__attribute__((noreturn)) void gopanic(const char *msg);

bool sync_can_spin(int iter);
void sync_do_spin(void);

uint32_t fastrand(void);
uint32_t fastrandn(uint32_t n);

/* ---------------------------------------------------------------------
 * Timers (time.c): per-P 4-ary heaps, run by the scheduler.
 *
 * A timer is owned by its user (embed it anywhere that outlives it).
 * addtimer queues it on the current P; when `when` passes, some M runs
 * f(arg, seq, delta) on g0 with no runtime lock held (delta: how late,
 * in ns).  f must not block; it may goready() and addtimer()/modtimer().
 * A periodic timer (period > 0) is re-queued at when + period (skipping
 * missed periods) before f runs.  deltimer/modtimer may be called from
 * any goroutine or g0, concurrently with the timer firing: deltimer
 * returns true only if it removed the timer before f was called; f may
 * be running when it returns false.
 * ------------------------------------------------------------------- */
struct p;

struct timer {
	struct p *pp;		/* heap holding it; NULL when not queued */
	int32_t idx;		/* index in pp's heap, under its timerslock */
	int64_t when;		/* CLOCK_MONOTONIC ns */
	int64_t period;		/* 0: one-shot */
	void (*f)(void *arg, uintptr_t seq, int64_t delta);
	void *arg;
	uintptr_t seq;
	uint32_t running;	/* atomic: f is being called (checktimers) */
};

/* Queue t (not queued now) on the current P; t->when/period/f/arg/seq
 * set by the caller.  Wakes an idle M if t is the earliest timer. */
void addtimer(struct timer *t);
/* Dequeue t; true if it was queued (so f will not run for this when). */
bool deltimer(struct timer *t);
/* deltimer, then wait until a call of f that already started returns:
 * afterwards t may be freed.  Never call it from t's own f. */
bool deltimer_sync(struct timer *t);
/* Change t's fields, queueing it (again) at when; true if it was queued. */
bool modtimer(struct timer *t, int64_t when, int64_t period,
	      void (*f)(void *arg, uintptr_t seq, int64_t delta),
	      void *arg, uintptr_t seq);
/* modtimer keeping f/arg/seq/period. */
bool resettimer(struct timer *t, int64_t when);

/* ---------------------------------------------------------------------
 * Goroutine, machine and processor (Go's runtime2.go)
 * ------------------------------------------------------------------- */

/* G states: Go's _Gidle ... _Gdead, same meaning. */
enum gstatus {
	G_IDLE = 0,		/* just allocated, not initialised */
	G_RUNNABLE,		/* on a run queue, not executing */
	G_RUNNING,		/* executing; owns its stack, has an M and P */
	G_SYSCALL,		/* in a call the runtime was told about */
	G_WAITING,		/* parked (gopark); on some wait queue */
	G_DEAD,			/* exited, on a free list or unused */
};

/* P states: Go's _Pidle ... _Pdead. */
enum pstatus {
	P_IDLE = 0,
	P_RUNNING,
	P_SYSCALL,
	P_GCSTOP,		/* stopped for stop-the-world */
	P_DEAD,			/* beyond GOMAXPROCS */
};

#define RUNQ_SIZE	256	/* per-P ring; a power of two */
#define MAXPROCS	256	/* upper bound of GOMAXPROCS */

/* A one-shot wake-up: 0 unwoken, 1 woken (Go's note, lock_futex.go). */
struct note {
	uint32_t key;
};
void noteclear(struct note *n);
void notewakeup(struct note *n);
void notesleep(struct note *n);
/* Sleep until woken or the absolute CLOCK_MONOTONIC deadline (-1:
 * none); true if woken. */
bool notetsleep(struct note *n, int64_t deadline);

/* What the goroutine asked g0 to do with it when it switched to g0. */
enum gaction {
	GA_NONE = 0,
	GA_PARK,		/* gopark */
	GA_GOSCHED,		/* goro_yield: global run queue */
	GA_GOYIELD,		/* goyield: local run queue tail */
	GA_GOEXIT,		/* goroutine finished */
	GA_EXITSYSCALL,		/* goro_syscall_exit found no P: queue it */
	GA_GOSCHED_LOCKED,	/* GA_GOSCHED, sched.lock already held */
};

struct g {
	struct gobuf sched;	/* saved context while not running */
	uintptr_t stack_lo;	/* lowest usable byte */
	uintptr_t stack_hi;	/* one past the highest usable byte */
	uintptr_t guard_lo;	/* start of the guard below stack_lo */
	size_t stack_map;	/* bytes of the whole slot (guard+stack+g) */
	uint32_t atomicstatus;	/* enum gstatus; casgstatus() only */
	uint32_t flags;		/* G_FLAG_* */
	uint64_t goid;
	struct m *m;		/* M running it, NULL otherwise; atomic:
				 * the collector reads it while gp
				 * leaves a syscall (scan_blockregs) */
	struct g *schedlink;	/* run queue / free list link */
	struct g *alllink;	/* the all-G list; written once */
	struct g *stacklink;	/* stack.c's big-stack list; written once */
	enum waitreason waitreason;
	uint8_t bigmark;	/* a big stack's mark byte (stackmark) */
	int64_t waitsince;
	void (*startfn)(void *arg);
	void *startarg;
	uint64_t gopc;		/* return address of the goro_spawn call */
	struct timer sleeptimer; /* goro_sleep */
	void *asan_fake_stack;	/* ASan fiber state */
	void *tsan_fiber;	/* TSan fiber */
	uint32_t preempt;	/* atomic: yield at the next safe point */
	uint32_t readypar;	/* atomic: readied by a waker that runs on */
	uintptr_t syscallregs[5]; /* mgc.c: rbx, r12-r15 at goro_syscall_enter */
	uint8_t *stackmark;	/* stack.c: the slot's byte in its arena's
				 * table (mgc.c's stack marks), or bigmark */
	uintptr_t gcscan_sp;	/* mgc.c, invariants=1: the stack read */
	uint64_t gcscan_sum;	/* parked, from this sp, and its words' sum */
	uint64_t magic;		/* G_MAGIC: g_is_valid() */
};

static inline uint64_t g_id(struct g *gp)
{
	return gp->goid;
}

#define G_FLAG_BIGSTACK	0x1	/* stack not from the default-size arena */
#define G_FLAG_G0	0x2	/* an M's scheduler context */
#define G_FLAG_MAIN	0x4	/* the main goroutine */
#define G_MAGIC		0x676f726f67ULL	/* "gorog" */

struct goro_mslot;

struct m {
	struct g g0;		/* scheduler context (thread stack) */
	struct g *curg;		/* goroutine running, or NULL */
	struct p *p;		/* attached P, NULL when idle */
	struct p *nextp;	/* P handed over by startm() */
	int64_t id;
	bool spinning;		/* looking for work, counted in nmspinning */
	bool exiting;		/* runtime shut down: park for good */
	enum gaction action;	/* set by the goroutine before mcall */
	bool (*waitunlockf)(struct g *gp, void *arg);
	void *waitlock;
	struct note park;	/* stopm() sleeps here */
	struct m *schedlink;	/* sched.midle link */
	struct m *alllink;	/* allm list */
	struct hchan *chanop;	/* ring operation in progress (chan.c) */
	uint64_t rand;		/* fastrand state */
	int tid;
	uintptr_t g0_lo, g0_hi;	/* thread stack bounds */
	void *sigstack;		/* sigaltstack for stack overflows */
	/* kmod (park.c): slot in /dev/goro's shared area, or -1 */
	int slot;
	struct goro_mslot *mslot;
	uint32_t unpark_pending; /* kmod: an unpark was sent, not consumed */
	int32_t locks;		/* runtime locks held (this thread only) */
	struct p *oldp;		/* P left in P_SYSCALL by goro_syscall_enter */
	uint32_t sigmask_gen;	/* signal.c: notify mask applied */
	/* goro.ko sysmon hand-off (proc.c): the last hand-off (nhandoffs)
	 * settled, under sched.lock; a P waited for after a LOST */
	uint32_t lost_handled;
	struct m *pwaitlink;	/* sched.pwait link */
	uint32_t pwait;		/* futex: 1 when nextp was given */
	/* proc.c switch_direct: the goroutine that switched straight to
	 * the current one, and what it asked for; finish_prev acts on it
	 * on the incoming goroutine's stack, once its registers are saved */
	struct g *prev;
	enum gaction prevaction;
};

/* A timer heap entry: when is copied in so that sifting compares
 * without touching the timers themselves (each may sit on its own
 * goroutine's stack page), as Go 1.23's timerWhen does. */
struct timerwhen {
	int64_t when;
	struct timer *t;
};

struct p {
	int32_t id;
	uint32_t status;	/* enum pstatus */
	struct p *link;		/* sched.pidle */
	uint32_t schedtick;	/* atomic: incremented on every schedule */
	uint32_t syscalltick;	/* atomic: every goro_syscall_enter/retake */
	struct m *m;		/* M holding it; NULL when idle */

	/* Lock-free ring: owner puts/gets at tail/head, thieves CAS head. */
	uint32_t runqhead;
	uint32_t runqtail;
	struct g *runq[RUNQ_SIZE];
	struct g *runnext;	/* run next, inheriting the time slice */

	struct g *gfree;	/* dead Gs with default stacks */
	int32_t gfreecnt;

	/* Goroutine ids in batches (Go's goidcache) and the live count as
	 * a per-P delta that gcount() sums: a spawn storm on two Ps would
	 * otherwise bounce sched.goidgen's line and a global counter's on
	 * every create and exit.  Only the owner writes them. */
	uint64_t goidcache;
	uint64_t goidcacheend;
	int64_t gdelta;		/* atomic: Gs created minus exited here */

	struct rtlock timerslock;
	struct timerwhen *timers; /* 4-ary min-heap on when */
	int32_t ntimers;
	int32_t timerscap;
	int64_t timer0when;	/* atomic: earliest when, 0 if none */

	struct mcache *mcache;	/* malloc.c: the P's allocation cache */
};

struct gqueue {
	struct g *head;
	struct g *tail;
};

static inline void gqueue_push(struct gqueue *q, struct g *gp)
{
	gp->schedlink = NULL;
	if (q->tail)
		q->tail->schedlink = gp;
	else
		q->head = gp;
	q->tail = gp;
}

struct schedt {
	struct rtlock lock;
	uint64_t goidgen;	/* atomic */
	struct m *midle;	/* idle Ms waiting on their park note */
	int32_t nmidle;
	int64_t mnext;		/* Ms created so far; next M id */
	int32_t mcount;
	struct p *pidle;
	int32_t npidle;		/* atomic */
	int32_t nmspinning;	/* atomic */
	/* global run queue: a ring of runqcap (a power of two, grown by
	 * doubling) pointers from runqhead, runqsize long (runq.c) */
	struct g **runq;
	uint32_t runqhead;
	uint32_t runqcap;
	int32_t runqsize;
	struct g *gfree;	/* global free Gs (default stacks) */
	int32_t ngfree;
	struct g *gfreebig;	/* free Gs with other stack sizes */
	/* stop the world */
	uint32_t gcwaiting;	/* atomic */
	int32_t stopwait;
	struct note stopnote;
	/* the one M sleeping until the earliest timer (Go's netpoller M) */
	struct m *pollm;
	int64_t polluntil;	/* atomic: its deadline */
	/* lifetime */
	uint32_t exiting;	/* atomic: goro_main returned */
	struct note mainnote;	/* main goroutine finished */
	int ngsys;		/* runtime goroutines (none today) */
	struct m *pwait;	/* Ms that lost their P, served first */
};

extern struct schedt sched;
extern struct p *allp[MAXPROCS];
extern int32_t gomaxprocs;	/* atomic */
extern struct m *allm;

/* Scheduler internals shared between files (proc.c, runq.c). */
static inline struct m *getm(void)
{
	struct m *mp;

	GORO_TLS_LOAD(goro_tls_m, mp);
	return mp;
}

/*
 * m->locks counts the runtime locks mp holds (park.c: lock) and the
 * sections acquirem() marks.  Only mp writes it, so no read-modify-write:
 * a plain store, atomic because mretake reads another M's count (goro.ko
 * hand-off), which it does only once that M has blocked in the kernel -
 * its context switch orders the store before the read.  The signal
 * fences keep the store on its side for this thread's own preemption
 * signal handler.
 */
static inline void m_locks_add(struct m *mp, int d)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&mp->locks,
			 __atomic_load_n(&mp->locks, __ATOMIC_RELAXED) + d,
			 __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/*
 * Go's acquirem/releasem, for runtime code that runs on a goroutine's
 * stack with its P's state in hand and no lock (the P's free Gs, its
 * mcache): it keeps the P even if it sleeps in the kernel meanwhile (a
 * madvise, a page fault waiting for mmap_lock).  goro.ko's hand-off
 * leaves an M with m->locks alone (mretake, handoff_lost), and so does
 * preemption; without this, the kernel sysmon gave such an M's P to
 * another M mid-section, and both used it (one dead G in two Ps' free
 * lists: "newproc1: new g is not G_DEAD").  No switch inside.
 */
static inline struct m *acquirem(void)
{
	struct m *mp = getm();

	if (mp)
		m_locks_add(mp, 1);
	return mp;
}

static inline void releasem(struct m *mp)
{
	if (mp)
		m_locks_add(mp, -1);
}

/*
 * Runtime locks (park.c has the slow paths): 0 unlocked, 1 locked, 2
 * locked with sleepers.  The uncontended lock and unlock are one
 * exchange each, inline: a channel operation takes one of each.  Both
 * count in m->locks: the preemption signal handler never switches a
 * goroutine away while it holds one (its M would then hold a lock for
 * another goroutine).
 */
enum { LOCK_UNLOCKED, LOCK_LOCKED, LOCK_SLEEPING };
void lock_slow(struct rtlock *l, uint32_t v);
void unlock_slow(struct rtlock *l, uint32_t v);

static inline void lock(struct rtlock *l)
{
	struct m *mp = getm();
	uint32_t v;

	if (mp)
		m_locks_add(mp, 1);
	v = __atomic_exchange_n(&l->key, LOCK_LOCKED, __ATOMIC_ACQUIRE);
	if (unlikely(v != LOCK_UNLOCKED))
		lock_slow(l, v);
}

static inline void unlock(struct rtlock *l)
{
	uint32_t v = __atomic_exchange_n(&l->key, LOCK_UNLOCKED,
					 __ATOMIC_RELEASE);
	struct m *mp;

	if (unlikely(v != LOCK_LOCKED))
		unlock_slow(l, v);
	mp = getm();
	if (mp)
		m_locks_add(mp, -1);
}
/*
 * A goroutine about to run again, or made runnable by a waker that may
 * have written into its parked frames (a channel's element, select's
 * case): its stack is no longer what the collector read this cycle
 * (mgc.c, "Parked stacks").  The collector marks a slot's byte before
 * its concurrent stack scan and, after a membarrier, trusts it to be
 * cleared here by every later transition, so no fence is needed on
 * this side; only the compiler must keep the load after the status
 * store.  Outside a mark the byte is stale and is cleared once.
 */
static inline void stackmark_clear(struct g *gp)
{
	uint8_t *w = gp->stackmark;

	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (w && __atomic_load_n(w, __ATOMIC_RELAXED))
		__atomic_store_n(w, 0, __ATOMIC_RELAXED);
}

/*
 * Each G status transition has one owner: the goroutine itself (running
 * -> waiting), its M (runnable -> running), the waker that dequeued it
 * (waiting -> runnable), and the collector never changes it (it stops
 * the world).  So a check and a release store do, without the locked
 * compare-and-swap Go needs for its concurrent stack scans; the check
 * still catches a transition from a state nobody should see.  Inline:
 * every switch makes two or three.
 */
__attribute__((noreturn, cold)) void badgstatus(struct g *gp, uint32_t cur,
						uint32_t old, uint32_t new);
static inline void casgstatus(struct g *gp, uint32_t old, uint32_t new)
{
	uint32_t cur = __atomic_load_n(&gp->atomicstatus, __ATOMIC_ACQUIRE);

	if (unlikely(cur != old))
		badgstatus(gp, cur, old, new);
	__atomic_store_n(&gp->atomicstatus, new, __ATOMIC_RELEASE);
	if (new == G_RUNNABLE || new == G_RUNNING)
		stackmark_clear(gp);
}
static inline uint32_t readgstatus(struct g *gp)
{
	return __atomic_load_n(&gp->atomicstatus, __ATOMIC_ACQUIRE);
}

/*
 * The owner's run-queue operations (runq.c has the design), inline on
 * the scheduling paths.  runqput: gp to pp's queue (pp owned by the
 * caller); next: into runnext, kicking the previous runnext to the
 * ring.  runqget: a G from pp's local queue (owner only); *inherit: it
 * was runnext.
 */
bool runqputslow(struct p *pp, struct g *gp, uint32_t head, uint32_t tail);

static inline void runqput(struct p *pp, struct g *gp, bool next)
{
	uint32_t head, tail;

	if (next) {
		struct g *old = __atomic_load_n(&pp->runnext, __ATOMIC_RELAXED);

		/*
		 * Only the owner makes runnext non-NULL, and thieves only
		 * CAS a non-NULL value to NULL: an empty runnext stays
		 * empty until this store, so it needs no locked operation
		 * (a channel ping-pong readies into an empty one at every
		 * hop; wakep's fence orders it before the look for an idle
		 * P).  A full one may be stolen meanwhile: exchange.
		 */
		if (likely(!old)) {
			__atomic_store_n(&pp->runnext, gp, __ATOMIC_RELEASE);
			return;
		}
		old = __atomic_exchange_n(&pp->runnext, gp, __ATOMIC_ACQ_REL);
		if (!old)
			return;
		gp = old;
	}
	for (;;) {
		head = __atomic_load_n(&pp->runqhead, __ATOMIC_ACQUIRE);
		tail = pp->runqtail;
		if (likely(tail - head < RUNQ_SIZE)) {
			__atomic_store_n(&pp->runq[tail % RUNQ_SIZE], gp,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&pp->runqtail, tail + 1,
					 __ATOMIC_RELEASE);
			return;
		}
		if (runqputslow(pp, gp, head, tail))
			return;
		/* a thief took some: the ring has room now */
	}
}

static inline struct g *runqget(struct p *pp, bool *inherit)
{
	struct g *next = __atomic_load_n(&pp->runnext, __ATOMIC_RELAXED);

	if (next && __atomic_compare_exchange_n(&pp->runnext, &next, NULL,
						false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
		*inherit = true;
		return next;
	}
	*inherit = false;
	for (;;) {
		uint32_t head = __atomic_load_n(&pp->runqhead, __ATOMIC_ACQUIRE);
		uint32_t tail = pp->runqtail;
		struct g *gp;

		if (tail == head)
			return NULL;
		gp = __atomic_load_n(&pp->runq[head % RUNQ_SIZE],
				     __ATOMIC_RELAXED);
		if (likely(__atomic_compare_exchange_n(&pp->runqhead, &head,
						       head + 1, false,
						       __ATOMIC_RELEASE,
						       __ATOMIC_RELAXED)))
			return gp;
	}
}

struct g *runqsteal(struct p *pp, struct p *p2, bool stealrunnext);
bool runqempty(struct p *pp);
uint32_t runqlen(struct p *pp);
void globrunqput(struct g *gp);
void globrunqputbatch(struct gqueue *q, int32_t n);
/* Make the waiting goroutines of q runnable (proc.c). */
void injectglist(struct gqueue *q);
/* Take a P whose M is in a syscall and hand it off (Go's retake):
 * false when the M took it back first. */
bool retake_syscallp(struct p *pp);
void globrunqputarray(struct g **batch, uint32_t n);
struct g *globrunqget(struct p *pp, int32_t max);
/*
 * A full fence: the stores before it are visible before the loads after
 * it (x86 lets a load pass an earlier store; release/acquire do not
 * stop that).  A locked add to the red zone, the kernel's smp_mb() on
 * x86_64: cheaper than mfence, which also waits for non-temporal stores.
 */
static inline void storeload_fence(void)
{
	asm volatile("lock addl $0, -4(%%rsp)" ::: "memory", "cc");
}

/*
 * Try to add one more P to run goroutines (proc.c's top comment): after
 * every goready and spawn, so the common "no idle P" answer is inline.
 * Dekker's pattern with findrunnable: the waker publishes the G, then
 * looks for an idle P; an M going idle publishes its P in the idle list,
 * then looks at every run queue once more.  Each side needs its store
 * before its load: without the fence the waker read npidle 0 while the
 * M missed the G (4% of the rounds of sched_stress's
 * spawned_runs_on_idle_p_while_parent_spins), and the G waited in
 * runnext until its P's goroutine stopped.  The idle side's locked
 * operations (sched.lock, nmspinning) order it already.
 */
void wakep_slow(void);
static inline void wakep(void)
{
	storeload_fence();
	if (__atomic_load_n(&sched.npidle, __ATOMIC_ACQUIRE))
		wakep_slow();
}
void wakenetpoller(int64_t when);
bool g_is_valid(struct g *gp);
bool p_is_valid(struct p *pp);

/* Timers on the scheduler's side (time.c). */
int64_t checktimers(struct p *pp, int64_t now, int64_t *polluntil, bool *ran);
/* The P's earliest timer, 0 if none, read without its lock. */
static inline int64_t nobarrier_timer0(struct p *pp)
{
	return __atomic_load_n(&pp->timer0when, __ATOMIC_ACQUIRE);
}
void movetimers(struct p *to, struct p *from);
bool timers_pending(void);

/* Stacks (stack.c). */
int stackinit(void);
struct g *stackalloc_g(size_t size);
void stackfree_unused(struct g *gp);
void stack_reset(struct g *gp);
int stack_sigstack(struct m *mp);
bool stack_canary_dead(struct g *gp);
#define STACK_ARENA_SLOTS	4096	/* default-size stacks per arena */
size_t stack_nslots(void);
struct g *stack_slot_g(size_t i);
uint8_t *stack_slot_mark(size_t i);
void stack_marks_fill(uint8_t v);
struct g *stack_big_first(void);
/* G_FLAG_NOGUARD: a stack with no guard page, whose overflow only its
 * canary can tell (stack.c); checked at every switch, so inline. */
#define G_FLAG_NOGUARD	0x100
static inline bool stack_overflowed(struct g *gp)
{
	return unlikely(gp->flags & G_FLAG_NOGUARD) && stack_canary_dead(gp);
}

/* M parking (park.c): /dev/goro when present, else futex. */
void mpark_init(void);
void mpark_register(struct m *mp);
void mpark_sleep(struct m *mp, int64_t deadline); /* until mpark_wake or deadline */
void mpark_wake(struct m *mp);
/* goro.ko NETPOLL: bind the poller's fd; park until mpark_wake, the
 * deadline or the fd readable (returns true for the last: poll now). */
int kmod_netpoll_bind(int fd);
bool mpark_can_netpoll(struct m *mp);
bool mpark_sleep_netpoll(struct m *mp, int64_t deadline);
extern bool kmod_netpoll;		/* the poller's fd is bound */
extern uint64_t kmod_netpoll_ioparks;	/* parks ended by I/O (tests) */
void mslot_update(struct m *mp, int status);
extern bool kmod_active;
extern bool kmod_sysmon;	/* goro.ko's sysmon preempts and hands off */
struct m *mslot_m(uint32_t slot);
const uint64_t *mslot_blockregs(struct m *mp, size_t *n);
void kmod_sysmon_enable(void);
void mretake(struct m *mp);
void spare_m(void);
void handoff_lost(struct m *mp);

/* Debug and fatal paths (debug.c). */
struct debugvars {
	int32_t schedtrace;	/* ms between SCHED lines, 0 off */
	int32_t scheddetail;
	int32_t kmod;		/* 1: use /dev/goro when present */
	int32_t invariants;	/* 1: check *_is_valid() on hot paths */
	int32_t stackguard;	/* 0 canary only, 1 guard pages (default) */
	int32_t asyncpreemptoff; /* 1: preemption signals only set flags */
	int32_t kmodsysmon;	/* 1: use goro.ko's sysmon when it has one */
	int32_t kmodnetpoll;	/* 1: idle Ms wait for I/O in M_PARK (NETPOLL) */
	int32_t timeslice;	/* us a G runs before the sysmon preempts it */
	int32_t gctrace;	/* 1: a line per collection (mgc.c) */
	int32_t gcstress;	/* N: collect every N goro_allocs (mgc.c) */
	int32_t handoffprobe;	/* us: sleep inside P sections (tests) */
	int32_t gcconc;		/* -1 (unset): concurrent mark with uffd-wp
				 * where it works, else stop-the-world; 0
				 * stop-the-world; 1 uffd-wp, else soft-dirty;
				 * 2 every page taken as written (tests); 3
				 * soft-dirty only (mgc.c) */
	int32_t gcblack;	/* 1: allocate black during a mark (mgc.c) */
	int32_t gcstackmarks;	/* 0: the pause reads every parked stack, as
				 * without membarrier (mgc.c; tests) */
};
extern struct debugvars debug;
void parsedebugvars(void);
void schedtrace(bool detailed);
void *schedtrace_thread(void *arg);
void tracebackothers(struct g *me);
void traceback_g(struct g *gp, bool running);
void traceback_ctx(struct g *gp, uintptr_t bp, uintptr_t pc);
void print_str(const char *s);
void print_u64(uint64_t v);
void print_hex(uint64_t v);
void print_flush(void);
__attribute__((noreturn)) void fatal_exit(void);
void install_signals(void);
uint64_t gcount(void);
/* Spawn a goroutine of the runtime's own, never to exit: not counted
 * by goro_num_goroutine. */
int spawn_system(void (*fn)(void *arg));
extern struct rtlock allglock;

/* Preemption (preempt.c, sysmon.c, signal.c). */
struct preemptstats {
	uint64_t signals;	/* preemption signals handled by Ms */
	uint64_t async;		/* goroutines preempted asynchronously */
	uint64_t deferred;	/* signals that found no safe point */
	uint64_t deferred_taken; /* deferred preemptions honoured later */
	uint64_t retakes;	/* Ps retaken from Ms in a syscall */
	uint64_t sysmon_preempts; /* preemption signals sent by the sysmon */
};
extern struct preemptstats preemptstats;
extern int preempt_signo;
void preempt_init(void);
int sighandler_install(int sig);
void gopreempt(void);
void preempt_check_slow(struct g *gp);
/* Honour a deferred preemption at a point where the caller may switch. */
static inline void preempt_check(void)
{
	struct g *gp = getg();

	if (gp && unlikely(__atomic_load_n(&gp->preempt, __ATOMIC_RELAXED)))
		preempt_check_slow(gp);
}
void stw_check_slow(void);
/* A stop-the-world is waiting: stop at this safe point instead of at
 * the preemption signal, which lands tens of microseconds later. */
static inline void stw_check(void)
{
	if (unlikely(__atomic_load_n(&sched.gcwaiting, __ATOMIC_RELAXED)))
		stw_check_slow();
}
void sysmon_start(void);
void handoffp(struct p *pp);
void preempt_p(struct p *pp);
extern uint32_t signal_gen;
void signal_sync_mask_slow(struct m *mp, uint32_t gen);
/* Unblock on this M the signals goro_signal_notify added since it last
 * looked: a load and a compare on every scheduling round. */
static inline void signal_sync_mask(struct m *mp)
{
	uint32_t gen = __atomic_load_n(&signal_gen, __ATOMIC_ACQUIRE);

	if (unlikely(mp->sigmask_gen != gen))
		signal_sync_mask_slow(mp, gen);
}
bool signal_forward(int sig);
/* Stop-the-world for the collector (proc.c; mgc.c serialises callers
 * with worldsema, as goro_set_maxprocs does): the caller is a goroutine
 * holding a P. */
void stoptheworld_gc(void);
void starttheworld_gc(void);

/*
 * Every G ever made, oldest first, linked through alllink.  Gs are never
 * freed and a G is appended (under allglock) by one release store to
 * the last G's alllink, written once: a reader needs no lock, not even
 * in a signal handler, and sees a prefix of the list that grows as it
 * walks.  Intrusive so that a parked goroutine costs no memory beyond
 * its stack page (a pointer array cost 8 bytes per G, and reallocating
 * it freed what lock-free readers were reading).
 */
extern struct g *allghead;

static inline struct g *allg_first(void)
{
	return __atomic_load_n(&allghead, __ATOMIC_ACQUIRE);
}

static inline struct g *allg_next(struct g *gp)
{
	return __atomic_load_n(&gp->alllink, __ATOMIC_ACQUIRE);
}

#define for_each_g(gp) for ((gp) = allg_first(); (gp); (gp) = allg_next(gp))

#endif /* GORO_RUNTIME_H */

// SPDX-License-Identifier: MIT
/*
 * proc.c - the G/M/P scheduler (Go's proc.go, in C).
 *
 * Model.  G is a goroutine, M an OS thread, P the right to run
 * goroutines (GOMAXPROCS of them).  An M runs goroutines only while it
 * holds a P; a P's run queue (runq.c) feeds its M, and an M whose P runs
 * dry steals half of another P's queue.  A goroutine that parks, yields
 * or exits saves its context and switches either to the M's g0 (its
 * thread stack: mcall), which finishes the job - marks it waiting and
 * calls the unlockf, queues it, or frees it - before it picks the next G
 * (schedule) and switches to it (execute); or, in the common case where
 * schedule would simply take the P's next local G, straight to that G
 * (switch_direct), which finishes the job for it first thing
 * (finish_prev).  Either way a goroutine's stack is never in use by two
 * threads: by the time a waker can see a G as G_WAITING, or a thief can
 * take it from a queue, its registers are saved.
 *
 * Spinning Ms (Go's design, proc.go "Worker thread parking/unparking").
 * The goal is to use all Ps when there is work without burning CPUs when
 * there is not.  An M is "spinning" when it has a P and looks for work
 * in other Ps' queues; at most half of the busy Ps' count spin
 * (nmspinning).  Whoever makes work ready (goready, goro_spawn, a timer)
 * calls wakep(), which starts one spinning M only if there is an idle P
 * and no spinning M already: that one M, if it finds work, stops
 * spinning and wakes the next (resetspinning), so the wake-ups fan out
 * without a thundering herd.  The last spinning M to give up re-checks
 * every queue after dropping its P, closing the race with a producer
 * that saw it spinning and did not wake anyone.
 *
 * Idle Ms park on their token (park.c: futex or /dev/goro M_PARK) in
 * sched.midle.  One idle M at most - sched.pollm, Go's netpoller M -
 * sleeps with a deadline: the earliest timer of any P.  Adding an
 * earlier timer wakes it (wakenetpoller) so it sleeps again with the
 * new deadline.  When it wakes it takes an idle P and runs the due
 * timers of every P (stealwork), so timers of idle Ps run on time.
 * Once the network poller exists (netpoll.c) it sleeps in netpoll()
 * instead - with no deadline if only I/O waiters exist - and is woken
 * by netpoll_break(); other Ms poll without blocking before stealing.
 * With goro.ko's NETPOLL (park.c) it parks on its token as the other
 * idle Ms do, in an M_PARK that also ends when the poller's fd becomes
 * readable, then polls without blocking; it is woken by mpark_wake.
 *
 * Deadlock (checkdead): when the last M goes idle, no M sleeps for a
 * timer or I/O, no P has a timer and no goroutine waits for I/O, every
 * goroutine left is blocked for good:
 * "all goroutines are asleep - deadlock!".
 *
 * Stop the world (goro_set_maxprocs): sched.gcwaiting makes every M
 * give up its P at its next scheduling point (gcstopm); idle Ps are
 * taken at once; the last P stopped wakes the stopper, which resizes
 * (procresize) and hands Ps with work to Ms again.  Ps left in a
 * syscall (goro_syscall_enter) are taken at once too.  Running Ps are
 * signalled (preempt_p); a goroutine that allocates stops at its next
 * refill without waiting for the signal (stw_check).  One that never
 * blocks nor allocates delays a stop-the-world until the signal preempts
 * it (preempt.c), or, in code that is not preemptible, until it calls
 * the runtime.
 *
 * Syscalls (Go's entersyscall/exitsyscall): goro_syscall_enter leaves
 * the M's P in P_SYSCALL, detached (pp->m NULL, mp->oldp = pp); the
 * sysmon CASes it to P_IDLE when the call lasts and hands it off
 * (handoffp).  goro_syscall_exit CASes it back if it is still there, or
 * takes an idle P, or queues the goroutine globally and stops the M.
 *
 * goro_main's thread is not an M: it creates M1 for the main goroutine
 * and sleeps until main returns, so that it can return to its caller
 * from the thread and stack it was called on whichever M ran main.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <linux/goro.h>

#include "goro.h"
#include "runtime.h"
#include "probes.h"
#include "malloc.h"
#include "netpoll.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

struct schedt sched;
struct p *allp[MAXPROCS];
int32_t gomaxprocs;
struct m *allm;
struct rtlock allglock;
struct g *allghead;
static struct g *allgtail;	/* allglock */
static int32_t ncpu;
static int32_t newprocs;		/* goro_set_maxprocs: STW resize */
static bool main_goexit;		/* the main goroutine called goro_exit */
static bool runtime_started;

/*
 * Thread-local state.  Read only through runtime.h's getg()/getm() (asm
 * that the compiler cannot cache) or these non-inlined accessors: a
 * goroutine may resume on another thread after any switch, and the
 * compiler would otherwise keep the thread pointer (%fs) or a TLS
 * address in a register across the call that switched.
 */
__thread struct m *goro_tls_m __attribute__((tls_model("initial-exec")));
__thread struct g *goro_tls_g __attribute__((tls_model("initial-exec")));
static __thread uint64_t tls_rand __attribute__((tls_model("initial-exec")));

#define TLS_ACCESSOR	__attribute__((noinline, noipa))

/* The stores, as getg()'s loads, in asm the compiler cannot move or
 * fold across a switch (runtime.h: GORO_TLS_LOAD). */
#define GORO_TLS_STORE(sym, val)					\
	do {								\
		uintptr_t _off;						\
		asm volatile("movq " #sym "@gottpoff(%%rip), %0\n\t"	\
			     "movq %1, %%fs:(%0)"			\
			     : "=&r"(_off) : "r"(val) : "memory");	\
	} while (0)

static inline void settls(struct m *mp, struct g *gp)
{
	GORO_TLS_STORE(goro_tls_m, mp);
	GORO_TLS_STORE(goro_tls_g, gp);
}

TLS_ACCESSOR uint32_t fastrand(void)
{
	__uint128_t t;

	if (unlikely(!tls_rand))
		tls_rand = (uint64_t)nanotime() ^ (uintptr_t)&t;
	tls_rand += 0xa0761d6478bd642fULL;
	t = (__uint128_t)tls_rand * (tls_rand ^ 0xe7037ed1a0b428dbULL);
	return (uint32_t)((uint64_t)(t >> 64) ^ (uint64_t)t);
}

uint32_t fastrandn(uint32_t n)
{
	return (uint32_t)(((uint64_t)fastrand() * n) >> 32);
}

static inline int32_t atomic_load32(int32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

void badgstatus(struct g *gp, uint32_t cur, uint32_t old, uint32_t new)
{
	print_str("runtime: casgstatus: goroutine ");
	print_u64(gp->goid);
	print_str(" status ");
	print_u64(cur);
	print_str(", wanted ");
	print_u64(old);
	print_str(" -> ");
	print_u64(new);
	print_str("\n");
	throw("casgstatus: bad incoming values");
}

bool g_is_valid(struct g *gp)
{
	uint32_t st = readgstatus(gp);

	return gp->magic == G_MAGIC && st <= G_DEAD &&
	       (gp->flags & G_FLAG_G0 ||
		(gp->stack_lo < gp->stack_hi &&
		 gp->stack_hi == (uintptr_t)gp &&
		 (gp->sched.sp == 0 ||
		  (gp->sched.sp >= gp->stack_lo &&
		   gp->sched.sp < gp->stack_hi))));
}

/* Ms in a syscall and the sysmon CAS a P's status (P_SYSCALL). */
static inline uint32_t getpstatus(struct p *pp)
{
	return __atomic_load_n(&pp->status, __ATOMIC_RELAXED);
}

/* The timer heap under its lock: another P's M may be running its
 * timers (stealwork's checktimers). */
bool p_is_valid(struct p *pp)
{
	uint32_t n = __atomic_load_n(&pp->runqtail, __ATOMIC_ACQUIRE) -
		     __atomic_load_n(&pp->runqhead, __ATOMIC_ACQUIRE);
	bool ok = n <= RUNQ_SIZE && pp->id >= 0 && pp->id < MAXPROCS &&
		  getpstatus(pp) <= P_DEAD && pp->gfreecnt >= 0;

	lock(&pp->timerslock);
	ok = ok && pp->ntimers >= 0 && pp->ntimers <= pp->timerscap;
	unlock(&pp->timerslock);
	return ok;
}

/* ---------------------------------------------------------------------
 * Context switches, with the sanitizers told about each stack change.
 * ------------------------------------------------------------------- */

static inline void san_start_switch(struct g *from, struct g *to, bool dying)
{
#if defined(__SANITIZE_ADDRESS__)
	__sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake_stack,
				       (const void *)to->stack_lo,
				       to->stack_hi - to->stack_lo);
#endif
#if defined(__SANITIZE_THREAD__)
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
	(void)from;
	(void)to;
	(void)dying;
}

static inline void san_finish_switch(struct g *me)
{
#if defined(__SANITIZE_ADDRESS__)
	__sanitizer_finish_switch_fiber(me->asan_fake_stack, NULL, NULL);
#endif
	(void)me;
}

static void tsan_fiber_new(struct g *gp)
{
#if defined(__SANITIZE_THREAD__)
	if (!gp->tsan_fiber)
		gp->tsan_fiber = __tsan_create_fiber(0);
#endif
	(void)gp;
}

static bool switch_direct(struct m *mp, struct g *gp, enum gaction a);
static void finish_prev(struct m *mp);

/*
 * GORODEBUG=handoffprobe=US, for tests: block in the kernel for US us
 * inside a section that holds its P's state on a goroutine's stack, as
 * a page fault waiting for mmap_lock would, then check that goro.ko's
 * hand-off (mretake) left the P to this M, as m->locks asks.
 */
static void handoff_probe(struct m *mp, const char *where)
{
	struct timespec ts = { 0, debug.handoffprobe * 1000L };
	struct p *pp = mp->p;

	nanosleep(&ts, NULL);	/* EINTR (a signal) ends it early: fine */
	if (mp->p != pp || (pp && __atomic_load_n(&pp->m, __ATOMIC_RELAXED) != mp))
		throw(where);
}

/*
 * Goroutine side: hand the current goroutine to g0 with action a, or,
 * for the common park and yield, straight to the next goroutine of the
 * P (switch_direct).  Whichever way it left, a goroutine resumes here
 * (or first in goro_gostart), and its first job is the previous
 * goroutine's action if that one switched straight to it.
 */
static void mcall(enum gaction a)
{
	struct m *mp = getm();
	struct g *gp = mp->curg;

	/* The P's queues in hand on a goroutine's stack until the switch:
	 * goro.ko's hand-off must leave this M its P meanwhile (acquirem).
	 * Dropped just before the switch, by switch_direct or here. */
	m_locks_add(mp, 1);
	if (unlikely(debug.handoffprobe))
		handoff_probe(mp, "mcall: P handed off inside the runtime");
	if (a != GA_EXITSYSCALL && switch_direct(mp, gp, a))
		return;
	mp->action = a;
	m_locks_add(mp, -1);
	san_start_switch(gp, &mp->g0, a == GA_GOEXIT);
	gogo_switch(&gp->sched, &mp->g0.sched);
	/* resumed by execute() or switch_direct(), perhaps on another M */
	san_finish_switch(gp);
	finish_prev(getm());
}

__attribute__((noreturn)) void goro_gostart(void)
{
	struct g *gp = getg();

	san_finish_switch(gp);
	finish_prev(getm());
	gp->startfn(gp->startarg);
	mcall(GA_GOEXIT);
	__builtin_unreachable();
}

/* ---------------------------------------------------------------------
 * Ps and Ms
 * ------------------------------------------------------------------- */

/* Thieves read a P's status without its owner's lock (runqgrab). */
static inline void setpstatus(struct p *pp, uint32_t st)
{
	__atomic_store_n(&pp->status, st, __ATOMIC_RELAXED);
}

static void acquirep(struct p *pp)
{
	struct m *mp = getm();

	if (mp->p || pp->m || getpstatus(pp) != P_IDLE)
		throw("acquirep: invalid p state");
	mp->p = pp;
	__atomic_store_n(&pp->m, mp, __ATOMIC_RELEASE);
	setpstatus(pp, P_RUNNING);
	mslot_update(mp, GORO_MSTATUS_SCHED);
}

static struct p *releasep(void)
{
	struct m *mp = getm();
	struct p *pp = mp->p;

	if (!pp || pp->m != mp || getpstatus(pp) != P_RUNNING)
		throw("releasep: invalid p state");
	__atomic_store_n(&pp->m, NULL, __ATOMIC_RELAXED);
	setpstatus(pp, P_IDLE);
	mp->p = NULL;
	return pp;
}

/* sched.lock held.  An M that lost its P to goro.ko's hand-off and
 * waits for one (sched.pwait) gets pp first. */
static void pidleput(struct p *pp)
{
	struct m *w = sched.pwait;

	if (w) {
		__atomic_store_n(&sched.pwait, w->pwaitlink, __ATOMIC_RELAXED);
		__atomic_store_n(&w->nextp, pp, __ATOMIC_RELEASE);
		__atomic_store_n(&w->pwait, 1, __ATOMIC_RELEASE);
		syscall(SYS_futex, &w->pwait, FUTEX_WAKE_PRIVATE, 1, NULL,
			NULL, 0);
		return;
	}
	if (!runqempty(pp))
		throw("pidleput: P has non-empty run queue");
	pp->link = sched.pidle;
	sched.pidle = pp;
	__atomic_add_fetch(&sched.npidle, 1, __ATOMIC_RELEASE);
}

static struct p *pidleget(void)
{
	struct p *pp = sched.pidle;

	if (pp) {
		sched.pidle = pp->link;
		__atomic_sub_fetch(&sched.npidle, 1, __ATOMIC_RELEASE);
	}
	return pp;
}

static void checkdead(void);

static void mput(struct m *mp)
{
	mp->schedlink = sched.midle;
	sched.midle = mp;
	sched.nmidle++;
	checkdead();
}

static struct m *mget(void)
{
	struct m *mp = sched.midle;

	if (mp) {
		sched.midle = mp->schedlink;
		sched.nmidle--;
	}
	return mp;
}

static void schedule(void);
static void stopm(void);

static void *mstart(void *arg)
{
	struct m *mp = arg;
	pthread_attr_t attr;
	sigset_t set;
	struct p *pp;

	settls(mp, &mp->g0);
	mp->tid = (int)syscall(SYS_gettid);
	if (!pthread_getattr_np(pthread_self(), &attr)) {
		void *addr;
		size_t size;

		if (!pthread_attr_getstack(&attr, &addr, &size)) {
			mp->g0_lo = (uintptr_t)addr;
			mp->g0_hi = (uintptr_t)addr + size;
		}
		pthread_attr_destroy(&attr);
	}
	mp->g0.stack_lo = mp->g0_lo;
	mp->g0.stack_hi = mp->g0_hi;
#if defined(__SANITIZE_THREAD__)
	mp->g0.tsan_fiber = __tsan_get_current_fiber();
#endif
	stack_sigstack(mp);
	sigemptyset(&set);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGSEGV);
	sigaddset(&set, preempt_signo);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	signal_sync_mask(mp);
	mpark_register(mp);

	pp = __atomic_exchange_n(&mp->nextp, NULL, __ATOMIC_ACQUIRE);
	if (pp)
		acquirep(pp);
	else
		stopm();	/* a spare for goro.ko's hand-off */
	schedule();
	return NULL;
}

/* Create an M to run pp (already taken off the idle list). */
static void newm(struct p *pp, bool spinning)
{
	struct m *mp = aligned_alloc(64, (sizeof(*mp) + 63) & ~63UL);
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;

	if (!mp)
		throw("newm: out of memory");
	memset(mp, 0, sizeof(*mp));
	mp->g0.magic = G_MAGIC;
	mp->g0.flags = G_FLAG_G0;
	mp->g0.m = mp;
	mp->g0.atomicstatus = G_RUNNING;
	mp->spinning = spinning;
	mp->nextp = pp;
	mp->slot = -1;
	lock(&sched.lock);
	mp->id = sched.mnext++;
	sched.mcount++;
	mp->alllink = allm;
	__atomic_store_n(&allm, mp, __ATOMIC_RELEASE);
	unlock(&sched.lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 1 << 20);
	/* Ms start with every signal blocked but the ones the runtime
	 * handles; the program's threads keep their own masks. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&th, &attr, mstart, mp))
		throw("newm: pthread_create failed");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

/* Park the M until startm hands it a P; acquires it. */
static void stopm(void)
{
	struct m *mp = getm();
	struct p *pp;

	if (mp->p)
		throw("stopm holding p");
	if (mp->spinning)
		throw("stopm spinning");
	lock(&sched.lock);
	mput(mp);
	unlock(&sched.lock);
	GORO_PROBE1(m_idle, mp->id);
	while (!(pp = __atomic_exchange_n(&mp->nextp, NULL, __ATOMIC_ACQUIRE))) {
		mpark_sleep(mp, -1);
		mretake(mp);
	}
	GORO_PROBE1(m_wake, mp->id);
	acquirep(pp);
}

/*
 * Schedule some M to run pp (an idle P if NULL).  spinning: the caller
 * counted a spinning M in nmspinning for it (wakep).
 */
static void startm(struct p *pp, bool spinning)
{
	struct m *nmp;

	lock(&sched.lock);
	if (!pp) {
		pp = pidleget();
		if (!pp) {
			unlock(&sched.lock);
			if (spinning &&
			    __atomic_sub_fetch(&sched.nmspinning, 1,
					       __ATOMIC_ACQ_REL) < 0)
				throw("startm: negative nmspinning");
			return;
		}
	}
	nmp = mget();
	unlock(&sched.lock);
	if (!nmp) {
		newm(pp, spinning);
		spare_m();
		return;
	}
	if (nmp->spinning || __atomic_load_n(&nmp->nextp, __ATOMIC_RELAXED))
		throw("startm: m is spinning or has a p");
	nmp->spinning = spinning;
	__atomic_store_n(&nmp->nextp, pp, __ATOMIC_RELEASE);
	mpark_wake(nmp);
	/* goro.ko hands a blocked M's P only to a parked M: keep one. */
	spare_m();
}

/* wakep()'s work once an idle P was seen (runtime.h). */
void wakep_slow(void)
{
	int32_t zero = 0;

	if (atomic_load32(&sched.nmspinning) ||
	    !__atomic_compare_exchange_n(&sched.nmspinning, &zero, 1, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	startm(NULL, true);
}

static void resetspinning(void)
{
	struct m *mp = getm();

	mp->spinning = false;
	if (__atomic_sub_fetch(&sched.nmspinning, 1, __ATOMIC_ACQ_REL) < 0)
		throw("findrunnable: negative nmspinning");
	/* We found work: another M may find more. */
	wakep();
}

/* An M parks for good once goro_main has returned. */
__attribute__((noreturn)) static void mexit_park(void)
{
	struct m *mp = getm();

	mp->exiting = true;
	mslot_update(mp, GORO_MSTATUS_IDLE);
	for (;;)
		mpark_sleep(mp, -1);
}

static void gcstopm(void)
{
	struct m *mp = getm();
	struct p *pp;

	if (!__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE))
		throw("gcstopm: not waiting for gc");
	if (mp->spinning) {
		mp->spinning = false;
		if (__atomic_sub_fetch(&sched.nmspinning, 1,
				       __ATOMIC_ACQ_REL) < 0)
			throw("gcstopm: negative nmspinning");
	}
	pp = releasep();
	lock(&sched.lock);
	setpstatus(pp, P_GCSTOP);
	if (--sched.stopwait == 0)
		notewakeup(&sched.stopnote);
	unlock(&sched.lock);
	stopm();
}

/* ---------------------------------------------------------------------
 * Deadlock detection
 * ------------------------------------------------------------------- */

/* sched.lock held: the calling M just went idle. */
static void checkdead(void)
{
	size_t waiting = 0;
	struct g *gp;

	if (__atomic_load_n(&sched.exiting, __ATOMIC_ACQUIRE) || sched.pollm)
		return;
	/* Goroutines waiting for I/O wait for the outside world. */
	if (netpoll_waiters() > 0)
		return;
	if (sched.mcount - sched.nmidle > 0)
		return;
	if (timers_pending())
		return;
	for_each_g(gp) {
		uint32_t st = readgstatus(gp);

		if (st == G_RUNNABLE || st == G_RUNNING || st == G_SYSCALL)
			return;	/* someone will run it: not dead */
		if (st == G_WAITING)
			waiting++;
	}
	unlock(&sched.lock);
	if (!waiting) {
		if (main_goexit)
			throw("no goroutines (main called goro_exit) - deadlock!");
		throw("no goroutines - deadlock!");
	}
	throw("all goroutines are asleep - deadlock!");
}

/* ---------------------------------------------------------------------
 * Finding work
 * ------------------------------------------------------------------- */

static uint32_t gcd(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * Steal from other Ps in random order (a random start and a random
 * stride coprime with the count visit each P once).  In the last round
 * also run other Ps' due timers, and steal runnext.  *polluntil gets the
 * earliest timer seen; *newwork says timers ran (maybe readying Gs).
 */
static struct g *stealwork(int64_t now, int64_t *polluntil, bool *newwork,
			   bool *inherit)
{
	struct m *mp = getm();
	struct p *pp = mp->p;
	int32_t procs = atomic_load32(&gomaxprocs);
	bool rantimer = false;

	*newwork = false;
	for (int i = 0; i < 4; i++) {
		bool last = i == 3;
		uint32_t start = fastrandn((uint32_t)procs);
		uint32_t inc = 1 + fastrandn((uint32_t)procs);

		while (gcd(inc, (uint32_t)procs) != 1)
			inc++;
		for (int32_t k = 0; k < procs; k++) {
			struct p *p2 = allp[(start + (uint32_t)k * inc) %
					    (uint32_t)procs];
			struct g *gp;

			if (__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE)) {
				*newwork = true;
				return NULL;
			}
			if (p2 == pp)
				continue;
			if (last) {
				int64_t w = nobarrier_timer0(p2);
				bool ran = false;

				if (w && !now)
					now = nanotime();

				if (w && w <= now) {
					now = checktimers(p2, now, polluntil,
							  &ran);
					if (ran) {
						gp = runqget(pp, inherit);
						if (gp)
							return gp;
						rantimer = true;
					}
				} else if (w && (!*polluntil || w < *polluntil)) {
					*polluntil = w;
				}
			}
			if (!runqempty(p2)) {
				gp = runqsteal(pp, p2, last);
				if (gp) {
					*inherit = false;
					return gp;
				}
			}
		}
	}
	*newwork = rantimer;
	return NULL;
}

/* Earliest timer of every P, 0 if none. */
static int64_t timersnop(void)
{
	int32_t procs = atomic_load32(&gomaxprocs);
	int64_t next = 0;

	for (int32_t i = 0; i < procs; i++) {
		int64_t w = nobarrier_timer0(allp[i]);

		if (w && (!next || w < next))
			next = w;
	}
	return next;
}

/* sched.pollm sleeps in netpoll() (else on its park token).  Written
 * under sched.lock; read without it as a hint by netpollnow. */
static bool pollm_netpoll;

/* sched.lock held: end sched.pollm's sleep. */
static void pollm_wake(struct m *pm)
{
	if (__atomic_load_n(&pollm_netpoll, __ATOMIC_RELAXED))
		netpoll_break();
	else
		mpark_wake(pm);
}

/* Wake the timer-sleeping M if when is earlier than its deadline, or
 * get an M going if none sleeps for timers (Go's wakeNetPoller). */
void wakenetpoller(int64_t when)
{
	struct m *pm;

	lock(&sched.lock);
	pm = sched.pollm;
	if (pm) {
		int64_t until = sched.polluntil;

		if ((until == 0 || until > when) && until != -1) {
			sched.polluntil = -1;	/* woken; do not wake twice */
			pollm_wake(pm);
		}
		unlock(&sched.lock);
		return;
	}
	unlock(&sched.lock);
	wakep();
}

/*
 * Make the goroutines on q (G_WAITING, readied by the poller) runnable:
 * on the current P's queue when there is one, else on the global queue
 * with an idle P started for each (Go's injectglist).
 */
void injectglist(struct gqueue *q)
{
	struct m *mp = getm();
	struct g *gp, *next;
	int32_t n = 0;

	if (!q->head)
		return;
	for (gp = q->head; gp; gp = gp->schedlink) {
		casgstatus(gp, G_WAITING, G_RUNNABLE);
		n++;
	}
	if (mp && mp->p) {
		m_locks_add(mp, 1);	/* acquirem, as in goready */
		for (gp = q->head; gp; gp = next) {
			next = gp->schedlink;
			runqput(mp->p, gp, false);
		}
		q->head = q->tail = NULL;
		wakep();
		m_locks_add(mp, -1);
		return;
	}
	lock(&sched.lock);
	globrunqputbatch(q, n);
	unlock(&sched.lock);
	while (n-- > 0 && atomic_load32(&sched.npidle))
		startm(NULL, false);
}

/* The poller's ready list: its first G for this M to run (made
 * runnable), the rest injected for others. */
static struct g *takeinject(struct gqueue *q)
{
	struct g *gp = q->head;

	q->head = gp->schedlink;
	if (!q->head)
		q->tail = NULL;
	gp->schedlink = NULL;
	injectglist(q);
	casgstatus(gp, G_WAITING, G_RUNNABLE);
	return gp;
}

/* Collect I/O-ready goroutines without blocking: one to run now, the
 * others queued.  Not while an M blocks in netpoll: it gets the events
 * anyway (Go's sched.lastpoll test), and epoll_wait is a syscall. */
static struct g *netpollnow(void)
{
	struct gqueue q = { NULL, NULL };

	if (netpoll_waiters() <= 0 ||
	    __atomic_load_n(&pollm_netpoll, __ATOMIC_RELAXED) ||
	    !netpoll(0, &q))
		return NULL;
	return takeinject(&q);
}

/*
 * Find a runnable goroutine; steal, run timers, and sleep when there is
 * nothing.  Returns with a P held (maybe another than on entry).
 */
static struct g *findrunnable(bool *inherit)
{
	struct m *mp = getm();
	struct p *pp;
	struct g *gp;
	int64_t now, polluntil;
	int32_t procs;
	bool newwork, wasspinning;

top:
	pp = mp->p;
	if (__atomic_load_n(&sched.exiting, __ATOMIC_ACQUIRE))
		mexit_park();
	if (__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE)) {
		gcstopm();
		goto top;
	}
	polluntil = 0;
	now = checktimers(pp, 0, &polluntil, NULL);

	gp = runqget(pp, inherit);
	if (gp)
		return gp;
	if (__atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED)) {
		lock(&sched.lock);
		gp = globrunqget(pp, 0);
		unlock(&sched.lock);
		if (gp) {
			*inherit = false;
			return gp;
		}
	}

	/* Goroutines whose I/O is ready, before stealing (Go does too). */
	gp = netpollnow();
	if (gp) {
		*inherit = false;
		return gp;
	}

	procs = atomic_load32(&gomaxprocs);
	if (mp->spinning ||
	    2 * atomic_load32(&sched.nmspinning) <
	    procs - atomic_load32(&sched.npidle)) {
		if (!mp->spinning) {
			mp->spinning = true;
			__atomic_add_fetch(&sched.nmspinning, 1,
					   __ATOMIC_ACQ_REL);
		}
		gp = stealwork(now, &polluntil, &newwork, inherit);
		if (gp)
			return gp;
		if (newwork)
			goto top;
	}

	/* Nothing: give up the P. */
	lock(&sched.lock);
	if (__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&sched.exiting, __ATOMIC_ACQUIRE)) {
		unlock(&sched.lock);
		goto top;
	}
	if (sched.runqsize) {
		gp = globrunqget(pp, 0);
		unlock(&sched.lock);
		*inherit = false;
		return gp;
	}
	releasep();
	pidleput(pp);
	unlock(&sched.lock);

	wasspinning = mp->spinning;
	if (mp->spinning) {
		mp->spinning = false;
		if (__atomic_sub_fetch(&sched.nmspinning, 1,
				       __ATOMIC_ACQ_REL) < 0)
			throw("findrunnable: negative nmspinning");
		/*
		 * A producer may have queued work after we looked and seen
		 * us spinning, so it did not wake anyone: look again now
		 * that nmspinning no longer counts us.
		 */
		for (int32_t i = 0; i < procs; i++) {
			if (runqempty(allp[i]))
				continue;
			lock(&sched.lock);
			pp = pidleget();
			unlock(&sched.lock);
			if (pp) {
				acquirep(pp);
				mp->spinning = true;
				__atomic_add_fetch(&sched.nmspinning, 1,
						   __ATOMIC_ACQ_REL);
				goto top;
			}
			break;
		}
	}
	(void)wasspinning;

	polluntil = timersnop();
	if (polluntil || netpoll_waiters() > 0) {
		lock(&sched.lock);
		if (!sched.pollm) {
			struct gqueue q = { NULL, NULL };
			bool kpoll = netpoll_inited() && mpark_can_netpoll(mp);

			/* Sleep until the earliest timer, in the poller once
			 * there is one (polluntil 0: until I/O), or in goro.ko
			 * with the poller's fd bound (NETPOLL). */
			sched.pollm = mp;
			sched.polluntil = polluntil;
			__atomic_store_n(&pollm_netpoll,
					 netpoll_inited() && !kpoll,
					 __ATOMIC_RELAXED);
			unlock(&sched.lock);
			if (__atomic_load_n(&pollm_netpoll, __ATOMIC_RELAXED))
				netpoll(polluntil ? polluntil : -1, &q);
			else if (kpoll && mpark_sleep_netpoll(mp, polluntil ?
							      polluntil : -1))
				netpoll(NETPOLL_NOW, &q);
			else if (!kpoll)
				mpark_sleep(mp, polluntil);
			mretake(mp);
			lock(&sched.lock);
			sched.pollm = NULL;
			sched.polluntil = 0;
			__atomic_store_n(&pollm_netpoll, false,
					 __ATOMIC_RELAXED);
			pp = pidleget();
			unlock(&sched.lock);
			if (pp) {
				acquirep(pp);
				if (q.head) {
					*inherit = false;
					return takeinject(&q);
				}
				/* spin: due timers may sit on any P */
				mp->spinning = true;
				__atomic_add_fetch(&sched.nmspinning, 1,
						   __ATOMIC_ACQ_REL);
				goto top;
			}
			injectglist(&q);
			stopm();
			goto top;
		}
		if (polluntil && sched.polluntil != -1 &&
		    (!sched.polluntil || sched.polluntil > polluntil)) {
			sched.polluntil = -1;
			pollm_wake(sched.pollm);
		}
		unlock(&sched.lock);
	}
	stopm();
	goto top;
}

/* ---------------------------------------------------------------------
 * schedule / execute and what g0 does for a goroutine that left
 * ------------------------------------------------------------------- */

static void gfput(struct p *pp, struct g *gp);

static void overflowed(struct g *gp)
{
	print_str("runtime: goroutine stack canary overwritten\n"
		  "fatal error: goroutine ");
	print_u64(gp->goid);
	print_str(" stack overflow\n\n");
	tracebackothers(NULL);
	fatal_exit();
}

static bool execute_exitsyscall_g0(struct m *mp, struct g *gp);

/* gleft's rarer cases, out of line: the yield to the global queue and
 * the exit (which may free a batch of stacks, or end the program). */
static __attribute__((noinline)) void gleft_gosched(struct g *gp,
						    enum gaction a)
{
	casgstatus(gp, G_RUNNING, G_RUNNABLE);
	GORO_PROBE1(goroutine_yield, gp->goid);
	if (a == GA_GOSCHED)
		lock(&sched.lock);
	globrunqput(gp);
	unlock(&sched.lock);
}

static __attribute__((noinline)) void gleft_goexit(struct m *mp,
						   struct g *gp)
{
	casgstatus(gp, G_RUNNING, G_DEAD);
	GORO_PROBE1(goroutine_exit, gp->goid);
	__atomic_store_n(&mp->p->gdelta, mp->p->gdelta - 1, __ATOMIC_RELAXED);
	if ((gp->flags & G_FLAG_MAIN) && !main_goexit) {
		/* main returned: the program is over (on g0 only:
		 * switch_direct leaves main's exit to g0) */
		__atomic_store_n(&sched.exiting, 1, __ATOMIC_RELEASE);
		notewakeup(&sched.mainnote);
		mexit_park();
	}
	gfput(mp->p, gp);
}

/*
 * What a goroutine that just left its M asked for, done once its
 * registers are saved: on g0 (execute) or on the goroutine it switched
 * straight to (finish_prev).  Returns false when a park's unlockf
 * refused: gp is runnable again and the caller must run or queue it.
 * Inline: it runs once per switch, and the park and the local yield
 * are a few stores.
 */
static inline __attribute__((always_inline)) bool
gleft(struct m *mp, struct g *gp, enum gaction a)
{
	__atomic_store_n(&gp->m, NULL, __ATOMIC_RELAXED);
	switch (a) {
	case GA_PARK: {
		bool (*fn)(struct g *, void *) = mp->waitunlockf;
		void *arg = mp->waitlock;

		mp->waitunlockf = NULL;
		mp->waitlock = NULL;
		casgstatus(gp, G_RUNNING, G_WAITING);
		if (fn && !fn(gp, arg)) {
			casgstatus(gp, G_WAITING, G_RUNNABLE);
			return false;
		}
		return true;
	}
	case GA_GOYIELD:
		casgstatus(gp, G_RUNNING, G_RUNNABLE);
		GORO_PROBE1(goroutine_yield, gp->goid);
		runqput(mp->p, gp, false);
		return true;
	case GA_GOSCHED:
	case GA_GOSCHED_LOCKED:
		gleft_gosched(gp, a);
		return true;
	case GA_GOEXIT:
		gleft_goexit(mp, gp);
		return true;
	default:
		throw("execute: goroutine switched to g0 without an action");
	}
}

/* gp becomes mp's running goroutine (the switch to it comes next).
 * inherit: it takes over the time slice of the one before (runnext). */
static inline __attribute__((always_inline)) void
g_start_running(struct m *mp, struct g *gp, bool inherit)
{
	if (debug.invariants && (!g_is_valid(gp) || !p_is_valid(mp->p)))
		throw("execute: invalid g or p");
	mp->curg = gp;
	__atomic_store_n(&gp->m, mp, __ATOMIC_RELAXED);
	casgstatus(gp, G_RUNNABLE, G_RUNNING);
	GORO_PROBE2(goroutine_start, gp->goid, mp->p->id);
	gp->waitsince = 0;
	__atomic_store_n(&gp->preempt, 0, __ATOMIC_RELAXED);
	if (!inherit)
		__atomic_store_n(&mp->p->schedtick, mp->p->schedtick + 1,
				 __ATOMIC_RELAXED);
	if (mp->mslot)
		mslot_update(mp, GORO_MSTATUS_RUNNING);
	settls(mp, gp);
}

/* Run gp on the current M until it switches back to g0; then act on
 * what it asked for.  Returns when g0 should pick the next goroutine. */
static void execute(struct g *gp, bool inherit)
{
	struct m *mp = getm();
	enum gaction a;

again:
	g_start_running(mp, gp, inherit);
	san_start_switch(&mp->g0, gp, false);
	gogo_switch(&mp->g0.sched, &gp->sched);
	san_finish_switch(&mp->g0);
	/* not necessarily gp: it may have switched straight to another */
	gp = mp->curg;
	settls(mp, &mp->g0);
	if (mp->mslot)
		mslot_update(mp, GORO_MSTATUS_SCHED);

	if (unlikely(stack_overflowed(gp)))
		overflowed(gp);
	a = mp->action;
	mp->action = GA_NONE;
	mp->curg = NULL;
	if (a == GA_EXITSYSCALL) {
		if (execute_exitsyscall_g0(mp, gp)) {
			inherit = true;
			goto again;
		}
	} else if (!gleft(mp, gp, a)) {
		inherit = true;
		goto again;
	}
}

/*
 * The direct switch: a goroutine that parks, yields or exits goes
 * straight to the next goroutine of its P's run queue (goro_yield: or
 * of the global queue, where it goes itself), one context
 * switch instead of two (G -> g0 -> G) and no trip through schedule.
 * Only when schedule() would pick the same goroutine: not when the
 * world is stopping, the program exiting, a hand-off waiter needs a P,
 * the global queue's turn has come (every 61st tick), the poller's
 * turn (one time in 61), or a timer of the P is due.  Else, or with an
 * empty local queue, false: the caller goes through g0.
 *
 * The leaving goroutine's action (its unlockf, its queueing, its
 * freeing) must wait until its registers are saved, as on g0: the
 * incoming goroutine does it first thing (finish_prev), still on this
 * M.  Until then mp->prev is the only reference to it, and the M runs
 * no goroutine code.
 */
static bool switch_direct(struct m *mp, struct g *gp, enum gaction a)
{
	struct p *pp = mp->p;
	struct g *next;
	bool inherit;
	int64_t when;

	if (unlikely(!pp || (a == GA_GOEXIT && (gp->flags & G_FLAG_MAIN))))
		return false;
	if (__atomic_load_n(&sched.exiting, __ATOMIC_RELAXED) |
	    __atomic_load_n(&sched.gcwaiting, __ATOMIC_RELAXED) |
	    (__atomic_load_n(&sched.pwait, __ATOMIC_RELAXED) != NULL))
		return false;
	if (pp->schedtick % 61 == 0 &&
	    __atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED) > 0)
		return false;
	if (netpoll_waiters() > 0 && !fastrandn(61))
		return false;
	when = nobarrier_timer0(pp);
	if (when && nanotime() >= when)
		return false;
	next = runqget(pp, &inherit);
	/*
	 * goro_yield with local work and an empty global queue: to the
	 * local tail, with no lock.  Go's Gosched queues globally, where
	 * the next schedule() on this P (local first) would take it only
	 * after the local queue anyway; other Ps can steal it here as they
	 * would take it there.  With work in the global queue it goes
	 * there, behind that work, as in Go.
	 */
	if (next && a == GA_GOSCHED &&
	    !__atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED))
		a = GA_GOYIELD;
	if (!next && a == GA_GOSCHED) {
		/* goro_yield with an empty local queue: the global queue's
		 * head (and a fair share of the rest into the local queue,
		 * as findrunnable takes it), with sched.lock held until
		 * finish_prev has queued gp globally behind them - one lock
		 * round trip per yield, not two */
		if (!__atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED))
			return false;
		lock(&sched.lock);
		next = globrunqget(pp, 0);
		if (!next) {
			unlock(&sched.lock);
			return false;
		}
		inherit = false;
		a = GA_GOSCHED_LOCKED;
	}
	if (!next)
		return false;
	signal_sync_mask(mp);
	mp->prev = gp;
	mp->prevaction = a;
	g_start_running(mp, next, inherit);
	m_locks_add(mp, -1);	/* mcall's */
	san_start_switch(gp, next, a == GA_GOEXIT);
	gogo_switch(&gp->sched, &next->sched);
	/* resumed by execute() or switch_direct(), perhaps on another M */
	san_finish_switch(gp);
	finish_prev(getm());
	return true;
}

/* The incoming goroutine's half of switch_direct: act for the one that
 * switched to it.  A park whose unlockf refused runs next. */
static void finish_prev(struct m *mp)
{
	struct g *gp = mp->prev;

	if (likely(!gp))
		return;
	mp->prev = NULL;
	if (unlikely(stack_overflowed(gp)))
		overflowed(gp);
	/* on a goroutine's stack with the P's queues and free Gs in hand:
	 * gfput may madvise a batch of dead stacks */
	m_locks_add(mp, 1);
	if (!gleft(mp, gp, mp->prevaction))
		runqput(mp->p, gp, true);
	m_locks_add(mp, -1);
}

/*
 * g0's half of goro_syscall_exit's slow path (Go's exitsyscall0): gp
 * found neither its old P nor an idle one.  Try once more under
 * sched.lock; else queue gp globally and stop the M until some P needs
 * it.  Returns true with a P when gp may run at once.
 */
static bool execute_exitsyscall_g0(struct m *mp, struct g *gp)
{
	struct p *pp = NULL;

	mp->curg = NULL;
	__atomic_store_n(&gp->m, NULL, __ATOMIC_RELAXED);
	casgstatus(gp, G_SYSCALL, G_RUNNABLE);
	lock(&sched.lock);
	if (!__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE))
		pp = pidleget();
	if (pp) {
		unlock(&sched.lock);
		acquirep(pp);
		return true;
	}
	globrunqput(gp);
	unlock(&sched.lock);
	stopm();
	return false;
}

/* One round of the scheduler, forever: find a G and run it. */
/*
 * An M that lost its P to goro.ko's hand-off waits on sched.pwait with
 * its goroutine frozen mid-call (it must not move threads).  Ps that go
 * idle serve it first, but on a busy program none may ever go idle: so
 * every M gives its P to such a waiter at its next scheduling point, and
 * parks.  Returns true if it did (the caller then holds a P again).
 */
static bool handoff_to_pwaiter(struct m *mp)
{
	struct p *pp;

	if (likely(!__atomic_load_n(&sched.pwait, __ATOMIC_RELAXED)) ||
	    mp->spinning || !mp->p)
		return false;
	lock(&sched.lock);
	if (!sched.pwait) {
		unlock(&sched.lock);
		return false;
	}
	pp = releasep();
	pidleput(pp);		/* to the waiter, run queue and all */
	unlock(&sched.lock);
	stopm();
	return true;
}

static void schedule(void)
{
	struct m *mp = getm();

	for (;;) {
		struct p *pp;
		struct g *gp = NULL;
		bool inherit = false;

		if (__atomic_load_n(&sched.exiting, __ATOMIC_ACQUIRE))
			mexit_park();
		if (unlikely(handoff_to_pwaiter(mp)))
			continue;
		if (__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE)) {
			gcstopm();
			continue;
		}
		signal_sync_mask(mp);
		pp = mp->p;
		checktimers(pp, 0, NULL, NULL);
		/* Fairness: now and then the global queue goes first, so
		 * two goroutines yielding to each other cannot starve it. */
		if (pp->schedtick % 61 == 0 &&
		    __atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED) > 0) {
			lock(&sched.lock);
			gp = globrunqget(pp, 1);
			unlock(&sched.lock);
		}
		/* Now and then I/O too, as Go's sysmon does. */
		if (!gp && netpoll_waiters() > 0 && !fastrandn(61))
			gp = netpollnow();
		if (!gp)
			gp = runqget(pp, &inherit);
		if (!gp)
			gp = findrunnable(&inherit);
		if (mp->spinning)
			resetspinning();
		execute(gp, inherit);
	}
}

/* ---------------------------------------------------------------------
 * Goroutine creation and the free lists
 * ------------------------------------------------------------------- */

#define GFREE_LOCAL_MAX		64
#define GFREE_BATCH		32
#define STACK_DEFAULT_SIZE	(256UL << 10)

static void gfput(struct p *pp, struct g *gp)
{
	struct g *batch = NULL, *last = NULL;
	int n = 0;

	if (gp->flags & G_FLAG_BIGSTACK) {
		stackfree_unused(gp);
		lock(&sched.lock);
		gp->schedlink = sched.gfreebig;
		sched.gfreebig = gp;
		unlock(&sched.lock);
		return;
	}
	gp->schedlink = pp->gfree;
	pp->gfree = gp;
	if (++pp->gfreecnt < GFREE_LOCAL_MAX)
		return;
	/* Move a batch to the global list, giving back its deep pages. */
	while (pp->gfreecnt > GFREE_BATCH) {
		struct g *g1 = pp->gfree;

		pp->gfree = g1->schedlink;
		pp->gfreecnt--;
		stackfree_unused(g1);
		g1->schedlink = batch;
		if (!batch)
			last = g1;
		batch = g1;
		n++;
	}
	lock(&sched.lock);
	last->schedlink = sched.gfree;
	sched.gfree = batch;
	__atomic_store_n(&sched.ngfree, sched.ngfree + n, __ATOMIC_RELAXED);
	unlock(&sched.lock);
}

static struct g *gfget(struct p *pp, size_t size)
{
	struct g *gp, **link;

	if (size > STACK_DEFAULT_SIZE) {
		lock(&sched.lock);
		for (link = &sched.gfreebig; (gp = *link); link = &gp->schedlink) {
			size_t have = gp->stack_hi - gp->stack_lo;

			if (have >= size && have <= 2 * size) {
				*link = gp->schedlink;
				break;
			}
		}
		unlock(&sched.lock);
		return gp;
	}
	if (!pp->gfree && __atomic_load_n(&sched.ngfree, __ATOMIC_RELAXED)) {
		lock(&sched.lock);
		while (pp->gfreecnt < GFREE_BATCH && sched.gfree) {
			gp = sched.gfree;
			sched.gfree = gp->schedlink;
			__atomic_store_n(&sched.ngfree, sched.ngfree - 1,
					 __ATOMIC_RELAXED);
			gp->schedlink = pp->gfree;
			pp->gfree = gp;
			pp->gfreecnt++;
		}
		unlock(&sched.lock);
	}
	gp = pp->gfree;
	if (gp) {
		pp->gfree = gp->schedlink;
		pp->gfreecnt--;
	}
	return gp;
}

static void allgadd(struct g *gp)
{
	lock(&allglock);
	__atomic_store_n(allgtail ? &allgtail->alllink : &allghead, gp,
			 __ATOMIC_RELEASE);
	allgtail = gp;
	unlock(&allglock);
}

#define GOID_BATCH	16	/* ids a P takes from sched.goidgen at once */

static struct g *newproc1(struct p *pp, void (*fn)(void *), void *arg,
			  size_t size, uint64_t gopc)
{
	struct g *gp = gfget(pp, size);

	if (!gp) {
		gp = stackalloc_g(size);
		if (!gp)
			return NULL;
		allgadd(gp);
	}
	if (readgstatus(gp) != G_DEAD)
		throw("newproc1: new g is not G_DEAD");
	stack_reset(gp);
	gostart_frame(&gp->sched, gp->stack_hi);
	tsan_fiber_new(gp);
	gp->asan_fake_stack = NULL;
	gp->startfn = fn;
	gp->startarg = arg;
	gp->gopc = gopc;
	gp->waitreason = WAIT_ZERO;
	gp->flags &= ~G_FLAG_MAIN;
	/* a new G goes to runnext like a hand-off: not its last life's hint */
	__atomic_store_n(&gp->readypar, 0, __ATOMIC_RELAXED);
	if (pp->goidcache == pp->goidcacheend) {
		pp->goidcache = __atomic_fetch_add(&sched.goidgen, GOID_BATCH,
						   __ATOMIC_RELAXED) + 1;
		pp->goidcacheend = pp->goidcache + GOID_BATCH;
	}
	gp->goid = pp->goidcache++;
	__atomic_store_n(&pp->gdelta, pp->gdelta + 1, __ATOMIC_RELAXED);
	casgstatus(gp, G_DEAD, G_RUNNABLE);
	return gp;
}

/*
 * Back-pressure on spawners.  A loop that spawns faster than its P runs
 * the children fills the local queue, then the global one, and every
 * goroutine waiting there holds a stack: with Go's policy (newproc
 * never yields) a million-goroutine loop piled up a slice's worth of
 * them, each on a fresh stack (a guard madvise and a page fault) and
 * each struct g on its own page, so that the scheduler's walks over
 * them missed the TLB at every step.  Go's 2 KiB stacks and compact Gs
 * make the pile cheap there; here it is not.  So once the global queue
 * holds more than SPAWN_BACKLOG goroutines, a spawner yields behind
 * them (goro_yield: to the global tail): the children run, their stacks
 * come back warm, and the spawner goes on.  Nothing blocks and nothing
 * is lost; the spawner only gives up its slice early.
 */
#define SPAWN_BACKLOG	512

static __attribute__((noinline)) void spawn_backoff(void)
{
	struct m *mp = getm();

	if (mp->curg && !mp->locks && mp->p && !(mp->curg->flags & G_FLAG_G0))
		mcall(GA_GOSCHED);
}

static int stacksize_from_attr(const struct goro_attr *attr, size_t *size)
{
	size_t s;

	*size = STACK_DEFAULT_SIZE;
	if (!attr)
		return 0;
	if (attr->reserved[0] || attr->reserved[1] || attr->reserved[2])
		return -EINVAL;
	s = attr->stack_size;
	if (!s)
		return 0;
	if (s > (1UL << 36))
		return -EINVAL;
	s = (s + 4095) & ~4095UL;
	if (s < (16UL << 10))
		s = 16UL << 10;
	*size = s;
	return 0;
}

GORO_API int goro_spawn(void (*fn)(void *arg), void *arg,
			const struct goro_attr *attr)
{
	struct m *mp;
	struct g *gp;
	size_t size;
	int err;

	if (!fn)
		return -EINVAL;
	err = stacksize_from_attr(attr, &size);
	if (err)
		return err;
	/* A preemption point, as the stack check in the prologue of Go's
	 * newproc is: a loop that spawns spends its time in the runtime,
	 * where the signal only flags it, and would otherwise keep its P
	 * until it stops, every child on a fresh stack meanwhile.  Before
	 * getm(): we may come back on another M. */
	preempt_check();
	mp = acquirem();	/* the P's free Gs, across a fresh stack's faults */
	if (!mp || !mp->p) {
		releasem(mp);
		return -EPERM;
	}
	gp = newproc1(mp->p, fn, arg, size,
		      (uint64_t)(uintptr_t)__builtin_return_address(0));
	if (gp) {
		GORO_PROBE2(goroutine_create, gp->goid,
			    mp->curg ? mp->curg->goid : 0);
		runqput(mp->p, gp, true);
		wakep();
	}
	releasem(mp);
	if (unlikely(__atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED) >
		     SPAWN_BACKLOG))
		spawn_backoff();
	return gp ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------------
 * Parking and readying (the contract with sync and channels)
 * ------------------------------------------------------------------- */

void gopark(bool (*unlockf)(struct g *gp, void *arg), void *arg,
	    enum waitreason reason)
{
	struct m *mp = getm();
	struct g *gp = mp->curg;

	if (!gp || gp == &mp->g0)
		throw("gopark: not on a goroutine");
	mp->waitunlockf = unlockf;
	mp->waitlock = arg;
	gp->waitreason = reason;
	/* here, on the goroutine's stack: perf -g shows who parks */
	GORO_PROBE2(goroutine_park, gp->goid, (int)reason);
	mcall(GA_PARK);
}

/*
 * As Go's ready(): acquirem, since on a goroutine's stack the P's queue
 * is in hand (and wakep may start an M: clone, mmap).  par: the waker
 * goes on running (it made room in or took from a buffered channel), so
 * the readied G is worth running beside it at once: a thief takes it
 * from runnext without runqgrab's backoff.
 */
static inline void ready_put(struct m *mp, struct g *gp, bool par)
{
	if (!mp || !mp->p)
		throw("goready: no P");
	if (unlikely(debug.handoffprobe))
		handoff_probe(mp, "goready: P handed off inside the runtime");
	__atomic_store_n(&gp->readypar, par, __ATOMIC_RELAXED);
	casgstatus(gp, G_WAITING, G_RUNNABLE);
	GORO_PROBE2(goroutine_ready, gp->goid,
		    mp->curg ? mp->curg->goid : 0);
	runqput(mp->p, gp, true);
}

static void ready(struct g *gp, bool par)
{
	struct m *mp = acquirem();

	ready_put(mp, gp, par);
	wakep();
	releasem(mp);
}

/* The caller holds a runtime lock (m->locks counts it): the P stays. */
void goready_locked(struct g *gp)
{
	ready_put(getm(), gp, false);
}

void wakep_after_unlock(void)
{
	struct m *mp;

	if (!__atomic_load_n(&sched.npidle, __ATOMIC_ACQUIRE))
		return;
	mp = acquirem();
	wakep_slow();
	releasem(mp);
}

void goready(struct g *gp)
{
	ready(gp, false);
}

void goready_par(struct g *gp)
{
	ready(gp, true);
}

void goyield(void)
{
	mcall(GA_GOYIELD);
}

/*
 * A preempted goroutine goes to the tail of its P's run queue (Go's
 * gopreempt_m uses the global queue).  Locally, a goroutine readied
 * behind it (runnext) runs first; from the global queue, the every-61st
 * fairness check could pick the spinner again before it, and the woken
 * goroutine would wait two slices.  Idle Ps still steal it.
 *
 * But the global queue, as Go does, when the local one is empty (else
 * goroutines that yielded there would wait for the every-61st-tick
 * check while this one runs again and again) or when the global one
 * holds work: what overflowed there - the children of a loop that
 * spawns, say - must run before the preempted goroutine does again, or
 * it piles up (bench/spawn at GOMAXPROCS=1 had 490 000 goroutines alive
 * at once, each on a fresh stack, instead of a slice's worth).
 */
void gopreempt(void)
{
	struct m *mp = getm();
	bool global = !mp->p || runqempty(mp->p) ||
		      __atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED) > 0;

	mp->curg->waitreason = WAIT_PREEMPTED;
	mcall(global ? GA_GOSCHED : GA_GOYIELD);
}

/* ---------------------------------------------------------------------
 * Syscalls and hand-off (Go's entersyscall, exitsyscall, handoffp)
 * ------------------------------------------------------------------- */

GORO_API void goro_syscall_enter(void)
{
	uintptr_t regs[5];
	struct m *mp;
	struct g *gp;
	struct p *pp;

	/* First, before this function reuses them: the caller's registers
	 * that may hold the only pointer to a GC object across the call
	 * (the collector cannot see a running thread's registers). */
	gc_save_calleesaved(regs);
	mp = getm();
	gp = mp ? mp->curg : NULL;
	if (gp && getg() == gp)
		memcpy(gp->syscallregs, regs, sizeof(regs));
	/* goro.ko sees the M block and hands its P off by itself */
	if (kmod_sysmon)
		return;
	if (!gp || getg() != gp || !mp->p || mp->locks)
		return;
	pp = mp->p;
	casgstatus(gp, G_RUNNING, G_SYSCALL);
	mp->oldp = pp;
	mp->p = NULL;
	__atomic_store_n(&pp->m, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&pp->syscalltick, pp->syscalltick + 1,
			 __ATOMIC_RELAXED);
	mslot_update(mp, GORO_MSTATUS_SYSCALL);
	/* From here the sysmon may take pp (CAS P_SYSCALL -> P_IDLE). */
	__atomic_store_n(&pp->status, P_SYSCALL, __ATOMIC_RELEASE);
}

/*
 * goro_syscall_enter for a call known to be long (Go's
 * entersyscallblock): the P is handed off now rather than after the
 * sysmon's 20 us.  The collector marks concurrently this way.
 */
void entersyscallblock(void)
{
	struct m *mp;

	goro_syscall_enter();
	mp = getm();
	if (!kmod_sysmon && mp && mp->oldp)
		retake_syscallp(mp->oldp);
}

/* Take a P whose M is in a syscall and hand it off (Go's retake): false
 * when the M took it back first. */
bool retake_syscallp(struct p *pp)
{
	uint32_t st = P_SYSCALL;

	if (!__atomic_compare_exchange_n(&pp->status, &st, P_IDLE, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	__atomic_add_fetch(&pp->syscalltick, 1, __ATOMIC_RELAXED);
	handoffp(pp);
	return true;
}

GORO_API void goro_syscall_exit(void)
{
	struct m *mp = getm();
	struct g *gp = mp ? mp->curg : NULL;
	struct p *pp;
	uint32_t st = P_SYSCALL;

	if (kmod_sysmon || !gp || getg() != gp ||
	    readgstatus(gp) != G_SYSCALL)
		return;
	pp = mp->oldp;
	mp->oldp = NULL;
	/* Fast path: our P is still waiting for us. */
	if (pp && __atomic_compare_exchange_n(&pp->status, &st, P_IDLE, false,
					      __ATOMIC_ACQ_REL,
					      __ATOMIC_RELAXED)) {
		acquirep(pp);
		casgstatus(gp, G_SYSCALL, G_RUNNING);
		mslot_update(mp, GORO_MSTATUS_RUNNING);
		return;
	}
	/* Any idle P will do. */
	pp = NULL;
	if (__atomic_load_n(&sched.npidle, __ATOMIC_ACQUIRE) &&
	    !__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE)) {
		lock(&sched.lock);
		pp = pidleget();
		unlock(&sched.lock);
	}
	if (pp) {
		acquirep(pp);
		casgstatus(gp, G_SYSCALL, G_RUNNING);
		mslot_update(mp, GORO_MSTATUS_RUNNING);
		return;
	}
	mcall(GA_EXITSYSCALL);
	/* running again, on some M with a P */
}

/*
 * goro.ko's hand-off (uapi/linux/goro.h, GORO_HANDOFF_*), the idle M's
 * half: it was unparked with mslot->retake = victim slot + 1 because
 * the victim blocked in the kernel holding a P.  Under sched.lock, take
 * the victim's P if the victim has not settled the hand-off itself
 * (handoff still LOST), holds no runtime lock (its runtime code would
 * go on using the P) and runs on it; then find it an M (handoffp).
 * The victim executes nothing before its signal handler
 * (handoff_lost), so what is read here cannot change under us.
 */
void mretake(struct m *mp)
{
	struct goro_mslot *s = mp->mslot;
	struct m *victim;
	struct p *pp = NULL;
	uint32_t r;

	if (!s || !__atomic_load_n(&s->retake, __ATOMIC_ACQUIRE))
		return;
	r = __atomic_exchange_n(&s->retake, 0, __ATOMIC_ACQ_REL);
	victim = r ? mslot_m(r - 1) : NULL;
	if (!victim || victim == mp || !victim->mslot)
		return;
	lock(&sched.lock);
	if (!__atomic_load_n(&victim->locks, __ATOMIC_ACQUIRE) &&
	    __atomic_load_n(&victim->mslot->handoff, __ATOMIC_SEQ_CST) ==
	    GORO_HANDOFF_LOST && victim->p &&
	    getpstatus(victim->p) == P_RUNNING && victim->p->m == victim) {
		pp = victim->p;
		victim->p = NULL;
		__atomic_store_n(&pp->m, NULL, __ATOMIC_RELAXED);
		setpstatus(pp, P_IDLE);
		__atomic_add_fetch(&preemptstats.retakes, 1, __ATOMIC_RELAXED);
	}
	unlock(&sched.lock);
	if (!pp)
		return;
	handoffp(pp);
	spare_m();
}

/*
 * goro.ko hands a blocked M's P only to an M parked idle, and Go's
 * handoffp would start one: keep one idle M around (Ms are never
 * freed, so they number at most the Ps plus the Ms blocked at once).
 */
void spare_m(void)
{
	bool need;

	if (!kmod_sysmon)
		return;
	lock(&sched.lock);
	need = !sched.nmidle &&
	       !__atomic_load_n(&sched.exiting, __ATOMIC_ACQUIRE);
	unlock(&sched.lock);
	if (need)
		newm(NULL, false);
}

/*
 * The victim's half, in its preemption signal handler, before it runs
 * any instruction after the blocking call.  Holding runtime locks it
 * keeps its P (mretake never takes it then).  Else, under sched.lock:
 * still holding its P it only settles the hand-off; without, it takes
 * an idle P or waits, off the kernel's idle list (slot SYSCALL), on
 * sched.pwait, which pidleput serves before the idle list.  The
 * goroutine stays on its thread, with its errno and libc state.
 *
 * The hand-off is settled (LOST -> NONE) under sched.lock before the M
 * gets a P again: mretake decides under that lock, and an idle M can
 * come with a token for this M that is stale (the sysmon may wake two
 * for one block, or one whose token waited while it ran).  Settled
 * after acquirep, such an M found LOST and its victim holding a P, took
 * the P, and the goroutine ran on without one (kmod_handoff_stress).
 */
void handoff_lost(struct m *mp)
{
	struct goro_mslot *s = mp->mslot;
	uint32_t lost = GORO_HANDOFF_LOST;
	struct p *pp = NULL;
	bool wait = false;

	if (!s || __atomic_load_n(&s->handoff, __ATOMIC_ACQUIRE) !=
		  GORO_HANDOFF_LOST)
		return;
	if (mp->locks)
		goto out_settle;
	lock(&sched.lock);
	__atomic_compare_exchange_n(&s->handoff, &lost, GORO_HANDOFF_NONE,
				    false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
	if (mp->p) {
		unlock(&sched.lock);
		return;
	}
	if (!__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE))
		pp = pidleget();
	if (!pp) {
		__atomic_store_n(&mp->pwait, 0, __ATOMIC_RELAXED);
		mp->pwaitlink = sched.pwait;
		__atomic_store_n(&sched.pwait, mp, __ATOMIC_RELAXED);
		wait = true;
	}
	unlock(&sched.lock);
	if (wait) {
		mslot_update(mp, GORO_MSTATUS_SYSCALL);
		while (!__atomic_load_n(&mp->pwait, __ATOMIC_ACQUIRE))
			syscall(SYS_futex, &mp->pwait, FUTEX_WAIT_PRIVATE, 0,
				NULL, NULL, 0);
		pp = __atomic_exchange_n(&mp->nextp, NULL, __ATOMIC_ACQUIRE);
	}
	acquirep(pp);
	if (mp->curg && getg() == mp->curg)
		mslot_update(mp, GORO_MSTATUS_RUNNING);
	return;

out_settle:
	__atomic_compare_exchange_n(&s->handoff, &lost, GORO_HANDOFF_NONE,
				    false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

/*
 * Find an M for pp, which nobody holds (taken from a syscall by the
 * sysmon): run it if there is work, or keep one spinning M going, else
 * idle it (or stop it for a stop-the-world that counts it).  Callable
 * from any thread, with no runtime lock held.
 */
void handoffp(struct p *pp)
{
	int32_t zero = 0;
	int64_t when;

	if (!runqempty(pp) ||
	    __atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED)) {
		startm(pp, false);
		return;
	}
	if (!__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE) &&
	    !atomic_load32(&sched.nmspinning) &&
	    !atomic_load32(&sched.npidle) &&
	    __atomic_compare_exchange_n(&sched.nmspinning, &zero, 1, false,
					__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
		startm(pp, true);
		return;
	}
	lock(&sched.lock);
	if (__atomic_load_n(&sched.gcwaiting, __ATOMIC_ACQUIRE)) {
		setpstatus(pp, P_GCSTOP);
		if (--sched.stopwait == 0)
			notewakeup(&sched.stopnote);
		unlock(&sched.lock);
		return;
	}
	if (sched.runqsize) {
		unlock(&sched.lock);
		startm(pp, false);
		return;
	}
	when = nobarrier_timer0(pp);
	pidleput(pp);
	unlock(&sched.lock);
	if (when)
		wakenetpoller(when);
}

GORO_API void goro_yield(void)
{
	struct m *mp = getm();

	if (!mp || !mp->curg) {
		sched_yield();
		return;
	}
	mcall(GA_GOSCHED);
}

GORO_API __attribute__((noreturn)) void goro_exit(void)
{
	struct m *mp = getm();

	if (!mp || !mp->curg) {
		print_str("fatal error: goro_exit outside a goroutine\n");
		fatal_exit();
	}
	if (mp->curg->flags & G_FLAG_MAIN)
		main_goexit = true;
	mcall(GA_GOEXIT);
	__builtin_unreachable();
}

GORO_API uint64_t goro_id(void)
{
	struct m *mp = getm();

	return mp && mp->curg ? mp->curg->goid : 0;
}

uint64_t gcount(void)
{
	int64_t n = 0;
	struct p *pp;

	/* dead Ps keep their delta: allp's entries are never freed */
	for (int i = 0; i < MAXPROCS; i++) {
		pp = __atomic_load_n(&allp[i], __ATOMIC_ACQUIRE);
		if (!pp)
			break;
		n += __atomic_load_n(&pp->gdelta, __ATOMIC_RELAXED);
	}
	return n < 1 ? 1 : (uint64_t)n;
}

/* Goroutines the runtime runs for itself (the collector, the finalizer
 * goroutine, the signal forwarder; none of them ever exits): left out
 * of goro_num_goroutine, as Go's NumGoroutine leaves out its own. */
static uint32_t nsystemg;

int spawn_system(void (*fn)(void *arg))
{
	int err = goro_spawn(fn, NULL, NULL);

	if (!err)
		__atomic_add_fetch(&nsystemg, 1, __ATOMIC_RELAXED);
	return err;
}

GORO_API int goro_num_goroutine(void)
{
	uint64_t n = gcount(), sys = __atomic_load_n(&nsystemg,
						      __ATOMIC_RELAXED);

	return (int)(n > sys ? n - sys : 1);
}

bool sync_can_spin(int iter)
{
	struct m *mp = getm();
	int32_t procs = atomic_load32(&gomaxprocs);

	if (iter >= 4 || ncpu <= 1 ||
	    procs <= atomic_load32(&sched.npidle) +
		     atomic_load32(&sched.nmspinning) + 1)
		return false;
	return mp && mp->p && runqempty(mp->p);
}

void sync_do_spin(void)
{
	for (int i = 0; i < 30; i++)
		arch_pause();
}

/* ---------------------------------------------------------------------
 * Stop the world, GOMAXPROCS
 * ------------------------------------------------------------------- */

/*
 * The Ps still running reach a safe point within tens of microseconds
 * (the allocator's, or the preemption signal's).  Wait that long on the
 * CPU before the futex: the wake-up of a sleeping thread costs as much
 * again on a host whose idle CPUs halt, and it is all pause.
 */
#define STOP_SPIN_NS	50000

static void stopnote_spin(void)
{
	int64_t until = 0;

	for (uint32_t i = 0;
	     !__atomic_load_n(&sched.stopnote.key, __ATOMIC_ACQUIRE); i++) {
		arch_pause();
		if (i % 64)
			continue;
		if (!until)
			until = nanotime() + STOP_SPIN_NS;
		else if (nanotime() > until)
			return;
	}
}

static void stoptheworld(void)
{
	struct m *mp = getm();
	struct p *pp;
	bool wait;

	lock(&sched.lock);
	sched.stopwait = gomaxprocs;
	__atomic_store_n(&sched.gcwaiting, 1, __ATOMIC_RELEASE);
	setpstatus(mp->p, P_GCSTOP);
	sched.stopwait--;
	for (int32_t i = 0; i < gomaxprocs; i++) {
		uint32_t st = P_SYSCALL;

		if (__atomic_compare_exchange_n(&allp[i]->status, &st,
						P_GCSTOP, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			sched.stopwait--;
	}
	while ((pp = pidleget())) {
		setpstatus(pp, P_GCSTOP);
		sched.stopwait--;
	}
	wait = sched.stopwait > 0;
	/* Go's preemptall: ask every running goroutine to stop now, not
	 * when its time slice ends (the collector's pause waits for it) */
	for (int32_t i = 0; wait && i < gomaxprocs; i++)
		if (allp[i] != mp->p &&
		    __atomic_load_n(&allp[i]->status, __ATOMIC_ACQUIRE) ==
		    P_RUNNING)
			preempt_p(allp[i]);
	unlock(&sched.lock);
	if (wait) {
		if (ncpu > 1)	/* else the spin holds the CPU they need */
			stopnote_spin();
		notesleep(&sched.stopnote);
		noteclear(&sched.stopnote);
	}
	if (sched.stopwait)
		throw("stoptheworld: not stopped");
}

static struct p *palloc(int32_t id)
{
	struct p *pp = aligned_alloc(64, (sizeof(*pp) + 63) & ~63UL);

	if (!pp)
		throw("procresize: out of memory");
	memset(pp, 0, sizeof(*pp));
	pp->id = id;
	setpstatus(pp, P_GCSTOP);
	return pp;
}

/* Move everything queued on pp elsewhere before it goes beyond
 * GOMAXPROCS (world stopped, sched.lock held). */
static void pdestroy(struct p *pp, struct p *heir)
{
	struct g *gp;
	bool inherit;

	while ((gp = runqget(pp, &inherit)))
		globrunqput(gp);
	movetimers(heir, pp);
	while ((gp = pp->gfree)) {
		pp->gfree = gp->schedlink;
		pp->gfreecnt--;
		gp->schedlink = sched.gfree;
		sched.gfree = gp;
		__atomic_store_n(&sched.ngfree, sched.ngfree + 1, __ATOMIC_RELAXED);
	}
	setpstatus(pp, P_DEAD);
}

/*
 * Change the number of Ps to nprocs (sched.lock held; the world stopped,
 * or nothing running yet when mp is NULL).  Returns the Ps with local
 * work, linked through ->link; the rest go idle.  The caller's M keeps
 * its P if it survives, else takes allp[0].
 */
static struct p *procresize(int32_t nprocs, struct m *mp)
{
	int32_t old = gomaxprocs;
	struct p *runnable = NULL;

	for (int32_t i = 0; i < nprocs; i++) {
		if (!allp[i])	/* the sysmon reads allp without locks */
			__atomic_store_n(&allp[i], palloc(i), __ATOMIC_RELEASE);
		else if (i >= old)
			setpstatus(allp[i], P_GCSTOP);
	}
	if (mp) {
		if (mp->p && mp->p->id < nprocs) {
			setpstatus(mp->p, P_RUNNING);
		} else {
			if (mp->p) {
				__atomic_store_n(&mp->p->m, NULL,
						 __ATOMIC_RELAXED);
				setpstatus(mp->p, P_GCSTOP);
				mp->p = NULL;
			}
			__atomic_store_n(&allp[0]->m, NULL, __ATOMIC_RELAXED);
			setpstatus(allp[0], P_IDLE);
			acquirep(allp[0]);
		}
	}
	for (int32_t i = nprocs; i < old; i++)
		pdestroy(allp[i], mp ? mp->p : allp[0]);
	for (int32_t i = nprocs - 1; i >= 0; i--) {
		struct p *pp = allp[i];

		if (mp && pp == mp->p)
			continue;
		setpstatus(pp, P_IDLE);
		__atomic_store_n(&pp->m, NULL, __ATOMIC_RELAXED);
		if (runqempty(pp)) {
			pidleput(pp);
		} else {
			pp->link = runnable;
			runnable = pp;
		}
	}
	__atomic_store_n(&gomaxprocs, nprocs, __ATOMIC_RELEASE);
	return runnable;
}

static void starttheworld(void)
{
	struct m *mp = getm();
	struct p *runnable, *pp;

	lock(&sched.lock);
	/*
	 * Before procresize, not after as in Go: its pidleput hands a P
	 * straight to an M waiting in handoff_lost, which may run its
	 * goroutine into schedule() before we could clear the flag; seeing
	 * it still set, that M stopped its P (gcstopm) for a stop-the-world
	 * already over, and the next one waited for that P forever
	 * (gc_stress foreign_thread_allocates under host load).  Nobody
	 * else holds a P meanwhile, and those who test the flag under
	 * sched.lock wait for us.
	 */
	__atomic_store_n(&sched.gcwaiting, 0, __ATOMIC_RELEASE);
	runnable = procresize(newprocs ? newprocs : gomaxprocs, mp);
	newprocs = 0;
	unlock(&sched.lock);
	while ((pp = runnable)) {
		runnable = pp->link;
		pp->link = NULL;
		startm(pp, false);
	}
	wakep();
}

GORO_API int goro_set_maxprocs(int n)
{
	struct m *mp = getm();
	int prev = atomic_load32(&gomaxprocs);

	if (n < 1 || !mp || !mp->p || !mp->curg)
		return prev;
	if (n > MAXPROCS)
		n = MAXPROCS;
	if (n == prev)
		return prev;
	goro_sema_acquire(&worldsema);	/* one stop-the-world at a time */
	stoptheworld();
	newprocs = n;
	starttheworld();
	goro_sema_release(&worldsema, false);
	return prev;
}

/* The collector's stop-the-world (mgc.c), under its worldsema. */
void stoptheworld_gc(void)
{
	stoptheworld();
}

void starttheworld_gc(void)
{
	starttheworld();
}

/* ---------------------------------------------------------------------
 * Start-up
 * ------------------------------------------------------------------- */

static int32_t getproccount(void)
{
	cpu_set_t set;

	if (!sched_getaffinity(0, sizeof(set), &set) && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return 1;
}

static int32_t env_gomaxprocs(void)
{
	const char *s = getenv("GOMAXPROCS");
	char *end;
	long v;

	if (!s || !*s)
		return ncpu;
	v = strtol(s, &end, 10);
	if (*end || v < 1) {
		print_str("goro: GOMAXPROCS=");
		print_str(s);
		print_str(" is not a positive number; using the CPU count\n");
		return ncpu;
	}
	return v > MAXPROCS ? MAXPROCS : (int32_t)v;
}

GORO_API int goro_main(void (*fn)(void *arg), void *arg)
{
	struct g *gp;
	int err;

	if (!fn)
		return -EINVAL;
	if (__atomic_exchange_n(&runtime_started, true, __ATOMIC_ACQ_REL))
		return -EBUSY;
	parsedebugvars();
	ncpu = getproccount();
	err = stackinit();
	if (err)
		return err;
	install_signals();
	mpark_init();
	preempt_init();
	kmod_sysmon_enable();
	sched.mnext = 1;

	lock(&sched.lock);
	procresize(env_gomaxprocs(), NULL);
	unlock(&sched.lock);

	gp = newproc1(allp[0], fn, arg, STACK_DEFAULT_SIZE,
		      (uint64_t)(uintptr_t)__builtin_return_address(0));
	if (!gp)
		return -ENOMEM;
	gp->flags |= G_FLAG_MAIN;
	lock(&sched.lock);
	globrunqput(gp);
	unlock(&sched.lock);
	startm(NULL, false);
	sysmon_start();
	spare_m();

	notesleep(&sched.mainnote);
	return 0;
}

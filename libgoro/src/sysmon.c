// SPDX-License-Identifier: MIT
/*
 * sysmon.c - the userland system monitor (Go's sysmon and retake).
 *
 * One thread, not an M: it holds no P and runs no goroutine, so it
 * works while every M is busy.  Each round it looks at every P:
 *
 *  1. A P in P_RUNNING or P_SYSCALL whose schedtick has not moved for a
 *     time slice (10 ms, GORODEBUG=timeslice=US) runs the same goroutine
 *     for that long: send the preemption signal to its M (tgkill).
 *     preempt.c decides there whether the goroutine can be switched
 *     away at once.
 *  2. A P in P_SYSCALL whose syscalltick has not moved for 20 us sits
 *     in a blocking call: CAS it to P_IDLE and hand it off (handoffp),
 *     unless it has nothing to do and others are idle or spinning, for
 *     up to a slice, as Go does.  The CAS races with the M's own
 *     goro_syscall_exit, and exactly one of them wins.
 *
 * Back-off as Go's: 20 us between rounds while it finds Ps to retake,
 * doubling after 50 idle rounds up to 10 ms.  While some P runs, a
 * round is due at the earliest end of a slice, and at most 2 ms apart.
 * A new goroutine seen on a P is taken to have started at the previous
 * round (Go takes "now"), and is preempted at once if a slice has passed
 * since: so a slice lasts between 8 and 10 ms plus the signal's latency,
 * never longer: with GOMAXPROCS=1 a goroutine woken behind a spinning
 * one waits at most one slice.  (Counting from first sight, Go's way,
 * a goroutine that follows a preempted one would get a round more than
 * its slice: with a 100 us slice, GORODEBUG=timeslice=100, that is a
 * whole second slice, and half the preemption rate.)
 * Unlike Go's it never sleeps indefinitely: an idle process costs it 100
 * wake-ups a second.
 *
 * The ticks it remembers (struct sysmontick) are its own; the P fields
 * it reads (status, schedtick, syscalltick, m) are written atomically by
 * their owners, and Ms are never freed, so a stale m is harmless: a
 * signal to an M that has moved on preempts nothing wrong (the handler
 * checks the M's state when it arrives).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "goro.h"
#include "runtime.h"

#define SYSMON_SLICE_NS		10000000LL	/* Go's syscall retake grace */
#define SYSMON_BLOCKED_NS	20000LL
#define SYSMON_DELAY_MIN_NS	20000LL
#define SYSMON_DELAY_MAX_NS	10000000LL
#define SYSMON_DELAY_BUSY_NS	2000000LL

struct sysmontick {
	uint32_t schedtick;
	int64_t schedwhen;
	uint32_t syscalltick;
	int64_t syscallwhen;
};

static struct sysmontick ticks[MAXPROCS];
static int pid;
static int64_t lastround;	/* when the previous round looked */
static int64_t slice_ns;	/* forcePreemptNS: GORODEBUG=timeslice */

static void preemptone(struct p *pp)
{
	struct m *mp = __atomic_load_n(&pp->m, __ATOMIC_ACQUIRE);
	int tid;

	if (!mp)
		return;
	tid = __atomic_load_n(&mp->tid, __ATOMIC_RELAXED);
	if (tid <= 0)
		return;
	__atomic_add_fetch(&preemptstats.sysmon_preempts, 1, __ATOMIC_RELAXED);
	syscall(SYS_tgkill, pid, tid, preempt_signo);
}

/* Stop-the-world (proc.c, sched.lock held): the goroutine running on
 * pp yields at its next safe point, or at once where it can be
 * preempted asynchronously. */
void preempt_p(struct p *pp)
{
	struct m *mp = __atomic_load_n(&pp->m, __ATOMIC_ACQUIRE);
	int tid;

	if (!mp)
		return;
	/* the handler sets g->preempt where it cannot switch at once */
	tid = __atomic_load_n(&mp->tid, __ATOMIC_RELAXED);
	if (tid > 0)
		syscall(SYS_tgkill, getpid(), tid, preempt_signo);
}

/* Is there nothing for a retaken P to do, with others ready to help? */
static bool syscall_p_unneeded(struct p *pp, struct sysmontick *pd,
			       int64_t now)
{
	return runqempty(pp) &&
	       __atomic_load_n(&sched.nmspinning, __ATOMIC_RELAXED) +
	       __atomic_load_n(&sched.npidle, __ATOMIC_RELAXED) > 0 &&
	       pd->syscallwhen + SYSMON_SLICE_NS > now;
}

/*
 * One round over the Ps.  Returns how many were retaken from syscalls;
 * *next gets the earliest end of a running slice (0 if none).
 */
static int retake(int64_t now, int64_t *next)
{
	int32_t procs = __atomic_load_n(&gomaxprocs, __ATOMIC_ACQUIRE);
	int n = 0;

	*next = 0;
	for (int32_t i = 0; i < procs; i++) {
		struct p *pp = __atomic_load_n(&allp[i], __ATOMIC_ACQUIRE);
		struct sysmontick *pd = &ticks[i];
		uint32_t st, t;

		if (!pp)
			continue;
		st = __atomic_load_n(&pp->status, __ATOMIC_ACQUIRE);
		if (st != P_RUNNING && st != P_SYSCALL)
			continue;
		t = __atomic_load_n(&pp->schedtick, __ATOMIC_RELAXED);
		if (pd->schedtick != t) {
			/* It started after the last round: count from there,
			 * so a slice never exceeds slice_ns. */
			pd->schedtick = t;
			pd->schedwhen = lastround ? lastround : now;
		}
		if (st == P_RUNNING && pd->schedwhen + slice_ns <= now) {
			preemptone(pp);
			/* again one slice later if it stays */
			pd->schedwhen = now;
		}
		if (st == P_RUNNING) {
			int64_t end = pd->schedwhen + slice_ns;

			if (!*next || end < *next)
				*next = end;
			continue;
		}
		t = __atomic_load_n(&pp->syscalltick, __ATOMIC_RELAXED);
		if (pd->syscalltick != t) {
			pd->syscalltick = t;
			pd->syscallwhen = now;
			continue;
		}
		if (now - pd->syscallwhen < SYSMON_BLOCKED_NS ||
		    syscall_p_unneeded(pp, pd, now))
			continue;
		if (!retake_syscallp(pp))
			continue;
		__atomic_add_fetch(&preemptstats.retakes, 1, __ATOMIC_RELAXED);
		n++;
	}
	lastround = now;
	return n;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };

	nanosleep(&ts, NULL);
}

static void *sysmon(void *arg)
{
	int64_t delay = SYSMON_DELAY_MIN_NS;
	int idle = 0;

	(void)arg;
	/* The default 50 us timer slack would stretch short slices by half. */
	if (slice_ns < 50 * SYSMON_DELAY_MIN_NS)
		prctl(PR_SET_TIMERSLACK, (unsigned long)slice_ns / 20);
	for (;;) {
		int64_t now, next, d;

		if (__atomic_load_n(&sched.exiting, __ATOMIC_ACQUIRE))
			return NULL;
		if (!idle)
			delay = SYSMON_DELAY_MIN_NS;
		else if (idle > 50)
			delay *= 2;
		if (delay > SYSMON_DELAY_MAX_NS)
			delay = SYSMON_DELAY_MAX_NS;
		now = nanotime();
		if (retake(now, &next))
			idle = 0;
		else
			idle++;
		d = delay;
		if (next) {
			if (d > SYSMON_DELAY_BUSY_NS)
				d = SYSMON_DELAY_BUSY_NS;
			if (next - now < d)
				d = next - now;
			if (d < SYSMON_DELAY_MIN_NS)
				d = SYSMON_DELAY_MIN_NS;
		}
		sleep_ns(d);
	}
}

void sysmon_start(void)
{
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;

	if (kmod_sysmon)
		return;		/* goro.ko's does the job */
	pid = getpid();
	slice_ns = (int64_t)debug.timeslice * 1000;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 << 10);
	/* Process signals go to the Ms or the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&th, &attr, sysmon, NULL))
		throw("sysmon: pthread_create failed");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

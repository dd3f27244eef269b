// SPDX-License-Identifier: MIT
/*
 * sched_stress: a million goroutines spawned and joined, a million
 * parked at once and released, spawn storms from many goroutines on all
 * Ps, work stealing, run-queue overflow into the global queue, and
 * goro_set_maxprocs while every P is busy.  Counts shrink under the
 * sanitizers (TSan keeps state per fiber) and to what free memory allows.
 */
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "sched_test.h"

static long big_n(long want, long bytes_each)
{
	long fit = avail_bytes() / bytes_each;

	if (SANITIZED && want > 20000)
		want = 20000;
	if (TSAN && want > 3000)
		want = 3000;
	want /= test_div();
	return fit < want ? fit : want;
}

/* The million-goroutine tests fault in a page per stack: give them time. */
FIXTURE(big) {
};
FIXTURE_SETUP(big)
{
}
FIXTURE_TEARDOWN(big)
{
}

static struct tgate gate;
static long counter;

static void inc(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	tgate_done(&gate);
}

static long spawn_n;

static void spawn_main(void *arg)
{
	(void)arg;
	tgate_add(&gate, spawn_n);
	for (long i = 0; i < spawn_n; i++)
		if (go(inc, NULL))
			return;
	tgate_wait(&gate);
}

TEST_F_TIMEOUT(big, spawn_1m_and_join, 180)
{
	spawn_n = big_n(1000000, 64 << 10);
	ASSERT_EQ(0, goro_main(spawn_main, NULL));
	ASSERT_EQ(spawn_n, counter);
	ksft_print_msg("%ld goroutines\n", spawn_n);
}

static struct tpark park;
static long parked_n, released, rss_per_g;

static void parker(void *arg)
{
	(void)arg;
	tpark_wait(&park);
	tgate_done(&gate);
}

static void park_main(void *arg)
{
	long before = rss_bytes();

	(void)arg;
	tgate_add(&gate, parked_n);
	for (long i = 0; i < parked_n; i++)
		if (go(parker, NULL))
			return;
	while (tpark_count(&park) < parked_n)
		goro_sleep(1000000);
	rss_per_g = (rss_bytes() - before) / parked_n;
	released = tpark_release(&park);
	tgate_wait(&gate);
}

TEST_F_TIMEOUT(big, park_1m_then_release, 240)
{
	parked_n = big_n(1000000, 16 << 10);
	ASSERT_EQ(0, goro_main(park_main, NULL));
	ASSERT_EQ(parked_n, released);
	ksft_print_msg("%ld parked, %ld bytes RSS each\n", parked_n, rss_per_g);
	if (!SANITIZED)
		ASSERT_LE(rss_per_g, 4096 + 512);
}

/* Spawn storm: many spawners at once, on every P. */
#define SPAWNERS	64
static long storm_each;

static void spawner(void *arg)
{
	(void)arg;
	for (long i = 0; i < storm_each; i++)
		if (go(inc, NULL))
			abort();
	tgate_done(&gate);
}

static void storm_main(void *arg)
{
	(void)arg;
	tgate_add(&gate, SPAWNERS + SPAWNERS * storm_each);
	for (int i = 0; i < SPAWNERS; i++)
		go(spawner, NULL);
	tgate_wait(&gate);
}

TEST(spawn_storm)
{
	/* Spawners outrun the spawned: all of them may be live at once. */
	storm_each = big_n(SPAWNERS * 5000L, 16 << 10) / SPAWNERS;
	if (TSAN && storm_each > 20)
		storm_each = 20;
	else if (SANITIZED && storm_each > 200)
		storm_each = 200;
	ASSERT_EQ(0, goro_main(storm_main, NULL));
	ASSERT_EQ(SPAWNERS * storm_each, counter);
}

/* Work stealing: one goroutine spawns busy ones; with 2 Ps the second
 * M must steal some (they all start on the spawner's P). */
#define STEAL_N		64
static int steal_tid[STEAL_N];

static void busy(void *arg)
{
	int64_t end = goro_nanotime() + 2 * 1000 * 1000;

	steal_tid[(long)arg] = (int)syscall(SYS_gettid);
	while (goro_nanotime() < end)
		;
	tgate_done(&gate);
}

static void steal_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	tgate_add(&gate, STEAL_N);
	for (long i = 0; i < STEAL_N; i++)
		go(busy, (void *)i);
	tgate_wait(&gate);
}

TEST(work_stealing_observable)
{
	int other = 0;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "one CPU");
	ASSERT_EQ(0, goro_main(steal_main, NULL));
	for (int i = 1; i < STEAL_N; i++)
		if (steal_tid[i] != steal_tid[0])
			other++;
	ASSERT_GT(other, 0);
}

/*
 * A goroutine readied while its P's goroutine spins (no runtime call,
 * and no preemptible text in a static test) runs on the idle P: the
 * readying's publication and its look for an idle P must not pass each
 * other, nor the idle M's pidleput and its last look at the queues
 * (lost, the spawned G waited in runnext: chan_stress's
 * free_after_seen_close hung).
 */
#define SPIN_ROUNDS	5000
static int spin_flag;
static long spin_lost;

static void set_flag(void *arg)
{
	(void)arg;
	__atomic_store_n(&spin_flag, 1, __ATOMIC_RELEASE);
}

static void spin_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	for (long i = 0; i < SPIN_ROUNDS / test_div(); i++) {
		int64_t end;

		__atomic_store_n(&spin_flag, 0, __ATOMIC_RELAXED);
		if (go(set_flag, NULL))
			abort();
		end = goro_nanotime() + 250 * 1000 * 1000;
		while (!__atomic_load_n(&spin_flag, __ATOMIC_ACQUIRE))
			if (goro_nanotime() > end) {
				spin_lost++;
				break;
			}
		/* a lost one runs when we yield: the next round starts clean */
		while (!__atomic_load_n(&spin_flag, __ATOMIC_ACQUIRE))
			goro_yield();
	}
}

TEST(spawned_runs_on_idle_p_while_parent_spins)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "one CPU");
	ASSERT_EQ(0, goro_main(spin_main, NULL));
	ASSERT_EQ(0, spin_lost);
}

/* Overflow: 1000 spawns without yielding on one P spill the ring. */
static int32_t overflow_seen;

static void nop(void *arg)
{
	(void)arg;
	tgate_done(&gate);
}

static void overflow_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(1);
	tgate_add(&gate, 1000);
	for (int i = 0; i < 1000; i++) {
		int32_t n;

		go(nop, NULL);
		n = __atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED);
		if (n > overflow_seen)
			overflow_seen = n;
	}
	tgate_wait(&gate);
}

TEST(runq_overflow_to_global)
{
	/* goro_spawn is a preemption point (as Go's newproc is): on a slow
	 * build (sanitizers, the VM) the loop could be preempted before its
	 * queue overflowed; a 10 s slice keeps it on the P */
	gorodebug_add("timeslice=10000000");
	/* and no hand-off: with goro.ko's sysmon a fresh stack's fault
	 * that waits (a debug kernel makes each one slow) hands the P to
	 * another M, which runs the queued goroutines before we look */
	gorodebug_add("kmodsysmon=0");
	ASSERT_EQ(0, goro_main(overflow_main, NULL));
	/* A full ring moves half of itself and the new G to the global
	 * queue in one batch; the spawner then goes on spilling until the
	 * back-pressure (proc.c: SPAWN_BACKLOG, 512) makes it yield: the
	 * most seen is three batches natively (the fourth passes 512, and
	 * by the time the spawner looks again the children ran); a slow
	 * kernel's hand-off or a preemption may run some earlier. */
	ASSERT_GE(overflow_seen, RUNQ_SIZE / 2 + 1);
	ASSERT_LE(overflow_seen, 3 * (RUNQ_SIZE / 2 + 1));
}

/*
 * Back-pressure: a loop that spawns 100 000 goroutines on one P never
 * has more than about SPAWN_BACKLOG (512) in the global queue plus a
 * full local ring and one overflow batch alive at once, where Go's
 * policy piles up a whole time slice's worth (tens of thousands).
 */
static long live_max;

static void bp_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(1);
	tgate_add(&gate, 100000);
	for (int i = 0; i < 100000; i++) {
		long live;

		go(nop, NULL);
		live = (long)goro_num_goroutine();
		if (live > live_max)
			live_max = live;
	}
	tgate_wait(&gate);
}

TEST(spawn_backpressure_bounds_live_goroutines)
{
	gorodebug_add("timeslice=10000000");	/* no preemption: the policy only */
	ASSERT_EQ(0, goro_main(bp_main, NULL));
	TH_LOG("at most %ld goroutines alive", live_max);
	ASSERT_LE(live_max, 512 + RUNQ_SIZE / 2 + 1 + RUNQ_SIZE + 1 + 8);
	ASSERT_GE(live_max, 512);
}

/* goro_set_maxprocs while other goroutines keep every P busy. */
static int stop_busy;
static long busy_rounds;

static void yielder(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop_busy, __ATOMIC_ACQUIRE)) {
		__atomic_add_fetch(&busy_rounds, 1, __ATOMIC_RELAXED);
		goro_yield();
	}
	tgate_done(&gate);
}

static int resize_ok = 1;

static void resize_main(void *arg)
{
	(void)arg;
	tgate_add(&gate, 8);
	for (int i = 0; i < 8; i++)
		go(yielder, NULL);
	for (int i = 0; i < 200; i++) {
		int want = 1 + i % 4;
		long before = __atomic_load_n(&busy_rounds, __ATOMIC_RELAXED);

		goro_set_maxprocs(want);
		if (goro_set_maxprocs(0) != want)
			resize_ok = 0;
		while (__atomic_load_n(&busy_rounds, __ATOMIC_RELAXED) < before + 10)
			goro_yield();
	}
	__atomic_store_n(&stop_busy, 1, __ATOMIC_RELEASE);
	tgate_wait(&gate);
}

TEST(set_maxprocs_while_busy)
{
	ASSERT_EQ(0, goro_main(resize_main, NULL));
	ASSERT_EQ(1, resize_ok);
}

TEST_HARNESS_MAIN

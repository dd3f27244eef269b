// SPDX-License-Identifier: MIT
/*
 * syscall_test: goro_syscall_enter/exit and the sysmon's P retake.
 * With GOMAXPROCS=1 a goroutine blocked in read() inside the bracket
 * must not stop the others; without the sysmon's retake the test hangs
 * (the harness's timeout fails it).  The tests named *kmod* need goro.ko
 * (the VM) and turn its sysmon on (GORODEBUG=kmodsysmon=1).
 */
#include <fcntl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "sched_test.h"

#define MS	1000000LL

static int pipefd[2];
static char got;
static ssize_t got_n;
static long others_done, others_done_at_read;
static struct tgate gate;

static void reader(void *arg)
{
	(void)arg;
	goro_syscall_enter();
	got_n = read(pipefd[0], &got, 1);
	goro_syscall_exit();
	others_done_at_read = __atomic_load_n(&others_done, __ATOMIC_ACQUIRE);
	tgate_done(&gate);
}

static void worker(void *arg)
{
	(void)arg;
	goro_sleep(2 * MS);
	for (int i = 0; i < 100; i++)
		goro_yield();
	__atomic_add_fetch(&others_done, 1, __ATOMIC_RELEASE);
	tgate_done(&gate);
}

static uint64_t retakes0;

static void pipe_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(1);
	retakes0 = __atomic_load_n(&preemptstats.retakes, __ATOMIC_RELAXED);
	tgate_add(&gate, 5);
	go(reader, NULL);
	goro_yield();		/* the reader blocks with our only P */
	for (int i = 0; i < 4; i++)
		go(worker, NULL);
	while (__atomic_load_n(&others_done, __ATOMIC_ACQUIRE) < 4)
		goro_sleep(MS);
	if (write(pipefd[1], "x", 1) != 1)
		return;
	tgate_wait(&gate);
}

TEST(blocked_reader_keeps_others_running)
{
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, goro_main(pipe_main, NULL));
	ASSERT_EQ(1, got_n);
	ASSERT_EQ('x', got);
	ASSERT_EQ(4, others_done);
	ASSERT_EQ(4, others_done_at_read);
	ASSERT_LT(retakes0, __atomic_load_n(&preemptstats.retakes,
					    __ATOMIC_RELAXED));
}

/* With goro.ko's sysmon no bracket is needed: the kernel sees the M
 * block and wakes an idle M to take its P (VM only). */
static void bare_reader(void *arg)
{
	(void)arg;
	got_n = read(pipefd[0], &got, 1);
	others_done_at_read = __atomic_load_n(&others_done, __ATOMIC_ACQUIRE);
	tgate_done(&gate);
}

static void bare_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(1);
	retakes0 = __atomic_load_n(&preemptstats.retakes, __ATOMIC_RELAXED);
	tgate_add(&gate, 5);
	go(bare_reader, NULL);
	goro_yield();
	for (int i = 0; i < 4; i++)
		go(worker, NULL);
	while (__atomic_load_n(&others_done, __ATOMIC_ACQUIRE) < 4)
		goro_sleep(MS);
	if (write(pipefd[1], "y", 1) != 1)
		return;
	tgate_wait(&gate);
}

TEST(blocked_reader_without_bracket_kmod)
{
	/* goro.ko with GORO_FEAT_SYSMON (the VM), its sysmon on as by default */
	if (access("/dev/goro", R_OK | W_OK))
		SKIP(return, "no /dev/goro");
	setenv("GORODEBUG", "kmodsysmon=1", 1);
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, goro_main(bare_main, NULL));
	ASSERT_EQ(1, got_n);
	ASSERT_EQ('y', got);
	ASSERT_EQ(4, others_done_at_read);
	ASSERT_LT(retakes0, __atomic_load_n(&preemptstats.retakes,
					    __ATOMIC_RELAXED));
}

/* Many short bracketed calls: the fast path, mixed with retakes. */
static long short_calls;

static void short_caller(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000; i++) {
		goro_syscall_enter();
		if (i % 100 == 0)
			usleep(100);	/* long enough to be retaken */
		else
			getppid();
		goro_syscall_exit();
		__atomic_add_fetch(&short_calls, 1, __ATOMIC_RELAXED);
	}
	tgate_done(&gate);
}

static void short_main(void *arg)
{
	(void)arg;
	tgate_add(&gate, 4);
	for (int i = 0; i < 4; i++)
		go(short_caller, NULL);
	tgate_wait(&gate);
	/* the world can still be stopped afterwards */
	goro_set_maxprocs(2);
	goro_set_maxprocs(1);
}

TEST(short_syscalls)
{
	ASSERT_EQ(0, goro_main(short_main, NULL));
	ASSERT_EQ(4 * 2000, short_calls);
}

/*
 * goro.ko's hand-off under load: goroutines on two Ps block in plain
 * usleep() just past the blocked threshold, thousands of times, so the
 * sysmon hands their Ps off while they wake.  After every call the M
 * must hold a P that says it is held by this M: a P taken while the M
 * slept must have been given back before its next instruction (the
 * sysmon's LOST published late used to lose it: "goready: no P").
 */
#define HS_G		4
#define HS_CALLS	3000

static long hs_calls, hs_nop, hs_foreign;
static struct goro_chan *hs_ch;

static void hs_caller(void *arg)
{
	long v = (long)arg;

	for (int i = 0; i < HS_CALLS; i++) {
		struct m *mp;

		usleep(25 + i % 16);
		mp = getm();
		if (!mp->p)
			__atomic_add_fetch(&hs_nop, 1, __ATOMIC_RELAXED);
		else if (__atomic_load_n(&mp->p->m, __ATOMIC_RELAXED) != mp)
			__atomic_add_fetch(&hs_foreign, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&hs_calls, 1, __ATOMIC_RELAXED);
		if (i % 8 == 0) {	/* the runtime uses the P right away */
			goro_chan_send(hs_ch, &v);
			goro_chan_recv(hs_ch, &v);
		}
	}
	tgate_done(&gate);
}

static void hs_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	retakes0 = __atomic_load_n(&preemptstats.retakes, __ATOMIC_RELAXED);
	hs_ch = goro_chan_make(sizeof(long), HS_G);
	tgate_add(&gate, HS_G);
	for (long i = 0; i < HS_G; i++)
		go(hs_caller, (void *)i);
	tgate_wait(&gate);
}

TEST(kmod_handoff_stress)
{
	if (access("/dev/goro", R_OK | W_OK))
		SKIP(return, "no /dev/goro");
	gorodebug_add("kmodsysmon=1");
	ASSERT_EQ(0, goro_main(hs_main, NULL));
	ASSERT_TRUE(kmod_sysmon);
	TH_LOG("%ld calls, %llu hand-offs", hs_calls,
	       (unsigned long long)(__atomic_load_n(&preemptstats.retakes,
						    __ATOMIC_RELAXED) -
				    retakes0));
	ASSERT_EQ(HS_G * HS_CALLS, hs_calls);
	ASSERT_EQ(0, hs_nop);
	ASSERT_EQ(0, hs_foreign);
	ASSERT_LT(retakes0, __atomic_load_n(&preemptstats.retakes,
					    __ATOMIC_RELAXED));
}

/*
 * Hand-offs while the collector stops and starts the world over and
 * over: an M that lost its P and waits for one (handoff_lost) is given
 * a P by starttheworld itself.  It once saw the stop-the-world flag
 * still set, stopped that P for a stop-the-world already over, and the
 * next one waited for it forever (a hang: the harness's timeout).  The
 * window is a few instructions of starttheworld: this loop exercises
 * the path ~1000 times a run but hit the old bug only under host load;
 * a standalone loop of foreign_thread_allocates (gc_stress) hung 4 runs
 * in 6 in the VM with both host CPUs busy, and none in 10 since.
 */
#define HG_G		3

static long hg_calls, hg_gcs;
static int hg_stop;

static void hg_caller(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&hg_stop, __ATOMIC_RELAXED)) {
		usleep(30);
		__atomic_add_fetch(&hg_calls, 1, __ATOMIC_RELAXED);
	}
	tgate_done(&gate);
}

static void hg_collector(void *arg)
{
	int64_t end = goro_nanotime() + 1500 * MS;

	(void)arg;
	while (goro_nanotime() < end) {
		goro_gc();
		hg_gcs++;
	}
	__atomic_store_n(&hg_stop, 1, __ATOMIC_RELAXED);
	tgate_done(&gate);
}

static void hg_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	retakes0 = __atomic_load_n(&preemptstats.retakes, __ATOMIC_RELAXED);
	tgate_add(&gate, HG_G + 1);
	for (long i = 0; i < HG_G; i++)
		go(hg_caller, NULL);
	go(hg_collector, NULL);
	tgate_wait(&gate);
}

TEST(kmod_handoff_during_gc)
{
	if (access("/dev/goro", R_OK | W_OK))
		SKIP(return, "no /dev/goro");
	gorodebug_add("kmodsysmon=1");
	ASSERT_EQ(0, goro_main(hg_main, NULL));
	ASSERT_TRUE(kmod_sysmon);
	TH_LOG("%ld calls, %ld collections, %llu hand-offs", hg_calls, hg_gcs,
	       (unsigned long long)(__atomic_load_n(&preemptstats.retakes,
						    __ATOMIC_RELAXED) -
				    retakes0));
	ASSERT_LT(0, hg_gcs);
	ASSERT_LT(retakes0, __atomic_load_n(&preemptstats.retakes,
					    __ATOMIC_RELAXED));
}

/*
 * The runtime's own sections on a goroutine's stack (goready, mcall and
 * its direct switch) hold their P's run queue without a lock.  A page
 * fault that sleeps there (mmap_lock) is a block goro.ko's sysmon sees
 * like any other; its hand-off must leave such an M its P (m->locks),
 * else two Ms use one run queue.  GORODEBUG=handoffprobe makes every
 * such section sleep 200 us (the hand-off threshold is 20 us) and
 * aborts if the P was taken meanwhile; the plain usleep()s between
 * show that the sysmon did hand Ps off all along.  Without m->locks in
 * those sections: "goready: P handed off inside the runtime".
 */
#define HR_ROUNDS	300

static long hr_rounds;

static void hr_pong(void *arg)
{
	struct goro_chan **c = arg;
	long v;

	for (int i = 0; i < HR_ROUNDS; i++) {
		goro_chan_recv(c[0], &v);
		goro_chan_send(c[1], &v);
	}
	tgate_done(&gate);
}

static void hr_ping(void *arg)
{
	struct goro_chan **c = arg;
	long v;

	for (long i = 0; i < HR_ROUNDS; i++) {
		goro_chan_send(c[0], &i);
		goro_chan_recv(c[1], &v);
		if (v == i)
			__atomic_add_fetch(&hr_rounds, 1, __ATOMIC_RELAXED);
		if (i % 16 == 0)
			usleep(100);
		goro_yield();
	}
	tgate_done(&gate);
}

static void hr_main(void *arg)
{
	static struct goro_chan *c[2][2];

	(void)arg;
	goro_set_maxprocs(2);
	retakes0 = __atomic_load_n(&preemptstats.retakes, __ATOMIC_RELAXED);
	tgate_add(&gate, 4);
	for (int k = 0; k < 2; k++) {
		c[k][0] = goro_chan_make(sizeof(long), 0);
		c[k][1] = goro_chan_make(sizeof(long), 0);
		go(hr_pong, c[k]);
		go(hr_ping, c[k]);
	}
	tgate_wait(&gate);
}

TEST(kmod_handoff_spares_runtime_sections)
{
	if (access("/dev/goro", R_OK | W_OK))
		SKIP(return, "no /dev/goro");
	gorodebug_add("kmodsysmon=1,handoffprobe=200");
	ASSERT_EQ(0, goro_main(hr_main, NULL));
	ASSERT_TRUE(kmod_sysmon);
	TH_LOG("%llu hand-offs",
	       (unsigned long long)(__atomic_load_n(&preemptstats.retakes,
						    __ATOMIC_RELAXED) -
				    retakes0));
	ASSERT_EQ(2 * HR_ROUNDS, hr_rounds);
	ASSERT_LT(retakes0, __atomic_load_n(&preemptstats.retakes,
					    __ATOMIC_RELAXED));
}

TEST(bracket_outside_goroutine_is_noop)
{
	goro_syscall_enter();
	goro_syscall_exit();
	ASSERT_EQ(0, goro_id());
}

/* A goroutine in a bracketed call is not asleep: no deadlock report
 * while it blocks; the report still comes when everything is parked. */
static void sleepy(void *arg)
{
	(void)arg;
	goro_syscall_enter();
	usleep(50000);
	goro_syscall_exit();
	print_str("syscall done\n");
	goro_chan_recv(NULL, NULL);
}

static void deadlock_main(void *arg)
{
	(void)arg;
	go(sleepy, NULL);
	goro_chan_recv(NULL, NULL);
}

static void deadlock_child(void)
{
	goro_main(deadlock_main, NULL);
}

TEST(deadlock_waits_for_syscall)
{
	char buf[8192];
	int st = run_child(deadlock_child, "GOMAXPROCS=1", buf, sizeof(buf));
	char *done = strstr(buf, "syscall done"), *dead = strstr(buf, "deadlock!");

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, done);
	ASSERT_NE(NULL, dead);
	ASSERT_LT(done, dead);
}

TEST_HARNESS_MAIN

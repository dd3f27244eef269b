// SPDX-License-Identifier: MIT
/*
 * sched_basic: goro_main, goroutine identity and counts, goro_yield,
 * goro_exit, GOMAXPROCS handling, and what the direct goroutine-to-
 * goroutine switch must not starve (timers, I/O).
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "sched_test.h"

static int ran;
static uint64_t main_id;

static void set_ran(void *arg)
{
	(void)arg;
	ran = 1;
	main_id = goro_id();
}

TEST(main_runs_and_returns)
{
	ASSERT_EQ(0, goro_id());
	ASSERT_EQ(0, goro_main(set_ran, NULL));
	ASSERT_EQ(1, ran);
	ASSERT_EQ(1, main_id);
	/* only once per process */
	ASSERT_EQ(-EBUSY, goro_main(set_ran, NULL));
}

TEST(spawn_outside_runtime_fails)
{
	ASSERT_EQ(-EPERM, go(set_ran, NULL));
	ASSERT_EQ(-EINVAL, goro_main(NULL, NULL));
}

#define NIDS	100
static uint64_t ids[NIDS];
static struct tgate idgate;
/* the children stay alive until main has counted them: a preemption
 * of main (or the other P) could otherwise run them all to the end */
static struct goro_waitgroup idhold;

static void record_id(void *arg)
{
	ids[(long)arg] = goro_id();
	goro_waitgroup_wait(&idhold);
	tgate_done(&idgate);
}

static int ids_ok, count_before, count_during, count_after;

static void ids_main(void *arg)
{
	(void)arg;
	count_before = goro_num_goroutine();
	tgate_add(&idgate, NIDS);
	goro_waitgroup_add(&idhold, 1);
	for (long i = 0; i < NIDS; i++)
		if (go(record_id, (void *)i))
			return;
	count_during = goro_num_goroutine();
	goro_waitgroup_done(&idhold);
	tgate_wait(&idgate);
	goro_yield();
	ids_ok = 1;
	for (int i = 0; i < NIDS; i++)
		for (int j = i + 1; j < NIDS; j++)
			if (ids[i] == ids[j] || ids[i] < 2)
				ids_ok = 0;
	/* goroutines that ran tgate_done may still be exiting */
	count_after = wait_num_goroutine(1);
}

TEST(ids_unique_and_counts)
{
	ASSERT_EQ(0, goro_main(ids_main, NULL));
	ASSERT_EQ(1, ids_ok);
	ASSERT_EQ(1, count_before);
	ASSERT_EQ(NIDS + 1, count_during);
	ASSERT_EQ(1, count_after);
}

/*
 * Ids come to each P in batches and the count is a per-P delta: spawn
 * from goroutines on both Ps, across a GOMAXPROCS change that kills a
 * P and brings it back, and every id must still be unique and the count
 * exact.
 */
#define NSPAWNERS	4
#define NPERSPAWNER	(TSAN ? 400 : 3000)	/* TSan: a fiber each, ~5 ms */
static uint64_t pids[NSPAWNERS * NPERSPAWNER];
static struct tgate pgate, pspawners;
static struct goro_waitgroup phold;
static int pcount_during, pcount_after, pids_bad;

static void precord(void *arg)
{
	pids[(long)arg] = goro_id();
	goro_waitgroup_wait(&phold);
	tgate_done(&pgate);
}

static void pspawner(void *arg)
{
	long base = (long)arg * NPERSPAWNER;

	for (long i = 0; i < NPERSPAWNER; i++) {
		if (go(precord, (void *)(base + i)))
			break;
		if (!(i & 63))
			goro_yield();	/* let the other P steal spawners */
	}
	tgate_done(&pspawners);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void pids_main(void *arg)
{
	(void)arg;
	tgate_add(&pgate, NSPAWNERS * NPERSPAWNER);
	tgate_add(&pspawners, NSPAWNERS);
	goro_waitgroup_add(&phold, 1);
	for (long s = 0; s < NSPAWNERS; s++) {
		go(pspawner, (void *)s);
		if (s == NSPAWNERS / 2) {
			goro_set_maxprocs(1);
			goro_set_maxprocs(2);
		}
	}
	tgate_wait(&pspawners);
	pcount_during = goro_num_goroutine();
	goro_waitgroup_done(&phold);
	tgate_wait(&pgate);
	pcount_after = wait_num_goroutine(1);
	qsort(pids, NSPAWNERS * NPERSPAWNER, sizeof(pids[0]), cmp_u64);
	for (int i = 0; i < NSPAWNERS * NPERSPAWNER; i++)
		pids_bad += pids[i] < 2 || (i && pids[i] == pids[i - 1]);
}

TEST(ids_unique_across_ps)
{
	setenv("GOMAXPROCS", "2", 1);
	ASSERT_EQ(0, goro_main(pids_main, NULL));
	unsetenv("GOMAXPROCS");
	EXPECT_EQ(0, pids_bad);
	/* main and the children; the spawners have all returned, but
	 * one may still be on its way out */
	EXPECT_LE(NSPAWNERS * NPERSPAWNER + 1, pcount_during);
	EXPECT_GE(NSPAWNERS * NPERSPAWNER + 1 + NSPAWNERS, pcount_during);
	EXPECT_EQ(1, pcount_after);
}

static int exit_reached, exit_after;
static struct tgate exitgate;

static void deep_exit(int depth)
{
	if (depth < 0)
		return;
	if (depth == 0) {
		tgate_done(&exitgate);
		goro_exit();
	}
	deep_exit(depth - 1);
	exit_after = 1;	/* never runs */
}

static void exiter(void *arg)
{
	(void)arg;
	exit_reached = 1;
	deep_exit(10);
}

static void exit_main(void *arg)
{
	(void)arg;
	tgate_add(&exitgate, 1);
	go(exiter, NULL);
	tgate_wait(&exitgate);
	wait_num_goroutine(1);
}

TEST(goro_exit_ends_goroutine)
{
	ASSERT_EQ(0, goro_main(exit_main, NULL));
	ASSERT_EQ(1, exit_reached);
	ASSERT_EQ(0, exit_after);
	ASSERT_EQ(1, goro_num_goroutine());
}

/* Main calls goro_exit: the others finish, then Go's deadlock message. */
static void short_sleeper(void *arg)
{
	(void)arg;
	goro_sleep(5 * 1000 * 1000);
}

static void goexit_main(void *arg)
{
	(void)arg;
	go(short_sleeper, NULL);
	goro_exit();
}

static void child_goexit(void)
{
	goro_main(goexit_main, NULL);
	_exit(0);
}

TEST(main_goexit_reports_deadlock)
{
	char out[8192];
	int st = run_child(child_goexit, NULL, out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "fatal error: no goroutines (main called goro_exit) - deadlock!"));
}

static int procs_seen, procs_prev, procs_after;

static void procs_main(void *arg)
{
	(void)arg;
	procs_seen = goro_set_maxprocs(0);
	procs_prev = goro_set_maxprocs(3);
	procs_after = goro_set_maxprocs(-1);
	goro_set_maxprocs(procs_prev);
}

static void child_procs(void)
{
	goro_main(procs_main, NULL);
	_exit(procs_seen == 5 && procs_prev == 5 && procs_after == 3 ? 0 : 1);
}

TEST(gomaxprocs_env)
{
	char out[1024];
	int st = run_child(child_procs, "GOMAXPROCS=5", out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
}

static void child_badenv(void)
{
	goro_main(procs_main, NULL);
	_exit(procs_seen >= 1 ? 0 : 1);
}

TEST(gomaxprocs_env_bad_warns)
{
	char out[1024];
	int st = run_child(child_badenv, "GOMAXPROCS=banana", out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "GOMAXPROCS=banana"));
}

static void child_gorodebug(void)
{
	goro_main(procs_main, NULL);
	_exit(0);
}

TEST(gorodebug_bad_value_warns_once)
{
	char out[2048];
	int st = run_child(child_gorodebug,
			   "GORODEBUG=schedtrace=x,nosuch=1,invariants=1",
			   out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "bad value in \"schedtrace=x\""));
	ASSERT_NE(NULL, strstr(out, "unknown option \"nosuch=1\""));
}

/*
 * Fairness: on one P, a goroutine that yields to the local queue in a
 * loop always finds itself runnable; main waits on the global queue
 * (goro_yield) and must still run within 61 schedule ticks or so.  Main
 * first yields until the spinner has run: its first yield may land on
 * the tick that serves the global queue first, and run main again before
 * the spinner ever did (the 6.1 VM saw that once).
 */
static int fair_flag, fair_rounds, fair_rounds_seen;

static void local_spinner(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&fair_flag, __ATOMIC_ACQUIRE) &&
	       fair_rounds < 10000000) {
		fair_rounds++;
		goyield();
	}
}

static void fair_main(void *arg)
{
	int before;

	(void)arg;
	goro_set_maxprocs(1);
	go(local_spinner, NULL);
	while (!__atomic_load_n(&fair_rounds, __ATOMIC_RELAXED))
		goro_yield();
	before = __atomic_load_n(&fair_rounds, __ATOMIC_RELAXED);
	goro_yield();
	fair_rounds_seen = __atomic_load_n(&fair_rounds, __ATOMIC_RELAXED) -
			   before;
	__atomic_store_n(&fair_flag, 1, __ATOMIC_RELEASE);
}

TEST(global_queue_not_starved)
{
	ASSERT_EQ(0, goro_main(fair_main, NULL));
	ASSERT_LT(fair_rounds_seen, 200);
}

/*
 * Which parking path ran: /dev/goro's when the module is loaded (the VM
 * suite), the futex otherwise or with GORODEBUG=kmod=0.  Goroutines that
 * sleep make idle Ms park; with the module each park is counted in the
 * M's shared slot.
 */
static uint64_t kmod_parks;
static bool kmod_was_active;

static void sleeper(void *arg)
{
	for (int i = 0; i < 20; i++)
		goro_sleep(200 * 1000);
	tgate_done(arg);
}

static void parks_main(void *arg)
{
	static struct tgate g;

	(void)arg;
	goro_set_maxprocs(2);
	tgate_add(&g, 4);
	for (int i = 0; i < 4; i++)
		go(sleeper, &g);
	tgate_wait(&g);
	kmod_was_active = kmod_active;
	for (struct m *mp = __atomic_load_n(&allm, __ATOMIC_ACQUIRE); mp;
	     mp = mp->alllink)
		if (mp->mslot)
			kmod_parks += __atomic_load_n(&mp->mslot->nparks,
						      __ATOMIC_RELAXED);
}

TEST(park_path_matches_module)
{
	const char *dbg = getenv("GORODEBUG");
	bool want = access("/dev/goro", R_OK | W_OK) == 0 &&
		    !(dbg && strstr(dbg, "kmod=0"));

	ASSERT_EQ(0, goro_main(parks_main, NULL));
	ASSERT_EQ(want, kmod_was_active);
	if (want) {
		ASSERT_GT(kmod_parks, 0);
	} else {
		ASSERT_EQ(0, kmod_parks);
	}
	ksft_print_msg("%s path, %llu kernel parks\n",
		       want ? "goro.ko" : "futex",
		       (unsigned long long)kmod_parks);
}

/*
 * The direct switch: two goroutines that ping-pong over unbuffered
 * channels on one P switch straight to each other and never pass
 * through schedule().  A timer due meanwhile, and a goroutine whose
 * I/O became ready, must still run (switch_direct falls back to g0
 * when a timer of the P is due, and one time in 61 for the poller).
 */
static struct goro_chan *pp_ping, *pp_pong;
static int pp_stop;
static long pp_rounds;

static void pp_ponger(void *arg)
{
	long v;

	(void)arg;
	while (goro_chan_recv(pp_ping, &v))
		goro_chan_send(pp_pong, &v);
}

static void pp_pinger(void *arg)
{
	long v = 0;

	while (!__atomic_load_n(&pp_stop, __ATOMIC_ACQUIRE)) {
		goro_chan_send(pp_ping, &v);
		goro_chan_recv(pp_pong, &v);
		pp_rounds++;
	}
	goro_chan_close(pp_ping);
	tgate_done(arg);
}

static void pp_start(struct tgate *g)
{
	goro_set_maxprocs(1);
	pp_ping = goro_chan_make(sizeof(long), 0);
	pp_pong = goro_chan_make(sizeof(long), 0);
	pp_stop = 0;
	pp_rounds = 0;
	tgate_add(g, 1);
	go(pp_ponger, NULL);
	go(pp_pinger, g);
}

static void pp_finish(struct tgate *g)
{
	__atomic_store_n(&pp_stop, 1, __ATOMIC_RELEASE);
	tgate_wait(g);
	goro_chan_free(pp_ping);
	goro_chan_free(pp_pong);
}

static int64_t pp_slept_ns;
static long pp_rounds_seen;

static void timer_pp_main(void *arg)
{
	struct tgate g = { 0 };
	int64_t t0;

	(void)arg;
	pp_start(&g);
	t0 = goro_nanotime();
	/* 40 short sleeps: a late timer shows forty times over (without
	 * the check, a backstop wakes each some 30 ms late) */
	for (int i = 0; i < 40; i++)
		goro_sleep(1000 * 1000);
	pp_slept_ns = goro_nanotime() - t0;
	pp_rounds_seen = pp_rounds;
	pp_finish(&g);
}

TEST(timer_fires_during_direct_switches)
{
	ASSERT_EQ(0, goro_main(timer_pp_main, NULL));
	TH_LOG("40 x 1 ms slept in %lld ms over %ld round trips",
	       (long long)(pp_slept_ns / 1000000), pp_rounds_seen);
	ASSERT_GE(pp_slept_ns, 40 * 1000 * 1000);
	ASSERT_LT(pp_slept_ns, 500LL * 1000 * 1000);
	ASSERT_LT(0, pp_rounds_seen);
}

static int io_pipe[2];

static void *io_writer(void *arg)
{
	(void)arg;
	usleep(20 * 1000);
	if (write(io_pipe[1], "x", 1) != 1)
		abort();
	return NULL;
}

static ssize_t io_got;

static void io_pp_main(void *arg)
{
	struct tgate g = { 0 };
	pthread_t t;
	int64_t t0;
	char c;

	(void)arg;
	if (pipe(io_pipe) || goro_fd_attach(io_pipe[0]))
		return;
	pp_start(&g);
	if (pthread_create(&t, NULL, io_writer, NULL))
		return;
	t0 = goro_nanotime();
	io_got = goro_read(io_pipe[0], &c, 1);
	pp_slept_ns = goro_nanotime() - t0;
	pp_rounds_seen = pp_rounds;
	pp_finish(&g);
	pthread_join(t, NULL);
	goro_close(io_pipe[0]);
	close(io_pipe[1]);
}

TEST(io_wakes_during_direct_switches)
{
	ASSERT_EQ(0, goro_main(io_pp_main, NULL));
	TH_LOG("read after %lld ms over %ld round trips",
	       (long long)(pp_slept_ns / 1000000), pp_rounds_seen);
	ASSERT_EQ(1, io_got);
	ASSERT_LT(pp_slept_ns, 1000LL * 1000 * 1000);
	ASSERT_LT(0, pp_rounds_seen);
}

TEST_HARNESS_MAIN

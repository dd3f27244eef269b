// SPDX-License-Identifier: MIT
/*
 * gc_stress: the collector under load.  Goroutines on every P mutate
 * pointer graphs of mixed-size objects across many collections and
 * check every reachable node's checksum (an object freed too early is
 * zeroed or reused when handed out again, so its checksum breaks); a
 * foreign thread allocates through the locked path meanwhile; GOGC off,
 * GOMEMLIMIT and the scavengers; gctrace's lines and CPU share; gcstress with
 * channels; the background collector keeps the heap at its goal while
 * two Ps allocate; and, in the ASan build, a freed object is poisoned.
 */
#include <pthread.h>

#include "kselftest_harness.h"
#include "sched_test.h"
#include "malloc.h"

#define MS	(1000 * 1000LL)

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* ---- pointer graphs mutated on every P ------------------------------ */

#define NKIDS	3

struct gnode {
	uint64_t id;
	uint64_t check;
	struct gnode *kid[NKIDS];
	uint64_t tail[];	/* 0..30 words, mix(id + i) */
};

static int nwords_of(uint64_t id)
{
	return (int)(mix(id) % 31);
}

static struct gnode *gnode_new(uint64_t id)
{
	int n = nwords_of(id);
	struct gnode *g = goro_alloc(sizeof(*g) + (size_t)n * 8);

	if (!g)
		return NULL;
	g->id = id;
	g->check = mix(id ^ 0xabcdef);
	for (int i = 0; i < n; i++)
		g->tail[i] = mix(id + (uint64_t)i);
	return g;
}

static bool gnode_ok(const struct gnode *g)
{
	int n;

	if (g->check != mix(g->id ^ 0xabcdef))
		return false;
	n = nwords_of(g->id);
	for (int i = 0; i < n; i++)
		if (g->tail[i] != mix(g->id + (uint64_t)i))
			return false;
	return true;
}

#define NSLOTS	2048

struct worker {
	int idx;
	long iters;
	long bad;
	long checked;
	struct goro_waitgroup *wg;
};

static long verify(struct gnode **slots, long *checked)
{
	long bad = 0;

	for (int i = 0; i < NSLOTS; i++) {
		struct gnode *g = slots[i];

		if (!g)
			continue;
		bad += !gnode_ok(g);
		for (int k = 0; k < NKIDS; k++)
			if (g->kid[k]) {
				bad += !gnode_ok(g->kid[k]);
				(*checked)++;
			}
		(*checked)++;
	}
	return bad;
}

static void mutator(void *arg)
{
	struct worker *w = arg;
	struct gnode **slots = goro_alloc(NSLOTS * sizeof(*slots));
	uint64_t id = (uint64_t)w->idx << 40, r = (uint64_t)w->idx + 1;

	for (long it = 0; it < w->iters; it++) {
		struct gnode *g = gnode_new(++id);
		uint32_t s;

		r = mix(r + (uint64_t)it);
		s = (uint32_t)(r % NSLOTS);
		for (int k = 0; k < NKIDS; k++)
			g->kid[k] = slots[(r >> (12 + 11 * k)) % NSLOTS];
		slots[s] = g;
		if (it % 7 == 0)	/* garbage in between */
			(void)goro_alloc_noscan((size_t)(r % 700) + 1);
		if (it % 20000 == 0)
			w->bad += verify(slots, &w->checked);
	}
	w->bad += verify(slots, &w->checked);
	goro_waitgroup_done(w->wg);
}

static struct worker workers[4];
static struct goro_memstats graph_st, graph_after;

static void graphs_main(void *arg)
{
	struct goro_waitgroup wg = { 0 };
	int n = goro_set_maxprocs(0) > 1 ? 4 : 2;

	(void)arg;
	goro_set_gc_percent(25);	/* many collections */
	goro_waitgroup_add(&wg, n);
	for (int i = 0; i < n; i++) {
		workers[i].idx = i;
		workers[i].iters = SANITIZED ? 60000 : 300000;
		workers[i].wg = &wg;
		go(mutator, &workers[i]);
	}
	goro_waitgroup_wait(&wg);
	goro_read_memstats(&graph_st);
	/* the sweep is lazy: what the last background cycles found dead
	 * is counted as freed once a cycle's start finishes their sweep
	 * (read right away, the frees ranged over 100 000-234 000) */
	goro_gc();
	goro_read_memstats(&graph_after);
}

/* A fixture only for TEST_F_TIMEOUT: under qemu's emulation every
 * write fault of the concurrent mark's tracking is costly, and the test
 * outgrew the default 30 s there. */
FIXTURE(slow) {
	int unused;
};

FIXTURE_SETUP(slow)
{
}

FIXTURE_TEARDOWN(slow)
{
}

TEST_F_TIMEOUT(slow, graphs_on_all_ps, 180)
{
	ASSERT_EQ(0, goro_main(graphs_main, NULL));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, workers[i].bad);
		ASSERT_GT(workers[i].checked, NSLOTS);
	}
	TH_LOG("%llu collections, %llu of %llu objects freed",
	       (unsigned long long)graph_st.num_gc,
	       (unsigned long long)graph_after.frees,
	       (unsigned long long)graph_after.mallocs);
	ASSERT_GE(graph_st.num_gc, 5);
	ASSERT_GT(graph_after.frees, 100000);
	ASSERT_GT(graph_st.pause_total_ns, 0);
	ASSERT_EQ(graph_st.num_forced_gc, 0);
}

/* ---- the background collector bounds the heap ------------------------ */

/*
 * Two goroutines allocate garbage as fast as they can beside a live set
 * while the collector marks on its own goroutine: past the goal they
 * must assist and then wait for the pause, so heap_live never runs more
 * than a few spans past next_gc (without the wait it ran past it by
 * megabytes while the marker kept to its 25%).  The collector's own
 * goroutine is not counted by goro_num_goroutine.
 */
#define NLIVE		((TSAN ? 2 : 8) << 20) / 64
#define BOUND_ALLOCS	(TSAN ? 400000 : 4000000)
#define BOUND_SLACK	(1 << 20)

static void **live_set;		/* a global: a root */
static uint64_t bound_over;	/* atomic: the largest overshoot seen */
static int bound_ngor;

static void bound_allocator(void *arg)
{
	for (long i = 0; i < BOUND_ALLOCS; i++) {
		uint64_t live, goal, over, seen;

		*(volatile uint64_t *)goro_alloc(64) = (uint64_t)i;
		live = __atomic_load_n(&heap_live, __ATOMIC_RELAXED);
		goal = __atomic_load_n(&next_gc, __ATOMIC_RELAXED);
		over = live > goal ? live - goal : 0;
		seen = __atomic_load_n(&bound_over, __ATOMIC_RELAXED);
		while (over > seen &&
		       !__atomic_compare_exchange_n(&bound_over, &seen, over,
						    false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED))
			;
	}
	goro_waitgroup_done(arg);
}

static void bound_main(void *arg)
{
	struct goro_waitgroup wg = { 0 };

	(void)arg;
	goro_set_gc_percent(100);
	live_set = goro_alloc(NLIVE * sizeof(void *));
	for (long i = 0; i < NLIVE; i++)
		live_set[i] = goro_alloc(64);
	goro_waitgroup_add(&wg, 2);
	go(bound_allocator, &wg);
	go(bound_allocator, &wg);
	goro_waitgroup_wait(&wg);
	/* an allocator that called done may still be on its way out; the
	 * collector's goroutine, were it counted, would keep it at 2 */
	bound_ngor = wait_num_goroutine(1);
}

TEST(heap_bounded_by_goal)
{
	struct goro_memstats st;

	gorodebug_add("gctrace=0");
	ASSERT_EQ(0, goro_main(bound_main, NULL));
	goro_read_memstats(&st);
	TH_LOG("%u collections, %llu bytes past the goal at most", st.num_gc,
	       (unsigned long long)bound_over);
	ASSERT_GE(st.num_gc, 5);
	ASSERT_LE(bound_over, BOUND_SLACK);
	ASSERT_EQ(1, bound_ngor);
}

/* ---- a foreign thread allocates meanwhile ----------------------------- */

#define NFOREIGN	(TSAN ? 4000 : 20000)
static uint64_t *foreign_objs[NFOREIGN];	/* a global: a root */
static int foreign_gc_err, foreign_bad;
static struct goro_memstats foreign_st;

static void *foreign(void *arg)
{
	(void)arg;
	for (int i = 0; i < NFOREIGN; i++) {
		foreign_objs[i] = goro_alloc(24 + (size_t)(i % 5) * 8);
		foreign_objs[i][0] = mix((uint64_t)i);
	}
	foreign_gc_err = goro_gc();
	for (int i = 0; i < NFOREIGN; i++)
		foreign_bad += foreign_objs[i][0] != mix((uint64_t)i);
	goro_read_memstats(&foreign_st);
	return NULL;
}

static void churner(void *arg)
{
	uint64_t *volatile keep = NULL;

	for (int i = 0; i < (TSAN ? 40000 : 200000); i++)
		keep = goro_alloc(64);
	(void)keep;
	goro_waitgroup_done(arg);
}

static void foreign_main(void *arg)
{
	struct goro_waitgroup wg = { 0 };
	pthread_t th;

	(void)arg;
	goro_set_gc_percent(10);
	goro_waitgroup_add(&wg, 1);
	go(churner, &wg);
	pthread_create(&th, NULL, foreign, NULL);
	goro_syscall_enter();
	pthread_join(th, NULL);
	goro_syscall_exit();
	goro_waitgroup_wait(&wg);
	goro_gc();
	for (int i = 0; i < NFOREIGN; i++)
		foreign_bad += foreign_objs[i][0] != mix((uint64_t)i);
}

TEST(foreign_thread_allocates)
{
	ASSERT_EQ(0, goro_main(foreign_main, NULL));
	ASSERT_EQ(-EPERM, foreign_gc_err);
	ASSERT_EQ(0, foreign_bad);
	ASSERT_GE(foreign_st.mallocs, NFOREIGN);
}

/* ---- GOGC off, GOMEMLIMIT, scavenging ----------------------------------- */

static int gogc_prev;
static uint32_t gc_off_count, gc_on_count;

static void garbage(size_t bytes)
{
	for (size_t n = 0; n < bytes; n += 256)
		(void)goro_alloc(256);
}

static void gogc_main(void *arg)
{
	struct goro_memstats st;

	(void)arg;
	gogc_prev = goro_set_gc_percent(-1);
	garbage(64 << 20);
	goro_read_memstats(&st);
	gc_off_count = st.num_gc;
	goro_set_gc_percent(100);
	garbage(64 << 20);
	goro_read_memstats(&st);
	gc_on_count = st.num_gc;
}

TEST(gogc_off_and_on)
{
	unsetenv("GOGC");
	ASSERT_EQ(0, goro_main(gogc_main, NULL));
	ASSERT_EQ(100, gogc_prev);
	ASSERT_EQ(0, gc_off_count);
	ASSERT_GE(gc_on_count, 3);
}

#define NBIG	64
static struct goro_memstats before_scav, after_limit, after_bg;
static int64_t limit_prev, limit_now;

static void make_big_then_die(void *arg)
{
	void **big = goro_alloc(NBIG * sizeof(void *));

	for (int i = 0; i < NBIG; i++) {
		big[i] = goro_alloc_noscan(1 << 20);
		memset(big[i], 1, 1 << 20);
	}
	goro_waitgroup_done(arg);
}

static void run_and_wait(void (*fn)(void *))
{
	struct goro_waitgroup wg = { 0 };

	goro_waitgroup_add(&wg, 1);
	go(fn, &wg);
	goro_waitgroup_wait(&wg);
}

/*
 * Collect until the big objects are gone.  The goroutine that made them
 * may still be on its way out when a concurrent mark reads its stack
 * (floating garbage), so one cycle is not always enough; heap_idle alone
 * cannot tell, since it also counts the arena's uncarved tail.
 */
static void collect_big(void)
{
	struct goro_memstats st;

	for (int i = 0; i < 8; i++) {
		goro_gc();
		goro_read_memstats(&st);
		if (st.heap_inuse < (NBIG / 4ULL) << 20)
			return;
	}
}

static void scav_main(void *arg)
{
	(void)arg;
	/* background: free pages idle for a few seconds go back */
	run_and_wait(make_big_then_die);
	collect_big();
	goro_read_memstats(&before_scav);
	goro_sleep(SANITIZED ? 5000 * MS : 3500 * MS);
	goro_read_memstats(&after_bg);
	/* a memory limit below what is mapped scavenges at once */
	run_and_wait(make_big_then_die);
	limit_prev = goro_set_memory_limit(16 << 20);
	limit_now = goro_set_memory_limit(-1);
	collect_big();
	goro_read_memstats(&after_limit);
}

TEST(scavenger_and_memory_limit)
{
	unsetenv("GOMEMLIMIT");
	ASSERT_EQ(0, goro_main(scav_main, NULL));
	ASSERT_EQ(INT64_MAX, limit_prev);
	ASSERT_EQ(16 << 20, limit_now);
	ASSERT_GE(before_scav.heap_idle, 48ULL << 20);
	ASSERT_LT(before_scav.heap_inuse, (NBIG / 4ULL) << 20);
	ASSERT_GE(after_bg.heap_released - before_scav.heap_released,
		  48ULL << 20);
	/* the second batch freed (not kept by a stale word), then given
	 * back: two failures told apart */
	TH_LOG("after the limit: %llu MiB in use, %llu MiB mapped and not "
	       "released", (unsigned long long)after_limit.heap_inuse >> 20,
	       (unsigned long long)(after_limit.heap_sys -
				    after_limit.heap_released) >> 20);
	ASSERT_LT(after_limit.heap_inuse, (NBIG / 4ULL) << 20);
	ASSERT_LE(after_limit.heap_sys - after_limit.heap_released,
		  24ULL << 20);
	ASSERT_LE(after_limit.heap_released, after_limit.heap_idle);
}

/* ---- gctrace, GOGC from the environment, gcstress -------------------- */

static void trace_main(void *arg)
{
	(void)arg;
	goro_gc();
	garbage(16 << 20);
}

static void trace_child(void)
{
	exit(goro_main(trace_main, NULL));
}

TEST(gctrace_lines)
{
	char buf[8192];
	int st = run_child(trace_child, "GORODEBUG=gctrace=1", buf,
			   sizeof(buf));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(buf, "gc 1 @"));
	ASSERT_NE(NULL, strstr(buf, "(forced)"));
	ASSERT_NE(NULL, strstr(buf, "gc 2 @"));
	ASSERT_NE(NULL, strstr(buf, "MB goal"));
}

/* A program that does nothing but collect a live list: gctrace's
 * percentage (Go's gc_cpu_fraction: the collector's share of the CPU
 * time the Ps had since the start) is most of it.  It used to be
 * printed as a constant 0. */
struct lnode {
	struct lnode *next;
	uint64_t pad[3];
};

static struct lnode *trace_list;	/* a global: a root */

static void cpu_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200000; i++) {
		struct lnode *n = goro_alloc(sizeof(*n));

		n->next = trace_list;
		trace_list = n;
	}
	for (int i = 0; i < 20; i++)
		goro_gc();
}

static void cpu_child(void)
{
	exit(goro_main(cpu_main, NULL));
}

TEST(gctrace_cpu_percent)
{
	char buf[16384];
	int st = run_child(cpu_child, "GORODEBUG=gctrace=1", buf,
			   sizeof(buf));
	int lines = 0, pct = -1, last = -1;
	char *p = buf;

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	while ((p = strstr(p, "gc ")) != NULL) {
		unsigned n;
		double at;

		if (sscanf(p, "gc %u @%lfs %d%%:", &n, &at, &pct) == 3) {
			ASSERT_GE(pct, 0);
			ASSERT_LE(pct, 100);
			last = pct;
			lines++;
		}
		p += 3;
	}
	ASSERT_GE(lines, 20);
	TH_LOG("last line: %d%% of the CPU in the collector", last);
	ASSERT_GE(last, 10);
}

/* The same share in goro_read_memstats (Go's MemStats.GCCPUFraction):
 * 0 before the first collection, most of a program that only
 * collects. */
static struct goro_memstats frac_st[2];

static void frac_main(void *arg)
{
	goro_read_memstats(&frac_st[0]);
	cpu_main(arg);
	goro_read_memstats(&frac_st[1]);
}

TEST(memstats_gc_cpu_fraction)
{
	ASSERT_EQ(0, goro_main(frac_main, NULL));
	ASSERT_EQ(0, frac_st[0].num_gc);
	ASSERT_EQ(0.0, frac_st[0].gc_cpu_fraction);
	ASSERT_EQ(20, frac_st[1].num_forced_gc);
	TH_LOG("gc_cpu_fraction %.3f", frac_st[1].gc_cpu_fraction);
	ASSERT_GE(frac_st[1].gc_cpu_fraction, 0.05);
	ASSERT_LE(frac_st[1].gc_cpu_fraction, 1.0);
}

TEST(bad_gogc_warns)
{
	char buf[4096];
	int st = run_child(trace_child, "GOGC=lots", buf, sizeof(buf));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(buf, "GOGC=lots"));
}

/* Values passed through channels while collections run every few
 * allocations. */
static long stress_bad;
#define NSTRESS	(TSAN ? 300 : 3000)

static void producer(void *arg)
{
	struct goro_chan *c = arg;

	for (uint64_t i = 0; i < NSTRESS; i++) {
		uint64_t *o = goro_alloc(48);

		o[0] = i;
		o[1] = mix(i);
		goro_chan_send(c, &o);
	}
	goro_chan_close(c);
}

static void stress_main(void *arg)
{
	struct goro_chan *c = goro_chan_make(sizeof(void *), 64);
	uint64_t *o, want = 0;

	(void)arg;
	go(producer, c);
	while (goro_chan_recv(c, &o)) {
		(void)goro_alloc(32);
		stress_bad += o[0] != want || o[1] != mix(want);
		want++;
	}
	stress_bad += want != NSTRESS;
}

static void stress_child(void)
{
	struct goro_memstats st;

	if (goro_main(stress_main, NULL))
		exit(3);
	goro_read_memstats(&st);
	exit(stress_bad ? 1 : st.num_gc < NSTRESS / 60 ? 2 : 0);
}

TEST(gcstress_channels)
{
	char buf[4096];
	int st = run_child(stress_child, "GORODEBUG=gcstress=10,invariants=1",
			   buf, sizeof(buf));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
}

/* ---- ASan: a freed object is poisoned --------------------------------- */

static uintptr_t hidden;	/* ~pointer: not a root */
static int finals;

static void fin(void *p)
{
	(void)p;
	__atomic_add_fetch(&finals, 1, __ATOMIC_RELAXED);
}

static void make_hidden(void *arg)
{
	uint64_t *o = goro_alloc(64);

	o[0] = 42;
	goro_set_finalizer(o, fin);
	hidden = ~(uintptr_t)o;
	goro_waitgroup_done(arg);
}

static void uaf_main(void *arg)
{
	(void)arg;
	run_and_wait(make_hidden);
	for (int i = 0; i < 200 && !__atomic_load_n(&finals, __ATOMIC_RELAXED);
	     i++) {
		goro_gc();
		goro_sleep(MS);
	}
	goro_sleep(10 * MS);
	goro_gc();	/* finalized last cycle: freed by this one */
	printf("%d\n", (int)*(volatile uint64_t *)~hidden);
}

static void uaf_child(void)
{
	exit(goro_main(uaf_main, NULL));
}

TEST(asan_poisons_freed)
{
	char buf[8192];
	int st;

#if !defined(__SANITIZE_ADDRESS__)
	SKIP(return, "not the ASan build");
#endif
	st = run_child(uaf_child, NULL, buf, sizeof(buf));
	ASSERT_FALSE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ASSERT_NE(NULL, strstr(buf, "use-after-poison"));
}

TEST_HARNESS_MAIN

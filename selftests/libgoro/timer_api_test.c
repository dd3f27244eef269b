// SPDX-License-Identifier: MIT
/*
 * timer_api_test: the public timers - goro_after, goro_timer_*,
 * goro_ticker_* - with Go 1.23's Stop/Reset guarantee (no stale value
 * after either returns), select with a timeout, tickers dropping ticks
 * for a slow reader, misuse panics, and timers freed while they fire on
 * both Ps (ASan sees any use after free).
 */
#include "kselftest_harness.h"
#include "sched_test.h"

#define MS	(1000 * 1000LL)

static int64_t got_at, sent_at, start_at;
static bool got_ok;

static void after_main(void *arg)
{
	struct goro_chan *c;

	(void)arg;
	start_at = goro_nanotime();
	c = goro_after(5 * MS);
	got_ok = goro_chan_recv(c, &sent_at);
	got_at = goro_nanotime();
	goro_chan_free(c);
}

/* Also: main blocked on a timer channel is no deadlock. */
TEST(after_fires_once_on_time)
{
	ASSERT_EQ(0, goro_main(after_main, NULL));
	ASSERT_TRUE(got_ok);
	ASSERT_GE(sent_at, start_at + 5 * MS);
	ASSERT_GE(got_at, sent_at);
}

static int chosen;

static void select_timeout_main(void *arg)
{
	int64_t before = goro_nanotime();
	struct goro_chan *never = goro_chan_make(sizeof(int), 0);
	struct goro_chan *to = goro_after(3 * MS);
	int v;
	int64_t t;
	struct goro_select_case cases[] = {
		{ .ch = never, .val = &v, .dir = GORO_SELECT_RECV },
		{ .ch = to, .val = &t, .dir = GORO_SELECT_RECV },
	};

	(void)arg;
	start_at = before;
	chosen = goro_select(cases, 2, 0);
	got_at = goro_nanotime();
	goro_chan_free(to);
	goro_chan_free(never);
}

TEST(select_with_timeout)
{
	ASSERT_EQ(0, goro_main(select_timeout_main, NULL));
	ASSERT_EQ(1, chosen);
	ASSERT_GE(got_at - start_at, 3 * MS);
}

static bool stop1, stop2;
static int late_recv;

static void stop_main(void *arg)
{
	/* 100 ms: the stop must come first even on a debug kernel, where
	 * a thread can be off the CPU for tens of ms between two calls */
	struct goro_timer *t = goro_timer_new(100 * MS);

	(void)arg;
	stop1 = goro_timer_stop(t);
	goro_sleep(150 * MS);
	late_recv = goro_chan_try_recv(goro_timer_chan(t), NULL);
	stop2 = goro_timer_stop(t);
	goro_timer_free(t);
}

TEST(stop_before_fire)
{
	ASSERT_EQ(0, goro_main(stop_main, NULL));
	ASSERT_TRUE(stop1);
	ASSERT_EQ(0, late_recv);
	ASSERT_FALSE(stop2);
}

static bool reset_pending;
static int stale;
static int64_t reset_at;

static void reset_main(void *arg)
{
	struct goro_timer *t = goro_timer_new(1 * MS);

	(void)arg;
	goro_sleep(5 * MS);		/* it fired: a value waits in C */
	reset_at = goro_nanotime();
	reset_pending = goro_timer_reset(t, 10 * MS);
	stale = goro_chan_try_recv(goro_timer_chan(t), NULL);
	got_ok = goro_chan_recv(goro_timer_chan(t), &sent_at);
	goro_timer_free(t);
}

TEST(reset_leaves_no_stale_value)
{
	ASSERT_EQ(0, goro_main(reset_main, NULL));
	ASSERT_FALSE(reset_pending);
	ASSERT_EQ(0, stale);
	ASSERT_TRUE(got_ok);
	ASSERT_GE(sent_at, reset_at + 10 * MS);
}

#define NTICKS	5
static int64_t ticks[NTICKS];
static int after_stop;

static void ticker_main(void *arg)
{
	int64_t before = goro_nanotime();
	struct goro_ticker *tk = goro_ticker_new(2 * MS);

	(void)arg;
	start_at = before;
	for (int i = 0; i < NTICKS; i++)
		goro_chan_recv(goro_ticker_chan(tk), &ticks[i]);
	goro_ticker_stop(tk);
	goro_sleep(10 * MS);
	after_stop = goro_chan_try_recv(goro_ticker_chan(tk), NULL);
	goro_ticker_free(tk);
}

TEST(ticker_ticks_and_stops)
{
	ASSERT_EQ(0, goro_main(ticker_main, NULL));
	for (int i = 1; i < NTICKS; i++)
		ASSERT_GT(ticks[i], ticks[i - 1]);
	/* Ticks come at whole periods after creation, never early. */
	ASSERT_GE(ticks[NTICKS - 1] - start_at, (NTICKS - 1) * 2 * MS);
	ASSERT_EQ(0, after_stop);
}

static size_t slow_len;
static int64_t tick_a, tick_b;

static void slow_reader_main(void *arg)
{
	struct goro_ticker *tk = goro_ticker_new(1 * MS);

	(void)arg;
	goro_sleep(20 * MS);
	slow_len = goro_chan_len(goro_ticker_chan(tk));
	goro_chan_recv(goro_ticker_chan(tk), &tick_a);
	goro_ticker_reset(tk, 5 * MS);
	goro_chan_recv(goro_ticker_chan(tk), &tick_b);
	goro_ticker_free(tk);
}

TEST(ticker_drops_for_slow_reader_and_resets)
{
	ASSERT_EQ(0, goro_main(slow_reader_main, NULL));
	ASSERT_EQ(1, slow_len);
	ASSERT_GE(tick_b - tick_a, 5 * MS);
}

/* Free timers at random points around their firing on both Ps. */
#define CHURNERS	8
static int churn_each;
static struct tgate churn_gate;

static void churner(void *arg)
{
	(void)arg;
	for (int i = 0; i < churn_each; i++) {
		uint32_t r = fastrandn(4);
		struct goro_timer *t = goro_timer_new(fastrandn(50) * 1000);
		struct goro_ticker *tk = goro_ticker_new(1 + fastrandn(20000));
		struct goro_chan *a = goro_after(fastrandn(30) * 1000);

		if (r == 1)
			goro_sleep(fastrandn(60) * 1000);
		else if (r == 2)
			goro_yield();
		if (r == 3)
			goro_timer_reset(t, fastrandn(20) * 1000);
		goro_timer_free(t);
		goro_ticker_free(tk);
		goro_chan_free(a);
	}
	tgate_done(&churn_gate);
}

static void churn_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	tgate_add(&churn_gate, CHURNERS);
	for (int i = 0; i < CHURNERS; i++)
		go(churner, NULL);
	tgate_wait(&churn_gate);
}

TEST(free_races_firing)
{
	churn_each = TSAN ? 200 : 3000;
	ASSERT_EQ(0, goro_main(churn_main, NULL));
}

static void bad_ticker_main(void *arg)
{
	(void)arg;
	goro_ticker_new(0);
}

static void child_bad_ticker(void)
{
	goro_main(bad_ticker_main, NULL);
	_exit(0);
}

static void free_timer_chan_main(void *arg)
{
	struct goro_timer *t = goro_timer_new(MS);

	(void)arg;
	goro_chan_free(goro_timer_chan(t));
}

static void child_free_timer_chan(void)
{
	goro_main(free_timer_chan_main, NULL);
	_exit(0);
}

TEST(misuse_panics)
{
	char out[8192];
	int st = run_child(child_bad_ticker, NULL, out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "panic: non-positive interval for goro_ticker_new"));
	st = run_child(child_free_timer_chan, NULL, out, sizeof(out));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "panic: goro_chan_free of a timer's channel"));
}

TEST_HARNESS_MAIN

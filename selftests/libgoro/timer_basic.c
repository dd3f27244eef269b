// SPDX-License-Identifier: MIT
/*
 * timer_basic: goro_sleep's accuracy and ordering, the internal timer
 * API (addtimer/deltimer/modtimer, periodic timers), timers of an idle P
 * run by others, and many concurrent sleepers.
 */
#include "kselftest_harness.h"
#include "sched_test.h"

#define MS	(1000 * 1000LL)

static int64_t slept;

static void accuracy_main(void *arg)
{
	int64_t t0 = goro_nanotime();

	(void)arg;
	goro_sleep(20 * MS);
	slept = goro_nanotime() - t0;
}

TEST(sleep_accuracy)
{
	ASSERT_EQ(0, goro_main(accuracy_main, NULL));
	ASSERT_GE(slept, 20 * MS);
	/* generous: the test machines are shared and loaded */
	ASSERT_LT(slept, 20 * MS + 200 * MS);
}

#define NORDER	20
static int order[NORDER], norder;
static int64_t woke_at[NORDER];
static struct rtlock orderlock;
static struct tgate gate;

static int64_t order_base, order_gap;

static int64_t order_deadline(long i)
{
	return order_base + (NORDER - i) * order_gap;
}

/* Wake-ups at absolute times 10 ms apart, latest first in spawn order:
 * they must come in time order, whoever started first. */
static void sleep_then_record(void *arg)
{
	long i = (long)arg;
	int64_t now;

	goro_sleep(order_deadline(i) - goro_nanotime());
	now = goro_nanotime();
	lock(&orderlock);
	woke_at[i] = now;
	order[norder++] = (int)i;
	unlock(&orderlock);
	tgate_done(&gate);
}

static void order_main(void *arg)
{
	(void)arg;
	tgate_add(&gate, NORDER);
	order_gap = SANITIZED ? 25 * MS : 10 * MS;
	order_base = goro_nanotime() + (SANITIZED ? 300 : 20) * MS;
	for (long i = 0; i < NORDER; i++)
		go(sleep_then_record, (void *)i);
	tgate_wait(&gate);
}

/*
 * Never early, and in deadline order.  Two wake-ups may swap only when
 * the earlier one was itself late by more than the gap: the host did
 * not run the thread (a loaded VM under TCG stalls vCPUs for longer),
 * which no runtime can hide.
 */
TEST(sleep_ordering)
{
	ASSERT_EQ(0, goro_main(order_main, NULL));
	ASSERT_EQ(NORDER, norder);
	for (long i = 0; i < NORDER; i++)
		ASSERT_GE(woke_at[i], order_deadline(i));
	for (int k = 1; k < NORDER; k++) {
		int a = order[k - 1], b = order[k];

		if (order_deadline(a) <= order_deadline(b))
			continue;
		/* b's deadline came first but a woke first */
		ksft_print_msg("swap %d/%d: %d late by %lld us\n", a, b, b,
			       (long long)(woke_at[b] - order_deadline(b)) / 1000);
		ASSERT_GT(woke_at[b] - order_deadline(b), order_gap);
	}
}

/* Internal API: a timer removed before it fires never runs; modtimer
 * moves one; a periodic timer fires repeatedly. */
static int fired[4];
static int64_t fired_at[4];
static struct timer timers[4];

static void on_fire(void *arg, uintptr_t seq, int64_t delta)
{
	(void)arg;
	(void)delta;
	__atomic_add_fetch(&fired[seq], 1, __ATOMIC_RELAXED);
	__atomic_store_n(&fired_at[seq], nanotime(), __ATOMIC_RELAXED);
}

static bool del_ok, mod_pending, del_after;
static int64_t api_t0;

static void api_main(void *arg)
{
	(void)arg;
	api_t0 = nanotime();
	for (int i = 0; i < 3; i++) {
		timers[i].when = api_t0 + 30 * MS;
		timers[i].f = on_fire;
		timers[i].seq = (uintptr_t)i;
		addtimer(&timers[i]);
	}
	del_ok = deltimer(&timers[0]);			/* never fires */
	mod_pending = modtimer(&timers[1], api_t0 + 60 * MS, 0, on_fire,
			       NULL, 1);		/* moved later */
	timers[3].when = api_t0 + 10 * MS;		/* periodic */
	timers[3].period = 10 * MS;
	timers[3].f = on_fire;
	timers[3].seq = 3;
	addtimer(&timers[3]);
	goro_sleep(100 * MS);
	del_after = deltimer(&timers[3]);
	goro_sleep(30 * MS);
}

TEST(timer_api)
{
	ASSERT_EQ(0, goro_main(api_main, NULL));
	ASSERT_TRUE(del_ok);
	ASSERT_TRUE(mod_pending);
	ASSERT_EQ(0, fired[0]);
	ASSERT_EQ(1, fired[1]);
	ASSERT_GE(fired_at[1] - api_t0, 60 * MS);
	ASSERT_EQ(1, fired[2]);
	ASSERT_GE(fired_at[2] - api_t0, 30 * MS);
	ASSERT_LT(fired_at[2], fired_at[1]);
	ASSERT_TRUE(del_after);
	ASSERT_GE(fired[3], 3);
	ASSERT_LE(fired[3], 20);
	ASSERT_EQ(false, deltimer(&timers[1]));	/* already fired */
}

/* Many sleepers across Ps, each must wake no earlier than asked. */
#define NSLEEP	2000
static int early;

static void sleeper(void *arg)
{
	int64_t want = (long)arg * 100000 % (50 * MS) + MS;
	int64_t t0 = goro_nanotime();

	goro_sleep(want);
	if (goro_nanotime() - t0 < want)
		__atomic_add_fetch(&early, 1, __ATOMIC_RELAXED);
	tgate_done(&gate);
}

static void many_main(void *arg)
{
	(void)arg;
	tgate_add(&gate, NSLEEP);
	for (long i = 0; i < NSLEEP; i++)
		go(sleeper, (void *)i);
	tgate_wait(&gate);
}

TEST(many_sleepers)
{
	ASSERT_EQ(0, goro_main(many_main, NULL));
	ASSERT_EQ(0, early);
}

/* A timer left on a P that goes idle is run by another M. */
static int idle_fired;

static void idle_fire(void *arg, uintptr_t seq, int64_t delta)
{
	(void)arg;
	(void)seq;
	(void)delta;
	__atomic_store_n(&idle_fired, 1, __ATOMIC_RELEASE);
}

static struct timer idle_timer;

static void add_and_leave(void *arg)
{
	(void)arg;
	idle_timer.when = nanotime() + 20 * MS;
	idle_timer.f = idle_fire;
	addtimer(&idle_timer);
	tgate_done(&gate);
}

static void idle_main(void *arg)
{
	(void)arg;
	tgate_add(&gate, 1);
	go(add_and_leave, NULL);
	tgate_wait(&gate);
	goro_sleep(200 * MS);
}

TEST(idle_p_timers_run)
{
	ASSERT_EQ(0, goro_main(idle_main, NULL));
	ASSERT_EQ(1, idle_fired);
}

TEST_HARNESS_MAIN

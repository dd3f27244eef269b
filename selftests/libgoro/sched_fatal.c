// SPDX-License-Identifier: MIT
/*
 * sched_fatal: the fatal paths, each in a child process whose stderr
 * and exit status are checked: deadlock detection (and no false alarm
 * while a timer is pending), throw, gopanic, SIGQUIT, stack overflow.
 */
#include "kselftest_harness.h"
#include "sched_test.h"

static void parked_forever(void *arg)
{
	(void)arg;
	gopark(NULL, NULL, WAIT_CHAN_RECEIVE);
}

static void deadlock_main(void *arg)
{
	(void)arg;
	go(parked_forever, NULL);
	goro_yield();
	gopark(NULL, NULL, WAIT_SELECT_NO_CASES);
}

static void child_deadlock(void)
{
	goro_main(deadlock_main, NULL);
	_exit(0);
}

TEST(deadlock_detected)
{
	char out[16384];
	int st = run_child(child_deadlock, NULL, out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "fatal error: all goroutines are asleep - deadlock!"));
	ASSERT_NE(NULL, strstr(out, "goroutine 1 [select (no cases)]:"));
	ASSERT_NE(NULL, strstr(out, "goroutine 2 [chan receive]:"));
}

TEST(deadlock_detected_one_p)
{
	char out[16384];
	int st = run_child(child_deadlock, "GOMAXPROCS=1", out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "all goroutines are asleep - deadlock!"));
}

/* Everyone is parked but a sleeper's timer is pending: no deadlock;
 * the sleeper then wakes main. */
static struct g *main_g;
static int woke;

static void late_waker(void *arg)
{
	(void)arg;
	goro_sleep(50 * 1000 * 1000);
	woke = 1;
	goready(main_g);
}

static void timer_main(void *arg)
{
	(void)arg;
	main_g = getg();
	go(late_waker, NULL);
	gopark(NULL, NULL, WAIT_CHAN_RECEIVE);
}

static void child_no_false_deadlock(void)
{
	goro_main(timer_main, NULL);
	_exit(woke ? 0 : 1);
}

TEST(no_deadlock_with_pending_timer)
{
	char out[8192];
	int st = run_child(child_no_false_deadlock, NULL, out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_EQ(NULL, strstr(out, "deadlock"));
}

static void throw_main(void *arg)
{
	(void)arg;
	throw("test throw");
}

static void child_throw(void)
{
	goro_main(throw_main, NULL);
	_exit(0);
}

TEST(throw_prints_and_exits_2)
{
	char out[8192];
	int st = run_child(child_throw, NULL, out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "fatal error: test throw\n"));
	ASSERT_NE(NULL, strstr(out, "goroutine 1 [running]:"));
	ASSERT_NE(NULL, strstr(out, "throw_main"));
}

static void panic_main(void *arg)
{
	(void)arg;
	gopanic("send on closed channel");
}

static void child_panic(void)
{
	goro_main(panic_main, NULL);
	_exit(0);
}

TEST(gopanic_prints_and_exits_2)
{
	char out[8192];
	int st = run_child(child_panic, NULL, out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "panic: send on closed channel\n"));
	ASSERT_NE(NULL, strstr(out, "goroutine 1 [running]:"));
}

static void sleeper(void *arg)
{
	(void)arg;
	goro_sleep(60LL * 1000 * 1000 * 1000);
}

static void sigquit_main(void *arg)
{
	(void)arg;
	go(sleeper, NULL);
	goro_sleep(20 * 1000 * 1000);
	kill(getpid(), SIGQUIT);
	goro_sleep(60LL * 1000 * 1000 * 1000);
}

static void child_sigquit(void)
{
	goro_main(sigquit_main, NULL);
	_exit(0);
}

TEST(sigquit_dumps_goroutines)
{
	char out[16384];
	int st = run_child(child_sigquit, NULL, out, sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "SIGQUIT: quit"));
	ASSERT_NE(NULL, strstr(out, "goroutine 2 [sleep]:"));
	ASSERT_NE(NULL, strstr(out, "goro_sleep"));
	ASSERT_NE(NULL, strstr(out, "created by sigquit_main"));
}

static void schedtrace_main(void *arg)
{
	(void)arg;
	goro_sleep(120 * 1000 * 1000);
}

static void child_schedtrace(void)
{
	goro_main(schedtrace_main, NULL);
	_exit(0);
}

TEST(schedtrace_lines)
{
	char out[16384];
	int st = run_child(child_schedtrace,
			   "GORODEBUG=schedtrace=20,scheddetail=1", out,
			   sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "SCHED "));
	ASSERT_NE(NULL, strstr(out, "gomaxprocs="));
	ASSERT_NE(NULL, strstr(out, "  P0: status="));
	ASSERT_NE(NULL, strstr(out, "  G1: status=4(sleep)"));
}

/*
 * scheddetail walks every G from its own thread, without a lock, while
 * goroutines are made: the all-G list must stay readable as it grows
 * (a reallocated pointer array was freed under the reader's feet; ASan
 * reported it as a use after free).
 */
#define GROW_N	((TSAN ? 1000 : 20000) / test_div())

static struct tpark grow_park;

static void grow_parker(void *arg)
{
	(void)arg;
	tpark_wait(&grow_park);
}

static void grow_main(void *arg)
{
	(void)arg;
	for (long i = 0; i < GROW_N; i++) {
		if (go(grow_parker, NULL))
			abort();
		if (i % (GROW_N / 20 + 1) == 0)
			goro_sleep(1000 * 1000);	/* let the tracer in */
	}
	while (tpark_count(&grow_park) < GROW_N)
		goro_sleep(1000 * 1000);
	tpark_release(&grow_park);
}

static void child_schedtrace_grow(void)
{
	goro_main(grow_main, NULL);
	_exit(0);
}

TEST(scheddetail_while_goroutines_grow)
{
	static char out[1 << 16];
	int st = run_child(child_schedtrace_grow,
			   "GORODEBUG=schedtrace=1,scheddetail=1", out,
			   sizeof(out));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "  G1: status="));
	ASSERT_EQ(NULL, strstr(out, "AddressSanitizer"));
}

TEST_HARNESS_MAIN

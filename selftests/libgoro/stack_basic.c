// SPDX-License-Identifier: MIT
/*
 * stack_basic: goroutine stacks - sizes from goro_attr, deep recursion
 * within them, the first frame ending the frame-pointer chain, and an
 * overflow reported as "goroutine N stack overflow" (guarded and, with
 * GORODEBUG=stackguard=0, canary-only stacks).
 */
#include "kselftest_harness.h"
#include "sched_test.h"

static struct tgate gate;

/* Each level uses about 1 KiB of stack. */
static __attribute__((noinline)) long recurse(long n)
{
	volatile char buf[1000];

	memset((char *)buf, 0x5a, sizeof(buf));	/* as a real frame would */
	buf[0] = (char)n;
	if (n == 0)
		return buf[0];
	return recurse(n - 1) + buf[0];
}

static long deep_result, deep_levels;

static void deep(void *arg)
{
	deep_result = recurse(deep_levels);
	(void)arg;
	tgate_done(&gate);
}

static int attr_errs[3];

static void attr_main(void *arg)
{
	struct goro_attr big = { .stack_size = 4 << 20 };
	struct goro_attr bad = { .stack_size = 0, .reserved = { 1 } };
	struct goro_attr huge = { .stack_size = 1UL << 40 };

	(void)arg;
	attr_errs[1] = goro_spawn(deep, NULL, &bad);
	attr_errs[2] = goro_spawn(deep, NULL, &huge);
	deep_levels = 3000;	/* ~3 MiB: needs the 4 MiB stack */
	tgate_add(&gate, 1);
	if (goro_spawn(deep, NULL, &big))
		return;
	tgate_wait(&gate);
}

TEST(attr_sizes)
{
	ASSERT_EQ(0, goro_main(attr_main, NULL));
	ASSERT_EQ(-EINVAL, attr_errs[1]);
	ASSERT_EQ(-EINVAL, attr_errs[2]);
	ASSERT_NE(0, deep_result);
}

/* A big stack reused from the free list still works. */
static void reuse_main(void *arg)
{
	struct goro_attr big = { .stack_size = 2 << 20 };

	(void)arg;
	deep_levels = 1500;
	for (int i = 0; i < 20; i++) {
		tgate_add(&gate, 1);
		if (goro_spawn(deep, NULL, &big))
			return;
		tgate_wait(&gate);
	}
}

TEST(big_stack_reuse)
{
	ASSERT_EQ(0, goro_main(reuse_main, NULL));
	ASSERT_NE(0, deep_result);
}

/* The frame chain of a goroutine ends in a zero frame. */
static int chain_ok;

static void chain(void *arg)
{
	uintptr_t *bp = __builtin_frame_address(0);
	struct g *gp = getg();
	int n = 0;

	(void)arg;
	while (bp && n < 100) {
		if ((uintptr_t)bp < gp->stack_lo || (uintptr_t)bp >= gp->stack_hi)
			break;
		if (!bp[0]) {
			chain_ok = bp[1] == 0;	/* zero return address too */
			break;
		}
		bp = (uintptr_t *)bp[0];
		n++;
	}
	tgate_done(&gate);
}

static void chain_main(void *arg)
{
	(void)arg;
	tgate_add(&gate, 1);
	go(chain, NULL);
	tgate_wait(&gate);
}

TEST(frame_chain_ends)
{
	ASSERT_EQ(0, goro_main(chain_main, NULL));
	ASSERT_EQ(1, chain_ok);
}

static void overflow(void *arg)
{
	(void)arg;
	deep_levels = 1L << 30;
	recurse(deep_levels);
}

static void overflow_main(void *arg)
{
	(void)arg;
	go(overflow, NULL);
	goro_sleep(10LL * 1000 * 1000 * 1000);
}

static void child_overflow(void)
{
	goro_main(overflow_main, NULL);
	_exit(0);
}

TEST(overflow_reported)
{
	char out[16384];
	int st;

	if (SANITIZED)
		SKIP(return, "the sanitizers handle stack overflows themselves");
	st = run_child(child_overflow, NULL, out, sizeof(out));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "fatal error: goroutine 2 stack overflow"));
}

/* Canary-only: caught at the next switch, after the fact. */
static void overflow_then_yield(void *arg)
{
	(void)arg;
	deep_levels = 262;	/* ~266 KiB: past the 256 KiB stack, into
				 * the (unprotected) guard gap */
	recurse(deep_levels);
	goro_yield();
}

static void canary_main(void *arg)
{
	(void)arg;
	go(overflow_then_yield, NULL);
	goro_sleep(10LL * 1000 * 1000 * 1000);
}

static void child_canary(void)
{
	goro_main(canary_main, NULL);
	_exit(0);
}

TEST(canary_overflow_reported)
{
	char out[16384];
	int st;

	if (SANITIZED)
		SKIP(return, "the sanitizers handle stack overflows themselves");
	st = run_child(child_canary, "GORODEBUG=stackguard=0", out, sizeof(out));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(out, "goroutine 2 stack overflow"));
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: MIT
/*
 * stack_release_test: dead goroutines that ran deep give their stack
 * pages back (stackfree_unused, when their G moves to the global free
 * list), and shallow ones cost no release at all.
 */
#include "kselftest_harness.h"
#include "sched_test.h"

#define NDEEP		200
#define DEEP_BYTES	(128 << 10)

static struct tgate gate;
static long rss_before, rss_after;

__attribute__((noinline)) static void go_deep(void)
{
	volatile char buf[DEEP_BYTES];

	memset((char *)buf, 0x5a, sizeof(buf));
	__asm__ volatile("" : : "r"(buf) : "memory");
}

static void deep(void *arg)
{
	(void)arg;
	go_deep();
	tgate_done(&gate);
}

static void release_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(1);	/* one P: every dead G goes through its cache */
	rss_before = rss_bytes();
	tgate_add(&gate, NDEEP);
	for (int i = 0; i < NDEEP; i++)
		go(deep, NULL);
	tgate_wait(&gate);
	goro_sleep(1000000);	/* let the last ones finish exiting */
	rss_after = rss_bytes();
}

TEST(deep_stacks_released)
{
	long kept;

	if (SANITIZED)
		SKIP(return, "sanitizers keep their own shadow of stacks");
	ASSERT_EQ(0, goro_main(release_main, NULL));
	kept = rss_after - rss_before;
	fprintf(stderr, "# %ld KiB kept of %d KiB touched (before %ld)\n", kept >> 10,
		       NDEEP * (DEEP_BYTES >> 10), rss_before);
	/* At most the P's cache of dead Gs (64) keeps its deep pages. */
	ASSERT_LT(kept, 64L * (DEEP_BYTES + 8192) + (4L << 20));
}

TEST_HARNESS_MAIN

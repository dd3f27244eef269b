/*
 * parked: resident memory per parked goroutine, at 100 000 and 1 000 000
 * goroutines blocked on one WaitGroup.  Measures what a blocked
 * goroutine really costs: its G, its stack's committed pages, and the
 * runtime's bookkeeping, as the growth of RSS divided by the count.
 */
#include "bench_util.h"

static struct goro_waitgroup ready, gate, done;

static void parker(void *arg)
{
	(void)arg;
	goro_waitgroup_done(&ready);
	goro_waitgroup_wait(&gate);
	goro_waitgroup_done(&done);
}

static void run(long n)
{
	char key[64];
	long before = bench_rss(), after;

	goro_waitgroup_add(&gate, 1);
	goro_waitgroup_add(&ready, (int)n);
	goro_waitgroup_add(&done, (int)n);
	for (long i = 0; i < n; i++)
		if (go(parker, NULL))
			abort();
	goro_waitgroup_wait(&ready);
	after = bench_rss();
	goro_waitgroup_done(&gate);
	goro_waitgroup_wait(&done);
	snprintf(key, sizeof(key), "parked/n=%ld", n);
	bench_print(key, (double)(after - before) / n, "B/goroutine");
}

static void main_g(void *arg)
{
	(void)arg;
	run(100000);
	run(1000000);
}

int main(void)
{
	return goro_main(main_g, NULL) ? 1 : 0;
}

/*
 * sleepers: 100 000 goroutines each sleeping 1 ms ten times: the timer
 * heaps under load and how exactly idle Ms sleep until the next timer.
 * Reports wall time for the whole run.
 */
#include "bench_util.h"

static struct goro_waitgroup wg;

static void sleeper(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++)
		goro_sleep(1000000);
	goro_waitgroup_done(&wg);
}

static void main_g(void *arg)
{
	long n = (long)arg;
	int64_t t0 = goro_nanotime();

	goro_waitgroup_add(&wg, (int)n);
	for (long i = 0; i < n; i++)
		if (go(sleeper, NULL))
			abort();
	goro_waitgroup_wait(&wg);
	bench_print("sleepers/n=100000", (goro_nanotime() - t0) / 1e6, "ms");
}

int main(int argc, char **argv)
{
	return goro_main(main_g, (void *)bench_arg(argc, argv, 100000)) ? 1 : 0;
}

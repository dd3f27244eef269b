/*
 * spawn: create and finish 1 000 000 goroutines joined by a WaitGroup, on
 * GOMAXPROCS=1 and 2: the cost of goro_spawn, a dead G's reuse, and the
 * scheduler's hand-off of new work to an idle P.
 */
#include "bench_util.h"

static long n;
static struct goro_waitgroup wg;

static void child(void *arg)
{
	(void)arg;
	goro_waitgroup_done(&wg);
}

static void main_g(void *arg)
{
	char key[64];

	(void)arg;
	for (int procs = 1; procs <= 2; procs++) {
		goro_set_maxprocs(procs);
		int64_t t0 = goro_nanotime();

		goro_waitgroup_add(&wg, (int)n);
		for (long i = 0; i < n; i++)
			if (go(child, NULL))
				abort();
		goro_waitgroup_wait(&wg);
		snprintf(key, sizeof(key), "spawn/procs=%d", procs);
		bench_print(key, (double)(goro_nanotime() - t0) / n, "ns/op");
	}
}

int main(int argc, char **argv)
{
	n = bench_arg(argc, argv, 1000000);
	return goro_main(main_g, NULL) ? 1 : 0;
}

/*
 * yield: two goroutines alternating with goro_yield on one P: the cost of
 * a round through the scheduler (save, global queue, pick, restore).
 */
#include "bench_util.h"

static long n;
static struct goro_waitgroup wg;

static void yielder(void *arg)
{
	(void)arg;
	for (long i = 0; i < n; i++)
		goro_yield();
	goro_waitgroup_done(&wg);
}

static void main_g(void *arg)
{
	(void)arg;
	goro_set_maxprocs(1);
	int64_t t0 = goro_nanotime();

	goro_waitgroup_add(&wg, 2);
	go(yielder, NULL);
	go(yielder, NULL);
	goro_waitgroup_wait(&wg);
	bench_print("yield/procs=1", (double)(goro_nanotime() - t0) / (2 * n),
		    "ns/op");
}

int main(int argc, char **argv)
{
	n = bench_arg(argc, argv, 2000000);
	return goro_main(main_g, NULL) ? 1 : 0;
}

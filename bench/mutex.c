/*
 * mutex: two goroutines on two Ps contending for one goro_mutex around a
 * tiny critical section: spinning, hand-off and starvation mode under
 * the heaviest contention two CPUs can make.
 */
#include "bench_util.h"

static long n;
static struct goro_mutex mu;
static struct goro_waitgroup wg;
static long counter;

static void worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < n; i++) {
		goro_mutex_lock(&mu);
		counter++;
		goro_mutex_unlock(&mu);
	}
	goro_waitgroup_done(&wg);
}

static void main_g(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	int64_t t0 = goro_nanotime();

	goro_waitgroup_add(&wg, 2);
	go(worker, NULL);
	go(worker, NULL);
	goro_waitgroup_wait(&wg);
	if (counter != 2 * n)
		abort();
	bench_print("mutex/procs=2", (double)(goro_nanotime() - t0) / (2 * n),
		    "ns/op");
}

int main(int argc, char **argv)
{
	n = bench_arg(argc, argv, 5000000);
	return goro_main(main_g, NULL) ? 1 : 0;
}

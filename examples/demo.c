/*
 * demo: what `make demo` runs, natively and in the VM with goro.ko.
 *
 * A pipeline of goroutines joined by channels: a generator, a stage of
 * NWORKERS squarers fanned out on both Ps, and a collector that sums the
 * results and checks the sum against the closed form; it exits non-zero if
 * the sum is wrong.  scripts/demo.sh runs it natively (futex parking) and
 * in the VM, where the goro:* tracepoints show what goro.ko did.
 */
#include <goro.h>
#include <stdio.h>
#include <stdlib.h>

#define N		100000
#define NWORKERS	8

static struct goro_chan *nums, *squares;
static struct goro_waitgroup workers;
static int status;

static void generate(void *arg)
{
	(void)arg;
	for (uint64_t i = 1; i <= N; i++)
		goro_chan_send(nums, &i);
	goro_chan_close(nums);
}

static void square(void *arg)
{
	uint64_t v;

	(void)arg;
	while (goro_chan_recv(nums, &v)) {
		v *= v;
		goro_chan_send(squares, &v);
	}
	goro_waitgroup_done(&workers);
}

static void close_when_done(void *arg)
{
	(void)arg;
	goro_waitgroup_wait(&workers);
	goro_chan_close(squares);
}

static void main_g(void *arg)
{
	uint64_t v, sum = 0, want = (uint64_t)N * (N + 1) * (2 * N + 1) / 6;
	int64_t t0 = goro_nanotime();

	(void)arg;
	nums = goro_chan_make(sizeof(uint64_t), 64);
	squares = goro_chan_make(sizeof(uint64_t), 64);
	if (!nums || !squares) {
		status = 1;
		return;
	}
	go(generate, NULL);
	goro_waitgroup_add(&workers, NWORKERS);
	for (int i = 0; i < NWORKERS; i++)
		go(square, NULL);
	go(close_when_done, NULL);
	while (goro_chan_recv(squares, &v))
		sum += v;
	printf("demo: %d numbers through %d goroutines on %d Ps in %.1f ms, "
	       "sum of squares %llu (%s)\n", N, NWORKERS + 3,
	       goro_set_maxprocs(0), (goro_nanotime() - t0) / 1e6,
	       (unsigned long long)sum, sum == want ? "correct" : "WRONG");
	status = sum == want ? 0 : 1;
}

int main(void)
{
	int err = goro_main(main_g, NULL);

	if (err) {
		fprintf(stderr, "demo: goro_main: error %d\n", err);
		return 1;
	}
	return status;
}

/*
 * chanbuf: one producer and one consumer on two Ps through a channel of
 * capacity 1024; one op is one item (send + receive), mostly through the
 * buffer without parking.
 */
#include "bench_util.h"

static long n;
static struct goro_chan *ch;
static struct goro_waitgroup wg;
static long sum;

static void consumer(void *arg)
{
	long v, s = 0;

	(void)arg;
	while (goro_chan_recv(ch, &v))
		s += v;
	sum = s;
	goro_waitgroup_done(&wg);
}

static void main_g(void *arg)
{
	int64_t t0;

	(void)arg;
	goro_set_maxprocs(2);
	ch = goro_chan_make(sizeof(long), 1024);
	goro_waitgroup_add(&wg, 1);
	t0 = goro_nanotime();
	go(consumer, NULL);
	for (long i = 0; i < n; i++)
		goro_chan_send(ch, &i);
	goro_chan_close(ch);
	goro_waitgroup_wait(&wg);
	bench_print("chanbuf/procs=2", (double)(goro_nanotime() - t0) / n,
		    "ns/op");
	if (sum != n * (n - 1) / 2)
		abort();
	goro_chan_free(ch);
}

int main(int argc, char **argv)
{
	n = bench_arg(argc, argv, 10000000);
	return goro_main(main_g, NULL) ? 1 : 0;
}

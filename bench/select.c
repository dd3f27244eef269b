/*
 * select: four producers, each on its own unbuffered channel, and one
 * consumer taking from all four with goro_select; one op is one item.
 * GOMAXPROCS=2.
 */
#include "bench_util.h"

#define PRODUCERS	4

static long n;
static struct goro_chan *chs[PRODUCERS];

static void producer(void *arg)
{
	struct goro_chan *ch = arg;

	for (long i = 0; i < n / PRODUCERS; i++)
		goro_chan_send(ch, &i);
}

static void main_g(void *arg)
{
	struct goro_select_case cs[PRODUCERS];
	long v, sum = 0, per = n / PRODUCERS;
	int64_t t0;

	(void)arg;
	goro_set_maxprocs(2);
	for (int i = 0; i < PRODUCERS; i++) {
		chs[i] = goro_chan_make(sizeof(long), 0);
		cs[i] = (struct goro_select_case){ chs[i], &v,
						   GORO_SELECT_RECV, 0 };
	}
	t0 = goro_nanotime();
	for (int i = 0; i < PRODUCERS; i++)
		go(producer, chs[i]);
	for (long k = 0; k < per * PRODUCERS; k++) {
		if (goro_select(cs, PRODUCERS, 0) < 0)
			abort();
		sum += v;
	}
	bench_print("select/procs=2", (double)(goro_nanotime() - t0) /
		    (per * PRODUCERS), "ns/op");
	if (sum != PRODUCERS * (per * (per - 1) / 2))
		abort();
}

int main(int argc, char **argv)
{
	n = bench_arg(argc, argv, 2000000);
	return goro_main(main_g, NULL) ? 1 : 0;
}

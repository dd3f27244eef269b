/*
 * pingpong: two goroutines bounce a value over two unbuffered channels,
 * one each way; one op is a round trip (two rendezvous, two switches).
 * Run with GOMAXPROCS=1 (pure switch cost through runnext) and 2 (the
 * partner may be on the other P).
 */
#include "bench_util.h"

static long n;
static struct goro_chan *ping, *pong;
static struct goro_waitgroup wg;

static void ponger(void *arg)
{
	long v;

	(void)arg;
	while (goro_chan_recv(ping, &v)) {
		v++;
		goro_chan_send(pong, &v);
	}
	goro_waitgroup_done(&wg);
}

static void run(int procs)
{
	char key[64];
	int64_t t0;
	long v = 0;

	goro_set_maxprocs(procs);
	ping = goro_chan_make(sizeof(long), 0);
	pong = goro_chan_make(sizeof(long), 0);
	goro_waitgroup_add(&wg, 1);
	go(ponger, NULL);
	t0 = goro_nanotime();
	for (long i = 0; i < n; i++) {
		goro_chan_send(ping, &v);
		goro_chan_recv(pong, &v);
	}
	snprintf(key, sizeof(key), "pingpong/procs=%d", procs);
	bench_print(key, (double)(goro_nanotime() - t0) / n, "ns/op");
	if (v != n)
		abort();
	goro_chan_close(ping);
	goro_waitgroup_wait(&wg);
	goro_chan_free(ping);
	goro_chan_free(pong);
}

static void main_g(void *arg)
{
	(void)arg;
	run(1);
	run(2);
}

int main(int argc, char **argv)
{
	n = bench_arg(argc, argv, 1000000);
	return goro_main(main_g, NULL) ? 1 : 0;
}

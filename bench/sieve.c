/*
 * sieve: the concurrent prime sieve (a goroutine and an unbuffered
 * channel per prime found) up to the 5 000th prime, 48611; the result is
 * the whole run's time in ms.  GOMAXPROCS as the environment says.
 */
#include "bench_util.h"

struct filter {
	struct goro_chan *in, *out;
	long prime;
};

static void generate(void *arg)
{
	struct goro_chan *ch = arg;

	for (long i = 2;; i++)
		goro_chan_send(ch, &i);
}

static void filter(void *arg)
{
	struct filter *f = arg;
	long v;

	for (;;) {
		goro_chan_recv(f->in, &v);
		if (v % f->prime)
			goro_chan_send(f->out, &v);
	}
}

static long nprimes;

static void main_g(void *arg)
{
	struct filter *fs = calloc(nprimes, sizeof(*fs));
	struct goro_chan *ch = goro_chan_make(sizeof(long), 0);
	long p = 0;
	int64_t t0;

	(void)arg;
	t0 = goro_nanotime();
	go(generate, ch);
	for (long i = 0; i < nprimes; i++) {
		goro_chan_recv(ch, &p);
		fs[i].in = ch;
		fs[i].out = goro_chan_make(sizeof(long), 0);
		fs[i].prime = p;
		go(filter, &fs[i]);
		ch = fs[i].out;
	}
	bench_print("sieve/5000", (double)(goro_nanotime() - t0) / 1e6, "ms");
	if (nprimes == 5000 && p != 48611)
		abort();
}

int main(int argc, char **argv)
{
	nprimes = bench_arg(argc, argv, 5000);
	return goro_main(main_g, NULL) ? 1 : 0;
}

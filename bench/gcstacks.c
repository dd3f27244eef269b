/*
 * gcstacks: the collector's pauses with many goroutines parked.  N
 * goroutines (default 100 000) park on one channel, each with a frame
 * of about 600 bytes that holds the only pointer to an object of its
 * own; then two goroutines replace the slots of a 16 MiB table of
 * 256-byte objects for a fixed time, so that collections run one after
 * another.  A goroutine's stack is not write-tracked (design.rst): the
 * final pause reads every parked stack again, so its length grows with
 * N, where Go's stays flat.  Prints the longest and the 99th-percentile
 * pause of the collections during that time and their count.
 *
 *   gcstacks [seconds [goroutines]]     (default 5 s, 100 000)
 */
#include "bench_util.h"

struct obj {
	struct obj *next;
	uint64_t payload[31];
};

#define NSLOT	(16L << 20) / (long)sizeof(struct obj)

static struct obj **table;
static int64_t run_ns;
static struct goro_chan *gate;
static struct goro_waitgroup ready, done;

static struct obj *obj_new(uint64_t v)
{
	struct obj *o = goro_alloc(sizeof(*o));

	for (int i = 0; i < 31; i++)
		o->payload[i] = v + (uint64_t)i;
	return o;
}

static void parker(void *arg)
{
	struct obj *volatile mine = obj_new((uint64_t)(uintptr_t)arg);
	volatile char frame[512];
	int v;

	frame[0] = 1;
	goro_waitgroup_done(&ready);
	goro_chan_recv(gate, &v);
	if (mine->payload[0] != (uint64_t)(uintptr_t)arg || frame[0] != 1)
		abort();
	goro_waitgroup_done(&done);
}

static void mutator(void *arg)
{
	long base = (long)(uintptr_t)arg * (NSLOT / 2), i = 0, n = 0;
	int64_t end = goro_nanotime() + run_ns;

	while ((n & 4095) || goro_nanotime() < end) {
		table[base + i] = obj_new((uint64_t)n);
		if (++i == NSLOT / 2)
			i = 0;
		n++;
	}
	goro_waitgroup_done(&done);
}

static long ngoroutines;

static void main_g(void *arg)
{
	struct goro_memstats st0, st1;
	int v = 0;

	(void)arg;
	goro_set_maxprocs(2);
	gate = goro_chan_make(sizeof(int), 0);
	table = goro_alloc((size_t)NSLOT * sizeof(*table));
	for (long i = 0; i < NSLOT; i++)
		table[i] = obj_new((uint64_t)i);
	goro_waitgroup_add(&ready, (int)ngoroutines);
	for (long i = 0; i < ngoroutines; i++)
		if (go(parker, (void *)(uintptr_t)i))
			abort();
	goro_waitgroup_wait(&ready);
	goro_gc();
	goro_read_memstats(&st0);
	goro_waitgroup_add(&done, 2);
	go(mutator, (void *)0);
	go(mutator, (void *)1);
	goro_waitgroup_wait(&done);
	goro_read_memstats(&st1);
	bench_print_pauses("gcstacks", &st0, &st1);
	goro_waitgroup_add(&done, (int)ngoroutines);
	for (long i = 0; i < ngoroutines; i++)
		goro_chan_send(gate, &v);
	goro_waitgroup_wait(&done);
}

int main(int argc, char **argv)
{
	long sec = bench_arg(argc, argv, 5);

	ngoroutines = argc > 2 ? strtol(argv[2], NULL, 0) : 100000;
	run_ns = sec * 1000000000LL;
	return goro_main(main_g, NULL) ? 1 : 0;
}

/*
 * gcheap: a large live heap under steady allocation, for the
 * collector's pauses.  A table of NSLOT pointers (default 4 Mi slots)
 * to 256-byte objects of 31 words of payload, the first ones each
 * linked to an earlier one: about 1 GiB live (a replaced object stays
 * alive while another links to it, at most twice that).  Then two
 * goroutines (on 2 Ps) replace the slots in turn with new unlinked
 * objects for a fixed time, so the live heap stays the same size while
 * garbage flows at full allocation speed and collections run one after
 * another.  Prints the longest and
 * the 99th-percentile pause of the collections during that time, their
 * count, the allocation rate and the peak RSS.
 *
 *   gcheap [seconds [MiB live]]     (default 10 s, 1024 MiB)
 */
#include <sys/resource.h>

#include "bench_util.h"

struct obj {
	struct obj *next;
	uint64_t payload[31];
};

static struct obj **table;
static long nslot;
static int64_t run_ns;
static long allocs[2];
static struct goro_waitgroup wg;

static uint64_t xorshift(uint64_t *r)
{
	*r ^= *r << 13;
	*r ^= *r >> 7;
	*r ^= *r << 17;
	return *r;
}

static struct obj *obj_new(uint64_t v, struct obj *next)
{
	struct obj *o = goro_alloc(sizeof(*o));

	o->next = next;
	for (int i = 0; i < 31; i++)
		o->payload[i] = v + (uint64_t)i;
	return o;
}

/* Replace the slots of this goroutine's half of the table in turn
 * (the oldest object goes), with objects that link to nothing new: the
 * live heap keeps its size and shape, and each replacement costs an
 * allocation, not a cache miss into the table. */
static void mutator(void *arg)
{
	long idx = (long)(uintptr_t)arg, n = 0, half = nslot / 2;
	long base = idx * half, i = 0;
	int64_t end = goro_nanotime() + run_ns;

	while ((n & 4095) || goro_nanotime() < end) {
		table[base + i] = obj_new((uint64_t)n, NULL);
		if (++i == half)
			i = 0;
		n++;
	}
	allocs[idx] = n;
	goro_waitgroup_done(&wg);
}

static void main_g(void *arg)
{
	struct goro_memstats st0, st1;
	uint64_t r = 1;
	struct rusage ru;
	int64_t t0;

	(void)arg;
	goro_set_maxprocs(2);
	table = goro_alloc((size_t)nslot * sizeof(*table));
	for (long i = 0; i < nslot; i++)
		table[i] = obj_new(xorshift(&r), i ? table[xorshift(&r) %
							   (uint64_t)i] : NULL);
	goro_gc();
	goro_read_memstats(&st0);
	t0 = goro_nanotime();
	goro_waitgroup_add(&wg, 2);
	go(mutator, (void *)0);
	go(mutator, (void *)1);
	goro_waitgroup_wait(&wg);
	t0 = goro_nanotime() - t0;
	goro_read_memstats(&st1);
	getrusage(RUSAGE_SELF, &ru);
	bench_print_pauses("gcheap", &st0, &st1);
	bench_print("gcheap/alloc", (double)t0 / (double)(allocs[0] +
							allocs[1]), "ns/op");
	bench_print("gcheap/rss", (double)ru.ru_maxrss / 1024, "MiB");
}

int main(int argc, char **argv)
{
	long sec = bench_arg(argc, argv, 10);
	long mib = argc > 2 ? strtol(argv[2], NULL, 0) : 1024;

	run_ns = sec * 1000000000LL;
	nslot = mib * (1L << 20) / (long)sizeof(struct obj);
	return goro_main(main_g, NULL) ? 1 : 0;
}

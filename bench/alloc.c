/*
 * alloc: small objects of mixed sizes (8..512 bytes) allocated on 2 Ps,
 * each kept alive for a short window (a ring of 1024 slots per
 * goroutine): wall-clock ns per allocation over all of them.
 */
#include "bench_util.h"

#define WINDOW	1024

static long n;
static struct goro_waitgroup wg;

static void allocator(void *arg)
{
	void **ring = goro_alloc(WINDOW * sizeof(void *));
	uint64_t r = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;

	for (long i = 0; i < n; i++) {
		size_t size;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		size = 8 + (r % 64) * 8;	/* 8..512 */
		ring[i & (WINDOW - 1)] = goro_alloc_noscan(size);
	}
	goro_waitgroup_done(&wg);
}

static void main_g(void *arg)
{
	int64_t t0;

	(void)arg;
	goro_set_maxprocs(2);
	t0 = goro_nanotime();
	goro_waitgroup_add(&wg, 2);
	go(allocator, (void *)1);
	go(allocator, (void *)2);
	goro_waitgroup_wait(&wg);
	bench_print("alloc/procs=2", (double)(goro_nanotime() - t0) / (2 * n),
		    "ns/op");
}

int main(int argc, char **argv)
{
	n = bench_arg(argc, argv, 20000000);
	return goro_main(main_g, NULL) ? 1 : 0;
}

/*
 * alloc, Boehm GC twin of bench/alloc.c: the same mixed sizes (8..512
 * bytes, GC_MALLOC_ATOMIC as goro_alloc_noscan) on 2 threads, each kept
 * alive for a window of 1024 allocations.  Prints "bench KEY: boehm=V".
 */
#define GC_THREADS
#include <gc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WINDOW	1024

static long n;

static void *allocator(void *arg)
{
	void **ring = GC_MALLOC(WINDOW * sizeof(void *));
	uint64_t r = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;

	for (long i = 0; i < n; i++) {
		size_t size;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		size = 8 + (r % 64) * 8;	/* 8..512 */
		ring[i & (WINDOW - 1)] = GC_MALLOC_ATOMIC(size);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec a, b;
	pthread_t th[2];

	GC_INIT();
	n = argc > 1 ? strtol(argv[1], NULL, 0) : 20000000;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, allocator, (void *)(i + 1));
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("bench alloc/procs=2: boehm=%.1f ns/op\n",
	       ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) /
	       (2.0 * n));
	return 0;
}

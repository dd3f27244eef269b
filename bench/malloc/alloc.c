/*
 * alloc, explicit-free twin of bench/alloc.c: the same mixed sizes
 * (8..512 bytes) on 2 threads, each object freed when its slot of the
 * 1024-slot ring is reused.  Built twice by bench/gc.mk: against glibc's
 * malloc/free ("glibc=") and mimalloc's mi_malloc/mi_free ("mimalloc=",
 * libmimalloc-dev), for scale beside the collectors.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef USE_MIMALLOC
#include <mimalloc.h>
#define xmalloc	mi_malloc
#define xfree	mi_free
#define NAME	"mimalloc"
#else
#define xmalloc	malloc
#define xfree	free
#define NAME	"glibc"
#endif

#define WINDOW	1024

static long n;

static void *allocator(void *arg)
{
	void **ring = calloc(WINDOW, sizeof(void *));
	uint64_t r = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;

	for (long i = 0; i < n; i++) {
		size_t size;
		char *p;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		size = 8 + (r % 64) * 8;	/* 8..512 */
		xfree(ring[i & (WINDOW - 1)]);
		p = xmalloc(size);
		p[0] = (char)i;	/* the collectors' objects come zeroed */
		ring[i & (WINDOW - 1)] = p;
	}
	for (int i = 0; i < WINDOW; i++)
		xfree(ring[i]);
	free(ring);
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec a, b;
	pthread_t th[2];

	n = argc > 1 ? strtol(argv[1], NULL, 0) : 20000000;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, allocator, (void *)(i + 1));
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("bench alloc/procs=2: " NAME "=%.1f ns/op\n",
	       ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) /
	       (2.0 * n));
	return 0;
}

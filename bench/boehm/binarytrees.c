/*
 * binarytrees, Boehm GC twin of bench/binarytrees.c: the same program
 * with GC_MALLOC and one thread per depth (as the Go twin's goroutines).
 * Prints "bench KEY: boehm=V UNIT" lines.
 */
#define GC_THREADS
#include <gc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

struct node {
	struct node *l, *r;
};

static struct node *bottom_up(int depth)
{
	struct node *n = GC_MALLOC(sizeof(*n));

	if (depth > 0) {
		n->l = bottom_up(depth - 1);
		n->r = bottom_up(depth - 1);
	}
	return n;
}

static long check(const struct node *n)
{
	return n->l ? 1 + check(n->l) + check(n->r) : 1;
}

struct job {
	int depth;
	long iters, sum;
};

static void *worker(void *arg)
{
	struct job *j = arg;

	for (long i = 0; i < j->iters; i++)
		j->sum += check(bottom_up(j->depth));
	return NULL;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 18, mindepth = 4, nd;
	pthread_t th[32];
	struct job jobs[32];
	struct node *longlived;
	struct rusage ru;
	double t0;

	GC_INIT();
	t0 = now_ms();
	printf("stretch tree of depth %d\t check: %ld\n", n + 1,
	       check(bottom_up(n + 1)));
	longlived = bottom_up(n);
	nd = (n - mindepth) / 2 + 1;
	for (int i = 0; i < nd; i++) {
		jobs[i].depth = mindepth + 2 * i;
		jobs[i].iters = 1L << (n - jobs[i].depth + mindepth);
		jobs[i].sum = 0;
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	}
	for (int i = 0; i < nd; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < nd; i++)
		printf("%ld\t trees of depth %d\t check: %ld\n", jobs[i].iters,
		       jobs[i].depth, jobs[i].sum);
	printf("long lived tree of depth %d\t check: %ld\n", n,
	       check(longlived));
	getrusage(RUSAGE_SELF, &ru);
	printf("bench binarytrees/depth=%d/time: boehm=%.1f ms\n", n,
	       now_ms() - t0);
	printf("bench binarytrees/depth=%d/rss: boehm=%.1f MiB\n", n,
	       ru.ru_maxrss / 1024.0);
	return 0;
}

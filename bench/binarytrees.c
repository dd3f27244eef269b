/*
 * binarytrees: the Benchmarks Game program (depth 18 by default; `binarytrees
 * 21` for the long run) on libgoro's collector: a long-lived tree, and
 * at each depth many short-lived trees checked on every P.  Prints wall
 * time, peak RSS and the longest collection pause.
 */
#include <sys/resource.h>

#include "bench_util.h"

struct node {
	struct node *l, *r;
};

static struct node *bottom_up(int depth)
{
	struct node *n = goro_alloc(sizeof(*n));

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

static int maxdepth;

struct job {
	int depth;
	long iters;
	long sum;
	struct goro_waitgroup *wg;
};

static void worker(void *arg)
{
	struct job *j = arg;

	for (long i = 0; i < j->iters; i++)
		j->sum += check(bottom_up(j->depth));
	goro_waitgroup_done(j->wg);
}

static void main_g(void *arg)
{
	int n = maxdepth, mindepth = 4, ndepths;
	struct goro_waitgroup wg = { 0 };
	struct job jobs[32];
	struct goro_memstats st;
	struct node *longlived;
	struct rusage ru;
	uint64_t maxpause = 0;
	int64_t t0 = goro_nanotime();
	char key[64];

	(void)arg;
	printf("stretch tree of depth %d\t check: %ld\n", n + 1,
	       check(bottom_up(n + 1)));
	longlived = bottom_up(n);
	ndepths = (n - mindepth) / 2 + 1;
	goro_waitgroup_add(&wg, ndepths);
	for (int i = 0; i < ndepths; i++) {
		jobs[i].depth = mindepth + 2 * i;
		jobs[i].iters = 1L << (n - jobs[i].depth + mindepth);
		jobs[i].sum = 0;
		jobs[i].wg = &wg;
		go(worker, &jobs[i]);
	}
	goro_waitgroup_wait(&wg);
	for (int i = 0; i < ndepths; i++)
		printf("%ld\t trees of depth %d\t check: %ld\n", jobs[i].iters,
		       jobs[i].depth, jobs[i].sum);
	printf("long lived tree of depth %d\t check: %ld\n", n,
	       check(longlived));

	goro_read_memstats(&st);
	for (int i = 0; i < 256; i++)
		if (st.pause_ns[i] > maxpause)
			maxpause = st.pause_ns[i];
	getrusage(RUSAGE_SELF, &ru);
	snprintf(key, sizeof(key), "binarytrees/depth=%d/time", n);
	bench_print(key, (double)(goro_nanotime() - t0) / 1e6, "ms");
	snprintf(key, sizeof(key), "binarytrees/depth=%d/rss", n);
	bench_print(key, (double)ru.ru_maxrss / 1024, "MiB");
	snprintf(key, sizeof(key), "binarytrees/depth=%d/maxpause", n);
	bench_print(key, (double)maxpause / 1e3, "us");
	fprintf(stderr, "binarytrees: %u collections\n", st.num_gc);
}

int main(int argc, char **argv)
{
	maxdepth = (int)bench_arg(argc, argv, 18);
	if (maxdepth < 6)
		maxdepth = 6;
	return goro_main(main_g, NULL) ? 1 : 0;
}

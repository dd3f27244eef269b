/*
 * preempt: on GOMAXPROCS=1, a goroutine spinning in a loop with no calls
 * beside one that sleeps 1 ms, 1000 times: the sleeper's wake-up delay
 * (how late it runs after its 1 ms), worst and 99th percentile, in ns.
 * Only preemption lets the sleeper run at all; its delay is bounded by
 * the time slice (10 ms) plus the signal's latency.  The spinning loop
 * lives in its own section, registered as preemptible (a static binary
 * has no preemptible text by default).  Natively this is the userland
 * sysmon; in the VM goro.ko's (GORODEBUG=kmodsysmon=0: the userland one).
 */
#include "bench_util.h"

#define ROUNDS	1000
#define MS	1000000LL

extern char __start_bench_spin[], __stop_bench_spin[];

static uint32_t stop;
static int64_t delays[ROUNDS];
static struct goro_waitgroup wg;

__attribute__((section("bench_spin"), noinline))
static uint64_t spin_until(uint32_t *flag)
{
	uint64_t n = 0;

	while (!__atomic_load_n(flag, __ATOMIC_RELAXED))
		n++;
	return n;
}

static void spinner(void *arg)
{
	(void)arg;
	spin_until(&stop);
	goro_waitgroup_done(&wg);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void main_g(void *arg)
{
	long rounds = (long)arg;

	goro_set_maxprocs(1);
	if (goro_preempt_allow_text(NULL, NULL) ||
	    goro_preempt_allow_text(__start_bench_spin, __stop_bench_spin))
		abort();
	goro_waitgroup_add(&wg, 1);
	go(spinner, NULL);
	goro_yield();		/* let it spin */
	for (long i = 0; i < rounds; i++) {
		int64_t t0 = goro_nanotime();

		goro_sleep(MS);
		delays[i] = goro_nanotime() - t0 - MS;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	goro_waitgroup_wait(&wg);
	qsort(delays, (size_t)rounds, sizeof(delays[0]), cmp_i64);
	bench_print("preempt/worst", (double)delays[rounds - 1], "ns");
	bench_print("preempt/p99", (double)delays[rounds * 99 / 100], "ns");
}

int main(int argc, char **argv)
{
	long rounds = bench_arg(argc, argv, ROUNDS);

	if (rounds < 1 || rounds > ROUNDS)
		rounds = ROUNDS;
	return goro_main(main_g, (void *)rounds) ? 1 : 0;
}

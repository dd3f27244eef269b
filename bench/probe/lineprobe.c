// SPDX-License-Identifier: MIT
/*
 * lineprobe: how dear moving a cache line between two CPUs is right now.
 * Two threads pinned to CPUs 0 and 1 (or the first two the process may
 * use) bounce one line, each waiting for the other's store; prints the
 * mean round trip in ns.  scripts/bench.sh runs it beside each benchmark:
 * this host moves its vCPUs, and a line's round trip goes from 70-120 ns
 * to 320-350 ns for minutes at a time, which the benchmarks whose cost is
 * such moves (chanbuf, spawn procs=2, sieve) follow, while their Go twins,
 * which spend more instructions per element, follow less.
 *
 *   lineprobe [round trips]       (default 1 000 000)
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile uint64_t line[8] __attribute__((aligned(64)));
static long rounds = 1000000;
static int cpus[2] = { 0, 1 };

static int pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

static void *bouncer(void *arg)
{
	(void)arg;
	pin(cpus[1]);	/* unpinned, it still answers: main must not hang */
	for (uint64_t i = 1; i <= (uint64_t)rounds; i++) {
		while (line[0] != 2 * i - 1)
			__builtin_ia32_pause();
		line[0] = 2 * i;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec a, b;
	cpu_set_t s;
	pthread_t t;
	int n = 0;

	if (argc > 1)
		rounds = atol(argv[1]);
	if (rounds < 1)
		rounds = 1;
	if (sched_getaffinity(0, sizeof(s), &s) == 0)
		for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
			if (CPU_ISSET(c, &s))
				cpus[n++] = c;
	if (n < 2 || pin(cpus[0]) || pthread_create(&t, NULL, bouncer, NULL)) {
		fprintf(stderr, "lineprobe: needs two CPUs\n");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint64_t i = 1; i <= (uint64_t)rounds; i++) {
		line[0] = 2 * i - 1;
		while (line[0] != 2 * i)
			__builtin_ia32_pause();
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(t, NULL);
	printf("%.0f\n", ((b.tv_sec - a.tv_sec) * 1e9 +
			  (b.tv_nsec - a.tv_nsec)) / (double)rounds);
	return 0;
}

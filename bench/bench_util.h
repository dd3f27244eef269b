/*
 * bench_util.h: what every libgoro benchmark shares.  Each benchmark
 * prints one line per case, "bench KEY: goro=VALUE UNIT", which
 * scripts/bench.sh joins with the "go=VALUE" line of its Go twin.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <goro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline long bench_arg(int argc, char **argv, long def)
{
	return argc > 1 ? strtol(argv[1], NULL, 0) : def;
}

/* Resident set size of this process, in bytes, from /proc/self/statm. */
static inline long bench_rss(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static inline void bench_print(const char *key, double v, const char *unit)
{
	printf("bench %s: goro=%.1f %s\n", key, v, unit);
	fflush(stdout);
}

#endif

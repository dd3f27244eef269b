/* SPDX-License-Identifier: MIT */
/*
 * test_env.h - how the environment scales the selftests, for both suites
 * (selftests/goro and selftests/libgoro).  Plain runs use the sizes and
 * bounds the issues ask for; a debug kernel (make check-debug), where
 * KASAN and lockdep make every system call, fault and signal ten to a
 * hundred times slower, sets:
 *
 *  GORO_TEST_DIV=N   the stress tests' sizes (items, goroutines,
 *                    connections) divided by N: the kernel's checks need
 *                    each path, not the volume;
 *  GORO_TEST_SLOW=N  latency bounds multiplied and rate floors divided
 *                    by N: the checks still catch what never happens or
 *                    happens without bound.
 */
#ifndef GORO_TEST_ENV_H
#define GORO_TEST_ENV_H

#include <stdlib.h>

static inline long test_env_factor(const char *name)
{
	const char *s = getenv(name);
	long d = s ? atol(s) : 1;

	return d > 0 ? d : 1;
}

static inline long test_div(void)
{
	return test_env_factor("GORO_TEST_DIV");
}

static inline long test_slow(void)
{
	return test_env_factor("GORO_TEST_SLOW");
}

#endif /* GORO_TEST_ENV_H */

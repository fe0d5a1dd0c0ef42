/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the benchmarks that use the library. */
#ifndef USWAP_BENCH_COMMON_H
#define USWAP_BENCH_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "uswap.h"

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A counter of u, 0 for an unknown name. */
static inline uint64_t stat_of(uswap_t *u, const char *n)
{
	uint64_t v = 0;

	uswap_stat(u, n, &v);
	return v;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sort v[0..n) and give its median, min and max. */
static inline void stats3(double *v, int n, double *med, double *lo, double *hi)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	*med = v[n / 2];
	*lo = v[0];
	*hi = v[n - 1];
}

#endif

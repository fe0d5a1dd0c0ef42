/* SPDX-License-Identifier: MIT */
/*
 * bench_stores: swap-in from each store.  For every store given, fills SIZE
 * of managed memory with the realistic page mix, pages it all out, then
 * times bringing it back: a sequential pass (one fault per folio) and
 * random 4 KiB reads after a second page-out.  Prints per store and phase:
 * microseconds per fault, the store's own read time per read
 * (store_read_ns / store_reads; 0 for ram, which does no I/O), and MB/s of
 * pages brought in.  Median over --reps runs.
 *
 *   bench_stores [--size 256M] [--reps 3] [--dir /tmp] [--store URI]...
 *
 * Without --store: ram, file:DIR and ram,file:DIR (ram tier SIZE/8).  A
 * redis store needs a server: e.g.
 *   redis-server --port 6390 --save '' --appendonly no &
 *   bench_stores --store redis://127.0.0.1:6390
 *
 * Not a test: it never fails on a figure, but every page is checked, so a
 * fast wrong answer cannot pass unseen (exit 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pagegen.h"
#include "uswap.h"

#define PAGE 4096ul
#define MAXREP 15
#define MAXSTORES 8

enum { PH_SEQ, PH_RAND, PH_N };
static const char *const phase_names[PH_N] = { "seq_swapin", "rand_swapin" };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t stat_of(uswap_t *u, const char *n)
{
	uint64_t v = 0;

	uswap_stat(u, n, &v);
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

struct sample {
	double us_per_fault, us_per_read, mb_s;
};

/* One run on one store: both phases. */
static int run_store(const char *store, size_t size, struct sample out[PH_N])
{
	struct uswap_config cfg = { .store = store };
	size_t pages = size / PAGE;
	uint64_t f0, r0, ns0, p0, x = 88172645463325252ull;
	volatile uint64_t sink = 0;
	double t;
	uswap_t *u;
	char *mem;

	if (uswap_open(&cfg, &u)) {
		fprintf(stderr, "bench_stores: %s: %s\n", store, uswap_last_error());
		return -1;
	}
	if (uswap_map(u, size, 0, (void **)&mem)) {
		fprintf(stderr, "bench_stores: map: %s\n", uswap_last_error());
		uswap_close(u);
		return -1;
	}
	for (size_t i = 0; i < pages; i++)
		pagegen_fill(mem + i * PAGE, 5, i, 0);
	for (int ph = 0; ph < PH_N; ph++) {
		size_t n = ph == PH_SEQ ? pages : pages / 8;

		if (uswap_advise(u, mem, size, USWAP_ADV_PAGEOUT)) {
			fprintf(stderr, "bench_stores: %s: PAGEOUT: %s\n", store, uswap_last_error());
			break;
		}
		f0 = stat_of(u, "faults");
		r0 = stat_of(u, "store_reads");
		ns0 = stat_of(u, "store_read_ns");
		p0 = stat_of(u, "swapin_pages");
		t = now_s();
		for (size_t k = 0; k < n; k++) {
			size_t i;

			if (ph == PH_SEQ) {
				i = k;
			} else {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				i = (size_t)(x % pages);
			}
			sink += *(volatile uint64_t *)(mem + i * PAGE);
		}
		t = now_s() - t;
		{
			uint64_t faults = stat_of(u, "faults") - f0, reads = stat_of(u, "store_reads") - r0;

			out[ph].us_per_fault = faults ? t * 1e6 / (double)faults : 0;
			out[ph].us_per_read =
				reads ? (double)(stat_of(u, "store_read_ns") - ns0) / 1e3 / (double)reads : 0;
			out[ph].mb_s = (double)((stat_of(u, "swapin_pages") - p0) * PAGE) / t / 1e6;
		}
	}
	/* every page must be what was written */
	for (size_t i = 0; i < pages; i++) {
		char want[PAGE];

		pagegen_fill(want, 5, i, 0);
		if (memcmp(want, mem + i * PAGE, PAGE)) {
			fprintf(stderr, "bench_stores: %s: page %zu reads wrong\n", store, i);
			exit(1);
		}
	}
	(void)sink;
	uswap_unmap(u, mem, size);
	uswap_close(u);
	return 0;
}

int main(int argc, char **argv)
{
	const char *stores[MAXSTORES];
	static char def_file[300], def_tier[300];
	const char *dir = "/tmp";
	size_t size = 256ul << 20;
	int nstores = 0, reps = 3;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			if (uswap_parse_size("--size", argv[++i], &size) || size < (1ul << 20)) {
				fprintf(stderr, "bench_stores: --size: %s (at least 1M)\n",
					uswap_last_error());
				return 2;
			}
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			reps = atoi(argv[++i]);
			if (reps < 1 || reps > MAXREP) {
				fprintf(stderr, "bench_stores: --reps %s: 1 to %d\n", argv[i], MAXREP);
				return 2;
			}
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--store") && i + 1 < argc && nstores < MAXSTORES) {
			stores[nstores++] = argv[++i];
		} else {
			fprintf(stderr, "usage: bench_stores [--size 256M] [--reps 3] [--dir /tmp] "
					"[--store URI]...\n");
			return 2;
		}
	}
	if (!nstores) {
		snprintf(def_file, sizeof(def_file), "file:%s", dir);
		snprintf(def_tier, sizeof(def_tier), "ram,file:%s,ram=%zuM", dir,
			 (size >> 20) / 8 ? (size >> 20) / 8 : 1);
		stores[nstores++] = "ram";
		stores[nstores++] = def_file;
		stores[nstores++] = def_tier;
	}
	printf("# %zu MiB of the page mix per store, median of %d runs\n", size >> 20, reps);
	printf("%-28s %-12s %12s %14s %10s\n", "store", "phase", "us/fault", "us/store read",
	       "MB/s");
	for (int s = 0; s < nstores; s++) {
		double v[3][PH_N][MAXREP];
		struct sample smp[PH_N];

		for (int r = 0; r < reps; r++) {
			if (run_store(stores[s], size, smp))
				return 1;
			for (int ph = 0; ph < PH_N; ph++) {
				v[0][ph][r] = smp[ph].us_per_fault;
				v[1][ph][r] = smp[ph].us_per_read;
				v[2][ph][r] = smp[ph].mb_s;
			}
		}
		for (int ph = 0; ph < PH_N; ph++)
			printf("%-28s %-12s %12.1f %14.1f %10.0f\n", stores[s], phase_names[ph],
			       median(v[0][ph], reps), median(v[1][ph], reps),
			       median(v[2][ph], reps));
	}
	return 0;
}

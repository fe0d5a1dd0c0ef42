/* SPDX-License-Identifier: MIT */
/*
 * bench_swapcache: what the swap cache saves on a read-mostly workload.
 *
 * A region several times the budget, filled with the realistic page mix,
 * is read in passes with a zipf-skewed choice of pages (exponent --theta,
 * YCSB's 0.99 by default; hot pages scattered over the region by a fixed
 * permutation).  The same run is made twice, each in its own instance:
 * with the swap cache (a folio swapped in keeps its stored copy, so
 * evicting it again while clean stores nothing) and without it
 * (USWAP_CFG_NO_SWAPCACHE: the foundation's behaviour, every eviction
 * compresses again).  Per pass: time per access, faults, pages compressed
 * (swapout_pages) and clean re-evictions (swapcache_hits).
 *
 *   bench_swapcache [--size 1G] [--limit 256M] [--passes 5] [--theta 0.99]
 *                   [--codec lz4] [--folio 64K] [--json]
 *
 * Not a test: it never fails on a figure; every page read is checked
 * against its hash all the same (exit 1 on a wrong page).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pagegen.h"
#include "uswap.h"

#define PAGE 4096ul
#define MAXPASS 20
#define SEED 7

struct pass {
	double seconds, us_per_access;
	uint64_t faults, pages_compressed, swapcache_hits, swapcache_reuse;
};

struct opts {
	size_t size, limit, folio;
	unsigned passes;
	double theta;
	const char *codec;
	int json;
};

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

/* Cumulative zipf distribution over ranks 0..n-1: P(rank k) ~ 1/(k+1)^theta. */
static double *zipf_cdf(size_t n, double theta)
{
	double *cdf = malloc(n * sizeof(*cdf)), sum = 0;
	size_t k;

	if (!cdf)
		return NULL;
	for (k = 0; k < n; k++)
		cdf[k] = (sum += 1.0 / pow((double)(k + 1), theta));
	for (k = 0; k < n; k++)
		cdf[k] /= sum;
	return cdf;
}

static size_t zipf_rank(const double *cdf, size_t n, double x)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cdf[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t xorshift(uint64_t *r)
{
	*r ^= *r << 13, *r ^= *r >> 7, *r ^= *r << 17;
	return *r;
}

/* One instance, one mode: fill, then the read passes.  @return pages read wrong. */
static uint64_t run_mode(const struct opts *o, unsigned flags, const double *cdf,
			 const uint64_t *hash, struct pass *out)
{
	struct uswap_config cfg = { .limit = o->limit, .folio_size = o->folio, .codec = o->codec,
				    .flags = flags };
	size_t pages = o->size / PAGE, i;
	uint64_t bad = 0, r = 0x9e3779b97f4a7c15ull;
	unsigned p;
	uswap_t *u;
	char *mem;

	if (uswap_open(&cfg, &u) || uswap_map(u, o->size, 0, (void **)&mem)) {
		fprintf(stderr, "bench_swapcache: %s\n", uswap_last_error());
		exit(1);
	}
	for (i = 0; i < pages; i++)
		pagegen_fill(mem + i * PAGE, SEED, i, 0);
	for (p = 0; p < o->passes; p++) {
		uint64_t f0 = stat_of(u, "faults"), out0 = stat_of(u, "swapout_pages"),
			 hit0 = stat_of(u, "swapcache_hits"), reuse0 = stat_of(u, "swapcache_reuse");
		double t0 = now_s();

		for (i = 0; i < pages; i++) {
			double x = (double)(xorshift(&r) >> 11) / 9007199254740992.0;
			/* an odd multiplier permutes page numbers (pages is a power of two
			 * or not: the modulus keeps it in range, collisions are harmless) */
			size_t pg = (zipf_rank(cdf, pages, x) * 2654435761ull) % pages;

			if (pagegen_hash(mem + pg * PAGE) != hash[pg])
				bad++;
		}
		out[p].seconds = now_s() - t0;
		out[p].us_per_access = out[p].seconds * 1e6 / (double)pages;
		out[p].faults = stat_of(u, "faults") - f0;
		out[p].pages_compressed = stat_of(u, "swapout_pages") - out0;
		out[p].swapcache_hits = stat_of(u, "swapcache_hits") - hit0;
		out[p].swapcache_reuse = stat_of(u, "swapcache_reuse") - reuse0;
	}
	uswap_unmap(u, mem, o->size);
	uswap_close(u);
	return bad;
}

static int parse(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (!strcmp(a, "--json")) {
			o->json = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "bench_swapcache: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--size"))
			bad = uswap_parse_size(a, v, &o->size);
		else if (!strcmp(a, "--limit"))
			bad = uswap_parse_size(a, v, &o->limit);
		else if (!strcmp(a, "--folio"))
			bad = uswap_parse_size(a, v, &o->folio);
		else if (!strcmp(a, "--codec"))
			o->codec = v;
		else if (!strcmp(a, "--passes"))
			o->passes = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--theta"))
			o->theta = strtod(v, NULL);
		else {
			fprintf(stderr, "bench_swapcache: unknown option %s\n", a);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "bench_swapcache: %s\n", uswap_last_error());
			return 2;
		}
	}
	if (o->passes < 1 || o->passes > MAXPASS) {
		fprintf(stderr, "bench_swapcache: --passes must be 1 to %d\n", MAXPASS);
		return 2;
	}
	if (!(o->theta > 0 && o->theta < 2)) {
		fprintf(stderr, "bench_swapcache: --theta must be in (0, 2), e.g. 0.99\n");
		return 2;
	}
	if (o->size < 16 * PAGE || o->size % PAGE) {
		fprintf(stderr, "bench_swapcache: --size must be a multiple of 4K, at least 64K\n");
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .size = 1ul << 30, .limit = 256ul << 20, .passes = 5, .theta = 0.99 };
	static const char *const mode_names[2] = { "swapcache", "no_swapcache" };
	static const unsigned mode_flags[2] = { 0, USWAP_CFG_NO_SWAPCACHE };
	struct pass res[2][MAXPASS];
	size_t pages, i;
	uint64_t *hash, bad = 0;
	double *cdf;
	char page[PAGE];
	int m, rc = parse(argc, argv, &o);

	if (rc)
		return rc;
	pages = o.size / PAGE;
	hash = malloc(pages * sizeof(*hash));
	cdf = zipf_cdf(pages, o.theta);
	if (!hash || !cdf) {
		fprintf(stderr, "bench_swapcache: out of memory\n");
		return 1;
	}
	for (i = 0; i < pages; i++) {
		pagegen_fill(page, SEED, i, 0);
		hash[i] = pagegen_hash(page);
	}
	for (m = 0; m < 2; m++)
		bad += run_mode(&o, mode_flags[m], cdf, hash, res[m]);

	if (o.json) {
		printf("{\"size\": %zu, \"limit\": %zu, \"theta\": %.3f, \"codec\": \"%s\", "
		       "\"wrong_pages\": %llu, \"modes\": {",
		       o.size, o.limit, o.theta, o.codec ? o.codec : "lz4", (unsigned long long)bad);
		for (m = 0; m < 2; m++) {
			printf("%s\"%s\": [", m ? ", " : "", mode_names[m]);
			for (unsigned p = 0; p < o.passes; p++)
				printf("%s{\"us_per_access\": %.3f, \"faults\": %llu, "
				       "\"pages_compressed\": %llu, \"swapcache_hits\": %llu}",
				       p ? ", " : "", res[m][p].us_per_access,
				       (unsigned long long)res[m][p].faults,
				       (unsigned long long)res[m][p].pages_compressed,
				       (unsigned long long)res[m][p].swapcache_hits);
			printf("]");
		}
		printf("}}\n");
	} else {
		printf("%zu MiB under %zu MiB, zipf %.2f, %zu reads per pass, codec %s\n", o.size >> 20,
		       o.limit >> 20, o.theta, pages, o.codec ? o.codec : "lz4");
		printf("%-13s %4s %10s %10s %10s %16s %14s\n", "mode", "pass", "s/pass", "us/read",
		       "faults", "pages_compressed", "swapcache_hits");
		for (m = 0; m < 2; m++)
			for (unsigned p = 0; p < o.passes; p++)
				printf("%-13s %4u %10.2f %10.2f %10llu %16llu %14llu\n", mode_names[m],
				       p + 1, res[m][p].seconds, res[m][p].us_per_access,
				       (unsigned long long)res[m][p].faults,
				       (unsigned long long)res[m][p].pages_compressed,
				       (unsigned long long)res[m][p].swapcache_hits);
	}
	if (bad)
		fprintf(stderr, "bench_swapcache: %llu pages read wrong\n", (unsigned long long)bad);
	free(cdf);
	free(hash);
	return bad ? 1 : 0;
}

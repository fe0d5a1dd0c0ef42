/* SPDX-License-Identifier: MIT */
/*
 * bench_access: the fault path under a budget, so every change can be
 * compared.  Fills SIZE of managed memory with the realistic page mix, then
 * times sequential reads, random 4 KiB reads and random 4 KiB writes, and
 * prints per phase: microseconds per 4 KiB access, faults, microseconds per
 * fault, pages brought in per fault.  Median, min and max over --reps runs.
 *
 *   bench_access [--size 1G] [--limit 256M] [--codec lz4] [--folio 64K]
 *                [--reps 3] [--json]
 *
 * Not a test: it never fails on a figure.  Checks every read against the
 * page hashes all the same, so a fast wrong answer cannot pass unseen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pagegen.h"
#include "uswap.h"
#include "bench_common.h"

#define PAGE 4096ul
#define MAXREP 15

enum { PH_SEQ, PH_RAND_READ, PH_RAND_WRITE, PH_N };
static const char *const phase_names[PH_N] = { "seq_read", "rand_read", "rand_write" };

struct sample {
	double us_per_access, us_per_fault, pages_per_fault;
	uint64_t faults;
};

static int run(uswap_t *u, char *mem, size_t pages, uint64_t *hash, unsigned rep,
	       struct sample out[PH_N])
{
	uint64_t r = 0x9e3779b97f4a7c15ull * (rep + 1), bad = 0;
	size_t n_rand = pages / 4, i;
	int ph;

	for (ph = 0; ph < PH_N; ph++) {
		uint64_t f0 = stat_of(u, "faults"), in0 = stat_of(u, "swapin_pages") +
							  stat_of(u, "zero_pages_in");
		size_t n = ph == PH_SEQ ? pages : n_rand;
		double t0 = now_s(), dt;

		for (i = 0; i < n; i++) {
			size_t p;

			if (ph == PH_SEQ) {
				p = i;
			} else {
				r ^= r << 13, r ^= r >> 7, r ^= r << 17;
				p = r % pages;
			}
			if (ph == PH_RAND_WRITE) {
				/* one word per access, as a program updating a field */
				uint64_t *w = (uint64_t *)(mem + p * PAGE) + (r >> 40) % 512;

				(*w)++;
				hash[p] = 0; /* recomputed below */
			} else if (hash[p] && pagegen_hash(mem + p * PAGE) != hash[p]) {
				bad++;
			}
		}
		dt = now_s() - t0;
		out[ph].faults = stat_of(u, "faults") - f0;
		out[ph].us_per_access = dt * 1e6 / (double)n;
		out[ph].us_per_fault = out[ph].faults ? dt * 1e6 / (double)out[ph].faults : 0;
		out[ph].pages_per_fault =
			out[ph].faults ? (double)(stat_of(u, "swapin_pages") + stat_of(u, "zero_pages_in") -
						  in0) / (double)out[ph].faults
				       : 0;
	}
	for (i = 0; i < pages; i++)
		if (!hash[i])
			hash[i] = pagegen_hash(mem + i * PAGE);
	if (bad)
		fprintf(stderr, "bench_access: %llu pages read wrong\n", (unsigned long long)bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct uswap_config cfg = { .limit = 256ul << 20 };
	struct sample s[MAXREP][PH_N];
	size_t size = 1ul << 30, pages, i;
	unsigned reps = 3, rep;
	int json = 0, ph, rc = 0;
	uint64_t *hash;
	uswap_t *u;
	char *mem;

	for (i = 1; i < (size_t)argc; i++) {
		const char *a = argv[i], *v = i + 1 < (size_t)argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (!strcmp(a, "--json")) {
			json = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "bench_access: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--size"))
			bad = uswap_parse_size(a, v, &size);
		else if (!strcmp(a, "--limit"))
			bad = uswap_parse_size(a, v, &cfg.limit);
		else if (!strcmp(a, "--folio"))
			bad = uswap_parse_size(a, v, &cfg.folio_size);
		else if (!strcmp(a, "--codec"))
			cfg.codec = v;
		else if (!strcmp(a, "--reps"))
			reps = (unsigned)atoi(v);
		else {
			fprintf(stderr, "bench_access: unknown option %s\n", a);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "bench_access: %s\n", uswap_last_error());
			return 2;
		}
	}
	if (reps < 1 || reps > MAXREP) {
		fprintf(stderr, "bench_access: --reps must be 1 to %d\n", MAXREP);
		return 2;
	}
	if ((rc = uswap_open(&cfg, &u))) {
		fprintf(stderr, "bench_access: %s\n", uswap_last_error());
		return 1;
	}
	pages = size / PAGE;
	hash = calloc(pages, sizeof(*hash));
	if (!hash || uswap_map(u, size, 0, (void **)&mem)) {
		fprintf(stderr, "bench_access: cannot map %zu bytes\n", size);
		return 1;
	}
	for (i = 0; i < pages; i++) {
		pagegen_fill(mem + i * PAGE, 7, i, 0);
		hash[i] = pagegen_hash(mem + i * PAGE);
	}
	for (rep = 0; rep < reps; rep++)
		rc |= run(u, mem, pages, hash, rep, s[rep]);

	if (json)
		printf("{\"size\": %zu, \"limit\": %zu, \"codec\": \"%s\", \"folio\": %llu, "
		       "\"reps\": %u, \"phases\": {",
		       size, cfg.limit, cfg.codec ? cfg.codec : "lz4",
		       (unsigned long long)stat_of(u, "folio_bytes"), reps);
	else
		printf("%zu MiB under %zu MiB, codec %s, folio %llu KiB, median (min-max) of %u\n"
		       "%-11s %22s %22s %10s %14s\n",
		       size >> 20, cfg.limit >> 20, cfg.codec ? cfg.codec : "lz4",
		       (unsigned long long)stat_of(u, "folio_bytes") >> 10, reps, "phase",
		       "us/access", "us/fault", "faults", "pages/fault");
	for (ph = 0; ph < PH_N; ph++) {
		double a[MAXREP], f[MAXREP], p[MAXREP], am, al, ah, fm, fl, fh, pm, pl, ph_;
		uint64_t faults = 0;

		for (rep = 0; rep < reps; rep++) {
			a[rep] = s[rep][ph].us_per_access;
			f[rep] = s[rep][ph].us_per_fault;
			p[rep] = s[rep][ph].pages_per_fault;
			faults += s[rep][ph].faults;
		}
		stats3(a, (int)reps, &am, &al, &ah);
		stats3(f, (int)reps, &fm, &fl, &fh);
		stats3(p, (int)reps, &pm, &pl, &ph_);
		if (json)
			printf("%s\"%s\": {\"us_per_access\": [%.3f, %.3f, %.3f], "
			       "\"us_per_fault\": [%.3f, %.3f, %.3f], \"faults\": %llu, "
			       "\"pages_per_fault\": %.2f}",
			       ph ? ", " : "", phase_names[ph], am, al, ah, fm, fl, fh,
			       (unsigned long long)(faults / reps), pm);
		else
			printf("%-11s %7.2f (%5.2f-%6.2f) %7.2f (%5.2f-%6.2f) %10llu %14.2f\n",
			       phase_names[ph], am, al, ah, fm, fl, fh,
			       (unsigned long long)(faults / reps), pm);
	}
	if (json)
		printf("}, \"stored_bytes\": %llu, \"orig_bytes\": %llu, \"wrong_pages\": %d}\n",
		       (unsigned long long)stat_of(u, "stored_bytes"),
		       (unsigned long long)stat_of(u, "orig_bytes"), rc);
	uswap_unmap(u, mem, size);
	uswap_close(u);
	free(hash);
	return rc;
}

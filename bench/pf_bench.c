// SPDX-License-Identifier: MIT
/*
 * pf_bench: the cost of a page fault that brings a page back from memory,
 * and nothing else: the idea of LLNL UMap's page-fault benchmark
 * (pfbenchmark: one word per page, read or written in order or shuffled,
 * by one or more threads, nanoseconds per page), applied to swap.  Every
 * page holds its index in its first word and zeros after it, so compression
 * and the store cost next to nothing: what is measured is the fault path.
 * No budget: everything is paged out before each timed pass, so every page
 * of the pass is swapped in once.
 *
 *   pf_bench --mode uswap|kernel [--pages N] [--threads T] [--folio 4K|64K]
 *            [--reps R]
 *
 * --mode kernel pages out with MADV_PAGEOUT and needs swap (the kernel's
 * zram: bench/pf_vs_kernel.sh sets it up and restores the machine);
 * --mode uswap pages out with USWAP_ADV_PAGEOUT (no swap needed).  Prints
 * one JSON object per pass (pattern, op, rep, ns per page, faults seen by
 * getrusage) and a table of medians.  Every read checks the word against
 * the value last written (exit 1 on a mismatch).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "bench_common.h"
#include "uswap.h"

#define PAGE 4096ul
#define MAX_THREADS 64
#define MAX_REPS 32

struct opts {
	bool kernel;
	size_t pages;
	unsigned threads, reps;
	size_t folio;
};

struct pass {
	uint64_t *mem;     /* word 0 of page i at mem[i * PAGE / 8] */
	uint64_t *expect;  /* the value page i's word holds */
	uint32_t *order;   /* the pages in the order of the pass */
	size_t first, n;   /* this thread's share of order[] */
	bool write;
	uint64_t gen;
	size_t bad;
};

static void die(const char *msg, const char *value)
{
	fprintf(stderr, "pf_bench: %s%s%s\n", msg, value ? ": " : "", value ? value : "");
	exit(2);
}

static size_t parse_count(const char *flag, const char *v, size_t lo, size_t hi)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi) {
		fprintf(stderr, "pf_bench: %s %s: allowed: a whole number from %zu to %zu\n", flag,
			v, lo, hi);
		exit(2);
	}
	return (size_t)x;
}

static void parse(int argc, char **argv, struct opts *o)
{
	int i;

	*o = (struct opts){ .pages = 262144, .threads = 1, .reps = 3, .folio = 64 << 10 };
	for (i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			die("a value is missing after", a);
		if (!strcmp(a, "--mode")) {
			if (strcmp(v, "uswap") && strcmp(v, "kernel"))
				die("--mode: allowed: uswap, kernel; given", v);
			o->kernel = !strcmp(v, "kernel");
		} else if (!strcmp(a, "--pages")) {
			o->pages = parse_count(a, v, 1024, 1ul << 24);
		} else if (!strcmp(a, "--threads")) {
			o->threads = (unsigned)parse_count(a, v, 1, MAX_THREADS);
		} else if (!strcmp(a, "--reps")) {
			o->reps = (unsigned)parse_count(a, v, 1, MAX_REPS);
		} else if (!strcmp(a, "--folio")) {
			if (strcmp(v, "4K") && strcmp(v, "64K"))
				die("--folio: allowed: 4K, 64K; given", v);
			o->folio = !strcmp(v, "4K") ? 4096 : 64 << 10;
		} else {
			die("unknown option (allowed: --mode --pages --threads --folio --reps)", a);
		}
	}
}

static void *pass_main(void *arg)
{
	struct pass *p = arg;
	size_t i;

	for (i = p->first; i < p->first + p->n; i++) {
		uint32_t pg = p->order[i];
		volatile uint64_t *w = &p->mem[(size_t)pg * (PAGE / 8)];

		if (p->write) {
			uint64_t v = (uint64_t)pg * 0x9e3779b97f4a7c15ull + p->gen;

			*w = v;
			p->expect[pg] = v;
		} else if (*w != p->expect[pg]) {
			p->bad++;
		}
	}
	return NULL;
}

static long faults_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_majflt + ru.ru_minflt;
}

/* Run one pass over all pages with o->threads threads; ns per page. */
static double run_pass(const struct opts *o, uint64_t *mem, uint64_t *expect, uint32_t *order,
		       bool write, uint64_t gen, size_t *bad)
{
	struct pass p[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	unsigned t;
	double t0;

	for (t = 0; t < o->threads; t++) {
		size_t a = o->pages * t / o->threads, b = o->pages * (t + 1) / o->threads;

		p[t] = (struct pass){ mem, expect, order, a, b - a, write, gen, 0 };
	}
	t0 = now_s();
	for (t = 0; t < o->threads; t++)
		if (pthread_create(&th[t], NULL, pass_main, &p[t]))
			die("pthread_create failed", NULL);
	for (t = 0; t < o->threads; t++) {
		pthread_join(th[t], NULL);
		*bad += p[t].bad;
	}
	return (now_s() - t0) * 1e9 / (double)o->pages;
}

static long status_kib(const char *field)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = strtol(line + strlen(field), NULL, 10);
	fclose(f);
	return v;
}

static void page_out(const struct opts *o, uswap_t *u, void *mem, size_t len)
{
	if (o->kernel) {
		if (madvise(mem, len, MADV_PAGEOUT))
			die("madvise(MADV_PAGEOUT) failed", strerror(errno));
		/* the kernel may keep some: say so rather than time resident pages */
		if (status_kib("VmSwap:") * 1024 < (long)(len * 9 / 10)) {
			fprintf(stderr, "pf_bench: the kernel paged out only %ld KiB of %zu KiB: "
					"is swap on (bench/pf_vs_kernel.sh sets up zram)?\n",
				status_kib("VmSwap:"), len >> 10);
			exit(1);
		}
	} else if (uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT)) {
		die("uswap_advise(PAGEOUT) failed", uswap_last_error());
	}
}

int main(int argc, char **argv)
{
	static const char *const patterns[] = { "seq", "shuffle" };
	static const char *const ops[] = { "read", "write" };
	double ns[2][2][MAX_REPS];
	long flt[2][2][MAX_REPS];
	struct opts o;
	uswap_t *u = NULL;
	size_t len, i, bad = 0;
	uint64_t *mem, *expect, gen = 1;
	uint32_t *order[2];
	uint64_t x = 0x2545f4914f6cdd1dull; /* xorshift state */
	unsigned rep, pat, op;

	parse(argc, argv, &o);
	len = o.pages * PAGE;
	if (o.kernel) {
		mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			die("mmap failed", strerror(errno));
		madvise(mem, len, MADV_NOHUGEPAGE);
	} else {
		struct uswap_config cfg = { .folio_size = o.folio };
		int rc = uswap_open(&cfg, &u);

		if (rc)
			die("uswap_open failed", uswap_last_error());
		if (uswap_map(u, len, 0, (void **)&mem))
			die("uswap_map failed", uswap_last_error());
	}
	expect = calloc(o.pages, sizeof(*expect));
	order[0] = malloc(o.pages * sizeof(uint32_t));
	order[1] = malloc(o.pages * sizeof(uint32_t));
	if (!expect || !order[0] || !order[1])
		die("out of memory", NULL);
	for (i = 0; i < o.pages; i++)
		order[0][i] = order[1][i] = (uint32_t)i;
	for (i = o.pages - 1; i > 0; i--) { /* Fisher-Yates */
		size_t j;
		uint32_t t;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		j = (size_t)(x % (i + 1));
		t = order[1][i], order[1][i] = order[1][j], order[1][j] = t;
	}
	run_pass(&o, mem, expect, order[0], true, gen++, &bad); /* fill */

	for (rep = 0; rep < o.reps; rep++) {
		for (pat = 0; pat < 2; pat++) {
			for (op = 0; op < 2; op++) {
				long f0;

				page_out(&o, u, mem, len);
				f0 = faults_now();
				ns[pat][op][rep] = run_pass(&o, mem, expect, order[pat], op == 1,
							    gen++, &bad);
				flt[pat][op][rep] = faults_now() - f0;
				printf("{\"tool\": \"pf_bench\", \"mode\": \"%s\", \"pattern\": \"%s\", "
				       "\"op\": \"%s\", \"rep\": %u, \"threads\": %u, \"pages\": %zu, "
				       "\"folio_bytes\": %zu, \"ns_per_page\": %.1f, \"faults\": %ld}\n",
				       o.kernel ? "kernel" : "uswap", patterns[pat], ops[op], rep,
				       o.threads, o.pages, o.kernel ? PAGE : o.folio,
				       ns[pat][op][rep], flt[pat][op][rep]);
			}
		}
	}
	run_pass(&o, mem, expect, order[0], false, 0, &bad); /* the last writes */
	if (bad) {
		fprintf(stderr, "pf_bench: %zu pages read a wrong value\n", bad);
		return 1;
	}
	fprintf(stderr, "# %s, %u thread(s), %zu pages, %s: ns per page, median (min-max) of %u\n",
		o.kernel ? "kernel (MADV_PAGEOUT, swap)" : "uswap (USWAP_ADV_PAGEOUT)", o.threads,
		o.pages, o.kernel ? "4 KiB pages" : (o.folio == PAGE ? "4 KiB folios" : "64 KiB folios"),
		o.reps);
	for (pat = 0; pat < 2; pat++) {
		for (op = 0; op < 2; op++) {
			double med, lo, hi;

			stats3(ns[pat][op], (int)o.reps, &med, &lo, &hi);
			fprintf(stderr, "# %-7s %-5s %8.1f (%.1f-%.1f) ns/page, %ld faults\n",
				patterns[pat], ops[op], med, lo, hi, flt[pat][op][0]);
		}
	}
	if (u) {
		uswap_unmap(u, mem, len);
		uswap_close(u);
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * uswap demo: the embedded default at work.
 *
 * Fills SIZE bytes of managed memory with realistic pages (text, integer
 * arrays, records, zero and incompressible pages) under a budget, reads
 * them back in sequential and random order, rewrites some, and verifies
 * every byte: each page's hash is kept (outside managed memory) when it is
 * written and compared whenever it is read.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pagegen.h"
#include "tool.h"

#define PAGE 4096ul

struct demo {
	uswap_t *u;
	char *mem;
	size_t pages;
	uint64_t seed;
	uint64_t *hash;     /* expected hash of each page */
	uint8_t *version;   /* times each page was rewritten */
	uint64_t bad;       /* pages that read wrong */
	int progress;       /* draw a progress bar */
};

struct phase {
	const char *name;
	double seconds;
	uint64_t pages;
	uint64_t faults;
	uint64_t folios_in, pages_alone, fallback;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t stat_of(struct demo *d, const char *name)
{
	uint64_t v = 0;

	uswap_stat(d->u, name, &v);
	return v;
}

static void progress(struct demo *d, const char *name, uint64_t done, uint64_t total)
{
	static int last = -1;
	int pct = (int)(done * 100 / (total ? total : 1)), i;

	if (!d->progress || pct == last)
		return;
	last = pct;
	fprintf(stderr, "\r  %-13s [", name);
	for (i = 0; i < 40; i++)
		fputc(i < pct * 40 / 100 ? '#' : '.', stderr);
	fprintf(stderr, "] %3d%%  resident %4llu MiB", pct,
		(unsigned long long)(stat_of(d, "resident_bytes") >> 20));
	if (done == total) {
		fputc('\n', stderr);
		last = -1;
	}
}

static void page_write(struct demo *d, size_t i)
{
	char *p = d->mem + i * PAGE;

	pagegen_fill(p, d->seed, i, d->version[i]);
	d->hash[i] = pagegen_hash(p);
}

static void page_check(struct demo *d, size_t i)
{
	if (pagegen_hash(d->mem + i * PAGE) != d->hash[i]) {
		if (d->bad++ < 10)
			fprintf(stderr, "\nuswap demo: page %zu (%s) reads wrong\n", i,
				page_mix_names[pagegen_kind(d->seed, i)]);
	}
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

enum phase_kind { PH_FILL, PH_SEQ_READ, PH_RAND_READ, PH_RAND_WRITE, PH_VERIFY };

static void run_phase(struct demo *d, enum phase_kind k, const char *name, struct phase *ph)
{
	uint64_t n = (k == PH_RAND_READ || k == PH_RAND_WRITE) ? d->pages / 4 : d->pages;
	uint64_t faults0 = stat_of(d, "faults"), in0 = stat_of(d, "swapin_folios");
	uint64_t fb0 = stat_of(d, "swapin_fallback"), r = d->seed * 2 + 1 + k, j;
	uint64_t alone0 = stat_of(d, "swapin_partial");
	double t0 = now_s();

	for (j = 0; j < n; j++) {
		size_t i = (k == PH_RAND_READ || k == PH_RAND_WRITE) ? rnd(&r) % d->pages : j;

		switch (k) {
		case PH_FILL:
			page_write(d, i);
			break;
		case PH_RAND_WRITE:
			d->version[i]++;
			page_write(d, i);
			break;
		default:
			page_check(d, i);
		}
		if ((j & 1023) == 0 || j + 1 == n)
			progress(d, name, j + 1, n);
	}
	ph->name = name;
	ph->seconds = now_s() - t0;
	ph->pages = n;
	ph->faults = stat_of(d, "faults") - faults0;
	ph->folios_in = stat_of(d, "swapin_folios") - in0;
	ph->pages_alone = stat_of(d, "swapin_partial") - alone0;
	ph->fallback = stat_of(d, "swapin_fallback") - fb0;
}

static long vm_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void report(struct demo *d, const struct phase *ph, int nph, size_t size, double total)
{
	uint64_t stored = stat_of(d, "stored_bytes"), orig = stat_of(d, "orig_bytes");
	int i;

	printf("\n%-14s %9s %10s %10s %10s %11s %9s\n", "phase", "seconds", "us/page", "faults",
	       "folios in", "pages alone", "split");
	for (i = 0; i < nph; i++)
		printf("%-14s %9.2f %10.2f %10llu %10llu %11llu %9llu\n", ph[i].name, ph[i].seconds,
		       ph[i].seconds * 1e6 / (double)(ph[i].pages ? ph[i].pages : 1),
		       (unsigned long long)ph[i].faults, (unsigned long long)ph[i].folios_in,
		       (unsigned long long)ph[i].pages_alone, (unsigned long long)ph[i].fallback);
	printf("(us/page: time per 4 KiB page the phase touched; folios in: folios brought back\n"
	       " whole by one fault; pages alone: pages of partly resident folios brought in,\n"
	       " one per fault while the faults look random (adaptive swap-in), the rest of the\n"
	       " folio at once when they look sequential again; split: folios whose stored pages\n"
	       " lay in several runs, after random access, brought back run by run)\n\n");
	printf("managed memory      %10.1f MiB\n", (double)size / 1048576);
	printf("budget              %10.1f MiB\n", (double)stat_of(d, "limit_bytes") / 1048576);
	printf("resident            %10.1f MiB   (process VmRSS %.1f MiB: resident + store pool "
	       "+ uswap)\n",
	       (double)stat_of(d, "resident_bytes") / 1048576, (double)vm_rss_kib() / 1024);
	printf("stored (compressed) %10.1f MiB   holding %.1f MiB of pages: ratio %.2fx\n",
	       (double)stored / 1048576, (double)orig / 1048576,
	       stored ? (double)orig / (double)stored : 0.0);
	printf("store pool          %10.1f MiB\n", (double)stat_of(d, "pool_bytes") / 1048576);
	printf("zero pages          %10llu out, %llu in (never compressed nor stored)\n",
	       (unsigned long long)stat_of(d, "zero_pages_out"),
	       (unsigned long long)stat_of(d, "zero_pages_in"));
	printf("same-filled pages   %10llu\n", (unsigned long long)stat_of(d, "same_filled_pages"));
	printf("faults              %10llu   (%.1f us average)\n",
	       (unsigned long long)stat_of(d, "faults"),
	       stat_of(d, "faults") ? (double)stat_of(d, "fault_ns_total") / 1000.0 /
					       (double)stat_of(d, "faults")
				    : 0.0);
	printf("folios swapped out  %10llu whole, %llu page by page\n",
	       (unsigned long long)stat_of(d, "swapout_folios"),
	       (unsigned long long)stat_of(d, "swapout_fallback"));
	printf("folios swapped in   %10llu whole, %llu page by page\n",
	       (unsigned long long)stat_of(d, "swapin_folios"),
	       (unsigned long long)stat_of(d, "swapin_fallback"));
	printf("reclaim             %10llu background, %llu direct\n",
	       (unsigned long long)stat_of(d, "reclaim_background"),
	       (unsigned long long)stat_of(d, "reclaim_direct"));
	printf("total time          %10.2f s\n", total);
	printf("\nverified %zu pages (%.1f MiB): %llu wrong\n", d->pages,
	       (double)d->pages * PAGE / 1048576, (unsigned long long)d->bad);
}

static void demo_help(void)
{
	printf("usage: uswap demo [--size SIZE] [--seed N] [--no-progress] [OPTIONS]\n"
	       "\n"
	       "Fill SIZE (default 1G) of managed memory under a budget (default 256M), read and\n"
	       "write it back in sequential and random order, verify every byte, and print a\n"
	       "table of what uswap did.  Exit status 0 when every byte was right.\n"
	       "\n"
	       "  --size SIZE         managed memory to fill (default 1G)\n"
	       "  --seed N            seed of the page contents (default 1)\n"
	       "  --no-progress       no progress bar\n");
	tool_config_help();
}

int cmd_demo(int argc, char **argv)
{
	struct uswap_config cfg = { .limit = 256ul << 20 };
	struct demo d = { .seed = 1, .progress = isatty(2) };
	struct phase ph[5];
	size_t size = 1ul << 30;
	double t0;
	int i, rc;

	for (i = 1; i < argc; i++) {
		int o = tool_config_option(argc, argv, &i, &cfg);

		if (o < 0)
			return 2;
		if (o)
			continue;
		if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			if (uswap_parse_size("--size", argv[++i], &size)) {
				fprintf(stderr, "uswap demo: %s\n", uswap_last_error());
				return 2;
			}
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			const char *v = argv[++i];
			char *end;

			errno = 0;
			d.seed = strtoull(v, &end, 10);
			if (!isdigit((unsigned char)*v) || *end || errno) {
				fprintf(stderr, "uswap demo: --seed \"%s\" is not allowed: give a whole "
						"number from 0 to 18446744073709551615\n", v);
				return 2;
			}
		} else if (!strcmp(argv[i], "--no-progress")) {
			d.progress = 0;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			demo_help();
			return 0;
		} else {
			fprintf(stderr, "uswap demo: unknown option \"%s\" (see uswap demo --help)\n",
				argv[i]);
			return 2;
		}
	}
	if (size < PAGE) {
		fprintf(stderr, "uswap demo: --size %zu is too small: at least 4K\n", size);
		return 2;
	}
	rc = uswap_open(&cfg, &d.u);
	if (rc) {
		fprintf(stderr, "uswap demo: %s\n", *uswap_last_error() ? uswap_last_error()
									 : uswap_strerror(rc));
		return rc == -EINVAL ? 2 : 1; /* a bad value, as the options above */
	}
	d.pages = size / PAGE;
	d.hash = calloc(d.pages, sizeof(*d.hash));
	d.version = calloc(d.pages, 1);
	rc = d.hash && d.version ? uswap_map(d.u, size, 0, (void **)&d.mem) : -ENOMEM;
	if (rc) {
		fprintf(stderr, "uswap demo: cannot map %zu bytes: %s\n", size,
			*uswap_last_error() ? uswap_last_error() : uswap_strerror(rc));
		uswap_close(d.u);
		return 1;
	}
	printf("uswap demo: %.0f MiB of realistic pages under a %.0f MiB budget (codec %s, "
	       "folio %zu KiB)\n",
	       (double)size / 1048576, (double)cfg.limit / 1048576, cfg.codec ? cfg.codec : "lz4",
	       (cfg.folio_size ? cfg.folio_size : 65536) / 1024);
	t0 = now_s();
	run_phase(&d, PH_FILL, "fill", &ph[0]);
	run_phase(&d, PH_SEQ_READ, "seq read", &ph[1]);
	run_phase(&d, PH_RAND_READ, "random read", &ph[2]);
	run_phase(&d, PH_RAND_WRITE, "random write", &ph[3]);
	run_phase(&d, PH_VERIFY, "verify all", &ph[4]);
	report(&d, ph, 5, size, now_s() - t0);
	uswap_unmap(d.u, d.mem, size);
	uswap_close(d.u);
	free(d.hash);
	free(d.version);
	return d.bad ? 1 : 0;
}

// SPDX-License-Identifier: MIT
/*
 * page_decode: what a single-page swap-in pays to decode its page, before
 * and after the prefix decode (codec/folio_blob.h folio_decode_page).
 *
 *   page_decode [CODEC|all (default all)] [FOLIOS (default 256)] [REPS (default 11)]
 *
 * Folios of 16 pages of the benchmark's page mix (tools/common/pagegen.c)
 * are encoded as the store keeps them; then every page a swap-in would
 * decode (those with a slot: every page that is not zero, which the zero
 * map holds) is decoded alone, two ways:
 *   whole   folio_decode of its blob, then a copy of the page (what
 *           page_decode in runtime/swapin_partial.c did);
 *   page    folio_decode_page, then a copy of the page (what it does now).
 * Times are CPU time of this thread (CLOCK_THREAD_CPUTIME_ID), not wall
 * time: the machine is shared.  Each repetition decodes every page once;
 * the figures are the median (min-max) over repetitions of the mean per
 * page, by kind of page in the blob (same-filled, compressed data, raw
 * data) and for all.  The blobs stay in the CPU caches (a few MiB): a real
 * fault reads its blob from a cold store, which adds the same to both.
 * Also: the checksum alone, per blob and per page, since every decode
 * verifies it over the whole blob first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "codec/folio_blob.h"
#include "pagegen.h"

#define NPAGES 16
#define PAGE FOLIO_PAGE_SIZE
#define MAX_REPS 101

enum kind { K_SAME, K_DATA, K_RAW, K_ALL, K_N };
static const char *const kind_name[K_N] = {"same-filled", "data (compressed)", "data (raw blob)",
					   "all pages with a slot"};

struct blob {
	uint8_t *bytes;
	size_t len;
	uint8_t kind[NPAGES]; /* enum kind, or K_N for a zero page (no slot) */
};

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int is_zero(const uint8_t *p)
{
	return p[0] == 0 && memcmp(p, p + 1, PAGE - 1) == 0;
}

static int is_same(const uint8_t *p)
{
	for (size_t i = 8; i < PAGE; i++)
		if (p[i] != p[i % 8])
			return 0;
	return 1;
}

/* Encode nfolios folios of the page mix; @return how many have a blob. */
static size_t make_blobs(const struct codec_ops *codec, size_t nfolios, struct blob *out)
{
	uint8_t *src = malloc(NPAGES * PAGE), *scratch = malloc(NPAGES * PAGE);
	uint8_t *tmp = malloc(folio_blob_bound(NPAGES));
	struct folio_encode_result res;
	size_t n = 0;

	if (!src || !scratch || !tmp)
		exit(1);
	for (size_t f = 0; f < nfolios; f++) {
		for (unsigned i = 0; i < NPAGES; i++)
			pagegen_fill(src + i * PAGE, 42, f * NPAGES + i, 0);
		if (folio_encode(codec, src, NPAGES, tmp, scratch, &res)) {
			fprintf(stderr, "page_decode: folio_encode failed\n");
			exit(1);
		}
		if (res.blob_len == 0)
			continue;
		out[n].len = res.blob_len;
		out[n].bytes = malloc(res.blob_len);
		if (!out[n].bytes)
			exit(1);
		memcpy(out[n].bytes, tmp, res.blob_len);
		for (unsigned i = 0; i < NPAGES; i++) {
			const uint8_t *p = src + i * PAGE;

			out[n].kind[i] = is_zero(p)   ? K_N
					 : is_same(p) ? K_SAME
					 : res.raw    ? K_RAW
						      : K_DATA;
		}
		n++;
	}
	free(src);
	free(scratch);
	free(tmp);
	return n;
}

/* Decode every page of kind `kind` (K_ALL: every page with a slot) once,
 * alone.  @return the mean CPU time per page in microseconds (timed over
 * the whole pass: a CPU clock read costs a system call), or -1 when a
 * decode failed. */
static double pass(const struct blob *b, size_t n, int page_mode, enum kind kind, uint8_t *run,
		   uint8_t *dst)
{
	size_t pages = 0;
	double t0 = cpu_now();
	int rc;

	for (size_t f = 0; f < n; f++) {
		for (unsigned k = 0; k < NPAGES; k++) {
			if (b[f].kind[k] == K_N || (kind != K_ALL && b[f].kind[k] != kind))
				continue;
			rc = page_mode ? folio_decode_page(b[f].bytes, b[f].len, run, NPAGES, k)
				       : folio_decode(b[f].bytes, b[f].len, run, NPAGES, NULL);
			if (rc < 0)
				return -1;
			memcpy(dst, run + (size_t)k * PAGE, PAGE);
			pages++;
		}
	}
	return pages ? (cpu_now() - t0) / (double)pages * 1e6 : 0;
}

static void run_codec(const struct codec_ops *codec, size_t nfolios, int reps)
{
	static double per[2][K_N][MAX_REPS];
	struct blob *b = calloc(nfolios, sizeof(*b));
	uint8_t *run = malloc(NPAGES * PAGE), *dst = malloc(PAGE);
	size_t n, blob_bytes = 0, slot_pages = 0;
	double csum_s, t0;
	volatile uint32_t sink = 0;

	if (!b || !run || !dst)
		exit(1);
	n = make_blobs(codec, nfolios, b);
	for (int r = 0; r < reps; r++) {
		for (int k = 0; k < K_N; k++) {
			for (int mode = 0; mode < 2; mode++) {
				per[mode][k][r] = pass(b, n, mode, (enum kind)k, run, dst);
				if (per[mode][k][r] < 0) {
					fprintf(stderr, "page_decode: a decode failed\n");
					exit(1);
				}
			}
		}
	}
	for (size_t f = 0; f < n; f++)
		for (unsigned i = 0; i < NPAGES; i++)
			slot_pages += b[f].kind[i] != K_N;
	/* the checksum alone: best of reps passes over every blob */
	csum_s = 1e9;
	for (int r = 0; r < reps; r++) {
		t0 = cpu_now();
		for (size_t f = 0; f < n; f++)
			sink ^= folio_blob_csum(b[f].bytes + 4, b[f].len - 4);
		t0 = cpu_now() - t0;
		csum_s = t0 < csum_s ? t0 : csum_s;
	}
	for (size_t f = 0; f < n; f++)
		blob_bytes += b[f].len;

	printf("%s: %zu folios of %u pages (%zu with a blob, %.1f KiB a blob on average), "
	       "%zu pages with a slot; CPU time per page, median (min-max) of %d passes\n",
	       codec->name, nfolios, NPAGES, n, n ? (double)blob_bytes / (double)n / 1024 : 0,
	       slot_pages, reps);
	printf("  %-22s %8s %22s %22s %7s\n", "page in the blob", "pages", "whole decode us",
	       "page decode us", "ratio");
	for (int k = 0; k < K_N; k++) {
		double med[2], lo[2], hi[2];
		size_t cnt = 0;

		for (size_t f = 0; f < n; f++)
			for (unsigned i = 0; i < NPAGES; i++)
				cnt += k == K_ALL ? b[f].kind[i] != K_N : b[f].kind[i] == k;
		if (!cnt)
			continue;
		for (int mode = 0; mode < 2; mode++)
			stats3(per[mode][k], reps, &med[mode], &lo[mode], &hi[mode]);
		printf("  %-22s %8zu %7.2f (%5.2f-%6.2f) %7.2f (%5.2f-%6.2f) %6.2fx\n",
		       kind_name[k], cnt, med[0], lo[0], hi[0], med[1], lo[1], hi[1],
		       med[1] / med[0]);
	}
	/* every decode, whole or page, verifies its blob's checksum once */
	printf("  checksum alone: %.2f us per blob (%.1f GB/s)\n\n",
	       n ? csum_s / (double)n * 1e6 : 0,
	       csum_s > 0 ? (double)blob_bytes / csum_s / 1e9 : 0);
	(void)sink;
	for (size_t f = 0; f < n; f++)
		free(b[f].bytes);
	free(b);
	free(run);
	free(dst);
}

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "all";
	long nfolios = argc > 2 ? strtol(argv[2], NULL, 10) : 256;
	long reps = argc > 3 ? strtol(argv[3], NULL, 10) : 11;
	const struct codec_ops *codec = codec_find(which);

	if ((!codec && strcmp(which, "all")) || nfolios < 1 || nfolios > 65536 || reps < 1 ||
	    reps > MAX_REPS) {
		fprintf(stderr,
			"usage: page_decode [CODEC|all] [FOLIOS] [REPS]\n"
			"  CODEC: %s, or all (got \"%s\"); FOLIOS: 1 to 65536 (got %ld); "
			"REPS: 1 to %d (got %ld)\n",
			codec_names(), which, nfolios, MAX_REPS, reps);
		return 2;
	}
	if (codec) {
		run_codec(codec, (size_t)nfolios, (int)reps);
		return 0;
	}
	run_codec(&codec_lz4, (size_t)nfolios, (int)reps);
	run_codec(&codec_zstd, (size_t)nfolios, (int)reps);
	run_codec(&codec_none, (size_t)nfolios, (int)reps);
	return 0;
}

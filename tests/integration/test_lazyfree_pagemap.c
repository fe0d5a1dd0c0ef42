/* SPDX-License-Identifier: MIT */
/*
 * Lazy free (USWAP_ADV_FREE) and the pagemap query, on the real kernel.
 *
 * Expectations are independent of uswap: page contents are regenerated from
 * (page, version) with the page generator, whose page kinds also say which
 * pages are zero; the expected pagemap word of every page is written out
 * for each step of the scenarios from what the step did.
 *
 * uswap-test-labels: threads
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "pagegen.h"
#include "uswap.h"

/* fork holds every lock of the slot map and the store; children start threads */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0:die_after_fork=0")

#define PAGE 4096ul
#define FPAGES 16u /* pages per folio (64 KiB) */
#define ORDER 4u
#define MiB (1ul << 20)
#define SEED 13

static void fill_page(char *p, size_t i, uint64_t v)
{
	pagegen_fill(p, SEED, i, v);
}

static bool page_is_zero_kind(size_t i)
{
	return pagegen_kind(SEED, i) == MIX_ZERO;
}

static bool page_equals(const char *p, size_t i, uint64_t v)
{
	char want[PAGE];

	fill_page(want, i, v);
	return memcmp(p, want, PAGE) == 0;
}

static bool page_all_zero(const char *p)
{
	for (size_t j = 0; j < PAGE; j++)
		if (p[j])
			return false;
	return true;
}

static uswap_t *open_unlimited(void)
{
	struct uswap_config cfg = { .folio_size = FPAGES * PAGE };

	return itest_open(&cfg);
}

static char *map_filled(uswap_t *u, size_t pages)
{
	char *mem;

	assert_int_equal(uswap_map(u, pages * PAGE, 0, (void **)&mem), 0);
	for (size_t i = 0; i < pages; i++)
		fill_page(mem + i * PAGE, i, 0);
	return mem;
}

/* The pagemap of [first, first+n) must be want[i] for every page. */
static void assert_pagemap(uswap_t *u, char *mem, size_t first, size_t n, const uint64_t *want,
			   const char *step)
{
	uint64_t *got = calloc(n, sizeof(*got));

	assert_int_equal(uswap_pagemap(u, mem + first * PAGE, n, got), 0);
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i])
			fail_msg("%s: page %zu: pagemap 0x%llx, expected 0x%llx", step, first + i,
				 (unsigned long long)got[i], (unsigned long long)want[i]);
	free(got);
}

/* Expected word of a page evicted in a whole folio: stored, or zero. */
static uint64_t word_out(size_t i, unsigned order)
{
	return (page_is_zero_kind(i) ? USWAP_PM_ZERO : USWAP_PM_SWAPPED) | (uint64_t)order << 8;
}

/* ---- lazy free ---- */

static void test_lazyfree_whole_folios_no_split(void **state)
{
	size_t pages = 64 * FPAGES, lazy = 4 * FPAGES, i;
	uswap_t *u = open_unlimited();
	char *mem = map_filled(u, pages);
	uint64_t *want = calloc(pages, sizeof(*want)), out0;

	(void)state;
	assert_int_equal(uswap_advise(u, mem, lazy * PAGE, USWAP_ADV_FREE), 0);
	assert_int_equal(itest_stat(u, "lazyfree_pages"), lazy);
	assert_int_equal(itest_stat(u, "lazyfree_split"), 0);
	for (i = 0; i < pages; i++)
		want[i] = USWAP_PM_PRESENT | (i < lazy ? USWAP_PM_LAZYFREE : 0) | ORDER << 8;
	assert_pagemap(u, mem, 0, pages, want, "after FREE of 4 whole folios");

	out0 = itest_stat(u, "swapout_pages");
	assert_int_equal(uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(itest_stat(u, "lazyfree_discard"), lazy);
	assert_int_equal(itest_stat(u, "lazyfree_pages"), 0);
	/* nothing of the lazy folios was compressed or stored */
	{
		uint64_t stored_pages = 0;

		for (i = lazy; i < pages; i++)
			stored_pages += !page_is_zero_kind(i);
		assert_int_equal(itest_stat(u, "swapout_pages") - out0, stored_pages);
	}
	for (i = 0; i < pages; i++)
		want[i] = i < lazy ? (USWAP_PM_ZERO | ORDER << 8) : word_out(i, ORDER);
	assert_pagemap(u, mem, 0, pages, want, "after PAGEOUT");
	for (i = 0; i < pages; i++)
		if (i < lazy ? !page_all_zero(mem + i * PAGE) : !page_equals(mem + i * PAGE, i, 0))
			fail_msg("page %zu reads wrong after the discard", i);
	assert_int_equal(uswap_unmap(u, mem, pages * PAGE), 0);
	assert_int_equal(itest_stat(u, "orig_bytes"), 0);
	uswap_close(u);
	free(want);
}

static void test_lazyfree_partial_range_splits_only_covered(void **state)
{
	size_t pages = 8 * FPAGES, a = 5, b = 21, i; /* folio 0 pages 5-15, folio 1 pages 16-20 */
	uswap_t *u = open_unlimited();
	char *mem = map_filled(u, pages);
	uint64_t *want = calloc(pages, sizeof(*want));

	(void)state;
	assert_int_equal(uswap_advise(u, mem + a * PAGE, (b - a) * PAGE - 100, USWAP_ADV_FREE), 0);
	assert_int_equal(itest_stat(u, "lazyfree_split"), 2);
	assert_int_equal(itest_stat(u, "lazyfree_pages"), b - a);
	for (i = 0; i < pages; i++)
		want[i] = USWAP_PM_PRESENT | (i >= a && i < b ? USWAP_PM_LAZYFREE : 0) |
			  (uint64_t)(i < 2 * FPAGES ? 0 : ORDER) << 8;
	assert_pagemap(u, mem, 0, pages, want, "after a FREE over two folio edges");
	assert_int_equal(uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(itest_stat(u, "lazyfree_discard"), b - a);
	for (i = 0; i < pages; i++) {
		bool lazy = i >= a && i < b;

		if (lazy ? !page_all_zero(mem + i * PAGE) : !page_equals(mem + i * PAGE, i, 0))
			fail_msg("page %zu reads wrong (%s)", i, lazy ? "discarded" : "kept");
	}
	assert_int_equal(uswap_advise(u, mem + 1, PAGE, USWAP_ADV_FREE), -EINVAL);
	assert_int_equal(uswap_unmap(u, mem, pages * PAGE), 0);
	uswap_close(u);
	free(want);
}

static void test_lazyfree_write_after_advice_survives(void **state)
{
	size_t pages = 8 * FPAGES, i;
	uswap_t *u = open_unlimited();
	char *mem = map_filled(u, pages);
	uint64_t *ver = calloc(pages, sizeof(*ver));

	(void)state;
	assert_int_equal(uswap_advise(u, mem, pages * PAGE, USWAP_ADV_FREE), 0);
	/* one write in folio 0 and one in folio 2: both folios are data again */
	fill_page(mem + 3 * PAGE, 3, ver[3] = 1);
	mem[2 * FPAGES * PAGE + 5 * PAGE + 17] = 'x';
	assert_int_equal(itest_stat(u, "lazyfree_cancel"), 2 * FPAGES);
	assert_int_equal(itest_stat(u, "lazyfree_pages"), pages - 2 * FPAGES);
	assert_int_equal(uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT), 0);
	for (i = 0; i < pages; i++) {
		size_t f = i / FPAGES;
		char *p = mem + i * PAGE;

		if (i == 2 * FPAGES + 5) {
			char want[PAGE];

			fill_page(want, i, 0);
			want[17] = 'x';
			assert_int_equal(memcmp(p, want, PAGE), 0);
		} else if (f == 0 || f == 2) {
			if (!page_equals(p, i, ver[i]))
				fail_msg("page %zu of a written folio lost its data", i);
		} else if (!page_all_zero(p)) {
			fail_msg("page %zu was lazily freed and not written: must be discarded", i);
		}
	}
	assert_int_equal(uswap_unmap(u, mem, pages * PAGE), 0);
	uswap_close(u);
	free(ver);
}

/* Threads each own some folios: in odd rounds free a folio and write one
 * page of it at once, and check it; in even rounds free it and leave it,
 * then check the page reads as its last write or as zeros.  Meanwhile the
 * main thread pages the whole region out.  A write that follows the
 * advice must never be discarded. */
struct racer {
	uswap_t *u;
	char *mem;
	size_t first_folio, nfolios;
	unsigned rounds;
	int bad;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	uint64_t last[64] = { 0 };

	for (unsigned k = 1; k <= r->rounds && !r->bad; k++) {
		for (size_t f = r->first_folio; f < r->first_folio + r->nfolios; f++) {
			char *folio = r->mem + f * FPAGES * PAGE;
			size_t pg = 5, idx = f * FPAGES + pg;
			char *p = folio + pg * PAGE;

			if (uswap_advise(r->u, folio, FPAGES * PAGE, USWAP_ADV_FREE)) {
				r->bad = 1;
				break;
			}
			if (k % 2) {
				fill_page(p, idx, last[f - r->first_folio] = k);
				sched_yield();
				if (!page_equals(p, idx, k)) {
					fprintf(stderr, "racer: folio %zu round %u lost its write\n", f, k);
					r->bad = 1;
				}
			} else {
				sched_yield();
				if (!page_equals(p, idx, last[f - r->first_folio]) && !page_all_zero(p)) {
					fprintf(stderr, "racer: folio %zu round %u: neither the last "
							"write nor zeros\n", f, k);
					r->bad = 1;
				}
			}
		}
	}
	return NULL;
}

static void test_lazyfree_writes_race_reclaim(void **state)
{
	size_t nf = 32, pages = nf * FPAGES;
	uswap_t *u = open_unlimited();
	char *mem = map_filled(u, pages);
	struct racer rc[2];
	pthread_t th[2];
	bool joined[2] = { false, false };
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		rc[i] = (struct racer){ u, mem, (size_t)i * nf / 2, nf / 2, 300, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, racer_main, &rc[i]), 0);
	}
	while (!joined[0] || !joined[1]) {
		assert_int_equal(uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT), 0);
		for (i = 0; i < 2; i++)
			if (!joined[i])
				joined[i] = pthread_tryjoin_np(th[i], NULL) == 0;
	}
	for (i = 0; i < 2; i++)
		assert_int_equal(rc[i].bad, 0);
	assert_true(itest_stat(u, "lazyfree_cancel") > 0);
	assert_true(itest_stat(u, "lazyfree_discard") > 0);
	assert_int_equal(uswap_unmap(u, mem, pages * PAGE), 0);
	uswap_close(u);
}

static void test_lazyfree_frees_swapped_pages_at_once(void **state)
{
	size_t pages = 8 * FPAGES, i;
	uswap_t *u = open_unlimited();
	char *mem = map_filled(u, pages);
	uint64_t *want = calloc(pages, sizeof(*want)), orig0;

	(void)state;
	assert_int_equal(uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT), 0);
	orig0 = itest_stat(u, "orig_bytes");
	/* folio 0 whole, and pages 70-75 of folio 4 */
	assert_int_equal(uswap_advise(u, mem, FPAGES * PAGE, USWAP_ADV_FREE), 0);
	assert_int_equal(uswap_advise(u, mem + 70 * PAGE, 6 * PAGE, USWAP_ADV_FREE), 0);
	{
		uint64_t freed = 0;

		for (i = 0; i < pages; i++)
			if ((i < FPAGES || (i >= 70 && i < 76)) && !page_is_zero_kind(i))
				freed++;
		assert_int_equal(orig0 - itest_stat(u, "orig_bytes"), freed * PAGE);
	}
	for (i = 0; i < pages; i++)
		want[i] = i < FPAGES || (i >= 70 && i < 76) ? 0
			  : i / FPAGES == 4		     ? word_out(i, 0)
							     : word_out(i, ORDER);
	assert_pagemap(u, mem, 0, pages, want, "after FREE of swapped-out pages");
	for (i = 0; i < pages; i++) {
		bool freed = i < FPAGES || (i >= 70 && i < 76);

		if (freed ? !page_all_zero(mem + i * PAGE) : !page_equals(mem + i * PAGE, i, 0))
			fail_msg("page %zu reads wrong", i);
	}
	assert_int_equal(uswap_unmap(u, mem, pages * PAGE), 0);
	uswap_close(u);
	free(want);
}

/* The program's own madvise(MADV_FREE) arrives as a remove event after the
 * kernel let it go on: the pages stay data (never discarded behind a write
 * that may already have happened), stored copies are freed. */
static void test_program_madv_free_no_stale_copy(void **state)
{
	size_t pages = 8 * FPAGES, i;
	uswap_t *u = open_unlimited();
	char *mem = map_filled(u, pages);

	(void)state;
	/* out and back: swap-cached, every page holds a stored copy */
	assert_int_equal(uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT), 0);
	for (i = 0; i < pages; i++)
		assert_true(page_equals(mem + i * PAGE, i, 0));
	assert_true(itest_stat(u, "swapcache_pages") > 0);
	assert_int_equal(madvise(mem, pages * PAGE, MADV_FREE), 0);
	fill_page(mem + 9 * PAGE, 9, 5); /* a write right after the advice */
	for (int t = 0; t < 1000 && !itest_stat(u, "remove_events"); t++)
		usleep(1000);
	assert_true(itest_stat(u, "remove_events") >= 1);
	for (int t = 0; t < 1000 && itest_stat(u, "swapcache_pages"); t++)
		usleep(1000);
	assert_int_equal(itest_stat(u, "swapcache_pages"), 0);
	assert_int_equal(itest_stat(u, "orig_bytes"), 0);
	assert_int_equal(uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT), 0);
	for (i = 0; i < pages; i++) {
		char *p = mem + i * PAGE;

		if (i == 9 ? !page_equals(p, i, 5) : !page_equals(p, i, 0) && !page_all_zero(p))
			fail_msg("page %zu: neither its data nor zeros after MADV_FREE", i);
	}
	assert_int_equal(uswap_unmap(u, mem, pages * PAGE), 0);
	uswap_close(u);
}

/* ---- pagemap through a scripted scenario ---- */

static void test_pagemap_scenario(void **state)
{
	size_t pages = 8 * FPAGES, i;
	uswap_t *u = open_unlimited();
	uint64_t *want = calloc(pages, sizeof(*want)), w;
	char *mem;
	pid_t pid;
	int st;

	(void)state;
	assert_int_equal(uswap_map(u, pages * PAGE, 0, (void **)&mem), 0);
	assert_pagemap(u, mem, 0, pages, want, "fresh region"); /* all 0 */

	/* fault: folio 0 written, folio 1 read (zero pages) */
	for (i = 0; i < FPAGES; i++)
		fill_page(mem + i * PAGE, i, 0);
	assert_true(page_all_zero(mem + FPAGES * PAGE));
	for (i = 0; i < 2 * FPAGES; i++)
		want[i] = USWAP_PM_PRESENT | ORDER << 8;
	assert_pagemap(u, mem, 0, pages, want, "after faults");

	/* pageout folios 0-1 */
	assert_int_equal(uswap_advise(u, mem, 2 * FPAGES * PAGE, USWAP_ADV_PAGEOUT), 0);
	for (i = 0; i < 2 * FPAGES; i++)
		want[i] = i < FPAGES ? word_out(i, ORDER) : USWAP_PM_ZERO | ORDER << 8;
	assert_pagemap(u, mem, 0, pages, want, "after pageout");

	/* read folio 0 back: swap-cached */
	for (i = 0; i < FPAGES; i++)
		assert_true(page_equals(mem + i * PAGE, i, 0));
	for (i = 0; i < FPAGES; i++)
		want[i] = word_out(i, ORDER) | USWAP_PM_PRESENT | USWAP_PM_SWAPCACHE;
	assert_pagemap(u, mem, 0, pages, want, "after swap-in");

	/* write: the folio's stored copy goes */
	fill_page(mem + 3 * PAGE, 3, 1);
	for (i = 0; i < FPAGES; i++)
		want[i] = USWAP_PM_PRESENT | ORDER << 8;
	assert_pagemap(u, mem, 0, pages, want, "after a write");

	/* lazy free of half of folio 0 */
	assert_int_equal(uswap_advise(u, mem, 8 * PAGE, USWAP_ADV_FREE), 0);
	for (i = 0; i < FPAGES; i++)
		want[i] = USWAP_PM_PRESENT | (i < 8 ? USWAP_PM_LAZYFREE : 0);
	assert_pagemap(u, mem, 0, pages, want, "after a lazy free of half a folio");

	/* fork: folio 2 written and paged out first; its slots become shared */
	for (i = 2 * FPAGES; i < 3 * FPAGES; i++)
		fill_page(mem + i * PAGE, i, 0);
	assert_int_equal(uswap_advise(u, mem + 2 * FPAGES * PAGE, FPAGES * PAGE,
				      USWAP_ADV_PAGEOUT),
			 0);
	for (i = 2 * FPAGES; i < 3 * FPAGES; i++)
		want[i] = word_out(i, ORDER);
	assert_pagemap(u, mem, 0, pages, want, "before fork");
	pid = fork();
	assert_true(pid >= 0);
	for (i = 2 * FPAGES; i < 3 * FPAGES; i++)
		want[i] |= want[i] & USWAP_PM_SWAPPED ? USWAP_PM_SHARED : 0;
	if (pid == 0) {
		uint64_t got[8 * FPAGES];

		if (uswap_pagemap(u, mem, pages, got))
			_exit(2);
		for (i = 0; i < pages; i++)
			if (got[i] != want[i]) {
				fprintf(stderr, "child: page %zu: 0x%llx, expected 0x%llx\n", i,
					(unsigned long long)got[i], (unsigned long long)want[i]);
				_exit(3);
			}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_pagemap(u, mem, 0, pages, want, "parent after fork");

	/* unmap: the query refuses what is not a region */
	assert_int_equal(uswap_pagemap(u, mem + 1, 1, &w), -EINVAL);
	assert_int_equal(uswap_pagemap(u, mem, pages + 1, want), -EINVAL);
	assert_int_equal(uswap_unmap(u, mem, pages * PAGE), 0);
	assert_int_equal(uswap_pagemap(u, mem, 1, &w), -EINVAL);
	uswap_close(u);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lazyfree_whole_folios_no_split),
		cmocka_unit_test(test_lazyfree_partial_range_splits_only_covered),
		cmocka_unit_test(test_lazyfree_write_after_advice_survives),
		cmocka_unit_test(test_lazyfree_writes_race_reclaim),
		cmocka_unit_test(test_lazyfree_frees_swapped_pages_at_once),
		cmocka_unit_test(test_program_madv_free_no_stale_copy),
		cmocka_unit_test(test_pagemap_scenario),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Readahead on the real kernel: a paged-out region read in order is swapped
 * in ahead of its faults, random access is not, and the bytes are always
 * the ones written (each page's content is a pure function of its seed,
 * index and version: the page generator is the expectation).
 *
 * uswap-test-labels: threads
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "testlib.h"
#include "pagegen.h"
#include "uswap.h"

#define PAGE 4096ul
#define FOLIO_PAGES 16ul
#define FOLIOS 256ul /* 16 MiB: a readahead window is 16 folios */
#define PAGES (FOLIOS * FOLIO_PAGES)

TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

static uswap_t *open_paged_out(size_t limit, char **mem, uint64_t *ver, uint64_t seed)
{
	struct uswap_config cfg = { .limit = limit, .folio_size = FOLIO_PAGES * PAGE };
	uswap_t *u = itest_open(&cfg);

	assert_int_equal(uswap_map(u, PAGES * PAGE, 0, (void **)mem), 0);
	memset(ver, 0, PAGES * sizeof(*ver));
	itest_fill_pages(*mem, PAGES, seed, ver);
	assert_int_equal(uswap_advise(u, *mem, PAGES * PAGE, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(itest_stat(u, "resident_bytes"), 0);
	return u;
}

/* Read every page in order: most folios come in by readahead, so the
 * program faults on fewer folios than it reads; every byte checked. */
static void test_sequential_read_is_read_ahead(void **state)
{
	uint64_t *ver = calloc(PAGES, sizeof(*ver));
	char *mem;
	uswap_t *u = open_paged_out(0, &mem, ver, 11);
	uint64_t faults0 = itest_stat(u, "faults"), faults, ahead;

	(void)state;
	itest_assert_pages(mem, PAGES, 11, ver);
	faults = itest_stat(u, "faults") - faults0;
	ahead = itest_stat(u, "readahead_folios");
	print_message("sequential: %lu folios, %lu faults, %lu read ahead\n", FOLIOS,
		      (unsigned long)faults, (unsigned long)ahead);
	if (ahead == 0 || faults >= FOLIOS)
		fail_msg("no readahead on a sequential read: %lu faults for %lu folios, %lu read "
			 "ahead", (unsigned long)faults, FOLIOS, (unsigned long)ahead);
	assert_true(faults + ahead >= FOLIOS); /* every folio came in one way or the other */
	uswap_close(u);
	free(ver);
}

/* A program writing its way through paged-out memory: every fault is a
 * write, so its folio, and those read ahead for it, come in writable: no
 * write-protect fault, no swap cache kept for data about to change.  The
 * same pages read first and written after take write-protect faults (the
 * swap cache's), which shows the test can tell. */
static void test_sequential_write_comes_in_writable(void **state)
{
	uint64_t *ver = calloc(PAGES, sizeof(*ver));
	char *mem;
	uswap_t *u = open_paged_out(0, &mem, ver, 12);
	uint64_t wp;
	size_t i;

	(void)state;
	for (i = 0; i < PAGES; i++)
		ver[i]++;
	itest_fill_pages(mem, PAGES, 12, ver);
	assert_int_equal(itest_stat(u, "wp_faults"), 0);
	assert_int_equal(itest_stat(u, "swapcache_pages"), 0);
	itest_assert_pages(mem, PAGES, 12, ver);

	assert_int_equal(uswap_advise(u, mem, PAGES * PAGE, USWAP_ADV_PAGEOUT), 0);
	itest_assert_pages(mem, PAGES, 12, ver);
	assert_true(itest_stat(u, "swapcache_pages") > 0);
	wp = itest_stat(u, "wp_faults");
	for (i = 0; i < PAGES; i++)
		ver[i]++;
	itest_fill_pages(mem, PAGES, 12, ver);
	assert_true(itest_stat(u, "wp_faults") > wp);
	itest_assert_pages(mem, PAGES, 12, ver);
	uswap_close(u);
	free(ver);
}

/* Check folio f's pages against the generator (global page indexes). */
static void assert_folio(const char *mem, size_t f, uint64_t seed, const uint64_t *ver)
{
	static char want[PAGE];

	for (size_t p = f * FOLIO_PAGES; p < (f + 1) * FOLIO_PAGES; p++) {
		pagegen_fill(want, seed, p, ver[p]);
		if (memcmp(mem + p * PAGE, want, PAGE))
			fail_msg("page %zu (folio %zu) does not hold what was written", p, f);
	}
}

/* Folios in a scattered order (a stride coprime with their number, so no
 * two in a row are neighbours): no stream, no readahead. */
static void test_random_read_is_not_read_ahead(void **state)
{
	uint64_t *ver = calloc(PAGES, sizeof(*ver));
	char *mem;
	uswap_t *u = open_paged_out(0, &mem, ver, 12);

	(void)state;
	for (size_t i = 0; i < FOLIOS; i++)
		assert_folio(mem, i * 97 % FOLIOS, 12, ver);
	assert_int_equal(itest_stat(u, "readahead_folios"), 0);
	uswap_close(u);
	free(ver);
}

/* A writer goes through the region in order while readahead brings folios
 * in under it, with a budget smaller than the region, the main thread
 * checking what the writer has finished: nothing is lost. */
struct writer {
	char *mem;
	uint64_t *ver;
	size_t from, to;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	for (size_t p = w->from; p < w->to; p++) {
		w->ver[p]++;
		pagegen_fill(w->mem + p * PAGE, 13, p, w->ver[p]);
	}
	return NULL;
}

static void test_sequential_writer_under_budget(void **state)
{
	uint64_t *ver = calloc(PAGES, sizeof(*ver));
	struct writer w;
	pthread_t t;
	char *mem;
	uswap_t *u = open_paged_out(8ul << 20, &mem, ver, 13);

	(void)state;
	for (int pass = 0; pass < 3; pass++) {
		w = (struct writer){ mem, ver, 0, PAGES };
		assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
		pthread_join(t, NULL);
		itest_assert_pages(mem, PAGES, 13, ver);
	}
	print_message("writer: %lu read ahead, %lu faults\n",
		      (unsigned long)itest_stat(u, "readahead_folios"),
		      (unsigned long)itest_stat(u, "faults"));
	assert_true(itest_stat(u, "readahead_folios") > 0);
	uswap_close(u);
	free(ver);
}

/* What another thread sees of resident_bytes while a reader streams
 * through paged-out memory under a budget. */
/* Pages come in only where they fit: readahead and faults evict first, so
 * resident memory is never seen above the budget, not even for the moment
 * an eviction to make room takes (readahead evicts in batches). */
static void test_budget_never_exceeded(void **state)
{
	const size_t limit = 4ul << 20;
	uint64_t *ver = calloc(PAGES, sizeof(*ver));
	struct itest_watch w;
	char *mem;
	uswap_t *u = open_paged_out(limit, &mem, ver, 17);

	(void)state;
	itest_watch_start(&w, u, "resident_bytes");
	for (int pass = 0; pass < 3; pass++)
		itest_assert_pages(mem, PAGES, 17, ver);
	itest_watch_stop(&w);
	print_message("budget: %lu samples, at most %lu resident bytes of %zu, %lu read ahead\n",
		      (unsigned long)w.samples, (unsigned long)w.max, limit,
		      (unsigned long)itest_stat(u, "readahead_folios"));
	assert_true(itest_stat(u, "readahead_folios") > 0);
	if (w.max > limit)
		fail_msg("resident_bytes seen at %lu, above the budget of %zu", (unsigned long)w.max,
			 limit);
	assert_int_equal(itest_stat(u, "limit_overshoot_bytes"), 0);
	uswap_close(u);
	free(ver);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequential_read_is_read_ahead),
		cmocka_unit_test(test_sequential_write_comes_in_writable),
		cmocka_unit_test(test_random_read_is_not_read_ahead),
		cmocka_unit_test(test_sequential_writer_under_budget),
		cmocka_unit_test(test_budget_never_exceeded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

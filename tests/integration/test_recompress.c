/* SPDX-License-Identifier: MIT */
/*
 * Idle recompression on the real kernel (runtime/recompress.c): folios
 * paged out with the fast codec are stored anew at a strong level by the
 * background thread while it is idle.
 *
 * The expectation is computed here, independently, with liblz4 and libzstd
 * called directly on the same pages: each folio's blob length at the fast
 * level and at the strong level (header, kinds, same-filled words and the
 * data pages compressed as one unit, raw when they do not compress), and
 * the rule of keeping a recompressed object only when it saves
 * RECOMP_MARGIN.  The store's stored_bytes must then be exactly the sum of
 * what each folio should hold, and every byte must read back as written
 * (the page generator is the shadow: each page's bytes are a pure function
 * of seed, index and version).  Then faults and writes racing the
 * recompression, a fork in the middle of it, an order-0 region (runs of
 * one slot), and the option's bad values.
 *
 * uswap-test-labels: threads
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>

#include "testlib.h"
#include "pagegen.h"
#include "uswap.h"

#define PAGE 4096ul
#define MiB (1ul << 20)

TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0:die_after_fork=0")

/* ---- the independent expectation ---- */

/* The blob's fixed part: 12-byte header and 2 bits of kind per page
 * (src/codec/folio_blob.c's layout, as documented there). */
static size_t blob_head(size_t npages, size_t same)
{
	return 12 + (npages + 3) / 4 + 8 * same;
}

/* Compress len bytes with codec "lz4"/"zstd" at level (0: the fast level
 * uswap evicts with: lz4 acceleration 1, zstd 1). */
static size_t compressed_len(const char *codec, int level, const char *src, size_t len)
{
	static char dst[2 * 2 * MiB];
	size_t n;

	if (!strcmp(codec, "lz4")) {
		n = level ? (size_t)LZ4_compress_HC(src, dst, (int)len, (int)sizeof(dst), level)
			  : (size_t)LZ4_compress_default(src, dst, (int)len, (int)sizeof(dst));
		assert_true(n > 0);
		return n;
	}
	n = ZSTD_compress(dst, sizeof(dst), src, len, level ? level : 1);
	assert_false(ZSTD_isError(n));
	return n;
}

static bool page_same_filled(const char *p, uint64_t *w0)
{
	uint64_t w;

	memcpy(w0, p, 8);
	for (size_t off = 8; off < PAGE; off += 8) {
		memcpy(&w, p + off, 8);
		if (w != *w0)
			return false;
	}
	return true;
}

struct expect {
	size_t runs;        /* objects stored (folios not all zero) */
	size_t fast_bytes;  /* their lengths after the eviction */
	size_t after_bytes; /* and after recompression */
};

/* What each folio of npages pages should be stored as, before and after. */
static void expect_folios(const char *codec, int level, const char *mem, size_t pages,
			  size_t npages, struct expect *e)
{
	char *packed = malloc(npages * PAGE);

	memset(e, 0, sizeof(*e));
	for (size_t f = 0; f < pages / npages; f++) {
		size_t data = 0, same = 0, zero = 0, raw, fast, strong, margin;

		for (size_t i = 0; i < npages; i++) {
			const char *p = mem + (f * npages + i) * PAGE;
			uint64_t w;

			if (!page_same_filled(p, &w))
				memcpy(packed + PAGE * data++, p, PAGE);
			else if (w)
				same++;
			else
				zero++;
		}
		if (zero == npages)
			continue; /* the zero map only: no object */
		e->runs++;
		raw = data * PAGE;
		fast = strong = blob_head(npages, same);
		if (data) {
			size_t nf = compressed_len(codec, 0, packed, raw);
			size_t ns = compressed_len(codec, level, packed, raw);

			fast += nf < raw ? nf : raw;
			strong += ns < raw ? ns : raw + npages * PAGE; /* raw: never kept */
		}
		e->fast_bytes += fast;
		margin = fast / 32 > 64 ? fast / 32 : 64;
		e->after_bytes += data && strong + margin <= fast && strong <= npages * PAGE
					  ? strong : fast;
	}
	free(packed);
}

/* ---- helpers ---- */

static uswap_t *open_recompress(const char *codec, unsigned level, size_t folio)
{
	struct uswap_config cfg = { .codec = codec, .folio_size = folio, .recompress = level };

	return itest_open(&cfg);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t recompressed(uswap_t *u)
{
	return itest_stat(u, "recompress_folios") + itest_stat(u, "recompress_kept");
}

/* Wait until runs objects have been seen by the recompressor (or fail
 * after timeout_s). */
static void wait_recompressed(uswap_t *u, uint64_t runs, double timeout_s)
{
	double t0 = now_s();

	while (recompressed(u) < runs) {
		if (now_s() - t0 > timeout_s)
			fail_msg("recompression did not finish in %.0f s: %lu of %lu objects seen",
				 timeout_s, (unsigned long)recompressed(u), (unsigned long)runs);
		usleep(20000);
	}
}

/* Map pages, fill them from the generator, page them out. */
static char *map_filled_out(uswap_t *u, size_t pages, uint64_t seed, uint64_t *ver)
{
	char *mem;

	assert_int_equal(uswap_map(u, pages * PAGE, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, seed, ver);
	assert_int_equal(uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(itest_stat(u, "resident_bytes"), 0);
	return mem;
}

/* ---- store memory: exactly what the library says, every byte back ---- */

static void check_shrinks(const char *codec, unsigned level, size_t folio, size_t len)
{
	const size_t pages = len / PAGE, npages = folio / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	char *model = malloc(len);
	uint64_t before, pool_before, after, pool_after, runs0, saved0, saved;
	struct expect e;
	double t0;
	char *mem;
	uswap_t *u;

	itest_fill_pages(model, pages, 21, ver);
	expect_folios(codec, (int)level, model, pages, npages, &e);
	free(model);
	u = open_recompress(codec, level, folio);
	t0 = now_s();
	mem = map_filled_out(u, pages, 21, ver);
	before = itest_stat(u, "stored_bytes");
	pool_before = itest_stat(u, "pool_bytes");
	runs0 = recompressed(u);
	saved0 = itest_stat(u, "recompress_saved_bytes");
	wait_recompressed(u, e.runs, 120);
	after = itest_stat(u, "stored_bytes");
	saved = itest_stat(u, "recompress_saved_bytes");
	/* the memory the store holds follows once the pass has ended and the
	 * store is compacted (size classes: half of the bytes saved) */
	while ((pool_after = itest_stat(u, "pool_bytes")) + (saved - saved0) / 2 > pool_before) {
		if (now_s() - t0 > 120)
			fail_msg("the store's memory did not fall: %lu -> %lu bytes with %lu saved",
				 (unsigned long)pool_before, (unsigned long)pool_after,
				 (unsigned long)(saved - saved0));
		usleep(20000);
	}
	print_message("%s level %u, %zu KiB folios: %zu objects, stored %lu -> %lu bytes "
		      "(expected %zu -> %zu), pool %lu -> %lu, %lu recompressed, %lu kept, "
		      "%.2f s\n",
		      codec, level, folio >> 10, e.runs, (unsigned long)before,
		      (unsigned long)after, e.fast_bytes, e.after_bytes,
		      (unsigned long)pool_before, (unsigned long)pool_after,
		      (unsigned long)itest_stat(u, "recompress_folios"),
		      (unsigned long)itest_stat(u, "recompress_kept"), now_s() - t0);
	/* the recompressor may have started while the pageout went on, but
	 * every object is seen once, no more */
	assert_true(runs0 <= e.runs);
	assert_int_equal(recompressed(u), e.runs);
	assert_int_equal(itest_stat(u, "recompress_fail"), 0);
	/* (it may have begun before the pageout ended, and "before" may have
	 * caught one object stored twice for a moment: only bounds here) */
	assert_true(before + saved0 >= e.fast_bytes);
	assert_true(before + saved0 <= e.fast_bytes + folio + 4096);
	assert_int_equal(after, e.after_bytes);
	assert_int_equal(saved, e.fast_bytes - e.after_bytes);
	/* the strong level must pay on this mix: at least 3% of stored bytes */
	assert_true(e.after_bytes * 100 <= e.fast_bytes * 97);
	itest_assert_pages(mem, pages, 21, ver);
	/* nothing is tried twice: evict again (swap-cache hits, same objects) */
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	usleep(300000);
	assert_int_equal(recompressed(u), e.runs);
	itest_assert_pages(mem, pages, 21, ver);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	assert_int_equal(itest_stat(u, "stored_bytes"), 0);
	uswap_close(u);
	free(ver);
}

static void test_lz4hc_shrinks_store(void **state)
{
	(void)state;
	check_shrinks("lz4", 9, 64 << 10, 16 * MiB);
}

static void test_zstd_shrinks_store(void **state)
{
	(void)state;
	check_shrinks("zstd", 9, 64 << 10, 16 * MiB);
}

/* 4 KiB folios: every run is one slot (the order-0 case). */
static void test_order0_runs(void **state)
{
	(void)state;
	check_shrinks("lz4", 12, 4 << 10, 4 * MiB);
}

/* ---- faults and writes racing the recompression ---- */

struct racer {
	char *mem;
	uint64_t *ver;
	size_t pages, folio_pages;
	unsigned parity;  /* the folios this thread owns: f % 2 == parity */
	uint64_t seed;
	volatile int *stop;
	long bad;         /* first page read wrong, or -1 */
	uint64_t ops;
};

static void *racer_main(void *arg)
{
	struct racer *t = arg;
	struct rng r = { t->seed * 0x9e3779b97f4a7c15ull + 1 };
	char want[PAGE];

	while (!__atomic_load_n(t->stop, __ATOMIC_RELAXED) && t->bad < 0) {
		size_t f = rng_below(&r, t->pages / t->folio_pages / 2) * 2 + t->parity;
		size_t p = f * t->folio_pages + rng_below(&r, t->folio_pages);

		if (rng_below(&r, 4) == 0) {
			t->ver[p]++;
			pagegen_fill(t->mem + p * PAGE, 31, p, t->ver[p]);
		} else {
			pagegen_fill(want, 31, p, t->ver[p]);
			if (memcmp(t->mem + p * PAGE, want, PAGE))
				t->bad = (long)p;
		}
		t->ops++;
	}
	return NULL;
}

static void test_faults_and_writes_during_recompression(void **state)
{
	const size_t len = 16 * MiB, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	struct racer t[2];
	pthread_t th[2];
	volatile int stop = 0;
	uswap_t *u = open_recompress("lz4", 12, 64 << 10);
	char *mem = map_filled_out(u, pages, 31, ver);
	uint64_t r0, r1;
	double t0 = now_s();
	struct rng rng;

	(void)state;
	rng_seed(&rng, 5);
	while (recompressed(u) == 0)
		assert_true(now_s() - t0 < 60);
	r0 = recompressed(u);
	for (int i = 0; i < 2; i++) {
		t[i] = (struct racer){ mem, ver, pages, 16, (unsigned)i, 40 + (uint64_t)i, &stop, -1,
				       0 };
		assert_int_equal(pthread_create(&th[i], NULL, racer_main, &t[i]), 0);
	}
	/* evict pieces again and again while the threads touch them and the
	 * recompressor goes on */
	t0 = now_s();
	while (now_s() - t0 < 1.5) {
		size_t at = rng_below(&rng, len / MiB) * MiB;

		assert_int_equal(uswap_advise(u, mem + at, MiB, USWAP_ADV_PAGEOUT), 0);
		usleep(5000);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (t[i].bad >= 0)
			fail_msg("thread %d read page %ld wrong while recompression ran", i,
				 t[i].bad);
	}
	r1 = recompressed(u);
	print_message("racing: %lu + %lu accesses, %lu objects recompressed meanwhile\n",
		      (unsigned long)t[0].ops, (unsigned long)t[1].ops,
		      (unsigned long)(r1 - r0));
	assert_true(r1 > r0); /* it did run during the race */
	assert_int_equal(itest_stat(u, "recompress_fail"), 0);
	itest_assert_pages(mem, pages, 31, ver);
	/* once more after all is out and seen again */
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	itest_assert_pages(mem, pages, 31, ver);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	free(ver);
}

/* ---- fork in the middle of it ---- */

/* The child: its copy of everything, its own recompressor; every page
 * right, before and after its own recompression has gone further, and
 * after writes of its own.  @return the exit status. */
static int child_check(uswap_t *u, char *mem, size_t pages, uint64_t *ver)
{
	uint64_t seen = recompressed(u);
	double t0 = now_s();

	if (itest_first_bad_page(mem, pages / 2, 51, ver) >= 0)
		return 10;
	if (uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT))
		return 11;
	while (recompressed(u) <= seen && now_s() - t0 < 60)
		usleep(20000);
	if (recompressed(u) <= seen)
		return 12; /* the child's recompressor never ran */
	for (size_t p = 0; p < pages; p += 7) {
		ver[p] += 100;
		pagegen_fill(mem + p * PAGE, 51, p, ver[p]);
	}
	if (itest_first_bad_page(mem, pages, 51, ver) >= 0)
		return 13;
	return 0;
}

static void test_fork_during_recompression(void **state)
{
	const size_t len = 16 * MiB, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uswap_t *u = open_recompress("zstd", 15, 64 << 10);
	char *mem = map_filled_out(u, pages, 51, ver);
	double t0 = now_s();
	int status;
	pid_t pid;

	(void)state;
	alarm(300);
	while (recompressed(u) == 0)
		assert_true(now_s() - t0 < 60);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_check(u, mem, pages, ver));
	/* the parent goes on meanwhile: reads, writes, recompresses */
	for (size_t p = 3; p < pages; p += 11) {
		ver[p] += 1;
		pagegen_fill(mem + p * PAGE, 51, p, ver[p]);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("the child failed: status 0x%x (10-13: see child_check)", status);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	itest_assert_pages(mem, pages, 51, ver);
	assert_int_equal(itest_stat(u, "recompress_fail"), 0);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	alarm(0);
	free(ver);
}

/* ---- the option ---- */

static void expect_refused(const struct uswap_config *cfg, const char *want1, const char *want2)
{
	uswap_t *u = NULL;
	int rc = uswap_open(cfg, &u);

	if (rc != -EINVAL || !strstr(uswap_last_error(), want1) ||
	    !strstr(uswap_last_error(), want2))
		fail_msg("open: %d \"%s\": wanted -EINVAL naming \"%s\" and \"%s\"", rc,
			 uswap_last_error(), want1, want2);
	assert_null(u);
}

static void test_bad_values_refused(void **state)
{
	struct uswap_config cfg = { .codec = "lz4", .recompress = 13 };
	uswap_t *u;

	(void)state;
	expect_refused(&cfg, "13", "3 to 12");
	cfg.recompress = 2;
	expect_refused(&cfg, "2", "3 to 12");
	cfg = (struct uswap_config){ .codec = "zstd", .recompress = 23 };
	expect_refused(&cfg, "23", "2 to 22");
	cfg.recompress = 1; /* the fast level itself */
	expect_refused(&cfg, "level 1", "2 to 22");
	cfg = (struct uswap_config){ .codec = "none", .recompress = 9 };
	expect_refused(&cfg, "none", "lz4 or zstd");
	cfg = (struct uswap_config){ .store = "file:/tmp", .recompress = 9 };
	expect_refused(&cfg, "file:/tmp", "ram store");

	setenv("USWAP_RECOMPRESS", "fast", 1);
	expect_refused(NULL, "USWAP_RECOMPRESS \"fast\"", "off, or a compression level");
	setenv("USWAP_RECOMPRESS", "-3", 1);
	expect_refused(NULL, "\"-3\"", "off");
	setenv("USWAP_RECOMPRESS", "9x", 1);
	expect_refused(NULL, "\"9x\"", "off");
	setenv("USWAP_RECOMPRESS", "40", 1);
	expect_refused(NULL, "level 40", "3 to 12");
	/* the good ones open */
	setenv("USWAP_RECOMPRESS", "off", 1);
	assert_int_equal(uswap_open(NULL, &u), 0);
	uswap_close(u);
	setenv("USWAP_RECOMPRESS", "12", 1);
	assert_int_equal(uswap_open(NULL, &u), 0);
	uswap_close(u);
	unsetenv("USWAP_RECOMPRESS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_values_refused),
		cmocka_unit_test(test_lz4hc_shrinks_store),
		cmocka_unit_test(test_zstd_shrinks_store),
		cmocka_unit_test(test_order0_runs),
		cmocka_unit_test(test_faults_and_writes_during_recompression),
		cmocka_unit_test(test_fork_during_recompression),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

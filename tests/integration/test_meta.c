/* SPDX-License-Identifier: MIT */
/*
 * The meta_bytes counter against a model of uswap's bookkeeping.
 *
 * The model is the layout docs/ARCHITECTURE.md describes, counted from the
 * test's own knowledge of what it stored (and confirmed page by page with
 * uswap_pagemap), never from uswap's counters:
 *   - per region: its struct, a 4-byte state word per folio, a 4-byte
 *     entry per page, a zero-map bit per page (in 64-bit words);
 *   - the slot map: a 4 KiB directory leaf once any cluster exists, then
 *     per cluster of 512 slots the bytes of a cluster of its order
 *     (slotmap_cluster_bytes: header with a count byte per slot, and a
 *     handle per run); a cluster serves 512 >> order runs;
 *   - the ram store: its own mapping and the handle table's first chunk,
 *     both there from the start (the base), which stay as they are while
 *     fewer than a chunk's 1024 entries are handed out.
 * Then the documented bound: at most 8 bytes per managed page after a
 * 1 GiB region of the realistic page mix is paged out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/slotmap.h"
#include "runtime/instance.h"
#include "testlib.h"
#include "uswap.h"

#define PAGE 4096ul
#define SLOTMAP_DIR_LEAF_BYTES 4096u
#define META_BOUND_PER_PAGE 8.0

static uint64_t pagetable_model(uint64_t pages, unsigned order)
{
	return (pages >> order) * 4 + pages * 4 + (pages + 63) / 64 * 8;
}

static uint64_t clusters_for(uint64_t runs, unsigned order)
{
	uint64_t per_cluster = SLOT_CLUSTER >> order;

	return (runs + per_cluster - 1) / per_cluster;
}

/* Incompressible, never zero or same-filled: every page stays stored. */
static void fill_random(char *mem, size_t pages, struct rng *r)
{
	for (size_t i = 0; i < pages * PAGE / 8; i++) {
		uint64_t v = rng_next(r);

		memcpy(mem + i * 8, &v, 8);
	}
}

/* Every page of [mem, mem + pages) is swapped out, in a unit of order. */
static void assert_swapped(uswap_t *u, const char *mem, size_t pages, unsigned order)
{
	uint64_t *pm = calloc(pages, sizeof(*pm));

	assert_non_null(pm);
	assert_int_equal(uswap_pagemap(u, mem, pages, pm), 0);
	for (size_t i = 0; i < pages; i++) {
		if ((pm[i] & (USWAP_PM_SWAPPED | USWAP_PM_PRESENT | USWAP_PM_ZERO)) !=
			    USWAP_PM_SWAPPED ||
		    USWAP_PM_ORDER(pm[i]) != order)
			fail_msg("page %zu: pagemap word %#llx, want swapped at order %u", i,
				 (unsigned long long)pm[i], order);
	}
	free(pm);
}

/*
 * One instance of folio order @order: map a region of @region_pages,
 * store @stored_pages of it (whole folios), and compare meta_bytes with
 * the model after each step.
 */
static void check_model(unsigned order, size_t region_pages, size_t stored_pages, uint64_t seed)
{
	struct uswap_config cfg = { .folio_size = PAGE << order };
	uint64_t base, want;
	struct rng r;
	uswap_t *u;
	char *mem;

	rng_seed(&r, seed);
	u = itest_open(&cfg);
	base = itest_stat(u, "meta_bytes");

	assert_int_equal(uswap_map(u, region_pages * PAGE, 0, (void **)&mem), 0);
	want = base + sizeof(struct region) + pagetable_model(region_pages, order);
	assert_int_equal(itest_stat(u, "meta_bytes"), want);

	fill_random(mem, stored_pages, &r);
	assert_int_equal(uswap_advise(u, mem, stored_pages * PAGE, USWAP_ADV_PAGEOUT), 0);
	assert_swapped(u, mem, stored_pages, order);
	assert_int_equal(itest_stat(u, "store_objects"), stored_pages >> order);
	want += SLOTMAP_DIR_LEAF_BYTES +
		clusters_for(stored_pages >> order, order) * slotmap_cluster_bytes(order);
	if (itest_stat(u, "meta_bytes") != want)
		fail_msg("order %u, %zu pages stored: meta_bytes %llu, the model says %llu", order,
			 stored_pages, (unsigned long long)itest_stat(u, "meta_bytes"),
			 (unsigned long long)want);

	/* clusters are kept once made: unmapping gives back only the region */
	assert_int_equal(uswap_unmap(u, mem, region_pages * PAGE), 0);
	want -= sizeof(struct region) + pagetable_model(region_pages, order);
	assert_int_equal(itest_stat(u, "meta_bytes"), want);
	uswap_close(u);
}

/* N folios of 16 pages paged out whole: order-4 runs, 32 to a cluster. */
static void test_model_whole_folios(void **state)
{
	(void)state;
	check_model(4, 4096, 40 * 16, 0x3e7a1ull); /* 40 runs: 2 clusters, one partly used */
}

/* M pages stored one by one (4 KiB folios): order-0 runs, 512 to a cluster. */
static void test_model_single_pages(void **state)
{
	(void)state;
	check_model(0, 2048, 600, 0x3e7a2ull); /* 600 runs: 2 clusters */
}

/* The documented bound for a paged-out 1 GiB region of the realistic mix
 * (zero, random, text, integer and record pages), default 64 KiB folios. */
static void test_bound_realistic_mix(void **state)
{
	size_t len = 1ul << 30, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	double per_page;
	uswap_t *u;
	char *mem;

	(void)state;
	assert_non_null(ver);
	u = itest_open(&(struct uswap_config){ 0 });
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, 0x3e7a3ull, ver);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(itest_stat(u, "resident_bytes"), 0);
	per_page = (double)itest_stat(u, "meta_bytes") / (double)pages;
	fprintf(stderr, "# metadata after paging out 1 GiB of the mix: %.3f bytes per page\n",
		per_page);
	if (per_page > META_BOUND_PER_PAGE)
		fail_msg("metadata %.3f bytes per page, the bound is %.1f", per_page,
			 META_BOUND_PER_PAGE);
	itest_assert_pages(mem, pages, 0x3e7a3ull, ver);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	free(ver);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_whole_folios),
		cmocka_unit_test(test_model_single_pages),
		cmocka_unit_test(test_bound_realistic_mix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The runtime without userfaultfd: eviction, swap-in, the zero map, slot
 * runs, the store and the reclaim clock, driven by long random event
 * sequences on a fake OS (fake_os.c), against a model of what every page
 * must read, with every invariant checked after every step:
 *  - each page reads what the model says (or was poisoned, never wrong);
 *  - folio states agree with the fake's page presence;
 *  - page entries, zero map, slot map and store agree (folio_check,
 *    slotmap_check, one stored object per referenced run);
 *  - resident accounting equals the resident folios.
 * Failures are injected: EBUSY moves, moves that report less than they moved (the
 * kernel does after a migration), EAGAIN, ENOMEM copies, a full store,
 * corrupt stored data, pages dropped behind uswap's back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "pagegen.h"
#include "sim_os.h"
#include "codec/folio_blob.h"
#include "os/os.h"
#include "runtime/instance.h"
#include "uswap.h"

/* uswap_close checks the ram store holding all its locks (testlib.h) */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

#define PAGE 4096ul

struct sim {
	uswap_t *u;
	char *mem;
	size_t len, pages;
	char *shadow;      /* what each page must read */
	uint8_t *poisoned; /* pages the model expects poisoned */
	uint8_t *lazy;     /* pages lazily freed and not written since: they
			      read as their shadow or as zeros */
	struct folio_ctx *ctx;
	unsigned shard;
	bool adaptive;     /* adaptive swap-in is on (not USWAP_CFG_NO_ADAPT) */
};

static void sim_fault(struct sim *s, size_t p, bool write)
{
	int rc;

	regions_read_lock(&s->u->regions, s->shard);
	rc = fault_resolve(s->u, s->ctx, (uint64_t)(uintptr_t)(s->mem + p * PAGE), write);
	regions_read_unlock(&s->u->regions, s->shard);
	if (rc && !s->poisoned[p])
		fail_msg("page %zu: fault failed with %d and was not expected to", p, rc);
}

/* Make page p accessible as the program's access would. */
static void sim_touch(struct sim *s, size_t p, bool write)
{
	if (sim_os_page(s->mem + p * PAGE) == SIM_ABSENT)
		sim_fault(s, p, write);
}

static void sim_read(struct sim *s, size_t p)
{
	enum sim_page st;

	sim_touch(s, p, false);
	st = sim_os_page(s->mem + p * PAGE);
	if (s->poisoned[p] && st != SIM_POISONED && s->adaptive) {
		/* With adaptive swap-in a page of a corrupted folio may come in
		 * alone without the corrupted blob (a zero-map page, a page in
		 * another run): then it must read right, never wrong. */
		s->poisoned[p] = 0;
	}
	if (s->poisoned[p]) {
		if (st != SIM_POISONED) {
			struct pagetable *pt = &s->u->regions.v[0]->pt;
			uint32_t f = (uint32_t)(p >> pt->folio_order);

			fail_msg("page %zu should be poisoned but reads as %d; folio %u word 0x%x",
				 p, st, f, folio_word_load(pt, f));
		}
		return;
	}
	if (st == SIM_ABSENT || st == SIM_POISONED) {
		struct pagetable *pt = &s->u->regions.v[0]->pt;
		uint32_t f = (uint32_t)(p >> pt->folio_order);

		fail_msg("page %zu reads as %d (folio %u word 0x%x, entry 0x%x, zero bit %d)", p,
			 st, f, folio_word_load(pt, f), pt->entry[p], zeromap_test(pt, (uint32_t)p));
	}
	if (s->lazy[p] && memcmp(s->mem + p * PAGE, s->shadow + p * PAGE, PAGE)) {
		/* discarded: zeros from now on, until written */
		for (size_t i = 0; i < PAGE; i++)
			if (s->mem[p * PAGE + i])
				fail_msg("lazily freed page %zu reads neither its data nor zeros", p);
		memset(s->shadow + p * PAGE, 0, PAGE);
	}
	if (memcmp(s->mem + p * PAGE, s->shadow + p * PAGE, PAGE))
		fail_msg("page %zu reads wrong (first byte 0x%02x, expected 0x%02x)", p,
			 (unsigned char)s->mem[p * PAGE], (unsigned char)s->shadow[p * PAGE]);
}

static void sim_write(struct sim *s, size_t p, struct rng *r)
{
	char *dst = s->shadow + p * PAGE;
	uint64_t w;
	size_t i;

	if (s->poisoned[p])
		return; /* the program would have died */
	switch (rng_below(r, 6)) {
	case 0:
		memset(dst, 0, PAGE);
		break;
	case 1: /* same-filled */
		w = rng_next(r);
		for (i = 0; i < PAGE / 8; i++)
			memcpy(dst + i * 8, &w, 8);
		break;
	case 2: /* one word */
		w = rng_next(r);
		memcpy(dst + rng_below(r, PAGE / 8) * 8, &w, 8);
		break;
	default:
		pagegen_fill(dst, 5, p, rng_next(r));
	}
	sim_touch(s, p, true);
	if (sim_os_wp(s->mem + p * PAGE)) {
		regions_read_lock(&s->u->regions, s->shard);
		fault_resolve_wp(s->u, (uint64_t)(uintptr_t)(s->mem + p * PAGE));
		regions_read_unlock(&s->u->regions, s->shard);
		assert_false(sim_os_wp(s->mem + p * PAGE));
	}
	sim_os_cow(s->mem + p * PAGE);
	memcpy(s->mem + p * PAGE, dst, PAGE);
	if (s->lazy[p]) {
		/* a write to a lazily freed page (seen by uswap: a write-protect
		 * or missing fault) ends lazy free for its whole folio: the
		 * other pages keep what they hold now, data or zeros, for good.
		 * (A write to a page the advice did not cover changes nothing.) */
		size_t fp = s->u->p.folio_size / PAGE, q;

		s->lazy[p] = 0;
		for (q = p / fp * fp; q < (p / fp + 1) * fp; q++) {
			if (s->lazy[q] && !s->poisoned[q])
				sim_read(s, q);
			s->lazy[q] = 0;
		}
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* uswap_pagemap against the fake kernel's page presence (not against the
 * page table it is read from): a mapped page is PRESENT; a page that is not
 * PRESENT is not mapped; a unit of order > 0 is present or not as a whole
 * (a partly swapped-in folio is reported page by page, order 0); a page is
 * never both SWAPPED and ZERO. */
static void sim_check_pagemap(struct sim *s)
{
	uint64_t *pm = malloc(sizeof(*pm) * s->pages);
	size_t p;

	assert_non_null(pm);
	assert_int_equal(uswap_pagemap(s->u, s->mem, s->pages, pm), 0);
	for (p = 0; p < s->pages; p++) {
		enum sim_page sp = sim_os_page(s->mem + p * PAGE);
		unsigned order = USWAP_PM_ORDER(pm[p]);
		size_t q0 = p >> order << order;

		if ((sp == SIM_PRESENT || sp == SIM_ZERO) && !(pm[p] & USWAP_PM_PRESENT))
			fail_msg("page %zu is mapped but its pagemap word 0x%llx says not present", p,
				 (unsigned long long)pm[p]);
		if ((pm[p] & USWAP_PM_SWAPPED) && (pm[p] & USWAP_PM_ZERO))
			fail_msg("page %zu: pagemap word 0x%llx is both swapped and zero", p,
				 (unsigned long long)pm[p]);
		if (pm[p] && ((pm[q0] ^ pm[p]) & USWAP_PM_PRESENT))
			fail_msg("page %zu: pagemap word 0x%llx (order %u) disagrees with page %zu's "
				 "0x%llx on presence", p, (unsigned long long)pm[p], order, q0,
				 (unsigned long long)pm[q0]);
	}
	free(pm);
}


/* The budget counts every page of a resident folio, but of a partly
 * swapped-in one only the pages not still out (no slot, no zero bit). */
static uint64_t pages_counted(const struct pagetable *pt, uint32_t f, uint32_t w)
{
	uint32_t p, n = 0;

	for (p = f << pt->folio_order; p < (f + 1) << pt->folio_order; p++)
		n += !((w & FOLIO_PARTIAL) && (entry_has_slot(pt->entry[p]) || zeromap_test(pt, p)));
	return n;
}

/* Everything uswap keeps must agree with itself and with the fake. */
static void sim_check(struct sim *s)
{
	struct uswap *u = s->u;
	struct region *r = u->regions.v[0];
	struct pagetable *pt = &r->pt;
	uint64_t resident = 0, slots = 0, runs = 0, v;
	uint32_t *firsts = malloc(sizeof(*firsts) * r->npages), nfirsts = 0;
	uint32_t f, i;

	for (f = 0; f < pt->nfolios; f++) {
		uint32_t w = folio_word_load(pt, f);
		enum folio_state st = folio_state_of(w);

		assert_false(w & FOLIO_LOCKED);
		assert_int_equal(folio_check(pt, f, u->slots), 0);
		if (st == FOLIO_RESIDENT && !(w & FOLIO_UNCHARGED))
			resident += pages_counted(pt, f, w);
		for (i = f << pt->folio_order; i < (f + 1) << pt->folio_order; i++) {
			enum sim_page sp = sim_os_page(s->mem + (size_t)i * PAGE);
			page_entry_t e = pt->entry[i];

			if (st != FOLIO_RESIDENT && sp != SIM_ABSENT && sp != SIM_POISONED)
				fail_msg("folio %u (word 0x%x) is not resident but page %u is mapped (%d)",
					 f, w, i, sp);
			/* a partial folio's stored pages are not mapped */
			if ((w & FOLIO_PARTIAL) && (entry_has_slot(e) || zeromap_test(pt, i)) &&
			    sp != SIM_ABSENT && sp != SIM_POISONED)
				fail_msg("partial folio %u (word 0x%x): page %u is stored and mapped (%d)",
					 f, w, i, sp);
			if (entry_has_slot(e)) {
				store_handle_t h;
				slot_t first;
				unsigned order;

				slots++;
				assert_int_equal(slot_run(u->slots, entry_slot(e), &h, &first, &order), 0);
				firsts[nfirsts++] = first.v;
			}
		}
	}
	sim_check_pagemap(s);
	/* one stored object per distinct run referenced */
	qsort(firsts, nfirsts, sizeof(*firsts), cmp_u32);
	for (i = 0; i < nfirsts; i++)
		runs += i == 0 || firsts[i] != firsts[i - 1];
	free(firsts);
	assert_int_equal(slotmap_check(u->slots), 0);
	assert_int_equal(__atomic_load_n(&u->resident_pages, __ATOMIC_RELAXED), resident);
	assert_int_equal(uswap_stat(s->u, "orig_bytes", &v), 0);
	assert_int_equal(v, slots * PAGE);
	assert_int_equal(uswap_stat(s->u, "store_objects", &v), 0);
	assert_int_equal(v, runs);
}

static void sim_open(struct sim *s, struct uswap_config *cfg, size_t len)
{
	memset(s, 0, sizeof(*s));
	cfg->threads = 1;
	assert_int_equal(uswap_open(cfg, &s->u), 0);
	s->adaptive = !(cfg->flags & USWAP_CFG_NO_ADAPT);
	/* one thread drives everything: no handler or reclaimer runs beside it */
	handlers_stop(s->u);
	reclaimer_stop(s->u);
	s->len = len;
	s->pages = len / PAGE;
	assert_int_equal(uswap_map(s->u, len, 0, (void **)&s->mem), 0);
	s->shadow = calloc(1, len);
	s->poisoned = calloc(s->pages, 1);
	s->lazy = calloc(s->pages, 1);
	s->ctx = folio_ctx_get(s->u);
	s->shard = regions_api_shard(s->u);
	assert_non_null(s->ctx);
}

static void sim_close(struct sim *s)
{
	size_t p;

	for (p = 0; p < s->pages; p++)
		sim_read(s, p);
	sim_check(s);
	folio_ctx_put(s->u, s->ctx);
	assert_int_equal(uswap_unmap(s->u, s->mem, s->len), 0);
	{
		uint64_t v;

		assert_int_equal(uswap_stat(s->u, "store_objects", &v), 0);
		assert_int_equal(v, 0);
		assert_int_equal(uswap_stat(s->u, "orig_bytes", &v), 0);
		assert_int_equal(v, 0);
	}
	uswap_close(s->u);
	free(s->shadow);
	free(s->poisoned);
	free(s->lazy);
}

/* Flip one byte of the stored blob of page p (which must have a slot). */
static int corrupt_visit(const void *obj, size_t len, void *arg)
{
	(void)arg;
	((uint8_t *)(uintptr_t)obj)[len / 2] ^= 0x40;
	return 0;
}

static bool sim_corrupt(struct sim *s, size_t p)
{
	struct uswap *u = s->u;
	struct pagetable *pt = &u->regions.v[0]->pt;
	page_entry_t e = pt->entry[p];
	store_handle_t h;
	slot_t first;
	unsigned order, i;
	uint32_t f = (uint32_t)(p >> pt->folio_order);

	if (!entry_has_slot(e) || s->poisoned[p] ||
	    folio_state_of(folio_word_load(pt, f)) != FOLIO_OUT)
		return false; /* nothing stored (or a resident swap-cached copy), or
				 corrupted already */
	assert_int_equal(slot_run(u->slots, entry_slot(e), &h, &first, &order), 0);
	/* only a folio stored as one run: all its data pages go with it */
	for (i = f << pt->folio_order; i < (f + 1) << pt->folio_order; i++) {
		if (!entry_has_slot(pt->entry[i]))
			continue;
		if (entry_slot(pt->entry[i]).v != first.v + (i - (f << pt->folio_order)))
			return false;
	}
	assert_int_equal(u->p.store_ops->get(u->store, h, corrupt_visit, NULL), 0);
	/* the fault on any page of the folio fails; only that page is poisoned */
	s->poisoned[p] = 1;
	sim_read(s, p);
	/* the folio stays OUT with its other pages: mark them poisoned too, as
	 * reading them would poison them */
	for (i = f << pt->folio_order; i < (f + 1) << pt->folio_order; i++)
		s->poisoned[i] = 1;
	return true;
}

/* A corrupted folio poisons any of its pages read while it still holds a
 * corrupted slot (dropped pages included: the folio cannot come in); once
 * the program dropped all its stored pages, every page reads as zero again
 * (or its shadow), except those poisoned already. */
static void sim_unpoison_clean(struct sim *s, size_t f0, size_t f1)
{
	struct pagetable *pt = &s->u->regions.v[0]->pt;
	size_t f, i, fp = folio_pages(pt);

	for (f = f0; f <= f1; f++) {
		bool stored = false;

		for (i = f * fp; i < (f + 1) * fp; i++)
			stored |= entry_has_slot(pt->entry[i]);
		for (i = f * fp; !stored && i < (f + 1) * fp; i++)
			if (sim_os_page(s->mem + i * PAGE) != SIM_POISONED)
				s->poisoned[i] = 0;
	}
}

/* PAGEOUT may only fail because the store is full. */
static void pageout_check(unsigned step, int rc)
{
	if (rc != 0 && rc != -ENOSPC)
		fail_msg("step %u: PAGEOUT returned %d", step, rc);
}

/* When not 0: the slot space (slots) run_random gives the instance, small
 * enough that runs of some order run out (order-0 and page-by-page
 * fallbacks, clusters of several orders side by side). */
static uint32_t sim_slot_space;

static void run_random(uint64_t seed, struct uswap_config cfg, size_t len, unsigned steps,
		       bool with_corruption)
{
	struct sim s;
	struct rng r;
	unsigned step;
	uint64_t corruptions = 0;

	rng_seed(&r, seed);
	sim_open(&s, &cfg, len);
	if (sim_slot_space) {
		slotmap_destroy(s.u->slots);
		assert_int_equal(slotmap_create(sim_slot_space, &s.u->slots), 0);
	}
	s.u->max_pages = s.u->p.limit / PAGE; /* direct reclaim only */
	s.u->high_wm = s.u->low_wm = s.u->max_pages;
	for (step = 0; step < steps; step++) {
		size_t p = (size_t)rng_below(&r, s.pages);
		size_t fpages = s.u->p.folio_size / PAGE;
		unsigned op = (unsigned)rng_below(&r, 100);

		if (op < 35) {
			sim_write(&s, p, &r);
		} else if (op < 65) {
			sim_read(&s, p);
		} else if (op < 75) {
			size_t n = 1 + (size_t)rng_below(&r, 4 * fpages);

			if (p + n > s.pages)
				n = s.pages - p;
			pageout_check(step, uswap_advise(s.u, s.mem + p * PAGE, n * PAGE,
							  USWAP_ADV_PAGEOUT));
		} else if (op < 78) {
			int rc = reclaim_some(s.u, s.ctx, CTR_reclaim_background,
					      1 + (unsigned)(step % RECLAIM_BATCH_MAX));

			assert_true(rc == 0 || rc == -EAGAIN || rc == -ENOSPC);
		} else if (op < 81) {
			/* MADV_DONTNEED by the program on a few pages: the kernel
			 * drops them and sends the remove event; they read zero */
			size_t n = 1 + (size_t)rng_below(&r, 2 * fpages);

			if (p + n > s.pages)
				n = s.pages - p;
			sim_os_drop(s.mem + p * PAGE, n * PAGE);
			events_drop(s.u, s.shard, (uint64_t)(uintptr_t)(s.mem + p * PAGE),
				    (uint64_t)(uintptr_t)(s.mem + (p + n) * PAGE), false);
			memset(s.shadow + p * PAGE, 0, n * PAGE);
			memset(s.lazy + p, 0, n);
			sim_unpoison_clean(&s, p / fpages, (p + n - 1) / fpages);
		} else if (op < 84) {
			struct sim_inject in = { 0 };

			switch (rng_below(&r, 4)) {
			case 0: in.move_ebusy_in = 1 + (int)rng_below(&r, 3); break;
			case 1: in.eagain_in = 1 + (int)rng_below(&r, 3); break;
			case 2: in.move_underreport_in = 1 + (int)rng_below(&r, 3); break;
			default: in.copy_enomem_in = 1 + (int)rng_below(&r, 3); break;
			}
			sim_os_inject(&in);
		} else if (op < 87) {
			size_t n = 1 + (size_t)rng_below(&r, 2 * fpages);
			int rc;

			if (p + n > s.pages)
				n = s.pages - p;
			rc = uswap_advise(s.u, s.mem + p * PAGE, n * PAGE, USWAP_ADV_WILLNEED);
			/* -EILSEQ: the range holds a folio whose data was corrupted */
			assert_true(rc == 0 || (with_corruption && rc == -EILSEQ));
		} else if (op < 88 && with_corruption && corruptions < 5) {
			corruptions += sim_corrupt(&s, p);
		} else if (op < 92 && !s.poisoned[p]) {
			/* a pinned folio never leaves, even when everything is paged out */
			uint32_t f = (uint32_t)(p / fpages);
			int rc = uswap_advise(s.u, s.mem + p * PAGE, PAGE, USWAP_ADV_PIN);

			/* a partial folio (adaptive swap-in) may hold another
			 * page's lost data: it cannot come in whole */
			if (rc == -EILSEQ && with_corruption && s.adaptive) {
				sim_check(&s);
				continue;
			}
			assert_int_equal(rc, 0);
			pageout_check(step, uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT));
			assert_int_equal(folio_state_of(folio_word_load(&s.u->regions.v[0]->pt, f)),
					 FOLIO_RESIDENT);
			assert_int_equal(uswap_advise(s.u, s.mem + p * PAGE, PAGE, USWAP_ADV_UNPIN), 0);
		} else if (op < 95 && !with_corruption) {
			/* lazy free of a few pages: they may read as zeros from
			 * now on, until written */
			size_t n = 1 + (size_t)rng_below(&r, 2 * fpages);

			if (p + n > s.pages)
				n = s.pages - p;
			assert_int_equal(uswap_advise(s.u, s.mem + p * PAGE, n * PAGE, USWAP_ADV_FREE),
					 0);
			memset(s.lazy + p, 1, n);
		} else {
			sim_read(&s, p);
		}
		sim_check(&s);
	}
	{
		struct sim_inject none = { 0 };

		sim_os_inject(&none);
	}
	{
		uint64_t in = 0, out = 0;

		uswap_stat(s.u, "swapin_partial", &in);
		uswap_stat(s.u, "swapout_partial", &out);
		fprintf(stderr, "# %u steps, %llu corruptions detected, %llu pages swapped in alone, "
				"%llu partial folios swapped out\n", steps,
			(unsigned long long)corruptions, (unsigned long long)in,
			(unsigned long long)out);
		if (sim_slot_space) {
			struct slotmap_stats st;

			slotmap_stats(s.u->slots, &st);
			fprintf(stderr, "# slot runs refused: order 0 %llu, 1 %llu, 2 %llu, 3 %llu, "
					"4 %llu; order-0 runs in split runs %llu\n",
				(unsigned long long)st.alloc_fail[0], (unsigned long long)st.alloc_fail[1],
				(unsigned long long)st.alloc_fail[2], (unsigned long long)st.alloc_fail[3],
				(unsigned long long)st.alloc_fail[4], (unsigned long long)st.frag_allocs);
			/* or the packed runs of partial folios never fell back */
			if (!st.alloc_fail[1] && !st.alloc_fail[2] && !st.alloc_fail[3])
				fail_msg("no run of order 1 to 3 was ever refused");
		}
		/* the sequences must reach partly swapped-in folios, or they
		 * prove nothing about them */
		if (s.adaptive && s.u->p.folio_size > PAGE && (!in || !out))
			fail_msg("adaptive swap-in never ran: %llu pages in alone, %llu partial "
				 "swap-outs", (unsigned long long)in, (unsigned long long)out);
	}
	sim_close(&s);
}

static void test_random_default(void **state)
{
	(void)state;
	run_random(1, (struct uswap_config){ .limit = 8 * 65536 }, 64 * 65536, 20000, false);
}

static void test_random_small_folios_zstd(void **state)
{
	(void)state;
	run_random(2, (struct uswap_config){ .limit = 16 * 16384, .folio_size = 16384,
					      .codec = "zstd" },
		   128 * 16384, 20000, false);
}

static void test_random_store_full(void **state)
{
	(void)state;
	run_random(3, (struct uswap_config){ .limit = 8 * 65536, .store_limit = 256 << 10 },
		   64 * 65536, 20000, false);
}

static void test_random_corruption_detected(void **state)
{
	(void)state;
	run_random(4, (struct uswap_config){ .limit = 8 * 65536, .codec = "none" }, 32 * 65536,
		   10000, true);
}

/* A slot space of 3 clusters for 1024 pages: runs of every order (whole
 * folios, packed partial folios of 2^m pages) compete for clusters, and
 * the page-by-page fallbacks run. */
static void test_random_tight_slots(void **state)
{
	uint64_t seed;

	(void)state;
	sim_slot_space = 3 * SLOT_CLUSTER;
	for (seed = 40; seed < 44; seed++)
		run_random(seed, (struct uswap_config){ .limit = 8 * 65536 }, 64 * 65536, 10000,
			   false);
	run_random(44, (struct uswap_config){ .limit = 8 * 65536, .codec = "none" }, 64 * 65536,
		   10000, true);
	sim_slot_space = 0;
}

/* The same random sequences with whole-folio swap-in only. */
static void test_random_no_adapt(void **state)
{
	(void)state;
	run_random(6, (struct uswap_config){ .limit = 8 * 65536, .flags = USWAP_CFG_NO_ADAPT },
		   64 * 65536, 20000, false);
}

static void test_random_corruption_no_adapt(void **state)
{
	(void)state;
	run_random(4, (struct uswap_config){ .limit = 8 * 65536, .codec = "none",
					      .flags = USWAP_CFG_NO_ADAPT },
		   32 * 65536, 10000, true);
}

static uint64_t sim_stat(struct sim *s, const char *name)
{
	uint64_t v = 0;

	assert_int_equal(uswap_stat(s->u, name, &v), 0);
	return v;
}

static unsigned folio_mapped_pages(struct sim *s, size_t f)
{
	unsigned i, n = 0;

	for (i = 0; i < 16; i++)
		n += sim_os_page(s->mem + (f * 16 + i) * PAGE) != SIM_ABSENT;
	return n;
}

/*
 * Adaptive swap-in, step by step: faults far apart bring in single pages
 * (the folio becomes PARTIAL, its other pages stay stored and unmapped);
 * evicting a partial folio stores its mapped pages alone and keeps the
 * rest; sequential faults bring whole folios again and complete partial
 * ones; WILLNEED completes a partial folio.  Every read is checked against
 * the shadow, every invariant after every step.
 */
static void test_adaptive_swapin(void **state)
{
	struct uswap_config cfg = { .folio_size = 65536 };
	const size_t nfolios = 64;
	struct sim s;
	struct rng r;
	size_t p, f, k;
	uint64_t partial0, v;
	struct pagetable *pt;

	(void)state;
	rng_seed(&r, 8);
	sim_open(&s, &cfg, nfolios * 65536);
	pt = &s.u->regions.v[0]->pt;
	for (p = 0; p < s.pages; p++)
		sim_write(&s, p, &r);
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	sim_check(&s);

	/* faults 37 folios apart: random after a dozen (the detector leans
	 * to sequential: the fill was); then each brings one page */
	for (k = 0; k < 16; k++)
		sim_read(&s, ((k * 37) % nfolios) * 16 + 3);
	sim_check(&s);
	partial0 = sim_stat(&s, "swapin_partial");
	assert_true(partial0 >= 1);
	for (k = 16; k < 40; k++) {
		size_t prev = ((k - 1) * 37) % nfolios;

		f = (k * 37) % nfolios;
		if (folio_state_of(folio_word_load(pt, (uint32_t)f)) == FOLIO_OUT) {
			v = sim_stat(&s, "swapin_partial");
			sim_read(&s, f * 16 + 5);
			assert_int_equal(sim_stat(&s, "swapin_partial"), v + 1);
			assert_true(folio_word_load(pt, (uint32_t)f) & FOLIO_PARTIAL);
			assert_int_equal(folio_mapped_pages(&s, f), 1);
		}
		/* a second page of the previous folio (far away): one more
		 * page, still partial */
		if (folio_mapped_pages(&s, prev) == 1) {
			sim_write(&s, prev * 16 + 9, &r);
			assert_int_equal(folio_mapped_pages(&s, prev), 2);
			assert_true(folio_word_load(pt, (uint32_t)prev) & FOLIO_PARTIAL);
		}
		sim_check(&s);
	}

	/* evict everything: partial folios go out page by page, keeping the
	 * pages that never came in */
	v = sim_stat(&s, "swapout_partial");
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	assert_true(sim_stat(&s, "swapout_partial") > v);
	sim_check(&s);

	/* WILLNEED on one partial folio completes it */
	f = (10 * 37) % nfolios;
	sim_read(&s, f * 16 + 1);
	sim_read(&s, ((f + 20) % nfolios) * 16 + 7);
	if (folio_word_load(pt, (uint32_t)f) & FOLIO_PARTIAL) {
		assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_WILLNEED), 0);
		assert_false(folio_word_load(pt, (uint32_t)f) & FOLIO_PARTIAL);
		assert_int_equal(folio_mapped_pages(&s, f), 16);
	}
	sim_check(&s);

	/* sequential reads: the region turns sequential, folios come whole */
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	v = sim_stat(&s, "faults");
	for (p = 0; p < s.pages; p++) {
		sim_read(&s, p);
		if (p % 64 == 0)
			sim_check(&s);
	}
	/* one fault per folio, but for the few the detector took to turn
	 * (each of those brings one page, then the rest with one more) */
	assert_true(sim_stat(&s, "faults") - v <= nfolios + 8);
	for (f = 8; f < nfolios; f++)
		assert_int_equal(folio_mapped_pages(&s, f), 16);
	sim_close(&s);
}

/* Read pages 37 folios apart until the region's faults look random and
 * folio f comes in with page p of it alone (RESIDENT|PARTIAL). */
static void make_partial(struct sim *s, struct rng *r, size_t nfolios, size_t f, unsigned p)
{
	struct pagetable *pt = &s->u->regions.v[0]->pt;
	size_t k;

	(void)r;
	for (k = 1; k < 12; k++) {
		size_t g = (f + k * 37) % nfolios;

		if (folio_state_of(folio_word_load(pt, (uint32_t)g)) == FOLIO_OUT)
			sim_read(s, g * 16 + k % 16);
	}
	sim_read(s, f * 16 + p);
	assert_true(folio_word_load(pt, (uint32_t)f) & FOLIO_PARTIAL);
	assert_int_equal(folio_mapped_pages(s, f), 1);
}

static uint64_t pm_word(struct sim *s, size_t p)
{
	uint64_t w;

	assert_int_equal(uswap_pagemap(s->u, s->mem + p * PAGE, 1, &w), 0);
	return w;
}

/*
 * A partly swapped-in folio under lazy free, the program's own madvise and
 * the pagemap query: lazy free drops the stored pages it covers (they read
 * zero, never stale data) and marks the mapped ones; eviction discards the
 * marked pages and stores the others page by page; a remove event that
 * drops every page still out leaves a plain resident folio; pagemap says
 * page by page what is present, swapped or zero, at order 0.
 */
static void test_partial_lazyfree_events_pagemap(void **state)
{
	struct uswap_config cfg = { .folio_size = 65536 };
	const size_t nfolios = 64, f = 10, g = 20;
	struct pagetable *pt;
	struct sim s;
	struct rng r;
	uint64_t v, w;
	size_t p;

	(void)state;
	rng_seed(&r, 10);
	sim_open(&s, &cfg, nfolios * 65536);
	pt = &s.u->regions.v[0]->pt;
	for (p = 0; p < s.pages; p++)
		sim_write(&s, p, &r);
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	make_partial(&s, &r, nfolios, f, 3);
	sim_check(&s);

	/* pagemap: page 3 present, the others swapped (or zero), order 0 */
	for (p = f * 16; p < f * 16 + 16; p++) {
		w = pm_word(&s, p);
		assert_int_equal(USWAP_PM_ORDER(w), 0);
		if (p == f * 16 + 3)
			assert_int_equal(w & (USWAP_PM_PRESENT | USWAP_PM_SWAPPED | USWAP_PM_ZERO),
					 USWAP_PM_PRESENT);
		else
			assert_true(!(w & USWAP_PM_PRESENT) &&
				    (w & (USWAP_PM_SWAPPED | USWAP_PM_ZERO)));
	}

	/* lazy free of pages 0..7: 3 is marked, the stored ones are freed
	 * (slots and bits gone) and marked; 8..15 stay out: still PARTIAL */
	v = sim_stat(&s, "orig_bytes");
	for (p = f * 16; p < f * 16 + 8; p++)
		v -= (pm_word(&s, p) & USWAP_PM_SWAPPED) ? PAGE : 0;
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 8 * PAGE, USWAP_ADV_FREE), 0);
	memset(s.lazy + f * 16, 1, 8);
	assert_int_equal(sim_stat(&s, "orig_bytes"), v);
	assert_true(folio_word_load(pt, (uint32_t)f) & FOLIO_PARTIAL);
	for (p = f * 16; p < f * 16 + 8; p++)
		assert_int_equal(pm_word(&s, p) & (USWAP_PM_PRESENT | USWAP_PM_LAZYFREE |
						   USWAP_PM_SWAPPED | USWAP_PM_ZERO),
				 USWAP_PM_PRESENT | USWAP_PM_LAZYFREE);
	sim_check(&s);
	/* evict: the mapped page is lazily freed, so discarded (a zero bit),
	 * every marker counted; the freed pages read zero (nothing kept), the
	 * pages never brought in keep their slots and zero bits */
	v = sim_stat(&s, "lazyfree_discard");
	w = sim_stat(&s, "swapout_partial");
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(folio_state_of(folio_word_load(pt, (uint32_t)f)), FOLIO_OUT);
	assert_int_equal(sim_stat(&s, "swapout_partial"), w + 1);
	assert_int_equal(sim_stat(&s, "lazyfree_discard"), v + 8);
	assert_int_equal(sim_stat(&s, "lazyfree_pages"), 0);
	assert_int_equal(pm_word(&s, f * 16 + 3), USWAP_PM_ZERO);
	for (p = f * 16; p < f * 16 + 8; p++)
		if (p != f * 16 + 3)
			assert_int_equal(pm_word(&s, p), 0);
	for (p = f * 16 + 8; p < f * 16 + 16; p++)
		assert_true(pm_word(&s, p) & (USWAP_PM_SWAPPED | USWAP_PM_ZERO));
	sim_check(&s);
	for (p = f * 16; p < f * 16 + 16; p++)
		sim_read(&s, p);
	sim_check(&s);

	/* the program's MADV_DONTNEED over every page still out of a partial
	 * folio: they read zero, and the folio is a plain resident one */
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	make_partial(&s, &r, nfolios, g, 0);
	sim_os_drop(s.mem + (g * 16 + 1) * PAGE, 15 * PAGE);
	events_drop(s.u, s.shard, (uint64_t)(uintptr_t)(s.mem + (g * 16 + 1) * PAGE),
		    (uint64_t)(uintptr_t)(s.mem + (g * 16 + 16) * PAGE), false);
	memset(s.shadow + (g * 16 + 1) * PAGE, 0, 15 * PAGE);
	w = folio_word_load(pt, (uint32_t)g);
	assert_int_equal(folio_state_of(w), FOLIO_RESIDENT);
	assert_false(w & FOLIO_PARTIAL);
	sim_check(&s);
	for (p = g * 16; p < g * 16 + 16; p++)
		sim_read(&s, p);
	sim_check(&s);
	sim_close(&s);
}

/* With USWAP_CFG_NO_ADAPT, random faults still bring whole folios. */
static void test_no_adapt_whole_folios(void **state)
{
	struct uswap_config cfg = { .folio_size = 65536, .flags = USWAP_CFG_NO_ADAPT };
	struct sim s;
	struct rng r;
	size_t p, k;

	(void)state;
	rng_seed(&r, 9);
	sim_open(&s, &cfg, 64 * 65536);
	for (p = 0; p < s.pages; p++)
		sim_write(&s, p, &r);
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	for (k = 0; k < 32; k++) {
		size_t f = (k * 37) % 64;

		sim_read(&s, f * 16 + 3);
		assert_int_equal(folio_mapped_pages(&s, f), 16);
	}
	assert_int_equal(sim_stat(&s, "swapin_partial"), 0);
	sim_close(&s);
}

/*
 * The pages a partly resident folio holds go out together: one store
 * object, one run of 2^m slots in which the j-th page takes slot first + j
 * (not its place in the folio), the folio's other pages untouched in their
 * old run; every page reads back right, alone (random access) and with
 * the whole folio.
 */
static void test_partial_evicts_as_one_blob(void **state)
{
	struct uswap_config cfg = { .folio_size = 65536 };
	const size_t nfolios = 64, f = 10;
	const unsigned in[3] = { 3, 7, 12 };
	struct pagetable *pt;
	slot_t first[3];
	struct sim s;
	struct rng r;
	uint64_t objects;
	size_t p;
	unsigned i, order;

	(void)state;
	rng_seed(&r, 12);
	sim_open(&s, &cfg, nfolios * 65536);
	pt = &s.u->regions.v[0]->pt;
	for (p = 0; p < s.pages; p++)
		sim_write(&s, p, &r);
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	make_partial(&s, &r, nfolios, f, in[0]);
	for (i = 1; i < 3; i++) {
		sim_read(&s, ((f + 5 * i) % nfolios) * 16 + i); /* far away: still random */
		sim_read(&s, f * 16 + in[i]);
	}
	assert_true(folio_word_load(pt, (uint32_t)f) & FOLIO_PARTIAL);
	assert_int_equal(folio_mapped_pages(&s, f), 3);
	/* written since: the stored copies must not come back */
	for (i = 0; i < 3; i++)
		sim_write(&s, f * 16 + in[i], &r);
	sim_check(&s);

	objects = sim_stat(&s, "store_objects");
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(folio_state_of(folio_word_load(pt, (uint32_t)f)), FOLIO_OUT);
	assert_int_equal(sim_stat(&s, "store_objects"), objects + 1);
	for (i = 0; i < 3; i++) {
		page_entry_t e = pt->entry[f * 16 + in[i]];
		store_handle_t h;

		assert_true(entry_has_slot(e));
		assert_int_equal(slot_run(s.u->slots, entry_slot(e), &h, &first[i], &order), 0);
		assert_int_equal(order, 2); /* 3 pages, padded to 4 */
		assert_int_equal(first[i].v, first[0].v);
		assert_int_equal(entry_slot(e).v, first[0].v + i);
	}
	sim_check(&s);
	/* one page alone (far-apart reads first: the region looks random),
	 * then the folio whole after a page-out of everything, read in order */
	for (i = 1; i < 8; i++)
		if (folio_state_of(folio_word_load(pt, (uint32_t)((f + 7 * i) % nfolios))) ==
		    FOLIO_OUT)
			sim_read(&s, ((f + 7 * i) % nfolios) * 16 + i);
	sim_read(&s, f * 16 + in[1]);
	assert_int_equal(folio_mapped_pages(&s, f), 1);
	sim_check(&s);
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_WILLNEED), 0);
	assert_int_equal(folio_mapped_pages(&s, f), 16);
	for (p = 0; p < s.pages; p++)
		sim_read(&s, p);
	sim_check(&s);
	sim_close(&s);
}

/* The store's gets, counted (the ram store counts none of its own). */
static const struct store_ops *counted_ops;
static uint64_t counted_gets;

static int counted_get(struct store *st, store_handle_t h, store_visit_fn fn, void *arg)
{
	counted_gets++;
	return counted_ops->get(st, h, fn, arg);
}

/*
 * A folio whose pages lie in interleaved runs (pages 1, 3, 5 packed in one
 * run by a partial eviction, the others still in the folio's old run)
 * comes back with one store read per run, whole (decode_fallback) or as
 * the completion of a partial folio (folio_swap_in_pages), not one per
 * change of run.
 */
static void test_interleaved_runs_read_once(void **state)
{
	struct uswap_config cfg = { .folio_size = 65536 };
	const size_t nfolios = 64, f = 20;
	const unsigned in[3] = { 1, 3, 5 };
	struct pagetable *pt;
	struct sim s;
	struct rng r;
	uint64_t reads;
	size_t p;
	unsigned i;

	static struct store_ops ops;

	(void)state;
	rng_seed(&r, 13);
	sim_open(&s, &cfg, nfolios * 65536);
	counted_ops = s.u->p.store_ops;
	ops = *counted_ops;
	ops.get = counted_get;
	s.u->p.store_ops = &ops;
	pt = &s.u->regions.v[0]->pt;
	for (p = 0; p < s.pages; p++)
		sim_write(&s, p, &r);
	for (p = f * 16; p < (f + 1) * 16; p++) {
		/* data pages only: no zero or same-filled page leaves the runs */
		pagegen_fill(s.shadow + p * PAGE, 5, p, rng_next(&r));
		memcpy(s.mem + p * PAGE, s.shadow + p * PAGE, PAGE);
	}
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	make_partial(&s, &r, nfolios, f, in[0]);
	for (i = 1; i < 3; i++) {
		sim_read(&s, ((f + 5 * i) % nfolios) * 16 + i); /* far away: still random */
		sim_read(&s, f * 16 + in[i]);
	}
	assert_int_equal(folio_mapped_pages(&s, f), 3);
	for (i = 0; i < 3; i++) {
		/* written since (data again): the old copies must not come back */
		p = f * 16 + in[i];
		pagegen_fill(s.shadow + p * PAGE, 5, p, rng_next(&r));
		sim_touch(&s, p, true);
		assert_false(sim_os_wp(s.mem + p * PAGE));
		sim_os_cow(s.mem + p * PAGE);
		memcpy(s.mem + p * PAGE, s.shadow + p * PAGE, PAGE);
	}
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(folio_state_of(folio_word_load(pt, (uint32_t)f)), FOLIO_OUT);
	sim_check(&s);

	/* whole: 2 runs, 2 reads */
	reads = counted_gets;
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_WILLNEED), 0);
	assert_int_equal(counted_gets - reads, 2);
	for (p = f * 16; p < (f + 1) * 16; p++)
		sim_read(&s, p);
	sim_check(&s);

	/* the same layout again, then the completion of a partial folio */
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_PAGEOUT), 0);
	for (i = 1; i < 12; i++)
		if (folio_state_of(folio_word_load(pt, (uint32_t)((f + 7 * i) % nfolios))) ==
		    FOLIO_OUT)
			sim_read(&s, ((f + 7 * i) % nfolios) * 16 + i);
	sim_read(&s, f * 16 + 9);
	assert_true(folio_word_load(pt, (uint32_t)f) & FOLIO_PARTIAL);
	assert_int_equal(folio_mapped_pages(&s, f), 1);
	reads = counted_gets;
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_WILLNEED), 0);
	assert_int_equal(folio_mapped_pages(&s, f), 16);
	assert_int_equal(counted_gets - reads, 2);
	for (p = 0; p < s.pages; p++)
		sim_read(&s, p);
	sim_check(&s);
	sim_close(&s);
}

/*
 * A corrupted packed run (pages 1, 3, 5 of a folio whose other pages are
 * in its old run): only the pages whose data is in it are poisoned, by
 * sequential and random faults alike; the others read right.
 */
static void test_packed_run_corrupt(void **state)
{
	struct uswap_config cfg = { .folio_size = 65536, .codec = "none" };
	const size_t nfolios = 64, f = 20;
	const unsigned in[3] = { 1, 3, 5 };
	struct pagetable *pt;
	struct sim s;
	struct rng r;
	store_handle_t h;
	slot_t first;
	unsigned i, order;
	size_t p;

	(void)state;
	rng_seed(&r, 14);
	sim_open(&s, &cfg, nfolios * 65536);
	pt = &s.u->regions.v[0]->pt;
	for (p = 0; p < s.pages; p++)
		sim_write(&s, p, &r);
	for (p = f * 16; p < (f + 1) * 16; p++) {
		pagegen_fill(s.shadow + p * PAGE, 5, p, rng_next(&r));
		memcpy(s.mem + p * PAGE, s.shadow + p * PAGE, PAGE);
	}
	assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
	make_partial(&s, &r, nfolios, f, in[0]);
	for (i = 1; i < 3; i++) {
		sim_read(&s, ((f + 5 * i) % nfolios) * 16 + i);
		sim_read(&s, f * 16 + in[i]);
	}
	for (i = 0; i < 3; i++) {
		p = f * 16 + in[i];
		pagegen_fill(s.shadow + p * PAGE, 5, p, rng_next(&r));
		sim_touch(&s, p, true);
		sim_os_cow(s.mem + p * PAGE);
		memcpy(s.mem + p * PAGE, s.shadow + p * PAGE, PAGE);
	}
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(slot_run(s.u->slots, entry_slot(pt->entry[f * 16 + in[1]]), &h, &first,
				  &order), 0);
	assert_int_equal(order, 2);
	assert_int_equal(s.u->p.store_ops->get(s.u->store, h, corrupt_visit, NULL), 0);
	for (i = 0; i < 3; i++)
		s.poisoned[f * 16 + in[i]] = 1;
	/* sequential first (the folio whole fails: page 0 comes alone), then
	 * every page in an order that mixes both runs */
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_WILLNEED), -EILSEQ);
	for (p = f * 16; p < (f + 1) * 16; p++) {
		sim_read(&s, p);
		if (s.poisoned[p])
			assert_int_equal(sim_os_page(s.mem + p * PAGE), SIM_POISONED);
		else
			assert_int_not_equal(sim_os_page(s.mem + p * PAGE), SIM_POISONED);
		sim_check(&s);
	}
	for (i = 0; i < 3; i++)
		assert_true(s.poisoned[f * 16 + in[i]]);
	/* evicted again: the poisoned pages keep their (corrupt) slots */
	assert_int_equal(uswap_advise(s.u, s.mem + f * 65536, 65536, USWAP_ADV_PAGEOUT), 0);
	sim_check(&s);
	for (p = f * 16; p < (f + 1) * 16; p++)
		if (!s.poisoned[p])
			sim_read(&s, p);
	sim_check(&s);
	/* the program drops the folio: nothing is poisoned any more */
	sim_os_drop(s.mem + f * 65536, 65536);
	events_drop(s.u, s.shard, (uint64_t)(uintptr_t)(s.mem + f * 65536),
		    (uint64_t)(uintptr_t)(s.mem + (f + 1) * 65536), false);
	memset(s.shadow + f * 65536, 0, 65536);
	memset(s.poisoned + f * 16, 0, 16);
	sim_check(&s);
	sim_close(&s);
}

/*
 * Packed blobs stay small: a partly resident folio of 32 pages holding 17
 * goes out page by page (a random fault on a packed page decodes its blob
 * up to it), one holding 16 as one blob.
 */
static void test_packed_blob_at_most_16_pages(void **state)
{
	struct uswap_config cfg = { .folio_size = 131072 };
	const size_t nfolios = 128, fpages = 32;
	struct pagetable *pt;
	struct sim s;
	struct rng r;
	size_t p, f;
	unsigned n, i;

	(void)state;
	rng_seed(&r, 13);
	sim_open(&s, &cfg, nfolios * 131072);
	pt = &s.u->regions.v[0]->pt;
	for (p = 0; p < s.pages; p++)
		sim_write(&s, p, &r);
	for (n = 16, f = 10; n <= 17; n++, f += 20) {
		uint64_t objects, zeros, mapped = 0;

		/* n pages of folio f, one at a time, after and between reads
		 * far apart (the region's faults look random) */
		assert_int_equal(uswap_advise(s.u, s.mem, s.len, USWAP_ADV_PAGEOUT), 0);
		for (i = 1; i < 12; i++)
			sim_read(&s, ((f + 37 * i) % nfolios) * fpages + i);
		for (i = 0; i < n; i++) {
			sim_read(&s, ((f + 3 + 5 * i) % nfolios) * fpages + i % fpages);
			sim_read(&s, f * fpages + (7 * i) % fpages);
		}
		for (p = f * fpages; p < (f + 1) * fpages; p++)
			mapped += sim_os_page(s.mem + p * PAGE) != SIM_ABSENT;
		if (!(folio_word_load(pt, (uint32_t)f) & FOLIO_PARTIAL) || mapped != n)
			fail_msg("n %u: folio %zu word 0x%x, %llu pages mapped", n, f,
				 folio_word_load(pt, (uint32_t)f), (unsigned long long)mapped);
		objects = sim_stat(&s, "store_objects");
		zeros = sim_stat(&s, "zero_pages_out");
		assert_int_equal(uswap_advise(s.u, s.mem + f * 131072, 131072, USWAP_ADV_PAGEOUT),
				 0);
		/* page by page: an object per page that is not zero */
		zeros = sim_stat(&s, "zero_pages_out") - zeros;
		assert_int_equal(sim_stat(&s, "store_objects"), objects + (n <= 16 ? 1 : n - zeros));
		sim_check(&s);
	}
	for (p = 0; p < s.pages; p++)
		sim_read(&s, p);
	sim_check(&s);
	sim_close(&s);
}

/* No contiguous run to be had: the folio is stored page by page. */
/* The state of folios [f, f + n): all OUT or all RESIDENT. */
static void assert_folios(struct sim *s, uint32_t f, uint32_t n, enum folio_state st)
{
	struct pagetable *pt = &s->u->regions.v[0]->pt;
	uint32_t i;

	for (i = f; i < f + n; i++)
		if (folio_state_of(folio_word_load(pt, i)) != st)
			fail_msg("folio %u: state %d, expected %d", i,
				 folio_state_of(folio_word_load(pt, i)), st);
}

/* reclaim_some(max), which must evict; @return the UFFDIO_MOVE calls it
 * made, and in *pages the pages they moved. */
static uint64_t reclaim_moves(struct sim *s, unsigned max, uint64_t *pages)
{
	struct sim_os_stats a, b;

	sim_os_stats(&a);
	assert_int_equal(reclaim_some(s->u, s->ctx, CTR_reclaim_background, max), 0);
	sim_os_stats(&b);
	if (pages)
		*pages = b.moves - a.moves;
	return b.move_calls - a.move_calls;
}

/*
 * Consecutive cold folios leave with one UFFDIO_MOVE (folios_evict): the
 * clock's victim and those the hand would pick next, never one it would
 * pass over (a referenced folio ends the batch), never more than asked
 * for; a move that stops part-way (a hole the program made, a kernel that
 * reports less than it moved) leaves each folio to go on alone, and every
 * page reads what it held.
 */
static void test_consecutive_victims_move_together(void **state)
{
	struct uswap_config cfg = { .folio_size = 65536 };
	struct pagetable *pt;
	struct sim_inject in = { 0 };
	struct sim s;
	struct rng r;
	uint64_t moved;
	size_t p;

	(void)state;
	rng_seed(&r, 21);
	sim_open(&s, &cfg, 32 * 65536);
	pt = &s.u->regions.v[0]->pt;
	for (p = 0; p < s.pages; p++)
		sim_write(&s, p, &r);

	/* the first turn clears every REFERENCED bit, then folio 0 and the
	 * seven after it go, with one move */
	assert_int_equal(reclaim_moves(&s, 8, &moved), 1);
	assert_int_equal(moved, 8 * 16);
	assert_folios(&s, 0, 8, FOLIO_OUT);
	assert_folios(&s, 8, 24, FOLIO_RESIDENT);
	assert_int_equal(sim_stat(&s, "reclaim_background"), 8);
	sim_check(&s);

	/* a folio faulted since (REFERENCED) ends the batch: 8, 9, 10 go */
	folio_flags_set(pt, 11, FOLIO_REFERENCED);
	assert_int_equal(reclaim_moves(&s, 8, NULL), 1);
	assert_folios(&s, 8, 3, FOLIO_OUT);
	assert_folios(&s, 11, 21, FOLIO_RESIDENT);
	sim_check(&s);

	/* no more than asked for: the hand passed 11 (its second chance), so
	 * 12 and 13 go */
	assert_int_equal(reclaim_some(s.u, s.ctx, CTR_reclaim_background, 2), 0);
	assert_folios(&s, 11, 1, FOLIO_RESIDENT);
	assert_folios(&s, 12, 2, FOLIO_OUT);
	assert_folios(&s, 14, 18, FOLIO_RESIDENT);

	/* the program dropped page 3 of folio 15 (a hole: the move stops
	 * there), and the kernel reports a page less than it moved */
	sim_os_drop(s.mem + (15 * 16 + 3) * PAGE, PAGE);
	events_drop(s.u, s.shard, (uint64_t)(uintptr_t)(s.mem + (15 * 16 + 3) * PAGE),
		    (uint64_t)(uintptr_t)(s.mem + (15 * 16 + 4) * PAGE), false);
	memset(s.shadow + (15 * 16 + 3) * PAGE, 0, PAGE);
	in.move_underreport_in = 1;
	sim_os_inject(&in);
	assert_true(reclaim_moves(&s, 8, NULL) > 1);
	assert_folios(&s, 14, 8, FOLIO_OUT);
	assert_int_equal(sim_stat(&s, "reclaim_background"), 8 + 3 + 2 + 8);
	sim_check(&s);

	for (p = 0; p < s.pages; p++)
		sim_read(&s, p);
	sim_check(&s);
	sim_close(&s);
}

static void test_order0_fallback(void **state)
{
	struct uswap_config cfg = { .folio_size = 65536 };
	struct slotmap *small;
	struct sim s;
	uint64_t v;
	size_t p;
	struct rng r;

	(void)state;
	rng_seed(&r, 5);
	sim_open(&s, &cfg, 64 * 65536);
	/* a slot space of one cluster, made to hold single slots only */
	slotmap_destroy(s.u->slots);
	assert_int_equal(slotmap_create(SLOT_CLUSTER, &small), 0);
	s.u->slots = small;
	{
		slot_t one;

		/* occupy an order-0 slot so the only cluster serves order 0 */
		assert_int_equal(slot_alloc(small, 0, (store_handle_t){ 1 }, &one), 0);
		for (p = 0; p < 16; p++)
			sim_write(&s, p, &r);
		assert_int_equal(uswap_advise(s.u, s.mem, 65536, USWAP_ADV_PAGEOUT), 0);
		assert_int_equal(uswap_stat(s.u, "swapout_fallback", &v), 0);
		assert_int_equal(v, 1);
		for (p = 0; p < 16; p++)
			sim_read(&s, p);
		assert_int_equal(uswap_stat(s.u, "swapin_fallback", &v), 0);
		assert_int_equal(v, 1);
		assert_int_equal(uswap_stat(s.u, "swapin_fallback_split", &v), 0);
		assert_int_equal(v, 1);
		{
			store_handle_t freed;

			/* the test's own slot is not the store's: give it back first */
			assert_int_equal(slot_put(small, one, &freed), 1);
		}
		sim_check(&s);
	}
	sim_close(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_default),
		cmocka_unit_test(test_random_small_folios_zstd),
		cmocka_unit_test(test_random_store_full),
		cmocka_unit_test(test_random_corruption_detected),
		cmocka_unit_test(test_order0_fallback),
		cmocka_unit_test(test_consecutive_victims_move_together),
		cmocka_unit_test(test_random_no_adapt),
		cmocka_unit_test(test_random_corruption_no_adapt),
		cmocka_unit_test(test_adaptive_swapin),
		cmocka_unit_test(test_no_adapt_whole_folios),
		cmocka_unit_test(test_partial_lazyfree_events_pagemap),
		cmocka_unit_test(test_partial_evicts_as_one_blob),
		cmocka_unit_test(test_packed_blob_at_most_16_pages),
		cmocka_unit_test(test_random_tight_slots),
		cmocka_unit_test(test_interleaved_runs_read_once),
		cmocka_unit_test(test_packed_run_corrupt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

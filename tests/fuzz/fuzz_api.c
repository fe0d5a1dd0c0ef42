/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: sequences of API calls (map, unmap, reads and writes of
 * managed memory, every advice, stats, reclaim, pages dropped by the
 * program) against a reference model, on the simulation (tests/sim: the
 * real runtime on a fake userfaultfd), one instance per input.
 *
 * The model knows each page's bytes, which regions exist and which folios
 * are pinned.  It knows nothing of how uswap swaps them in: whole folios,
 * or single pages when a region's faults look random (adaptive swap-in,
 * off in some inputs), are the same bytes to it; scattered reads (op 9)
 * make random faults likely.  Idle recompression (on in some inputs) stores
 * folios anew between the calls (op 7): the same bytes again.  uswap_pagemap is checked against the fake
 * kernel's page presence, not against the page table it is read from.  After every call: each return value is the one the model
 * expects (a refusal with a message), and every invariant holds (folio
 * states vs page presence, page entries vs slot map vs store, resident
 * accounting); at the end every byte is read back and closing frees every
 * stored object.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_os.h"
#include "os/os.h"
#include "runtime/instance.h"
#include "uswap.h"

#define PAGE 4096ul
#define MAX_REGIONS 3
#define MAX_OPS 200

struct model_region {
	char *mem;
	size_t len, pages;
	uint8_t *shadow;
	uint8_t *pinned; /* per folio */
	uint8_t *lazy;   /* per page: lazily freed, not written since: reads
			    as its shadow or as zeros */
};

struct run {
	uswap_t *u;
	struct folio_ctx *ctx;
	unsigned shard;
	size_t fpages;
	bool limited, store_limited;
	struct model_region r[MAX_REGIONS];
	const uint8_t *in;
	size_t left;
};

static void fail(const char *what, long a, long b)
{
	fprintf(stderr, "fuzz_api: %s (%ld, %ld): %s\n", what, a, b, uswap_last_error());
	abort();
}

static unsigned next(struct run *x)
{
	if (!x->left)
		return 0;
	x->left--;
	return *x->in++;
}

static void touch(struct run *x, char *page, bool write)
{
	if (sim_os_page(page) != SIM_ABSENT)
		return;
	regions_read_lock(&x->u->regions, x->shard);
	if (fault_resolve(x->u, x->ctx, (uint64_t)(uintptr_t)page, write))
		fail("a fault failed", (long)(uintptr_t)page, 0);
	regions_read_unlock(&x->u->regions, x->shard);
}

static void page_read(struct run *x, struct model_region *m, size_t p)
{
	char *page = m->mem + p * PAGE;

	touch(x, page, false);
	if (sim_os_page(page) == SIM_POISONED)
		fail("a page was poisoned", (long)p, 0);
	if (m->lazy[p] && memcmp(page, m->shadow + p * PAGE, PAGE)) {
		for (size_t i = 0; i < PAGE; i++)
			if (page[i])
				fail("a lazily freed page reads neither its data nor zeros", (long)p, 0);
		memset(m->shadow + p * PAGE, 0, PAGE); /* discarded: zeros from now on */
	}
	if (memcmp(page, m->shadow + p * PAGE, PAGE))
		fail("a page reads wrong", (long)p, (unsigned char)page[0]);
}

static void page_write(struct run *x, struct model_region *m, size_t p, unsigned v)
{
	char *page = m->mem + p * PAGE;
	uint8_t *want = m->shadow + p * PAGE;
	size_t i;

	switch (v % 4) {
	case 0: memset(want, 0, PAGE); break;
	case 1: memset(want, (int)v, PAGE); break;
	case 2: want[(v * 97) % PAGE] = (uint8_t)v; break;
	default:
		for (i = 0; i < PAGE; i++)
			want[i] = (uint8_t)((i * v) >> 5);
	}
	touch(x, page, true);
	if (sim_os_wp(page)) {
		regions_read_lock(&x->u->regions, x->shard);
		fault_resolve_wp(x->u, (uint64_t)(uintptr_t)page);
		regions_read_unlock(&x->u->regions, x->shard);
	}
	sim_os_cow(page);
	memcpy(page, want, PAGE);
	if (m->lazy[p]) {
		/* a write to a lazily freed page ends lazy free for its folio:
		 * the other pages keep what they hold now, for good */
		size_t q, f0 = p / x->fpages * x->fpages;

		m->lazy[p] = 0;
		for (q = f0; q < f0 + x->fpages; q++) {
			if (m->lazy[q])
				page_read(x, m, q);
			m->lazy[q] = 0;
		}
	}
}

/* uswap_pagemap of region m against the fake kernel: a mapped page is
 * PRESENT, a page that is not PRESENT is not mapped, a unit of order > 0 is
 * present or not as a whole, and no page is both SWAPPED and ZERO. */
static void check_pagemap(struct run *x, struct model_region *m)
{
	uint64_t *pm = malloc(sizeof(*pm) * m->pages);
	size_t p;

	if (!pm || uswap_pagemap(x->u, m->mem, m->pages, pm))
		fail("uswap_pagemap", (long)m->pages, 0);
	for (p = 0; p < m->pages; p++) {
		enum sim_page sp = sim_os_page(m->mem + p * PAGE);
		size_t q0 = p >> USWAP_PM_ORDER(pm[p]) << USWAP_PM_ORDER(pm[p]);

		if ((sp == SIM_PRESENT || sp == SIM_ZERO) && !(pm[p] & USWAP_PM_PRESENT))
			fail("pagemap: a mapped page is not present", (long)p, (long)pm[p]);
		if ((pm[p] & USWAP_PM_SWAPPED) && (pm[p] & USWAP_PM_ZERO))
			fail("pagemap: a page both swapped and zero", (long)p, (long)pm[p]);
		if (pm[p] && q0 < m->pages && ((pm[q0] ^ pm[p]) & USWAP_PM_PRESENT))
			fail("pagemap: a unit's pages disagree on presence", (long)p, (long)pm[p]);
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

static void check_invariants(struct run *x)
{
	struct uswap *u = x->u;
	uint64_t resident = 0, slots = 0;
	size_t i;

	for (i = 0; i < u->regions.n; i++) {
		struct region *r = u->regions.v[i];
		struct pagetable *pt = &r->pt;
		uint32_t f, p;

		for (f = 0; f < pt->nfolios; f++) {
			uint32_t w = folio_word_load(pt, f);

			if (w & FOLIO_LOCKED)
				fail("a folio left locked", (long)f, (long)w);
			if (folio_check(pt, f, u->slots))
				fail("folio_check", (long)f, (long)w);
			if (folio_state_of(w) == FOLIO_RESIDENT && !(w & FOLIO_UNCHARGED))
				resident += pages_counted(pt, f, w);
			for (p = f << pt->folio_order; p < (f + 1) << pt->folio_order; p++) {
				enum sim_page sp = sim_os_page(r->start + (size_t)p * PAGE);

				if (folio_state_of(w) != FOLIO_RESIDENT && sp != SIM_ABSENT)
					fail("a page mapped in a folio not resident", (long)p, (long)w);
				slots += entry_has_slot(pt->entry[p]);
			}
		}
	}
	for (i = 0; i < MAX_REGIONS; i++)
		if (x->r[i].mem)
			check_pagemap(x, &x->r[i]);
	if (instance_check(u))
		fail("instance_check", 0, 0);
	if (slotmap_check(u->slots))
		fail("slotmap_check", 0, 0);
	if (u->p.store_ops->check && u->p.store_ops->check(u->store))
		fail("store check", 0, 0);
	if (__atomic_load_n(&u->resident_pages, __ATOMIC_RELAXED) != resident)
		fail("resident accounting", (long)u->resident_pages, (long)resident);
	{
		uint64_t v;

		uswap_stat(u, "orig_bytes", &v);
		if (v != slots * PAGE)
			fail("orig_bytes vs slots", (long)v, (long)slots);
	}
}

static struct model_region *pick(struct run *x, unsigned b)
{
	struct model_region *m = &x->r[b % MAX_REGIONS];

	return m->mem ? m : NULL;
}

static void op_map(struct run *x)
{
	unsigned b = next(x), flags = next(x) % 16 == 0 ? 0x10 : 0;
	struct model_region *m = &x->r[b % MAX_REGIONS];
	size_t len = (1 + next(x) % 48) * PAGE;
	int rc;

	if (m->mem)
		return;
	rc = uswap_map(x->u, len, (int)flags, (void **)&m->mem);
	if (flags) {
		if (rc != -EINVAL || !uswap_last_error()[0])
			fail("uswap_map took unknown flags", (long)flags, rc);
		m->mem = NULL;
		return;
	}
	if (rc)
		fail("uswap_map", (long)len, rc);
	/* rounded up to whole folios */
	m->len = (len + x->fpages * PAGE - 1) / (x->fpages * PAGE) * (x->fpages * PAGE);
	m->pages = m->len / PAGE;
	m->shadow = calloc(1, m->len);
	m->pinned = calloc(m->pages / x->fpages, 1);
	m->lazy = calloc(m->pages, 1);
}

static void model_free(struct model_region *m)
{
	free(m->shadow);
	free(m->pinned);
	free(m->lazy);
	memset(m, 0, sizeof(*m));
}

static void op_unmap(struct run *x)
{
	struct model_region *m = pick(x, next(x));
	bool bogus = next(x) % 4 == 0;
	int rc;

	if (!m)
		return;
	rc = uswap_unmap(x->u, m->mem, bogus ? m->len + x->fpages * PAGE : m->len);
	if (bogus) {
		if (rc != -EINVAL || !uswap_last_error()[0])
			fail("uswap_unmap of a wrong length", (long)m->len, rc);
		return;
	}
	if (rc)
		fail("uswap_unmap", (long)m->len, rc);
	model_free(m);
}

static void op_advise(struct run *x)
{
	struct model_region *m = pick(x, next(x));
	unsigned advice = next(x) % 7, first, n;
	char outside[PAGE];
	bool fits;
	size_t f;
	int rc;

	if (!m)
		return;
	first = next(x) % m->pages;
	n = next(x) % (m->pages + 2);
	fits = first + n <= m->pages;
	if (next(x) % 16 == 0) {
		rc = uswap_advise(x->u, outside, PAGE, USWAP_ADV_PAGEOUT);
		if (rc != -EINVAL || !uswap_last_error()[0])
			fail("advice outside every region", rc, 0);
		return;
	}
	rc = uswap_advise(x->u, m->mem + (size_t)first * PAGE, (size_t)n * PAGE, (int)advice);
	if (advice < USWAP_ADV_PAGEOUT || advice > USWAP_ADV_FREE) {
		if (rc != -EINVAL || !uswap_last_error()[0])
			fail("unknown advice accepted", (long)advice, rc);
		return;
	}
	if (n == 0) {
		if (rc)
			fail("advice on an empty range", (long)advice, rc);
		return;
	}
	if (!fits) {
		if (rc != -EINVAL || !uswap_last_error()[0])
			fail("advice past the end of a region accepted", (long)advice, rc);
		return;
	}
	switch (advice) {
	case USWAP_ADV_PAGEOUT:
		if (rc && !(rc == -ENOSPC && x->store_limited))
			fail("PAGEOUT", rc, 0);
		/* pinned folios stay */
		regions_read_lock(&x->u->regions, x->shard);
		for (f = first / x->fpages; f <= (first + n - 1) / x->fpages; f++) {
			struct region *r = regions_find(&x->u->regions, (uintptr_t)m->mem);

			if (m->pinned[f] &&
			    folio_state_of(folio_word_load(&r->pt, (uint32_t)f)) != FOLIO_RESIDENT)
				fail("a pinned folio was paged out", (long)f, 0);
		}
		regions_read_unlock(&x->u->regions, x->shard);
		break;
	case USWAP_ADV_WILLNEED:
		if (rc)
			fail("WILLNEED", rc, 0);
		break;
	case USWAP_ADV_PIN:
		if (rc == -ENOMEM && x->limited && uswap_last_error()[0])
			break;
		if (rc)
			fail("PIN", rc, 0);
		for (f = first / x->fpages; f <= (first + n - 1) / x->fpages; f++)
			m->pinned[f] = 1;
		break;
	case USWAP_ADV_FREE:
		if (rc)
			fail("FREE", rc, 0);
		/* pinned folios ignore it */
		for (f = first; f < first + n; f++)
			if (!m->pinned[f / x->fpages])
				m->lazy[f] = 1;
		break;
	case USWAP_ADV_UNPIN:
		if (rc)
			fail("UNPIN", rc, 0);
		for (f = first / x->fpages; f <= (first + n - 1) / x->fpages; f++)
			m->pinned[f] = 0;
		break;
	}
}

static void op_stat(struct run *x)
{
	unsigned b = next(x), i;
	const char *name = uswap_stat_name(b);
	uint64_t v;
	char bogus[8] = "zz";

	if (name) {
		if (uswap_stat(x->u, name, &v))
			fail("a listed counter is unknown", (long)b, 0);
	} else {
		bogus[2] = (char)('a' + b % 26);
		if (uswap_stat(x->u, bogus, &v) != -ENOENT)
			fail("an unknown counter answered", (long)b, 0);
	}
	for (i = 0; uswap_stat_name(i); i++)
		;
	if (b >= i && name)
		fail("a counter past the end of the list", (long)b, (long)i);
}

static void op_drop(struct run *x)
{
	struct model_region *m = pick(x, next(x));
	size_t p, n;

	if (!m)
		return;
	p = next(x) % m->pages;
	n = 1 + next(x) % x->fpages;
	if (p + n > m->pages)
		n = m->pages - p;
	/* the program's MADV_DONTNEED: the kernel drops, the event follows */
	sim_os_drop(m->mem + p * PAGE, n * PAGE);
	events_drop(x->u, x->shard, (uint64_t)(uintptr_t)(m->mem + p * PAGE),
		    (uint64_t)(uintptr_t)(m->mem + (p + n) * PAGE), false);
	memset(m->shadow + p * PAGE, 0, n * PAGE);
	memset(m->lazy + p, 0, n);
}

/* Reads at scattered pages (op 9): faults far apart, as random access. */
static void op_scatter(struct run *x)
{
	struct model_region *m = pick(x, next(x));
	unsigned n = 2 + next(x) % 8, stride = next(x), i;
	size_t p;

	if (!m)
		return;
	p = next(x) % m->pages;
	for (i = 0; i < n; i++) {
		page_read(x, m, p);
		p = (p + (stride | 1) * 7) % m->pages;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t folios[] = { 4096, 16384, 65536 };
	static const char *const codecs[] = { "lz4", "zstd", "none" };
	struct uswap_config cfg = { .threads = 1 };
	struct run x = { .in = data, .left = size };
	unsigned b, ops, i;
	uint64_t v;

	b = next(&x);
	cfg.folio_size = folios[b % 3];
	cfg.codec = codecs[(b / 3) % 3];
	x.limited = (b / 9) % 2;
	x.store_limited = (b / 18) % 2;
	if (x.limited)
		cfg.limit = cfg.folio_size * (2 + next(&x) % 6);
	if (x.store_limited)
		cfg.store_limit = 64 << 10;
	if ((b / 36) % 2)
		cfg.flags |= USWAP_CFG_NO_ADAPT;
	if ((b / 72) % 2 && strcmp(cfg.codec, "none"))
		cfg.recompress = 3; /* LZ4HC 3 or zstd 3: strong, yet fast enough */
	if (uswap_open(&cfg, &x.u))
		fail("uswap_open", 0, 0);
	handlers_stop(x.u); /* this thread serves the faults */
	reclaimer_stop(x.u);
	/* the threads are gone: this one plays their part (op 7), and
	 * readahead and recompression give up while "stopping" is set */
	x.u->stopping = 0;
	x.u->high_wm = x.u->low_wm = x.u->max_pages; /* direct reclaim only */
	x.ctx = folio_ctx_get(x.u);
	x.shard = regions_api_shard(x.u);
	x.fpages = cfg.folio_size / PAGE;

	for (ops = 0; x.left && ops < MAX_OPS; ops++) {
		struct model_region *m;

		switch (next(&x) % 10) {
		case 0: op_map(&x); break;
		case 1: op_unmap(&x); break;
		case 2: case 3:
			if ((m = pick(&x, next(&x))))
				page_write(&x, m, next(&x) % m->pages, next(&x));
			break;
		case 4:
			if ((m = pick(&x, next(&x))))
				page_read(&x, m, next(&x) % m->pages);
			break;
		case 5: op_advise(&x); break;
		case 6: op_stat(&x); break;
		case 7: {
			int rc;

			if (cfg.recompress && next(&x) % 2) {
				/* what the background thread does: readahead
				 * asked for first (recompression yields to it),
				 * then recompression */
				readahead_run(x.u, x.ctx, x.shard);
				recompress_run(x.u, x.ctx, x.shard);
				break;
			}
			rc = reclaim_some(x.u, x.ctx, CTR_reclaim_background,
					  1 + next(&x) % RECLAIM_BATCH_MAX);
			if (rc && rc != -EAGAIN && rc != -ENOSPC)
				fail("reclaim_some", rc, 0);
			break;
		}
		case 8: op_drop(&x); break;
		default: op_scatter(&x); break;
		}
		check_invariants(&x);
	}
	for (i = 0; i < MAX_REGIONS; i++) {
		struct model_region *m = &x.r[i];

		if (!m->mem)
			continue;
		for (size_t p = 0; p < m->pages; p++)
			page_read(&x, m, p);
		check_invariants(&x);
		if (uswap_unmap(x.u, m->mem, m->len))
			fail("final unmap", (long)i, 0);
		model_free(m);
	}
	uswap_stat(x.u, "store_objects", &v);
	if (v)
		fail("stored objects left after every unmap", (long)v, 0);
	if (getenv("FUZZ_API_STATS")) {
		/* which paths an input reached (to check that seeds do) */
		uint64_t in = 0, out = 0, lazy = 0, recomp = 0, kept = 0;

		uswap_stat(x.u, "swapin_partial", &in);
		uswap_stat(x.u, "swapout_partial", &out);
		uswap_stat(x.u, "lazyfree_discard", &lazy);
		uswap_stat(x.u, "recompress_folios", &recomp);
		uswap_stat(x.u, "recompress_kept", &kept);
		fprintf(stderr, "fuzz_api: swapin_partial %llu swapout_partial %llu "
				"lazyfree_discard %llu recompress_folios %llu recompress_kept %llu\n",
			(unsigned long long)in, (unsigned long long)out, (unsigned long long)lazy,
			(unsigned long long)recomp, (unsigned long long)kept);
	}
	folio_ctx_put(x.u, x.ctx);
	uswap_close(x.u);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Adaptive swap-in: random 4 KiB access must not pay for a whole folio.
 *
 * Each region watches where its faults land.  A fault within two folios of
 * the previous one counts as sequential (+2), a fault further away as
 * random (-1); the score stays within [-8, 8] and starts at 0.  While it is
 * below -2, a fault on a stored folio brings in only the faulting page: the
 * folio becomes RESIDENT|PARTIAL, its other pages keep their slots (or zero
 * bits) and come in one by one when they are touched.  A fault on a
 * partial folio in a region that looks sequential again brings in all its
 * remaining pages.  The asymmetry makes sequential access win quickly:
 * whole folios with one fault are what sequential access wants, and what
 * a region gets when in doubt.
 *
 * A partial folio's mapped pages are evicted together as one blob in a
 * run of 2^m slots, the j-th in slot first + j (evict.c); its unmapped
 * ones keep what they had.  So a folio's pages may lie in several runs,
 * interleaved: a page is found by its slot's place in its run, never by
 * its place in the folio, and several pages are decoded run by run.
 *
 * Only pages still out (a slot or a zero bit) are ever installed into a
 * partial folio: its other pages are mapped, or holes the program made,
 * whose own faults take the ordinary path (the zero page, and the end of
 * lazy free for the folio: fault.c).  Lazy free and the program's remove
 * events drop the stored copies of the pages still out that they cover;
 * whoever leaves no page out clears PARTIAL (docs/ARCHITECTURE.md has the
 * whole table).
 *
 * The detector's two words are read and written with relaxed atomics by
 * every handler thread: races only blur a heuristic, never data.
 */
#include "instance.h"

#include <errno.h>
#include <string.h>

#include "codec/folio_blob.h"
#include "os/os.h"

#define SCORE_MAX 8
#define SCORE_RANDOM_BELOW (-2)

bool region_access_random(struct uswap *u, struct region *r, uint32_t page)
{
	uint32_t last = __atomic_exchange_n(&r->last_fault_page, page, __ATOMIC_RELAXED);
	int32_t score = __atomic_load_n(&r->access_score, __ATOMIC_RELAXED);
	uint32_t dist = page > last ? page - last : last - page;
	uint32_t f = page >> r->pt.folio_order;

	if ((u->p.flags & USWAP_CFG_NO_ADAPT) || r->pt.folio_order == 0)
		return false;
	/* a fault past folios readahead brought in is the stream going on,
	 * not a jump (readahead.c) */
	if (dist <= (2u << r->pt.folio_order) || readahead_covers(r, f))
		score = score + 2 > SCORE_MAX ? SCORE_MAX : score + 2;
	else
		score = score - 1 < -SCORE_MAX ? -SCORE_MAX : score - 1;
	__atomic_store_n(&r->access_score, score, __ATOMIC_RELAXED);
	return score < SCORE_RANDOM_BELOW;
}

/*
 * The run page_decode last decoded into c->scratch2, and how much of it is
 * there: pages [0, valid) of the run hold their data.  A page decoded alone
 * (valid 0) leaves the rest of scratch2 undefined.
 */
struct run_cache {
	slot_t first;
	unsigned valid;
};

#define RUN_CACHE_EMPTY ((struct run_cache){{UINT32_MAX}, 0})

struct page_decode_arg {
	void *run;	 /* c->scratch2: room for the whole run */
	unsigned npages; /* the run's */
	unsigned page;	 /* the page wanted, in the run */
	bool whole;	 /* decode the whole run */
	unsigned valid;	 /* out: pages [0, valid) of run hold their data */
};

static int page_decode_visit(const void *obj, size_t len, void *arg)
{
	struct page_decode_arg *a = arg;
	int rc;

	if (a->whole) {
		rc = folio_decode(obj, len, a->run, a->npages, NULL);
		if (rc == 0)
			a->valid = a->npages;
		return rc;
	}
	rc = folio_decode_page(obj, len, a->run, a->npages, a->page);
	if (rc < 0)
		return rc;
	a->valid = (unsigned)rc;
	return 0;
}

/*
 * Decode page p (which has a slot) into dst, decoding no more of its run
 * than it needs (folio_decode_page: a zero or same-filled page of the blob
 * costs no decompression, the j-th data page only the first j + 1).  The
 * next page of the same run, when it is not among the valid ones, gets the
 * whole run decoded: the pages a swap-in wants come in order, so one more
 * single-page decode per page would cost the run's payload many times over.
 */
static int page_decode(struct uswap *u, struct folio_ctx *c, struct pagetable *pt, uint32_t p,
		       void *dst, struct run_cache *cached)
{
	slot_t s = entry_slot(pt->entry[p]), first;
	store_handle_t h;
	unsigned order;
	int rc = page_run(u, pt, p, &h, &first, &order);
	struct page_decode_arg a;

	if (rc)
		return rc;
	a = (struct page_decode_arg){c->scratch2, 1u << order, s.v - first.v,
				     first.v == cached->first.v, 0};
	if (!a.whole || a.page >= cached->valid) {
		rc = u->p.store_ops->get(u->store, h, page_decode_visit, &a);
		*cached = (struct run_cache){first, a.valid};
		if (rc)
			return rc;
	}
	memcpy(dst, (char *)c->scratch2 + (size_t)a.page * OS_PAGE_SIZE, OS_PAGE_SIZE);
	return 0;
}

/* What bringing in page p of a folio in state st means: its data (a
 * slot), the zero page (a zero bit, or nothing of an OUT folio: dropped
 * while out), or nothing to do (a page of a RESIDENT|PARTIAL folio with
 * neither is mapped already, or a hole whose own fault gives the zero page
 * and ends lazy free: see fault.c). */
static enum page_kind page_in_kind(const struct pagetable *pt, uint32_t p, enum folio_state st)
{
	if (entry_has_slot(pt->entry[p]))
		return PAGE_DATA;
	if (zeromap_test(pt, p) || st == FOLIO_OUT)
		return PAGE_ZERO;
	return PAGE_SKIP;
}

/*
 * Decode the data pages of [p0, p0 + n) (folio state st) into c->scratch at
 * their offsets, run by run: a folio's runs may interleave (a partly
 * resident folio's mapped pages go out as one run among the pages still in
 * older runs, evict.c), and page order with one run cached would decode
 * the same runs again and again.  A run with one page wanted decodes no
 * more than that page needs; one with more is decoded whole, once.
 */
static int pages_decode(struct uswap *u, struct folio_ctx *c, struct pagetable *pt, uint32_t p0,
			unsigned n, enum folio_state st)
{
	uint64_t todo[FOLIO_MASK_WORDS] = { 0 };
	unsigned i, j, end;
	int rc;

	for (i = 0; i < n; i++)
		if (page_in_kind(pt, p0 + i, st) == PAGE_DATA)
			todo[i / 64] |= 1ull << (i % 64);
	for (i = 0; i < n; i++) {
		struct run_cache cached = RUN_CACHE_EMPTY;
		unsigned order, wanted = 0;
		store_handle_t h;
		slot_t first;

		if (!(todo[i / 64] >> (i % 64) & 1))
			continue;
		rc = page_run(u, pt, p0 + i, &h, &first, &order);
		if (rc)
			return rc;
		/* a used slot in the run's aligned window is the run's (slotmap.c);
		 * an order-0 run has page i alone */
		end = order ? n : i + 1;
		for (j = i; j < end; j++)
			wanted += (todo[j / 64] >> (j % 64) & 1) &&
				  entry_slot(pt->entry[p0 + j]).v - first.v < 1u << order;
		if (wanted > 1)
			cached = (struct run_cache){ first, 0 }; /* page_decode: whole */
		for (j = i; j < end; j++) {
			if (!(todo[j / 64] >> (j % 64) & 1) ||
			    entry_slot(pt->entry[p0 + j]).v - first.v >= 1u << order)
				continue;
			rc = page_decode(u, c, pt, p0 + j, (char *)c->scratch + (size_t)j * OS_PAGE_SIZE,
					 &cached);
			if (rc)
				return rc;
			todo[j / 64] &= ~(1ull << (j % 64));
		}
	}
	return 0;
}

/* Add (sign 1) or take back (sign -1) the counters of pages [a, b) of the
 * folio at page p0. */
static void partial_count(struct uswap *u, const struct pagetable *pt, uint32_t p0, unsigned a,
			  unsigned b, enum folio_state st, int sign)
{
	uint64_t one = (uint64_t)(int64_t)sign;
	unsigned i;

	for (i = a; i < b; i++) {
		enum page_kind k = page_in_kind(pt, p0 + i, st);

		if (k == PAGE_SKIP)
			continue;
		ctr_add(u, CTR_swapin_partial, one);
		ctr_add(u, k == PAGE_DATA ? CTR_swapin_pages : CTR_zero_pages_in, one);
	}
}

int folio_swap_in_pages(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			unsigned first, unsigned n)
{
	struct pagetable *pt = &r->pt;
	enum folio_state st = folio_state_of(folio_word_load(pt, f));
	uint32_t p0 = (f << pt->folio_order) + first, i;
	char *base = r->start + ((size_t)p0 << OS_PAGE_SHIFT);
	uint8_t kind[FOLIO_MAX_PAGES];
	unsigned done;
	int rc;

	/* decode everything first: a page that cannot be had installs nothing */
	rc = pages_decode(u, c, pt, p0, n, st);
	if (rc) {
		ctr_add(u, rc == -EILSEQ ? CTR_swapin_fail_corrupt : CTR_swapin_fail_read, 1);
		return rc;
	}
	for (i = 0; i < n; i++)
		kind[i] = (uint8_t)page_in_kind(pt, p0 + i, st);
	/* count before installing: the ioctl may wake the program */
	partial_count(u, pt, p0, 0, n, st, 1);
	rc = install_kinds(u, base, c->scratch, kind, n, 0, true, &done);
	if (rc < 0) {
		/* the pages installed so far stay in (their slots are dropped
		 * below); the others keep theirs */
		ctr_add(u, CTR_swapin_fail_install, 1);
		partial_count(u, pt, p0, done, n, st, -1);
	}
	folio_drop_slots(u, r, f, first, done, NULL);
	return rc;
}

int folio_complete_partial(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			   uint32_t word)
{
	struct pagetable *pt = &r->pt;
	uint64_t before = folio_charge(pt, f, word);
	int rc;

	budget_charge(u, c, folio_pages(pt) - before);
	rc = folio_swap_in_pages(u, c, r, f, 0, folio_pages(pt));
	if (rc == 0)
		os_uffd_wake(u->ufd, r->start + ((size_t)f << (pt->folio_order + OS_PAGE_SHIFT)),
			     folio_bytes(u));
	if (rc >= 0)
		folio_flags_clear(pt, f, FOLIO_PARTIAL);
	/* what came in: all of it, or the pages before a failure */
	budget_adjust(u, c, folio_pages(pt), folio_charge(pt, f, folio_word_load(pt, f)));
	return rc < 0 ? rc : 0;
}

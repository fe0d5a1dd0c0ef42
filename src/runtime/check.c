/* SPDX-License-Identifier: MIT */
/*
 * The whole instance's invariants, for a quiescent moment (no fault, API
 * call or reclaim in progress): tests call it after every step, and debug
 * builds when an instance closes.  What each folio must satisfy alone is
 * folio_check's (core/pagetable.c, also run at every unlock in debug
 * builds); here what ties folios, counters, slot map and store together.
 */
#include "instance.h"

#include <errno.h>
#include <stdlib.h>

#include "core/errmsg.h"

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct tally {
	uint64_t resident, uncharged, pinned, swapcache_pages, lazyfree_pages, slots;
};

static int region_tally(struct uswap *u, const struct region *r, struct tally *t,
			uint32_t *firsts, size_t *nfirsts)
{
	const struct pagetable *pt = &r->pt;
	uint32_t f, p;

	if (r->sh)
		return 0; /* counted in the memfd, by every mapper: not ours alone */
	for (f = 0; f < pt->nfolios; f++) {
		uint32_t w = folio_word_load(pt, f);
		enum folio_state st = folio_state_of(w);

		if (w & FOLIO_LOCKED)
			return errmsg_set(-EUCLEAN, "region %p folio %u is locked (word 0x%x)",
					  (void *)r->start, f, w);
		if (folio_check(pt, f, u->slots))
			return errmsg_set(-EUCLEAN, "region %p folio %u fails folio_check (word 0x%x)",
					  (void *)r->start, f, w);
		if ((w & FOLIO_SWAPCACHE) && st != FOLIO_RESIDENT)
			return errmsg_set(-EUCLEAN, "region %p folio %u: SWAPCACHE but not resident "
						    "(word 0x%x)", (void *)r->start, f, w);
		if ((w & FOLIO_UNCHARGED) && st != FOLIO_RESIDENT)
			return errmsg_set(-EUCLEAN, "region %p folio %u: UNCHARGED but not resident "
						    "(word 0x%x)", (void *)r->start, f, w);
		if ((w & FOLIO_LAZYFREE) && st != FOLIO_RESIDENT)
			return errmsg_set(-EUCLEAN, "region %p folio %u: LAZYFREE but not resident "
						    "(word 0x%x)", (void *)r->start, f, w);
		if ((w & FOLIO_PARTIAL) && (st != FOLIO_RESIDENT || (w & FOLIO_SWAPCACHE)))
			return errmsg_set(-EUCLEAN, "region %p folio %u: PARTIAL but not plain resident "
						    "(word 0x%x)", (void *)r->start, f, w);
		if (st == FOLIO_RESIDENT && (w & FOLIO_UNCHARGED))
			t->uncharged++;
		t->resident += folio_charge(pt, f, w);
		t->pinned += (w & FOLIO_PINNED) != 0;
		for (p = f << pt->folio_order; p < (f + 1) << pt->folio_order; p++) {
			store_handle_t h;
			slot_t first;
			unsigned order;

			t->lazyfree_pages += entry_lazyfree(pt->entry[p]);
			if (!entry_has_slot(pt->entry[p]))
				continue;
			t->slots++;
			t->swapcache_pages += (w & FOLIO_SWAPCACHE) != 0;
			if (slot_run(u->slots, entry_slot(pt->entry[p]), &h, &first, &order))
				return errmsg_set(-EUCLEAN, "region %p page %u: slot %u has no run",
						  (void *)r->start, p, entry_slot(pt->entry[p]).v);
			firsts[(*nfirsts)++] = first.v;
		}
	}
	return 0;
}

int instance_check(struct uswap *u)
{
	struct tally t = { 0 };
	struct store_usage su;
	struct slotmap_stats ss;
	uint32_t *firsts;
	size_t i, npages = 0, nfirsts = 0;
	uint64_t runs = 0;
	int rc = 0;

	for (i = 0; i < u->regions.n; i++) {
		npages += u->regions.v[i]->npages;
		if (i && u->regions.v[i - 1]->start + u->regions.v[i - 1]->len >
				 u->regions.v[i]->start)
			return errmsg_set(-EUCLEAN, "regions %p and %p overlap or are out of order",
					  (void *)u->regions.v[i - 1]->start,
					  (void *)u->regions.v[i]->start);
	}
	firsts = malloc(sizeof(*firsts) * (npages ? npages : 1));
	if (!firsts)
		return -ENOMEM;
	for (i = 0; i < u->regions.n && !rc; i++)
		rc = region_tally(u, u->regions.v[i], &t, firsts, &nfirsts);
	qsort(firsts, nfirsts, sizeof(*firsts), cmp_u32);
	for (i = 0; i < nfirsts; i++)
		runs += i == 0 || firsts[i] != firsts[i - 1];
	free(firsts);
	if (rc)
		return rc;

#define EXPECT(what, have, want)                                                                   \
	do {                                                                                       \
		if ((uint64_t)(have) != (uint64_t)(want))                                          \
			return errmsg_set(-EUCLEAN, "%s is %llu, the folios say %llu", what,      \
					  (unsigned long long)(have), (unsigned long long)(want)); \
	} while (0)
	EXPECT("resident_pages", __atomic_load_n(&u->resident_pages, __ATOMIC_RELAXED),
	       t.resident);
	EXPECT("uncharged_folios", __atomic_load_n(&u->uncharged_folios, __ATOMIC_RELAXED),
	       t.uncharged);
	EXPECT("pinned_folios", __atomic_load_n(&u->pinned_folios, __ATOMIC_RELAXED), t.pinned);
	EXPECT("swapcache_pages", __atomic_load_n(&u->swapcache_pages, __ATOMIC_RELAXED),
	       t.swapcache_pages);
	EXPECT("lazyfree_pages", __atomic_load_n(&u->lazyfree_pages, __ATOMIC_RELAXED),
	       t.lazyfree_pages);
	slotmap_stats(u->slots, &ss);
	EXPECT("slots in use", ss.slots_used, t.slots);
	u->p.store_ops->usage(u->store, &su);
	EXPECT("stored objects", su.objects, runs);
#undef EXPECT
	if (slotmap_check(u->slots))
		return errmsg_set(-EUCLEAN, "slotmap_check failed (see above)");
	if (u->p.store_ops->check && u->p.store_ops->check(u->store))
		return -EUCLEAN; /* with the store's own message */
	return 0;
}

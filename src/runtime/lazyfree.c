/* SPDX-License-Identifier: MIT */
/*
 * Lazy free (USWAP_ADV_FREE): MADV_FREE semantics on managed memory.
 *
 * Until a page is written again, the program may read its old data or
 * zeros, so uswap may discard it instead of storing it.  A lazily freed
 * page of a resident folio carries the ENTRY_LAZYFREE marker in its page
 * entry (the folio the LAZYFREE flag) and is write-protected: the first
 * write to any page of the folio faults, and the fault cancels lazy free for
 * the whole folio before the write goes ahead, so a write after the advice
 * is never discarded.  Eviction turns the marked pages into zero pages
 * (zero-map bits: no codec, no store); a folio marked whole becomes a
 * folio of zero pages, its next fault maps zeros.
 *
 * A range covering a whole folio marks the folio whole, without splitting
 * it; a range covering part of a folio marks only the covered pages
 * (lazyfree_split counts those folios: the folio's pages no longer share
 * one state).  Pages of the range already swapped out are freed from the
 * store at once: their data is not needed any more.  A swap-cached folio
 * drops its stored copy first (the advice makes it worthless); so do the
 * pages of a partly swapped-in (PARTIAL) folio that are still out.
 *
 * Why write-protection and not the kernel's dirty bit: userfaultfd gives
 * uswap no view of the dirty bit, and a write that slips between the
 * advice and the protection would be discarded.  The protection is set
 * before uswap_advise returns, so every later write is seen.  The
 * program's own madvise(MADV_FREE) reaches uswap as a remove event only
 * after the kernel has let the program go on: there a write could come
 * first, so events.c never marks lazy free (it frees stored copies and
 * keeps resident pages as data; see events.c).
 */
#include "instance.h"

#include <errno.h>
#include <string.h>

#include "os/os.h"

/* Mark pages [a, b) of resident folio f (locked by the caller). */
static int mark_resident(struct uswap *u, struct region *r, uint32_t f, unsigned a, unsigned b)
{
	struct pagetable *pt = &r->pt;
	uint32_t p0 = f << pt->folio_order, w = folio_word_load(pt, f);
	char *addr = r->start + ((size_t)(p0 + a) << OS_PAGE_SHIFT);
	unsigned i, marked = 0;
	int rc;

	if (w & FOLIO_PINNED)
		return 0; /* pinned memory is never discarded: the advice is ignored */
	/* The stored copy of a swap-cached folio is worthless after the advice;
	 * its data pages are write-protected already, its zero pages get it now. */
	swapcache_drop(u, r, f, false);
	rc = os_uffd_wp(u->ufd, addr, (size_t)(b - a) << OS_PAGE_SHIFT, true, 0);
	if (rc < 0)
		return rc; /* nothing marked: the pages stay ordinary data */
	if (w & FOLIO_PARTIAL) {
		/* Pages of a partly swapped-in folio still out (adaptive
		 * swap-in): their stored data is not needed any more; they
		 * become holes that read zero, marked like the others, and
		 * count against the budget from now on.  Only pages with
		 * neither slot nor zero bit may carry a marker. */
		uint64_t charge = folio_charge(pt, f, w);

		folio_drop_slots(u, r, f, a, b - a, NULL);
		if (!folio_has_absent(pt, f))
			folio_flags_clear(pt, f, FOLIO_PARTIAL);
		budget_adjust(u, charge, folio_charge(pt, f, folio_word_load(pt, f)));
	}
	for (i = a; i < b; i++) {
		if (!entry_lazyfree(pt->entry[p0 + i])) {
			pt->entry[p0 + i] |= ENTRY_LAZYFREE;
			marked++;
		}
	}
	if (b - a < folio_pages(pt))
		ctr_add(u, CTR_lazyfree_split, 1);
	__atomic_fetch_add(&u->lazyfree_pages, marked, __ATOMIC_RELAXED);
	/* no second chance: a lazily freed folio is the cheapest victim */
	folio_flags_set(pt, f, FOLIO_LAZYFREE);
	folio_flags_clear(pt, f, FOLIO_REFERENCED);
	return 0;
}

int lazyfree_advise(struct uswap *u, struct region *r, uint32_t f, unsigned a, unsigned b,
		    enum folio_state *st)
{
	unsigned n = folio_pages(&r->pt);

	switch (*st) {
	case FOLIO_EMPTY:
		return 0; /* reads as zero already */
	case FOLIO_OUT:
		folio_drop_slots(u, r, f, a, b - a, NULL);
		if (a == 0 && b == n)
			*st = FOLIO_EMPTY; /* nothing of it is needed any more */
		else
			ctr_add(u, CTR_lazyfree_split, 1);
		return 0;
	case FOLIO_RESIDENT:
		return mark_resident(u, r, f, a, b);
	}
	return 0;
}

/* Clear the markers of folio f (locked); @return how many there were. */
static unsigned clear_markers(struct uswap *u, struct region *r, uint32_t f)
{
	struct pagetable *pt = &r->pt;
	uint32_t p0 = f << pt->folio_order;
	unsigned i, n = 0;

	if (!(folio_word_load(pt, f) & FOLIO_LAZYFREE))
		return 0;
	for (i = 0; i < folio_pages(pt); i++) {
		if (entry_lazyfree(pt->entry[p0 + i])) {
			pt->entry[p0 + i] &= ~ENTRY_LAZYFREE;
			n++;
		}
	}
	__atomic_fetch_sub(&u->lazyfree_pages, n, __ATOMIC_RELAXED);
	folio_flags_clear(pt, f, FOLIO_LAZYFREE);
	return n;
}

void lazyfree_cancel(struct uswap *u, struct region *r, uint32_t f)
{
	ctr_add(u, CTR_lazyfree_cancel, clear_markers(u, r, f));
}

void lazyfree_forget(struct uswap *u, struct region *r, uint32_t f)
{
	clear_markers(u, r, f);
}

/* moved: the pages present in staging (a partial eviction), or NULL when
 * all are (holes were filled).  A page not moved is not touched: a hole
 * reads zero already, and touching it would fault on our own staging. */
void lazyfree_discard(struct uswap *u, struct region *r, uint32_t f, char *staging,
		      const uint64_t *moved)
{
	struct pagetable *pt = &r->pt;
	uint32_t p0 = f << pt->folio_order;
	unsigned i;

	if (!(folio_word_load(pt, f) & FOLIO_LAZYFREE))
		return;
	for (i = 0; i < folio_pages(pt); i++)
		if (entry_lazyfree(pt->entry[p0 + i]) &&
		    (!moved || (moved[i / 64] >> (i % 64) & 1)))
			/* zero it in place: the encoder records it as zero */
			memset(staging + ((size_t)i << OS_PAGE_SHIFT), 0, OS_PAGE_SIZE);
	ctr_add(u, CTR_lazyfree_discard, clear_markers(u, r, f));
}

bool lazyfree_discard_whole(struct uswap *u, struct region *r, uint32_t f)
{
	struct pagetable *pt = &r->pt;
	uint32_t p0 = f << pt->folio_order;
	unsigned i;

	if (!(folio_word_load(pt, f) & FOLIO_LAZYFREE))
		return false;
	for (i = 0; i < folio_pages(pt); i++)
		if (!entry_lazyfree(pt->entry[p0 + i]))
			return false;
	ctr_add(u, CTR_lazyfree_discard, clear_markers(u, r, f));
	for (i = 0; i < folio_pages(pt); i++)
		zeromap_set(pt, p0 + i);
	return true;
}

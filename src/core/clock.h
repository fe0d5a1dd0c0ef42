/* SPDX-License-Identifier: MIT */
/*
 * The reclaim clock: which folio to evict next.
 *
 * A hand sweeps over the folios of all regions in order.  A fault sets a
 * folio's REFERENCED bit; the hand clears it once ("second chance"), then
 * takes one off its age (FOLIO_AGE_MASK: a folio refaulted soon after its
 * eviction gets 3), and picks the folio when it finds it resident,
 * unreferenced, of age 0, unpinned, not busy and not locked (clock_takes
 * in clock.c says it once for both functions below).  Pure logic: the
 * caller holds whatever keeps the table list stable, and serialises calls
 * on one hand.
 */
#ifndef USWAP_CLOCK_H
#define USWAP_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagetable.h"

struct clock_hand {
	size_t table;   /* index of the table the hand is in */
	uint32_t folio; /* next folio it looks at */
};

/* The i-th of n page tables (the regions, in address order). */
typedef struct pagetable *(*clock_table_fn)(void *arg, size_t i);

/*
 * Sweep at most five turns over n tables and lock a victim.
 * @return true with *table, *folio set and the folio LOCKED (state
 *         RESIDENT, not PINNED); false when none qualifies.
 */
bool clock_pick(struct clock_hand *h, clock_table_fn table_at, void *arg, size_t n,
		size_t *table, uint32_t *folio);

/*
 * Right after a pick of folio f of table t (pt), lock the folios after it
 * that the hand would pick next, as long as it would pick each (the same
 * test as clock_pick) and none is PARTIAL, at most max of them; the hand
 * moves past them.  An eviction of consecutive folios moves them all out
 * of the program at once (evict.c).  @return how many were locked: folios
 * f + 1 .. f + n.
 */
unsigned clock_take_next(struct clock_hand *h, struct pagetable *pt, size_t t, uint32_t f,
			 unsigned max);

/* Tables were inserted or removed: restart the sweep. */
void clock_reset(struct clock_hand *h);

#endif

/* SPDX-License-Identifier: MIT */
#include "clock.h"

/* Held by a fault or an eviction, or pinned by the program: passed over. */
#define CLOCK_HELD (FOLIO_LOCKED | FOLIO_PINNED)
/* A turn to spend before the hand takes the folio: faulted since the last
 * turn (REFERENCED), an eviction refused (BUSY, e.g. a page pinned for
 * I/O), or an age (see FOLIO_AGE_MASK). */
#define CLOCK_SPARED (FOLIO_REFERENCED | FOLIO_BUSY | FOLIO_AGE_MASK)

/* Whether the hand takes a folio whose word is w as it stands. */
static bool clock_takes(uint32_t w)
{
	return folio_state_of(w) == FOLIO_RESIDENT && !(w & (CLOCK_HELD | CLOCK_SPARED));
}

void clock_reset(struct clock_hand *h)
{
	h->table = 0;
	h->folio = 0;
}

/* Advance the hand to the next folio; @return false when there is none. */
static bool clock_advance(struct clock_hand *h, clock_table_fn table_at, void *arg, size_t n,
			  struct pagetable **pt, uint32_t *f)
{
	size_t tries;

	if (n == 0)
		return false;
	for (tries = 0; tries <= n; tries++) {
		if (h->table >= n)
			clock_reset(h);
		*pt = table_at(arg, h->table);
		if (h->folio < (*pt)->nfolios) {
			*f = h->folio++;
			return true;
		}
		h->table++;
		h->folio = 0;
	}
	return false;
}

bool clock_pick(struct clock_hand *h, clock_table_fn table_at, void *arg, size_t n,
		size_t *table, uint32_t *folio)
{
	uint64_t total = 0, scanned;
	size_t i;

	for (i = 0; i < n; i++)
		total += table_at(arg, i)->nfolios;
	/* five full turns: the first may only clear REFERENCED bits, the
	 * next three only age folios down */
	for (scanned = 0; scanned < 5 * total; scanned++) {
		struct pagetable *pt;
		uint32_t f, w;
		size_t t;

		if (!clock_advance(h, table_at, arg, n, &pt, &f))
			return false;
		t = h->table;
		w = folio_word_load(pt, f);
		if (folio_state_of(w) != FOLIO_RESIDENT || (w & CLOCK_HELD))
			continue;
		/* REFERENCED and BUSY each buy one turn. */
		if (w & (FOLIO_REFERENCED | FOLIO_BUSY)) {
			folio_flags_clear(pt, f, FOLIO_REFERENCED | FOLIO_BUSY);
			continue;
		}
		/* an active folio (see FOLIO_AGE_MASK) loses one turn of age; if
		 * its word changed meanwhile, it is looked at next turn */
		if (w & FOLIO_AGE_MASK) {
			__atomic_compare_exchange_n(&pt->fword[f], &w, w - FOLIO_AGE_ONE, false,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
			continue;
		}
		/* Lock only the word looked at (clock_takes(w) holds now): if it
		 * changed meanwhile (a fault referenced it, a pin), leave it;
		 * nothing to undo, nobody to wake. */
		if (__atomic_compare_exchange_n(&pt->fword[f], &w, w | FOLIO_LOCKED, false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			*table = t;
			*folio = f;
			return true;
		}
	}
	return false;
}

unsigned clock_take_next(struct clock_hand *h, struct pagetable *pt, size_t t, uint32_t f,
			 unsigned max)
{
	unsigned n = 0;

	while (n < max && h->table == t && h->folio == f + 1 + n && h->folio < pt->nfolios) {
		uint32_t w = folio_word_load(pt, h->folio);

		if (!clock_takes(w) || (w & FOLIO_PARTIAL))
			break;
		/* as in clock_pick: only the word looked at */
		if (!__atomic_compare_exchange_n(&pt->fword[h->folio], &w, w | FOLIO_LOCKED, false,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			break;
		h->folio++;
		n++;
	}
	return n;
}

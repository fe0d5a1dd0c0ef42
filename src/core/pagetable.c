/* SPDX-License-Identifier: MIT */
#include "pagetable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "assert.h"

int pagetable_init(struct pagetable *pt, uint32_t npages, unsigned folio_order)
{
	pt->folio_order = folio_order;
	pt->nfolios = npages >> folio_order;
	pt->fword = calloc(pt->nfolios, sizeof(*pt->fword));
	pt->entry = calloc(npages, sizeof(*pt->entry));
	pt->zeromap = calloc((npages + 63) / 64, sizeof(*pt->zeromap));
	if (!pt->fword || !pt->entry || !pt->zeromap) {
		pagetable_destroy(pt);
		return -ENOMEM;
	}
	return 0;
}

void pagetable_destroy(struct pagetable *pt)
{
	free(pt->fword);
	free(pt->entry);
	free(pt->zeromap);
	pt->fword = NULL;
	pt->entry = NULL;
	pt->zeromap = NULL;
	pt->nfolios = 0;
}

size_t pagetable_bytes(const struct pagetable *pt)
{
	size_t npages = (size_t)pt->nfolios << pt->folio_order;

	return pt->nfolios * sizeof(*pt->fword) + npages * sizeof(*pt->entry) +
	       (npages + 63) / 64 * sizeof(*pt->zeromap);
}

bool folio_trylock(struct pagetable *pt, uint32_t f, uint32_t *word)
{
	uint32_t w = folio_word_load(pt, f);

	while (!(w & FOLIO_LOCKED)) {
		if (__atomic_compare_exchange_n(&pt->fword[f], &w, w | FOLIO_LOCKED, true,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			*word = w;
			return true;
		}
	}
	return false;
}

uint32_t folio_prepare_wait(struct pagetable *pt, uint32_t f)
{
	uint32_t w = folio_word_load(pt, f);

	while (w & FOLIO_LOCKED) {
		if (w & FOLIO_WAITERS)
			return w;
		if (__atomic_compare_exchange_n(&pt->fword[f], &w, w | FOLIO_WAITERS, true,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return w | FOLIO_WAITERS;
	}
	return 0;
}

bool folio_transition_ok(enum folio_state from, enum folio_state to)
{
	static const bool allowed[3][3] = {
		/*               EMPTY  RESIDENT OUT */
		[FOLIO_EMPTY] = { true, true, false },
		[FOLIO_RESIDENT] = { true, true, true },
		[FOLIO_OUT] = { true, true, true },
	};

	return from <= FOLIO_OUT && to <= FOLIO_OUT && allowed[from][to];
}

bool folio_unlock(struct pagetable *pt, uint32_t f, enum folio_state to, uint32_t set,
		  uint32_t clear)
{
	uint32_t w = folio_word_load(pt, f), nw;

	clear |= FOLIO_STAMP_MASK | (to == FOLIO_RESIDENT ? 0 : FOLIO_AGE_MASK);
	if (!(w & FOLIO_LOCKED) || !folio_transition_ok(folio_state_of(w), to)) {
		fprintf(stderr, "uswap: bug: folio %u unlock from word 0x%x to state %d\n", f, w,
			to);
		abort();
	}
#if CORE_DEBUG >= 1
	/* Debug builds: the folio's page entries and zero bits agree with the
	 * state it is left in, after every transition. */
	nw = ((w & ~(FOLIO_STATE_MASK | FOLIO_LOCKED | FOLIO_WAITERS | clear)) | set) | to;
	if (folio_check_word(pt, f, nw, NULL)) {
		fprintf(stderr, "uswap: bug: folio %u unlocked from word 0x%x to 0x%x breaks its "
				"invariants\n", f, w, nw);
		abort();
	}
#endif
	do {
		nw = ((w & ~(FOLIO_STATE_MASK | FOLIO_LOCKED | FOLIO_WAITERS | clear)) | set) | to;
	} while (!__atomic_compare_exchange_n(&pt->fword[f], &w, nw, true, __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	return w & FOLIO_WAITERS;
}

void folio_flags_set(struct pagetable *pt, uint32_t f, uint32_t bits)
{
	__atomic_fetch_or(&pt->fword[f], bits, __ATOMIC_RELAXED);
}

void folio_flags_clear(struct pagetable *pt, uint32_t f, uint32_t bits)
{
	__atomic_fetch_and(&pt->fword[f], ~bits, __ATOMIC_RELAXED);
}

bool folio_has_slots(const struct pagetable *pt, uint32_t f)
{
	uint32_t p0 = f << pt->folio_order, i;

	for (i = 0; i < folio_pages(pt); i++)
		if (entry_has_slot(pt->entry[p0 + i]))
			return true;
	return false;
}

bool folio_has_absent(const struct pagetable *pt, uint32_t f)
{
	uint32_t p0 = f << pt->folio_order, i;

	for (i = 0; i < folio_pages(pt); i++)
		if (entry_has_slot(pt->entry[p0 + i]) || zeromap_test(pt, p0 + i))
			return true;
	return false;
}

unsigned folio_charge(const struct pagetable *pt, uint32_t f, uint32_t w)
{
	uint32_t p0 = f << pt->folio_order, i;
	unsigned n = folio_pages(pt);

	if (folio_state_of(w) != FOLIO_RESIDENT || (w & FOLIO_UNCHARGED))
		return 0;
	if (!(w & FOLIO_PARTIAL))
		return n;
	for (i = 0; i < folio_pages(pt); i++)
		if (entry_has_slot(pt->entry[p0 + i]) || zeromap_test(pt, p0 + i))
			n--;
	return n;
}

int folio_check(const struct pagetable *pt, uint32_t f, const struct slotmap *sm)
{
	return folio_check_word(pt, f, folio_word_load(pt, f), sm);
}

int folio_check_word(const struct pagetable *pt, uint32_t f, uint32_t w, const struct slotmap *sm)
{
	enum folio_state st = folio_state_of(w);
	uint32_t first = f << pt->folio_order, i;

	if (st > FOLIO_OUT) {
		fprintf(stderr, "uswap: folio %u: bad state word 0x%x\n", f, w);
		return -EFAULT;
	}
	if ((w & FOLIO_PARTIAL) &&
	    (st != FOLIO_RESIDENT || (w & FOLIO_SWAPCACHE) || !folio_has_absent(pt, f))) {
		fprintf(stderr, "uswap: folio %u: PARTIAL in word 0x%x %s\n", f, w,
			st != FOLIO_RESIDENT	? "(not resident)"
			: w & FOLIO_SWAPCACHE ? "(with SWAPCACHE)"
						: "(no page left to bring in)");
		return -EFAULT;
	}
	for (i = first; i < first + folio_pages(pt); i++) {
		bool zero = zeromap_test(pt, i), slot = entry_has_slot(pt->entry[i]);

		if ((st == FOLIO_EMPTY ||
		     (st == FOLIO_RESIDENT && !(w & (FOLIO_SWAPCACHE | FOLIO_PARTIAL)))) &&
		    (zero || slot)) {
			fprintf(stderr, "uswap: folio %u (state %d): page %u has %s\n", f, st, i,
				zero ? "a zero bit" : "a slot");
			return -EFAULT;
		}
		if (entry_lazyfree(pt->entry[i]) &&
		    (st != FOLIO_RESIDENT || !(w & FOLIO_LAZYFREE) || zero || slot)) {
			fprintf(stderr, "uswap: folio %u (word 0x%x): page %u is lazy-free with %s\n",
				f, w, i,
				st != FOLIO_RESIDENT ? "the folio not resident"
				: zero || slot	     ? "a stored copy"
						     : "no LAZYFREE flag on its folio");
			return -EFAULT;
		}
		if (zero && slot) {
			fprintf(stderr, "uswap: folio %u: page %u is both zero and in slot %u\n", f,
				i, entry_slot(pt->entry[i]).v);
			return -EFAULT;
		}
		if (slot && sm && slot_count(sm, entry_slot(pt->entry[i])) == 0) {
			fprintf(stderr, "uswap: folio %u: page %u points at free slot %u\n", f, i,
				entry_slot(pt->entry[i]).v);
			return -EFAULT;
		}
	}
	return 0;
}

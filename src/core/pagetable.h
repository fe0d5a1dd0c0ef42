/* SPDX-License-Identifier: MIT */
/*
 * The page table of one region: what uswap knows about every folio and
 * page of it, kept while the pages themselves are gone.
 *
 * Per folio, one atomic state word (struct folio_word below); per page, an
 * entry naming its slot; per page, one bit in the zero map.
 *
 * Folio states and the only allowed transitions (checked in debug builds by
 * folio_transition()):
 *
 *            fault (zero page)               evict (stored or zero)
 *   EMPTY ------------------------> RESIDENT ------------------------> OUT
 *     ^                              ^  |  ^                            |
 *     |                              |  |  +------------- fault -------+
 *     +---- removed / unmapped ------+--+-------------------------------+
 *
 *   EMPTY     never populated, or dropped by the program (MADV_DONTNEED,
 *             munmap): every page reads as zero, nothing is stored.
 *   RESIDENT  the folio's pages are mapped in the region (some may be the
 *             shared zero page); it counts against the budget.
 *             With SWAPCACHE (the swap cache), the folio came in from the
 *             store and has not been written since: its data pages are
 *             write-protected and keep their slots, its zero pages keep
 *             their zero bits, so evicting it again stores nothing.  The
 *             first write (a write-protect fault) drops the slots and the
 *             flag.  Without SWAPCACHE a resident folio has no slot and
 *             no zero bit.
 *             With LAZYFREE, some pages carry the ENTRY_LAZYFREE marker
 *             (lazily freed, not written since, write-protected): eviction
 *             discards them (they come back as zero pages); a write to the
 *             folio cancels the markers.
 *             With PARTIAL (adaptive swap-in, runtime/swapin_partial.c),
 *             the folio came in page by page because its region's
 *             faults looked random: a page that still has a slot or a
 *             zero bit is not mapped yet (its next access faults and
 *             brings it in); a page with neither is mapped, or reads
 *             zero.  PARTIAL and SWAPCACHE never go together.
 *   OUT       evicted: each page is either in the zero map, or has a slot,
 *             or (never for a folio evicted whole) neither = reads zero.
 *
 * A page entry's SHARED bit says that the slot is also referenced by
 * another process: both sides of a fork keep the slots that existed then
 * (each in its own copy of the slot map and store, see runtime/fork.c).
 *
 * A transition happens only under the folio's LOCKED bit, taken by
 * compare-and-swap; a thread that finds the bit set sets WAITERS and sleeps
 * on the word (futex); the unlocker wakes it.  PINNED folios are never
 * evicted.  REFERENCED is the clock's second-chance bit, set by faults.
 *
 * The page entries and zero-map bits of a folio are read and written only
 * under that folio's LOCKED bit.  Entries are per page and need nothing
 * more; zero-map words are shared by neighbouring folios, so their bits
 * change atomically (see zeromap_set).
 */
#ifndef USWAP_PAGETABLE_H
#define USWAP_PAGETABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slotmap.h"

enum folio_state {
	FOLIO_EMPTY = 0,
	FOLIO_RESIDENT = 1,
	FOLIO_OUT = 2,
};

#define FOLIO_STATE_MASK 0x3u
#define FOLIO_LOCKED     0x4u
#define FOLIO_WAITERS    0x8u
#define FOLIO_PINNED     0x10u
#define FOLIO_REFERENCED 0x20u
#define FOLIO_BUSY       0x40u /* eviction failed with EBUSY: skipped by one clock turn */
#define FOLIO_SWAPCACHE  0x80u /* resident, clean, still holds its stored copy */
#define FOLIO_GONE       0x100u /* unmapped by the program: the range is not ours */
#define FOLIO_UNCHARGED  0x200u /* resident but not counted: the kernel would not let
				   it go (shared with a forked process, pinned) */
#define FOLIO_LAZYFREE   0x400u /* resident, and some pages carry ENTRY_LAZYFREE */
#define FOLIO_PARTIAL    0x800u /* resident, some pages still stored (see above) */
/* Resident: turns of the clock the folio is passed over before it may be
 * evicted, given when it is refaulted soon after its eviction (the working
 * set's refault, see reclaim.c); 0 to 3. */
#define FOLIO_AGE_MASK   0x3000u
#define FOLIO_AGE_ONE    0x1000u
/* Out: low 16 bits of the instance's eviction count when the reclaimer
 * evicted it (0: not evicted by the reclaimer).  folio_unlock() drops the
 * stamp at every transition (a new one comes in @set) and the age when the
 * folio leaves RESIDENT. */
#define FOLIO_STAMP_SHIFT 16
#define FOLIO_STAMP_MASK  0xffff0000u

/* A page index within a region; a distinct type from slot numbers. */
typedef struct {
	uint32_t v;
} pgidx_t;

/* Page entry: 0 = no slot, else (slot number + 1) | ENTRY_SHARED when the
 * slot is shared with another process.  ENTRY_LAZYFREE is a marker, never
 * with a slot: the page of a resident folio was lazily freed
 * (USWAP_ADV_FREE) and has not been written since; it is write-protected,
 * and eviction discards it instead of storing it. */
typedef uint32_t page_entry_t;
#define ENTRY_SHARED   0x80000000u
#define ENTRY_LAZYFREE 0x40000000u
#define ENTRY_MARKERS  (ENTRY_SHARED | ENTRY_LAZYFREE)

struct pagetable {
	unsigned folio_order;   /* pages per folio = 1 << folio_order */
	uint32_t nfolios;
	uint32_t *fword;        /* per folio: atomic state word */
	page_entry_t *entry;    /* per page */
	uint64_t *zeromap;      /* per page: 1 = evicted as zero-filled */
};

/* Allocate a table for npages pages (a multiple of the folio size).
 * @return 0; -ENOMEM. */
int pagetable_init(struct pagetable *pt, uint32_t npages, unsigned folio_order);
void pagetable_destroy(struct pagetable *pt);
/* Memory the table holds for npages pages: state words, entries, zero map. */
size_t pagetable_bytes(const struct pagetable *pt);

static inline unsigned folio_pages(const struct pagetable *pt)
{
	return 1u << pt->folio_order;
}

static inline uint32_t folio_word_load(const struct pagetable *pt, uint32_t f)
{
	return __atomic_load_n(&pt->fword[f], __ATOMIC_ACQUIRE);
}

static inline enum folio_state folio_state_of(uint32_t word)
{
	return (enum folio_state)(word & FOLIO_STATE_MASK);
}

/*
 * Try to lock folio f.  @return true and *word (the word before locking)
 * when it was unlocked; false when another thread holds it.
 */
bool folio_trylock(struct pagetable *pt, uint32_t f, uint32_t *word);

/*
 * Announce that the caller will sleep until folio f is unlocked: sets
 * WAITERS if the folio is still locked.  @return the word to sleep on (the
 * runtime sleeps while the word still equals it), or 0 when the folio was
 * unlocked meanwhile (try again).  Core does not sleep: the runtime does.
 */
uint32_t folio_prepare_wait(struct pagetable *pt, uint32_t f);

/*
 * Unlock folio f, moving it to state @to (checked against the state it was
 * locked in) and setting/clearing the flag bits in @set/@clear.
 * @return true when sleepers must be woken (the runtime wakes them).
 */
bool folio_unlock(struct pagetable *pt, uint32_t f, enum folio_state to, uint32_t set,
		  uint32_t clear);

/* Set or clear flag bits without taking the lock (PINNED, REFERENCED). */
void folio_flags_set(struct pagetable *pt, uint32_t f, uint32_t bits);
void folio_flags_clear(struct pagetable *pt, uint32_t f, uint32_t bits);

/* Is the transition from -> to allowed by the state machine above? */
bool folio_transition_ok(enum folio_state from, enum folio_state to);

/*
 * Zero-map bits are atomic: a 64-bit word covers 64 pages, so folios of
 * fewer than 64 pages share words, and their (separate) folio locks do not
 * protect a neighbour's bits.  Relaxed order suffices: each bit is only
 * read and written under its own folio's lock, which orders them.
 */
static inline bool zeromap_test(const struct pagetable *pt, uint32_t page)
{
	return (__atomic_load_n(&pt->zeromap[page / 64], __ATOMIC_RELAXED) >> (page % 64)) & 1;
}

static inline void zeromap_set(struct pagetable *pt, uint32_t page)
{
	__atomic_fetch_or(&pt->zeromap[page / 64], 1ull << (page % 64), __ATOMIC_RELAXED);
}

static inline void zeromap_clear(struct pagetable *pt, uint32_t page)
{
	__atomic_fetch_and(&pt->zeromap[page / 64], ~(1ull << (page % 64)), __ATOMIC_RELAXED);
}

static inline bool entry_has_slot(page_entry_t e)
{
	return (e & ~ENTRY_MARKERS) != 0;
}

static inline bool entry_lazyfree(page_entry_t e)
{
	return e & ENTRY_LAZYFREE;
}

static inline bool entry_shared(page_entry_t e)
{
	return e & ENTRY_SHARED;
}

static inline slot_t entry_slot(page_entry_t e)
{
	return (slot_t){ (e & ~ENTRY_MARKERS) - 1 };
}

static inline page_entry_t entry_of_slot(slot_t s)
{
	return s.v + 1;
}

/* Does folio f (locked) have a page with a slot? */
bool folio_has_slots(const struct pagetable *pt, uint32_t f);
/* Does folio f (locked) have a page with a slot or a zero bit: for a
 * RESIDENT|PARTIAL folio, a page still to bring in? */
bool folio_has_absent(const struct pagetable *pt, uint32_t f);

/*
 * Pages folio f counts against the budget when its word is w (caller holds
 * its lock; entries and zero bits as they are now): none unless RESIDENT
 * and charged; all of them for a whole resident folio; for a PARTIAL one,
 * every page that is not still out (no slot, no zero bit): the pages
 * brought in, and holes, which a write may fill without telling uswap.
 */
unsigned folio_charge(const struct pagetable *pt, uint32_t f, uint32_t w);

/*
 * Check the invariants of folio f (caller holds its lock): an EMPTY folio,
 * or a RESIDENT one without SWAPCACHE or PARTIAL, has no slots and no zero
 * bits; PARTIAL is only on a RESIDENT folio without SWAPCACHE that still has
 * a page with a slot or a zero bit; a lazily freed page has neither; any
 * page has at most one of (slot, zero bit), and each slot is in use in sm.
 * @return 0 or -EFAULT after printing what is wrong.
 */
int folio_check(const struct pagetable *pt, uint32_t f, const struct slotmap *sm);
/* The same for the folio's entries as they are, with word w (the word it is
 * about to get); sm NULL skips the slot counts. */
int folio_check_word(const struct pagetable *pt, uint32_t f, uint32_t w, const struct slotmap *sm);

#endif

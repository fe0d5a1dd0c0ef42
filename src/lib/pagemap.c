/* SPDX-License-Identifier: MIT */
/*
 * uswap_pagemap: the state of each page, read from the page table (folio
 * words, page entries with their markers, the zero map), each folio under
 * its lock so that a word never mixes two states.
 *
 * Unlike the kernel's /proc/PID/pagemap, nothing here is inferred from
 * page-table entries that may be gone: a swapped page keeps its entry, a
 * zero page its bit, a lazily freed page its marker.  (The kernel cannot
 * tell, for shared memory, whether a page that is not mapped in this
 * process is swapped out or just not faulted in here; uswap keeps it.)
 */
#include <errno.h>

#include "core/errmsg.h"
#include "os/os.h"
#include "runtime/instance.h"
#include "runtime/shared.h"
#include "signals.h"

#define API __attribute__((visibility("default")))

/* Is out-of-place folio f stored whole, as one run of slots (zero pages
 * have none), so that it comes back with one read? */
static bool folio_is_one_run(const struct pagetable *pt, uint32_t p0)
{
	unsigned n = folio_pages(pt), i;
	uint32_t base = UINT32_MAX;

	for (i = 0; i < n; i++) {
		page_entry_t e = pt->entry[p0 + i];

		if (zeromap_test(pt, p0 + i))
			continue;
		if (!entry_has_slot(e))
			return false;
		if (base == UINT32_MAX)
			base = entry_slot(e).v - i;
		if (entry_slot(e).v != base + i || base % n)
			return false;
	}
	return true;
}

static bool folio_all_lazy(const struct pagetable *pt, uint32_t p0)
{
	for (unsigned i = 0; i < folio_pages(pt); i++)
		if (!entry_lazyfree(pt->entry[p0 + i]))
			return false;
	return true;
}

/* The words of pages [first, first+n) of folio f (locked by the caller). */
static void folio_words(const struct pagetable *pt, uint32_t f, uint32_t word, unsigned first,
			unsigned n, uint64_t *out)
{
	uint32_t p0 = f << pt->folio_order;
	enum folio_state st = folio_state_of(word);
	unsigned order = pt->folio_order, i;

	if (st == FOLIO_EMPTY) {
		for (i = 0; i < n; i++)
			out[i] = 0;
		return;
	}
	if ((st == FOLIO_OUT && !folio_is_one_run(pt, p0)) ||
	    (st == FOLIO_RESIDENT && (word & FOLIO_LAZYFREE) && !folio_all_lazy(pt, p0)) ||
	    (st == FOLIO_RESIDENT && (word & FOLIO_PARTIAL)))
		order = 0; /* split: its pages are not kept as one unit */
	for (i = 0; i < n; i++) {
		uint32_t p = p0 + first + i;
		page_entry_t e = pt->entry[p];
		uint64_t w = (uint64_t)order << 8;
		bool stored = entry_has_slot(e), zero = zeromap_test(pt, p);

		/* a page of a partly swapped-in folio is present unless it is
		 * still out (a slot or a zero bit: adaptive swap-in) */
		if (st == FOLIO_RESIDENT && !((word & FOLIO_PARTIAL) && (stored || zero)))
			w |= USWAP_PM_PRESENT;
		if (stored)
			w |= USWAP_PM_SWAPPED;
		if (zero)
			w |= USWAP_PM_ZERO;
		if (entry_lazyfree(e))
			w |= USWAP_PM_LAZYFREE;
		if (st == FOLIO_RESIDENT && (word & FOLIO_SWAPCACHE) && (stored || zero))
			w |= USWAP_PM_SWAPCACHE;
		if (stored && entry_shared(e))
			w |= USWAP_PM_SHARED;
		if (word & FOLIO_PINNED)
			w |= USWAP_PM_PINNED;
		if (st == FOLIO_OUT && !stored && !zero)
			w = 0; /* dropped while out: reads as zero, nothing kept */
		out[i] = w;
	}
}

API int uswap_pagemap(uswap_t *u, const void *addr, size_t npages, uint64_t *out)
{
	uintptr_t start = (uintptr_t)addr;
	unsigned shard;
	struct region *r;
	sigset_t old;
	size_t done = 0;
	int rc = 0;

	errmsg_clear();
	if (!u || !out)
		return errmsg_set(-EINVAL, "uswap_pagemap: %s is NULL", !u ? "u" : "out");
	if (start & (OS_PAGE_SIZE - 1))
		return errmsg_set(-EINVAL, "uswap_pagemap: address %p is not page-aligned", addr);
	if (npages == 0)
		return 0;
	shard = regions_api_shard(u);
	signals_block(&old);
	pthread_rwlock_rdlock(&u->fork_lock);
	regions_read_lock(&u->regions, shard);
	r = regions_find(&u->regions, start);
	if (!r || npages > (r->len - (start - (uintptr_t)r->start)) >> OS_PAGE_SHIFT) {
		rc = errmsg_set(-EINVAL,
				"uswap_pagemap: [%p, +%zu pages) is not inside one region", addr,
				npages);
	} else {
		uint32_t p = (uint32_t)((start - (uintptr_t)r->start) >> OS_PAGE_SHIFT);
		unsigned order = r->pt.folio_order;

		while (done < npages) {
			uint32_t f = p >> order, first = p - (f << order);
			unsigned n = folio_pages(&r->pt) - first;
			uint32_t word;

			if (n > npages - done)
				n = (unsigned)(npages - done);
			word = r->sh ? shared_folio_lock(u, r, f) : folio_lock_wait(r, f);
			if (r->sh)
				shared_folio_words(r, f, word, first, n, out + done);
			else
				folio_words(&r->pt, f, word, first, n, out + done);
			if (r->sh)
				shared_folio_unlock(r, f, folio_state_of(word), 0, 0);
			else
				folio_unlock_wake(r, f, folio_state_of(word), 0, 0);
			done += n;
			p += n;
		}
	}
	regions_read_unlock(&u->regions, shard);
	pthread_rwlock_unlock(&u->fork_lock);
	signals_restore(&old);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * Readahead: a region read in order gets its next folios swapped in by the
 * background thread before the program faults on them.
 *
 * uswap sees only faults, never the accesses to resident pages, so a
 * stream is recognised by its faults: three swap-in faults on folios in a
 * row start it (two in a row are common in random access too: an object
 * across a folio boundary); a fault on one of the folios already requested
 * ahead (the program got past the ones readahead had brought in) continues
 * it.  Each such fault asks for the READAHEAD_WINDOW folios after it that
 * are not yet asked for; any other fault ends the stream.  The background thread
 * (reclaim.c's) swaps them in with the same code as a fault, one folio at a
 * time under the folio lock: a folio that is locked, already resident or
 * not stored is skipped, and a fault that arrives on a folio being read
 * ahead waits on its lock and finds it resident.  On two CPUs this overlaps
 * decoding and installing the next folios with the program's use of the
 * current one; the program still faults once per window, where it catches
 * up with readahead.
 *
 * A stream the fault that asks for more was a write of comes in writable,
 * without swap cache, as that fault's own folio did (swapin.c): the
 * program is writing its way through, and a swap-cached folio would take a
 * write-protect fault at its first write.
 *
 * Readahead charges the budget like a fault; it is off for budgets of fewer
 * than four windows, where it would evict what the program is about to use.
 * USWAP_ADV_PAGEOUT cancels it: what the program asked to go must not come
 * straight back (a test with a slow store saw it do so).
 */
#include "instance.h"

#include "os/os.h"

void readahead_note(struct uswap *u, struct region *r, uint32_t f, bool write)
{
	uint32_t last = __atomic_exchange_n(&r->ra_last, f + 1, __ATOMIC_RELAXED);
	uint32_t next = __atomic_load_n(&r->ra_next, __ATOMIC_RELAXED);
	uint32_t start, end;

	if (u->max_pages && u->max_pages >> u->p.folio_order < 4 * READAHEAD_WINDOW)
		return;
	/* ra_last holds folio + 1 of the previous fault (0: none) */
	if (last && f == last) {
		/* the third fault of a row starts a stream: two in a row are
		 * common in random access too (an object across a boundary) */
		if (__atomic_add_fetch(&r->ra_run, 1, __ATOMIC_RELAXED) < 2)
			return;
	} else if (!(last && f > last && f <= next)) {
		__atomic_store_n(&r->ra_run, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&r->ra_next, 0, __ATOMIC_RELAXED);
		return;
	}
	start = next > f + 1 ? next : f + 1;
	end = f + 1 + READAHEAD_WINDOW;
	if (end > r->pt.nfolios)
		end = r->pt.nfolios;
	if (start >= end)
		return;
	__atomic_store_n(&r->ra_next, end, __ATOMIC_RELAXED);
	pthread_mutex_lock(&u->ra_lock);
	if (u->ra_n < READAHEAD_QUEUE) {
		struct readahead_req *q = &u->ra_queue[(u->ra_head + u->ra_n++) % READAHEAD_QUEUE];

		q->addr = (uintptr_t)r->start + ((uintptr_t)start << (r->pt.folio_order + OS_PAGE_SHIFT));
		q->nfolios = end - start;
		q->write = write;
	}
	pthread_mutex_unlock(&u->ra_lock);
	os_eventfd_signal(u->kick_fd);
}

bool readahead_covers(struct region *r, uint32_t f)
{
	uint32_t last = __atomic_load_n(&r->ra_last, __ATOMIC_RELAXED);

	return last && f >= last && f <= __atomic_load_n(&r->ra_next, __ATOMIC_RELAXED);
}

/* Swap in folio f of r if it is stored (whole or in part) and nobody holds
 * it. */
static void readahead_folio(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			    bool write)
{
	uint32_t word;
	bool cached;
	int rc;

	if (r->sh || !folio_trylock(&r->pt, f, &word))
		return; /* a shared region's folios come in by its own path */
	if (folio_state_of(word) == FOLIO_RESIDENT && (word & FOLIO_PARTIAL)) {
		/* random access left a few of its pages: the stream wants all */
		if (folio_complete_partial(u, c, r, f, word) == 0)
			ctr_add(u, CTR_readahead_folios, 1);
		folio_unlock_wake(r, f, FOLIO_RESIDENT, FOLIO_REFERENCED, FOLIO_BUSY);
		return;
	}
	if (folio_state_of(word) != FOLIO_OUT || (word & FOLIO_GONE)) {
		folio_unlock_wake(r, f, folio_state_of(word), 0, 0);
		return;
	}
	budget_charge(u, c, folio_pages(&r->pt));
	rc = folio_swap_in(u, c, r, f, word, write, &cached);
	if (rc < 0) {
		/* the fault will try again and report what it must */
		budget_uncharge(u, folio_pages(&r->pt));
		folio_unlock_wake(r, f, FOLIO_OUT, 0, 0);
		return;
	}
	if (rc == 0) /* a thread may have faulted on it meanwhile */
		os_uffd_wake(u->ufd, r->start + ((size_t)f << (r->pt.folio_order + OS_PAGE_SHIFT)),
			     folio_bytes(u));
	ctr_add(u, CTR_readahead_folios, 1);
	folio_unlock_wake(r, f, FOLIO_RESIDENT, FOLIO_REFERENCED | (cached ? FOLIO_SWAPCACHE : 0),
			  FOLIO_BUSY);
}

void readahead_cancel(struct uswap *u)
{
	pthread_mutex_lock(&u->ra_lock);
	u->ra_n = 0;
	__atomic_add_fetch(&u->ra_gen, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&u->ra_lock);
}

void readahead_run(struct uswap *u, struct folio_ctx *c, unsigned shard)
{
	for (;;) {
		struct readahead_req q;
		unsigned gen;
		uint32_t i;

		pthread_mutex_lock(&u->ra_lock);
		if (!u->ra_n) {
			pthread_mutex_unlock(&u->ra_lock);
			return;
		}
		q = u->ra_queue[u->ra_head];
		u->ra_head = (u->ra_head + 1) % READAHEAD_QUEUE;
		u->ra_n--;
		gen = __atomic_load_n(&u->ra_gen, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&u->ra_lock);

		/* from the far end back: the program's own faults take the
		 * near folios meanwhile, on its CPU, and the two meet */
		for (i = q.nfolios; i-- > 0 && !__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE) &&
				    __atomic_load_n(&u->ra_gen, __ATOMIC_RELAXED) == gen;) {
			uintptr_t addr = q.addr + ((uintptr_t)i << (u->p.folio_order + OS_PAGE_SHIFT));
			struct region *r;

			/* one folio per hold, as the reclaimer does: map and
			 * unmap never wait for a whole window; the region may
			 * be gone by the next folio */
			pthread_rwlock_rdlock(&u->fork_lock);
			regions_read_lock(&u->regions, shard);
			r = regions_find(&u->regions, addr);
			if (r)
				readahead_folio(u, c, r,
						(uint32_t)((addr - (uintptr_t)r->start) >>
							   (r->pt.folio_order + OS_PAGE_SHIFT)),
						q.write);
			regions_read_unlock(&u->regions, shard);
			pthread_rwlock_unlock(&u->fork_lock);
		}
	}
}

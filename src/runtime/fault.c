/* SPDX-License-Identifier: MIT */
/*
 * Fault-handler threads.
 *
 * One handler per online CPU, each pinned to its CPU, all waiting on the
 * same userfaultfd.  A fault wakes every waiting handler; the one on the
 * faulting thread's own CPU runs as soon as that thread sleeps, so the
 * round trip costs a same-CPU context switch instead of a cross-CPU wake-up
 * (docs/FAULT_PATH.md has the measurements behind this choice).  Handlers
 * that lose the race read EAGAIN and go back to waiting.
 *
 * A handler never touches managed memory: it reads the store, decodes into
 * its own buffers and installs pages with ioctls.  Reading the
 * userfaultfd and the order of messages are events.c's business.
 */
#include "instance.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "os/os.h"
#include "shared.h"

uint32_t folio_lock_wait(struct region *r, uint32_t f)
{
	uint32_t w;

	for (;;) {
		uint32_t sleep_on;

		if (folio_trylock(&r->pt, f, &w))
			return w;
		sleep_on = folio_prepare_wait(&r->pt, f);
		if (sleep_on)
			os_futex_wait(&r->pt.fword[f], sleep_on);
	}
}

void folio_unlock_wake(struct region *r, uint32_t f, enum folio_state to, uint32_t set,
		       uint32_t clear)
{
	if (folio_unlock(&r->pt, f, to, set, clear))
		os_futex_wake_all(&r->pt.fword[f]);
}

static void fault_latency(struct uswap *u, uint64_t t0)
{
	uint64_t ns = os_now_ns() - t0;

	ctr_add(u, CTR_fault_ns_total, ns);
	if (ns <= 8000)
		ctr_add(u, CTR_fault_lat_le_8us, 1);
	else if (ns <= 32000)
		ctr_add(u, CTR_fault_lat_le_32us, 1);
	else if (ns <= 128000)
		ctr_add(u, CTR_fault_lat_le_128us, 1);
	else
		ctr_add(u, CTR_fault_lat_gt_128us, 1);
}

/* A page with nothing behind it: a page of a resident folio dropped behind
 * our back (it reads as zero), or an address no region covers (a region
 * the program grew with mremap).  A page that is already there was a fault
 * racing its own resolution: just wake. */
static void fault_zero_page(struct uswap *u, uint64_t addr)
{
	void *page = (void *)(uintptr_t)addr;

	if (range_install(u, u->ufd, INSTALL_ZERO, page, NULL, OS_PAGE_SIZE, 0) != 1)
		os_uffd_wake(u->ufd, page, OS_PAGE_SIZE);
}

/* Errors after which the data can never be had: the store lost the
 * object, or it failed its checksum. */
static bool error_is_permanent(int err)
{
	return err == -EILSEQ || err == -ENOENT || err == -EUCLEAN || err == -EINVAL ||
	       err == -ESRCH;
}

/*
 * A folio could not be brought in for good (the store lost it, or its data
 * failed its checksum).  Returning wrong bytes is not an option: poison the
 * page so that the access gets SIGBUS, as a hardware memory error would.
 */
static void fault_fail(struct uswap *u, struct region *r, uint64_t addr, int err)
{
	fprintf(stderr, "uswap: cannot bring in page %#llx of region %p: %s; the access gets SIGBUS\n",
		(unsigned long long)addr, (void *)r->start, strerror(-err));
	ctr_add(u, CTR_fault_poisoned, 1);
	if (os_uffd_poison(u->ufd, (void *)(uintptr_t)addr, OS_PAGE_SIZE) < 0)
		os_uffd_wake(u->ufd, (void *)(uintptr_t)addr, OS_PAGE_SIZE);
}

/*
 * Swapping in folio f failed for good.  Is it worth trying its page alone?
 * Yes when the page's own data is not in the run that failed: it has no
 * slot (a zero page, or dropped), or the folio's stored pages lie in
 * several runs (which one failed is not known).  No when every stored page
 * is in the page's own run: that data is lost, reading it again would not
 * change it.
 */
static bool page_may_come_alone(struct uswap *u, const struct pagetable *pt, uint32_t f,
				uint32_t page)
{
	uint32_t p0 = f << pt->folio_order, i;
	store_handle_t h;
	slot_t own, first;
	unsigned order;

	if (!entry_has_slot(pt->entry[page]))
		return true;
	if (slot_run(u->slots, entry_slot(pt->entry[page]), &h, &own, &order))
		return false;
	for (i = p0; i < p0 + folio_pages(pt); i++) {
		if (!entry_has_slot(pt->entry[i]))
			continue;
		if (slot_run(u->slots, entry_slot(pt->entry[i]), &h, &first, &order) ||
		    first.v != own.v)
			return true;
	}
	return false;
}

/*
 * A fault on a page of a PARTIAL folio (locked, RESIDENT) that is still
 * stored: bring in that page, or, when the region looks sequential again,
 * every page still out.  @return as fault_resolve.
 */
static int fault_partial(struct uswap *u, struct folio_ctx *c, struct region *r, uint64_t addr,
			 uint32_t f, uint32_t page, bool random, uint64_t t0)
{
	unsigned first = random ? page - (f << r->pt.folio_order) : 0;
	unsigned n = random ? 1 : folio_pages(&r->pt);
	uint32_t word = folio_word_load(&r->pt, f);
	/* the budget counts the pages that come in: the faulting one, or
	 * every page still out (the folio then counts whole) */
	uint64_t before = folio_charge(&r->pt, f, word);
	uint64_t ahead = random ? 1 : folio_pages(&r->pt) - before;
	char *at;
	int rc;

	budget_charge(u, c, ahead);
	rc = folio_swap_in_pages(u, c, r, f, first, n);
	if (rc < 0 && error_is_permanent(rc) && n > 1 && page_may_come_alone(u, &r->pt, f, page)) {
		/* another page's data is lost: this one may still be had */
		first = page - (f << r->pt.folio_order);
		n = 1;
		rc = folio_swap_in_pages(u, c, r, f, first, n);
	}
	at = r->start + (((size_t)f << r->pt.folio_order) + first) * OS_PAGE_SIZE;
	budget_adjust(u, c, before + ahead,
		      folio_charge(&r->pt, f,
				   folio_has_absent(&r->pt, f) ? word : word & ~FOLIO_PARTIAL));
	if (rc < 0) {
		folio_unlock_wake(r, f, FOLIO_RESIDENT, 0, 0);
		if (!error_is_permanent(rc))
			return rc;
		fault_fail(u, r, addr, rc);
		return 0;
	}
	if (rc == 0)
		os_uffd_wake(u->ufd, at, (size_t)n * OS_PAGE_SIZE);
	folio_unlock_wake(r, f, FOLIO_RESIDENT, FOLIO_REFERENCED,
			  folio_has_absent(&r->pt, f) ? 0 : FOLIO_PARTIAL);
	if (!random) /* a stream may go on past it (readahead.c) */
		readahead_note(u, r, f, false);
	fault_latency(u, t0);
	return 0;
}

/* What folio f (OUT) counts once page comes in alone: its pages not stored
 * (holes read as zero and count, folio_charge) and page. */
static unsigned partial_charge(const struct pagetable *pt, uint32_t f, uint32_t page)
{
	return folio_charge(pt, f, FOLIO_RESIDENT | FOLIO_PARTIAL) +
	       (entry_has_slot(pt->entry[page]) || zeromap_test(pt, page));
}

int fault_resolve(struct uswap *u, struct folio_ctx *c, uint64_t addr, bool write)
{
	uint64_t t0 = os_now_ns();
	struct region *r = regions_find(&u->regions, addr);
	uint32_t page, f, word, set = FOLIO_REFERENCED;
	unsigned first = 0, n, charged;
	bool cached, random, partial_in;
	char *base;
	int rc;

	if (!r) {
		fault_zero_page(u, addr);
		return 0;
	}
	if (r->sh)
		return shared_fault(u, c, r, addr);
	ctr_add(u, CTR_faults, 1);
	page = (uint32_t)((addr - (uintptr_t)r->start) >> OS_PAGE_SHIFT);
	f = page >> r->pt.folio_order;
	base = r->start + ((size_t)f << (r->pt.folio_order + OS_PAGE_SHIFT));
	random = region_access_random(u, r, page);
	word = folio_lock_wait(r, f);

	if (folio_state_of(word) == FOLIO_RESIDENT && (word & FOLIO_PARTIAL) &&
	    (entry_has_slot(r->pt.entry[page]) || zeromap_test(&r->pt, page)))
		return fault_partial(u, c, r, addr, f, page, random, t0);
	if (folio_state_of(word) == FOLIO_RESIDENT) {
		ctr_add(u, CTR_faults_stale, 1);
		/* a page of it went (the program dropped it, or the kernel
		 * reclaimed a lazily freed page): the zero page comes back
		 * unprotected, so a write to it would not be seen: lazy free of
		 * this folio ends here */
		lazyfree_cancel(u, r, f);
		fault_zero_page(u, addr);
		folio_unlock_wake(r, f, FOLIO_RESIDENT, FOLIO_REFERENCED, 0);
		fault_latency(u, t0);
		return 0;
	}

	set |= refault_age(u, word);
	/* random access: only the faulting page of a folio with stored data */
	partial_in = random && folio_state_of(word) == FOLIO_OUT && folio_has_slots(&r->pt, f);
	/* what the folio will count: a partial one its pages not stored (its
	 * holes) and the page that comes in; charged before it comes, so
	 * that it comes only where it fits */
	charged = partial_in ? partial_charge(&r->pt, f, page) : folio_pages(&r->pt);
	budget_charge(u, c, charged);
	if (partial_in) {
		first = page - (f << r->pt.folio_order);
		rc = folio_swap_in_pages(u, c, r, f, first, 1);
		cached = false;
		if (rc >= 0 && folio_has_absent(&r->pt, f))
			set |= FOLIO_PARTIAL;
	} else {
		rc = folio_swap_in(u, c, r, f, word, write, &cached);
		if (rc < 0 && error_is_permanent(rc) && folio_state_of(word) == FOLIO_OUT &&
		    r->pt.folio_order > 0 && !(u->p.flags & USWAP_CFG_NO_ADAPT) &&
		    page_may_come_alone(u, &r->pt, f, page)) {
			/* part of the folio's stored data is lost: the faulting
			 * page may still be had alone (a zero page, or one stored
			 * in another run); only a page whose own data is lost is
			 * poisoned */
			partial_in = true;
			charged = partial_charge(&r->pt, f, page);
			budget_adjust(u, c, folio_pages(&r->pt), charged);
			first = page - (f << r->pt.folio_order);
			rc = folio_swap_in_pages(u, c, r, f, first, 1);
			cached = false;
			if (rc >= 0 && folio_has_absent(&r->pt, f))
				set |= FOLIO_PARTIAL;
		}
	}
	n = partial_in ? 1 : folio_pages(&r->pt);
	if (rc < 0) {
		budget_uncharge(u, charged);
		folio_unlock_wake(r, f, folio_state_of(word), 0, 0);
		if (!error_is_permanent(rc))
			return rc; /* the caller retries; the thread stays asleep */
		fault_fail(u, r, addr, rc);
		return 0;
	}
	if (cached)
		set |= FOLIO_SWAPCACHE;
	/* (before the wake: the program sees the budget kept) */
	if (partial_in)
		budget_adjust(u, c, charged, folio_charge(&r->pt, f, FOLIO_RESIDENT | set));
	if (rc == 0)
		os_uffd_wake(u->ufd, base + (size_t)first * OS_PAGE_SIZE, (size_t)n * OS_PAGE_SIZE);
	folio_unlock_wake(r, f, FOLIO_RESIDENT, set, FOLIO_BUSY);
	if (folio_state_of(word) == FOLIO_OUT && !partial_in)
		readahead_note(u, r, f, write);
	fault_latency(u, t0);
	return 0;
}

void fault_resolve_wp(struct uswap *u, uint64_t addr)
{
	struct region *r = regions_find(&u->regions, addr);
	unsigned tries;
	uint32_t f;
	char *base;
	size_t len;
	int rc;

	ctr_add(u, CTR_wp_faults, 1);
	if (!r) {
		os_uffd_wp(u->ufd, (void *)(uintptr_t)addr, OS_PAGE_SIZE, false, 0);
		return;
	}
	if (r->sh) {
		shared_fault_wp(u, r, addr);
		return;
	}
	f = (uint32_t)((addr - (uintptr_t)r->start) >> (OS_PAGE_SHIFT + r->pt.folio_order));
	base = r->start + ((size_t)f << (r->pt.folio_order + OS_PAGE_SHIFT));
	len = folio_bytes(u);
	folio_lock_wait(r, f);
	/* The first write to a swap-cached folio: its stored copy is stale from
	 * now on.  (The folio may have been evicted meanwhile: then there is
	 * nothing to drop, and the wake-up makes the access fault again.) */
	swapcache_drop(u, r, f, true);
	/* ... and a lazily freed folio is data again: never discarded */
	lazyfree_cancel(u, r, f);
	for (tries = 0; (rc = os_uffd_wp(u->ufd, base, len, false, 0)) == -EAGAIN && tries < 1000;
	     tries++)
		ctr_add(u, CTR_ioctl_retries, 1);
	if (rc < 0)
		os_uffd_wake(u->ufd, base, len);
	folio_unlock_wake(r, f, folio_state_of(folio_word_load(&r->pt, f)), FOLIO_REFERENCED, 0);
}

static void *handler_main(void *arg)
{
	struct worker *w = arg;
	struct uswap *u = w->u;

	if (w->cpu >= 0)
		os_thread_pin(w->cpu);
	for (;;) {
		int rc = events_poll(u, w);

		if (rc == -EAGAIN) {
			if (__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE))
				break;
			/* queued work (behind a fork) is retried every millisecond;
			 * otherwise a look every 100 ms: another thread that reads
			 * pending messages while it waits (events_absorb, e.g. the
			 * reclaimer moving pages back) may queue them just after
			 * this check, and nothing would wake us for them */
			if (!os_wait_readable(u->ufd, u->stop_fd, events_queued(u) ? 1 : 100))
				/* idle (or stopping): what direct reclaim evicted
				 * leaves staging; while faults keep coming, the
				 * ring is dropped when used up */
				staging_flush(u, &w->ctx);
			continue;
		}
		if (rc < 0) {
			fprintf(stderr, "uswap: reading the userfaultfd failed: %s\n",
				strerror(-rc));
			break;
		}
	}
	return NULL;
}

int handlers_start(struct uswap *u)
{
	int ncpu = os_cpu_count();
	unsigned i;
	int rc;

	u->workers = os_mem_map(sizeof(*u->workers) * u->nworkers);
	if (!u->workers)
		return -ENOMEM;
	for (i = 0; i < u->nworkers; i++) {
		struct worker *w = &u->workers[i];

		w->u = u;
		w->shard = i;
		w->cpu = (u->p.flags & USWAP_CFG_NO_PIN) ? -1 : (int)(i % (unsigned)ncpu);
		rc = folio_ctx_init(u, &w->ctx);
		if (!rc) {
			rc = -pthread_create(&w->thread, NULL, handler_main, w);
			if (rc)
				folio_ctx_destroy(u, &w->ctx);
		}
		if (rc) {
			u->nworkers = i;
			handlers_stop(u);
			return rc;
		}
	}
	return 0;
}

void handlers_stop(struct uswap *u)
{
	unsigned i;

	if (!u->workers)
		return;
	__atomic_store_n(&u->stopping, 1, __ATOMIC_RELEASE);
	os_eventfd_signal(u->stop_fd);
	for (i = 0; i < u->nworkers; i++) {
		pthread_join(u->workers[i].thread, NULL);
		folio_ctx_destroy(u, &u->workers[i].ctx);
	}
	os_mem_unmap(u->workers, sizeof(*u->workers) * u->nworkers);
	u->workers = NULL;
}

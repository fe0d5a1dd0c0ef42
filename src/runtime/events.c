/* SPDX-License-Identifier: MIT */
/*
 * Reading the userfaultfd, and the order of what it says.
 *
 * Faults can be resolved in any order and by any handler.  The program's
 * own munmap, mremap and madvise(MADV_DONTNEED/MADV_FREE) arrive as events
 * that change what a later fault must see: a fault on a page the program
 * just dropped must read zeros, not the page's old stored copy.  The kernel
 * lets the program go on as soon as a handler has *read* the event, so
 * order is kept here: messages are read under read_lock, and an event, and
 * every fault read while an event is queued or being handled, go into one
 * FIFO queue that a single thread at a time drains in order.  Faults read
 * while the queue is empty (nearly always) are resolved at once, in
 * parallel.
 *
 * Folio operations hold fork_lock for reading; fork holds it for writing
 * while the kernel copies the address space (fork.c).  A handler never
 * waits for it: a fault that cannot have it is queued, and handlers stay
 * free to read the fork event the forking thread is waiting for.
 *
 * A fault that raced a program's madvise on the same page can land its
 * copy after the kernel dropped the page: the page then shows the data it
 * had before the advice.  Only a program that reads a page while it drops
 * it can see this (the kernel's own non-cooperative userfaultfd has the
 * same window); docs/ARCHITECTURE.md lists it.
 */
#include "instance.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "os/os.h"
#include "shared.h"

int events_init(struct uswap *u)
{
	pthread_mutex_init(&u->read_lock, NULL);
	pthread_mutex_init(&u->queue.lock, NULL);
	u->queue.v = os_mem_map(MSG_QUEUE_CAP * sizeof(struct os_event));
	return u->queue.v ? 0 : -ENOMEM;
}

void events_destroy(struct uswap *u)
{
	if (u->queue.v)
		os_mem_unmap(u->queue.v, MSG_QUEUE_CAP * sizeof(struct os_event));
	u->queue.v = NULL;
	pthread_mutex_destroy(&u->read_lock);
	pthread_mutex_destroy(&u->queue.lock);
}

/* Messages queued or being handled by the drainer. */
static unsigned queue_pending(struct uswap *u)
{
	return __atomic_load_n(&u->queue.n, __ATOMIC_ACQUIRE) +
	       (unsigned)__atomic_load_n(&u->queue.draining, __ATOMIC_ACQUIRE);
}

bool events_queued(struct uswap *u)
{
	return queue_pending(u) != 0;
}

/* With read_lock held (so that the order is the order of reading). */
static void queue_push(struct uswap *u, const struct os_event *ev)
{
	struct msg_queue *q = &u->queue;

	pthread_mutex_lock(&q->lock);
	while (q->n == MSG_QUEUE_CAP) {
		/* Cannot happen with fewer than 4096 program threads (one fault
		 * each): wait for the drainer rather than break the order. */
		pthread_mutex_unlock(&q->lock);
		os_sleep_ns(100000);
		pthread_mutex_lock(&q->lock);
	}
	q->v[(q->head + q->n) % MSG_QUEUE_CAP] = *ev;
	__atomic_store_n(&q->n, q->n + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&q->lock);
	ctr_add(u, CTR_msgs_queued, 1);
}

/* ---- the program's events ---- */

/* Pages [a, b) of folio f (all inside it) were dropped by the program
 * (MADV_DONTNEED, MADV_FREE, munmap): they read as zero from now on, and
 * their stored copies are freed.  gone: the range is not mapped any more. */
static void folio_dropped(struct uswap *u, struct region *r, uint32_t f, unsigned a, unsigned b,
			  bool gone)
{
	struct pagetable *pt = &r->pt;
	uint32_t w = folio_lock_wait(r, f);
	enum folio_state st = folio_state_of(w);
	bool whole = a == 0 && b == folio_pages(pt);
	uint32_t set = 0, clear = 0;
	uint64_t charge = folio_charge(pt, f, w);
	unsigned n = folio_drop_slots(u, r, f, a, b - a, NULL);

	if (w & FOLIO_SWAPCACHE)
		__atomic_fetch_sub(&u->swapcache_pages, n, __ATOMIC_RELAXED);
	if (whole && st == FOLIO_RESIDENT && !gone) {
		/* MADV_DONTNEED and MADV_FREE look the same here.  After
		 * DONTNEED the pages are gone (a fault maps zeros); after FREE
		 * they stay mapped and a write may already have reached them:
		 * either way the folio stays resident and counted, as data.
		 * It goes first at the next reclaim, where holes and zero pages
		 * cost nothing. */
		clear = FOLIO_SWAPCACHE | FOLIO_REFERENCED;
	} else if (whole) {
		if (st == FOLIO_RESIDENT)
			budget_release(u, pt, f, charge);
		if (w & FOLIO_PINNED)
			__atomic_fetch_sub(&u->pinned_folios, 1, __ATOMIC_RELAXED);
		lazyfree_forget(u, r, f);
		st = FOLIO_EMPTY;
		clear = FOLIO_SWAPCACHE | FOLIO_PINNED | FOLIO_BUSY | FOLIO_REFERENCED |
			FOLIO_UNCHARGED | FOLIO_PARTIAL;
		if (gone)
			set = FOLIO_GONE;
	}
	/* a partly swapped-in folio whose pages still out were all dropped
	 * (they read zero now, as holes) is a plain resident folio */
	if ((w & FOLIO_PARTIAL) && !folio_has_absent(pt, f))
		clear |= FOLIO_PARTIAL;
	/* pages of a partly swapped-in folio that were still out are holes
	 * now: they count, as every page of a whole resident folio does */
	if (st == FOLIO_RESIDENT)
		budget_adjust(u, charge, folio_charge(pt, f, (w | set) & ~clear));
	folio_unlock_wake(r, f, st, set, clear);
}

/* Apply a drop of [start, end) to every folio of r it touches. */
static void region_dropped(struct uswap *u, struct region *r, uint64_t start, uint64_t end,
			   bool gone)
{
	uint64_t rs = (uintptr_t)r->start, re = rs + r->len;
	unsigned order = r->pt.folio_order;
	uint32_t p, pend;

	if (start < rs)
		start = rs;
	if (end > re)
		end = re;
	p = (uint32_t)((start - rs) >> OS_PAGE_SHIFT);
	pend = (uint32_t)((end - rs + OS_PAGE_SIZE - 1) >> OS_PAGE_SHIFT);
	while (p < pend) {
		uint32_t f = p >> order, fend = (f + 1) << order;
		uint32_t b = pend < fend ? pend : fend;

		folio_dropped(u, r, f, p - (f << order), b - (f << order), gone);
		p = b;
	}
}

static bool region_all_gone(const struct region *r)
{
	uint32_t f;

	for (f = 0; f < r->pt.nfolios; f++)
		if (!(folio_word_load(&r->pt, f) & FOLIO_GONE))
			return false;
	return true;
}

static void region_forget(struct uswap *u, struct region *r)
{
	regions_write_lock(&u->regions);
	regions_remove(&u->regions, r);
	pthread_mutex_lock(&u->clock_lock);
	clock_reset(&u->hand);
	pthread_mutex_unlock(&u->clock_lock);
	regions_write_unlock(&u->regions);
	region_destroy(u, r);
}

void events_drop(struct uswap *u, unsigned shard, uint64_t start, uint64_t end, bool gone)
{
	struct region *dead[8];
	unsigned ndead = 0, i;
	uint64_t at = start;

	regions_read_lock(&u->regions, shard);
	while (at < end) {
		struct region *r = regions_find_from(&u->regions, at);

		if (!r || (uintptr_t)r->start >= end)
			break;
		if (r->sh) {
			/* MADV_DONTNEED of shared memory drops only this process's
			 * view: the data stays in the memfd, nothing changes here */
			if (gone && ndead < 8 && shared_region_unmapped(r, start, end))
				dead[ndead++] = r;
		} else {
			region_dropped(u, r, start, end, gone);
			if (gone && ndead < 8 && region_all_gone(r))
				dead[ndead++] = r;
		}
		at = (uintptr_t)r->start + r->len;
	}
	regions_read_unlock(&u->regions, shard);
	/* a region the program unmapped whole is forgotten (its pages are
	 * gone, and the range may be mapped again by anyone) */
	for (i = 0; i < ndead; i++)
		region_forget(u, dead[i]);
}

/* mremap moved [from, from+len) to to.  Every region wholly inside moves
 * with it (one VMA can hold several adjacent regions: the kernel merges
 * them); a region only partly inside is not followed. */
static void on_remap(struct uswap *u, uint64_t from, uint64_t to, uint64_t len)
{
	struct region *cut = NULL, *moved[64];
	unsigned n = 0, i;
	uint64_t at = from;

	regions_write_lock(&u->regions);
	while (at < from + len) {
		struct region *r = regions_find_from(&u->regions, at);

		if (!r || (uintptr_t)r->start >= from + len)
			break;
		if ((uintptr_t)r->start < from || (uintptr_t)r->start + r->len > from + len ||
		    n == 64) {
			cut = r;
			break;
		}
		moved[n++] = r;
		at = (uintptr_t)r->start + r->len;
	}
	if (!cut) {
		for (i = 0; i < n; i++)
			regions_remove(&u->regions, moved[i]);
		for (i = 0; i < n; i++) {
			moved[i]->start = (char *)(uintptr_t)(to + ((uintptr_t)moved[i]->start - from));
			regions_insert(&u->regions, moved[i]);
		}
		pthread_mutex_lock(&u->clock_lock);
		clock_reset(&u->hand);
		pthread_mutex_unlock(&u->clock_lock);
	}
	regions_write_unlock(&u->regions);
	if (cut) {
		ctr_add(u, CTR_remap_unsupported, 1);
		fprintf(stderr,
			"uswap: mremap of [%#llx, +%llu) moves part of region %p, which uswap does "
			"not follow: pages swapped out there read as zero at the new address; "
			"mremap whole regions only\n",
			(unsigned long long)from, (unsigned long long)len, (void *)cut->start);
	}
}

/* A passing failure (the store unreachable, no memory): the faulting
 * thread stays asleep until it can be served; said once per second. */
static void fault_until_resolved(struct uswap *u, struct worker *w, uint64_t addr, bool write)
{
	uint64_t said = 0;
	int rc;

	while ((rc = fault_resolve(u, &w->ctx, addr, write)) < 0) {
		uint64_t now = os_now_ns();

		ctr_add(u, CTR_fault_retries, 1);
		if (now - said > 1000000000u) {
			fprintf(stderr, "uswap: page %#llx cannot be brought in yet (%s): retrying\n",
				(unsigned long long)addr, strerror(-rc));
			said = now;
		}
		regions_read_unlock(&u->regions, w->shard);
		/* EAGAIN lasts until a pending event is read: maybe by us */
		events_absorb(u);
		os_sleep_ns(1000000);
		regions_read_lock(&u->regions, w->shard);
	}
}

/* Handle one message with fork_lock held for reading. */
static void msg_handle(struct uswap *u, struct worker *w, const struct os_event *ev)
{
	switch (ev->kind) {
	case OS_EV_FAULT:
		regions_read_lock(&u->regions, w->shard);
		if (ev->fault.flags & OS_FAULT_WP)
			fault_resolve_wp(u, ev->fault.addr);
		else
			fault_until_resolved(u, w, ev->fault.addr,
					     ev->fault.flags & OS_FAULT_WRITE);
		regions_read_unlock(&u->regions, w->shard);
		break;
	case OS_EV_REMOVE:
		ctr_add(u, CTR_remove_events, 1);
		events_drop(u, w->shard, ev->remove.start, ev->remove.end, false);
		break;
	case OS_EV_UNMAP:
		ctr_add(u, CTR_unmap_events, 1);
		events_drop(u, w->shard, ev->remove.start, ev->remove.end, true);
		break;
	case OS_EV_REMAP:
		ctr_add(u, CTR_remap_events, 1);
		on_remap(u, ev->remap.from, ev->remap.to, ev->remap.len);
		break;
	case OS_EV_FORK:
		break;
	}
}

/* Drain the queue in order, one thread at a time, as long as fork_lock can
 * be had without waiting. */
static void queue_drain(struct uswap *u, struct worker *w)
{
	struct msg_queue *q = &u->queue;

	pthread_mutex_lock(&q->lock);
	if (q->draining || q->n == 0) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	__atomic_store_n(&q->draining, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&q->lock);
	for (;;) {
		struct os_event ev;

		if (pthread_rwlock_tryrdlock(&u->fork_lock))
			break;
		pthread_mutex_lock(&q->lock);
		if (q->n == 0) {
			pthread_mutex_unlock(&q->lock);
			pthread_rwlock_unlock(&u->fork_lock);
			break;
		}
		ev = q->v[q->head];
		q->head = (q->head + 1) % MSG_QUEUE_CAP;
		__atomic_store_n(&q->n, q->n - 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&q->lock);
		msg_handle(u, w, &ev);
		pthread_rwlock_unlock(&u->fork_lock);
	}
	pthread_mutex_lock(&q->lock);
	__atomic_store_n(&q->draining, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&q->lock);
}

void events_absorb(struct uswap *u)
{
	struct os_event ev[16];
	int n, i;

	if (pthread_mutex_trylock(&u->read_lock))
		return; /* another thread is reading them */
	n = os_uffd_read(u->ufd, ev, 16);
	for (i = 0; i < n; i++) {
		if (ev[i].kind == OS_EV_FORK) {
			ctr_add(u, CTR_fork_events, 1);
			fork_event(u, ev[i].fork.ufd);
		} else {
			queue_push(u, &ev[i]);
		}
	}
	pthread_mutex_unlock(&u->read_lock);
}

int events_poll(struct uswap *u, struct worker *w)
{
	struct os_event ev[16];
	bool now[16];
	int n, i;

	pthread_mutex_lock(&u->read_lock);
	n = os_uffd_read(u->ufd, ev, 16);
	for (i = 0; i < n; i++) {
		now[i] = ev[i].kind == OS_EV_FORK ||
			 (ev[i].kind == OS_EV_FAULT && queue_pending(u) == 0);
		if (!now[i])
			queue_push(u, &ev[i]);
	}
	pthread_mutex_unlock(&u->read_lock);

	for (i = 0; i < n; i++) {
		if (!now[i])
			continue;
		if (ev[i].kind == OS_EV_FORK) {
			ctr_add(u, CTR_fork_events, 1);
			fork_event(u, ev[i].fork.ufd);
		} else if (pthread_rwlock_tryrdlock(&u->fork_lock) == 0) {
			msg_handle(u, w, &ev[i]);
			pthread_rwlock_unlock(&u->fork_lock);
		} else {
			/* a fork is under way: handled after it, in order */
			pthread_mutex_lock(&u->read_lock);
			queue_push(u, &ev[i]);
			pthread_mutex_unlock(&u->read_lock);
		}
	}
	queue_drain(u, w);
	return n < 0 ? n : 0;
}

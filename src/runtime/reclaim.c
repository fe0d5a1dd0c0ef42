/* SPDX-License-Identifier: MIT */
/*
 * The budget and the reclaimer.
 *
 * Resident memory is counted in pages: a folio is resident from the
 * fault that brings it in to its eviction, whole, even where some of its
 * pages are the shared zero page (a later write would make them real
 * without telling us, so counting them keeps the real RSS under the
 * budget).  A folio swapped in page by page (PARTIAL, random access)
 * counts only the pages that are not still out (folio_charge): counting
 * it whole would fill the budget with mostly empty folios, and random
 * access would find far fewer of its pages resident than the kernel does.
 *
 * A background thread keeps resident between two watermarks below the
 * budget (kswapd's habit): it wakes when a fault crosses the high mark and
 * evicts down to the low mark.  A fault reclaims directly only when the
 * budget itself would be exceeded.  Victims are chosen by a clock over all
 * regions: a fault sets a folio's REFERENCED bit, the hand clears it once
 * and evicts the folio on its next pass if it has not been faulted since.
 * The same thread serves readahead (readahead.c), also without a budget,
 * and, when it has nothing else to do, idle recompression (recompress.c).
 */
#include "instance.h"

#include <errno.h>
#include <stdio.h>

#include "core/clock.h"
#include "os/os.h"
#include "shared.h"

void budget_uncharge(struct uswap *u, uint64_t pages)
{
	__atomic_fetch_sub(&u->resident_pages, pages, __ATOMIC_RELAXED);
}

void budget_adjust(struct uswap *u, struct folio_ctx *c, uint64_t before, uint64_t after)
{
	if (after <= before) {
		budget_uncharge(u, before - after);
		return;
	}
	if (c) {
		budget_charge(u, c, after - before); /* room first, as for any charge */
		return;
	}
	__atomic_fetch_add(&u->resident_pages, after - before, __ATOMIC_RELAXED);
	if (u->max_pages && budget_resident(u) > u->high_wm)
		os_eventfd_signal(u->kick_fd);
}

/*
 * A resident folio the kernel refuses to move (its pages are shared with a
 * forked process, or pinned for I/O) cannot be evicted: counting it would
 * leave the budget to the folios that can, and those would be evicted as
 * soon as they come in, for ever.  It is not counted while it stays so
 * (unevictable_bytes); the physical pages of a shared one belong to both
 * processes anyway.  Caller holds the folio lock.
 */
void budget_exempt(struct uswap *u, struct pagetable *pt, uint32_t f)
{
	uint32_t w = folio_word_load(pt, f);

	if (w & FOLIO_UNCHARGED)
		return;
	budget_uncharge(u, folio_charge(pt, f, w));
	folio_flags_set(pt, f, FOLIO_UNCHARGED);
	__atomic_fetch_add(&u->uncharged_folios, 1, __ATOMIC_RELAXED);
}

void budget_release(struct uswap *u, struct pagetable *pt, uint32_t f, uint64_t charge)
{
	if (folio_word_load(pt, f) & FOLIO_UNCHARGED) {
		folio_flags_clear(pt, f, FOLIO_UNCHARGED);
		__atomic_fetch_sub(&u->uncharged_folios, 1, __ATOMIC_RELAXED);
	} else {
		budget_uncharge(u, charge);
	}
}

static struct pagetable *region_table_at(void *arg, size_t i)
{
	struct uswap *u = arg;

	return &u->regions.v[i]->pt;
}

/*
 * The working set's refaults.  uswap cannot see accesses to resident pages,
 * only faults, so a folio the program uses all the time looks as cold to the
 * clock as one it touched once: both are evicted two turns after their
 * fault, and the hot one comes straight back.  The kernel tells them apart
 * by the refault distance (mm/workingset.c): the evictions between a page's
 * eviction and its refault; a distance under the memory the workload has
 * means the page would have stayed with a little more of it.  Here each
 * folio the reclaimer evicts keeps the low 16 bits of the eviction count in
 * its word; a fault that finds fewer evictions since than the budget has
 * folios gives the folio an age of 3: the clock passes it three more turns.
 * Measured on redis under `uswap run` (docs/BENCHMARKS.md).
 */
uint32_t eviction_stamp(struct uswap *u)
{
	uint32_t n = (uint32_t)__atomic_add_fetch(&u->evictions, 1, __ATOMIC_RELAXED) & 0xffff;

	return (n ? n : 1) << FOLIO_STAMP_SHIFT;
}

uint32_t refault_age(struct uswap *u, uint32_t word)
{
	uint32_t stamp = word >> FOLIO_STAMP_SHIFT, now, distance;

	if (!stamp || !u->max_pages || folio_state_of(word) != FOLIO_OUT)
		return 0;
	now = (uint32_t)__atomic_load_n(&u->evictions, __ATOMIC_RELAXED) & 0xffff;
	distance = (now - stamp) & 0xffff;
	if (distance >= u->max_pages >> u->p.folio_order)
		return 0;
	ctr_add(u, CTR_refault_activations, 1);
	return FOLIO_AGE_MASK;
}

/*
 * Pick and lock a victim with the clock (core/clock.c), and up to max - 1
 * consecutive folios after it that the hand would pick next (a private
 * region's, none PARTIAL), evicted with it in one move (folios_evict).
 * @return how many were locked: folios *fp .. *fp + n - 1; 0 when none.
 */
static unsigned victims_pick(struct uswap *u, unsigned max, struct region **rp, uint32_t *fp)
{
	unsigned n = 0;
	size_t t;

	pthread_mutex_lock(&u->clock_lock);
	if (clock_pick(&u->hand, region_table_at, u, u->regions.n, &t, fp)) {
		struct region *r = u->regions.v[t];

		n = 1;
		if (max > 1 && !r->sh && !(folio_word_load(&r->pt, *fp) & FOLIO_PARTIAL))
			n += clock_take_next(&u->hand, &r->pt, t, *fp, max - 1);
		*rp = r;
	}
	pthread_mutex_unlock(&u->clock_lock);
	return n;
}

/* The end of one victim's eviction, which returned rc; charge is what it
 * counted before.  @return rc. */
static int victim_done(struct uswap *u, struct region *r, uint32_t f, uint64_t charge, int rc,
		       enum counter why)
{
	if (rc == 0) {
		if (!r->sh) /* shared_evict counts its own */
			budget_release(u, &r->pt, f, charge);
		/* the stamp is this instance's count: private folios only */
		folio_unlock_wake(r, f, FOLIO_OUT, r->sh ? 0 : eviction_stamp(u), FOLIO_REFERENCED);
		ctr_add(u, why, 1);
		return 0;
	}
	/* refused (pinned or shared pages, a kernel error): skip it for a turn
	 * of the clock; a full store is nobody's fault in particular */
	if (rc == -EBUSY)
		budget_exempt(u, &r->pt, f);
	folio_unlock_wake(r, f, FOLIO_RESIDENT, rc == -ENOSPC ? 0 : FOLIO_BUSY, 0);
	return rc;
}

int reclaim_some(struct uswap *u, struct folio_ctx *c, enum counter why, unsigned max)
{
	unsigned attempts;

	if (max > RECLAIM_BATCH_MAX)
		max = RECLAIM_BATCH_MAX;
	/* A few victims may refuse (busy pages, a full store); try others. */
	for (attempts = 0; attempts < 8; attempts++) {
		uint64_t charge[RECLAIM_BATCH_MAX];
		int rc[RECLAIM_BATCH_MAX];
		bool evicted = false, full = false;
		struct region *r;
		unsigned n, i;
		uint32_t f;

		n = victims_pick(u, max, &r, &f);
		if (!n)
			return -EAGAIN;
		for (i = 0; i < n; i++)
			charge[i] = folio_charge(&r->pt, f + i, folio_word_load(&r->pt, f + i));
		if (r->sh)
			rc[0] = shared_evict(u, c, r, f);
		else
			folios_evict(u, c, r, f, n, rc);
		for (i = 0; i < n; i++) {
			int one = victim_done(u, r, f + i, charge[i], rc[i], why);

			evicted |= one == 0;
			full |= one == -ENOSPC;
		}
		if (evicted)
			return 0;
		if (full)
			return -ENOSPC; /* the store is full: other victims won't fit either */
	}
	return -EAGAIN;
}

static void overshoot_report(struct uswap *u, int why)
{
	int expected = 0;
	char full[128];

	ctr_add(u, CTR_limit_overshoot_bytes, folio_bytes(u));
	if (!__atomic_compare_exchange_n(&u->overshoot_reported, &expected, 1, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	if (u->p.store_limit)
		snprintf(full, sizeof(full), "the store is full (store_limit of %zu bytes reached)",
			 u->p.store_limit);
	else
		snprintf(full, sizeof(full), "the store has no room (its file system or server is "
					     "full)");
	fprintf(stderr,
		"uswap: resident memory exceeds the budget of %zu bytes: %s; nothing is dropped "
		"(see the limit_overshoot_bytes counter)\n",
		u->p.limit,
		why == -ENOSPC ? full
			       : "nothing can be evicted now (every resident folio is in use by a "
				 "fault or an eviction, pinned, or shared copy-on-write since a fork; "
				 "a budget of a few folios meets this often)");
}

uint64_t budget_resident(struct uswap *u)
{
	return __atomic_load_n(&u->resident_pages, __ATOMIC_RELAXED) +
	       (shared_resident(u) << u->p.folio_order);
}

/* How many folios the background thread evicts at once: no more than
 * takes resident down to the low watermark, nor than its staging ring
 * holds (folios_evict moves a batch into consecutive staging folios). */
static unsigned background_batch(struct uswap *u)
{
	uint64_t resident = budget_resident(u), over, folios;
	unsigned n = RECLAIM_BATCH_MAX;

	over = resident > u->low_wm ? resident - u->low_wm : 0;
	folios = (over + (1u << u->p.folio_order) - 1) >> u->p.folio_order;
	if (folios < n)
		n = (unsigned)folios;
	if (u->reclaim_ctx.staging_n < n)
		n = u->reclaim_ctx.staging_n;
	return n ? n : 1;
}

/* Evict once (a batch on the background thread) on behalf of a thread
 * that needs room.  @return as reclaim_some. */
static int budget_reclaim(struct uswap *u, struct folio_ctx *c)
{
	/* readahead charges on the reclaimer's own thread: not the fault
	 * path, which evicts no more than it needs */
	return reclaim_some(u, c, c->background ? CTR_reclaim_background : CTR_reclaim_direct,
			    c->background ? background_batch(u) : 1);
}

/*
 * Make room, then count: as the kernel's memcg does (try_charge reclaims
 * before it commits), pages are added only where they fit, so resident
 * memory never exceeds the budget, not even while a fault or readahead
 * evicts to make room for them (counting first and evicting after let
 * `uswap stat` and the program see a folio or a batch too many).  Only
 * when nothing can be evicted are they counted anyway (overshoot_report).
 * The count is private (resident_pages, in pages) or a shared region's
 * (its header's resident, in folios, which other processes charge too: a
 * compare-and-swap works across them as well).  The exchange makes the
 * limit exact among charges to one count; charges to two counts at the
 * same instant (a private folio and a shared one, two shared regions) may
 * each see the same room and end one charge above the budget, until the
 * reclaimer's next pass (one count for all would close that, at the cost
 * of a word every mapper of every region writes).
 */
void budget_charge_to(struct uswap *u, struct folio_ctx *c, uint64_t *counter, uint64_t units,
		      uint64_t pages)
{
	if (u->max_pages) {
		for (;;) {
			uint64_t cur = __atomic_load_n(counter, __ATOMIC_RELAXED);
			int rc;

			/* (budget_resident reads the counter again: if it moved
			 * since cur, the exchange below fails and we look again;
			 * the other counts it adds are not held still) */
			if (budget_resident(u) + pages <= u->max_pages) {
				if (__atomic_compare_exchange_n(counter, &cur, cur + units, false,
								__ATOMIC_RELAXED, __ATOMIC_RELAXED))
					break;
				continue;
			}
			rc = budget_reclaim(u, c);
			if (rc) {
				overshoot_report(u, rc);
				__atomic_add_fetch(counter, units, __ATOMIC_RELAXED);
				break;
			}
		}
		if (budget_resident(u) > u->high_wm)
			os_eventfd_signal(u->kick_fd);
		return;
	}
	__atomic_add_fetch(counter, units, __ATOMIC_RELAXED);
}

void budget_charge(struct uswap *u, struct folio_ctx *c, uint64_t pages)
{
	budget_charge_to(u, c, &u->resident_pages, pages, pages);
}

static void *reclaimer_main(void *arg)
{
	struct uswap *u = arg;
	unsigned shard = u->nworkers; /* the reclaimer's own region shard */
	int timeout_ms = 100;

	while (!__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE)) {
		/* what this pass evicted leaves staging before the sleep */
		staging_flush(u, &u->reclaim_ctx);
		os_wait_readable(u->kick_fd, u->stop_fd, timeout_ms);
		os_eventfd_drain(u->kick_fd);
		readahead_run(u, &u->reclaim_ctx, shard);
		/* One folio per hold of the shard, so map and unmap never wait
		 * for a whole reclaim pass; readahead asked for meanwhile goes
		 * first (a program waits for it). */
		while (u->max_pages && !__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE)) {
			int rc = -EAGAIN;

			readahead_run(u, &u->reclaim_ctx, shard);
			pthread_rwlock_rdlock(&u->fork_lock);
			regions_read_lock(&u->regions, shard);
			/* shared folios other processes bring in count too: checked
			 * here, at least every 100 ms */
			if (budget_resident(u) > u->low_wm)
				rc = reclaim_some(u, &u->reclaim_ctx, CTR_reclaim_background,
						  background_batch(u));
			regions_read_unlock(&u->regions, shard);
			pthread_rwlock_unlock(&u->fork_lock);
			if (rc)
				break;
		}
		/* nothing else to do: idle recompression, a few folios at a
		 * time, back at once while there is more (recompress.c) */
		timeout_ms = recompress_run(u, &u->reclaim_ctx, shard) ? 0 : 100;
	}
	return NULL;
}

int reclaimer_start(struct uswap *u)
{
	int rc;

	/* started without a budget too: it serves readahead */
	rc = folio_ctx_init(u, &u->reclaim_ctx);
	if (rc)
		return rc;
	u->reclaim_ctx.background = true;
	rc = -pthread_create(&u->reclaimer, NULL, reclaimer_main, u);
	if (rc) {
		folio_ctx_destroy(u, &u->reclaim_ctx);
		return rc;
	}
	u->reclaimer_started = true;
	return 0;
}

void reclaimer_stop(struct uswap *u)
{
	if (!u->reclaimer_started)
		return;
	pthread_join(u->reclaimer, NULL);
	folio_ctx_destroy(u, &u->reclaim_ctx);
	u->reclaimer_started = false;
}

/* SPDX-License-Identifier: MIT */
/*
 * Idle recompression (zram's recompress, CONFIG_ZRAM_MULTI_COMP, done in
 * the background thread).
 *
 * Evictions compress at the codec's fast level: a fault may wait for them.
 * A folio that then stays stored is paid for in memory for as long as it
 * stays, so when the background thread has nothing else to do (no
 * readahead queued, resident under the low watermark) it walks the
 * regions and stores such folios anew at a strong level of the same
 * format: lz4 -> LZ4HC (plain lz4: decoded as fast as before), zstd ->
 * the configured zstd level.  Measured in docs/BENCHMARKS.md.
 *
 * Which folios: OUT (plainly: not swap-cached, not partly resident) in a
 * private region, and "out for a while": evicted at least a budget's worth
 * of evictions ago (the refault distance of reclaim.c; a folio evicted
 * more recently would count as a working-set refault, and is likely to
 * come back before the work pays).  Each stored run of the folio (one for
 * a whole folio, one per page for an order-0 fallback, one per partial
 * eviction: evict_partial_packed) is read, its data
 * pages decoded and compressed at the strong level; the new object is
 * kept only when it is smaller by RECOMP_MARGIN.  Either way the blob ends
 * with its "seen" flag (folio_blob.h), so nothing is tried twice: a blob
 * that did not shrink is stored again with the flag alone.
 *
 * Correctness: the folio's lock is taken with a trylock (the background
 * thread never waits for a folio); a fault on it meanwhile waits as for
 * an eviction.  Under the lock no one else uses the folio's runs in this
 * process: the new object is put, the run re-pointed to it
 * (slot_run_rehandle, under the slot map's cluster lock), and only then
 * the old object freed.  A put that fails (store full) keeps the old one.
 * fork_lock is held for reading, so no fork happens mid-change; after a
 * fork each process has its own slot map and its own ram store (a copy),
 * so each recompresses its own objects.  Only the ram store: the file and
 * tier stores share the space of objects alive at a fork between parent
 * and child, and a redis round trip per folio is no idle work, so
 * options.c refuses recompression with them.  Shared regions keep their
 * data in the memfd, not in the store: skipped.
 *
 * Pacing: at most RECOMP_BATCH runs and RECOMP_SCAN folios per call, with
 * the region shard and fork_lock held only for one folio at a time; the
 * caller serves readahead and reclaim between calls, and a page-out the
 * program asked for (USWAP_ADV_PAGEOUT) goes first too.  A fault anywhere in
 * the instance ends the call after the folio in hand (the caller then
 * sleeps its 100 ms): while the program faults, one folio per wake.  A full pass over the
 * regions that finds nothing to do stops the walk until something new is
 * evicted.
 */
#include "instance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_strong.h"
#include "codec/folio_blob.h"

#define RECOMP_BATCH 8   /* runs recompressed per call */
#define RECOMP_SCAN 1024 /* folios looked at per call */
/* After a pass that found nothing, look again when something was evicted,
 * or after this long (folios evicted too recently to be taken have aged). */
#define RECOMP_RESCAN_NS (5ull * 1000 * 1000 * 1000)
/* Keep a recompressed object only when it saves at least 1/32 of the old
 * one and 64 bytes: less is lost in the ram store's size classes. */
#define RECOMP_MARGIN(len) ((len) / 32 > 64 ? (len) / 32 : 64)

struct recompressor {
	struct codec_strong *cs;
	uintptr_t cursor;     /* address of the next folio to look at */
	bool pass_found;      /* the pass since the last wrap found work */
	bool idle;            /* a whole pass found nothing: wait for evictions */
	bool replaced;        /* objects were replaced since the last compaction */
	uint64_t idle_swapouts; /* swapout counters when the pass began */
	uint64_t idle_ns;     /* os_now_ns() when idle began */
};

int recompress_init(struct uswap *u)
{
	struct recompressor *rc;
	int err;

	if (!u->p.recompress)
		return 0;
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	err = codec_strong_create(u->p.codec, u->p.recompress, &rc->cs);
	if (err) {
		free(rc);
		return err;
	}
	u->recomp = rc;
	return 0;
}

void recompress_destroy(struct uswap *u)
{
	if (!u->recomp)
		return;
	codec_strong_destroy(u->recomp->cs);
	free(u->recomp);
	u->recomp = NULL;
}

static long strong_compress(void *arg, const void *src, size_t len, void *dst, size_t cap)
{
	return codec_strong_compress(arg, src, len, dst, cap);
}

struct blob_copy {
	void *buf;
	size_t cap, len;
};

static int blob_copy_visit(const void *obj, size_t len, void *arg)
{
	struct blob_copy *b = arg;

	if (len > b->cap || len == 0)
		return -EILSEQ;
	memcpy(b->buf, obj, len);
	b->len = len;
	return 0;
}

/* Has recompression been at the object already?  Only its header is read. */
static int blob_seen_visit(const void *obj, size_t len, void *arg)
{
	int rc = folio_blob_strong(obj, len);

	(void)arg;
	return rc < 0 ? rc : rc ? 1 : 0;
}

enum recomp_outcome { RECOMP_SEEN, RECOMP_DONE, RECOMP_KEPT, RECOMP_FAILED };

/*
 * Store the run that starts at first (handle h, 2^order pages) anew at the
 * strong level.  The caller holds the lock of the folio whose pages use it.
 */
static enum recomp_outcome run_recompress(struct uswap *u, struct folio_ctx *c, slot_t first,
					  store_handle_t h, unsigned order)
{
	const size_t folio = folio_bytes(u);
	struct blob_copy b = { c->blob, folio_blob_bound(1u << order), 0 };
	const void *keep;
	store_handle_t nh;
	size_t nlen, cap;
	int rc;

	rc = u->p.store_ops->get(u->store, h, blob_seen_visit, NULL);
	if (rc > 0)
		return RECOMP_SEEN;
	if (rc == 0)
		rc = u->p.store_ops->get(u->store, h, blob_copy_visit, &b);
	if (rc)
		goto failed;
	/* scratch2 (one folio) takes the result: it must be smaller anyway */
	cap = b.len - RECOMP_MARGIN(b.len);
	if (b.len <= RECOMP_MARGIN(b.len))
		cap = 0;
	if (cap > folio)
		cap = folio;
	rc = folio_blob_recompress(b.buf, b.len, strong_compress, u->recomp->cs, c->scratch2, cap,
				   c->scratch, &nlen);
	if (rc == 0) {
		keep = c->scratch2;
	} else if (rc == -ENOSPC) {
		/* not worth it: the same bytes, flagged so it is never tried again */
		rc = folio_blob_mark_strong(b.buf, b.len);
		if (rc)
			goto failed;
		keep = b.buf;
		nlen = b.len;
	} else {
		goto failed;
	}
	rc = u->p.store_ops->put(u->store, keep, nlen, &nh);
	if (rc)
		goto failed; /* a full store keeps the old object */
	rc = slot_run_rehandle(u->slots, first, h, nh);
	if (rc) {
		u->p.store_ops->free(u->store, nh);
		goto failed;
	}
	u->p.store_ops->free(u->store, h);
	if (keep == b.buf)
		return RECOMP_KEPT;
	ctr_add(u, CTR_recompress_saved_bytes, b.len - nlen);
	return RECOMP_DONE;
failed:
	ctr_add(u, CTR_recompress_fail, 1);
	return RECOMP_FAILED;
}

/* Is folio f (word w) one to recompress: plainly OUT, out for a while? */
static bool folio_recompressible(struct uswap *u, uint32_t w)
{
	uint32_t stamp = w >> FOLIO_STAMP_SHIFT, now;

	if (folio_state_of(w) != FOLIO_OUT || (w & (FOLIO_LOCKED | FOLIO_GONE | FOLIO_PARTIAL)))
		return false;
	if (!stamp || !u->max_pages)
		return true;
	now = (uint32_t)__atomic_load_n(&u->evictions, __ATOMIC_RELAXED) & 0xffff;
	return ((now - stamp) & 0xffff) >= u->max_pages >> u->p.folio_order;
}

/*
 * Recompress the runs of folio f of r, which the caller has locked OUT.
 * @return the runs recompressed or marked (0 when all were seen already).
 */
static unsigned folio_recompress(struct uswap *u, struct folio_ctx *c, struct region *r,
				 uint32_t f)
{
	const unsigned n = folio_pages(&r->pt);
	const uint32_t p0 = f * n;
	slot_t first, prev = { UINT32_MAX };
	store_handle_t h;
	unsigned i, order, done = 0;

	for (i = 0; i < n; i++) {
		page_entry_t e = r->pt.entry[p0 + i];

		if (!entry_has_slot(e))
			continue;
		if (slot_run(u->slots, entry_slot(e), &h, &first, &order))
			continue; /* cannot happen under the lock: instance_check says so */
		if (first.v == prev.v)
			continue; /* (runs may interleave: a run met again is
				     seen already, or failed and is tried again) */
		prev = first;
		switch (run_recompress(u, c, first, h, order)) {
		case RECOMP_DONE:
			ctr_add(u, CTR_recompress_folios, 1);
			done++;
			break;
		case RECOMP_KEPT:
			ctr_add(u, CTR_recompress_kept, 1);
			done++;
			break;
		default:
			break;
		}
	}
	return done;
}

/* Is there other work the background thread should do first?  The caller
 * holds a region shard. */
static bool recompress_should_yield(struct uswap *u)
{
	unsigned ra;

	if (__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE))
		return true;
	pthread_mutex_lock(&u->ra_lock);
	ra = u->ra_n;
	pthread_mutex_unlock(&u->ra_lock);
	/* a page-out the program asked for: the CPU is its (the slow levels
	 * made a page-out of 1 GiB take 39-91 s instead of 8-14) */
	return ra || __atomic_load_n(&u->paging_out, __ATOMIC_RELAXED) ||
	       (u->max_pages && budget_resident(u) > u->low_wm);
}

static uint64_t faults(struct uswap *u)
{
	return ctr_get(u, CTR_faults) + ctr_get(u, CTR_wp_faults);
}

static uint64_t swapouts(struct uswap *u)
{
	return ctr_get(u, CTR_swapout_pages) + ctr_get(u, CTR_swapout_partial);
}

/*
 * Look at the folio at the cursor and move the cursor on.  The caller
 * holds fork_lock for reading and the region shard.  @return the runs
 * recompressed; *wrapped when the cursor went back to the first region.
 */
static unsigned recompress_step(struct uswap *u, struct folio_ctx *c, bool *wrapped)
{
	struct recompressor *rc = u->recomp;
	struct region *r = regions_find_from(&u->regions, rc->cursor);
	uint32_t f, w;
	unsigned done = 0;

	if (!r) {
		rc->cursor = 0;
		*wrapped = true;
		return 0;
	}
	if ((uintptr_t)r->start > rc->cursor)
		rc->cursor = (uintptr_t)r->start;
	f = (uint32_t)((rc->cursor - (uintptr_t)r->start) / folio_bytes(u));
	rc->cursor = (uintptr_t)r->start + (uintptr_t)(f + 1) * folio_bytes(u);
	if (r->sh)
		return 0;
	w = folio_word_load(&r->pt, f);
	if (!folio_recompressible(u, w) || !folio_trylock(&r->pt, f, &w))
		return 0;
	if (folio_recompressible(u, w))
		done = folio_recompress(u, c, r, f);
	/* the unlock clears the stamp: give it back */
	folio_unlock_wake(r, f, folio_state_of(w), w & FOLIO_STAMP_MASK, 0);
	return done;
}

bool recompress_run(struct uswap *u, struct folio_ctx *c, unsigned shard)
{
	struct recompressor *rc = u->recomp;
	unsigned scanned, done = 0;
	uint64_t faults0;

	if (!rc)
		return false;
	if (rc->idle) {
		if (swapouts(u) == rc->idle_swapouts &&
		    os_now_ns() - rc->idle_ns < RECOMP_RESCAN_NS)
			return false;
		rc->idle = false;
	}
	faults0 = faults(u);
	for (scanned = 0; scanned < RECOMP_SCAN && done < RECOMP_BATCH; scanned++) {
		bool wrapped = false, yield;

		pthread_rwlock_rdlock(&u->fork_lock);
		regions_read_lock(&u->regions, shard);
		yield = recompress_should_yield(u); /* (the shard: shared regions count) */
		if (yield) {
			regions_read_unlock(&u->regions, shard);
			pthread_rwlock_unlock(&u->fork_lock);
			return false; /* the caller serves it, and comes back */
		}
		if (rc->cursor == 0 && !rc->pass_found)
			rc->idle_swapouts = swapouts(u); /* a pass starts */
		done += recompress_step(u, c, &wrapped);
		regions_read_unlock(&u->regions, shard);
		pthread_rwlock_unlock(&u->fork_lock);
		if (done)
			rc->pass_found = rc->replaced = true;
		if (wrapped && rc->replaced && u->p.store_ops->compact) {
			/* the old objects left holes in the store's pages: give
			 * them back at the end of a pass, not at the next put
			 * that needs room */
			u->p.store_ops->compact(u->store);
			rc->replaced = false;
		}
		if (wrapped) {
			if (!rc->pass_found) {
				/* nothing in a whole pass: wait for new evictions */
				rc->idle = true;
				rc->idle_ns = os_now_ns();
				return false;
			}
			rc->pass_found = false;
		}
		if (done && faults(u) != faults0)
			return false; /* the program is busy: after a sleep */
	}
	return true;
}

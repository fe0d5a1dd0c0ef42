/* SPDX-License-Identifier: MIT */
/*
 * Eviction of one folio.
 *
 * The folio's pages are first taken out of the program's reach with
 * UFFDIO_MOVE into a private staging folio: from that instant a write to
 * the folio faults and waits on the folio lock we hold, so the copy we
 * compress can never be stale.  Only then are the pages classified (zero /
 * same-filled / data), encoded as one blob, stored, and given a run of
 * contiguous slots.  If the store is full or the kernel refuses the move,
 * the pages are moved back: nothing is lost and the folio stays resident.
 *
 * A swap-cached folio (SWAPCACHE: swapped in and not written since, its
 * pages write-protected) still has its stored copy: its pages are moved
 * out the same way and simply dropped, once its pages without a stored
 * copy are checked to be still zero (without a budget they are the shared
 * zero page, which is not write-protected: a write to it is a
 * copy-on-write the kernel does not report; under a budget they come in
 * write-protected with the rest, swapin.c, and this is only a guard).
 *
 * Pages move out with the staging userfaultfd (the destination must be
 * registered with the one that moves) and back with the region's.
 *
 * Each eviction takes the next empty folio of its thread's staging ring
 * (staging_take) and uses that one folio throughout: the move out, the
 * encode, the move back on failure.  Its pages are dropped later, with the
 * rest of the ring (folio_ctx.c): one TLB flush for many evictions.
 */
#include "instance.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/folio_blob.h"
#include "os/os.h"

#define EAGAIN_RETRIES 1000

/*
 * Move pages [i, npages) of the folio at from to the same pages of the
 * staging folio at to, page by page past holes.  Bits of *moved (page i of
 * the folio) are set for the pages that moved.
 *
 * The staging folio is empty on entry, so -EEXIST at staging page i can
 * only mean that page i was moved already: the kernel's move_pages() can
 * move a page and then report less progress than it made (an internal
 * -EAGAIN after a page migration; seen on 6.18 under compaction).  Such a
 * page counts as moved; trusting the reported count alone would discard
 * it with the staging folio.
 */
static int move_pages_out(struct uswap *u, char *to, char *from, unsigned i, unsigned npages,
			  uint64_t *moved)
{
	unsigned retries = 0;

	while (i < npages) {
		size_t off = (size_t)i * OS_PAGE_SIZE;
		long n = os_uffd_move(u->staging_fd, to + off, from + off,
				      (size_t)(npages - i) * OS_PAGE_SIZE, OS_DONTWAKE);

		if (n > 0) {
			unsigned pages = (unsigned)(n / OS_PAGE_SIZE), j;

			for (j = i; j < i + pages; j++)
				moved[j / 64] |= 1ull << (j % 64);
			i += pages;
		} else if (n == -ENOENT) {
			/* a hole: the page was never populated or was dropped */
			i++;
		} else if (n == -EEXIST) {
			moved[i / 64] |= 1ull << (i % 64);
			ctr_add(u, CTR_move_underreported, 1);
			i++;
		} else if (n == -EAGAIN && retries++ < EAGAIN_RETRIES) {
			ctr_add(u, CTR_ioctl_retries, 1);
		} else {
			return n ? (int)n : -EIO;
		}
	}
	return 0;
}

/* Undo move_pages_out: put the moved pages back where they were. */
static void move_pages_back(struct uswap *u, char *region_folio, char *staging, unsigned npages,
			    const uint64_t *moved)
{
	unsigned i;

	for (i = 0; i < npages; i++) {
		size_t off = (size_t)i * OS_PAGE_SIZE;
		unsigned retries = 0;
		long n;

		if (!(moved[i / 64] >> (i % 64) & 1))
			continue;
		/* EAGAIN passes (the mm is changing: an event not read yet), but
		 * may outlast any fixed number of tries: the staging folio holds
		 * the only copy, so after the quick tries keep trying, 1 ms apart,
		 * as a fault does (said once a second). */
		for (;;) {
			n = os_uffd_move(u->ufd, region_folio + off, staging + off, OS_PAGE_SIZE,
					 OS_DONTWAKE);
			if (n != -EAGAIN)
				break;
			ctr_add(u, CTR_ioctl_retries, 1);
			if (++retries < EAGAIN_RETRIES)
				continue;
			/* the event may wait for this very thread to read it */
			events_absorb(u);
			if (retries % 1000 == EAGAIN_RETRIES % 1000)
				fprintf(stderr, "uswap: putting back page %p of an eviction that "
						"failed: the kernel says EAGAIN; retrying\n",
					(void *)(region_folio + off));
			os_sleep_ns(1000000);
		}
		if (n == OS_PAGE_SIZE)
			continue;
		if (!os_page_mapped(staging + off)) {
			/* A page marked moved that staging does not hold: a copy
			 * would fault on the staging userfaultfd, which nobody
			 * serves, and wait for ever (a reclaimer stuck so in
			 * test_store_full was seen once, in about 36 runs of two at
			 * once; the cause was not found).  Said loudly, and the
			 * page is poisoned: SIGBUS, never wrong data. */
			fprintf(stderr, "uswap: BUG: page %p of a failed eviction is not in its "
					"staging folio (putting it back said %s); the access gets "
					"SIGBUS\n",
				(void *)(region_folio + off), strerror((int)-n));
			ctr_add(u, CTR_fault_poisoned, 1);
			os_uffd_poison(u->ufd, region_folio + off, OS_PAGE_SIZE);
			continue;
		}
		/* Cannot happen unless the kernel changed under us; copying keeps
		 * the data. */
		range_install(u, u->ufd, INSTALL_COPY, region_folio + off, staging + off,
			      OS_PAGE_SIZE, false);
	}
}

/* Fill the holes of the staging folio with the zero page so that it reads
 * as the region did (a hole reads as zero). */
static int staging_fill_holes(struct uswap *u, char *staging, unsigned npages,
			      const uint64_t *moved)
{
	unsigned i;

	for (i = 0; i < npages; i++) {
		int rc;

		if (moved[i / 64] >> (i % 64) & 1)
			continue;
		rc = range_install(u, u->staging_fd, INSTALL_ZERO,
				   staging + (size_t)i * OS_PAGE_SIZE, NULL, OS_PAGE_SIZE, false);
		if (rc < 0)
			return rc;
	}
	return 0;
}

struct stored_run {
	store_handle_t h;
	slot_t first;
};

static void run_free(struct uswap *u, struct stored_run *run, unsigned npages)
{
	store_handle_t freed;
	unsigned i;

	for (i = 0; i < npages; i++)
		if (slot_put(u->slots, (slot_t){ run->first.v + i }, &freed))
			u->p.store_ops->free(u->store, freed);
}

/* Store one blob and give it a run of 2^order slots. */
static int blob_store(struct uswap *u, const void *blob, size_t len, unsigned order,
		      struct stored_run *run)
{
	int rc = u->p.store_ops->put(u->store, blob, len, &run->h);

	if (rc)
		return rc;
	rc = slot_alloc(u->slots, order, run->h, &run->first);
	if (rc)
		u->p.store_ops->free(u->store, run->h);
	return rc;
}

/* The fallback when no contiguous run can be had: each data page becomes
 * its own blob in its own slot. */
static int evict_order0(struct uswap *u, struct folio_ctx *c, char *staging, struct region *r,
			uint32_t f, const struct folio_encode_result *folio_res)
{
	struct pagetable *pt = &r->pt;
	unsigned npages = folio_pages(pt), i, j;
	uint32_t p0 = f << pt->folio_order;
	int rc = 0;

	for (i = 0; i < npages; i++) {
		struct folio_encode_result res;
		struct stored_run run;

		if (folio_res->zero_mask[i / 64] >> (i % 64) & 1)
			continue;
		rc = folio_encode(u->p.codec, staging + (size_t)i * OS_PAGE_SIZE, 1, c->blob,
				  c->scratch, &res);
		if (!rc)
			rc = blob_store(u, c->blob, res.blob_len, 0, &run);
		if (rc)
			break;
		pt->entry[p0 + i] = entry_of_slot(run.first);
	}
	if (rc) {
		/* undo the pages stored so far */
		for (j = 0; j < i; j++) {
			page_entry_t e = pt->entry[p0 + j];
			struct stored_run run;

			if (!entry_has_slot(e))
				continue;
			run.first = entry_slot(e);
			run_free(u, &run, 1);
			pt->entry[p0 + j] = 0;
		}
		return rc;
	}
	ctr_add(u, CTR_swapout_fallback, 1);
	return 0;
}

static bool page_is_zero(const char *p)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	size_t i;

	for (i = 0; i < OS_PAGE_SIZE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

/* Is the swap-cached folio now in staging still what its entries say:
 * every page without a slot still zero? */
static bool swapcache_clean(const struct pagetable *pt, uint32_t p0, const char *staging)
{
	unsigned i;

	for (i = 0; i < folio_pages(pt); i++)
		if (!entry_has_slot(pt->entry[p0 + i]) &&
		    !page_is_zero(staging + (size_t)i * OS_PAGE_SIZE))
			return false;
	return true;
}

unsigned folio_drop_slots(struct uswap *u, struct region *r, uint32_t f, unsigned first,
			  unsigned n, unsigned *shared)
{
	struct pagetable *pt = &r->pt;
	uint32_t p = (f << pt->folio_order) + first, end = p + n;
	unsigned dropped = 0;

	for (; p < end; p++) {
		page_entry_t e = pt->entry[p];
		store_handle_t freed;

		zeromap_clear(pt, p);
		if (!entry_has_slot(e))
			continue;
		if (shared && entry_shared(e))
			(*shared)++;
		if (slot_put(u->slots, entry_slot(e), &freed))
			u->p.store_ops->free(u->store, freed);
		pt->entry[p] = 0;
		dropped++;
	}
	return dropped;
}

void swapcache_drop(struct uswap *u, struct region *r, uint32_t f, bool written)
{
	unsigned shared = 0, n;

	if (!(folio_word_load(&r->pt, f) & FOLIO_SWAPCACHE))
		return;
	n = folio_drop_slots(u, r, f, 0, folio_pages(&r->pt), &shared);
	__atomic_fetch_sub(&u->swapcache_pages, n, __ATOMIC_RELAXED);
	if (written) {
		ctr_add(u, CTR_swapcache_reuse, n - shared);
		ctr_add(u, CTR_swapcache_copy, shared);
	}
	folio_flags_clear(&r->pt, f, FOLIO_SWAPCACHE);
}

static unsigned folio_slots(const struct pagetable *pt, uint32_t p0)
{
	unsigned i, n = 0;

	for (i = 0; i < folio_pages(pt); i++)
		n += entry_has_slot(pt->entry[p0 + i]);
	return n;
}

/* Count a failed eviction: why, or when CTR_COUNT the reason rc says. */
static void evict_fail_count(struct uswap *u, enum counter why, int rc)
{
	if (why != CTR_COUNT)
		ctr_add(u, why, 1);
	else if (rc == -ENOSPC)
		ctr_add(u, CTR_reclaim_fail_store_full, 1);
	else if (rc == -EBUSY)
		ctr_add(u, CTR_reclaim_fail_busy, 1);
	else if (rc == -ENOMEM)
		ctr_add(u, CTR_reclaim_fail_nomem, 1);
	else
		ctr_add(u, CTR_reclaim_fail_other, 1);
}

static bool page_absent(const struct pagetable *pt, uint32_t p)
{
	return entry_has_slot(pt->entry[p]) || zeromap_test(pt, p);
}

/*
 * The moved pages of a PARTIAL folio (bits of moved, lazily freed ones
 * zeroed already) stored as one blob: gathered in folio order into
 * c->scratch2, padded with zero pages to 2^m pages, encoded once, and given
 * one run of 2^m slots; the j-th moved page takes slot first + j (the
 * single-page decode finds a page by its place in its run, not in its
 * folio), zero pages take a zero bit, and the slots of zero and padding
 * pages are given back at once.  One store object and one entry instead of
 * one per page, and a better ratio than 4 KiB blobs: random access leaves
 * many such folios (it used to end the budget run at 10.2 bytes of
 * metadata per page, and the store 20% above zram).  Nothing changes
 * unless it all succeeds.  @return 0; -ENOSPC when more than
 * PACKED_MAX_PAGES pages moved, no run of 2^m slots is free or the store
 * is full (the caller stores the pages one by one, or finds out); -errno
 * (*why set when the codec failed).
 */
/* At most this many pages in one packed blob: a random fault on one of
 * them decodes the blob up to its page (all of it with zstd), so larger
 * folios (up to 512 pages) with more pages resident go out page by page. */
#define PACKED_MAX_PAGES 16u

static int evict_partial_packed(struct uswap *u, struct folio_ctx *c, const char *staging,
				struct pagetable *pt, uint32_t p0, const uint64_t *moved,
				struct folio_encode_result *res, enum counter *why)
{
	unsigned npages = folio_pages(pt), k = 0, m = 0, i, j;
	uint32_t at[FOLIO_MAX_PAGES];
	struct stored_run run;
	store_handle_t freed;
	int rc;

	for (i = 0; i < npages; i++)
		k += moved[i / 64] >> (i % 64) & 1;
	if (k > PACKED_MAX_PAGES)
		return -ENOSPC;
	for (i = 0, k = 0; i < npages; i++)
		if (moved[i / 64] >> (i % 64) & 1) {
			memcpy((char *)c->scratch2 + (size_t)k * OS_PAGE_SIZE,
			       staging + (size_t)i * OS_PAGE_SIZE, OS_PAGE_SIZE);
			at[k++] = p0 + i;
		}
	while (1u << m < k)
		m++;
	memset((char *)c->scratch2 + (size_t)k * OS_PAGE_SIZE, 0,
	       (size_t)((1u << m) - k) * OS_PAGE_SIZE);
	rc = folio_encode(u->p.codec, c->scratch2, 1u << m, c->blob, c->scratch, res);
	if (rc) {
		*why = CTR_reclaim_fail_codec;
		return rc;
	}
	run.first.v = 0;
	if (res->blob_len) {
		rc = blob_store(u, c->blob, res->blob_len, m, &run);
		if (rc)
			return rc;
	}
	for (j = 0; j < 1u << m; j++) {
		bool zero = res->zero_mask[j / 64] >> (j % 64) & 1;

		if (j < k && zero)
			zeromap_set(pt, at[j]);
		else if (j < k)
			pt->entry[at[j]] = entry_of_slot((slot_t){ run.first.v + j });
		if (res->blob_len && zero && slot_put(u->slots, (slot_t){ run.first.v + j }, &freed))
			u->p.store_ops->free(u->store, freed);
	}
	res->zero -= (1u << m) - k; /* the padding */
	return 0;
}

/*
 * Evict a PARTIAL folio (adaptive swap-in, swapin_partial.c): only its
 * mapped pages move out, together as one blob (evict_partial_packed), or,
 * when no run of slots can be had, each as an order-0 blob (or a zero
 * bit); the pages still stored keep their slots and zero bits untouched.  Pages with
 * a slot or a zero bit are not mapped, so they are not even tried (a
 * poisoned one would make the move fail).  Lazily freed pages among the
 * moved ones are discarded (zero bits), as in a whole eviction.  On failure
 * the slots taken here are freed and the moved pages go back.
 */
static int evict_partial(struct uswap *u, struct folio_ctx *c, char *staging, struct region *r,
			 uint32_t f)
{
	struct pagetable *pt = &r->pt;
	unsigned npages = folio_pages(pt), i, j;
	uint32_t p0 = f << pt->folio_order;
	char *base = r->start + ((size_t)p0 << OS_PAGE_SHIFT);
	uint64_t moved[FOLIO_MASK_WORDS] = { 0 }, done[FOLIO_MASK_WORDS] = { 0 };
	unsigned n_data = 0, n_zero = 0, n_same = 0;
	enum counter why = CTR_COUNT;
	int rc = 0;

	for (i = 0; i < npages && !rc; i = j) {
		for (; i < npages && page_absent(pt, p0 + i); i++)
			;
		for (j = i; j < npages && !page_absent(pt, p0 + j); j++)
			;
		if (i < j)
			rc = move_pages_out(u, staging, base, i, j, moved);
	}
	if (!rc) {
		struct folio_encode_result res;

		lazyfree_discard(u, r, f, staging, moved);
		rc = evict_partial_packed(u, c, staging, pt, p0, moved, &res, &why);
		if (rc == 0) {
			n_data = res.data;
			n_same = res.same;
			n_zero = res.zero;
			goto done;
		}
		if (rc == -ENOSPC)
			rc = 0; /* no run of slots free (or the store full): page by page */
	}
	for (i = 0; i < npages && !rc; i++) {
		struct folio_encode_result res;
		struct stored_run run;

		if (!(moved[i / 64] >> (i % 64) & 1))
			continue; /* still stored, or a hole: reads zero */
		rc = folio_encode(u->p.codec, staging + (size_t)i * OS_PAGE_SIZE, 1, c->blob,
				  c->scratch, &res);
		if (rc) {
			why = CTR_reclaim_fail_codec;
			break;
		}
		if (!res.blob_len) {
			zeromap_set(pt, p0 + i);
			n_zero++;
		} else {
			rc = blob_store(u, c->blob, res.blob_len, 0, &run);
			if (rc)
				break;
			pt->entry[p0 + i] = entry_of_slot(run.first);
			n_same += res.same;
			n_data += res.data;
		}
		done[i / 64] |= 1ull << (i % 64);
	}
	if (rc) {
		for (i = 0; i < npages; i++) {
			struct stored_run run;

			if (!(done[i / 64] >> (i % 64) & 1))
				continue;
			if (entry_has_slot(pt->entry[p0 + i])) {
				run.first = entry_slot(pt->entry[p0 + i]);
				run_free(u, &run, 1);
				pt->entry[p0 + i] = 0;
			}
			zeromap_clear(pt, p0 + i);
		}
		move_pages_back(u, base, staging, npages, moved);
		/* pages moved back are no longer write-protected */
		lazyfree_forget(u, r, f);
		evict_fail_count(u, why, rc);
		return rc;
	}
done:
	ctr_add(u, CTR_swapout_pages, n_data + n_same);
	ctr_add(u, CTR_zero_pages_out, n_zero);
	ctr_add(u, CTR_same_filled_pages, n_same);
	ctr_add(u, CTR_swapout_partial, 1);
	/* markers of holes (never moved) go too: an OUT folio has none */
	lazyfree_forget(u, r, f);
	folio_flags_clear(pt, f, FOLIO_PARTIAL);
	return 0;
}

/* folio_evict of a folio not PARTIAL into its staging folio, where its
 * first premoved pages are already. */
static int evict_whole(struct uswap *u, struct folio_ctx *c, char *staging, struct region *r,
		       uint32_t f, unsigned premoved)
{
	struct pagetable *pt = &r->pt;
	unsigned npages = folio_pages(pt), order = pt->folio_order, i;
	uint32_t p0 = f << order;
	char *base = r->start + ((size_t)p0 << OS_PAGE_SHIFT);
	uint64_t moved[FOLIO_MASK_WORDS];
	struct folio_encode_result res;
	struct stored_run run = { 0 };
	enum counter why = CTR_COUNT; /* the failure reason, when not rc's */
	int rc;

	memset(moved, 0, sizeof(moved));
	for (i = 0; i < premoved; i++)
		moved[i / 64] |= 1ull << (i % 64);
	rc = move_pages_out(u, staging, base, premoved, npages, moved);
	if (rc)
		goto err_move_back;
	if (lazyfree_discard_whole(u, r, f))
		return 0;
	rc = staging_fill_holes(u, staging, npages, moved);
	if (rc)
		goto err_move_back;
	/* lazily freed pages not written since: discarded, recorded as zero */
	lazyfree_discard(u, r, f, staging, NULL);

	if (folio_word_load(pt, f) & FOLIO_SWAPCACHE) {
		if (swapcache_clean(pt, p0, staging)) {
			unsigned n = folio_slots(pt, p0);

			__atomic_fetch_sub(&u->swapcache_pages, n, __ATOMIC_RELAXED);
			ctr_add(u, CTR_swapcache_hits, 1);
			folio_flags_clear(pt, f, FOLIO_SWAPCACHE);
			return 0;
		}
		/* a zero page was written: store the folio anew */
		swapcache_drop(u, r, f, true);
	}

	rc = folio_encode(u->p.codec, staging, npages, c->blob, c->scratch, &res);
	if (rc) {
		why = CTR_reclaim_fail_codec;
		goto err_move_back;
	}
	if (res.blob_len) {
		rc = u->p.store_ops->put(u->store, c->blob, res.blob_len, &run.h);
		if (rc)
			goto err_move_back;
		rc = slot_alloc(u->slots, order, run.h, &run.first);
		if (rc) {
			u->p.store_ops->free(u->store, run.h);
			/* no contiguous run: store the pages one by one */
			if (rc == -ENOSPC && order > 0)
				rc = evict_order0(u, c, staging, r, f, &res);
			if (rc)
				goto err_move_back;
		} else {
			for (i = 0; i < npages; i++)
				pt->entry[p0 + i] = entry_of_slot((slot_t){ run.first.v + i });
		}
	}

	/* Zero pages: a bit in the zero map, and no slot. */
	for (i = 0; i < npages; i++) {
		if (!(res.zero_mask[i / 64] >> (i % 64) & 1))
			continue;
		zeromap_set(pt, p0 + i);
		if (entry_has_slot(pt->entry[p0 + i])) {
			store_handle_t freed;

			if (slot_put(u->slots, entry_slot(pt->entry[p0 + i]), &freed))
				u->p.store_ops->free(u->store, freed);
			pt->entry[p0 + i] = 0;
		}
	}

	ctr_add(u, CTR_swapout_pages, res.data + res.same);
	ctr_add(u, CTR_zero_pages_out, res.zero);
	ctr_add(u, CTR_same_filled_pages, res.same);
	if (res.raw)
		ctr_add(u, CTR_incompressible_folios, 1);
	if (order > 0 && res.blob_len)
		ctr_add(u, CTR_swapout_folios, 1);
	return 0;

err_move_back:
	/* (the holes filled with the zero page stay in staging: the ring's
	 * flush drops them) */
	move_pages_back(u, base, staging, npages, moved);
	/* pages moved back are no longer write-protected */
	swapcache_drop(u, r, f, false);
	lazyfree_forget(u, r, f);
	evict_fail_count(u, why, rc);
	return rc;
}

int folio_evict(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f)
{
	char *staging = staging_take(u, c);

	if (!staging) {
		/* the ring could not be emptied: nothing moved, nothing to undo */
		evict_fail_count(u, CTR_COUNT, -EIO);
		return -EIO;
	}
	if (folio_word_load(&r->pt, f) & FOLIO_PARTIAL)
		return evict_partial(u, c, staging, r, f);
	return evict_whole(u, c, staging, r, f, 0);
}

/*
 * Each UFFDIO_MOVE out of the program ends with a TLB flush, an IPI to
 * every CPU running one of its threads: one per eviction was the largest
 * single cost of a sequential pass under a hypervisor whose IPIs are slow
 * (docs/BENCHMARKS.md).  Consecutive folios move out together, into
 * consecutive staging folios, with one ioctl and one flush (the kernel
 * batches the present pages of one page table); the ioctl stops at the
 * first page it cannot move (a hole, a page shared since a fork), and each
 * folio then goes on alone from where it stopped, as folio_evict would.
 */
void folios_evict(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
		  unsigned n, int *rc)
{
	unsigned npages = folio_pages(&r->pt), i;
	size_t fs = folio_bytes(u);
	char *staging = n > 1 ? staging_take_run(u, c, n) : NULL;
	long moved = 0;

	if (!staging) {
		for (i = 0; i < n; i++)
			rc[i] = folio_evict(u, c, r, f + i);
		return;
	}
	moved = os_uffd_move(u->staging_fd, staging, r->start + (size_t)f * fs, n * fs,
			     OS_DONTWAKE);
	moved = moved > 0 ? moved / (long)OS_PAGE_SIZE : 0;
	for (i = 0; i < n; i++) {
		long pre = moved - (long)i * npages;

		rc[i] = evict_whole(u, c, staging + i * fs, r, f + i,
				    pre <= 0 ? 0 : pre >= npages ? npages : (unsigned)pre);
	}
}

void folio_release(struct uswap *u, struct region *r, uint32_t f)
{
	unsigned n;

	lazyfree_forget(u, r, f);
	n = folio_drop_slots(u, r, f, 0, folio_pages(&r->pt), NULL);

	if (folio_word_load(&r->pt, f) & FOLIO_SWAPCACHE) {
		__atomic_fetch_sub(&u->swapcache_pages, n, __ATOMIC_RELAXED);
		folio_flags_clear(&r->pt, f, FOLIO_SWAPCACHE);
	}
}

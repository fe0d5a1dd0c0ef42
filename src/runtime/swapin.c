/* SPDX-License-Identifier: MIT */
/*
 * Swap-in of one folio.
 *
 * The common case is a folio evicted whole: its stored pages sit in one
 * run of contiguous slots at their own index, the rest are in the zero
 * map.  Then one store read and one decode give the whole folio, installed
 * with one UFFDIO_COPY under a budget (one ioctl per run of data or zero
 * pages without one, below), and the faulting threads are woken once: one
 * fault for 2^order pages.
 *
 * Under a budget, the zero pages of a folio that also holds data come in
 * as zero-filled pages of that one copy, not as the shared zero page (a
 * folio of zero pages alone still maps the zero page).  Mapping them apart
 * takes one ioctl per run of zero or data pages, and costs more at the
 * next eviction, which a budget makes likely: the kernel moves a zero-page
 * entry out alone, with a TLB flush of its own, where the folio's other
 * pages move as a batch with one flush; on a sequential pass under the
 * budget that was a third of the time (docs/BENCHMARKS.md).  The budget
 * counts a resident folio whole anyway (reclaim.c), so the memory this
 * takes is memory the budget already allowed; and in the swap cache these
 * pages are write-protected like the rest, so a write to them is seen.
 * Without a budget nothing evicts a folio but the program's own page-out
 * advice: its zero pages map the zero page, which costs no memory and is
 * cheaper to bring in (a page-out of everything then a read of every page
 * was 10% slower with zero-filled copies).
 *
 * Anything else (pages of several runs, as after an order-0 fallback at
 * swap-out, or pages with no stored copy) falls back to page-by-page
 * handling; the fallback and its reason are counted.  A page is never
 * guessed: it is either decoded from its own slot, or it is in the zero map
 * or has never held data, and then it is mapped to the zero page.
 */
#include "instance.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "codec/folio_blob.h"
#include "os/os.h"

#define EAGAIN_RETRIES 1000

int range_install(struct uswap *u, int fd, enum install_op op, char *dst, const char *src,
		  size_t len, unsigned flags)
{
	size_t done = 0;
	unsigned retries = 0;

	while (done < len) {
		/* Only a first ioctl that may cover the whole range wakes: a
		 * partial one would wake just its part. */
		unsigned f = done == 0 ? flags : flags | OS_DONTWAKE;
		long n = op == INSTALL_COPY
				 ? os_uffd_copy(fd, dst + done, src + done, len - done, f)
				 : os_uffd_zeropage(fd, dst + done, len - done, f);

		if (n > 0) {
			if (done == 0 && (size_t)n == len && !(f & OS_DONTWAKE))
				return 1;
			done += (size_t)n;
		} else if (n == -EEXIST) {
			done += OS_PAGE_SIZE;
		} else if ((n == -EAGAIN || n == -ENOMEM) && retries++ < EAGAIN_RETRIES) {
			/* EAGAIN: the mm is changing; ENOMEM: a page could not be
			 * had this instant.  Both pass: try again. */
			ctr_add(u, CTR_ioctl_retries, 1);
			if (n == -ENOMEM)
				sched_yield();
		} else {
			return n ? (int)n : -EIO;
		}
	}
	return 0;
}

struct decode_arg {
	void *dst;
	unsigned npages;
};

static int decode_visit(const void *obj, size_t len, void *arg)
{
	struct decode_arg *d = arg;

	return folio_decode(obj, len, d->dst, d->npages, NULL);
}

int page_run(struct uswap *u, const struct pagetable *pt, uint32_t p, store_handle_t *h,
	     slot_t *first, unsigned *order)
{
	int rc = slot_run(u->slots, entry_slot(pt->entry[p]), h, first, order);

	return rc ? rc : *order > pt->folio_order ? -EILSEQ : 0;
}

int run_decode(struct uswap *u, store_handle_t h, void *dst, unsigned npages)
{
	struct decode_arg d = { dst, npages };

	return u->p.store_ops->get(u->store, h, decode_visit, &d);
}

int install_kinds(struct uswap *u, char *base, const char *buf, const uint8_t *kind, unsigned n,
		  unsigned data_flags, bool wake, unsigned *done)
{
	unsigned i = 0;
	int rc = 0;

	while (i < n) {
		unsigned j = i + 1;
		size_t off = (size_t)i * OS_PAGE_SIZE;
		bool data = kind[i] == PAGE_DATA;

		while (j < n && kind[j] == kind[i])
			j++;
		if (kind[i] != PAGE_SKIP) {
			rc = range_install(u, u->ufd, data ? INSTALL_COPY : INSTALL_ZERO, base + off,
					   data ? buf + off : NULL, (size_t)(j - i) * OS_PAGE_SIZE,
					   (wake && i == 0 && j == n ? 0 : OS_DONTWAKE) |
						   (data ? data_flags : 0));
			if (rc < 0) {
				if (done)
					*done = i;
				return rc;
			}
		}
		i = j;
	}
	if (done)
		*done = n;
	return rc;
}

/* Decode page by page: each run once, whole, into scratch2, and every
 * page the folio has in it copied out.  The runs of a folio may interleave
 * (a partly resident folio's mapped pages go out as one run, evict.c,
 * among the pages still in older runs): decoding in page order with one
 * run cached would decode the same runs again and again. */
static int decode_fallback(struct uswap *u, struct folio_ctx *c, struct pagetable *pt,
			   uint32_t p0, const uint8_t *kind)
{
	unsigned npages = folio_pages(pt), i, j;
	uint64_t done[FOLIO_MASK_WORDS] = { 0 };
	int rc;

	for (i = 0; i < npages; i++) {
		store_handle_t h;
		slot_t first;
		unsigned order;

		if (kind[i] != PAGE_DATA || (done[i / 64] >> (i % 64) & 1))
			continue;
		rc = page_run(u, pt, p0 + i, &h, &first, &order);
		if (rc)
			return rc;
		rc = run_decode(u, h, c->scratch2, 1u << order);
		if (rc)
			return rc;
		/* a used slot in the run's aligned window is the run's (slotmap.c);
		 * an order-0 run has page i alone */
		for (j = i; j < (order ? npages : i + 1); j++) {
			uint32_t off = entry_slot(pt->entry[p0 + j]).v - first.v;

			if (kind[j] != PAGE_DATA || (done[j / 64] >> (j % 64) & 1) ||
			    off >= 1u << order)
				continue;
			memcpy((char *)c->scratch + (size_t)j * OS_PAGE_SIZE,
			       (char *)c->scratch2 + (size_t)off * OS_PAGE_SIZE, OS_PAGE_SIZE);
			done[j / 64] |= 1ull << (j % 64);
		}
	}
	return 0;
}

/* Add (sign 1) or take back (sign -1) the counters of one swap-in. */
static void swapin_count(struct uswap *u, unsigned order, bool whole, unsigned n_none,
			 unsigned n_data, unsigned n_zero, int sign)
{
	uint64_t one = (uint64_t)(int64_t)sign;

	if (n_none)
		ctr_add(u, CTR_swapin_fallback_partial, one);
	if (order > 0)
		ctr_add(u, whole ? CTR_swapin_folios : CTR_swapin_fallback, one);
	ctr_add(u, CTR_swapin_pages, one * n_data);
	ctr_add(u, CTR_zero_pages_in, one * n_zero);
}

int folio_swap_in(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
		  uint32_t word, bool write, bool *cached)
{
	struct pagetable *pt = &r->pt;
	unsigned npages = folio_pages(pt), order = pt->folio_order, i;
	unsigned n_data = 0, n_zero = 0, n_none = 0;
	uint32_t p0 = f << order;
	char *base = r->start + ((size_t)p0 << OS_PAGE_SHIFT);
	uint8_t kind[FOLIO_MAX_PAGES];
	store_handle_t run_h = { 0 };
	slot_t run_first = { 0 };
	bool one_run = true, keep;
	int rc, woken;

	*cached = false;
	if (folio_state_of(word) == FOLIO_EMPTY) {
		ctr_add(u, CTR_first_touch_folios, 1);
		if (write) {
			/* every page would take a copy-on-write fault off the zero
			 * page, each with a TLB flush: copy zeros once instead,
			 * from pages that are all the zero page (no memset) */
			rc = range_install(u, u->ufd, INSTALL_COPY, base, u->zeros,
					   folio_bytes(u), 0);
		} else {
			rc = range_install(u, u->ufd, INSTALL_ZERO, base, NULL, folio_bytes(u), 0);
		}
		if (rc < 0) {
			ctr_add(u, CTR_first_touch_folios, (uint64_t)-1);
			ctr_add(u, CTR_swapin_fail_install, 1);
		}
		return rc;
	}

	for (i = 0; i < npages; i++) {
		page_entry_t e = pt->entry[p0 + i];

		kind[i] = PAGE_ZERO;
		if (!entry_has_slot(e)) {
			if (zeromap_test(pt, p0 + i))
				n_zero++;
			else
				n_none++;
			continue;
		}
		kind[i] = PAGE_DATA;
		if (n_data++ == 0) {
			unsigned run_order;

			rc = slot_run(u->slots, entry_slot(e), &run_h, &run_first, &run_order);
			if (rc)
				return rc;
			one_run = run_order == order;
		}
		if (entry_slot(e).v != run_first.v + i)
			one_run = false;
	}

	if (n_data) {
		if (one_run) {
			rc = run_decode(u, run_h, c->scratch, npages);
		} else {
			ctr_add(u, CTR_swapin_fallback_split, 1);
			rc = decode_fallback(u, c, pt, p0, kind);
		}
		if (rc) {
			ctr_add(u, rc == -EILSEQ ? CTR_swapin_fail_corrupt : CTR_swapin_fail_read, 1);
			return rc;
		}
	}
	/* The swap cache keeps the stored copy of a folio with data; its pages
	 * come in write-protected so that the first write is seen. */
	keep = u->swapcache && n_data && !write;
	/* Count before installing: the ioctl that installs the folio may wake
	 * the program, which must then see counters that include it. */
	swapin_count(u, order, one_run && !n_none, n_none, n_data, n_zero, 1);
	if (keep)
		__atomic_fetch_add(&u->swapcache_pages, n_data, __ATOMIC_RELAXED);
	if (n_data == 0) {
		rc = range_install(u, u->ufd, INSTALL_ZERO, base, NULL, folio_bytes(u), 0);
	} else if (u->max_pages) {
		/* the decode wrote data pages only where the fallback ran, and
		 * a page with no stored copy may hold stale bytes of its run */
		for (i = 0; i < npages; i++)
			if (kind[i] != PAGE_DATA)
				memset((char *)c->scratch + (size_t)i * OS_PAGE_SIZE, 0, OS_PAGE_SIZE);
		rc = range_install(u, u->ufd, INSTALL_COPY, base, c->scratch, folio_bytes(u),
				   keep ? OS_WP : 0);
	} else {
		rc = install_kinds(u, base, c->scratch, kind, npages, keep ? OS_WP : 0, true, NULL);
	}
	if (rc < 0) {
		ctr_add(u, CTR_swapin_fail_install, 1);
		swapin_count(u, order, one_run && !n_none, n_none, n_data, n_zero, -1);
		if (keep)
			__atomic_fetch_sub(&u->swapcache_pages, n_data, __ATOMIC_RELAXED);
		return rc;
	}
	woken = rc;
	*cached = keep;
	if (!keep)
		folio_drop_slots(u, r, f, 0, npages, NULL);
	return woken;
}

/* SPDX-License-Identifier: MIT */
/*
 * Per-thread folio buffers.  Handler threads and the reclaimer own one
 * each; API callers borrow one from a small free list.  The staging folio
 * is registered with the staging userfaultfd because UFFDIO_MOVE only
 * moves pages into ranges registered with the userfaultfd that moves;
 * nothing ever touches a staging page that is not there (holes are filled
 * with the zero page first).  A child process does not inherit staging
 * folios (MADV_DONTFORK): it makes its own (fork.c).
 *
 * The staging folios form a ring, dropped in batches.  Dropping pages
 * (MADV_DONTNEED) flushes the TLB of every CPU the program runs on: on a
 * VM each flush is an inter-processor interrupt, a VM exit on both sides.
 * One flush per eviction was about a sixth of the reclaimer's cost
 * (docs/ARCHITECTURE.md, "Eviction: never a stale copy", has the
 * figures); the kernel's own reclaim batches its flushes the same way
 * (TTU_BATCH_FLUSH).  The ring's pages are not counted in the budget: at
 * most STAGING_RING_BYTES per thread that evicts, and none once the thread
 * sleeps.
 */
#include "instance.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/folio_blob.h"
#include "os/os.h"

/* The ring: at most this many bytes and STAGING_RING_MAX folios, at least
 * one folio (measured: docs/ARCHITECTURE.md). */
#define STAGING_RING_BYTES (1u << 20)
#define STAGING_RING_MAX   64u

static unsigned staging_ring_folios(const struct uswap *u)
{
	size_t n = STAGING_RING_BYTES / folio_bytes(u);

	if (n > STAGING_RING_MAX)
		n = STAGING_RING_MAX;
	return n ? (unsigned)n : 1;
}

int folio_ctx_init(struct uswap *u, struct folio_ctx *c)
{
	size_t fs = folio_bytes(u);
	size_t blob = (folio_blob_bound(1u << u->p.folio_order) + OS_PAGE_SIZE - 1) &
		      ~(size_t)(OS_PAGE_SIZE - 1);
	size_t ring;
	int rc;

	memset(c, 0, sizeof(*c));
	c->staging_n = staging_ring_folios(u);
	ring = (size_t)c->staging_n * fs;
	c->staging = os_mem_map_aligned(ring, fs);
	c->blob = os_mem_map(blob);
	c->scratch = os_mem_map(fs);
	c->scratch2 = os_mem_map(fs);
	if (!c->staging || !c->blob || !c->scratch || !c->scratch2) {
		folio_ctx_destroy(u, c);
		return -ENOMEM;
	}
	rc = os_mem_dontfork(c->staging, ring);
	if (!rc)
		rc = os_uffd_register(u->staging_fd, c->staging, ring, false);
	if (rc) {
		folio_ctx_destroy(u, c);
		return rc;
	}
	return 0;
}

void folio_ctx_destroy(struct uswap *u, struct folio_ctx *c)
{
	size_t fs = folio_bytes(u);
	size_t blob = (folio_blob_bound(1u << u->p.folio_order) + OS_PAGE_SIZE - 1) &
		      ~(size_t)(OS_PAGE_SIZE - 1);

	if (c->staging)
		os_mem_unmap(c->staging, (size_t)c->staging_n * fs);
	if (c->blob)
		os_mem_unmap(c->blob, blob);
	if (c->scratch)
		os_mem_unmap(c->scratch, fs);
	if (c->scratch2)
		os_mem_unmap(c->scratch2, fs);
	memset(c, 0, sizeof(*c));
}

/*
 * In a forked child, the buffers of a thread of the parent: the copied ones
 * are unmapped; the staging folio was never copied (MADV_DONTFORK), and its
 * address may already hold a buffer another instance of this process made
 * for its own new threads: it must not be unmapped.  (Two instances that
 * fork lost each other's buffers this way: a child's handler crashed
 * decoding into an unmapped scratch folio.)
 */
void folio_ctx_forget_in_child(struct uswap *u, struct folio_ctx *c)
{
	c->staging = NULL;
	folio_ctx_destroy(u, c);
}

struct folio_ctx *folio_ctx_get(struct uswap *u)
{
	struct folio_ctx *c;

	pthread_mutex_lock(&u->ctx_lock);
	c = u->ctx_free;
	if (c)
		u->ctx_free = c->next_free;
	pthread_mutex_unlock(&u->ctx_lock);
	if (c)
		return c;
	c = os_mem_map(sizeof(*c));
	if (!c)
		return NULL;
	if (folio_ctx_init(u, c)) {
		os_mem_unmap(c, sizeof(*c));
		return NULL;
	}
	return c;
}

void folio_ctx_put(struct uswap *u, struct folio_ctx *c)
{
	/* a context on the free list holds no evicted data (a failed flush
	 * keeps its folios used: staging_take tries again) */
	staging_flush(u, c);
	pthread_mutex_lock(&u->ctx_lock);
	c->next_free = u->ctx_free;
	u->ctx_free = c;
	pthread_mutex_unlock(&u->ctx_lock);
}

int staging_flush(struct uswap *u, struct folio_ctx *c)
{
	int rc;

	if (!c->staging_used)
		return 0;
	rc = os_mem_discard(c->staging, (size_t)c->staging_used * folio_bytes(u));
	if (rc) {
		fprintf(stderr, "uswap: dropping %u staging folios at %p failed: %s\n",
			c->staging_used, (void *)c->staging, strerror(-rc));
		return rc;
	}
	c->staging_used = 0;
	return 0;
}

char *staging_take_run(struct uswap *u, struct folio_ctx *c, unsigned n)
{
	char *run;

	if (n > c->staging_n)
		return NULL;
	if (c->staging_used + n > c->staging_n && staging_flush(u, c))
		return NULL;
	run = c->staging + (size_t)c->staging_used * folio_bytes(u);
	c->staging_used += n;
	return run;
}

char *staging_take(struct uswap *u, struct folio_ctx *c)
{
	return staging_take_run(u, c, 1);
}

/* SPDX-License-Identifier: MIT */
/*
 * Per-thread folio buffers.  Handler threads and the reclaimer own one
 * each; API callers borrow one from a small free list.  The staging folio
 * is registered with the staging userfaultfd because UFFDIO_MOVE only
 * moves pages into ranges registered with the userfaultfd that moves;
 * nothing ever touches a staging page that is not there (holes are filled
 * with the zero page first).  A child process does not inherit staging
 * folios (MADV_DONTFORK): it makes its own (fork.c).
 */
#include "instance.h"

#include <errno.h>
#include <string.h>

#include "codec/folio_blob.h"
#include "os/os.h"

int folio_ctx_init(struct uswap *u, struct folio_ctx *c)
{
	size_t fs = folio_bytes(u);
	size_t blob = (folio_blob_bound(1u << u->p.folio_order) + OS_PAGE_SIZE - 1) &
		      ~(size_t)(OS_PAGE_SIZE - 1);
	int rc;

	memset(c, 0, sizeof(*c));
	c->staging = os_mem_map_aligned(fs, fs);
	c->blob = os_mem_map(blob);
	c->scratch = os_mem_map(fs);
	c->scratch2 = os_mem_map(fs);
	if (!c->staging || !c->blob || !c->scratch || !c->scratch2) {
		folio_ctx_destroy(u, c);
		return -ENOMEM;
	}
	rc = os_mem_dontfork(c->staging, fs);
	if (!rc)
		rc = os_uffd_register(u->staging_fd, c->staging, fs, false);
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
		os_mem_unmap(c->staging, fs);
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
	pthread_mutex_lock(&u->ctx_lock);
	c->next_free = u->ctx_free;
	u->ctx_free = c;
	pthread_mutex_unlock(&u->ctx_lock);
}

/* SPDX-License-Identifier: MIT */
/*
 * Regions made from memory the caller mapped (uswap_adopt), and the lookup
 * the LD_PRELOAD shim needs to follow the program's munmap, mremap and
 * madvise (uswap_region_find).
 *
 * Adopting instead of mapping lets the shim give the program exactly the
 * mapping it asked for (address, length, MAP_FIXED, MAP_NORESERVE): only
 * the registration with userfaultfd is uswap's.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "core/errmsg.h"
#include "os/os.h"
#include "runtime/instance.h"

#define API __attribute__((visibility("default")))

/* With the write lock: does [start, end) overlap a region? */
static bool regions_overlap(struct region_table *t, uintptr_t start, uintptr_t end)
{
	struct region *r = regions_find_from(t, start);

	return r && (uintptr_t)r->start < end;
}

API int uswap_adopt(uswap_t *u, void *addr, size_t len)
{
	uintptr_t start = (uintptr_t)addr;
	struct region *r;
	sigset_t all, old;
	size_t fs;
	int rc;

	errmsg_clear();
	if (!u)
		return errmsg_set(-EINVAL, "uswap_adopt: u is NULL");
	fs = folio_bytes(u);
	if (!len || (start & (fs - 1)) || (len & (fs - 1)))
		return errmsg_set(-EINVAL,
				  "uswap_adopt: [%p, +%zu) is not allowed: address and length must "
				  "be non-zero multiples of the folio size (%zu)",
				  addr, len, fs);
	if (len / OS_PAGE_SIZE > UINT32_MAX || start + len < start)
		return errmsg_set(-EINVAL, "uswap_adopt: length %zu is too large (at most 16 TiB)",
				  len);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	rc = pagetable_init(&r->pt, (uint32_t)(len / OS_PAGE_SIZE), u->p.folio_order);
	if (rc)
		goto err_free;
	r->start = addr;
	r->len = len;
	r->npages = (uint32_t)(len / OS_PAGE_SIZE);
	rc = os_region_prepare(addr, len);
	if (rc) {
		errmsg_set(rc, "uswap_adopt: [%p, +%zu) is not memory this process mapped", addr,
			   len);
		goto err_pagetable;
	}
	/* API calls that take the region locks run with signals blocked (see
	 * api.c): a handler touching managed memory must not interrupt them */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	regions_write_lock(&u->regions);
	if (regions_overlap(&u->regions, start, start + len)) {
		rc = errmsg_set(-EEXIST, "uswap_adopt: [%p, +%zu) overlaps a region", addr, len);
		goto err_unlock;
	}
	/* registered under the lock: a racing adoption of the same range
	 * cannot register it twice */
	rc = os_uffd_register(u->ufd, addr, len, true);
	if (rc) {
		errmsg_set(rc, "uswap_adopt: registering [%p, +%zu) with userfaultfd failed", addr,
			   len);
		goto err_unlock;
	}
	rc = regions_insert(&u->regions, r);
	if (rc) {
		errmsg_set(rc, "uswap_adopt: too many regions (at most 1048576)");
		os_uffd_unregister(u->ufd, addr, len);
		goto err_unlock;
	}
	regions_write_unlock(&u->regions);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;

err_unlock:
	regions_write_unlock(&u->regions);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
err_pagetable:
	pagetable_destroy(&r->pt);
err_free:
	free(r);
	return rc;
}

API int uswap_region_find(uswap_t *u, const void *addr, void **start, size_t *len)
{
	struct region *r;
	unsigned shard;
	int rc = -ENOENT;

	if (!u || !start || !len)
		return -EINVAL;
	shard = regions_api_shard(u);
	regions_read_lock(&u->regions, shard);
	r = regions_find_from(&u->regions, (uintptr_t)addr);
	if (r) {
		*start = r->start;
		*len = r->len;
		rc = 0;
	}
	regions_read_unlock(&u->regions, shard);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * The public API of shared regions: uswap_map_fd and uswap_region_fd
 * (uswap_map with USWAP_MAP_SHARED comes here too).  The protocol is in
 * runtime/shared.h.
 */
#include "shared_api.h"

#include <errno.h>
#include <signal.h>

#include "core/errmsg.h"
#include "os/os.h"
#include "runtime/shared.h"
#include "signals.h"

#define API __attribute__((visibility("default")))

int shared_map(struct uswap *u, int fd, size_t len, void **addr)
{
	struct region *r;
	sigset_t old;
	int rc = shared_region_create(u, fd, len, &r);

	if (rc)
		return rc;
	signals_block(&old);
	regions_write_lock(&u->regions);
	rc = regions_insert(&u->regions, r);
	if (!rc)
		__atomic_fetch_add(&u->nshared, 1, __ATOMIC_RELAXED);
	regions_write_unlock(&u->regions);
	signals_restore(&old);
	if (rc) {
		__atomic_fetch_add(&u->nshared, 1, __ATOMIC_RELAXED); /* destroy takes it back */
		shared_region_destroy(u, r);
		return errmsg_set(rc, "uswap_map: too many regions (at most 1048576)");
	}
	*addr = r->start;
	return 0;
}

API int uswap_map_fd(uswap_t *u, int fd, size_t len, int flags, void **addr)
{
	errmsg_clear();
	if (!u || !addr)
		return errmsg_set(-EINVAL, "uswap_map_fd: %s is NULL", u ? "addr" : "u");
	if (flags != USWAP_MAP_SHARED)
		return errmsg_set(-EINVAL, "uswap_map_fd: flags 0x%x: the only allowed value is "
					   "USWAP_MAP_SHARED (0x1)",
				  (unsigned)flags);
	if (fd < 0)
		return errmsg_set(-EINVAL, "uswap_map_fd: descriptor %d is not valid", fd);
	if (len == 0 || len & (folio_bytes(u) - 1))
		return errmsg_set(-EINVAL, "uswap_map_fd: length %zu is not a positive multiple of "
					   "the folio size %zu: give the region's length "
					   "(uswap_region_find tells it)",
				  len, folio_bytes(u));
	return shared_map(u, fd, len, addr);
}

API int uswap_region_fd(uswap_t *u, const void *addr)
{
	unsigned shard;
	struct region *r;
	sigset_t old;
	int rc;

	errmsg_clear();
	if (!u)
		return errmsg_set(-EINVAL, "uswap_region_fd: u is NULL");
	shard = regions_api_shard(u);
	signals_block(&old);
	regions_read_lock(&u->regions, shard);
	r = regions_find(&u->regions, (uintptr_t)addr);
	if (!r || !r->sh)
		rc = errmsg_set(-EINVAL, "uswap_region_fd: %p is not inside a shared region "
					 "(uswap_map with USWAP_MAP_SHARED)", addr);
	else
		rc = os_dup(r->sh->fd);
	regions_read_unlock(&u->regions, shard);
	signals_restore(&old);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * The public API: instances, regions and advice (include/uswap.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/errmsg.h"
#include "options.h"
#include "os/os.h"
#include "runtime/instance.h"

#define API __attribute__((visibility("default")))

/* Features uswap cannot work without, and those it uses when present. */
#define UFFD_NEEDED (OS_UFFD_MOVE)
#define UFFD_WANTED (OS_UFFD_MOVE | OS_UFFD_THREAD_ID | OS_UFFD_POISON)

static void instance_free(struct uswap *u)
{
	struct folio_ctx *c;

	handlers_stop(u);
	reclaimer_stop(u);
	while ((c = u->ctx_free)) {
		u->ctx_free = c->next_free;
		folio_ctx_destroy(u, c);
		os_mem_unmap(c, sizeof(*c));
	}
	if (u->store)
		u->p.store_ops->close(u->store);
	if (u->slots)
		slotmap_destroy(u->slots);
	regions_destroy(&u->regions);
	if (u->ufd >= 0)
		os_close(u->ufd);
	if (u->stop_fd >= 0)
		os_close(u->stop_fd);
	if (u->kick_fd >= 0)
		os_close(u->kick_fd);
	pthread_mutex_destroy(&u->clock_lock);
	pthread_mutex_destroy(&u->ctx_lock);
	free(u);
}

static void budget_init(struct uswap *u)
{
	uint64_t max = u->p.limit / u->p.folio_size, headroom;

	u->max_folios = max;
	/* the reclaimer starts at 1/32 under the budget and frees down to
	 * 1/16 under it: faults rarely meet the hard limit */
	headroom = max / 32 ? max / 32 : 1;
	u->high_wm = max > headroom ? max - headroom : 0;
	u->low_wm = max > 2 * headroom ? max - 2 * headroom : 0;
}

API int uswap_open(const struct uswap_config *cfg, uswap_t **out)
{
	struct uswap_config envcfg;
	struct uswap *u;
	unsigned got = 0;
	int rc;

	errmsg_clear();
	if (!out)
		return errmsg_set(-EINVAL, "uswap_open: out is NULL");
	*out = NULL;
	if (!cfg) {
		rc = options_from_env(&envcfg);
		if (rc)
			return rc;
		cfg = &envcfg;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->ufd = u->stop_fd = u->kick_fd = -1;
	pthread_mutex_init(&u->clock_lock, NULL);
	pthread_mutex_init(&u->ctx_lock, NULL);
	rc = options_resolve(cfg, &u->p);
	if (rc)
		goto err;
	u->nworkers = u->p.threads;
	regions_init(&u->regions, u->nworkers + 1 + 4);

	rc = os_uffd_open(UFFD_WANTED, &got);
	if (rc < 0)
		goto err;
	u->ufd = rc;
	u->features = got;
	if ((got & UFFD_NEEDED) != UFFD_NEEDED) {
		rc = errmsg_set(-ENOTSUP, "this kernel's userfaultfd lacks UFFDIO_MOVE, which uswap "
					  "needs to evict safely: Linux 6.8 or later is required");
		goto err;
	}
	rc = slotmap_create(0, &u->slots);
	if (rc)
		goto err;
	rc = u->p.store_ops->open(u->p.store_arg, u->p.store_limit, &u->store);
	if (rc)
		goto err;
	u->stop_fd = os_eventfd();
	u->kick_fd = os_eventfd();
	if (u->stop_fd < 0 || u->kick_fd < 0) {
		rc = u->stop_fd < 0 ? u->stop_fd : u->kick_fd;
		goto err;
	}
	budget_init(u);
	rc = handlers_start(u);
	if (rc)
		goto err;
	rc = reclaimer_start(u);
	if (rc)
		goto err;
	*out = u;
	return 0;
err:
	instance_free(u);
	return rc;
}

static void region_free(struct uswap *u, struct region *r)
{
	uint32_t f;

	os_uffd_unregister(u->ufd, r->start, r->len);
	for (f = 0; f < r->pt.nfolios; f++) {
		uint32_t w = folio_word_load(&r->pt, f);

		if (folio_state_of(w) == FOLIO_RESIDENT)
			budget_uncharge(u, 1);
		else if (folio_state_of(w) == FOLIO_OUT)
			folio_release(u, r, f);
		if (w & FOLIO_PINNED)
			__atomic_fetch_sub(&u->pinned_folios, 1, __ATOMIC_RELAXED);
	}
	os_mem_unmap(r->start, r->len);
	pagetable_destroy(&r->pt);
	free(r);
}

API void uswap_close(uswap_t *u)
{
	if (!u)
		return;
	/* stop the threads first: nothing may use a region being freed */
	handlers_stop(u);
	reclaimer_stop(u);
	while (u->regions.n) {
		struct region *r = u->regions.v[u->regions.n - 1];

		u->regions.n--;
		region_free(u, r);
	}
	instance_free(u);
}

API int uswap_map(uswap_t *u, size_t len, int flags, void **addr)
{
	size_t fs, rounded;
	struct region *r;
	int rc;

	errmsg_clear();
	if (!u || !addr)
		return errmsg_set(-EINVAL, "uswap_map: %s is NULL", u ? "addr" : "u");
	if (len == 0)
		return errmsg_set(-EINVAL, "uswap_map: length 0 is not allowed: map at least one byte");
	if (flags != USWAP_MAP_PRIVATE)
		return errmsg_set(-EINVAL, "uswap_map: flags 0x%x are unknown: allowed is 0 (private)",
				  (unsigned)flags);
	fs = folio_bytes(u);
	if (len > SIZE_MAX - fs || (len + fs - 1) / OS_PAGE_SIZE > UINT32_MAX)
		return errmsg_set(-EINVAL, "uswap_map: length %zu is too large (at most 16 TiB)", len);
	rounded = (len + fs - 1) & ~(fs - 1);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	rc = pagetable_init(&r->pt, (uint32_t)(rounded / OS_PAGE_SIZE), u->p.folio_order);
	if (rc)
		goto err_free;
	r->len = rounded;
	r->npages = (uint32_t)(rounded / OS_PAGE_SIZE);
	r->start = os_mem_map_aligned(rounded, fs);
	if (!r->start) {
		rc = -ENOMEM;
		goto err_pagetable;
	}
	rc = os_region_prepare(r->start, rounded);
	if (rc)
		goto err_unmap;
	rc = os_uffd_register(u->ufd, r->start, rounded, false);
	if (rc) {
		errmsg_set(rc, "uswap_map: registering %zu bytes with userfaultfd failed", rounded);
		goto err_unmap;
	}
	regions_write_lock(&u->regions);
	rc = regions_insert(&u->regions, r);
	regions_write_unlock(&u->regions);
	if (rc)
		goto err_unregister;
	*addr = r->start;
	return 0;

err_unregister:
	os_uffd_unregister(u->ufd, r->start, rounded);
err_unmap:
	os_mem_unmap(r->start, rounded);
err_pagetable:
	pagetable_destroy(&r->pt);
err_free:
	free(r);
	return rc;
}

API int uswap_unmap(uswap_t *u, void *addr, size_t len)
{
	struct region *r;

	errmsg_clear();
	if (!u)
		return errmsg_set(-EINVAL, "uswap_unmap: u is NULL");
	regions_write_lock(&u->regions);
	r = regions_find(&u->regions, (uintptr_t)addr);
	if (!r || r->start != addr || len == 0 || len > r->len ||
	    ((len + folio_bytes(u) - 1) & ~(folio_bytes(u) - 1)) != r->len) {
		regions_write_unlock(&u->regions);
		return errmsg_set(-EINVAL,
				  "uswap_unmap: [%p, +%zu) is not a region: give the address and "
				  "length of one uswap_map",
				  addr, len);
	}
	regions_remove(&u->regions, r);
	pthread_mutex_lock(&u->clock_lock);
	clock_reset(&u->hand);
	pthread_mutex_unlock(&u->clock_lock);
	regions_write_unlock(&u->regions);
	region_free(u, r);
	return 0;
}

/* Bring folio f in, if it is not, with its lock held by the caller. */
static int advise_bring_in(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			   uint32_t word)
{
	int rc;

	if (folio_state_of(word) == FOLIO_RESIDENT)
		return 0;
	budget_charge(u, c);
	rc = folio_swap_in(u, c, r, f, word);
	if (rc < 0) {
		budget_uncharge(u, 1);
		return rc;
	}
	if (rc == 0)
		os_uffd_wake(u->ufd, r->start + ((size_t)f << (r->pt.folio_order + OS_PAGE_SHIFT)),
			     folio_bytes(u));
	return 0;
}

static int advise_folio(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			int advice)
{
	uint32_t word = folio_lock_wait(r, f);
	enum folio_state st = folio_state_of(word);
	uint32_t set = 0, clear = 0;
	int rc = 0;

	switch (advice) {
	case USWAP_ADV_PAGEOUT:
		if (st == FOLIO_RESIDENT && !(word & FOLIO_PINNED)) {
			rc = folio_evict(u, c, r, f);
			if (!rc) {
				st = FOLIO_OUT;
				clear = FOLIO_REFERENCED;
				budget_uncharge(u, 1);
				ctr_add(u, CTR_reclaim_advice, 1);
			} else if (rc == -EBUSY) {
				/* pinned for I/O by the kernel: skipped, as the kernel's
				 * MADV_PAGEOUT skips such pages (reclaim_fail_busy) */
				set = FOLIO_BUSY;
				rc = 0;
			}
		}
		break;
	case USWAP_ADV_PIN:
	case USWAP_ADV_WILLNEED:
		rc = advise_bring_in(u, c, r, f, word);
		if (!rc) {
			st = FOLIO_RESIDENT;
			set = FOLIO_REFERENCED;
			if (advice == USWAP_ADV_PIN && !(word & FOLIO_PINNED)) {
				set |= FOLIO_PINNED;
				__atomic_fetch_add(&u->pinned_folios, 1, __ATOMIC_RELAXED);
			}
		}
		break;
	case USWAP_ADV_UNPIN:
		if (word & FOLIO_PINNED) {
			clear = FOLIO_PINNED;
			__atomic_fetch_sub(&u->pinned_folios, 1, __ATOMIC_RELAXED);
		}
		break;
	}
	folio_unlock_wake(r, f, st, set, clear);
	return rc;
}

API int uswap_advise(uswap_t *u, void *addr, size_t len, int advice)
{
	uintptr_t start = (uintptr_t)addr, end;
	struct folio_ctx *c = NULL;
	struct region *r;
	uint32_t f, f_end;
	unsigned shard;
	int rc = 0, first_err = 0;

	errmsg_clear();
	if (!u)
		return errmsg_set(-EINVAL, "uswap_advise: u is NULL");
	if (advice < USWAP_ADV_PAGEOUT || advice > USWAP_ADV_UNPIN)
		return errmsg_set(-EINVAL,
				  "uswap_advise: advice %d is unknown: use USWAP_ADV_PAGEOUT, "
				  "WILLNEED, PIN or UNPIN",
				  advice);
	if (len == 0)
		return 0;
	end = start + len;
	shard = regions_api_shard(u);
	regions_read_lock(&u->regions, shard);
	r = regions_find(&u->regions, start);
	if (!r || end < start || end > (uintptr_t)r->start + r->len) {
		regions_read_unlock(&u->regions, shard);
		return errmsg_set(-EINVAL, "uswap_advise: [%p, +%zu) is not inside one region", addr,
				  len);
	}
	f = (uint32_t)((start - (uintptr_t)r->start) / folio_bytes(u));
	f_end = (uint32_t)((end - (uintptr_t)r->start + folio_bytes(u) - 1) / folio_bytes(u));
	if (advice == USWAP_ADV_PIN && u->max_folios &&
	    __atomic_load_n(&u->pinned_folios, __ATOMIC_RELAXED) + (f_end - f) > u->max_folios) {
		regions_read_unlock(&u->regions, shard);
		return errmsg_set(-ENOMEM, "uswap_advise: pinning %zu more bytes would exceed the "
					   "budget of %zu bytes",
				  (size_t)(f_end - f) * folio_bytes(u), u->p.limit);
	}
	c = folio_ctx_get(u);
	if (!c) {
		regions_read_unlock(&u->regions, shard);
		return -ENOMEM;
	}
	for (; f < f_end; f++) {
		rc = advise_folio(u, c, r, f, advice);
		if (rc && !first_err)
			first_err = rc;
	}
	folio_ctx_put(u, c);
	regions_read_unlock(&u->regions, shard);
	if (first_err == -ENOSPC)
		errmsg_set(first_err, "uswap_advise: the store is full (store_limit): some folios "
				      "stay resident");
	return first_err;
}

API const char *uswap_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case -EINVAL: return "invalid argument";
	case -ENOMEM: return "out of memory, or beyond the budget";
	case -ENOSPC: return "the store is full";
	case -EPERM: return "userfaultfd is not permitted";
	case -ENOSYS: return "userfaultfd is not available";
	case -ENOTSUP: return "a needed kernel feature is missing";
	case -ENOENT: return "no such counter or object";
	case -EBUSY: return "pages are pinned or shared";
	case -EILSEQ: return "stored data is corrupt";
	default: return strerror(-err);
	}
}

API int uswap_parse_size(const char *what, const char *s, size_t *out)
{
	errmsg_clear();
	return options_parse_size(what ? what : "size", s, out);
}

API const char *uswap_last_error(void)
{
	return errmsg_get();
}

/* SPDX-License-Identifier: MIT */
/*
 * The public API: instances, regions and advice (include/uswap.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/errmsg.h"
#include "options.h"
#include "signals.h"
#include "os/os.h"
#include "runtime/instance.h"
#include "runtime/shared.h"
#include "shared_api.h"

#define API __attribute__((visibility("default")))

/* Features uswap cannot work without, and those it uses when present. */
#define UFFD_NEEDED                                                                 \
	(OS_UFFD_MOVE | OS_UFFD_WP | OS_UFFD_FORK | OS_UFFD_REMOVE | OS_UFFD_UNMAP | \
	 OS_UFFD_REMAP)
#define UFFD_WANTED (UFFD_NEEDED | OS_UFFD_THREAD_ID | OS_UFFD_POISON | OS_UFFD_WP_SHMEM)


static void instance_free(struct uswap *u)
{
	struct folio_ctx *c;

	handlers_stop(u);
	reclaimer_stop(u);
	if (u->fork_registered)
		fork_unregister(u);
	while ((c = u->ctx_free)) {
		u->ctx_free = c->next_free;
		folio_ctx_destroy(u, c);
		os_mem_unmap(c, sizeof(*c));
	}
	recompress_destroy(u);
	if (u->zeros)
		os_mem_unmap((void *)u->zeros, folio_bytes(u));
	if (u->store)
		u->p.store_ops->close(u->store);
	if (u->slots)
		slotmap_destroy(u->slots);
	regions_destroy(&u->regions);
	events_destroy(u);
	if (u->ufd >= 0)
		os_close(u->ufd);
	if (u->staging_fd >= 0)
		os_close(u->staging_fd);
	if (u->stop_fd >= 0)
		os_close(u->stop_fd);
	if (u->kick_fd >= 0)
		os_close(u->kick_fd);
	pthread_mutex_destroy(&u->clock_lock);
	pthread_mutex_destroy(&u->ra_lock);
	pthread_mutex_destroy(&u->ctx_lock);
	pthread_rwlock_destroy(&u->fork_lock);
	free(u);
}

static void budget_init(struct uswap *u)
{
	uint64_t max = u->p.limit / OS_PAGE_SIZE, headroom;

	u->max_pages = max;
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
	sigset_t old;
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
	u->ufd = u->staging_fd = u->stop_fd = u->kick_fd = -1;
	pthread_mutex_init(&u->clock_lock, NULL);
	pthread_mutex_init(&u->ra_lock, NULL);
	pthread_mutex_init(&u->ctx_lock, NULL);
	fork_lock_init(u);
	rc = options_resolve(cfg, &u->p);
	if (rc)
		goto err;
	u->nworkers = u->p.threads;
	u->swapcache = !(u->p.flags & USWAP_CFG_NO_SWAPCACHE);
	/* shards: one per handler, the reclaimer's, then 4 for API callers */
	rc = regions_init(&u->regions, u->nworkers + 1 + 4, u->nworkers + 1);
	if (!rc)
		rc = events_init(u);
	if (rc)
		goto err;

	rc = os_uffd_open(UFFD_WANTED, &got);
	if (rc < 0)
		goto err;
	u->ufd = rc;
	u->features = got;
	if ((got & UFFD_NEEDED) != UFFD_NEEDED) {
		rc = errmsg_set(-ENOTSUP,
				"this kernel's userfaultfd lacks %s, which uswap needs: Linux 6.8 or "
				"later is required",
				!(got & OS_UFFD_MOVE) ? "UFFDIO_MOVE (to evict safely)"
				: !(got & OS_UFFD_WP) ? "write-protect faults (for the swap cache)"
						      : "fork, remove, unmap and remap events");
		goto err;
	}
	rc = os_uffd_open(OS_UFFD_MOVE, &got);
	if (rc < 0)
		goto err;
	u->staging_fd = rc;
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
	u->zeros = os_mem_map_zeros(folio_bytes(u));
	if (!u->zeros) {
		rc = errmsg_set(-ENOMEM, "uswap_open: no address space for one folio of zeros "
					 "(%zu bytes)", folio_bytes(u));
		goto err;
	}
	rc = recompress_init(u);
	if (rc)
		goto err;
	/* the threads inherit the mask: the program's signal handlers never
	 * run on them (one that touched managed memory would wait for itself) */
	signals_block(&old);
	rc = handlers_start(u);
	if (!rc)
		rc = reclaimer_start(u);
	signals_restore(&old);
	if (rc)
		goto err;
	fork_register(u);
	u->fork_registered = true;
	*out = u;
	return 0;
err:
	instance_free(u);
	return rc;
}

API void uswap_close(uswap_t *u)
{
	if (!u)
		return;
	/* stop the threads first: nothing may use a region being freed */
	handlers_stop(u);
	reclaimer_stop(u);
#if CORE_DEBUG >= 1
	if (instance_check(u)) {
		fprintf(stderr, "uswap: bug: at close: %s\n", errmsg_get());
		abort();
	}
#endif
	while (u->regions.n) {
		struct region *r = u->regions.v[u->regions.n - 1];

		u->regions.n--;
		region_destroy(u, r);
	}
	instance_free(u);
}

API int uswap_map(uswap_t *u, size_t len, int flags, void **addr)
{
	size_t fs, rounded;
	struct region *r;
	sigset_t old;
	int rc;

	errmsg_clear();
	if (!u || !addr)
		return errmsg_set(-EINVAL, "uswap_map: %s is NULL", u ? "addr" : "u");
	if (len == 0)
		return errmsg_set(-EINVAL, "uswap_map: length 0 is not allowed: map at least one byte");
	if (flags != USWAP_MAP_PRIVATE && flags != USWAP_MAP_SHARED)
		return errmsg_set(-EINVAL, "uswap_map: flags 0x%x are unknown: allowed are 0 "
					   "(private) and USWAP_MAP_SHARED (0x1)",
				  (unsigned)flags);
	fs = folio_bytes(u);
	if (len > SIZE_MAX - fs || (len + fs - 1) / OS_PAGE_SIZE > UINT32_MAX)
		return errmsg_set(-EINVAL, "uswap_map: length %zu is too large (at most 16 TiB)", len);
	rounded = (len + fs - 1) & ~(fs - 1);
	if (flags == USWAP_MAP_SHARED)
		return shared_map(u, -1, rounded, addr);
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
	rc = os_uffd_register(u->ufd, r->start, rounded, true);
	if (rc) {
		errmsg_set(rc, "uswap_map: registering %zu bytes with userfaultfd failed", rounded);
		goto err_unmap;
	}
	signals_block(&old);
	regions_write_lock(&u->regions);
	rc = regions_insert(&u->regions, r);
	regions_write_unlock(&u->regions);
	signals_restore(&old);
	if (rc) {
		errmsg_set(rc, "uswap_map: too many regions (at most 1048576)");
		goto err_unregister;
	}
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
	sigset_t old;

	errmsg_clear();
	if (!u)
		return errmsg_set(-EINVAL, "uswap_unmap: u is NULL");
	signals_block(&old);
	regions_write_lock(&u->regions);
	r = regions_find(&u->regions, (uintptr_t)addr);
	if (!r || r->start != addr || len == 0 || len > r->len ||
	    ((len + folio_bytes(u) - 1) & ~(folio_bytes(u) - 1)) != r->len) {
		regions_write_unlock(&u->regions);
		signals_restore(&old);
		return errmsg_set(-EINVAL,
				  "uswap_unmap: [%p, +%zu) is not a region: give the address and "
				  "length of one uswap_map (a region the program munmapped whole "
				  "is gone already)",
				  addr, len);
	}
	regions_remove(&u->regions, r);
	pthread_mutex_lock(&u->clock_lock);
	clock_reset(&u->hand);
	pthread_mutex_unlock(&u->clock_lock);
	regions_write_unlock(&u->regions);
	/* the region's own unmap reaches the handlers as an unmap event for a
	 * range no region covers any more: nothing to do there */
	pthread_rwlock_rdlock(&u->fork_lock);
	region_destroy(u, r);
	pthread_rwlock_unlock(&u->fork_lock);
	signals_restore(&old);
	return 0;
}

/* Bring folio f in, if it is not, with its lock held by the caller. */
static int advise_bring_in(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			   uint32_t word)
{
	bool cached;
	int rc;

	/* pages still stored (adaptive swap-in): bring them all in */
	if (folio_state_of(word) == FOLIO_RESIDENT && (word & FOLIO_PARTIAL))
		return folio_complete_partial(u, c, r, f, word);
	if (folio_state_of(word) == FOLIO_RESIDENT)
		return 0;
	budget_charge(u, c, folio_pages(&r->pt));
	rc = folio_swap_in(u, c, r, f, word, false, &cached);
	if (rc < 0) {
		budget_uncharge(u, folio_pages(&r->pt));
		return rc;
	}
	if (rc == 0)
		os_uffd_wake(u->ufd, r->start + ((size_t)f << (r->pt.folio_order + OS_PAGE_SHIFT)),
			     folio_bytes(u));
	if (cached)
		folio_flags_set(&r->pt, f, FOLIO_SWAPCACHE);
	return 0;
}

/* Advice on folio f; pages [a, b) of it for USWAP_ADV_FREE (the others
 * act on whole folios). */
static int advise_folio(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			int advice, unsigned a, unsigned b)
{
	uint32_t word;
	enum folio_state st;
	uint32_t set = 0, clear = 0;
	int rc = 0;

	if (r->sh)
		return shared_advise(u, c, r, f, advice);
	word = folio_lock_wait(r, f);
	st = folio_state_of(word);

	switch (advice) {
	case USWAP_ADV_PAGEOUT:
		if (st == FOLIO_RESIDENT && !(word & FOLIO_PINNED)) {
			uint64_t charge = folio_charge(&r->pt, f, word);

			rc = folio_evict(u, c, r, f);
			if (!rc) {
				st = FOLIO_OUT;
				clear = FOLIO_REFERENCED;
				budget_release(u, &r->pt, f, charge);
				ctr_add(u, CTR_reclaim_advice, 1);
			} else if (rc != -ENOSPC) {
				/* pinned for I/O or shared with a child (EBUSY), or
				 * refused otherwise: skipped, as the kernel's
				 * MADV_PAGEOUT skips such pages (reclaim_fail_*) */
				set = FOLIO_BUSY;
				if (rc == -EBUSY)
					budget_exempt(u, &r->pt, f);
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
	case USWAP_ADV_FREE:
		rc = lazyfree_advise(u, r, f, a, b, &st);
		if (st == FOLIO_EMPTY && folio_state_of(word) == FOLIO_OUT)
			clear = FOLIO_REFERENCED | FOLIO_BUSY;
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

/* Is [start, end) inside one region?  Checked under a shard. */
static struct region *advise_region(struct uswap *u, uintptr_t start, uintptr_t end)
{
	struct region *r = regions_find(&u->regions, start);

	return r && end >= start && end <= (uintptr_t)r->start + r->len ? r : NULL;
}

API int uswap_advise(uswap_t *u, void *addr, size_t len, int advice)
{
	uintptr_t start = (uintptr_t)addr, end = start + len, at;
	size_t fb;
	struct folio_ctx *c;
	struct region *r;
	unsigned shard;
	sigset_t old;
	int rc, first_err = 0;

	errmsg_clear();
	if (!u)
		return errmsg_set(-EINVAL, "uswap_advise: u is NULL");
	if (advice < USWAP_ADV_PAGEOUT || advice > USWAP_ADV_FREE)
		return errmsg_set(-EINVAL,
				  "uswap_advise: advice %d is unknown: use USWAP_ADV_PAGEOUT, "
				  "WILLNEED, PIN, UNPIN or FREE",
				  advice);
	if (advice == USWAP_ADV_FREE && (start & (OS_PAGE_SIZE - 1)))
		return errmsg_set(-EINVAL,
				  "uswap_advise: FREE needs a page-aligned address, not %p (as "
				  "madvise(MADV_FREE) does)",
				  addr);
	if (len == 0)
		return 0;
	if (advice == USWAP_ADV_FREE)
		end = start + ((len + OS_PAGE_SIZE - 1) & ~(size_t)(OS_PAGE_SIZE - 1));
	fb = folio_bytes(u);
	shard = regions_api_shard(u);
	regions_read_lock(&u->regions, shard);
	r = advise_region(u, start, end);
	if (r && advice == USWAP_ADV_PIN && u->max_pages) {
		uint64_t want = (end - (start & ~(fb - 1)) + fb - 1) / fb;

		if ((__atomic_load_n(&u->pinned_folios, __ATOMIC_RELAXED) + want)
			    << u->p.folio_order >
		    u->max_pages) {
			regions_read_unlock(&u->regions, shard);
			return errmsg_set(-ENOMEM, "uswap_advise: pinning %zu more bytes would exceed "
						   "the budget of %zu bytes",
					  (size_t)want * fb, u->p.limit);
		}
	}
	regions_read_unlock(&u->regions, shard);
	if (!r)
		return errmsg_set(-EINVAL, "uswap_advise: [%p, +%zu) is not inside one region", addr,
				  len);
	c = folio_ctx_get(u);
	if (!c)
		return errmsg_set(-ENOMEM, "uswap_advise: no memory for the buffers of one folio "
					   "(%zu bytes)", fb);
	if (advice == USWAP_ADV_PAGEOUT) {
		readahead_cancel(u); /* what is asked to go must not come straight back */
		__atomic_add_fetch(&u->paging_out, 1, __ATOMIC_RELAXED);
	}
	signals_block(&old);
	/* One folio per hold of the locks: map, unmap and fork never wait for
	 * a whole range, and faults never wait behind them. */
	for (at = start; at < end;) {
		pthread_rwlock_rdlock(&u->fork_lock);
		regions_read_lock(&u->regions, shard);
		r = advise_region(u, at, at + 1);
		if (r) {
			uint32_t f = (uint32_t)((at - (uintptr_t)r->start) / fb);
			uintptr_t fstart = (uintptr_t)r->start + (size_t)f * fb, fend = fstart + fb;
			unsigned a = (unsigned)((at - fstart) >> OS_PAGE_SHIFT),
				 b = (unsigned)(((end < fend ? end : fend) - fstart) >> OS_PAGE_SHIFT);

			rc = folio_word_load(&r->pt, f) & FOLIO_GONE
				     ? 0
				     : advise_folio(u, c, r, f, advice, a, b);
			at = fend;
		} else {
			rc = errmsg_set(-EINVAL, "uswap_advise: the region of %p was unmapped meanwhile",
					(void *)at);
		}
		regions_read_unlock(&u->regions, shard);
		pthread_rwlock_unlock(&u->fork_lock);
		if (rc && !first_err)
			first_err = rc;
		if (!r)
			break;
	}
	signals_restore(&old);
	if (advice == USWAP_ADV_PAGEOUT)
		__atomic_sub_fetch(&u->paging_out, 1, __ATOMIC_RELAXED);
	folio_ctx_put(u, c);
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

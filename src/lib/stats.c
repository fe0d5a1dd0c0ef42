/* SPDX-License-Identifier: MIT */
/*
 * Counters by name: the derived figures (sizes computed from the budget,
 * the slot map and the store) and the event counters of counters.h.
 */
#include <errno.h>
#include <string.h>

#include "os/os.h"
#include "runtime/instance.h"
#include "runtime/shared.h"

#define API __attribute__((visibility("default")))

enum derived {
	D_resident_bytes,
	D_limit_bytes,
	D_stored_bytes,
	D_orig_bytes,
	D_pool_bytes,
	D_store_objects,
	D_store_compactions,
	D_pinned_bytes,
	D_folio_bytes,
	D_regions,
	D_handler_threads,
	D_swapcache_pages,
	D_unevictable_bytes,
	D_lazyfree_pages,
	D_meta_bytes,
	D_store_reads,
	D_store_writes,
	D_store_errors,
	D_store_read_ns,
	D_store_write_ns,
	D_store_writebacks,
	D_store_direct_io,
	D_shared_resident_bytes,
	D_COUNT
};

static const char *const derived_names[D_COUNT] = {
	"resident_bytes", "limit_bytes",  "stored_bytes",  "orig_bytes",
	"pool_bytes",     "store_objects", "store_compactions", "pinned_bytes",
	"folio_bytes",    "regions",      "handler_threads", "swapcache_pages", "unevictable_bytes",
	"lazyfree_pages", "meta_bytes",
	/* the store's I/O (file, redis; 0 for ram): see struct store_usage */
	"store_reads", "store_writes", "store_errors", "store_read_ns", "store_write_ns",
	"store_writebacks", "store_direct_io",
	"shared_resident_bytes",
};

#define COUNTER_NAME(name, doc) #name,
static const char *const counter_names[CTR_COUNT] = { USWAP_COUNTERS(COUNTER_NAME) };
#undef COUNTER_NAME

/* uswap's own bookkeeping: page tables, slot map, the store's handle table
 * (the store's data is pool_bytes). */
static uint64_t meta_bytes(struct uswap *u)
{
	unsigned shard = regions_api_shard(u);
	struct store_usage su;
	struct slotmap_stats ss;
	uint64_t sum;
	size_t i;

	u->p.store_ops->usage(u->store, &su);
	slotmap_stats(u->slots, &ss);
	sum = su.meta_bytes + ss.meta_bytes;
	regions_read_lock(&u->regions, shard);
	for (i = 0; i < u->regions.n; i++)
		sum += sizeof(*u->regions.v[i]) + pagetable_bytes(&u->regions.v[i]->pt);
	regions_read_unlock(&u->regions, shard);
	return sum;
}

/* The resident folios of the shared regions u maps: they count against its
 * budget as its own do (and against every other mapper's). */
static uint64_t shared_resident_bytes(struct uswap *u)
{
	unsigned shard = regions_api_shard(u);
	uint64_t folios;

	regions_read_lock(&u->regions, shard);
	folios = shared_resident(u);
	regions_read_unlock(&u->regions, shard);
	return folios * folio_bytes(u);
}

static uint64_t derived_value(struct uswap *u, enum derived d)
{
	struct store_usage su;
	struct slotmap_stats ss;

	switch (d) {
	case D_resident_bytes:
		return __atomic_load_n(&u->resident_pages, __ATOMIC_RELAXED) * OS_PAGE_SIZE;
	case D_limit_bytes:
		return u->p.limit;
	case D_stored_bytes:
	case D_pool_bytes:
	case D_store_objects:
	case D_store_compactions:
		u->p.store_ops->usage(u->store, &su);
		return d == D_stored_bytes  ? su.stored_bytes
		       : d == D_pool_bytes  ? su.pool_bytes
		       : d == D_store_objects ? su.objects
					      : su.compactions;
	case D_store_reads:
	case D_store_writes:
	case D_store_errors:
	case D_store_read_ns:
	case D_store_write_ns:
	case D_store_writebacks:
	case D_store_direct_io:
		u->p.store_ops->usage(u->store, &su);
		return d == D_store_reads    ? su.reads
		       : d == D_store_writes ? su.writes
		       : d == D_store_errors ? su.errors
		       : d == D_store_read_ns ? su.read_ns
		       : d == D_store_write_ns ? su.write_ns
		       : d == D_store_writebacks ? su.writebacks
						 : su.direct_io;
	case D_orig_bytes:
		slotmap_stats(u->slots, &ss);
		return ss.slots_used * OS_PAGE_SIZE;
	case D_pinned_bytes:
		return __atomic_load_n(&u->pinned_folios, __ATOMIC_RELAXED) * folio_bytes(u);
	case D_folio_bytes:
		return folio_bytes(u);
	case D_regions:
		return __atomic_load_n(&u->regions.n, __ATOMIC_RELAXED); /* no lock: a snapshot */
	case D_handler_threads:
		return u->nworkers;
	case D_unevictable_bytes:
		return __atomic_load_n(&u->uncharged_folios, __ATOMIC_RELAXED) * folio_bytes(u);
	case D_lazyfree_pages:
		return __atomic_load_n(&u->lazyfree_pages, __ATOMIC_RELAXED);
	case D_meta_bytes:
		return meta_bytes(u);
	case D_swapcache_pages:
		return __atomic_load_n(&u->swapcache_pages, __ATOMIC_RELAXED);
	case D_shared_resident_bytes:
		return shared_resident_bytes(u);
	default:
		return 0;
	}
}

API const char *uswap_stat_name(unsigned i)
{
	if (i < D_COUNT)
		return derived_names[i];
	i -= D_COUNT;
	return i < CTR_COUNT ? counter_names[i] : NULL;
}

API int uswap_stat(uswap_t *u, const char *name, uint64_t *value)
{
	unsigned i;

	if (!u || !name || !value)
		return -EINVAL;
	for (i = 0; i < D_COUNT; i++) {
		if (!strcmp(name, derived_names[i])) {
			*value = derived_value(u, (enum derived)i);
			return 0;
		}
	}
	for (i = 0; i < CTR_COUNT; i++) {
		if (!strcmp(name, counter_names[i])) {
			*value = ctr_get(u, (enum counter)i);
			return 0;
		}
	}
	return -ENOENT;
}

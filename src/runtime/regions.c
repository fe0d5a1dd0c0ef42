/* SPDX-License-Identifier: MIT */
/*
 * The region table: a sorted array of regions, read under a sharded
 * reader-writer lock ("big-reader lock").  Each handler thread reads under
 * its own shard, so faults on different CPUs never touch a shared lock
 * word; map and unmap, which are rare, take every shard for writing.
 *
 * Writers take the API callers' shards first: a long uswap_advise holds
 * one of those, and a writer waiting for it must not be holding the
 * handlers' shards meanwhile, or every fault would wait behind the advice.
 *
 * The array is reserved once with mmap (address space only, filled as it
 * grows): inserting never allocates while the locks are held, so the
 * table never waits on malloc, which may itself be managed memory under
 * the LD_PRELOAD shim.
 */
#include "instance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/os.h"
#include "shared.h"

#define REGIONS_MAX (1u << 20)

void regions_init_locks(struct region_table *t)
{
	unsigned i;

	for (i = 0; i < t->nshards; i++)
		pthread_rwlock_init(&t->shard[i], NULL);
}

int regions_init(struct region_table *t, unsigned nshards, unsigned api_first)
{
	memset(t, 0, sizeof(*t));
	if (nshards > REGION_SHARDS_MAX)
		nshards = REGION_SHARDS_MAX;
	t->nshards = nshards;
	t->api_first = api_first;
	regions_init_locks(t);
	t->v = os_mem_map(REGIONS_MAX * sizeof(*t->v));
	if (!t->v)
		return -ENOMEM;
	t->cap = REGIONS_MAX;
	return 0;
}

void regions_destroy(struct region_table *t)
{
	unsigned i;

	for (i = 0; i < t->nshards; i++)
		pthread_rwlock_destroy(&t->shard[i]);
	if (t->v)
		os_mem_unmap(t->v, REGIONS_MAX * sizeof(*t->v));
	t->v = NULL;
	t->n = t->cap = 0;
}

void regions_read_lock(struct region_table *t, unsigned shard)
{
	pthread_rwlock_rdlock(&t->shard[shard]);
}

void regions_read_unlock(struct region_table *t, unsigned shard)
{
	pthread_rwlock_unlock(&t->shard[shard]);
}

/* The i-th shard in writer order: API shards, then the others. */
static unsigned write_order(const struct region_table *t, unsigned i)
{
	unsigned napi = t->nshards - t->api_first;

	return i < napi ? t->api_first + i : i - napi;
}

void regions_write_lock(struct region_table *t)
{
	unsigned i;

	for (i = 0; i < t->nshards; i++)
		pthread_rwlock_wrlock(&t->shard[write_order(t, i)]);
}

void regions_write_unlock(struct region_table *t)
{
	unsigned i = t->nshards;

	while (i--)
		pthread_rwlock_unlock(&t->shard[write_order(t, i)]);
}

struct region *regions_find(struct region_table *t, uintptr_t addr)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct region *r = t->v[mid];

		if (addr < (uintptr_t)r->start)
			hi = mid;
		else if (addr >= (uintptr_t)r->start + r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

struct region *regions_find_from(struct region_table *t, uintptr_t addr)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((uintptr_t)t->v[mid]->start + t->v[mid]->len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->n ? t->v[lo] : NULL;
}

int regions_insert(struct region_table *t, struct region *r)
{
	size_t i;

	if (t->n == t->cap)
		return -ENOMEM;
	for (i = t->n; i > 0 && t->v[i - 1]->start > r->start; i--)
		t->v[i] = t->v[i - 1];
	t->v[i] = r;
	__atomic_store_n(&t->n, t->n + 1, __ATOMIC_RELAXED); /* read unlocked by stats */
	return 0;
}

void regions_remove(struct region_table *t, struct region *r)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->v[i] == r) {
			memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
			__atomic_store_n(&t->n, t->n - 1, __ATOMIC_RELAXED);
			return;
		}
	}
}

/* Shards [api_first, nshards) serve API callers, picked by thread id so
 * that two application threads rarely share one. */
unsigned regions_api_shard(const struct uswap *u)
{
	unsigned first = u->regions.api_first, n = u->regions.nshards - first;

	return first + (unsigned)gettid() % n;
}

/* Unregister and unmap folios [from, to) of r (never a GONE one).  Unregister
 * first: unmapping a registered range would send our own handlers an unmap
 * event and wait for them to read it. */
static void region_span_unmap(struct uswap *u, struct region *r, uint32_t from, uint32_t to)
{
	size_t fb = folio_bytes(u);

	if (from == to)
		return;
	os_uffd_unregister(u->ufd, r->start + (size_t)from * fb, (size_t)(to - from) * fb);
	os_mem_unmap(r->start + (size_t)from * fb, (size_t)(to - from) * fb);
}

void region_destroy(struct uswap *u, struct region *r)
{
	uint32_t f, span = 0;

	if (r->sh) {
		shared_region_destroy(u, r);
		return;
	}
	for (f = 0; f < r->pt.nfolios; f++) {
		uint32_t w = folio_word_load(&r->pt, f);

		/* never unmap a range the program unmapped (someone may have
		 * mapped it again) */
		if (w & FOLIO_GONE) {
			region_span_unmap(u, r, span, f);
			span = f + 1;
			continue;
		}
		if (folio_state_of(w) == FOLIO_RESIDENT)
			budget_release(u, &r->pt, f, folio_charge(&r->pt, f, w));
		folio_release(u, r, f);
		if (w & FOLIO_PINNED)
			__atomic_fetch_sub(&u->pinned_folios, 1, __ATOMIC_RELAXED);
	}
	region_span_unmap(u, r, span, r->pt.nfolios);
	pagetable_destroy(&r->pt);
	free(r);
}

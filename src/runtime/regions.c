/* SPDX-License-Identifier: MIT */
/*
 * The region table: a sorted array of regions, read under a sharded
 * reader-writer lock ("big-reader lock").  Each handler thread reads under
 * its own shard, so faults on different CPUs never touch a shared lock
 * word; map and unmap, which are rare, take every shard for writing.
 */
#include "instance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int regions_init(struct region_table *t, unsigned nshards)
{
	unsigned i;

	memset(t, 0, sizeof(*t));
	if (nshards > REGION_SHARDS_MAX)
		nshards = REGION_SHARDS_MAX;
	t->nshards = nshards;
	for (i = 0; i < nshards; i++)
		pthread_rwlock_init(&t->shard[i], NULL);
	return 0;
}

void regions_destroy(struct region_table *t)
{
	unsigned i;

	for (i = 0; i < t->nshards; i++)
		pthread_rwlock_destroy(&t->shard[i]);
	free(t->v);
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

void regions_write_lock(struct region_table *t)
{
	unsigned i;

	for (i = 0; i < t->nshards; i++)
		pthread_rwlock_wrlock(&t->shard[i]);
}

void regions_write_unlock(struct region_table *t)
{
	unsigned i = t->nshards;

	while (i--)
		pthread_rwlock_unlock(&t->shard[i]);
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

int regions_insert(struct region_table *t, struct region *r)
{
	size_t i;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct region **v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	for (i = t->n; i > 0 && t->v[i - 1]->start > r->start; i--)
		t->v[i] = t->v[i - 1];
	t->v[i] = r;
	t->n++;
	return 0;
}

void regions_remove(struct region_table *t, struct region *r)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->v[i] == r) {
			memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
			t->n--;
			return;
		}
	}
}

/* Shards [nworkers + 1, nshards) serve API callers, picked by thread id so
 * that two application threads rarely share one. */
unsigned regions_api_shard(const struct uswap *u)
{
	unsigned first = u->nworkers + 1, n = u->regions.nshards - first;

	return first + (unsigned)gettid() % n;
}

/* SPDX-License-Identifier: MIT */
/* The handle table shared by the file, tier and redis stores. */
#include "objtable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/errmsg.h"
#include "../os/os.h"

#define OBJTABLE_MAX 0xfffffffeu

void objtable_init(struct objtable *t)
{
	memset(t, 0, sizeof(*t));
}

void objtable_destroy(struct objtable *t)
{
	if (t->v)
		os_mem_unmap(t->v, (size_t)t->cap * sizeof(*t->v));
	memset(t, 0, sizeof(*t));
}

static int objtable_grow(struct objtable *t)
{
	uint64_t cap = t->cap ? 2ull * t->cap : 1024;
	struct objtable_entry *v;

	if (cap > OBJTABLE_MAX)
		cap = OBJTABLE_MAX;
	if (cap <= t->cap)
		return -ENOMEM;
	v = os_mem_map((size_t)cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (t->v) {
		memcpy(v, t->v, (size_t)t->n * sizeof(*v));
		os_mem_unmap(t->v, (size_t)t->cap * sizeof(*t->v));
	}
	t->v = v;
	t->cap = (uint32_t)cap;
	return 0;
}

struct objtable_entry *objtable_alloc(struct objtable *t, store_handle_t *h)
{
	struct objtable_entry *e;
	uint32_t i;

	if (t->free_head) {
		i = t->free_head - 1;
		e = &t->v[i];
		t->free_head = (uint32_t)e->loc;
	} else {
		if (t->n == t->cap && objtable_grow(t))
			return NULL;
		i = t->n++;
		e = &t->v[i];
		e->gen = 1;
	}
	e->loc = 0;
	e->len = 0;
	e->seg = 0;
	e->flags = OBJTABLE_LIVE;
	e->aux = e->prev = e->next = 0;
	t->live++;
	h->v = (uint64_t)e->gen << 32 | (i + 1);
	return e;
}

struct objtable_entry *objtable_lookup(const struct objtable *t, store_handle_t h)
{
	uint64_t i = (h.v & 0xffffffffu);
	struct objtable_entry *e;

	if (i == 0 || i > t->n)
		return NULL;
	e = &t->v[i - 1];
	if (!(e->flags & OBJTABLE_LIVE) || e->gen != (uint32_t)(h.v >> 32))
		return NULL;
	return e;
}

bool objtable_free(struct objtable *t, store_handle_t h)
{
	struct objtable_entry *e = objtable_lookup(t, h);

	if (!e)
		return false;
	e->flags = 0;
	e->gen++;
	if (!e->gen)
		e->gen = 1;
	e->loc = t->free_head;
	t->free_head = (uint32_t)(e - t->v) + 1;
	t->live--;
	return true;
}

store_handle_t objtable_handle(const struct objtable *t, const struct objtable_entry *e)
{
	return (store_handle_t){ (uint64_t)e->gen << 32 | (uint64_t)(e - t->v + 1) };
}

size_t objtable_bytes(const struct objtable *t)
{
	return (size_t)t->cap * sizeof(*t->v);
}

int objtable_check(const struct objtable *t, const char *who)
{
	uint32_t live = 0, nfree = 0, i, f;

	for (i = 0; i < t->n; i++)
		live += !!(t->v[i].flags & OBJTABLE_LIVE);
	if (live != t->live)
		return errmsg_set(-EUCLEAN, "store %s: %u live entries, the table counts %u", who,
				  live, t->live);
	for (f = t->free_head; f; f = (uint32_t)t->v[f - 1].loc) {
		if (f > t->n || (t->v[f - 1].flags & OBJTABLE_LIVE) || ++nfree > t->n)
			return errmsg_set(-EUCLEAN, "store %s: free list broken at entry %u", who,
					  f - 1);
	}
	if (live + nfree != t->n)
		return errmsg_set(-EUCLEAN, "store %s: %u live + %u free entries of %u", who, live,
				  nfree, t->n);
	return 0;
}

struct objtable_entry *objtable_lookup_for_free(const struct objtable *t, store_handle_t h,
						pthread_mutex_t *lock, uint64_t *bad_free,
						const char *name)
{
	struct objtable_entry *e = objtable_lookup(t, h);

	if (e)
		return e;
	pthread_mutex_unlock(lock);
	store_count(bad_free, 1);
	if (CORE_DEBUG >= 1) {
		fprintf(stderr, "uswap: store %s: free of a freed or invalid handle %#llx\n", name,
			(unsigned long long)h.v);
		abort();
	}
	return NULL;
}

/* SPDX-License-Identifier: MIT */
/*
 * The handle table of the file, tier and redis stores: from a handle to the
 * store's record of one object (where it is, how long it is).
 *
 *   handle = generation << 32 | (index + 1)
 *
 * An entry's generation is bumped when it is freed, so a freed handle, a
 * handle never issued and a forged one are all recognised (lookup gives
 * NULL) until the entry has been reused 2^32 times.  The table is not
 * locked: each store keeps it under its own lock.  Its memory comes from
 * os_mem_map, not malloc (a store may serve a process whose heap is managed
 * memory).
 */
#ifndef USWAP_OBJTABLE_H
#define USWAP_OBJTABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct objtable_entry {
	uint64_t loc;  /* where the store keeps it (an offset, a key number,
			  an inner handle); the free list's link when free */
	uint32_t len;  /* the object's length */
	uint32_t gen;  /* bumped at free */
	uint16_t seg;  /* the store's segment (file, key prefix) */
	uint16_t flags; /* the store's; OBJTABLE_LIVE is the table's */
	uint32_t aux;  /* the store's (tier: LRU links; readers) */
	uint32_t prev, next; /* the store's (tier: LRU links) */
};

#define OBJTABLE_LIVE 0x8000u

struct objtable {
	struct objtable_entry *v;
	uint32_t n, cap;    /* entries ever used, entries mapped */
	uint32_t free_head; /* index + 1 of the first free entry; 0 = none */
	uint32_t live;      /* entries in use */
};

void objtable_init(struct objtable *t);
void objtable_destroy(struct objtable *t);
/* A new live entry (loc, len, seg, flags zero) and its handle.
 * @return the entry; NULL when out of memory (or past 2^32 - 2 entries) */
struct objtable_entry *objtable_alloc(struct objtable *t, store_handle_t *h);
/* The live entry h names, or NULL. */
struct objtable_entry *objtable_lookup(const struct objtable *t, store_handle_t h);
/* The live entry h names, for the free of store `name`, whose lock (held)
 * is `lock`; when h names no live entry (freed twice, or never issued) the
 * lock is released, the free is counted in *bad_free and NULL returned: a
 * debug build stops there, a release build goes on (nothing to free). */
struct objtable_entry *objtable_lookup_for_free(const struct objtable *t, store_handle_t h,
						pthread_mutex_t *lock, uint64_t *bad_free,
						const char *name);
/* Free the entry h names.  @return false when h names no live entry. */
bool objtable_free(struct objtable *t, store_handle_t h);
/* The handle of live entry e. */
store_handle_t objtable_handle(const struct objtable *t, const struct objtable_entry *e);
/* Bytes of metadata the table holds. */
size_t objtable_bytes(const struct objtable *t);
/* Check the free list and the live count.  @return 0; -EUCLEAN (errmsg). */
int objtable_check(const struct objtable *t, const char *who);

#endif

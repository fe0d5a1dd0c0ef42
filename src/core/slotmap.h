/* SPDX-License-Identifier: MIT */
/*
 * Slot map: the swap-slot space, its per-slot reference counts, and the
 * store handle of each run of slots.
 *
 * A folio of 2^order pages is swapped out into a *run*: 2^order contiguous
 * slots, naturally aligned (first % 2^order == 0), that share one stored
 * object (one store handle).  Slot i of the run holds page i of the folio.
 * Runs come from *clusters* of SLOT_CLUSTER slots, as in the kernel's swap
 * allocator: a cluster serves one order at a time, so large runs do not
 * fragment behind small ones.  When no run of the wanted order can be had
 * (the slot space is at max_slots) slot_alloc fails with -ENOSPC and the
 * caller falls back to order 0 and counts it.
 *
 * Each slot has a count of the page entries that reference it (more than
 * one after fork).  A run is freed when the counts of all its slots drop to
 * zero; slot_put then hands back the run's store handle for the caller to
 * free in the store.
 *
 * Pure logic: no system calls, memory from malloc.  Thread-safe.
 * Locking: slotmap.alloc_lock (allocation, cluster lists) ->
 * cluster.lock (counts of one cluster).  slot_put/slot_get take only the
 * cluster lock of the slot, so the fault path never takes alloc_lock: a
 * put that changes which list its cluster belongs on (full -> partial,
 * partial -> free) pushes the cluster on a lock-free stack that the next
 * allocation drains under alloc_lock (details in slotmap.c).
 *
 * Memory is taken per cluster as clusters come into use: a 312-byte header
 * (lock, list links, run bitmaps, a bit per slot for its count) plus one
 * 8-byte handle per run of the cluster's order: 8.6 bytes per slot at
 * order 0, 1.1 at order 4 (slotmap_cluster_bytes).  Counts above 1 (only
 * slot_get makes them) add a byte per slot to their cluster.  An unused slot space costs only its directory (8 bytes
 * per 512 clusters: 8 KiB for the default 1 TiB).
 *
 * Order-0 fallback inside the map: when no order-0 cluster, free cluster or
 * growth is left, an order-0 run may take a slot of a *split* run: a free
 * run of another order's cluster (smallest order first) whose 2^order
 * slots then serve order-0 runs only.  The split stays inside that run's
 * naturally aligned window, so the cluster's other runs are untouched and
 * keep serving their order; the window is a whole free run again once its
 * last slot is freed.  Counted in slotmap_stats.frag_allocs.
 */
#ifndef USWAP_SLOTMAP_H
#define USWAP_SLOTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../store/store.h"

#define SLOT_CLUSTER 512u       /* slots per cluster (= 2 MiB of pages) */
#define SLOT_MAX_ORDER 9u       /* runs of up to 512 slots */
#define SLOT_COUNT_MAX 255u     /* references one slot may have */

/* A slot number; a distinct type so it is never mixed with a page index. */
typedef struct {
	uint32_t v;
} slot_t;

struct slotmap;

struct slotmap_stats {
	uint64_t slots_used;     /* slots with a count > 0 */
	uint64_t runs;           /* runs allocated */
	uint64_t clusters;       /* clusters in use (not free) */
	uint64_t alloc_fail[SLOT_MAX_ORDER + 1]; /* -ENOSPC per order */
	/* additions */
	uint64_t frag_allocs;    /* order-0 runs placed in a split run of
	                            another order's cluster (see above) */
	uint64_t alloc_nomem;    /* slot_alloc calls that failed with -ENOMEM */
	uint64_t clusters_grown; /* clusters that have memory (used or free) */
	uint64_t meta_bytes;     /* memory the map holds, all included */
};

/*
 * @max_slots  upper bound of the slot space (multiple of SLOT_CLUSTER);
 *             0 = 1 << 28 (1 TiB of pages).
 * @return 0; -EINVAL; -ENOMEM
 */
int slotmap_create(uint32_t max_slots, struct slotmap **out);
void slotmap_destroy(struct slotmap *sm);

/*
 * Allocate a run of 2^order slots, each with count 1, attached to handle h.
 * Order 0 may come from a split run of another order (see above).
 * @return 0 and *first; -ENOSPC when no naturally aligned run of this order
 *         is free; -EINVAL for order > SLOT_MAX_ORDER or h.v == 0 (0 is
 *         never a valid handle); -ENOMEM when a cluster's memory cannot be
 *         had (counted in alloc_nomem, not in alloc_fail).
 */
int slot_alloc(struct slotmap *sm, unsigned order, store_handle_t h, slot_t *first);

/* Add one reference to a used slot.  The first count above 1 in a cluster
 * gives it a count byte per slot (512 bytes).  @return 0; -EOVERFLOW at
 * SLOT_COUNT_MAX; -EINVAL for a free slot; -ENOMEM. */
int slot_get(struct slotmap *sm, slot_t s);

/*
 * Drop one reference.  When this frees the last slot of its run, the run
 * is freed and @return 1 with *freed set to the run's handle (the caller
 * frees the object in the store); otherwise @return 0.
 * Dropping a reference to a free slot is a bug (asserted).
 */
int slot_put(struct slotmap *sm, slot_t s, store_handle_t *freed);

/* The count of a slot (0 = free). */
unsigned slot_count(const struct slotmap *sm, slot_t s);

/*
 * Look up the run a used slot belongs to.
 * @return 0 and *h, *first (first slot of the run), *order; -EINVAL for a
 *         free slot.
 */
int slot_run(const struct slotmap *sm, slot_t s, store_handle_t *h, slot_t *first,
	     unsigned *order);

/*
 * Point the run that starts at slot first (as slot_run gives it) at handle
 * h instead of old: its object was stored anew (idle recompression).  The
 * caller frees old in the store afterwards, and keeps the run from being
 * freed meanwhile (it holds the lock of the folio whose pages use it).
 * @return 0; -ESTALE when the run's handle is not old; -EINVAL for a free
 *         slot, a slot that does not start its run, or h.v == 0.
 */
int slot_run_rehandle(struct slotmap *sm, slot_t first, store_handle_t old, store_handle_t h);

void slotmap_stats(struct slotmap *sm, struct slotmap_stats *st);

/*
 * Memory one cluster serving runs of @order holds (its header with the
 * counts, and one handle per run), not counting split runs: the unit of
 * slotmap_stats.meta_bytes, for models of it (tests).
 */
size_t slotmap_cluster_bytes(unsigned order);

/*
 * Check every invariant (counts vs runs vs cluster lists vs free counts).
 * Debug builds and tests call it after operations.  @return 0, or -EFAULT
 * after printing what is wrong to stderr.
 */
int slotmap_check(struct slotmap *sm);

/*
 * Fork hooks (jemalloc's habit).  slotmap_prefork takes every lock of the
 * map (alloc_lock, then the cluster locks in ascending order) so that no
 * lock is held mid-update across fork(); call slotmap_postfork_parent in
 * the parent and slotmap_postfork_child in the child afterwards.  The
 * child gets a private copy of the map with the same counts.
 */
void slotmap_prefork(struct slotmap *sm);
void slotmap_postfork_parent(struct slotmap *sm);
void slotmap_postfork_child(struct slotmap *sm);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The runtime's view of one uswap instance: its regions, fault-handler
 * threads, reclaimer, slot map, store and counters.
 *
 * Lock order (outer first):
 *   region shard locks (all, in index order, for writers)
 *     -> clock_lock
 *       -> folio LOCKED bits (trylock only while clock_lock is held)
 *         -> slot map locks -> store locks
 *   ctx_lock is a leaf.
 * Readers of the region table take only their own shard (see regions.c),
 * so the fault path shares no lock between handler threads.
 */
#ifndef USWAP_INSTANCE_H
#define USWAP_INSTANCE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "core/clock.h"
#include "core/pagetable.h"
#include "core/slotmap.h"
#include "store/store.h"
#include "counters.h"
#include "uswap.h"

struct region {
	char *start;       /* folio aligned */
	size_t len;        /* bytes, a multiple of the folio size */
	uint32_t npages;
	struct pagetable pt;
};

/* Buffers of a thread that evicts folios or swaps them in. */
struct folio_ctx {
	char *staging;     /* one folio of address space registered with the
	                      userfaultfd: evicted pages are moved here */
	void *blob;        /* folio_blob_bound(pages) */
	void *scratch;     /* one folio: packing on encode, decoding on swap-in */
	void *scratch2;    /* one folio: decoding other runs in a fallback */
	struct folio_ctx *next_free;
};

/* Resolved configuration. */
struct uswap_params {
	size_t limit;
	size_t folio_size;
	unsigned folio_order; /* log2(pages per folio) */
	size_t store_limit;
	unsigned threads;
	unsigned flags;
	const struct codec_ops *codec;
	const struct store_ops *store_ops;
	const char *store_arg;
	char store_uri[256];
};

#define REGION_SHARDS_MAX 66

struct region_table {
	pthread_rwlock_t shard[REGION_SHARDS_MAX];
	unsigned nshards;
	struct region **v; /* sorted by start */
	size_t n, cap;
};

struct worker {
	pthread_t thread;
	struct uswap *u;
	int cpu;           /* pinned CPU, or -1 */
	unsigned shard;
	struct folio_ctx ctx;
};

struct uswap {
	struct uswap_params p;
	int ufd;
	unsigned features;  /* OS_UFFD_* granted */
	struct slotmap *slots;
	struct store *store;
	struct region_table regions;

	/* budget, in folios; max 0 = no limit */
	uint64_t max_folios, high_wm, low_wm;
	uint64_t resident_folios; /* atomic */
	uint64_t pinned_folios;   /* atomic */

	/* the reclaim clock */
	pthread_mutex_t clock_lock;
	struct clock_hand hand;

	struct worker *workers;
	unsigned nworkers;
	pthread_t reclaimer;
	bool reclaimer_started;
	struct folio_ctx reclaim_ctx;
	int stop_fd;        /* eventfd: handler threads stop */
	int kick_fd;        /* eventfd: the reclaimer has work */
	int stopping;       /* atomic */

	/* buffers for callers of the API (advise) */
	pthread_mutex_t ctx_lock;
	struct folio_ctx *ctx_free;

	int overshoot_reported; /* atomic */
	uint64_t counters[CTR_COUNT]; /* atomic, relaxed */
};

static inline void ctr_add(struct uswap *u, enum counter c, uint64_t n)
{
	__atomic_fetch_add(&u->counters[c], n, __ATOMIC_RELAXED);
}

static inline uint64_t ctr_get(const struct uswap *u, enum counter c)
{
	return __atomic_load_n(&u->counters[c], __ATOMIC_RELAXED);
}

static inline size_t folio_bytes(const struct uswap *u)
{
	return u->p.folio_size;
}

/* ---- regions.c ---- */
int regions_init(struct region_table *t, unsigned nshards);
void regions_destroy(struct region_table *t);
/* Take / release the read side of one shard. */
void regions_read_lock(struct region_table *t, unsigned shard);
void regions_read_unlock(struct region_table *t, unsigned shard);
void regions_write_lock(struct region_table *t);
void regions_write_unlock(struct region_table *t);
/* With a shard held: the region containing addr, or NULL. */
struct region *regions_find(struct region_table *t, uintptr_t addr);
/* With the write lock: insert / remove. */
int regions_insert(struct region_table *t, struct region *r);
void regions_remove(struct region_table *t, struct region *r);
/* The shard API callers (not handler threads) use. */
unsigned regions_api_shard(const struct uswap *u);

/* ---- folio_ctx.c ---- */
int folio_ctx_init(struct uswap *u, struct folio_ctx *c);
void folio_ctx_destroy(struct uswap *u, struct folio_ctx *c);
struct folio_ctx *folio_ctx_get(struct uswap *u);
void folio_ctx_put(struct uswap *u, struct folio_ctx *c);

/* ---- evict.c ---- */
/*
 * Evict folio f of r, which the caller has locked in state RESIDENT.
 * @return 0 (the caller unlocks it OUT); -ENOSPC (store full) or -EBUSY
 *         (a page is pinned or shared): the folio stays resident.
 */
int folio_evict(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f);
/* Free what an OUT folio holds in slots and the store (unmap). */
void folio_release(struct uswap *u, struct region *r, uint32_t f);

/* ---- swapin.c ---- */
enum install_op { INSTALL_COPY, INSTALL_ZERO };
/*
 * Install [dst, dst+len) by copy from src or as zero pages; pages already
 * present (a racing resolution of the same data) are left alone; EAGAIN and
 * ENOMEM are retried.  With wake, the threads waiting on the range are
 * woken when one ioctl installs all of it.
 * @return 1 when the whole range was installed and woken, 0 when installed
 *         but not woken (the caller wakes); -errno when the kernel refuses.
 */
int range_install(struct uswap *u, enum install_op op, char *dst, const char *src, size_t len,
		  bool wake);
/*
 * Bring folio f of r in (state EMPTY or OUT, locked by the caller): map
 * zero pages, decode stored pages and install them, free their slots.
 * @return 1 when the faulting threads were woken (one ioctl installed the
 *         whole folio), 0 when the caller must wake them; -errno when the
 *         kernel refused (the folio keeps its state).
 */
int folio_swap_in(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
		  uint32_t word);

/* ---- reclaim.c ---- */
/* Account one more resident folio; reclaim directly at the hard limit.
 * The caller holds a region shard and the lock of the folio it brings in. */
void budget_charge(struct uswap *u, struct folio_ctx *c);
void budget_uncharge(struct uswap *u, uint64_t folios);
/* Evict one cold folio.  @return 0; -EAGAIN when none could be evicted. */
int reclaim_one(struct uswap *u, struct folio_ctx *c, enum counter why);
int reclaimer_start(struct uswap *u);
void reclaimer_stop(struct uswap *u);

/* ---- fault.c ---- */
/*
 * Resolve a missing fault at addr (page aligned) with the buffers of c;
 * the caller holds a region shard.  @return 0, or -errno when the page
 * could not be brought back (it is then poisoned: the access gets SIGBUS).
 */
int fault_resolve(struct uswap *u, struct folio_ctx *c, uint64_t addr);
int handlers_start(struct uswap *u);
void handlers_stop(struct uswap *u);
/* Lock folio f, sleeping while someone else holds it. */
uint32_t folio_lock_wait(struct region *r, uint32_t f);
/* Unlock, waking sleepers. */
void folio_unlock_wake(struct region *r, uint32_t f, enum folio_state to, uint32_t set,
		       uint32_t clear);

#endif

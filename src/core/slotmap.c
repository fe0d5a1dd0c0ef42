/* SPDX-License-Identifier: MIT */
/*
 * Slot map with slot clusters (see slotmap.h for the contract).
 *
 * Layout.  The slot space is an array of clusters of SLOT_CLUSTER slots,
 * reached through a two-level directory (dir[leaf][i]) so that a 1 TiB
 * space costs one pointer per 512 clusters until it is used.  Clusters are
 * created one at a time as the space grows and are kept (free or not)
 * until slotmap_destroy; nr_clusters, published with release, says how
 * many exist, so lookups on the fault path need no lock.
 *
 * A cluster serves one order k at a time: its slots form 512 >> k runs,
 * run j covering slots [j << k, (j + 1) << k).  Per run: a bit in run_used
 * and one handle; per slot: one bit (in use), and a count byte only in a
 * cluster where some count went above 1 (see struct cluster).  A free
 * cluster can be given any order when it is taken again; its handle array
 * is then resized for that order (exactly: an order-4 cluster keeps 32
 * handles, not 512).
 *
 * Split runs (order-0 fallback).  A free run of a cluster of order k > 0
 * may be split: its 2^k slots then each hold an order-0 run, and its
 * handle entry points to a malloc'd array of 2^k handles instead of being
 * a handle.  The split never leaves the run's own aligned window, so the
 * cluster's other runs keep their alignment and order; once all slots of
 * the window are free the array is freed and the run is a whole free run
 * again.  Only order 0 does this, and only when nothing else is left.
 *
 * Lists (under alloc_lock).  Each cluster is on exactly one of: the free
 * list (every slot free), partial[order] (some runs free), or none (full);
 * and on the frag list too while a split run of it has a free slot.
 * Allocation moves clusters between lists itself.  A put that frees a run
 * may make the cluster belong on another list; to keep alloc_lock off the
 * fault path, the put only pushes the cluster on the lock-free `pending`
 * stack (once: c->pending), and whoever next holds alloc_lock (allocation,
 * check) drains the stack and puts each cluster where its counts say.
 * Only puts push and only one drainer at a time pops (the whole stack, by
 * exchange), so the stack has no ABA problem.
 *
 * Stats are not kept in shared counters (they would bounce one cache line
 * between all fault threads): each cluster counts its own used slots and
 * runs under its lock, and slotmap_stats adds them up.
 */
#include "slotmap.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "errmsg.h"

#define CLUSTER_SHIFT 9u
#define CLUSTER_WORDS (SLOT_CLUSTER / 64u)
#define DIR_LEAF 512u /* cluster pointers per directory leaf (4 KiB) */
#define SLOT_SPACE_DEFAULT (1u << 28)

_Static_assert(SLOT_CLUSTER == 1u << CLUSTER_SHIFT, "SLOT_CLUSTER is 2^CLUSTER_SHIFT");
_Static_assert(SLOT_CLUSTER == 1u << SLOT_MAX_ORDER, "an order-9 run fills a cluster");

enum cluster_list_id {
	CLUSTER_FULL,	 /* on no list: no free run */
	CLUSTER_PARTIAL, /* on sm->partial[order] */
	CLUSTER_FREE,	 /* on sm->free_list: every slot free */
};

struct cluster;

struct cluster_link {
	struct cluster *prev, *next;
};

struct cluster_list {
	struct cluster *head;
	uint32_t len;
};

/*
 * Lock order: slotmap.alloc_lock -> cluster.lock.  Cluster locks never
 * nest, except in slotmap_prefork, which takes them in ascending index.
 *
 * Protected by cluster.lock: in_use[] and counts (written only under it;
 * read without it by slot_count with atomics), order, free_runs, nr_used,
 * nr_runs, split_free, hcap, handles, run_used, run_split, pending and
 * pending_next (the latter also handed over through sm->pending).
 * Written under alloc_lock *and* cluster.lock, so readable under either:
 * list, on_frag.  Under alloc_lock only: link, flink.
 */
struct cluster {
	pthread_mutex_t lock;
	uint32_t idx;	     /* cluster number: first slot is idx << 9 */
	uint8_t order;	     /* order of the runs while not free */
	uint8_t list;	     /* enum cluster_list_id it is on */
	bool on_frag;	     /* on sm->frag_list */
	bool pending;	     /* on sm->pending, waiting for a relist */
	uint16_t free_runs;  /* whole free runs of order (split ones excluded) */
	uint16_t nr_used;    /* slots with count > 0 */
	uint16_t nr_runs;    /* allocated runs; each slot of a split run is one */
	uint16_t split_free; /* free slots inside split runs */
	uint16_t hcap;	     /* entries in handles[] */
	struct cluster *pending_next;
	struct cluster_link link;  /* free_list or partial[order] */
	struct cluster_link flink; /* frag_list */
	/* run j: its handle; for a split run, a store_handle_t[1 << order]
	 * of its slots' handles (see split_handles()) */
	store_handle_t *handles;
	uint64_t run_used[CLUSTER_WORDS];
	uint64_t run_split[CLUSTER_WORDS];
	/*
	 * Slot counts.  A slot is referenced once, except after slot_get,
	 * which nothing in the runtime calls today (fork shares slots with the
	 * SHARED bit of page entries instead).  So a cluster keeps one bit per
	 * slot (count != 0), and only once a count goes above 1 a byte per
	 * slot (counts, never freed, published with release): 64 bytes per
	 * cluster instead of 512.
	 */
	uint64_t in_use[CLUSTER_WORDS];
	uint8_t *counts;
};

struct slotmap {
	/* Lock order: alloc_lock -> cluster.lock (see struct cluster). */
	pthread_mutex_t alloc_lock;
	/* under alloc_lock */
	struct cluster_list partial[SLOT_MAX_ORDER + 1];
	struct cluster_list free_list;
	struct cluster_list frag_list;
	uint64_t alloc_fail[SLOT_MAX_ORDER + 1];
	uint64_t alloc_nomem;
	uint64_t frag_allocs;
	uint32_t max_slots;
	uint32_t max_clusters;
	uint32_t nr_leaves;
	/* clusters that exist; release-stored after dir is filled in */
	_Alignas(64) _Atomic uint32_t nr_clusters;
	/* clusters whose list is stale; pushed by puts, drained under alloc_lock */
	_Alignas(64) _Atomic(struct cluster *) pending;
	/* dir[i] is a leaf of DIR_LEAF cluster pointers, or NULL */
	_Alignas(64) struct cluster **dir[];
};

struct check_totals;
static int cluster_check(const struct cluster *c, struct check_totals *t);

/* ---- small helpers ---- */

static inline unsigned cluster_nruns(const struct cluster *c)
{
	return SLOT_CLUSTER >> c->order;
}

static inline bool bit_test(const uint64_t *map, unsigned i)
{
	return map[i / 64] >> (i % 64) & 1;
}

static inline void bit_set(uint64_t *map, unsigned i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static inline void bit_clear(uint64_t *map, unsigned i)
{
	map[i / 64] &= ~(1ull << (i % 64));
}

/* The first clear bit below n, or n when all are set. */
static unsigned bit_find_clear(const uint64_t *map, unsigned n)
{
	for (unsigned w = 0; w * 64 < n; w++) {
		uint64_t free = ~map[w];

		if (n - w * 64 < 64)
			free &= (1ull << (n - w * 64)) - 1;
		if (free)
			return w * 64 + (unsigned)__builtin_ctzll(free);
	}
	return n;
}

/*
 * Counts are read without the lock by slot_count, so every access is atomic
 * (relaxed: the lock orders writers; a lockless reader only wants some
 * recent value of a slot it references; counts is published with release
 * after it is filled, so a reader that sees it sees every count).
 */
static inline unsigned count_get(const struct cluster *c, unsigned i)
{
	const uint8_t *counts = __atomic_load_n(&c->counts, __ATOMIC_ACQUIRE);

	if (counts)
		return __atomic_load_n(&counts[i], __ATOMIC_RELAXED);
	return __atomic_load_n(&c->in_use[i / 64], __ATOMIC_RELAXED) >> (i % 64) & 1;
}

/* Set the count of slot i; a count above 1 needs c->counts (count_widen).
 * Cluster lock held. */
static inline void count_set(struct cluster *c, unsigned i, unsigned v)
{
	uint64_t bit = 1ull << (i % 64);

	core_assert(v <= 1 || c->counts);
	if (c->counts)
		__atomic_store_n(&c->counts[i], (uint8_t)v, __ATOMIC_RELAXED);
	if (v)
		__atomic_fetch_or(&c->in_use[i / 64], bit, __ATOMIC_RELAXED);
	else
		__atomic_fetch_and(&c->in_use[i / 64], ~bit, __ATOMIC_RELAXED);
}

/* Give c a byte per slot for counts above 1, filled from the bits.
 * Cluster lock held.  @return 0; -ENOMEM. */
static int count_widen(struct cluster *c)
{
	uint8_t *counts;

	if (c->counts)
		return 0;
	counts = malloc(SLOT_CLUSTER);
	if (!counts)
		return -ENOMEM;
	for (unsigned i = 0; i < SLOT_CLUSTER; i++)
		counts[i] = (uint8_t)(c->in_use[i / 64] >> (i % 64) & 1);
	__atomic_store_n(&c->counts, counts, __ATOMIC_RELEASE);
	return 0;
}

/* Whether slots [first, first + n) all have count 0 (first is a multiple
 * of n, a power of two).  Cluster lock held: no writer races the reads. */
static bool count_range_zero(const struct cluster *c, unsigned first, unsigned n)
{
	if (n < 64)
		return !(c->in_use[first / 64] >> (first % 64) & ((1ull << n) - 1));
	for (unsigned w = first / 64; w < (first + n) / 64; w++)
		if (c->in_use[w])
			return false;
	return true;
}

static inline store_handle_t *split_handles(const struct cluster *c, unsigned run)
{
	return (store_handle_t *)(uintptr_t)c->handles[run].v;
}

static inline struct cluster *slotmap_cluster(const struct slotmap *sm, uint32_t idx)
{
	if (idx >= atomic_load_explicit(&sm->nr_clusters, memory_order_acquire))
		return NULL;
	return sm->dir[idx / DIR_LEAF][idx % DIR_LEAF];
}

/* ---- cluster lists (alloc_lock held) ---- */

static struct cluster_link *cluster_link_of(struct cluster *c, bool frag)
{
	return frag ? &c->flink : &c->link;
}

static void cluster_list_add(struct cluster_list *l, struct cluster *c, bool frag)
{
	struct cluster_link *lk = cluster_link_of(c, frag);

	lk->prev = NULL;
	lk->next = l->head;
	if (l->head)
		cluster_link_of(l->head, frag)->prev = c;
	l->head = c;
	l->len++;
}

static void cluster_list_del(struct cluster_list *l, struct cluster *c, bool frag)
{
	struct cluster_link *lk = cluster_link_of(c, frag);

	if (lk->prev)
		cluster_link_of(lk->prev, frag)->next = lk->next;
	else
		l->head = lk->next;
	if (lk->next)
		cluster_link_of(lk->next, frag)->prev = lk->prev;
	lk->prev = lk->next = NULL;
	l->len--;
}

static struct cluster_list *cluster_list_for(struct slotmap *sm, const struct cluster *c,
					     unsigned id)
{
	switch (id) {
	case CLUSTER_PARTIAL:
		return &sm->partial[c->order];
	case CLUSTER_FREE:
		return &sm->free_list;
	default:
		return NULL;
	}
}

/* The list a cluster's counts call for. */
static unsigned cluster_list_want(const struct cluster *c)
{
	if (c->free_runs == cluster_nruns(c))
		return CLUSTER_FREE;
	return c->free_runs ? CLUSTER_PARTIAL : CLUSTER_FULL;
}

static bool cluster_misplaced(const struct cluster *c)
{
	return cluster_list_want(c) != c->list || (c->split_free > 0) != c->on_frag;
}

/* Put c on the lists its counts call for.  alloc_lock and c->lock held. */
static void cluster_relist(struct slotmap *sm, struct cluster *c)
{
	unsigned want = cluster_list_want(c);
	bool frag = c->split_free > 0;

	if (want != c->list) {
		struct cluster_list *from = cluster_list_for(sm, c, c->list);
		struct cluster_list *to = cluster_list_for(sm, c, want);

		if (from)
			cluster_list_del(from, c, false);
		if (to)
			cluster_list_add(to, c, false);
		c->list = (uint8_t)want;
	}
	if (frag != c->on_frag) {
		if (frag)
			cluster_list_add(&sm->frag_list, c, true);
		else
			cluster_list_del(&sm->frag_list, c, true);
		c->on_frag = frag;
	}
}

/* After a put freed something: have c relisted later.  c->lock held. */
static void cluster_mark_stale(struct slotmap *sm, struct cluster *c)
{
	struct cluster *head;

	if (c->pending || !cluster_misplaced(c))
		return;
	c->pending = true;
	head = atomic_load_explicit(&sm->pending, memory_order_relaxed);
	do
		c->pending_next = head;
	while (!atomic_compare_exchange_weak_explicit(&sm->pending, &head, c, memory_order_release,
						      memory_order_relaxed));
}

/* Relist every cluster pushed by puts.  alloc_lock held. */
static void slotmap_drain(struct slotmap *sm)
{
	struct cluster *c, *next;

	if (!atomic_load_explicit(&sm->pending, memory_order_relaxed))
		return;
	c = atomic_exchange_explicit(&sm->pending, NULL, memory_order_acquire);
	for (; c; c = next) {
		/* read before clearing pending: after that a put may push c
		 * again and rewrite pending_next */
		next = c->pending_next;
		pthread_mutex_lock(&c->lock);
		c->pending = false;
		cluster_relist(sm, c);
		pthread_mutex_unlock(&c->lock);
	}
}

/* ---- create / destroy ---- */

int slotmap_create(uint32_t max_slots, struct slotmap **out)
{
	struct slotmap *sm;
	uint32_t nr_leaves;

	if (!out)
		return -EINVAL;
	if (max_slots == 0)
		max_slots = SLOT_SPACE_DEFAULT;
	if (max_slots % SLOT_CLUSTER)
		return errmsg_set(-EINVAL, "slot space of %u slots: must be a multiple of %u",
				  max_slots, SLOT_CLUSTER);
	nr_leaves = (max_slots / SLOT_CLUSTER + DIR_LEAF - 1) / DIR_LEAF;
	sm = calloc(1, sizeof(*sm) + nr_leaves * sizeof(sm->dir[0]));
	if (!sm)
		return -ENOMEM;
	if (pthread_mutex_init(&sm->alloc_lock, NULL)) {
		free(sm);
		return -ENOMEM;
	}
	sm->max_slots = max_slots;
	sm->max_clusters = max_slots / SLOT_CLUSTER;
	sm->nr_leaves = nr_leaves;
	atomic_init(&sm->nr_clusters, 0);
	atomic_init(&sm->pending, NULL);
	*out = sm;
	return 0;
}

static void cluster_free_splits(struct cluster *c)
{
	for (unsigned j = 0; j < cluster_nruns(c); j++)
		if (bit_test(c->run_split, j))
			free(split_handles(c, j));
}

void slotmap_destroy(struct slotmap *sm)
{
	uint32_t n;

	if (!sm)
		return;
	n = atomic_load_explicit(&sm->nr_clusters, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++) {
		struct cluster *c = sm->dir[i / DIR_LEAF][i % DIR_LEAF];

		cluster_free_splits(c);
		free(c->handles);
		free(c->counts);
		pthread_mutex_destroy(&c->lock);
		free(c);
	}
	for (uint32_t i = 0; i < sm->nr_leaves; i++)
		free(sm->dir[i]);
	pthread_mutex_destroy(&sm->alloc_lock);
	free(sm);
}

/* ---- allocation (alloc_lock held throughout) ---- */

/* Give free cluster c the order @order.  c->lock held. */
static int cluster_set_order(struct cluster *c, unsigned order)
{
	unsigned nruns = SLOT_CLUSTER >> order;

	core_assert_debug(c->nr_used == 0 && c->nr_runs == 0 && c->split_free == 0);
	if (c->hcap != nruns) {
		store_handle_t *h = calloc(nruns, sizeof(*h));

		if (!h)
			return -ENOMEM;
		free(c->handles);
		c->handles = h;
		c->hcap = (uint16_t)nruns;
	}
	c->order = (uint8_t)order;
	c->free_runs = (uint16_t)nruns;
	return 0;
}

/*
 * Create cluster number sm->nr_clusters, sized for @order (the order it is
 * about to be given), publish it and put it on the free list.
 */
static int slotmap_grow(struct slotmap *sm, unsigned order)
{
	uint32_t idx = atomic_load_explicit(&sm->nr_clusters, memory_order_relaxed);
	struct cluster ***leaf = &sm->dir[idx / DIR_LEAF];
	struct cluster *c;

	if (idx >= sm->max_clusters)
		return -ENOSPC;
	if (!*leaf) {
		*leaf = calloc(DIR_LEAF, sizeof(**leaf));
		if (!*leaf)
			return -ENOMEM;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (pthread_mutex_init(&c->lock, NULL))
		goto err_free_cluster;
	c->idx = idx;
	c->order = (uint8_t)order;
	if (cluster_set_order(c, order))
		goto err_destroy_lock;
	c->list = CLUSTER_FREE;
	cluster_list_add(&sm->free_list, c, false);
	(*leaf)[idx % DIR_LEAF] = c;
	/* lockless lookups see c only after it is complete */
	atomic_store_explicit(&sm->nr_clusters, idx + 1, memory_order_release);
	return 0;

err_destroy_lock:
	pthread_mutex_destroy(&c->lock);
err_free_cluster:
	free(c);
	return -ENOMEM;
}

/*
 * A cluster with a free run of @order, locked: partial list, else a free
 * cluster (given the order), else a new one.
 */
static int slotmap_take_cluster(struct slotmap *sm, unsigned order, struct cluster **out)
{
	struct cluster *c = sm->partial[order].head;
	int ret;

	if (c) {
		pthread_mutex_lock(&c->lock);
		*out = c;
		return 0;
	}
	if (!sm->free_list.head) {
		ret = slotmap_grow(sm, order);
		if (ret)
			return ret;
	}
	c = sm->free_list.head;
	pthread_mutex_lock(&c->lock);
	ret = cluster_set_order(c, order);
	if (ret) {
		pthread_mutex_unlock(&c->lock);
		return ret;
	}
	*out = c;
	return 0;
}

/* Claim a free run of c; c->lock held and c->free_runs > 0.  @return it */
static unsigned cluster_claim_run(struct cluster *c)
{
	unsigned j = bit_find_clear(c->run_used, cluster_nruns(c));

	core_assert(j < cluster_nruns(c)); /* free_runs said there was one */
	core_assert_debug(!c->handles[j].v && !bit_test(c->run_split, j));
	core_assert_debug(count_range_zero(c, j << c->order, 1u << c->order));
	bit_set(c->run_used, j);
	c->free_runs--;
	return j;
}

/* An order-0 run in a split run with a free slot.  c->lock held. */
static int cluster_split_alloc(struct cluster *c, store_handle_t h, unsigned *slot)
{
	unsigned n = 1u << c->order;

	for (unsigned w = 0; w < CLUSTER_WORDS; w++) {
		for (uint64_t bits = c->run_split[w]; bits; bits &= bits - 1) {
			unsigned j = w * 64 + (unsigned)__builtin_ctzll(bits);
			unsigned first = j << c->order;

			for (unsigned i = 0; i < n; i++) {
				if (count_get(c, first + i))
					continue;
				core_assert_debug(!split_handles(c, j)[i].v);
				split_handles(c, j)[i] = h;
				count_set(c, first + i, 1);
				c->split_free--;
				*slot = first + i;
				return 0;
			}
		}
	}
	return -ENOSPC;
}

/*
 * Order-0 fallback (see the top of the file): a free slot of a split run,
 * else split a free run of the smallest order that has one.
 */
static int slotmap_alloc_frag(struct slotmap *sm, store_handle_t h, slot_t *first)
{
	struct cluster *c;
	unsigned slot;

	while ((c = sm->frag_list.head)) {
		pthread_mutex_lock(&c->lock);
		if (cluster_split_alloc(c, h, &slot) == 0) {
			c->nr_used++;
			c->nr_runs++;
			goto found;
		}
		/* its split runs filled or merged back since it was listed */
		core_assert(c->split_free == 0);
		cluster_relist(sm, c);
		pthread_mutex_unlock(&c->lock);
	}
	/* smallest order first: splitting a small run costs the least
	 * large-order capacity (order-9 clusters are never partial) */
	for (unsigned k = 1; k <= SLOT_MAX_ORDER; k++) {
		store_handle_t *sh;
		unsigned j;

		c = sm->partial[k].head;
		if (!c)
			continue;
		/* before the lock: malloc may be slow */
		sh = calloc(1u << k, sizeof(*sh));
		if (!sh)
			return -ENOMEM;
		pthread_mutex_lock(&c->lock);
		j = cluster_claim_run(c);
		bit_set(c->run_split, j);
		c->handles[j].v = (uintptr_t)sh;
		c->split_free += (uint16_t)((1u << k) - 1);
		sh[0] = h;
		slot = j << k;
		count_set(c, slot, 1);
		c->nr_used++;
		c->nr_runs++;
		goto found;
	}
	return -ENOSPC;

found:
	sm->frag_allocs++;
	cluster_relist(sm, c);
	core_assert_expensive(cluster_check(c, NULL) == 0);
	pthread_mutex_unlock(&c->lock);
	first->v = c->idx << CLUSTER_SHIFT | slot;
	return 0;
}

int slot_alloc(struct slotmap *sm, unsigned order, store_handle_t h, slot_t *first)
{
	struct cluster *c;
	unsigned j, n;
	int ret;

	if (order > SLOT_MAX_ORDER || !h.v)
		return -EINVAL;
	n = 1u << order;
	pthread_mutex_lock(&sm->alloc_lock);
	slotmap_drain(sm);
	ret = slotmap_take_cluster(sm, order, &c);
	if (ret == -ENOSPC && order == 0)
		ret = slotmap_alloc_frag(sm, h, first);
	else if (ret == 0) {
		j = cluster_claim_run(c);
		c->handles[j] = h;
		for (unsigned i = 0; i < n; i++)
			count_set(c, (j << order) + i, 1);
		c->nr_used += (uint16_t)n;
		c->nr_runs++;
		cluster_relist(sm, c);
		core_assert_expensive(cluster_check(c, NULL) == 0);
		pthread_mutex_unlock(&c->lock);
		first->v = c->idx << CLUSTER_SHIFT | j << order;
	}
	if (ret == -ENOSPC)
		sm->alloc_fail[order]++;
	else if (ret == -ENOMEM)
		sm->alloc_nomem++;
	pthread_mutex_unlock(&sm->alloc_lock);
	return ret;
}

/* ---- the fault path: get, put, count, run ---- */

int slot_get(struct slotmap *sm, slot_t s)
{
	struct cluster *c = slotmap_cluster(sm, s.v >> CLUSTER_SHIFT);
	unsigned i = s.v & (SLOT_CLUSTER - 1);
	unsigned cnt;
	int ret = 0;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	cnt = count_get(c, i);
	if (cnt == 0)
		ret = -EINVAL;
	else if (cnt >= SLOT_COUNT_MAX)
		ret = -EOVERFLOW;
	else
		ret = count_widen(c);
	if (!ret)
		count_set(c, i, cnt + 1);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int slot_put(struct slotmap *sm, slot_t s, store_handle_t *freed)
{
	struct cluster *c = slotmap_cluster(sm, s.v >> CLUSTER_SHIFT);
	unsigned i = s.v & (SLOT_CLUSTER - 1);
	store_handle_t *stale = NULL;
	unsigned cnt, j, first, n;
	int ret = 0;

	core_assert(c); /* a slot beyond the space was never allocated */
	pthread_mutex_lock(&c->lock);
	cnt = count_get(c, i);
	core_assert(cnt != 0); /* a reference to a free slot: the caller's entry is stale */
	count_set(c, i, cnt - 1);
	if (cnt > 1)
		goto out;

	c->nr_used--;
	j = i >> c->order;
	n = 1u << c->order;
	first = j << c->order;
	core_assert_debug(bit_test(c->run_used, j));
	if (bit_test(c->run_split, j)) {
		store_handle_t *sh = split_handles(c, j);

		*freed = sh[i - first];
		sh[i - first].v = 0;
		c->nr_runs--;
		c->split_free++;
		ret = 1;
		if (count_range_zero(c, first, n)) {
			/* the whole window is free: a whole run again */
			bit_clear(c->run_split, j);
			bit_clear(c->run_used, j);
			c->handles[j].v = 0;
			c->split_free -= (uint16_t)n;
			c->free_runs++;
			stale = sh;
		}
	} else if (count_range_zero(c, first, n)) {
		*freed = c->handles[j];
		c->handles[j].v = 0;
		bit_clear(c->run_used, j);
		c->nr_runs--;
		c->free_runs++;
		ret = 1;
	}
	if (ret)
		cluster_mark_stale(sm, c);
	core_assert_expensive(cluster_check(c, NULL) == 0);
out:
	pthread_mutex_unlock(&c->lock);
	free(stale);
	return ret;
}

unsigned slot_count(const struct slotmap *sm, slot_t s)
{
	const struct cluster *c = slotmap_cluster(sm, s.v >> CLUSTER_SHIFT);

	return c ? count_get(c, s.v & (SLOT_CLUSTER - 1)) : 0;
}

int slot_run(const struct slotmap *sm, slot_t s, store_handle_t *h, slot_t *first, unsigned *order)
{
	struct cluster *c = slotmap_cluster(sm, s.v >> CLUSTER_SHIFT);
	unsigned i = s.v & (SLOT_CLUSTER - 1);
	unsigned j;
	int ret = 0;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (count_get(c, i) == 0) {
		ret = -EINVAL;
		goto out;
	}
	j = i >> c->order;
	if (bit_test(c->run_split, j)) {
		*h = split_handles(c, j)[i - (j << c->order)];
		*first = s;
		*order = 0;
	} else {
		*h = c->handles[j];
		first->v = c->idx << CLUSTER_SHIFT | j << c->order;
		*order = c->order;
	}
out:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int slot_run_rehandle(struct slotmap *sm, slot_t first, store_handle_t old, store_handle_t h)
{
	struct cluster *c = slotmap_cluster(sm, first.v >> CLUSTER_SHIFT);
	unsigned i = first.v & (SLOT_CLUSTER - 1);
	store_handle_t *where;
	unsigned j;
	int ret = -EINVAL;

	if (!c || h.v == 0)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	j = i >> c->order;
	/* a run's first slot may be free (its page was a zero page): the run
	 * is in use as long as any of its slots is */
	if (bit_test(c->run_split, j) && count_get(c, i))
		where = &split_handles(c, j)[i - (j << c->order)];
	else if (!bit_test(c->run_split, j) && bit_test(c->run_used, j) && i == j << c->order)
		where = &c->handles[j];
	else
		goto out; /* a free run, or not the first slot of its run */
	if (where->v != old.v) {
		ret = -ESTALE;
		goto out;
	}
	*where = h;
	ret = 0;
out:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* ---- stats and check ---- */

static size_t cluster_meta_bytes(const struct cluster *c)
{
	size_t b = sizeof(*c) + c->hcap * sizeof(store_handle_t) + (c->counts ? SLOT_CLUSTER : 0);

	for (unsigned w = 0; w < CLUSTER_WORDS; w++)
		b += (size_t)__builtin_popcountll(c->run_split[w]) *
		     (sizeof(store_handle_t) << c->order);
	return b;
}

size_t slotmap_cluster_bytes(unsigned order)
{
	return sizeof(struct cluster) + (SLOT_CLUSTER >> order) * sizeof(store_handle_t);
}

void slotmap_stats(struct slotmap *sm, struct slotmap_stats *st)
{
	uint32_t n;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&sm->alloc_lock);
	n = atomic_load_explicit(&sm->nr_clusters, memory_order_relaxed);
	st->meta_bytes = sizeof(*sm) + sm->nr_leaves * sizeof(sm->dir[0]);
	for (uint32_t l = 0; l < sm->nr_leaves; l++)
		if (sm->dir[l])
			st->meta_bytes += DIR_LEAF * sizeof(*sm->dir[l]);
	for (uint32_t i = 0; i < n; i++) {
		struct cluster *c = sm->dir[i / DIR_LEAF][i % DIR_LEAF];

		pthread_mutex_lock(&c->lock);
		st->slots_used += c->nr_used;
		st->runs += c->nr_runs;
		/* by counts, not list: a pending cluster may still be listed stale */
		st->clusters += cluster_list_want(c) != CLUSTER_FREE;
		st->meta_bytes += cluster_meta_bytes(c);
		pthread_mutex_unlock(&c->lock);
	}
	memcpy(st->alloc_fail, sm->alloc_fail, sizeof(st->alloc_fail));
	st->frag_allocs = sm->frag_allocs;
	st->alloc_nomem = sm->alloc_nomem;
	st->clusters_grown = n;
	pthread_mutex_unlock(&sm->alloc_lock);
}

struct check_totals {
	uint32_t on_partial[SLOT_MAX_ORDER + 1], on_free, on_frag;
};

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "slotmap_check: " __VA_ARGS__);                            \
			fputc('\n', stderr);                                                       \
			return -EFAULT;                                                            \
		}                                                                                  \
	} while (0)

/*
 * Every invariant of one cluster, recomputed from its counts and compared
 * with its counters.  slotmap_stats adds up exactly these counters, so this
 * is also what makes the stats totals agree with the counts.  c->lock held
 * (and alloc_lock, for t's list tallies).
 */
static int cluster_check(const struct cluster *c, struct check_totals *t)
{
	unsigned nruns = cluster_nruns(c), n = 1u << c->order;
	unsigned free_runs = 0, used = 0, runs = 0, split_free = 0;

	CHECK(c->order <= SLOT_MAX_ORDER, "cluster %u: order %u", c->idx, c->order);
	CHECK(c->hcap == nruns, "cluster %u: %u handles for %u runs", c->idx, c->hcap, nruns);
	for (unsigned j = nruns; j < SLOT_CLUSTER; j++)
		CHECK(!bit_test(c->run_used, j) && !bit_test(c->run_split, j),
		      "cluster %u: run bit %u beyond %u runs", c->idx, j, nruns);
	for (unsigned j = 0; j < nruns; j++) {
		unsigned first = j << c->order, live = 0;

		for (unsigned i = 0; i < n; i++)
			live += count_get(c, first + i) != 0;
		used += live;
		if (!bit_test(c->run_used, j)) {
			CHECK(!bit_test(c->run_split, j), "cluster %u: free run %u split", c->idx,
			      j);
			CHECK(!c->handles[j].v, "cluster %u: free run %u has handle %llu", c->idx,
			      j, (unsigned long long)c->handles[j].v);
			CHECK(!live, "cluster %u: free run %u has %u used slots", c->idx, j, live);
			free_runs++;
			continue;
		}
		CHECK(live, "cluster %u: run %u allocated with every count 0", c->idx, j);
		if (!bit_test(c->run_split, j)) {
			CHECK(c->handles[j].v, "cluster %u: run %u has no handle", c->idx, j);
			runs++;
			continue;
		}
		CHECK(c->order > 0, "cluster %u: split run %u at order 0", c->idx, j);
		CHECK(c->handles[j].v, "cluster %u: split run %u has no slot handles", c->idx, j);
		for (unsigned i = 0; i < n; i++) {
			bool has_h = split_handles(c, j)[i].v != 0;

			CHECK(has_h == (count_get(c, first + i) != 0),
			      "cluster %u: split slot %u count %u handle %llu", c->idx, first + i,
			      count_get(c, first + i), (unsigned long long)split_handles(c, j)[i].v);
		}
		runs += live;
		split_free += n - live;
	}
	CHECK(free_runs == c->free_runs, "cluster %u: %u free runs counted as %u", c->idx,
	      free_runs, c->free_runs);
	CHECK(used == c->nr_used, "cluster %u: %u used slots counted as %u", c->idx, used,
	      c->nr_used);
	CHECK(runs == c->nr_runs, "cluster %u: %u runs counted as %u", c->idx, runs, c->nr_runs);
	CHECK(split_free == c->split_free, "cluster %u: %u free split slots counted as %u", c->idx,
	      split_free, c->split_free);
	/* a put may have made it misplaced since the drain: then it is pending */
	CHECK(c->pending || !cluster_misplaced(c),
	      "cluster %u: on list %u/frag %d, counts want %u/frag %d, not pending", c->idx,
	      c->list, c->on_frag, cluster_list_want(c), c->split_free > 0);
	if (t) {
		if (c->list == CLUSTER_PARTIAL)
			t->on_partial[c->order]++;
		else if (c->list == CLUSTER_FREE)
			t->on_free++;
		t->on_frag += c->on_frag;
	}
	return 0;
}

/* Walk list l: links consistent, members say they are on it, length. */
static int cluster_list_check(const struct cluster_list *l, bool frag, unsigned id, unsigned order,
			      uint32_t members, uint32_t nr_clusters)
{
	const struct cluster *prev = NULL;
	uint32_t len = 0;

	for (struct cluster *c = l->head; c; c = cluster_link_of(c, frag)->next) {
		CHECK(++len <= nr_clusters, "list %u/%u/frag %d: cycle", id, order, frag);
		CHECK(cluster_link_of(c, frag)->prev == prev, "list %u/%u/frag %d: bad back link",
		      id, order, frag);
		if (frag)
			CHECK(c->on_frag, "cluster %u on frag list, not flagged", c->idx);
		else
			CHECK(c->list == id && (id != CLUSTER_PARTIAL || c->order == order),
			      "cluster %u (list %u order %u) on list %u/%u", c->idx, c->list,
			      c->order, id, order);
		prev = c;
	}
	CHECK(len == l->len, "list %u/%u/frag %d: %u members counted as %u", id, order, frag, len,
	      l->len);
	CHECK(len == members, "list %u/%u/frag %d: %u members, %u clusters say so", id, order, frag,
	      len, members);
	return 0;
}

static int slotmap_check_locked(struct slotmap *sm)
{
	uint32_t n = atomic_load_explicit(&sm->nr_clusters, memory_order_relaxed);
	struct check_totals t = {0};
	int ret;

	CHECK(n <= sm->max_clusters, "%u clusters beyond the %u allowed", n, sm->max_clusters);
	for (uint32_t i = 0; i < n; i++) {
		struct cluster *c = sm->dir[i / DIR_LEAF][i % DIR_LEAF];

		CHECK(c && c->idx == i, "cluster %u missing or misnumbered", i);
		pthread_mutex_lock(&c->lock);
		ret = cluster_check(c, &t);
		pthread_mutex_unlock(&c->lock);
		if (ret)
			return ret;
	}
	for (unsigned k = 0; k <= SLOT_MAX_ORDER; k++) {
		ret = cluster_list_check(&sm->partial[k], false, CLUSTER_PARTIAL, k,
					 t.on_partial[k], n);
		if (ret)
			return ret;
	}
	ret = cluster_list_check(&sm->free_list, false, CLUSTER_FREE, 0, t.on_free, n);
	if (!ret)
		ret = cluster_list_check(&sm->frag_list, true, 0, 0, t.on_frag, n);
	return ret;
}

int slotmap_check(struct slotmap *sm)
{
	int ret;

	pthread_mutex_lock(&sm->alloc_lock);
	slotmap_drain(sm);
	ret = slotmap_check_locked(sm);
	pthread_mutex_unlock(&sm->alloc_lock);
	return ret;
}

/* ---- fork hooks ---- */

void slotmap_prefork(struct slotmap *sm)
{
	uint32_t n;

	pthread_mutex_lock(&sm->alloc_lock);
	n = atomic_load_explicit(&sm->nr_clusters, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++)
		pthread_mutex_lock(&sm->dir[i / DIR_LEAF][i % DIR_LEAF]->lock);
}

void slotmap_postfork_parent(struct slotmap *sm)
{
	uint32_t n = atomic_load_explicit(&sm->nr_clusters, memory_order_relaxed);

	for (uint32_t i = n; i-- > 0;)
		pthread_mutex_unlock(&sm->dir[i / DIR_LEAF][i % DIR_LEAF]->lock);
	pthread_mutex_unlock(&sm->alloc_lock);
}

void slotmap_postfork_child(struct slotmap *sm)
{
	uint32_t n = atomic_load_explicit(&sm->nr_clusters, memory_order_relaxed);

	/* the child's only thread is not the owner the mutexes recorded */
	for (uint32_t i = 0; i < n; i++)
		pthread_mutex_init(&sm->dir[i / DIR_LEAF][i % DIR_LEAF]->lock, NULL);
	pthread_mutex_init(&sm->alloc_lock, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The ram store: compressed folios kept in memory, in the spirit of Linux's
 * zsmalloc.
 *
 * Size classes.  An object of len bytes goes to the smallest class that
 * holds it.  Up to 256 B the classes are 16 B apart (16, 32, ... 256); above,
 * every power of two is split into 16 equal steps (272, 288, ... 512, 544,
 * ... 1 KiB, 1088, ...), up to 128 KiB: 160 classes.  (Above 1 KiB each class
 * is 32 B short of these sizes, see RAMSTORE_SHAVE.)
 * An object just above a class boundary wastes at most one step, 1/17 of
 * its class (5.9%) and on average about half that; geometric spacing keeps
 * that bound at every size with few classes (a fixed 16-byte step would need
 * 8192 of them).  Objects above 128 KiB - 32 B get their own mapping,
 * rounded to pages: at most 4 KiB on 128 KiB, 3.1%.
 *
 * Blocks.  A class packs its objects into blocks ("zspages") of 1 to 64
 * pages from os_mem_map_aligned: the block header and a 4-byte back
 * reference per slot come first, then the slots.  A block holds at least 4
 * objects (above 64 KiB, the 3 or 2 that 64 pages hold), so that a put maps
 * memory only now and then, and its page count is the smallest whose
 * unusable tail is under 1/64 of the block, so the tail adds little to the
 * class waste.  Blocks are aligned to the power of two above their size, so
 * an object's block is found by masking its address.
 *
 * Handles.  A handle names an entry of the handle table, which points at
 * the object; compaction moves an object by rewriting its entry.  The
 * handle also carries the entry's generation (odd while the entry is live,
 * bumped at put and at free) and the object's class, so that a freed
 * handle is recognised (get: -ENOENT; free: counted, debug builds abort)
 * and get locks the right class before it reads the entry.
 *   handle = class << 56 | generation << 28 | index      (index 0 is never used)
 * (28 bits of generation: a stale handle could name a live object again
 * only after its entry has been reused 2^27 times.)
 * Metadata per object: 12 bytes of entry + 4 bytes of back reference.
 *
 * Fullness.  A class keeps its blocks on RAMSTORE_GROUPS lists by fullness
 * plus a full list.  put fills the fullest block first, so sparse blocks
 * drain; one empty block per class is kept as a spare against put/free
 * churn at a block boundary.
 *
 * Compaction.  Per class: while the free slots add up to a whole block or
 * more, take the sparsest block, move each of its objects into the fullest
 * blocks that have room, and release it.  Each pass frees one block, so
 * it ends.  compact() runs it on every class (and drops the spares); a free
 * runs it on its class when the class is under 75% full with at least
 * RAMSTORE_AUTO_FREEABLE blocks' worth of free slots, releasing at most
 * RAMSTORE_AUTO_BUDGET blocks per free (the moves per free are bounded, and
 * constant on average); put runs it on every class once before it fails
 * with -ENOSPC.
 *
 * Steady-state put, get and free do not allocate: blocks and the handle
 * table come from os_mem_map when they grow, the store itself too (the
 * store may serve a process whose malloc heap is managed memory).
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/errmsg.h"
#include "../os/os.h"

#define RAMSTORE_SMALL_STEP 16u /* class spacing up to RAMSTORE_SMALL_MAX */
#define RAMSTORE_SMALL_MAX 256u
#define RAMSTORE_STEPS_SHIFT 4u /* 16 classes per power of two above it */
/* Above 1 KiB (steps of 64 B or more) the classes are 32 B short of their
 * nominal size, so that a block of whole pages holding n objects whose
 * nominal size is a page multiple also has room for the header and back
 * references: without it, 4 KiB, 16 KiB, 64 KiB... objects left most of a
 * page unused per block. */
#define RAMSTORE_SHAVE_FROM 1024u
#define RAMSTORE_SHAVE 32u
#define RAMSTORE_CLASS_MAX ((128u << 10) - RAMSTORE_SHAVE)
#define RAMSTORE_NSMALL (RAMSTORE_SMALL_MAX / RAMSTORE_SMALL_STEP)
/* 256 B .. 128 KiB is 9 powers of two. */
#define RAMSTORE_NCLASSES (RAMSTORE_NSMALL + (9u << RAMSTORE_STEPS_SHIFT))
#define RAMSTORE_LARGE RAMSTORE_NCLASSES /* the class id of own-mapping objects */

#define RAMSTORE_LEN_BITS 24u
#define RAMSTORE_OBJ_MAX ((1u << RAMSTORE_LEN_BITS) - 1)

#define RAMSTORE_BLOCK_MAX_PAGES 64u
#define RAMSTORE_BLOCK_MIN_SLOTS 4u /* or what the largest block holds */
#define RAMSTORE_TAIL_DIV 64u	    /* acceptable block tail: 1/64 of the block */
#define RAMSTORE_GROUPS 8u	    /* fullness lists of partial blocks; then full */
#define RAMSTORE_FULL RAMSTORE_GROUPS
#define RAMSTORE_AUTO_FREEABLE 4u
#define RAMSTORE_AUTO_BUDGET 8u /* blocks one automatic pass may release */

#define RAMSTORE_SLOT_FREE 0x80000000u /* back reference of a free slot | next */
#define RAMSTORE_SLOT_END 0x7fffffffu  /* end of a block's free-slot list */

#define RAMSTORE_IDX_BITS 28u
#define RAMSTORE_GEN_BITS 28u
#define RAMSTORE_IDX_MASK ((1u << RAMSTORE_IDX_BITS) - 1)
#define RAMSTORE_GEN_MASK ((1u << RAMSTORE_GEN_BITS) - 1)
/*
 * The handle table grows by chunks of 1 Ki entries (12 KiB), reached
 * through leaves of 512 chunk pointers (4 KiB), reached through the 512
 * leaf pointers in the store: 2^28 entries in all.  Small chunks keep the
 * unused tail of the table small (at most 12 KiB plus the class caches);
 * the two levels keep the store's own mapping small (4 KiB of leaf
 * pointers instead of a flat array of 2^18 chunk pointers).
 */
#define RAMSTORE_CHUNK_SHIFT 10u
#define RAMSTORE_CHUNK (1u << RAMSTORE_CHUNK_SHIFT)
#define RAMSTORE_LEAF_SHIFT 9u
#define RAMSTORE_LEAF (1u << RAMSTORE_LEAF_SHIFT)
#define RAMSTORE_NLEAVES (1u << (RAMSTORE_IDX_BITS - RAMSTORE_CHUNK_SHIFT - RAMSTORE_LEAF_SHIFT))
#define RAMSTORE_TABLE_MAX (RAMSTORE_NLEAVES * RAMSTORE_LEAF * RAMSTORE_CHUNK)
_Static_assert((uint64_t)RAMSTORE_NLEAVES * RAMSTORE_LEAF * RAMSTORE_CHUNK == 1ull << RAMSTORE_IDX_BITS,
	       "the table's levels span the handle's index bits");
#define RAMSTORE_ENTRY_BATCH 32u /* entries a class takes from the table at once */

/*
 * One entry of the handle table (12 bytes: one per stored object, so it is
 * packed).  gen is odd while the entry names a live object; it is read
 * without locks (atomically) to reject a stale handle, and so is len (the
 * object's class is a function of it, ramstore_len_class); everything else
 * belongs to the lock of the class that owns the entry: the object's class
 * while live, the class whose cache holds it while cached, the table lock
 * while on the table's free list.
 * The object's address is 16-byte aligned (slots, mappings) and below
 * 2^48 (user space on x86-64 and arm64), so its 44 significant bits fit in
 * the spare bits: a = address >> 4 is a[43:40] in genx, a[39:32] in lenx,
 * a[31:0] in objx (ramstore_entry_obj).
 */
struct ramstore_entry {
	uint32_t genx; /* gen << 4 | a[43:40] */
	uint32_t lenx; /* len << 8 | a[39:32], valid while live */
	union {
		uint32_t objx; /* live: a[31:0] */
		uint32_t next; /* free: next free entry index, 0 = end */
	};
};

#define RAMSTORE_GENX_SHIFT 4u
#define RAMSTORE_LENX_SHIFT 8u
#define RAMSTORE_ADDR_BITS 48u

/* A block of one class: header, back references, then nslots slots. */
struct ramstore_block {
	struct ramstore_block *prev, *next; /* on the class list of its group */
	uint32_t inuse;			    /* slots holding an object */
	uint32_t free_head;		    /* first free slot or RAMSTORE_SLOT_END */
	uint32_t group;			    /* list it is on, see ramstore_group */
	/* Per slot: the entry index of its object, or RAMSTORE_SLOT_FREE | the
	 * next free slot.  Compaction uses it to find the entries to rewrite. */
	uint32_t backref[];
};

/*
 * A size class.  Its lock (a reader-writer lock, writers preferred so that
 * a stream of gets cannot starve puts) protects everything below it: get
 * holds it for reading while the visitor runs, so no compaction moves the
 * object under the visitor; put, free and compaction hold it for writing.
 * The counters objects and stored are also read without the lock by usage(),
 * hence written with atomic stores.
 *
 * Lock order: class lock -> table.lock.  No thread ever holds two class
 * locks, except prefork/check, which take all of them in index order (then
 * the table lock).  pool_bytes is an atomic (put reserves with a
 * compare-and-swap against the limit) but changes only under the lock of
 * the class whose blocks or mappings it counts, so that check finds it equal
 * to what the lists hold; the outcome counters are atomics under no lock.
 */
struct ramstore_class {
	pthread_rwlock_t lock;
	struct ramstore_block *list[RAMSTORE_GROUPS + 1];
	struct ramstore_block *spare; /* one empty block kept back */
	uint64_t blocks;	      /* blocks on the lists (not the spare) */
	uint64_t objects;
	uint64_t stored;	/* sum of the objects' lengths */
	uint64_t large_bytes;	/* RAMSTORE_LARGE only: bytes mapped, */
	uint64_t large_pending; /* and reserved by puts not done yet */
	uint32_t entry_free;	/* cache of free entries (list head) */
	uint32_t nentry_free;
	/* Geometry, set at open. */
	uint32_t size;	      /* slot size */
	uint32_t nslots;      /* slots per block */
	uint32_t data_off;    /* offset of slot 0 in the block */
	uint32_t block_bytes; /* mapping size of a block */
	uintptr_t block_mask; /* object address -> block address */
} __attribute__((aligned(64)));

struct ramstore {
	size_t map_bytes; /* of this struct's own mapping */
	size_t limit;	  /* bound of pool_bytes, 0 = none */
	/* Atomics. */
	uint64_t pool_bytes;
	uint64_t compactions, moved;
	uint64_t fail_nospc, fail_nomem, fail_2big, bad_get, bad_free;

	/*
	 * The handle table: chunks of entries, reached through leaves of
	 * chunk pointers (see RAMSTORE_CHUNK_SHIFT), mapped as the table
	 * grows and never moved, so get reads an entry without the table
	 * lock (cap, leaf[] and the leaves' pointers are published with
	 * release stores).
	 */
	struct {
		pthread_mutex_t lock;
		uint32_t free_head; /* entries given back by the classes */
		uint32_t nfree;
		uint32_t next; /* first entry never handed out */
		uint32_t cap;  /* entries backed by chunks (atomic) */
		uint32_t in_put; /* atomic: entries a put holds while it compacts
				    (on no list, not live: check counts them) */
		struct ramstore_entry **leaf[RAMSTORE_NLEAVES];
	} table;

	struct ramstore_class cls[RAMSTORE_NCLASSES + 1]; /* + RAMSTORE_LARGE */
};

static inline struct ramstore *ramstore_of(struct store *s)
{
	return (struct ramstore *)s;
}

static inline void ramstore_count(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* A counter written under its class lock and read by usage() without it. */
static inline void ramstore_stat_add(uint64_t *v, int64_t d)
{
	__atomic_store_n(v, *v + (uint64_t)d, __ATOMIC_RELAXED);
}

static inline uint64_t ramstore_load(const uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* ---- size classes ---- */

static uint32_t ramstore_class_nominal(unsigned c)
{
	unsigned k, i;

	if (c < RAMSTORE_NSMALL)
		return (c + 1) * RAMSTORE_SMALL_STEP;
	k = 8 + ((c - RAMSTORE_NSMALL) >> RAMSTORE_STEPS_SHIFT);
	i = ((c - RAMSTORE_NSMALL) & ((1u << RAMSTORE_STEPS_SHIFT) - 1)) + 1;
	return (1u << k) + (i << (k - RAMSTORE_STEPS_SHIFT));
}

static uint32_t ramstore_class_size(unsigned c)
{
	uint32_t nominal = ramstore_class_nominal(c);

	return nominal > RAMSTORE_SHAVE_FROM ? nominal - RAMSTORE_SHAVE : nominal;
}

/* The class of nominal size n or the next above. */
static unsigned ramstore_class_of_nominal(size_t n)
{
	unsigned k;

	if (n <= RAMSTORE_SMALL_MAX)
		return n ? (unsigned)(n - 1) / RAMSTORE_SMALL_STEP : 0;
	/* n in (2^k, 2^(k+1)]: the step is 2^k / 16 */
	k = 63 - (unsigned)__builtin_clzll(n - 1);
	return RAMSTORE_NSMALL + ((k - 8) << RAMSTORE_STEPS_SHIFT) +
	       (unsigned)((n - 1 - ((size_t)1 << k)) >> (k - RAMSTORE_STEPS_SHIFT));
}

/* The class of an object of len <= RAMSTORE_CLASS_MAX bytes. */
static unsigned ramstore_class_of(size_t len)
{
	return ramstore_class_of_nominal(len > RAMSTORE_SHAVE_FROM ? len + RAMSTORE_SHAVE : len);
}

static uint32_t ramstore_align16(uint32_t v)
{
	return (v + 15) & ~15u;
}

/* Slots of size bytes that fit in a block of bytes after the header. */
static uint32_t ramstore_block_slots(uint32_t bytes, uint32_t size, uint32_t *data_off)
{
	uint32_t hdr = (uint32_t)offsetof(struct ramstore_block, backref);
	uint32_t n = (bytes - hdr) / (size + 4);

	while (n && ramstore_align16(hdr + 4 * n) + n * size > bytes)
		n--;
	*data_off = ramstore_align16(hdr + 4 * n);
	return n;
}

static void ramstore_class_init(struct ramstore_class *cls, unsigned c)
{
	uint32_t size = ramstore_class_size(c);
	uint32_t best = 0, best_tail = 0, off, want;

	/* At least a few objects per block, so that a put maps a block only
	 * now and then; then the fewest pages whose tail is under 1/64 of the
	 * block; failing that, the smallest tail fraction. */
	want = ramstore_block_slots(RAMSTORE_BLOCK_MAX_PAGES * OS_PAGE_SIZE, size, &off);
	if (want > RAMSTORE_BLOCK_MIN_SLOTS)
		want = RAMSTORE_BLOCK_MIN_SLOTS;
	for (uint32_t p = 1; p <= RAMSTORE_BLOCK_MAX_PAGES; p++) {
		uint32_t bytes = p * OS_PAGE_SIZE;
		uint32_t n = ramstore_block_slots(bytes, size, &off);
		uint32_t tail = bytes - off - n * size;

		if (n < want)
			continue;
		if (!best || (uint64_t)tail * best < (uint64_t)best_tail * bytes) {
			best = bytes;
			best_tail = tail;
		}
		if (tail * RAMSTORE_TAIL_DIV <= bytes)
			break;
	}
	cls->size = size;
	cls->block_bytes = best;
	cls->nslots = ramstore_block_slots(best, size, &cls->data_off);
	/* os_mem_map_aligned wants a power of two of at least a page */
	cls->block_mask = ~(uintptr_t)((1ul << (64 - __builtin_clzl(best - 1))) - 1);
}

static size_t ramstore_block_align(const struct ramstore_class *cls)
{
	return (size_t)~cls->block_mask + 1;
}

/* ---- handles and the table ---- */

static inline store_handle_t ramstore_handle(uint32_t idx, uint32_t gen, unsigned c)
{
	return (store_handle_t){(uint64_t)c << 56 |
				(uint64_t)(gen & RAMSTORE_GEN_MASK) << RAMSTORE_IDX_BITS | idx};
}

static inline uint32_t ramstore_handle_idx(store_handle_t h)
{
	return (uint32_t)(h.v & RAMSTORE_IDX_MASK);
}

static inline uint32_t ramstore_handle_gen(store_handle_t h)
{
	return (uint32_t)(h.v >> RAMSTORE_IDX_BITS) & RAMSTORE_GEN_MASK;
}

static inline unsigned ramstore_handle_class(store_handle_t h)
{
	return (unsigned)(h.v >> 56);
}

/* The entry of idx, which must be below table.cap. */
static inline struct ramstore_entry *ramstore_entry(struct ramstore *s, uint32_t idx)
{
	struct ramstore_entry **leaf =
		__atomic_load_n(&s->table.leaf[idx >> (RAMSTORE_CHUNK_SHIFT + RAMSTORE_LEAF_SHIFT)],
				__ATOMIC_ACQUIRE);
	struct ramstore_entry *chunk = __atomic_load_n(
		&leaf[(idx >> RAMSTORE_CHUNK_SHIFT) & (RAMSTORE_LEAF - 1)], __ATOMIC_ACQUIRE);

	return &chunk[idx & (RAMSTORE_CHUNK - 1)];
}

static inline uint32_t ramstore_entry_gen(const struct ramstore_entry *e)
{
	return __atomic_load_n(&e->genx, __ATOMIC_ACQUIRE) >> RAMSTORE_GENX_SHIFT;
}

static inline size_t ramstore_entry_len(const struct ramstore_entry *e)
{
	return __atomic_load_n(&e->lenx, __ATOMIC_RELAXED) >> RAMSTORE_LENX_SHIFT;
}

/* The class an object of len bytes lives in (put chooses it so). */
static unsigned ramstore_len_class(size_t len)
{
	return len > RAMSTORE_CLASS_MAX ? RAMSTORE_LARGE : ramstore_class_of(len);
}

static inline unsigned ramstore_entry_class(const struct ramstore_entry *e)
{
	return ramstore_len_class(ramstore_entry_len(e));
}

static inline void *ramstore_entry_obj(const struct ramstore_entry *e)
{
	uint64_t a = (uint64_t)(__atomic_load_n(&e->genx, __ATOMIC_RELAXED) & 0xfu) << 40 |
		     (uint64_t)(__atomic_load_n(&e->lenx, __ATOMIC_RELAXED) & 0xffu) << 32 | e->objx;

	return (void *)(uintptr_t)(a << 4);
}

/* Point a live or about-to-be-live entry at obj, keeping its gen and len.
 * Lock of the owning class held (lockless readers look only at gen, len). */
static void ramstore_entry_set_obj(struct ramstore_entry *e, void *obj)
{
	uint64_t a = (uintptr_t)obj >> 4;

	core_assert(!((uintptr_t)obj & 15) && (uintptr_t)obj >> RAMSTORE_ADDR_BITS == 0);
	e->objx = (uint32_t)a;
	__atomic_store_n(&e->lenx, (e->lenx & ~0xffu) | (uint32_t)(a >> 32 & 0xff),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&e->genx, (e->genx & ~0xfu) | (uint32_t)(a >> 40 & 0xf),
			 __ATOMIC_RELAXED);
}

/*
 * The live entry a handle names, or NULL.  The caller holds the lock of the
 * handle's class, so a live entry of that class cannot change under it;
 * an entry owned elsewhere is only looked at through its atomic fields.
 */
static struct ramstore_entry *ramstore_lookup(struct ramstore *s, store_handle_t h)
{
	uint32_t idx = ramstore_handle_idx(h);
	struct ramstore_entry *e;

	if (!idx || idx >= __atomic_load_n(&s->table.cap, __ATOMIC_ACQUIRE))
		return NULL;
	e = ramstore_entry(s, idx);
	if ((ramstore_entry_gen(e) & RAMSTORE_GEN_MASK) != ramstore_handle_gen(h))
		return NULL;
	/* gen odd: the handle's own gen is odd for every handle put made */
	if (!(ramstore_handle_gen(h) & 1) ||
	    ramstore_entry_class(e) != ramstore_handle_class(h))
		return NULL;
	return e;
}

/* Map one more chunk of the table.  Table lock held. */
static int ramstore_table_grow(struct ramstore *s)
{
	uint32_t cap = s->table.cap, l = cap >> (RAMSTORE_CHUNK_SHIFT + RAMSTORE_LEAF_SHIFT);
	struct ramstore_entry *chunk;

	if (cap >= RAMSTORE_TABLE_MAX)
		return -ENOMEM; /* 2^28 objects: the index bits are spent */
	if (!s->table.leaf[l]) {
		struct ramstore_entry **leaf = os_mem_map(RAMSTORE_LEAF * sizeof(*leaf));

		if (!leaf)
			return -ENOMEM;
		__atomic_store_n(&s->table.leaf[l], leaf, __ATOMIC_RELEASE);
	}
	chunk = os_mem_map(RAMSTORE_CHUNK * sizeof(*chunk));
	if (!chunk)
		return -ENOMEM;
	__atomic_store_n(&s->table.leaf[l][(cap >> RAMSTORE_CHUNK_SHIFT) & (RAMSTORE_LEAF - 1)],
			 chunk, __ATOMIC_RELEASE);
	__atomic_store_n(&s->table.cap, cap + RAMSTORE_CHUNK, __ATOMIC_RELEASE);
	return 0;
}

/* Fill an empty class cache of entries from the table.  Class lock held. */
static int ramstore_entries_refill(struct ramstore *s, struct ramstore_class *cls)
{
	uint32_t n = 0;

	pthread_mutex_lock(&s->table.lock);
	while (n < RAMSTORE_ENTRY_BATCH) {
		uint32_t idx;
		struct ramstore_entry *e;

		if (s->table.free_head) {
			idx = s->table.free_head;
			e = ramstore_entry(s, idx);
			s->table.free_head = e->next;
			s->table.nfree--;
		} else {
			if (s->table.next == s->table.cap && ramstore_table_grow(s))
				break;
			idx = s->table.next++;
			e = ramstore_entry(s, idx);
		}
		e->next = cls->entry_free;
		cls->entry_free = idx;
		n++;
	}
	pthread_mutex_unlock(&s->table.lock);
	cls->nentry_free += n;
	return n ? 0 : -ENOMEM;
}

/* Take a free entry for the class.  Class lock held. */
static int ramstore_entry_alloc(struct ramstore *s, struct ramstore_class *cls, uint32_t *idx)
{
	struct ramstore_entry *e;

	if (!cls->nentry_free) {
		int ret = ramstore_entries_refill(s, cls);

		if (ret)
			return ret;
	}
	*idx = cls->entry_free;
	e = ramstore_entry(s, *idx);
	core_assert_debug(!(ramstore_entry_gen(e) & 1));
	cls->entry_free = e->next;
	cls->nentry_free--;
	return 0;
}

/*
 * Give a free entry back to the class cache; past two batches, one batch
 * goes back to the table, so a class that shrank does not hoard entries.
 * Class lock held.
 */
static void ramstore_entry_release(struct ramstore *s, struct ramstore_class *cls, uint32_t idx)
{
	struct ramstore_entry *e = ramstore_entry(s, idx);

	e->next = cls->entry_free;
	cls->entry_free = idx;
	if (++cls->nentry_free <= 2 * RAMSTORE_ENTRY_BATCH)
		return;
	pthread_mutex_lock(&s->table.lock);
	for (uint32_t i = 0; i < RAMSTORE_ENTRY_BATCH; i++) {
		idx = cls->entry_free;
		e = ramstore_entry(s, idx);
		cls->entry_free = e->next;
		e->next = s->table.free_head;
		s->table.free_head = idx;
	}
	s->table.nfree += RAMSTORE_ENTRY_BATCH;
	pthread_mutex_unlock(&s->table.lock);
	cls->nentry_free -= RAMSTORE_ENTRY_BATCH;
}

/* Make a free entry live for an object; readers see it from here on. */
static store_handle_t ramstore_entry_publish(struct ramstore_entry *e, uint32_t idx, void *obj,
					     size_t len, unsigned c)
{
	uint32_t gen = (ramstore_entry_gen(e) + 1) & RAMSTORE_GEN_MASK;

	core_assert_debug(ramstore_len_class(len) == c);
	__atomic_store_n(&e->lenx, (uint32_t)len << RAMSTORE_LENX_SHIFT, __ATOMIC_RELAXED);
	ramstore_entry_set_obj(e, obj);
	__atomic_store_n(&e->genx, gen << RAMSTORE_GENX_SHIFT | (e->genx & 0xfu), __ATOMIC_RELEASE);
	return ramstore_handle(idx, gen, c);
}

static void ramstore_entry_kill(struct ramstore_entry *e)
{
	__atomic_store_n(&e->genx, e->genx + (1u << RAMSTORE_GENX_SHIFT), __ATOMIC_RELEASE);
}

/* ---- the pool budget ---- */

static int ramstore_reserve(struct ramstore *s, size_t bytes)
{
	uint64_t cur = __atomic_load_n(&s->pool_bytes, __ATOMIC_RELAXED);

	do {
		if (s->limit && cur + bytes > s->limit)
			return -ENOSPC;
	} while (!__atomic_compare_exchange_n(&s->pool_bytes, &cur, cur + bytes, true,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return 0;
}

static void ramstore_unreserve(struct ramstore *s, size_t bytes)
{
	__atomic_fetch_sub(&s->pool_bytes, bytes, __ATOMIC_RELAXED);
}

/* ---- blocks and their lists ---- */

static inline unsigned ramstore_group(const struct ramstore_class *cls, uint32_t inuse)
{
	return inuse == cls->nslots ? RAMSTORE_FULL : inuse * RAMSTORE_GROUPS / cls->nslots;
}

static void ramstore_list_add(struct ramstore_class *cls, struct ramstore_block *b)
{
	unsigned g = ramstore_group(cls, b->inuse);

	b->group = g;
	b->prev = NULL;
	b->next = cls->list[g];
	if (b->next)
		b->next->prev = b;
	cls->list[g] = b;
}

static void ramstore_list_del(struct ramstore_class *cls, struct ramstore_block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		cls->list[b->group] = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->prev = b->next = NULL;
}

static void ramstore_regroup(struct ramstore_class *cls, struct ramstore_block *b)
{
	if (ramstore_group(cls, b->inuse) == b->group)
		return;
	ramstore_list_del(cls, b);
	ramstore_list_add(cls, b);
}

static inline char *ramstore_slot_addr(const struct ramstore_class *cls, struct ramstore_block *b,
				       uint32_t slot)
{
	return (char *)b + cls->data_off + (size_t)slot * cls->size;
}

/* Take a free slot of b for entry idx.  @return the slot's address. */
static char *ramstore_slot_take(struct ramstore_class *cls, struct ramstore_block *b, uint32_t idx)
{
	uint32_t slot = b->free_head;

	core_assert_debug(slot < cls->nslots && (b->backref[slot] & RAMSTORE_SLOT_FREE));
	b->free_head = b->backref[slot] & ~RAMSTORE_SLOT_FREE;
	b->backref[slot] = idx;
	b->inuse++;
	ramstore_regroup(cls, b);
	return ramstore_slot_addr(cls, b, slot);
}

static void ramstore_block_init(struct ramstore_class *cls, struct ramstore_block *b)
{
	b->inuse = 0;
	b->free_head = 0;
	for (uint32_t i = 0; i < cls->nslots; i++)
		b->backref[i] =
			RAMSTORE_SLOT_FREE | (i + 1 < cls->nslots ? i + 1 : RAMSTORE_SLOT_END);
}

/* The fullest block with a free slot, or NULL. */
static struct ramstore_block *ramstore_block_fullest(struct ramstore_class *cls)
{
	for (unsigned g = RAMSTORE_GROUPS; g-- > 0;)
		if (cls->list[g])
			return cls->list[g];
	return NULL;
}

static struct ramstore_block *ramstore_block_sparsest(struct ramstore_class *cls)
{
	for (unsigned g = 0; g < RAMSTORE_GROUPS; g++)
		if (cls->list[g])
			return cls->list[g];
	return NULL;
}

/*
 * Take a block out of the pool: it leaves pool_bytes now, under the class
 * lock, so that pool_bytes always matches what the lists hold; it is
 * unmapped by ramstore_release once the lock is dropped (a concurrent put
 * may meanwhile map up to one block more than the limit).  Class lock held.
 */
static void ramstore_release_later(struct ramstore *s, const struct ramstore_class *cls,
				   struct ramstore_block *b, struct ramstore_block **release,
				   size_t *bytes)
{
	ramstore_unreserve(s, cls->block_bytes);
	b->next = *release;
	*release = b;
	*bytes += cls->block_bytes;
}

static void ramstore_release(const struct ramstore_class *cls, struct ramstore_block *release)
{
	while (release) {
		struct ramstore_block *next = release->next;

		os_mem_unmap(release, cls->block_bytes);
		release = next;
	}
}

/*
 * Compact one class: empty the sparsest blocks into the fullest while the
 * free slots add up to at least a block.  Class lock held for writing.
 * @budget  blocks to release at most, 0 = no bound
 * @return bytes of the blocks put on *release.
 */
static size_t ramstore_class_compact(struct ramstore *s, struct ramstore_class *cls,
				     unsigned budget, struct ramstore_block **release)
{
	size_t bytes = 0;
	uint64_t moved = 0;

	for (unsigned n = 0; cls->blocks * cls->nslots - cls->objects >= cls->nslots; n++) {
		struct ramstore_block *src = ramstore_block_sparsest(cls);

		core_assert_debug(src && src->inuse);
		if (!src)
			break;
		if (budget && n == budget)
			break;
		/* Off the lists, so that it is never picked as a destination:
		 * the other blocks have src->inuse free slots or more. */
		ramstore_list_del(cls, src);
		cls->blocks--;
		for (uint32_t slot = 0; src->inuse; slot++) {
			uint32_t idx = src->backref[slot];
			struct ramstore_block *dst;
			struct ramstore_entry *e;
			char *to;

			if (idx & RAMSTORE_SLOT_FREE)
				continue;
			dst = ramstore_block_fullest(cls);
			core_assert_debug(dst);
			e = ramstore_entry(s, idx);
			to = ramstore_slot_take(cls, dst, idx);
			memcpy(to, ramstore_entry_obj(e), ramstore_entry_len(e));
			ramstore_entry_set_obj(e, to);
			src->inuse--;
			moved++;
		}
		ramstore_release_later(s, cls, src, release, &bytes);
	}
	if (moved)
		ramstore_count(&s->moved, moved);
	return bytes;
}

/* Whether a free left the class fragmented enough to compact it now. */
static bool ramstore_class_sparse(const struct ramstore_class *cls)
{
	uint64_t cap = cls->blocks * cls->nslots;

	return cap - cls->objects >= RAMSTORE_AUTO_FREEABLE * (uint64_t)cls->nslots &&
	       cls->objects * 4 < cap * 3;
}

/* Compact every class and drop the spares.  @return bytes given back. */
static size_t ramstore_compact_all(struct ramstore *s)
{
	size_t total = 0;

	for (unsigned c = 0; c < RAMSTORE_NCLASSES; c++) {
		struct ramstore_class *cls = &s->cls[c];
		struct ramstore_block *release = NULL;
		size_t bytes = 0;

		pthread_rwlock_wrlock(&cls->lock);
		bytes = ramstore_class_compact(s, cls, 0, &release);
		if (cls->spare) {
			ramstore_release_later(s, cls, cls->spare, &release, &bytes);
			cls->spare = NULL;
		}
		pthread_rwlock_unlock(&cls->lock);
		ramstore_release(cls, release);
		total += bytes;
	}
	ramstore_count(&s->compactions, 1);
	return total;
}

/* ---- operations ---- */

static int ramstore_check(struct store *st);

/* The expensive assertion tier (USWAP_DEBUG >= 2): the whole checker after
 * every put, free and compact.  No lock held. */
static void ramstore_check_expensive(struct ramstore *s)
{
#if CORE_DEBUG >= 2
	if (ramstore_check((struct store *)s)) {
		fprintf(stderr, "uswap: assertion failed: %s\n", errmsg_get());
		abort();
	}
#else
	(void)s;
#endif
}

static size_t ramstore_large_bytes(size_t len)
{
	return (len + OS_PAGE_SIZE - 1) & ~(size_t)(OS_PAGE_SIZE - 1);
}

/* Reserve a large object's bytes; pending keeps pool_bytes explained. */
static int ramstore_large_reserve(struct ramstore *s, size_t bytes)
{
	struct ramstore_class *cls = &s->cls[RAMSTORE_LARGE];
	int ret;

	pthread_rwlock_wrlock(&cls->lock);
	ret = ramstore_reserve(s, bytes);
	if (!ret)
		cls->large_pending += bytes;
	pthread_rwlock_unlock(&cls->lock);
	return ret;
}

static int ramstore_put_large(struct ramstore *s, const void *obj, size_t len, store_handle_t *h)
{
	struct ramstore_class *cls = &s->cls[RAMSTORE_LARGE];
	size_t bytes = ramstore_large_bytes(len);
	uint32_t idx;
	void *p;
	int ret;

	ret = ramstore_large_reserve(s, bytes);
	if (ret) {
		ramstore_compact_all(s);
		ret = ramstore_large_reserve(s, bytes);
	}
	if (ret) {
		ramstore_count(&s->fail_nospc, 1);
		return ret;
	}
	/* Map and fill outside the lock: nobody can see the object yet. */
	p = os_mem_map(bytes);
	if (p)
		memcpy(p, obj, len);

	pthread_rwlock_wrlock(&cls->lock);
	cls->large_pending -= bytes;
	if (!p) {
		ret = -ENOMEM;
		goto err_unreserve;
	}
	ret = ramstore_entry_alloc(s, cls, &idx);
	if (ret)
		goto err_unmap;
	*h = ramstore_entry_publish(ramstore_entry(s, idx), idx, p, len, RAMSTORE_LARGE);
	ramstore_stat_add(&cls->objects, 1);
	ramstore_stat_add(&cls->stored, (int64_t)len);
	cls->large_bytes += bytes;
	pthread_rwlock_unlock(&cls->lock);
	ramstore_check_expensive(s);
	return 0;

err_unmap:
	os_mem_unmap(p, bytes);
err_unreserve:
	ramstore_unreserve(s, bytes);
	pthread_rwlock_unlock(&cls->lock);
	ramstore_count(&s->fail_nomem, 1);
	return ret;
}

/*
 * A block with a free slot for the class: the fullest partial one, else the
 * spare, else a new one within the limit.  Class lock held.
 * @return 0 and *out; -ENOSPC; -ENOMEM
 */
static int ramstore_block_for_put(struct ramstore *s, struct ramstore_class *cls,
				  struct ramstore_block **out)
{
	struct ramstore_block *b = ramstore_block_fullest(cls);
	int ret;

	if (b)
		goto found;
	b = cls->spare;
	cls->spare = NULL;
	if (!b) {
		ret = ramstore_reserve(s, cls->block_bytes);
		if (ret)
			return ret;
		b = os_mem_map_aligned(cls->block_bytes, ramstore_block_align(cls));
		if (!b) {
			ramstore_unreserve(s, cls->block_bytes);
			return -ENOMEM;
		}
		ramstore_block_init(cls, b);
	}
	ramstore_list_add(cls, b);
	cls->blocks++;
found:
	*out = b;
	return 0;
}

static int ramstore_put(struct store *st, const void *obj, size_t len, store_handle_t *h)
{
	struct ramstore *s = ramstore_of(st);
	struct ramstore_class *cls;
	struct ramstore_block *b = NULL;
	bool compacted = false;
	unsigned c;
	uint32_t idx;
	char *to;
	int ret;

	if (len > RAMSTORE_OBJ_MAX) {
		ramstore_count(&s->fail_2big, 1);
		return errmsg_set(-E2BIG,
				  "store ram: an object of %zu bytes is over the %u allowed", len,
				  RAMSTORE_OBJ_MAX);
	}
	if (len > RAMSTORE_CLASS_MAX)
		return ramstore_put_large(s, obj, len, h);

	c = ramstore_class_of(len);
	cls = &s->cls[c];
	pthread_rwlock_wrlock(&cls->lock);
	ret = ramstore_entry_alloc(s, cls, &idx);
	if (ret)
		goto err_unlock;
retry:
	ret = ramstore_block_for_put(s, cls, &b);
	if (ret == -ENOSPC && !compacted) {
		/* Compaction takes each class lock in turn: drop ours.  The
		 * entry stays ours meanwhile (off every list, gen even). */
		__atomic_fetch_add(&s->table.in_put, 1, __ATOMIC_RELAXED);
		pthread_rwlock_unlock(&cls->lock);
		ramstore_compact_all(s);
		compacted = true;
		pthread_rwlock_wrlock(&cls->lock);
		__atomic_fetch_sub(&s->table.in_put, 1, __ATOMIC_RELAXED);
		goto retry;
	}
	if (ret)
		goto err_entry;
	to = ramstore_slot_take(cls, b, idx);
	if (len) /* obj may be NULL then */
		memcpy(to, obj, len);
	*h = ramstore_entry_publish(ramstore_entry(s, idx), idx, to, len, c);
	ramstore_stat_add(&cls->objects, 1);
	ramstore_stat_add(&cls->stored, (int64_t)len);
	pthread_rwlock_unlock(&cls->lock);
	ramstore_check_expensive(s);
	return 0;

err_entry:
	ramstore_entry_release(s, cls, idx);
err_unlock:
	pthread_rwlock_unlock(&cls->lock);
	ramstore_count(ret == -ENOSPC ? &s->fail_nospc : &s->fail_nomem, 1);
	return ret;
}

static int ramstore_get(struct store *st, store_handle_t h, store_visit_fn fn, void *arg)
{
	struct ramstore *s = ramstore_of(st);
	unsigned c = ramstore_handle_class(h);
	struct ramstore_class *cls;
	struct ramstore_entry *e;
	int ret;

	if (c > RAMSTORE_LARGE)
		goto bad;
	cls = &s->cls[c];
	pthread_rwlock_rdlock(&cls->lock);
	e = ramstore_lookup(s, h);
	if (!e) {
		pthread_rwlock_unlock(&cls->lock);
		goto bad;
	}
	ret = fn(ramstore_entry_obj(e), ramstore_entry_len(e), arg);
	pthread_rwlock_unlock(&cls->lock);
	return ret;
bad:
	ramstore_count(&s->bad_get, 1);
	return -ENOENT;
}

static void ramstore_bad_free(struct ramstore *s, store_handle_t h)
{
	ramstore_count(&s->bad_free, 1);
	if (CORE_DEBUG >= 1) {
		fprintf(stderr, "uswap: store ram: free of a freed or invalid handle %#llx\n",
			(unsigned long long)h.v);
		abort();
	}
}

static void ramstore_free_large(struct ramstore *s, store_handle_t h)
{
	struct ramstore_class *cls = &s->cls[RAMSTORE_LARGE];
	struct ramstore_entry *e;
	size_t len, bytes;
	void *p;

	pthread_rwlock_wrlock(&cls->lock);
	e = ramstore_lookup(s, h);
	if (!e) {
		pthread_rwlock_unlock(&cls->lock);
		ramstore_bad_free(s, h);
		return;
	}
	p = ramstore_entry_obj(e);
	len = ramstore_entry_len(e);
	bytes = ramstore_large_bytes(len);
	ramstore_entry_kill(e);
	ramstore_entry_release(s, cls, ramstore_handle_idx(h));
	ramstore_stat_add(&cls->objects, -1);
	ramstore_stat_add(&cls->stored, -(int64_t)len);
	cls->large_bytes -= bytes;
	/* As for blocks: out of pool_bytes under the lock, unmapped after. */
	ramstore_unreserve(s, bytes);
	pthread_rwlock_unlock(&cls->lock);
	os_mem_unmap(p, bytes);
	ramstore_check_expensive(s);
}

static void ramstore_free(struct store *st, store_handle_t h)
{
	struct ramstore *s = ramstore_of(st);
	unsigned c = ramstore_handle_class(h);
	struct ramstore_block *release = NULL, *b;
	struct ramstore_class *cls;
	struct ramstore_entry *e;
	size_t len, bytes = 0;
	uint32_t slot;
	char *obj;

	if (c >= RAMSTORE_LARGE) {
		if (c == RAMSTORE_LARGE)
			ramstore_free_large(s, h);
		else
			ramstore_bad_free(s, h);
		return;
	}
	cls = &s->cls[c];
	pthread_rwlock_wrlock(&cls->lock);
	e = ramstore_lookup(s, h);
	if (!e) {
		pthread_rwlock_unlock(&cls->lock);
		ramstore_bad_free(s, h);
		return;
	}
	obj = ramstore_entry_obj(e);
	len = ramstore_entry_len(e);
	b = (struct ramstore_block *)((uintptr_t)obj & cls->block_mask);
	slot = (uint32_t)((size_t)(obj - ramstore_slot_addr(cls, b, 0)) / cls->size);
	core_assert_debug(b->backref[slot] == ramstore_handle_idx(h));
	b->backref[slot] = RAMSTORE_SLOT_FREE | b->free_head;
	b->free_head = slot;
	b->inuse--;
	ramstore_entry_kill(e);
	ramstore_entry_release(s, cls, ramstore_handle_idx(h));
	ramstore_stat_add(&cls->objects, -1);
	ramstore_stat_add(&cls->stored, -(int64_t)len);

	if (!b->inuse) {
		ramstore_list_del(cls, b);
		cls->blocks--;
		if (!cls->spare)
			cls->spare = b;
		else
			ramstore_release_later(s, cls, b, &release, &bytes);
	} else {
		ramstore_regroup(cls, b);
	}
	/* Bounded, so that one free never stalls the class for long; while
	 * the class stays sparse the next frees go on with it. */
	if (ramstore_class_sparse(cls)) {
		ramstore_class_compact(s, cls, RAMSTORE_AUTO_BUDGET, &release);
		ramstore_count(&s->compactions, 1);
	}
	pthread_rwlock_unlock(&cls->lock);
	ramstore_release(cls, release);
	ramstore_check_expensive(s);
}

/* The store's own mapping, the table's chunks and its leaves: the table is
 * mapped in order, so cap says how many of each. */
static uint64_t ramstore_meta_bytes(struct ramstore *s)
{
	uint64_t cap = __atomic_load_n(&s->table.cap, __ATOMIC_RELAXED);
	uint64_t per_leaf = (uint64_t)RAMSTORE_LEAF * RAMSTORE_CHUNK;

	return s->map_bytes + cap * sizeof(struct ramstore_entry) +
	       (cap + per_leaf - 1) / per_leaf * RAMSTORE_LEAF * sizeof(struct ramstore_entry *);
}

static void ramstore_usage(struct store *st, struct store_usage *u)
{
	struct ramstore *s = ramstore_of(st);

	memset(u, 0, sizeof(*u));
	for (unsigned c = 0; c <= RAMSTORE_LARGE; c++) {
		u->objects += ramstore_load(&s->cls[c].objects);
		u->stored_bytes += ramstore_load(&s->cls[c].stored);
	}
	u->pool_bytes = ramstore_load(&s->pool_bytes);
	u->compactions = ramstore_load(&s->compactions);
	u->moved = ramstore_load(&s->moved);
	u->meta_bytes = ramstore_meta_bytes(s);
	u->fail_nospc = ramstore_load(&s->fail_nospc);
	u->fail_nomem = ramstore_load(&s->fail_nomem);
	u->fail_2big = ramstore_load(&s->fail_2big);
	u->bad_get = ramstore_load(&s->bad_get);
	u->bad_free = ramstore_load(&s->bad_free);
}

static long ramstore_compact(struct store *st)
{
	long bytes = (long)ramstore_compact_all(ramstore_of(st));

	ramstore_check_expensive(ramstore_of(st));
	return bytes;
}

/* ---- open, close ---- */

static int ramstore_rwlock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	int ret;

	ret = pthread_rwlockattr_init(&attr);
	if (ret)
		return -ret;
	/* Writers first: a stream of gets must not starve puts and frees. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	ret = pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return -ret;
}

static int ramstore_open(const char *arg, size_t limit, struct store **out)
{
	size_t bytes = (sizeof(struct ramstore) + OS_PAGE_SIZE - 1) & ~(size_t)(OS_PAGE_SIZE - 1);
	struct ramstore *s;
	unsigned c;
	int ret;

	if (arg && *arg)
		return errmsg_set(-EINVAL, "store ram: unknown option \"%s\" (it takes none)", arg);
	s = os_mem_map(bytes); /* zero-filled */
	if (!s)
		return -ENOMEM;
	s->map_bytes = bytes;
	s->limit = limit;
	for (c = 0; c <= RAMSTORE_LARGE; c++) {
		ret = ramstore_rwlock_init(&s->cls[c].lock);
		if (ret)
			goto err_destroy_class_locks;
		if (c < RAMSTORE_LARGE)
			ramstore_class_init(&s->cls[c], c);
	}
	ret = -pthread_mutex_init(&s->table.lock, NULL);
	if (ret)
		goto err_destroy_class_locks;
	s->table.next = 1; /* index 0 is never a handle */
	ret = ramstore_table_grow(s);
	if (ret)
		goto err_destroy_table_lock;
	*out = (struct store *)s;
	return 0;

err_destroy_table_lock:
	pthread_mutex_destroy(&s->table.lock);
err_destroy_class_locks:
	while (c-- > 0)
		pthread_rwlock_destroy(&s->cls[c].lock);
	os_mem_unmap(s, bytes);
	return ret;
}

static void ramstore_close(struct store *st)
{
	struct ramstore *s = ramstore_of(st);

	if (!s)
		return;
	/* Own mappings of the large objects still stored. */
	for (uint32_t idx = 1; idx < s->table.next; idx++) {
		struct ramstore_entry *e = ramstore_entry(s, idx);

		if ((ramstore_entry_gen(e) & 1) && ramstore_entry_class(e) == RAMSTORE_LARGE)
			os_mem_unmap(ramstore_entry_obj(e), ramstore_large_bytes(ramstore_entry_len(e)));
	}
	for (unsigned c = 0; c <= RAMSTORE_LARGE; c++) {
		struct ramstore_class *cls = &s->cls[c];

		for (unsigned g = 0; g <= RAMSTORE_FULL; g++) {
			while (cls->list[g]) {
				struct ramstore_block *b = cls->list[g];

				cls->list[g] = b->next;
				os_mem_unmap(b, cls->block_bytes);
			}
		}
		if (cls->spare)
			os_mem_unmap(cls->spare, cls->block_bytes);
		pthread_rwlock_destroy(&cls->lock);
	}
	for (uint32_t i = 0; i < s->table.cap; i += RAMSTORE_CHUNK) {
		struct ramstore_entry *chunk = ramstore_entry(s, i);

		os_mem_unmap(chunk, RAMSTORE_CHUNK * sizeof(*chunk));
	}
	for (uint32_t l = 0; l < RAMSTORE_NLEAVES && s->table.leaf[l]; l++)
		os_mem_unmap(s->table.leaf[l], RAMSTORE_LEAF * sizeof(*s->table.leaf[l]));
	pthread_mutex_destroy(&s->table.lock);
	os_mem_unmap(s, s->map_bytes);
}

/* ---- fork hooks and the invariant checker ---- */

static void ramstore_lock_all(struct ramstore *s)
{
	for (unsigned c = 0; c <= RAMSTORE_LARGE; c++)
		pthread_rwlock_wrlock(&s->cls[c].lock);
	pthread_mutex_lock(&s->table.lock);
}

static void ramstore_unlock_all(struct ramstore *s)
{
	pthread_mutex_unlock(&s->table.lock);
	for (unsigned c = RAMSTORE_LARGE + 1; c-- > 0;)
		pthread_rwlock_unlock(&s->cls[c].lock);
}

static void ramstore_prefork(struct store *st)
{
	ramstore_lock_all(ramstore_of(st));
}

static void ramstore_postfork_parent(struct store *st)
{
	ramstore_unlock_all(ramstore_of(st));
}

/*
 * In the child the locks are made anew rather than unlocked: a thread of
 * the parent that was queued on one is recorded in the lock's state, and
 * glibc's unlock would hand the lock over to that thread, which does not
 * exist in the child (jemalloc re-initialises its mutexes for the same
 * reason).  The data they protect is consistent: prefork held them all.
 */
static void ramstore_postfork_child(struct store *st)
{
	struct ramstore *s = ramstore_of(st);

	pthread_mutex_init(&s->table.lock, NULL);
	for (unsigned c = 0; c <= RAMSTORE_LARGE; c++)
		ramstore_rwlock_init(&s->cls[c].lock);
}

/* Walk one block's slots and free list.  @return 0 or -EUCLEAN. */
static int ramstore_check_block(struct ramstore *s, unsigned c, struct ramstore_block *b,
				uint64_t *objects, uint64_t *stored)
{
	struct ramstore_class *cls = &s->cls[c];
	uint32_t used = 0, nfree = 0;

	if ((uintptr_t)b & ~cls->block_mask)
		return errmsg_set(-EUCLEAN, "store ram: class %u: block %p misaligned", c,
				  (void *)b);
	for (uint32_t slot = 0; slot < cls->nslots; slot++) {
		uint32_t idx = b->backref[slot];
		struct ramstore_entry *e;
		size_t len;

		if (idx & RAMSTORE_SLOT_FREE)
			continue;
		used++;
		if (!idx || idx >= s->table.next)
			return errmsg_set(-EUCLEAN, "store ram: class %u: slot %u names entry %u",
					  c, slot, idx);
		e = ramstore_entry(s, idx);
		len = ramstore_entry_len(e);
		if (!(ramstore_entry_gen(e) & 1) || ramstore_entry_class(e) != c ||
		    ramstore_entry_obj(e) != ramstore_slot_addr(cls, b, slot))
			return errmsg_set(-EUCLEAN,
					  "store ram: class %u: slot %u names entry %u (gen %u, "
					  "class %u, %zu bytes) that does not point back",
					  c, slot, idx, ramstore_entry_gen(e), ramstore_entry_class(e),
					  len);
		*objects += 1;
		*stored += len;
	}
	for (uint32_t slot = b->free_head; slot != RAMSTORE_SLOT_END;
	     slot = b->backref[slot] & ~RAMSTORE_SLOT_FREE) {
		if (slot >= cls->nslots || !(b->backref[slot] & RAMSTORE_SLOT_FREE) ||
		    nfree >= cls->nslots)
			return errmsg_set(-EUCLEAN,
					  "store ram: class %u: free-slot list broken at slot %u",
					  c, slot);
		nfree++;
	}
	if (used != b->inuse || used + nfree != cls->nslots)
		return errmsg_set(-EUCLEAN,
				  "store ram: class %u: block of inuse %u has %u used and %u "
				  "free slots of %u",
				  c, b->inuse, used, nfree, cls->nslots);
	return 0;
}

/* Walk a class's lists.  @return 0 or -EUCLEAN; *pool += its blocks' bytes. */
static int ramstore_check_class(struct ramstore *s, unsigned c, uint64_t *pool)
{
	struct ramstore_class *cls = &s->cls[c];
	uint64_t blocks = 0, objects = 0, stored = 0;
	int ret;

	for (unsigned g = 0; g <= RAMSTORE_FULL; g++) {
		struct ramstore_block *prev = NULL;

		for (struct ramstore_block *b = cls->list[g]; b; prev = b, b = b->next) {
			if (b->prev != prev || b->group != g || !b->inuse ||
			    ramstore_group(cls, b->inuse) != g)
				return errmsg_set(-EUCLEAN,
						  "store ram: class %u: list %u holds a block of "
						  "%u objects",
						  c, g, b->inuse);
			ret = ramstore_check_block(s, c, b, &objects, &stored);
			if (ret)
				return ret;
			blocks++;
		}
	}
	if (cls->spare && cls->spare->inuse)
		return errmsg_set(-EUCLEAN, "store ram: class %u: the spare holds objects", c);
	if (blocks != cls->blocks || objects != cls->objects || stored != cls->stored)
		return errmsg_set(-EUCLEAN,
				  "store ram: class %u counts %llu blocks, %llu objects, %llu "
				  "bytes; its lists hold %llu, %llu, %llu",
				  c, (unsigned long long)cls->blocks,
				  (unsigned long long)cls->objects, (unsigned long long)cls->stored,
				  (unsigned long long)blocks, (unsigned long long)objects,
				  (unsigned long long)stored);
	*pool += (blocks + !!cls->spare) * cls->block_bytes;
	return 0;
}

/* Walk a list of free entries.  @return its length, or -1 when broken. */
static int64_t ramstore_check_free_entries(struct ramstore *s, uint32_t head)
{
	int64_t n = 0;

	for (uint32_t idx = head; idx; idx = ramstore_entry(s, idx)->next) {
		if (idx >= s->table.next || (ramstore_entry_gen(ramstore_entry(s, idx)) & 1) || n >= s->table.next)
			return -1;
		n++;
	}
	return n;
}

/* All locks held. */
static int ramstore_check_locked(struct ramstore *s)
{
	const struct ramstore_class *large = &s->cls[RAMSTORE_LARGE];
	uint64_t live = 0, cached = 0, nlarge = 0, large_len = 0, large_bytes = 0, pool = 0;
	int64_t n;
	int ret;

	for (unsigned c = 0; c < RAMSTORE_NCLASSES; c++) {
		ret = ramstore_check_class(s, c, &pool);
		if (ret)
			return ret;
	}
	for (unsigned c = 0; c <= RAMSTORE_LARGE; c++) {
		n = ramstore_check_free_entries(s, s->cls[c].entry_free);
		if (n != s->cls[c].nentry_free)
			return errmsg_set(-EUCLEAN,
					  "store ram: class %u: entry cache broken or miscounted "
					  "(%lld found, %u counted)",
					  c, (long long)n, s->cls[c].nentry_free);
		cached += (uint64_t)n;
	}
	n = ramstore_check_free_entries(s, s->table.free_head);
	if (n != s->table.nfree)
		return errmsg_set(-EUCLEAN,
				  "store ram: table free list broken or miscounted (%lld found, "
				  "%u counted)",
				  (long long)n, s->table.nfree);
	for (uint32_t idx = 1; idx < s->table.next; idx++) {
		struct ramstore_entry *e = ramstore_entry(s, idx);

		if (!(ramstore_entry_gen(e) & 1))
			continue;
		live++;
		if (ramstore_entry_class(e) != RAMSTORE_LARGE)
			continue;
		if (ramstore_entry_len(e) <= RAMSTORE_CLASS_MAX)
			return errmsg_set(-EUCLEAN,
					  "store ram: entry %u: large object of %zu bytes", idx,
					  ramstore_entry_len(e));
		nlarge++;
		large_len += ramstore_entry_len(e);
		large_bytes += ramstore_large_bytes(ramstore_entry_len(e));
	}
	if (nlarge != large->objects || large_len != large->stored ||
	    large_bytes != large->large_bytes)
		return errmsg_set(-EUCLEAN,
				  "store ram: %llu large objects of %llu bytes in the table, "
				  "counted %llu of %llu",
				  (unsigned long long)nlarge, (unsigned long long)large_len,
				  (unsigned long long)large->objects,
				  (unsigned long long)large->stored);
	pool += large_bytes + large->large_pending;
	if (live + cached + s->table.nfree + __atomic_load_n(&s->table.in_put, __ATOMIC_RELAXED) !=
	    s->table.next - 1)
		return errmsg_set(-EUCLEAN,
				  "store ram: table: %llu live + %llu cached + %u free entries, "
				  "%u handed out",
				  (unsigned long long)live, (unsigned long long)cached,
				  s->table.nfree, s->table.next - 1);
	if (pool != ramstore_load(&s->pool_bytes))
		return errmsg_set(-EUCLEAN,
				  "store ram: pool_bytes %llu, blocks and mappings add to %llu",
				  (unsigned long long)ramstore_load(&s->pool_bytes),
				  (unsigned long long)pool);
	if (s->limit && pool > s->limit)
		return errmsg_set(-EUCLEAN, "store ram: pool_bytes %llu over the limit %zu",
				  (unsigned long long)pool, s->limit);
	return 0;
}

static int ramstore_check(struct store *st)
{
	struct ramstore *s = ramstore_of(st);
	int ret;

	ramstore_lock_all(s);
	ret = ramstore_check_locked(s);
	ramstore_unlock_all(s);
	return ret;
}

const struct store_ops store_ram = {
	.version = STORE_OPS_VERSION,
	.name = "ram",
	.open = ramstore_open,
	.close = ramstore_close,
	.put = ramstore_put,
	.get = ramstore_get,
	.free = ramstore_free,
	.usage = ramstore_usage,
	.compact = ramstore_compact,
	.max_len = RAMSTORE_OBJ_MAX,
	.check = ramstore_check,
	.prefork = ramstore_prefork,
	.postfork_parent = ramstore_postfork_parent,
	.postfork_child = ramstore_postfork_child,
};

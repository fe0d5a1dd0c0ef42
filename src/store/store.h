/* SPDX-License-Identifier: MIT */
/*
 * Stores: where blobs live.  A versioned table of operations (SQLite's
 * sqlite3_io_methods habit) so that ram, file and redis stores are
 * interchangeable and share one test suite.
 *
 * A store keeps opaque byte strings ("objects") and names each by a handle
 * it chooses.  All operations are thread-safe.
 */
#ifndef USWAP_STORE_H
#define USWAP_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_OPS_VERSION 1

/* A handle names one stored object; 0 is never a valid handle. */
typedef struct {
	uint64_t v;
} store_handle_t;

struct store_usage {
	uint64_t objects;      /* objects stored now */
	uint64_t stored_bytes; /* sum of the objects' lengths */
	uint64_t pool_bytes;   /* memory (or space) the store holds for them,
				  including fragmentation: what store_limit bounds */
	uint64_t compactions;  /* compaction passes run */
	uint64_t moved;	       /* objects moved by compaction */
	/* Bookkeeping and one counter per failure reason (0 where a store
	 * has no such notion). */
	uint64_t meta_bytes; /* the store's own bookkeeping (handle table),
				outside pool_bytes and outside the limit */
	uint64_t fail_nospc; /* puts refused with -ENOSPC (limit) */
	uint64_t fail_nomem; /* puts failed with -ENOMEM */
	uint64_t fail_2big;  /* puts refused with -E2BIG */
	uint64_t bad_get;    /* gets of a freed or invalid handle (-ENOENT) */
	uint64_t bad_free;   /* frees of a freed or invalid handle: a caller
				bug, ignored (debug builds abort) */
	/* I/O of stores that do any (file, redis; 0 for ram). */
	uint64_t reads;	      /* objects read (gets that reached the medium) */
	uint64_t writes;      /* objects written */
	uint64_t errors;      /* reads, writes and frees that failed (I/O,
				 server down, timeout; not -ENOSPC at the limit) */
	uint64_t read_ns;     /* total time in reads */
	uint64_t write_ns;    /* total time in writes */
	uint64_t writebacks;  /* tier: objects moved from ram to the file */
	uint64_t direct_io;   /* file, tier: 1 when the file is read and written
				 with O_DIRECT (no page cache), 0 through the
				 page cache (tmpfs) and for other stores */
};

/* Counters of struct store_usage that stores update with atomic adds,
 * outside their locks. */
static inline void store_count(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

/* Copy the counters (failures, I/O, latency) of from into to, atomically;
 * the sizes are the store's to fill. */
static inline void store_usage_counters(const struct store_usage *from, struct store_usage *to)
{
#define STORE_LOAD(f) to->f = __atomic_load_n(&from->f, __ATOMIC_RELAXED)
	STORE_LOAD(compactions);
	STORE_LOAD(moved);
	STORE_LOAD(fail_nospc);
	STORE_LOAD(fail_nomem);
	STORE_LOAD(fail_2big);
	STORE_LOAD(bad_get);
	STORE_LOAD(bad_free);
	STORE_LOAD(reads);
	STORE_LOAD(writes);
	STORE_LOAD(errors);
	STORE_LOAD(read_ns);
	STORE_LOAD(write_ns);
	STORE_LOAD(writebacks);
	STORE_LOAD(direct_io);
#undef STORE_LOAD
}

/* Called by get with the object's bytes, valid only during the call. */
typedef int (*store_visit_fn)(const void *obj, size_t len, void *arg);

struct store;

struct store_ops {
	int version;	  /* STORE_OPS_VERSION */
	const char *name; /* "ram", ... */
	/*
	 * @arg    the part of the store URI after "name:" (NULL when none)
	 * @limit  bytes of pool_bytes allowed; 0 = no limit
	 * @return 0; -EINVAL for a bad arg (message via errmsg_set); -ENOMEM
	 */
	int (*open)(const char *arg, size_t limit, struct store **out);
	void (*close)(struct store *s);
	/* Store a copy of len bytes (len 0 is allowed).
	 * @return 0 and *h; -ENOSPC when the limit would be exceeded; -E2BIG
	 * when len is beyond what the store takes (max_len); -ENOMEM */
	int (*put)(struct store *s, const void *obj, size_t len, store_handle_t *h);
	/* Calls fn(obj, len, arg) with the object's bytes; fn must not call
	 * back into the store.  @return what fn returned; -ENOENT for a bad
	 * handle */
	int (*get)(struct store *s, store_handle_t h, store_visit_fn fn, void *arg);
	/* Free a stored object.  Freeing a freed or invalid handle is a caller
	 * bug: stores detect it where they can, count it (bad_free) and
	 * otherwise ignore it; debug builds abort. */
	void (*free)(struct store *s, store_handle_t h);
	void (*usage)(struct store *s, struct store_usage *u);
	/* Reclaim fragmented space.  @return bytes of pool given back, or -errno */
	long (*compact)(struct store *s);

	/* Largest len put takes; longer objects get -E2BIG. */
	size_t max_len;
	/* Optional (NULL when the store has none).  Check every internal
	 * invariant (counts, lists, handle table, pool_bytes); the store
	 * suite calls it after operations in tests.  Takes all the store's
	 * locks, so it is slow but safe at any time.
	 * @return 0; -EUCLEAN with a message (errmsg) naming the first
	 *         broken invariant. */
	int (*check)(struct store *s);
	/* Optional fork hooks (jemalloc's habit), called around fork() by the
	 * forking thread: prefork takes every lock of the store, so that the
	 * child never inherits one held mid-update; postfork_parent releases
	 * them; postfork_child makes them anew, or unlocks them where that is
	 * safe: a mutex the forking thread holds can be unlocked in the child
	 * (its only thread), but an rwlock records parent threads waiting on
	 * it and must be made anew. */
	void (*prefork)(struct store *s);
	void (*postfork_parent)(struct store *s);
	void (*postfork_child)(struct store *s);
};

/*
 * The built-in stores.  Callers normally go through store_find(); these are
 * here so that the registry and the tests can name them.
 *  - ram: objects in memory, in size classes packed into blocks, with a
 *    handle table so that compaction can move them (see store_ram.c).
 *    Takes no options (arg NULL or ""); max_len is 16 MiB - 1.
 *  - file: "file:DIR", objects in an unnamed file of DIR, through io_uring
 *    (see store_file.c).  max_len is 16 MiB - 1.
 */
extern const struct store_ops store_ram;
extern const struct store_ops store_file;
/*  - ram,file: "ram,file:DIR[,ram=SIZE]", the ram store first, its coldest
 *    objects written back to a file store in DIR when it is full (see
 *    store_tier.c). */
extern const struct store_ops store_tier;
/*  - redis: "redis://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][?timeout=MS]",
 *    objects as keys on Redis servers, sharded (see store_redis.c).
 *  - rediss: the same over TLS, "rediss://...[?timeout=MS&ca=PATH&cert=PATH
 *    &key=PATH]" (see redis_uri.h). */
extern const struct store_ops store_redis;
extern const struct store_ops store_rediss;

/*
 * The store a URI names: "name" or "name:arg" ("ram").  NULL or "" name the
 * default store, "ram".
 * @arg  if not NULL, set to the text after "name:", or to NULL when there
 *       is none (also for "name:" with nothing after the colon)
 * @return the store's operations, or NULL (and *arg NULL) for an unknown
 *         name: callers report it with store_names().
 */
const struct store_ops *store_find(const char *uri, const char **arg);
/* The stores and their URI forms, for error messages, separated by "; "
 * ("ram; file:DIR; ..."). */
const char *store_names(void);

#endif

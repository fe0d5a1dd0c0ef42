/* SPDX-License-Identifier: MIT */
/*
 * The runtime's view of one uswap instance: its regions, fault-handler
 * threads, reclaimer, slot map, store and counters.
 *
 * Lock order (outer first):
 *   fork_lock (read: any folio operation; write: fork, see fork.c)
 *     -> region shard locks (writers take them all: API shards first,
 *        then handler shards, see regions.c)
 *       -> clock_lock
 *         -> folio LOCKED bits (only compare-and-swap of a word just looked
 *            at while clock_lock is held: never a wait)
 *           -> slot map locks -> store locks
 *           (a shared region's folio word -> its mapper table lock, both
 *            in the memfd, across processes: see shared.h)
 *   ctx_lock, queue.lock and read_lock are leaves.
 * Readers of the region table take only their own shard (see regions.c),
 * so the fault path shares no lock between handler threads.  Handler
 * threads never wait for fork_lock (they try it and queue the message, see
 * events.c): they must stay free to read the fork event.
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
#include "os/os.h"
#include "uswap.h"

struct region {
	char *start;       /* folio aligned */
	size_t len;        /* bytes, a multiple of the folio size */
	uint32_t npages;
	struct pagetable pt;
	/* the access-pattern detector (swapin_partial.c); atomic, relaxed */
	uint32_t last_fault_page;
	int32_t access_score;
	/* readahead's stream detector (readahead.c), relaxed atomics: folio + 1
	 * of the last swap-in fault (0: none), faults in a row, end of the
	 * folios asked for */
	uint32_t ra_last, ra_run, ra_next;
	struct shared_region *sh; /* shared regions only (shared.h), else NULL */
};

/* Readahead (readahead.c): folios asked for per fault, requests queued. */
#define READAHEAD_WINDOW 16
#define READAHEAD_QUEUE  16

struct readahead_req {
	uintptr_t addr;   /* first folio's address */
	uint32_t nfolios;
	bool write;       /* a stream of writes: bring folios in writable */
};

/* Buffers of a thread that evicts folios or swaps them in.  Owned by one
 * thread at a time: no lock. */
struct folio_ctx {
	char *staging;     /* the staging ring: staging_n folios of address space
	                      registered with the staging userfaultfd; each
	                      eviction moves its pages into the next empty one
	                      (staging_take), and the used ones are dropped
	                      together (staging_flush: one TLB flush, folio_ctx.c) */
	unsigned staging_n;    /* folios in the ring */
	unsigned staging_used; /* folios [0, used) may hold pages; the others
	                          are empty, as UFFDIO_MOVE needs */
	void *blob;        /* folio_blob_bound(pages) */
	void *scratch;     /* one folio: packing on encode, decoding on swap-in */
	void *scratch2;    /* one folio: decoding other runs in a fallback, the
	                      result of idle recompression, gathering a partial
	                      folio's pages on eviction: never live across calls */
	bool background;   /* the reclaimer's own: what it evicts to make room
	                      (for readahead) is background reclaim, in batches */
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
	unsigned recompress; /* strong level, 0 = off (recompress.c) */
	const struct codec_ops *codec;
	const struct store_ops *store_ops;
	const char *store_arg;
	char store_uri[256];
};

#define REGION_SHARDS_MAX 70

struct region_table {
	pthread_rwlock_t shard[REGION_SHARDS_MAX];
	unsigned nshards;
	unsigned api_first; /* shards [api_first, nshards) are the API callers' */
	struct region **v; /* sorted by start */
	size_t n, cap;
};

/*
 * Messages that must be handled in the order they were read: the program's
 * munmap/mremap/madvise events, and the faults read after them (a fault on
 * a page the program just dropped must see the drop).  One thread at a time
 * drains it (events.c).
 */
#define MSG_QUEUE_CAP 4096

struct msg_queue {
	pthread_mutex_t lock;
	struct os_event *v; /* MSG_QUEUE_CAP entries, from os_mem_map */
	unsigned head, n;
	int draining;       /* a thread is draining (under lock) */
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
	int staging_fd;     /* a second userfaultfd, without events, for the
			       staging folios: dropping their pages must not
			       send the program's handlers a remove event */
	unsigned features;  /* OS_UFFD_* granted */
	bool swapcache;     /* keep stored copies of clean swapped-in folios */
	struct slotmap *slots;
	struct store *store;
	struct region_table regions;

	/* budget, in pages; max 0 = no limit (a partly swapped-in folio counts
	 * the pages it holds: folio_charge) */
	uint64_t max_pages, high_wm, low_wm;
	uint64_t resident_pages; /* atomic */
	uint64_t pinned_folios;   /* atomic */
	uint64_t uncharged_folios; /* atomic: resident, not counted (budget_exempt) */

	uint64_t evictions;       /* atomic: by the reclaimer, for FOLIO_STAMP */

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

	/* readahead requests, served by the reclaimer's thread */
	pthread_mutex_t ra_lock;
	struct readahead_req ra_queue[READAHEAD_QUEUE];
	unsigned ra_head, ra_n;
	unsigned ra_gen; /* atomic: readahead_cancel() calls */
	unsigned paging_out; /* atomic: USWAP_ADV_PAGEOUT calls in progress (idle
				recompression waits for them: recompress.c) */
	const char *zeros;   /* one folio of zeros, read-only (os_mem_map_zeros):
				the source of a first write's zero-filled folio */
	int stopping;       /* atomic */

	/* buffers for callers of the API (advise) */
	pthread_mutex_t ctx_lock;
	struct folio_ctx *ctx_free;

	int overshoot_reported; /* atomic */

	/* fork (fork.c): folio operations hold fork_lock for reading */
	pthread_rwlock_t fork_lock;
	int fork_sock[2];   /* the child's userfaultfd travels over it */
	uint32_t fork_fd_sent; /* atomic: the fork event's fd was passed on */
	struct uswap *next_instance; /* the list fork.c walks */
	bool fork_registered;

	/* events (events.c) */
	pthread_mutex_t read_lock; /* reading the userfaultfd + queueing */
	struct msg_queue queue;

	struct recompressor *recomp; /* idle recompression, NULL when off */

	uint64_t swapcache_pages; /* atomic: pages holding a stored copy */
	uint64_t lazyfree_pages;  /* atomic: pages marked ENTRY_LAZYFREE */
	uint32_t nshared;         /* atomic: shared regions in the table */
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
int regions_init(struct region_table *t, unsigned nshards, unsigned api_first);
/* Make the shard locks anew (a child process after fork). */
void regions_init_locks(struct region_table *t);
void regions_destroy(struct region_table *t);
/* Take / release the read side of one shard. */
void regions_read_lock(struct region_table *t, unsigned shard);
void regions_read_unlock(struct region_table *t, unsigned shard);
void regions_write_lock(struct region_table *t);
void regions_write_unlock(struct region_table *t);
/* With a shard held: the region containing addr, or NULL. */
struct region *regions_find(struct region_table *t, uintptr_t addr);
/* With a shard held: the first region that ends after addr, or NULL. */
struct region *regions_find_from(struct region_table *t, uintptr_t addr);
/* Free a region no longer in the table: its slots, its budget, the part of
 * its range that is still mapped, its page table. */
void region_destroy(struct uswap *u, struct region *r);
/* With the write lock: insert (-ENOMEM past a million regions) / remove. */
int regions_insert(struct region_table *t, struct region *r);
void regions_remove(struct region_table *t, struct region *r);
/* The shard API callers (not handler threads) use. */
unsigned regions_api_shard(const struct uswap *u);

/* ---- folio_ctx.c ---- */
int folio_ctx_init(struct uswap *u, struct folio_ctx *c);
void folio_ctx_destroy(struct uswap *u, struct folio_ctx *c);
/* A forked child's copy of a parent thread's buffers (fork.c). */
void folio_ctx_forget_in_child(struct uswap *u, struct folio_ctx *c);
struct folio_ctx *folio_ctx_get(struct uswap *u);
/* Give a borrowed context back (its staging ring is flushed first). */
void folio_ctx_put(struct uswap *u, struct folio_ctx *c);
/* The next empty staging folio of c for one eviction; when the ring is used
 * up, every used folio is dropped first (staging_flush).  Its pages stay
 * until a later flush: the eviction may move them back from there.
 * @return the folio; NULL when the ring could not be dropped (a message
 *         says why; nothing may be moved into a folio not known empty). */
char *staging_take(struct uswap *u, struct folio_ctx *c);
/* n consecutive empty staging folios (staging_take's rules); NULL also
 * when n is more than the ring holds. */
char *staging_take_run(struct uswap *u, struct folio_ctx *c, unsigned n);
/* Drop the pages of every used staging folio with one MADV_DONTNEED (one
 * TLB flush for all), making them empty again.  Called when the ring is
 * used up, before the thread sleeps, and when a borrowed context is given
 * back, so evicted data never lingers in staging for long.
 * @return 0; -errno from the kernel (the folios stay used). */
int staging_flush(struct uswap *u, struct folio_ctx *c);

/* ---- evict.c ---- */
/*
 * Evict folio f of r, which the caller has locked in state RESIDENT.  A
 * clean swap-cached folio costs no compression: its pages are dropped and
 * its entries point at their slots again.
 * @return 0 (the caller unlocks it OUT); -ENOSPC (store full) or -EBUSY
 *         (a page is pinned or shared), or another -errno from the kernel:
 *         the folio stays resident (without SWAPCACHE).
 */
int folio_evict(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f);
/* folio_evict of folios [f, f + n) of r, locked by the caller, none
 * PARTIAL, their pages moved out together; rc[i] is folio f + i's result. */
void folios_evict(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
		  unsigned n, int *rc);
/* Free the slots and zero bits of pages [first, first+n) of folio f, which
 * the caller has locked (unmap, remove events, a write to a swap-cached
 * folio).  Counts pages whose slot was shared (fork) in *shared.
 * @return the number of slots dropped. */
unsigned folio_drop_slots(struct uswap *u, struct region *r, uint32_t f, unsigned first,
			  unsigned n, unsigned *shared);
/* Free what a folio holds in slots and the store (unmap). */
void folio_release(struct uswap *u, struct region *r, uint32_t f);
/* A locked swap-cached folio is being written or dropped: free its stored
 * copies and clear SWAPCACHE (counting reuse/copy when written). */
void swapcache_drop(struct uswap *u, struct region *r, uint32_t f, bool written);

/* ---- lazyfree.c ---- */
/* USWAP_ADV_FREE on pages [a, b) of folio f (locked, state *st, which an
 * OUT folio covered whole turns to EMPTY).  @return 0; -errno when the
 * kernel refused the write-protection (nothing was marked). */
int lazyfree_advise(struct uswap *u, struct region *r, uint32_t f, unsigned a, unsigned b,
		    enum folio_state *st);
/* A write reached lazily freed folio f (locked): its pages are data again. */
void lazyfree_cancel(struct uswap *u, struct region *r, uint32_t f);
/* The folio is dropped, or its protection lifted for another reason:
 * clear its markers without counting a cancel. */
void lazyfree_forget(struct uswap *u, struct region *r, uint32_t f);
/* Eviction: zero the lazily freed pages in staging (they will be recorded
 * as zero pages), clear every marker and count them discarded.  moved: the
 * pages in staging (FOLIO_MASK_WORDS words) for a partial eviction, or NULL
 * when all of the folio's pages are there. */
void lazyfree_discard(struct uswap *u, struct region *r, uint32_t f, char *staging,
		      const uint64_t *moved);
/* Eviction, pages moved out: when every page of folio f is lazily freed,
 * record them all as zero pages, count them discarded and @return true
 * (nothing to read, encode or store); false otherwise. */
bool lazyfree_discard_whole(struct uswap *u, struct region *r, uint32_t f);

/* ---- swapin.c ---- */
enum install_op { INSTALL_COPY, INSTALL_ZERO };
/*
 * Install [dst, dst+len) by copy from src or as zero pages, with the
 * userfaultfd fd; pages already present (a racing resolution of the same
 * data) are left alone; EAGAIN and ENOMEM are retried.  flags: OS_WP
 * (copies only), OS_DONTWAKE; without it the threads waiting on the range
 * are woken when one ioctl installs all of it.
 * @return 1 when the whole range was installed and woken, 0 when installed
 *         but not woken (the caller wakes); -errno when the kernel refuses.
 */
int range_install(struct uswap *u, int fd, enum install_op op, char *dst, const char *src,
		  size_t len, unsigned flags);
/* What to install at a page of a folio coming in. */
enum page_kind { PAGE_SKIP, PAGE_ZERO, PAGE_DATA };
/*
 * Install pages [0, n) at base by kind[]: PAGE_DATA copied from buf at the
 * same offset (with data_flags: OS_WP), PAGE_ZERO as the zero page,
 * PAGE_SKIP left alone; one ioctl per run of one kind.  With wake, one
 * ioctl that covers every page also wakes their waiters; else nothing is
 * woken.  @return 1 when so woken, 0 when the caller wakes; -errno with
 * *done (may be NULL) = the pages before the run that failed (they stay).
 */
int install_kinds(struct uswap *u, char *base, const char *buf, const uint8_t *kind, unsigned n,
		  unsigned data_flags, bool wake, unsigned *done);
/*
 * Bring folio f of r in (state EMPTY or OUT, locked by the caller): map
 * zero pages, decode stored pages and install them.  With the swap cache,
 * data pages are installed write-protected and keep their slots (the
 * caller sets SWAPCACHE when *cached); otherwise their slots are freed.
 * For a write fault (write) the folio comes in writable: no swap cache (the
 * write would end it at once, after a write-protect fault), and an EMPTY
 * folio gets zero-filled pages instead of the shared zero page (which each
 * written page would leave by a copy-on-write fault of its own).
 * @return 1 when the faulting threads were woken (one ioctl installed the
 *         whole folio), 0 when the caller must wake them; -errno when the
 *         kernel refused or the data could not be had (the folio keeps its
 *         state).
 */
int folio_swap_in(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
		  uint32_t word, bool write, bool *cached);
/* Decode the stored run of handle h (npages pages) into dst.
 * @return 0; -errno from the store or the blob (-EILSEQ: corrupt). */
int run_decode(struct uswap *u, store_handle_t h, void *dst, unsigned npages);
/* The run that holds the slot of page p (which has one): its handle,
 * first slot and order.  @return 0; -EILSEQ for a run larger than a folio
 * (a corrupt slot map); slot_run's error. */
int page_run(struct uswap *u, const struct pagetable *pt, uint32_t p, store_handle_t *h,
	     slot_t *first, unsigned *order);

/* ---- swapin_partial.c ---- */
/* Record a fault at page of r and answer whether the region's faults look
 * random (then a stored folio comes in page by page).  Always false with
 * USWAP_CFG_NO_ADAPT or single-page folios. */
bool region_access_random(struct uswap *u, struct region *r, uint32_t page);
/*
 * Bring in pages [first, first+n) of folio f, which the caller has locked
 * and which is OUT or RESIDENT|PARTIAL (the caller sets the state and the
 * PARTIAL flag, and charges the budget for an OUT folio).  Each page with
 * a slot is decoded from its run and installed by copy (not
 * write-protected: a partial folio keeps no swap cache); a page in the
 * zero map, or with neither (it never held data, or is mapped already:
 * left alone), gets the zero page.  The slots and zero bits of the pages
 * brought in are dropped.  Nothing is installed when a page cannot be
 * decoded.
 * @return 1 when one ioctl installed the range and woke its waiters, 0 when
 *         the caller must wake the range; -errno (as folio_swap_in).
 */
int folio_swap_in_pages(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			unsigned first, unsigned n);
/* Bring in every page still out of RESIDENT|PARTIAL folio f (locked; word
 * as locked), charging the budget for them, wake the folio and clear
 * PARTIAL.  @return 0; -errno (pages that could not come keep their slots). */
int folio_complete_partial(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			   uint32_t word);

/* ---- reclaim.c ---- */
/* Account pages more resident pages, evicting first where they would not
 * fit in the budget (directly on a fault, a batch on the reclaimer).
 * The caller holds a region shard and the lock of the folio it brings in. */
void budget_charge(struct uswap *u, struct folio_ctx *c, uint64_t pages);
/* The same for another count: add units to *counter (atomic) once pages
 * more fit (a shared region's resident folios: shared.c; the caller holds
 * a region shard and that folio's cross-process lock). */
void budget_charge_to(struct uswap *u, struct folio_ctx *c, uint64_t *counter, uint64_t units,
		      uint64_t pages);
/* What counts against the budget: resident private folios plus every
 * resident folio of the shared regions u maps (a shard held). */
uint64_t budget_resident(struct uswap *u);
void budget_uncharge(struct uswap *u, uint64_t pages);
/* Folio f (locked) counted before pages and counts after now: account the
 * difference.  A folio that grew reclaims as budget_charge does with c, or
 * wakes the reclaimer past the high mark without (c NULL: the caller
 * cannot reclaim, e.g. it reads events). */
void budget_adjust(struct uswap *u, struct folio_ctx *c, uint64_t before, uint64_t after);
/* A folio the kernel will not let go stops counting (caller holds its
 * lock).  A resident folio leaves (evicted or dropped), having counted
 * charge = folio_charge() before it left: uncharge that unless it was
 * exempt. */
void budget_exempt(struct uswap *u, struct pagetable *pt, uint32_t f);
void budget_release(struct uswap *u, struct pagetable *pt, uint32_t f, uint64_t charge);
/* The stamp an evicted folio keeps; the age a folio swapped in from word
 * gets (FOLIO_AGE_MASK when it was evicted recently, else 0). */
uint32_t eviction_stamp(struct uswap *u);
uint32_t refault_age(struct uswap *u, uint32_t word);
/* At most this many consecutive folios are evicted together. */
#define RECLAIM_BATCH_MAX 8u
/* Evict a cold folio, and up to max - 1 consecutive ones after it that the
 * clock would evict next (folios_evict), each counted in why.
 * @return 0 when at least one was evicted; -ENOSPC (store full); -EAGAIN
 * when none could be. */
int reclaim_some(struct uswap *u, struct folio_ctx *c, enum counter why, unsigned max);
int reclaimer_start(struct uswap *u);

/* ---- recompress.c ---- */
/* Set up idle recompression when the options ask for it.  @return 0;
 * -ENOMEM. */
int recompress_init(struct uswap *u);
void recompress_destroy(struct uswap *u);
/* The background thread has nothing else to do: recompress a few stored
 * folios (its region shard, not held).  @return true when there may be
 * more to do at once (the caller comes back without sleeping). */
bool recompress_run(struct uswap *u, struct folio_ctx *c, unsigned shard);

/* ---- readahead.c ---- */
/* A swap-in fault on folio f of r: ask for the folios after it if the
 * region's faults look sequential. */
void readahead_note(struct uswap *u, struct region *r, uint32_t f, bool write);
/* Serve the queued requests (the background thread, its region shard). */
void readahead_run(struct uswap *u, struct folio_ctx *c, unsigned shard);
/* Drop the queued requests and stop the one being served. */
void readahead_cancel(struct uswap *u);
/* Is folio f of r in the stream readahead follows (after the last fault,
 * up to the end of what was asked for)? */
bool readahead_covers(struct region *r, uint32_t f);
void reclaimer_stop(struct uswap *u);

/* ---- events.c ---- */
int events_init(struct uswap *u);
/* Read what the userfaultfd holds now into the ordered queue, without
 * handling it (fork events are passed on at once).  For a thread that
 * waits out the kernel's EAGAIN inside a folio operation: EAGAIN lasts
 * until a pending event is read, and that thread may be the only reader.
 * Never blocks (a thread reading already is enough). */
void events_absorb(struct uswap *u);
void events_destroy(struct uswap *u);
/* Read what the userfaultfd has and handle it (handler threads).
 * @return 0; -EAGAIN when there was nothing; another -errno when reading
 *         failed. */
int events_poll(struct uswap *u, struct worker *w);
/* The program dropped [start, end) (MADV_DONTNEED/MADV_FREE; munmap when
 * gone): those pages read as zero from now on, their stored copies are
 * freed.  The caller holds fork_lock for reading, no shard. */
void events_drop(struct uswap *u, unsigned shard, uint64_t start, uint64_t end, bool gone);
/* Is there queued work a handler should come back for soon? */
bool events_queued(struct uswap *u);

/* ---- fork.c ---- */
/* Register u for fork handling (pthread_atfork, once per process). */
void fork_lock_init(struct uswap *u);
int fork_register(struct uswap *u);
void fork_unregister(struct uswap *u);
/* The fork event: pass the child's userfaultfd on to the child. */
void fork_event(struct uswap *u, int child_ufd);

/* ---- check.c ---- */
/* Check what ties the instance together (counters vs folio words, page
 * entries vs slot map vs store, every folio_check), at a quiescent moment.
 * @return 0; -EUCLEAN with a message (errmsg) naming the first broken
 * invariant; -ENOMEM. */
int instance_check(struct uswap *u);

/* ---- fault.c ---- */
/*
 * Resolve a missing fault at addr (page aligned) with the buffers of c;
 * the caller holds a region shard.  @return 0, or -errno when the page
 * could not be brought back (it is then poisoned: the access gets SIGBUS).
 */
int fault_resolve(struct uswap *u, struct folio_ctx *c, uint64_t addr, bool write);
/* Resolve a write-protect fault at addr (a write to a swap-cached page). */
void fault_resolve_wp(struct uswap *u, uint64_t addr);
int handlers_start(struct uswap *u);
void handlers_stop(struct uswap *u);
/* Lock folio f, sleeping while someone else holds it. */
uint32_t folio_lock_wait(struct region *r, uint32_t f);
/* Unlock, waking sleepers. */
void folio_unlock_wake(struct region *r, uint32_t f, enum folio_state to, uint32_t set,
		       uint32_t clear);

#endif

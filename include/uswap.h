/* SPDX-License-Identifier: MIT */
/*
 * uswap — user-space swap for Linux.
 *
 * uswap takes over the paging of memory regions with userfaultfd and keeps
 * their resident set under a budget by swapping cold folios (aligned groups
 * of pages) into a compressed store, and back on the next access.
 *
 * Every int function returns 0 on success or a negative errno.  After a
 * failure, uswap_last_error() gives a sentence that names the bad value and
 * what is allowed.  All functions are thread-safe.
 */
#ifndef USWAP_H
#define USWAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define USWAP_VERSION_MAJOR 0
#define USWAP_VERSION_MINOR 1

typedef struct uswap uswap_t;

/*
 * Configuration.  An all-zero struct means defaults.  Sizes are bytes.
 */
struct uswap_config {
	size_t limit;           /* resident budget for all regions; 0 = no limit;
	                           otherwise at least one folio */
	const char *codec;      /* "lz4" (default), "zstd", "none" */
	const char *store;      /* "ram" (default), "file:DIR",
	                           "ram,file:DIR[,ram=SIZE]",
	                           "redis://HOST:PORT[,HOST:PORT...]"
	                           (docs/STORES.md) */
	size_t folio_size;      /* power of two, 4 KiB .. 2 MiB; 0 = 64 KiB */
	size_t store_limit;     /* bytes the store may use; 0 = no limit */
	/* uswap additions */
	unsigned threads;       /* fault-handler threads; 0 = one per online CPU,
	                           at most 4 (each fault wakes every handler) */
	unsigned flags;         /* USWAP_CFG_* */
	unsigned recompress;    /* 0 = off; else the level at which the
	                           background thread recompresses folios that
	                           stay stored while it is idle: lz4 3..12
	                           (LZ4HC, still lz4), zstd 2..22; ram store
	                           only (docs/ARCHITECTURE.md) */
};

/* Handler threads are not pinned to CPUs (they are by default). */
#define USWAP_CFG_NO_PIN 0x1u
/* No swap cache: a folio swapped in drops its stored copy at once, so
 * evicting it again compresses it again (for comparisons). */
#define USWAP_CFG_NO_SWAPCACHE 0x2u
/* No adaptive swap-in: a fault always brings in the whole folio, even
 * when the region's faults look random (for comparisons). */
#define USWAP_CFG_NO_ADAPT 0x4u

/*
 * Open an instance: one userfaultfd, its handler threads and a reclaimer.
 * @cfg  NULL = defaults overridden by the USWAP_* environment variables
 *       (USWAP_LIMIT, USWAP_CODEC, USWAP_STORE, USWAP_FOLIO,
 *       USWAP_STORE_LIMIT, USWAP_THREADS, USWAP_PIN, USWAP_SWAPCACHE,
 *       USWAP_ADAPT, USWAP_RECOMPRESS);
 *       non-NULL = exactly these values.
 * @return 0 and *out set; -EINVAL for a bad value; -EPERM (or -ENOSYS) when
 *         userfaultfd is not available to this process, -ENOMEM; for a redis
 *         store, -EIO or -ETIMEDOUT when a server cannot be reached, -EACCES
 *         when it refuses the password.
 */
int uswap_open(const struct uswap_config *cfg, uswap_t **out);

/* Close an instance.  Its regions must have been unmapped first; any left
 * are unmapped here (their contents are lost, as with munmap). */
void uswap_close(uswap_t *u);

/* uswap_map flags */
#define USWAP_MAP_PRIVATE 0x0 /* private anonymous memory (the default) */
#define USWAP_MAP_SHARED  0x1 /* shared memory (a memfd): see below */

/*
 * Map managed anonymous memory of len bytes (rounded up to whole pages),
 * zero-filled, aligned to the folio size.  It behaves like memory from
 * mmap(MAP_PRIVATE|MAP_ANONYMOUS) for every thread and for system calls,
 * across fork() (the child gets its own copy, swapped-out pages included,
 * and its own handler threads), and under the program's own munmap,
 * mremap of a whole region, and madvise(MADV_DONTNEED/MADV_FREE), which
 * read as zeros afterwards and free their stored copies.
 *
 * With USWAP_MAP_SHARED the region is shared memory backed by a memfd: a
 * forked child shares it (writes of either side are seen by the other),
 * and another process can map it with uswap_map_fd from the descriptor
 * uswap_region_fd gives.  Every process that maps it pages it under its
 * own budget and sees the same data and the same swapped state
 * (uswap_pagemap), whichever process evicted or brought a folio in.  A
 * resident folio of a shared region counts against the budget of every
 * instance that maps it.  Limits: USWAP_ADV_PIN, UNPIN and FREE are
 * refused (-EINVAL); there is no swap cache; the compressed copies live
 * in the memfd itself (not in the configured store); at most 64
 * processes map one region at a time; writes through the descriptor
 * (write(2) on it) instead of the mapping are not seen by eviction and
 * may be lost; the kernel must have write-protection of shared memory
 * (Linux 6.1+), and a process that evicts must be allowed to take the
 * other mappers' userfaultfds (pidfd_getfd: ptrace permission).
 * @return 0 and *addr set; -EINVAL (len 0, unknown flags), -ENOMEM;
 *         -ENOTSUP (shared: the kernel lacks write-protection of shmem).
 */
int uswap_map(uswap_t *u, size_t len, int flags, void **addr);

/*
 * Map, in this process, the shared region whose memfd is fd (from
 * uswap_region_fd, passed over a Unix socket or inherited across exec).
 * @len   the region's length (a multiple of the folio size)
 * @flags USWAP_MAP_SHARED
 * fd stays the caller's (uswap keeps its own duplicate).  The instance
 * must use the region's folio size.  Unmap with uswap_unmap: the other
 * mappers keep the region.
 * @return 0 and *addr set; -EINVAL (fd not a uswap shared region, len or
 *         folio size not the region's, flags) with a message; -ENOSPC (64
 *         mappers already); -ENOTSUP; -ENOMEM.
 */
int uswap_map_fd(uswap_t *u, int fd, size_t len, int flags, void **addr);

/*
 * A new descriptor (close-on-exec) of the memfd of the shared region that
 * contains addr, for uswap_map_fd in another process.  The caller closes
 * it.  @return the descriptor; -EINVAL when addr is not in a shared region.
 */
int uswap_region_fd(uswap_t *u, const void *addr);

/*
 * Unmap a whole region returned by uswap_map: addr and len as given to (or
 * returned by) uswap_map.  Stored copies are freed.
 * @return 0; -EINVAL when [addr, addr+len) is not exactly one region.
 */
int uswap_unmap(uswap_t *u, void *addr, size_t len);

/*
 * Adopt memory the caller has just mapped itself: [addr, addr+len) must be
 * private anonymous read-write memory (mmap MAP_PRIVATE|MAP_ANONYMOUS, not
 * MAP_POPULATE, not mlocked), with addr and len multiples of the folio
 * size, and no page of it touched yet (a page present at adoption is
 * never counted against the budget).  From then on it is a region like one
 * from uswap_map: uswap_unmap releases it (and unmaps it).  The LD_PRELOAD
 * shim uses this to manage the program's own mmap calls at the exact
 * addresses and lengths the program asked for.
 * @return 0; -EINVAL (not aligned, len 0 or too large); -EEXIST when the
 *         range overlaps a region (one the program unmapped part of, or
 *         whose unmap event is still being handled); -ENOMEM; or the
 *         kernel's error registering the range with userfaultfd.
 */
int uswap_adopt(uswap_t *u, void *addr, size_t len);

/*
 * Find the region that contains addr, or else the first one above it.
 * @return 0 and *start, *len set; -ENOENT when there is none.
 */
int uswap_region_find(uswap_t *u, const void *addr, void **start, size_t *len);

/* uswap_advise advice */
#define USWAP_ADV_PAGEOUT  1 /* evict the folios in the range now */
#define USWAP_ADV_WILLNEED 2 /* bring the folios in the range in now */
#define USWAP_ADV_PIN      3 /* never evict the range (brings it in) */
#define USWAP_ADV_UNPIN    4 /* undo USWAP_ADV_PIN */
#define USWAP_ADV_FREE     5 /* lazy free, MADV_FREE semantics (below) */

/*
 * Give advice about a range of managed memory.  The range is widened to
 * whole folios and must lie within one region.
 * FREE is the exception: it acts on the pages of the range only (addr
 * page-aligned, len rounded up to pages), with MADV_FREE semantics: until a
 * page is written again, it may read as its old data or as zeros, and uswap
 * may discard it instead of storing it.  A write after the advice is never
 * lost: it cancels lazy free for its folio.  Pages of the range already
 * swapped out are freed from the store at once (they read as zeros); pinned
 * folios ignore the advice.
 * PAGEOUT skips pinned folios and pages the kernel will not move (pinned
 * for I/O; counted as reclaim_fail_busy), as the kernel's MADV_PAGEOUT does.
 * @return 0; -EINVAL (unknown advice, range outside a region); -ENOSPC when
 *         PAGEOUT could not store everything (the rest stays resident);
 *         -ENOMEM when PIN or WILLNEED would exceed the budget.
 */
int uswap_advise(uswap_t *u, void *addr, size_t len, int advice);

/*
 * What uswap knows of each page, one word per page (uswap_pagemap).  Exact,
 * not sampled: the states live in uswap's page entries and markers, which
 * stay when the page itself is gone.
 *   PRESENT    mapped in the process (resident)
 *   SWAPPED    its data is in a slot of the store (evicted, or swap-cached)
 *   ZERO       recorded as a zero page (no store space)
 *   LAZYFREE   lazily freed (USWAP_ADV_FREE), not written since
 *   SWAPCACHE  present and still has its stored copy (or zero record):
 *              evicting it again costs nothing
 *   SHARED     its slot is shared with another process (after fork); in a
 *              shared region, every page in use: all mappers see this
 *              same word (PRESENT there means in memory, for everyone)
 *   PINNED     never evicted (USWAP_ADV_PIN)
 *   USWAP_PM_ORDER(w)  log2 of the pages of the unit the page is kept in:
 *              the region's folio order, or 0 where the folio is split
 *              (stored page by page, covered in part by a lazy free, or
 *              swapped in page by page: then a page still out is SWAPPED
 *              or ZERO without PRESENT)
 * A word of 0 is a page never used, or dropped: it reads as zero.
 */
#define USWAP_PM_PRESENT   (1ull << 0)
#define USWAP_PM_SWAPPED   (1ull << 1)
#define USWAP_PM_ZERO      (1ull << 2)
#define USWAP_PM_LAZYFREE  (1ull << 3)
#define USWAP_PM_SWAPCACHE (1ull << 4)
#define USWAP_PM_SHARED    (1ull << 5)
#define USWAP_PM_PINNED    (1ull << 6)
#define USWAP_PM_ORDER(w)  ((unsigned)(((w) >> 8) & 0xff))

/*
 * Fill out[0..npages) with the state of the pages from addr (page-aligned,
 * all inside one region).  Never faults a page in.
 * @return 0; -EINVAL (addr not page-aligned, range outside one region, out
 *         NULL).
 */
int uswap_pagemap(uswap_t *u, const void *addr, size_t npages, uint64_t *out);

/*
 * Read one counter by name (see uswap_stat_name for the list).
 * @return 0 and *value set; -ENOENT for an unknown name.
 */
int uswap_stat(uswap_t *u, const char *name, uint64_t *value);

/* The name of counter i, or NULL when i is past the last one. */
const char *uswap_stat_name(unsigned i);

/*
 * Parse a size as uswap's options take it: bytes with an optional K, M, G
 * or T suffix (powers of 1024), e.g. "512M".  @what names the setting in
 * the error message (see uswap_last_error).
 * @return 0 and *out; -EINVAL.
 */
int uswap_parse_size(const char *what, const char *s, size_t *out);

/* A short description of a negative errno returned by uswap. */
const char *uswap_strerror(int err);

/*
 * The detailed message of the last failure of a uswap call in this thread
 * ("" when there was none): it names the bad value and what is allowed.
 */
const char *uswap_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* USWAP_H */

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
};

/* Handler threads are not pinned to CPUs (they are by default). */
#define USWAP_CFG_NO_PIN 0x1u
/* No swap cache: a folio swapped in drops its stored copy at once, so
 * evicting it again compresses it again (for comparisons). */
#define USWAP_CFG_NO_SWAPCACHE 0x2u

/*
 * Open an instance: one userfaultfd, its handler threads and a reclaimer.
 * @cfg  NULL = defaults overridden by the USWAP_* environment variables
 *       (USWAP_LIMIT, USWAP_CODEC, USWAP_STORE, USWAP_FOLIO,
 *       USWAP_STORE_LIMIT, USWAP_THREADS, USWAP_PIN, USWAP_SWAPCACHE);
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

/*
 * Map managed anonymous memory of len bytes (rounded up to whole pages),
 * zero-filled, aligned to the folio size.  It behaves like memory from
 * mmap(MAP_PRIVATE|MAP_ANONYMOUS) for every thread and for system calls,
 * across fork() (the child gets its own copy, swapped-out pages included,
 * and its own handler threads), and under the program's own munmap,
 * mremap of a whole region, and madvise(MADV_DONTNEED/MADV_FREE), which
 * read as zeros afterwards and free their stored copies.
 * @return 0 and *addr set; -EINVAL (len 0, unknown flags), -ENOMEM.
 */
int uswap_map(uswap_t *u, size_t len, int flags, void **addr);

/*
 * Unmap a whole region returned by uswap_map: addr and len as given to (or
 * returned by) uswap_map.  Stored copies are freed.
 * @return 0; -EINVAL when [addr, addr+len) is not exactly one region.
 */
int uswap_unmap(uswap_t *u, void *addr, size_t len);

/* uswap_advise advice */
#define USWAP_ADV_PAGEOUT  1 /* evict the folios in the range now */
#define USWAP_ADV_WILLNEED 2 /* bring the folios in the range in now */
#define USWAP_ADV_PIN      3 /* never evict the range (brings it in) */
#define USWAP_ADV_UNPIN    4 /* undo USWAP_ADV_PIN */

/*
 * Give advice about a range of managed memory.  The range is widened to
 * whole folios and must lie within one region.
 * PAGEOUT skips pinned folios and pages the kernel will not move (pinned
 * for I/O; counted as reclaim_fail_busy), as the kernel's MADV_PAGEOUT does.
 * @return 0; -EINVAL (unknown advice, range outside a region); -ENOSPC when
 *         PAGEOUT could not store everything (the rest stays resident);
 *         -ENOMEM when PIN or WILLNEED would exceed the budget.
 */
int uswap_advise(uswap_t *u, void *addr, size_t len, int advice);

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

/* SPDX-License-Identifier: MIT */
/*
 * The LD_PRELOAD shim (libuswap_preload.so): uswap for unmodified programs.
 *
 * What is managed: private anonymous read-write mappings of at least
 * USWAP_MIN_MAP bytes (default 1M) that the program makes with mmap
 * (jemalloc's and Python's arenas, anything that calls libc's mmap), and
 * glibc malloc's large blocks (malloc, calloc, realloc and memalign of at
 * least USWAP_MIN_MAP bytes, whose mmap happens inside libc where no
 * interposer sees it: the shim serves those itself).
 *
 * What is not, and why:
 *   - stacks (MAP_GROWSDOWN, MAP_STACK, and the thread stacks libc maps
 *     internally): a fault handler could need the very stack that faults;
 *   - file and shared mappings: their pages belong to the page cache or
 *     to other processes, which a private store cannot stand in for;
 *   - MAP_HUGETLB, MAP_LOCKED, MAP_POPULATE, and mappings that are not
 *     exactly read-write (PROT_NONE reservations, PROT_EXEC code);
 *   - memory that devices or the kernel use asynchronously (io_uring
 *     buffers, RDMA, vfio, O_DIRECT in flight): such pages are pinned, and
 *     uswap never moves a pinned page (the move fails with EBUSY and the
 *     folio stays resident, counted reclaim_fail_busy);
 *   - memory uswap itself allocates: calls that come from the shim's own
 *     code go straight to the kernel and to the next malloc.
 * A program's other allocator (jemalloc, tcmalloc) keeps every allocation:
 * the shim manages what it maps, and serves malloc itself only when the
 * next malloc is glibc's.
 */
#ifndef USWAP_PRELOAD_H
#define USWAP_PRELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uswap.h"

/* The instance, once the shim is initialised (NULL before, and always
 * NULL when the program's memory is not managed). */
extern uswap_t *shim_u;
extern size_t shim_folio;    /* folio size of shim_u */
extern size_t shim_min_map;  /* USWAP_MIN_MAP */

/* Does the call come from the shim's own code (uswap's runtime)? */
bool shim_internal_caller(const void *ret);

#define SHIM_COUNTERS(X)                                                      \
	X(maps_adopted, "mmap calls whose memory uswap manages")                \
	X(maps_adopt_failed, "mmap calls left unmanaged: uswap_adopt failed")   \
	X(unmaps, "regions released by the program's munmap")                   \
	X(malloc_blocks, "glibc malloc blocks served from managed memory")      \
	X(madv_free_lazy, "MADV_FREE calls on managed memory done as uswap's lazy free") \
	X(madv_free_as_dontneed, "MADV_FREE calls uswap refused, done as MADV_DONTNEED") \
	X(madv_pageout, "MADV_PAGEOUT calls on managed memory done as uswap's page-out") \
	X(mremap_moved, "mremap calls that moved managed mappings")             \
	X(mremap_refused, "mremap calls refused: they cut through a region (ENOMEM)")

#define SHIM_COUNTER_ENUM(name, doc) SHIM_##name,
enum shim_counter { SHIM_COUNTERS(SHIM_COUNTER_ENUM) SHIM_COUNT };
#undef SHIM_COUNTER_ENUM

extern uint64_t shim_counters[SHIM_COUNT];
extern const char *const shim_counter_names[SHIM_COUNT];

static inline void shim_count(enum shim_counter c)
{
	__atomic_fetch_add(&shim_counters[c], 1, __ATOMIC_RELAXED);
}

/* preload_mmap.c: map len bytes of private anonymous memory aligned to
 * align and adopt its folio-aligned part.  @return the address or NULL. */
void *shim_map_managed(size_t len, size_t align, int extra_flags);
/* Release [addr, addr+len) (page aligned): regions inside it whole are
 * released through uswap, the rest is unmapped.  @return 0 or -errno. */
int shim_unmap(void *addr, size_t len);

/* preload_malloc.c: resolve the next malloc (at initialisation). */
void shim_malloc_init(void);

/* preload_stat.c: serve the counters on the abstract Unix socket
 * "@uswap/PID", and queries on "@uswap/PID/query", to the same user and
 * root.  @return 0 or -errno. */
int shim_stat_start(void);
/* In a child after fork: the parent's server thread is gone. */
void shim_stat_restart(void);
/* May the peer of connection fd read what the shim serves (same uid or root)? */
bool shim_peer_allowed(int fd);

/* preload_query.c: answer the requests of one connection to the query
 * socket "@uswap/PID/query" (query_proto.h) until it ends. */
void shim_query_serve(int fd);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Shared regions (USWAP_MAP_SHARED): memory backed by one memfd that
 * several processes map (forked children, and processes that map it from
 * the descriptor with uswap_map_fd), paged by uswap the same way for all.
 *
 * The memfd holds three parts, at offsets in this order:
 *   meta   struct shared_header, then per folio its state word (the folio
 *          lock of every mapper) and its blob length, then the zero map;
 *   data   the region itself, len bytes, mapped MAP_SHARED by each mapper;
 *   store  per folio a fixed window (a blob never exceeds it) where the
 *          folio's compressed blob is written while the folio is out.
 * Everything a mapper must agree on therefore lives in the file, and is
 * read by each mapper from its own mapping of the meta part.  Page
 * entries and slots are not used: a shared folio is stored whole, as one
 * blob in its window, or not at all.
 *
 * Eviction of folio f, by any mapper, holding f's lock (a word of meta):
 *   1. take the mapper table lock; refuse (EAGAIN) while a fork is
 *      pending (a child not yet in the table could write unseen);
 *   2. write-protect f in every mapper, with that mapper's userfaultfd
 *      (a duplicate taken with pidfd_getfd and kept): from then on a write
 *      anywhere faults and its handler waits for f's lock;
 *   3. read f through the descriptor, encode it, write the blob to f's
 *      window, record its zero pages and blob length;
 *   4. punch f out of the data part: the kernel drops the pages from every
 *      mapping; the next access anywhere is a missing fault;
 *   5. lift the write-protection, release the table, mark f OUT.
 * Swap-in, by the mapper that faults: under f's lock, read and decode the
 * blob and install it with UFFDIO_COPY into its own mapping: that puts the
 * pages in the memfd's page cache, so every other mapper sees them with no
 * fault of its own.  The window is punched (its memory freed).
 *
 * Lock order: folio word (shared) -> mapper table lock (shared).  Both are
 * futexes in the memfd; a thread waiting for one reads its instance's
 * pending userfaultfd events meanwhile (events_absorb): the holder may be
 * another process whose write-protect ioctl on our userfaultfd waits
 * (EAGAIN) for exactly those events to be read.
 */
#ifndef USWAP_SHARED_H
#define USWAP_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance.h"

#define SHARED_MAGIC 0x5253504157535355ull /* "USSWAPSR" */
#define SHARED_VERSION 3u
#define SHARED_MAPPERS_MAX 64

/* One process that maps the region, as every mapper sees it. */
struct shared_mapper {
	uint32_t pid;   /* 0 = free entry */
	int32_t ufd;    /* its userfaultfd: a descriptor number in process pid */
	uint64_t addr;  /* where pid maps the data part */
};

/* The start of the memfd.  Fields below table_lock change only under it,
 * except resident (atomic). */
struct shared_header {
	uint64_t magic;
	uint32_t version;
	uint32_t folio_order;
	uint64_t len;         /* bytes of the data part, whole folios */
	uint64_t meta_len;    /* bytes of the meta part (page multiple) */
	uint64_t window;      /* bytes of one folio's window in the store part */
	/* 0 free, else the pid of the process holding it (| TABLE_WAITERS):
	 * taking the lock names its holder in the same store, so a holder
	 * that dies can always be recognised and the lock taken over */
	uint32_t table_lock;
	uint32_t mapper_deaths; /* mappers found dead so far (see shared_folio_lock) */
	uint32_t pending_forks; /* forks whose child is not in the table yet */
	uint64_t pending_since; /* os_now_ns() of the last of them */
	uint64_t resident;    /* resident folios, atomic */
	struct shared_mapper mapper[SHARED_MAPPERS_MAX];
};
/* Every process updates the header's words with atomics on the shared
 * mapping: only lock-free ones work across processes. */
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0),
	       "64-bit atomics are lock-free (shared across processes)");

/* A process's own view of a shared region (struct region's sh). */
struct shared_region {
	int fd;                         /* the memfd (our own descriptor) */
	struct shared_header *hdr;      /* our mapping of the meta part */
	uint32_t *blob_len;             /* per folio, in the meta part */
	int self;                       /* our entry in hdr->mapper */
	bool unmapped;                  /* the program munmapped the data part */
	/* duplicates of the other mappers' userfaultfds (-1 = none yet),
	 * with the (pid, descriptor) they were taken from; under table_lock */
	int peer_fd[SHARED_MAPPERS_MAX];
	uint32_t peer_pid[SHARED_MAPPERS_MAX];
	int32_t peer_ufd[SHARED_MAPPERS_MAX];
};

/*
 * Make a region of a new memfd of len bytes (fd < 0) or of an existing
 * shared region's memfd (fd >= 0, len as its creator gave it), mapped and
 * registered in this process, and entered in its mapper table.  The region
 * is not in u's table yet (the caller inserts it).
 * @return 0 and *out; -EINVAL (not a shared region's memfd, a length or a
 *         folio size that does not match it) with a message; -ENOTSUP
 *         (write-protection of shared memory missing); -ENOSPC (64
 *         mappers already); -ENOMEM; the kernel's error.
 */
int shared_region_create(struct uswap *u, int fd, size_t len, struct region **out);
/* Leave the mapper table, unmap (unless the program did), free. */
void shared_region_destroy(struct uswap *u, struct region *r);
/* The program unmapped [start, end): @return true when that covers all of
 * shared region r (it is then forgotten without unmapping again). */
bool shared_region_unmapped(struct region *r, uint64_t start, uint64_t end);

/* A missing fault at addr of shared region r (a shard held). */
int shared_fault(struct uswap *u, struct folio_ctx *c, struct region *r, uint64_t addr);
/* A write-protect fault at addr of shared region r: a write that met an
 * eviction in progress (or its leftover protection). */
void shared_fault_wp(struct uswap *u, struct region *r, uint64_t addr);
/* Evict folio f of r, locked RESIDENT by the caller; on 0 the caller
 * unlocks it OUT (the shared resident count is already lowered).
 * @return 0; -EAGAIN (a fork in progress); -errno (the folio stays). */
int shared_evict(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f);
/* uswap_advise on folio f of shared region r (not locked).
 * PAGEOUT and WILLNEED work; PIN, UNPIN and FREE: -EINVAL. */
int shared_advise(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f, int advice);
/* uswap_pagemap words of pages [first, first+n) of folio f (locked, word). */
void shared_folio_words(const struct region *r, uint32_t f, uint32_t word, unsigned first,
			unsigned n, uint64_t *out);
/* Lock folio f of shared region r, waiting as shared.h says and taking
 * over a folio whose holder died.  @return the word before locking. */
uint32_t shared_folio_lock(struct uswap *u, struct region *r, uint32_t f);
/* Unlock it (folio_unlock_wake, and no longer its owner). */
void shared_folio_unlock(struct region *r, uint32_t f, enum folio_state to, uint32_t set,
			 uint32_t clear);
/* Resident folios of the shared regions u maps (a shard held). */
uint64_t shared_resident(struct uswap *u);
/* fork: the parent announces a child to every shared region (prefork);
 * the child enters itself in their tables once it has its userfaultfd. */
void shared_prefork(struct uswap *u);
void shared_postfork_child(struct uswap *u);

#endif

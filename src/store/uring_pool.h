/* SPDX-License-Identifier: MIT */
/*
 * Whole reads and writes through io_uring, for the file store.
 *
 * A pool of a few rings, each with its own lock: a thread takes a free ring
 * (or waits for one), submits one request, waits for its completion and
 * goes on where a short transfer stopped, so callers see a whole object or
 * an error.  After fork the child must not use the parent's rings (their
 * queues are memory shared with the parent): postfork_child makes new ones.
 */
#ifndef USWAP_URING_POOL_H
#define USWAP_URING_POOL_H

#include <stddef.h>
#include <stdint.h>

struct uring_pool;

/* Offset meaning "the file's position" (pipes, for tests). */
#define URING_POS_CURRENT UINT64_MAX

/* @return 0 and *out; -errno (message via errmsg: io_uring unavailable) */
int uring_pool_open(unsigned nrings, struct uring_pool **out);
void uring_pool_close(struct uring_pool *p);
/*
 * Read len bytes at off (or the position) of fd into buf, going on after
 * short reads.  @return the bytes read: len, or fewer at end of file;
 * -errno from the kernel.
 */
long uring_pool_read(struct uring_pool *p, int fd, void *buf, size_t len, uint64_t off);
/* Write len bytes, going on after short writes.  @return len; -errno
 * (-ENOSPC when the filesystem is full, also after a part was written). */
long uring_pool_write(struct uring_pool *p, int fd, const void *buf, size_t len, uint64_t off);
/*
 * The same for a file open with O_DIRECT: buf, len and off are multiples of
 * align (the filesystem's direct I/O alignment).  A short transfer that
 * stops off a multiple of align is not taken up there (the kernel would
 * refuse it): a read ends (end of file: the count may be below len), a
 * write is taken up at the multiple before.
 */
long uring_pool_read_direct(struct uring_pool *p, int fd, void *buf, size_t len, uint64_t off,
			    size_t align);
long uring_pool_write_direct(struct uring_pool *p, int fd, const void *buf, size_t len,
			     uint64_t off, size_t align);
/* Fork hooks: take every ring's lock / release them / make new rings (a
 * failure leaves the pool without rings: every call then gives -EIO). */
void uring_pool_prefork(struct uring_pool *p);
void uring_pool_postfork_parent(struct uring_pool *p);
void uring_pool_postfork_child(struct uring_pool *p);

#endif

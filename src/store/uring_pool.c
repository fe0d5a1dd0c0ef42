/* SPDX-License-Identifier: MIT */
/* Whole reads and writes through a pool of io_uring rings. */
#include "uring_pool.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>

#include "../core/errmsg.h"
#include "../os/os.h"

#define URING_POOL_MAX 8
#define URING_DEPTH 4

struct uring_slot {
	pthread_mutex_t lock;
	struct io_uring ring;
	bool ready;
};

struct uring_pool {
	unsigned n;
	struct uring_slot slot[URING_POOL_MAX];
};

static int slot_setup(struct uring_slot *s)
{
	int rc = io_uring_queue_init(URING_DEPTH, &s->ring, 0);

	s->ready = rc == 0;
	return rc;
}

int uring_pool_open(unsigned nrings, struct uring_pool **out)
{
	struct uring_pool *p = os_mem_map(sizeof(*p));
	unsigned i;
	int rc;

	if (!p)
		return -ENOMEM;
	if (nrings < 1)
		nrings = 1;
	p->n = nrings > URING_POOL_MAX ? URING_POOL_MAX : nrings;
	for (i = 0; i < p->n; i++) {
		pthread_mutex_init(&p->slot[i].lock, NULL);
		rc = slot_setup(&p->slot[i]);
		if (rc) {
			p->n = i;
			uring_pool_close(p);
			return errmsg_set(rc, "io_uring is not available (%s): the file store needs "
					      "it (Linux 5.6 or later, not disabled by "
					      "kernel.io_uring_disabled)",
					  strerror(-rc));
		}
	}
	*out = p;
	return 0;
}

void uring_pool_close(struct uring_pool *p)
{
	unsigned i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++) {
		if (p->slot[i].ready)
			io_uring_queue_exit(&p->slot[i].ring);
		pthread_mutex_destroy(&p->slot[i].lock);
	}
	os_mem_unmap(p, sizeof(*p));
}

/* A ring for this thread: a free one, else the one of its CPU. */
static struct uring_slot *slot_take(struct uring_pool *p)
{
	int cpu = sched_getcpu();
	unsigned first = cpu > 0 ? (unsigned)cpu % p->n : 0, i;

	for (i = 0; i < p->n; i++) {
		struct uring_slot *s = &p->slot[(first + i) % p->n];

		if (pthread_mutex_trylock(&s->lock) == 0)
			return s;
	}
	pthread_mutex_lock(&p->slot[first].lock);
	return &p->slot[first];
}

/* One request, waited for.  @return the completion's result. */
static int slot_io(struct uring_slot *s, bool write, int fd, void *buf, unsigned len,
		   uint64_t off)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int rc;

	if (!s->ready)
		return -EIO;
	sqe = io_uring_get_sqe(&s->ring);
	if (!sqe)
		return -EBUSY; /* cannot happen: one request at a time per ring */
	if (write)
		io_uring_prep_write(sqe, fd, buf, len, off);
	else
		io_uring_prep_read(sqe, fd, buf, len, off);
	do
		rc = io_uring_submit_and_wait(&s->ring, 1);
	while (rc == -EINTR);
	if (rc < 0)
		return rc;
	do
		rc = io_uring_wait_cqe(&s->ring, &cqe);
	while (rc == -EINTR);
	if (rc < 0)
		return rc;
	rc = cqe->res;
	io_uring_cqe_seen(&s->ring, cqe);
	return rc;
}

/*
 * The whole transfer, going on after short ones.  align > 1 is direct I/O
 * (O_DIRECT): every request must start at a multiple of align, so a short
 * transfer that stops between two multiples is taken up again at the
 * multiple before it (a write rewrites those few bytes) or, for a read,
 * ends the transfer: direct reads come back short only at end of file.
 */
static long pool_rw(struct uring_pool *p, bool write, int fd, char *buf, size_t len,
		    uint64_t off, size_t align)
{
	struct uring_slot *s = slot_take(p);
	size_t done = 0;
	long rc = 0;

	while (done < len) {
		size_t chunk = len - done > (1u << 30) ? (1u << 30) : len - done;
		int n = slot_io(s, write, fd, buf + done, (unsigned)chunk,
				off == URING_POS_CURRENT ? off : off + done);
		size_t aligned;

		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n < 0) {
			rc = n;
			break;
		}
		if (n == 0) {
			/* end of file; a write that makes no progress: full */
			rc = write ? -ENOSPC : 0;
			break;
		}
		if ((size_t)n == chunk || (done + (size_t)n) % align == 0) {
			done += (size_t)n;
			continue;
		}
		if (!write) {
			done += (size_t)n;
			break;
		}
		aligned = (done + (size_t)n) / align * align;
		if (aligned == done) {
			rc = -ENOSPC; /* not one aligned block more: full */
			break;
		}
		done = aligned;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		return rc;
	return (long)done;
}

long uring_pool_read(struct uring_pool *p, int fd, void *buf, size_t len, uint64_t off)
{
	return pool_rw(p, false, fd, buf, len, off, 1);
}

long uring_pool_write(struct uring_pool *p, int fd, const void *buf, size_t len, uint64_t off)
{
	/* the buffer is only read: io_uring_prep_write takes a const pointer */
	return pool_rw(p, true, fd, (char *)(uintptr_t)buf, len, off, 1);
}

long uring_pool_read_direct(struct uring_pool *p, int fd, void *buf, size_t len, uint64_t off,
			    size_t align)
{
	return pool_rw(p, false, fd, buf, len, off, align);
}

long uring_pool_write_direct(struct uring_pool *p, int fd, const void *buf, size_t len,
			     uint64_t off, size_t align)
{
	return pool_rw(p, true, fd, (char *)(uintptr_t)buf, len, off, align);
}

void uring_pool_prefork(struct uring_pool *p)
{
	unsigned i;

	for (i = 0; i < p->n; i++)
		pthread_mutex_lock(&p->slot[i].lock);
}

void uring_pool_postfork_parent(struct uring_pool *p)
{
	unsigned i;

	for (i = p->n; i > 0; i--)
		pthread_mutex_unlock(&p->slot[i - 1].lock);
}

void uring_pool_postfork_child(struct uring_pool *p)
{
	unsigned i;

	for (i = 0; i < p->n; i++) {
		struct uring_slot *s = &p->slot[i];

		/* taken by prefork in the thread that forked, the one we are */
		pthread_mutex_unlock(&s->lock);
		if (s->ready) {
			/* the parent's queues: unmap our view and close our
			 * descriptor; the parent keeps its ring */
			io_uring_queue_exit(&s->ring);
			s->ready = false;
		}
		slot_setup(s);
	}
}

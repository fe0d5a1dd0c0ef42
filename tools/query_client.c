/* SPDX-License-Identifier: MIT */
/*
 * The client side of the shim's query socket "@uswap/PID/query" (the
 * protocol: src/preload/query_proto.h): connect, list the regions, read
 * the pagemap of a range in chunks.  Every reply is checked against the
 * request before anything is taken from it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "query_client.h"

#define CLIENT_TIMEOUT_SECONDS 10

__attribute__((format(printf, 3, 4))) static int fail(struct query_conn *c, int err,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return err;
}

/* Connect a socket of type to the abstract name fmt of pid.  @return fd or -errno. */
static int connect_abstract(int type, const char *fmt, int pid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0), n, rc;

	if (fd < 0)
		return -errno;
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, fmt, pid);
	if (connect(fd, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n))) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int query_connect(struct query_conn *c, int pid)
{
	struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_SECONDS};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd, stat_fd;

	c->pid = pid;
	c->fd = -1;
	c->answered = false;
	fd = connect_abstract(SOCK_SEQPACKET, QUERY_SOCKET_FMT, pid);
	if (fd < 0) {
		/* a shim older than the query protocol serves only counters */
		stat_fd = connect_abstract(SOCK_STREAM, "uswap/%d", pid);
		if (stat_fd >= 0) {
			close(stat_fd);
			return fail(c, -EPROTONOSUPPORT,
				    "process %d runs an older uswap shim: it serves counters "
				    "(uswap stat) but no pagemap; run the program again under "
				    "this version's uswap run",
				    pid);
		}
		return fail(c, -ESRCH,
			    "process %d serves no uswap pagemap: it does not run under uswap "
			    "run, or it has ended",
			    pid);
	}
	/* the server must be the process asked about, not one that took its name */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.pid != pid) {
		close(fd);
		return fail(c, -EPERM, "the query socket of process %d is served by process %d",
			    pid, (int)cred.pid);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->fd = fd;
	return 0;
}

void query_close(struct query_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* The connection was closed: a refusal before the first answer, the end of
 * the process (or its server) after. */
static int refused(struct query_conn *c)
{
	if (c->answered)
		return fail(c, -ECONNRESET,
			    "process %d ended, or stopped serving, while its pagemap "
			    "was read",
			    c->pid);
	return fail(c, -EACCES,
		    "process %d did not answer: only its own user and root may read its pagemap",
		    c->pid);
}

/*
 * Send req and receive its reply into c->buf.  @return the payload's item
 * count (checked: at most max, the message exactly header + count items of
 * item_size), or -errno with c->error set (the server's message for its
 * own errors).
 */
static long long exchange(struct query_conn *c, const struct query_request *req, size_t max,
			  size_t item_size)
{
	struct query_reply rep;
	ssize_t n;

	/* a server that refuses the peer closes the connection at once: the
	 * send or the receive sees it */
	if (send(c->fd, req, sizeof(*req), MSG_NOSIGNAL) != (ssize_t)sizeof(*req)) {
		if (errno == EPIPE || errno == ECONNRESET)
			return refused(c);
		return fail(c, -EIO, "cannot send a query to process %d: %s", c->pid,
			    strerror(errno));
	}
	do
		n = recv(c->fd, c->buf, sizeof(c->buf), MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return fail(c, -ETIMEDOUT, "process %d did not answer within %d s", c->pid,
			    CLIENT_TIMEOUT_SECONDS);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return refused(c);
	if (n < 0)
		return fail(c, -EIO, "cannot read the answer of process %d: %s", c->pid,
			    strerror(errno));
	if ((size_t)n < 2 * sizeof(uint32_t) || (size_t)n > sizeof(c->buf))
		return fail(c, -EPROTO, "process %d answered with a message of %zd bytes", c->pid,
			    n);
	memcpy(&rep, c->buf, 2 * sizeof(uint32_t));
	if (rep.magic != QUERY_MAGIC)
		return fail(c, -EPROTO,
			    "process %d answered something that is not a uswap query reply",
			    c->pid);
	if (rep.version != QUERY_VERSION)
		return fail(c, -EPROTONOSUPPORT,
			    "process %d's uswap shim speaks query protocol version %u; this uswap "
			    "speaks version %u: use the uswap the program was started with",
			    c->pid, rep.version, QUERY_VERSION);
	if ((size_t)n < sizeof(rep))
		return fail(c, -EPROTO, "process %d answered with a short reply of %zd bytes",
			    c->pid, n);
	memcpy(&rep, c->buf, sizeof(rep));
	if (rep.op != req->op)
		return fail(c, -EPROTO, "process %d answered query %u with a reply to query %u",
			    c->pid, req->op, rep.op);
	if (rep.status) {
		size_t len = (size_t)n - sizeof(rep);

		if (rep.status > 0 || len >= sizeof(c->error))
			return fail(c, -EPROTO, "process %d answered with a bad error reply",
				    c->pid);
		return fail(c, rep.status, "process %d: %.*s", c->pid, (int)len,
			    (const char *)c->buf + sizeof(rep));
	}
	if (rep.count > max || (size_t)n != sizeof(rep) + rep.count * item_size)
		return fail(c, -EPROTO, "process %d answered with %llu items in %zd bytes", c->pid,
			    (unsigned long long)rep.count, n);
	if (!rep.page_size || !rep.folio_size || rep.folio_size % rep.page_size ||
	    rep.folio_size / rep.page_size > QUERY_MAX_PAGES)
		return fail(c, -EPROTO,
			    "process %d answered with page size %llu and folio size %llu", c->pid,
			    (unsigned long long)rep.page_size, (unsigned long long)rep.folio_size);
	c->answered = true;
	c->page_size = rep.page_size;
	c->folio_size = rep.folio_size;
	return (long long)rep.count;
}

int query_regions(struct query_conn *c, uint64_t from, struct query_region *out, size_t *n)
{
	struct query_request req = {QUERY_MAGIC, QUERY_VERSION, QUERY_REGIONS, 0, from, 0};
	long long got = exchange(c, &req, QUERY_MAX_REGIONS, sizeof(*out));

	if (got < 0)
		return (int)got;
	memcpy(out, c->buf + sizeof(struct query_reply), (size_t)got * sizeof(*out));
	*n = (size_t)got;
	return 0;
}

int query_pagemap(struct query_conn *c, uint64_t addr, size_t npages, uint64_t *out)
{
	struct query_request req = {QUERY_MAGIC, QUERY_VERSION, QUERY_PAGEMAP, 0, addr, npages};
	long long got = exchange(c, &req, npages, sizeof(*out));

	if (got < 0)
		return (int)got;
	if ((size_t)got != npages)
		return fail(c, -EPROTO, "process %d answered %lld pages of %zu", c->pid, got,
			    npages);
	memcpy(out, c->buf + sizeof(struct query_reply), npages * sizeof(*out));
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The query socket "@uswap/PID/query": the region list and the pagemap of
 * the program's managed memory for `uswap pagemap PID` (the protocol is in
 * query_proto.h).  The counters' server thread (preload_stat.c) accepts the
 * connections and calls shim_query_serve; everything it reads and sends
 * lives on that thread's stack, never in managed memory.
 */
#include "preload.h"
#include "query_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define QUERY_PAGE_SIZE 4096u

static bool reply_send(int fd, const struct query_request *req, int status, const void *payload,
		       size_t count, size_t item_size)
{
	struct query_reply rep = {
		.magic = QUERY_MAGIC,
		.version = QUERY_VERSION,
		.op = req->op,
		.status = status,
		.page_size = QUERY_PAGE_SIZE,
		.folio_size = shim_folio,
		.count = count,
	};
	struct iovec iov[2] = {{&rep, sizeof(rep)}, {(void *)payload, count * item_size}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};

	return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)(sizeof(rep) + count * item_size);
}

/* An error reply: status and a message naming the value and what is allowed. */
__attribute__((format(printf, 4, 5))) static bool
reply_error(int fd, const struct query_request *req, int status, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(text))
		n = sizeof(text) - 1;
	return reply_send(fd, req, status, text, (size_t)n, 1);
}

static bool regions_reply(int fd, const struct query_request *req)
{
	struct query_region list[QUERY_MAX_REGIONS];
	uintptr_t at = (uintptr_t)req->addr;
	size_t n = 0;

	while (n < QUERY_MAX_REGIONS) {
		void *start;
		size_t len;

		if (uswap_region_find(shim_u, (void *)at, &start, &len))
			break;
		list[n].start = (uintptr_t)start;
		list[n].len = len;
		n++;
		at = (uintptr_t)start + len;
	}
	return reply_send(fd, req, 0, list, n, sizeof(list[0]));
}

static bool pagemap_reply(int fd, const struct query_request *req)
{
	uint64_t words[QUERY_MAX_PAGES];
	int rc;

	if (req->npages < 1 || req->npages > QUERY_MAX_PAGES)
		return reply_error(fd, req, -EINVAL,
				   "pagemap request of %llu pages: ask for 1 to %u at a time",
				   (unsigned long long)req->npages, QUERY_MAX_PAGES);
	rc = uswap_pagemap(shim_u, (const void *)(uintptr_t)req->addr, (size_t)req->npages, words);
	if (rc)
		return reply_error(fd, req, rc, "%s", uswap_last_error());
	return reply_send(fd, req, 0, words, (size_t)req->npages, sizeof(words[0]));
}

/* Answer one request.  @return false when the connection is to end: after
 * an error reply to a request that is not of this version. */
static bool request_serve(int fd, const struct query_request *req, ssize_t len)
{
	if (len < (ssize_t)(2 * sizeof(uint32_t)) || req->magic != QUERY_MAGIC) {
		reply_error(fd, req, -EPROTO, "not a uswap query (bad magic word)");
		return false;
	}
	if (req->version != QUERY_VERSION) {
		reply_error(fd, req, -EPROTONOSUPPORT,
			    "the request is of query protocol version %u; this process's "
			    "uswap shim speaks version %u",
			    req->version, QUERY_VERSION);
		return false;
	}
	if (len != (ssize_t)sizeof(*req)) {
		reply_error(fd, req, -EPROTO, "a version %u request of %zd bytes: expected %zu",
			    QUERY_VERSION, len, sizeof(*req));
		return false;
	}
	switch (req->op) {
	case QUERY_REGIONS:
		return regions_reply(fd, req);
	case QUERY_PAGEMAP:
		return pagemap_reply(fd, req);
	default:
		return reply_error(fd, req, -EINVAL, "unknown query %u: expected %u or %u", req->op,
				   QUERY_REGIONS, QUERY_PAGEMAP);
	}
}

void shim_query_serve(int fd)
{
	struct timeval idle = {.tv_sec = QUERY_IDLE_SECONDS};

	if (!shim_peer_allowed(fd))
		return;
	/* a client that stops reading or asking must not hold the server */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &idle, sizeof(idle));
	for (;;) {
		struct query_request req = {0};
		ssize_t len = recv(fd, &req, sizeof(req), MSG_TRUNC);

		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0 || !request_serve(fd, &req, len))
			return;
	}
}

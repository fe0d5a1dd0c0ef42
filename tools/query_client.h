/* SPDX-License-Identifier: MIT */
/*
 * Client of the query socket a program running under `uswap run` serves
 * (protocol: src/preload/query_proto.h).  Every function returns 0 or a
 * negative errno; after a failure c->error says what happened, naming the
 * process and the value.
 */
#ifndef USWAP_QUERY_CLIENT_H
#define USWAP_QUERY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "preload/query_proto.h"

struct query_conn {
	int fd;
	int pid;
	bool answered; /* a reply has come */
	uint64_t page_size;  /* from the last reply */
	uint64_t folio_size; /* from the last reply */
	char error[512];
	/* the largest reply: a pagemap chunk */
	unsigned char buf[sizeof(struct query_reply) + QUERY_MAX_PAGES * sizeof(uint64_t)];
};

/* Connect to process pid.  -EPROTONOSUPPORT: its shim predates the query
 * socket; -ESRCH: it serves nothing (not under uswap run, or gone). */
int query_connect(struct query_conn *c, int pid);
void query_close(struct query_conn *c);

/* The regions at or above address from, lowest first: *n of them, at most
 * QUERY_MAX_REGIONS (ask again from the end of the last for more). */
int query_regions(struct query_conn *c, uint64_t from, struct query_region *out, size_t *n);

/* The uswap_pagemap words of npages (1 to QUERY_MAX_PAGES) pages from addr,
 * inside one region.  -EINVAL when they are not (the region may have been
 * unmapped since it was listed). */
int query_pagemap(struct query_conn *c, uint64_t addr, size_t npages, uint64_t *out);

#endif

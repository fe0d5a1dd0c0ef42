/* SPDX-License-Identifier: MIT */
/*
 * The query protocol of the LD_PRELOAD shim: what `uswap pagemap PID` asks
 * a program running under `uswap run`, and what the shim answers.  This
 * header is the whole contract between src/preload/preload_query.c (the
 * server) and tools/query_client.c (the client); it uses no other part of
 * uswap.
 *
 * Transport: the abstract Unix socket "@uswap/PID/query", SOCK_SEQPACKET
 * (one request or reply per message), beside the counters' socket
 * "@uswap/PID" (SOCK_STREAM, which reads nothing from its peers and keeps
 * its old behaviour for old clients).  Only peers whose SO_PEERCRED uid is
 * the program's or root are answered; others are disconnected unanswered.
 *
 * Bounded: the client first lists the regions (at most
 * QUERY_MAX_REGIONS per reply: ask again from the end of the last one),
 * then asks for the pagemap of a range in chunks of at most
 * QUERY_MAX_PAGES pages, so no reply grows with the size of a region.
 * A connection serves requests until the client closes it or stays silent
 * for QUERY_IDLE_SECONDS.
 *
 * Versioned: every request and reply starts with the magic word and the
 * version of its sender, and every later version must keep those two
 * fields first.  A server that does not speak the request's version
 * replies with its own version and -EPROTONOSUPPORT; the client checks
 * the reply's version the same way, so an old/new mismatch on either side
 * ends in a message naming both versions.  (A shim older than this
 * protocol has no query socket at all: the client tells that apart by the
 * counters' socket, which it still serves.)
 */
#ifndef USWAP_QUERY_PROTO_H
#define USWAP_QUERY_PROTO_H

#include <stdint.h>

#define QUERY_MAGIC 0x51575355u /* "USWQ" in memory order (little endian) */
#define QUERY_VERSION 1u
#define QUERY_SOCKET_FMT "uswap/%d/query" /* abstract: after a NUL byte */
#define QUERY_MAX_REGIONS 256u
#define QUERY_MAX_PAGES 8192u /* a multiple of the largest folio (512 pages) */
#define QUERY_IDLE_SECONDS 5

enum query_op {
	QUERY_REGIONS = 1, /* regions at or above addr: struct query_region[] */
	QUERY_PAGEMAP = 2, /* uswap_pagemap words of npages pages from addr */
};

struct query_request {
	uint32_t magic;	   /* QUERY_MAGIC */
	uint32_t version;  /* QUERY_VERSION of the client */
	uint32_t op;	   /* enum query_op */
	uint32_t reserved; /* 0 */
	uint64_t addr;	   /* REGIONS: list from here up; PAGEMAP: first page */
	uint64_t npages;   /* PAGEMAP: 1 to QUERY_MAX_PAGES, inside one region */
};

struct query_reply {
	uint32_t magic;	     /* QUERY_MAGIC */
	uint32_t version;    /* QUERY_VERSION of the server */
	uint32_t op;	     /* the request's op */
	int32_t status;	     /* 0, or -errno: the payload is then a message */
	uint64_t page_size;  /* bytes */
	uint64_t folio_size; /* bytes: the folio of every region */
	uint64_t count;	     /* regions or words that follow (0 to the max);
				with an error, the bytes of the message */
};

struct query_region {
	uint64_t start; /* address */
	uint64_t len;	/* bytes, whole folios */
};

#endif

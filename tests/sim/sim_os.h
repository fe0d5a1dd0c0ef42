/* SPDX-License-Identifier: MIT */
/* The fake OS layer's controls, for the simulation tests (fake_os.c). */
#ifndef USWAP_SIM_OS_H
#define USWAP_SIM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_POISON_BYTE 0xdb

enum sim_page { SIM_ABSENT = 0, SIM_PRESENT, SIM_ZERO, SIM_POISONED };

/* The fake's view of the page at addr (any address outside registered
 * ranges is SIM_PRESENT). */
enum sim_page sim_os_page(const void *addr);
/* Is the page write-protected (a write would be a write-protect fault)? */
bool sim_os_wp(const void *addr);
/* The program drops pages (MADV_DONTNEED behind uswap's back). */
void sim_os_drop(void *addr, size_t len);
/* A write to a zero-page mapping makes it a page of its own (COW). */
void sim_os_cow(void *addr);

/* Countdowns: the n-th next operation of that kind fails (0 = never). */
struct sim_inject {
	int move_ebusy_in;  /* UFFDIO_MOVE fails with EBUSY (pinned page) */
	int eagain_in;      /* any resolving op fails with EAGAIN (mm changing) */
	int copy_enomem_in; /* UFFDIO_COPY fails with ENOMEM */
	int move_underreport_in; /* UFFDIO_MOVE moves all, reports a page less */
	int eagain_times;   /* the next n resolving ops all fail with EAGAIN */
	int eagain_after;   /* ... once this many more have succeeded */
	/* a racing resolution: the first page is installed as asked, and the
	 * op reports EEXIST (as when another thread got there first) */
	int copy_eexist_in;
	int zero_eexist_in;
	int map_enomem_in;  /* os_mem_map / os_mem_map_aligned return NULL */
	/* an event is pending: resolving ops fail with EAGAIN (after
	 * eagain_after successes) until someone reads the userfaultfd */
	int eagain_until_read;
};
void sim_os_inject(const struct sim_inject *in);

struct sim_os_stats {
	uint64_t copies, zeropages, moves, poisoned; /* pages */
	uint64_t move_calls; /* UFFDIO_MOVE calls */
};
void sim_os_stats(struct sim_os_stats *s);

#endif

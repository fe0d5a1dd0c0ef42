/* SPDX-License-Identifier: MIT */
/*
 * Realistic page contents for the demo, the tests and the benchmarks.
 *
 * Each page's kind and bytes are a pure function of (seed, page index,
 * version), so a program can regenerate what a page must hold instead of
 * keeping a shadow copy.  The mix, per the benchmark issue: about 15% zero,
 * 10% random (incompressible), 30% text/logs, 25% integer arrays, 20% small
 * records.  Zero pages come in short runs, as they do in real heaps.
 */
#ifndef USWAP_PAGEGEN_H
#define USWAP_PAGEGEN_H

#include <stddef.h>
#include <stdint.h>

enum page_mix_kind { MIX_ZERO, MIX_RANDOM, MIX_TEXT, MIX_INTS, MIX_RECORDS, MIX_KINDS };

extern const char *const page_mix_names[MIX_KINDS];

/* The kind of page idx under seed. */
enum page_mix_kind pagegen_kind(uint64_t seed, uint64_t idx);
/* Fill one 4 KiB page with the contents of (seed, idx, version). */
void pagegen_fill(void *page, uint64_t seed, uint64_t idx, uint64_t version);
/* A 64-bit hash of a 4 KiB page (for checksums of what was read). */
uint64_t pagegen_hash(const void *page);

#endif

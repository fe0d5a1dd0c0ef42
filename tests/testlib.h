/* SPDX-License-Identifier: MIT */
/* Helpers shared by the tests: a seeded PRNG and cmocka glue. */
#ifndef USWAP_TESTLIB_H
#define USWAP_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* xorshift64*: deterministic, seeded from USWAP_TEST_SEED or the given
 * default; the seed in use is printed so that a failure can be replayed. */
struct rng {
	uint64_t s;
};
void rng_seed(struct rng *r, uint64_t dflt);
uint64_t rng_next(struct rng *r);
/* uniform in [0, n) */
uint64_t rng_below(struct rng *r, uint64_t n);

/*
 * Integration tests: open an instance or, when this kernel or process
 * cannot use userfaultfd, say loudly which feature is missing and exit 77
 * (CTest's skip; CI fails on any skip, since its machine has them all).
 */
struct uswap_config;
struct uswap;
struct uswap *itest_open(const struct uswap_config *cfg);

/* Pages of [addr, addr+len) holding their own memory (PAGEMAP_SCAN). */
long itest_resident_pages(void *addr, size_t len);
/* A counter of u (fails the test for an unknown name). */
uint64_t itest_stat(struct uswap *u, const char *name);
/* Compare len bytes (whole pages) with their shadow; fail at the first
 * difference, naming the byte and page. */
void itest_assert_same(const char *mem, const char *shadow, size_t len);

#endif

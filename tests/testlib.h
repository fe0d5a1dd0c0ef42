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

#endif

/* SPDX-License-Identifier: MIT */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>

void rng_seed(struct rng *r, uint64_t dflt)
{
	const char *env = getenv("USWAP_TEST_SEED");

	r->s = env ? strtoull(env, NULL, 0) : dflt;
	if (r->s == 0)
		r->s = 0x9e3779b97f4a7c15ull;
	fprintf(stderr, "# seed %llu (set USWAP_TEST_SEED to replay)\n", (unsigned long long)r->s);
}

uint64_t rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

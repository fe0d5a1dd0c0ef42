/* SPDX-License-Identifier: MIT */
/*
 * The staging rings (runtime/folio_ctx.c) keep the pages of recent
 * evictions until they are dropped together.  Evicted data must not linger
 * there: once the reclaimer and the handler threads have nothing to do, no
 * page of any ring is resident (mincore, the kernel's own view), while
 * every byte of the region still reads as written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testlib.h"
#include "pagegen.h"
#include "runtime/instance.h"
#include "uswap.h"

#define PAGE   4096ul
#define FOLIO  (64ul << 10)
#define LIMIT  (8ul << 20)
#define REGION (48ul << 20)

static uint64_t stat_of(uswap_t *u, const char *name)
{
	uint64_t v;

	assert_int_equal(uswap_stat(u, name, &v), 0);
	return v;
}

/* Resident pages of c's staging ring, as the kernel counts them. */
static size_t ring_resident(const struct folio_ctx *c)
{
	size_t len = (size_t)c->staging_n * FOLIO, n = 0;
	unsigned char *vec = malloc(len / PAGE);

	assert_non_null(vec);
	if (mincore(c->staging, len, vec))
		fail_msg("mincore of the staging ring at %p: %s", (void *)c->staging,
			 strerror(errno));
	for (size_t i = 0; i < len / PAGE; i++)
		n += vec[i] & 1;
	free(vec);
	return n;
}

static size_t rings_resident(struct uswap *u)
{
	size_t n = ring_resident(&u->reclaim_ctx);

	for (unsigned i = 0; i < u->nworkers; i++)
		n += ring_resident(&u->workers[i].ctx);
	return n;
}

static void test_rings_empty_when_idle(void **state)
{
	struct uswap_config cfg = { .limit = LIMIT, .folio_size = FOLIO };
	char *mem, *shadow = malloc(REGION);
	uswap_t *u;
	size_t p, pages = REGION / PAGE, left = 0;
	uint64_t evicted;

	(void)state;
	assert_non_null(shadow);
	if (uswap_open(&cfg, &u))
		fail_msg("uswap_open: %s", uswap_last_error());
	assert_true(u->reclaim_ctx.staging_n > 1);
	assert_int_equal(uswap_map(u, REGION, 0, (void **)&mem), 0);
	for (p = 0; p < pages; p++) {
		pagegen_fill(shadow + p * PAGE, 3, p, p * 7 + 1);
		memcpy(mem + p * PAGE, shadow + p * PAGE, PAGE);
	}
	/* random order: faults, direct and background reclaim all at once */
	for (p = 0; p < pages; p++) {
		size_t q = (p * 7919) % pages;

		if (memcmp(mem + q * PAGE, shadow + q * PAGE, PAGE))
			fail_msg("page %zu reads wrong after its swap-out", q);
	}
	evicted = stat_of(u, "reclaim_background") + stat_of(u, "reclaim_direct");
	/* far more evictions than one ring holds: it was used up many times */
	assert_true(evicted > 4ull * u->reclaim_ctx.staging_n);
	/* idle: the reclaimer sleeps, each handler's poll times out (100 ms) */
	for (int tries = 0; tries < 50 && (left = rings_resident(u)); tries++)
		usleep(100 * 1000);
	if (left)
		fail_msg("%zu pages of evicted folios still in the staging rings after 5 s idle",
			 left);
	fprintf(stderr, "# %llu folios evicted through rings of %u folios; none left when idle\n",
		(unsigned long long)evicted, u->reclaim_ctx.staging_n);
	for (p = 0; p < pages; p++)
		if (memcmp(mem + p * PAGE, shadow + p * PAGE, PAGE))
			fail_msg("page %zu reads wrong at the end", p);
	assert_int_equal(uswap_unmap(u, mem, REGION), 0);
	uswap_close(u);
	free(shadow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rings_empty_when_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

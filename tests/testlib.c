/* SPDX-License-Identifier: MIT */
#include "testlib.h"
#include "pagegen.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "uswap.h"
#include "os/os.h"

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

struct uswap *itest_open(const struct uswap_config *cfg)
{
	uswap_t *u = NULL;
	int rc = uswap_open(cfg, &u);

	if (rc == -EPERM || rc == -ENOSYS || rc == -ENOTSUP) {
		fprintf(stderr, "SKIP: this machine lacks a kernel feature uswap needs: %s\n",
			uswap_last_error());
		exit(77);
	}
	if (rc) {
		fprintf(stderr, "uswap_open: %s (%s)\n", uswap_strerror(rc), uswap_last_error());
		abort();
	}
	return u;
}

long itest_resident_pages(void *addr, size_t len)
{
	long n = os_resident_pages(addr, len);

	if (n < 0) {
		fprintf(stderr, "SKIP: PAGEMAP_SCAN is not available: %ld\n", n);
		exit(77);
	}
	return n;
}

uint64_t itest_stat(struct uswap *u, const char *name)
{
	uint64_t v = 0;

	assert_int_equal(uswap_stat(u, name, &v), 0);
	return v;
}

static void *watch_main(void *arg)
{
	struct itest_watch *w = arg;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		uint64_t r = itest_stat(w->u, w->name);

		if (r > w->max)
			w->max = r;
		w->samples++;
	}
	return NULL;
}

void itest_watch_start(struct itest_watch *w, struct uswap *u, const char *name)
{
	*w = (struct itest_watch){ .u = u, .name = name };
	assert_int_equal(pthread_create(&w->thread, NULL, watch_main, w), 0);
}

void itest_watch_stop(struct itest_watch *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(w->thread, NULL), 0);
	assert_true(w->samples > 0);
}

void itest_assert_same(const char *mem, const char *shadow, size_t len)
{
	size_t i;

	for (i = 0; i < len; i += 4096) {
		if (memcmp(mem + i, shadow + i, 4096)) {
			size_t j = i;

			while (mem[j] == shadow[j])
				j++;
			fail_msg("byte %zu (page %zu) is 0x%02x, expected 0x%02x", j, j / 4096,
				 (unsigned char)mem[j], (unsigned char)shadow[j]);
		}
	}
}

void itest_fill_pages(char *mem, size_t pages, uint64_t seed, const uint64_t *ver)
{
	for (size_t i = 0; i < pages; i++)
		pagegen_fill(mem + i * 4096, seed, i, ver[i]);
}

long itest_first_bad_page(const char *mem, size_t pages, uint64_t seed, const uint64_t *ver)
{
	char want[4096];

	for (size_t i = 0; i < pages; i++) {
		pagegen_fill(want, seed, i, ver[i]);
		if (memcmp(mem + i * 4096, want, 4096))
			return (long)i;
	}
	return -1;
}

void itest_assert_pages(const char *mem, size_t pages, uint64_t seed, const uint64_t *ver)
{
	long bad = itest_first_bad_page(mem, pages, seed, ver);

	if (bad >= 0)
		fail_msg("page %ld reads wrong", bad);
}

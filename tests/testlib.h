/* SPDX-License-Identifier: MIT */
/* Helpers shared by the tests: a seeded PRNG and cmocka glue. */
#ifndef USWAP_TESTLIB_H
#define USWAP_TESTLIB_H

#include <pthread.h>
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
/* A thread reading u's counter name (resident_bytes,
 * shared_resident_bytes) without pause, from start to stop: the most it
 * saw and how many times it looked (a budget kept only on average shows
 * here). */
struct itest_watch {
	struct uswap *u;
	const char *name;
	int stop;
	uint64_t max, samples;
	pthread_t thread;
};
void itest_watch_start(struct itest_watch *w, struct uswap *u, const char *name);
void itest_watch_stop(struct itest_watch *w);
/* Compare len bytes (whole pages) with their shadow; fail at the first
 * difference, naming the byte and page. */
void itest_assert_same(const char *mem, const char *shadow, size_t len);

/* Pages whose bytes are a pure function of (seed, page, version) (the page
 * generator), so that a test, its forked children and its threads know what
 * every page must read without a shadow: fill pages [0, pages) at ver[i],
 * find the first page that differs (-1: none), or fail the test on it. */
void itest_fill_pages(char *mem, size_t pages, uint64_t seed, const uint64_t *ver);
long itest_first_bad_page(const char *mem, size_t pages, uint64_t seed, const uint64_t *ver);
void itest_assert_pages(const char *mem, size_t pages, uint64_t seed, const uint64_t *ver);

/*
 * TESTLIB_TSAN_DEFAULTS("opt=v:..."), at file scope: ThreadSanitizer
 * options for one test (the environment's TSAN_OPTIONS still win).
 *  - detect_deadlocks=0: TSan's lock-order checker tracks at most 64 locks
 *    held by one thread; the fork hooks and the ram store's checker hold
 *    every lock of the slot map and the store at once, by design (fork_lock
 *    has stopped every operation; the locks are uncontended).  Race
 *    detection stays on.
 *  - die_after_fork=0: a forked child of a threaded process starts its own
 *    handler threads, which TSan refuses by default.
 */
#if defined(__SANITIZE_THREAD__)
#define TESTLIB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TESTLIB_TSAN 1
#endif
#endif
#ifdef TESTLIB_TSAN
#define TESTLIB_TSAN_DEFAULTS(opts)                                                                \
	const char *__tsan_default_options(void);                                                  \
	const char *__tsan_default_options(void)                                                   \
	{                                                                                          \
		return opts;                                                                       \
	}
#else
#define TESTLIB_TSAN_DEFAULTS(opts)
#endif

#endif

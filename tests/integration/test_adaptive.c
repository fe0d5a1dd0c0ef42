/* SPDX-License-Identifier: MIT */
/*
 * Adaptive swap-in on the real kernel: random 4 KiB access under a budget
 * brings single pages into partly resident folios, and sequential access
 * whole folios again.  Every byte is compared with a shadow copy; the
 * resident set is measured by the kernel (PAGEMAP_SCAN); fork, threads and
 * system calls touch partly resident folios.
 *
 * uswap-test-labels: threads
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "pagegen.h"
#include "uswap.h"

#define PAGE 4096ul
#define MiB (1ul << 20)
#define FOLIO_PAGES 16

/* it forks, and the fork hooks hold every lock at once (testlib.h) */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0:die_after_fork=0")

struct fixture {
	uswap_t *u;
	char *mem, *shadow;
	size_t len, pages;
};

static void fixture_open(struct fixture *x, size_t len, size_t limit, unsigned flags)
{
	struct uswap_config cfg = { .limit = limit, .folio_size = 64 << 10, .flags = flags };
	size_t p;

	x->u = itest_open(&cfg);
	x->len = len;
	x->pages = len / PAGE;
	assert_int_equal(uswap_map(x->u, len, 0, (void **)&x->mem), 0);
	x->shadow = malloc(len);
	assert_non_null(x->shadow);
	for (p = 0; p < x->pages; p++) {
		pagegen_fill(x->shadow + p * PAGE, 11, p, 0);
		memcpy(x->mem + p * PAGE, x->shadow + p * PAGE, PAGE);
	}
}

static void fixture_close(struct fixture *x)
{
	itest_assert_same(x->mem, x->shadow, x->len);
	assert_int_equal(uswap_unmap(x->u, x->mem, x->len), 0);
	uswap_close(x->u);
	free(x->shadow);
}

/* One access: compare the page with its shadow, or change one word in
 * both. */
static void access_page(struct fixture *x, size_t p, struct rng *r, bool write)
{
	if (write) {
		size_t w = (size_t)rng_below(r, PAGE / 8);
		uint64_t v = rng_next(r);

		memcpy(x->mem + p * PAGE + w * 8, &v, 8);
		memcpy(x->shadow + p * PAGE + w * 8, &v, 8);
	} else if (memcmp(x->mem + p * PAGE, x->shadow + p * PAGE, PAGE)) {
		fail_msg("page %zu reads wrong", p);
	}
}

static void random_phase(struct fixture *x, struct rng *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		access_page(x, (size_t)rng_below(r, x->pages), r, rng_below(r, 3) == 0);
}

static void assert_within_budget(struct fixture *x)
{
	long pages = itest_resident_pages(x->mem, x->len);

	if ((uint64_t)pages * PAGE > itest_stat(x->u, "limit_bytes"))
		fail_msg("%ld pages resident, over the budget", pages);
}

static void test_random_then_sequential(void **state)
{
	struct fixture x;
	struct rng r;
	uint64_t faults;
	size_t p;

	(void)state;
	rng_seed(&r, 61);
	fixture_open(&x, 16 * MiB, 4 * MiB, 0);
	random_phase(&x, &r, 6000);
	assert_within_budget(&x);
	/* single pages came in, and partly resident folios went out */
	assert_true(itest_stat(x.u, "swapin_partial") > 1000);
	assert_true(itest_stat(x.u, "swapout_partial") > 100);
	/* sequential again: whole folios, about one fault each */
	assert_int_equal(uswap_advise(x.u, x.mem, x.len, USWAP_ADV_PAGEOUT), 0);
	faults = itest_stat(x.u, "faults");
	for (p = 0; p < x.pages; p++)
		access_page(&x, p, &r, false);
	assert_true(itest_stat(x.u, "faults") - faults <= x.len / (64 << 10) + 32);
	assert_within_budget(&x);
	fixture_close(&x);
}

/*
 * The budget counts a partly resident folio by its pages: random access
 * then keeps about the budget's worth of pages resident, as the kernel's
 * page-sized swap would, and hits them.  Counted whole, the 64 folios the
 * 4 MiB budget holds would keep one or two pages each (about 100 pages of
 * 1024) and nearly every access would fault.  Expected here, from the
 * model of uniform random access over a region four times the budget: a
 * quarter of the accesses hit; asserted, half of that.
 */
static void test_budget_counts_pages(void **state)
{
	struct fixture x;
	struct rng r;
	uint64_t faults;
	long resident;
	size_t budget_pages = 4 * MiB / PAGE, n = 8000;

	(void)state;
	rng_seed(&r, 64);
	fixture_open(&x, 16 * MiB, 4 * MiB, 0);
	random_phase(&x, &r, 4 * budget_pages); /* warm: the budget fills with pages */
	faults = itest_stat(x.u, "faults");
	random_phase(&x, &r, n);
	faults = itest_stat(x.u, "faults") - faults;
	resident = itest_resident_pages(x.mem, x.len);
	fprintf(stderr, "# %ld pages resident of a budget of %zu; %lu faults for %zu accesses\n",
		resident, budget_pages, (unsigned long)faults, n);
	assert_within_budget(&x);
	assert_true((size_t)resident >= budget_pages / 2);
	assert_true(faults <= n - n / 8);
	fixture_close(&x);
}

/* The same access sequence with adaptation off brings no single page. */
static void test_no_adapt(void **state)
{
	struct fixture x;
	struct rng r;

	(void)state;
	rng_seed(&r, 61);
	fixture_open(&x, 16 * MiB, 4 * MiB, USWAP_CFG_NO_ADAPT);
	random_phase(&x, &r, 3000);
	assert_int_equal(itest_stat(x.u, "swapin_partial"), 0);
	assert_int_equal(itest_stat(x.u, "swapout_partial"), 0);
	fixture_close(&x);
}

/* A child forked while folios are partly resident reads every byte right,
 * its writes stay its own, the parent's data is untouched. */
static void test_fork_partial(void **state)
{
	struct fixture x;
	struct rng r;
	int status;
	pid_t pid;

	(void)state;
	rng_seed(&r, 62);
	fixture_open(&x, 16 * MiB, 4 * MiB, 0);
	random_phase(&x, &r, 4000);
	assert_true(itest_stat(x.u, "swapin_partial") > 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t p;

		for (p = 0; p < x.pages; p++)
			if (memcmp(x.mem + p * PAGE, x.shadow + p * PAGE, PAGE))
				_exit(1);
		for (p = 0; p < x.pages; p += 7)
			x.mem[p * PAGE + 5] ^= 0x5a;
		for (p = 0; p < x.pages; p++)
			if (x.mem[p * PAGE + 5] != (char)(x.shadow[p * PAGE + 5] ^ (p % 7 ? 0 : 0x5a)))
				_exit(2);
		_exit(0);
	}
	random_phase(&x, &r, 2000);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	fixture_close(&x);
}

/* The kernel's own accesses (write(2) from, read(2) into managed memory)
 * reach pages of partly resident folios. */
static void test_syscalls_partial(void **state)
{
	char buf[PAGE];
	struct fixture x;
	struct rng r;
	size_t i;

	(void)state;
	rng_seed(&r, 63);
	fixture_open(&x, 16 * MiB, 4 * MiB, 0);
	random_phase(&x, &r, 4000);
	for (i = 0; i < 200; i++) {
		size_t from = (size_t)rng_below(&r, x.pages), to = (size_t)rng_below(&r, x.pages);
		int fd[2];

		assert_int_equal(pipe(fd), 0);
		assert_int_equal(write(fd[1], x.mem + from * PAGE, PAGE), (ssize_t)PAGE);
		assert_int_equal(read(fd[0], buf, PAGE), (ssize_t)PAGE);
		assert_memory_equal(buf, x.shadow + from * PAGE, PAGE);
		assert_int_equal(write(fd[1], buf, PAGE), (ssize_t)PAGE);
		assert_int_equal(read(fd[0], x.mem + to * PAGE, PAGE), (ssize_t)PAGE);
		memcpy(x.shadow + to * PAGE, buf, PAGE);
		close(fd[0]);
		close(fd[1]);
	}
	fixture_close(&x);
}

/* Threads reading and writing their own pages at random, all sharing the
 * partly resident folios. */
struct worker {
	struct fixture *x;
	unsigned id, n;
	uint64_t bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct fixture *x = w->x;
	struct rng r = { 0x1234567 + w->id };
	size_t i;

	for (i = 0; i < 3000; i++) {
		size_t p = (size_t)rng_below(&r, x->pages / w->n) * w->n + w->id;

		if (rng_below(&r, 3) == 0) {
			uint64_t v = rng_next(&r);

			memcpy(x->mem + p * PAGE + 64, &v, 8);
			memcpy(x->shadow + p * PAGE + 64, &v, 8);
		} else if (memcmp(x->mem + p * PAGE, x->shadow + p * PAGE, PAGE)) {
			w->bad++;
		}
	}
	return NULL;
}

static void test_threads_partial(void **state)
{
	struct worker w[4];
	pthread_t t[4];
	struct fixture x;
	unsigned i;

	(void)state;
	fixture_open(&x, 16 * MiB, 4 * MiB, 0);
	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ &x, i, 4, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
	}
	assert_true(itest_stat(x.u, "swapin_partial") > 0);
	assert_within_budget(&x);
	fixture_close(&x);
}

/* A folio the pagemap shows partly swapped in: some pages present, some
 * still out (swapped or zero, not present); -1 if none. */
static long find_partial_folio(struct fixture *x, uint64_t *pm)
{
	size_t f, i;

	assert_int_equal(uswap_pagemap(x->u, x->mem, x->pages, pm), 0);
	for (f = 0; f < x->pages / FOLIO_PAGES; f++) {
		unsigned in = 0, out = 0;

		for (i = f * FOLIO_PAGES; i < (f + 1) * FOLIO_PAGES; i++) {
			in += (pm[i] & USWAP_PM_PRESENT) != 0;
			out += !(pm[i] & USWAP_PM_PRESENT) &&
			       (pm[i] & (USWAP_PM_SWAPPED | USWAP_PM_ZERO));
		}
		if (in && out)
			return (long)f;
	}
	return -1;
}

/* Page p must read as its shadow or as zeros (lazily freed); the shadow
 * takes what it reads. */
static void adopt_lazy_page(struct fixture *x, size_t p)
{
	static const char zero[PAGE];

	if (memcmp(x->mem + p * PAGE, x->shadow + p * PAGE, PAGE)) {
		if (memcmp(x->mem + p * PAGE, zero, PAGE))
			fail_msg("lazily freed page %zu reads neither its data nor zeros", p);
		memset(x->shadow + p * PAGE, 0, PAGE);
	}
}

/*
 * A partly swapped-in folio on the real kernel: the pagemap reports it page
 * by page (order 0) and the kernel agrees that its pages still out hold no
 * memory; uswap's lazy free over part of it, a write that cancels it, and
 * the program's own MADV_DONTNEED over the rest keep every byte right.
 */
static void test_partial_lazyfree_madvise_pagemap(void **state)
{
	uint64_t *pm;
	struct fixture x;
	struct rng r;
	size_t p, p0;
	long f;

	(void)state;
	rng_seed(&r, 64);
	fixture_open(&x, 16 * MiB, 4 * MiB, 0);
	pm = malloc(x.pages * sizeof(*pm));
	assert_non_null(pm);
	random_phase(&x, &r, 3000);
	f = find_partial_folio(&x, pm);
	if (f < 0)
		fail_msg("no partly swapped-in folio after random access (swapin_partial %llu)",
			 (unsigned long long)itest_stat(x.u, "swapin_partial"));
	p0 = (size_t)f * FOLIO_PAGES;
	for (p = p0; p < p0 + FOLIO_PAGES; p++) {
		assert_int_equal(USWAP_PM_ORDER(pm[p]), 0);
		if (!(pm[p] & USWAP_PM_PRESENT) &&
		    itest_resident_pages(x.mem + p * PAGE, PAGE) != 0)
			fail_msg("page %zu is not present for uswap (0x%llx) but the kernel maps it",
				 p, (unsigned long long)pm[p]);
	}

	/* lazy free of the first half: every page of it present and marked,
	 * none stored any more */
	assert_int_equal(uswap_advise(x.u, x.mem + p0 * PAGE, 8 * PAGE, USWAP_ADV_FREE), 0);
	assert_int_equal(uswap_pagemap(x.u, x.mem + p0 * PAGE, 8, pm), 0);
	for (p = 0; p < 8; p++)
		assert_int_equal(pm[p] & (USWAP_PM_PRESENT | USWAP_PM_LAZYFREE | USWAP_PM_SWAPPED |
					  USWAP_PM_ZERO),
				 USWAP_PM_PRESENT | USWAP_PM_LAZYFREE);
	/* a whole-page write ends lazy free for the folio; the other freed
	 * pages keep what they read now (their data, or zeros) for good */
	memset(x.mem + (p0 + 2) * PAGE, 0x5c, PAGE);
	memset(x.shadow + (p0 + 2) * PAGE, 0x5c, PAGE);
	for (p = p0; p < p0 + 8; p++)
		adopt_lazy_page(&x, p);

	/* the program drops the second half itself: it reads zero */
	assert_int_equal(madvise(x.mem + (p0 + 8) * PAGE, 8 * PAGE, MADV_DONTNEED), 0);
	memset(x.shadow + (p0 + 8) * PAGE, 0, 8 * PAGE);
	for (p = p0; p < p0 + FOLIO_PAGES; p++)
		access_page(&x, p, &r, false);
	/* read after the remove event (a fault queues behind it): nothing of
	 * the folio is stored or zero-recorded any more */
	assert_int_equal(uswap_pagemap(x.u, x.mem + p0 * PAGE, FOLIO_PAGES, pm), 0);
	for (p = 0; p < FOLIO_PAGES; p++)
		if (pm[p] & (USWAP_PM_SWAPPED | USWAP_PM_ZERO | USWAP_PM_LAZYFREE))
			fail_msg("page %zu of folio %ld: pagemap 0x%llx after lazy free and drop", p,
				 f, (unsigned long long)pm[p]);
	/* and everything still reads right through more random access */
	random_phase(&x, &r, 2000);
	free(pm);
	fixture_close(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_then_sequential),
		cmocka_unit_test(test_no_adapt),
		cmocka_unit_test(test_budget_counts_pages),
		cmocka_unit_test(test_fork_partial),
		cmocka_unit_test(test_syscalls_partial),
		cmocka_unit_test(test_threads_partial),
		cmocka_unit_test(test_partial_lazyfree_madvise_pagemap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

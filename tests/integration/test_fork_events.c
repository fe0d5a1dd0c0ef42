/* SPDX-License-Identifier: MIT */
/*
 * The swap cache, fork, and the program's own munmap/mremap/madvise on
 * managed memory, on the real kernel.  Every byte is checked against what
 * it must be: a pattern regenerated from (page, version), so that parent
 * and child each know what they must read without sharing anything.
 *
 * uswap-test-labels: threads
 */
#include <errno.h>
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
#define PAGE_SEED 11 /* the pages' contents: pagegen_fill(seed, page, version) */
#define MiB (1ul << 20)

/* fork holds every lock of the slot map and the store; children start threads */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0:die_after_fork=0")

/* Page i at version v, the content a test expects. */
static void expect_page(char *buf, size_t i, uint64_t v)
{
	pagegen_fill(buf, PAGE_SEED, i, v);
}

/* The end of a test: unmap, and nothing may stay stored or cached. */
static void unmap_close_all_freed(uswap_t *u, char *mem, size_t len, uint64_t *ver)
{
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	assert_int_equal(itest_stat(u, "orig_bytes"), 0);
	assert_int_equal(itest_stat(u, "store_objects"), 0);
	assert_int_equal(itest_stat(u, "swapcache_pages"), 0);
	uswap_close(u);
	free(ver);
}

static uswap_t *open_small(size_t limit)
{
	struct uswap_config cfg = { .limit = limit, .folio_size = 64 << 10 };

	return itest_open(&cfg);
}

/* ---- the swap cache ---- */

static void test_swapcache_clean_reeviction_stores_nothing(void **state)
{
	size_t len = 8 * MiB, pages = len / PAGE, fpages = 16, k;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uint64_t out0, hits0, reuse0;
	uswap_t *u = open_small(0);
	char *mem;

	(void)state;
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	out0 = itest_stat(u, "swapout_pages");
	assert_true(out0 > 0);
	/* read everything back: it comes in write-protected, keeping its copy */
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	assert_int_equal(itest_stat(u, "swapcache_pages"), out0);
	hits0 = itest_stat(u, "swapcache_hits");
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	/* clean: dropped, not compressed */
	assert_int_equal(itest_stat(u, "swapout_pages"), out0);
	assert_true(itest_stat(u, "swapcache_hits") - hits0 >= (pages / fpages) * 9 / 10);
	assert_int_equal(itest_stat(u, "swapcache_pages"), 0);
	itest_assert_pages(mem, pages, PAGE_SEED, ver);

	/* a write to a data page (a zero page is the shared zero page, not
	 * write-protected) frees the folio's copy (reused in place: nobody
	 * shares it) and the next eviction compresses that folio again */
	for (k = 0; pagegen_kind(11, k) == MIX_ZERO; k++)
		;
	reuse0 = itest_stat(u, "swapcache_reuse");
	mem[k * PAGE + 7] ^= 0x5a;
	assert_true(itest_stat(u, "swapcache_reuse") > reuse0);
	assert_int_equal(itest_stat(u, "swapcache_copy"), 0);
	out0 = itest_stat(u, "swapout_pages");
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	/* that folio's data pages, and no other folio's */
	assert_true(itest_stat(u, "swapout_pages") - out0 > 0);
	assert_true(itest_stat(u, "swapout_pages") - out0 <= fpages);
	{
		char want[PAGE];

		expect_page(want, k, 0);
		want[7] ^= 0x5a;
		assert_memory_equal(mem + k * PAGE, want, PAGE);
	}
	mem[k * PAGE + 7] ^= 0x5a;
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	unmap_close_all_freed(u, mem, len, ver);
}

/* ---- fork ---- */

/* Child body: check the inherited data, write its own, swap, check again.
 * @return an exit status: 0 = all good. */
static int child_check(uswap_t *u, char *mem, size_t pages, uint64_t *ver, uint64_t mine)
{
	long bad = itest_first_bad_page(mem, pages, PAGE_SEED, ver);

	if (bad >= 0) {
		fprintf(stderr, "child %d: inherited page %ld reads wrong\n", getpid(), bad);
		return 1;
	}
	for (size_t i = 0; i < pages; i += 3)
		ver[i] = mine;
	for (size_t i = 0; i < pages; i += 3)
		expect_page(mem + i * PAGE, i, mine);
	if (uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT)) {
		fprintf(stderr, "child: PAGEOUT failed: %s\n", uswap_last_error());
		return 2;
	}
	bad = itest_first_bad_page(mem, pages, PAGE_SEED, ver);
	if (bad >= 0) {
		fprintf(stderr, "child %d: own page %ld reads wrong after swapping\n", getpid(), bad);
		return 3;
	}
	return 0;
}

/* ... and then unmap: the child's counts of stored data and slots in use
 * must return to zero, whatever the parent still holds. */
static int child_check_and_unmap(uswap_t *u, char *mem, size_t pages, uint64_t *ver, uint64_t mine)
{
	int rc = child_check(u, mem, pages, ver, mine);

	if (rc)
		return rc;
	if (uswap_unmap(u, mem, pages * PAGE))
		return 4;
	/* orig_bytes: the slots in use, a page each */
	if (itest_stat(u, "orig_bytes") || itest_stat(u, "store_objects")) {
		fprintf(stderr, "child: after unmap %llu bytes in slots, %llu objects remain\n",
			(unsigned long long)itest_stat(u, "orig_bytes"),
			(unsigned long long)itest_stat(u, "store_objects"));
		return 5;
	}
	return 0;
}

static void wait_ok(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail_msg("child %d: %s %d", pid, WIFEXITED(st) ? "exit" : "signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static void test_fork_child_reads_swapped_data(void **state)
{
	size_t len = 16 * MiB, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uswap_t *u = open_small(8 * MiB);
	char *mem;
	pid_t pid;

	(void)state;
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	/* half out, some of it back in swap-cached */
	assert_int_equal(uswap_advise(u, mem, len / 2, USWAP_ADV_PAGEOUT), 0);
	itest_assert_pages(mem, pages / 8, PAGE_SEED, ver);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_check_and_unmap(u, mem, pages, ver, 100));
	wait_ok(pid);
	assert_true(itest_stat(u, "fork_events") >= 1);
	/* the parent's data is its own: untouched by the child's writes */
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	unmap_close_all_freed(u, mem, len, ver);
}

/* Three instances in one process, all with swapped-out data, fork: the
 * child remakes each one's threads and buffers, and none may take
 * another's (a child once unmapped the buffers the other instance had just
 * made where its own parent-side staging folios had been: a handler of
 * the child crashed, or decoded into another instance's managed region and
 * faulted on it: a hang). */
static void test_fork_three_instances(void **state)
{
	enum { N = 3 };
	size_t len = 4 * MiB, pages = len / PAGE;
	uint64_t *ver[N];
	uswap_t *u[N];
	char *mem[N];
	pid_t pid;
	int i;

	(void)state;
	alarm(120); /* the bug this guards against hung the child: fail instead */
	for (i = 0; i < N; i++) {
		ver[i] = calloc(pages, sizeof(uint64_t));
		u[i] = open_small(2 * MiB);
		assert_int_equal(uswap_map(u[i], len, 0, (void **)&mem[i]), 0);
		itest_fill_pages(mem[i], pages, PAGE_SEED, ver[i]);
		assert_int_equal(uswap_advise(u[i], mem[i], len, USWAP_ADV_PAGEOUT), 0);
	}
	for (int gen = 0; gen < 3; gen++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int rc = 0;

			for (i = 0; i < N && !rc; i++)
				rc = child_check_and_unmap(u[i], mem[i], pages, ver[i], 300 + (uint64_t)i);
			_exit(rc);
		}
		wait_ok(pid);
	}
	for (i = 0; i < N; i++) {
		itest_assert_pages(mem[i], pages, PAGE_SEED, ver[i]);
		unmap_close_all_freed(u[i], mem[i], len, ver[i]);
	}
	alarm(0);
}

/* A chain of generations: each checks what it inherited, changes a third,
 * and forks the next. */
static int generation(uswap_t *u, char *mem, size_t pages, uint64_t *ver, int depth)
{
	int rc = child_check(u, mem, pages, ver, 200 + (uint64_t)depth);
	pid_t pid;
	int st;

	if (rc || depth == 0)
		return rc;
	pid = fork();
	if (pid < 0)
		return 10;
	if (pid == 0)
		_exit(generation(u, mem, pages, ver, depth - 1));
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 11;
	/* our own data survived our child */
	return itest_first_bad_page(mem, pages, PAGE_SEED, ver) >= 0 ? 12 : 0;
}

static void test_fork_generations(void **state)
{
	size_t len = 8 * MiB, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uswap_t *u = open_small(2 * MiB);
	char *mem;

	(void)state;
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	assert_int_equal(generation(u, mem, pages, ver, 3), 0);
	unmap_close_all_freed(u, mem, len, ver);
}

struct reader {
	const char *mem;
	size_t pages;
	const uint64_t *ver;
	int stop, bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct rng g;

	rng_seed(&g, (uint64_t)(uintptr_t)arg);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		size_t i = (size_t)rng_below(&g, r->pages);
		char want[PAGE];

		expect_page(want, i, r->ver[i]);
		if (memcmp(r->mem + i * PAGE, want, PAGE))
			__atomic_store_n(&r->bad, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Forks while other threads fault pages in and the reclaimer evicts. */
static void test_fork_with_faults_in_flight(void **state)
{
	size_t len = 16 * MiB, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uswap_t *u = open_small(4 * MiB);
	struct reader rd;
	pthread_t th[2];
	char *mem;
	int i;

	(void)state;
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	rd = (struct reader){ mem, pages, ver, 0, 0 };
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd), 0);
	for (i = 0; i < 6; i++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0)
			_exit(child_check(u, mem, pages, ver, 300 + (uint64_t)i));
		wait_ok(pid);
	}
	__atomic_store_n(&rd.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_false(rd.bad);
	assert_true(itest_stat(u, "fork_events") >= 6);
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	unmap_close_all_freed(u, mem, len, ver);
}

/* A swap-cached page shared with a child is copied on write, on both
 * sides; each side's write stays its own. */
static void test_swapcache_write_after_fork(void **state)
{
	size_t len = 2 * MiB, pages = len / PAGE, k;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uswap_t *u = open_small(0);
	char *mem;
	pid_t pid;

	(void)state;
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	itest_assert_pages(mem, pages, PAGE_SEED, ver); /* all swap-cached now */
	/* a data page: zero pages are the shared zero page, never protected */
	for (k = 0; pagegen_kind(11, k) == MIX_ZERO; k++)
		;
	assert_true(itest_stat(u, "swapcache_pages") > 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint64_t copy0 = itest_stat(u, "swapcache_copy");

		ver[k] = 7;
		expect_page(mem + k * PAGE, k, 7);
		if (itest_stat(u, "swapcache_copy") <= copy0)
			_exit(20);
		_exit(child_check(u, mem, pages, ver, 400));
	}
	wait_ok(pid);
	itest_assert_pages(mem, pages, PAGE_SEED, ver); /* the child's writes are not ours */
	ver[k] = 8;
	expect_page(mem + k * PAGE, k, 8);
	assert_true(itest_stat(u, "swapcache_copy") > 0);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	unmap_close_all_freed(u, mem, len, ver);
}

/* ---- the program's own munmap, mremap, madvise ---- */

static void test_program_dontneed_reads_zero_and_frees(void **state)
{
	size_t len = 4 * MiB, pages = len / PAGE, i;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uswap_t *u = open_small(0);
	char *mem, zero[PAGE] = { 0 };
	uint64_t orig0;

	(void)state;
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	/* first quarter out; second quarter out and back (swap-cached); a
	 * partial folio at the edge of the dropped range */
	assert_int_equal(uswap_advise(u, mem, len / 2, USWAP_ADV_PAGEOUT), 0);
	for (i = pages / 4; i < pages / 2; i++) {
		char want[PAGE];

		expect_page(want, i, 0);
		if (memcmp(mem + i * PAGE, want, PAGE))
			fail_msg("page %zu reads wrong after swap-in", i);
	}
	orig0 = itest_stat(u, "orig_bytes");
	assert_int_equal(madvise(mem + 8 * PAGE, len / 2 + 3 * PAGE, MADV_DONTNEED), 0);
	for (i = 0; i < pages; i++) {
		bool dropped = i >= 8 && i < 8 + pages / 2 + 3;

		if (dropped) {
			if (memcmp(mem + i * PAGE, zero, PAGE))
				fail_msg("page %zu was dropped by the program but does not read zero", i);
		} else {
			char want[PAGE];

			expect_page(want, i, 0);
			if (memcmp(mem + i * PAGE, want, PAGE))
				fail_msg("page %zu reads wrong", i);
		}
	}
	assert_true(itest_stat(u, "remove_events") >= 1);
	assert_true(itest_stat(u, "orig_bytes") < orig0);
	/* and the same after the rest went out and came back */
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(memcmp(mem + 20 * PAGE, zero, PAGE), 0);
	unmap_close_all_freed(u, mem, len, ver);
}

static void test_program_munmap_and_mremap(void **state)
{
	size_t len = 4 * MiB, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uswap_t *u = open_small(0);
	char *mem, *to;
	void *hole;

	(void)state;
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	assert_int_equal(uswap_advise(u, mem, len / 2, USWAP_ADV_PAGEOUT), 0);

	/* move the whole region, swapped-out pages included */
	hole = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(hole != MAP_FAILED);
	to = mremap(mem, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	assert_ptr_equal(to, hole);
	itest_assert_pages(to, pages, PAGE_SEED, ver);
	assert_true(itest_stat(u, "remap_events") >= 1);
	assert_int_equal(uswap_advise(u, to, len, USWAP_ADV_PAGEOUT), 0);
	itest_assert_pages(to, pages, PAGE_SEED, ver);

	/* the program unmaps the last quarter: its stored copies are freed,
	 * the rest keeps working */
	assert_int_equal(uswap_advise(u, to, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(munmap(to + 3 * len / 4, len / 4), 0);
	itest_assert_pages(to, 3 * pages / 4, PAGE_SEED, ver);
	assert_true(itest_stat(u, "unmap_events") >= 1);
	/* the program unmaps the rest: the region is gone */
	assert_int_equal(munmap(to, 3 * len / 4), 0);
	for (int i = 0; i < 1000 && itest_stat(u, "regions"); i++)
		usleep(1000);
	assert_int_equal(itest_stat(u, "regions"), 0);
	assert_int_equal(itest_stat(u, "orig_bytes"), 0);
	assert_int_equal(uswap_unmap(u, to, len), -EINVAL);
	uswap_close(u);
	free(ver);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swapcache_clean_reeviction_stores_nothing),
		cmocka_unit_test(test_fork_child_reads_swapped_data),
		cmocka_unit_test(test_fork_three_instances),
		cmocka_unit_test(test_fork_generations),
		cmocka_unit_test(test_fork_with_faults_in_flight),
		cmocka_unit_test(test_swapcache_write_after_fork),
		cmocka_unit_test(test_program_dontneed_reads_zero_and_frees),
		cmocka_unit_test(test_program_munmap_and_mremap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Managed memory behaves like anonymous memory under a budget: every byte
 * is compared with a shadow copy kept in ordinary memory, and the resident
 * set is measured by the kernel (PAGEMAP_SCAN), not by our own counter.
 *
 * uswap-test-labels: threads
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testlib.h"
#include "pagegen.h"
#include "uswap.h"

#define PAGE 4096ul
#define MiB (1ul << 20)

/* the ram store's checker (run at close in debug builds) holds all its locks */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

#define stat_of itest_stat
#define assert_same itest_assert_same

static void assert_within_budget(uswap_t *u, void *mem, size_t len)
{
	long pages = itest_resident_pages(mem, len);
	uint64_t limit = stat_of(u, "limit_bytes");

	if ((uint64_t)pages * PAGE > limit)
		fail_msg("%ld pages (%lu bytes) resident, over the budget of %lu bytes", pages,
			 pages * PAGE, (unsigned long)limit);
}

/* ---- several threads, random reads and writes, region 4x the budget ---- */

struct rw_thread {
	char *mem, *shadow;
	size_t pages;
	unsigned id, nthreads;
	uint64_t seed;
	int phase;
	uint64_t bad;
};

static void *rw_main(void *arg)
{
	struct rw_thread *t = arg;
	struct rng r;
	size_t n;

	r.s = t->seed * 7919 + t->id + (uint64_t)t->phase * 104729;
	for (n = 0; n < t->pages / 2; n++) {
		size_t p = (size_t)rng_below(&r, t->pages);
		char *page = t->mem + p * PAGE;

		if (t->phase == 1) {
			/* read anywhere: nobody writes in this phase */
			if (memcmp(page, t->shadow + p * PAGE, PAGE))
				t->bad++;
		} else if (p % t->nthreads == t->id) {
			/* write only the pages this thread owns in this phase */
			size_t off = (size_t)rng_below(&r, PAGE - 64);
			uint64_t v = rng_next(&r);

			if (rng_below(&r, 4) == 0) {
				pagegen_fill(t->shadow + p * PAGE, t->seed, p, v);
				memcpy(page, t->shadow + p * PAGE, PAGE);
			} else {
				memcpy(page + off, &v, sizeof(v));
				memcpy(t->shadow + p * PAGE + off, &v, sizeof(v));
			}
		}
	}
	return NULL;
}

/* Samples the region's real resident set while the threads run. */
struct sampler {
	char *mem;
	size_t len, budget_pages;
	int stop;
	long max_pages, samples;
};

static void *sampler_main(void *arg)
{
	struct sampler *sm = arg;

	while (!__atomic_load_n(&sm->stop, __ATOMIC_ACQUIRE)) {
		long n = itest_resident_pages(sm->mem, sm->len);

		/* a walk that saw more than the budget is walked again at
		 * once, and the smaller count kept: the skew of one walk
		 * (below) seldom repeats, a resident set really above the
		 * budget stays for the second */
		if (n > (long)sm->budget_pages) {
			long again = itest_resident_pages(sm->mem, sm->len);

			if (again < n)
				n = again;
		}
		if (n > sm->max_pages)
			sm->max_pages = n;
		sm->samples++;
		usleep(500);
	}
	return NULL;
}

static void test_threads_random_rw(void **state)
{
	struct uswap_config cfg = { .limit = 16 * MiB };
	size_t len = 64 * MiB, pages = len / PAGE, i;
	struct rw_thread t[4];
	struct sampler sm;
	pthread_t th[4], sth;
	char *mem, *shadow;
	uswap_t *u;
	int phase;
	unsigned k;

	(void)state;
	u = itest_open(&cfg);
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	shadow = malloc(len);
	assert_non_null(shadow);
	for (i = 0; i < pages; i++) {
		pagegen_fill(shadow + i * PAGE, 3, i, 0);
		memcpy(mem + i * PAGE, shadow + i * PAGE, PAGE);
	}
	assert_within_budget(u, mem, len);
	assert_same(mem, shadow, len);
	sm = (struct sampler){ mem, len, 16 * MiB / PAGE, 0, 0, 0 };
	assert_int_equal(pthread_create(&sth, NULL, sampler_main, &sm), 0);
	for (phase = 0; phase < 3; phase++) {
		for (k = 0; k < 4; k++) {
			t[k] = (struct rw_thread){ mem, shadow, pages, k, 4, 11, phase, 0 };
			assert_int_equal(pthread_create(&th[k], NULL, rw_main, &t[k]), 0);
		}
		for (k = 0; k < 4; k++) {
			pthread_join(th[k], NULL);
			assert_int_equal(t[k].bad, 0);
		}
		assert_within_budget(u, mem, len);
		assert_same(mem, shadow, len);
	}
	__atomic_store_n(&sm.stop, 1, __ATOMIC_RELEASE);
	pthread_join(sth, NULL);
	fprintf(stderr, "# %ld samples of the resident set, at most %ld pages (budget %lu)\n",
		sm.samples, sm.max_pages, 16 * MiB / PAGE);
	assert_true(sm.samples > 10);
	/* PAGEMAP_SCAN walks the range while the writers fault and the
	 * reclaimer evicts: a page evicted behind the walk and one brought in
	 * ahead of it with the budget it freed are both counted.  Since the
	 * budget counts partly swapped-in folios by their pages, it leaves no
	 * slack to hide that skew, so the walk may see a little more than
	 * ever was resident at once (a walker preempted mid-walk on a busy
	 * machine saw 176 pages more): a walk above the budget is repeated
	 * (sampler_main), and 1/32 of the budget is allowed here; assert_within_budget() checks the exact
	 * bound whenever the writers are stopped. */
	assert_true((unsigned long)sm.max_pages <= 16 * MiB / PAGE + 16 * MiB / PAGE / 32);
	assert_true(stat_of(u, "swapout_pages") > 0);
	assert_true(stat_of(u, "swapin_pages") > 0);
	assert_true(stat_of(u, "swapin_folios") > 0);
	assert_true(stat_of(u, "resident_bytes") <= 16 * MiB);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	assert_int_equal(stat_of(u, "stored_bytes"), 0);
	assert_int_equal(stat_of(u, "resident_bytes"), 0);
	uswap_close(u);
	free(shadow);
}

/* ---- writes racing the eviction ---- */

struct hammer {
	uint64_t *mem;   /* the hammered folios */
	size_t words;
	unsigned id, nthreads;
	uint64_t rounds; /* rounds completed */
	int *stop;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	size_t i;

	/* each thread increments its own words, a round at a time: a lost
	 * write leaves a word behind its thread's round count */
	while (!__atomic_load_n(h->stop, __ATOMIC_ACQUIRE)) {
		for (i = h->id; i < h->words; i += h->nthreads * 61)
			h->mem[i]++;
		h->rounds++;
	}
	return NULL;
}

struct pager {
	uswap_t *u;
	void *mem;
	size_t len;
	int stop;
	uint64_t pageouts;
	int err;
};

static void *pager_main(void *arg)
{
	struct pager *p = arg;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		int rc = uswap_advise(p->u, p->mem, p->len, USWAP_ADV_PAGEOUT);

		if (rc && !p->err)
			p->err = rc; /* cmocka asserts only from the main thread */
		p->pageouts++;
	}
	return NULL;
}

static void test_writes_racing_eviction(void **state)
{
	struct uswap_config cfg = { .limit = 64 * MiB, .folio_size = 64 << 10 };
	size_t len = 1 * MiB, words = len / 8, i;
	struct hammer h[3];
	struct pager pg;
	pthread_t th[3], pth;
	uint64_t *mem;
	uswap_t *u;
	unsigned k;
	int hstop = 0;

	(void)state;
	u = itest_open(&cfg);
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	pg = (struct pager){ u, mem, len, 0, 0, 0 };
	assert_int_equal(pthread_create(&pth, NULL, pager_main, &pg), 0);
	for (k = 0; k < 3; k++) {
		h[k] = (struct hammer){ mem, words, k, 3, 0, &hstop };
		assert_int_equal(pthread_create(&th[k], NULL, hammer_main, &h[k]), 0);
	}
	usleep(1500 * 1000);
	__atomic_store_n(&hstop, 1, __ATOMIC_RELEASE);
	for (k = 0; k < 3; k++)
		pthread_join(th[k], NULL);
	__atomic_store_n(&pg.stop, 1, __ATOMIC_RELEASE);
	pthread_join(pth, NULL);
	assert_int_equal(pg.err, 0);
	for (i = 0; i < words; i++) {
		unsigned owner = (unsigned)(i % (3 * 61));
		uint64_t want = owner < 3 ? h[owner].rounds : 0;

		if (mem[i] != want)
			fail_msg("word %zu is %lu, expected %lu (a write was lost)", i,
				 (unsigned long)mem[i], (unsigned long)want);
	}
	fprintf(stderr, "# %lu page-outs raced the writers; %lu folios swapped out\n",
		(unsigned long)pg.pageouts, (unsigned long)stat_of(u, "swapout_folios"));
	fprintf(stderr, "# busy %lu zero_out %lu swapout_pages %lu faults %lu stale %lu\n", (unsigned long)stat_of(u, "reclaim_fail_busy"), (unsigned long)stat_of(u, "zero_pages_out"), (unsigned long)stat_of(u, "swapout_pages"), (unsigned long)stat_of(u, "faults"), (unsigned long)stat_of(u, "faults_stale"));
	assert_true(pg.pageouts > 10);
	assert_true(stat_of(u, "swapout_folios") > 10);
	uswap_unmap(u, mem, len);
	uswap_close(u);
}

/* ---- system calls on swapped-out buffers ---- */

static void test_syscalls_on_swapped_buffers(void **state)
{
	struct uswap_config cfg = { 0 };
	size_t len = 4 * MiB, i;
	char *mem, *shadow, *back;
	char path[] = "/tmp/uswap-test-XXXXXX";
	int fd, pipefd[2];
	uswap_t *u;

	(void)state;
	u = itest_open(&cfg);
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	shadow = malloc(len);
	back = malloc(len);
	for (i = 0; i < len / PAGE; i++)
		pagegen_fill(shadow + i * PAGE, 5, i, 0);
	memcpy(mem, shadow, len);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(itest_resident_pages(mem, len), 0);

	/* write(2) from a swapped-out buffer: the kernel faults it in */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, mem, len), (ssize_t)len);
	assert_int_equal(pread(fd, back, len, 0), (ssize_t)len);
	assert_memory_equal(back, shadow, len);

	/* read(2) into a swapped-out buffer */
	for (i = 0; i < len; i++)
		back[i] = (char)(shadow[i] ^ 0x5a);
	assert_int_equal(pwrite(fd, back, len, 0), (ssize_t)len);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(pread(fd, mem, len, 0), (ssize_t)len);
	assert_memory_equal(mem, back, len);
	close(fd);

	/* a pipe: vmsplice-free, plain read/write of part of a page */
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(write(pipefd[1], mem + 12345, 1000), 1000);
	assert_int_equal(read(pipefd[0], shadow, 1000), 1000);
	assert_memory_equal(shadow, back + 12345, 1000);
	close(pipefd[0]);
	close(pipefd[1]);
	uswap_unmap(u, mem, len);
	uswap_close(u);
	free(shadow);
	free(back);
}

/* ---- zero folios are never stored ---- */

static void test_zero_folios_never_stored(void **state)
{
	struct uswap_config cfg = { 0 };
	size_t len = 32 * MiB, i;
	char *mem;
	uswap_t *u;

	(void)state;
	u = itest_open(&cfg);
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	/* half written with zeros (real pages), half only read (zero page) */
	memset(mem, 0, len / 2);
	for (i = len / 2; i < len; i += PAGE)
		assert_int_equal(mem[i], 0);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(stat_of(u, "stored_bytes"), 0);
	assert_int_equal(stat_of(u, "store_objects"), 0);
	assert_int_equal(stat_of(u, "zero_pages_out"), len / PAGE);
	assert_int_equal(itest_resident_pages(mem, len), 0);
	for (i = 0; i < len; i += 512)
		assert_int_equal(mem[i], 0);
	assert_int_equal(stat_of(u, "zero_pages_in"), len / PAGE);
	/* faulted back as the shared zero page: no memory used */
	assert_int_equal(itest_resident_pages(mem, len), 0);
	uswap_unmap(u, mem, len);
	uswap_close(u);
}

/* ---- folios mixing zero, same-filled and data pages ---- */

static void test_mixed_folios(void **state)
{
	/* whole-folio swap-in even for the random order below (adaptive
	 * swap-in has its own tests: test_adaptive.c) */
	struct uswap_config cfg = { .folio_size = 64 << 10, .flags = USWAP_CFG_NO_ADAPT };
	size_t len = 8 * MiB, pages = len / PAGE, i;
	uint64_t zero = 0, same = 0;
	char *mem, *shadow;
	uswap_t *u;

	(void)state;
	u = itest_open(&cfg);
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	shadow = calloc(1, len);
	for (i = 0; i < pages; i++) {
		uint64_t *w = (uint64_t *)(shadow + i * PAGE);
		size_t j;

		switch ((i * 7 + i / 16) % 5) {
		case 0:
			zero++;
			break;
		case 1: /* one repeated word */
			for (j = 0; j < PAGE / 8; j++)
				w[j] = 0x0101010101010101ull * (i % 251 + 1);
			same++;
			break;
		default:
			pagegen_fill(w, 9, i, 1);
			if (pagegen_kind(9, i) == MIX_ZERO)
				zero++; /* pagegen's zero pages hold one word when version > 0 */
			break;
		}
	}
	memcpy(mem, shadow, len);
	/* a folio entirely zero and one entirely same-filled */
	memset(mem, 0, 64 << 10);
	memset(shadow, 0, 64 << 10);
	memset(mem + (64 << 10), 0x77, 64 << 10);
	memset(shadow + (64 << 10), 0x77, 64 << 10);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(itest_resident_pages(mem, len), 0);
	assert_true(stat_of(u, "zero_pages_out") >= 16);
	assert_true(stat_of(u, "same_filled_pages") >= 16);
	/* read in random order: every folio comes back whole */
	for (i = 0; i < pages; i += 37)
		assert_memory_equal(mem + (i % pages) * PAGE, shadow + (i % pages) * PAGE, PAGE);
	assert_same(mem, shadow, len);
	assert_int_equal(stat_of(u, "swapin_fallback"), 0);
	assert_int_equal(stat_of(u, "swapin_folios"), len / (64 << 10));
	uswap_unmap(u, mem, len);
	uswap_close(u);
	free(shadow);
	(void)zero;
	(void)same;
}

/*
 * A folio of data and zero pages comes back whole either way, but its zero
 * pages differently (swapin.c): under a budget they are zero-filled real
 * pages, put in with the data by one UFFDIO_COPY (the budget counts them
 * anyway); without one they map the shared zero page and use no memory.
 * PAGEMAP_SCAN tells the two apart.
 */
static void test_mixed_folio_zero_pages(void **state)
{
	const size_t folio_pages = 16, folios = 16, pages = folios * folio_pages;
	const size_t len = pages * PAGE;
	int budget;

	(void)state;
	for (budget = 0; budget < 2; budget++) {
		struct uswap_config cfg = { .limit = budget ? 8 * MiB : 0,
					    .folio_size = folio_pages * PAGE,
					    .flags = USWAP_CFG_NO_ADAPT };
		char *mem, *shadow = calloc(1, len);
		uswap_t *u = itest_open(&cfg);
		size_t i;

		assert_non_null(shadow);
		assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
		/* the first half of each folio data, the second zeros, written */
		for (i = 0; i < pages; i++) {
			if (i % folio_pages < folio_pages / 2) {
				pagegen_fill(shadow + i * PAGE, 5, i, 1);
				*(uint64_t *)(shadow + i * PAGE) = i + 1; /* never zero */
			}
		}
		memcpy(mem, shadow, len);
		assert_int_equal(itest_resident_pages(mem, len), pages);
		assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
		assert_int_equal(itest_resident_pages(mem, len), 0);
		assert_int_equal(stat_of(u, "zero_pages_out"), pages / 2);
		assert_same(mem, shadow, len);
		assert_int_equal(stat_of(u, "swapin_folios"), folios);
		assert_int_equal(itest_resident_pages(mem, len), budget ? pages : pages / 2);
		uswap_unmap(u, mem, len);
		uswap_close(u);
		free(shadow);
	}
}

/* ---- a full store stops eviction; nothing is dropped ---- */

static void test_store_full(void **state)
{
	struct uswap_config cfg = { .limit = 4 * MiB, .store_limit = 2 * MiB };
	size_t len = 16 * MiB, i;
	char *mem, *shadow;
	char path[] = "/tmp/uswap-stderr-XXXXXX", buf[4096];
	int fd, saved;
	ssize_t n;
	uswap_t *u;

	(void)state;
	/* capture stderr to see the overshoot reported once */
	fd = mkstemp(path);
	unlink(path);
	saved = dup(2);
	dup2(fd, 2);
	u = itest_open(&cfg);
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	shadow = malloc(len);
	for (i = 0; i < len / PAGE; i++) {
		pagegen_fill(shadow + i * PAGE, 21, i, 0);
		memcpy(mem + i * PAGE, shadow + i * PAGE, PAGE);
	}
	assert_same(mem, shadow, len);
	dup2(saved, 2);
	close(saved);
	assert_true(stat_of(u, "pool_bytes") <= 2 * MiB);
	assert_true(stat_of(u, "limit_overshoot_bytes") > 0);
	assert_true(stat_of(u, "reclaim_fail_store_full") > 0);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	assert_true(n > 0);
	buf[n] = 0;
	assert_non_null(strstr(buf, "exceeds the budget"));
	assert_null(strstr(strstr(buf, "exceeds the budget") + 1, "exceeds the budget"));
	/* PAGEOUT says the store is full; data stays */
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), -ENOSPC);
	assert_same(mem, shadow, len);
	uswap_unmap(u, mem, len);
	uswap_close(u);
	free(shadow);
}

/* ---- pinned ranges are never evicted ---- */

static void test_pin(void **state)
{
	struct uswap_config cfg = { .limit = 4 * MiB };
	size_t len = 16 * MiB, pin_len = 1 * MiB, i;
	char *mem;
	uswap_t *u;

	(void)state;
	u = itest_open(&cfg);
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	for (i = 0; i < pin_len; i++)
		mem[i] = (char)(i * 13);
	assert_int_equal(uswap_advise(u, mem, pin_len, USWAP_ADV_PIN), 0);
	for (i = pin_len; i < len; i += PAGE)
		mem[i] = 1; /* pressure: 4x the budget */
	assert_int_equal(itest_resident_pages(mem, pin_len), pin_len / PAGE);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(itest_resident_pages(mem, pin_len), pin_len / PAGE);
	assert_int_equal(itest_resident_pages(mem + pin_len, len - pin_len), 0);
	assert_int_equal(stat_of(u, "pinned_bytes"), pin_len);
	/* pinning more than the budget is refused */
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PIN), -ENOMEM);
	assert_int_equal(uswap_advise(u, mem, pin_len, USWAP_ADV_UNPIN), 0);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(itest_resident_pages(mem, len), 0);
	/* WILLNEED brings a range in without touching it */
	assert_int_equal(uswap_advise(u, mem, pin_len, USWAP_ADV_WILLNEED), 0);
	assert_int_equal(itest_resident_pages(mem, pin_len), pin_len / PAGE);
	for (i = 0; i < pin_len; i++)
		assert_int_equal(mem[i], (char)(i * 13));
	uswap_unmap(u, mem, len);
	uswap_close(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_random_rw),
		cmocka_unit_test(test_writes_racing_eviction),
		cmocka_unit_test(test_syscalls_on_swapped_buffers),
		cmocka_unit_test(test_zero_folios_never_stored),
		cmocka_unit_test(test_mixed_folios),
		cmocka_unit_test(test_mixed_folio_zero_pages),
		cmocka_unit_test(test_store_full),
		cmocka_unit_test(test_pin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * shim_probe SCENARIO: the program test_preload runs under `uswap run`.
 * Each scenario checks every page against pagegen (a pure function of
 * seed, page and version: an expectation independent of uswap), the
 * counters its shim serves, and its VmRSS; it exits 0 when all hold.
 *
 * It is built without sanitizers, like the shim: an ASan or TSan runtime
 * must come first in a process, which a preloaded shim cannot be.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "pagegen.h"
#include "shimtest.h"

#define LIMIT (16ul << 20)
#define LIMIT_ARG "16M"
#define DATA (64ul << 20)
#define PAGE 4096ul
#define SLACK (12ul << 20) /* libc, stacks, the test's own heap */

static const char *self_exe = "/proc/self/exe";

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                       \
			fprintf(stderr, "\n");                              \
			exit(1);                                            \
		}                                                           \
	} while (0)

static uint64_t baseline_rss;

static uint64_t counter(const char *name)
{
	uint64_t v = 0;

	CHECK(st_counter(getpid(), name, &v), "counter %s cannot be read from the shim", name);
	return v;
}

static void fill(char *p, size_t len, uint64_t seed, uint64_t version)
{
	size_t i;

	for (i = 0; i < len / PAGE; i++)
		pagegen_fill(p + i * PAGE, seed, i, version);
}

static bool page_is(const char *page, uint64_t seed, uint64_t idx, uint64_t version)
{
	static __thread char want[PAGE];

	pagegen_fill(want, seed, idx, version);
	return !memcmp(page, want, PAGE);
}

static bool page_zero(const char *page)
{
	size_t i;

	for (i = 0; i < PAGE; i++)
		if (page[i])
			return false;
	return true;
}

static void verify(const char *p, size_t len, uint64_t seed, uint64_t version, const char *what)
{
	size_t i;

	for (i = 0; i < len / PAGE; i++)
		CHECK(page_is(p + i * PAGE, seed, i, version), "%s: page %zu differs from version %llu",
		      what, i, (unsigned long long)version);
}

/* Resident memory stays near the budget plus the store. */
static void check_rss(const char *when)
{
	uint64_t rss = st_vmrss(getpid()), pool = counter("pool_bytes");

	CHECK(rss <= baseline_rss + LIMIT + pool + SLACK,
	      "%s: VmRSS %llu > baseline %llu + limit %lu + store %llu + slack %lu", when,
	      (unsigned long long)rss, (unsigned long long)baseline_rss, LIMIT,
	      (unsigned long long)pool, SLACK);
	CHECK(counter("resident_bytes") <= LIMIT, "%s: resident_bytes above the limit", when);
}

static int child_malloc(void)
{
	char *b[6];
	size_t n = DATA / 6 & ~(PAGE - 1), i, j;
	uint64_t blocks0 = counter("shim_malloc_blocks");
	void *pm;
	char *small;

	b[0] = malloc(n);
	b[1] = calloc(n / PAGE, PAGE);
	b[2] = realloc(malloc(100), n); /* glibc block grown into a managed one */
	CHECK(posix_memalign(&pm, 64, n) == 0, "posix_memalign");
	b[3] = pm;
	b[4] = aligned_alloc(32, n);
	b[5] = memalign(16, n);
	for (i = 0; i < 6; i++)
		CHECK(b[i], "allocation %zu failed", i);
	CHECK(((uintptr_t)b[3] & 63) == 0 && ((uintptr_t)b[4] & 31) == 0, "alignment");
	CHECK(counter("shim_malloc_blocks") - blocks0 >= 6, "blocks not served from managed memory");
	for (j = 0; j < n; j += PAGE * 97)
		CHECK(page_zero(b[1] + j), "calloc memory is not zero at %zu", j);
	CHECK(malloc_usable_size(b[0]) >= n, "malloc_usable_size");
	/* data is copied in page-aligned pieces starting HDR into a page */
	for (i = 0; i < 6; i++)
		fill(b[i], n - PAGE, i + 1, 0);
	small = strdup("glibc still serves small blocks");
	for (i = 0; i < 6; i++)
		verify(b[i], n - PAGE, i + 1, 0, "malloc block");
	CHECK(counter("swapout_pages") > 0, "nothing was swapped out with 4x the budget");
	check_rss("malloc blocks filled");
	b[0] = realloc(b[0], n * 2);
	CHECK(b[0], "realloc grow");
	verify(b[0], n - PAGE, 1, 0, "grown block");
	b[0] = realloc(b[0], 1000); /* shrinks in place */
	verify(b[0], 0, 1, 0, "shrunk");
	CHECK(!strcmp(small, "glibc still serves small blocks"), "small block");
	free(small);
	for (i = 0; i < 6; i++)
		free(b[i]);
	CHECK(counter("regions") <= 4, "freed blocks are still regions: %llu",
	      (unsigned long long)counter("regions"));
	return 0;
}

static char *map_anon(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap %zu", len);
	return p;
}

static int child_mmap(void)
{
	size_t len = 16ul << 20;
	uint64_t r0 = counter("regions"), adopted0 = counter("shim_maps_adopted");
	char *m[4], *p, *q;
	int i, fd;

	for (i = 0; i < 4; i++) {
		m[i] = map_anon(len);
		fill(m[i], len, 10 + i, 0);
	}
	CHECK(counter("regions") == r0 + 4, "4 mappings, %llu new regions",
	      (unsigned long long)(counter("regions") - r0));
	for (i = 0; i < 4; i++)
		verify(m[i], len, 10 + i, 0, "mapping");
	check_rss("mappings filled");

	/* mmap64 is the same function */
	p = mmap64(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED && counter("shim_maps_adopted") == adopted0 + 5, "mmap64 not managed");
	CHECK(munmap(p, len) == 0, "munmap");
	adopted0++;

	/* munmap whole, then the same length again: adopted anew */
	CHECK(munmap(m[3], len) == 0, "munmap");
	CHECK(counter("regions") == r0 + 3, "munmapped region still there");
	m[3] = map_anon(len);
	CHECK(counter("shim_maps_adopted") == adopted0 + 5, "new mapping not adopted");
	for (i = 0; i < (int)(len / PAGE); i += 61)
		CHECK(page_zero(m[3] + i * PAGE), "fresh mapping not zero at page %d", i);

	/* mremap of a whole mapping that must move (MREMAP_FIXED elsewhere) */
	p = map_anon(2 * len);
	CHECK(munmap(p, 2 * len) == 0, "munmap");
	q = mremap(m[0], len, 2 * len, MREMAP_MAYMOVE | MREMAP_FIXED, p);
	CHECK(q == p, "mremap to a fixed address: %p", (void *)q);
	verify(q, len, 10, 0, "moved mapping");
	fill(q + len, len, 20, 0);
	verify(q + len, len, 20, 0, "grown part");
	verify(q, len, 10, 0, "moved mapping after the grown part");
	CHECK(counter("remap_unsupported") == 0, "a whole-mapping mremap was not followed");
	m[0] = q;

	/* two adjacent mappings (one VMA to the kernel) moved by one mremap */
	p = mmap(NULL, 4 * len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(p != MAP_FAILED, "reservation");
	p = (char *)(((uintptr_t)p + len - 1) & ~(uintptr_t)(len - 1)); /* folio aligned */
	CHECK(mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p &&
	      mmap(p + len, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
		   0) == p + len,
	      "adjacent mappings");
	fill(p, 2 * len, 90, 0);
	q = map_anon(2 * len);
	CHECK(munmap(q, 2 * len) == 0, "munmap");
	CHECK(mremap(p, 2 * len, 2 * len, MREMAP_MAYMOVE | MREMAP_FIXED, q) == q,
	      "mremap of two adjacent mappings: %s", strerror(errno));
	verify(q, 2 * len, 90, 0, "two mappings moved by one mremap");
	CHECK(counter("remap_unsupported") == 0, "the remap of two regions was not followed");
	CHECK(munmap(q, 2 * len) == 0, "munmap");

	/* part of a mapping: never moved (refused or grown in place) */
	q = mremap(m[1] + len / 2, len / 2, len, MREMAP_MAYMOVE);
	CHECK(q == MAP_FAILED || q == m[1] + len / 2, "part of a region moved to %p", (void *)q);
	verify(m[1], len, 11, 0, "mapping after a partial mremap");

	/* partial munmap: the rest keeps its data */
	CHECK(munmap(m[2] + len / 4, len / 4) == 0, "partial munmap");
	verify(m[2], len / 4, 12, 0, "head after a partial munmap");
	for (i = (int)(len / 2 / PAGE); i < (int)(len / PAGE); i++)
		CHECK(page_is(m[2] + (size_t)i * PAGE, 12, (uint64_t)i, 0),
		      "tail page %d after a partial munmap", i);

	/* MADV_DONTNEED: zeros */
	CHECK(madvise(m[1], len / 2, MADV_DONTNEED) == 0, "madvise");
	for (i = 0; i < (int)(len / 2 / PAGE); i += 7)
		CHECK(page_zero(m[1] + (size_t)i * PAGE), "page %d after MADV_DONTNEED", i);

	/* MAP_FIXED over a managed mapping: a fresh zero mapping */
	p = mmap(m[1], len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(p == m[1], "MAP_FIXED");
	for (i = 0; i < (int)(len / PAGE); i += 13)
		CHECK(page_zero(p + (size_t)i * PAGE), "page %d after MAP_FIXED", i);
	fill(p, len, 30, 0);
	verify(p, len, 30, 0, "MAP_FIXED mapping");

	/* shared and file mappings are never managed */
	fd = memfd_create("shimtest", 0);
	CHECK(fd >= 0 && ftruncate(fd, (off_t)len) == 0, "memfd");
	r0 = counter("regions");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED && q != MAP_FAILED, "shared mappings");
	CHECK(counter("regions") == r0, "a shared mapping was adopted");
	memset(p, 1, len);
	munmap(p, len);
	munmap(q, len);
	close(fd);
	CHECK(counter("remap_unsupported") == 0, "a remap was not followed");
	return 0;
}

static int child_madvfree(void)
{
	char *m = map_anon(DATA);
	size_t half = DATA / 2, i;

	fill(m, DATA, 40, 0);
	CHECK(madvise(m, half, MADV_FREE) == 0, "MADV_FREE");
	CHECK(counter("shim_madv_free_lazy") >= 1, "MADV_FREE not given to uswap's lazy free");
	/* write every 4th page of the freed half; read the other half */
	for (i = 0; i < half / PAGE; i += 4)
		pagegen_fill(m + i * PAGE, 40, i, 1);
	verify(m + half, 0, 40, 0, "");
	for (i = half / PAGE; i < DATA / PAGE; i++)
		CHECK(page_is(m + i * PAGE, 40, i, 0), "untouched page %zu lost", i);
	for (i = 0; i < half / PAGE; i++) {
		const char *pg = m + i * PAGE;

		if (i % 4 == 0)
			CHECK(page_is(pg, 40, i, 1), "page %zu written after MADV_FREE lost", i);
		else
			CHECK(page_zero(pg) || page_is(pg, 40, i, 0),
			      "freed page %zu is neither its old data nor zero", i);
	}
	/*
	 * Lazy free of resident memory, then written again at once (what
	 * jemalloc does with a purged extent it reuses): chunk by chunk over
	 * 4x the budget, none of it may escape the budget.
	 */
	for (i = 0; i < DATA; i += 8ul << 20) {
		size_t p;

		verify(m + i, 0, 40, 0, "");
		for (p = 0; p < (8ul << 20) / PAGE; p++) /* bring the chunk in */
			CHECK(page_is(m + i + p * PAGE, 40, i / PAGE + p, i < half && p % 4 == 0 ? 1 : 0) ||
			      (i < half && page_zero(m + i + p * PAGE)),
			      "page %zu before the second MADV_FREE", i / PAGE + p);
		CHECK(madvise(m + i, 8ul << 20, MADV_FREE) == 0, "MADV_FREE");
		for (p = 0; p < (8ul << 20) / PAGE; p++)
			pagegen_fill(m + i + p * PAGE, 40, i / PAGE + p, 2);
	}
	check_rss("lazily freed memory written again");
	CHECK(counter("lazyfree_cancel") > 0, "writes after MADV_FREE did not cancel lazy free");
	for (i = 0; i < DATA / PAGE; i++)
		CHECK(page_is(m + i * PAGE, 40, i, 2), "page %zu written again lost", i);
	return 0;
}

static int child_execd(void)
{
	char *b;

	/* a program that was exec'd by a managed child: managed anew */
	CHECK(counter("fork_events") == 0 && counter("swapout_pages") == 0,
	      "the exec'd program did not start clean");
	b = malloc(DATA / 2);
	fill(b, DATA / 2, 60, 0);
	verify(b, DATA / 2, 60, 0, "exec'd program's block");
	CHECK(counter("swapout_pages") > 0, "the exec'd program is not managed");
	free(b);
	return 0;
}

static int child_fork(void)
{
	char *b = malloc(DATA);
	pid_t kids[4];
	int i, st;

	CHECK(b, "malloc");
	fill(b, DATA, 50, 0);
	CHECK(counter("swapout_pages") > 0, "nothing swapped out before the fork");
	for (i = 0; i < 4; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0, "fork");
		if (kids[i] == 0) {
			size_t p;

			if (i == 3) {
				execl(self_exe, self_exe, "execd", (char *)NULL);
				_exit(126);
			}
			/* the child computes on inherited data, writes its own */
			verify(b, DATA, 50, 0, "inherited data");
			for (p = (size_t)i; p < DATA / PAGE; p += 3)
				pagegen_fill(b + p * PAGE, 50, p, (uint64_t)i + 1);
			for (p = 0; p < DATA / PAGE; p++)
				CHECK(page_is(b + p * PAGE, 50, p, p % 3 == (size_t)i ? (uint64_t)i + 1 : 0),
				      "child %d page %zu", i, p);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++) {
		CHECK(waitpid(kids[i], &st, 0) == kids[i], "waitpid");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed (status %#x)", i, st);
	}
	verify(b, DATA, 50, 0, "parent data after the children");
	CHECK(counter("fork_events") >= 3, "fork events: %llu",
	      (unsigned long long)counter("fork_events"));
	free(b);
	return 0;
}

#define NTHREADS 4
#define ROUNDS 3
static char *shared_block;
static atomic_ulong signals_seen;
static volatile unsigned long signal_sum;

static void on_alarm(int sig)
{
	(void)sig;
	/* a signal handler that touches managed memory */
	signal_sum += (unsigned char)shared_block[(atomic_load(&signals_seen) * 4096 * 31) % DATA];
	atomic_fetch_add(&signals_seen, 1);
}

static void *thread_main(void *arg)
{
	uintptr_t t = (uintptr_t)arg;
	size_t slice = DATA / NTHREADS, p;
	char *mine = shared_block + t * slice;
	uint64_t r;

	for (r = 1; r <= ROUNDS; r++) {
		for (p = 0; p < slice / PAGE; p++) {
			CHECK(page_is(mine + p * PAGE, 70 + t, p, r - 1), "thread %lu page %zu round %llu",
			      (unsigned long)t, p, (unsigned long long)r);
			pagegen_fill(mine + p * PAGE, 70 + t, p, r);
		}
	}
	return NULL;
}

static int child_threads(void)
{
	struct itimerval it = { { 0, 2000 }, { 0, 2000 } };
	pthread_t th[NTHREADS];
	uintptr_t t;

	shared_block = malloc(DATA);
	for (t = 0; t < NTHREADS; t++)
		fill(shared_block + t * (DATA / NTHREADS), DATA / NTHREADS, 70 + t, 0);
	signal(SIGALRM, on_alarm);
	setitimer(ITIMER_REAL, &it, NULL);
	for (t = 0; t < NTHREADS; t++)
		CHECK(pthread_create(&th[t], NULL, thread_main, (void *)t) == 0, "pthread_create");
	for (t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	CHECK(atomic_load(&signals_seen) > 0, "no signal arrived");
	check_rss("threads done");
	return 0;
}

static char *exit_block;

static void at_exit_check(void)
{
	/* runs after main returned: uswap must still serve faults */
	verify(exit_block, DATA, 80, 0, "at exit");
	fprintf(stderr, "atexit-ok\n");
}

static int child_exit(void)
{
	exit_block = malloc(DATA);
	fill(exit_block, DATA, 80, 0);
	atexit(at_exit_check);
	return 0;
}

static int child_main(const char *scenario)
{
	baseline_rss = st_vmrss(getpid());
	CHECK(counter("limit_bytes") == LIMIT, "not running under uswap run --limit " LIMIT_ARG);
	if (!strcmp(scenario, "malloc"))
		return child_malloc();
	if (!strcmp(scenario, "mmap"))
		return child_mmap();
	if (!strcmp(scenario, "madvfree"))
		return child_madvfree();
	if (!strcmp(scenario, "fork"))
		return child_fork();
	if (!strcmp(scenario, "execd"))
		return child_execd();
	if (!strcmp(scenario, "threads"))
		return child_threads();
	if (!strcmp(scenario, "exit"))
		return child_exit();
	fprintf(stderr, "unknown scenario %s\n", scenario);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: shim_probe SCENARIO (under uswap run --limit " LIMIT_ARG ")\n");
		return 2;
	}
	return child_main(argv[1]);
}

/* SPDX-License-Identifier: MIT */
/*
 * Shared regions (USWAP_MAP_SHARED) on the real kernel: two processes (a
 * forked child, and a program spawned from this one that maps the region
 * from its descriptor) write and read each other's data across page-outs
 * and swap-ins by either side, writers race evictions, zero pages, and
 * uswap_pagemap agrees in both processes after every scripted step.
 *
 * The expectation is a shadow copy in plain shared memory (not managed)
 * that every process updates with each write it makes to the region.
 *
 * uswap-test-labels: threads
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/pagetable.h"
#include "os/os.h"
#include "runtime/shared.h"
#include "testlib.h"
#include "uswap.h"

#define PAGE 4096ul
#define FOLIO (64ul << 10)
#define FPAGES (FOLIO / PAGE)
#define MiB (1ul << 20)

/* children start their own handler threads */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0:die_after_fork=0")

extern char **environ;

/* ---- the script's plumbing: two pipes, one step number at a time ---- */

struct chan {
	int rd, wr;
};

static int chan_send(struct chan *c, int step)
{
	return write(c->wr, &step, sizeof(step)) == sizeof(step) ? 0 : -1;
}

/* @return the step received, or -1 (closed, or a minute of silence) */
static int chan_recv(struct chan *c)
{
	struct pollfd p = { .fd = c->rd, .events = POLLIN };
	int step;

	if (poll(&p, 1, 60000) != 1 || read(c->rd, &step, sizeof(step)) != sizeof(step))
		return -1;
	return step;
}

/* A pair of channels: to[0]/from[1] for one side, to[1]/from[0] the other. */
static void chan_pair(struct chan *a, struct chan *b)
{
	int p1[2], p2[2];

	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	a->rd = p1[0];
	b->wr = p1[1];
	b->rd = p2[0];
	a->wr = p2[1];
}

static void *shadow_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

/* Write page i of mem and of its shadow: a pattern of (tag, page), one
 * page in 5 all zero (the zero map), one in 7 one repeated word. */
static void page_write(char *mem, char *shadow, size_t i, uint64_t tag)
{
	uint64_t *w = (uint64_t *)(void *)(shadow + i * PAGE);
	size_t k;

	for (k = 0; k < PAGE / 8; k++) {
		if (i % 5 == 0)
			w[k] = 0;
		else if (i % 7 == 0)
			w[k] = tag * 0x9e3779b97f4a7c15ull + i;
		else
			w[k] = (tag << 40) ^ (i << 16) ^ (k * 0x2545f4914f6cdd1dull);
	}
	memcpy(mem + i * PAGE, shadow + i * PAGE, PAGE);
}

static bool page_is_zero(const char *p)
{
	for (size_t k = 0; k < PAGE; k++)
		if (p[k])
			return false;
	return true;
}

/* What uswap_pagemap must say of every page of a shared region whose
 * folios are all in (present) or all out, from the shadow. */
static int pagemap_expect(uswap_t *u, const char *mem, const char *shadow, size_t pages,
			  bool present)
{
	uint64_t *pm = calloc(pages, sizeof(*pm));
	int bad = 0;
	size_t i;

	if (!pm || uswap_pagemap(u, mem, pages, pm)) {
		fprintf(stderr, "uswap_pagemap failed: %s\n", uswap_last_error());
		free(pm);
		return -1;
	}
	for (i = 0; i < pages && !bad; i++) {
		uint64_t want = USWAP_PM_SHARED | (4ull << 8);

		if (present)
			want |= USWAP_PM_PRESENT;
		else
			want |= page_is_zero(shadow + i * PAGE) ? USWAP_PM_ZERO : USWAP_PM_SWAPPED;
		if (pm[i] != want) {
			fprintf(stderr, "pid %d: page %zu: pagemap 0x%llx, expected 0x%llx\n", getpid(),
				i, (unsigned long long)pm[i], (unsigned long long)want);
			bad = 1;
		}
	}
	free(pm);
	return bad;
}

static int same_as_shadow(const char *mem, const char *shadow, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE) {
		if (memcmp(mem + off, shadow + off, PAGE)) {
			fprintf(stderr, "pid %d: page %zu differs from the shadow\n", getpid(),
				off / PAGE);
			return 1;
		}
	}
	return 0;
}

/*
 * The script both sides follow.  Side 0 is the test's process, side 1 the
 * other (forked or spawned).  Each step is run by one side, then the other
 * checks pagemap and data.  Returns 0 or the failing step (as exit code).
 */
static int script_side(int side, uswap_t *u, char *mem, char *shadow, size_t len,
		       struct chan *c)
{
	size_t pages = len / PAGE, i;
	int step;

	/* step 0: side 1 is in the region's mapper table (a forked child
	 * enters it in its fork handler; until then evictions are refused) */
	if (side == 1 ? chan_send(c, 0) : chan_recv(c) != 0)
		return 99;
	for (step = 1; step <= 6; step++) {
		bool mine = (step % 2) == (side == 0 ? 1 : 0);

		if (!mine) {
			if (chan_recv(c) != step)
				return 100 + step;
			continue;
		}
		/* the folios are out (evicted by the other side, or before the
		 * script): both sides agree on it */
		if (pagemap_expect(u, mem, shadow, pages, false))
			return 10 + step;
		/* read everything back (swap-in by this side) */
		if (same_as_shadow(mem, shadow, len))
			return 20 + step;
		if (pagemap_expect(u, mem, shadow, pages, true))
			return 30 + step;
		/* write a third of the pages, tagged with the step, and evict */
		for (i = (size_t)step % 3; i < pages; i += 3)
			page_write(mem, shadow, i, (uint64_t)step);
		if (uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT))
			return 40 + step;
		if (pagemap_expect(u, mem, shadow, pages, false))
			return 50 + step;
		if (chan_send(c, step))
			return 60 + step;
	}
	/* both sides read the last state */
	if (same_as_shadow(mem, shadow, len))
		return 70;
	return 0;
}

/* ---- the other process: forked, or spawned with the descriptor ---- */

#define MAPPER_ARG "--shared-mapper"
/* descriptors the spawned mapper gets */
#define FD_REGION 20
#define FD_SHADOW 21
#define FD_RD 22
#define FD_WR 23

static int mapper_main(size_t len)
{
	struct uswap_config cfg = { .folio_size = FOLIO };
	struct chan c = { FD_RD, FD_WR };
	uswap_t *u;
	char *mem, *shadow;
	int rc;

	if (uswap_open(&cfg, &u)) {
		fprintf(stderr, "mapper: uswap_open: %s\n", uswap_last_error());
		return 2;
	}
	shadow = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, FD_SHADOW, 0);
	if (shadow == MAP_FAILED)
		return 3;
	if (uswap_map_fd(u, FD_REGION, len, USWAP_MAP_SHARED, (void **)&mem)) {
		fprintf(stderr, "mapper: uswap_map_fd: %s\n", uswap_last_error());
		return 4;
	}
	rc = script_side(1, u, mem, shadow, len, &c);
	if (!rc && uswap_unmap(u, mem, len))
		rc = 5;
	uswap_close(u);
	return rc;
}

static void wait_ok(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail_msg("the other process failed: status 0x%x (exit code %d)", st,
			 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static uswap_t *open_cfg(size_t limit)
{
	struct uswap_config cfg = { .limit = limit, .folio_size = FOLIO };

	return itest_open(&cfg);
}

/* Fill the whole region (every folio in use), evict it, check pagemap. */
static void fill_and_evict(uswap_t *u, char *mem, char *shadow, size_t len)
{
	size_t pages = len / PAGE, i;

	for (i = 0; i < pages; i++)
		page_write(mem, shadow, i, 1000);
	assert_int_equal(pagemap_expect(u, mem, shadow, pages, true), 0);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(pagemap_expect(u, mem, shadow, pages, false), 0);
}

static void test_fork_script(void **state)
{
	size_t len = 2 * MiB, pages = len / PAGE;
	uswap_t *u = open_cfg(0);
	char *mem, *shadow = shadow_map(len);
	struct chan a, b;
	pid_t pid;

	(void)state;
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	fill_and_evict(u, mem, shadow, len);
	assert_true(itest_stat(u, "zero_pages_out") >= pages / 5);
	chan_pair(&a, &b);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = script_side(1, u, mem, shadow, len, &b);

		/* unmap by this side: the other keeps the region */
		if (!rc && uswap_unmap(u, mem, len))
			rc = 80;
		_exit(rc);
	}
	assert_int_equal(script_side(0, u, mem, shadow, len, &a), 0);
	wait_ok(pid);
	/* the child is gone: evicting and reading still work */
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(pagemap_expect(u, mem, shadow, pages, false), 0);
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	munmap(shadow, len);
}

static void test_spawned_mapper_script(void **state)
{
	size_t len = 2 * MiB;
	uswap_t *u = open_cfg(0);
	char *mem, *shadow, lenarg[32];
	char *argv[] = { "/proc/self/exe", MAPPER_ARG, lenarg, NULL };
	posix_spawn_file_actions_t fa;
	struct chan a, b;
	int fd, shadow_fd;
	pid_t pid;

	(void)state;
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	fd = uswap_region_fd(u, mem);
	assert_true(fd >= 0);
	shadow_fd = memfd_create("shadow", 0);
	assert_true(shadow_fd >= 0);
	assert_int_equal(ftruncate(shadow_fd, (off_t)len), 0);
	shadow = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, shadow_fd, 0);
	assert_true(shadow != MAP_FAILED);
	fill_and_evict(u, mem, shadow, len);
	chan_pair(&a, &b);
	snprintf(lenarg, sizeof(lenarg), "%zu", len);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, FD_REGION);
	posix_spawn_file_actions_adddup2(&fa, shadow_fd, FD_SHADOW);
	posix_spawn_file_actions_adddup2(&fa, b.rd, FD_RD);
	posix_spawn_file_actions_adddup2(&fa, b.wr, FD_WR);
	assert_int_equal(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(script_side(0, u, mem, shadow, len, &a), 0);
	wait_ok(pid);
	/* the other process unmapped and exited: all still works here */
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	close(fd);
	close(shadow_fd);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	munmap(shadow, len);
}

/* ---- writers racing evictions, in two processes ---- */

#define RACE_ROUNDS 300

struct evictor {
	uswap_t *u;
	char *mem;
	size_t len;
	volatile int stop; /* read with atomics */
	int rc;
};

static void *evictor_main(void *arg)
{
	struct evictor *e = arg;

	while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
		int rc = uswap_advise(e->u, e->mem, e->len, USWAP_ADV_PAGEOUT);

		if (rc)
			e->rc = rc;
		usleep(200);
	}
	return NULL;
}

/* Increment word `slot` of every page, RACE_ROUNDS times. */
static void increment_all(char *mem, size_t pages, unsigned slot)
{
	for (unsigned r = 0; r < RACE_ROUNDS; r++)
		for (size_t i = 0; i < pages; i++)
			((volatile uint64_t *)(void *)(mem + i * PAGE))[slot]++;
}

static void test_writers_race_eviction(void **state)
{
	size_t len = 1 * MiB, pages = len / PAGE, i;
	uswap_t *u = open_cfg(512 << 10); /* half the region: reclaim evicts too */
	struct evictor e = { 0 };
	pthread_t t;
	char *mem;
	pid_t pid;

	(void)state;
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the child writes word 1 of every page and evicts too */
		struct evictor ce = { .u = u, .mem = mem, .len = len };
		pthread_t ct;

		if (pthread_create(&ct, NULL, evictor_main, &ce))
			_exit(2);
		increment_all(mem, pages, 1);
		__atomic_store_n(&ce.stop, 1, __ATOMIC_RELEASE);
		pthread_join(ct, NULL);
		_exit(ce.rc ? 3 : 0);
	}
	e.u = u;
	e.mem = mem;
	e.len = len;
	assert_int_equal(pthread_create(&t, NULL, evictor_main, &e), 0);
	increment_all(mem, pages, 0);
	wait_ok(pid);
	__atomic_store_n(&e.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	assert_int_equal(e.rc, 0);
	for (i = 0; i < pages; i++) {
		uint64_t *w = (uint64_t *)(void *)(mem + i * PAGE);

		if (w[0] != RACE_ROUNDS || w[1] != RACE_ROUNDS)
			fail_msg("page %zu: counts %llu (parent) and %llu (child), expected %d: a "
				 "write was lost", i, (unsigned long long)w[0],
				 (unsigned long long)w[1], RACE_ROUNDS);
	}
	/* evictions happened here (the child's are its own counters) */
	assert_true(itest_stat(u, "swapout_pages") > 0);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
}

/* ---- a mapper killed in the middle of evictions ---- */

/* The child evicts and reads back the region without end; it is killed
 * at a random instant, often holding a folio's lock or the mapper table's
 * (an exit does the same to a process's threads).  The parent must still
 * read every byte, evict and read again: no hang, nothing lost. */
static void test_mapper_killed_mid_eviction(void **state)
{
	size_t len = 1 * MiB, pages = len / PAGE, i;
	uswap_t *u = open_cfg(0);
	char *mem, *shadow = shadow_map(len);
	struct rng rng;
	int round;

	(void)state;
	rng_seed(&rng, 5);
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	for (i = 0; i < pages; i++)
		page_write(mem, shadow, i, 9);
	for (round = 0; round < 6; round++) {
		struct chan a, b;
		pid_t pid;
		int st;

		chan_pair(&a, &b);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* in the mapper table from here on (a child killed before
			 * that would hold evictions back for 40 s: shared.c) */
			chan_send(&b, 0);
			for (;;) {
				uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT);
				if (same_as_shadow(mem, shadow, len))
					_exit(1);
			}
		}
		assert_int_equal(chan_recv(&a), 0);
		usleep((useconds_t)(2000 + rng_below(&rng, 40000)));
		kill(pid, SIGKILL);
		close(a.rd);
		close(a.wr);
		close(b.rd);
		close(b.wr);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st)); /* it never found a wrong byte */
		assert_int_equal(same_as_shadow(mem, shadow, len), 0);
		assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
		assert_int_equal(pagemap_expect(u, mem, shadow, pages, false), 0);
		assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	}
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	munmap(shadow, len);
}

/* ---- locks left behind by dead processes, made on purpose ---- */

/* The pid of a process that existed and is gone (reaped). */
static pid_t dead_pid(void)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return pid;
}

/* The region's header, mapped from its descriptor (white box: the layout
 * of runtime/shared.h). */
static struct shared_header *header_map(uswap_t *u, const char *mem)
{
	int fd = uswap_region_fd(u, mem);
	void *h;

	assert_true(fd >= 0);
	h = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(h != MAP_FAILED);
	return h;
}

/* A hang is a failure: a thread that ends the test after `seconds` unless
 * watchdog_stop is called first (an alarm would wait: uswap's calls block
 * signals). */
struct watchdog {
	pthread_t thread;
	int pipe[2];
	int seconds;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct pollfd p = { .fd = w->pipe[0], .events = POLLIN };

	if (poll(&p, 1, w->seconds * 1000) == 0) {
		fprintf(stderr, "the test hung for %d s: a lock left by a dead process was never "
				"taken over\n", w->seconds);
		_exit(1);
	}
	return NULL;
}

static void watchdog_start(struct watchdog *w, int seconds)
{
	w->seconds = seconds;
	assert_int_equal(pipe(w->pipe), 0);
	assert_int_equal(pthread_create(&w->thread, NULL, watchdog_main, w), 0);
}

static void watchdog_stop(struct watchdog *w)
{
	close(w->pipe[1]);
	pthread_join(w->thread, NULL);
	close(w->pipe[0]);
}

/*
 * The killed-mapper test above hits these windows by chance (CI hung on
 * them twice); here they are made: the mapper table's lock held by a dead
 * process, and a folio locked by nobody (a process killed between the
 * lock and naming itself owner) after a mapper died.  Both must be taken
 * over, with every byte intact.
 */
static void test_dead_lock_holders_taken_over(void **state)
{
	size_t len = 1 * MiB, pages = len / PAGE, i;
	pid_t gone = dead_pid();
	uswap_t *u = open_cfg(0);
	char *mem, *shadow = shadow_map(len);
	struct shared_header *h;
	uint32_t *fword;
	struct watchdog dog;
	pid_t pid;
	int st;

	(void)state;
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	h = header_map(u, mem);
	fword = (uint32_t *)(void *)(h + 1);
	for (i = 0; i < pages; i++)
		page_write(mem, shadow, i, 11);
	watchdog_start(&dog, 60);

	/* the table's lock, held by a process that is gone */
	__atomic_store_n(&h->table_lock, (uint32_t)gone, __ATOMIC_RELEASE);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(__atomic_load_n(&h->table_lock, __ATOMIC_ACQUIRE), 0);
	assert_int_equal(pagemap_expect(u, mem, shadow, pages, false), 0);
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);

	/* a mapper that dies (it is in the table from fork on) and is dropped
	 * by the next eviction: the death is remembered */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	for (i = 0; i < SHARED_MAPPERS_MAX; i++)
		assert_int_not_equal(h->mapper[i].pid, (uint32_t)pid);
	assert_true(h->mapper_deaths >= 1);

	/* folio 3, paged out, locked by nobody: the read waits, then takes
	 * it over and gets the data */
	__atomic_fetch_or(&fword[3], FOLIO_LOCKED, __ATOMIC_ACQ_REL);
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	assert_int_equal(__atomic_load_n(&fword[3], __ATOMIC_ACQUIRE) & FOLIO_LOCKED, 0);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(pagemap_expect(u, mem, shadow, pages, false), 0);
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	watchdog_stop(&dog);
	munmap(h, PAGE);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	munmap(shadow, len);
}

/* Reads folio 3 of a region (one byte per page): the fault waits for
 * its lock. */
struct folio_reader {
	const char *mem;
	volatile int done;
	unsigned sum;
};

static void *folio_reader_main(void *arg)
{
	struct folio_reader *rd = arg;
	size_t k;

	for (k = 0; k < FOLIO; k += PAGE)
		rd->sum += (unsigned char)((volatile const char *)rd->mem)[3 * FOLIO + k + 8];
	__atomic_store_n(&rd->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Locked by nobody, then handed over (unlocked and locked again, by a live
 * process between its two stores, before the waiter ran): the waiter's
 * 5 s start again there.  Here the folio is locked with no owner for 3 s,
 * handed over, and held 3 s more: a waiter that counted from the first
 * lock took over the second one, a live lock, at 5 s.
 */
static void test_ownerless_time_restarts_at_hand_over(void **state)
{
	size_t len = 1 * MiB, pages = len / PAGE, i;
	uswap_t *u = open_cfg(0);
	char *mem, *shadow = shadow_map(len);
	struct folio_reader rd = { 0 };
	struct shared_header *h;
	uint32_t *fword, *owner;
	pthread_t t;
	pid_t pid;
	int st;

	(void)state;
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	h = header_map(u, mem);
	fword = (uint32_t *)(void *)(h + 1);
	owner = fword + 2 * (len / FOLIO); /* after the words and the blob lengths */
	for (i = 0; i < pages; i++)
		page_write(mem, shadow, i, 12);
	/* a mapper died: the ownerless take-over is armed */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_true(h->mapper_deaths >= 1);

	__atomic_fetch_or(&fword[3], FOLIO_LOCKED, __ATOMIC_ACQ_REL);
	rd.mem = mem;
	assert_int_equal(pthread_create(&t, NULL, folio_reader_main, &rd), 0);
	sleep(3);
	assert_false(__atomic_load_n(&rd.done, __ATOMIC_ACQUIRE));
	assert_true(__atomic_load_n(&fword[3], __ATOMIC_ACQUIRE) & FOLIO_WAITERS);
	/* unlocked and locked again in one step, and the waiter woken; the
	 * word is not the same as before (as after most hand-overs: a flag
	 * set or cleared at the unlock), so that a waiter that was awake at
	 * the wake-up sees it too: one that does not cannot tell this from a
	 * dead locker, which is the known limit (ARCHITECTURE.md) */
	__atomic_fetch_and(&fword[3], ~FOLIO_WAITERS, __ATOMIC_ACQ_REL);
	__atomic_fetch_xor(&fword[3], FOLIO_REFERENCED, __ATOMIC_ACQ_REL);
	syscall(SYS_futex, &fword[3], FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
	sleep(3);
	assert_int_equal(__atomic_load_n(owner + 3, __ATOMIC_ACQUIRE), 0);
	assert_true(__atomic_load_n(&fword[3], __ATOMIC_ACQUIRE) & FOLIO_LOCKED);
	assert_false(__atomic_load_n(&rd.done, __ATOMIC_ACQUIRE));
	/* our unlock: the waiter gets it, and the data */
	__atomic_fetch_and(&fword[3], ~(FOLIO_LOCKED | FOLIO_WAITERS), __ATOMIC_ACQ_REL);
	syscall(SYS_futex, &fword[3], FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	munmap(h, PAGE);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	munmap(shadow, len);
}

/* A process whose main thread has exited (pthread_exit; or the first of
 * its threads a SIGKILL ended) reads as a zombie in /proc/PID/stat while
 * its other threads run on: it must not be taken for gone, or a waiter
 * would take over a lock one of those threads still holds. */
static void *blocked_reader(void *arg)
{
	char c;

	/* then the whole process (a uswap instance forked with it has threads) */
	_exit(read(*(int *)arg, &c, 1) == 0 ? 0 : 1);
}

static bool proc_state_zombie(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'Z';
}

static void test_process_gone_means_every_thread(void **state)
{
	static int go[2];
	siginfo_t si;
	pid_t pid;
	int i, st;

	(void)state;
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_t t;

		close(go[1]);
		if (pthread_create(&t, NULL, blocked_reader, &go[0]))
			_exit(2);
		pthread_exit(NULL);
	}
	close(go[0]);
	/* the main thread has gone: what /proc/PID/stat shows (not vacuous) */
	for (i = 0; i < 5000 && !proc_state_zombie(pid); i++)
		usleep(1000);
	assert_true(proc_state_zombie(pid));
	assert_false(os_process_gone(pid));
	/* it ends: gone, as a zombie and once reaped */
	close(go[1]);
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_true(os_process_gone(pid));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(os_process_gone(pid));
	assert_false(os_process_gone(getpid()));
}

/* ---- the budget: shared folios are reclaimed ---- */

static void test_budget_reclaims_shared(void **state)
{
	size_t len = 8 * MiB, limit = 1 * MiB, pages = len / PAGE, i, present = 0;
	uswap_t *u = open_cfg(limit);
	char *mem, *shadow = shadow_map(len);
	uint64_t *pm = calloc(pages, sizeof(*pm));

	(void)state;
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	for (i = 0; i < pages; i++)
		page_write(mem, shadow, i, 7);
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	assert_int_equal(uswap_pagemap(u, mem, pages, pm), 0);
	for (i = 0; i < pages; i++)
		present += (pm[i] & USWAP_PM_PRESENT) != 0;
	/* within the budget once the faults are done (while they run:
	 * test_budget_never_exceeded_shared) */
	if (present * PAGE > limit)
		fail_msg("%zu bytes of the shared region are resident, the budget is %zu",
			 present * PAGE, limit);
	assert_true(itest_stat(u, "reclaim_direct") + itest_stat(u, "reclaim_background") > 0);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	free(pm);
	munmap(shadow, len);
}

/* Shared folios come in only where they fit, as private ones do: faults
 * evict first, so resident memory is never seen above the budget, not even
 * for the moment an eviction to make room takes (it was counted first and
 * made room for after: a folio above, for that moment). */
static void test_budget_never_exceeded_shared(void **state)
{
	size_t len = 8 * MiB, limit = 1 * MiB, pages = len / PAGE, i;
	uswap_t *u = open_cfg(limit);
	char *mem, *shadow = shadow_map(len);
	struct itest_watch w;

	(void)state;
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	itest_watch_start(&w, u, "shared_resident_bytes");
	for (i = 0; i < pages; i++)
		page_write(mem, shadow, i, 9);
	for (int pass = 0; pass < 2; pass++)
		assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	itest_watch_stop(&w);
	print_message("budget: %lu samples, at most %lu shared resident bytes of %zu\n",
		      (unsigned long)w.samples, (unsigned long)w.max, limit);
	if (w.max > limit)
		fail_msg("shared_resident_bytes seen at %lu, above the budget of %zu",
			 (unsigned long)w.max, limit);
	/* private memory: none (it is the shared region's figure, not this) */
	assert_int_equal(itest_stat(u, "resident_bytes"), 0);
	assert_int_equal(itest_stat(u, "limit_overshoot_bytes"), 0);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	munmap(shadow, len);
}

/* ---- system calls on swapped-out shared memory ---- */

static void test_syscalls_on_swapped_out(void **state)
{
	size_t len = 1 * MiB, pages = len / PAGE, i;
	uswap_t *u = open_cfg(0);
	char *mem, *shadow = shadow_map(len), *buf = malloc(4 * PAGE);
	int p[2];

	(void)state;
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	for (i = 0; i < pages; i++)
		page_write(mem, shadow, i, 3);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(pipe(p), 0);
	/* write(2) from swapped-out pages: the kernel's own access faults */
	assert_int_equal(write(p[1], mem + 10 * PAGE, 4 * PAGE), (ssize_t)(4 * PAGE));
	assert_int_equal(read(p[0], buf, 4 * PAGE), (ssize_t)(4 * PAGE));
	assert_memory_equal(buf, shadow + 10 * PAGE, 4 * PAGE);
	/* read(2) into swapped-out pages */
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	memset(buf, 0x77, 4 * PAGE);
	memcpy(shadow + 40 * PAGE, buf, 4 * PAGE);
	assert_int_equal(write(p[1], buf, 4 * PAGE), (ssize_t)(4 * PAGE));
	assert_int_equal(read(p[0], mem + 40 * PAGE, 4 * PAGE), (ssize_t)(4 * PAGE));
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(same_as_shadow(mem, shadow, len), 0);
	close(p[0]);
	close(p[1]);
	free(buf);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	munmap(shadow, len);
}

/* ---- bad input ---- */

static void test_bad_input(void **state)
{
	size_t len = 1 * MiB;
	uswap_t *u = open_cfg(0), *u2;
	struct uswap_config cfg2 = { .folio_size = 16 << 10 };
	char *mem, *priv, *other;
	int fd, plain;

	(void)state;
	assert_int_equal(uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem), 0);
	assert_int_equal(uswap_map(u, len, 0, (void **)&priv), 0);
	fd = uswap_region_fd(u, mem + 5 * PAGE);
	assert_true(fd >= 0);

	assert_int_equal(uswap_region_fd(u, priv), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "not inside a shared region"));
	plain = memfd_create("plain", 0);
	assert_int_equal(ftruncate(plain, (off_t)(4 * len)), 0);
	assert_int_equal(uswap_map_fd(u, plain, len, USWAP_MAP_SHARED, (void **)&other), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "not a uswap shared region"));
	assert_int_equal(uswap_map_fd(u, fd, len / 2, USWAP_MAP_SHARED, (void **)&other), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "does not match"));
	assert_int_equal(uswap_map_fd(u, fd, len, 0, (void **)&other), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "USWAP_MAP_SHARED"));
	assert_int_equal(uswap_map_fd(u, fd, 1000, USWAP_MAP_SHARED, (void **)&other), -EINVAL);
	assert_int_equal(uswap_map(u, len, 0x2, (void **)&other), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "0x2"));
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_FREE), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "shared"));
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PIN), -EINVAL);

	/* a folio size that is not the region's */
	u2 = itest_open(&cfg2);
	assert_int_equal(uswap_map_fd(u2, fd, len, USWAP_MAP_SHARED, (void **)&other), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "folio_size"));
	uswap_close(u2);

	/* the same process may map it twice: both views are one memory */
	assert_int_equal(uswap_map_fd(u, fd, len, USWAP_MAP_SHARED, (void **)&other), 0);
	memset(mem + 3 * PAGE, 0x5a, PAGE);
	assert_int_equal(uswap_advise(u, other, len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal((unsigned char)other[3 * PAGE + 17], 0x5a);
	assert_int_equal((unsigned char)mem[3 * PAGE + 17], 0x5a);
	assert_int_equal(uswap_unmap(u, other, len), 0);
	assert_int_equal((unsigned char)mem[3 * PAGE + 100], 0x5a);

	close(plain);
	close(fd);
	assert_int_equal(uswap_unmap(u, priv, len), 0);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_fork_script),
		cmocka_unit_test(test_spawned_mapper_script),
		cmocka_unit_test(test_writers_race_eviction),
		cmocka_unit_test(test_budget_reclaims_shared),
		cmocka_unit_test(test_budget_never_exceeded_shared),
		cmocka_unit_test(test_mapper_killed_mid_eviction),
		cmocka_unit_test(test_dead_lock_holders_taken_over),
		cmocka_unit_test(test_ownerless_time_restarts_at_hand_over),
		cmocka_unit_test(test_process_gone_means_every_thread),
		cmocka_unit_test(test_syscalls_on_swapped_out),
	};

	if (argc == 3 && !strcmp(argv[1], MAPPER_ARG))
		return mapper_main((size_t)strtoull(argv[2], NULL, 10));
	return cmocka_run_group_tests(tests, NULL, NULL);
}

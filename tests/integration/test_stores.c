/* SPDX-License-Identifier: MIT */
/*
 * uswap on the real kernel with each external store: file, ram,file and
 * redis (two real redis-server instances on loopback).  For each: memory
 * four times the budget written, read and changed against its expected
 * contents, everything paged out and read back, the store's I/O counters,
 * and fork (parent and children change their own copies, both read what
 * they inherited from the shared file or servers).  Then a redis server
 * that stops answering: page-out fails, the data stays resident and
 * correct, and works again when the server is back.  The redis store over
 * TLS (rediss://, two servers with TLS ports, certificates made by the
 * test: redis_tls.h) runs the same cycle and forks.
 *
 * uswap-test-labels: threads
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "pagegen.h"
#include "redis_tls.h"
#include "uswap.h"

/* fork with handler threads; fork hooks hold every lock (testlib.h) */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0:die_after_fork=0")

#define PAGE 4096ul
#define PAGE_SEED 29 /* the pages' contents: pagegen_fill(seed, page, version) */
#define MiB (1ul << 20)

static char dir[64], tls_dir[64];
static char uri_file[128], uri_tier[128], uri_redis[128], uri_rediss[256];
static struct redis_server srv_a, srv_b, srv_slow;
static struct redis_tls_server tls_a, tls_b;

static void expect_page(char *buf, size_t i, uint64_t v)
{
	pagegen_fill(buf, PAGE_SEED, i, v);
}

static uswap_t *open_store(const char *store, size_t limit)
{
	struct uswap_config cfg = { .limit = limit, .store = store };

	return itest_open(&cfg);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/uswap-stores-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	if (redis_start(&srv_a, NULL, NULL, NULL) || redis_start(&srv_b, NULL, NULL, NULL))
		return -1;
	snprintf(uri_file, sizeof(uri_file), "file:%s", dir);
	snprintf(uri_tier, sizeof(uri_tier), "ram,file:%s,ram=1M", dir);
	snprintf(uri_redis, sizeof(uri_redis), "redis://127.0.0.1:%d,127.0.0.1:%d", srv_a.port,
		 srv_b.port);
	strcpy(tls_dir, "/tmp/uswap-stores-tls-XXXXXX");
	if (!mkdtemp(tls_dir) || redis_tls_certs(tls_dir) ||
	    redis_tls_start(&tls_a, tls_dir, NULL, false) ||
	    redis_tls_start(&tls_b, tls_dir, NULL, false))
		return -1;
	/* one server by address, one by name (the certificate has both) */
	snprintf(uri_rediss, sizeof(uri_rediss), "rediss://127.0.0.1:%d,localhost:%d?ca=%s/ca.crt",
		 tls_a.tls_port, tls_b.tls_port, tls_dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];

	redis_stop(&srv_a);
	redis_stop(&srv_b);
	redis_stop(&tls_a.srv);
	redis_stop(&tls_b.srv);
	rmdir(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Under a budget: the reclaimer and faults move data through the store. */
static void cycle(const char *store)
{
	size_t len = 16 * MiB, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uswap_t *u = open_store(store, 4 * MiB);
	struct rng r;
	char *mem;

	rng_seed(&r, 0x570e);
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	for (unsigned k = 0; k < pages / 3; k++) {
		size_t i = rng_below(&r, pages);

		expect_page(mem + i * PAGE, i, ++ver[i]);
	}
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
	assert_true(itest_stat(u, "stored_bytes") > 0);
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	assert_true(itest_stat(u, "store_writes") > 0);
	assert_true(itest_stat(u, "store_reads") > 0);
	assert_true(itest_stat(u, "store_read_ns") > 0);
	assert_int_equal(itest_stat(u, "store_errors"), 0);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	assert_int_equal(itest_stat(u, "store_objects"), 0);
	uswap_close(u);
	free(ver);
}

static void test_cycle_file(void **state)
{
	(void)state;
	cycle(uri_file);
}

static void test_cycle_tier(void **state)
{
	(void)state;
	cycle(uri_tier);
}

static void test_cycle_redis(void **state)
{
	(void)state;
	cycle(uri_redis);
}

static void test_cycle_rediss(void **state)
{
	(void)state;
	cycle(uri_rediss);
}

/* Each generation checks what it inherited, changes a third of it, pages
 * everything out (new objects of its own in the shared file or servers)
 * and forks the next; the parent changes its copy meanwhile. */
static int generation(uswap_t *u, char *mem, size_t pages, uint64_t *ver, int depth)
{
	struct rng r;
	pid_t pid;
	int st;

	if (itest_first_bad_page(mem, pages, PAGE_SEED, ver) >= 0)
		return 1;
	rng_seed(&r, 0x6e0 + (uint64_t)depth);
	for (size_t k = 0; k < pages / 3; k++) {
		size_t i = rng_below(&r, pages);

		ver[i] += 100 + (uint64_t)depth;
		expect_page(mem + i * PAGE, i, ver[i]);
	}
	if (uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT)) {
		fprintf(stderr, "generation %d: PAGEOUT: %s\n", depth, uswap_last_error());
		return 2;
	}
	if (itest_first_bad_page(mem, pages, PAGE_SEED, ver) >= 0)
		return 3;
	if (depth == 0)
		return 0;
	if (uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT))
		return 4;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return 10;
	if (pid == 0)
		_exit(generation(u, mem, pages, ver, depth - 1));
	/* meanwhile the parent frees and rewrites its own copy: the child must
	 * not see it, nor lose what it reads from the shared store */
	for (size_t i = 0; i < pages; i += 2) {
		ver[i] += 7;
		expect_page(mem + i * PAGE, i, ver[i]);
	}
	if (uswap_advise(u, mem, pages * PAGE, USWAP_ADV_PAGEOUT))
		return 11;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "generation %d: child status %#x\n", depth, st);
		return 12;
	}
	return itest_first_bad_page(mem, pages, PAGE_SEED, ver) >= 0 ? 13 : 0;
}

static void fork_generations(const char *store)
{
	size_t len = 8 * MiB, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	uswap_t *u = open_store(store, 2 * MiB);
	char *mem;

	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	assert_int_equal(generation(u, mem, pages, ver, 3), 0);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	free(ver);
}

static void test_fork_file(void **state)
{
	(void)state;
	fork_generations(uri_file);
}

static void test_fork_tier(void **state)
{
	(void)state;
	fork_generations(uri_tier);
}

static void test_fork_redis(void **state)
{
	(void)state;
	fork_generations(uri_redis);
}

static void test_fork_rediss(void **state)
{
	(void)state;
	fork_generations(uri_rediss);
}

/* A redis server that stops answering: PAGEOUT fails, nothing is lost, the
 * pages stay resident; when it answers again, page-out works. */
static void test_redis_server_stops(void **state)
{
	size_t len = 2 * MiB, pages = len / PAGE;
	uint64_t *ver = calloc(pages, sizeof(*ver));
	char uri[128];
	uswap_t *u;
	uint64_t t0;
	char *mem;
	int rc;

	(void)state;
	assert_int_equal(redis_start(&srv_slow, NULL, NULL, NULL), 0);
	snprintf(uri, sizeof(uri), "redis://127.0.0.1:%d?timeout=1000", srv_slow.port);
	u = open_store(uri, 0);
	assert_int_equal(uswap_map(u, len, 0, (void **)&mem), 0);
	itest_fill_pages(mem, pages, PAGE_SEED, ver);
	kill(srv_slow.pid, SIGSTOP);
	/* as the kernel's MADV_PAGEOUT, PAGEOUT skips what it cannot evict */
	t0 = (uint64_t)time(NULL);
	rc = uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT);
	assert_int_equal(rc, 0);
	/* one timeout, then the others fail at once */
	assert_true((uint64_t)time(NULL) - t0 < 6);
	assert_int_equal(itest_stat(u, "store_objects"), 0);
	assert_int_equal(itest_stat(u, "store_errors"), pages / 16);
	assert_int_equal(itest_stat(u, "reclaim_fail_other"), pages / 16);
	assert_int_equal(itest_resident_pages(mem, len), (long)pages);
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	kill(srv_slow.pid, SIGCONT);
	/* answering again (a loaded machine may take a while to drain what
	 * queued up): page-out works, after the pause that follows a failure */
	for (int tries = 0; tries < 10; tries++) {
		redisReply *pong = redis_test_cmd(&srv_slow, "PING");

		if (pong)
			freeReplyObject(pong);
		sleep(1);
		assert_int_equal(uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT), 0);
		if (itest_resident_pages(mem, len) < (long)pages / 4)
			break;
	}
	assert_true(itest_stat(u, "store_objects") > 0);
	assert_true(itest_resident_pages(mem, len) < (long)pages / 4);
	itest_assert_pages(mem, pages, PAGE_SEED, ver);
	assert_int_equal(uswap_unmap(u, mem, len), 0);
	uswap_close(u);
	redis_stop(&srv_slow);
	free(ver);
}

/* Bad store URIs fail uswap_open with a message naming them. */
static void test_bad_store_uris(void **state)
{
	static const char *const bad[] = { "file:", "file:/nonexistent/dir", "ram,file:",
					   "redis://nohost", "rediss://127.0.0.1:1", "tape:0" };
	struct uswap_config cfg = { 0 };
	uswap_t *u;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.store = bad[i];
		assert_true(uswap_open(&cfg, &u) < 0);
		if (!*uswap_last_error())
			fail_msg("no message for store \"%s\"", bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_store_uris), cmocka_unit_test(test_cycle_file),
		cmocka_unit_test(test_cycle_tier),     cmocka_unit_test(test_cycle_redis),
		cmocka_unit_test(test_fork_file),      cmocka_unit_test(test_fork_tier),
		cmocka_unit_test(test_fork_redis),     cmocka_unit_test(test_redis_server_stops),
		cmocka_unit_test(test_cycle_rediss),   cmocka_unit_test(test_fork_rediss),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: MIT */
/* uswap-test-labels: threads */
/*
 * The tiered store (ram, then a file): the generic store suite with a ram
 * tier of 1 MiB, so that writeback runs all the time under the suite's
 * puts, gets, frees and threads; then that writeback takes the coldest
 * objects, that objects larger than the ram tier go to the file, bad
 * options, and fork.
 */
#include "store_suite.h"

#include <sys/wait.h>
#include <unistd.h>

/* the ram tier's checker and fork hooks hold all its locks (testlib.h);
 * the ram store makes its rwlocks anew in a forked child, which TSan takes
 * for a lock of a locked mutex (races are still reported) */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0:report_mutex_bugs=0")

static char test_dir[64];
static char suite_arg[128];

static struct store_suite tier_suite = {
	.ops = &store_tier,
	.arg = suite_arg,
	.max_len = (2u << 20) + 4096,
	.compacts = true,
	.counts_bad = true,
	.scale = 50,
};

static int dir_setup(void **state)
{
	(void)state;
	strcpy(test_dir, "/tmp/uswap-tier-XXXXXX");
	if (!mkdtemp(test_dir))
		return -1;
	snprintf(suite_arg, sizeof(suite_arg), "%s,ram=1M", test_dir);
	return 0;
}

static int dir_teardown(void **state)
{
	(void)state;
	rmdir(test_dir);
	return 0;
}

static struct store *tier_open(const char *opts, size_t limit)
{
	char arg[128];
	struct store *st = NULL;
	int rc;

	snprintf(arg, sizeof(arg), "%s%s", test_dir, opts);
	rc = store_tier.open(arg, limit, &st);
	if (rc)
		fail_msg("tier open %s: %d (%s)", arg, rc, errmsg_get());
	return st;
}

static void test_open_args(void **state)
{
	struct store *st;
	char arg[128];
	const char *a;

	(void)state;
	assert_ptr_equal(store_find("ram,file:/d,ram=4M", &a), &store_tier);
	assert_string_equal(a, "/d,ram=4M");
	assert_int_equal(store_tier.open(NULL, 0, &st), -EINVAL);
	assert_non_null(strstr(errmsg_get(), "ram,file:DIR"));
	snprintf(arg, sizeof(arg), "%s,ram=lots", test_dir);
	assert_int_equal(store_tier.open(arg, 0, &st), -EINVAL);
	assert_non_null(strstr(errmsg_get(), "ram=lots"));
	snprintf(arg, sizeof(arg), "%s,ram=8M", test_dir);
	assert_int_equal(store_tier.open(arg, 8 << 20, &st), -EINVAL);
	assert_non_null(strstr(errmsg_get(), "less than the limit"));
	assert_int_equal(store_tier.open("/nonexistent/x", 0, &st), -EINVAL);
	assert_non_null(strstr(errmsg_get(), "/nonexistent/x"));
}

/* Writeback takes the coldest: objects read recently stay in ram. */
static void test_writeback_cold(void **state)
{
	struct store *st = tier_open(",ram=1M", 0);
	struct store_usage u0, u1, u2;
	struct suite_model m;
	struct rng r;
	size_t hot = 20;

	(void)state;
	rng_seed(&r, 0x7e1);
	suite_model_init(&m);
	/* about 800 KiB in ram: no writeback yet */
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(suite_put(st, &store_tier, &m, &r, 8000), 0);
	store_tier.usage(st, &u0);
	assert_int_equal(u0.writebacks, 0);
	assert_int_equal(u0.reads, 0);
	/* the first 20 objects (the oldest) are read: they are hot now */
	for (size_t i = 0; i < hot; i++)
		assert_int_equal(suite_get(st, &store_tier, &m, i), 0);
	/* 400 KiB more: writeback must make room */
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(suite_put(st, &store_tier, &m, &r, 8000), 0);
	store_tier.usage(st, &u1);
	assert_true(u1.writebacks > 0);
	assert_int_equal(u1.writes, u1.writebacks);
	/* the hot ones are still in ram: reading them reads no file */
	for (size_t i = 0; i < hot; i++)
		assert_int_equal(suite_get(st, &store_tier, &m, i), 0);
	store_tier.usage(st, &u2);
	assert_int_equal(u2.reads, u1.reads);
	/* the cold ones (21st...) went first: reading them reads the file */
	for (size_t i = hot; i < hot + 10; i++)
		assert_int_equal(suite_get(st, &store_tier, &m, i), 0);
	store_tier.usage(st, &u2);
	assert_int_equal(u2.reads, u1.reads + 10);
	assert_true(u2.read_ns > 0);
	assert_int_equal(suite_verify_all(st, &store_tier, &m), -1);
	suite_assert_usage(st, &store_tier, &m);
	assert_int_equal(store_tier.check(st), 0);
	while (m.n)
		suite_free(st, &store_tier, &m, 0);
	assert_int_equal(store_tier.check(st), 0);
	store_tier.close(st);
	suite_model_fini(&m);
}

/* An object larger than the ram tier goes to the file directly. */
static void test_large_to_file(void **state)
{
	struct store *st = tier_open(",ram=256K", 0);
	struct store_usage u;
	struct suite_model m;
	struct rng r;

	(void)state;
	rng_seed(&r, 0x1a6);
	suite_model_init(&m);
	assert_int_equal(suite_put(st, &store_tier, &m, &r, 300 << 10), 0);
	store_tier.usage(st, &u);
	assert_int_equal(u.writes, 1);
	assert_int_equal(u.writebacks, 0);
	assert_int_equal(suite_get(st, &store_tier, &m, 0), 0);
	suite_free(st, &store_tier, &m, 0);
	assert_int_equal(store_tier.check(st), 0);
	store_tier.close(st);
	suite_model_fini(&m);
}

/* fork: the child has its own ram copy and its own file; both read all. */
static void test_fork(void **state)
{
	struct store *st = tier_open(",ram=512K", 0);
	struct suite_model m;
	struct rng r;
	int status, go[2];
	pid_t pid;
	char c = 0;

	(void)state;
	assert_int_equal(pipe(go), 0);
	rng_seed(&r, 0xf0c7);
	suite_model_init(&m);
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(suite_put(st, &store_tier, &m, &r, 3000 + rng_below(&r, 9000)), 0);
	fflush(NULL);
	store_tier.prefork(st);
	pid = fork();
	if (pid == 0) {
		store_tier.postfork_child(st);
		for (unsigned i = 0; i < 100; i++)
			suite_free(st, &store_tier, &m, rng_below(&r, m.n));
		for (unsigned i = 0; i < 200; i++)
			if (suite_put(st, &store_tier, &m, &r, 3000 + rng_below(&r, 9000)))
				_exit(2);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		if (suite_verify_all(st, &store_tier, &m) != -1 || store_tier.check(st))
			_exit(1);
		_exit(0);
	}
	store_tier.postfork_parent(st);
	assert_true(pid > 0);
	rng_seed(&r, 0xbeef);
	for (unsigned i = 0; i < 100; i++)
		suite_free(st, &store_tier, &m, rng_below(&r, m.n));
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(suite_put(st, &store_tier, &m, &r, 3000 + rng_below(&r, 9000)),
				 0);
	assert_int_equal(write(go[1], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(go[0]);
	close(go[1]);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(suite_verify_all(st, &store_tier, &m), -1);
	assert_int_equal(store_tier.check(st), 0);
	while (m.n)
		suite_free(st, &store_tier, &m, 0);
	store_tier.close(st);
	suite_model_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_args),
		STORE_SUITE_TESTS(&tier_suite),
		cmocka_unit_test(test_writeback_cold),
		cmocka_unit_test(test_large_to_file),
		cmocka_unit_test(test_fork),
	};

	return cmocka_run_group_tests(tests, dir_setup, dir_teardown);
}

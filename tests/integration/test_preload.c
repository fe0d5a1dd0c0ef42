/* SPDX-License-Identifier: MIT */
/*
 * The LD_PRELOAD shim under `uswap run`: each test runs shim_probe
 * (tests/helpers/shim_probe.c) with one scenario, a budget of 16 MiB and
 * 64 MiB of data; the probe checks every page against pagegen, the
 * counters its shim serves and its VmRSS, and exits 0 when all hold.
 */
#include "shimtest.h"
#include "testlib.h"

#define LIMIT_ARG "16M"

/* ---------------- the test driver ---------------- */

/* store: a --store URI, or NULL for the default */
static void run_scenario_in(const char *scenario, const char *expect_out, const char *store)
{
	char out[] = "/tmp/uswap-shimtest-XXXXXX";
	char *argv[] = { USWAP_BIN, "run", "--limit", LIMIT_ARG, "--", USWAP_BINARY_DIR "/shim_probe",
			 (char *)scenario, NULL, NULL, NULL };
	int fd = mkstemp(out), rc;

	if (store) { /* uswap run --store URI --limit ... */
		memmove(argv + 4, argv + 2, 5 * sizeof(*argv));
		argv[2] = "--store";
		argv[3] = (char *)store;
	}

	assert_true(fd >= 0);
	close(fd);
	rc = st_run(argv, out, 300);
	if (rc != 0 || (expect_out && !st_file_has(out, expect_out))) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "tail -c 3000 %s >&2", out);
		if (system(cmd) < 0)
			perror("system");
		fprintf(stderr, "scenario %s: exit status %d\n", scenario, rc);
	}
	unlink(out);
	assert_int_equal(rc, 0);
}

static void run_scenario(const char *scenario, const char *expect_out)
{
	run_scenario_in(scenario, expect_out, NULL);
}

static void test_malloc_blocks(void **state)
{
	(void)state;
	run_scenario("malloc", NULL);
}

static void test_mmap_munmap_mremap(void **state)
{
	(void)state;
	run_scenario("mmap", NULL);
}

static void test_madv_free(void **state)
{
	(void)state;
	run_scenario("madvfree", NULL);
}

static void test_fork_and_exec(void **state)
{
	(void)state;
	run_scenario("fork", NULL);
}

static void test_threads_and_signals(void **state)
{
	(void)state;
	run_scenario("threads", NULL);
}

/* The file store under the shim (it needs liburing in the shim: once a
 * symbol lookup error at the first page-out), on a disk with direct I/O. */
static void test_file_store(void **state)
{
	(void)state;
	run_scenario_in("mmap", NULL, "file:/var/tmp");
}

static void test_exit_with_atexit(void **state)
{
	(void)state;
	run_scenario("exit", "atexit-ok");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malloc_blocks),
		cmocka_unit_test(test_mmap_munmap_mremap),
		cmocka_unit_test(test_madv_free),
		cmocka_unit_test(test_fork_and_exec),
		cmocka_unit_test(test_threads_and_signals),
		cmocka_unit_test(test_file_store),
		cmocka_unit_test(test_exit_with_atexit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

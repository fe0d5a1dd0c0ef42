/* SPDX-License-Identifier: MIT */
/*
 * Bad input gets -EINVAL (or the errno documented) and a message naming
 * the value and what is allowed; good input is taken exactly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "uswap.h"

/* uswap_close checks the ram store holding all its locks (testlib.h) */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

#define MiB (1ul << 20)

/* Opening with cfg fails with err, and the message holds every needle. */
static void assert_open_fails(const struct uswap_config *cfg, int err, const char *n1,
			      const char *n2)
{
	uswap_t *u = (uswap_t *)1;
	int rc = uswap_open(cfg, &u);

	if (rc != err)
		fail_msg("uswap_open returned %d, expected %d (%s)", rc, err, uswap_last_error());
	assert_null(u);
	if (n1 && !strstr(uswap_last_error(), n1))
		fail_msg("message \"%s\" does not name \"%s\"", uswap_last_error(), n1);
	if (n2 && !strstr(uswap_last_error(), n2))
		fail_msg("message \"%s\" does not say \"%s\"", uswap_last_error(), n2);
}

static void test_bad_config(void **state)
{
	(void)state;
	assert_open_fails(&(struct uswap_config){ .limit = 4096 }, -EINVAL, "4096", "folio");
	assert_open_fails(&(struct uswap_config){ .limit = 8192, .folio_size = 16384 }, -EINVAL,
			  "8192", "16384");
	assert_open_fails(&(struct uswap_config){ .folio_size = 3000 }, -EINVAL, "3000",
			  "power of two");
	assert_open_fails(&(struct uswap_config){ .folio_size = 4 * MiB }, -EINVAL, "4194304",
			  "2M");
	assert_open_fails(&(struct uswap_config){ .folio_size = 2048 }, -EINVAL, "2048", "4K");
	assert_open_fails(&(struct uswap_config){ .codec = "lz5" }, -EINVAL, "lz5", "zstd");
	assert_open_fails(&(struct uswap_config){ .store = "tape:/dev/st0" }, -EINVAL,
			  "tape:/dev/st0", "ram");
	assert_open_fails(&(struct uswap_config){ .threads = 1000 }, -EINVAL, "1000", "64");
	assert_open_fails(&(struct uswap_config){ .flags = 0x80 }, -EINVAL, "0x80", NULL);
}

static void test_bad_environment(void **state)
{
	static const struct {
		const char *var, *value, *why;
	} bad[] = {
		{ "USWAP_LIMIT", "12Q", "K, M, G or T" },
		{ "USWAP_LIMIT", "", "empty" },
		{ "USWAP_LIMIT", "-5M", "not a size" },
		{ "USWAP_LIMIT", "1K", "below one folio" },
		{ "USWAP_FOLIO", "64X", "not a size" },
		{ "USWAP_FOLIO", "3000", "power of two" },
		{ "USWAP_STORE_LIMIT", "1.5G", "not a size" },
		{ "USWAP_THREADS", "0", "1 to 64" },
		{ "USWAP_THREADS", "many", "1 to 64" },
		{ "USWAP_PIN", "2", "0 to 1" },
		{ "USWAP_ADAPT", "yes", "0 to 1" },
		{ "USWAP_CODEC", "gzip", "lz4" },
		{ "USWAP_STORE", "floppy", "ram" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv(bad[i].var, bad[i].value, 1);
		assert_open_fails(NULL, -EINVAL, bad[i].value, bad[i].why);
		if (!strstr(uswap_last_error(), bad[i].var))
			fail_msg("message \"%s\" does not name %s", uswap_last_error(), bad[i].var);
		unsetenv(bad[i].var);
	}
}

static void test_environment_taken(void **state)
{
	uint64_t v;
	uswap_t *u;

	(void)state;
	setenv("USWAP_LIMIT", "24M", 1);
	setenv("USWAP_FOLIO", "16K", 1);
	setenv("USWAP_CODEC", "zstd", 1);
	setenv("USWAP_THREADS", "3", 1);
	u = itest_open(NULL);
	assert_int_equal(uswap_stat(u, "limit_bytes", &v), 0);
	assert_int_equal(v, 24 * MiB);
	assert_int_equal(uswap_stat(u, "folio_bytes", &v), 0);
	assert_int_equal(v, 16384);
	assert_int_equal(uswap_stat(u, "handler_threads", &v), 0);
	assert_int_equal(v, 3);
	uswap_close(u);
	unsetenv("USWAP_LIMIT");
	unsetenv("USWAP_FOLIO");
	unsetenv("USWAP_CODEC");
	unsetenv("USWAP_THREADS");
	/* a config given explicitly ignores the environment */
	setenv("USWAP_LIMIT", "12Q", 1);
	u = itest_open(&(struct uswap_config){ 0 });
	assert_int_equal(uswap_stat(u, "limit_bytes", &v), 0);
	assert_int_equal(v, 0);
	uswap_close(u);
	unsetenv("USWAP_LIMIT");
}

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		size_t v;
	} good[] = {
		{ "0", 0 },		  { "4096", 4096 },	     { "64K", 65536 },
		{ "64k", 65536 },	  { "512M", 512 * MiB },    { "1G", 1024 * MiB },
		{ "2MiB", 2 * MiB },	  { "3KB", 3072 },	     { "1T", 1ul << 40 },
		{ "100B", 100 },
	};
	static const char *const bad[] = { "",	   "M",	 "12Q", "-1", "1.5G", " 1",
					   "1 M", "0x10", "99999999999999999999", "1KK",
					   "16777216T" };
	size_t i, v;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(uswap_parse_size("x", good[i].s, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (uswap_parse_size("--limit", bad[i], &v) != -EINVAL)
			fail_msg("\"%s\" was taken as a size", bad[i]);
		assert_non_null(strstr(uswap_last_error(), "--limit"));
	}
}

static void test_bad_calls(void **state)
{
	uswap_t *u = itest_open(&(struct uswap_config){ 0 });
	uint64_t v;
	void *mem, *p;
	unsigned i;

	(void)state;
	assert_int_equal(uswap_map(u, 0, 0, &p), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "0"));
	assert_int_equal(uswap_map(u, 4096, 0x40, &p), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "0x40"));
	assert_int_equal(uswap_map(u, 1 * MiB, 0, &mem), 0);
	assert_int_equal(uswap_unmap(u, (char *)mem + 4096, MiB - 4096), -EINVAL);
	assert_int_equal(uswap_unmap(u, mem, 2 * MiB), -EINVAL);
	assert_int_equal(uswap_unmap(u, &v, 8), -EINVAL);
	assert_int_equal(uswap_advise(u, mem, MiB, 99), -EINVAL);
	assert_non_null(strstr(uswap_last_error(), "99"));
	assert_int_equal(uswap_advise(u, mem, 2 * MiB, USWAP_ADV_PAGEOUT), -EINVAL);
	assert_int_equal(uswap_advise(u, &v, 8, USWAP_ADV_PAGEOUT), -EINVAL);
	assert_int_equal(uswap_stat(u, "no_such_counter", &v), -ENOENT);
	/* every listed counter answers, and required ones are listed */
	for (i = 0; uswap_stat_name(i); i++)
		assert_int_equal(uswap_stat(u, uswap_stat_name(i), &v), 0);
	{
		static const char *const required[] = {
			"resident_bytes", "limit_bytes",     "stored_bytes",	  "orig_bytes",
			"swapout_pages",  "swapin_pages",    "swapout_folios",	  "swapin_folios",
			"swapin_fallback", "zero_pages_out", "zero_pages_in",	  "same_filled_pages",
			"faults",	  "reclaim_direct",  "reclaim_background", "limit_overshoot_bytes",
		};
		for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
			assert_int_equal(uswap_stat(u, required[i], &v), 0);
	}
	/* a map length is rounded to whole folios; unmap takes either length */
	assert_int_equal(uswap_map(u, 5000, 0, &p), 0);
	((char *)p)[4999] = 1;
	assert_int_equal(uswap_unmap(u, p, 5000), 0);
	assert_int_equal(uswap_unmap(u, mem, MiB), 0);
	assert_int_equal(uswap_unmap(u, mem, MiB), -EINVAL);
	uswap_close(u);
	assert_string_equal(uswap_strerror(-ENOSPC), "the store is full");
}

/* Without the right to use userfaultfd, the message says what to do. */
static void test_no_permission(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "# not root: this test drops privileges and needs root to start\n");
		return;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uswap_t *u;
		int rc;

		if (setgid(65534) || setuid(65534))
			_exit(3);
		rc = uswap_open(NULL, &u);
		if (rc == 0) {
			/* this machine lets unprivileged users in: fine too */
			uswap_close(u);
			_exit(0);
		}
		if (rc != -EPERM)
			_exit(4);
		if (!strstr(uswap_last_error(), "CAP_SYS_PTRACE") ||
		    !strstr(uswap_last_error(), "vm.unprivileged_userfaultfd") ||
		    !strstr(uswap_last_error(), "/dev/userfaultfd"))
			_exit(5);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* In a process of its own (the warning is said once per process): open
 * twice from an environment with a misspelt variable and the shim's own. */
static int open_twice_from_env(void)
{
	uswap_t *u1, *u2;

	setenv("USWAP_LIMT", "1G", 1);
	setenv("USWAP_MIN_MAP", "1M", 1);
	if (uswap_open(NULL, &u1) || uswap_open(NULL, &u2))
		return 1;
	uswap_close(u1);
	uswap_close(u2);
	return 0;
}

/* A misspelt USWAP_* variable is named on stderr, once, and the instance
 * still opens (docs: a warning, not an error); uswap's own are not. */
static void test_unknown_variable_named(void **state)
{
	char out[4096] = "", *hit;
	size_t len = 0;
	ssize_t n;
	int fds[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		execl("/proc/self/exe", "test_config", "--open-twice-from-env", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (len < sizeof(out) - 1 && (n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("opening from the environment failed (status %d): %s", status, out);
	hit = strstr(out, "USWAP_LIMT");
	if (!hit || !strstr(out, "not one of uswap's"))
		fail_msg("stderr does not name USWAP_LIMT: \"%s\"", out);
	if (strstr(hit + 1, "USWAP_LIMT"))
		fail_msg("USWAP_LIMT named more than once: \"%s\"", out);
	if (strstr(out, "USWAP_MIN_MAP"))
		fail_msg("the shim's USWAP_MIN_MAP called unknown: \"%s\"", out);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),	 cmocka_unit_test(test_bad_environment),
		cmocka_unit_test(test_environment_taken), cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_bad_calls),	 cmocka_unit_test(test_no_permission),
		cmocka_unit_test(test_unknown_variable_named),
	};

	if (argc == 2 && !strcmp(argv[1], "--open-twice-from-env"))
		return open_twice_from_env();

	unsetenv("USWAP_LIMIT");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

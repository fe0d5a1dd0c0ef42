/* SPDX-License-Identifier: MIT */
/*
 * `uswap run` and `uswap stat` as a user meets them: bad values stop the
 * program before it starts, with a message naming the value; the exit
 * status passes through; the counters of a running program are served to
 * its user and root only; the help texts and the man page agree.
 */
#include <regex.h>
#include <sys/stat.h>

#include "shimtest.h"
#include "testlib.h"

static char out_path[] = "/tmp/uswap-runcli-XXXXXX";
static char marker[] = "/tmp/uswap-runcli-marker-XXXXXX";

static int setup(void **state)
{
	int fd = mkstemp(out_path), fd2 = mkstemp(marker);

	(void)state;
	if (fd < 0 || fd2 < 0)
		return -1;
	close(fd);
	close(fd2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(out_path);
	unlink(marker);
	return 0;
}

/* uswap run with argv (NULL-ended, after "run") and `touch marker` as the
 * program; the program must not start, and the message must name what. */
static void run_must_refuse(const char *env, const char *const *flags, const char *names)
{
	char *argv[32];
	int n = 0, rc;

	unlink(marker);
	argv[n++] = USWAP_BIN;
	argv[n++] = "run";
	while (*flags)
		argv[n++] = (char *)*flags++;
	argv[n++] = "--";
	argv[n++] = "touch";
	argv[n++] = marker;
	argv[n] = NULL;
	if (env)
		putenv((char *)env);
	rc = st_run(argv, out_path, 60);
	if (env) {
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)(strchr(env, '=') - env), env);
		unsetenv(name);
	}
	if (rc != 2 || !st_file_has(out_path, names)) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "cat %s >&2", out_path);
		if (system(cmd) < 0)
			perror("system");
		fprintf(stderr, "expected exit status 2 and a message naming %s\n", names);
	}
	assert_int_equal(rc, 2);
	assert_true(st_file_has(out_path, names));
	assert_int_not_equal(access(marker, F_OK), 0); /* the program never ran */
}

static void test_bad_values_stop_before_the_program(void **state)
{
	(void)state;
	run_must_refuse(NULL, (const char *[]){ "--limit", "lots", NULL }, "\"lots\"");
	run_must_refuse(NULL, (const char *[]){ "--limit=12Q", NULL }, "--limit \"12Q\"");
	run_must_refuse(NULL, (const char *[]){ "--codec", "brotli", NULL }, "\"brotli\"");
	run_must_refuse(NULL, (const char *[]){ "--store", "nfs://x", NULL }, "\"nfs://x\"");
	run_must_refuse(NULL, (const char *[]){ "--folio", "3K", NULL }, "3072");
	run_must_refuse(NULL, (const char *[]){ "--threads", "0", NULL }, "\"0\"");
	run_must_refuse(NULL, (const char *[]){ "--min-map", "100", NULL }, "\"100\"");
	run_must_refuse(NULL, (const char *[]){ "--recompress", "99", NULL }, "level 99");
	run_must_refuse(NULL, (const char *[]){ "--recompress", "9", "--store", "file:/tmp", NULL },
			"recompress");
	run_must_refuse(NULL, (const char *[]){ "--pin", "2", NULL }, "--pin \"2\" sets");
	run_must_refuse(NULL, (const char *[]){ "--min-map", "100", NULL }, "--min-map \"100\" sets");
	run_must_refuse(NULL, (const char *[]){ "--swapcache=yes", NULL }, "\"yes\"");
	run_must_refuse(NULL, (const char *[]){ "--adapt", "-1", NULL }, "\"-1\"");
	run_must_refuse(NULL, (const char *[]){ "--limit", "4K", NULL }, "4096");
	run_must_refuse(NULL, (const char *[]){ "--limit", "1K", NULL }, "--limit \"1K\" sets");
	run_must_refuse(NULL, (const char *[]){ "--frobnicate", NULL }, "--frobnicate");
	run_must_refuse(NULL, (const char *[]){ "--limit", NULL }, "--limit \"--\"");
	/* the USWAP_* variables are checked the same way */
	run_must_refuse("USWAP_CODEC=lzma", (const char *[]){ NULL }, "\"lzma\"");
	run_must_refuse("USWAP_LIMIT=-5", (const char *[]){ NULL }, "USWAP_LIMIT \"-5\"");
	run_must_refuse("USWAP_MIN_MAP=1X", (const char *[]){ NULL }, "USWAP_MIN_MAP \"1X\"");
}

/* uswap demo refuses bad values as run does: exit 2, the value named,
 * nothing run. */
static void test_demo_bad_values(void **state)
{
	const char *cases[][3] = { { "--seed", "x", "\"x\"" },
				   { "--size", "12Q", "\"12Q\"" },
				   { "--limit", "3K", "3072" },
				   { "--codec", "lzma", "\"lzma\"" } };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { USWAP_BIN, "demo", (char *)cases[i][0], (char *)cases[i][1],
				 "--no-progress", NULL };

		assert_int_equal(st_run(argv, out_path, 60), 2);
		assert_true(st_file_has(out_path, cases[i][2]));
		assert_false(st_file_has(out_path, "verified"));
	}
}

static void test_exit_status_and_output_pass_through(void **state)
{
	char *argv[] = { USWAP_BIN, "run", "--limit", "8M", "--codec", "zstd", "--recompress", "15",
			 "--pin", "0", "--swapcache=0", "--adapt", "0", "--", "sh", "-c",
			 "echo managed-$USWAP_LIMIT-$USWAP_CODEC-$USWAP_RECOMPRESS-$USWAP_PIN"
			 "-$USWAP_SWAPCACHE-$USWAP_ADAPT; exit 7", NULL };

	(void)state;
	assert_int_equal(st_run(argv, out_path, 60), 7);
	assert_true(st_file_has(out_path, "managed-8M-zstd-15-0-0-0"));
}

/* Times s occurs in file path. */
static unsigned file_count(const char *path, const char *s)
{
	char buf[65536], *at;
	FILE *f = fopen(path, "r");
	unsigned n = 0;
	size_t len;

	if (!f)
		return 0;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	for (at = buf; (at = strstr(at, s)); at += strlen(s))
		n++;
	return n;
}

/* A variable uswap does not know is named once for the whole command:
 * by uswap run, not again by the shim in the shell and in each program
 * the shell runs (each of them loads the shim anew); one the shell adds
 * for a program of its own is named by the shim there. */
static void test_unknown_variable_named_once(void **state)
{
	char *argv[] = { USWAP_BIN, "run", "--limit", "8M", "--", "sh", "-c",
			 "/bin/true; USWAP_LMIT=2M /bin/true; /bin/true; echo ran", NULL };
	unsigned n, m;
	int rc;

	(void)state;
	setenv("USWAP_LIMT", "1M", 1);
	rc = st_run(argv, out_path, 60);
	unsetenv("USWAP_LIMT");
	assert_int_equal(rc, 0);
	n = file_count(out_path, "USWAP_LIMT");
	m = file_count(out_path, "USWAP_LMIT");
	if (n != 1 || m != 1 || !st_file_has(out_path, "ran"))
		fail_msg("USWAP_LIMT named %u times, USWAP_LMIT %u (once each expected), or the "
			 "program did not run", n, m);
}

/* Start `sleep` under uswap run and wait for its counters to be served. */
static pid_t sleeper_start(void)
{
	char *argv[] = { USWAP_BIN, "run", "--limit", "8M", "--", "sleep", "30", NULL };
	pid_t pid = st_spawn(argv, NULL);
	char buf[16384];
	int i;

	for (i = 0; i < 500 && !st_counters_text(pid, buf, sizeof(buf)); i++)
		usleep(10000);
	assert_true(st_counters_text(pid, buf, sizeof(buf)) > 0);
	return pid;
}

static void test_stat_lines_and_json(void **state)
{
	pid_t pid = sleeper_start();
	char spid[16];
	char *lines[] = { USWAP_BIN, "stat", spid, NULL };
	char *json[] = { USWAP_BIN, "stat", "--json", spid, NULL };
	char *none[] = { USWAP_BIN, "stat", "4000000", NULL };
	uint64_t v;

	(void)state;
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	assert_true(st_counter(pid, "limit_bytes", &v));
	assert_int_equal(v, 8u << 20);
	assert_int_equal(st_run(lines, out_path, 30), 0);
	assert_true(st_file_has(out_path, "\nlimit_bytes: 8388608\n"));
	assert_true(st_file_has(out_path, "shim_maps_adopted: "));
	assert_int_equal(st_run(json, out_path, 30), 0);
	assert_true(st_file_has(out_path, "{\"pid\": "));
	assert_true(st_file_has(out_path, "\"limit_bytes\": 8388608"));
	assert_int_equal(st_run(none, out_path, 30), 1);
	assert_true(st_file_has(out_path, "serves no uswap counters"));
	kill(pid, SIGKILL);
	st_wait(pid, 30);
}

static void test_stat_watch_ends_with_the_program(void **state)
{
	pid_t pid = sleeper_start(), watcher;
	char spid[16];
	char *watch[] = { USWAP_BIN, "stat", "--watch", "--interval", "1", spid, NULL };
	char *bad[] = { USWAP_BIN, "stat", "--interval", "0", spid, NULL };
	FILE *f;
	char line[256];
	int samples = 0;

	(void)state;
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	watcher = st_spawn(watch, out_path);
	sleep(3);
	kill(pid, SIGKILL);
	st_wait(pid, 30);
	assert_int_equal(st_wait(watcher, 30), 0);
	f = fopen(out_path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		samples += !strncmp(line, "== uswap stat", 13);
	fclose(f);
	assert_true(samples >= 2);
	assert_int_equal(st_run(bad, out_path, 30), 2);
	assert_true(st_file_has(out_path, "\"0\""));
}

/* Another user gets nothing; the same user and root get everything. */
static void test_stat_only_for_the_same_user_or_root(void **state)
{
	pid_t pid = sleeper_start(), other;
	char spid[16];
	int st;

	(void)state;
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	assert_int_equal(geteuid(), 0); /* the tests run as root (userfaultfd) */
	other = fork();
	if (other == 0) {
		char buf[16384];

		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(3);
		if (st_counters_text(pid, buf, sizeof(buf)) != 0)
			_exit(4); /* nobody read the counters */
		execl(USWAP_BIN, USWAP_BIN, "stat", spid, (char *)NULL);
		_exit(5);
	}
	assert_int_equal(waitpid(other, &st, 0), other);
	assert_true(WIFEXITED(st));
	/* uswap stat as nobody: refused (1), after saying why */
	assert_int_equal(WEXITSTATUS(st), 1);
	kill(pid, SIGKILL);
	st_wait(pid, 30);
}

/* Every option in the help texts is in uswap(1), and every option uswap(1)
 * describes is in a help text. */
static void test_help_matches_the_man_page(void **state)
{
	const char *cmds[][3] = { { "--help", NULL, NULL },
				  { "run", "--help", NULL },
				  { "stat", "--help", NULL },
				  { "pagemap", "--help", NULL },
				  { "demo", "--help", NULL } };
	char help[65536] = "", man[65536], *at;
	regex_t re;
	regmatch_t m;
	FILE *f;
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *argv[] = { USWAP_BIN, (char *)cmds[i][0], (char *)cmds[i][1], NULL };

		assert_int_equal(st_run(argv, out_path, 30), 0);
		f = fopen(out_path, "r");
		assert_non_null(f);
		n = strlen(help);
		n += fread(help + n, 1, sizeof(help) - 1 - n, f);
		help[n] = 0;
		fclose(f);
	}
	f = fopen(USWAP_SOURCE_DIR "/docs/man/uswap.1", "r");
	assert_non_null(f);
	n = fread(man, 1, sizeof(man) - 1, f);
	man[n] = 0;
	fclose(f);
	/* groff escapes the hyphens of options: \-\-limit */
	for (at = man; (at = strstr(at, "\\-"));)
		memmove(at, at + 1, strlen(at));
	assert_int_equal(regcomp(&re, "--[a-z][a-z-]*", 0), 0);
	for (at = help; !regexec(&re, at, 1, &m, 0); at += m.rm_eo) {
		char opt[64];

		snprintf(opt, sizeof(opt), "%.*s", (int)(m.rm_eo - m.rm_so), at + m.rm_so);
		if (!strstr(man, opt))
			fprintf(stderr, "%s is in a help text but not in uswap(1)\n", opt);
		assert_non_null(strstr(man, opt));
	}
	for (at = man; !regexec(&re, at, 1, &m, 0); at += m.rm_eo) {
		char opt[64];

		snprintf(opt, sizeof(opt), "%.*s", (int)(m.rm_eo - m.rm_so), at + m.rm_so);
		if (!strstr(help, opt))
			fprintf(stderr, "%s is in uswap(1) but in no help text\n", opt);
		assert_non_null(strstr(help, opt));
	}
	regfree(&re);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_values_stop_before_the_program),
		cmocka_unit_test(test_exit_status_and_output_pass_through),
		cmocka_unit_test(test_unknown_variable_named_once),
		cmocka_unit_test(test_stat_lines_and_json),
		cmocka_unit_test(test_stat_watch_ends_with_the_program),
		cmocka_unit_test(test_stat_only_for_the_same_user_or_root),
		cmocka_unit_test(test_help_matches_the_man_page),
		cmocka_unit_test(test_demo_bad_values),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

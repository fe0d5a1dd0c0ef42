/* SPDX-License-Identifier: MIT */
/*
 * uswap run: start a program with the LD_PRELOAD shim, so that its
 * anonymous memory is managed under a budget (see uswap(1)).
 *
 * Each flag sets the USWAP_* variable of the same name for the program;
 * variables already in the environment count the same.  Every value is
 * checked (by opening an instance exactly as the shim will) before the
 * program starts.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

struct run_flag {
	const char *flag;
	const char *env;
	bool size;
};

static const struct run_flag run_flags[] = {
	{ "--limit", "USWAP_LIMIT", true },
	{ "--codec", "USWAP_CODEC", false },
	{ "--store", "USWAP_STORE", false },
	{ "--folio", "USWAP_FOLIO", true },
	{ "--store-limit", "USWAP_STORE_LIMIT", true },
	{ "--threads", "USWAP_THREADS", false },
	{ "--min-map", "USWAP_MIN_MAP", true },
	{ "--recompress", "USWAP_RECOMPRESS", false },
	{ "--pin", "USWAP_PIN", false },
	{ "--swapcache", "USWAP_SWAPCACHE", false },
	{ "--adapt", "USWAP_ADAPT", false },
};
#define NFLAGS (sizeof(run_flags) / sizeof(run_flags[0]))

void run_usage(FILE *f)
{
	fprintf(f,
		"usage: uswap run [OPTIONS] [--] PROGRAM [ARGS...]\n"
		"\n"
		"Run PROGRAM with its anonymous memory managed by uswap: mappings and\n"
		"malloc blocks of at least --min-map bytes are kept under the budget, cold\n"
		"folios compressed into the store.  Each option sets the USWAP_* variable\n"
		"of the same name (shown in brackets); values already in the environment\n"
		"are used too.  A bad value stops uswap run before PROGRAM starts.\n"
		"\n"
		"options:\n"
		"  --limit SIZE        resident budget, e.g. 512M; 0 = no limit [USWAP_LIMIT]\n"
		"  --codec NAME        lz4 (default), zstd or none [USWAP_CODEC]\n"
		"  --store URI         ram (default), file:DIR, ram,file:DIR[,ram=SIZE],\n"
		"                      redis://[[USER]:PASSWORD@]HOST:PORT[,...][?timeout=MS]\n"
		"                      or rediss://... over TLS (see uswap(1)) [USWAP_STORE]\n"
		"  --folio SIZE        folio size, a power of two from 4K to 2M (default 64K)\n"
		"                      [USWAP_FOLIO]\n"
		"  --store-limit SIZE  memory the store may use; 0 = no limit [USWAP_STORE_LIMIT]\n"
		"  --threads N         fault-handler threads, 1 to 64 (default: one per CPU,\n"
		"                      at most 4) [USWAP_THREADS]\n"
		"  --min-map SIZE      smallest mapping or malloc block managed, at least 4K\n"
		"                      (default 1M) [USWAP_MIN_MAP]\n"
		"  --recompress LEVEL  off (default), or the strong level the idle background\n"
		"                      thread stores cold folios anew at: lz4 3 to 12, zstd 2\n"
		"                      to 22; ram store only [USWAP_RECOMPRESS]\n"
		"  --pin 0|1           pin each fault handler to a CPU (default 1) [USWAP_PIN]\n"
		"  --swapcache 0|1     keep a swapped-in folio's stored copy while it stays\n"
		"                      clean (default 1) [USWAP_SWAPCACHE]\n"
		"  --adapt 0|1         when a region's faults look random, bring in only the\n"
		"                      faulting page (default 1) [USWAP_ADAPT]\n"
		"  -h, --help          this text\n"
		"\n"
		"SIZE is bytes with an optional K, M, G or T suffix.  While PROGRAM runs,\n"
		"'uswap stat PID' shows its counters.\n");
}

static const struct run_flag *flag_find(const char *arg, const char **value)
{
	size_t i;

	for (i = 0; i < NFLAGS; i++) {
		size_t n = strlen(run_flags[i].flag);

		if (!strncmp(arg, run_flags[i].flag, n) && (arg[n] == '=' || !arg[n])) {
			*value = arg[n] == '=' ? arg + n + 1 : NULL;
			return &run_flags[i];
		}
	}
	return NULL;
}

/* The shim beside this executable (a build tree), else the installed one. */
static int shim_path(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n > 0) {
		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			snprintf(out, cap, "%s/libuswap_preload.so", exe);
			if (!access(out, R_OK))
				return 0;
		}
	}
	snprintf(out, cap, "%s", USWAP_PRELOAD_INSTALLED);
	if (!access(out, R_OK))
		return 0;
	fprintf(stderr, "uswap run: the shim libuswap_preload.so is neither beside %s nor at %s\n",
		n > 0 ? exe : "uswap", USWAP_PRELOAD_INSTALLED);
	return -1;
}

/* The option each USWAP_* variable came from on this command line (NULL:
 * the environment), to name it in a refusal. */
static const char *given[sizeof(run_flags) / sizeof(run_flags[0])];

/* A refusal names the variable; say which option set it, if one did. */
static void refusal_print(const char *msg)
{
	size_t i;

	fprintf(stderr, "uswap run: %s\n", msg);
	for (i = 0; i < NFLAGS; i++)
		if (given[i] && strstr(msg, run_flags[i].env))
			fprintf(stderr, "uswap run: (%s is what %s \"%s\" sets)\n", run_flags[i].env,
				run_flags[i].flag, given[i]);
}

/* Check every USWAP_* value as the shim will read it. */
static int settings_check(void)
{
	const char *v = getenv("USWAP_MIN_MAP");
	uswap_t *u;
	size_t n;

	if (v) {
		if (uswap_parse_size("USWAP_MIN_MAP", v, &n)) {
			refusal_print(uswap_last_error());
			return -1;
		}
		if (n < 4096) {
			char msg[160];

			snprintf(msg, sizeof(msg),
				 "USWAP_MIN_MAP \"%.64s\" is not allowed: use at least 4K", v);
			refusal_print(msg);
			return -1;
		}
	}
	if (uswap_open(NULL, &u)) {
		refusal_print(uswap_last_error());
		return -1;
	}
	uswap_close(u);
	return 0;
}

/* Checked, and what is not uswap's named: the shim in the program (and in
 * every program it starts) names only USWAP_* variables that were not
 * there now (lib/options.c reads the list). */
static int env_mark_checked(void)
{
	extern char **environ;
	static const char mark[] = "USWAP_ENV_CHECKED";
	size_t len = 1, at = 0;
	char **e, *names;
	int rc;

	for (e = environ; *e; e++)
		len += strcspn(*e, "=") + 1;
	names = malloc(len);
	if (!names) {
		fprintf(stderr, "uswap run: out of memory for USWAP_ENV_CHECKED\n");
		return -1;
	}
	for (e = environ; *e; e++) {
		size_t n = strcspn(*e, "=");

		if (strncmp(*e, "USWAP_", 6) || (n == sizeof(mark) - 1 && !memcmp(*e, mark, n)))
			continue;
		if (at)
			names[at++] = ',';
		memcpy(names + at, *e, n);
		at += n;
	}
	names[at] = 0;
	rc = setenv(mark, names, 1);
	if (rc)
		fprintf(stderr, "uswap run: cannot set USWAP_ENV_CHECKED: %s\n", strerror(errno));
	free(names);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	char shim[PATH_MAX + 32], *preload;
	const char *old;
	int i;

	for (i = 1; i < argc; i++) {
		const struct run_flag *f;
		const char *v;
		size_t sz;

		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			run_usage(stdout);
			return 0;
		}
		if (argv[i][0] != '-')
			break;
		f = flag_find(argv[i], &v);
		if (!f) {
			fprintf(stderr, "uswap run: unknown option \"%s\" (see uswap run --help)\n",
				argv[i]);
			return 2;
		}
		if (!v) {
			if (i + 1 >= argc) {
				fprintf(stderr, "uswap run: %s needs a value\n", f->flag);
				return 2;
			}
			v = argv[++i];
		}
		if (f->size && uswap_parse_size(f->flag, v, &sz)) {
			fprintf(stderr, "uswap run: %s\n", uswap_last_error());
			return 2;
		}
		setenv(f->env, v, 1);
		given[f - run_flags] = v;
	}
	if (i >= argc) {
		fprintf(stderr, "uswap run: no program given\n");
		run_usage(stderr);
		return 2;
	}
	if (settings_check() || shim_path(shim, sizeof(shim)))
		return 2;
	if (env_mark_checked())
		return 2;
	old = getenv("LD_PRELOAD");
	if (old && *old) {
		preload = malloc(strlen(shim) + strlen(old) + 2);
		if (!preload)
			return 2;
		sprintf(preload, "%s:%s", shim, old);
	} else {
		preload = shim;
	}
	setenv("LD_PRELOAD", preload, 1);
	execvp(argv[i], argv + i);
	fprintf(stderr, "uswap run: cannot run \"%s\": %s\n", argv[i], strerror(errno));
	return 127;
}

/* SPDX-License-Identifier: MIT */
/*
 * uswap stat PID: the counters of a program running under uswap run, read
 * from the socket its shim serves ("@uswap/PID", see
 * src/preload/preload_stat.c), as "name: value" lines or JSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

void stat_usage(FILE *f)
{
	fprintf(f, "usage: uswap stat [--json] [--watch [--interval SECONDS]] PID\n"
		   "\n"
		   "Show the counters of process PID, which runs under 'uswap run' (or with\n"
		   "libuswap_preload.so preloaded): one 'name: value' line each, or one JSON\n"
		   "object with --json.  Only the same user and root may read them.\n"
		   "\n"
		   "options:\n"
		   "  --json              one JSON object (per sample with --watch)\n"
		   "  --watch             print again every interval until the process ends\n"
		   "  --interval SECONDS  the interval of --watch, 1 to 3600 (default 1)\n"
		   "  -h, --help          this text\n");
}

/* Read the counters of pid into buf.  @return bytes, or -1 after saying why. */
static ssize_t counters_read(int pid, char *buf, size_t cap, bool quiet)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	size_t got = 0;
	int fd, n;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "uswap/%d", pid);
	if (connect(fd, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n))) {
		if (!quiet)
			fprintf(stderr,
				"uswap stat: process %d serves no uswap counters: it does not run "
				"under uswap run, or it has ended\n",
				pid);
		close(fd);
		return -1;
	}
	/* the server must be the process asked about, not one that took its
	 * name */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.pid != pid) {
		fprintf(stderr, "uswap stat: the socket of process %d is served by process %d\n",
			pid, (int)cred.pid);
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, buf + got, cap - 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == cap - 1)
			break;
	}
	close(fd);
	buf[got] = 0;
	if (!got && !quiet)
		fprintf(stderr,
			"uswap stat: process %d did not answer: only its own user and root may "
			"read its counters\n",
			pid);
	return got ? (ssize_t)got : -1;
}

static void print_json(char *text)
{
	char *line, *save = NULL;
	bool first = true;

	printf("{");
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');

		if (!colon)
			continue;
		*colon = 0;
		printf("%s\"%s\": %s", first ? "" : ", ", line, colon + 2);
		first = false;
	}
	printf("}\n");
}

int cmd_stat(int argc, char **argv)
{
	bool json = false, watch = false;
	long interval = 1, pid = -1;
	char buf[32768];
	int i, samples = 0;

	for (i = 1; i < argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--watch")) {
			watch = true;
		} else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			interval = strtol(argv[++i], &end, 10);
			if (!*argv[i] || *end || interval < 1 || interval > 3600) {
				fprintf(stderr, "uswap stat: --interval \"%s\" is not allowed: use 1 "
						"to 3600 seconds\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			stat_usage(stdout);
			return 0;
		} else if (argv[i][0] != '-' && pid < 0) {
			pid = strtol(argv[i], &end, 10);
			if (!*argv[i] || *end || pid < 1 || pid > 4194304) {
				fprintf(stderr, "uswap stat: PID \"%s\" is not a process id: use a "
						"number from 1 to 4194304\n", argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "uswap stat: unexpected \"%s\" (see uswap stat --help)\n",
				argv[i]);
			return 2;
		}
	}
	if (pid < 0) {
		stat_usage(stderr);
		return 2;
	}
	for (;;) {
		if (counters_read((int)pid, buf, sizeof(buf), watch && samples) < 0)
			return samples ? 0 : 1;
		samples++;
		if (watch && !json) {
			time_t now = time(NULL);
			struct tm tm;
			char when[16];

			strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&now, &tm));
			printf("== uswap stat %ld at %s\n", pid, when);
		}
		if (json)
			print_json(buf);
		else
			fputs(buf, stdout);
		fflush(stdout);
		if (!watch)
			return 0;
		sleep((unsigned)interval);
	}
}

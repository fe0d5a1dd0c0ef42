/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the tests of `uswap run` and the LD_PRELOAD shim: run a
 * command (under uswap or not) with a time limit, read a running
 * program's counters from its shim's socket, read its VmRSS.
 * Header-only: only these tests use it.
 */
#ifndef USWAP_SHIMTEST_H
#define USWAP_SHIMTEST_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define USWAP_BIN USWAP_BINARY_DIR "/uswap"

/* Start argv (argv[0] searched in PATH); stdout and stderr go to out_path
 * when given.  @return the pid. */
static inline pid_t st_spawn(char *const argv[], const char *out_path)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (out_path) {
			int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
		}
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Wait for pid at most timeout_s seconds (then kill it: -1).
 * @return its exit status, 128+signal, or -1 on timeout. */
static inline int st_wait(pid_t pid, int timeout_s)
{
	struct timespec t0, now;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= timeout_s) {
			fprintf(stderr, "process %d still runs after %d s: killed\n", (int)pid,
				timeout_s);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(20000);
	}
}

static inline int st_run(char *const argv[], const char *out_path, int timeout_s)
{
	return st_wait(st_spawn(argv, out_path), timeout_s);
}

/* Does file path contain s? */
static inline bool st_file_has(const char *path, const char *s)
{
	char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, s) != NULL;
}

/* All counters of process pid, as the shim serves them ("" when none). */
static inline size_t st_counters_text(pid_t pid, char *buf, size_t cap)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), n;

	buf[0] = 0;
	if (fd < 0)
		return 0;
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "uswap/%d", (int)pid);
	if (connect(fd, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n))) {
		close(fd);
		return 0;
	}
	for (;;) {
		ssize_t r = read(fd, buf + got, cap - 1 - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = 0;
	return got;
}

/* One counter of process pid.  @return false when it cannot be read. */
static inline bool st_counter(pid_t pid, const char *name, uint64_t *v)
{
	char buf[16384], key[128];
	char *at;

	if (!st_counters_text(pid, buf, sizeof(buf)))
		return false;
	snprintf(key, sizeof(key), "\n%s: ", name);
	at = strstr(buf, key);
	if (!at)
		return false;
	*v = strtoull(at + strlen(key), NULL, 10);
	return true;
}

/* VmRSS of pid in bytes (0 when gone). */
static inline uint64_t st_vmrss(pid_t pid)
{
	char path[64], line[256];
	uint64_t kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtoull(line + 6, NULL, 10);
	fclose(f);
	return kb * 1024;
}

#endif

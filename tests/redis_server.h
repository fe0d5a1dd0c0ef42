/* SPDX-License-Identifier: MIT */
/*
 * Real redis-server instances for the redis store's tests, on loopback
 * ports of their own, without persistence.  A missing redis-server fails
 * the test loudly (Debian package redis-server; .ci/run installs it).
 * Servers still running when the test ends (a failed assertion jumps out)
 * are stopped at exit.
 */
#ifndef USWAP_REDIS_SERVER_H
#define USWAP_REDIS_SERVER_H

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct redis_server {
	pid_t pid;
	int port;
	char password[32];
	const char *const *args; /* more arguments, NULL-terminated (TLS) */
};

#define REDIS_TEST_MAX 8
static struct redis_server *redis_running[REDIS_TEST_MAX];

static void redis_stop_all(void)
{
	for (unsigned i = 0; i < REDIS_TEST_MAX; i++) {
		if (redis_running[i] && redis_running[i]->pid > 0) {
			kill(redis_running[i]->pid, SIGCONT);
			kill(redis_running[i]->pid, SIGKILL);
			waitpid(redis_running[i]->pid, NULL, 0);
			redis_running[i]->pid = 0;
		}
		redis_running[i] = NULL;
	}
}

/* A free loopback port (the kernel's choice). */
static int redis_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &n) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* A command to the server from the test (NULL when it does not answer). */
static redisReply *redis_test_cmd(const struct redis_server *s, const char *cmd)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
	redisReply *r = NULL;

	if (c && !c->err) {
		redisSetTimeout(c, tv);
		if (s->password[0])
			freeReplyObject(redisCommand(c, "AUTH %s", s->password));
		r = redisCommand(c, cmd);
	}
	if (c)
		redisFree(c);
	return r;
}

__attribute__((unused)) static long long redis_test_dbsize(const struct redis_server *s)
{
	redisReply *r = redis_test_cmd(s, "DBSIZE");
	long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	if (r)
		freeReplyObject(r);
	return n;
}

/*
 * Start a server (on s->port when it is set, else on a free port), with a
 * password when given and extra "--name value" arguments.  @return 0; -1
 * with the reason on stderr.
 */
static int redis_start(struct redis_server *s, const char *password, const char *extra1,
		       const char *extra2)
{
	char port[16];

	if (!s->port)
		s->port = redis_free_port();
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(s->password, sizeof(s->password), "%s", password ? password : "");
	fflush(NULL);
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		const char *argv[48] = { "redis-server", "--port", port, "--bind", "127.0.0.1",
					 "--save", "", "--appendonly", "no", "--loglevel",
					 "warning" };
		int n = 11;

		if (password) {
			argv[n++] = "--requirepass";
			argv[n++] = password;
		}
		if (extra1) {
			argv[n++] = extra1;
			argv[n++] = extra2;
		}
		for (unsigned i = 0; s->args && s->args[i] && n < 47; i++)
			argv[n++] = s->args[i];
		/* the server's output would hold the test's pipes open */
		int err = fcntl(2, F_DUPFD_CLOEXEC, 3);

		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(126);
		execvp("redis-server", (char *const *)argv);
		dprintf(err, "cannot run redis-server: %s (the redis tests need Debian's "
			     "redis-server package)\n",
			strerror(errno));
		_exit(127);
	}
	static int registered;

	if (!registered++)
		atexit(redis_stop_all);
	for (unsigned i = 0; i < REDIS_TEST_MAX; i++) {
		if (!redis_running[i]) {
			redis_running[i] = s;
			break;
		}
	}
	for (int tries = 0; tries < 500; tries++) {
		redisReply *r = redis_test_cmd(s, "PING");
		int status;

		if (r) {
			freeReplyObject(r);
			return 0;
		}
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			fprintf(stderr, "redis-server on port %d exited (status %#x)\n", s->port,
				status);
			s->pid = 0;
			return -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "redis-server on port %d did not answer within 5 s\n", s->port);
	return -1;
}

static void redis_stop(struct redis_server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGCONT);
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = 0;
	for (unsigned i = 0; i < REDIS_TEST_MAX; i++)
		if (redis_running[i] == s)
			redis_running[i] = NULL;
}

#endif

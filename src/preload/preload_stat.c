/* SPDX-License-Identifier: MIT */
/*
 * Counters for `uswap stat PID`: a thread serves them on the abstract Unix
 * socket "@uswap/PID".  The same thread serves the query socket
 * "@uswap/PID/query" (the pagemap for `uswap pagemap PID`:
 * preload_query.c), one connection at a time.
 *
 * Abstract sockets have no file permissions, so the peer's credentials
 * (SO_PEERCRED) decide: the same user or root get every counter as
 * "name: value" lines, anyone else gets the connection closed with nothing
 * said.  The counters' server reads nothing from its peers, and neither
 * socket has anything to change through it.  The thread never touches
 * managed memory (its buffers are on its own stack) and runs with every
 * signal blocked.
 */
#include "preload.h"
#include "query_proto.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static pthread_t server;

bool shim_peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

static size_t counters_format(char *buf, size_t cap)
{
	size_t at = 0;
	const char *name;
	uint64_t v;
	unsigned i;

	at += (size_t)snprintf(buf + at, cap - at, "pid: %d\n", (int)getpid());
	for (i = 0; (name = uswap_stat_name(i)) && at < cap; i++)
		if (!uswap_stat(shim_u, name, &v))
			at += (size_t)snprintf(buf + at, cap - at, "%s: %llu\n", name,
					       (unsigned long long)v);
	for (i = 0; i < SHIM_COUNT && at < cap; i++)
		at += (size_t)snprintf(buf + at, cap - at, "%s: %llu\n", shim_counter_names[i],
				       (unsigned long long)__atomic_load_n(&shim_counters[i],
									   __ATOMIC_RELAXED));
	at += at < cap ? (size_t)snprintf(buf + at, cap - at, "shim_min_map: %zu\n", shim_min_map)
		       : 0;
	return at < cap ? at : cap;
}

static void serve_one(int fd)
{
	char buf[16384];
	size_t len, off = 0;

	if (!shim_peer_allowed(fd))
		return;
	len = counters_format(buf, sizeof(buf));
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

/* The listening sockets, -1 when not serving. */
struct listeners {
	int stat_fd, query_fd;
};
static struct listeners listening = { -1, -1 };

static void *server_main(void *arg)
{
	const struct listeners *l = arg;
	struct pollfd pfd[2] = { { .fd = l->stat_fd, .events = POLLIN },
				 { .fd = l->query_fd, .events = POLLIN } };

	for (;;) {
		int i;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		for (i = 0; i < 2; i++) {
			int fd;

			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
					continue;
				return NULL;
			}
			if (i == 0)
				serve_one(fd);
			else
				shim_query_serve(fd);
			close(fd);
		}
	}
}

/* Listen on the abstract Unix socket named by fmt and our pid.
 * @return the socket or -errno. */
static int listen_abstract(int type, const char *fmt)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd, rc, n;

	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* abstract name: sun_path[0] is NUL */
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, fmt, (int)getpid());
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	if (bind(fd, (struct sockaddr *)&sa, len) || listen(fd, 16)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int shim_stat_start(void)
{
	sigset_t all, old;
	int sfd, qfd, rc;

	sfd = listen_abstract(SOCK_STREAM, "uswap/%d");
	if (sfd < 0)
		return sfd;
	qfd = listen_abstract(SOCK_SEQPACKET, QUERY_SOCKET_FMT);
	if (qfd < 0) {
		close(sfd);
		return qfd;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	listening = (struct listeners){ sfd, qfd };
	rc = -pthread_create(&server, NULL, server_main, &listening);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		close(sfd);
		close(qfd);
		listening = (struct listeners){ -1, -1 };
		return rc;
	}
	pthread_detach(server);
	return 0;
}

void shim_stat_restart(void)
{
	/* the parent's socket is the parent's: answer under our own pid */
	if (listening.stat_fd >= 0)
		close(listening.stat_fd);
	if (listening.query_fd >= 0)
		close(listening.query_fd);
	listening = (struct listeners){ -1, -1 };
	if (shim_u && shim_stat_start())
		fprintf(stderr, "uswap: counters of process %d will not be served\n",
			(int)getpid());
}

/* SPDX-License-Identifier: MIT */
/*
 * The OS layer's plain system services: waiting on descriptors, CPUs and
 * pinning, time, eventfds, futexes.  Kept apart from os.c (memory and
 * userfaultfd) so that the simulation tests, which fake userfaultfd, run
 * on these real ones.
 */
#include "os.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/futex.h>

static inline int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

int os_wait_readable(int fd, int wake_fd, int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = wake_fd, .events = POLLIN },
	};
	int rc = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);

	return rc > 0 && (p[0].revents & (POLLIN | POLLERR | POLLHUP)) ? 1 : 0;
}

/* ---- threads, CPUs, time ---- */

int os_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

int os_thread_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

uint64_t os_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int os_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	return fd < 0 ? neg_errno() : fd;
}

int os_eventfd_signal(int fd)
{
	uint64_t one = 1;

	return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : neg_errno();
}

void os_eventfd_drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

int os_close(int fd)
{
	return close(fd) ? neg_errno() : 0;
}

/* ---- futex ---- */

void os_futex_wait(uint32_t *word, uint32_t val)
{
	/* not FUTEX_PRIVATE_FLAG: the folio words of shared regions live in
	 * memory shared with other processes, whose lockers wake us */
	syscall(SYS_futex, word, FUTEX_WAIT, val, NULL, NULL, 0);
}

void os_futex_wake_all(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

/* ---- passing descriptors ---- */

int os_socketpair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ? neg_errno() : 0;
}

int os_send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	memset(&ctl, 0, sizeof(ctl));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return neg_errno();
	return 0;
}

int os_recv_fd(int sock, int timeout_ms)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	int fd, rc;

	while ((rc = poll(&p, 1, timeout_ms)) < 0)
		if (errno != EINTR)
			return neg_errno();
	if (rc == 0)
		return -ETIMEDOUT;
	while (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) < 0)
		if (errno != EINTR)
			return neg_errno();
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

void os_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

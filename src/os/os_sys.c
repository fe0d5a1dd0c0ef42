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
#include <sys/eventfd.h>
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
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

void os_futex_wake_all(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

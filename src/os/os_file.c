/* SPDX-License-Identifier: MIT */
/*
 * The OS layer's files and descriptors for shared regions: memfds, reads
 * and writes at an offset, hole punching, mapping a file shared, taking a
 * descriptor from another process (pidfd_getfd), and futexes that work
 * across processes.  Real in the simulation tests too (like os_sys.c).
 */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/futex.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static inline int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

int os_memfd_create(const char *name, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0)
		return neg_errno();
	if (ftruncate(fd, (off_t)size)) {
		int err = neg_errno();

		close(fd);
		return err;
	}
	return fd;
}

long os_file_size(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);

	return end < 0 ? neg_errno() : (long)end;
}

int os_file_read(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return neg_errno();
		if (n == 0)
			return -EIO; /* past the end: the file is shorter than promised */
		done += (size_t)n;
	}
	return 0;
}

int os_file_write(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? neg_errno() : -EIO;
		done += (size_t)n;
	}
	return 0;
}

int os_file_punch(int fd, uint64_t off, size_t len)
{
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len)
		       ? neg_errno()
		       : 0;
}

void *os_file_map(int fd, size_t len, uint64_t off, void *at)
{
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | (at ? MAP_FIXED : 0), fd,
		       (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}

int os_dup(int fd)
{
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	return d < 0 ? neg_errno() : d;
}

int os_fd_take(int pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), got;

	if (pidfd < 0)
		return neg_errno();
	got = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (got < 0)
		got = neg_errno();
	close(pidfd);
	return got;
}

/* The /proc answer, for kernels without pidfd_open: gone, or a zombie. */
static bool process_gone_proc(int pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true; /* it went while we read */
	buf[n] = 0;
	/* "pid (comm) S ...": the state follows the last ')' */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/*
 * Every thread of process pid has exited.  Not "/proc/PID/stat says Z":
 * that is the state of the main thread alone, a zombie as soon as it
 * returns from pthread_exit (or is the first to die of a SIGKILL) while
 * the other threads run on (a reclaimer mid-eviction, a write still in a
 * system call).  A pidfd polls readable only once the whole thread group
 * has exited (Linux 5.3; shared regions need 6.1).
 */
bool os_process_gone(int pid)
{
	struct pollfd p = { .events = POLLIN };
	int n;

	if (pid <= 0)
		return false;
	p.fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p.fd < 0) {
		if (errno == ESRCH || errno == EINVAL)
			return true; /* reaped (EINVAL: the number is another's thread now) */
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
			return false; /* ask again later */
		return process_gone_proc(pid); /* ENOSYS, a seccomp filter's EPERM */
	}
	n = poll(&p, 1, 0);
	close(p.fd);
	return n == 1 && (p.revents & POLLIN);
}

bool os_futex_wait_shared(uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u) };

	return syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0) == 0;
}

void os_futex_wake_shared(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

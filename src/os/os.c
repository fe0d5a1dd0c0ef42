/* SPDX-License-Identifier: MIT */
/*
 * The OS layer: memory, userfaultfd, threads and time.  Every syscall's
 * failure is turned into a negative errno here, once.
 */
#include "os.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/userfaultfd.h>

#include "uffd_compat.h"
#include "../core/errmsg.h"

static inline int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

/* ---- memory ---- */

void *os_mem_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void *os_mem_map_zeros(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void *os_mem_map_aligned(size_t len, size_t align)
{
	size_t span = len + align;
	char *p = os_mem_map(span);
	uintptr_t start;

	if (!p)
		return NULL;
	start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	/* Trim the slack on both sides so only [start, start+len) stays. */
	if (start > (uintptr_t)p)
		munmap(p, start - (uintptr_t)p);
	if ((uintptr_t)p + span > start + len)
		munmap((void *)(start + len), (uintptr_t)p + span - (start + len));
	return (void *)start;
}

int os_mem_unmap(void *addr, size_t len)
{
	return munmap(addr, len) ? neg_errno() : 0;
}

int os_mem_discard(void *addr, size_t len)
{
	return madvise(addr, len, MADV_DONTNEED) ? neg_errno() : 0;
}

bool os_page_mapped(const void *addr)
{
	unsigned char vec = 0;

	return mincore((void *)((uintptr_t)addr & ~(uintptr_t)(OS_PAGE_SIZE - 1)), OS_PAGE_SIZE,
		       &vec) == 0 &&
	       (vec & 1);
}

/* ---- userfaultfd ---- */

static const struct {
	unsigned ours;
	uint64_t kernel;
} uffd_feature_map[] = {
	{ OS_UFFD_WP, UFFD_FEATURE_PAGEFAULT_FLAG_WP },
	{ OS_UFFD_MOVE, UFFD_FEATURE_MOVE },
	{ OS_UFFD_FORK, UFFD_FEATURE_EVENT_FORK },
	{ OS_UFFD_REMAP, UFFD_FEATURE_EVENT_REMAP },
	{ OS_UFFD_REMOVE, UFFD_FEATURE_EVENT_REMOVE },
	{ OS_UFFD_UNMAP, UFFD_FEATURE_EVENT_UNMAP },
	{ OS_UFFD_THREAD_ID, UFFD_FEATURE_THREAD_ID },
	{ OS_UFFD_WP_ASYNC, UFFD_FEATURE_WP_ASYNC },
	{ OS_UFFD_POISON, UFFD_FEATURE_POISON },
	{ OS_UFFD_WP_SHMEM, UFFD_FEATURE_WP_HUGETLBFS_SHMEM },
};

static int uffd_open_fd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int dev;

	if (fd >= 0)
		return fd;
	if (errno != EPERM)
		return neg_errno();
	/* Unprivileged processes may still have /dev/userfaultfd (5.11+). */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd < 0 ? -EPERM : fd;
}

int os_uffd_open(unsigned want, unsigned *got)
{
	struct uffdio_api api = { .api = UFFD_API };
	uint64_t features = 0;
	size_t i;
	int fd;

	fd = uffd_open_fd();
	if (fd == -EPERM)
		return errmsg_set(-EPERM,
				  "userfaultfd is not permitted for this process: run as root, or "
				  "with CAP_SYS_PTRACE, or set sysctl vm.unprivileged_userfaultfd=1, "
				  "or give this user read-write access to /dev/userfaultfd");
	if (fd == -ENOSYS)
		return errmsg_set(-ENOSYS, "this kernel has no userfaultfd (CONFIG_USERFAULTFD)");
	if (fd < 0)
		return errmsg_set(fd, "userfaultfd: %s", strerror(-fd));

	/* Ask for the features the kernel has: probe first, then enable. */
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = neg_errno();

		close(fd);
		return errmsg_set(err, "UFFDIO_API: %s", strerror(-err));
	}
	close(fd);
	for (i = 0; i < sizeof(uffd_feature_map) / sizeof(uffd_feature_map[0]); i++)
		if ((want & uffd_feature_map[i].ours) && (api.features & uffd_feature_map[i].kernel))
			features |= uffd_feature_map[i].kernel;

	fd = uffd_open_fd();
	if (fd < 0)
		return errmsg_set(fd, "userfaultfd: %s", strerror(-fd));
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = features;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = neg_errno();

		close(fd);
		return errmsg_set(err, "UFFDIO_API with features 0x%llx: %s",
				  (unsigned long long)features, strerror(-err));
	}
	*got = 0;
	for (i = 0; i < sizeof(uffd_feature_map) / sizeof(uffd_feature_map[0]); i++)
		if (api.features & uffd_feature_map[i].kernel)
			*got |= uffd_feature_map[i].ours;
	return fd;
}

int os_uffd_register(int fd, void *addr, size_t len, bool wp)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | (wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};

	return ioctl(fd, UFFDIO_REGISTER, &reg) ? neg_errno() : 0;
}

int os_uffd_unregister(int fd, void *addr, size_t len)
{
	struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };

	return ioctl(fd, UFFDIO_UNREGISTER, &range) ? neg_errno() : 0;
}

/*
 * The resolving ioctls report progress in a field of their argument; a
 * partial result is returned as the count, a failure before any progress as
 * -errno.  EAGAIN with progress is returned as the progress.
 */
static long uffd_result(int rc, int64_t progress)
{
	if (rc == 0)
		return (long)progress;
	if (progress > 0)
		return (long)progress;
	if (progress < 0)
		return (long)progress;
	return neg_errno();
}

long os_uffd_copy(int fd, void *dst, const void *src, size_t len, unsigned flags)
{
	struct uffdio_copy c = {
		.dst = (uintptr_t)dst,
		.src = (uintptr_t)src,
		.len = len,
		.mode = ((flags & OS_DONTWAKE) ? UFFDIO_COPY_MODE_DONTWAKE : 0) |
			((flags & OS_WP) ? UFFDIO_COPY_MODE_WP : 0),
	};
	int rc = ioctl(fd, UFFDIO_COPY, &c);

	return uffd_result(rc, c.copy);
}

long os_uffd_zeropage(int fd, void *dst, size_t len, unsigned flags)
{
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)dst, .len = len },
		.mode = (flags & OS_DONTWAKE) ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0,
	};
	int rc = ioctl(fd, UFFDIO_ZEROPAGE, &z);

	return uffd_result(rc, z.zeropage);
}

long os_uffd_move(int fd, void *dst, void *src, size_t len, unsigned flags)
{
	struct uffdio_move m = {
		.dst = (uintptr_t)dst,
		.src = (uintptr_t)src,
		.len = len,
		.mode = ((flags & OS_DONTWAKE) ? UFFDIO_MOVE_MODE_DONTWAKE : 0) |
			((flags & OS_ALLOW_SRC_HOLES) ? UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES : 0),
	};
	int rc = ioctl(fd, UFFDIO_MOVE, &m);

	return uffd_result(rc, m.move);
}

int os_uffd_wake(int fd, void *addr, size_t len)
{
	struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };

	return ioctl(fd, UFFDIO_WAKE, &range) ? neg_errno() : 0;
}

int os_uffd_wp(int fd, void *addr, size_t len, bool protect, unsigned flags)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = (protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
			((flags & OS_DONTWAKE) ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0),
	};

	return ioctl(fd, UFFDIO_WRITEPROTECT, &wp) ? neg_errno() : 0;
}

static void uffd_msg_convert(const struct uffd_msg *m, struct os_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		ev->kind = OS_EV_FAULT;
		ev->fault.addr = m->arg.pagefault.address & ~(uint64_t)(OS_PAGE_SIZE - 1);
		ev->fault.flags = ((m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) ? OS_FAULT_WRITE : 0) |
				  ((m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) ? OS_FAULT_WP : 0);
		ev->fault.tid = m->arg.pagefault.feat.ptid;
		break;
	case UFFD_EVENT_FORK:
		ev->kind = OS_EV_FORK;
		ev->fork.ufd = (int)m->arg.fork.ufd;
		break;
	case UFFD_EVENT_REMAP:
		ev->kind = OS_EV_REMAP;
		ev->remap.from = m->arg.remap.from;
		ev->remap.to = m->arg.remap.to;
		ev->remap.len = m->arg.remap.len;
		break;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		ev->kind = m->event == UFFD_EVENT_REMOVE ? OS_EV_REMOVE : OS_EV_UNMAP;
		ev->remove.start = m->arg.remove.start;
		ev->remove.end = m->arg.remove.end;
		break;
	default:
		ev->kind = 0;
	}
}

int os_uffd_read(int fd, struct os_event *ev, int n)
{
	struct uffd_msg msgs[16];
	ssize_t got;
	int i, count;

	if (n > 16)
		n = 16;
	got = read(fd, msgs, sizeof(msgs[0]) * (size_t)n);
	if (got < 0)
		return errno == EAGAIN ? -EAGAIN : neg_errno();
	count = (int)(got / (ssize_t)sizeof(msgs[0]));
	for (i = 0; i < count; i++)
		uffd_msg_convert(&msgs[i], &ev[i]);
	return count;
}

/* ---- observation ---- */

/* /proc/self/pagemap, opened once: "self" is resolved at open time, so a
 * child process must open its own (os_postfork_child). */
static int pagemap_fd = -1;

void os_postfork_child(void)
{
	int fd = __atomic_exchange_n(&pagemap_fd, -1, __ATOMIC_ACQ_REL);

	if (fd >= 0)
		close(fd);
}

long os_resident_pages(void *addr, size_t len)
{
	struct page_region regions[64];
	struct pm_scan_arg arg;
	uint64_t start = (uintptr_t)addr, end = start + len;
	long pages = 0;
	int fd = __atomic_load_n(&pagemap_fd, __ATOMIC_ACQUIRE);

	if (fd < 0) {
		int newfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		int expected = -1;

		if (newfd < 0)
			return neg_errno();
		if (!__atomic_compare_exchange_n(&pagemap_fd, &expected, newfd, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			close(newfd);
			newfd = expected;
		}
		fd = newfd;
	}
	while (start < end) {
		long n, i;

		memset(&arg, 0, sizeof(arg));
		arg.size = sizeof(arg);
		arg.start = start;
		arg.end = end;
		arg.vec = (uintptr_t)regions;
		arg.vec_len = sizeof(regions) / sizeof(regions[0]);
		/* present, and not the shared zero page */
		arg.category_mask = PAGE_IS_PRESENT | PAGE_IS_PFNZERO;
		arg.category_inverted = PAGE_IS_PFNZERO;
		arg.return_mask = PAGE_IS_PRESENT;
		n = ioctl(fd, PAGEMAP_SCAN, &arg);
		if (n < 0)
			return neg_errno();
		for (i = 0; i < n; i++)
			pages += (long)((regions[i].end - regions[i].start) / OS_PAGE_SIZE);
		if (arg.walk_end <= start)
			break;
		start = arg.walk_end;
	}
	return pages;
}

long os_uffd_poison(int fd, void *dst, size_t len)
{
	struct uffdio_poison p = {
		.range = { .start = (uintptr_t)dst, .len = len },
		.mode = 0,
	};
	int rc = ioctl(fd, UFFDIO_POISON, &p);

	return uffd_result(rc, p.updated);
}

int os_region_prepare(void *addr, size_t len)
{
	/* uswap's folios are its own unit; a transparent huge page would make
	 * the kernel split it on every move. */
	if (madvise(addr, len, MADV_NOHUGEPAGE) && errno != EINVAL)
		return neg_errno();
	return 0;
}

int os_mem_dontfork(void *addr, size_t len)
{
	return madvise(addr, len, MADV_DONTFORK) ? neg_errno() : 0;
}

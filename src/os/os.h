/* SPDX-License-Identifier: MIT */
/*
 * The OS contract: the only door to the kernel.  Nothing outside src/os/
 * calls ioctl, madvise, mmap or syscall, or includes <linux/userfaultfd.h>.
 *
 * Conventions (mimalloc's prim.h habit): every function returns 0 (or a
 * count) on success and a negative errno on failure, converted once here;
 * addresses and lengths given to the uffd_* and mem_* functions are page
 * aligned and lengths are non-zero unless said otherwise.
 */
#ifndef USWAP_OS_H
#define USWAP_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OS_PAGE_SIZE 4096u
#define OS_PAGE_SHIFT 12u

/* ---- memory that uswap itself uses (never managed) ---- */

/* Map len bytes of private anonymous read-write memory.
 * @return the address, or NULL with errno set. */
void *os_mem_map(size_t len);
/* Map len bytes aligned to align (a power of two >= page size). */
void *os_mem_map_aligned(size_t len, size_t align);
/* len bytes that read as zero and cannot be written: never touched, every
 * page read is the kernel's shared zero page.  A source of zeros for
 * UFFDIO_COPY that costs no memory and no memset. */
void *os_mem_map_zeros(size_t len);
int os_mem_unmap(void *addr, size_t len);
/* MADV_DONTNEED: the range reads as zeros afterwards, its memory is freed. */
int os_mem_discard(void *addr, size_t len);
/* Whether the page at addr is mapped (mincore: a zero-page mapping is). */
bool os_page_mapped(const void *addr);

/* ---- userfaultfd ---- */

/* Features uswap asks for (a subset of UFFD_FEATURE_*), in our own bits. */
#define OS_UFFD_WP      0x01u /* write-protect faults on anonymous memory */
#define OS_UFFD_MOVE    0x02u /* UFFDIO_MOVE */
#define OS_UFFD_FORK    0x04u /* fork events */
#define OS_UFFD_REMAP   0x08u /* mremap events */
#define OS_UFFD_REMOVE  0x10u /* MADV_DONTNEED/MADV_FREE events */
#define OS_UFFD_UNMAP   0x20u /* munmap events */
#define OS_UFFD_THREAD_ID 0x40u /* faulting thread id in fault messages */
#define OS_UFFD_WP_ASYNC 0x80u
#define OS_UFFD_POISON  0x100u /* UFFDIO_POISON */
#define OS_UFFD_WP_SHMEM 0x200u /* write-protect on shmem (shared regions) */

/*
 * Open a userfaultfd (O_CLOEXEC | O_NONBLOCK, user-mode faults only when
 * the kernel insists) and negotiate features.
 * @want   OS_UFFD_* wanted; those the kernel lacks are left out of *got.
 * @return the fd; -EPERM / -ENOSYS with a message (errmsg) that says why
 *         and what to do.
 */
int os_uffd_open(unsigned want, unsigned *got);

/* Register [addr, addr+len) for missing faults (and write-protect faults
 * when wp). */
int os_uffd_register(int fd, void *addr, size_t len, bool wp);
int os_uffd_unregister(int fd, void *addr, size_t len);

/* Flags for the resolving operations. */
#define OS_DONTWAKE 0x1u /* leave the faulting threads asleep (wake later) */
#define OS_WP       0x2u /* install write-protected (copy) */
#define OS_ALLOW_SRC_HOLES 0x4u /* move: skip unpopulated source pages */

/*
 * UFFDIO_COPY of len bytes from src to dst.
 * @return bytes copied (== len); -EEXIST when a page in the range was
 *         already there (bytes before it were copied: *done); -EAGAIN when
 *         the mm changed (an event is pending: retry after reading it);
 *         -ENOENT/-ESRCH when the range or the process is gone.
 */
long os_uffd_copy(int fd, void *dst, const void *src, size_t len, unsigned flags);
/* UFFDIO_ZEROPAGE: map the shared zero page over [dst, dst+len). */
long os_uffd_zeropage(int fd, void *dst, size_t len, unsigned flags);
/* UFFDIO_MOVE of len bytes from src to dst (both registered with fd's
 * userfaultfd or anonymous as the kernel requires). @return bytes moved;
 * -EBUSY when a page is pinned or shared (not exclusive). */
long os_uffd_move(int fd, void *dst, void *src, size_t len, unsigned flags);
/* UFFDIO_POISON: accesses to the range get SIGBUS (a page that cannot be
 * brought back is never shown with wrong contents). */
long os_uffd_poison(int fd, void *dst, size_t len);
/* MADV_NOHUGEPAGE on a new region (see uswap_map). */
int os_region_prepare(void *addr, size_t len);
/* MADV_DONTFORK: a child process does not inherit the range (uswap's own
 * staging folios: the child makes its own). */
int os_mem_dontfork(void *addr, size_t len);
/* In a child process after fork: forget descriptors that name the parent
 * (the cached /proc/self/pagemap). */
void os_postfork_child(void);
/* Pass a descriptor over a Unix socket (SCM_RIGHTS).  send: @return 0 or
 * -errno.  recv waits at most timeout_ms: @return the fd, -ETIMEDOUT or
 * -errno. */
int os_send_fd(int sock, int fd);
int os_recv_fd(int sock, int timeout_ms);
/* A connected pair of Unix sockets (close-on-exec). */
int os_socketpair(int sv[2]);
/* Wake the threads waiting on faults in the range. */
int os_uffd_wake(int fd, void *addr, size_t len);
/* Write-protect (protect=true) or un-protect a range. */
int os_uffd_wp(int fd, void *addr, size_t len, bool protect, unsigned flags);

/* What a userfaultfd reports. */
enum os_event_kind {
	OS_EV_FAULT = 1,
	OS_EV_FORK,
	OS_EV_REMAP,
	OS_EV_REMOVE,
	OS_EV_UNMAP,
};

#define OS_FAULT_WRITE 0x1u
#define OS_FAULT_WP    0x2u

struct os_event {
	enum os_event_kind kind;
	union {
		struct {
			uint64_t addr;  /* page of the fault */
			unsigned flags; /* OS_FAULT_* */
			uint32_t tid;   /* faulting thread (with OS_UFFD_THREAD_ID) */
		} fault;
		struct {
			int ufd;        /* the child's userfaultfd */
		} fork;
		struct {
			uint64_t from, to, len;
		} remap;
		struct {
			uint64_t start, end;
		} remove;           /* also OS_EV_UNMAP */
	};
};

/*
 * Read up to n events without blocking.
 * @return the number read (> 0); -EAGAIN when there is none.
 */
int os_uffd_read(int fd, struct os_event *ev, int n);

/* Block until fd is readable, or until the timeout (ms, -1 = none) or
 * wake_fd (an eventfd, -1 = none) fires.  @return 1 readable, 0 otherwise. */
int os_wait_readable(int fd, int wake_fd, int timeout_ms);

/* ---- threads, CPUs, time ---- */
int os_cpu_count(void);
/* Pin the calling thread to one CPU. */
int os_thread_pin(int cpu);
uint64_t os_now_ns(void);
void os_sleep_ns(uint64_t ns);
int os_eventfd(void);
int os_eventfd_signal(int fd);
void os_eventfd_drain(int fd);
int os_close(int fd);

/* ---- observation (tests and stats) ---- */

/* Pages in [addr, addr+len) that hold their own memory (present and not
 * the shared zero page), from PAGEMAP_SCAN.  @return the count or -errno. */
long os_resident_pages(void *addr, size_t len);

/* ---- futex on a 32-bit word ---- */
/* Sleep while *word == val (or until woken).  Spurious returns happen. */
void os_futex_wait(uint32_t *word, uint32_t val);
void os_futex_wake_all(uint32_t *word);

/* ---- files and descriptors (os_file.c), for shared regions ---- */
/* A memfd of size bytes (close-on-exec).  @return the fd or -errno. */
int os_memfd_create(const char *name, size_t size);
/* The size of the file.  @return bytes or -errno. */
long os_file_size(int fd);
/* Read / write exactly len bytes at off (a hole reads as zeros).
 * @return 0; -EIO past the end of the file; -errno. */
int os_file_read(int fd, void *buf, size_t len, uint64_t off);
int os_file_write(int fd, const void *buf, size_t len, uint64_t off);
/* Free [off, off+len) of the file (it reads as zeros): every mapping of
 * it loses its pages there.  off and len page aligned. */
int os_file_punch(int fd, uint64_t off, size_t len);
/* Map len bytes of the file from off, shared and read-write, at `at`
 * (MAP_FIXED, replacing what is there) or anywhere when NULL.
 * @return the address, or NULL with errno set. */
void *os_file_map(int fd, size_t len, uint64_t off, void *at);
/* A close-on-exec duplicate.  @return the fd or -errno. */
int os_dup(int fd);
/* A duplicate of descriptor fd of process pid (pidfd_getfd: needs ptrace
 * permission over it).  @return the fd; -ESRCH when the process is gone,
 * -EBADF when it has no such descriptor, -EPERM when not allowed. */
int os_fd_take(int pid, int fd);
/* Futexes on memory shared between processes (no FUTEX_PRIVATE_FLAG).
 * wait: sleep while *word == val, at most timeout_ns; @return true when
 * woken, false on timeout, on a signal, or at once when *word != val
 * (callers look at the word again either way). */
bool os_futex_wait_shared(uint32_t *word, uint32_t val, uint64_t timeout_ns);
/* Has every thread of process pid exited (gone, or a zombie whose threads
 * all exited)? */
bool os_process_gone(int pid);
void os_futex_wake_shared(uint32_t *word);

#endif

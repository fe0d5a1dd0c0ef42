/* SPDX-License-Identifier: MIT */
/*
 * wp_modes - how the swap cache should learn that a swapped-in folio was
 * written: synchronous write-protect faults, or the kernel's asynchronous
 * write-protect mode (UFFD_FEATURE_WP_ASYNC) read back with PAGEMAP_SCAN.
 * The figures and the choice are in docs/ARCHITECTURE.md ("The swap cache").
 *
 * Both modes install 64 KiB folios write-protected (UFFDIO_COPY with
 * MODE_WP) into a registered region, then write one byte into each folio,
 * then ask, per folio, "was it written?" as eviction must:
 *   sync   the write faults; a handler thread (one per CPU, pinned, as in
 *          uswap) lifts the protection of the folio (UFFDIO_WRITEPROTECT);
 *          eviction knows the answer from its own state: no syscall.
 *   async  the kernel lifts the protection itself, no message; eviction
 *          asks PAGEMAP_SCAN for PAGE_IS_WRITTEN on the folio.
 * Also measured: the install itself with and without MODE_WP, and a second
 * write to the same folio (free in both modes).
 *
 * Standalone like fault_rtt: raw ioctls, only the constants of
 * src/os/uffd_compat.h.  Usage: wp_modes [-n folios] [-r runs]
 * (defaults 4096 folios = 256 MiB, 5 runs; a few seconds).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "os/uffd_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul
#define FOLIO (16 * PAGE)
#define MAXRUN 15
#define MAXCPU 8

static size_t nfolios = 4096;
static int runs = 5;

static void die(const char *what)
{
	fprintf(stderr, "wp_modes: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int open_uffd(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		die("userfaultfd");
	if (ioctl(fd, UFFDIO_API, &api))
		die(features ? "UFFDIO_API with UFFD_FEATURE_WP_ASYNC (Linux 6.7+)" : "UFFDIO_API");
	return fd;
}

static char *map_registered(int fd)
{
	size_t len = nfolios * FOLIO;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};

	if (p == MAP_FAILED)
		die("mmap");
	madvise(p, len, MADV_NOHUGEPAGE);
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER missing+wp");
	return p;
}

static void discard(char *p)
{
	if (madvise(p, nfolios * FOLIO, MADV_DONTNEED))
		die("MADV_DONTNEED");
}

/* Install every folio from src; @return µs per folio. */
static double install_all(int fd, char *region, const char *src, int wp)
{
	double t0 = now_us();

	for (size_t f = 0; f < nfolios; f++) {
		struct uffdio_copy c = { .dst = (uintptr_t)(region + f * FOLIO),
					 .src = (uintptr_t)src,
					 .len = FOLIO,
					 .mode = wp ? UFFDIO_COPY_MODE_WP : 0 };

		if (ioctl(fd, UFFDIO_COPY, &c))
			die("UFFDIO_COPY");
	}
	return (now_us() - t0) / (double)nfolios;
}

/* One byte into page k of every folio; @return µs per folio. */
static double write_all(char *region, size_t k, char v)
{
	double t0 = now_us();

	for (size_t f = 0; f < nfolios; f++)
		((volatile char *)region)[f * FOLIO + k * PAGE] = v;
	return (now_us() - t0) / (double)nfolios;
}

/* ---- the sync mode's handlers ---- */

struct handler {
	pthread_t tid;
	int fd, cpu;
};

static atomic_int stop;
static atomic_long wp_faults;

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(h->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	while (!atomic_load(&stop)) {
		struct pollfd pfd = { .fd = h->fd, .events = POLLIN };
		struct uffd_msg msg;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (read(h->fd, &msg, sizeof(msg)) != sizeof(msg))
			continue; /* another handler took it */
		if (msg.event != UFFD_EVENT_PAGEFAULT ||
		    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
			fprintf(stderr, "wp_modes: unexpected message %u\n", msg.event);
			exit(1);
		}
		struct uffdio_writeprotect w = {
			.range = { .start = msg.arg.pagefault.address & ~(FOLIO - 1), .len = FOLIO },
			.mode = 0, /* lift the protection of the folio, wake the writer */
		};
		if (ioctl(h->fd, UFFDIO_WRITEPROTECT, &w) && errno != EAGAIN)
			die("UFFDIO_WRITEPROTECT");
		atomic_fetch_add(&wp_faults, 1);
	}
	return NULL;
}

/* ---- the async mode's question ---- */

static int pagemap_fd;

/* Was any page of folio f written since it was protected?  @return µs
 * per folio for the whole region, and *written the count. */
static double scan_all(char *region, size_t *written)
{
	struct page_region vec[16];
	double t0 = now_us();

	*written = 0;
	for (size_t f = 0; f < nfolios; f++) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.start = (uintptr_t)(region + f * FOLIO),
			.end = (uintptr_t)(region + (f + 1) * FOLIO),
			.vec = (uintptr_t)vec,
			.vec_len = 16,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);

		if (n < 0)
			die("PAGEMAP_SCAN");
		*written += n > 0;
	}
	return (now_us() - t0) / (double)nfolios;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v)
{
	qsort(v, (size_t)runs, sizeof(*v), cmp_double);
	printf("  %-52s %8.2f  (%.2f-%.2f)\n", what, v[runs / 2], v[0], v[runs - 1]);
}

int main(int argc, char **argv)
{
	double copy[MAXRUN], copy_wp[MAXRUN], sync_w[MAXRUN], sync_w2[MAXRUN], async_w[MAXRUN],
		async_w2[MAXRUN], scan_clean[MAXRUN], scan_dirty[MAXRUN];
	struct handler h[MAXCPU];
	int opt, ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN), sfd, afd;
	char *src, *sreg, *areg;
	size_t written;

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		if (opt == 'n')
			nfolios = strtoul(optarg, NULL, 10);
		else if (opt == 'r')
			runs = atoi(optarg);
		else {
			fprintf(stderr, "usage: wp_modes [-n folios] [-r runs (1-%d)]\n", MAXRUN);
			return 2;
		}
	}
	if (runs < 1 || runs > MAXRUN || nfolios < 1) {
		fprintf(stderr, "wp_modes: -r must be 1 to %d and -n at least 1\n", MAXRUN);
		return 2;
	}
	if (ncpu > MAXCPU)
		ncpu = MAXCPU;
	src = aligned_alloc(PAGE, FOLIO);
	for (size_t i = 0; i < FOLIO; i++)
		src[i] = (char)(i * 7 + 1);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		die("/proc/self/pagemap");
	sfd = open_uffd(0);
	afd = open_uffd(UFFD_FEATURE_WP_ASYNC);
	sreg = map_registered(sfd);
	areg = map_registered(afd);
	for (int i = 0; i < ncpu; i++) {
		h[i].fd = sfd;
		h[i].cpu = i;
		if (pthread_create(&h[i].tid, NULL, handler_main, &h[i]))
			die("pthread_create");
	}
	for (int r = 0; r < runs; r++) {
		copy[r] = install_all(sfd, sreg, src, 0);
		discard(sreg);
		copy_wp[r] = install_all(sfd, sreg, src, 1);
		sync_w[r] = write_all(sreg, 3, (char)r);
		sync_w2[r] = write_all(sreg, 5, (char)r);
		discard(sreg);

		install_all(afd, areg, src, 1);
		scan_clean[r] = scan_all(areg, &written);
		if (written) {
			fprintf(stderr, "wp_modes: %zu folios read as written before any write\n",
				written);
			return 1;
		}
		async_w[r] = write_all(areg, 3, (char)r);
		async_w2[r] = write_all(areg, 5, (char)r);
		scan_dirty[r] = scan_all(areg, &written);
		if (written != nfolios) {
			fprintf(stderr, "wp_modes: %zu of %zu written folios seen\n", written,
				nfolios);
			return 1;
		}
		discard(areg);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < ncpu; i++)
		pthread_join(h[i].tid, NULL);
	if ((size_t)atomic_load(&wp_faults) != nfolios * (size_t)runs) {
		fprintf(stderr, "wp_modes: %ld write-protect faults, expected %zu\n",
			atomic_load(&wp_faults), nfolios * (size_t)runs);
		return 1;
	}
	printf("wp_modes: %zu folios of 64 KiB, %d runs, µs per folio: median (min-max)\n",
	       nfolios, runs);
	report("install: UFFDIO_COPY 64 KiB", copy);
	report("install: UFFDIO_COPY 64 KiB, MODE_WP", copy_wp);
	report("sync: first write (WP fault + UFFDIO_WRITEPROTECT)", sync_w);
	report("sync: second write", sync_w2);
	printf("  %-52s %8s\n", "sync: eviction asks 'written?' (its own flag)", "0");
	report("async: first write (kernel, no message)", async_w);
	report("async: second write", async_w2);
	report("async: eviction asks 'written?' clean (PAGEMAP_SCAN)", scan_clean);
	report("async: eviction asks 'written?' dirty (PAGEMAP_SCAN)", scan_dirty);
	return 0;
}

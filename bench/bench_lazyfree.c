/* SPDX-License-Identifier: MIT */
/*
 * bench_lazyfree: reclaiming lazily freed memory, uswap against the kernel,
 * in the same run (the benchmark of the seed thread on lazy free of large
 * folios).
 *
 * uswap: SIZE of managed memory filled with the realistic page mix, lazily
 * freed whole (USWAP_ADV_FREE), then paged out whole (PAGEOUT): the time
 * of that reclaim, with 64 KiB folios and with 4 KiB folios.  For scale,
 * the same PAGEOUT of data that was not freed (it compresses and stores).
 *
 * kernel: a child in a memory cgroup (v1, /sys/fs/cgroup/memory) fills
 * SIZE of anonymous memory, MADV_FREEs it, and the parent lowers the
 * cgroup's limit to 16 MiB: the time of that write is the kernel
 * reclaiming the lazily freed memory; with 64 KiB mTHP (hugepages-64kB
 * "madvise" and MADV_HUGEPAGE, PMD THP off) and with 4 KiB pages.  The THP
 * settings are restored afterwards, the cgroup removed, also on error.
 *
 *   bench_lazyfree [--size 1G] [--reps 3]          (as root)
 *
 * Not a test: it never fails on a figure, but every count is checked (all
 * pages discarded, nothing stored, the cgroup's usage really dropped).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pagegen.h"
#include "uswap.h"
#include "bench_common.h"

#define PAGE 4096ul
#define MAXREP 9
#define CG_ROOT "/sys/fs/cgroup/memory"
#define THP "/sys/kernel/mm/transparent_hugepage"

static void die(const char *what)
{
	fprintf(stderr, "bench_lazyfree: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

/* ---- uswap ---- */

/* @return µs per 4 KiB page of PAGEOUT, of lazily freed memory (lazy) or
 * of data (!lazy). */
static double uswap_run(size_t size, size_t folio, int lazy)
{
	struct uswap_config cfg = { .folio_size = folio };
	size_t pages = size / PAGE, i;
	uswap_t *u;
	char *mem;
	double t0, dt;

	if (uswap_open(&cfg, &u) || uswap_map(u, size, 0, (void **)&mem)) {
		fprintf(stderr, "bench_lazyfree: %s\n", uswap_last_error());
		exit(1);
	}
	for (i = 0; i < pages; i++)
		pagegen_fill(mem + i * PAGE, 3, i, 0);
	if (lazy && uswap_advise(u, mem, size, USWAP_ADV_FREE))
		die("USWAP_ADV_FREE");
	t0 = now_s();
	if (uswap_advise(u, mem, size, USWAP_ADV_PAGEOUT))
		die("PAGEOUT");
	dt = now_s() - t0;
	if (lazy && (stat_of(u, "lazyfree_discard") != pages || stat_of(u, "swapout_pages"))) {
		fprintf(stderr, "bench_lazyfree: %llu of %zu pages discarded, %llu stored\n",
			(unsigned long long)stat_of(u, "lazyfree_discard"), pages,
			(unsigned long long)stat_of(u, "swapout_pages"));
		exit(1);
	}
	for (i = 0; lazy && i < pages; i += 997)
		if (mem[i * PAGE] || mem[i * PAGE + PAGE - 1])
			die("a discarded page does not read as zero");
	uswap_unmap(u, mem, size);
	uswap_close(u);
	return dt * 1e6 / (double)pages;
}

/* ---- the kernel ---- */

static char thp_saved[3][64];
static const char *const thp_files[3] = { THP "/enabled", THP "/hugepages-64kB/enabled",
					  THP "/hugepages-2048kB/enabled" };
static char cg_path[256];

static int write_file(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, v, strlen(v)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static uint64_t read_u64(const char *path)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0)
		die(path);
	close(fd);
	return strtoull(buf, NULL, 10);
}

/* "always [madvise] never" -> "madvise" */
static void thp_current(const char *path, char *out, size_t n)
{
	char buf[128] = { 0 }, *a, *b;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0)
		die(path);
	close(fd);
	a = strchr(buf, '[');
	b = a ? strchr(a, ']') : NULL;
	if (!a || !b || (size_t)(b - a) >= n)
		die(path);
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = 0;
}

static void restore(void)
{
	for (int i = 0; i < 3; i++)
		if (thp_saved[i][0])
			write_file(thp_files[i], thp_saved[i]);
	if (cg_path[0])
		rmdir(cg_path);
}

static void on_signal(int sig)
{
	restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The child: fill, MADV_FREE, say so, wait to be killed. */
static void kernel_child(size_t size, int mthp, int ready_fd)
{
	char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		_exit(2);
	madvise(mem, size, mthp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (size_t i = 0; i < size / PAGE; i++)
		pagegen_fill(mem + i * PAGE, 3, i, 0);
	if (madvise(mem, size, MADV_FREE))
		_exit(3);
	if (write(ready_fd, "r", 1) != 1)
		_exit(4);
	pause();
	_exit(0);
}

/* @return µs per 4 KiB page for the kernel to reclaim SIZE of lazily freed
 * memory, by lowering the cgroup limit. */
static double kernel_run(size_t size, int mthp)
{
	char path[320], pid_s[32];
	int pfd[2];
	uint64_t before, after;
	double t0, dt;
	pid_t pid;
	char c;

	write_file(thp_files[0], "madvise");
	write_file(thp_files[1], mthp ? "madvise" : "never");
	write_file(thp_files[2], "never");
	snprintf(cg_path, sizeof(cg_path), CG_ROOT "/uswap-bench-lazyfree-%d", (int)getpid());
	if (mkdir(cg_path, 0700) && errno != EEXIST)
		die("mkdir of the memory cgroup (is cgroup v1 memory mounted at " CG_ROOT "?)");
	if (pipe(pfd))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg_path);
		snprintf(pid_s, sizeof(pid_s), "%d", (int)getpid());
		if (write_file(path, pid_s))
			_exit(5);
		kernel_child(size, mthp, pfd[1]);
	}
	if (read(pfd[0], &c, 1) != 1)
		die("the child did not fill its memory");
	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cg_path);
	before = read_u64(path);
	snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", cg_path);
	t0 = now_s();
	if (write_file(path, "16M"))
		die("lowering memory.limit_in_bytes (the kernel could not reclaim)");
	dt = now_s() - t0;
	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cg_path);
	after = read_u64(path);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(pfd[0]);
	close(pfd[1]);
	rmdir(cg_path);
	cg_path[0] = 0;
	if (before < size * 9 / 10 || after > (17ul << 20)) {
		fprintf(stderr, "bench_lazyfree: cgroup usage %llu before, %llu after: not a reclaim "
				"of the lazily freed memory\n",
			(unsigned long long)before, (unsigned long long)after);
		exit(1);
	}
	return dt * 1e6 / (double)(size / PAGE);
}

int main(int argc, char **argv)
{
	static const char *const names[6] = { "uswap 64K folios, lazily freed",
					      "uswap 4K folios, lazily freed",
					      "kernel 64K mTHP, MADV_FREE",
					      "kernel 4K pages, MADV_FREE",
					      "uswap 64K folios, data (not freed)",
					      "uswap 4K folios, data (not freed)" };
	double v[6][MAXREP];
	size_t size = 1ul << 30;
	unsigned reps = 3;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			if (uswap_parse_size("--size", argv[++i], &size)) {
				fprintf(stderr, "bench_lazyfree: %s\n", uswap_last_error());
				return 2;
			}
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			reps = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: bench_lazyfree [--size 1G] [--reps 1-%d] (as root)\n",
				MAXREP);
			return 2;
		}
	}
	if (reps < 1 || reps > MAXREP || size < (1ul << 24) || size % (64 << 10)) {
		fprintf(stderr, "bench_lazyfree: --reps must be 1 to %d, --size a multiple of 64K "
				"of at least 16M\n",
			MAXREP);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench_lazyfree: the kernel baseline needs root (a memory cgroup "
				"and the mTHP settings)\n");
		return 1;
	}
	for (int i = 0; i < 3; i++)
		thp_current(thp_files[i], thp_saved[i], sizeof(thp_saved[i]));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	atexit(restore);
	for (unsigned r = 0; r < reps; r++) {
		v[0][r] = uswap_run(size, 64 << 10, 1);
		v[1][r] = uswap_run(size, PAGE, 1);
		v[2][r] = kernel_run(size, 1);
		v[3][r] = kernel_run(size, 0);
		v[4][r] = uswap_run(size, 64 << 10, 0);
		v[5][r] = uswap_run(size, PAGE, 0);
	}
	printf("reclaim of %zu MiB, µs per 4 KiB page, median (min-max) of %u\n", size >> 20, reps);
	for (int k = 0; k < 6; k++) {
		double ratio[MAXREP];

		for (unsigned r = 0; r < reps; r++)
			ratio[r] = v[k][r] / v[k < 4 ? (k % 2 ? 3 : 2) : k][r];
		qsort(v[k], reps, sizeof(double), cmp_double);
		qsort(ratio, reps, sizeof(double), cmp_double);
		printf("  %-36s %8.3f (%.3f-%.3f)", names[k], v[k][reps / 2], v[k][0],
		       v[k][reps - 1]);
		if (k < 2)
			printf("   uswap/kernel %.2f (%.2f-%.2f)", ratio[reps / 2], ratio[0],
			       ratio[reps - 1]);
		printf("\n");
	}
	return 0;
}

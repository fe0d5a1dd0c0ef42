/* SPDX-License-Identifier: MIT */
/*
 * The cost of a shared region against a private one: eviction
 * (USWAP_ADV_PAGEOUT) and swap-in (reading every page back) of the same
 * data, with 1 to 4 processes mapping the shared region (the others are
 * forked children that only wait), and the memory the compressed copies
 * take (the store's stored_bytes for the private region, the blocks of
 * the memfd's store windows for the shared one).
 *
 *   bench_shared [MiB] [runs]     (defaults: 64 MiB, 5 runs; medians)
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "pagegen.h"

#define PAGE 4096ul

static void fill(char *mem, size_t len)
{
	for (size_t i = 0; i < len / PAGE; i++)
		pagegen_fill(mem + i * PAGE, 42, i, 1);
}

static volatile uint64_t sink;

static void read_all(const char *mem, size_t len)
{
	uint64_t s = 0;

	for (size_t off = 0; off < len; off += PAGE)
		s += *(const volatile uint64_t *)(const void *)(mem + off);
	sink = s;
}

/* Median seconds of eviction and swap-in over runs; *store_bytes the
 * memory the compressed copies took. */
static int measure(uswap_t *u, char *mem, size_t len, int runs, double *out_s, double *in_s,
		   uint64_t *store_bytes, int fd)
{
	double ev[32], sw[32], lo, hi;
	struct stat st;

	for (int r = 0; r < runs; r++) {
		double t0 = now_s();

		if (uswap_advise(u, mem, len, USWAP_ADV_PAGEOUT)) {
			fprintf(stderr, "pageout: %s\n", uswap_last_error());
			return -1;
		}
		ev[r] = now_s() - t0;
		if (r == runs - 1) {
			if (fd >= 0 && !fstat(fd, &st))
				*store_bytes = (uint64_t)st.st_blocks * 512; /* meta + blobs */
			else
				*store_bytes = stat_of(u, "stored_bytes");
		}
		t0 = now_s();
		read_all(mem, len);
		sw[r] = now_s() - t0;
	}
	stats3(ev, runs, out_s, &lo, &hi);
	stats3(sw, runs, in_s, &lo, &hi);
	return 0;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64, len = mib << 20;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	struct uswap_config cfg = { .folio_size = 64 << 10 };
	uint64_t folios = len / cfg.folio_size, bytes = 0;
	double out_s, in_s;
	uswap_t *u;
	char *mem;

	if (runs < 1 || runs > 32 || mib == 0) {
		fprintf(stderr, "usage: bench_shared [MiB >= 1] [runs 1..32]\n");
		return 2;
	}
	if (uswap_open(&cfg, &u)) {
		fprintf(stderr, "uswap_open: %s\n", uswap_last_error());
		return 1;
	}
	printf("%zu MiB, 64 KiB folios, pagegen data, median of %d runs\n", mib, runs);
	printf("%-22s %12s %12s %14s\n", "region", "evict us/f", "swapin us/f", "stored MiB");

	if (uswap_map(u, len, 0, (void **)&mem))
		return 1;
	fill(mem, len);
	if (measure(u, mem, len, runs, &out_s, &in_s, &bytes, -1))
		return 1;
	printf("%-22s %12.1f %12.1f %14.1f\n", "private", out_s / folios * 1e6,
	       in_s / folios * 1e6, bytes / 1048576.0);
	uswap_unmap(u, mem, len);

	for (int mappers = 1; mappers <= 4; mappers *= 2) {
		pid_t kids[4];
		int fd, p[2], ready[2], n = 0;
		char label[32];

		if (uswap_map(u, len, USWAP_MAP_SHARED, (void **)&mem) || pipe(p) || pipe(ready))
			return 1;
		fill(mem, len);
		fd = uswap_region_fd(u, mem);
		for (; n < mappers - 1; n++) {
			kids[n] = fork();
			if (kids[n] == 0) {
				char c;

				close(p[1]);
				/* in the mapper table now (evictions wait for that) */
				(void)!write(ready[1], "r", 1);
				/* map it and wait: every eviction protects us too */
				(void)!read(p[0], &c, 1);
				_exit(0);
			}
		}
		close(p[0]);
		for (int k = 0; k < n; k++) {
			char c;

			(void)!read(ready[0], &c, 1);
		}
		close(ready[0]);
		close(ready[1]);
		/* measured after an eviction, when the data part is punched out:
		 * the file holds the meta part and the blobs */
		if (measure(u, mem, len, runs, &out_s, &in_s, &bytes, fd))
			return 1;
		snprintf(label, sizeof(label), "shared, %d mapper%s", mappers, mappers > 1 ? "s" : "");
		printf("%-22s %12.1f %12.1f %14.1f\n", label, out_s / folios * 1e6,
		       in_s / folios * 1e6, bytes / 1048576.0);
		close(p[1]);
		for (int k = 0; k < n; k++)
			waitpid(kids[k], NULL, 0);
		close(fd);
		uswap_unmap(u, mem, len);
	}
	uswap_close(u);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * pagemap_probe PLAN: the program test_pagemap_cli runs under `uswap run`.
 * It maps one managed region of strlen(PLAN) folios and does to folio i
 * what PLAN[i] says, with the means an unmodified program has (writes,
 * reads, madvise MADV_PAGEOUT and MADV_FREE, which the shim gives to
 * uswap), checking every page it reads back.  Then it prints
 * "region ADDR LEN" and "ready" and waits to be killed, so the test can
 * read its pagemap with `uswap pagemap`.  The test, not this program,
 * knows what each action must leave behind.
 *
 *   .  nothing                       w  write data
 *   o  write data, page out           i  write data, page out, read back
 *   r  as i, then write one byte      z  read only (zero pages), page out
 *   Z  write zeros, page out          f  write data, MADV_FREE the folio
 *   d  as f, then page out            h  write data, MADV_FREE its first half
 *   m  write data to its first half, page out (the second half is zero)
 *
 * Usage: pagemap_probe FOLIO_SIZE PLAN [REGIONS]: REGIONS (default 1)
 * regions, each mapped on its own and given the same PLAN, each printed
 * as "region ADDR LEN".  Built without sanitizers, like the shim it runs
 * under.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096ul

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "pagemap_probe: FAIL %s:%d: ", __FILE__, __LINE__);        \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

/* Page idx's data: an xorshift stream seeded by its index (compressible
 * enough, never zero, never one repeated word). */
static void data_fill(uint64_t *p, uint64_t idx)
{
	uint64_t x = idx * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < PAGE / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = i % 4 ? x & 0xff : x;
	}
}

static void data_check(const char *p, uint64_t idx)
{
	uint64_t want[PAGE / 8];

	data_fill(want, idx);
	CHECK(!memcmp(p, want, PAGE), "page %llu does not read back as written",
	      (unsigned long long)idx);
}

static void zero_check(const volatile char *p, uint64_t idx)
{
	for (size_t i = 0; i < PAGE; i++)
		CHECK(!p[i], "page %llu is not zero", (unsigned long long)idx);
}

static void advise(char *p, size_t len, int advice, const char *name)
{
	CHECK(!madvise(p, len, advice), "madvise %s of %p: %m", name, (void *)p);
}

/* Do PLAN to the nf folios of fp pages at mem. */
static void plan_apply(char *mem, const char *plan, size_t nf, size_t fp)
{
	size_t folio = fp * PAGE, i, j;

	for (i = 0; i < nf; i++) {
		char *f = mem + i * folio, a = plan[i];
		uint64_t p0 = i * fp;

		if (strchr("wfdhoir", a))
			for (j = 0; j < fp; j++)
				data_fill((uint64_t *)(f + j * PAGE), p0 + j);
		if (a == 'm')
			for (j = 0; j < fp / 2; j++)
				data_fill((uint64_t *)(f + j * PAGE), p0 + j);
		if (a == 'Z')
			memset(f, 0, folio);
		if (a == 'z')
			for (j = 0; j < fp; j++)
				zero_check(f + j * PAGE, p0 + j);
		if (a == 'f' || a == 'd')
			advise(f, folio, MADV_FREE, "MADV_FREE");
		if (a == 'h')
			advise(f, folio / 2, MADV_FREE, "MADV_FREE");
		if (strchr("oirzZdm", a))
			advise(f, folio, MADV_PAGEOUT, "MADV_PAGEOUT");
		if (a == 'i' || a == 'r')
			for (j = 0; j < fp; j++)
				data_check(f + j * PAGE, p0 + j);
		if (a == 'r')
			f[0] ^= 1;
		CHECK(strchr(".wfdhoirzZm", a), "unknown action '%c' in the plan", a);
	}
}

int main(int argc, char **argv)
{
	size_t folio, nf, fp, regions, r;
	const char *plan;

	CHECK(argc == 3 || argc == 4, "usage: pagemap_probe FOLIO_SIZE PLAN [REGIONS]");
	folio = strtoul(argv[1], NULL, 0);
	plan = argv[2];
	regions = argc == 4 ? strtoul(argv[3], NULL, 0) : 1;
	nf = strlen(plan);
	fp = folio / PAGE;
	CHECK(folio >= PAGE && folio % PAGE == 0 && nf > 0 && regions > 0, "bad arguments");
	for (r = 0; r < regions; r++) {
		char *mem = mmap(NULL, nf * folio, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(mem != MAP_FAILED, "mmap: %m");
		plan_apply(mem, plan, nf, fp);
		printf("region %p %zu\n", (void *)mem, nf * folio);
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

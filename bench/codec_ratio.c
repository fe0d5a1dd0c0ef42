// SPDX-License-Identifier: MIT
/*
 * codec_ratio: compression ratio and speed of lz4, lz4hc and zstd levels on
 * the benchmark's page mix, in folio-sized units, straight on the libraries
 * (what a codec or level choice would buy the store, before building it).
 *
 *   codec_ratio [MiB (default 16)] [folio KiB (default 64)]
 *
 * Zero pages are included (uswap never compresses them: the store's own
 * ratio on the same data is higher for every codec).
 */
#include <lz4.h>
#include <lz4hc.h>
#include <stdio.h>
#include <stdlib.h>
#include <zstd.h>

#include "bench_common.h"
#include "pagegen.h"

enum { LZ4, LZ4HC, ZSTD };

static size_t compress_one(int alg, int level, ZSTD_CCtx *z, const char *src, size_t n,
			   char *dst, size_t cap)
{
	int r;

	switch (alg) {
	case LZ4:
		r = LZ4_compress_default(src, dst, (int)n, (int)cap);
		return r > 0 ? (size_t)r : n;
	case LZ4HC:
		r = LZ4_compress_HC(src, dst, (int)n, (int)cap, level);
		return r > 0 ? (size_t)r : n;
	default: {
		size_t z_n = ZSTD_compressCCtx(z, dst, cap, src, n, level);

		return ZSTD_isError(z_n) ? n : z_n;
	}
	}
}

int main(int argc, char **argv)
{
	static const struct {
		int alg, level;
		const char *name;
	} runs[] = { { LZ4, 1, "lz4" },	    { LZ4HC, 4, "lz4hc" }, { LZ4HC, 9, "lz4hc" },
		     { ZSTD, 1, "zstd" },   { ZSTD, 2, "zstd" },   { ZSTD, 3, "zstd" },
		     { ZSTD, 6, "zstd" },   { ZSTD, 9, "zstd" } };
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
	size_t unit = (argc > 2 ? strtoul(argv[2], NULL, 10) : 64) << 10;
	size_t len = mib << 20, pages = len / 4096, cap = 2 * unit + 1024;
	char *buf = malloc(len), *dst = malloc(cap);
	ZSTD_CCtx *z = ZSTD_createCCtx();

	if (!mib || mib > 4096 || unit < 4096 || unit > (2u << 20) || unit & (unit - 1) ||
	    len % unit) {
		fprintf(stderr, "usage: codec_ratio [MiB: 1 to 4096] [folio KiB: a power of two, "
				"4 to 2048]\n");
		return 2;
	}
	if (!buf || !dst || !z)
		return 1;
	for (size_t i = 0; i < pages; i++)
		pagegen_fill(buf + i * 4096, 7, i, 0);
	printf("%zu MiB of the page mix in %zu KiB units\n", mib, unit >> 10);
	for (size_t k = 0; k < sizeof(runs) / sizeof(runs[0]); k++) {
		double t0 = now_s(), t;
		size_t out = 0;

		for (size_t o = 0; o < len; o += unit)
			out += compress_one(runs[k].alg, runs[k].level, z, buf + o, unit, dst, cap);
		t = now_s() - t0;
		printf("%-6s level %d: ratio %.3f, compress %.0f MB/s\n", runs[k].name,
		       runs[k].level, (double)len / (double)out, (double)len / t / 1e6);
	}
	ZSTD_freeCCtx(z);
	free(buf);
	free(dst);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The seed corpus of the fuzz targets, made here rather than checked in:
 *   fuzz_seeds DIR  writes DIR/blob, DIR/options and DIR/api.
 * blob: real blobs of realistic folios (every codec, several sizes) in the
 * three games of fuzz_blob; options: valid and invalid settings; api: call
 * sequences that map, write, page out, read, pin and unmap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pagegen.h"
#include "codec/codec.h"
#include "codec/folio_blob.h"

static char dir[4096];

static void put(const char *sub, unsigned n, const void *data, size_t len)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/seed-%04u", dir, sub, n);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void mkdir_or_die(const char *sub)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s%s%s", dir, sub[0] ? "/" : "", sub);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
}

static void blob_seeds(void)
{
	static const struct codec_ops *codecs[] = { &codec_lz4, &codec_zstd, &codec_none };
	static const unsigned sizes[] = { 1, 4, 16, 64 };
	static uint8_t src[64 * 4096], scratch[64 * 4096], out[1 + 64 * 4096 + 4096];
	unsigned n = 0, c, s, i;

	for (c = 0; c < 3; c++) {
		for (s = 0; s < 4; s++) {
			struct folio_encode_result res;
			uint8_t desc[2 + 2 * 64 + 3];

			for (i = 0; i < sizes[s]; i++)
				pagegen_fill((char *)src + (size_t)i * 4096, 40 + s, i, c);
			if (folio_encode(codecs[c], src, sizes[s], out + 1, scratch, &res)) {
				fprintf(stderr, "fuzz_seeds: encode failed\n");
				exit(1);
			}
			if (res.blob_len) {
				out[0] = 0; /* game 0: the blob as is */
				put("blob", n++, out, 1 + res.blob_len);
				out[0] = 1; /* game 1: checksum forged (it holds anyway) */
				put("blob", n++, out, 1 + res.blob_len);
			}
			/* game 2: a folio description */
			desc[0] = 2;
			desc[1] = (uint8_t)(sizes[s] - 1);
			desc[2] = (uint8_t)c;
			for (i = 0; i < sizes[s]; i++) {
				desc[3 + 2 * i] = (uint8_t)(i * 5 + s);
				desc[4 + 2 * i] = (uint8_t)(i * 31 + c);
			}
			/* the changed byte's offset and mask */
			desc[3 + 2 * sizes[s]] = (uint8_t)s;
			put("blob", n++, desc, 4 + 2 * sizes[s]);
		}
	}
}

static void options_seeds(void)
{
	static const char *const seeds[] = {
		"512M\nlz4\nram\n4\n1\n0\n64K\nram",
		"0\nzstd\nram:\n1\n0\n1\n4K\n",
		"16KiB\nnone\n\n64\n1\n1\n2M\nram",
		"1T\nlz5\nredis:host\n0\n2\n-1\n3K\nfile:/tmp",
		"18446744073709551615\n\n:\n65\nx\n\n12B\n",
		"4096B\n9999999999999999999999K\nram:x\n007\n",
		/* as USWAP_* variables, in fuzz_options' order: ... ADAPT, RECOMPRESS */
		"256M\n64K\n0\n2\n1\n1\nzstd\nram\n0\n15",
		"0\n16K\n1G\n1\n0\n0\nlz4\nfile:/tmp\n1\n9",
		"8M\n64K\n\n\n\n\nnone\nram\n2\n99x",
		/* redis URIs: the fuzz target parses each line as redis and rediss */
		("//u:pw@h:1,[::1]:6379?timeout=5&ca=/c&cert=/x&key=/y\n//h:1?ca=\n//:p@h:65535?key=k"
		 "\n//h:0?timeout=600001&timeout=1\nrediss://h:1?ca=/etc/ssl/ca.pem\n//h:2?cert=a&sni=b"),
	};
	unsigned i;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		put("options", i, seeds[i], strlen(seeds[i]));
}

static void api_seeds(void)
{
	/* config byte, then ops: 0 map (slot, flags, len), 2 write (slot, page,
	 * value), 4 read (slot, page), 5 advise (slot, advice, first, n,
	 * outside), 6 stat (i), 7 reclaim, 8 drop (slot, page, n), 1 unmap
	 * (slot, bogus), 9 scattered reads (slot, count, stride, first);
	 * config byte / 36 odd: adaptive swap-in off; / 72 odd: idle
	 * recompression on, and op 7 takes a byte: odd recompresses */
	static const uint8_t seq1[] = {
		9,  4,  0,  0, 1,  40, 2, 0, 3, 7,  2, 0, 17, 3,  2, 0, 30, 2,
		5,  0,  1,  0, 40, 1,  4, 0, 3, 4,  0, 17, 5, 0, 3, 0, 4, 1,
		5,  0,  1,  0, 40, 1,  4, 0, 0, 6,  3, 7,  8, 0, 16, 2, 4, 0, 16,
		5,  0,  4,  0, 4,  1,  1, 0, 1, 1,  0, 0,
	};
	static const uint8_t seq2[] = {
		4,  0, 0, 1, 20, 0, 1, 1, 30, 2, 0, 5, 99, 2, 1, 6, 3, 5, 0, 1, 0, 20, 1,
		5,  1, 2, 0, 30, 1, 4, 0, 5, 4, 1, 6, 5, 1, 6, 0, 3, 1, 1, 1, 0, 6, 200,
	};
	static const uint8_t seq3[] = {
		19, 3, 0, 2, 0, 47, 2, 2, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 5, 2, 1, 0, 47, 1,
		7,  7, 7, 4, 2, 1, 4, 2, 2, 4, 2, 3, 5, 2, 0, 0, 2, 1, 5, 2, 5, 0, 1, 1,
	};

	/* 16 KiB folios: 48 pages written, paged out, read at scattered
	 * places (single pages come in: partly swapped-in folios), lazily
	 * freed in part, dropped in part, paged out again, read again */
	static const uint8_t seq4[] = {
		1, 0, 0, 1, 47,
		2, 0, 0, 3, 2, 0, 5, 7, 2, 0, 10, 9, 2, 0, 15, 11, 2, 0, 20, 13, 2, 0, 25, 15,
		2, 0, 30, 17, 2, 0, 35, 19, 2, 0, 40, 21, 2, 0, 45, 23, 2, 0, 47, 25,
		5, 0, 1, 0, 48, 1,
		9, 0, 7, 3, 1, 9, 0, 7, 5, 2, 9, 0, 7, 1, 30, 9, 0, 7, 3, 8,
		5, 0, 1, 0, 48, 1, 9, 0, 7, 3, 1, 9, 0, 7, 5, 2, 9, 0, 7, 1, 30,
		5, 0, 5, 20, 6, 1, 8, 0, 26, 3,
		9, 0, 7, 3, 11, 5, 0, 1, 0, 48, 1, 9, 0, 7, 9, 4,
	};

	/* seq4's pattern with idle recompression (config 73: 16 KiB folios,
	 * lz4, recompression at LZ4HC 3): folios stored whole and in parts
	 * are stored anew between page-outs, reads, drops and lazy frees */
	static const uint8_t seq5[] = {
		73, 0, 0, 1, 47,
		2, 0, 0, 3, 2, 0, 5, 7, 2, 0, 10, 9, 2, 0, 15, 11, 2, 0, 20, 13, 2, 0, 25, 15,
		2, 0, 30, 17, 2, 0, 35, 19, 2, 0, 40, 21, 2, 0, 45, 23, 2, 0, 47, 25,
		5, 0, 1, 0, 48, 1, 7, 1, 7, 1, 7, 1,
		9, 0, 7, 3, 1, 9, 0, 7, 5, 2, 7, 1, 4, 0, 5,
		5, 0, 1, 0, 48, 1, 7, 1, 7, 1, 9, 0, 7, 1, 30,
		5, 0, 5, 20, 6, 1, 8, 0, 26, 3, 7, 1, 7, 0, 7, 1,
		2, 0, 11, 77, 5, 0, 1, 0, 48, 1, 7, 1, 7, 1, 9, 0, 7, 9, 4,
	};

	put("api", 0, seq1, sizeof(seq1));
	put("api", 4, seq5, sizeof(seq5));
	put("api", 3, seq4, sizeof(seq4));
	put("api", 1, seq2, sizeof(seq2));
	put("api", 2, seq3, sizeof(seq3));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds DIR (makes DIR/blob, DIR/options, DIR/api)\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	mkdir_or_die("");
	mkdir_or_die("blob");
	mkdir_or_die("options");
	mkdir_or_die("api");
	blob_seeds();
	options_seeds();
	api_seeds();
	return 0;
}

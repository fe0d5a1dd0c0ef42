/* SPDX-License-Identifier: MIT */
/* uswap-test-labels: threads */
/* The codecs on their own: registry, round trips, bounds, garbage, threads. */
#include "testlib.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

#define PAGE 4096u
#define CANARY 0x5a
#define CANARY_LEN 64

static struct rng rng;

static const struct codec_ops *all_codecs(int i)
{
	const struct codec_ops *c[] = {&codec_lz4, &codec_zstd, &codec_none};

	return i < 3 ? c[i] : NULL;
}

/* ---- data shapes ---- */

enum shape { SHAPE_RANDOM, SHAPE_TEXT, SHAPE_INTS, SHAPE_ZERO, SHAPE_SAME, SHAPE_MIXED, SHAPE_N };

static const char *const shape_name[] = {"random", "text", "ints", "zero", "same", "mixed"};

static void fill_random(uint8_t *p, size_t n, struct rng *r)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t w = rng_next(r);

		memcpy(p + i, &w, n - i < 8 ? n - i : 8);
	}
}

static void fill_text(uint8_t *p, size_t n, struct rng *r)
{
	static const char *const words[] = {
		"the",   "swap",  "page", "folio",   "of",     "and",   "memory", "kernel",
		"fault", "to",    "a",    "zero",    "store",  "in",    "is",     "thread",
		"slot",  "write", "read", "reclaim", "region", "entry", "lru",    "handler",
	};
	size_t i = 0;

	while (i < n) {
		const char *w = words[rng_below(r, sizeof(words) / sizeof(words[0]))];

		for (size_t j = 0; w[j] && i < n; j++)
			p[i++] = (uint8_t)w[j];
		if (i < n)
			p[i++] = rng_below(r, 10) ? ' ' : '\n';
	}
}

static void fill_ints(uint8_t *p, size_t n, struct rng *r)
{
	uint32_t v = (uint32_t)rng_next(r);

	for (size_t i = 0; i + 4 <= n; i += 4) {
		v += 1 + (uint32_t)rng_below(r, 16);
		memcpy(p + i, &v, 4);
	}
}

static void fill_same(uint8_t *p, size_t n, struct rng *r)
{
	uint64_t w = rng_next(r) | 1;

	for (size_t i = 0; i + 8 <= n; i += 8)
		memcpy(p + i, &w, 8);
}

static void fill_shape(uint8_t *p, size_t n, enum shape s, struct rng *r)
{
	switch (s) {
	case SHAPE_RANDOM:
		fill_random(p, n, r);
		break;
	case SHAPE_TEXT:
		fill_text(p, n, r);
		break;
	case SHAPE_INTS:
		fill_ints(p, n, r);
		break;
	case SHAPE_ZERO:
		memset(p, 0, n);
		break;
	case SHAPE_SAME:
		fill_same(p, n, r);
		break;
	default:
		/* a different shape for every page */
		for (size_t off = 0; off < n; off += PAGE)
			fill_shape(p + off, n - off < PAGE ? n - off : PAGE,
				   (enum shape)rng_below(r, SHAPE_MIXED), r);
		break;
	}
}

/* A buffer of n bytes followed by CANARY_LEN canary bytes. */
static uint8_t *canary_alloc(size_t n)
{
	uint8_t *p = malloc(n + CANARY_LEN);

	assert_non_null(p);
	memset(p + n, CANARY, CANARY_LEN);
	return p;
}

static void canary_check(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < CANARY_LEN; i++)
		assert_int_equal(p[n + i], CANARY);
}

/* ---- registry ---- */

static void test_registry(void **state)
{
	const char *const unknown[] = {"", "LZ4", "lz", "lz4 ", " lz4", "zstd1", "gzip", "None"};
	const char *names = codec_names();

	(void)state;
	for (int i = 0; all_codecs(i); i++) {
		const struct codec_ops *c = all_codecs(i);

		assert_int_equal(c->version, CODEC_OPS_VERSION);
		assert_ptr_equal(codec_find(c->name), c);
		assert_ptr_equal(codec_by_id(c->id), c);
		assert_non_null(strstr(names, c->name));
		assert_non_null(c->compress);
		assert_non_null(c->decompress);
	}
	assert_int_equal(codec_lz4.id, CODEC_LZ4);
	assert_int_equal(codec_zstd.id, CODEC_ZSTD);
	assert_int_equal(codec_none.id, CODEC_NONE);
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		assert_null(codec_find(unknown[i]));
	assert_null(codec_find(NULL));
	for (unsigned id = 3; id < 256; id++)
		assert_null(codec_by_id((uint8_t)id));
}

/* ---- round trips ---- */

/* @cbuf cap bytes and a canary; @out at least len + CANARY_LEN bytes. */
static void roundtrip(const struct codec_ops *c, const uint8_t *src, size_t len, uint8_t *cbuf,
		      size_t cap, uint8_t *out)
{
	long n = c->compress(src, len, cbuf, cap); /* cap >= the codec's bound */

	assert_true(n > 0);
	assert_true((size_t)n <= cap);
	canary_check(cbuf, cap);
	memset(out, 0xee, len);
	memset(out + len, CANARY, CANARY_LEN);
	assert_int_equal(c->decompress(cbuf, (size_t)n, out, len), 0);
	assert_memory_equal(out, src, len);
	canary_check(out, len);
}

static void test_roundtrip(void **state)
{
	const unsigned sizes[] = {1, 2, 16, 512};

	(void)state;
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t len = (size_t)sizes[si] * PAGE;
		size_t cap = len + len / 128 + 1024; /* >= the lz4 and zstd bounds */
		uint8_t *src = malloc(len), *cbuf = canary_alloc(cap), *out = canary_alloc(len);

		assert_non_null(src);
		for (int s = 0; s < SHAPE_N; s++) {
			fill_shape(src, len, (enum shape)s, &rng);
			for (int i = 0; all_codecs(i); i++) {
				long n;

				roundtrip(all_codecs(i), src, len, cbuf, cap, out);
				n = all_codecs(i)->compress(src, len, cbuf, cap);
				if (all_codecs(i) != &codec_none) {
					if (s == SHAPE_TEXT)
						assert_true((size_t)n < len * 3 / 4);
					if (s == SHAPE_ZERO || s == SHAPE_SAME)
						assert_true((size_t)n < len / 16);
				}
				if (sizes[si] == 16)
					print_message("# %-4s %-6s 64 KiB -> %ld\n",
						      all_codecs(i)->name, shape_name[s], n);
			}
		}
		/* odd lengths too */
		for (int i = 0; all_codecs(i); i++) {
			for (size_t l = 1; l < 300; l += 37)
				roundtrip(all_codecs(i), src, l, cbuf, cap, out);
		}
		free(src);
		free(cbuf);
		free(out);
	}
}

/* compress returns 0, never writing past dst_cap, when the output does not
 * fit; and rejects an empty input. */
static void test_compress_no_room(void **state)
{
	const size_t len = 16 * PAGE;
	const size_t caps[] = {0, 1, 7, 64, len / 2, len - 1};
	uint8_t *src = malloc(len), *dst = canary_alloc(len);

	(void)state;
	assert_non_null(src);
	fill_random(src, len, &rng);
	for (int i = 0; all_codecs(i); i++) {
		const struct codec_ops *c = all_codecs(i);

		for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
			memset(dst, CANARY, len + CANARY_LEN);
			assert_int_equal(c->compress(src, len, dst, caps[k]), 0);
			for (size_t j = caps[k]; j < len + CANARY_LEN; j++)
				assert_int_equal(dst[j], CANARY);
		}
		assert_int_equal(c->compress(src, 0, dst, len), -EINVAL);
	}
	free(src);
	free(dst);
}

/* A wrong output length is an error and never a write past dst_len. */
static void test_decompress_wrong_len(void **state)
{
	const size_t len = 16 * PAGE;
	uint8_t *src = malloc(len), *cbuf = malloc(2 * len), *out = canary_alloc(len + 1);

	(void)state;
	assert_non_null(src);
	assert_non_null(cbuf);
	fill_text(src, len, &rng);
	for (int i = 0; all_codecs(i); i++) {
		const struct codec_ops *c = all_codecs(i);
		long n = c->compress(src, len, cbuf, 2 * len);
		const size_t lens[] = {0, 1, PAGE, len - 1};

		assert_true(n > 0);
		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			uint8_t *o = out + (len + 1 - lens[k]); /* canary right after */

			assert_int_equal(c->decompress(cbuf, (size_t)n, o, lens[k]), -EILSEQ);
			canary_check(out, len + 1);
		}
		assert_int_equal(c->decompress(cbuf, (size_t)n, out, len + 1), -EILSEQ);
		canary_check(out, len + 1);
		/* and every truncation of the stream */
		for (long t = 0; t < n; t += 1 + t / 8) {
			int ret = c->decompress(cbuf, (size_t)t, out, len);

			assert_int_equal(ret, -EILSEQ);
			canary_check(out, len + 1);
		}
	}
	free(src);
	free(cbuf);
	free(out);
}

/* Garbage and corrupted streams: an error or some output of the right
 * length, never a crash nor a write out of bounds (ASan watches). */
static void test_decompress_garbage(void **state)
{
	const size_t len = 4 * PAGE;
	uint8_t *src = malloc(len), *cbuf = malloc(2 * len), *bad = malloc(2 * len);
	uint8_t *out = canary_alloc(len);

	(void)state;
	assert_non_null(src);
	assert_non_null(cbuf);
	assert_non_null(bad);
	for (int i = 0; all_codecs(i); i++) {
		const struct codec_ops *c = all_codecs(i);
		long n;

		for (int t = 0; t < 2000; t++) {
			size_t gl = 1 + rng_below(&rng, 2 * len - 1);
			int ret;

			fill_random(bad, gl, &rng);
			/* now and then, a plausible start: zstd's magic, or an
			 * lz4 token announcing long literals */
			if (t % 2 && gl >= 4)
				memcpy(bad, t % 4 == 1 ? "\x28\xb5\x2f\xfd" : "\xf0\xff\x00\x00", 4);
			ret = c->decompress(bad, gl, out, len);
			assert_true(ret == 0 || ret == -EILSEQ);
			canary_check(out, len);
		}
		fill_shape(src, len, SHAPE_MIXED, &rng);
		n = c->compress(src, len, cbuf, 2 * len);
		assert_true(n > 0);
		for (long pos = 0; pos < n; pos++) {
			int ret;

			memcpy(bad, cbuf, (size_t)n);
			bad[pos] ^= (uint8_t)(1 + rng_below(&rng, 255));
			ret = c->decompress(bad, (size_t)n, out, len);
			assert_true(ret == 0 || ret == -EILSEQ);
			canary_check(out, len);
		}
	}
	free(src);
	free(cbuf);
	free(bad);
	free(out);
}

/* ---- threads ---- */

#define THREADS 6
#define THREAD_ROUNDS 40

struct thread_arg {
	uint64_t seed;
	int failures;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	struct rng r = {a->seed};
	const size_t max = 64 * PAGE;
	uint8_t *src = malloc(max), *cbuf = malloc(2 * max), *out = malloc(max);

	if (!src || !cbuf || !out) {
		a->failures++;
		goto out;
	}
	for (int k = 0; k < THREAD_ROUNDS; k++) {
		size_t len = (1 + rng_below(&r, 64)) * PAGE;
		const struct codec_ops *c = k % 2 ? &codec_zstd : &codec_lz4;
		long n;

		fill_shape(src, len, k % 3 ? SHAPE_TEXT : SHAPE_MIXED, &r);
		n = c->compress(src, len, cbuf, 2 * max);
		if (n <= 0 || c->decompress(cbuf, (size_t)n, out, len) || memcmp(src, out, len))
			a->failures++;
	}
out:
	free(src);
	free(cbuf);
	free(out);
	return NULL;
}

/* Several threads round-tripping at once; their zstd contexts are freed
 * when they exit (LeakSanitizer would report them otherwise). */
static void test_threads(void **state)
{
	pthread_t t[THREADS];
	struct thread_arg a[THREADS];

	(void)state;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < THREADS; i++) {
			a[i].seed = rng_next(&rng) | 1;
			a[i].failures = 0;
			assert_int_equal(pthread_create(&t[i], NULL, thread_main, &a[i]), 0);
		}
		for (int i = 0; i < THREADS; i++) {
			assert_int_equal(pthread_join(t[i], NULL), 0);
			assert_int_equal(a[i].failures, 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_compress_no_room),
		cmocka_unit_test(test_decompress_wrong_len),
		cmocka_unit_test(test_decompress_garbage),
		cmocka_unit_test(test_threads),
	};

	rng_seed(&rng, 0xc0dec);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

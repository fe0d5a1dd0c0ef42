/* SPDX-License-Identifier: MIT */
/*
 * The parts idle recompression is built of, alone: the strong codecs
 * (codec_strong.c), a blob stored anew and flagged (folio_blob_recompress,
 * folio_blob_mark_strong), and a run re-pointed to a new handle
 * (slot_run_rehandle).  Expectations: the bytes decoded back equal the
 * folio encoded (a copy kept here), liblz4/libzstd's own decoders read the
 * strong output, and the slot map answers with the handle given.
 */
#include "testlib.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "codec/codec_strong.h"
#include "codec/folio_blob.h"
#include "core/slotmap.h"
#include "pagegen.h"

#define PAGE 4096u
#define NPAGES 16u

static long strong(void *arg, const void *src, size_t len, void *dst, size_t cap)
{
	return codec_strong_compress(arg, src, len, dst, cap);
}

/* A folio of the benchmark's mix, with a zero page and a same-filled one. */
static void folio_make(char *folio, uint64_t seed)
{
	for (unsigned i = 0; i < NPAGES; i++)
		pagegen_fill(folio + (size_t)i * PAGE, seed, i + 2, 0);
	memset(folio + 3 * PAGE, 0, PAGE);
	memset(folio + 5 * PAGE, 0x5a, PAGE);
}

static void check_codec(const struct codec_ops *codec, unsigned level)
{
	static char folio[NPAGES * PAGE], back[NPAGES * PAGE], scratch[NPAGES * PAGE];
	static char blob[NPAGES * PAGE + 64], out[NPAGES * PAGE];
	struct folio_encode_result res;
	struct codec_strong *cs;
	size_t len;

	folio_make(folio, level);
	assert_int_equal(codec_strong_create(codec, level, &cs), 0);
	assert_int_equal(folio_encode(codec, folio, NPAGES, blob, scratch, &res), 0);
	assert_int_equal(folio_blob_strong(blob, res.blob_len), 0);
	assert_int_equal(folio_blob_recompress(blob, res.blob_len, strong, cs, out, sizeof(out),
					       scratch, &len),
			 0);
	print_message("%s level %u: %zu -> %zu bytes\n", codec->name, level, res.blob_len, len);
	assert_true(len < res.blob_len);
	assert_int_equal(folio_blob_strong(out, len), 1);
	memset(back, 0xee, sizeof(back));
	assert_int_equal(folio_decode(out, len, back, NPAGES, NULL), 0);
	assert_memory_equal(back, folio, sizeof(folio));
	/* too small a room: -ENOSPC, nothing claimed */
	assert_int_equal(folio_blob_recompress(blob, res.blob_len, strong, cs, out, len - 1,
					       scratch, &len),
			 -ENOSPC);
	/* flag alone: same bytes decoded, checksum redone */
	assert_int_equal(folio_blob_mark_strong(blob, res.blob_len), 0);
	assert_int_equal(folio_blob_strong(blob, res.blob_len), 1);
	assert_int_equal(folio_decode(blob, res.blob_len, back, NPAGES, NULL), 0);
	assert_memory_equal(back, folio, sizeof(folio));
	/* a corrupt blob is refused, not recompressed */
	blob[res.blob_len / 2] ^= 1;
	assert_int_equal(folio_blob_recompress(blob, res.blob_len, strong, cs, out, sizeof(out),
					       scratch, &len),
			 -EILSEQ);
	assert_int_equal(folio_blob_mark_strong(blob, res.blob_len), -EILSEQ);
	codec_strong_destroy(cs);
}

static void test_lz4hc_blob(void **state)
{
	(void)state;
	check_codec(&codec_lz4, 9);
	check_codec(&codec_lz4, 12);
}

static void test_zstd_blob(void **state)
{
	(void)state;
	check_codec(&codec_zstd, 9);
	check_codec(&codec_zstd, 19);
}

/* LZ4HC's output is plain lz4: liblz4's own decoder reads it. */
static void test_lz4hc_is_lz4(void **state)
{
	static char folio[NPAGES * PAGE], dst[NPAGES * PAGE], back[NPAGES * PAGE];
	struct codec_strong *cs;
	long n;

	(void)state;
	folio_make(folio, 3);
	assert_int_equal(codec_strong_create(&codec_lz4, 9, &cs), 0);
	n = codec_strong_compress(cs, folio, sizeof(folio), dst, sizeof(dst));
	assert_true(n > 0);
	assert_int_equal(LZ4_decompress_safe(dst, back, (int)n, (int)sizeof(back)), sizeof(back));
	assert_memory_equal(back, folio, sizeof(folio));
	/* does not fit: 0, as codec_ops.compress */
	assert_int_equal(codec_strong_compress(cs, folio, sizeof(folio), dst, 16), 0);
	codec_strong_destroy(cs);
}

/* Incompressible pages stored raw: no strong level makes them smaller. */
static void test_raw_blob_not_smaller(void **state)
{
	static char folio[NPAGES * PAGE], scratch[NPAGES * PAGE];
	static char blob[NPAGES * PAGE + 64], out[NPAGES * PAGE];
	struct folio_encode_result res;
	struct codec_strong *cs;
	struct rng r;
	size_t len;

	(void)state;
	rng_seed(&r, 9);
	for (size_t i = 0; i < sizeof(folio) / 8; i++) {
		uint64_t w = rng_next(&r);

		memcpy(folio + i * 8, &w, 8);
	}
	assert_int_equal(codec_strong_create(&codec_zstd, 19, &cs), 0);
	assert_int_equal(folio_encode(&codec_zstd, folio, NPAGES, blob, scratch, &res), 0);
	assert_int_equal(res.raw, 1);
	assert_int_equal(folio_blob_recompress(blob, res.blob_len, strong, cs, out, sizeof(out),
					       scratch, &len),
			 -ENOSPC);
	codec_strong_destroy(cs);
}

static void test_levels(void **state)
{
	unsigned lo, hi;
	struct codec_strong *cs;

	(void)state;
	assert_int_equal(codec_strong_levels(&codec_lz4, &lo, &hi), 0);
	assert_int_equal(lo, 3);
	assert_int_equal(hi, 12);
	assert_int_equal(codec_strong_levels(&codec_zstd, &lo, &hi), 0);
	assert_int_equal(lo, 2);
	assert_int_equal(hi, 22);
	assert_int_equal(codec_strong_levels(&codec_none, &lo, &hi), -ENOTSUP);
	assert_int_equal(codec_strong_create(&codec_lz4, 13, &cs), -EINVAL);
	assert_int_equal(codec_strong_create(&codec_zstd, 1, &cs), -EINVAL);
	assert_int_equal(codec_strong_create(&codec_none, 5, &cs), -ENOTSUP);
}

static void test_slot_run_rehandle(void **state)
{
	struct slotmap *sm;
	store_handle_t h;
	slot_t first, s0, f;
	unsigned order;

	(void)state;
	assert_int_equal(slotmap_create(0, &sm), 0);
	assert_int_equal(slot_alloc(sm, 4, (store_handle_t){ 7 }, &first), 0);
	/* the wrong old handle, a slot inside the run, handle 0: refused */
	assert_int_equal(slot_run_rehandle(sm, first, (store_handle_t){ 8 }, (store_handle_t){ 9 }),
			 -ESTALE);
	assert_int_equal(slot_run_rehandle(sm, (slot_t){ first.v + 1 }, (store_handle_t){ 7 },
					   (store_handle_t){ 9 }),
			 -EINVAL);
	assert_int_equal(slot_run_rehandle(sm, first, (store_handle_t){ 7 }, (store_handle_t){ 0 }),
			 -EINVAL);
	/* the run's first page was a zero page: its slot is free, the run not */
	assert_int_equal(slot_put(sm, first, &h), 0);
	assert_int_equal(slot_run_rehandle(sm, first, (store_handle_t){ 7 }, (store_handle_t){ 9 }),
			 0);
	assert_int_equal(slot_run(sm, (slot_t){ first.v + 5 }, &h, &f, &order), 0);
	assert_int_equal(h.v, 9);
	assert_int_equal(f.v, first.v);
	assert_int_equal(order, 4);
	/* the last slot freed hands back the new handle */
	for (unsigned i = 1; i < 16; i++) {
		int last = slot_put(sm, (slot_t){ first.v + i }, &h);

		assert_int_equal(last, i == 15);
	}
	assert_int_equal(h.v, 9);
	assert_int_equal(slot_run_rehandle(sm, first, (store_handle_t){ 9 }, (store_handle_t){ 10 }),
			 -EINVAL); /* a free run */
	/* order 0 */
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){ 11 }, &s0), 0);
	assert_int_equal(slot_run_rehandle(sm, s0, (store_handle_t){ 11 }, (store_handle_t){ 12 }),
			 0);
	assert_int_equal(slot_run(sm, s0, &h, &f, &order), 0);
	assert_int_equal(h.v, 12);
	assert_int_equal(slotmap_check(sm), 0);
	assert_int_equal(slot_put(sm, s0, &h), 1);
	assert_int_equal(h.v, 12);
	slotmap_destroy(sm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_lz4hc_blob),
		cmocka_unit_test(test_zstd_blob),
		cmocka_unit_test(test_lz4hc_is_lz4),
		cmocka_unit_test(test_raw_blob_not_smaller),
		cmocka_unit_test(test_slot_run_rehandle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

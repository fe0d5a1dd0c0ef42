/* SPDX-License-Identifier: MIT */
/*
 * Single-page decode: the codecs' prefix decode (codec.h decompress_prefix)
 * and folio_decode_page.  The expectation is always the input bytes
 * themselves: every page of every blob, decoded alone, must equal the page
 * that was encoded and the same page of a full decode; a blob corrupted
 * anywhere, or truncated, is rejected for every page; and a decode writes
 * nothing it does not claim.
 */
#include "testlib.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/folio_blob.h"
#include "pagegen.h"

#define PAGE FOLIO_PAGE_SIZE
#define POISON 0xa7
#define GUARD 64 /* bytes past every buffer that must stay POISON */

static struct rng rng;

static const struct codec_ops *const codecs[] = {&codec_lz4, &codec_zstd, &codec_none};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

/* ---- page contents ---- */

enum fill { FILL_ZERO, FILL_SAME, FILL_TEXT, FILL_RANDOM, FILL_MIX, FILL_N };

static void page_fill(uint8_t *p, enum fill f, uint64_t idx)
{
	uint64_t w;

	switch (f) {
	case FILL_ZERO:
		memset(p, 0, PAGE);
		break;
	case FILL_SAME:
		w = rng_next(&rng) | 1; /* never zero */
		for (size_t i = 0; i < PAGE; i += 8)
			memcpy(p + i, &w, 8);
		break;
	case FILL_TEXT:
		for (size_t i = 0; i < PAGE; i++)
			p[i] = (uint8_t) "abcde fghij\n"[rng_below(&rng, 12)];
		break;
	case FILL_RANDOM:
		for (size_t i = 0; i < PAGE; i += 8) {
			w = rng_next(&rng);
			memcpy(p + i, &w, 8);
		}
		break;
	default: /* the benchmark's realistic mix (tools/common/pagegen.c) */
		pagegen_fill(p, 11, idx, rng_below(&rng, 3));
		break;
	}
}

/*
 * Folio layouts: which fills, page by page.  "mixed" draws each page's
 * fill at random; "random data" makes the data pages incompressible, so
 * the blob is raw, packed between zero and same-filled pages.
 */
enum layout { LAY_MIXED, LAY_RAW_MIXED, LAY_ALL_TEXT, LAY_REALISTIC, LAY_N };

static const char *const layout_name[] = {"mixed", "raw mixed", "all text", "realistic"};

static void folio_fill(uint8_t *src, unsigned npages, enum layout lay)
{
	for (unsigned i = 0; i < npages; i++) {
		enum fill f;

		switch (lay) {
		case LAY_MIXED:
			f = (enum fill)rng_below(&rng, FILL_N);
			break;
		case LAY_RAW_MIXED:
			f = (enum fill)rng_below(&rng, 3);
			f = f == FILL_TEXT ? FILL_RANDOM : f;
			break;
		case LAY_ALL_TEXT:
			f = FILL_TEXT;
			break;
		default:
			f = FILL_MIX;
			break;
		}
		page_fill(src + (size_t)i * PAGE, f, i);
	}
}

struct bufs {
	unsigned npages;
	size_t size, blob_len;
	uint8_t *src, *scratch, *blob, *full, *out;
	struct folio_encode_result res;
};

static void bufs_init(struct bufs *b, unsigned npages)
{
	b->npages = npages;
	b->size = (size_t)npages * PAGE;
	b->src = malloc(b->size);
	b->scratch = malloc(b->size);
	b->blob = malloc(folio_blob_bound(npages));
	b->full = malloc(b->size);
	b->out = malloc(b->size + GUARD);
	assert_non_null(b->src);
	assert_non_null(b->scratch);
	assert_non_null(b->blob);
	assert_non_null(b->full);
	assert_non_null(b->out);
}

static void bufs_free(struct bufs *b)
{
	free(b->src);
	free(b->scratch);
	free(b->blob);
	free(b->full);
	free(b->out);
}

/* Fill and encode until the folio is not all zero (it then has a blob). */
static void bufs_encode(struct bufs *b, const struct codec_ops *codec, enum layout lay)
{
	do {
		folio_fill(b->src, b->npages, lay);
		assert_int_equal(
			folio_encode(codec, b->src, b->npages, b->blob, b->scratch, &b->res), 0);
	} while (b->res.blob_len == 0);
	b->blob_len = b->res.blob_len;
	assert_int_equal(folio_decode(b->blob, b->blob_len, b->full, b->npages, NULL), 0);
	assert_memory_equal(b->full, b->src, b->size);
}

static void assert_guard(const uint8_t *p)
{
	for (unsigned i = 0; i < GUARD; i++)
		assert_int_equal(p[i], POISON);
}

/* Decode page k alone into a poisoned buffer; check it against the input
 * and the full decode, and whatever else the return value claims. */
static void check_page(struct bufs *b, unsigned k)
{
	int ret;

	memset(b->out, POISON, b->size + GUARD);
	ret = folio_decode_page(b->blob, b->blob_len, b->out, b->npages, k);
	if (ret < 0)
		fail_msg("page %u of %u: %d", k, b->npages, ret);
	assert_true(ret == 0 || ret == (int)b->npages);
	assert_memory_equal(b->out + (size_t)k * PAGE, b->src + (size_t)k * PAGE, PAGE);
	assert_memory_equal(b->out + (size_t)k * PAGE, b->full + (size_t)k * PAGE, PAGE);
	if (ret == (int)b->npages)
		assert_memory_equal(b->out, b->src, b->size);
	assert_guard(b->out + b->size);
}

/* ---- the codecs' prefix decode ---- */

/* Every prefix length class, every codec, one to 512 pages of input: the
 * prefix equals the input's, n is within [prefix, whole], and nothing
 * past n is written. */
static void test_prefix_matches_input(void **state)
{
	const unsigned sizes[] = {1, 2, 16, 64, 512};
	struct bufs b;

	(void)state;
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t len = (size_t)sizes[si] * PAGE;
		uint8_t *comp = malloc(len);

		bufs_init(&b, sizes[si]);
		assert_non_null(comp);
		folio_fill(b.src, sizes[si], LAY_ALL_TEXT);
		for (size_t c = 0; c < NCODECS; c++) {
			const struct codec_ops *codec = codecs[c];
			long clen = codec->compress(b.src, len, comp, len);

			assert_true(clen > 0);
			assert_int_equal(codec->version, CODEC_OPS_VERSION);
			assert_non_null(codec->decompress_prefix);
			for (int t = 0; t < 40; t++) {
				size_t prefix = t == 0	 ? len
						: t == 1 ? 1
						: t < 20 ? PAGE * (1 + rng_below(&rng, sizes[si]))
							 : 1 + rng_below(&rng, len);
				long n;

				memset(b.out, POISON, len + GUARD);
				n = codec->decompress_prefix(comp, (size_t)clen, b.out, prefix,
							     len);
				assert_true(n >= (long)prefix && n <= (long)len);
				assert_memory_equal(b.out, b.src, (size_t)n);
				for (size_t i = (size_t)n; i < len + GUARD; i++)
					assert_int_equal(b.out[i], POISON);
				/* lz4 and none stop at the byte asked for */
				if (codec->id != CODEC_ZSTD)
					assert_int_equal(n, (long)prefix);
			}
			/* zstd stops at the end of a block: less than the whole
			 * for 2 MiB (blocks of at most 128 KiB) */
			if (codec->id == CODEC_ZSTD && len > (128u << 10))
				assert_true(codec->decompress_prefix(comp, (size_t)clen, b.out,
								     PAGE, len) <= (128 << 10));
			/* out of range */
			assert_int_equal(
				codec->decompress_prefix(comp, (size_t)clen, b.out, 0, len),
				-EINVAL);
			assert_int_equal(
				codec->decompress_prefix(comp, (size_t)clen, b.out, len + 1, len),
				-EINVAL);
			/* the whole is decompress, strictly: one byte of room
			 * short, or too much room, is an error */
			if (len > 1) {
				assert_int_equal(codec->decompress_prefix(comp, (size_t)clen, b.out,
									  len - 1, len - 1),
						 -EILSEQ);
			}
			assert_int_equal(codec->decompress_prefix(comp, (size_t)clen, b.out,
								  len + 1, len + 1),
					 -EILSEQ);
			/* truncated: the prefix comes out right or not at all */
			for (int t = 0; t < 30; t++) {
				size_t cut = rng_below(&rng, (size_t)clen);
				size_t prefix = 1 + rng_below(&rng, len);
				long n = codec->decompress_prefix(comp, cut, b.out, prefix, len);

				if (n != -EILSEQ) {
					assert_true(n >= (long)prefix && n <= (long)len);
					assert_memory_equal(b.out, b.src, (size_t)n);
				}
				if (prefix == len || codec->id == CODEC_NONE)
					assert_int_equal(n, -EILSEQ);
			}
		}
		free(comp);
		bufs_free(&b);
	}
}

/* zstd: a payload of two frames (which decompress accepts) decodes its
 * prefix across the frame boundary too. */
static void test_zstd_two_frames(void **state)
{
	const size_t half = 8 * PAGE, len = 2 * half;
	uint8_t *src = malloc(len), *comp = malloc(2 * len), *out = malloc(len + GUARD);
	long c1, c2, n;

	(void)state;
	assert_non_null(src);
	assert_non_null(comp);
	assert_non_null(out);
	folio_fill(src, 16, LAY_ALL_TEXT);
	c1 = codec_zstd.compress(src, half, comp, len);
	c2 = codec_zstd.compress(src + half, half, comp + c1, len);
	assert_true(c1 > 0 && c2 > 0);
	assert_int_equal(codec_zstd.decompress(comp, (size_t)(c1 + c2), out, len), 0);
	assert_memory_equal(out, src, len);
	for (size_t prefix = PAGE; prefix < len; prefix += PAGE) {
		memset(out, POISON, len + GUARD);
		n = codec_zstd.decompress_prefix(comp, (size_t)(c1 + c2), out, prefix, len);
		assert_true(n >= (long)prefix && n <= (long)len);
		assert_memory_equal(out, src, (size_t)n);
		assert_guard(out + len);
		/* the first frame alone cannot give more than its half */
		n = codec_zstd.decompress_prefix(comp, (size_t)c1, out, prefix, len);
		if (prefix > half)
			assert_int_equal(n, -EILSEQ);
		else
			assert_int_equal(n, (long)half);
	}
	free(src);
	free(comp);
	free(out);
}

/* ---- single pages of blobs ---- */

/* Every page of every blob, decoded alone, is the page that was encoded. */
static void test_every_page(void **state)
{
	const unsigned sizes[] = {1, 2, 3, 16, 33, 512};

	(void)state;
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		struct bufs b;

		bufs_init(&b, sizes[si]);
		for (size_t c = 0; c < NCODECS; c++) {
			for (int lay = 0; lay < LAY_N; lay++) {
				/* a 512-page folio has 512 pages to try: fewer reps */
				for (int rep = 0; rep < (sizes[si] > 64 ? 1 : 6); rep++) {
					bufs_encode(&b, codecs[c], (enum layout)lay);
					if (lay == LAY_RAW_MIXED && b.res.data)
						assert_int_equal(b.res.raw, 1);
					for (unsigned k = 0; k < b.npages; k++)
						check_page(&b, k);
				}
			}
			print_message("# %s, %u pages: every page of every layout\n",
				      codecs[c]->name, sizes[si]);
		}
		bufs_free(&b);
	}
	(void)layout_name;
}

/* What a page alone costs: a zero page never comes from the decompressor
 * (a payload forged to be garbage, checksum resealed, leaves it right),
 * and a compressed data page other than the last comes alone from lz4
 * (0: nothing else valid); the last one brings the whole folio. */
static void test_page_decodes_only_what_it_needs(void **state)
{
	struct bufs b;
	uint8_t *forged;

	(void)state;
	bufs_init(&b, 16);
	forged = malloc(folio_blob_bound(16));
	assert_non_null(forged);
	for (size_t c = 0; c < NCODECS; c++) {
		for (int rep = 0; rep < 20; rep++) {
			unsigned same_words, data_seen = 0;
			size_t payload;
			uint32_t csum;

			bufs_encode(&b, codecs[c], LAY_MIXED);
			if (b.res.data == 0 || b.res.data == 16)
				continue;
			/* the payload starts after the header, kinds, words */
			same_words = b.res.same;
			payload = 12 + 4 + 8 * (size_t)same_words;
			memcpy(forged, b.blob, b.blob_len);
			for (size_t i = payload; i < b.blob_len; i++)
				forged[i] = (uint8_t)rng_next(&rng);
			csum = folio_blob_csum(forged + 4, b.blob_len - 4);
			memcpy(forged, &csum, 4);
			for (unsigned k = 0; k < 16; k++) {
				const uint8_t *want = b.src + (size_t)k * PAGE;
				int ret;

				memset(b.out, POISON, b.size + GUARD);
				ret = folio_decode_page(forged, b.blob_len, b.out, 16, k);
				if (b.res.zero_mask[0] >> k & 1) {
					assert_int_equal(ret, 0);
					assert_memory_equal(b.out + (size_t)k * PAGE, want, PAGE);
				}
				assert_guard(b.out + b.size);
				/* the genuine blob: a data page but the last
				 * comes alone from lz4 */
				memset(b.out, POISON, b.size + GUARD);
				ret = folio_decode_page(b.blob, b.blob_len, b.out, 16, k);
				if (codecs[c]->id == CODEC_LZ4 && !b.res.raw &&
				    !(b.res.zero_mask[0] >> k & 1)) {
					uint64_t w;
					bool same = true;

					memcpy(&w, want, 8);
					for (size_t i = 8; i < PAGE; i += 8)
						same = same && !memcmp(want + i, &w, 8);
					if (!same && ++data_seen < b.res.data)
						assert_int_equal(ret, 0);
					else if (!same)
						assert_int_equal(ret, 16);
				}
				assert_memory_equal(b.out + (size_t)k * PAGE, want, PAGE);
			}
		}
	}
	free(forged);
	bufs_free(&b);
}

/* Same-filled and zero pages come from the header alone: with the payload
 * forged (checksum resealed) they are still right, and nothing but the
 * page asked for is written. */
static void test_same_pages_without_payload(void **state)
{
	struct bufs b;

	(void)state;
	bufs_init(&b, 16);
	for (size_t c = 0; c < NCODECS; c++) {
		uint8_t *forged = malloc(folio_blob_bound(16));
		uint32_t csum;

		assert_non_null(forged);
		/* pages 0-5 text (data), 6-10 same-filled, 11-15 zero */
		for (unsigned k = 0; k < 16; k++)
			page_fill(b.src + (size_t)k * PAGE,
				  k < 6	   ? FILL_TEXT
				  : k < 11 ? FILL_SAME
					   : FILL_ZERO,
				  k);
		assert_int_equal(folio_encode(codecs[c], b.src, 16, b.blob, b.scratch, &b.res), 0);
		assert_int_equal(b.res.same, 5);
		assert_int_equal(b.res.zero, 5);
		memcpy(forged, b.blob, b.res.blob_len);
		for (size_t i = 12 + 4 + 5 * 8; i < b.res.blob_len; i++)
			forged[i] ^= 0x5a;
		csum = folio_blob_csum(forged + 4, b.res.blob_len - 4);
		memcpy(forged, &csum, 4);
		for (unsigned k = 6; k < 16; k++) {
			memset(b.out, POISON, b.size + GUARD);
			assert_int_equal(folio_decode_page(forged, b.res.blob_len, b.out, 16, k),
					 0);
			assert_memory_equal(b.out + (size_t)k * PAGE, b.src + (size_t)k * PAGE,
					    PAGE);
			/* and nothing but that page was written */
			for (size_t i = 0; i < b.size + GUARD; i++) {
				if (i / PAGE != k)
					assert_int_equal(b.out[i], POISON);
			}
		}
		free(forged);
	}
	bufs_free(&b);
}

/* A blob with a byte flipped anywhere is rejected for every page, before
 * any byte of it is used; so is every truncation and the wrong size. */
static void test_corrupt_and_truncated(void **state)
{
	static const struct {
		unsigned npages;
		enum layout lay;
	} samples[] = {{8, LAY_MIXED}, {8, LAY_REALISTIC}, {5, LAY_RAW_MIXED}, {1, LAY_ALL_TEXT}};
	struct bufs b;

	(void)state;
	for (size_t si = 0; si < sizeof(samples) / sizeof(samples[0]); si++) {
		bufs_init(&b, samples[si].npages);
		for (size_t c = 0; c < NCODECS; c++) {
			uint8_t *bad;

			bufs_encode(&b, codecs[c], samples[si].lay);
			bad = malloc(b.blob_len + 1);
			assert_non_null(bad);
			print_message("# %s, %u pages, %s: %zu-byte blob\n", codecs[c]->name,
				      b.npages, layout_name[samples[si].lay], b.blob_len);
			for (size_t pos = 0; pos < b.blob_len; pos++) {
				memcpy(bad, b.blob, b.blob_len);
				bad[pos] ^= (uint8_t)(1 + rng_below(&rng, 255));
				for (unsigned k = 0; k < b.npages; k++) {
					b.out[(size_t)k * PAGE] = POISON;
					assert_int_equal(folio_decode_page(bad, b.blob_len, b.out,
									   b.npages, k),
							 -EILSEQ);
					/* rejected before anything was written */
					assert_int_equal(b.out[(size_t)k * PAGE], POISON);
				}
			}
			for (size_t t = 0; t < b.blob_len; t++) {
				for (unsigned k = 0; k < b.npages; k++)
					assert_int_equal(
						folio_decode_page(b.blob, t, b.out, b.npages, k),
						-EILSEQ);
			}
			memcpy(bad, b.blob, b.blob_len);
			bad[b.blob_len] = 0;
			assert_int_equal(folio_decode_page(bad, b.blob_len + 1, b.out, b.npages, 0),
					 -EILSEQ);
			assert_int_equal(
				folio_decode_page(b.blob, b.blob_len, b.out, b.npages + 1, 0),
				-EILSEQ);
			assert_int_equal(folio_decode_page(NULL, 0, b.out, b.npages, 0), -EILSEQ);
			/* a page past the folio */
			assert_int_equal(
				folio_decode_page(b.blob, b.blob_len, b.out, b.npages, b.npages),
				-EINVAL);
			/* still intact */
			for (unsigned k = 0; k < b.npages; k++)
				check_page(&b, k);
			free(bad);
		}
		bufs_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_matches_input),
		cmocka_unit_test(test_zstd_two_frames),
		cmocka_unit_test(test_every_page),
		cmocka_unit_test(test_page_decodes_only_what_it_needs),
		cmocka_unit_test(test_same_pages_without_payload),
		cmocka_unit_test(test_corrupt_and_truncated),
	};

	rng_seed(&rng, 0x9a9ede);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

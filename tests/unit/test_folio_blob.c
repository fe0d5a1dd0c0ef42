/* SPDX-License-Identifier: MIT */
/*
 * The stored form of a folio: round trips of every codec over every kind
 * of page, the zero mask and counts against an independent classification,
 * raw storage, and the detection of every corruption and truncation.
 */
#include "testlib.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/folio_blob.h"

#define PAGE FOLIO_PAGE_SIZE
#define HDR 12u /* the fixed header (folio_blob.c) */

static struct rng rng;

static const struct codec_ops *const codecs[] = {&codec_lz4, &codec_zstd, &codec_none};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

/* ---- page shapes ---- */

enum shape {
	SHAPE_RANDOM,
	SHAPE_TEXT,
	SHAPE_INTS,
	SHAPE_ZERO,
	SHAPE_SAME,
	SHAPE_ZERO_BUT_LAST, /* zero but for the last byte: data */
	SHAPE_ZERO_BUT_FIRST,
	SHAPE_SAME_BUT_ONE, /* same-filled but for one byte: data */
	SHAPE_N,
	SHAPE_MIXED = SHAPE_N, /* a folio of random shapes */
};

static void fill_random(uint8_t *p, struct rng *r)
{
	for (size_t i = 0; i < PAGE; i += 8) {
		uint64_t w = rng_next(r);

		memcpy(p + i, &w, 8);
	}
}

static void fill_text(uint8_t *p, struct rng *r)
{
	static const char *const words[] = {
		"the",   "swap",  "page", "folio",   "of",     "and",   "memory", "kernel",
		"fault", "to",    "a",    "zero",    "store",  "in",    "is",     "thread",
		"slot",  "write", "read", "reclaim", "region", "entry", "lru",    "handler",
	};
	size_t i = 0;

	while (i < PAGE) {
		const char *w = words[rng_below(r, sizeof(words) / sizeof(words[0]))];

		for (size_t j = 0; w[j] && i < PAGE; j++)
			p[i++] = (uint8_t)w[j];
		if (i < PAGE)
			p[i++] = rng_below(r, 10) ? ' ' : '\n';
	}
}

static void fill_same(uint8_t *p, uint64_t w)
{
	for (size_t i = 0; i < PAGE; i += 8)
		memcpy(p + i, &w, 8);
}

static void fill_page(uint8_t *p, enum shape s, struct rng *r)
{
	uint32_t v;

	switch (s) {
	case SHAPE_RANDOM:
		fill_random(p, r);
		break;
	case SHAPE_TEXT:
		fill_text(p, r);
		break;
	case SHAPE_INTS:
		v = (uint32_t)rng_below(r, 1000);
		for (size_t i = 0; i < PAGE; i += 4) {
			v += (uint32_t)rng_below(r, 4);
			memcpy(p + i, &v, 4);
		}
		break;
	case SHAPE_ZERO:
		memset(p, 0, PAGE);
		break;
	case SHAPE_SAME:
		fill_same(p, rng_next(r) | 1ull << 63);
		break;
	case SHAPE_ZERO_BUT_LAST:
		memset(p, 0, PAGE);
		p[PAGE - 1] = 1;
		break;
	case SHAPE_ZERO_BUT_FIRST:
		memset(p, 0, PAGE);
		p[0] = 0x80;
		break;
	default:
		fill_same(p, rng_next(r));
		p[rng_below(r, PAGE)] ^= (uint8_t)(1 + rng_below(r, 255));
		break;
	}
}

static void fill_folio(uint8_t *p, unsigned npages, enum shape s, struct rng *r)
{
	for (unsigned i = 0; i < npages; i++)
		fill_page(p + (size_t)i * PAGE,
			  s == SHAPE_MIXED ? (enum shape)rng_below(r, SHAPE_N) : s, r);
}

/* ---- the expectation, computed independently (byte by byte) ---- */

enum { KIND_ZERO, KIND_SAME, KIND_DATA };

static int naive_kind(const uint8_t *p)
{
	bool zero = true;

	for (size_t i = 0; i < PAGE; i++)
		zero = zero && p[i] == 0;
	if (zero)
		return KIND_ZERO;
	for (size_t i = 8; i < PAGE; i++) {
		if (p[i] != p[i % 8])
			return KIND_DATA;
	}
	return KIND_SAME;
}

struct expect {
	unsigned zero, same, data;
	uint64_t zero_mask[FOLIO_MASK_WORDS];
	size_t data_len;
	uint8_t *data_pages; /* the data pages, packed in order */
};

static void expect_compute(struct expect *e, const uint8_t *src, unsigned npages)
{
	e->zero = e->same = e->data = 0;
	e->data_len = 0;
	memset(e->zero_mask, 0, sizeof(e->zero_mask));
	for (unsigned i = 0; i < npages; i++) {
		const uint8_t *p = src + (size_t)i * PAGE;

		switch (naive_kind(p)) {
		case KIND_ZERO:
			e->zero++;
			e->zero_mask[i / 64] |= 1ull << (i % 64);
			break;
		case KIND_SAME:
			e->same++;
			break;
		default:
			memcpy(e->data_pages + e->data_len, p, PAGE);
			e->data_len += PAGE;
			e->data++;
			break;
		}
	}
}

/* ---- a codec that records what it is given ---- */

static struct {
	int calls;
	const void *src;
	size_t len;
	uint8_t *copy;
} spy;

static long spy_compress(const void *src, size_t len, void *dst, size_t dst_cap)
{
	spy.calls++;
	spy.src = src;
	spy.len = len;
	memcpy(spy.copy, src, len);
	return codec_lz4.compress(src, len, dst, dst_cap);
}

/* Writes lz4 under lz4's id, so that folio_decode reads it back with lz4. */
static const struct codec_ops spy_codec = {
	.version = CODEC_OPS_VERSION,
	.name = "spy",
	.id = CODEC_LZ4,
	.compress = spy_compress,
	.decompress = NULL,
};

/* ---- buffers ---- */

struct bufs {
	unsigned npages;
	size_t size;
	uint8_t *src, *scratch, *blob, *out;
	struct expect e;
};

static void bufs_init(struct bufs *b, unsigned npages)
{
	b->npages = npages;
	b->size = (size_t)npages * PAGE;
	b->src = malloc(b->size);
	b->scratch = malloc(b->size);
	b->blob = malloc(folio_blob_bound(npages) + 64);
	b->out = malloc(b->size + 64);
	b->e.data_pages = malloc(b->size);
	assert_non_null(b->src);
	assert_non_null(b->scratch);
	assert_non_null(b->blob);
	assert_non_null(b->out);
	assert_non_null(b->e.data_pages);
}

static void bufs_free(struct bufs *b)
{
	free(b->src);
	free(b->scratch);
	free(b->blob);
	free(b->out);
	free(b->e.data_pages);
}

/*
 * Encode b->src with codec, check the result against the independent
 * expectation, decode it back and compare.  @return the blob length.
 */
static size_t check_roundtrip(struct bufs *b, const struct codec_ops *codec)
{
	struct folio_encode_result res;
	uint64_t mask[FOLIO_MASK_WORDS + 1];
	const size_t bound = folio_blob_bound(b->npages);
	const unsigned mask_words = (b->npages + 63) / 64;
	size_t raw_len;

	expect_compute(&b->e, b->src, b->npages);
	memset(&res, 0xa5, sizeof(res));
	memset(b->blob + bound, 0x5a, 64);
	assert_int_equal(folio_encode(codec, b->src, b->npages, b->blob, b->scratch, &res), 0);
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(b->blob[bound + i], 0x5a);
	assert_int_equal(res.zero, b->e.zero);
	assert_int_equal(res.same, b->e.same);
	assert_int_equal(res.data, b->e.data);
	assert_memory_equal(res.zero_mask, b->e.zero_mask, sizeof(res.zero_mask));
	assert_true(res.blob_len <= bound);

	if (b->e.zero == b->npages) {
		assert_int_equal(res.blob_len, 0);
		return 0;
	}
	/* a blob holds the header, 2 bits a page, a word per same-filled
	 * page and the data pages, compressed or not */
	assert_true(res.blob_len >= HDR + (b->npages + 3) / 4 + 8 * (size_t)b->e.same);
	raw_len = HDR + (b->npages + 3) / 4 + 8 * (size_t)b->e.same + b->e.data_len;
	if (res.raw || b->e.data == 0)
		assert_int_equal(res.blob_len, raw_len);
	else
		assert_true(res.blob_len < raw_len);
	if (b->e.data == 0)
		assert_int_equal(res.raw, 0);
	else if (codec->id == CODEC_NONE)
		assert_int_equal(res.raw, 1);
	assert_int_equal(folio_blob_pages(b->blob, res.blob_len), (int)b->npages);

	memset(b->out, 0xaa, b->size + 64);
	memset(mask, 0xcc, sizeof(mask));
	assert_int_equal(folio_decode(b->blob, res.blob_len, b->out, b->npages, mask), 0);
	assert_memory_equal(b->out, b->src, b->size);
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(b->out[b->size + i], 0xaa);
	assert_memory_equal(mask, b->e.zero_mask, mask_words * sizeof(uint64_t));
	/* only (npages + 63) / 64 words are written */
	assert_true(mask[mask_words] == 0xccccccccccccccccull);
	/* and a NULL mask is fine */
	assert_int_equal(folio_decode(b->blob, res.blob_len, b->out, b->npages, NULL), 0);
	assert_memory_equal(b->out, b->src, b->size);
	return res.blob_len;
}

/* ---- tests ---- */

static void test_bound(void **state)
{
	(void)state;
	assert_int_equal(folio_blob_bound(0), 0);
	assert_int_equal(folio_blob_bound(FOLIO_MAX_PAGES + 1), 0);
	assert_int_equal(folio_blob_bound(1), HDR + 1 + PAGE);
	assert_int_equal(folio_blob_bound(16), HDR + 4 + 16 * PAGE);
	assert_int_equal(folio_blob_bound(FOLIO_MAX_PAGES), HDR + 128 + 512 * PAGE);
}

static void test_bad_args(void **state)
{
	struct folio_encode_result res;
	struct bufs b;

	(void)state;
	bufs_init(&b, 1);
	memset(b.src, 1, PAGE);
	assert_int_equal(folio_encode(&codec_lz4, b.src, 0, b.blob, b.scratch, &res), -EINVAL);
	assert_int_equal(
		folio_encode(&codec_lz4, b.src, FOLIO_MAX_PAGES + 1, b.blob, b.scratch, &res),
		-EINVAL);
	assert_int_equal(folio_encode(NULL, b.src, 1, b.blob, b.scratch, &res), -EINVAL);
	bufs_free(&b);
}

/* Every codec, every shape, npages 1, 2, 16, 512. */
static void test_roundtrip(void **state)
{
	const unsigned sizes[] = {1, 2, 3, 16, 65, 512};

	(void)state;
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		struct bufs b;

		bufs_init(&b, sizes[si]);
		for (int s = 0; s <= SHAPE_MIXED; s++) {
			for (int rep = 0; rep < (s == SHAPE_MIXED ? 8 : 1); rep++) {
				fill_folio(b.src, b.npages, (enum shape)s, &rng);
				for (size_t c = 0; c < NCODECS; c++)
					check_roundtrip(&b, codecs[c]);
			}
		}
		bufs_free(&b);
	}
}

/* Each kind of folio lands where it should: compressed, raw, words only. */
static void test_storage_kinds(void **state)
{
	struct folio_encode_result res;
	struct bufs b;

	(void)state;
	bufs_init(&b, 16);

	/* text compresses */
	fill_folio(b.src, 16, SHAPE_TEXT, &rng);
	for (size_t c = 0; c < NCODECS; c++) {
		assert_int_equal(folio_encode(codecs[c], b.src, 16, b.blob, b.scratch, &res), 0);
		assert_int_equal(res.data, 16);
		assert_int_equal(res.raw, codecs[c]->id == CODEC_NONE);
		if (codecs[c]->id != CODEC_NONE)
			assert_true(res.blob_len < 16 * PAGE * 3 / 4);
	}
	/* random data is stored raw: exactly the bound */
	fill_folio(b.src, 16, SHAPE_RANDOM, &rng);
	for (size_t c = 0; c < NCODECS; c++) {
		assert_int_equal(folio_encode(codecs[c], b.src, 16, b.blob, b.scratch, &res), 0);
		assert_int_equal(res.raw, 1);
		assert_int_equal(res.blob_len, folio_blob_bound(16));
		check_roundtrip(&b, codecs[c]);
	}
	/* mixed with random data pages: raw, packed */
	fill_folio(b.src, 16, SHAPE_RANDOM, &rng);
	memset(b.src + 3 * PAGE, 0, PAGE);
	fill_same(b.src + 7 * PAGE, 0x0123456789abcdefull);
	for (size_t c = 0; c < NCODECS; c++) {
		assert_int_equal(check_roundtrip(&b, codecs[c]), HDR + 4 + 8 + 14 * PAGE);
		assert_int_equal(folio_encode(codecs[c], b.src, 16, b.blob, b.scratch, &res), 0);
		assert_int_equal(res.raw, 1);
	}
	/* same-filled pages only: the words and nothing else */
	for (unsigned i = 0; i < 16; i++)
		fill_same(b.src + i * PAGE, i % 3 ? 0 : 0x1111111111111111ull * (i + 1));
	for (size_t c = 0; c < NCODECS; c++) {
		assert_int_equal(folio_encode(codecs[c], b.src, 16, b.blob, b.scratch, &res), 0);
		assert_int_equal(res.same, 6);
		assert_int_equal(res.zero, 10);
		assert_int_equal(res.data, 0);
		assert_int_equal(res.raw, 0);
		assert_int_equal(res.blob_len, HDR + 4 + 6 * 8);
		check_roundtrip(&b, codecs[c]);
	}
	/* all zero: no blob */
	memset(b.src, 0, 16 * PAGE);
	for (size_t c = 0; c < NCODECS; c++) {
		assert_int_equal(folio_encode(codecs[c], b.src, 16, b.blob, b.scratch, &res), 0);
		assert_int_equal(res.blob_len, 0);
		assert_int_equal(res.zero, 16);
		assert_int_equal(res.zero_mask[0], 0xffff);
	}
	bufs_free(&b);
}

/* Zero and same-filled pages never reach the codec; data pages reach it
 * once, together, in order; straight from src when the folio is all data. */
static void test_codec_input(void **state)
{
	struct folio_encode_result res;
	struct bufs b;

	(void)state;
	bufs_init(&b, 64);
	spy.copy = malloc(64 * PAGE);
	assert_non_null(spy.copy);
	for (int rep = 0; rep < 40; rep++) {
		enum shape s = rep < 4 ? (enum shape)rep : SHAPE_MIXED;

		fill_folio(b.src, 64, s, &rng);
		expect_compute(&b.e, b.src, 64);
		spy.calls = 0;
		assert_int_equal(folio_encode(&spy_codec, b.src, 64, b.blob, b.scratch, &res), 0);
		if (b.e.data == 0) {
			assert_int_equal(spy.calls, 0);
			continue;
		}
		assert_int_equal(spy.calls, 1);
		assert_int_equal(spy.len, b.e.data_len);
		assert_memory_equal(spy.copy, b.e.data_pages, b.e.data_len);
		assert_ptr_equal(spy.src, b.e.data == 64 ? (void *)b.src : (void *)b.scratch);
		memset(b.out, 0, 64 * PAGE);
		assert_int_equal(folio_decode(b.blob, res.blob_len, b.out, 64, NULL), 0);
		assert_memory_equal(b.out, b.src, 64 * PAGE);
	}
	free(spy.copy);
	bufs_free(&b);
}

/* A handful of blobs to corrupt: lz4 and zstd (compressed, mixed), raw,
 * words only, a single page. */
struct sample {
	const struct codec_ops *codec;
	unsigned npages;
	enum shape shape;
};

static const struct sample samples[] = {
	{&codec_lz4, 16, SHAPE_MIXED}, {&codec_zstd, 16, SHAPE_MIXED},
	{&codec_lz4, 4, SHAPE_TEXT},   {&codec_zstd, 1, SHAPE_TEXT},
	{&codec_lz4, 2, SHAPE_RANDOM}, {&codec_none, 5, SHAPE_MIXED},
	{&codec_lz4, 9, SHAPE_SAME},
};

static size_t sample_make(struct bufs *b, const struct sample *s)
{
	size_t len;

	do {
		fill_folio(b->src, s->npages, s->shape, &rng);
		len = check_roundtrip(b, s->codec);
	} while (len == 0);
	return len;
}

/* Every single-byte corruption, every truncation and extension of each
 * sample is detected: the checksum makes that certain, not likely. */
static void test_corruption_detected(void **state)
{
	uint64_t mask[FOLIO_MASK_WORDS];

	(void)state;
	for (size_t si = 0; si < sizeof(samples) / sizeof(samples[0]); si++) {
		const struct sample *s = &samples[si];
		struct bufs b;
		size_t len;
		uint8_t *bad;

		bufs_init(&b, s->npages);
		len = sample_make(&b, s);
		bad = malloc(len + 1);
		assert_non_null(bad);
		print_message("# %s, %u pages: %zu-byte blob\n", s->codec->name, s->npages, len);
		for (size_t pos = 0; pos < len; pos++) {
			const uint8_t flips[] = {0x01, 0x80, 0xff,
						 (uint8_t)(1 + rng_below(&rng, 255))};

			for (size_t f = 0; f < sizeof(flips); f++) {
				memcpy(bad, b.blob, len);
				bad[pos] ^= flips[f];
				assert_int_equal(folio_decode(bad, len, b.out, s->npages, mask),
						 -EILSEQ);
			}
		}
		/* every single-bit flip of the header and of the first bytes */
		for (size_t bit = 0; bit < 8 * (len < 256 ? len : 256); bit++) {
			memcpy(bad, b.blob, len);
			bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_equal(folio_decode(bad, len, b.out, s->npages, NULL), -EILSEQ);
		}
		for (size_t t = 0; t < len; t++)
			assert_int_equal(folio_decode(b.blob, t, b.out, s->npages, NULL), -EILSEQ);
		memcpy(bad, b.blob, len);
		bad[len] = 0;
		assert_int_equal(folio_decode(bad, len + 1, b.out, s->npages, NULL), -EILSEQ);
		/* the wrong page count */
		assert_int_equal(folio_decode(b.blob, len, b.out, s->npages + 1, NULL), -EILSEQ);
		if (s->npages > 1)
			assert_int_equal(folio_decode(b.blob, len, b.out, s->npages - 1, NULL),
					 -EILSEQ);
		/* wider corruption: random runs of random bytes (misses have
		 * odds of 2^-32 each) */
		for (int t = 0; t < 2000; t++) {
			size_t at = rng_below(&rng, len), n = 1 + rng_below(&rng, len - at);

			memcpy(bad, b.blob, len);
			for (size_t i = 0; i < n; i++)
				bad[at + i] = (uint8_t)rng_next(&rng);
			if (memcmp(bad, b.blob, len) == 0)
				continue;
			assert_int_equal(folio_decode(bad, len, b.out, s->npages, NULL), -EILSEQ);
		}
		/* still intact */
		assert_int_equal(folio_decode(b.blob, len, b.out, s->npages, NULL), 0);
		assert_memory_equal(b.out, b.src, b.size);
		free(bad);
		bufs_free(&b);
	}
}

/* Rewrite the checksum of a forged blob so that it holds. */
static void reseal(uint8_t *blob, size_t len)
{
	uint32_t c = folio_blob_csum(blob + 4, len - 4);

	memcpy(blob, &c, 4);
}

/*
 * Behind the checksum: blobs forged with a valid checksum are still
 * checked field by field.  A lie about the magic, version, sizes, raw flag,
 * or a kind of 3, is -EILSEQ; other changes (a codec id, kinds traded
 * between pages, a word or payload byte) may decode to other data, but
 * never out of bounds (ASan watches).
 */
static void test_forged(void **state)
{
	(void)state;
	for (size_t si = 0; si < sizeof(samples) / sizeof(samples[0]); si++) {
		const struct sample *s = &samples[si];
		struct bufs b;
		size_t len;
		uint8_t *bad;
		uint32_t sizes;
		int ret;

		bufs_init(&b, s->npages);
		len = sample_make(&b, s);
		bad = malloc(len + 8);
		assert_non_null(bad);
		for (size_t pos = 4; pos < len; pos++) {
			memcpy(bad, b.blob, len);
			bad[pos] ^= (uint8_t)(1 + rng_below(&rng, 255));
			reseal(bad, len);
			memset(b.out + b.size, 0x77, 64);
			ret = folio_decode(bad, len, b.out, s->npages, NULL);
			for (unsigned i = 0; i < 64; i++)
				assert_int_equal(b.out[b.size + i], 0x77);
			if (pos < HDR && pos != 7)
				assert_int_equal(ret, -EILSEQ); /* magic, version, sizes */
			else
				assert_true(ret == 0 || ret == -EILSEQ);
		}
		/* the header fields one by one */
		memcpy(bad, b.blob, len);
		memcpy(&sizes, bad + 8, 4);
		for (uint32_t np = 0; np < 1024; np++) {
			uint32_t v = (sizes & ((1u << 22) - 1)) | np << 22;

			if (np == s->npages)
				continue;
			memcpy(bad + 8, &v, 4);
			reseal(bad, len);
			assert_int_equal(folio_decode(bad, len, b.out, s->npages, NULL), -EILSEQ);
			ret = folio_blob_pages(bad, len);
			if (np == 0 || np > FOLIO_MAX_PAGES || len < HDR + (np + 3) / 4)
				assert_int_equal(ret, -EILSEQ);
			else
				assert_int_equal(ret, (int)np);
		}
		for (uint32_t pl = 0; pl < (1u << 22); pl += 1 + pl / 3) {
			uint32_t v = (sizes & ~((1u << 22) - 1)) | pl;

			if (pl == (sizes & ((1u << 22) - 1)))
				continue;
			memcpy(bad + 8, &v, 4);
			reseal(bad, len);
			assert_int_equal(folio_decode(bad, len, b.out, s->npages, NULL), -EILSEQ);
		}
		memcpy(bad, b.blob, len);
		for (unsigned codec = 0; codec < 256; codec++) {
			bad[7] = (uint8_t)codec;
			reseal(bad, len);
			ret = folio_decode(bad, len, b.out, s->npages, NULL);
			/* 0x40 is the idle-recompression flag: decoding ignores it */
			if (codec == b.blob[7] || codec == (b.blob[7] ^ 0x40u))
				assert_int_equal(ret, 0);
			else if ((codec & 0x3f) > CODEC_ZSTD || (codec ^ b.blob[7]) & 0x80)
				assert_int_equal(ret, -EILSEQ);
			else
				assert_true(ret == 0 || ret == -EILSEQ);
		}
		/* kind 3, anywhere */
		for (unsigned i = 0; i < s->npages; i++) {
			memcpy(bad, b.blob, len);
			bad[HDR + i / 4] |= (uint8_t)(3u << (2 * (i % 4)));
			reseal(bad, len);
			assert_int_equal(folio_decode(bad, len, b.out, s->npages, NULL), -EILSEQ);
		}
		/* bits past the last page */
		if (s->npages % 4) {
			memcpy(bad, b.blob, len);
			bad[HDR + s->npages / 4] |= 0x80;
			reseal(bad, len);
			assert_int_equal(folio_decode(bad, len, b.out, s->npages, NULL), -EILSEQ);
		}
		/* a resealed truncation */
		for (size_t t = HDR; t < len; t++) {
			memcpy(bad, b.blob, len);
			reseal(bad, t);
			assert_int_equal(folio_decode(bad, t, b.out, s->npages, NULL), -EILSEQ);
		}
		free(bad);
		bufs_free(&b);
	}
}

/* Garbage never crashes and is never accepted. */
static void test_garbage(void **state)
{
	const size_t max = 3 * PAGE;
	uint8_t *g = malloc(max), *out = malloc(16 * PAGE);

	(void)state;
	assert_non_null(g);
	assert_non_null(out);
	for (int t = 0; t < 20000; t++) {
		size_t len = rng_below(&rng, max + 1);
		unsigned npages = 1 + (unsigned)rng_below(&rng, 16);
		uint32_t sizes;
		int ret, np;

		for (size_t i = 0; i < len; i++)
			g[i] = (uint8_t)rng_next(&rng);
		if (t % 2 && len >= HDR) {
			/* a plausible header */
			g[4] = 0x75, g[5] = 0x46, g[6] = 1, g[7] = (uint8_t)rng_below(&rng, 3);
			sizes = npages << 22 | (uint32_t)rng_below(&rng, len);
			memcpy(g + 8, &sizes, 4);
			if (t % 4 == 1)
				reseal(g, len);
		}
		ret = folio_decode(g, len, out, npages, NULL);
		np = folio_blob_pages(g, len);
		assert_true(ret == -EILSEQ || (t % 4 == 1 && ret == 0));
		assert_true(np == -EILSEQ || (np >= 1 && np <= FOLIO_MAX_PAGES));
	}
	assert_int_equal(folio_decode(NULL, 0, out, 1, NULL), -EILSEQ);
	assert_int_equal(folio_blob_pages(NULL, 0), -EILSEQ);
	free(g);
	free(out);
}

/* ---- threads ---- */

struct thread_arg {
	uint64_t seed;
	const struct codec_ops *codec;
	int failures;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	struct rng r = {a->seed};
	const unsigned npages = 16;
	uint8_t *src = malloc(npages * PAGE), *scratch = malloc(npages * PAGE);
	uint8_t *blob = malloc(folio_blob_bound(npages)), *out = malloc(npages * PAGE);
	struct folio_encode_result res;

	if (!src || !scratch || !blob || !out) {
		a->failures++;
		goto out;
	}
	for (int k = 0; k < 30; k++) {
		fill_folio(src, npages, k % 2 ? SHAPE_TEXT : SHAPE_MIXED, &r);
		if (folio_encode(a->codec, src, npages, blob, scratch, &res)) {
			a->failures++;
			continue;
		}
		if (res.blob_len == 0)
			continue;
		if (folio_decode(blob, res.blob_len, out, npages, NULL) ||
		    memcmp(src, out, npages * PAGE))
			a->failures++;
	}
out:
	free(src);
	free(scratch);
	free(blob);
	free(out);
	return NULL;
}

static void test_threads(void **state)
{
	enum { N = 6 };
	pthread_t t[N];
	struct thread_arg a[N];

	(void)state;
	for (int i = 0; i < N; i++) {
		a[i] = (struct thread_arg){rng_next(&rng) | 1, codecs[i % NCODECS], 0};
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &a[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].failures, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_storage_kinds),
		cmocka_unit_test(test_codec_input),
		cmocka_unit_test(test_corruption_detected),
		cmocka_unit_test(test_forged),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_threads),
	};

	rng_seed(&rng, 0xf011095);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the stored form of a folio (codec/folio_blob.h).
 *
 * The first input byte picks the game:
 *   0  the rest is a blob as a store might give it back: decoding never
 *      reads or writes out of bounds (ASan), and a blob that does not
 *      pass is refused with -EILSEQ;
 *   1  the same with its checksum forged to hold, to reach the checks
 *      behind it: a blob accepted must say what it holds (zero pages
 *      decoded as zeros, no zero-mask bit past the last page);
 *   2  the rest describes a folio (page count, codec, each page's kind and
 *      bytes): it is encoded, must decode to exactly itself, and then any
 *      one byte changed, or any truncation, must be refused (-EILSEQ):
 *      corrupt stored data is never decoded into garbage.
 * In every game, pages decoded alone (folio_decode_page) must agree with
 * the whole decode whenever that succeeds, and be refused when the blob is.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/folio_blob.h"

#define MAX_PAGES 64 /* folios built by game 2: enough for every layout */

static uint8_t src[FOLIO_MAX_PAGES * FOLIO_PAGE_SIZE];
static uint8_t dst[FOLIO_MAX_PAGES * FOLIO_PAGE_SIZE];
static uint8_t scratch[FOLIO_MAX_PAGES * FOLIO_PAGE_SIZE];
static uint8_t page_dst[FOLIO_MAX_PAGES * FOLIO_PAGE_SIZE];
static uint8_t blob[FOLIO_MAX_PAGES * FOLIO_PAGE_SIZE + 4096];

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_blob: %s\n", what);
	abort();
}

/* What a decoded blob claims must hold for what it wrote. */
static void check_decoded(unsigned npages, const uint64_t *mask)
{
	unsigned i;

	for (i = npages; i < (npages + 63) / 64 * 64; i++)
		if (mask[i / 64] >> (i % 64) & 1)
			fail("zero-mask bit past the last page");
	for (i = 0; i < npages; i++) {
		const uint8_t *p = dst + (size_t)i * FOLIO_PAGE_SIZE;

		if ((mask[i / 64] >> (i % 64) & 1) && (p[0] || memcmp(p, p + 1, FOLIO_PAGE_SIZE - 1)))
			fail("a page in the zero mask was not decoded as zeros");
	}
}

/*
 * Page k of the blob decoded alone.  When the whole decode (whole_rc)
 * succeeded, dst holds the folio and the page must match it; a blob the
 * whole decode refused may still give a page (the part of the payload
 * after it is not decoded), but never a crash, nor an undocumented error.
 */
static void check_page(size_t len, unsigned npages, unsigned k, int whole_rc)
{
	const size_t off = (size_t)k * FOLIO_PAGE_SIZE;
	int rc = folio_decode_page(blob, len, page_dst, npages, k);

	if (rc < 0 && rc != -EILSEQ && rc != -ENOMEM && rc != -EAGAIN)
		fail("folio_decode_page: an error it does not document");
	if (rc > 0 && rc != (int)npages)
		fail("folio_decode_page: neither 0 nor every page valid");
	if (whole_rc != 0)
		return;
	if (rc < 0)
		fail("folio_decode_page refused a page of a blob folio_decode took");
	if (memcmp(page_dst + off, dst + off, FOLIO_PAGE_SIZE))
		fail("a page decoded alone differs from the whole decode");
	if (rc == (int)npages && memcmp(page_dst, dst, (size_t)npages * FOLIO_PAGE_SIZE))
		fail("folio_decode_page said every page is valid, and one is not");
}

static void decode_as_given(const uint8_t *data, size_t size, int forge)
{
	uint64_t mask[FOLIO_MASK_WORDS];
	int n, rc;

	if (size > sizeof(blob))
		return;
	memcpy(blob, data, size);
	if (forge && size >= 4) {
		uint32_t c = folio_blob_csum(blob + 4, size - 4);

		memcpy(blob, &c, 4);
	}
	n = folio_blob_pages(blob, size);
	if (n <= 0) {
		if (n != -EILSEQ)
			fail("folio_blob_pages: neither pages nor -EILSEQ");
		n = 1;
	}
	rc = folio_decode(blob, size, dst, (unsigned)n, mask);
	if (rc == 0)
		check_decoded((unsigned)n, mask);
	else if (rc != -EILSEQ && rc != -ENOMEM && rc != -EAGAIN)
		fail("folio_decode: an error it does not document");
	check_page(size, (unsigned)n, (unsigned)(size % (unsigned)n), rc);
	check_page(size, (unsigned)n, (unsigned)n - 1, rc);
}

/* Game 2.  Input: npages, codec, then per page a kind byte and a seed. */
static void round_trip(const uint8_t *data, size_t size)
{
	static const struct codec_ops *codecs[] = { &codec_lz4, &codec_zstd, &codec_none };
	struct folio_encode_result res;
	uint64_t mask[FOLIO_MASK_WORDS];
	unsigned npages, i;
	size_t at = 2, off, len;
	uint8_t x;
	int rc;

	if (size < 6)
		return;
	npages = 1 + data[0] % MAX_PAGES;
	for (i = 0; i < npages; i++) {
		uint8_t *p = src + (size_t)i * FOLIO_PAGE_SIZE;
		uint8_t kind = at < size ? data[at++] : 0;
		uint8_t seed = at < size ? data[at++] : 0;
		size_t j;

		switch (kind % 4) {
		case 0:
			memset(p, 0, FOLIO_PAGE_SIZE);
			break;
		case 1: /* same-filled: one 64-bit word */
			for (j = 0; j < FOLIO_PAGE_SIZE; j++)
				p[j] = (uint8_t)(seed + (j % 8));
			break;
		case 2: /* compressible: a short cycle */
			for (j = 0; j < FOLIO_PAGE_SIZE; j++)
				p[j] = (uint8_t)(seed ^ (j % (1 + kind / 4)));
			break;
		default: /* noise from the seed */
			for (j = 0; j < FOLIO_PAGE_SIZE; j++)
				p[j] = (uint8_t)((seed + j) * 2654435761u >> 13);
		}
	}
	rc = folio_encode(codecs[data[1] % 3], src, npages, blob, scratch, &res);
	if (rc)
		fail("folio_encode failed on a valid folio");
	if (res.blob_len == 0) {
		for (i = 0; i < npages; i++) {
			const uint8_t *p = src + (size_t)i * FOLIO_PAGE_SIZE;

			if (p[0] || memcmp(p, p + 1, FOLIO_PAGE_SIZE - 1) ||
			    !(res.zero_mask[i / 64] >> (i % 64) & 1))
				fail("no blob, but not every page is zero");
		}
		return;
	}
	if (res.blob_len > folio_blob_bound(npages))
		fail("blob longer than folio_blob_bound");
	rc = folio_decode(blob, res.blob_len, dst, npages, mask);
	if (rc || memcmp(src, dst, (size_t)npages * FOLIO_PAGE_SIZE))
		fail("a blob does not decode to the folio it was made from");
	if (memcmp(mask, res.zero_mask, (npages + 63) / 64 * sizeof(*mask)))
		fail("decoded zero mask differs from the encoded one");
	for (i = 0; i < npages; i++)
		check_page(res.blob_len, npages, i, 0);

	/* one byte changed: always detected */
	off = ((size_t)data[size - 3] << 8 | data[size - 2]) % res.blob_len;
	x = data[size - 1] ? data[size - 1] : 1;
	blob[off] ^= x;
	if (folio_decode(blob, res.blob_len, dst, npages, NULL) != -EILSEQ)
		fail("a blob with one byte changed was not refused");
	if (folio_decode_page(blob, res.blob_len, page_dst, npages, off % npages) != -EILSEQ)
		fail("a page of a blob with one byte changed was not refused");
	blob[off] ^= x;
	/* truncated: always detected */
	len = off;
	if (folio_decode(blob, len, dst, npages, NULL) != -EILSEQ)
		fail("a truncated blob was not refused");
	if (folio_decode_page(blob, len, page_dst, npages, off % npages) != -EILSEQ)
		fail("a page of a truncated blob was not refused");
	/* the wrong page count: refused */
	if (npages < FOLIO_MAX_PAGES &&
	    folio_decode(blob, res.blob_len, dst, npages + 1, NULL) != -EILSEQ)
		fail("a blob decoded as a folio of another size");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		decode_as_given(data + 1, size - 1, 0);
		break;
	case 1:
		decode_as_given(data + 1, size - 1, 1);
		break;
	default:
		round_trip(data + 1, size - 1);
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The stored form of a folio ("blob"): what reaches a store.
 *
 * folio_encode looks at each page of a folio:
 *  - a zero-filled page is only reported in the zero mask: it never reaches
 *    the codec nor the blob;
 *  - a same-filled page (one 64-bit word repeated) is kept as that word;
 *  - the other ("data") pages are compressed together as one unit, or kept
 *    raw when they do not compress.
 * A blob is self-describing (magic, version, codec id, page count, per-page
 * kind, payload length, checksum), so folio_decode needs nothing but the
 * blob, and detects a corrupt or truncated one.
 */
#ifndef USWAP_FOLIO_BLOB_H
#define USWAP_FOLIO_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define FOLIO_PAGE_SIZE 4096u
#define FOLIO_MAX_PAGES 512 /* 2 MiB of 4 KiB pages */
#define FOLIO_MASK_WORDS (FOLIO_MAX_PAGES / 64)

struct folio_encode_result {
	size_t blob_len;  /* 0 when every page is zero: nothing to store */
	unsigned zero;    /* pages found zero-filled */
	unsigned same;    /* pages found same-filled (non-zero word) */
	unsigned data;    /* pages compressed (or stored raw) */
	unsigned raw;     /* 1 when the data pages were stored uncompressed */
	uint64_t zero_mask[FOLIO_MASK_WORDS]; /* bit i = page i is zero */
};

/*
 * Upper bound of a blob for npages pages: size dst for this.  It is the
 * raw size plus the header (12 bytes + 2 bits per page): a folio whose
 * data pages do not compress is stored raw, never expanded.
 * @return the bound; 0 for npages 0 or > FOLIO_MAX_PAGES.
 */
size_t folio_blob_bound(unsigned npages);

/*
 * Encode npages pages (4 KiB each, contiguous at src).  src must not change
 * during the call: pages are read once to classify them and again to
 * compress them, so a page written in between could be stored wrong.
 * @dst      at least folio_blob_bound(npages) bytes
 * @scratch  at least npages * 4096 bytes, used to pack data pages when the
 *           folio mixes kinds
 * @return 0 and *res filled; -EINVAL for a NULL codec, a codec id >= 128,
 *         npages 0 or > FOLIO_MAX_PAGES; -errno from the codec.
 * The blob is in host byte order: it is read back by the process that
 * wrote it, never exchanged between machines.
 */
int folio_encode(const struct codec_ops *codec, const void *src, unsigned npages,
		 void *dst, void *scratch, struct folio_encode_result *res);

/*
 * Decode a blob into npages pages at dst (npages * 4096 bytes).  Data and
 * same-filled pages are written; zero pages are written with zeros too
 * (callers that map the zero page for them simply skip those pages).
 * @zero_mask if not NULL, receives the blob's zero mask: (npages + 63) / 64
 *           words (bit i = page i is zero); the bits past npages are 0.
 * A checksum covers the whole blob: any change confined to one 4-byte
 * group at an offset multiple of 4 (so any single-byte or single-bit
 * corruption) and any truncation is always detected; other corruptions
 * are missed with odds of about 2^-32.
 * An empty blob (len 0) is rejected: an all-zero folio has no blob, and
 * its owner knows that without calling here.
 * @return 0; -EILSEQ when the blob is corrupt, truncated, or is not of
 *         npages pages (dst and *zero_mask may then hold anything);
 *         -ENOMEM/-EAGAIN from the codec's per-thread set-up (zstd, on a
 *         thread's first call).
 */
int folio_decode(const void *blob, size_t len, void *dst, unsigned npages,
		 uint64_t *zero_mask);

/*
 * Decode page `page` of a blob of npages pages, and only as much of the
 * blob as that page needs: what a swap-in of one page wants.  The page is
 * written at its own offset in dst (room for npages pages, like
 * folio_decode); a zero or same-filled page comes from the header alone,
 * a page of a raw blob is copied, and the j-th data page of a compressed
 * one needs the payload's first j + 1 pages decoded (the codec's prefix
 * decode: codec.h).  The checksum of the whole blob is verified first,
 * as by folio_decode: no byte of a corrupt blob is ever used.
 * @return the number of leading pages of dst that hold their data too:
 *         npages when the whole payload came out anyway (zstd decodes
 *         whole blocks; or page was the last data page), so a caller may
 *         keep dst for the blob's other pages; 0 when only page is valid
 *         (the rest of dst may then hold anything);
 *         -EINVAL for page >= npages; otherwise errors as folio_decode.
 */
int folio_decode_page(const void *blob, size_t len, void *dst, unsigned npages, unsigned page);

/*
 * The checksum a blob carries: a 32-bit hash of its bytes from offset 4 to
 * its end (see folio_blob.c).  Exposed for tests and fuzzers, which forge
 * blobs whose checksum holds to reach the checks behind it.
 */
uint32_t folio_blob_csum(const void *p, size_t len);

/* The number of pages a blob holds, or -EILSEQ when the header is bad.
 * Only the header is checked (no checksum): folio_decode checks the rest. */
int folio_blob_pages(const void *blob, size_t len);

/*
 * Idle recompression (runtime/recompress.c).  A blob carries a flag that
 * says recompression has been at it (recompressed, or found not worth it),
 * so that it is never tried twice; decoding ignores the flag.
 * @return 1 when blob has the flag, 0 when not; -EILSEQ (bad header).
 */
int folio_blob_strong(const void *blob, size_t len);

/* Set the flag in blob (checked whole first; checksum redone).
 * @return 0; -EILSEQ when the blob is corrupt. */
int folio_blob_mark_strong(void *blob, size_t len);

/* A compressor with codec_ops.compress's contract and an argument. */
typedef long (*folio_compress_fn)(void *arg, const void *src, size_t len, void *dst,
				  size_t dst_cap);

/*
 * Write to dst a copy of blob whose data pages are compressed anew with
 * compress (which must produce the blob's own codec format: the blob keeps
 * its codec id, and loses its raw bit), with the flag set.  Zero and
 * same-filled pages are kept as they are.
 * @scratch  the blob's data pages decompressed: up to npages * 4096 bytes
 * @return 0 and *out_len (at most dst_cap); -ENOSPC when the result would not be
 *         smaller than dst_cap (or than the raw pages) or the blob has no
 *         data pages; -EILSEQ (corrupt blob); -errno from the codecs.
 */
int folio_blob_recompress(const void *blob, size_t len, folio_compress_fn compress, void *arg,
			  void *dst, size_t dst_cap, void *scratch, size_t *out_len);

#endif

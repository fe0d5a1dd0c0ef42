/* SPDX-License-Identifier: MIT */
/*
 * Codecs: a versioned table of operations per compressor (lz4, zstd, none).
 * Codecs are stateless from the caller's view; implementations keep their
 * scratch state per thread, so every function may be called from any
 * number of threads at once.
 */
#ifndef USWAP_CODEC_H
#define USWAP_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* 2: decompress_prefix (a version-1 table has no such member: callers
 * look at version first). */
#define CODEC_OPS_VERSION 2

enum codec_id { CODEC_NONE = 0, CODEC_LZ4 = 1, CODEC_ZSTD = 2 };

struct codec_ops {
	int version;      /* CODEC_OPS_VERSION */
	const char *name; /* "lz4", "zstd", "none" */
	uint8_t id;       /* enum codec_id, recorded in every stored folio */
	/*
	 * Compress len bytes.  @return the compressed length (> 0); 0 when the
	 * result would not fit in dst_cap (the caller stores the data raw);
	 * -errno on failure.
	 */
	long (*compress)(const void *src, size_t len, void *dst, size_t dst_cap);
	/*
	 * Decompress into exactly dst_len bytes.  Never writes outside
	 * [dst, dst + dst_len) nor reads outside [src, src + src_len), whatever
	 * src holds.  @return 0; -EILSEQ when src is corrupt or does not
	 * decode to exactly dst_len bytes (dst may then hold anything);
	 * -ENOMEM/-EAGAIN when a thread's first call cannot set up its
	 * per-thread context (zstd).
	 */
	int (*decompress)(const void *src, size_t src_len, void *dst, size_t dst_len);
	/*
	 * (Version 2; may be NULL: callers then use decompress.)  Decode only
	 * the start of src: at least its first prefix_len bytes, of the
	 * dst_len it decodes to in all.  This is what a swap-in of one page
	 * needs: the j-th data page of a folio is bytes [j, j + 1) * 4096 of
	 * its payload, and decoding can stop there (lz4 stops at that byte;
	 * zstd at the end of the block holding it, since zstd decodes whole
	 * blocks: up to 128 KiB, so a 64 KiB folio is one block and gains
	 * nothing; none copies the prefix).
	 * dst has room for dst_len bytes; a codec may fill more than the
	 * prefix when that costs it nothing, and says how much it filled.
	 * Never writes outside [dst, dst + dst_len) nor reads outside
	 * [src, src + src_len), whatever src holds.  Only the part decoded is
	 * checked: a corruption further on goes unseen, so a caller verifies
	 * a checksum of src first (folio_blob.c does).
	 * @prefix_len 1 to dst_len; prefix_len == dst_len is decompress.
	 * @return n, prefix_len <= n <= dst_len: bytes [0, n) of dst hold the
	 *         start of the decoded data; -EILSEQ when the part decoded is
	 *         corrupt or src decodes to fewer than prefix_len bytes (or,
	 *         for prefix_len == dst_len, not to exactly dst_len);
	 *         -ENOMEM/-EAGAIN as decompress; -EINVAL for a prefix_len
	 *         out of range.
	 */
	long (*decompress_prefix)(const void *src, size_t src_len, void *dst, size_t prefix_len,
				  size_t dst_len);
};

/*
 * The built-in codecs.  Callers normally go through codec_find() or
 * codec_by_id(); these are here so that the registry and the tests can
 * name them.
 *  - lz4: LZ4 fast mode (acceleration 1); its 16 KiB compression state is
 *    thread-local storage, so neither call ever allocates.
 *  - zstd: level CODEC_ZSTD_LEVEL; each thread that uses it gets a
 *    compression and a decompression context on first use (malloc), freed
 *    when the thread exits; that first call may fail with -ENOMEM (or
 *    -EAGAIN when no pthread key is left).
 *  - none: a copy; compress returns 0 when dst_cap < len.
 * All three have decompress_prefix.
 * compress: len must be > 0 and at most INT_MAX (-EINVAL otherwise).
 */
extern const struct codec_ops codec_lz4;
extern const struct codec_ops codec_zstd;
extern const struct codec_ops codec_none;

#define CODEC_ZSTD_LEVEL 1

/* @return the codec called name, or NULL. */
/* A ZSTD_compress* result in codec_ops.compress's terms (the compressed
 * length; 0 when it did not fit; -errno), for codec_zstd.c and the strong
 * levels of codec_strong.c. */
long codec_zstd_compress_result(size_t ret);

const struct codec_ops *codec_find(const char *name);
/* @return the codec with this id, or NULL. */
const struct codec_ops *codec_by_id(uint8_t id);
/* "lz4, zstd, none": for error messages. */
const char *codec_names(void);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Strong compression for idle recompression (runtime/recompress.c): the
 * same formats as the fast codecs, at a slower level that packs tighter.
 * lz4 -> LZ4_compress_HC (the output is plain lz4: codec_lz4 decodes it, as
 * fast as ever); zstd -> the given zstd level (codec_zstd decodes it).
 *
 * One compressor object holds its own state (LZ4HC's 256 KiB state, or a
 * zstd context), so it must be used by one thread at a time: the instance
 * keeps one for its background thread.  No thread-local storage: the
 * strong state costs nothing in the other threads.
 */
#ifndef USWAP_CODEC_STRONG_H
#define USWAP_CODEC_STRONG_H

#include <stddef.h>

#include "codec.h"

struct codec_strong;

/*
 * The strong levels a codec has.
 * @return 0 and *lo, *hi; -ENOTSUP for a codec that has none (none).
 */
int codec_strong_levels(const struct codec_ops *codec, unsigned *lo, unsigned *hi);

/*
 * A compressor for codec at level (within codec_strong_levels).
 * @return 0 and *out; -EINVAL for a level out of range, -ENOTSUP, -ENOMEM.
 */
int codec_strong_create(const struct codec_ops *codec, unsigned level,
			struct codec_strong **out);
void codec_strong_destroy(struct codec_strong *cs);

/*
 * Compress len bytes (0 < len <= INT_MAX), the contract of
 * codec_ops.compress: @return the compressed length (> 0); 0 when it would
 * not fit in dst_cap; -errno on failure.
 */
long codec_strong_compress(struct codec_strong *cs, const void *src, size_t len, void *dst,
			   size_t dst_cap);

#endif

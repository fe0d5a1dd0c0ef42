/* SPDX-License-Identifier: MIT */
/* The "none" codec: a copy.  It lets a store keep folios uncompressed while
 * still going through the same blob format (zero and same-filled pages are
 * still found by folio_encode). */
#include "codec.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

static long codec_none_compress(const void *src, size_t len, void *dst, size_t dst_cap)
{
	if (len == 0 || len > INT_MAX)
		return -EINVAL;
	if (len > dst_cap)
		return 0;
	memcpy(dst, src, len);
	return (long)len;
}

static int codec_none_decompress(const void *src, size_t src_len, void *dst, size_t dst_len)
{
	if (src_len != dst_len)
		return -EILSEQ;
	if (dst_len)
		memcpy(dst, src, dst_len);
	return 0;
}

static long codec_none_decompress_prefix(const void *src, size_t src_len, void *dst,
					 size_t prefix_len, size_t dst_len)
{
	if (prefix_len == 0 || prefix_len > dst_len)
		return -EINVAL;
	if (src_len != dst_len)
		return -EILSEQ;
	memcpy(dst, src, prefix_len);
	return (long)prefix_len;
}

const struct codec_ops codec_none = {
	.version = CODEC_OPS_VERSION,
	.name = "none",
	.id = CODEC_NONE,
	.compress = codec_none_compress,
	.decompress = codec_none_decompress,
	.decompress_prefix = codec_none_decompress_prefix,
};

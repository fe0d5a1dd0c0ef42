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

const struct codec_ops codec_none = {
	.version = CODEC_OPS_VERSION,
	.name = "none",
	.id = CODEC_NONE,
	.compress = codec_none_compress,
	.decompress = codec_none_decompress,
};

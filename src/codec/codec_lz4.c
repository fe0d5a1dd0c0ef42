/* SPDX-License-Identifier: MIT */
/* The lz4 codec (liblz4, fast mode). */
#include "codec.h"

#include <errno.h>
#include <limits.h>

#include <lz4.h>

/*
 * The compression state (16 KiB) lives in thread-local storage rather than
 * on the heap: no call ever allocates, and uswap's threads never take
 * memory from malloc on this path.  The price is 16 KiB of TLS in every
 * thread of the process, compressing or not (glibc zeroes a module's TLS
 * block when it creates a thread).  LZ4_compress_fast_extState re-initialises
 * the state on each call (the _fastReset variant is not exported by the
 * shared liblz4), which costs a 16 KiB memset: small next to a folio.
 */
static _Thread_local LZ4_stream_t codec_lz4_state;

static long codec_lz4_compress(const void *src, size_t len, void *dst, size_t dst_cap)
{
	int ret;

	if (len == 0 || len > LZ4_MAX_INPUT_SIZE)
		return -EINVAL;
	if (dst_cap > INT_MAX)
		dst_cap = INT_MAX;
	/* 0 means "does not fit in dst_cap", which is our contract too. */
	ret = LZ4_compress_fast_extState(&codec_lz4_state, src, dst, (int)len, (int)dst_cap, 1);
	return ret;
}

static int codec_lz4_decompress(const void *src, size_t src_len, void *dst, size_t dst_len)
{
	int ret;

	if (src_len > INT_MAX || dst_len > INT_MAX)
		return -EILSEQ;
	/* LZ4_decompress_safe never writes past dst_len nor reads past
	 * src_len, whatever the input; it returns the decoded length, which
	 * must be exactly what the caller expects. */
	ret = LZ4_decompress_safe(src, dst, (int)src_len, (int)dst_len);
	if (ret < 0 || (size_t)ret != dst_len)
		return -EILSEQ;
	return 0;
}

static long codec_lz4_decompress_prefix(const void *src, size_t src_len, void *dst,
					size_t prefix_len, size_t dst_len)
{
	int ret;

	if (prefix_len == 0 || prefix_len > dst_len)
		return -EINVAL;
	if (prefix_len == dst_len) {
		ret = codec_lz4_decompress(src, src_len, dst, dst_len);
		return ret < 0 ? ret : (long)dst_len;
	}
	if (src_len > INT_MAX || dst_len > INT_MAX)
		return -EILSEQ;
	/* Since lz4 1.9.0 the partial decoder stops at exactly prefix_len
	 * bytes (the last sequence cut short), and is as safe as
	 * LZ4_decompress_safe; it returns fewer when the block ends first. */
	ret = LZ4_decompress_safe_partial(src, dst, (int)src_len, (int)prefix_len, (int)dst_len);
	if (ret < 0 || (size_t)ret != prefix_len)
		return -EILSEQ;
	return ret;
}

const struct codec_ops codec_lz4 = {
	.version = CODEC_OPS_VERSION,
	.name = "lz4",
	.id = CODEC_LZ4,
	.compress = codec_lz4_compress,
	.decompress = codec_lz4_decompress,
	.decompress_prefix = codec_lz4_decompress_prefix,
};

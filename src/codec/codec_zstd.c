/* SPDX-License-Identifier: MIT */
/* The zstd codec (libzstd, one-shot API, level CODEC_ZSTD_LEVEL). */
#include "codec.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>

/* for the buffer-less decoder (ZSTD_decompressBegin, _Continue): in the
 * "static linking only" part of zstd.h, yet exported by the shared libzstd
 * (Debian 12's 1.5.4 checked), with the same prototypes since zstd 1.0 */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

/*
 * Each thread gets its own contexts on first use; a context is reused by
 * every later call of that thread, so the steady state allocates nothing
 * (a ZSTD_CCtx resizes its workspace only when the input size class grows,
 * or after it has been far too large for a long run of calls).
 *
 * The pointers live in a _Thread_local struct for a fast lookup; the
 * pthread key exists only so that its destructor frees the contexts when
 * the thread exits.  The main thread's contexts are not freed at exit(),
 * which is harmless (they stay reachable from its TLS).
 *
 * No locks are held, so fork needs no hooks: the child's copy of the
 * forking thread's contexts is valid; those of the other threads stay in
 * the child as dead memory (never freed, never used).
 */
struct codec_zstd_tls {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
};

static _Thread_local struct codec_zstd_tls codec_zstd_tls;
static pthread_key_t codec_zstd_key;
static pthread_once_t codec_zstd_once = PTHREAD_ONCE_INIT;
static int codec_zstd_key_err;

static void codec_zstd_tls_free(void *arg)
{
	struct codec_zstd_tls *t = arg;

	/* Runs in the exiting thread, so t is this thread's struct. */
	ZSTD_freeCCtx(t->cctx);
	ZSTD_freeDCtx(t->dctx);
	t->cctx = NULL;
	t->dctx = NULL;
}

static void codec_zstd_key_create(void)
{
	codec_zstd_key_err = pthread_key_create(&codec_zstd_key, codec_zstd_tls_free);
}

/* Arrange for this thread's contexts to be freed at its exit.  Called when
 * the thread creates its first context; setting the key again for the
 * second one is harmless. */
static int codec_zstd_tls_register(void)
{
	pthread_once(&codec_zstd_once, codec_zstd_key_create);
	if (codec_zstd_key_err)
		return -codec_zstd_key_err;
	return -pthread_setspecific(codec_zstd_key, &codec_zstd_tls);
}

/* @return 0 with this thread's compression context in *cctx, or -errno. */
static int codec_zstd_cctx(ZSTD_CCtx **cctx)
{
	struct codec_zstd_tls *t = &codec_zstd_tls;
	int ret;

	if (!t->cctx) {
		ret = codec_zstd_tls_register();
		if (ret < 0)
			return ret;
		t->cctx = ZSTD_createCCtx();
		if (!t->cctx)
			return -ENOMEM;
	}
	*cctx = t->cctx;
	return 0;
}

/* @return 0 with this thread's decompression context in *dctx, or -errno. */
static int codec_zstd_dctx(ZSTD_DCtx **dctx)
{
	struct codec_zstd_tls *t = &codec_zstd_tls;
	int ret;

	if (!t->dctx) {
		ret = codec_zstd_tls_register();
		if (ret < 0)
			return ret;
		t->dctx = ZSTD_createDCtx();
		if (!t->dctx)
			return -ENOMEM;
	}
	*dctx = t->dctx;
	return 0;
}

static long codec_zstd_compress(const void *src, size_t len, void *dst, size_t dst_cap)
{
	ZSTD_CCtx *cctx;
	size_t ret;
	int err;

	if (len == 0 || len > INT_MAX)
		return -EINVAL;
	err = codec_zstd_cctx(&cctx);
	if (err < 0)
		return err;
	ret = ZSTD_compressCCtx(cctx, dst, dst_cap, src, len, CODEC_ZSTD_LEVEL);
	return codec_zstd_compress_result(ret);
}

long codec_zstd_compress_result(size_t ret)
{
	if (!ZSTD_isError(ret))
		return (long)ret;
	switch (ZSTD_getErrorCode(ret)) {
	case ZSTD_error_dstSize_tooSmall:
		return 0;
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static int codec_zstd_decompress(const void *src, size_t src_len, void *dst, size_t dst_len)
{
	ZSTD_DCtx *dctx;
	size_t ret;
	int err;

	err = codec_zstd_dctx(&dctx);
	if (err < 0)
		return err;
	/* One-shot decompression writes only within [dst, dst + dst_len) and
	 * reports an error for any input that does not decode. */
	ret = ZSTD_decompressDCtx(dctx, dst, dst_len, src, src_len);
	if (ZSTD_isError(ret) || ret != dst_len)
		return -EILSEQ;
	return 0;
}

/*
 * zstd decodes whole blocks (up to 128 KiB of output each), so the prefix
 * ends at the end of the block that holds byte prefix_len - 1.  The
 * buffer-less decoder does one block per call, straight into dst, and is
 * simply not called again once the prefix is there.  (ZSTD_decompressStream
 * with an output of prefix_len bytes would stop there too, but it decodes
 * that block into a buffer of its own and copies out only the prefix.)
 * Our folios of up to 128 KiB are one block: for them this decodes it all.
 */
static long codec_zstd_decompress_prefix(const void *src, size_t src_len, void *dst,
					 size_t prefix_len, size_t dst_len)
{
	const char *in = src;
	size_t in_pos = 0, out_pos = 0, need, ret;
	ZSTD_DCtx *dctx;
	int err;

	if (prefix_len == 0 || prefix_len > dst_len)
		return -EINVAL;
	if (prefix_len == dst_len) {
		err = codec_zstd_decompress(src, src_len, dst, dst_len);
		return err < 0 ? err : (long)dst_len;
	}
	err = codec_zstd_dctx(&dctx);
	if (err < 0)
		return err;
	if (ZSTD_isError(ZSTD_decompressBegin(dctx)))
		return -EILSEQ;
	while (out_pos < prefix_len) {
		/* the size of the next part of the frame (header, block
		 * header, block); 0 at the frame's end */
		need = ZSTD_nextSrcSizeToDecompress(dctx);
		if (need == 0 && in_pos < src_len) {
			/* another frame follows, as decompress accepts */
			if (ZSTD_isError(ZSTD_decompressBegin(dctx)))
				return -EILSEQ;
			continue;
		}
		if (need == 0 || need > src_len - in_pos)
			return -EILSEQ;
		ret = ZSTD_decompressContinue(dctx, (char *)dst + out_pos, dst_len - out_pos,
					      in + in_pos, need);
		if (ZSTD_isError(ret))
			return -EILSEQ;
		in_pos += need;
		out_pos += ret;
	}
	return (long)out_pos;
}

const struct codec_ops codec_zstd = {
	.version = CODEC_OPS_VERSION,
	.name = "zstd",
	.id = CODEC_ZSTD,
	.compress = codec_zstd_compress,
	.decompress = codec_zstd_decompress,
	.decompress_prefix = codec_zstd_decompress_prefix,
};

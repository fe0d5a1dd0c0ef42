/* SPDX-License-Identifier: MIT */
/* Strong compression at a slow level, same formats (see codec_strong.h). */
#include "codec_strong.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include <lz4hc.h>
#include <zstd.h>

struct codec_strong {
	uint8_t id;     /* CODEC_LZ4 or CODEC_ZSTD */
	int level;
	void *lz4hc;    /* LZ4_sizeofStateHC() bytes */
	ZSTD_CCtx *zctx;
};

/* zstd level 1 is what the fast codec uses (CODEC_ZSTD_LEVEL): a strong
 * level starts above it.  LZ4HC starts at its own minimum. */
int codec_strong_levels(const struct codec_ops *codec, unsigned *lo, unsigned *hi)
{
	switch (codec ? codec->id : CODEC_NONE) {
	case CODEC_LZ4:
		*lo = LZ4HC_CLEVEL_MIN;
		*hi = LZ4HC_CLEVEL_MAX;
		return 0;
	case CODEC_ZSTD:
		*lo = CODEC_ZSTD_LEVEL + 1;
		*hi = (unsigned)ZSTD_maxCLevel();
		return 0;
	default:
		return -ENOTSUP;
	}
}

int codec_strong_create(const struct codec_ops *codec, unsigned level, struct codec_strong **out)
{
	struct codec_strong *cs;
	unsigned lo, hi;
	int rc;

	rc = codec_strong_levels(codec, &lo, &hi);
	if (rc)
		return rc;
	if (level < lo || level > hi)
		return -EINVAL;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->id = codec->id;
	cs->level = (int)level;
	if (cs->id == CODEC_LZ4)
		cs->lz4hc = malloc((size_t)LZ4_sizeofStateHC());
	else
		cs->zctx = ZSTD_createCCtx();
	if (!cs->lz4hc && !cs->zctx) {
		free(cs);
		return -ENOMEM;
	}
	*out = cs;
	return 0;
}

void codec_strong_destroy(struct codec_strong *cs)
{
	if (!cs)
		return;
	free(cs->lz4hc);
	ZSTD_freeCCtx(cs->zctx);
	free(cs);
}

long codec_strong_compress(struct codec_strong *cs, const void *src, size_t len, void *dst,
			   size_t dst_cap)
{
	size_t ret;

	if (len == 0 || len > INT_MAX)
		return -EINVAL;
	if (dst_cap > INT_MAX)
		dst_cap = INT_MAX;
	if (cs->id == CODEC_LZ4)
		/* 0 means "does not fit in dst_cap", which is our contract too */
		return LZ4_compress_HC_extStateHC(cs->lz4hc, src, dst, (int)len, (int)dst_cap,
						  cs->level);
	ret = ZSTD_compressCCtx(cs->zctx, dst, dst_cap, src, len, cs->level);
	return codec_zstd_compress_result(ret);
}

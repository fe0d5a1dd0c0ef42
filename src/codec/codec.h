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

#define CODEC_OPS_VERSION 1

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
 * compress: len must be > 0 and at most INT_MAX (-EINVAL otherwise).
 */
extern const struct codec_ops codec_lz4;
extern const struct codec_ops codec_zstd;
extern const struct codec_ops codec_none;

#define CODEC_ZSTD_LEVEL 1

/* @return the codec called name, or NULL. */
const struct codec_ops *codec_find(const char *name);
/* @return the codec with this id, or NULL. */
const struct codec_ops *codec_by_id(uint8_t id);
/* "lz4, zstd, none": for error messages. */
const char *codec_names(void);

#endif

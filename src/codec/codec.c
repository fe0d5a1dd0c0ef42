/* SPDX-License-Identifier: MIT */
/* The codec registry: find a codec by the name users give or by the id a
 * stored folio records. */
#include "codec.h"

#include <string.h>

static const struct codec_ops *const codec_table[] = {
	&codec_lz4,
	&codec_zstd,
	&codec_none,
};

#define CODEC_COUNT (sizeof(codec_table) / sizeof(codec_table[0]))

const struct codec_ops *codec_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < CODEC_COUNT; i++) {
		if (strcmp(codec_table[i]->name, name) == 0)
			return codec_table[i];
	}
	return NULL;
}

const struct codec_ops *codec_by_id(uint8_t id)
{
	for (size_t i = 0; i < CODEC_COUNT; i++) {
		if (codec_table[i]->id == id)
			return codec_table[i];
	}
	return NULL;
}

const char *codec_names(void)
{
	return "lz4, zstd, none";
}

/* SPDX-License-Identifier: MIT */
/* The store registry: from a URI ("ram", "ram:ARG") to a table of ops. */
#include "store.h"

#include <string.h>

/* Keep store_names() in step with this table (a test checks it). */
static const struct store_ops *const store_table[] = {
	&store_ram,
	&store_file,
	&store_tier,
	&store_redis,
	&store_rediss,
};

#define STORE_DEFAULT "ram"

const struct store_ops *store_find(const char *uri, const char **arg)
{
	const char *colon;
	size_t n;

	if (arg)
		*arg = NULL;
	if (!uri || !*uri)
		uri = STORE_DEFAULT;
	colon = strchr(uri, ':');
	n = colon ? (size_t)(colon - uri) : strlen(uri);
	for (size_t i = 0; i < sizeof(store_table) / sizeof(store_table[0]); i++) {
		const struct store_ops *ops = store_table[i];

		if (strlen(ops->name) != n || memcmp(ops->name, uri, n) != 0)
			continue;
		/* "ram:" means no options, like "ram": stores see NULL only. */
		if (arg && colon && colon[1])
			*arg = colon + 1;
		return ops;
	}
	return NULL;
}

const char *store_names(void)
{
	return "ram; file:DIR; ram,file:DIR[,ram=SIZE]; "
	       "redis://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][?timeout=MS]; "
	       "rediss://[[USER]:PASSWORD@]HOST:PORT[,...][?timeout=MS&ca=PATH&cert=PATH&key=PATH]";
}

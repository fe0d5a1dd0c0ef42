/* SPDX-License-Identifier: MIT */
/* The options every instance-opening command takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static int size_value(const char *flag, const char *v, size_t *out)
{
	if (uswap_parse_size(flag, v, out)) {
		fprintf(stderr, "uswap: %s\n", uswap_last_error());
		return -1;
	}
	return 1;
}

int tool_config_option(int argc, char **argv, int *i, struct uswap_config *cfg)
{
	const char *flag = argv[*i], *v;

	if (strcmp(flag, "--limit") && strcmp(flag, "--codec") && strcmp(flag, "--store") &&
	    strcmp(flag, "--folio") && strcmp(flag, "--store-limit") && strcmp(flag, "--threads"))
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "uswap: %s needs a value\n", flag);
		return -1;
	}
	v = argv[++*i];
	if (!strcmp(flag, "--limit"))
		return size_value(flag, v, &cfg->limit);
	if (!strcmp(flag, "--folio"))
		return size_value(flag, v, &cfg->folio_size);
	if (!strcmp(flag, "--store-limit"))
		return size_value(flag, v, &cfg->store_limit);
	if (!strcmp(flag, "--codec")) {
		cfg->codec = v;
		return 1;
	}
	if (!strcmp(flag, "--store")) {
		cfg->store = v;
		return 1;
	}
	{
		char *end;
		long n = strtol(v, &end, 10);

		if (!*v || *end || n < 1 || n > 64) {
			fprintf(stderr, "uswap: --threads \"%s\" is not allowed: use 1 to 64\n", v);
			return -1;
		}
		cfg->threads = (unsigned)n;
	}
	return 1;
}

void tool_config_help(void)
{
	printf("  --limit SIZE        resident budget (e.g. 256M); 0 = no limit\n"
	       "  --codec NAME        lz4 (default), zstd or none\n"
	       "  --store URI         ram (default), file:DIR, ram,file:DIR or\n"
	       "                      redis://HOST:PORT[,HOST:PORT...] (see uswap(1))\n"
	       "  --folio SIZE        folio size, a power of two from 4K to 2M (default 64K)\n"
	       "  --store-limit SIZE  memory the store may use; 0 = no limit\n"
	       "  --threads N         fault-handler threads, 1 to 64 (default: one per CPU,\n"
	       "                      at most 4)\n");
}

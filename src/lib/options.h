/* SPDX-License-Identifier: MIT */
/*
 * Options: the one table of uswap's settings, read from struct
 * uswap_config, from USWAP_* environment variables and from command-line
 * flags of the same names.  Each has a default and an allowed range, and a
 * bad value gets a message that names it and what is allowed.
 */
#ifndef USWAP_OPTIONS_H
#define USWAP_OPTIONS_H

#include <stddef.h>

#include "uswap.h"

struct uswap_params;

struct option_doc {
	const char *env;   /* USWAP_LIMIT */
	const char *flag;  /* --limit */
	const char *value; /* SIZE */
	const char *dflt;  /* "0 (no limit)" */
	const char *doc;
};

/* The table, ended by an entry with env NULL (for --help and man pages). */
extern const struct option_doc options_table[];

/*
 * Parse a size: a number of bytes with an optional K, M, G or T suffix
 * (powers of 1024; "KiB", "KB" and "k" are accepted too).
 * @what names the setting in the error message.
 * @return 0; -EINVAL with errmsg set.
 */
int options_parse_size(const char *what, const char *s, size_t *out);

/*
 * Parse a recompression setting: "off" or "0" (0), or a level 1..99 (the
 * codec's own range is checked by options_resolve).
 * @what names the setting in the error message.
 * @return 0; -EINVAL with errmsg set.
 */
int options_parse_recompress(const char *what, const char *s, unsigned *out);

/*
 * Fill cfg from the USWAP_* environment.  String fields point into the
 * environment.  @return 0; -EINVAL with errmsg naming the variable.
 */
int options_from_env(struct uswap_config *cfg);

/*
 * Validate cfg and resolve defaults into p.
 * @return 0; -EINVAL with errmsg naming the value and what is allowed.
 */
int options_resolve(const struct uswap_config *cfg, struct uswap_params *p);

#endif

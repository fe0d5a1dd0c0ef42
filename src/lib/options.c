/* SPDX-License-Identifier: MIT */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/codec_strong.h"
#include "core/errmsg.h"
#include "os/os.h"
#include "runtime/instance.h"
#include "store/store.h"

#define FOLIO_MIN (4u << 10)
#define FOLIO_MAX (2u << 20)
#define FOLIO_DEFAULT (64u << 10)
#define THREADS_MAX 64u
#define THREADS_DEFAULT_MAX 4u

const struct option_doc options_table[] = {
	{ "USWAP_LIMIT", "--limit", "SIZE", "0 (no limit)",
	  "resident budget for all managed memory; at least one folio" },
	{ "USWAP_CODEC", "--codec", "NAME", "lz4", "compressor: lz4, zstd or none" },
	{ "USWAP_STORE", "--store", "URI", "ram",
	  "where evicted folios go: ram, file:DIR, ram,file:DIR[,ram=SIZE], "
	  "redis://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][?timeout=MS], "
	  "rediss://...[?timeout=MS&ca=PATH&cert=PATH&key=PATH] (TLS) (docs/STORES.md)" },
	{ "USWAP_FOLIO", "--folio", "SIZE", "64K",
	  "folio size: a power of two from 4K to 2M" },
	{ "USWAP_STORE_LIMIT", "--store-limit", "SIZE", "0 (no limit)",
	  "memory the store may use; eviction stops when it is full" },
	{ "USWAP_THREADS", "--threads", "N", "0 (one per CPU, at most 4)",
	  "fault-handler threads, 1 to 64" },
	{ "USWAP_PIN", "--pin", "0|1", "1", "pin each handler thread to a CPU" },
	{ "USWAP_SWAPCACHE", "--swapcache", "0|1", "1",
	  "keep the stored copy of a folio swapped in until it is written" },
	{ "USWAP_ADAPT", "--adapt", "0|1", "1",
	  "when a region's faults look random, bring in only the faulting page" },
	{ "USWAP_RECOMPRESS", "--recompress", "off|LEVEL", "off",
	  "recompress folios that stay stored at a strong level while the background "
	  "thread is idle: lz4 3 to 12 (LZ4HC), zstd 2 to 22; ram store only" },
	{ NULL, NULL, NULL, NULL, NULL },
};

int options_parse_size(const char *what, const char *s, size_t *out)
{
	const char *p = s;
	unsigned long long v = 0, mult = 1;
	int shift = 0;

	if (!s || !*s)
		return errmsg_set(-EINVAL, "%s is empty: give a size such as 512M, 64K or 4096", what);
	if (!isdigit((unsigned char)*p))
		goto bad;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p++ - '0');

		if (v > (ULLONG_MAX - d) / 10)
			goto too_big;
		v = v * 10 + d;
	}
	switch (*p) {
	case 'k': case 'K': shift = 10; p++; break;
	case 'm': case 'M': shift = 20; p++; break;
	case 'g': case 'G': shift = 30; p++; break;
	case 't': case 'T': shift = 40; p++; break;
	default: break;
	}
	if (shift && (!strcmp(p, "iB") || !strcmp(p, "B")))
		p += strlen(p);
	else if (!shift && (!strcmp(p, "B")))
		p++;
	if (*p)
		goto bad;
	mult = 1ull << shift;
	if (v > ULLONG_MAX / mult || v * mult > SIZE_MAX)
		goto too_big;
	*out = (size_t)(v * mult);
	return 0;
bad:
	return errmsg_set(-EINVAL,
			  "%s \"%s\" is not a size: use a number of bytes with an optional "
			  "K, M, G or T suffix (e.g. 512M)",
			  what, s);
too_big:
	return errmsg_set(-EINVAL, "%s \"%s\" is too large", what, s);
}

static int parse_uint(const char *what, const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi || s[0] == '-')
		return errmsg_set(-EINVAL, "%s \"%s\" is not allowed: use a whole number from %u to %u",
				  what, s, lo, hi);
	*out = (unsigned)v;
	return 0;
}

int options_parse_recompress(const char *what, const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (s && (!strcmp(s, "off") || !strcmp(s, "0"))) {
		*out = 0;
		return 0;
	}
	errno = 0;
	v = s && isdigit((unsigned char)*s) ? strtoul(s, &end, 10) : 0;
	if (!v || *end || errno || v > 99)
		return errmsg_set(-EINVAL,
				  "%s \"%s\" is not allowed: use off, or a compression level "
				  "(lz4: 3 to 12, zstd: 2 to 22)",
				  what, s ? s : "");
	*out = (unsigned)v;
	return 0;
}

/* The recompression level must be one of the codec's strong levels, and
 * the store the ram store (see runtime/recompress.c for why). */
static int recompress_resolve(const struct uswap_config *cfg, struct uswap_params *p)
{
	unsigned lo, hi;

	p->recompress = cfg->recompress;
	if (!p->recompress)
		return 0;
	if (codec_strong_levels(p->codec, &lo, &hi))
		return errmsg_set(-EINVAL,
				  "recompress %u is not allowed with codec %s: recompression "
				  "needs codec lz4 or zstd (or recompress off)",
				  p->recompress, p->codec->name);
	if (p->recompress < lo || p->recompress > hi)
		return errmsg_set(-EINVAL,
				  "recompress level %u is not allowed with codec %s: use off (0) "
				  "or a level from %u to %u",
				  p->recompress, p->codec->name, lo, hi);
	if (p->store_ops != &store_ram)
		return errmsg_set(-EINVAL,
				  "recompress is not supported with store \"%s\": only with the "
				  "ram store (or recompress off)",
				  p->store_uri);
	return 0;
}

static bool folio_size_allowed(size_t n)
{
	return n >= FOLIO_MIN && n <= FOLIO_MAX && !(n & (n - 1));
}

/* USWAP_* variables that are not options of an instance: the shim's own,
 * and the mark `uswap run` leaves for its program once it has checked the
 * environment: the USWAP_* names it saw, comma-separated.  What it did not
 * know it has named; the shim in the program and in every program that
 * one runs names only what was not there then. */
#define ENV_CHECKED "USWAP_ENV_CHECKED"
static const char *const env_not_options[] = { "USWAP_MIN_MAP", ENV_CHECKED, NULL };

static bool name_is_n(const char *known, size_t len, const char *name, size_t n)
{
	return len == n && !memcmp(known, name, n);
}

static bool name_is(const char *known, const char *name, size_t n)
{
	return name_is_n(known, strlen(known), name, n);
}

static bool env_name_known(const char *name, size_t n)
{
	size_t i;

	for (i = 0; options_table[i].env; i++)
		if (name_is(options_table[i].env, name, n))
			return true;
	for (i = 0; env_not_options[i]; i++)
		if (name_is(env_not_options[i], name, n))
			return true;
	return false;
}

/* Is name (n bytes) one of the comma-separated names of list (may be NULL)? */
static bool env_name_listed(const char *list, const char *name, size_t n)
{
	while (list && *list) {
		size_t len = strcspn(list, ",");

		if (name_is_n(list, len, name, n))
			return true;
		list += len + (list[len] == ',');
	}
	return false;
}

/*
 * A misspelt variable (USWAP_LIMT) would leave its option at the default,
 * e.g. no budget at all, without a word: each USWAP_* name uswap does not
 * know is said once per process.  A warning, not an error: the environment
 * is inherited, and a newer uswap's variable reaching an older shim should
 * not stop an unmodified program from starting.
 */
static void env_warn_unknown(void)
{
	extern char **environ;
	static int warned;
	const char *checked;
	char **e;

	if (__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		return;
	checked = getenv(ENV_CHECKED);
	for (e = environ; e && *e; e++) {
		size_t n = strcspn(*e, "=");

		if (strncmp(*e, "USWAP_", 6) || env_name_known(*e, n) ||
		    env_name_listed(checked, *e, n))
			continue;
		fprintf(stderr, "uswap: environment variable %.*s is not one of uswap's, ignored "
				"(`uswap run --help` lists them)\n",
			(int)n, *e);
	}
}

int options_from_env(struct uswap_config *cfg)
{
	const char *v;
	size_t folio;
	unsigned pin = 1;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	env_warn_unknown();
	if ((v = getenv("USWAP_LIMIT")) && (rc = options_parse_size("USWAP_LIMIT", v, &cfg->limit)))
		return rc;
	if ((v = getenv("USWAP_FOLIO")) &&
	    (rc = options_parse_size("USWAP_FOLIO", v, &cfg->folio_size)))
		return rc;
	if (v && !folio_size_allowed(cfg->folio_size))
		return errmsg_set(-EINVAL,
				  "USWAP_FOLIO \"%s\" (%zu bytes) is not allowed: use a power of two "
				  "from 4K to 2M",
				  v, cfg->folio_size);
	/* (options_resolve checks this too, naming the config's field) */
	folio = cfg->folio_size ? cfg->folio_size : FOLIO_DEFAULT;
	if (cfg->limit && cfg->limit < folio)
		return errmsg_set(-EINVAL,
				  "USWAP_LIMIT \"%s\" (%zu bytes) is below one folio (%zu bytes): use "
				  "0 for no limit, or at least the folio size",
				  getenv("USWAP_LIMIT"), cfg->limit, folio);
	if ((v = getenv("USWAP_STORE_LIMIT")) &&
	    (rc = options_parse_size("USWAP_STORE_LIMIT", v, &cfg->store_limit)))
		return rc;
	if ((v = getenv("USWAP_THREADS")) &&
	    (rc = parse_uint("USWAP_THREADS", v, 1, THREADS_MAX, &cfg->threads)))
		return rc;
	if ((v = getenv("USWAP_PIN"))) {
		if ((rc = parse_uint("USWAP_PIN", v, 0, 1, &pin)))
			return rc;
		if (!pin)
			cfg->flags |= USWAP_CFG_NO_PIN;
	}
	if ((v = getenv("USWAP_SWAPCACHE"))) {
		unsigned on = 1;

		if ((rc = parse_uint("USWAP_SWAPCACHE", v, 0, 1, &on)))
			return rc;
		if (!on)
			cfg->flags |= USWAP_CFG_NO_SWAPCACHE;
	}
	if ((v = getenv("USWAP_ADAPT"))) {
		unsigned on = 1;

		if ((rc = parse_uint("USWAP_ADAPT", v, 0, 1, &on)))
			return rc;
		if (!on)
			cfg->flags |= USWAP_CFG_NO_ADAPT;
	}
	if ((v = getenv("USWAP_RECOMPRESS")) && (rc = options_parse_recompress("USWAP_RECOMPRESS", v,
										  &cfg->recompress)))
		return rc;
	cfg->codec = getenv("USWAP_CODEC");
	if (cfg->codec && !codec_find(cfg->codec))
		return errmsg_set(-EINVAL, "USWAP_CODEC \"%s\" is unknown: use one of %s", cfg->codec,
				  codec_names());
	cfg->store = getenv("USWAP_STORE");
	if (cfg->store && *cfg->store && !store_find(cfg->store, NULL))
		return errmsg_set(-EINVAL, "USWAP_STORE \"%s\" is unknown: use one of %s", cfg->store,
				  store_names());
	return 0;
}

int options_resolve(const struct uswap_config *cfg, struct uswap_params *p)
{
	const char *store = cfg->store ? cfg->store : "ram";
	const char *codec = cfg->codec ? cfg->codec : "lz4";

	memset(p, 0, sizeof(*p));
	p->folio_size = cfg->folio_size ? cfg->folio_size : FOLIO_DEFAULT;
	if (!folio_size_allowed(p->folio_size))
		return errmsg_set(-EINVAL,
				  "folio size %zu is not allowed: use a power of two from 4096 (4K) "
				  "to 2097152 (2M)",
				  cfg->folio_size);
	p->folio_order = (unsigned)__builtin_ctzl(p->folio_size) - OS_PAGE_SHIFT;
	p->limit = cfg->limit;
	if (p->limit && p->limit < p->folio_size)
		return errmsg_set(-EINVAL,
				  "limit %zu is below one folio (%zu bytes): use 0 for no limit, or "
				  "at least the folio size",
				  p->limit, p->folio_size);
	p->store_limit = cfg->store_limit;
	p->codec = codec_find(codec);
	if (!p->codec)
		return errmsg_set(-EINVAL, "codec \"%s\" is unknown: use one of %s", codec,
				  codec_names());
	if (strlen(store) >= sizeof(p->store_uri))
		return errmsg_set(-EINVAL, "store \"%.40s...\" is too long (at most %zu bytes)",
				  store, sizeof(p->store_uri) - 1);
	strcpy(p->store_uri, store);
	p->store_ops = store_find(p->store_uri, &p->store_arg);
	if (!p->store_ops)
		return errmsg_set(-EINVAL, "store \"%s\" is unknown: use one of %s", store,
				  store_names());
	if (cfg->threads > THREADS_MAX)
		return errmsg_set(-EINVAL, "threads %u is not allowed: use 0 (one per CPU) to %u",
				  cfg->threads, THREADS_MAX);
	/* Every handler waiting on the userfaultfd is woken by every fault
	 * (docs/FAULT_PATH.md: about 2 us of CPU each), so by default one per
	 * CPU, but no more than THREADS_DEFAULT_MAX. */
	p->threads = cfg->threads ? cfg->threads : (unsigned)os_cpu_count();
	if (!cfg->threads && p->threads > THREADS_DEFAULT_MAX)
		p->threads = THREADS_DEFAULT_MAX;
	if (cfg->flags & ~(USWAP_CFG_NO_PIN | USWAP_CFG_NO_SWAPCACHE | USWAP_CFG_NO_ADAPT))
		return errmsg_set(-EINVAL, "config flags 0x%x are unknown: allowed are 0x%x", cfg->flags,
				  USWAP_CFG_NO_PIN | USWAP_CFG_NO_SWAPCACHE | USWAP_CFG_NO_ADAPT);
	p->flags = cfg->flags;
	return recompress_resolve(cfg, p);
}

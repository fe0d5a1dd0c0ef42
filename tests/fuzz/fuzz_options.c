/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the option parsers (lib/options.c) and the store URI
 * (store_find).  The input is cut at newlines into strings.
 *
 *  - options_parse_size: compared with a reference parser written here
 *    from the documented grammar (digits, then K/M/G/T with an optional
 *    "B" or "iB", or a lone "B"), same value or the same refusal;
 *    a refusal names the setting in its message.
 *  - USWAP_* variables set to the strings: options_from_env either fills
 *    the config or refuses with a message that names the variable.
 *  - options_resolve on a config made of the strings: accepted values are
 *    in their documented ranges (recompression levels per codec, the ram
 *    store only), refusals have a message.
 *  - store_find: a store is found only by its name, before any colon.
 *  - redis_uri_parse (redis:// and rediss://, no network): an accepted URI
 *    has 1 to 16 servers with ports 1 to 65535, a timeout in range, TLS
 *    files only for rediss and a client key exactly with a certificate; a
 *    refusal is -EINVAL with a message saying what is allowed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errmsg.h"
#include "lib/options.h"
#include "runtime/instance.h"
#include "store/redis_uri.h"
#include "store/store.h"

static void fail(const char *what, const char *s)
{
	fprintf(stderr, "fuzz_options: %s (input \"%s\")\n", what, s);
	abort();
}

/* The documented grammar, written independently.  @return accepted. */
static bool ref_parse_size(const char *s, size_t *out)
{
	unsigned long long v = 0;
	unsigned shift = 0;
	size_t i = 0;

	if (s[0] < '0' || s[0] > '9')
		return false;
	for (; s[i] >= '0' && s[i] <= '9'; i++)
		if (__builtin_mul_overflow(v, 10ull, &v) ||
		    __builtin_add_overflow(v, (unsigned long long)(s[i] - '0'), &v))
			return false;
	if (s[i] && strchr("kKmMgGtT", s[i])) {
		shift = s[i] == 'k' || s[i] == 'K' ? 10 : s[i] == 'm' || s[i] == 'M' ? 20
			: s[i] == 'g' || s[i] == 'G' ? 30 : 40;
		i++;
		if (!strcmp(s + i, "B") || !strcmp(s + i, "iB"))
			i = strlen(s);
	} else if (!strcmp(s + i, "B")) {
		i++;
	}
	if (s[i])
		return false;
	if (shift && v > (~0ull >> shift))
		return false;
	v <<= shift;
	if (v > SIZE_MAX)
		return false;
	*out = (size_t)v;
	return true;
}

static void check_size(const char *s)
{
	size_t got = 0, want = 0;
	int rc = options_parse_size("USWAP_FUZZ_SIZE", s, &got);
	bool ok = ref_parse_size(s, &want);

	if ((rc == 0) != ok)
		fail(ok ? "a valid size was refused" : "an invalid size was accepted", s);
	if (rc == 0 && got != want)
		fail("a size parsed to the wrong value", s);
	if (rc && (rc != -EINVAL || !strstr(errmsg_get(), "USWAP_FUZZ_SIZE")))
		fail("a refusal without -EINVAL and a message naming the setting", s);
}

static const char *const env_names[] = {
	"USWAP_LIMIT", "USWAP_FOLIO", "USWAP_STORE_LIMIT", "USWAP_THREADS",
	"USWAP_PIN",   "USWAP_SWAPCACHE", "USWAP_CODEC", "USWAP_STORE",
	"USWAP_ADAPT", "USWAP_RECOMPRESS",
};
#define NENV (sizeof(env_names) / sizeof(env_names[0]))

static void check_env(char **str, unsigned n)
{
	struct uswap_config cfg;
	unsigned i;
	int rc;

	for (i = 0; i < NENV; i++) {
		if (i < n && str[i][0] != '\x01')
			setenv(env_names[i], str[i], 1);
		else
			unsetenv(env_names[i]);
	}
	rc = options_from_env(&cfg);
	if (rc && (rc != -EINVAL || !strstr(errmsg_get(), "USWAP_")))
		fail("an environment refused without a message naming the variable",
		     n ? str[0] : "");
	if (rc == 0) {
		if (cfg.threads > 64)
			fail("USWAP_THREADS accepted out of range", n > 3 ? str[3] : "");
		if (cfg.flags & ~(USWAP_CFG_NO_PIN | USWAP_CFG_NO_SWAPCACHE | USWAP_CFG_NO_ADAPT))
			fail("unknown flags from the environment", "");
		/* a level is checked against the codec by options_resolve;
		 * here only: off, or a number of at most two digits */
		if (cfg.recompress > 99)
			fail("USWAP_RECOMPRESS accepted out of range", n > 9 ? str[9] : "");
	}
	for (i = 0; i < NENV; i++)
		unsetenv(env_names[i]);
}

static void check_resolve(const uint8_t *data, size_t size, char **str, unsigned n)
{
	struct uswap_config cfg = { 0 };
	struct uswap_params p;
	uint64_t w[4] = { 0 };
	int rc;

	memcpy(w, data, size < sizeof(w) ? size : sizeof(w));
	cfg.limit = (size_t)w[0];
	cfg.folio_size = (size_t)(w[1] & 1 ? w[1] >> 1 : 4096ull << (w[1] >> 1) % 12);
	cfg.store_limit = (size_t)w[2];
	cfg.threads = (unsigned)(w[3] % 80);
	cfg.flags = (unsigned)(w[3] >> 32) & 0xf;
	cfg.recompress = (unsigned)(w[3] >> 40) % 32 * ((w[3] >> 45) % 4 == 0); /* mostly off */
	cfg.codec = n > 0 && str[0][0] != '\x01' ? str[0] : NULL;
	cfg.store = n > 1 && str[1][0] != '\x01' ? str[1] : NULL;
	rc = options_resolve(&cfg, &p);
	if (rc) {
		if (rc != -EINVAL || !errmsg_get()[0])
			fail("options_resolve refused without -EINVAL and a message", "");
		return;
	}
	if (p.folio_size < 4096 || p.folio_size > (2u << 20) || (p.folio_size & (p.folio_size - 1)))
		fail("a folio size out of range accepted", "");
	if ((size_t)4096 << p.folio_order != p.folio_size)
		fail("folio order does not match the size", "");
	if (p.limit && p.limit < p.folio_size)
		fail("a limit below one folio accepted", "");
	if (!p.codec || !p.store_ops || p.threads < 1 || p.threads > 64)
		fail("a resolved config without codec, store or threads in range", "");
	if (cfg.codec && strcmp(cfg.codec, p.codec->name))
		fail("a codec resolved under another name", cfg.codec);
	if (p.recompress) {
		/* the documented levels: lz4 3 to 12, zstd 2 to 22, ram store */
		unsigned lo = !strcmp(p.codec->name, "lz4") ? 3 : 2,
			 hi = !strcmp(p.codec->name, "lz4") ? 12 : 22;

		if (strcmp(p.codec->name, "lz4") && strcmp(p.codec->name, "zstd"))
			fail("recompression accepted with a codec that has no strong level",
			     p.codec->name);
		if (p.recompress < lo || p.recompress > hi)
			fail("a recompression level out of the codec's range accepted", p.codec->name);
		if (strcmp(p.store_ops->name, "ram"))
			fail("recompression accepted with a store other than ram", p.store_ops->name);
	}
}

static void check_store_uri(const char *uri)
{
	const char *arg = (const char *)1;
	const struct store_ops *ops = store_find(uri, &arg);
	size_t name_len = strcspn(uri, ":");

	if (!ops) {
		if (arg)
			fail("an unknown store with an arg", uri);
		return;
	}
	if (uri[0] && (strlen(ops->name) != name_len || strncmp(uri, ops->name, name_len)))
		fail("a store found under another name", uri);
	if (uri[name_len] == ':' && uri[name_len + 1] && arg != uri + name_len + 1)
		fail("the store arg is not the text after the colon", uri);
}

static void check_redis_uri(const char *s, bool tls)
{
	static struct redis_uri u; /* 6 KiB: not on the fuzzer's stack */
	int rc = redis_uri_parse(&u, s, tls);

	if (rc) {
		if (rc != -EINVAL || !strstr(errmsg_get(), "allowed"))
			fail("a redis URI refused without -EINVAL and the allowed form", s);
		return;
	}
	if (strncmp(s, "//", 2) || u.tls != tls)
		fail("a redis URI accepted without \"//\"", s);
	if (u.nservers < 1 || u.nservers > REDIS_SHARDS_MAX)
		fail("a redis URI accepted with a wrong number of servers", s);
	for (unsigned i = 0; i < u.nservers; i++)
		if (!u.server[i].host[0] || u.server[i].port < 1 || u.server[i].port > 65535)
			fail("a redis server accepted without a host or with a bad port", s);
	if (u.timeout_ms < 1 || u.timeout_ms > REDIS_TIMEOUT_MAX_MS)
		fail("a redis timeout accepted out of range", s);
	if (!tls && (u.ca[0] || u.cert[0] || u.key[0]))
		fail("TLS files accepted for redis://", s);
	if (!u.cert[0] != !u.key[0])
		fail("a client certificate without its key (or the reverse) accepted", s);
	if (u.password[0] && !strchr(s, '@'))
		fail("a password without '@'", s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *str[16];
	unsigned n = 0, i;
	char *s;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (s = buf; n < 16;) {
		str[n++] = s;
		s = strchr(s, '\n');
		if (!s)
			break;
		*s++ = '\0';
	}
	for (i = 0; i < n; i++) {
		check_size(str[i]);
		check_store_uri(str[i]);
		check_redis_uri(str[i], false);
		check_redis_uri(str[i], true);
	}
	check_env(str, n);
	check_resolve(data, size, str, n);
	free(buf);
	return 0;
}

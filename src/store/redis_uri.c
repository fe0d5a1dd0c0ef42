/* SPDX-License-Identifier: MIT */
/* The redis store's URI: see redis_uri.h. */
#include "redis_uri.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/errmsg.h"

#define FORM(u) ((u)->tls ? REDISS_FORM : REDIS_FORM)
#define SCHEME(u) ((u)->tls ? "rediss" : "redis")
/* Quoted values are cut to this many bytes, so that the message keeps its
 * end: what is allowed. */
#define QUOTE_MAX 80
#define QUOTE_LEN(n) ((int)((n) < QUOTE_MAX ? (n) : QUOTE_MAX))

static int parse_port(const char *s, size_t n, int *port)
{
	char buf[8];
	char *end;
	long v;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	v = strtol(buf, &end, 10);
	if (*end || v < 1 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

/* "[USER]:PASSWORD" in [p, at) */
static int parse_credentials(struct redis_uri *u, const char *p, const char *at)
{
	const char *colon = memchr(p, ':', (size_t)(at - p));

	if (!colon || (size_t)(colon - p) >= sizeof(u->user) ||
	    (size_t)(at - colon - 1) >= sizeof(u->password))
		return errmsg_set(-EINVAL,
				  "store %s: the credentials before '@' must be "
				  "[USER]:PASSWORD, at most %zu and %zu bytes (allowed: %s)",
				  SCHEME(u), sizeof(u->user) - 1, sizeof(u->password) - 1, FORM(u));
	memcpy(u->user, p, (size_t)(colon - p));
	memcpy(u->password, colon + 1, (size_t)(at - colon - 1));
	return 0;
}

/* "HOST:PORT[,HOST:PORT...]" in [p, end) */
static int parse_servers(struct redis_uri *u, const char *p, const char *end)
{
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;
		const char *colon = NULL;
		struct redis_server_addr *a;

		for (const char *c = p; c < stop; c++)
			if (*c == ':')
				colon = c;
		if (u->nservers == REDIS_SHARDS_MAX)
			return errmsg_set(-EINVAL, "store %s: more than %u servers (allowed: %s)",
					  SCHEME(u), REDIS_SHARDS_MAX, FORM(u));
		a = &u->server[u->nservers];
		if (!colon || colon == p || (size_t)(colon - p) >= sizeof(a->host) ||
		    parse_port(colon + 1, (size_t)(stop - colon - 1), &a->port))
			return errmsg_set(-EINVAL,
					  "store %s: \"%.*s\" is not HOST:PORT (a port from 1 to "
					  "65535; allowed: %s)",
					  SCHEME(u), QUOTE_LEN((size_t)(stop - p)), p, FORM(u));
		memcpy(a->host, p, (size_t)(colon - p));
		u->nservers++;
		p = comma ? comma + 1 : end;
	}
	if (!u->nservers)
		return errmsg_set(-EINVAL, "store %s: no server given (allowed: %s)", SCHEME(u),
				  FORM(u));
	return 0;
}

static int parse_timeout(struct redis_uri *u, const char *v, size_t n)
{
	char buf[16], *e;
	unsigned long ms;

	if (n == 0 || n >= sizeof(buf) || v[0] < '0' || v[0] > '9')
		goto err_bad;
	memcpy(buf, v, n);
	buf[n] = 0;
	ms = strtoul(buf, &e, 10);
	if (*e || ms < 1 || ms > REDIS_TIMEOUT_MAX_MS)
		goto err_bad;
	u->timeout_ms = (unsigned)ms;
	return 0;
err_bad:
	return errmsg_set(-EINVAL,
			  "store %s: timeout \"%.*s\" is not allowed (milliseconds, 1 to %u)",
			  SCHEME(u), QUOTE_LEN(n), v, REDIS_TIMEOUT_MAX_MS);
}

/* A file name option: ca, cert, key. */
static int parse_path(struct redis_uri *u, const char *name, char *dst, size_t cap, const char *v,
		      size_t n)
{
	if (!u->tls)
		return errmsg_set(-EINVAL,
				  "store redis: option \"%s\" is for TLS only: use "
				  "rediss:// (allowed for redis://: ?timeout=MS)",
				  name);
	if (n == 0 || n >= cap)
		return errmsg_set(-EINVAL,
				  "store rediss: %s=\"%.*s\" is not allowed (a file name "
				  "of 1 to %zu bytes)",
				  name, QUOTE_LEN(n), v, cap - 1);
	memcpy(dst, v, n);
	dst[n] = 0;
	return 0;
}

/* "name=value[&name=value...]" in [q, end) */
static int parse_options(struct redis_uri *u, const char *q, const char *end)
{
	unsigned seen = 0;

	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(stop - q));
		size_t nlen = eq ? (size_t)(eq - q) : 0;
		const char *v = eq ? eq + 1 : stop;
		size_t vlen = (size_t)(stop - v);
		static const char *const names[] = {"timeout", "ca", "cert", "key"};
		unsigned i;
		int rc;

		for (i = 0; i < 4; i++)
			if (eq && strlen(names[i]) == nlen && !memcmp(q, names[i], nlen))
				break;
		if (i == 4)
			return errmsg_set(-EINVAL,
					  "store %s: unknown option \"%.*s\" (allowed: %s)",
					  SCHEME(u), QUOTE_LEN((size_t)(stop - q)), q,
					  u->tls ? "timeout=MS, ca=PATH, cert=PATH, key=PATH, "
						   "joined by '&'"
						 : "?timeout=MS");
		if (seen & 1u << i)
			return errmsg_set(-EINVAL,
					  "store %s: option \"%s\" given twice (allowed: "
					  "each at most once)",
					  SCHEME(u), names[i]);
		seen |= 1u << i;
		if (i == 0)
			rc = parse_timeout(u, v, vlen);
		else if (i == 1)
			rc = parse_path(u, "ca", u->ca, sizeof(u->ca), v, vlen);
		else if (i == 2)
			rc = parse_path(u, "cert", u->cert, sizeof(u->cert), v, vlen);
		else
			rc = parse_path(u, "key", u->key, sizeof(u->key), v, vlen);
		if (rc)
			return rc;
		q = amp ? amp + 1 : end;
	}
	if (!u->cert[0] != !u->key[0])
		return errmsg_set(-EINVAL,
				  "store rediss: %s without %s (allowed: a client "
				  "certificate is cert=PATH&key=PATH, both or neither)",
				  u->cert[0] ? "cert" : "key", u->cert[0] ? "key" : "cert");
	return 0;
}

int redis_uri_parse(struct redis_uri *u, const char *arg, bool tls)
{
	const char *p, *at, *q, *end;
	int rc;

	memset(u, 0, sizeof(*u));
	u->tls = tls;
	u->timeout_ms = REDIS_TIMEOUT_MS;
	if (!arg || strncmp(arg, "//", 2))
		return errmsg_set(-EINVAL, "store %s: \"%s:%.80s\" is not a %s URI (allowed: %s)",
				  SCHEME(u), SCHEME(u), arg ? arg : "", SCHEME(u), FORM(u));
	p = arg + 2;
	q = strchr(p, '?');
	end = q ? q : p + strlen(p);
	at = memchr(p, '@', (size_t)(end - p));
	if (at) {
		rc = parse_credentials(u, p, at);
		if (rc)
			return rc;
		p = at + 1;
	}
	rc = parse_servers(u, p, end);
	if (rc == 0 && q)
		rc = parse_options(u, q + 1, q + strlen(q));
	return rc;
}

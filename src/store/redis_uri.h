/* SPDX-License-Identifier: MIT */
/*
 * The redis store's URI, parsed (no network: the fuzz target calls it):
 *
 *   redis://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][?timeout=MS]
 *   rediss://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]
 *            [?timeout=MS&ca=PATH&cert=PATH&key=PATH]
 *
 * rediss is Redis over TLS.  ca: the PEM file of the certificate
 * authorities that vouch for the servers (default: the system's, as
 * /etc/ssl/certs); cert and key: a client certificate chain and its private
 * key (PEM, not encrypted), for servers that ask for one (tls-auth-clients);
 * both or neither.  Options are separated by '&', each at most once.
 */
#ifndef USWAP_REDIS_URI_H
#define USWAP_REDIS_URI_H

#include <stdbool.h>

#define REDIS_SHARDS_MAX 16u
#define REDIS_TIMEOUT_MS 2000u
#define REDIS_TIMEOUT_MAX_MS 600000u

#define REDIS_FORM "redis://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][?timeout=MS]"
#define REDISS_FORM                                                                                \
	"rediss://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][?timeout=MS&ca=PATH&cert=PATH&key="   \
	"PATH]"

struct redis_uri {
	bool tls;
	unsigned nservers;
	struct redis_server_addr {
		char host[256];
		int port;
	} server[REDIS_SHARDS_MAX];
	char user[128], password[256];
	unsigned timeout_ms;
	char ca[256], cert[256], key[256]; /* "" when not given */
};

/*
 * Parse what follows "redis:" (tls false) or "rediss:" (tls true) into u,
 * which is cleared first.
 * @return 0; -EINVAL with a message (errmsg) naming the bad part and the
 *         allowed form.
 */
int redis_uri_parse(struct redis_uri *u, const char *arg, bool tls);

#endif

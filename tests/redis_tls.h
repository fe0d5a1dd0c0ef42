/* SPDX-License-Identifier: MIT */
/*
 * TLS for the rediss store's tests: certificates made by the test with the
 * openssl command (Debian package openssl; a missing one fails the test
 * loudly), and redis-server started with a TLS port beside its plain one
 * (the test's own commands, redis_test_cmd, use the plain port).
 *
 * In DIR: ca.crt (the test's CA), server.crt/key (signed by it, naming
 * IP 127.0.0.1 and DNS localhost, nothing else), client.crt/key (signed by
 * it), other-ca.crt (a CA that signed nothing here: "the wrong CA").
 */
#ifndef USWAP_REDIS_TLS_H
#define USWAP_REDIS_TLS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_server.h"

/* @return 0; -1 with the reason on stderr */
static int redis_tls_certs(const char *dir)
{
	char cmd[2048];
	int rc;

	/* P-256 keys: quick to make on a loaded machine */
	snprintf(cmd, sizeof(cmd),
		 "{ set -e; cd '%s'; "
		 "command -v openssl >/dev/null || "
		 "{ echo 'the TLS tests need the openssl command (Debian package openssl)'; exit "
		 "1; }; "
		 "key='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
		 "for ca in ca other-ca; do "
		 "  openssl req -x509 $key -keyout $ca.key -out $ca.crt -days 2 -subj "
		 "/CN=uswap-test-$ca "
		 "    -addext basicConstraints=critical,CA:TRUE -addext "
		 "keyUsage=keyCertSign,cRLSign; "
		 "done; "
		 "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext; "
		 "printf 'extendedKeyUsage=clientAuth\\n' > client.ext; "
		 "for who in server client; do "
		 "  openssl req $key -keyout $who.key -out $who.csr -subj /CN=uswap-test-$who; "
		 "  openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		 "    -out $who.crt -days 2 -extfile $who.ext; "
		 "done; }",
		 dir);
	/* quiet, but the output is shown when it fails */
	snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " >'%s/openssl.log' 2>&1", dir);
	rc = system(cmd);
	if (rc != 0) {
		fprintf(stderr, "making the test certificates in %s failed (status %#x):\n", dir,
			rc);
		snprintf(cmd, sizeof(cmd), "cat '%s/openssl.log' >&2", dir);
		if (system(cmd))
			fprintf(stderr, "(no log)\n");
	}
	return rc == 0 ? 0 : -1;
}

/* A redis-server with a TLS port: srv.port is the plain one. */
struct redis_tls_server {
	struct redis_server srv;
	int tls_port;
	char tls_port_s[8], cert[300], key[300], ca[300];
	const char *args[16];
};

/*
 * Start it with the certificates of dir, listening on 127.0.0.1 and
 * 127.0.0.2 (the certificate names only the first); client_certs: clients
 * must show a certificate of the test's CA (tls-auth-clients yes).
 * @return 0; -1 with the reason on stderr
 */
static int redis_tls_start(struct redis_tls_server *t, const char *dir, const char *password,
			   bool client_certs)
{
	unsigned n = 0;

	if (!t->tls_port)
		t->tls_port = redis_free_port();
	snprintf(t->tls_port_s, sizeof(t->tls_port_s), "%d", t->tls_port);
	snprintf(t->cert, sizeof(t->cert), "%s/server.crt", dir);
	snprintf(t->key, sizeof(t->key), "%s/server.key", dir);
	snprintf(t->ca, sizeof(t->ca), "%s/ca.crt", dir);
	t->args[n++] = "--tls-port";
	t->args[n++] = t->tls_port_s;
	t->args[n++] = "--tls-cert-file";
	t->args[n++] = t->cert;
	t->args[n++] = "--tls-key-file";
	t->args[n++] = t->key;
	t->args[n++] = "--tls-ca-cert-file";
	t->args[n++] = t->ca;
	t->args[n++] = "--tls-auth-clients";
	t->args[n++] = client_certs ? "yes" : "no";
	t->args[n++] = "--bind";
	t->args[n++] = "127.0.0.1 127.0.0.2";
	t->args[n] = NULL;
	t->srv.args = t->args;
	return redis_start(&t->srv, password, NULL, NULL);
}

#endif

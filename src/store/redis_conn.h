/* SPDX-License-Identifier: MIT */
/*
 * One connection to a Redis server, over plain TCP or TLS (OpenSSL): the
 * bytes between the redis store and the server.  hiredis only formats the
 * commands (redisFormatCommandArgv) and parses the replies (its reader works
 * on any byte stream); this file moves the bytes, so that redis:// and
 * rediss:// share one code path.
 *
 * Commands are appended to an output buffer and sent by the next
 * redis_link_reply (so a command whose answer nobody waits for, a
 * pipelined DEL, costs no round trip).  Every wait for the socket lasts at
 * most the link's timeout: a server that moves no byte for that long fails
 * the call with -ETIMEDOUT.
 *
 * A link is used by one thread at a time (the store's connection lock).
 * The socket is non-blocking and close-on-exec.  Writes on a plain link
 * never raise SIGPIPE (MSG_NOSIGNAL); OpenSSL writes with write(2), so
 * callers of a TLS link block SIGPIPE around their calls (the store does,
 * for both).
 */
#ifndef USWAP_REDIS_CONN_H
#define USWAP_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct redis_link {
	int fd;	  /* -1: not connected */
	SSL *ssl; /* NULL: plain TCP */
	redisReader *reader;
	char *out; /* formatted commands not sent yet (malloc) */
	size_t out_len;
	unsigned timeout_ms;
	int err;       /* 0, or the -errno that broke the link */
	char why[200]; /* what broke it, for messages */
};

/*
 * The TLS settings of a store, shared by its links: verification of the
 * server against @ca (a PEM file; NULL or "": the system's authorities),
 * the client certificate @cert and its key @key (NULL or "": none).
 * @return 0 and *out; -EINVAL with a message (errmsg) naming the file and
 *         what is wrong with it; -ENOMEM
 */
int redis_tls_new(const char *ca, const char *cert, const char *key, SSL_CTX **out);
void redis_tls_free(SSL_CTX *ctx);

/* A link that is not connected. */
void redis_link_init(struct redis_link *l);

/* Connected and not broken. */
static inline bool redis_link_up(const struct redis_link *l)
{
	return l->fd >= 0 && !l->err;
}

/*
 * Connect to host:port within timeout_ms (each wait), then, when tls is not
 * NULL, do the TLS handshake: the server's certificate must be vouched for
 * by the CA and name host (its IP address, or its DNS name, also sent as
 * SNI).  The link must not be connected.
 * @return 0; -ETIMEDOUT; -EACCES when the server's certificate is not
 *         trusted or does not name host; -EIO (refused, unreachable,
 *         handshake failed); -ENOMEM.  On failure l->why says what
 *         happened and the link stays broken until redis_link_close.
 */
int redis_link_connect(struct redis_link *l, const char *host, int port, SSL_CTX *tls,
		       unsigned timeout_ms);

/*
 * Append a command to the output buffer (sent by the next redis_link_reply).
 * @return 0; -ENOMEM (l->why says so, the link is broken)
 */
int redis_link_append(struct redis_link *l, int argc, const char **argv, const size_t *lens);

/*
 * Send everything appended, then read the next reply (replies come in the
 * order of the commands).  *r is hiredis's reply: freeReplyObject it.
 * @return 0; -ETIMEDOUT; -EIO (closed, reset, TLS or protocol error); the
 *         link is then broken (l->why says why).
 */
int redis_link_reply(struct redis_link *l, redisReply **r);

/* Close the socket and free everything, without a word to the server
 * (also right in a forked child, whose socket the parent still uses).
 * The link can be connected again. */
void redis_link_close(struct redis_link *l);

#endif

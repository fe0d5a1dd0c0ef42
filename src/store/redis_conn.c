/* SPDX-License-Identifier: MIT */
/* A connection to a Redis server, plain or TLS: see redis_conn.h. */
#include "redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/errmsg.h"

/* ---- TLS settings ---- */

/* The newest OpenSSL error of this thread, as text ("" when none). */
static const char *tls_error_text(char *buf, size_t n)
{
	unsigned long e = ERR_peek_last_error();

	buf[0] = 0;
	if (e)
		ERR_error_string_n(e, buf, n);
	ERR_clear_error();
	return buf;
}

/* An encrypted key would make OpenSSL ask for its pass phrase on the
 * terminal: refuse instead (the load fails with a message). */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

/* A readable file, or -EINVAL naming it. */
static int tls_file_check(const char *opt, const char *path)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return errmsg_set(-EINVAL, "store rediss: %s=%s: %s (allowed: a readable PEM file)",
				  opt, path, strerror(errno));
	fclose(f);
	return 0;
}

int redis_tls_new(const char *ca, const char *cert, const char *key, SSL_CTX **out)
{
	SSL_CTX *ctx;
	char err[256];
	int rc;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return errmsg_set(-ENOMEM, "store rediss: cannot make a TLS context: %s",
				  tls_error_text(err, sizeof(err)));
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
	if (ca && ca[0]) {
		rc = tls_file_check("ca", ca);
		if (rc)
			goto err_free_ctx;
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			rc = errmsg_set(-EINVAL,
					"store rediss: ca=%s holds no PEM certificate: %s "
					"(allowed: a PEM file of CA certificates)",
					ca, tls_error_text(err, sizeof(err)));
			goto err_free_ctx;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		rc = errmsg_set(-EINVAL,
				"store rediss: the system's CA certificates cannot be "
				"loaded: %s (give ca=PATH)",
				tls_error_text(err, sizeof(err)));
		goto err_free_ctx;
	}
	if (cert && cert[0]) {
		rc = tls_file_check("cert", cert);
		if (!rc)
			rc = tls_file_check("key", key);
		if (rc)
			goto err_free_ctx;
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
			rc = errmsg_set(-EINVAL,
					"store rediss: cert=%s holds no PEM certificate: %s", cert,
					tls_error_text(err, sizeof(err)));
			goto err_free_ctx;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
			    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
				rc = errmsg_set(-EINVAL,
						"store rediss: key=%s does not belong to "
						"cert=%s",
						key, cert);
				goto err_free_ctx;
			}
			rc = errmsg_set(-EINVAL,
					"store rediss: key=%s is not a usable private key: "
					"%s (allowed: a PEM key without a pass phrase)",
					key, tls_error_text(err, sizeof(err)));
			goto err_free_ctx;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			rc = errmsg_set(-EINVAL, "store rediss: key=%s does not belong to cert=%s",
					key, cert);
			goto err_free_ctx;
		}
	}
	*out = ctx;
	return 0;
err_free_ctx:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return rc;
}

void redis_tls_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/* ---- links ---- */

void redis_link_init(struct redis_link *l)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}

/* Mark the link broken with err and a reason.  @return err */
__attribute__((format(printf, 3, 4))) static int link_fail(struct redis_link *l, int err,
							   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
	l->err = err;
	return err;
}

/* Wait until the socket is ready for events.  @return 0; -ETIMEDOUT */
static int link_wait(struct redis_link *l, short events)
{
	struct pollfd p = {.fd = l->fd, .events = events};
	int n;

	do
		n = poll(&p, 1, (int)l->timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return link_fail(l, -ETIMEDOUT, "no answer within %u ms", l->timeout_ms);
	if (n < 0)
		return link_fail(l, -EIO, "poll: %s", strerror(errno));
	return 0; /* POLLERR/POLLHUP: the next read or write says what */
}

/* A non-blocking TCP connection to one address. */
static int link_connect_addr(struct redis_link *l, const struct addrinfo *ai)
{
	int one = 1, soerr = 0;
	socklen_t n = sizeof(soerr);

	l->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       ai->ai_protocol);
	if (l->fd < 0)
		return link_fail(l, -EIO, "socket: %s", strerror(errno));
	setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(l->fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return link_fail(l, -EIO, "%s", strerror(errno));
	if (link_wait(l, POLLOUT))
		return l->err;
	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &soerr, &n) < 0)
		soerr = errno;
	if (soerr)
		return link_fail(l, -EIO, "%s", strerror(soerr));
	return 0;
}

/*
 * What went wrong in an SSL call that returned rc: wait and @return 1 to
 * try again, or @return the link's error.  @what names the step.
 */
static int tls_retry(struct redis_link *l, int rc, const char *what)
{
	int e = SSL_get_error(l->ssl, rc);
	char buf[200];

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		int rc2 = link_wait(l, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);

		return rc2 ? rc2 : 1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return link_fail(l, -EIO, "the server closed the TLS connection");
	if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
		return link_fail(l, -EIO, "%s",
				 errno ? strerror(errno) : "the server closed the connection");
	if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		return link_fail(l, -EIO, "the server closed the connection");
	}
	return link_fail(l, -EIO, "TLS %s: %s", what, tls_error_text(buf, sizeof(buf)));
}

/* The TLS handshake, the server's certificate checked. */
static int link_handshake(struct redis_link *l, const char *host, SSL_CTX *tls)
{
	unsigned char ip[16];
	long verify;
	int rc;

	ERR_clear_error();
	l->ssl = SSL_new(tls);
	if (!l->ssl || SSL_set_fd(l->ssl, l->fd) != 1)
		return link_fail(l, -ENOMEM, "TLS: out of memory");
	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
		/* an address: matched against the certificate's IP names; no SNI
		 * (RFC 6066 allows only DNS names there) */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(l->ssl), host) != 1)
			return link_fail(l, -ENOMEM, "TLS: out of memory");
	} else if (SSL_set1_host(l->ssl, host) != 1 ||
		   SSL_set_tlsext_host_name(l->ssl, host) != 1) {
		return link_fail(l, -EIO, "TLS: \"%s\" cannot be checked as a host name", host);
	}
	while ((rc = SSL_connect(l->ssl)) != 1) {
		verify = SSL_get_verify_result(l->ssl);
		if (verify != X509_V_OK) {
			ERR_clear_error();
			return link_fail(l, -EACCES, "the server's certificate is refused: %s",
					 X509_verify_cert_error_string(verify));
		}
		rc = tls_retry(l, rc, "handshake");
		if (rc < 0)
			return rc;
	}
	return 0;
}

int redis_link_connect(struct redis_link *l, const char *host, int port, SSL_CTX *tls,
		       unsigned timeout_ms)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char service[8];
	int rc;

	l->timeout_ms = timeout_ms;
	l->err = 0;
	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc)
		return link_fail(l, -EIO, "%s",
				 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		l->err = 0;
		if (link_connect_addr(l, ai) == 0)
			break;
	}
	freeaddrinfo(res);
	if (l->err)
		return l->err;
	l->reader = redisReaderCreate();
	if (!l->reader)
		return link_fail(l, -ENOMEM, "out of memory");
	return tls ? link_handshake(l, host, tls) : 0;
}

int redis_link_append(struct redis_link *l, int argc, const char **argv, const size_t *lens)
{
	char *cmd, *grown;
	int n = redisFormatCommandArgv(&cmd, argc, argv, lens);

	if (n < 0)
		return link_fail(l, -ENOMEM, "out of memory");
	if (!l->out) {
		l->out = cmd;
		l->out_len = (size_t)n;
		return 0;
	}
	grown = realloc(l->out, l->out_len + (size_t)n);
	if (!grown) {
		redisFreeCommand(cmd);
		return link_fail(l, -ENOMEM, "out of memory");
	}
	memcpy(grown + l->out_len, cmd, (size_t)n);
	redisFreeCommand(cmd);
	l->out = grown;
	l->out_len += (size_t)n;
	return 0;
}

/* Send the output buffer. */
static int link_flush(struct redis_link *l)
{
	size_t done = 0;

	while (done < l->out_len) {
		size_t left = l->out_len - done;
		ssize_t n;

		if (l->ssl) {
			int rc;

			ERR_clear_error();
			rc = SSL_write(l->ssl, l->out + done,
				       left > (1u << 30) ? 1 << 30 : (int)left);
			if (rc > 0) {
				done += (size_t)rc;
				continue;
			}
			if ((rc = tls_retry(l, rc, "write")) < 0)
				return rc;
			continue;
		}
		n = send(l->fd, l->out + done, left, MSG_NOSIGNAL);
		if (n >= 0) {
			done += (size_t)n;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (link_wait(l, POLLOUT))
				return l->err;
		} else if (errno != EINTR) {
			return link_fail(l, -EIO, "%s", strerror(errno));
		}
	}
	free(l->out);
	l->out = NULL;
	l->out_len = 0;
	return 0;
}

/* Read what the server sent into the reader. */
static int link_fill(struct redis_link *l)
{
	char buf[16384];
	ssize_t n;

	for (;;) {
		if (l->ssl) {
			int rc;

			ERR_clear_error();
			rc = SSL_read(l->ssl, buf, sizeof(buf));
			if (rc > 0) {
				n = rc;
				break;
			}
			if ((rc = tls_retry(l, rc, "read")) < 0)
				return rc;
			continue;
		}
		n = recv(l->fd, buf, sizeof(buf), 0);
		if (n > 0)
			break;
		if (n == 0)
			return link_fail(l, -EIO, "the server closed the connection");
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (link_wait(l, POLLIN))
				return l->err;
		} else if (errno != EINTR) {
			return link_fail(l, -EIO, "%s", strerror(errno));
		}
	}
	if (redisReaderFeed(l->reader, buf, (size_t)n) != REDIS_OK)
		return link_fail(l, -EIO, "reading the answer: %s", l->reader->errstr);
	return 0;
}

int redis_link_reply(struct redis_link *l, redisReply **r)
{
	void *reply = NULL;

	if (!redis_link_up(l))
		return l->err ? l->err : link_fail(l, -EIO, "not connected");
	if (l->out_len && link_flush(l))
		return l->err;
	for (;;) {
		if (redisReaderGetReply(l->reader, &reply) != REDIS_OK)
			return link_fail(l, -EIO, "a protocol error: %s", l->reader->errstr);
		if (reply) {
			*r = reply;
			return 0;
		}
		if (link_fill(l))
			return l->err;
	}
}

void redis_link_close(struct redis_link *l)
{
	if (l->ssl)
		SSL_free(l->ssl); /* no SSL_shutdown: nothing is sent */
	if (l->fd >= 0)
		close(l->fd);
	if (l->reader)
		redisReaderFree(l->reader);
	free(l->out);
	redis_link_init(l);
}

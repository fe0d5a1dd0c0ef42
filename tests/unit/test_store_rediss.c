/* SPDX-License-Identifier: MIT */
/* uswap-test-labels: threads */
/*
 * The redis store over TLS (rediss://) against real redis-server instances
 * with TLS ports and certificates the test makes (redis_tls.h): the generic
 * store suite sharded over two TLS servers; the options and their errors;
 * a wrong CA, a certificate that does not name the host, and a plain port
 * refused with clear errors; host names (SNI) and client certificates; AUTH
 * over TLS; a server that stops answering, one restarted empty; fork (the
 * child drops the parent's TLS sessions without a word and makes its own).
 */
#include "store_suite.h"

#include "os/os.h"
#include "redis_tls.h"

/* the fork hooks hold every connection's lock (testlib.h) */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

static char dir[64];
/* static: a failed assertion leaves them to redis_stop_all at exit */
static struct redis_tls_server tls_a, tls_b, tls_mutual, tls_d;
static char two_servers[512];

static struct store_suite rediss_suite = {
	.ops = &store_rediss,
	.arg = two_servers,
	.max_len = (2u << 20) + 4096,
	.compacts = false,
	.counts_bad = true,
	.scale = 30,
};

static int servers_setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/uswap-tls-XXXXXX");
	if (!mkdtemp(dir) || redis_tls_certs(dir) || redis_tls_start(&tls_a, dir, NULL, false) ||
	    redis_tls_start(&tls_b, dir, NULL, false) ||
	    redis_tls_start(&tls_mutual, dir, "s3cret", true))
		return -1;
	snprintf(two_servers, sizeof(two_servers), "//127.0.0.1:%d,127.0.0.1:%d?ca=%s/ca.crt",
		 tls_a.tls_port, tls_b.tls_port, dir);
	return 0;
}

static int servers_teardown(void **state)
{
	char cmd[128];

	(void)state;
	redis_stop(&tls_a.srv);
	redis_stop(&tls_b.srv);
	redis_stop(&tls_mutual.srv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct store *open_tls(const char *arg)
{
	struct store *st = NULL;
	int rc = store_rediss.open(arg, 0, &st);

	if (rc)
		fail_msg("rediss store open %s: %d (%s)", arg, rc, errmsg_get());
	return st;
}

/* n objects put, read back, counted on the server, freed (deleted). */
static void round_trip(struct store *st, const struct redis_server *srv, unsigned n, uint64_t seed)
{
	long long before = redis_test_dbsize(srv);
	struct suite_model m;
	struct rng r;

	rng_seed(&r, seed);
	suite_model_init(&m);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(suite_put(st, &store_rediss, &m, &r, suite_size(&r, 1 << 20)), 0);
	assert_int_equal(suite_verify_all(st, &store_rediss, &m), -1);
	assert_int_equal(redis_test_dbsize(srv), before + n);
	while (m.n)
		suite_free(st, &store_rediss, &m, 0);
	suite_model_fini(&m);
}

/* Open must fail with rc and a message holding each of the words. */
static void refused(const char *arg, int rc, const char *w1, const char *w2)
{
	struct store *st = NULL;

	errmsg_clear();
	assert_int_equal(store_rediss.open(arg, 0, &st), rc);
	if (!strstr(errmsg_get(), w1) || (w2 && !strstr(errmsg_get(), w2)))
		fail_msg("open %s: message \"%s\" lacks \"%s\" or \"%s\"", arg, errmsg_get(), w1,
			 w2 ? w2 : "");
}

static void test_options(void **state)
{
	char arg[512], ca[128], cert[128], key[128];
	const char *rest;

	(void)state;
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	snprintf(cert, sizeof(cert), "%s/client.crt", dir);
	snprintf(key, sizeof(key), "%s/client.key", dir);
	assert_ptr_equal(store_find("rediss://127.0.0.1:1?ca=x", &rest), &store_rediss);
	assert_string_equal(rest, "//127.0.0.1:1?ca=x");
	refused("127.0.0.1:6379", -EINVAL, "allowed", "rediss://");
	refused("//h:0", -EINVAL, "h:0", "allowed");
	refused("//h:1?ca=", -EINVAL, "ca=", "allowed");
	refused("//h:1?timeout=0", -EINVAL, "timeout \"0\"", "allowed");
	refused("//h:1?sni=x", -EINVAL, "sni=x", "allowed");
	refused("//h:1?ca=a&ca=b", -EINVAL, "\"ca\" given twice", "allowed");
	refused("//h:1?cert=/c.pem", -EINVAL, "cert without key", "allowed");
	refused("//h:1?key=/k.pem", -EINVAL, "key without cert", "allowed");
	refused("//h:1?ca=/nonexistent/ca.crt", -EINVAL, "ca=/nonexistent/ca.crt", "No such file");
	/* a file that is no certificate */
	snprintf(arg, sizeof(arg), "//h:1?ca=%s/server.ext", dir);
	refused(arg, -EINVAL, "server.ext", "PEM");
	/* a key of another certificate */
	snprintf(arg, sizeof(arg), "//h:1?ca=%s&cert=%s&key=%s/server.key", ca, cert, dir);
	refused(arg, -EINVAL, "server.key", "does not belong");
	/* a certificate where the key should be */
	snprintf(arg, sizeof(arg), "//h:1?ca=%s&cert=%s&key=%s", ca, cert, ca);
	refused(arg, -EINVAL, "key=", "private key");
	/* every option at once, in any order: accepted */
	snprintf(arg, sizeof(arg), "//127.0.0.1:%d?key=%s&timeout=3000&cert=%s&ca=%s",
		 tls_a.tls_port, key, cert, ca);
	store_rediss.close(open_tls(arg));
}

static void wrong_port(const struct store_ops *ops, const char *arg, const char *word)
{
	uint64_t t0 = os_now_ns();
	struct store *st;
	int rc = ops->open(arg, 0, &st);

	assert_true(rc == -EIO || rc == -ETIMEDOUT);
	assert_true(os_now_ns() - t0 < 3000000000ull);
	if (!strstr(errmsg_get(), word))
		fail_msg("open %s: message \"%s\" lacks \"%s\"", arg, errmsg_get(), word);
}

/* A server whose certificate the CA did not sign, or that does not name
 * the host we asked for, is refused before a byte of data goes out. */
static void test_refused_servers(void **state)
{
	char arg[512], where[64];

	(void)state;
	snprintf(where, sizeof(where), "127.0.0.1:%d", tls_a.tls_port);
	/* the wrong CA */
	snprintf(arg, sizeof(arg), "//127.0.0.1:%d?ca=%s/other-ca.crt", tls_a.tls_port, dir);
	refused(arg, -EACCES, where, "certificate is refused");
	refused(arg, -EACCES, "other-ca.crt", NULL);
	/* the system's CAs do not know the test's CA either */
	snprintf(arg, sizeof(arg), "//127.0.0.1:%d", tls_a.tls_port);
	refused(arg, -EACCES, "certificate is refused", "the system's CA");
	/* the right CA, but the certificate names 127.0.0.1, not 127.0.0.2 */
	snprintf(arg, sizeof(arg), "//127.0.0.2:%d?ca=%s/ca.crt", tls_a.tls_port, dir);
	refused(arg, -EACCES, "IP address mismatch", "127.0.0.2");
	/* TLS to the plain port (the server waits for a command) and plain to
	 * the TLS port (it waits for a handshake): refused within the timeout,
	 * naming the server, never a hang */
	snprintf(arg, sizeof(arg), "//127.0.0.1:%d?timeout=500&ca=%s/ca.crt", tls_a.srv.port, dir);
	wrong_port(&store_rediss, arg, "TLS connect");
	snprintf(arg, sizeof(arg), "//127.0.0.1:%d?timeout=500", tls_a.tls_port);
	wrong_port(&store_redis, arg, where);
}

/* By host name: the certificate's DNS name is checked (and sent as SNI). */
static void test_host_name(void **state)
{
	char arg[512];
	struct store *st;

	(void)state;
	snprintf(arg, sizeof(arg), "//localhost:%d?ca=%s/ca.crt", tls_a.tls_port, dir);
	st = open_tls(arg);
	round_trip(st, &tls_a.srv, 40, 0x10ca1);
	store_rediss.close(st);
}

/* A server that asks for client certificates and a password. */
static void test_client_cert_and_auth(void **state)
{
	char arg[512], tls[400], where[64];
	struct store *st;

	(void)state;
	snprintf(where, sizeof(where), "127.0.0.1:%d", tls_mutual.tls_port);
	snprintf(tls, sizeof(tls), "ca=%s/ca.crt&cert=%s/client.crt&key=%s/client.key", dir, dir,
		 dir);
	/* no client certificate: the server hangs up, said naming it */
	snprintf(arg, sizeof(arg), "//:s3cret@127.0.0.1:%d?ca=%s/ca.crt", tls_mutual.tls_port, dir);
	st = NULL;
	assert_true(store_rediss.open(arg, 0, &st) < 0);
	assert_non_null(strstr(errmsg_get(), where));
	/* a certificate, no password / the wrong one */
	snprintf(arg, sizeof(arg), "//127.0.0.1:%d?%s", tls_mutual.tls_port, tls);
	refused(arg, -EACCES, "PASSWORD", where);
	snprintf(arg, sizeof(arg), "//:wrong@127.0.0.1:%d?%s", tls_mutual.tls_port, tls);
	refused(arg, -EACCES, "refused the password", where);
	/* both: AUTH over TLS */
	snprintf(arg, sizeof(arg), "//:s3cret@127.0.0.1:%d?%s", tls_mutual.tls_port, tls);
	st = open_tls(arg);
	round_trip(st, &tls_mutual.srv, 50, 0xa17);
	store_rediss.close(st);
	assert_int_equal(redis_test_dbsize(&tls_mutual.srv), 0);
	/* an ACL user: AUTH default PASSWORD */
	snprintf(arg, sizeof(arg), "//default:s3cret@127.0.0.1:%d?%s", tls_mutual.tls_port, tls);
	st = open_tls(arg);
	round_trip(st, &tls_mutual.srv, 10, 0xac1);
	store_rediss.close(st);
}

/* A TLS server that stops answering, then one restarted empty. */
static void test_server_stops_and_restarts(void **state)
{
	struct redis_tls_server *d = &tls_d;
	struct suite_model m;
	struct store *st;
	store_handle_t h;
	struct rng r;
	char arg[512];
	uint64_t t0;

	(void)state;
	assert_int_equal(redis_tls_start(d, dir, NULL, false), 0);
	snprintf(arg, sizeof(arg), "//127.0.0.1:%d?timeout=1000&ca=%s/ca.crt", d->tls_port, dir);
	st = open_tls(arg);
	rng_seed(&r, 0x5109);
	suite_model_init(&m);
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(suite_put(st, &store_rediss, &m, &r, 4000), 0);
	kill(d->srv.pid, SIGSTOP);
	t0 = os_now_ns();
	assert_int_equal(store_rediss.put(st, "x", 1, &h), -ETIMEDOUT);
	assert_true(os_now_ns() - t0 < 5000000000ull);
	assert_non_null(strstr(errmsg_get(), "no answer within 1000 ms"));
	assert_int_equal(suite_get(st, &store_rediss, &m, 0), -ETIMEDOUT);
	kill(d->srv.pid, SIGCONT);
	assert_int_equal(suite_verify_all(st, &store_rediss, &m), -1);
	/* restarted without persistence: keys lost are said, never misread */
	redis_stop(&d->srv);
	assert_int_equal(suite_get(st, &store_rediss, &m, 0), -EIO);
	assert_int_equal(redis_tls_start(d, dir, NULL, false), 0); /* same ports */
	assert_int_equal(suite_get(st, &store_rediss, &m, 0), -ESRCH);
	assert_non_null(strstr(errmsg_get(), "lost the key"));
	assert_int_equal(suite_put(st, &store_rediss, &m, &r, 3000), 0);
	assert_int_equal(suite_get(st, &store_rediss, &m, m.n - 1), 0);
	while (m.n)
		suite_free(st, &store_rediss, &m, 0);
	store_rediss.close(st);
	suite_model_fini(&m);
	redis_stop(&d->srv);
}

/* fork: the child drops the parent's TLS sessions without sending on them
 * (a byte from the child would break the parent's session) and connects
 * anew; both go on with their own objects and read the inherited ones. */
static void test_fork(void **state)
{
	struct store *st = open_tls(two_servers);
	struct store_usage u;

	(void)state;
	suite_fork_shared(&store_rediss, st);
	store_rediss.usage(st, &u);
	assert_int_equal(u.errors, 0); /* the parent's sessions never broke */
	store_rediss.close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		STORE_SUITE_TESTS_NO_COMPACT(&rediss_suite),
		cmocka_unit_test(test_refused_servers),
		cmocka_unit_test(test_host_name),
		cmocka_unit_test(test_client_cert_and_auth),
		cmocka_unit_test(test_server_stops_and_restarts),
		cmocka_unit_test(test_fork),
	};

	return cmocka_run_group_tests(tests, servers_setup, servers_teardown);
}

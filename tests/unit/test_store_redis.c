/* SPDX-License-Identifier: MIT */
/* uswap-test-labels: threads */
/*
 * The redis store against real redis-server instances on loopback: the
 * generic store suite sharded over two servers, then keys spread over both
 * and deleted on free, two stores never seeing each other's keys, AUTH,
 * bad URIs, a server that stops answering, one that goes down and comes
 * back empty, one out of memory, and fork.
 */
#include "store_suite.h"

#include "os/os.h"
#include "redis_server.h"

/* the fork hooks hold every connection's lock (testlib.h) */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

/* static: a failed assertion leaves them to redis_stop_all at exit */
static struct redis_server srv_a, srv_b, srv_auth, srv_d;
static char two_servers[128];

static struct store_suite redis_suite = {
	.ops = &store_redis,
	.arg = two_servers,
	.max_len = (2u << 20) + 4096,
	.compacts = false,
	.counts_bad = true,
	.scale = 30,
};

static int servers_setup(void **state)
{
	(void)state;
	if (redis_start(&srv_a, NULL, NULL, NULL) || redis_start(&srv_b, NULL, NULL, NULL) ||
	    redis_start(&srv_auth, "s3cret", NULL, NULL))
		return -1;
	snprintf(two_servers, sizeof(two_servers), "//127.0.0.1:%d,127.0.0.1:%d", srv_a.port,
		 srv_b.port);
	return 0;
}

static int servers_teardown(void **state)
{
	(void)state;
	redis_stop(&srv_a);
	redis_stop(&srv_b);
	redis_stop(&srv_auth);
	return 0;
}

static struct store *open_uri(const char *arg, size_t limit)
{
	struct store *st = NULL;
	int rc = store_redis.open(arg, limit, &st);

	if (rc)
		fail_msg("redis store open %s: %d (%s)", arg, rc, errmsg_get());
	return st;
}

static void test_bad_uris(void **state)
{
	static const char *const bad[] = {
		"127.0.0.1:6379", "//",	 "//localhost", "//h:0", "//h:65536", "//h:12x",
		"//:6379",	  "//h:1?timeout=0", "//h:1?timeout=x", "//h:1?speed=9",
		"//pw@h:1",
	};
	const char *arg;
	struct store *st;
	char uri[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errmsg_clear();
		assert_int_equal(store_redis.open(bad[i], 0, &st), -EINVAL);
		assert_non_null(strstr(errmsg_get(), "allowed") ? errmsg_get() : NULL);
	}
	/* TLS options on a plain URI: refused, pointing to rediss:// (the TLS
	 * store has its tests in test_store_rediss.c) */
	assert_ptr_equal(store_find("rediss://127.0.0.1:6380", &arg), &store_rediss);
	assert_int_equal(store_redis.open("//127.0.0.1:6380?ca=/etc/ssl/ca.pem", 0, &st), -EINVAL);
	assert_non_null(strstr(errmsg_get(), "rediss://"));
	/* nobody listens: said at open, naming the server */
	snprintf(uri, sizeof(uri), "//127.0.0.1:%d", redis_free_port());
	assert_true(store_redis.open(uri, 0, &st) < 0);
	assert_non_null(strstr(errmsg_get(), uri + 2));
}

static void test_auth(void **state)
{
	struct suite_model m;
	struct store *st;
	struct rng r;
	char uri[96];

	(void)state;
	snprintf(uri, sizeof(uri), "//127.0.0.1:%d", srv_auth.port);
	assert_int_equal(store_redis.open(uri, 0, &st), -EACCES);
	assert_non_null(strstr(errmsg_get(), "PASSWORD"));
	snprintf(uri, sizeof(uri), "//:wrong@127.0.0.1:%d", srv_auth.port);
	assert_int_equal(store_redis.open(uri, 0, &st), -EACCES);
	assert_non_null(strstr(errmsg_get(), "refused the password"));
	snprintf(uri, sizeof(uri), "//:s3cret@127.0.0.1:%d", srv_auth.port);
	st = open_uri(uri, 0);
	rng_seed(&r, 0xa17);
	suite_model_init(&m);
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(suite_put(st, &store_redis, &m, &r, suite_size(&r, 1 << 20)), 0);
	assert_int_equal(suite_verify_all(st, &store_redis, &m), -1);
	assert_int_equal(redis_test_dbsize(&srv_auth), 50);
	while (m.n)
		suite_free(st, &store_redis, &m, 0);
	store_redis.close(st);
	assert_int_equal(redis_test_dbsize(&srv_auth), 0);
	suite_model_fini(&m);
}

/* Keys spread over both servers; frees delete them (pipelined, all sent by
 * close); two stores on the same servers never touch each other's keys. */
static void test_shards_and_prefixes(void **state)
{
	struct suite_model m1, m2;
	struct store *s1 = open_uri(two_servers, 0), *s2 = open_uri(two_servers, 0);
	long long a0 = redis_test_dbsize(&srv_a), b0 = redis_test_dbsize(&srv_b);
	struct store_usage u;
	redisReply *keys;
	struct rng r;

	(void)state;
	rng_seed(&r, 0x5a4d);
	suite_model_init(&m1);
	suite_model_init(&m2);
	for (unsigned i = 0; i < 200; i++) {
		assert_int_equal(suite_put(s1, &store_redis, &m1, &r, 1 + rng_below(&r, 5000)), 0);
		assert_int_equal(suite_put(s2, &store_redis, &m2, &r, 1 + rng_below(&r, 5000)), 0);
	}
	assert_true(redis_test_dbsize(&srv_a) - a0 >= 150);
	assert_true(redis_test_dbsize(&srv_b) - b0 >= 150);
	assert_int_equal(redis_test_dbsize(&srv_a) + redis_test_dbsize(&srv_b) - a0 - b0, 400);
	keys = redis_test_cmd(&srv_a, "KEYS uswap:*");
	assert_non_null(keys);
	assert_true(keys->type == REDIS_REPLY_ARRAY && keys->elements >= 150);
	freeReplyObject(keys);
	/* the same handles name different objects in the two stores */
	for (size_t i = 0; i < 50; i++)
		assert_int_equal(m1.obj[i].h.v, m2.obj[i].h.v);
	/* s1 frees everything: s2's objects are all still there */
	while (m1.n)
		suite_free(s1, &store_redis, &m1, m1.n - 1);
	store_redis.close(s1);
	assert_int_equal(redis_test_dbsize(&srv_a) + redis_test_dbsize(&srv_b) - a0 - b0, 200);
	assert_int_equal(suite_verify_all(s2, &store_redis, &m2), -1);
	store_redis.usage(s2, &u);
	assert_true(u.reads >= 200 && u.writes == 200 && u.errors == 0 && u.read_ns > 0);
	while (m2.n)
		suite_free(s2, &store_redis, &m2, 0);
	store_redis.close(s2);
	assert_int_equal(redis_test_dbsize(&srv_a), a0);
	assert_int_equal(redis_test_dbsize(&srv_b), b0);
	suite_model_fini(&m1);
	suite_model_fini(&m2);
}

/* A server that stops answering (SIGSTOP): calls fail within the timeout,
 * nothing stored is damaged, and all works again when it answers. */
static void test_server_stopped(void **state)
{
	struct redis_server *dp = &srv_d;
	struct suite_model m;
	struct store_usage u;
	struct store *st;
	store_handle_t h;
	struct rng r;
	char uri[96];
	uint64_t t0;
	int rc;

	(void)state;
	assert_int_equal(redis_start(dp, NULL, NULL, NULL), 0);
	snprintf(uri, sizeof(uri), "//127.0.0.1:%d?timeout=1000", dp->port);
	st = open_uri(uri, 0);
	rng_seed(&r, 0x5109);
	suite_model_init(&m);
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(suite_put(st, &store_redis, &m, &r, 4000), 0);
	kill(dp->pid, SIGSTOP);
	t0 = os_now_ns();
	rc = store_redis.put(st, "x", 1, &h);
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(os_now_ns() - t0 < 5000000000ull);
	assert_non_null(strstr(errmsg_get(), "no answer within 1000 ms"));
	assert_int_equal(suite_get(st, &store_redis, &m, 0), -ETIMEDOUT);
	store_redis.usage(st, &u);
	assert_int_equal(u.objects, 20);
	assert_true(u.errors >= 2);
	kill(dp->pid, SIGCONT);
	/* connected again: everything reads back */
	assert_int_equal(suite_verify_all(st, &store_redis, &m), -1);
	assert_int_equal(suite_put(st, &store_redis, &m, &r, 4000), 0);
	while (m.n)
		suite_free(st, &store_redis, &m, 0);
	store_redis.close(st);
	suite_model_fini(&m);
	redis_stop(dp);
}

/* A server that goes down: puts fail with a message naming it; when it is
 * back, empty (no persistence), the lost keys are reported, never read as
 * something else, and new puts work. */
static void test_server_down(void **state)
{
	struct redis_server *dp = &srv_d;
	struct suite_model m;
	struct store *st;
	store_handle_t h;
	struct rng r;
	char uri[96], where[32];

	(void)state;
	assert_int_equal(redis_start(dp, NULL, NULL, NULL), 0);
	snprintf(uri, sizeof(uri), "//127.0.0.1:%d?timeout=1000", dp->port);
	snprintf(where, sizeof(where), "127.0.0.1:%d", dp->port);
	st = open_uri(uri, 0);
	rng_seed(&r, 0xd0);
	suite_model_init(&m);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(suite_put(st, &store_redis, &m, &r, 3000), 0);
	redis_stop(dp);
	assert_int_equal(store_redis.put(st, "abc", 3, &h), -EIO);
	assert_non_null(strstr(errmsg_get(), where));
	assert_int_equal(suite_get(st, &store_redis, &m, 0), -EIO);
	assert_int_equal(redis_start(dp, NULL, NULL, NULL), 0); /* same port */
	assert_int_equal(suite_get(st, &store_redis, &m, 0), -ESRCH);
	assert_non_null(strstr(errmsg_get(), "lost the key"));
	assert_int_equal(suite_put(st, &store_redis, &m, &r, 3000), 0);
	assert_int_equal(suite_get(st, &store_redis, &m, m.n - 1), 0);
	while (m.n)
		suite_free(st, &store_redis, &m, 0);
	store_redis.close(st);
	suite_model_fini(&m);
	redis_stop(dp);
}

/* A server out of memory (maxmemory, noeviction): -ENOSPC, as a full store. */
static void test_server_full(void **state)
{
	struct redis_server *dp = &srv_d;
	struct suite_model m;
	struct store *st;
	struct rng r;
	char uri[96];
	int rc = 0;

	(void)state;
	assert_int_equal(redis_start(dp, NULL, "--maxmemory", "4mb"), 0);
	snprintf(uri, sizeof(uri), "//127.0.0.1:%d", dp->port);
	st = open_uri(uri, 0);
	rng_seed(&r, 0xf1);
	suite_model_init(&m);
	for (unsigned i = 0; i < 1000 && rc == 0; i++)
		rc = suite_put(st, &store_redis, &m, &r, 40000);
	assert_int_equal(rc, -ENOSPC);
	assert_non_null(strstr(errmsg_get(), "OOM"));
	assert_true(m.n > 10);
	assert_int_equal(suite_verify_all(st, &store_redis, &m), -1);
	suite_assert_usage(st, &store_redis, &m);
	while (m.n)
		suite_free(st, &store_redis, &m, 0);
	store_redis.close(st);
	suite_model_fini(&m);
	redis_stop(dp);
}

/* fork: the child writes under its own prefix, neither deletes the keys
 * the other may read. */
static void test_fork(void **state)
{
	struct store *st = open_uri(two_servers, 0);

	(void)state;
	suite_fork_shared(&store_redis, st);
	store_redis.close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_uris),
		STORE_SUITE_TESTS_NO_COMPACT(&redis_suite),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_shards_and_prefixes),
		cmocka_unit_test(test_server_stopped),
		cmocka_unit_test(test_server_down),
		cmocka_unit_test(test_server_full),
		cmocka_unit_test(test_fork),
	};

	return cmocka_run_group_tests(tests, servers_setup, servers_teardown);
}

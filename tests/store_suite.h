/* SPDX-License-Identifier: MIT */
/*
 * The store suite: tests that every store (ram, file, redis) must pass,
 * written against struct store_ops only.  A test file includes this header
 * once, describes its store in a struct store_suite and lists
 * STORE_SUITE_TESTS(&cfg) among its cmocka tests.
 *
 * Every object is checked against a reference model (handle -> copy of the
 * bytes), byte for byte, and usage() against the model's counts; when the
 * store has a checker (ops->check) it runs after operations.  Failures in
 * worker threads are collected and reported by the main thread (cmocka's
 * asserts are not thread-safe).
 */
#ifndef USWAP_STORE_SUITE_H
#define USWAP_STORE_SUITE_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "core/errmsg.h"
#include "store/store.h"

struct store_suite {
	const struct store_ops *ops;
	const char *arg;  /* given to open */
	size_t max_len;	  /* largest object the tests put: at least 2 MiB + 4 KiB */
	bool compacts;	  /* compact() gives space back (moved counts) */
	bool counts_bad;  /* usage() counts bad_get and bad_free */
	unsigned threads; /* for the concurrency test, 0 = 4 */
	unsigned scale;	  /* percent of the default operation counts, 0 = 100 */
};

/* ---- the reference model ---- */

struct suite_obj {
	store_handle_t h;
	size_t len;
	unsigned char *data;
};

struct suite_model {
	struct suite_obj *obj;
	size_t n, cap;
	uint64_t stored;
	store_handle_t dead[64]; /* recently freed handles */
	unsigned ndead;
};

static void suite_model_init(struct suite_model *m)
{
	memset(m, 0, sizeof(*m));
}

static void suite_model_fini(struct suite_model *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->obj[i].data);
	free(m->obj);
}

/* A realistic size: compressed 4 KiB pages and 64 KiB folios, raw folios,
 * same-filled leftovers, and now and then a large folio (up to 2 MiB plus a
 * header). */
static size_t suite_size(struct rng *r, size_t max)
{
	uint64_t p = rng_below(r, 100);
	size_t len;

	if (p < 7)
		len = 1 + rng_below(r, 256);
	else if (p < 42)
		len = 500 + rng_below(r, 2600);
	else if (p < 52)
		len = 256 + rng_below(r, 10 << 10);
	else if (p < 87)
		len = (10 << 10) + rng_below(r, 30 << 10);
	else if (p < 95)
		len = (64 << 10) + 16 + rng_below(r, 112); /* incompressible 64 KiB */
	else
		len = (128 << 10) + rng_below(r, (2 << 20) - (128 << 10) + 4096);
	return len > max ? max : len;
}

static void suite_fill(struct rng *r, unsigned char *p, size_t len)
{
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t v = rng_next(r);

		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] = (unsigned char)rng_next(r);
}

struct suite_cmp {
	const unsigned char *want;
	size_t len;
};

/* @return 0 when the object is the expected one, 1 for a wrong length,
 * 2 for wrong bytes. */
static int suite_visit_cmp(const void *obj, size_t len, void *arg)
{
	const struct suite_cmp *c = arg;

	if (len != c->len)
		return 1;
	return len && memcmp(obj, c->want, len) ? 2 : 0;
}

static int suite_visit_never(const void *obj, size_t len, void *arg)
{
	(void)obj;
	(void)len;
	(void)arg;
	return 99;
}

/* Put an object of len random bytes.  @return what put returned. */
static int suite_put(struct store *st, const struct store_ops *ops, struct suite_model *m,
		     struct rng *r, size_t len)
{
	unsigned char *data = malloc(len ? len : 1);
	store_handle_t h;
	int ret;

	if (!data)
		return -ENOMEM;
	suite_fill(r, data, len);
	ret = ops->put(st, data, len, &h);
	if (ret) {
		free(data);
		return ret;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 256;
		struct suite_obj *o = realloc(m->obj, cap * sizeof(*o));

		if (!o)
			abort();
		m->obj = o;
		m->cap = cap;
	}
	m->obj[m->n++] = (struct suite_obj){h, len, data};
	m->stored += len;
	return 0;
}

/* @return 0 when object i reads back as stored. */
static int suite_get(struct store *st, const struct store_ops *ops, struct suite_model *m, size_t i)
{
	struct suite_cmp c = {m->obj[i].data, m->obj[i].len};

	return ops->get(st, m->obj[i].h, suite_visit_cmp, &c);
}

static void suite_free(struct store *st, const struct store_ops *ops, struct suite_model *m,
		       size_t i)
{
	ops->free(st, m->obj[i].h);
	m->dead[m->ndead++ % 64] = m->obj[i].h;
	m->stored -= m->obj[i].len;
	free(m->obj[i].data);
	m->obj[i] = m->obj[--m->n];
}

/* @return the index of the first object that does not read back, or -1. */
static long suite_verify_all(struct store *st, const struct store_ops *ops, struct suite_model *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (suite_get(st, ops, m, i))
			return (long)i;
	return -1;
}

static void suite_assert_usage(struct store *st, const struct store_ops *ops,
			       const struct suite_model *m)
{
	struct store_usage u;

	ops->usage(st, &u);
	assert_int_equal(u.objects, m->n);
	assert_int_equal(u.stored_bytes, m->stored);
}

static void suite_assert_check(struct store *st, const struct store_ops *ops)
{
	if (ops->check) {
		int ret = ops->check(st);

		if (ret)
			fail_msg("%s store check: %s", ops->name, errmsg_get());
	}
}

static unsigned suite_scaled(const struct store_suite *cfg, unsigned n)
{
	unsigned s = cfg->scale ? cfg->scale : 100;

	n = (unsigned)((uint64_t)n * s / 100);
	return n ? n : 1;
}

static struct store *suite_open(const struct store_suite *cfg, size_t limit)
{
	struct store *st = NULL;
	int ret = cfg->ops->open(cfg->arg, limit, &st);

	if (ret)
		fail_msg("%s store open: %d (%s)", cfg->ops->name, ret, errmsg_get());
	return st;
}

/* ---- the tests ---- */

/* Random put/get/free against the model; sizes 1 B .. 2 MiB + 4 KiB. */
static void suite_random_model(void **state)
{
	const struct store_suite *cfg = *state;
	const struct store_ops *ops = cfg->ops;
	unsigned nops = suite_scaled(cfg, 6000);
	struct suite_model m;
	struct store *st;
	struct rng r;

	rng_seed(&r, 0x5701e5eedull);
	suite_model_init(&m);
	st = suite_open(cfg, 0);
	for (unsigned op = 0; op < nops; op++) {
		uint64_t p = rng_below(&r, 100);

		/* keep the model within a few hundred objects */
		if (p < 45 && m.n < 400) {
			assert_int_equal(suite_put(st, ops, &m, &r, suite_size(&r, cfg->max_len)),
					 0);
		} else if (p < 75 && m.n) {
			size_t i = rng_below(&r, m.n);

			assert_int_equal(suite_get(st, ops, &m, i), 0);
		} else if (p < 98 && m.n) {
			suite_free(st, ops, &m, rng_below(&r, m.n));
		} else if (ops->compact) {
			assert_true(ops->compact(st) >= 0);
		}
		if (m.ndead) {
			store_handle_t h = m.dead[rng_below(&r, m.ndead < 64 ? m.ndead : 64)];

			assert_int_equal(ops->get(st, h, suite_visit_never, NULL), -ENOENT);
		}
		suite_assert_usage(st, ops, &m);
		if (op % 128 == 0)
			suite_assert_check(st, ops);
	}
	assert_int_equal(suite_verify_all(st, ops, &m), -1);
	suite_assert_check(st, ops);
	while (m.n)
		suite_free(st, ops, &m, m.n - 1);
	suite_assert_usage(st, ops, &m);
	suite_assert_check(st, ops);
	ops->close(st);
	suite_model_fini(&m);
}

/* Boundary lengths, the empty object, the visitor's return value. */
static void suite_lengths(void **state)
{
	const struct store_suite *cfg = *state;
	const struct store_ops *ops = cfg->ops;
	static const size_t lens[] = {0,       1,
				      15,      16,
				      17,      255,
				      256,     257,
				      1023,    1024,
				      1025,    4095,
				      4096,    4097,
				      16384,   65535,
				      65536,   65537,
				      131039,  131040,
				      131041,  131072,
				      131073,  1 << 20,
				      2 << 20, (2 << 20) + 4096};
	struct suite_model m;
	struct store *st;
	struct rng r;

	rng_seed(&r, 0x1e9u);
	suite_model_init(&m);
	st = suite_open(cfg, 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		if (lens[i] > cfg->max_len)
			continue;
		assert_int_equal(suite_put(st, ops, &m, &r, lens[i]), 0);
		suite_assert_usage(st, ops, &m);
	}
	suite_assert_check(st, ops);
	assert_int_equal(suite_verify_all(st, ops, &m), -1);
	/* get returns what the visitor returned */
	assert_int_equal(ops->get(st, m.obj[0].h, suite_visit_never, NULL), 99);
	if (ops->max_len < (64u << 20)) {
		unsigned char *big = calloc(1, ops->max_len + 1);
		store_handle_t h;

		assert_non_null(big);
		assert_int_equal(ops->put(st, big, ops->max_len + 1, &h), -E2BIG);
		free(big);
	}
	while (m.n) {
		suite_free(st, ops, &m, rng_below(&r, m.n));
		suite_assert_usage(st, ops, &m);
		assert_int_equal(suite_verify_all(st, ops, &m), -1);
	}
	suite_assert_check(st, ops);
	ops->close(st);
	suite_model_fini(&m);
}

/* The limit: -ENOSPC at the limit, nothing damaged, frees make room. */
static void suite_limit(void **state)
{
	const struct store_suite *cfg = *state;
	const struct store_ops *ops = cfg->ops;
	const size_t limit = 8 << 20;
	struct store_usage u;
	struct suite_model m;
	struct store *st;
	struct rng r;
	size_t failed_len = 0;
	int ret = 0;

	rng_seed(&r, 0x11a1700ull);
	suite_model_init(&m);
	st = suite_open(cfg, limit);
	for (unsigned i = 0; i < 100000; i++) {
		size_t len = suite_size(&r, 256 << 10);

		ret = suite_put(st, ops, &m, &r, len);
		ops->usage(st, &u);
		assert_true(u.pool_bytes <= limit);
		if (ret) {
			failed_len = len;
			break;
		}
	}
	assert_int_equal(ret, -ENOSPC);
	assert_true(m.stored > limit / 2); /* the limit was not hit early */
	suite_assert_usage(st, ops, &m);
	assert_int_equal(suite_verify_all(st, ops, &m), -1);
	suite_assert_check(st, ops);
	if (cfg->counts_bad)
		assert_true(u.fail_nospc >= 1);

	/* more than the whole limit can never fit */
	assert_int_equal(
		suite_put(st, ops, &m, &r, limit + 1 < cfg->max_len ? limit + 1 : cfg->max_len),
		-ENOSPC);

	/* half the objects freed: the failed put fits now */
	for (size_t n = m.n / 2; n; n--)
		suite_free(st, ops, &m, rng_below(&r, m.n));
	assert_int_equal(suite_put(st, ops, &m, &r, failed_len), 0);
	ops->usage(st, &u);
	assert_true(u.pool_bytes <= limit);
	suite_assert_usage(st, ops, &m);
	assert_int_equal(suite_verify_all(st, ops, &m), -1);
	suite_assert_check(st, ops);
	ops->close(st);
	suite_model_fini(&m);
}

/* At the limit, space freed in scattered holes serves a put of another
 * size: put compacts before it gives up with -ENOSPC. */
__attribute__((unused)) static void suite_limit_compacts(void **state)
{
	const struct store_suite *cfg = *state;
	const struct store_ops *ops = cfg->ops;
	const size_t limit = 4 << 20;
	struct store_usage before, after;
	struct suite_model m;
	struct store *st;
	struct rng r;
	size_t n;

	if (!cfg->compacts)
		skip();
	rng_seed(&r, 0x1c0ull);
	suite_model_init(&m);
	st = suite_open(cfg, limit);
	while (suite_put(st, ops, &m, &r, 1000) == 0)
		;
	/* every fifth object, in put order: blocks keep about 80% each, so
	 * none empties and none is sparse enough to compact by itself */
	n = m.n;
	for (size_t i = n - n % 5; i > 0; i -= 5)
		suite_free(st, ops, &m, i - 1);
	ops->usage(st, &before);
	assert_int_equal(suite_put(st, ops, &m, &r, 20000), 0);
	ops->usage(st, &after);
	assert_true(after.compactions > before.compactions);
	assert_true(after.moved > before.moved);
	assert_true(after.pool_bytes <= limit);
	suite_assert_usage(st, ops, &m);
	assert_int_equal(suite_verify_all(st, ops, &m), -1);
	suite_assert_check(st, ops);
	ops->close(st);
	suite_model_fini(&m);
}

/* Free a random 70% of many small objects: compaction gives space back
 * and every survivor still reads correctly. */
static void suite_compaction(void **state)
{
	const struct store_suite *cfg = *state;
	const struct store_ops *ops = cfg->ops;
	unsigned n = suite_scaled(cfg, 30000);
	struct store_usage peak, before, after;
	struct suite_model m;
	struct store *st;
	struct rng r;
	long got;

	rng_seed(&r, 0xc0a1c7ull);
	suite_model_init(&m);
	st = suite_open(cfg, 0);
	for (unsigned i = 0; i < n; i++) {
		/* compressed 4 KiB pages, and some tiny objects */
		size_t len = rng_below(&r, 8) ? 300 + rng_below(&r, 2800) : 1 + rng_below(&r, 300);

		assert_int_equal(suite_put(st, ops, &m, &r, len), 0);
	}
	ops->usage(st, &peak);
	for (size_t k = m.n * 7 / 10; k; k--)
		suite_free(st, ops, &m, rng_below(&r, m.n));
	suite_assert_usage(st, ops, &m);
	suite_assert_check(st, ops);
	ops->usage(st, &before);
	got = ops->compact(st);
	ops->usage(st, &after);
	assert_true(got >= 0);
	assert_int_equal(before.pool_bytes - after.pool_bytes, (uint64_t)got);
	suite_assert_usage(st, ops, &m);
	suite_assert_check(st, ops);
	assert_int_equal(suite_verify_all(st, ops, &m), -1);
	if (cfg->compacts) {
		/* frees may have compacted already (automatic), but together
		 * with compact() the pool must hold about what survives */
		assert_true(got > 0);
		assert_true(after.moved > 0);
		assert_true(after.compactions > before.compactions);
		assert_true(after.pool_bytes < peak.pool_bytes / 2);
		fprintf(stderr,
			"# compaction: pool %llu -> %llu -> %llu bytes (compact() gave %ld) for "
			"%llu stored; %llu moved in %llu passes\n",
			(unsigned long long)peak.pool_bytes, (unsigned long long)before.pool_bytes,
			(unsigned long long)after.pool_bytes, got,
			(unsigned long long)after.stored_bytes, (unsigned long long)after.moved,
			(unsigned long long)after.compactions);
	}
	/* and the store goes on working */
	for (unsigned i = 0; i < 1000; i++)
		assert_int_equal(suite_put(st, ops, &m, &r, 1 + rng_below(&r, 4000)), 0);
	assert_int_equal(suite_verify_all(st, ops, &m), -1);
	suite_assert_usage(st, ops, &m);
	suite_assert_check(st, ops);
	ops->close(st);
	suite_model_fini(&m);
}

/* Freed, never-issued and forged handles: -ENOENT, nothing damaged. */
static void suite_bad_handles(void **state)
{
	const struct store_suite *cfg = *state;
	const struct store_ops *ops = cfg->ops;
	struct store_usage u;
	struct suite_model m;
	store_handle_t h;
	struct store *st;
	struct rng r;
	unsigned bad = 0;

	rng_seed(&r, 0xbadull);
	suite_model_init(&m);
	st = suite_open(cfg, 0);
	assert_int_equal(ops->get(st, (store_handle_t){0}, suite_visit_never, NULL), -ENOENT);
	bad++;
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(suite_put(st, ops, &m, &r, suite_size(&r, 200 << 10)), 0);
	/* freed handles, also after their slot or entry is used again */
	for (unsigned i = 0; i < 100; i++) {
		h = m.obj[0].h;
		suite_free(st, ops, &m, 0);
		assert_int_equal(ops->get(st, h, suite_visit_never, NULL), -ENOENT);
		assert_int_equal(suite_put(st, ops, &m, &r, suite_size(&r, 200 << 10)), 0);
		assert_int_equal(ops->get(st, h, suite_visit_never, NULL), -ENOENT);
		bad += 2;
	}
	/* forged handles: random bits, live handles with one bit flipped */
	for (unsigned i = 0; i < 2000; i++) {
		bool live = false;

		h.v = i & 1 ? rng_next(&r)
			    : m.obj[rng_below(&r, m.n)].h.v ^ 1ull << rng_below(&r, 64);
		for (size_t k = 0; k < m.n && !live; k++)
			live = m.obj[k].h.v == h.v;
		if (live)
			continue;
		assert_int_equal(ops->get(st, h, suite_visit_never, NULL), -ENOENT);
		bad++;
	}
	ops->usage(st, &u);
	if (cfg->counts_bad)
		assert_int_equal(u.bad_get, bad);
	suite_assert_usage(st, ops, &m);
	assert_int_equal(suite_verify_all(st, ops, &m), -1);
	suite_assert_check(st, ops);
	ops->close(st);
	suite_model_fini(&m);
}

/* ---- concurrency ---- */

struct suite_thread {
	const struct store_suite *cfg;
	struct store *st;
	unsigned id, nops;
	uint64_t seed;
	struct suite_model m;
	char err[256]; /* the first failure, empty when none */
};

static void *suite_thread_main(void *arg)
{
	struct suite_thread *t = arg;
	const struct store_ops *ops = t->cfg->ops;
	struct suite_model *m = &t->m;
	struct rng r = {t->seed};

	for (unsigned op = 0; op < t->nops && !t->err[0]; op++) {
		uint64_t p = rng_below(&r, 1000);
		int ret;

		if (p < 420 && m->n < 300) {
			/* half from a few sizes that every thread uses, so that
			 * threads meet in the same classes; the rest mostly up
			 * to 70 KiB, now and then up to 400 KiB */
			static const size_t shared[] = {40, 700, 1500, 3000, 12000, 30000};
			size_t len = rng_below(&r, 2)	 ? shared[rng_below(&r, 6)]
				     : rng_below(&r, 50) ? suite_size(&r, 70 << 10)
							 : suite_size(&r, 400 << 10);

			ret = suite_put(t->st, ops, m, &r, len);
			if (ret)
				snprintf(t->err, sizeof(t->err), "thread %u op %u: put %zu: %d",
					 t->id, op, len, ret);
		} else if (p < 720 && m->n) {
			size_t i = rng_below(&r, m->n);

			ret = suite_get(t->st, ops, m, i);
			if (ret)
				snprintf(t->err, sizeof(t->err),
					 "thread %u op %u: get of %zu bytes: %d", t->id, op,
					 m->obj[i].len, ret);
		} else if (p < 960 && m->n) {
			suite_free(t->st, ops, m, rng_below(&r, m->n));
		} else if (p < 998 && ops->compact) {
			if (ops->compact(t->st) < 0)
				snprintf(t->err, sizeof(t->err), "thread %u: compact failed",
					 t->id);
		} else if (ops->check) {
			if (ops->check(t->st))
				snprintf(t->err, sizeof(t->err), "thread %u: check: %s", t->id,
					 errmsg_get());
		}
		if (m->ndead && !t->err[0]) {
			store_handle_t h = m->dead[rng_below(&r, m->ndead < 64 ? m->ndead : 64)];

			ret = ops->get(t->st, h, suite_visit_never, NULL);
			if (ret != -ENOENT)
				snprintf(t->err, sizeof(t->err),
					 "thread %u: get of a freed handle: %d", t->id, ret);
		}
	}
	for (size_t i = 0; i < m->n && !t->err[0]; i++)
		if (suite_get(t->st, ops, m, i))
			snprintf(t->err, sizeof(t->err), "thread %u: object %zu damaged at the end",
				 t->id, i);
	return NULL;
}

/* Threads put, get, free and compact at once, each against its own model. */
static void suite_concurrency(void **state)
{
	const struct store_suite *cfg = *state;
	const struct store_ops *ops = cfg->ops;
	unsigned nthreads = cfg->threads ? cfg->threads : 4;
	struct suite_thread *t = calloc(nthreads, sizeof(*t));
	uint64_t objects = 0, stored = 0;
	struct store_usage u;
	struct store *st;
	struct rng r;

	assert_non_null(t);
	rng_seed(&r, 0x7437eadull);
	st = suite_open(cfg, 0);
	for (unsigned i = 0; i < nthreads; i++) {
		t[i].cfg = cfg;
		t[i].st = st;
		t[i].id = i;
		t[i].nops = suite_scaled(cfg, 4000);
		t[i].seed = rng_next(&r) | 1;
		suite_model_init(&t[i].m);
	}
	pthread_t *tid = calloc(nthreads, sizeof(*tid));

	assert_non_null(tid);
	for (unsigned i = 0; i < nthreads; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, suite_thread_main, &t[i]), 0);
	for (unsigned i = 0; i < nthreads; i++)
		assert_int_equal(pthread_join(tid[i], NULL), 0);
	for (unsigned i = 0; i < nthreads; i++) {
		if (t[i].err[0])
			fail_msg("%s", t[i].err);
		objects += t[i].m.n;
		stored += t[i].m.stored;
	}
	ops->usage(st, &u);
	assert_int_equal(u.objects, objects);
	assert_int_equal(u.stored_bytes, stored);
	suite_assert_check(st, ops);
	/* one thread's compaction moved the others' objects: all still read */
	for (unsigned i = 0; i < nthreads; i++) {
		assert_int_equal(suite_verify_all(st, ops, &t[i].m), -1);
		while (t[i].m.n)
			suite_free(st, ops, &t[i].m, t[i].m.n - 1);
		suite_model_fini(&t[i].m);
	}
	ops->usage(st, &u);
	assert_int_equal(u.objects, 0);
	assert_int_equal(u.stored_bytes, 0);
	suite_assert_check(st, ops);
	ops->close(st);
	free(tid);
	free(t);
}

/*
 * fork with a medium the processes share (the Redis servers): between
 * prefork and the postfork hooks, parent and child each free 100 of 200
 * inherited objects and put 200 of their own, at the same time, each
 * against its own model; then each reads everything back and checks the
 * store.  Everything is freed at the end; the caller closes st.
 */
__attribute__((unused)) static void suite_fork_shared(const struct store_ops *ops,
						      struct store *st)
{
	struct suite_model m;
	struct rng r;
	int status, go[2];
	pid_t pid;
	char c = 0;

	assert_int_equal(pipe(go), 0);
	rng_seed(&r, 0xf0c8);
	suite_model_init(&m);
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(suite_put(st, ops, &m, &r, 1 + rng_below(&r, 9000)), 0);
	fflush(NULL);
	ops->prefork(st);
	pid = fork();
	if (pid == 0) {
		ops->postfork_child(st);
		for (unsigned i = 0; i < 100; i++)
			suite_free(st, ops, &m, rng_below(&r, m.n));
		for (unsigned i = 0; i < 200; i++)
			if (suite_put(st, ops, &m, &r, 1 + rng_below(&r, 9000)))
				_exit(2);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		if (suite_verify_all(st, ops, &m) != -1 || ops->check(st))
			_exit(1);
		ops->close(st);
		_exit(0);
	}
	ops->postfork_parent(st);
	assert_true(pid > 0);
	rng_seed(&r, 0xbeef);
	for (unsigned i = 0; i < 100; i++)
		suite_free(st, ops, &m, rng_below(&r, m.n));
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(suite_put(st, ops, &m, &r, 1 + rng_below(&r, 9000)), 0);
	assert_int_equal(write(go[1], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(go[0]);
	close(go[1]);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(suite_verify_all(st, ops, &m), -1);
	assert_int_equal(ops->check(st), 0);
	while (m.n)
		suite_free(st, ops, &m, 0);
	suite_model_fini(&m);
}

/* The suite's tests, for a cmocka test array; cfg is a (non-const) struct
 * store_suite *, as cmocka keeps the state as a void *.  Stores that do not
 * compact (cfg->compacts false: freed space goes back at once, as in the
 * file store) list STORE_SUITE_TESTS_NO_COMPACT instead, which leaves out
 * suite_limit_compacts rather than have it skip. */
#define STORE_SUITE_TESTS_NO_COMPACT(cfg)                                                          \
	cmocka_unit_test_prestate(suite_random_model, (cfg)),                                      \
		cmocka_unit_test_prestate(suite_lengths, (cfg)),                                   \
		cmocka_unit_test_prestate(suite_limit, (cfg)),                                     \
		cmocka_unit_test_prestate(suite_compaction, (cfg)),                                \
		cmocka_unit_test_prestate(suite_bad_handles, (cfg)),                               \
		cmocka_unit_test_prestate(suite_concurrency, (cfg))

#define STORE_SUITE_TESTS(cfg)                                                                     \
	cmocka_unit_test_prestate(suite_random_model, (cfg)),                                      \
		cmocka_unit_test_prestate(suite_lengths, (cfg)),                                   \
		cmocka_unit_test_prestate(suite_limit, (cfg)),                                     \
		cmocka_unit_test_prestate(suite_limit_compacts, (cfg)),                            \
		cmocka_unit_test_prestate(suite_compaction, (cfg)),                                \
		cmocka_unit_test_prestate(suite_bad_handles, (cfg)),                               \
		cmocka_unit_test_prestate(suite_concurrency, (cfg))

#endif

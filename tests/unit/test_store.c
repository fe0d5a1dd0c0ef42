/* SPDX-License-Identifier: MIT */
/* uswap-test-labels: threads */
/*
 * The store registry and the ram store: the generic store suite, then what
 * only the ram store promises (per-class locking, fork hooks, debug abort on
 * a double free, packing waste).
 */
#include "store_suite.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* the ram store's check and prefork hold all 161 of its locks (one per class) */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

static struct store_suite ram_suite = {
	.ops = &store_ram,
	.arg = NULL,
	.max_len = (2u << 20) + 4096,
	.compacts = true,
	.counts_bad = true,
};

static void test_registry(void **state)
{
	const char *arg = "x";
	char names[256];

	(void)state;
	assert_ptr_equal(store_find("ram", &arg), &store_ram);
	assert_null(arg);
	assert_ptr_equal(store_find("ram:", &arg), &store_ram);
	assert_null(arg);
	assert_ptr_equal(store_find("ram:opt=1", &arg), &store_ram);
	assert_string_equal(arg, "opt=1");
	assert_ptr_equal(store_find(NULL, &arg), &store_ram);
	assert_ptr_equal(store_find("", NULL), &store_ram);
	assert_null(store_find("ra", &arg));
	assert_null(arg);
	assert_null(store_find("rams", NULL));
	assert_null(store_find("RAM", NULL));
	assert_null(store_find("nope:ram", NULL));
	/* every name store_names() gives resolves, and to itself */
	snprintf(names, sizeof(names), "%s", store_names());
	for (char *save, *n = strtok_r(names, "; ", &save); n; n = strtok_r(NULL, "; ", &save)) {
		const struct store_ops *ops = store_find(n, NULL);

		assert_non_null(ops);
		assert_int_equal(strncmp(ops->name, n, strlen(ops->name)), 0);
		assert_true(n[strlen(ops->name)] == 0 || n[strlen(ops->name)] == ':');
		assert_int_equal(ops->version, STORE_OPS_VERSION);
	}
}

static void test_open_args(void **state)
{
	struct store *st;

	(void)state;
	errmsg_clear();
	assert_int_equal(store_ram.open("bogus=1", 0, &st), -EINVAL);
	assert_non_null(strstr(errmsg_get(), "bogus=1"));
	assert_int_equal(store_ram.open("", 0, &st), 0);
	store_ram.close(st);
	assert_int_equal(store_ram.open(NULL, 1 << 20, &st), 0);
	store_ram.close(st);
}

/* A double free is a caller bug: debug builds abort, others count it and
 * go on.  Run in a child so that the abort can be observed. */
static void test_double_free(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store_usage u;
		struct store *st;
		store_handle_t h, h2;
		char buf[100] = {1};

		/* the expected abort message would only confuse the log */
		if (!freopen("/dev/null", "w", stderr))
			_exit(3);
		if (store_ram.open(NULL, 0, &st) || store_ram.put(st, buf, sizeof(buf), &h) ||
		    store_ram.put(st, buf, sizeof(buf), &h2))
			_exit(2);
		store_ram.free(st, h);
		store_ram.free(st, h); /* aborts in debug builds */
		store_ram.usage(st, &u);
		_exit(u.bad_free == 1 && u.objects == 1 && !store_ram.check(st) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
#ifdef USWAP_DEBUG
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
#else
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

/* ---- a get holds only its own class ---- */

struct blocker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool inside, release, compacted;
	int waited; /* 0 released in time, 1 timed out */
	struct store *st;
	store_handle_t h;
	int get_ret;
};

static int blocker_visit(const void *obj, size_t len, void *arg)
{
	struct blocker *b = arg;
	struct timespec until;
	int ret = 0;

	(void)obj;
	(void)len;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&b->lock);
	b->inside = true;
	pthread_cond_broadcast(&b->cond);
	while (!b->release && ret == 0)
		ret = pthread_cond_timedwait(&b->cond, &b->lock, &until);
	b->waited = b->release ? 0 : 1;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void *blocker_get(void *arg)
{
	struct blocker *b = arg;

	b->get_ret = store_ram.get(b->st, b->h, blocker_visit, b);
	return NULL;
}

static void *blocker_compact(void *arg)
{
	struct blocker *b = arg;

	store_ram.compact(b->st);
	pthread_mutex_lock(&b->lock);
	b->compacted = true;
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static void test_class_locks(void **state)
{
	struct blocker b = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	static char buf[64 << 10];
	store_handle_t h2;
	pthread_t getter, compactor;
	bool compacted;

	(void)state;
#if defined(USWAP_DEBUG) && USWAP_DEBUG >= 2
	/* the expensive assertion tier checks the whole store after every
	 * put and free, under every class lock: classes block each other */
	skip();
#endif
	assert_int_equal(store_ram.open(NULL, 0, &b.st), 0);
	assert_int_equal(store_ram.put(b.st, buf, 3000, &b.h), 0);
	assert_int_equal(pthread_create(&getter, NULL, blocker_get, &b), 0);
	pthread_mutex_lock(&b.lock);
	while (!b.inside)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);

	/* the getter holds its class: puts, gets and frees of other classes
	 * go on (were they blocked, the getter would time out first) */
	for (size_t len = 16; len <= sizeof(buf); len *= 2) {
		if (len >= 2048 && len <= 4096)
			continue;
		assert_int_equal(store_ram.put(b.st, buf, len, &h2), 0);
		assert_int_equal(store_ram.get(b.st, h2, suite_visit_never, NULL), 99);
		store_ram.free(b.st, h2);
	}
	/* compaction must wait for the getter: it would move the object */
	assert_int_equal(pthread_create(&compactor, NULL, blocker_compact, &b), 0);
	usleep(100 * 1000);
	pthread_mutex_lock(&b.lock);
	compacted = b.compacted;
	b.release = true;
	pthread_cond_broadcast(&b.cond);
	pthread_mutex_unlock(&b.lock);
	assert_int_equal(pthread_join(getter, NULL), 0);
	assert_int_equal(pthread_join(compactor, NULL), 0);
	assert_false(compacted);
	assert_int_equal(b.waited, 0);
	assert_int_equal(b.get_ret, 0);
	assert_int_equal(store_ram.check(b.st), 0);
	store_ram.close(b.st);
}

/* prefork/postfork: a child forked while other threads use the store gets
 * a store with no lock held and can use it. */
struct churn {
	struct store *st;
	volatile int stop;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	static char buf[8192];
	store_handle_t h;

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		if (store_ram.put(c->st, buf, 100 + (size_t)rand() % 8000, &h) == 0)
			store_ram.free(c->st, h);
		store_ram.compact(c->st);
	}
	return NULL;
}

static void test_fork_hooks(void **state)
{
	struct churn c = {0};
	char buf[5000] = {7};
	pthread_t tid;
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(store_ram.open(NULL, 0, &c.st), 0);
	assert_int_equal(pthread_create(&tid, NULL, churn_main, &c), 0);
	usleep(20 * 1000);
	fflush(NULL);
	store_ram.prefork(c.st);
	pid = fork();
	if (pid == 0) {
		store_handle_t h;
		struct suite_cmp cmp = {(const unsigned char *)buf, sizeof(buf)};

		store_ram.postfork_child(c.st);
		if (store_ram.put(c.st, buf, sizeof(buf), &h) ||
		    store_ram.get(c.st, h, suite_visit_cmp, &cmp) || store_ram.compact(c.st) < 0 ||
		    store_ram.check(c.st))
			_exit(1);
		_exit(0);
	}
	store_ram.postfork_parent(c.st);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELAXED);
	assert_int_equal(pthread_join(tid, NULL), 0);
	assert_int_equal(store_ram.check(c.st), 0);
	store_ram.close(c.st);
}

/*
 * The handle table's memory against a model of its growth: a class takes
 * entries from the table 32 at a time (index 0 is never used), the table
 * maps chunks of 1024 entries of 12 bytes as they are needed, so after n
 * puts of one size it holds 1024 * ceil((1 + 32 * ceil(n / 32)) / 1024)
 * entries; everything else (the store's own mapping, the directory leaf)
 * is there from the open.
 */
static void test_table_meta(void **state)
{
	static const unsigned counts[] = { 1, 31, 32, 33, 1000, 1023, 1024, 5000, 20000 };
	static unsigned char obj[100];
	struct store_usage u0, u;
	store_handle_t *h = calloc(20000, sizeof(*h));
	struct store *st;
	unsigned n = 0;

	(void)state;
	assert_non_null(h);
	assert_int_equal(store_ram.open(NULL, 0, &st), 0);
	store_ram.usage(st, &u0);
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		uint64_t handed, cap;

		for (; n < counts[k]; n++)
			assert_int_equal(store_ram.put(st, obj, sizeof(obj), &h[n]), 0);
		handed = 1 + 32 * ((n + 31) / 32);
		cap = 1024 * ((handed + 1023) / 1024);
		store_ram.usage(st, &u);
		if (u.meta_bytes != u0.meta_bytes + (cap - 1024) * 12)
			fail_msg("%u objects: meta_bytes %llu, the model says %llu", n,
				 (unsigned long long)u.meta_bytes,
				 (unsigned long long)(u0.meta_bytes + (cap - 1024) * 12));
	}
	/* freeing keeps the table (entries are reused, chunks never unmapped) */
	for (unsigned i = 0; i < n; i++)
		store_ram.free(st, h[i]);
	store_ram.usage(st, &u0);
	assert_int_equal(u0.meta_bytes, u.meta_bytes);
	assert_int_equal(store_ram.check(st), 0);
	store_ram.close(st);
	free(h);
}

/* Packing waste on a realistic mix of objects of 256 B and more: what the
 * pool holds beyond the objects' bytes (class rounding, block tails and
 * headers, partly filled blocks, page rounding of large objects). */
static void test_waste(void **state)
{
	static unsigned char buf[(2 << 20) + 4096];
	struct store_usage u;
	struct store *st;
	struct rng r;
	unsigned n = 0;

	(void)state;
	rng_seed(&r, 0x3a57eull);
	assert_int_equal(store_ram.open(NULL, 0, &st), 0);
	/* about 150 MiB of objects; large folios rarer than in the suite's mix */
	for (uint64_t total = 0; total < (150u << 20); n++) {
		store_handle_t h;
		size_t len;

		do
			len = suite_size(&r, sizeof(buf));
		while (len < 256 || (len > (128 << 10) && rng_below(&r, 5)));
		assert_int_equal(store_ram.put(st, buf, len, &h), 0);
		total += len;
	}
	store_ram.usage(st, &u);
	fprintf(stderr,
		"# waste: %u objects, %llu bytes stored, pool %llu (+%.2f%%), metadata %llu "
		"(%.1f bytes per object)\n",
		n, (unsigned long long)u.stored_bytes, (unsigned long long)u.pool_bytes,
		100.0 * (double)(u.pool_bytes - u.stored_bytes) / (double)u.stored_bytes,
		(unsigned long long)u.meta_bytes, (double)u.meta_bytes / n);
	assert_true((u.pool_bytes - u.stored_bytes) * 100 < u.stored_bytes * 6);
	assert_int_equal(store_ram.check(st), 0);
	store_ram.close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),    cmocka_unit_test(test_open_args),
		STORE_SUITE_TESTS(&ram_suite),	    cmocka_unit_test(test_double_free),
		cmocka_unit_test(test_class_locks), cmocka_unit_test(test_fork_hooks),
		cmocka_unit_test(test_waste),       cmocka_unit_test(test_table_meta),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

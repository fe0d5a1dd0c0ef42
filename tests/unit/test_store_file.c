/* SPDX-License-Identifier: MIT */
/* uswap-test-labels: threads */
/*
 * The file store: the generic store suite, then what only it promises: an
 * unnamed private file, space given back when objects are freed, a full
 * filesystem reported (a 1 MiB tmpfs mounted for the test), a file cut short
 * read as an error and never as wrong bytes, short transfers of the
 * io_uring layer completed, and fork (parent and child keep each other's
 * objects).
 */
#include "store_suite.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/uring_pool.h"

TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

int store_file_fd(struct store *st);

static char test_dir[64];

static struct store_suite file_suite = {
	.ops = &store_file,
	.arg = test_dir,
	.max_len = (2u << 20) + 4096,
	.compacts = false,
	.counts_bad = true,
	.scale = 50,
};

static int dir_setup(void **state)
{
	(void)state;
	strcpy(test_dir, "/tmp/uswap-file-XXXXXX");
	if (!mkdtemp(test_dir))
		return -1;
	return 0;
}

static int dir_teardown(void **state)
{
	(void)state;
	rmdir(test_dir);
	return 0;
}

static struct store *open_in(const char *dir, size_t limit)
{
	struct store *st = NULL;
	int rc = store_file.open(dir, limit, &st);

	if (rc)
		fail_msg("file store open in %s: %d (%s)", dir, rc, errmsg_get());
	return st;
}

static void test_open_args(void **state)
{
	struct store *st;
	char path[128];
	int fd;

	(void)state;
	assert_int_equal(store_file.open(NULL, 0, &st), -EINVAL);
	assert_non_null(strstr(errmsg_get(), "file:DIR"));
	assert_int_equal(store_file.open("/nonexistent/uswap", 0, &st), -EINVAL);
	assert_non_null(strstr(errmsg_get(), "/nonexistent/uswap"));
	snprintf(path, sizeof(path), "%s/plain", test_dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_file.open(path, 0, &st), -EINVAL);
	assert_non_null(strstr(errmsg_get(), "not a directory"));
	unlink(path);
	/* the registry */
	{
		const char *arg;

		assert_ptr_equal(store_find("file:/x/y", &arg), &store_file);
		assert_string_equal(arg, "/x/y");
	}
}

/* The file has no name, is 0600, and nothing else appears in the directory. */
static void test_private_file(void **state)
{
	struct store *st = open_in(test_dir, 0);
	char link[64], target[256];
	struct stat sb;
	ssize_t n;
	int fd = store_file_fd(st);

	(void)state;
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_nlink, 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = 0;
	assert_non_null(strstr(target, "(deleted)"));
	assert_int_equal(rmdir(test_dir), 0); /* empty */
	assert_int_equal(mkdir(test_dir, 0700), 0);
	store_file.close(st);
}

static int visit_copy(const void *obj, size_t len, void *arg)
{
	memcpy(arg, obj, len);
	return 0;
}

/* Freed objects give their blocks back (fallocate PUNCH_HOLE). */
static void test_space_returned(void **state)
{
	static unsigned char buf[256 << 10], back[256 << 10];
	struct store *st = open_in(test_dir, 0);
	store_handle_t h[64];
	struct stat full, after;
	struct rng r;

	(void)state;
	rng_seed(&r, 0xf11e);
	for (unsigned i = 0; i < 64; i++) {
		/* odd sizes: runs share 4 KiB blocks with their neighbours */
		size_t len = 3000 + rng_below(&r, sizeof(buf) - 3000);

		suite_fill(&r, buf, len);
		assert_int_equal(store_file.put(st, buf, len, &h[i]), 0);
	}
	assert_int_equal(fstat(store_file_fd(st), &full), 0);
	assert_true(full.st_blocks * 512 >= 64 * 3000);
	for (unsigned i = 0; i < 64; i++)
		store_file.free(st, h[i]);
	assert_int_equal(store_file.check(st), 0);
	assert_int_equal(fstat(store_file_fd(st), &after), 0);
	/* every block went back: the neighbours of each run were free */
	assert_int_equal(after.st_blocks, 0);
	/* and the space is used again */
	suite_fill(&r, buf, 5000);
	assert_int_equal(store_file.put(st, buf, 5000, &h[0]), 0);
	assert_int_equal(store_file.get(st, h[0], visit_copy, back), 0);
	assert_memory_equal(buf, back, 5000);
	store_file.close(st);
}

/* A full filesystem: -ENOSPC with a message, nothing stored damaged, room
 * again after frees. */
static void test_full_filesystem(void **state)
{
	static unsigned char buf[64 << 10];
	struct suite_model m;
	struct store_usage u;
	struct store *st;
	struct rng r;
	char dir[64];
	int rc = 0;

	(void)state;
	strcpy(dir, "/tmp/uswap-tmpfs-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700")) {
		rmdir(dir);
		fail_msg("mounting a 1 MiB tmpfs on %s for the full-filesystem test: %s (the test "
			 "needs CAP_SYS_ADMIN)",
			 dir, strerror(errno));
	}
	rng_seed(&r, 0xf011);
	suite_model_init(&m);
	st = open_in(dir, 0);
	for (unsigned i = 0; i < 100 && rc == 0; i++)
		rc = suite_put(st, &store_file, &m, &r, 20000 + rng_below(&r, 30000));
	assert_int_equal(rc, -ENOSPC);
	assert_non_null(strstr(errmsg_get(), "is full"));
	assert_non_null(strstr(errmsg_get(), dir));
	assert_true(m.n >= 10);
	store_file.usage(st, &u);
	assert_true(u.fail_nospc >= 1);
	suite_assert_usage(st, &store_file, &m);
	assert_int_equal(store_file.check(st), 0);
	assert_int_equal(suite_verify_all(st, &store_file, &m), -1);
	/* a larger object than what is left fails the same way */
	assert_int_equal(store_file.put(st, buf, sizeof(buf), &(store_handle_t){ 0 }), -ENOSPC);
	/* frees give the space back: it fits now */
	for (size_t n = m.n / 2; n; n--)
		suite_free(st, &store_file, &m, rng_below(&r, m.n));
	assert_int_equal(suite_put(st, &store_file, &m, &r, 40000), 0);
	assert_int_equal(suite_verify_all(st, &store_file, &m), -1);
	suite_assert_usage(st, &store_file, &m);
	assert_int_equal(store_file.check(st), 0);
	store_file.close(st);
	suite_model_fini(&m);
	assert_int_equal(umount(dir), 0);
	rmdir(dir);
}

/* Someone cuts the file short: the object at the end reads as an error. */
static void test_cut_short(void **state)
{
	static unsigned char buf[10000];
	struct suite_model m;
	struct store_usage u;
	struct store *st = open_in(test_dir, 0);
	struct stat sb;
	struct rng r;

	(void)state;
	rng_seed(&r, 0xc07);
	suite_model_init(&m);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(suite_put(st, &store_file, &m, &r, sizeof(buf)), 0);
	assert_int_equal(fstat(store_file_fd(st), &sb), 0);
	assert_int_equal(ftruncate(store_file_fd(st), sb.st_size - 3000), 0);
	/* the last object is cut: -EIO, the visitor never called */
	assert_int_equal(store_file.get(st, m.obj[7].h, suite_visit_never, NULL), -EIO);
	assert_non_null(strstr(errmsg_get(), "cut short"));
	store_file.usage(st, &u);
	assert_int_equal(u.errors, 1);
	/* the others are whole */
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(suite_get(st, &store_file, &m, i), 0);
	while (m.n)
		suite_free(st, &store_file, &m, 0);
	store_file.close(st);
	suite_model_fini(&m);
}

/* ---- the io_uring layer completes short transfers ---- */

struct dribble {
	int fd;
	const unsigned char *p;
	size_t len;
};

/* Write into a pipe in small pieces with pauses: every read of the other
 * end comes back short. */
static void *dribble_main(void *arg)
{
	struct dribble *d = arg;
	size_t done = 0;

	while (done < d->len) {
		size_t n = d->len - done < 777 ? d->len - done : 777;
		ssize_t w = write(d->fd, d->p + done, n);

		if (w <= 0)
			break;
		done += (size_t)w;
		usleep(200);
	}
	close(d->fd);
	return NULL;
}

static void test_uring_short_reads(void **state)
{
	static unsigned char want[100000], got[100000 + 100];
	struct uring_pool *pool;
	struct dribble d;
	pthread_t tid;
	struct rng r;
	int p[2];

	(void)state;
	rng_seed(&r, 0x5407);
	suite_fill(&r, want, sizeof(want));
	assert_int_equal(uring_pool_open(2, &pool), 0);
	assert_int_equal(pipe(p), 0);
	d = (struct dribble){ p[1], want, sizeof(want) };
	assert_int_equal(pthread_create(&tid, NULL, dribble_main, &d), 0);
	/* asking for more than will come: the whole, then end of file */
	assert_int_equal(uring_pool_read(pool, p[0], got, sizeof(got), URING_POS_CURRENT),
			 (long)sizeof(want));
	assert_memory_equal(want, got, sizeof(want));
	assert_int_equal(pthread_join(tid, NULL), 0);
	close(p[0]);
	/* a write to a pipe nobody reads: an error, not a hang or a success */
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(uring_pool_write(pool, p[1], want, 10, URING_POS_CURRENT), -EPIPE);
	close(p[1]);
	uring_pool_close(pool);
}

/* ---- fork ---- */

/* Parent and child share the file: each frees what it likes and writes new
 * objects, and neither sees the other's objects change. */
static void test_fork(void **state)
{
	struct suite_model m;
	struct store *st = open_in(test_dir, 0);
	struct rng r;
	int status, go[2];
	pid_t pid;
	char c = 0;

	(void)state;
	assert_int_equal(pipe(go), 0);
	rng_seed(&r, 0xf0c);
	suite_model_init(&m);
	for (unsigned i = 0; i < 300; i++)
		assert_int_equal(suite_put(st, &store_file, &m, &r, suite_size(&r, 100 << 10)), 0);
	fflush(NULL);
	store_file.prefork(st);
	pid = fork();
	if (pid == 0) {
		store_file.postfork_child(st);
		/* free half the inherited objects, write many new ones, which
		 * would land on the parent's freed space were the file shared */
		for (unsigned i = 0; i < 150; i++)
			suite_free(st, &store_file, &m, rng_below(&r, m.n));
		for (unsigned i = 0; i < 300; i++)
			if (suite_put(st, &store_file, &m, &r, suite_size(&r, 100 << 10)))
				_exit(2);
		/* wait for the parent's frees and puts */
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		if (suite_verify_all(st, &store_file, &m) != -1 || store_file.check(st))
			_exit(1);
		_exit(0);
	}
	store_file.postfork_parent(st);
	assert_true(pid > 0);
	/* the parent does the same, with other choices */
	rng_seed(&r, 0xbeef);
	for (unsigned i = 0; i < 150; i++)
		suite_free(st, &store_file, &m, rng_below(&r, m.n));
	for (unsigned i = 0; i < 300; i++)
		assert_int_equal(suite_put(st, &store_file, &m, &r, suite_size(&r, 100 << 10)), 0);
	assert_int_equal(write(go[1], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(go[0]);
	close(go[1]);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(suite_verify_all(st, &store_file, &m), -1);
	assert_int_equal(store_file.check(st), 0);
	suite_assert_usage(st, &store_file, &m);
	while (m.n)
		suite_free(st, &store_file, &m, 0);
	assert_int_equal(store_file.check(st), 0);
	store_file.close(st);
	suite_model_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_args),
		cmocka_unit_test(test_private_file),
		STORE_SUITE_TESTS_NO_COMPACT(&file_suite),
		cmocka_unit_test(test_space_returned),
		cmocka_unit_test(test_full_filesystem),
		cmocka_unit_test(test_cut_short),
		cmocka_unit_test(test_uring_short_reads),
		cmocka_unit_test(test_fork),
	};

	return cmocka_run_group_tests(tests, dir_setup, dir_teardown);
}

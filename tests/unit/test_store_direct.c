/* SPDX-License-Identifier: MIT */
/* uswap-test-labels: threads */
/*
 * The file store's direct I/O, on a real disk (/var/tmp): the store suite
 * there; the file open with O_DIRECT (read back from /proc/self/fdinfo);
 * objects of every awkward length against shadow copies; and the page
 * cache not holding the file's data (mincore on the file, checked first on
 * a buffered file to show that the method sees cached pages).  On tmpfs the
 * store stays buffered.  The tier (ram,file:DIR) writes back through it.
 *
 * /var/tmp must be on a filesystem with direct I/O (statx STATX_DIOALIGN):
 * where it is not, the test fails and says so.
 */
#include "store_suite.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

int store_file_fd(struct store *st);

static char disk_dir[64];

static struct store_suite direct_suite = {
	.ops = &store_file,
	.arg = disk_dir,
	.max_len = (2u << 20) + 4096,
	.compacts = false,
	.counts_bad = true,
	.scale = 50,
};

static int dir_setup(void **state)
{
	(void)state;
	strcpy(disk_dir, "/var/tmp/uswap-direct-XXXXXX");
	if (!mkdtemp(disk_dir)) {
		fprintf(stderr, "test_store_direct: mkdtemp %s: %s\n", disk_dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int dir_teardown(void **state)
{
	(void)state;
	rmdir(disk_dir);
	return 0;
}

static struct store *open_in(const struct store_ops *ops, const char *arg, size_t limit)
{
	struct store *st = NULL;
	int rc = ops->open(arg, limit, &st);

	if (rc)
		fail_msg("%s store open in %s: %d (%s)", ops->name, arg, rc, errmsg_get());
	return st;
}

static uint64_t direct_io_of(const struct store_ops *ops, struct store *st)
{
	struct store_usage u;

	ops->usage(st, &u);
	return u.direct_io;
}

/* The open flags of fd, as the kernel reports them (octal in fdinfo). */
static unsigned long fd_flags(int fd)
{
	char path[64], line[128];
	unsigned long flags = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "flags: %lo", &flags) == 1)
			break;
	fclose(f);
	return flags;
}

/* Pages of fd's first len bytes that are in the page cache. */
static size_t cached_pages(int fd, size_t len)
{
	size_t pages = (len + 4095) / 4096, n = 0;
	unsigned char *vec;
	void *map;

	if (!pages)
		return 0;
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0); /* never touched */
	assert_true(map != MAP_FAILED);
	vec = malloc(pages);
	assert_non_null(vec);
	assert_int_equal(mincore(map, len, vec), 0);
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	munmap(map, len);
	return n;
}

static void require_direct(struct store *st)
{
	if (direct_io_of(&store_file, st) != 1)
		fail_msg("the file store in %s is not using direct I/O: /var/tmp must be on a "
			 "disk filesystem whose statx reports STATX_DIOALIGN (ext4, xfs, ...)",
			 disk_dir);
}

/* The file is open with O_DIRECT; objects of every length around the
 * granule and page sizes read back as written. */
static void test_direct_lengths(void **state)
{
	static const size_t lens[] = { 0,	  1,	     511,	  512,	       513,
				       4095,	  4096,	     4097,	  65535,       65536,
				       65537,	  100000,    (1u << 20) + 1, (2u << 20) + 4096, 7 };
	struct store *st = open_in(&store_file, disk_dir, 0);
	struct suite_model m;
	struct rng r;

	(void)state;
	require_direct(st);
	assert_true(fd_flags(store_file_fd(st)) & O_DIRECT);
	rng_seed(&r, 0xd10);
	suite_model_init(&m);
	for (unsigned round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			assert_int_equal(suite_put(st, &store_file, &m, &r, lens[i]), 0);
	assert_int_equal(suite_verify_all(st, &store_file, &m), -1);
	/* free about half; new objects land in the holes, neighbours intact */
	for (size_t i = 0; i < m.n; i++)
		suite_free(st, &store_file, &m, i);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		assert_int_equal(suite_put(st, &store_file, &m, &r, lens[i]), 0);
	assert_int_equal(suite_verify_all(st, &store_file, &m), -1);
	suite_assert_usage(st, &store_file, &m);
	suite_assert_check(st, &store_file);
	while (m.n)
		suite_free(st, &store_file, &m, 0);
	suite_model_fini(&m);
	store_file.close(st);
}

/* 48 MiB stored and read back: the page cache holds none of it.  First
 * the method itself: a file written with plain write(2) in the same
 * directory does show up cached. */
static void test_no_page_cache(void **state)
{
	static unsigned char block[1 << 20];
	const size_t control_len = 8u << 20, data_len = 48u << 20;
	struct store *st;
	struct suite_model m;
	struct rng r;
	struct stat sb;
	char path[128];
	size_t done = 0, cached;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/control", disk_dir);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	unlink(path);
	memset(block, 0x5a, sizeof(block));
	for (size_t off = 0; off < control_len; off += sizeof(block))
		assert_int_equal(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
	cached = cached_pages(fd, control_len);
	close(fd);
	if (cached < control_len / 4096 / 2)
		fail_msg("mincore saw %zu of %zu pages of a buffered file cached: the page cache "
			 "check cannot be trusted here",
			 cached, control_len / 4096);

	st = open_in(&store_file, disk_dir, 0);
	require_direct(st);
	rng_seed(&r, 0xcace);
	suite_model_init(&m);
	while (done < data_len) {
		size_t len = 1000 + rng_below(&r, 70000); /* compressed folios */

		assert_int_equal(suite_put(st, &store_file, &m, &r, len), 0);
		done += len;
	}
	assert_int_equal(suite_verify_all(st, &store_file, &m), -1);
	assert_int_equal(fstat(store_file_fd(st), &sb), 0);
	assert_true((size_t)sb.st_size >= data_len);
	cached = cached_pages(store_file_fd(st), (size_t)sb.st_size);
	/* none expected; a few pages of slack for the kernel's own doings */
	if (cached > 16)
		fail_msg("%zu pages (%zu KiB) of the store's %zu-byte file are in the page cache "
			 "after writing and reading %zu bytes with direct I/O",
			 cached, cached * 4, (size_t)sb.st_size, done);
	suite_assert_usage(st, &store_file, &m);
	while (m.n)
		suite_free(st, &store_file, &m, 0);
	suite_model_fini(&m);
	store_file.close(st);
}

/* tmpfs is memory: the store stays buffered there, with exact lengths. */
static void test_tmpfs_buffered(void **state)
{
	struct suite_model m;
	struct store *st;
	struct rng r;
	char dir[64];

	(void)state;
	strcpy(dir, "/tmp/uswap-tmpfs-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=16m,mode=0700")) {
		rmdir(dir);
		fail_msg("mounting a tmpfs on %s: %s (the test needs CAP_SYS_ADMIN)", dir,
			 strerror(errno));
	}
	st = open_in(&store_file, dir, 0);
	assert_int_equal(direct_io_of(&store_file, st), 0);
	assert_false(fd_flags(store_file_fd(st)) & O_DIRECT);
	rng_seed(&r, 0x7f5);
	suite_model_init(&m);
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(suite_put(st, &store_file, &m, &r, suite_size(&r, 100 << 10)), 0);
	assert_int_equal(suite_verify_all(st, &store_file, &m), -1);
	suite_assert_check(st, &store_file);
	while (m.n)
		suite_free(st, &store_file, &m, 0);
	suite_model_fini(&m);
	store_file.close(st);
	assert_int_equal(umount(dir), 0);
	rmdir(dir);
}

/* The tier's writeback goes to the direct file: objects that left ram read
 * back whole. */
static void test_tier_writeback(void **state)
{
	struct suite_model m;
	struct store_usage u;
	struct store *st;
	struct rng r;
	char arg[128];

	(void)state;
	snprintf(arg, sizeof(arg), "%s,ram=1M", disk_dir);
	st = open_in(&store_tier, arg, 0);
	assert_int_equal(direct_io_of(&store_tier, st), 1);
	rng_seed(&r, 0x71e7);
	suite_model_init(&m);
	for (unsigned i = 0; i < 400; i++)
		assert_int_equal(suite_put(st, &store_tier, &m, &r, 2000 + rng_below(&r, 30000)), 0);
	store_tier.usage(st, &u);
	assert_true(u.writebacks > 0);
	assert_int_equal(u.errors, 0);
	assert_int_equal(suite_verify_all(st, &store_tier, &m), -1);
	suite_assert_usage(st, &store_tier, &m);
	suite_assert_check(st, &store_tier);
	while (m.n)
		suite_free(st, &store_tier, &m, 0);
	suite_model_fini(&m);
	store_tier.close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_lengths),
		cmocka_unit_test(test_no_page_cache),
		cmocka_unit_test(test_tmpfs_buffered),
		cmocka_unit_test(test_tier_writeback),
		STORE_SUITE_TESTS_NO_COMPACT(&direct_suite),
	};

	return cmocka_run_group_tests(tests, dir_setup, dir_teardown);
}

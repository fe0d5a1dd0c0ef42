/* SPDX-License-Identifier: MIT */
/*
 * The file store, "file:DIR": objects in an unnamed file of DIR, read and
 * written whole through io_uring (uring_pool.c).
 *
 * The file.  Made with O_TMPFILE (mode 0600; where the filesystem has no
 * O_TMPFILE, a 0600 file made with mkostemp and unlinked at once): nobody
 * else can open it, and it disappears with the last descriptor, also when
 * the process is killed.
 *
 * Direct I/O.  The file is written and read with O_DIRECT where its
 * filesystem says it can (statx STATX_DIOALIGN, with an alignment of 4 KiB
 * at most): the page cache would otherwise keep a second copy of what was
 * swapped out, in RAM and outside any budget, and a store meant to carry
 * data past RAM would not.  Then granules are as large as the alignment
 * (512 bytes at least), writes are padded with zeros to whole granules and
 * go through a page-aligned per-thread buffer, and reads read whole
 * granules.  Where the filesystem does not say it can (tmpfs, which is
 * memory anyway; filesystems or kernels without STATX_DIOALIGN) or refuses
 * O_DIRECT, the file is read and written through the page cache, exactly
 * (no padding).  The mode is the store's counter direct_io
 * (`store_direct_io` in uswap stat).
 *
 * Space.  The file is cut into granules (512 bytes, or the direct I/O
 * alignment); an object takes a run
 * of whole granules, found next-fit in a bitmap (one bit per granule) from
 * a cursor, so that the file is filled once before holes are revisited; a
 * run that fits nowhere goes at the end.  A freed run is given back to the
 * filesystem at once with fallocate(PUNCH_HOLE): the whole 4 KiB blocks it
 * covers, widened to blocks it shares with free neighbours.  The punch
 * happens under the store lock, before the run can be given to a put: a
 * punch that came after a new object's write would zero it.  pool_bytes is
 * the granules in use; the limit (store_limit) bounds it.
 *
 * Errors.  A write the filesystem refuses (ENOSPC, EDQUOT) fails the put with
 * -ENOSPC and a message naming the file system: the runtime then keeps the
 * folio resident.  A short read (the file shorter than the object: someone
 * truncated it) fails the get with -EIO and a message, never with wrong
 * bytes.  I/O happens outside the lock.
 *
 * fork.  Parent and child share the file (the same open file).  So that no
 * process destroys what the other still reads, and no two processes write
 * the same place:
 *   - prefork marks every live object of the store's own file SHARED: when
 *     the parent frees one, its space is kept (held_bytes), never reused
 *     nor punched, for the child may still read it;
 *   - the child makes a file of its own in the same directory (a new
 *     segment) for everything it writes from then on; the objects it
 *     inherited stay in the parent's file, which it only reads, and freeing
 *     them there only forgets them.
 * So the space of objects alive at a fork is given back only when the file
 * is closed by every process; the segments are at most FILE_SEGS_MAX deep
 * (a process forked from a fork of a fork ...: past that, puts fail).
 *
 * Lock: one mutex per store (the table, the bitmap, the counters; the punch
 * of a freed run).  Memory from os_mem_map, not malloc.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/assert.h"
#include "../core/errmsg.h"
#include "../os/os.h"
#include "objtable.h"
#include "uring_pool.h"

#define FILE_GRAN_SHIFT 9u     /* 512-byte granules, unless direct I/O needs more */
#define FILE_DIRECT_SHIFT_MAX 12u /* direct I/O alignments beyond 4 KiB: buffered */
#define FILE_BLOCK 4096u
#define FILE_SEGS_MAX 16u
#define FILE_MAX_LEN ((16u << 20) - 1)
#define FILE_RINGS 4u

#define FILE_SHARED 0x1u /* entry flag: alive at a fork, its space is kept */

struct file_store {
	pthread_mutex_t lock;
	struct objtable table;
	uint64_t *bitmap;     /* one bit per granule of the own segment */
	uint64_t bm_words;    /* mapped */
	uint64_t nbits;       /* granules the own segment spans */
	uint64_t cursor;      /* next-fit start */
	uint64_t used_gran;   /* bits set */
	uint64_t held_gran;   /* of them: freed here, kept for a forked process */
	uint64_t foreign_gran; /* live objects in other processes' segments */
	uint64_t limit_gran;  /* 0 = no limit */
	unsigned gran_shift;  /* granule size, and direct I/O alignment if direct */
	bool direct;          /* O_DIRECT: padded, aligned I/O */
	int seg_fd[FILE_SEGS_MAX];
	unsigned nsegs, own;
	bool broken;          /* a forked child without a file of its own */
	struct uring_pool *io;
	struct store_usage u; /* objects, stored_bytes and the counters */
	char dir[PATH_MAX];
};

static uint64_t gran_of(const struct file_store *s, size_t len)
{
	return ((uint64_t)len + (1u << s->gran_shift) - 1) >> s->gran_shift;
}

/* ---- the per-thread I/O buffer (not malloc: see the header) ---- */

/* The header has a page of its own, so that the data is page-aligned, as
 * direct I/O needs. */
#define FILE_BUF_DATA 4096u

struct file_buf {
	size_t cap;
};

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

static void buf_release(void *p)
{
	struct file_buf *b = p;

	os_mem_unmap(b, FILE_BUF_DATA + b->cap);
}

static void buf_key_make(void)
{
	pthread_key_create(&buf_key, buf_release);
}

static char *buf_get(size_t len)
{
	struct file_buf *b;
	size_t cap;

	pthread_once(&buf_once, buf_key_make);
	b = pthread_getspecific(buf_key);
	if (b && b->cap >= len)
		return (char *)b + FILE_BUF_DATA;
	cap = (len + 65535) & ~(size_t)65535;
	if (b)
		buf_release(b);
	b = os_mem_map(FILE_BUF_DATA + cap);
	pthread_setspecific(buf_key, b);
	if (!b)
		return NULL;
	b->cap = cap;
	return (char *)b + FILE_BUF_DATA;
}

/* ---- the file ---- */

static int file_make(const char *dir, int *fd_out)
{
	char path[PATH_MAX + 32];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* no O_TMPFILE here: a private name, unlinked at once */
		snprintf(path, sizeof(path), "%s/.uswap-store-XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0 && (fchmod(fd, 0600) || unlink(path))) {
			int err = -errno;

			close(fd);
			unlink(path);
			errno = -err;
			fd = -1;
		}
	}
	if (fd < 0)
		return -errno;
	*fd_out = fd;
	return 0;
}

/*
 * Turn on direct I/O for fd if its filesystem says it can, with an
 * alignment (of file offsets and of memory) of at most 1 << max_shift.
 * @return the shift of the alignment, at least FILE_GRAN_SHIFT; 0 when fd
 *         stays buffered.
 */
static unsigned file_direct_enable(int fd, unsigned max_shift)
{
	struct statx sx;
	unsigned align, shift = FILE_GRAN_SHIFT;
	int flags;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) || !(sx.stx_mask & STATX_DIOALIGN))
		return 0; /* the filesystem does not say (tmpfs: memory anyway) */
	if (!sx.stx_dio_offset_align || !sx.stx_dio_mem_align)
		return 0; /* it says it cannot */
	align = sx.stx_dio_offset_align > sx.stx_dio_mem_align ? sx.stx_dio_offset_align
							       : sx.stx_dio_mem_align;
	if (align & (align - 1))
		return 0;
	while ((1u << shift) < align)
		shift++;
	if (shift > max_shift)
		return 0;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_DIRECT))
		return 0; /* refused after all: buffered */
	return shift;
}

/* Give the 4 KiB blocks of granules [g, g+n) back to the filesystem,
 * widened to blocks shared with free granules (caller holds the lock;
 * the run's bits are already clear). */
static void file_punch(struct file_store *s, uint64_t g, uint64_t n)
{
	const uint64_t per_block = FILE_BLOCK >> s->gran_shift;
	uint64_t start = g, end = g + n;
	uint64_t lo, hi;

	/* widen over free granules up to the block boundaries around the run */
	while (start % per_block && !(s->bitmap[(start - 1) / 64] >> ((start - 1) % 64) & 1))
		start--;
	while (end % per_block && end < s->nbits && !(s->bitmap[end / 64] >> (end % 64) & 1))
		end++;
	if (end >= s->nbits)
		end = (end + per_block - 1) / per_block * per_block;
	lo = (start + per_block - 1) / per_block * per_block;
	hi = end / per_block * per_block;
	if (hi <= lo)
		return;
	if (fallocate(s->seg_fd[s->own], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(lo << s->gran_shift), (off_t)((hi - lo) << s->gran_shift)))
		store_count(&s->u.errors, 1); /* space not returned; the data is not at stake */
}

/* ---- the bitmap ---- */

static bool bit_test(const struct file_store *s, uint64_t i)
{
	return s->bitmap[i / 64] >> (i % 64) & 1;
}

static void bits_set(struct file_store *s, uint64_t g, uint64_t n, bool on)
{
	for (uint64_t i = g; i < g + n; i++) {
		if (on)
			s->bitmap[i / 64] |= 1ull << (i % 64);
		else
			s->bitmap[i / 64] &= ~(1ull << (i % 64));
	}
}

static int bitmap_reserve(struct file_store *s, uint64_t bits)
{
	uint64_t words = (bits + 63) / 64, cap = s->bm_words ? s->bm_words : 4096;
	uint64_t *v;

	if (words <= s->bm_words)
		return 0;
	while (cap < words)
		cap *= 2;
	v = os_mem_map(cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (s->bitmap) {
		memcpy(v, s->bitmap, s->bm_words * sizeof(*v));
		os_mem_unmap(s->bitmap, s->bm_words * sizeof(*v));
	}
	s->bitmap = v;
	s->bm_words = cap;
	return 0;
}

/* The first run of n clear bits in [from, to), or UINT64_MAX. */
static uint64_t run_find(const struct file_store *s, uint64_t from, uint64_t to, uint64_t n)
{
	uint64_t i = from, run = 0;

	while (i < to) {
		if (run == 0 && i % 64 == 0 && s->bitmap[i / 64] == ~0ull) {
			i += 64; /* a full word: skip it */
			continue;
		}
		if (bit_test(s, i)) {
			run = 0;
		} else if (++run == n) {
			return i + 1 - n;
		}
		i++;
	}
	return UINT64_MAX;
}

/* Allocate n granules (caller holds the lock).  @return the first, or
 * UINT64_MAX without memory for the bitmap. */
static uint64_t run_alloc(struct file_store *s, uint64_t n)
{
	uint64_t g = run_find(s, s->cursor, s->nbits, n);

	if (g == UINT64_MAX && s->cursor)
		g = run_find(s, 0, s->cursor + n - 1 < s->nbits ? s->cursor + n - 1 : s->nbits, n);
	if (g == UINT64_MAX) {
		/* at the end, over the free granules the file ends with */
		g = s->nbits;
		while (g > 0 && !bit_test(s, g - 1))
			g--;
		if (bitmap_reserve(s, g + n))
			return UINT64_MAX;
	}
	bits_set(s, g, n, true);
	if (g + n > s->nbits)
		s->nbits = g + n;
	s->cursor = g + n;
	s->used_gran += n;
	return g;
}

static void run_release(struct file_store *s, uint64_t g, uint64_t n)
{
	bits_set(s, g, n, false);
	s->used_gran -= n;
	file_punch(s, g, n);
}

static uint64_t pool_gran(const struct file_store *s)
{
	return s->used_gran + s->foreign_gran;
}

/* ---- operations ---- */

static int file_open(const char *arg, size_t limit, struct store **out)
{
	struct file_store *s;
	struct stat st;
	int rc;

	if (!arg || !*arg)
		return errmsg_set(-EINVAL, "store file: give a directory: file:DIR (uswap makes an "
					   "unnamed file there)");
	if (strlen(arg) >= sizeof(s->dir))
		return errmsg_set(-EINVAL, "store file: the path \"%.40s...\" is too long", arg);
	if (stat(arg, &st))
		return errmsg_set(-EINVAL, "store file: \"%s\": %s (allowed: an existing directory)",
				  arg, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errmsg_set(-EINVAL,
				  "store file: \"%s\" is not a directory (allowed: an existing "
				  "directory, where uswap makes an unnamed file)",
				  arg);
	s = os_mem_map(sizeof(*s));
	if (!s)
		return -ENOMEM;
	strcpy(s->dir, arg);
	pthread_mutex_init(&s->lock, NULL);
	objtable_init(&s->table);
	rc = file_make(arg, &s->seg_fd[0]);
	if (rc) {
		rc = errmsg_set(rc == -ENOMEM ? -ENOMEM : -EINVAL,
				"store file: cannot make a file in \"%s\": %s", arg, strerror(-rc));
		goto err_free_store;
	}
	s->gran_shift = file_direct_enable(s->seg_fd[0], FILE_DIRECT_SHIFT_MAX);
	s->direct = s->gran_shift != 0;
	if (!s->direct)
		s->gran_shift = FILE_GRAN_SHIFT;
	s->u.direct_io = s->direct;
	s->limit_gran = limit >> s->gran_shift;
	if (limit && !s->limit_gran)
		s->limit_gran = 1;
	s->nsegs = 1;
	rc = uring_pool_open(FILE_RINGS, &s->io);
	if (rc)
		goto err_close_file;
	rc = bitmap_reserve(s, 64 * 4096);
	if (rc)
		goto err_close_io;
	*out = (struct store *)s;
	return 0;

err_close_io:
	uring_pool_close(s->io);
err_close_file:
	close(s->seg_fd[0]);
err_free_store:
	pthread_mutex_destroy(&s->lock);
	os_mem_unmap(s, sizeof(*s));
	return rc;
}

static void file_close(struct store *st)
{
	struct file_store *s = (struct file_store *)st;
	unsigned i;

	uring_pool_close(s->io);
	for (i = 0; i < s->nsegs; i++)
		if (s->seg_fd[i] >= 0)
			close(s->seg_fd[i]);
	if (s->bitmap)
		os_mem_unmap(s->bitmap, s->bm_words * sizeof(*s->bitmap));
	objtable_destroy(&s->table);
	pthread_mutex_destroy(&s->lock);
	os_mem_unmap(s, sizeof(*s));
}

/* Undo a put whose write failed. */
static void put_undo(struct file_store *s, store_handle_t h, uint64_t g, uint64_t n, size_t len)
{
	pthread_mutex_lock(&s->lock);
	run_release(s, g, n);
	s->u.stored_bytes -= len;
	objtable_free(&s->table, h);
	pthread_mutex_unlock(&s->lock);
}

static int file_put(struct store *st, const void *obj, size_t len, store_handle_t *h)
{
	struct file_store *s = (struct file_store *)st;
	uint64_t n = gran_of(s, len), g = 0, t0;
	size_t io_len = s->direct ? n << s->gran_shift : len;
	struct objtable_entry *e;
	const void *src = obj;
	long rc;
	int fd;

	if (len > FILE_MAX_LEN) {
		store_count(&s->u.fail_2big, 1);
		return errmsg_set(-E2BIG, "store file: an object of %zu bytes is over the %u "
					  "bytes allowed",
				  len, FILE_MAX_LEN);
	}
	if (s->direct && n) {
		/* whole granules from an aligned buffer; the padding is zeros */
		char *buf = buf_get(io_len);

		if (!buf) {
			store_count(&s->u.fail_nomem, 1);
			return -ENOMEM;
		}
		memcpy(buf, obj, len);
		memset(buf + len, 0, io_len - len);
		src = buf;
	}
	pthread_mutex_lock(&s->lock);
	if (s->broken) {
		store_count(&s->u.errors, 1);
		pthread_mutex_unlock(&s->lock);
		return errmsg_set(-EIO, "store file: this forked process has no file of its own "
					"(see docs/STORES.md, fork): nothing can be stored");
	}
	if (s->limit_gran && pool_gran(s) + n > s->limit_gran) {
		store_count(&s->u.fail_nospc, 1);
		pthread_mutex_unlock(&s->lock);
		return -ENOSPC;
	}
	e = objtable_alloc(&s->table, h);
	if (e && n)
		g = run_alloc(s, n);
	if (!e || g == UINT64_MAX) {
		if (e)
			objtable_free(&s->table, *h);
		store_count(&s->u.fail_nomem, 1);
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	e->loc = g;
	e->len = (uint32_t)len;
	e->seg = (uint16_t)s->own;
	s->u.stored_bytes += len;
	fd = s->seg_fd[s->own];
	pthread_mutex_unlock(&s->lock);

	if (!n)
		return 0;
	t0 = os_now_ns();
	if (s->direct)
		rc = uring_pool_write_direct(s->io, fd, src, io_len, g << s->gran_shift,
					     1u << s->gran_shift);
	else
		rc = uring_pool_write(s->io, fd, src, len, g << s->gran_shift);
	store_count(&s->u.write_ns, os_now_ns() - t0);
	if (rc >= 0) {
		store_count(&s->u.writes, 1);
		return 0;
	}
	put_undo(s, *h, g, n, len);
	if (rc == -ENOSPC || rc == -EDQUOT) {
		store_count(&s->u.fail_nospc, 1);
		return errmsg_set(-ENOSPC,
				  "store file: the file system of \"%s\" is full (%s) writing %zu "
				  "bytes: the folio stays in memory",
				  s->dir, strerror((int)-rc), len);
	}
	store_count(&s->u.errors, 1);
	return errmsg_set(-EIO, "store file: writing %zu bytes to a file in \"%s\": %s", len,
			  s->dir, strerror((int)-rc));
}

static int file_get(struct store *st, store_handle_t h, store_visit_fn fn, void *arg)
{
	struct file_store *s = (struct file_store *)st;
	struct objtable_entry *e;
	uint64_t g, t0;
	size_t len, io_len;
	char *buf;
	long rc;
	int fd;

	pthread_mutex_lock(&s->lock);
	e = objtable_lookup(&s->table, h);
	if (!e) {
		store_count(&s->u.bad_get, 1);
		pthread_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	g = e->loc;
	len = e->len;
	fd = s->seg_fd[e->seg];
	pthread_mutex_unlock(&s->lock);

	if (!len)
		return fn("", 0, arg);
	io_len = s->direct ? gran_of(s, len) << s->gran_shift : len;
	buf = buf_get(io_len);
	if (!buf)
		return -ENOMEM;
	t0 = os_now_ns();
	if (s->direct)
		rc = uring_pool_read_direct(s->io, fd, buf, io_len, g << s->gran_shift,
					    1u << s->gran_shift);
	else
		rc = uring_pool_read(s->io, fd, buf, len, g << s->gran_shift);
	store_count(&s->u.read_ns, os_now_ns() - t0);
	if (rc < (long)len) {
		store_count(&s->u.errors, 1);
		if (rc >= 0)
			return errmsg_set(-EIO,
					  "store file: an object of %zu bytes at offset %llu: only "
					  "%ld bytes could be read (the file was cut short)",
					  len, (unsigned long long)(g << s->gran_shift), rc);
		return errmsg_set(-EIO, "store file: reading %zu bytes at offset %llu: %s", len,
				  (unsigned long long)(g << s->gran_shift),
				  strerror((int)-rc));
	}
	store_count(&s->u.reads, 1);
	return fn(buf, len, arg);
}

static void file_free(struct store *st, store_handle_t h)
{
	struct file_store *s = (struct file_store *)st;
	struct objtable_entry *e;
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	e = objtable_lookup_for_free(&s->table, h, &s->lock, &s->u.bad_free, "file");
	if (!e)
		return;
	n = gran_of(s, e->len);
	if (e->seg != s->own)
		s->foreign_gran -= n; /* another process's file: only forget it */
	else if (e->flags & FILE_SHARED)
		s->held_gran += n; /* a forked process may still read it */
	else if (n)
		run_release(s, e->loc, n);
	s->u.stored_bytes -= e->len;
	objtable_free(&s->table, h);
	pthread_mutex_unlock(&s->lock);
}

static void file_usage(struct store *st, struct store_usage *u)
{
	struct file_store *s = (struct file_store *)st;

	pthread_mutex_lock(&s->lock);
	store_usage_counters(&s->u, u);
	u->stored_bytes = s->u.stored_bytes;
	u->objects = s->table.live;
	u->pool_bytes = pool_gran(s) << s->gran_shift;
	u->meta_bytes = objtable_bytes(&s->table) + s->bm_words * sizeof(uint64_t);
	pthread_mutex_unlock(&s->lock);
}

/* Nothing to compact: freed space goes back to the filesystem at once. */
static long file_compact(struct store *st)
{
	(void)st;
	return 0;
}

static int file_check(struct store *st)
{
	struct file_store *s = (struct file_store *)st;
	uint64_t own = 0, foreign = 0, bits = 0, stored = 0, i;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = objtable_check(&s->table, "file");
	for (i = 0; !rc && i < s->table.n; i++) {
		const struct objtable_entry *e = &s->table.v[i];
		uint64_t n = gran_of(s, e->len);

		if (!(e->flags & OBJTABLE_LIVE))
			continue;
		stored += e->len;
		if (e->seg != s->own) {
			foreign += n;
			continue;
		}
		own += n;
		for (uint64_t k = e->loc; k < e->loc + n && !rc; k++)
			if (k >= s->nbits || !bit_test(s, k))
				rc = errmsg_set(-EUCLEAN, "store file: object %llu: granule %llu "
							  "not marked in use",
						(unsigned long long)i, (unsigned long long)k);
	}
	for (i = 0; i < s->bm_words; i++)
		bits += (uint64_t)__builtin_popcountll(s->bitmap[i]);
	if (!rc && bits != s->used_gran)
		rc = errmsg_set(-EUCLEAN, "store file: %llu granules marked, %llu counted",
				(unsigned long long)bits, (unsigned long long)s->used_gran);
	if (!rc && own + s->held_gran != s->used_gran)
		rc = errmsg_set(-EUCLEAN,
				"store file: objects take %llu granules and %llu are held, but %llu "
				"are in use",
				(unsigned long long)own, (unsigned long long)s->held_gran,
				(unsigned long long)s->used_gran);
	if (!rc && foreign != s->foreign_gran)
		rc = errmsg_set(-EUCLEAN, "store file: %llu inherited granules, %llu counted",
				(unsigned long long)foreign, (unsigned long long)s->foreign_gran);
	if (!rc && stored != s->u.stored_bytes)
		rc = errmsg_set(-EUCLEAN, "store file: objects hold %llu bytes, %llu counted",
				(unsigned long long)stored, (unsigned long long)s->u.stored_bytes);
	if (!rc && s->limit_gran && pool_gran(s) > s->limit_gran)
		rc = errmsg_set(-EUCLEAN, "store file: %llu granules in use, over the limit %llu",
				(unsigned long long)pool_gran(s),
				(unsigned long long)s->limit_gran);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void file_prefork(struct store *st)
{
	struct file_store *s = (struct file_store *)st;
	uint32_t i;

	pthread_mutex_lock(&s->lock);
	uring_pool_prefork(s->io);
	/* from now on another process may read every object of our file */
	for (i = 0; i < s->table.n; i++)
		if ((s->table.v[i].flags & OBJTABLE_LIVE) && s->table.v[i].seg == s->own)
			s->table.v[i].flags |= FILE_SHARED;
}

static void file_postfork_parent(struct store *st)
{
	struct file_store *s = (struct file_store *)st;

	uring_pool_postfork_parent(s->io);
	pthread_mutex_unlock(&s->lock);
}

static void file_postfork_child(struct store *st)
{
	struct file_store *s = (struct file_store *)st;
	int fd = -1;

	/* prefork took it in the thread that forked: the one we are */
	pthread_mutex_unlock(&s->lock);
	uring_pool_postfork_child(s->io);
	/* what our file holds is the parent's now: we only read it */
	s->foreign_gran += s->used_gran - s->held_gran;
	memset(s->bitmap, 0, s->bm_words * sizeof(*s->bitmap));
	s->nbits = s->cursor = s->used_gran = s->held_gran = 0;
	if (s->nsegs == FILE_SEGS_MAX || file_make(s->dir, &fd)) {
		fprintf(stderr, "uswap: store file: the forked process %d cannot make a file of "
				"its own in \"%s\": it will keep its memory resident\n",
			(int)getpid(), s->dir);
		s->broken = true;
		return;
	}
	/* the same alignment as the parent's file, or buffered (padded I/O
	 * works on both) */
	if (s->direct)
		file_direct_enable(fd, s->gran_shift);
	s->seg_fd[s->nsegs] = fd;
	s->own = s->nsegs++;
}

const struct store_ops store_file = {
	.version = STORE_OPS_VERSION,
	.name = "file",
	.open = file_open,
	.close = file_close,
	.put = file_put,
	.get = file_get,
	.free = file_free,
	.usage = file_usage,
	.compact = file_compact,
	.max_len = FILE_MAX_LEN,
	.check = file_check,
	.prefork = file_prefork,
	.postfork_parent = file_postfork_parent,
	.postfork_child = file_postfork_child,
};

/* For tests: the descriptor of the store's own file. */
int store_file_fd(struct store *st)
{
	struct file_store *s = (struct file_store *)st;

	return s->seg_fd[s->own];
}

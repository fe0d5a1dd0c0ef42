/* SPDX-License-Identifier: MIT */
/*
 * The tiered store, "ram,file:DIR[,ram=SIZE]": the ram store first, and
 * when it is full, writeback of its coldest objects to a file store in DIR
 * (the idea of zram's writeback to a backing device).
 *
 * Sizes.  The ram tier holds at most SIZE bytes (default: 64 MiB, at most
 * half of the store limit); the file tier holds the rest of the store limit
 * (no limit when the store has none: the filesystem bounds it, and a full
 * filesystem fails puts with -ENOSPC).
 *
 * Put.  Into ram.  When ram is full: write back cold objects (at least the
 * new object's size, at least 1/16 of the ram tier, so that writeback runs
 * in batches, not on every put), then try ram again; an object that still
 * does not fit (larger than the ram tier, or writeback failed) goes to the
 * file directly.
 *
 * Cold.  Objects in ram are on an LRU list: put and get move an object to
 * the head, writeback takes from the tail.  (The store does not look into
 * objects, so "incompressible" is not a criterion here: see docs/STORES.md.)
 *
 * Writeback of one object (no tier lock held during the I/O): mark it
 * MOVING and take it off the LRU; copy it from ram to the file; then, under
 * the lock, point its entry at the file copy and free the ram copy once no
 * get is reading it (gets pin ram objects with a reader count).  A free
 * that comes while the object moves forgets the handle at once and leaves
 * both copies to the mover.  Gets never wait: before the switch they read
 * the ram copy, after it the file copy.
 *
 * Lock order: tier lock -> ram or file store locks (the tier never calls
 * a store while holding its lock, except ram free after the switch).
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/errmsg.h"
#include "../os/os.h"
#include "objtable.h"

#define TIER_RAM 0
#define TIER_FILE 1
#define TIER_MOVING 0x1u
#define TIER_DEFAULT_RAM (64u << 20)
#define TIER_DIR_MAX 4096

struct tier_store {
	pthread_mutex_t lock;
	pthread_cond_t unpinned; /* a ram object's readers dropped to 0 */
	struct objtable table;   /* entry: seg (ram/file), loc (inner handle),
				    aux (readers of the ram copy), prev/next (LRU) */
	uint32_t lru_head, lru_tail; /* index + 1; ram objects not moving */
	uint64_t in_ram, in_file;    /* entries by tier */
	uint64_t moving;             /* writebacks in flight */
	uint64_t inflight;           /* atomic: puts, frees and writebacks
					between the tiers and the table (for
					check: see tier_check) */
	size_t ram_limit;
	struct store *ram, *file;
	struct store_usage u;        /* stored_bytes, writebacks, bad_* */
};

/* ---- the LRU ---- */

static struct objtable_entry *at(struct tier_store *s, uint32_t i1)
{
	return &s->table.v[i1 - 1];
}

static uint32_t index_of(struct tier_store *s, struct objtable_entry *e)
{
	return (uint32_t)(e - s->table.v) + 1;
}

static void lru_remove(struct tier_store *s, struct objtable_entry *e)
{
	if (e->prev)
		at(s, e->prev)->next = e->next;
	else
		s->lru_head = e->next;
	if (e->next)
		at(s, e->next)->prev = e->prev;
	else
		s->lru_tail = e->prev;
	e->prev = e->next = 0;
}

static void lru_push_head(struct tier_store *s, struct objtable_entry *e)
{
	uint32_t i = index_of(s, e);

	e->prev = 0;
	e->next = s->lru_head;
	if (s->lru_head)
		at(s, s->lru_head)->prev = i;
	else
		s->lru_tail = i;
	s->lru_head = i;
}

static void lru_push_tail(struct tier_store *s, struct objtable_entry *e)
{
	uint32_t i = index_of(s, e);

	e->next = 0;
	e->prev = s->lru_tail;
	if (s->lru_tail)
		at(s, s->lru_tail)->next = i;
	else
		s->lru_head = i;
	s->lru_tail = i;
}

/* ---- open / close ---- */

static int tier_parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtoull(s, &end, 10);
	switch (*end) {
	case 'K': case 'k': v <<= 10; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'G': case 'g': v <<= 30; end++; break;
	default: break;
	}
	if (*end || !v)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

static int tier_open(const char *arg, size_t limit, struct store **out)
{
	char dir[TIER_DIR_MAX];
	const char *opt;
	struct tier_store *s;
	size_t ram_limit = TIER_DEFAULT_RAM, file_limit = 0;
	int rc;

	if (!arg || !*arg)
		return errmsg_set(-EINVAL, "store ram,file: give a directory: ram,file:DIR"
					   "[,ram=SIZE]");
	if (strlen(arg) >= sizeof(dir))
		return errmsg_set(-EINVAL, "store ram,file: the path \"%.40s...\" is too long", arg);
	strcpy(dir, arg);
	opt = strstr(dir, ",ram=");
	if (opt) {
		if (tier_parse_size(opt + 5, &ram_limit))
			return errmsg_set(-EINVAL,
					  "store ram,file: \"%s\" is not a size (allowed: ram=SIZE, "
					  "bytes with K, M or G, more than 0)",
					  opt + 1);
		dir[opt - dir] = 0;
	} else if (limit && ram_limit > limit / 2) {
		ram_limit = limit / 2;
	}
	if (limit) {
		if (ram_limit >= limit)
			return errmsg_set(-EINVAL,
					  "store ram,file: ram=%zu leaves nothing of the store limit "
					  "%zu for the file (allowed: less than the limit)",
					  ram_limit, limit);
		file_limit = limit - ram_limit;
	}
	s = os_mem_map(sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->unpinned, NULL);
	objtable_init(&s->table);
	s->ram_limit = ram_limit;
	rc = store_ram.open(NULL, ram_limit, &s->ram);
	if (rc)
		goto err_free;
	rc = store_file.open(dir, file_limit, &s->file);
	if (rc) {
		char why[512];

		snprintf(why, sizeof(why), "%s", errmsg_get());
		errmsg_set(rc, "store ram,file: %s", why);
		goto err_close_ram;
	}
	*out = (struct store *)s;
	return 0;

err_close_ram:
	store_ram.close(s->ram);
err_free:
	pthread_cond_destroy(&s->unpinned);
	pthread_mutex_destroy(&s->lock);
	os_mem_unmap(s, sizeof(*s));
	return rc;
}

static void tier_close(struct store *st)
{
	struct tier_store *s = (struct tier_store *)st;

	store_file.close(s->file);
	store_ram.close(s->ram);
	objtable_destroy(&s->table);
	pthread_cond_destroy(&s->unpinned);
	pthread_mutex_destroy(&s->lock);
	os_mem_unmap(s, sizeof(*s));
}

/* ---- writeback ---- */

struct copy_arg {
	struct store *file;
	store_handle_t fh;
};

static int copy_to_file(const void *obj, size_t len, void *arg)
{
	struct copy_arg *c = arg;

	return store_file.put(c->file, obj, len, &c->fh);
}

/* Move the coldest ram object to the file.  @return its length; -ENOENT
 * when there is none to move; -errno when the file refused it (it stays in
 * ram). */
static long writeback_one(struct tier_store *s)
{
	struct objtable_entry *e;
	struct copy_arg c = { s->file, { 0 } };
	store_handle_t h, rh;
	uint32_t len;
	int rc;

	pthread_mutex_lock(&s->lock);
	if (!s->lru_tail) {
		pthread_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	e = at(s, s->lru_tail);
	lru_remove(s, e);
	e->flags |= TIER_MOVING;
	s->moving++;
	store_count(&s->inflight, 1);
	h = objtable_handle(&s->table, e);
	rh.v = e->loc;
	len = e->len;
	pthread_mutex_unlock(&s->lock);

	rc = store_ram.get(s->ram, rh, copy_to_file, &c);

	pthread_mutex_lock(&s->lock);
	s->moving--;
	e = objtable_lookup(&s->table, h);
	if (!e) {
		/* freed while it moved: both copies are ours to drop */
		pthread_mutex_unlock(&s->lock);
		if (rc == 0)
			store_file.free(s->file, c.fh);
		store_ram.free(s->ram, rh);
		store_count(&s->inflight, -1ull);
		return len;
	}
	e->flags &= ~TIER_MOVING;
	if (rc) {
		/* the file is full or failing: it stays in ram, still cold */
		lru_push_tail(s, e);
		store_count(&s->inflight, -1ull);
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	e->seg = TIER_FILE;
	e->loc = c.fh.v;
	s->in_ram--;
	s->in_file++;
	/* gets that pinned the ram copy are still reading it */
	while (e->aux) {
		pthread_cond_wait(&s->unpinned, &s->lock);
		e = objtable_lookup(&s->table, h);
		if (!e)
			break; /* freed meanwhile: its file copy went with it */
	}
	store_count(&s->u.writebacks, 1);
	pthread_mutex_unlock(&s->lock);
	store_ram.free(s->ram, rh);
	store_count(&s->inflight, -1ull);
	return len;
}

/* Write back at least need bytes, or until nothing is left to move.
 * @return 0 when something moved; -errno of the first failure otherwise. */
static int writeback(struct tier_store *s, size_t need)
{
	size_t moved = 0;
	int first = -ENOENT;

	if (need < s->ram_limit / 16)
		need = s->ram_limit / 16;
	while (moved < need) {
		long n = writeback_one(s);

		if (n < 0) {
			first = (int)n;
			break;
		}
		moved += (size_t)n;
	}
	return moved ? 0 : first;
}

/* ---- operations ---- */

static int tier_put(struct store *st, const void *obj, size_t len, store_handle_t *h)
{
	struct tier_store *s = (struct tier_store *)st;
	struct objtable_entry *e;
	store_handle_t inner;
	int where = TIER_RAM, rc = -ENOSPC;

	if (len > store_file.max_len) {
		store_count(&s->u.fail_2big, 1);
		return errmsg_set(-E2BIG, "store ram,file: an object of %zu bytes is over the %zu "
					  "bytes allowed",
				  len, store_file.max_len);
	}
	pthread_mutex_lock(&s->lock);
	store_count(&s->inflight, 1);
	pthread_mutex_unlock(&s->lock);
	if (len <= s->ram_limit) {
		rc = store_ram.put(s->ram, obj, len, &inner);
		if (rc == -ENOSPC && writeback(s, len) == 0)
			rc = store_ram.put(s->ram, obj, len, &inner);
	}
	if (rc == -ENOSPC) {
		where = TIER_FILE;
		rc = store_file.put(s->file, obj, len, &inner);
	}
	if (rc) {
		store_count(&s->inflight, -1ull);
		if (rc == -ENOSPC)
			store_count(&s->u.fail_nospc, 1);
		return rc;
	}
	pthread_mutex_lock(&s->lock);
	e = objtable_alloc(&s->table, h);
	if (e) {
		e->seg = (uint16_t)where;
		e->loc = inner.v;
		e->len = (uint32_t)len;
		s->u.stored_bytes += len;
		if (where == TIER_RAM) {
			s->in_ram++;
			lru_push_head(s, e);
		} else {
			s->in_file++;
		}
		store_count(&s->inflight, -1ull);
	}
	pthread_mutex_unlock(&s->lock);
	if (!e) {
		(where == TIER_RAM ? &store_ram : &store_file)->free(
			where == TIER_RAM ? s->ram : s->file, inner);
		store_count(&s->inflight, -1ull);
		store_count(&s->u.fail_nomem, 1);
		return -ENOMEM;
	}
	return 0;
}

static int tier_get(struct store *st, store_handle_t h, store_visit_fn fn, void *arg)
{
	struct tier_store *s = (struct tier_store *)st;
	struct objtable_entry *e;
	store_handle_t inner;
	int rc;

	pthread_mutex_lock(&s->lock);
	e = objtable_lookup(&s->table, h);
	if (!e) {
		pthread_mutex_unlock(&s->lock);
		store_count(&s->u.bad_get, 1);
		return -ENOENT;
	}
	inner.v = e->loc;
	if (e->seg == TIER_FILE) {
		pthread_mutex_unlock(&s->lock);
		return store_file.get(s->file, inner, fn, arg);
	}
	e->aux++; /* pin the ram copy against writeback */
	if (!(e->flags & TIER_MOVING)) {
		lru_remove(s, e);
		lru_push_head(s, e);
	}
	pthread_mutex_unlock(&s->lock);

	rc = store_ram.get(s->ram, inner, fn, arg);

	pthread_mutex_lock(&s->lock);
	e = objtable_lookup(&s->table, h);
	if (e && --e->aux == 0)
		pthread_cond_broadcast(&s->unpinned);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void tier_free(struct store *st, store_handle_t h)
{
	struct tier_store *s = (struct tier_store *)st;
	struct objtable_entry *e;
	store_handle_t inner;
	int where;
	bool moving;

	pthread_mutex_lock(&s->lock);
	e = objtable_lookup_for_free(&s->table, h, &s->lock, &s->u.bad_free, "ram,file");
	if (!e)
		return;
	inner.v = e->loc;
	where = e->seg;
	moving = e->flags & TIER_MOVING;
	if (where == TIER_RAM) {
		s->in_ram--;
		if (!moving)
			lru_remove(s, e);
	} else {
		s->in_file--;
	}
	s->u.stored_bytes -= e->len;
	objtable_free(&s->table, h);
	if (!moving)
		store_count(&s->inflight, 1);
	pthread_mutex_unlock(&s->lock);
	if (moving)
		return; /* the mover drops both copies */
	if (where == TIER_RAM)
		store_ram.free(s->ram, inner);
	else
		store_file.free(s->file, inner);
	store_count(&s->inflight, -1ull);
}

static void tier_usage(struct store *st, struct store_usage *u)
{
	struct tier_store *s = (struct tier_store *)st;
	struct store_usage ru, fu;

	store_ram.usage(s->ram, &ru);
	store_file.usage(s->file, &fu);
	pthread_mutex_lock(&s->lock);
	store_usage_counters(&s->u, u);
	u->objects = s->table.live;
	u->stored_bytes = s->u.stored_bytes;
	u->meta_bytes = objtable_bytes(&s->table) + ru.meta_bytes + fu.meta_bytes;
	pthread_mutex_unlock(&s->lock);
	u->pool_bytes = ru.pool_bytes + fu.pool_bytes;
	u->compactions = ru.compactions;
	u->moved = ru.moved;
	u->fail_nomem += ru.fail_nomem + fu.fail_nomem;
	u->reads = fu.reads;
	u->writes = fu.writes;
	u->errors = fu.errors;
	u->read_ns = fu.read_ns;
	u->write_ns = fu.write_ns;
	u->direct_io = fu.direct_io;
}

static long tier_compact(struct store *st)
{
	struct tier_store *s = (struct tier_store *)st;

	return store_ram.compact(s->ram);
}

static int tier_check(struct store *st)
{
	struct tier_store *s = (struct tier_store *)st;
	struct store_usage ru, fu;
	uint64_t ram = 0, file = 0, stored = 0, lru = 0, inflight;
	uint32_t i;
	int rc;

	if ((rc = store_ram.check(s->ram)) || (rc = store_file.check(s->file)))
		return rc;
	/* Operations in flight make the tiers differ from the table by one
	 * object each.  They start counted under the lock (we hold it, so none
	 * starts now) and end counted after their last change: read the count
	 * first, the tiers after, and the difference is within it. */
	pthread_mutex_lock(&s->lock);
	inflight = __atomic_load_n(&s->inflight, __ATOMIC_RELAXED);
	store_ram.usage(s->ram, &ru);
	store_file.usage(s->file, &fu);
	rc = objtable_check(&s->table, "ram,file");
	for (i = 0; !rc && i < s->table.n; i++) {
		const struct objtable_entry *e = &s->table.v[i];

		if (!(e->flags & OBJTABLE_LIVE))
			continue;
		stored += e->len;
		if (e->seg == TIER_RAM)
			ram++;
		else
			file++;
	}
	for (i = s->lru_head; i && lru <= s->table.n; i = at(s, i)->next)
		lru++;
	if (!rc && (ram != s->in_ram || file != s->in_file))
		rc = errmsg_set(-EUCLEAN, "store ram,file: %llu in ram and %llu in the file, "
					  "counted %llu and %llu",
				(unsigned long long)ram, (unsigned long long)file,
				(unsigned long long)s->in_ram, (unsigned long long)s->in_file);
	if (!rc && stored != s->u.stored_bytes)
		rc = errmsg_set(-EUCLEAN, "store ram,file: objects hold %llu bytes, %llu counted",
				(unsigned long long)stored,
				(unsigned long long)s->u.stored_bytes);
	if (!rc && (lru > ram || lru + s->moving < ram))
		rc = errmsg_set(-EUCLEAN, "store ram,file: %llu objects on the LRU for %llu in ram",
				(unsigned long long)lru, (unsigned long long)ram);
	if (!rc && (ru.objects + inflight < ram || ru.objects > ram + inflight ||
		    fu.objects + inflight < file || fu.objects > file + inflight))
		rc = errmsg_set(-EUCLEAN,
				"store ram,file: the tiers hold %llu and %llu objects for %llu and "
				"%llu entries (%llu operations in flight)",
				(unsigned long long)ru.objects, (unsigned long long)fu.objects,
				(unsigned long long)ram, (unsigned long long)file,
				(unsigned long long)inflight);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void tier_prefork(struct store *st)
{
	struct tier_store *s = (struct tier_store *)st;

	pthread_mutex_lock(&s->lock);
	store_ram.prefork(s->ram);
	store_file.prefork(s->file);
}

static void tier_postfork_parent(struct store *st)
{
	struct tier_store *s = (struct tier_store *)st;

	store_file.postfork_parent(s->file);
	store_ram.postfork_parent(s->ram);
	pthread_mutex_unlock(&s->lock);
}

/* The child: no thread of the parent runs here, so no reader pins an
 * object and no writeback is in flight: an object the parent was moving
 * stays in ram (its file copy, if made, is lost space, not data). */
static void tier_postfork_child(struct store *st)
{
	struct tier_store *s = (struct tier_store *)st;
	uint32_t i;

	/* the parent's threads that waited on it are not here */
	pthread_cond_init(&s->unpinned, NULL);
	store_ram.postfork_child(s->ram);
	store_file.postfork_child(s->file);
	for (i = 0; i < s->table.n; i++) {
		struct objtable_entry *e = &s->table.v[i];

		if (!(e->flags & OBJTABLE_LIVE))
			continue;
		e->aux = 0;
		if (e->flags & TIER_MOVING) {
			e->flags &= ~TIER_MOVING;
			lru_push_head(s, e);
		}
	}
	s->moving = 0;
	s->inflight = 0;
	/* prefork took it in the thread that forked: the one we are */
	pthread_mutex_unlock(&s->lock);
}

const struct store_ops store_tier = {
	.version = STORE_OPS_VERSION,
	.name = "ram,file",
	.open = tier_open,
	.close = tier_close,
	.put = tier_put,
	.get = tier_get,
	.free = tier_free,
	.usage = tier_usage,
	.compact = tier_compact,
	.max_len = (16u << 20) - 1,
	.check = tier_check,
	.prefork = tier_prefork,
	.postfork_parent = tier_postfork_parent,
	.postfork_child = tier_postfork_child,
};

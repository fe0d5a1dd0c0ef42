/* SPDX-License-Identifier: MIT */
/*
 * The redis store, "redis://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]
 * [?timeout=MS]", and over TLS "rediss://...[?...&ca=PATH&cert=PATH&key=PATH]"
 * (redis_uri.h): objects as keys on one or more Redis servers.  hiredis
 * formats the commands and parses the answers; redis_conn.c carries the
 * bytes, over TCP or TLS, so that both schemes share every other line.
 *
 * Keys.  Every process has a prefix of its own, "uswap:HOSTNAME:PID:RANDOM:",
 * and an object's key is the prefix and a number that the process never
 * uses twice: two programs (or two instances) never see each other's keys,
 * and a freed handle can never name a newer object.  The handle table
 * (objtable.c) knows each object's number and length, so usage() and bad
 * handles need no round trip.
 *
 * Sharding.  Object number modulo the number of servers picks the server:
 * objects spread evenly.  Each server has a few connections, each with its
 * lock: a thread takes a free one.
 *
 * Pipelining.  A free sends its DEL without waiting for the answer: the
 * command goes out with the next command on that connection, whose caller
 * reads the DEL's answer first.  So a free costs no round trip; at most
 * REDIS_PENDING_MAX answers wait on a connection.
 *
 * Failures.  Every command has a timeout (timeout=MS, default 2000).  A
 * server that is down, does not answer in time or answers an error fails
 * the call with -EIO or -ETIMEDOUT and a message naming the server, also
 * said once on stderr when a connection breaks: a put that fails leaves
 * the folio resident (the runtime moves its pages back); a get that fails
 * is retried by the fault handler until the server is back.  The next
 * command on a broken connection connects again.  A server that says it is
 * out of memory (maxmemory) fails the put with -ENOSPC, as a full store.  A
 * key that the server lost (restarted without persistence, evicted by a
 * maxmemory policy) fails the get with -ESRCH: the data is gone, and the
 * runtime poisons the page rather than show wrong bytes.
 *
 * TLS.  Debian 12's hiredis (0.14) has no TLS of its own: the links do it
 * with OpenSSL (one SSL_CTX per store, one SSL per connection), the
 * server's certificate checked against the CA and the host name.  A
 * certificate refused fails with -EACCES, as a refused password does.
 *
 * fork.  Parent and child would share the connections (the sockets): the
 * child drops its copies without a word to the server and connects anew.
 * As in the file store, objects alive at the fork are SHARED: neither
 * process deletes their keys (the other may read them), and the child
 * writes under a new prefix of its own.
 *
 * hiredis and OpenSSL allocate with malloc: a process whose malloc heap is managed
 * memory must not use this store (the handler would fault on managed
 * memory).  Lock order: store lock -> connection locks; the store lock is
 * never held during a round trip.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../core/assert.h"
#include "../core/errmsg.h"
#include "../os/os.h"
#include "objtable.h"
#include "redis_conn.h"
#include "redis_uri.h"

#define REDIS_CONNS 4u
#define REDIS_SEGS_MAX 16u
#define REDIS_PENDING_MAX 64u
#define REDIS_MAX_LEN ((16u << 20) - 1)
#define REDIS_SHARED 0x1u
/* After a server failed, puts to it fail at once for this long: an
 * eviction that cannot store just keeps its folio, but one that waited a
 * timeout for every folio would stall the reclaimer.  Gets always try (a
 * fault needs the data), and any answer ends the pause. */
#define REDIS_PAUSE_NS 1000000000ull

struct redis_conn {
	pthread_mutex_t lock;
	struct redis_link link; /* not up: connect at the next use */
	unsigned pending; /* DELs sent or queued, answers not read */
	bool down;        /* the last attempt failed (said on stderr) */
};

struct redis_shard {
	const char *host; /* in the store's uri */
	int port;
	uint64_t retry_at;  /* atomic: puts fail at once until then (ns) */
	int last_err;       /* atomic: the error that set retry_at */
	struct redis_conn conn[REDIS_CONNS];
};

struct redis_store {
	pthread_mutex_t lock; /* table, next_id, prefixes, stored_bytes */
	struct objtable table; /* loc: object number; seg: prefix */
	uint64_t next_id;
	char prefix[REDIS_SEGS_MAX][96];
	unsigned nsegs, own;
	unsigned nshards;
	struct redis_shard shard[REDIS_SHARDS_MAX];
	struct redis_uri uri; /* servers, credentials, timeout, TLS files */
	SSL_CTX *tls;	      /* rediss: shared by the connections; NULL: plain */
	size_t limit;
	bool broken; /* a forked process with no prefix of its own */
	struct store_usage u;
};

static void prefix_make(struct redis_store *s, unsigned seg)
{
	char host[64] = "host";
	uint64_t rnd = 0;

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = os_now_ns() ^ (uint64_t)getpid() << 32;
	snprintf(s->prefix[seg], sizeof(s->prefix[seg]), "uswap:%s:%d:%016llx:", host,
		 (int)getpid(), (unsigned long long)rnd);
}

/* ---- SIGPIPE ---- */

/*
 * hiredis writes to its socket with write(2): a server that closed the
 * connection would kill the program with SIGPIPE.  The store must not
 * change the program's signal handling, so the calling thread blocks
 * SIGPIPE around its round trips and drops one that its write raised.
 */
static void sigpipe_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static void sigpipe_restore(const sigset_t *old)
{
	struct timespec zero = { 0, 0 };
	sigset_t set, pending;

	if (!sigismember(old, SIGPIPE)) {
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			sigtimedwait(&set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- connections ---- */

static void conn_drop(struct redis_conn *k)
{
	redis_link_close(&k->link);
	k->pending = 0;
}

/* The error of a broken or refused connection: -ETIMEDOUT for a timeout. */
static int conn_error(struct redis_store *s, struct redis_shard *sh, struct redis_conn *k,
		      const char *what)
{
	int rc = k->link.err ? k->link.err : -EIO;
	char why[sizeof(k->link.why) + sizeof(s->uri.ca) + 64];

	/* a certificate refused: say which CA refused it */
	snprintf(why, sizeof(why), "%s%s%s%s", k->link.err ? k->link.why : "cannot connect",
		 rc == -EACCES ? " (checked against " : "",
		 rc != -EACCES ? "" : s->uri.ca[0] ? s->uri.ca : "the system's CA certificates",
		 rc == -EACCES ? ")" : "");
	store_count(&s->u.errors, 1);
	if (!k->down)
		fprintf(stderr, "uswap: store redis: %s:%d: %s: %s (puts to it pause for 1 s)\n",
			sh->host, sh->port, what, why);
	k->down = true;
	conn_drop(k);
	__atomic_store_n(&sh->last_err, rc, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->retry_at, os_now_ns() + REDIS_PAUSE_NS, __ATOMIC_RELAXED);
	return errmsg_set(rc, "store redis: %s:%d: %s: %s", sh->host, sh->port, what, why);
}

/* One command and its answer, on a link with nothing pending.
 * @return 0 and *r; -errno (the link is broken) */
static int link_call(struct redis_link *l, int argc, const char **argv, redisReply **r)
{
	size_t lens[3];

	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return redis_link_append(l, argc, argv, lens) ? l->err : redis_link_reply(l, r);
}

/* Connected and authenticated, or -errno.  Connection lock held. */
static int conn_ready(struct redis_store *s, struct redis_shard *sh, struct redis_conn *k)
{
	redisReply *r;

	if (redis_link_up(&k->link))
		return 0;
	conn_drop(k);
	if (redis_link_connect(&k->link, sh->host, sh->port, s->tls, s->uri.timeout_ms))
		return conn_error(s, sh, k, s->tls ? "TLS connect" : "connect");
	if (s->uri.password[0]) {
		/* AUTH PASSWORD, or AUTH USER PASSWORD (Redis 6 ACL) */
		const char *with_user[3] = { "AUTH", s->uri.user, s->uri.password };
		const char *without[2] = { "AUTH", s->uri.password };
		int rc = s->uri.user[0] ? link_call(&k->link, 3, with_user, &r)
					: link_call(&k->link, 2, without, &r);

		if (rc)
			return conn_error(s, sh, k, "AUTH");
		if (r->type == REDIS_REPLY_ERROR) {
			int rc = errmsg_set(-EACCES, "store redis: %s:%d refused the password: %s",
					    sh->host, sh->port, r->str);

			if (!k->down)
				fprintf(stderr, "uswap: %s\n", errmsg_get());
			k->down = true;
			freeReplyObject(r);
			conn_drop(k);
			store_count(&s->u.errors, 1);
			return rc;
		}
		freeReplyObject(r);
	}
	return 0;
}

/* The server answered: end a pause, say so once. */
static void conn_answered(struct redis_shard *sh, struct redis_conn *k)
{
	if (__atomic_load_n(&sh->retry_at, __ATOMIC_RELAXED))
		__atomic_store_n(&sh->retry_at, 0, __ATOMIC_RELAXED);
	if (k->down)
		fprintf(stderr, "uswap: store redis: %s:%d answers again\n", sh->host, sh->port);
	k->down = false;
}

/* A connection of the object's server, locked. */
static struct redis_conn *conn_take(struct redis_store *s, uint64_t id, struct redis_shard **shp)
{
	struct redis_shard *sh = &s->shard[id % s->nshards];
	unsigned i, first = (unsigned)(id / s->nshards) % REDIS_CONNS;

	*shp = sh;
	for (i = 0; i < REDIS_CONNS; i++) {
		struct redis_conn *k = &sh->conn[(first + i) % REDIS_CONNS];

		if (pthread_mutex_trylock(&k->lock) == 0)
			return k;
	}
	pthread_mutex_lock(&sh->conn[first].lock);
	return &sh->conn[first];
}

/* Read the answers of the DELs sent before.  @return 0; -errno when the
 * connection broke (the keys stay on the server: counted in errors). */
static int conn_drain(struct redis_store *s, struct redis_shard *sh, struct redis_conn *k)
{
	while (k->pending) {
		redisReply *r;

		if (redis_link_reply(&k->link, &r))
			return conn_error(s, sh, k, "DEL");
		if (r->type == REDIS_REPLY_ERROR)
			store_count(&s->u.errors, 1);
		freeReplyObject(r);
		k->pending--;
	}
	return 0;
}

/* Send one command (after the pending DELs) and read its answer.  A
 * connection that broke since its last use (the server restarted) is made
 * anew and the command sent once more: SET and GET may be repeated. */
static int conn_call(struct redis_store *s, struct redis_shard *sh, struct redis_conn *k,
		     int argc, const char **argv, const size_t *lens, redisReply **out)
{
	for (int attempt = 0;; attempt++) {
		bool fresh = !redis_link_up(&k->link);
		redisReply *r = NULL;
		int rc = conn_ready(s, sh, k);

		if (rc)
			return rc;
		if (redis_link_append(&k->link, argc, argv, lens))
			rc = conn_error(s, sh, k, argv[0]);
		else if (k->pending && conn_drain(s, sh, k))
			rc = -EIO; /* conn_drain said it */
		else if (redis_link_reply(&k->link, &r))
			rc = conn_error(s, sh, k, argv[0]);
		if (!rc) {
			conn_answered(sh, k);
			*out = r;
			return 0;
		}
		if (fresh || attempt || rc == -ETIMEDOUT)
			return rc;
	}
}

static void key_of(const struct redis_store *s, unsigned seg, uint64_t id, char *key, size_t n)
{
	snprintf(key, n, "%s%llx", s->prefix[seg], (unsigned long long)id);
}

/* ---- operations ---- */

static void redis_close(struct store *st);

/* redis:// (tls false) and rediss:// */
static int redis_open_uri(const char *arg, bool tls, size_t limit, struct store **out)
{
	struct redis_store *s = os_mem_map(sizeof(*s));
	sigset_t old;
	int rc;

	if (!s)
		return -ENOMEM;
	rc = redis_uri_parse(&s->uri, arg, tls);
	if (rc == 0 && tls)
		rc = redis_tls_new(s->uri.ca, s->uri.cert, s->uri.key, &s->tls);
	if (rc) {
		os_mem_unmap(s, sizeof(*s));
		return rc;
	}
	pthread_mutex_init(&s->lock, NULL);
	objtable_init(&s->table);
	s->nshards = s->uri.nservers;
	for (unsigned i = 0; i < s->nshards; i++) {
		s->shard[i].host = s->uri.server[i].host;
		s->shard[i].port = s->uri.server[i].port;
		for (unsigned k = 0; k < REDIS_CONNS; k++) {
			pthread_mutex_init(&s->shard[i].conn[k].lock, NULL);
			redis_link_init(&s->shard[i].conn[k].link);
		}
	}
	s->limit = limit;
	s->nsegs = 1;
	prefix_make(s, 0);
	/* one connection to each server now: a wrong address or password is
	 * said at open, not at the first eviction */
	for (unsigned i = 0; i < s->nshards; i++) {
		struct redis_conn *k = &s->shard[i].conn[0];

		sigpipe_block(&old);
		pthread_mutex_lock(&k->lock);
		rc = conn_ready(s, &s->shard[i], k);
		if (rc == 0) {
			const char *ping[1] = { "PING" };
			redisReply *r = NULL;

			if (link_call(&k->link, 1, ping, &r))
				rc = conn_error(s, &s->shard[i], k, "PING");
			else if (r->type == REDIS_REPLY_ERROR)
				rc = errmsg_set(-EACCES, "store redis: %s:%d: %s (give the password: %s)",
						s->shard[i].host, s->shard[i].port, r->str,
						tls ? REDISS_FORM : REDIS_FORM);
			if (r)
				freeReplyObject(r);
		}
		pthread_mutex_unlock(&k->lock);
		sigpipe_restore(&old);
		if (rc) {
			char why[512];

			snprintf(why, sizeof(why), "%s", errmsg_get());
			redis_close((struct store *)s);
			return errmsg_set(rc, "%s", why);
		}
	}
	*out = (struct store *)s;
	return 0;
}

static int redis_open(const char *arg, size_t limit, struct store **out)
{
	return redis_open_uri(arg, false, limit, out);
}

static int rediss_open(const char *arg, size_t limit, struct store **out)
{
	return redis_open_uri(arg, true, limit, out);
}

static void redis_close(struct store *st)
{
	struct redis_store *s = (struct redis_store *)st;
	sigset_t old;

	sigpipe_block(&old);
	for (unsigned i = 0; i < s->nshards; i++) {
		for (unsigned k = 0; k < REDIS_CONNS; k++) {
			struct redis_conn *c = &s->shard[i].conn[k];

			if (redis_link_up(&c->link) && c->pending)
				conn_drain(s, &s->shard[i], c); /* the last DELs */
			conn_drop(c);
			pthread_mutex_destroy(&c->lock);
		}
	}
	sigpipe_restore(&old);
	objtable_destroy(&s->table);
	pthread_mutex_destroy(&s->lock);
	if (s->tls)
		redis_tls_free(s->tls);
	os_mem_unmap(s, sizeof(*s));
}

static int redis_put(struct store *st, const void *obj, size_t len, store_handle_t *h)
{
	struct redis_store *s = (struct redis_store *)st;
	struct objtable_entry *e;
	struct redis_shard *sh;
	struct redis_conn *k;
	redisReply *r = NULL;
	const char *argv[3];
	size_t lens[3];
	char key[128];
	uint64_t id, t0;
	sigset_t old;
	unsigned seg;
	int rc;

	if (len > REDIS_MAX_LEN) {
		store_count(&s->u.fail_2big, 1);
		return errmsg_set(-E2BIG, "store redis: an object of %zu bytes is over the %u bytes "
					  "allowed",
				  len, REDIS_MAX_LEN);
	}
	pthread_mutex_lock(&s->lock);
	if (s->broken) {
		pthread_mutex_unlock(&s->lock);
		store_count(&s->u.errors, 1);
		return errmsg_set(-EIO, "store redis: this forked process has no key prefix of its "
					"own (see docs/STORES.md, fork): nothing can be stored");
	}
	if (s->limit && s->u.stored_bytes + len > s->limit) {
		pthread_mutex_unlock(&s->lock);
		store_count(&s->u.fail_nospc, 1);
		return -ENOSPC;
	}
	e = objtable_alloc(&s->table, h);
	if (!e) {
		pthread_mutex_unlock(&s->lock);
		store_count(&s->u.fail_nomem, 1);
		return -ENOMEM;
	}
	id = ++s->next_id;
	seg = s->own;
	e->loc = id;
	e->seg = (uint16_t)seg;
	e->len = (uint32_t)len;
	s->u.stored_bytes += len;
	pthread_mutex_unlock(&s->lock);

	key_of(s, seg, id, key, sizeof(key));
	argv[0] = "SET";
	argv[1] = key;
	argv[2] = len ? obj : "";
	lens[0] = 3;
	lens[1] = strlen(key);
	lens[2] = len;
	t0 = os_now_ns();
	sh = &s->shard[id % s->nshards];
	if (t0 < __atomic_load_n(&sh->retry_at, __ATOMIC_RELAXED)) {
		store_count(&s->u.errors, 1);
		rc = errmsg_set(__atomic_load_n(&sh->last_err, __ATOMIC_RELAXED),
				"store redis: %s:%d failed less than 1 s ago: the folio stays in "
				"memory",
				sh->host, sh->port);
		goto err_undo;
	}
	sigpipe_block(&old);
	k = conn_take(s, id, &sh);
	rc = conn_call(s, sh, k, 3, argv, lens, &r);
	pthread_mutex_unlock(&k->lock);
	sigpipe_restore(&old);
	store_count(&s->u.write_ns, os_now_ns() - t0);
	if (!rc && r->type == REDIS_REPLY_ERROR) {
		/* the server answered: out of memory is a full store */
		rc = strncmp(r->str, "OOM", 3) ? -EIO : -ENOSPC;
		errmsg_set(rc, "store redis: %s:%d refused to store %zu bytes: %s", sh->host,
			   sh->port, len, r->str);
		store_count(rc == -ENOSPC ? &s->u.fail_nospc : &s->u.errors, 1);
	}
	if (r)
		freeReplyObject(r);
	if (rc) {
err_undo:
		pthread_mutex_lock(&s->lock);
		s->u.stored_bytes -= len;
		objtable_free(&s->table, *h);
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	store_count(&s->u.writes, 1);
	return 0;
}

static int redis_get(struct store *st, store_handle_t h, store_visit_fn fn, void *arg)
{
	struct redis_store *s = (struct redis_store *)st;
	struct objtable_entry *e;
	struct redis_shard *sh;
	struct redis_conn *k;
	redisReply *r = NULL;
	const char *argv[2];
	size_t lens[2];
	char key[128];
	uint64_t id, t0;
	sigset_t old;
	size_t len;
	int rc;

	pthread_mutex_lock(&s->lock);
	e = objtable_lookup(&s->table, h);
	if (!e) {
		pthread_mutex_unlock(&s->lock);
		store_count(&s->u.bad_get, 1);
		return -ENOENT;
	}
	id = e->loc;
	len = e->len;
	key_of(s, e->seg, id, key, sizeof(key));
	pthread_mutex_unlock(&s->lock);

	argv[0] = "GET";
	argv[1] = key;
	lens[0] = 3;
	lens[1] = strlen(key);
	t0 = os_now_ns();
	sigpipe_block(&old);
	k = conn_take(s, id, &sh);
	rc = conn_call(s, sh, k, 2, argv, lens, &r);
	pthread_mutex_unlock(&k->lock);
	sigpipe_restore(&old);
	store_count(&s->u.read_ns, os_now_ns() - t0);
	if (rc)
		return rc;
	if (r->type == REDIS_REPLY_STRING && (size_t)r->len == len) {
		store_count(&s->u.reads, 1);
		rc = fn(r->str, len, arg);
	} else {
		store_count(&s->u.errors, 1);
		if (r->type == REDIS_REPLY_NIL)
			rc = errmsg_set(-ESRCH, "store redis: %s:%d lost the key %s (restarted "
						"without persistence, or evicted by its maxmemory "
						"policy)",
					sh->host, sh->port, key);
		else
			rc = errmsg_set(-EIO, "store redis: %s:%d: GET %s gave %s where %zu bytes "
					      "were stored",
					sh->host, sh->port, key,
					r->type == REDIS_REPLY_ERROR ? r->str : "another length",
					len);
	}
	freeReplyObject(r);
	return rc;
}

static void redis_free(struct store *st, store_handle_t h)
{
	struct redis_store *s = (struct redis_store *)st;
	struct objtable_entry *e;
	struct redis_shard *sh;
	struct redis_conn *k;
	const char *argv[2];
	size_t lens[2];
	char key[128];
	uint64_t id;
	sigset_t old;
	bool del;

	pthread_mutex_lock(&s->lock);
	e = objtable_lookup_for_free(&s->table, h, &s->lock, &s->u.bad_free, "redis");
	if (!e)
		return;
	id = e->loc;
	/* a key of another process, or one a forked process may read: keep */
	del = e->seg == s->own && !(e->flags & REDIS_SHARED) && e->len;
	key_of(s, e->seg, id, key, sizeof(key));
	s->u.stored_bytes -= e->len;
	objtable_free(&s->table, h);
	pthread_mutex_unlock(&s->lock);
	if (!del)
		return;

	argv[0] = "DEL";
	argv[1] = key;
	lens[0] = 3;
	lens[1] = strlen(key);
	sigpipe_block(&old);
	k = conn_take(s, id, &sh);
	if (conn_ready(s, sh, k) == 0) {
		if (redis_link_append(&k->link, 2, argv, lens) == 0)
			k->pending++;
		else
			conn_error(s, sh, k, "DEL");
		if (k->pending >= REDIS_PENDING_MAX)
			conn_drain(s, sh, k);
	}
	pthread_mutex_unlock(&k->lock);
	sigpipe_restore(&old);
}

static void redis_usage(struct store *st, struct store_usage *u)
{
	struct redis_store *s = (struct redis_store *)st;

	pthread_mutex_lock(&s->lock);
	store_usage_counters(&s->u, u);
	u->objects = s->table.live;
	u->stored_bytes = s->u.stored_bytes;
	u->pool_bytes = s->u.stored_bytes;
	u->meta_bytes = objtable_bytes(&s->table);
	pthread_mutex_unlock(&s->lock);
}

static long redis_compact(struct store *st)
{
	(void)st;
	return 0;
}

static int redis_check(struct store *st)
{
	struct redis_store *s = (struct redis_store *)st;
	uint64_t stored = 0;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = objtable_check(&s->table, "redis");
	for (uint32_t i = 0; !rc && i < s->table.n; i++) {
		const struct objtable_entry *e = &s->table.v[i];

		if (!(e->flags & OBJTABLE_LIVE))
			continue;
		stored += e->len;
		if (e->seg >= s->nsegs || e->loc > s->next_id)
			rc = errmsg_set(-EUCLEAN, "store redis: entry %u names key %u:%llu", i,
					e->seg, (unsigned long long)e->loc);
	}
	if (!rc && stored != s->u.stored_bytes)
		rc = errmsg_set(-EUCLEAN, "store redis: objects hold %llu bytes, %llu counted",
				(unsigned long long)stored, (unsigned long long)s->u.stored_bytes);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void redis_prefork(struct store *st)
{
	struct redis_store *s = (struct redis_store *)st;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->nshards; i++)
		for (unsigned k = 0; k < REDIS_CONNS; k++)
			pthread_mutex_lock(&s->shard[i].conn[k].lock);
	for (uint32_t i = 0; i < s->table.n; i++)
		if ((s->table.v[i].flags & OBJTABLE_LIVE) && s->table.v[i].seg == s->own)
			s->table.v[i].flags |= REDIS_SHARED;
}

static void redis_postfork_parent(struct store *st)
{
	struct redis_store *s = (struct redis_store *)st;

	for (unsigned i = s->nshards; i-- > 0;)
		for (unsigned k = REDIS_CONNS; k-- > 0;)
			pthread_mutex_unlock(&s->shard[i].conn[k].lock);
	pthread_mutex_unlock(&s->lock);
}

static void redis_postfork_child(struct store *st)
{
	struct redis_store *s = (struct redis_store *)st;

	/* prefork took the locks in the thread that forked, the one we are:
	 * release them (no other thread of the parent is here to want them) */
	for (unsigned i = 0; i < s->nshards; i++) {
		for (unsigned k = 0; k < REDIS_CONNS; k++) {
			struct redis_conn *c = &s->shard[i].conn[k];

			/* the parent's socket: close our descriptor, send nothing
			 * (the DELs queued there are the parent's to send) */
			conn_drop(c);
			pthread_mutex_unlock(&c->lock);
		}
	}
	if (s->nsegs == REDIS_SEGS_MAX) {
		/* no prefix left: writing under the parent's would mix keys */
		fprintf(stderr, "uswap: store redis: forked %u levels deep: this process keeps "
				"its memory resident\n",
			REDIS_SEGS_MAX);
		s->broken = true;
	} else {
		prefix_make(s, s->nsegs);
		s->own = s->nsegs++;
	}
	pthread_mutex_unlock(&s->lock);
}

/* redis:// and rediss:// (the same store over TLS) differ only in open,
 * which makes the TLS context. */
#define REDIS_STORE_OPS(store_name, open_fn)                                                      \
	{                                                                                          \
		.version = STORE_OPS_VERSION, .name = store_name, .open = open_fn,                 \
		.close = redis_close, .put = redis_put, .get = redis_get, .free = redis_free,      \
		.usage = redis_usage, .compact = redis_compact, .max_len = REDIS_MAX_LEN,          \
		.check = redis_check, .prefork = redis_prefork,                                    \
		.postfork_parent = redis_postfork_parent, .postfork_child = redis_postfork_child,  \
	}

const struct store_ops store_redis = REDIS_STORE_OPS("redis", redis_open);
const struct store_ops store_rediss = REDIS_STORE_OPS("rediss", rediss_open);

/* SPDX-License-Identifier: MIT */
/*
 * Fault injection at every failure point uswap has, on the fake OS
 * (deterministic): the store full or failing (put, get, lost objects, data
 * corrupted or truncated on the way back), the codec failing, allocations
 * failing inside uswap, ioctls answering EAGAIN (once, and past every retry)
 * or EEXIST (a racing resolution), and a handler delayed in the middle of a
 * swap-in while other threads fault and page out the same folio.
 *
 * After each injection the program either reads exactly its data (a model
 * of every page says what), or gets a clear error (a -errno and a message;
 * a poisoned page, the SIGBUS of the real kernel, only where the data
 * could not be had), and never a wrong byte; the failure is counted under
 * its own counter; every invariant holds (folio states vs page presence,
 * page entries vs slot map vs store, resident accounting).
 *
 * uswap-test-labels: threads
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "pagegen.h"
#include "sim_os.h"
#include "codec/folio_blob.h"
#include "os/os.h"
#include "runtime/instance.h"
#include "uswap.h"

#define PAGE 4096ul

/* the ram store's checker (run at close in debug builds) holds all its locks */
TESTLIB_TSAN_DEFAULTS("detect_deadlocks=0")

/* ---- a store and a codec that fail on command ---- */

struct countdown {
	int in;  /* the in-th next call fails (0 = none) */
	int err; /* with this -errno */
};

static pthread_mutex_t inj_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct countdown put, get, compress, get_corrupt, get_truncate;
	int get_delay_ms;
	unsigned fired; /* injections that took effect */
} inj;

static int countdown_take(struct countdown *c)
{
	int err = 0;

	pthread_mutex_lock(&inj_lock);
	if (c->in > 0 && --c->in == 0) {
		err = c->err ? c->err : -1;
		inj.fired++;
	}
	pthread_mutex_unlock(&inj_lock);
	return err;
}

static void inj_clear(void)
{
	struct sim_inject none = { 0 };

	pthread_mutex_lock(&inj_lock);
	memset(&inj, 0, sizeof(inj));
	pthread_mutex_unlock(&inj_lock);
	sim_os_inject(&none);
}

static unsigned inj_fired(void)
{
	unsigned n;

	pthread_mutex_lock(&inj_lock);
	n = inj.fired;
	pthread_mutex_unlock(&inj_lock);
	return n;
}

static const struct store_ops *real_store;
static struct store_ops failing_store;
static const struct codec_ops *real_codec;
static struct codec_ops failing_codec;

static int failing_put(struct store *s, const void *obj, size_t len, store_handle_t *h)
{
	int err = countdown_take(&inj.put);

	return err ? err : real_store->put(s, obj, len, h);
}

/* The object as the store gives it, changed on its way to the decoder. */
struct tamper {
	store_visit_fn fn;
	void *arg;
	bool truncate;
};

static int tamper_visit(const void *obj, size_t len, void *arg)
{
	struct tamper *t = arg;
	uint8_t *copy = malloc(len + 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, obj, len);
	if (t->truncate)
		len -= len > 1 ? len / 3 : 0;
	else
		copy[len / 2] ^= 0x10;
	rc = t->fn(copy, len, t->arg);
	free(copy);
	return rc;
}

static int failing_get(struct store *s, store_handle_t h, store_visit_fn fn, void *arg)
{
	struct tamper t = { fn, arg, false };
	int err, delay;

	pthread_mutex_lock(&inj_lock);
	delay = inj.get_delay_ms;
	pthread_mutex_unlock(&inj_lock);
	if (delay)
		usleep((useconds_t)delay * 1000);
	err = countdown_take(&inj.get);
	if (err)
		return err;
	if (countdown_take(&inj.get_corrupt))
		return real_store->get(s, h, tamper_visit, &t);
	if (countdown_take(&inj.get_truncate)) {
		t.truncate = true;
		return real_store->get(s, h, tamper_visit, &t);
	}
	return real_store->get(s, h, fn, arg);
}

static long failing_compress(const void *src, size_t len, void *dst, size_t dst_cap)
{
	int err = countdown_take(&inj.compress);

	return err ? err : real_codec->compress(src, len, dst, dst_cap);
}

/* ---- the program, its model, and the checks ---- */

struct prog {
	uswap_t *u;
	char *mem;
	size_t len, pages, fpages;
	char *shadow;      /* what each page must read */
	uint8_t *poisoned; /* pages that may read poisoned (data lost on purpose) */
	struct folio_ctx *ctx;
	unsigned shard;
};

static uint64_t stat_of(struct prog *g, const char *name)
{
	uint64_t v;

	assert_int_equal(uswap_stat(g->u, name, &v), 0);
	return v;
}

static void prog_open(struct prog *g, struct uswap_config cfg, size_t len)
{
	memset(g, 0, sizeof(*g));
	inj_clear();
	cfg.threads = 1;
	assert_int_equal(uswap_open(&cfg, &g->u), 0);
	/* this thread drives everything (the delayed-handler test adds its own) */
	handlers_stop(g->u);
	reclaimer_stop(g->u);
	real_store = g->u->p.store_ops;
	failing_store = *real_store;
	failing_store.put = failing_put;
	failing_store.get = failing_get;
	g->u->p.store_ops = &failing_store;
	real_codec = g->u->p.codec;
	failing_codec = *real_codec;
	failing_codec.compress = failing_compress;
	g->u->p.codec = &failing_codec;
	g->len = len;
	g->pages = len / PAGE;
	g->fpages = g->u->p.folio_size / PAGE;
	assert_int_equal(uswap_map(g->u, len, 0, (void **)&g->mem), 0);
	g->shadow = calloc(1, len);
	g->poisoned = calloc(g->pages, 1);
	g->ctx = folio_ctx_get(g->u);
	g->shard = regions_api_shard(g->u);
	assert_non_null(g->ctx);
}

/* A fault as a handler thread serves it: a passing failure is retried
 * (the faulting thread sleeps meanwhile).  @return the retries. */
static unsigned prog_fault(struct prog *g, size_t p, bool write)
{
	unsigned retries = 0;
	int rc;

	for (;;) {
		regions_read_lock(&g->u->regions, g->shard);
		rc = fault_resolve(g->u, g->ctx, (uint64_t)(uintptr_t)(g->mem + p * PAGE), write);
		regions_read_unlock(&g->u->regions, g->shard);
		if (rc == 0)
			return retries;
		if (rc != -EAGAIN && rc != -ENOMEM && rc != -EIO)
			fail_msg("page %zu: fault failed with %d, not a passing failure", p, rc);
		if (++retries > 100)
			fail_msg("page %zu: fault still failing (%d) after 100 retries", p, rc);
	}
}

static void prog_touch(struct prog *g, size_t p, bool write)
{
	if (sim_os_page(g->mem + p * PAGE) == SIM_ABSENT)
		prog_fault(g, p, write);
}

static void prog_read(struct prog *g, size_t p)
{
	enum sim_page st;

	prog_touch(g, p, false);
	st = sim_os_page(g->mem + p * PAGE);
	if (st == SIM_POISONED) {
		if (!g->poisoned[p])
			fail_msg("page %zu was poisoned: its data was lost", p);
		return;
	}
	assert_int_not_equal(st, SIM_ABSENT);
	if (memcmp(g->mem + p * PAGE, g->shadow + p * PAGE, PAGE))
		fail_msg("page %zu reads wrong (first byte 0x%02x, expected 0x%02x)", p,
			 (unsigned char)g->mem[p * PAGE], (unsigned char)g->shadow[p * PAGE]);
}

static void prog_write(struct prog *g, size_t p, uint64_t v)
{
	char *dst = g->shadow + p * PAGE;

	if (sim_os_page(g->mem + p * PAGE) == SIM_POISONED)
		return; /* the program would have died */
	switch (v % 4) {
	case 0:
		memset(dst, 0, PAGE);
		break;
	case 1:
		memset(dst, (int)(v >> 8) | 1, PAGE);
		break;
	default:
		pagegen_fill(dst, 9, p, v);
	}
	prog_touch(g, p, true);
	if (sim_os_wp(g->mem + p * PAGE)) {
		regions_read_lock(&g->u->regions, g->shard);
		fault_resolve_wp(g->u, (uint64_t)(uintptr_t)(g->mem + p * PAGE));
		regions_read_unlock(&g->u->regions, g->shard);
	}
	sim_os_cow(g->mem + p * PAGE);
	memcpy(g->mem + p * PAGE, dst, PAGE);
}

/* The program drops pages (MADV_DONTNEED): they read zero, whatever they
 * held; a poisoned page is a page again. */
static void prog_drop(struct prog *g, size_t p, size_t n)
{
	sim_os_drop(g->mem + p * PAGE, n * PAGE);
	events_drop(g->u, g->shard, (uint64_t)(uintptr_t)(g->mem + p * PAGE),
		    (uint64_t)(uintptr_t)(g->mem + (p + n) * PAGE), false);
	memset(g->shadow + p * PAGE, 0, n * PAGE);
	memset(g->poisoned + p, 0, n);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}


/* The budget counts every page of a resident folio, but of a partly
 * swapped-in one only the pages not still out (no slot, no zero bit). */
static uint64_t pages_counted(const struct pagetable *pt, uint32_t f, uint32_t w)
{
	uint32_t p, n = 0;

	for (p = f << pt->folio_order; p < (f + 1) << pt->folio_order; p++)
		n += !((w & FOLIO_PARTIAL) && (entry_has_slot(pt->entry[p]) || zeromap_test(pt, p)));
	return n;
}

/* Everything uswap keeps agrees with itself and with the fake. */
static void prog_check(struct prog *g)
{
	struct uswap *u = g->u;
	struct pagetable *pt = &u->regions.v[0]->pt;
	uint64_t resident = 0, slots = 0, runs = 0;
	uint32_t *firsts = malloc(sizeof(*firsts) * g->pages), n = 0, f, i;

	for (f = 0; f < pt->nfolios; f++) {
		uint32_t w = folio_word_load(pt, f);
		enum folio_state st = folio_state_of(w);

		assert_false(w & FOLIO_LOCKED);
		assert_int_equal(folio_check(pt, f, u->slots), 0);
		if (st == FOLIO_RESIDENT && !(w & FOLIO_UNCHARGED))
			resident += pages_counted(pt, f, w);
		for (i = f << pt->folio_order; i < (f + 1) << pt->folio_order; i++) {
			enum sim_page sp = sim_os_page(g->mem + (size_t)i * PAGE);
			store_handle_t h;
			slot_t first;
			unsigned order;

			if (st != FOLIO_RESIDENT && sp != SIM_ABSENT && sp != SIM_POISONED)
				fail_msg("folio %u (0x%x) is not resident but page %u is mapped", f, w, i);
			if (!entry_has_slot(pt->entry[i]))
				continue;
			slots++;
			assert_int_equal(slot_run(u->slots, entry_slot(pt->entry[i]), &h, &first, &order),
					 0);
			firsts[n++] = first.v;
		}
	}
	qsort(firsts, n, sizeof(*firsts), cmp_u32);
	for (i = 0; i < n; i++)
		runs += i == 0 || firsts[i] != firsts[i - 1];
	free(firsts);
	assert_int_equal(slotmap_check(u->slots), 0);
	if (real_store->check)
		assert_int_equal(real_store->check(u->store), 0);
	assert_int_equal(__atomic_load_n(&u->resident_pages, __ATOMIC_RELAXED), resident);
	assert_int_equal(stat_of(g, "orig_bytes"), slots * PAGE);
	assert_int_equal(stat_of(g, "store_objects"), runs);
	if (instance_check(u))
		fail_msg("instance_check: %s", uswap_last_error());
}

static void prog_read_all(struct prog *g)
{
	for (size_t p = 0; p < g->pages; p++)
		prog_read(g, p);
}

static void prog_close(struct prog *g)
{
	inj_clear();
	prog_read_all(g);
	prog_check(g);
	folio_ctx_put(g->u, g->ctx);
	assert_int_equal(uswap_unmap(g->u, g->mem, g->len), 0);
	assert_int_equal(stat_of(g, "store_objects"), 0);
	assert_int_equal(stat_of(g, "orig_bytes"), 0);
	uswap_close(g->u);
	free(g->shadow);
	free(g->poisoned);
}

static void prog_fill(struct prog *g, uint64_t v)
{
	for (size_t p = 0; p < g->pages; p++)
		prog_write(g, p, v + p);
}

static enum folio_state folio_state_at(struct prog *g, size_t p)
{
	struct pagetable *pt = &g->u->regions.v[0]->pt;

	return folio_state_of(folio_word_load(pt, (uint32_t)(p / g->fpages)));
}

static struct uswap_config small_cfg(void)
{
	return (struct uswap_config){ .folio_size = 16384 };
}

/* ---- eviction failures: the folio stays resident, nothing is lost ---- */

static void evict_fails(struct countdown *c, int err, const char *counter, int advise_rc)
{
	struct prog g;
	uint64_t before;

	prog_open(&g, small_cfg(), 16 * 16384);
	prog_fill(&g, 3);
	/* not a zero folio: a blob must reach the codec and the store */
	prog_write(&g, 0, 7);
	before = stat_of(&g, counter);
	pthread_mutex_lock(&inj_lock);
	*c = (struct countdown){ 1, err };
	pthread_mutex_unlock(&inj_lock);
	assert_int_equal(uswap_advise(g.u, g.mem, 16384, USWAP_ADV_PAGEOUT), advise_rc);
	assert_int_equal(inj_fired(), 1);
	assert_int_equal(stat_of(&g, counter), before + 1);
	assert_int_equal(folio_state_at(&g, 0), FOLIO_RESIDENT);
	prog_check(&g);
	prog_read_all(&g);
	/* and it goes out once the failure has passed */
	assert_int_equal(uswap_advise(g.u, g.mem, g.len, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(folio_state_at(&g, 0), FOLIO_OUT);
	prog_check(&g);
	prog_close(&g);
}

static void test_store_full(void **state)
{
	(void)state;
	evict_fails(&inj.put, -ENOSPC, "reclaim_fail_store_full", -ENOSPC);
}

static void test_store_put_nomem(void **state)
{
	(void)state;
	evict_fails(&inj.put, -ENOMEM, "reclaim_fail_nomem", 0);
}

static void test_store_put_error(void **state)
{
	(void)state;
	evict_fails(&inj.put, -EIO, "reclaim_fail_other", 0);
}

static void test_codec_fails(void **state)
{
	(void)state;
	evict_fails(&inj.compress, -ENOMEM, "reclaim_fail_codec", 0);
	evict_fails(&inj.compress, -EINVAL, "reclaim_fail_codec", 0);
}

static void test_move_busy(void **state)
{
	struct prog g;
	struct sim_inject in = { .move_ebusy_in = 1 };

	(void)state;
	prog_open(&g, small_cfg(), 16 * 16384);
	prog_fill(&g, 5);
	sim_os_inject(&in);
	assert_int_equal(uswap_advise(g.u, g.mem, 16384, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(stat_of(&g, "reclaim_fail_busy"), 1);
	assert_int_equal(folio_state_at(&g, 0), FOLIO_RESIDENT);
	prog_check(&g);
	prog_close(&g);
}

/* ---- swap-in failures: a passing one is retried, a permanent one
 * poisons the page, never shows wrong bytes ---- */

static void pageout_all(struct prog *g)
{
	assert_int_equal(uswap_advise(g->u, g->mem, g->len, USWAP_ADV_PAGEOUT), 0);
	prog_check(g);
}

static void test_store_get_passing_failure(void **state)
{
	struct prog g;
	int errs[] = { -EIO, -ENOMEM, -EAGAIN };

	(void)state;
	prog_open(&g, small_cfg(), 16 * 16384);
	prog_fill(&g, 11);
	for (unsigned k = 0; k < 3; k++) {
		uint64_t before = stat_of(&g, "swapin_fail_read");

		pageout_all(&g);
		pthread_mutex_lock(&inj_lock);
		inj.get = (struct countdown){ 1, errs[k] };
		pthread_mutex_unlock(&inj_lock);
		/* the fault fails once, is retried, and the data comes back */
		assert_int_equal(prog_fault(&g, 5, false), 1);
		assert_int_equal(stat_of(&g, "swapin_fail_read"), before + 1);
		assert_int_equal(stat_of(&g, "fault_poisoned"), 0);
		prog_read(&g, 5);
		prog_check(&g);
		/* WILLNEED reports it (a clear error), and the data stays */
		pageout_all(&g);
		pthread_mutex_lock(&inj_lock);
		inj.get = (struct countdown){ 1, errs[k] };
		pthread_mutex_unlock(&inj_lock);
		assert_int_equal(uswap_advise(g.u, g.mem, 16384, USWAP_ADV_WILLNEED), errs[k]);
		assert_int_equal(folio_state_at(&g, 0), FOLIO_OUT);
		assert_int_equal(uswap_advise(g.u, g.mem, 16384, USWAP_ADV_WILLNEED), 0);
		prog_check(&g);
		prog_read_all(&g);
	}
	prog_close(&g);
}

/* The store lost the object, or the data comes back corrupt or truncated:
 * a page whose data was in it is poisoned and counted; the data is never
 * decoded into garbage.  Folio 1 holds data pages 4, 5, 7 and a zero page,
 * 6 (prog_write: v % 4 == 0).  A zero page's data is its zero-map bit, not
 * the lost blob: with adaptive swap-in it comes in alone and reads zero;
 * without (USWAP_CFG_NO_ADAPT) the whole folio fails and it is poisoned. */
static void permanent_failure_at(struct countdown *c, int err, const char *counter, size_t p,
				 unsigned flags)
{
	struct uswap_config cfg = small_cfg();
	bool poison = p != 6 || (flags & USWAP_CFG_NO_ADAPT);
	struct prog g;
	size_t i;

	cfg.flags = flags;
	prog_open(&g, cfg, 16 * 16384);
	prog_fill(&g, 13);
	for (i = 0; i < g.fpages; i++)
		prog_write(&g, g.fpages + i, 2 + i); /* folio 1: data, data, zero, data */
	pageout_all(&g);
	pthread_mutex_lock(&inj_lock);
	*c = (struct countdown){ 1, err };
	pthread_mutex_unlock(&inj_lock);
	g.poisoned[p] = poison;
	assert_int_equal(prog_fault(&g, p, false), 0);
	assert_int_equal(inj_fired(), 1);
	assert_int_equal(sim_os_page(g.mem + p * PAGE), poison ? SIM_POISONED : SIM_ZERO);
	assert_int_equal(stat_of(&g, counter), 1);
	assert_int_equal(stat_of(&g, "fault_poisoned"), poison);
	assert_int_equal(stat_of(&g, "swapin_partial"), !poison);
	prog_check(&g);
	/* the store still has the data (only its way back failed, or the
	 * object is gone for good): either way no other page reads wrong */
	prog_read_all(&g);
	prog_check(&g);
	/* the program drops the page: it reads zero again */
	prog_drop(&g, p, 1);
	prog_read(&g, p);
	prog_close(&g);
}

static void permanent_failure(struct countdown *c, int err, const char *counter)
{
	permanent_failure_at(c, err, counter, 5, 0);
	permanent_failure_at(c, err, counter, 6, 0);
	permanent_failure_at(c, err, counter, 5, USWAP_CFG_NO_ADAPT);
	permanent_failure_at(c, err, counter, 6, USWAP_CFG_NO_ADAPT);
}

static void test_store_lost_object(void **state)
{
	(void)state;
	permanent_failure(&inj.get, -ENOENT, "swapin_fail_read");
}

static void test_corrupt_on_the_way_back(void **state)
{
	(void)state;
	permanent_failure(&inj.get_corrupt, -1, "swapin_fail_corrupt");
}

static void test_truncated_on_the_way_back(void **state)
{
	(void)state;
	permanent_failure(&inj.get_truncate, -1, "swapin_fail_corrupt");
}

/* ---- allocation failures inside uswap, at each allocation in turn ---- */

static void test_allocation_failures(void **state)
{
	struct prog g;
	unsigned n, failed_advise = 0;

	(void)state;
	prog_open(&g, small_cfg(), 64 * 16384);
	prog_fill(&g, 17);
	/* the n-th allocation fails, for n = 1, 2, ...: each run pages
	 * everything out and back in; what cannot be allocated is refused
	 * (a clear error or a skipped folio), never lost */
	for (n = 1; n <= 40; n++) {
		struct sim_inject in = { .map_enomem_in = (int)n };
		struct folio_ctx *held = folio_ctx_get(g.u); /* empty the buffer list */
		int rc;

		sim_os_inject(&in);
		rc = uswap_advise(g.u, g.mem, g.len, USWAP_ADV_PAGEOUT);
		if (rc) {
			assert_int_equal(rc, -ENOMEM);
			assert_true(strstr(uswap_last_error(), "no memory") != NULL);
			failed_advise++;
		}
		inj_clear();
		folio_ctx_put(g.u, held);
		prog_check(&g);
		prog_read_all(&g);
		prog_write(&g, n % g.pages, n);
		prog_check(&g);
	}
	/* the first allocation is the API's buffers: that one fails the call */
	assert_true(failed_advise >= 1);
	fprintf(stderr, "# %u PAGEOUTs refused for lack of memory, %llu evictions failed (nomem)\n",
		failed_advise, (unsigned long long)stat_of(&g, "reclaim_fail_nomem"));
	prog_close(&g);
}

/* ---- ioctls: EAGAIN once, EAGAIN past every retry, EEXIST ---- */

static void test_ioctl_eagain_and_eexist(void **state)
{
	struct prog g;
	struct rng r;
	unsigned step;

	(void)state;
	rng_seed(&r, 21);
	prog_open(&g, small_cfg(), 32 * 16384);
	prog_fill(&g, 19);
	for (step = 0; step < 600; step++) {
		struct sim_inject in = { 0 };
		size_t p = (size_t)rng_below(&r, g.pages);
		uint64_t retries = stat_of(&g, "ioctl_retries");

		switch (step % 5) {
		case 0: in.eagain_in = 1 + (int)rng_below(&r, 3); break;
		case 1: in.copy_eexist_in = 1 + (int)rng_below(&r, 2); break;
		case 2: in.zero_eexist_in = 1 + (int)rng_below(&r, 2); break;
		case 3: in.eagain_times = 2000; break; /* more than any retry loop */
		default: in.move_underreport_in = 1; break;
		}
		if (step % 5 == 3) {
			/* the kernel keeps saying EAGAIN past every retry: the fault
			 * fails as a passing failure, the folio stays out, the program
			 * waits (the handler tries again later) */
			uint64_t install = stat_of(&g, "swapin_fail_install");

			assert_int_equal(uswap_advise(g.u, g.mem + (p & ~(g.fpages - 1)) * PAGE,
						      g.fpages * PAGE, USWAP_ADV_PAGEOUT), 0);
			sim_os_inject(&in);
			regions_read_lock(&g.u->regions, g.shard);
			assert_int_equal(fault_resolve(g.u, g.ctx,
						       (uint64_t)(uintptr_t)(g.mem + p * PAGE), false),
					 -EAGAIN);
			regions_read_unlock(&g.u->regions, g.shard);
			assert_true(stat_of(&g, "ioctl_retries") > retries);
			assert_int_equal(stat_of(&g, "swapin_fail_install"), install + 1);
			assert_int_equal(folio_state_at(&g, p), FOLIO_OUT);
			inj_clear();
		} else {
			sim_os_inject(&in);
			if (rng_below(&r, 2))
				assert_int_equal(uswap_advise(g.u, g.mem + (p & ~(g.fpages - 1)) * PAGE,
							      g.fpages * PAGE, USWAP_ADV_PAGEOUT), 0);
		}
		if (rng_below(&r, 2))
			prog_write(&g, p, step);
		else
			prog_read(&g, p);
		inj_clear();
		prog_check(&g);
	}
	fprintf(stderr, "# ioctl retries %llu, swap-ins refused by the kernel %llu, stale faults %llu\n",
		(unsigned long long)stat_of(&g, "ioctl_retries"),
		(unsigned long long)stat_of(&g, "swapin_fail_install"),
		(unsigned long long)stat_of(&g, "faults_stale"));
	assert_true(stat_of(&g, "ioctl_retries") > 0);
	prog_close(&g);
}

/* The folio was moved out, the store refuses it, and the kernel keeps
 * answering EAGAIN (its mm is changing: an event nobody has read yet) for
 * longer than any retry loop: the pages must still go back, not be
 * dropped with the staging folio. */
static void test_move_back_refused_for_long(void **state)
{
	struct prog g;
	struct sim_inject in = { .eagain_after = 1, .eagain_times = 2500 };

	(void)state;
	prog_open(&g, small_cfg(), 16 * 16384);
	prog_fill(&g, 29);
	prog_write(&g, 0, 7);
	pthread_mutex_lock(&inj_lock);
	inj.put = (struct countdown){ 1, -ENOMEM };
	pthread_mutex_unlock(&inj_lock);
	sim_os_inject(&in); /* the move out succeeds, then EAGAIN */
	assert_int_equal(uswap_advise(g.u, g.mem, 16384, USWAP_ADV_PAGEOUT), 0);
	assert_int_equal(inj_fired(), 1);
	assert_int_equal(folio_state_at(&g, 0), FOLIO_RESIDENT);
	inj_clear();
	prog_check(&g);
	prog_close(&g);
}

/* EAGAIN that lasts until the pending event is read, and the evicting
 * thread is the only one that could read it (one handler, in direct
 * reclaim): it must read it itself rather than wait for ever. */
static void *watchdog_main(void *arg)
{
	(void)arg;
	sleep(60);
	fprintf(stderr, "test_inject: hung for 60 s\n");
	_exit(3);
}

static void test_move_back_waits_for_an_event_only_it_can_read(void **state)
{
	pthread_t dog;
	struct prog g;
	struct sim_inject in = { .eagain_after = 1, .eagain_until_read = 1 };

	(void)state;
	prog_open(&g, small_cfg(), 16 * 16384);
	prog_fill(&g, 31);
	prog_write(&g, 0, 9);
	pthread_mutex_lock(&inj_lock);
	inj.put = (struct countdown){ 1, -ENOMEM };
	pthread_mutex_unlock(&inj_lock);
	sim_os_inject(&in); /* the move out succeeds, then EAGAIN until a read */
	/* a hang fails the test (uswap_advise blocks signals: no alarm) */
	assert_int_equal(pthread_create(&dog, NULL, watchdog_main, NULL), 0);
	assert_int_equal(uswap_advise(g.u, g.mem, 16384, USWAP_ADV_PAGEOUT), 0);
	pthread_cancel(dog);
	pthread_join(dog, NULL);
	assert_int_equal(inj_fired(), 1);
	assert_int_equal(folio_state_at(&g, 0), FOLIO_RESIDENT);
	inj_clear();
	prog_check(&g);
	prog_close(&g);
}

/* ---- a delayed handler ---- */

struct racer {
	struct prog *g;
	size_t page;
	int what; /* 0: fault, 1: PAGEOUT of its folio */
	int rc;
};

static void *racer_main(void *arg)
{
	struct racer *x = arg;
	struct prog *g = x->g;

	if (x->what == 0) {
		struct folio_ctx *c = folio_ctx_get(g->u);

		regions_read_lock(&g->u->regions, 0); /* a handler's shard */
		x->rc = fault_resolve(g->u, c, (uint64_t)(uintptr_t)(g->mem + x->page * PAGE), false);
		regions_read_unlock(&g->u->regions, 0);
		folio_ctx_put(g->u, c);
	} else {
		x->rc = uswap_advise(g->u, g->mem + (x->page & ~(g->fpages - 1)) * PAGE,
				     g->fpages * PAGE, USWAP_ADV_PAGEOUT);
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_delayed_handler(void **state)
{
	struct prog g;
	struct racer x[3];
	pthread_t th[3];
	double t0;
	int k, round;

	(void)state;
	prog_open(&g, small_cfg(), 16 * 16384);
	prog_fill(&g, 23);
	alarm(60); /* a hang is a failure (SIGALRM ends the test) */
	for (round = 0; round < 4; round++) {
		pageout_all(&g);
		pthread_mutex_lock(&inj_lock);
		inj.get_delay_ms = 150; /* every store read takes 150 ms */
		pthread_mutex_unlock(&inj_lock);
		t0 = now_s();
		/* a fault in the middle of its swap-in, another fault on the same
		 * folio, and a PAGEOUT of it */
		x[0] = (struct racer){ &g, 1, 0, -1 };
		x[1] = (struct racer){ &g, 2, 0, -1 };
		x[2] = (struct racer){ &g, 3, 1, -1 };
		assert_int_equal(pthread_create(&th[0], NULL, racer_main, &x[0]), 0);
		usleep(20000);
		for (k = 1; k < 3; k++)
			assert_int_equal(pthread_create(&th[k], NULL, racer_main, &x[k]), 0);
		for (k = 0; k < 3; k++) {
			pthread_join(th[k], NULL);
			assert_int_equal(x[k].rc, 0);
		}
		pthread_mutex_lock(&inj_lock);
		inj.get_delay_ms = 0;
		pthread_mutex_unlock(&inj_lock);
		/* nobody waited for more than a few slow reads */
		assert_true(now_s() - t0 < 5.0);
		prog_check(&g);
		prog_read_all(&g);
	}
	alarm(0);
	prog_close(&g);
}

/* ---- the checker itself: each broken invariant is named ---- */

static void expect_broken(struct prog *g, const char *name)
{
	int rc = instance_check(g->u);

	if (rc != -EUCLEAN || !strstr(uswap_last_error(), name))
		fail_msg("instance_check did not name %s: %d \"%s\"", name, rc, uswap_last_error());
}

static void test_checker_names_each_breakage(void **state)
{
	struct prog g;
	struct pagetable *pt;
	uint64_t *counters[4];
	const char *names[] = { "resident_pages", "uncharged_folios", "pinned_folios",
				"swapcache_pages" };
	page_entry_t saved;
	uint32_t w;

	(void)state;
	prog_open(&g, small_cfg(), 16 * 16384);
	counters[0] = &g.u->resident_pages;
	counters[1] = &g.u->uncharged_folios;
	counters[2] = &g.u->pinned_folios;
	counters[3] = &g.u->swapcache_pages;
	pt = &g.u->regions.v[0]->pt;
	prog_fill(&g, 37);
	pageout_all(&g);
	prog_read(&g, 0); /* folio 0 swap-cached, the rest out */
	assert_int_equal(instance_check(g.u), 0);
	for (unsigned i = 0; i < 4; i++) {
		(*counters[i])++;
		expect_broken(&g, names[i]);
		(*counters[i])--;
	}
	/* a page of an out folio pointing at a slot nobody holds */
	saved = pt->entry[8];
	pt->entry[8] = entry_of_slot((slot_t){ 4000 });
	expect_broken(&g, "folio_check");
	pt->entry[8] = saved;
	/* a folio left locked */
	w = pt->fword[1];
	pt->fword[1] = w | FOLIO_LOCKED;
	expect_broken(&g, "locked");
	pt->fword[1] = w;
	assert_int_equal(instance_check(g.u), 0);
	prog_close(&g);
}

/* ---- the staging ring: a folio is reused only after its drop ---- */

/* Every staging folio of c not handed out since the last drop is empty
 * (UFFDIO_MOVE into a page still there fails with EEXIST, which eviction
 * would take for a page moved: the stale page would be stored).
 * @return the folios in use. */
static unsigned staging_ring_check(struct folio_ctx *c, size_t folio)
{
	assert_true(c->staging_used <= c->staging_n);
	for (size_t k = c->staging_used; k < c->staging_n; k++)
		for (size_t off = 0; off < folio; off += PAGE)
			if (sim_os_page(c->staging + k * folio + off) != SIM_ABSENT)
				fail_msg("staging folio %zu of %u is handed out next but page %zu "
					 "is still there",
					 k, c->staging_n, off / PAGE);
	return c->staging_used;
}

/*
 * Many evictions through one context without a drop in between, so the ring
 * wraps again and again, with failures injected in the middle of them (the
 * store full or failing, the codec failing, the kernel refusing a move):
 * each failed eviction must move its pages back from its own staging folio.
 * Every page is written with new contents between evictions, so a page
 * moved back from another staging folio, or a stale one stored from a
 * folio not dropped before its reuse, reads wrong against the shadow.
 */
static void test_staging_ring(void **state)
{
	struct prog g;
	struct rng r;
	unsigned step, wraps = 0, failures = 0, used, prev_used = 0;
	size_t folio = 16384;

	(void)state;
	rng_seed(&r, 57);
	prog_open(&g, (struct uswap_config){ .folio_size = 16384, .limit = 6 * 16384 },
		  48 * 16384);
	g.u->max_pages = g.u->p.limit / PAGE; /* direct reclaim only */
	g.u->high_wm = g.u->low_wm = g.u->max_pages;
	if (g.ctx->staging_n < 4)
		fail_msg("a ring of %u staging folios: this test needs several", g.ctx->staging_n);
	for (step = 0; step < 5000; step++) {
		size_t p = (size_t)rng_below(&r, g.pages);
		unsigned op = (unsigned)rng_below(&r, 100);
		unsigned fired = inj_fired();
		int rc;

		if (op < 12) {
			int errs[] = { -ENOSPC, -ENOMEM, -EIO };

			pthread_mutex_lock(&inj_lock);
			switch (rng_below(&r, 3)) {
			case 0:
				inj.put = (struct countdown){ 1 + (int)rng_below(&r, 3),
							      errs[rng_below(&r, 3)] };
				break;
			case 1:
				inj.compress = (struct countdown){ 1 + (int)rng_below(&r, 3), -ENOMEM };
				break;
			default: {
				struct sim_inject in = { .move_ebusy_in = 1 + (int)rng_below(&r, 20) };

				sim_os_inject(&in);
			}
			}
			pthread_mutex_unlock(&inj_lock);
		} else if (op < 55) {
			prog_write(&g, p, rng_next(&r));
		} else if (op < 80) {
			prog_read(&g, p);
		} else if (op < 95) {
			rc = reclaim_some(g.u, g.ctx, CTR_reclaim_background,
					  1 + rng_next(&r) % RECLAIM_BATCH_MAX);
			assert_true(rc == 0 || rc == -EAGAIN || rc == -ENOSPC);
		} else {
			/* a borrowed context: its ring is dropped when given back */
			size_t n = 1 + (size_t)rng_below(&r, 20 * g.fpages);

			if (p + n > g.pages)
				n = g.pages - p;
			rc = uswap_advise(g.u, g.mem + p * PAGE, n * PAGE, USWAP_ADV_PAGEOUT);
			assert_true(rc == 0 || rc == -ENOSPC || (rc == -ENOMEM && *uswap_last_error()));
		}
		failures += inj_fired() != fired;
		used = staging_ring_check(g.ctx, folio);
		wraps += used < prev_used;
		prev_used = used;
		if (g.u->ctx_free)
			assert_int_equal(staging_ring_check(g.u->ctx_free, folio), 0);
		if (step % 50 == 0)
			prog_check(&g);
	}
	fprintf(stderr, "# %u steps, ring of %u folios dropped %u times; %u injected failures, "
			"%llu moves refused\n",
		step, g.ctx->staging_n, wraps, failures,
		(unsigned long long)stat_of(&g, "reclaim_fail_busy"));
	/* the test proves something only if the ring wrapped under failures */
	assert_true(wraps >= 20);
	assert_true(failures >= 20);
	assert_true(stat_of(&g, "reclaim_fail_busy") >= 10);
	prog_close(&g);
}

/* ---- everything at once, at random, for long sequences ---- */

static void test_random_injections(void **state)
{
	struct prog g;
	struct rng r;
	unsigned step, lost = 0;

	(void)state;
	rng_seed(&r, 31);
	prog_open(&g, (struct uswap_config){ .folio_size = 16384, .limit = 8 * 16384 },
		  64 * 16384);
	g.u->max_pages = g.u->p.limit / PAGE; /* direct reclaim only */
	g.u->high_wm = g.u->low_wm = g.u->max_pages;
	for (step = 0; step < 6000; step++) {
		size_t p = (size_t)rng_below(&r, g.pages);
		unsigned op = (unsigned)rng_below(&r, 100);
		unsigned fired = inj_fired();
		int rc;

		if (op < 10) {
			struct sim_inject in = { 0 };

			switch (rng_below(&r, 6)) {
			case 0: in.eagain_in = 1 + (int)rng_below(&r, 4); break;
			case 1: in.copy_eexist_in = 1 + (int)rng_below(&r, 4); break;
			case 2: in.zero_eexist_in = 1 + (int)rng_below(&r, 4); break;
			case 3: in.move_ebusy_in = 1 + (int)rng_below(&r, 4); break;
			case 4: in.map_enomem_in = 1 + (int)rng_below(&r, 4); break;
			default: in.copy_enomem_in = 1 + (int)rng_below(&r, 4); break;
			}
			sim_os_inject(&in);
		} else if (op < 16) {
			int errs[] = { -ENOSPC, -ENOMEM, -EIO };

			pthread_mutex_lock(&inj_lock);
			if (rng_below(&r, 2))
				inj.put = (struct countdown){ 1 + (int)rng_below(&r, 3),
							      errs[rng_below(&r, 3)] };
			else
				inj.compress = (struct countdown){ 1 + (int)rng_below(&r, 3), -ENOMEM };
			pthread_mutex_unlock(&inj_lock);
		} else if (op < 19) {
			pthread_mutex_lock(&inj_lock);
			inj.get = (struct countdown){ 1 + (int)rng_below(&r, 3), -EIO };
			pthread_mutex_unlock(&inj_lock);
		} else if (op < 20 && lost < 10) {
			/* data lost for good, on the next read: the page read then is
			 * poisoned (any page of the region may be the one) */
			pthread_mutex_lock(&inj_lock);
			inj.get_corrupt = (struct countdown){ 1, -1 };
			pthread_mutex_unlock(&inj_lock);
			memset(g.poisoned, 1, g.pages);
			lost++;
		} else if (op < 50) {
			prog_write(&g, p, rng_next(&r));
		} else if (op < 75) {
			prog_read(&g, p);
		} else if (op < 88) {
			size_t n = 1 + (size_t)rng_below(&r, 3 * g.fpages);

			if (p + n > g.pages)
				n = g.pages - p;
			rc = uswap_advise(g.u, g.mem + p * PAGE, n * PAGE, USWAP_ADV_PAGEOUT);
			assert_true(rc == 0 || rc == -ENOSPC || (rc == -ENOMEM && *uswap_last_error()));
		} else if (op < 93) {
			size_t n = 1 + (size_t)rng_below(&r, 2 * g.fpages);

			if (p + n > g.pages)
				n = g.pages - p;
			rc = uswap_advise(g.u, g.mem + p * PAGE, n * PAGE, USWAP_ADV_WILLNEED);
			assert_true(rc == 0 || rc == -EIO || rc == -EILSEQ || rc == -ENOMEM ||
				    rc == -EAGAIN);
		} else if (op < 96) {
			rc = reclaim_some(g.u, g.ctx, CTR_reclaim_background, 1 + rng_next(&r) % RECLAIM_BATCH_MAX);
			assert_true(rc == 0 || rc == -EAGAIN || rc == -ENOSPC);
		} else {
			size_t n = 1 + (size_t)rng_below(&r, g.fpages);

			if (p + n > g.pages)
				n = g.pages - p;
			prog_drop(&g, p, n);
		}
		if (inj_fired() != fired || op >= 20)
			prog_check(&g);
		/* once the corrupting read happened, only poisoned pages may
		 * show it: the rest are expected right again */
		if (lost && !inj.get_corrupt.in) {
			for (size_t i = 0; i < g.pages; i++)
				g.poisoned[i] = sim_os_page(g.mem + i * PAGE) == SIM_POISONED;
		}
	}
	fprintf(stderr, "# %u steps; poisoned %llu pages for %u losses; failures counted: "
			"store full %llu, nomem %llu, codec %llu, busy %llu, other %llu, read %llu, "
			"corrupt %llu, install %llu; ioctl retries %llu\n",
		step, (unsigned long long)stat_of(&g, "fault_poisoned"), lost,
		(unsigned long long)stat_of(&g, "reclaim_fail_store_full"),
		(unsigned long long)stat_of(&g, "reclaim_fail_nomem"),
		(unsigned long long)stat_of(&g, "reclaim_fail_codec"),
		(unsigned long long)stat_of(&g, "reclaim_fail_busy"),
		(unsigned long long)stat_of(&g, "reclaim_fail_other"),
		(unsigned long long)stat_of(&g, "swapin_fail_read"),
		(unsigned long long)stat_of(&g, "swapin_fail_corrupt"),
		(unsigned long long)stat_of(&g, "swapin_fail_install"),
		(unsigned long long)stat_of(&g, "ioctl_retries"));
	prog_close(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_full),
		cmocka_unit_test(test_store_put_nomem),
		cmocka_unit_test(test_store_put_error),
		cmocka_unit_test(test_codec_fails),
		cmocka_unit_test(test_move_busy),
		cmocka_unit_test(test_store_get_passing_failure),
		cmocka_unit_test(test_store_lost_object),
		cmocka_unit_test(test_corrupt_on_the_way_back),
		cmocka_unit_test(test_truncated_on_the_way_back),
		cmocka_unit_test(test_allocation_failures),
		cmocka_unit_test(test_ioctl_eagain_and_eexist),
		cmocka_unit_test(test_move_back_refused_for_long),
		cmocka_unit_test(test_move_back_waits_for_an_event_only_it_can_read),
		cmocka_unit_test(test_delayed_handler),
		cmocka_unit_test(test_checker_names_each_breakage),
		cmocka_unit_test(test_staging_ring),
		cmocka_unit_test(test_random_injections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

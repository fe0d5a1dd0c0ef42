/* SPDX-License-Identifier: MIT */
/* uswap-test-labels: threads */
/*
 * Slot map tests.  The main test drives the map with long random sequences
 * and compares it after every step with a reference model written here as
 * simply as possible: a count per slot, the run each slot belongs to, and
 * a table of runs.  The model knows nothing of clusters; from the runs
 * alone it decides when an allocation *must* succeed, so -ENOSPC is only
 * accepted where it is honest.
 */
#include "testlib.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/slotmap.h"

#define NORDERS (SLOT_MAX_ORDER + 1)

/* The single-threaded model runs learn nothing from TSan, which makes them
 * ten times slower: run fewer steps there (the threaded tests run in full). */
#if defined(__SANITIZE_THREAD__)
#define MODEL_STEPS_DIV 4
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MODEL_STEPS_DIV 4
#endif
#endif
#ifndef MODEL_STEPS_DIV
#define MODEL_STEPS_DIV 1
#endif

static unsigned steps_scale(void)
{
	const char *env = getenv("USWAP_TEST_STEPS");
	unsigned long v = env ? strtoul(env, NULL, 0) : 0;

	return v ? (unsigned)v : 1;
}

/*
 * Orders weighted toward 0 and 4, as folios of a default setup are: @p0
 * percent order 0, 30 percent order 4, the rest spread over the others.
 * Few order-0 runs leave order 0 no cluster of its own, so it falls back
 * to split runs.
 */
static unsigned pick_order(struct rng *r, unsigned p0)
{
	static const unsigned rest[] = {1, 2, 3, 5, 6, 7, 8, 9};
	uint64_t x = rng_below(r, 100);

	if (x < p0)
		return 0;
	if (x < p0 + 30)
		return 4;
	return rest[rng_below(r, 8)];
}

static store_handle_t handle_of(uint32_t id)
{
	/* not a small integer, so that it cannot pass for a slot by accident */
	return (store_handle_t){((uint64_t)(id + 1) << 20) | 0x5a5};
}

static uint32_t id_of(store_handle_t h)
{
	return (uint32_t)(h.v >> 20) - 1;
}

/* ---- the reference model ---- */

struct mrun {
	uint32_t first;
	unsigned order;
	bool live;
};

struct model {
	uint32_t max;
	uint8_t *count;	   /* per slot */
	uint32_t *run;	   /* per slot: run id + 1, 0 when no live run covers it */
	struct mrun *runs; /* by id; handle_of(id) is the run's handle */
	uint32_t nruns, cap;
	uint32_t *live; /* ids of live runs, any order */
	uint32_t nlive;
	uint64_t fails[NORDERS];
};

static void model_init(struct model *m, uint32_t max)
{
	memset(m, 0, sizeof(*m));
	m->max = max;
	m->count = calloc(max, 1);
	m->run = calloc(max, sizeof(*m->run));
	m->live = calloc(max, sizeof(*m->live));
	assert_non_null(m->count);
	assert_non_null(m->run);
	assert_non_null(m->live);
}

static void model_fini(struct model *m)
{
	free(m->count);
	free(m->run);
	free(m->runs);
	free(m->live);
}

static uint32_t model_new_id(struct model *m)
{
	if (m->nruns == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 1024;
		m->runs = realloc(m->runs, m->cap * sizeof(*m->runs));
		assert_non_null(m->runs);
	}
	return m->nruns++;
}

static void model_add(struct model *m, uint32_t id, uint32_t first, unsigned order)
{
	m->runs[id] = (struct mrun){first, order, true};
	for (uint32_t i = 0; i < 1u << order; i++) {
		assert_int_equal(m->run[first + i], 0);
		m->run[first + i] = id + 1;
		m->count[first + i] = 1;
	}
	m->live[m->nlive++] = id;
}

static void model_remove(struct model *m, uint32_t id)
{
	struct mrun *r = &m->runs[id];

	for (uint32_t i = 0; i < 1u << r->order; i++)
		m->run[r->first + i] = 0;
	r->live = false;
	for (uint32_t i = 0; i < m->nlive; i++) {
		if (m->live[i] == id) {
			m->live[i] = m->live[--m->nlive];
			return;
		}
	}
	fail_msg("run %u not in the live list", id);
}

static bool model_run_unused(const struct model *m, uint32_t id)
{
	const struct mrun *r = &m->runs[id];

	for (uint32_t i = 0; i < 1u << r->order; i++)
		if (m->count[r->first + i])
			return false;
	return true;
}

/*
 * Whether an allocation of @order must succeed, judged from runs alone:
 * - a 512-slot window with no live run is a free or not yet grown cluster;
 * - any slot outside live runs can serve order 0 (the fallback);
 * - a window whose live runs include one of order k > 0 and are otherwise
 *   of order k or 0 is a cluster of order k; an aligned block of 2^k slots
 *   outside live runs there is a free run of it.
 */
static bool model_must_fit(const struct model *m, unsigned order)
{
	uint32_t n = 1u << order;

	for (uint32_t base = 0; base < m->max; base += SLOT_CLUSTER) {
		bool any = false, has_k = false, only_0k = true, any_free = false;

		for (uint32_t s = base; s < base + SLOT_CLUSTER; s++) {
			if (!m->run[s]) {
				any_free = true;
				continue;
			}
			unsigned o = m->runs[m->run[s] - 1].order;

			any = true;
			has_k |= order > 0 && o == order;
			only_0k &= o == 0 || o == order;
		}
		if (!any || (order == 0 && any_free))
			return true;
		if (!has_k || !only_0k)
			continue;
		for (uint32_t b = base; b < base + SLOT_CLUSTER; b += n) {
			uint32_t i = 0;

			while (i < n && !m->run[b + i])
				i++;
			if (i == n)
				return true;
		}
	}
	return false;
}

/* The whole map against the model: every slot, every run, the stats. */
static void model_compare(struct slotmap *sm, const struct model *m)
{
	struct slotmap_stats st;
	uint64_t used = 0;

	assert_int_equal(slotmap_check(sm), 0);
	for (uint32_t s = 0; s < m->max; s++) {
		unsigned cnt = slot_count(sm, (slot_t){s});
		store_handle_t h;
		slot_t first;
		unsigned order;
		int ret = slot_run(sm, (slot_t){s}, &h, &first, &order);

		if (cnt != m->count[s])
			fail_msg("slot %u: count %u, model %u", s, cnt, m->count[s]);
		if (!cnt) {
			assert_int_equal(ret, -EINVAL);
			continue;
		}
		used++;
		const struct mrun *r = &m->runs[m->run[s] - 1];

		assert_int_equal(ret, 0);
		if (id_of(h) != m->run[s] - 1 || first.v != r->first || order != r->order)
			fail_msg(
			    "slot %u: run h %u first %u order %u, model h %u first %u order %u", s,
			    id_of(h), first.v, order, m->run[s] - 1, r->first, r->order);
	}
	slotmap_stats(sm, &st);
	assert_int_equal(st.slots_used, used);
	assert_int_equal(st.runs, m->nlive);
	for (unsigned k = 0; k < NORDERS; k++)
		assert_int_equal(st.alloc_fail[k], m->fails[k]);
	assert_int_equal(st.alloc_nomem, 0);
}

/* ---- operations on map and model together ---- */

/* @return whether it succeeded */
static bool op_alloc(struct slotmap *sm, struct model *m, unsigned order)
{
	uint32_t id = model_new_id(m);
	uint32_t n = 1u << order;
	bool must = model_must_fit(m, order);
	slot_t first;
	int ret = slot_alloc(sm, order, handle_of(id), &first);

	if (ret == -ENOSPC) {
		if (must)
			fail_msg("order %u: -ENOSPC where the model has room", order);
		m->fails[order]++;
		m->runs[id].live = false;
		return false;
	}
	assert_int_equal(ret, 0);
	/* natural alignment, inside the space, over slots the model has free */
	if (first.v % n || first.v + n > m->max)
		fail_msg("order %u run at %u: misaligned or beyond %u", order, first.v, m->max);
	model_add(m, id, first.v, order);
	return true;
}

/* Drop one reference of slot s, which the model says is referenced. */
static void op_put_slot(struct slotmap *sm, struct model *m, uint32_t s)
{
	uint32_t id = m->run[s] - 1;
	store_handle_t freed = {0};
	int ret;

	assert_true(m->run[s] && m->count[s]);
	ret = slot_put(sm, (slot_t){s}, &freed);
	m->count[s]--;
	if (!model_run_unused(m, id)) {
		if (ret != 0)
			fail_msg("slot %u: put freed run %u, other slots still referenced", s, id);
		return;
	}
	/* the last reference of the run: its handle, exactly once (a second
	 * return would find the run dead in the model) */
	assert_int_equal(ret, 1);
	assert_true(m->runs[id_of(freed)].live);
	assert_int_equal(id_of(freed), id);
	model_remove(m, id);
}

static uint32_t model_pick_run(struct model *m, struct rng *r)
{
	return m->live[rng_below(r, m->nlive)];
}

/* A referenced slot of run id, starting the search at a random one. */
static bool model_pick_slot(struct model *m, struct rng *r, uint32_t id, uint32_t *s)
{
	const struct mrun *run = &m->runs[id];
	uint32_t n = 1u << run->order, off = (uint32_t)rng_below(r, n);

	for (uint32_t i = 0; i < n; i++) {
		uint32_t t = run->first + (off + i) % n;

		if (m->count[t]) {
			*s = t;
			return true;
		}
	}
	return false;
}

static void op_get_slot(struct slotmap *sm, struct model *m, uint32_t s)
{
	int ret = slot_get(sm, (slot_t){s});

	if (m->count[s] == 0)
		assert_int_equal(ret, -EINVAL);
	else if (m->count[s] == SLOT_COUNT_MAX)
		assert_int_equal(ret, -EOVERFLOW);
	else {
		assert_int_equal(ret, 0);
		m->count[s]++;
	}
}

/* Put every reference of slots [from, to) of run id (a swap-in or unmap of
 * that part of the folio). */
static void op_put_range(struct slotmap *sm, struct model *m, uint32_t id, uint32_t from,
			 uint32_t to)
{
	uint32_t first = m->runs[id].first;

	for (uint32_t i = from; i < to && m->runs[id].live; i++)
		while (m->runs[id].live && m->count[first + i])
			op_put_slot(sm, m, first + i);
}

static void random_step(struct slotmap *sm, struct model *m, struct rng *r, unsigned p0)
{
	uint64_t x = rng_below(r, 100);
	uint32_t id, s, n;

	if (x < 40 || m->nlive == 0) {
		unsigned order = pick_order(r, p0);

		/* as a swap-out does when no large run is left, mostly */
		if (!op_alloc(sm, m, order) && order && x % 4)
			op_alloc(sm, m, 0);
		return;
	}
	id = model_pick_run(m, r);
	n = 1u << m->runs[id].order;
	if (x < 55) { /* one reference goes */
		if (model_pick_slot(m, r, id, &s))
			op_put_slot(sm, m, s);
	} else if (x < 67) { /* the whole folio is swapped in or unmapped */
		op_put_range(sm, m, id, 0, n);
	} else if (x < 75) { /* part of it is unmapped */
		uint32_t a = (uint32_t)rng_below(r, n), b = (uint32_t)rng_below(r, n + 1);

		op_put_range(sm, m, id, a < b ? a : b, a < b ? b : a);
	} else if (x < 88) { /* one entry shared, maybe of an unmapped slot */
		op_get_slot(sm, m, m->runs[id].first + (uint32_t)rng_below(r, n));
	} else if (x < 95) { /* fork: every entry of the folio shared */
		for (uint32_t i = 0; i < n; i++)
			if (m->count[m->runs[id].first + i])
				op_get_slot(sm, m, m->runs[id].first + i);
	} else if (x < 98) { /* a slot with no run */
		s = (uint32_t)rng_below(r, m->max);
		if (!m->run[s])
			assert_int_equal(slot_get(sm, (slot_t){s}), -EINVAL);
	} else if (model_pick_slot(m, r, id, &s)) { /* many forks of one page */
		while (m->count[s] < SLOT_COUNT_MAX)
			op_get_slot(sm, m, s);
		op_get_slot(sm, m, s);
	}
}

static void run_random(uint32_t max, unsigned p0, unsigned steps, uint64_t seed)
{
	struct slotmap *sm;
	struct model m;
	struct rng r;
	struct slotmap_stats st;

	rng_seed(&r, seed);
	steps /= MODEL_STEPS_DIV;
	model_init(&m, max);
	assert_int_equal(slotmap_create(max, &sm), 0);
	for (unsigned i = 0; i < steps; i++) {
		random_step(sm, &m, &r, p0);
		model_compare(sm, &m);
	}
	/* everything back, and the map must be empty */
	while (m.nlive)
		op_put_range(sm, &m, m.live[0], 0, 1u << m.runs[m.live[0]].order);
	model_compare(sm, &m);
	slotmap_stats(sm, &st);
	assert_int_equal(st.slots_used, 0);
	assert_int_equal(st.runs, 0);
	assert_int_equal(st.clusters, 0);
	fprintf(stderr,
		"# %u slots, %u%% order 0, %u steps: %u runs, %llu order-0 fallbacks, fails", max,
		p0, steps, m.nruns, (unsigned long long)st.frag_allocs);
	for (unsigned k = 0; k < NORDERS; k++)
		fprintf(stderr, " %llu", (unsigned long long)st.alloc_fail[k]);
	fputc('\n', stderr);
	slotmap_destroy(sm);
	model_fini(&m);
}

static void test_random_small(void **state)
{
	(void)state;
	run_random(8 * SLOT_CLUSTER, 35, 12000 * steps_scale(), 0x5107aa01);
}

static void test_random_large(void **state)
{
	(void)state;
	run_random(32 * SLOT_CLUSTER, 35, 3000 * steps_scale(), 0x5107aa02);
}

/* Order 0 rare, so that it mostly lives in split runs of other orders. */
static void test_random_fallback(void **state)
{
	(void)state;
	run_random(4 * SLOT_CLUSTER, 3, 12000 * steps_scale(), 0x5107aa03);
}

/* ---- directed tests ---- */

static void test_invalid(void **state)
{
	struct slotmap *sm;
	store_handle_t h = {7};
	slot_t s;
	unsigned order;

	(void)state;
	assert_int_equal(slotmap_create(1000, &sm), -EINVAL);
	assert_int_equal(slotmap_create(SLOT_CLUSTER, &sm), 0);
	assert_int_equal(slot_alloc(sm, SLOT_MAX_ORDER + 1, h, &s), -EINVAL);
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){0}, &s), -EINVAL);
	/* beyond the grown space, and free inside it */
	assert_int_equal(slot_count(sm, (slot_t){5}), 0);
	assert_int_equal(slot_get(sm, (slot_t){5}), -EINVAL);
	assert_int_equal(slot_get(sm, (slot_t){UINT32_MAX}), -EINVAL);
	assert_int_equal(slot_run(sm, (slot_t){5}, &h, &s, &order), -EINVAL);
	assert_int_equal(slot_alloc(sm, 1, h, &s), 0);
	assert_int_equal(slot_get(sm, (slot_t){s.v + 2}), -EINVAL);
	assert_int_equal(slot_run(sm, (slot_t){s.v + 2}, &h, &s, &order), -EINVAL);
	assert_int_equal(slotmap_check(sm), 0);
	slotmap_destroy(sm);
}

static void test_handle_once(void **state)
{
	struct slotmap *sm;
	store_handle_t h = {0x1234}, freed;
	slot_t first;

	(void)state;
	assert_int_equal(slotmap_create(0, &sm), 0);
	assert_int_equal(slot_alloc(sm, 4, h, &first), 0);
	assert_int_equal(first.v % 16, 0);
	/* fork: every page entry shared */
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(slot_get(sm, (slot_t){first.v + i}), 0);
	/* the child unmaps half of the folio, the parent swaps all of it in */
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(slot_put(sm, (slot_t){first.v + i}, &freed), 0);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(slot_put(sm, (slot_t){first.v + i}, &freed), 0);
	assert_int_equal(slotmap_check(sm), 0);
	/* the run stays while the child's other half is referenced */
	for (unsigned i = 8; i < 15; i++)
		assert_int_equal(slot_put(sm, (slot_t){first.v + i}, &freed), 0);
	assert_int_equal(slot_count(sm, first), 0);
	assert_int_equal(slot_count(sm, (slot_t){first.v + 15}), 1);
	freed.v = 0;
	assert_int_equal(slot_put(sm, (slot_t){first.v + 15}, &freed), 1);
	assert_int_equal(freed.v, h.v);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(slot_count(sm, (slot_t){first.v + i}), 0);
	assert_int_equal(slot_get(sm, first), -EINVAL);
	assert_int_equal(slotmap_check(sm), 0);
	slotmap_destroy(sm);
}

static void test_count_overflow(void **state)
{
	struct slotmap *sm;
	store_handle_t freed;
	slot_t s;

	(void)state;
	assert_int_equal(slotmap_create(SLOT_CLUSTER, &sm), 0);
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){9}, &s), 0);
	for (unsigned i = 1; i < SLOT_COUNT_MAX; i++)
		assert_int_equal(slot_get(sm, s), 0);
	assert_int_equal(slot_count(sm, s), SLOT_COUNT_MAX);
	assert_int_equal(slot_get(sm, s), -EOVERFLOW);
	for (unsigned i = 1; i < SLOT_COUNT_MAX; i++)
		assert_int_equal(slot_put(sm, s, &freed), 0);
	assert_int_equal(slot_put(sm, s, &freed), 1);
	assert_int_equal(freed.v, 9);
	slotmap_destroy(sm);
}

static void put_run(struct slotmap *sm, slot_t first, unsigned order, uint64_t h)
{
	store_handle_t freed = {0};

	for (unsigned i = 0; i + 1 < 1u << order; i++)
		assert_int_equal(slot_put(sm, (slot_t){first.v + i}, &freed), 0);
	assert_int_equal(slot_put(sm, (slot_t){first.v + (1u << order) - 1}, &freed), 1);
	assert_int_equal(freed.v, h);
}

/* Full of order-4 runs: large orders fail, order 0 only where a slot is
 * free, and a split run merges back into an order-4 run. */
static void test_exhaustion(void **state)
{
	const uint32_t max = 8 * SLOT_CLUSTER, nruns = max / 16;
	struct slotmap *sm;
	struct slotmap_stats st;
	store_handle_t freed, h;
	slot_t runs[8 * SLOT_CLUSTER / 16], s, first;
	unsigned order;

	(void)state;
	assert_int_equal(slotmap_create(max, &sm), 0);
	for (uint32_t i = 0; i < nruns; i++) {
		assert_int_equal(slot_alloc(sm, 4, (store_handle_t){100 + i}, &runs[i]), 0);
		assert_int_equal(runs[i].v % 16, 0);
	}
	assert_int_equal(slot_alloc(sm, 4, (store_handle_t){1}, &s), -ENOSPC);
	assert_int_equal(slot_alloc(sm, 9, (store_handle_t){1}, &s), -ENOSPC);
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){1}, &s), -ENOSPC);
	/* a partial unmap leaves a count-0 slot whose run is alive: not free */
	assert_int_equal(slot_put(sm, (slot_t){runs[3].v + 5}, &freed), 0);
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){1}, &s), -ENOSPC);
	slotmap_stats(sm, &st);
	assert_int_equal(st.alloc_fail[4], 1);
	assert_int_equal(st.alloc_fail[9], 1);
	assert_int_equal(st.alloc_fail[0], 2);
	assert_int_equal(st.clusters, 8);

	/* one run freed: order 0 gets its 16 slots, one by one, in place */
	put_run(sm, runs[7], 4, 107);
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(slot_alloc(sm, 0, (store_handle_t){1000 + i}, &s), 0);
		assert_true(s.v >= runs[7].v && s.v < runs[7].v + 16);
		assert_int_equal(slot_run(sm, s, &h, &first, &order), 0);
		assert_int_equal(h.v, 1000 + i);
		assert_int_equal(first.v, s.v);
		assert_int_equal(order, 0);
		if (i == 0)
			/* split: no longer an order-4 run */
			assert_int_equal(slot_alloc(sm, 4, (store_handle_t){1}, &s), -ENOSPC);
		assert_int_equal(slotmap_check(sm), 0);
	}
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){1}, &s), -ENOSPC);
	/* the other runs of that cluster kept their order and alignment */
	assert_int_equal(slot_run(sm, runs[6], &h, &first, &order), 0);
	assert_int_equal(order, 4);
	assert_int_equal(first.v, runs[6].v);
	slotmap_stats(sm, &st);
	assert_int_equal(st.frag_allocs, 16);
	assert_int_equal(st.slots_used, max - 1);
	assert_int_equal(st.runs, nruns - 1 + 16);

	/* free one order-0 slot: order 0 fits again, order 4 does not */
	assert_int_equal(slot_put(sm, (slot_t){runs[7].v + 3}, &freed), 1);
	assert_int_equal(freed.v, 1003);
	assert_int_equal(slot_alloc(sm, 4, (store_handle_t){1}, &s), -ENOSPC);
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){2003}, &s), 0);
	assert_int_equal(s.v, runs[7].v + 3);
	/* all 16 go: the window is an order-4 run again */
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(slot_put(sm, (slot_t){runs[7].v + i}, &freed), 1);
		assert_int_equal(freed.v, i == 3 ? 2003 : 1000 + i);
	}
	assert_int_equal(slotmap_check(sm), 0);
	assert_int_equal(slot_alloc(sm, 4, (store_handle_t){5}, &s), 0);
	assert_int_equal(s.v, runs[7].v);
	assert_int_equal(slotmap_check(sm), 0);
	slotmap_destroy(sm);
}

/* Two clusters passed between orders as they empty and fill. */
static void test_cluster_reuse(void **state)
{
	struct slotmap *sm;
	struct slotmap_stats st;
	slot_t a, b, s, t;
	store_handle_t freed;

	(void)state;
	assert_int_equal(slotmap_create(2 * SLOT_CLUSTER, &sm), 0);
	assert_int_equal(slot_alloc(sm, 9, (store_handle_t){1}, &a), 0);
	assert_int_equal(slot_alloc(sm, 9, (store_handle_t){2}, &b), 0);
	assert_int_not_equal(a.v, b.v);
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){3}, &s), -ENOSPC);
	put_run(sm, a, 9, 1);
	slotmap_stats(sm, &st);
	assert_int_equal(st.clusters, 1);
	assert_int_equal(st.clusters_grown, 2);

	/* the freed cluster serves order 3 now, and order 0 splits one of its
	 * order-3 runs rather than fail */
	assert_int_equal(slot_alloc(sm, 3, (store_handle_t){4}, &s), 0);
	assert_int_equal(s.v, a.v);
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){5}, &t), 0);
	assert_int_equal(t.v, a.v + 8);
	assert_int_equal(slot_alloc(sm, 3, (store_handle_t){6}, &t), 0);
	assert_int_equal(t.v, a.v + 16);
	assert_int_equal(slotmap_check(sm), 0);
	assert_int_equal(slot_put(sm, (slot_t){a.v + 8}, &freed), 1);
	assert_int_equal(freed.v, 5);
	put_run(sm, s, 3, 4);
	put_run(sm, t, 3, 6);
	assert_int_equal(slotmap_check(sm), 0);
	slotmap_stats(sm, &st);
	assert_int_equal(st.clusters, 1);

	/* and then order 0, while order 9 still has no second cluster */
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){7}, &s), 0);
	assert_int_equal(s.v, a.v);
	assert_int_equal(slot_alloc(sm, 9, (store_handle_t){8}, &t), -ENOSPC);
	put_run(sm, b, 9, 2);
	assert_int_equal(slot_alloc(sm, 9, (store_handle_t){8}, &t), 0);
	assert_int_equal(t.v, b.v);
	assert_int_equal(slotmap_check(sm), 0);
	slotmap_destroy(sm);
}

/* Memory comes per cluster; report bytes per slot at orders 0 and 4. */
static void test_metadata(void **state)
{
	struct slotmap *sm;
	struct slotmap_stats st0, st1, st2, st3;
	slot_t s;
	double o0, o4;

	(void)state;
	assert_int_equal(slotmap_create(0, &sm), 0); /* 1 TiB of pages */
	slotmap_stats(sm, &st0);
	assert_true(st0.meta_bytes < 16384);
	assert_int_equal(slot_alloc(sm, 0, (store_handle_t){1}, &s), 0);
	slotmap_stats(sm, &st1);
	for (unsigned i = 1; i < SLOT_CLUSTER; i++)
		assert_int_equal(slot_alloc(sm, 0, (store_handle_t){1 + i}, &s), 0);
	slotmap_stats(sm, &st2);
	assert_int_equal(st2.meta_bytes, st1.meta_bytes); /* no more memory within a cluster */
	for (unsigned i = 0; i < SLOT_CLUSTER / 16; i++)
		assert_int_equal(slot_alloc(sm, 4, (store_handle_t){1000 + i}, &s), 0);
	slotmap_stats(sm, &st3);
	assert_int_equal(st3.clusters, 2);
	/* the first cluster also brought the first directory leaf (4 KiB) */
	o0 = (double)(st1.meta_bytes - st0.meta_bytes - 4096) / SLOT_CLUSTER;
	o4 = (double)(st3.meta_bytes - st2.meta_bytes) / SLOT_CLUSTER;
	fprintf(stderr,
		"# metadata: empty 1 TiB map %llu bytes; per slot: order 0 %.2f, order 4 %.2f\n",
		(unsigned long long)st0.meta_bytes, o0, o4);
	assert_true(o0 < 9.0);
	assert_true(o4 < 1.2);
	assert_int_equal(st1.meta_bytes - st0.meta_bytes - 4096, slotmap_cluster_bytes(0));
	assert_int_equal(st3.meta_bytes - st2.meta_bytes, slotmap_cluster_bytes(4));
	/* a count above 1 gives its cluster (only) a byte per slot; its
	 * neighbours keep their counts */
	assert_int_equal(slot_get(sm, s), 0);
	assert_int_equal(slot_get(sm, s), 0);
	slotmap_stats(sm, &st2);
	assert_int_equal(st2.meta_bytes, st3.meta_bytes + SLOT_CLUSTER);
	assert_int_equal(slot_count(sm, s), 3);
	assert_int_equal(slot_count(sm, (slot_t){ s.v - 1 }), 1);
	assert_int_equal(slot_count(sm, (slot_t){ s.v + 1 }), 1);
	assert_int_equal(slot_count(sm, (slot_t){ s.v + 16 }), 0); /* past the last cluster */
	assert_int_equal(slotmap_check(sm), 0);
	slotmap_destroy(sm);
}

/* The fork hooks leave a usable map on both sides. */
static void test_fork_hooks(void **state)
{
	struct slotmap *sm;
	slot_t s;
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(slotmap_create(4 * SLOT_CLUSTER, &sm), 0);
	assert_int_equal(slot_alloc(sm, 4, (store_handle_t){1}, &s), 0);
	slotmap_prefork(sm);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		slot_t t;
		store_handle_t freed;

		slotmap_postfork_child(sm);
		_exit(slot_alloc(sm, 4, (store_handle_t){2}, &t) || t.v == s.v ||
		      slot_put(sm, s, &freed) || slotmap_check(sm));
	}
	slotmap_postfork_parent(sm);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the child's changes were its own */
	assert_int_equal(slot_count(sm, s), 1);
	assert_int_equal(slotmap_check(sm), 0);
	slotmap_destroy(sm);
}

/* ---- concurrency ---- */

#define OWNERS 4
#define SHARERS 3
#define OWNER_RUNS 24
#define SHARED_MAX 128

struct conc {
	struct slotmap *sm;
	unsigned iters;
	uint64_t seed;
	struct {
		slot_t first;
		unsigned order;
		store_handle_t h;
	} shared[SHARED_MAX];
	unsigned nshared;
	unsigned p0; /* owners' percentage of order 0 */
	_Atomic uint32_t next_id;
	_Atomic uint8_t *returned; /* per handle id: times slot_put handed it back */
	uint32_t max_ids;
	_Atomic unsigned failures;
	_Atomic bool stop;
};

struct worker {
	struct conc *c;
	unsigned n;
};

/* cmocka's asserts long-jump to the test's own thread: count instead */
#define TCHECK(c, cond)                                                                            \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
			atomic_fetch_add(&(c)->failures, 1);                                       \
		}                                                                                  \
	} while (0)

struct own_run {
	slot_t first;
	unsigned order;
	store_handle_t h;
};

static void owner_free(struct conc *c, struct own_run *r)
{
	store_handle_t freed = {0};
	uint32_t n = 1u << r->order;

	for (uint32_t i = 0; i < n; i++) {
		int ret = slot_put(c->sm, (slot_t){r->first.v + i}, &freed);

		TCHECK(c, ret == (i + 1 == n));
	}
	TCHECK(c, freed.v == r->h.v);
	TCHECK(c, freed.v < c->max_ids && atomic_fetch_add(&c->returned[freed.v], 1) == 0);
}

static void *owner_main(void *arg)
{
	struct worker *w = arg;
	struct conc *c = w->c;
	struct own_run runs[OWNER_RUNS];
	unsigned nlive = 0;
	struct rng r = {c->seed * 31 + w->n + 1};

	for (unsigned it = 0; it < c->iters; it++) {
		uint64_t x = rng_below(&r, 100);

		if (nlive < OWNER_RUNS && (x < 45 || nlive == 0)) {
			struct own_run *o = &runs[nlive];
			int ret;

			o->order = pick_order(&r, c->p0);
			o->h.v = atomic_fetch_add(&c->next_id, 1);
			ret = slot_alloc(c->sm, o->order, o->h, &o->first);
			if (ret == -ENOSPC && o->order) { /* what the swap-out does */
				o->order = 0;
				ret = slot_alloc(c->sm, 0, o->h, &o->first);
			}
			if (ret == -ENOSPC)
				continue;
			TCHECK(c, ret == 0);
			TCHECK(c, o->first.v % (1u << o->order) == 0);
			for (uint32_t i = 0; i < 1u << o->order; i++) {
				store_handle_t h;
				slot_t f;
				unsigned order;

				TCHECK(c, slot_count(c->sm, (slot_t){o->first.v + i}) == 1);
				TCHECK(c, slot_run(c->sm, (slot_t){o->first.v + i}, &h, &f,
						   &order) == 0);
				TCHECK(c, h.v == o->h.v && f.v == o->first.v && order == o->order);
			}
			nlive++;
		} else if (x < 70) {
			struct own_run *o = &runs[rng_below(&r, nlive)];
			slot_t s = {o->first.v + (uint32_t)rng_below(&r, 1u << o->order)};
			store_handle_t freed;

			TCHECK(c, slot_get(c->sm, s) == 0);
			TCHECK(c, slot_count(c->sm, s) == 2);
			TCHECK(c, slot_put(c->sm, s, &freed) == 0);
		} else {
			unsigned k = (unsigned)rng_below(&r, nlive);

			owner_free(c, &runs[k]);
			runs[k] = runs[--nlive];
		}
	}
	while (nlive)
		owner_free(c, &runs[--nlive]);
	return NULL;
}

static void *sharer_main(void *arg)
{
	struct worker *w = arg;
	struct conc *c = w->c;
	struct rng r = {c->seed * 37 + w->n + 1};

	for (unsigned it = 0; it < 2 * c->iters; it++) {
		unsigned k = (unsigned)rng_below(&r, c->nshared);
		slot_t s = {c->shared[k].first.v +
			    (uint32_t)rng_below(&r, 1u << c->shared[k].order)};
		store_handle_t h, freed;
		slot_t f;
		unsigned order;

		TCHECK(c, slot_get(c->sm, s) == 0);
		TCHECK(c, slot_count(c->sm, s) >= 2);
		TCHECK(c, slot_run(c->sm, s, &h, &f, &order) == 0);
		TCHECK(c, h.v == c->shared[k].h.v && f.v == c->shared[k].first.v &&
			      order == c->shared[k].order);
		TCHECK(c, slot_put(c->sm, s, &freed) == 0);
	}
	return NULL;
}

static void *checker_main(void *arg)
{
	struct conc *c = arg;
	struct slotmap_stats st;

	while (!atomic_load(&c->stop)) {
		TCHECK(c, slotmap_check(c->sm) == 0);
		slotmap_stats(c->sm, &st);
		TCHECK(c, st.slots_used <= 16 * SLOT_CLUSTER);
	}
	return NULL;
}

/*
 * Owners allocate, share and free their own runs while sharers take and
 * drop extra references to shared runs (never the last one) and a checker
 * runs slotmap_check; handles must come back exactly once.
 * @fallback  fill the space with order-4 runs and free a quarter of them,
 *            so that owners' order-0 runs live in split runs next to the
 *            shared ones; else shared runs of orders 1..5 in a space small
 *            enough that owners run out.
 */
static void run_concurrent(bool fallback, uint64_t seed)
{
	const uint32_t max = (fallback ? 4 : 16) * SLOT_CLUSTER;
	struct conc c = {0};
	struct worker w[OWNERS + SHARERS];
	pthread_t th[OWNERS + SHARERS], checker;
	struct slotmap_stats st;
	struct rng r;
	slot_t s9;

	rng_seed(&r, seed);
	c.seed = rng_next(&r);
	c.iters = 20000 * steps_scale();
	c.max_ids = OWNERS * c.iters + SHARED_MAX + 1;
	c.returned = calloc(c.max_ids, 1);
	assert_non_null(c.returned);
	atomic_init(&c.next_id, SHARED_MAX + 1);
	assert_int_equal(slotmap_create(max, &c.sm), 0);
	if (fallback) {
		slot_t all[SHARED_MAX];

		c.p0 = 90;
		/* all first: a run freed at once would be taken again */
		for (unsigned k = 0; k < max / 16; k++)
			assert_int_equal(slot_alloc(c.sm, 4, (store_handle_t){k + 1}, &all[k]), 0);
		for (unsigned k = 0; k < max / 16; k++) {
			if (k % 8 == 0) {
				put_run(c.sm, all[k], 4, k + 1);
				continue;
			}
			c.shared[c.nshared].order = 4;
			c.shared[c.nshared].h.v = k + 1;
			c.shared[c.nshared++].first = all[k];
		}
	} else {
		c.p0 = 10;
		for (unsigned k = 0; k < 16; k++) {
			/* no order 0: order 0 should have to fall back at times */
			c.shared[k].order = 1 + k % 5;
			c.shared[k].h.v = k + 1;
			assert_int_equal(
			    slot_alloc(c.sm, c.shared[k].order, c.shared[k].h, &c.shared[k].first),
			    0);
		}
		c.nshared = 16;
	}
	assert_int_equal(pthread_create(&checker, NULL, checker_main, &c), 0);
	for (unsigned i = 0; i < OWNERS + SHARERS; i++) {
		w[i] = (struct worker){&c, i};
		assert_int_equal(
		    pthread_create(&th[i], NULL, i < OWNERS ? owner_main : sharer_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < OWNERS + SHARERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	atomic_store(&c.stop, true);
	assert_int_equal(pthread_join(checker, NULL), 0);
	assert_int_equal(atomic_load(&c.failures), 0);

	assert_int_equal(slotmap_check(c.sm), 0);
	slotmap_stats(c.sm, &st);
	fprintf(stderr,
		"# concurrent%s: %u handles, %llu order-0 fallbacks, fails at order 0/4/9: "
		"%llu/%llu/%llu\n",
		fallback ? " (split runs)" : "", atomic_load(&c.next_id) - 1,
		(unsigned long long)st.frag_allocs, (unsigned long long)st.alloc_fail[0],
		(unsigned long long)st.alloc_fail[4], (unsigned long long)st.alloc_fail[9]);
	if (fallback)
		assert_true(st.frag_allocs > 0);
	for (unsigned k = 0; k < c.nshared; k++) {
		struct own_run o = {c.shared[k].first, c.shared[k].order, c.shared[k].h};

		for (uint32_t i = 0; i < 1u << o.order; i++)
			assert_int_equal(slot_count(c.sm, (slot_t){o.first.v + i}), 1);
		owner_free(&c, &o);
	}
	assert_int_equal(atomic_load(&c.failures), 0);
	/* every handle handed out came back exactly once (owner_free checked
	 * "at most once"; all runs were freed, so at least once too) */
	slotmap_stats(c.sm, &st);
	assert_int_equal(st.slots_used, 0);
	assert_int_equal(st.runs, 0);
	assert_int_equal(st.clusters, 0);
	assert_int_equal(slotmap_check(c.sm), 0);
	/* and the empty map still serves every order */
	assert_int_equal(slot_alloc(c.sm, 9, (store_handle_t){1}, &s9), 0);
	assert_int_equal(slotmap_check(c.sm), 0);
	slotmap_destroy(c.sm);
	free(c.returned);
}

static void test_concurrent(void **state)
{
	(void)state;
	run_concurrent(false, 0x5107cc01);
}

static void test_concurrent_fallback(void **state)
{
	(void)state;
	run_concurrent(true, 0x5107cc02);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_invalid),	   cmocka_unit_test(test_handle_once),
	    cmocka_unit_test(test_count_overflow), cmocka_unit_test(test_exhaustion),
	    cmocka_unit_test(test_cluster_reuse),  cmocka_unit_test(test_metadata),
	    cmocka_unit_test(test_fork_hooks),	   cmocka_unit_test(test_random_small),
	    cmocka_unit_test(test_random_large),   cmocka_unit_test(test_random_fallback),
	    cmocka_unit_test(test_concurrent),	   cmocka_unit_test(test_concurrent_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The page table's state machine, folio locks, zero map and invariant
 * checker, and the reclaim clock, each driven by random event sequences
 * against a reference model written independently here.
 *
 * uswap-test-labels: threads
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "core/clock.h"
#include "core/pagetable.h"
#include "core/slotmap.h"

/* ---- the state machine ---- */

static void test_transitions(void **state)
{
	/* the diagram in pagetable.h, as a plain list of allowed edges */
	static const int allowed[][2] = {
		{ FOLIO_EMPTY, FOLIO_EMPTY },	    { FOLIO_EMPTY, FOLIO_RESIDENT },
		{ FOLIO_RESIDENT, FOLIO_RESIDENT }, { FOLIO_RESIDENT, FOLIO_OUT },
		{ FOLIO_OUT, FOLIO_OUT },	    { FOLIO_OUT, FOLIO_RESIDENT },
		/* dropped by the program (remove and unmap events) */
		{ FOLIO_RESIDENT, FOLIO_EMPTY },    { FOLIO_OUT, FOLIO_EMPTY },
	};
	int from, to;
	size_t i;

	(void)state;
	for (from = 0; from <= FOLIO_OUT; from++) {
		for (to = 0; to <= FOLIO_OUT; to++) {
			bool want = false;

			for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
				if (allowed[i][0] == from && allowed[i][1] == to)
					want = true;
			assert_int_equal(folio_transition_ok(from, to), want);
		}
	}
}

/* Random lock / transition / flag sequences against a model of each word. */
static void test_random_sequences(void **state)
{
	enum { NF = 64, ORDER = 4, STEPS = 200000 };
	struct model {
		int st;
		bool locked, pinned, referenced;
	} m[NF];
	bool zero_model[NF << ORDER];
	struct slotmap *sm;
	struct pagetable pt;
	struct rng r;
	unsigned step;

	(void)state;
	rng_seed(&r, 42);
	assert_int_equal(pagetable_init(&pt, NF << ORDER, ORDER), 0);
	assert_int_equal(slotmap_create(0, &sm), 0);
	memset(m, 0, sizeof(m));
	memset(zero_model, 0, sizeof(zero_model));
	for (step = 0; step < STEPS; step++) {
		uint32_t f = (uint32_t)rng_below(&r, NF), w;
		struct model *x = &m[f];

		switch (rng_below(&r, 5)) {
		case 0: /* lock */
			assert_int_equal(folio_trylock(&pt, f, &w), !x->locked);
			if (!x->locked) {
				assert_int_equal(folio_state_of(w), x->st);
				x->locked = true;
			}
			break;
		case 1: { /* unlock into an allowed state */
			int to = (int)rng_below(&r, 3);

			if (!x->locked || !folio_transition_ok(x->st, to))
				break;
			/* an OUT folio in the model records its zero pages */
			if (to != FOLIO_OUT) {
				uint32_t p;

				for (p = f << ORDER; p < (f + 1) << ORDER; p++) {
					zeromap_clear(&pt, p);
					zero_model[p] = false;
				}
			}
			assert_false(folio_unlock(&pt, f, to, 0, 0));
			x->st = to;
			x->locked = false;
			break;
		}
		case 2: /* set a zero bit of a locked OUT folio */
			if (x->locked && x->st == FOLIO_OUT) {
				uint32_t p = (f << ORDER) + (uint32_t)rng_below(&r, 1u << ORDER);

				zeromap_set(&pt, p);
				zero_model[p] = true;
			}
			break;
		case 3:
			if (rng_below(&r, 2)) {
				folio_flags_set(&pt, f, FOLIO_PINNED);
				x->pinned = true;
			} else {
				folio_flags_clear(&pt, f, FOLIO_PINNED);
				x->pinned = false;
			}
			break;
		case 4:
			folio_flags_set(&pt, f, FOLIO_REFERENCED);
			x->referenced = true;
			break;
		}
		/* the whole table agrees with the model after every step */
		if (step % 64 == 0 || step + 1 == STEPS) {
			uint32_t g, p;

			for (g = 0; g < NF; g++) {
				w = folio_word_load(&pt, g);
				assert_int_equal(folio_state_of(w), m[g].st);
				assert_int_equal(!!(w & FOLIO_LOCKED), m[g].locked);
				assert_int_equal(!!(w & FOLIO_PINNED), m[g].pinned);
				assert_int_equal(!!(w & FOLIO_REFERENCED), m[g].referenced);
				assert_int_equal(folio_check(&pt, g, sm), 0);
			}
			for (p = 0; p < (NF << ORDER); p++)
				assert_int_equal(zeromap_test(&pt, p), zero_model[p]);
		}
	}
	pagetable_destroy(&pt);
	slotmap_destroy(sm);
}

static void test_check_catches_corruption(void **state)
{
	struct pagetable pt;
	struct slotmap *sm;
	uint32_t w;

	(void)state;
	assert_int_equal(pagetable_init(&pt, 64, 4), 0);
	assert_int_equal(slotmap_create(0, &sm), 0);
	/* a resident folio with a zero bit */
	assert_true(folio_trylock(&pt, 1, &w));
	folio_unlock(&pt, 1, FOLIO_RESIDENT, 0, 0);
	zeromap_set(&pt, 17);
	assert_int_equal(folio_check(&pt, 1, sm), -EFAULT);
	zeromap_clear(&pt, 17);
	assert_int_equal(folio_check(&pt, 1, sm), 0);
	/* an out folio whose page names a free slot */
	assert_true(folio_trylock(&pt, 2, &w));
	folio_unlock(&pt, 2, FOLIO_RESIDENT, 0, 0);
	assert_true(folio_trylock(&pt, 2, &w));
	folio_unlock(&pt, 2, FOLIO_OUT, 0, 0);
	pt.entry[33] = entry_of_slot((slot_t){ 5 });
	assert_int_equal(folio_check(&pt, 2, sm), -EFAULT);
	pt.entry[33] = 0;
	/* both a slot and a zero bit */
	{
		slot_t s;

		assert_int_equal(slot_alloc(sm, 0, (store_handle_t){ 9 }, &s), 0);
		pt.entry[34] = entry_of_slot(s);
		assert_int_equal(folio_check(&pt, 2, sm), 0);
		zeromap_set(&pt, 34);
		assert_int_equal(folio_check(&pt, 2, sm), -EFAULT);
	}
	pagetable_destroy(&pt);
	slotmap_destroy(sm);
}

/* ---- folio locks exclude each other across threads ---- */

struct locker {
	struct pagetable *pt;
	uint64_t *counters; /* one per folio, written only under its lock */
	unsigned id;
};

static void *locker_main(void *arg)
{
	struct locker *l = arg;
	struct rng r = { 0x1234567ull + l->id };
	unsigned i;

	for (i = 0; i < 200000; i++) {
		uint32_t f = (uint32_t)rng_below(&r, 4), w;

		while (!folio_trylock(l->pt, f, &w))
			;
		l->counters[f]++; /* a plain increment: only the lock protects it */
		folio_unlock(l->pt, f, folio_state_of(w) == FOLIO_EMPTY ? FOLIO_RESIDENT
								      : folio_state_of(w),
			     0, 0);
	}
	return NULL;
}

static void test_lock_exclusion(void **state)
{
	struct pagetable pt;
	uint64_t counters[4] = { 0 };
	struct locker l[4];
	pthread_t th[4];
	unsigned i;

	(void)state;
	assert_int_equal(pagetable_init(&pt, 64, 4), 0);
	for (i = 0; i < 4; i++) {
		l[i] = (struct locker){ &pt, counters, i };
		assert_int_equal(pthread_create(&th[i], NULL, locker_main, &l[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(counters[0] + counters[1] + counters[2] + counters[3], 4 * 200000);
	pagetable_destroy(&pt);
}

/* ---- the clock against a model of second chance ---- */

struct tables {
	struct pagetable pt[3];
};

static struct pagetable *table_at(void *arg, size_t i)
{
	return &((struct tables *)arg)->pt[i];
}

static void test_clock_model(void **state)
{
	enum { STEPS = 50000 };
	static const uint32_t nf[3] = { 5, 17, 9 };
	struct tables t;
	struct clock_hand hand = { 0, 0 };
	/* the model: a flat list of folios in sweep order */
	struct mf {
		size_t t;
		uint32_t f;
		bool resident, referenced, pinned;
		unsigned age; /* turns it is passed over once unreferenced */
	} m[31];
	size_t hand_m = 0, n = 0, i;
	struct rng r;
	unsigned step;

	(void)state;
	rng_seed(&r, 7);
	for (i = 0; i < 3; i++) {
		uint32_t f;

		assert_int_equal(pagetable_init(&t.pt[i], nf[i] * 16, 4), 0);
		for (f = 0; f < nf[i]; f++)
			m[n++] = (struct mf){ i, f, false, false, false, 0 };
	}
	for (step = 0; step < STEPS; step++) {
		size_t k = (size_t)rng_below(&r, n);
		struct pagetable *pt = &t.pt[m[k].t];
		uint32_t w;

		switch (rng_below(&r, 4)) {
		case 0: /* a fault brings folio k in, half the time as a refault
			 * of the working set (age 3) */
			if (!m[k].resident) {
				bool active = rng_below(&r, 2);

				assert_true(folio_trylock(pt, m[k].f, &w));
				folio_unlock(pt, m[k].f, FOLIO_RESIDENT,
					     FOLIO_REFERENCED | (active ? FOLIO_AGE_MASK : 0), 0);
				m[k].resident = m[k].referenced = true;
				m[k].age = active ? 3 : 0;
			}
			break;
		case 1: /* pin or unpin */
			if (rng_below(&r, 2))
				folio_flags_set(pt, m[k].f, FOLIO_PINNED), m[k].pinned = true;
			else
				folio_flags_clear(pt, m[k].f, FOLIO_PINNED), m[k].pinned = false;
			break;
		default: { /* the reclaimer picks a victim */
			size_t want = SIZE_MAX, scanned, tt;
			uint32_t ff;
			bool got;

			/* model: five turns from the hand, clearing referenced
			 * bits, then ageing */
			for (scanned = 0; scanned < 5 * n; scanned++) {
				struct mf *x = &m[hand_m];

				hand_m = (hand_m + 1) % n;
				if (!x->resident || x->pinned)
					continue;
				if (x->referenced) {
					x->referenced = false;
					continue;
				}
				if (x->age) {
					x->age--;
					continue;
				}
				want = (size_t)(x - m);
				break;
			}
			got = clock_pick(&hand, table_at, &t, 3, &tt, &ff);
			assert_int_equal(got, want != SIZE_MAX);
			if (got) {
				assert_int_equal(tt, m[want].t);
				assert_int_equal(ff, m[want].f);
				/* evict it */
				folio_unlock(&t.pt[tt], ff, FOLIO_OUT, 0, FOLIO_REFERENCED);
				assert_int_equal(folio_word_load(&t.pt[tt], ff) & FOLIO_AGE_MASK, 0);
				m[want].resident = false;
			}
		}
		}
	}
	for (i = 0; i < 3; i++)
		pagetable_destroy(&t.pt[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transitions),
		cmocka_unit_test(test_random_sequences),
		cmocka_unit_test(test_check_catches_corruption),
		cmocka_unit_test(test_lock_exclusion),
		cmocka_unit_test(test_clock_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

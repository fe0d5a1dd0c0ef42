/* SPDX-License-Identifier: MIT */
#include "pagegen.h"

#include <stdio.h>
#include <string.h>

#define PAGE 4096

const char *const page_mix_names[MIX_KINDS] = { "zero", "random", "text", "ints", "records" };

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

enum page_mix_kind pagegen_kind(uint64_t seed, uint64_t idx)
{
	/* Kinds are drawn per group of 4 pages so zero pages come in runs,
	 * and a few pages of a group may differ. */
	uint64_t g = mix64(seed ^ mix64(idx / 4 + 1)) % 100;
	uint64_t p = mix64(seed ^ mix64(idx + 0x1234567)) % 100;

	if (p < 8)
		g = mix64(seed ^ idx ^ 0xabcdef) % 100;
	if (g < 15)
		return MIX_ZERO;
	if (g < 25)
		return MIX_RANDOM;
	if (g < 55)
		return MIX_TEXT;
	if (g < 80)
		return MIX_INTS;
	return MIX_RECORDS;
}

static const char *const words[] = {
	"GET",     "POST",  "/api/v1/users", "/api/v1/orders", "/static/app.js", "200",
	"404",     "500",   "INFO",          "WARN",           "ERROR",          "request",
	"latency", "ms",    "user",          "session",        "cache",          "miss",
	"hit",     "the",   "and",           "of",             "connection",     "timeout",
};

static void fill_text(char *p, uint64_t r)
{
	size_t off = 0;

	while (off < PAGE) {
		char line[160];
		int n;

		r = mix64(r);
		n = snprintf(line, sizeof(line), "2026-11-%02u %02u:%02u:%02u %s %s %s id=%u %s=%u%s\n",
			     (unsigned)(r % 28 + 1), (unsigned)(r >> 8) % 24, (unsigned)(r >> 16) % 60,
			     (unsigned)(r >> 24) % 60, words[8 + (r >> 32) % 3],
			     words[(r >> 36) % 5], words[(r >> 40) % 24], (unsigned)(r >> 44) % 100000,
			     words[12 + (r >> 50) % 12], (unsigned)(r >> 56) % 1000, words[19 + (r >> 60) % 5]);
		if (n > (int)(PAGE - off))
			n = (int)(PAGE - off);
		memcpy(p + off, line, (size_t)n);
		off += (size_t)n;
	}
}

static void fill_ints(uint32_t *v, uint64_t r)
{
	uint32_t x = (uint32_t)(r % 1000);
	size_t i;

	for (i = 0; i < PAGE / 4; i++) {
		r = mix64(r + i);
		x += (uint32_t)(r % 16);
		v[i] = (r >> 60) ? x : (uint32_t)(r >> 32) % 256;
	}
}

struct record {
	uint64_t id;
	uint32_t flags;
	uint32_t qty;
	char name[16];
	double price;
};

static void fill_records(struct record *rec, uint64_t r)
{
	size_t i, n = PAGE / sizeof(*rec);

	/* the records do not fill the page to its last byte: the rest is zero,
	 * so that the page is a function of its arguments alone */
	memset((char *)rec + n * sizeof(*rec), 0, PAGE - n * sizeof(*rec));
	for (i = 0; i < n; i++) {
		r = mix64(r + i);
		memset(&rec[i], 0, sizeof(rec[i]));
		rec[i].id = 1000000 + (r >> 40);
		rec[i].flags = (uint32_t)(r & 7);
		rec[i].qty = (uint32_t)(r >> 8) % 100;
		snprintf(rec[i].name, sizeof(rec[i].name), "item-%05u", (unsigned)(r >> 20) % 50000);
		rec[i].price = (double)((r >> 12) % 100000) / 100.0;
	}
}

static void fill_random(uint64_t *v, uint64_t r)
{
	size_t i;

	for (i = 0; i < PAGE / 8; i++)
		v[i] = mix64(r + i);
}

void pagegen_fill(void *page, uint64_t seed, uint64_t idx, uint64_t version)
{
	uint64_t r = mix64(seed ^ mix64(idx) ^ mix64(version + 77));

	switch (pagegen_kind(seed, idx)) {
	case MIX_ZERO:
		if (version == 0) {
			memset(page, 0, PAGE);
			return;
		}
		/* a zero page written again holds a little data */
		memset(page, 0, PAGE);
		((uint64_t *)page)[r % (PAGE / 8)] = r | 1;
		return;
	case MIX_RANDOM:
		fill_random(page, r);
		return;
	case MIX_TEXT:
		fill_text(page, r);
		return;
	case MIX_INTS:
		fill_ints(page, r);
		return;
	default:
		fill_records(page, r);
		return;
	}
}

uint64_t pagegen_hash(const void *page)
{
	const uint64_t *w = page;
	uint64_t h = 0x84222325cbf29ce4ull;
	size_t i;

	for (i = 0; i < PAGE / 8; i += 4) {
		h = (h ^ mix64(w[i] + 1)) * 0x100000001b3ull;
		h = (h ^ (w[i + 1] + 0x9e3779b97f4a7c15ull)) * 0x100000001b3ull;
		h = (h ^ (w[i + 2] * 31)) * 0x100000001b3ull;
		h = (h ^ w[i + 3]) * 0x100000001b3ull;
	}
	return mix64(h);
}

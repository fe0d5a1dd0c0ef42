/* SPDX-License-Identifier: MIT */
/*
 * uswap pagemap PID: a compact map of the managed memory of a program
 * running under uswap run, one character per folio, read from the query
 * socket its shim serves (tools/query_client.c), with a legend and totals
 * in pages and bytes per state, or the same figures as JSON.
 *
 * Each page's uswap_pagemap word falls in exactly one state (page_state);
 * a folio shows its pages' common state, or '+' when they differ.  The one
 * exception: zero pages inside a swapped-out folio make it 's', not '+'
 * (they are part of the stored folio and cost no store space).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_client.h"
#include "tool.h"

enum page_state {
	ST_RESIDENT,
	ST_SWAPCACHE,
	ST_SWAPPED,
	ST_ZERO,
	ST_LAZYFREE,
	ST_UNTOUCHED,
	ST_COUNT
};

static const struct {
	char c;
	const char *key; /* JSON */
	const char *legend;
} states[ST_COUNT] = {
	[ST_RESIDENT] = {'#', "resident", "resident"},
	[ST_SWAPCACHE] = {'c', "swapcache", "resident, stored copy kept (swap cache)"},
	[ST_SWAPPED] = {'s', "swapped", "swapped out (in the store)"},
	[ST_ZERO] = {'0', "zero", "zero (recorded, no store space)"},
	[ST_LAZYFREE] = {'f', "lazyfree", "lazily freed, not written since"},
	[ST_UNTOUCHED] = {'.', "untouched", "never touched (or dropped: reads as zero)"},
};
#define MIXED '+'
#define WIDTH_DEFAULT 64
#define WIDTH_MAX 4096

/* Figures of a region or of all of them. */
struct tally {
	uint64_t pages[ST_COUNT];
	uint64_t pinned, shared; /* pages, across states */
	uint64_t folios, split;	 /* split: kept page by page (order 0) */
	uint64_t size;		 /* bytes */
};

struct region_map {
	uint64_t start, len;
	char *map; /* one character per folio */
	struct tally t;
};

static enum page_state page_state(uint64_t w)
{
	if (w & USWAP_PM_PRESENT) {
		if (w & USWAP_PM_LAZYFREE)
			return ST_LAZYFREE;
		return w & USWAP_PM_SWAPCACHE ? ST_SWAPCACHE : ST_RESIDENT;
	}
	if (w & USWAP_PM_SWAPPED)
		return ST_SWAPPED;
	return w & USWAP_PM_ZERO ? ST_ZERO : ST_UNTOUCHED;
}

/* The character of a folio from the states of its n pages, and its tally. */
static char folio_char(const uint64_t *w, unsigned n, unsigned order, struct tally *t)
{
	unsigned seen = 0, i;
	bool split = false;

	for (i = 0; i < n; i++) {
		enum page_state s = page_state(w[i]);

		seen |= 1u << s;
		t->pages[s]++;
		t->pinned += !!(w[i] & USWAP_PM_PINNED);
		t->shared += !!(w[i] & USWAP_PM_SHARED);
		split |= w[i] && order && USWAP_PM_ORDER(w[i]) == 0;
	}
	t->folios++;
	t->split += split;
	if (seen == (1u << ST_SWAPPED | 1u << ST_ZERO))
		return states[ST_SWAPPED].c;
	for (i = 0; i < ST_COUNT; i++)
		if (seen == 1u << i)
			return states[i].c;
	return MIXED;
}

static void tally_add(struct tally *sum, const struct tally *t)
{
	for (unsigned i = 0; i < ST_COUNT; i++)
		sum->pages[i] += t->pages[i];
	sum->pinned += t->pinned;
	sum->shared += t->shared;
	sum->folios += t->folios;
	sum->split += t->split;
	sum->size += t->size;
}

/* Read the pagemap of region r in chunks and fill its map and tally.
 * @return 0 or the query's -errno. */
static int region_read(struct query_conn *c, struct region_map *r, uint64_t *words)
{
	uint64_t page = c->page_size, fpages = c->folio_size / page;
	uint64_t npages = r->len / page, done = 0;
	unsigned order = 0;
	size_t f = 0;

	while ((1ull << order) < fpages)
		order++;
	r->t.size = r->len;
	r->map = malloc(npages / fpages + 1);
	if (!r->map)
		return -ENOMEM;
	while (done < npages) {
		/* whole folios per chunk: QUERY_MAX_PAGES is a multiple of any folio */
		size_t n =
			npages - done < QUERY_MAX_PAGES ? (size_t)(npages - done) : QUERY_MAX_PAGES;
		int rc = query_pagemap(c, r->start + done * page, n, words);

		if (rc)
			return rc;
		for (size_t i = 0; i < n; i += fpages)
			r->map[f++] =
				folio_char(words + i, (unsigned)(n - i < fpages ? n - i : fpages),
					   order, &r->t);
		done += n;
	}
	r->map[f] = 0;
	return 0;
}

/* Bytes as a short figure: "64 KiB", "1.5 GiB". */
static const char *size_text(uint64_t bytes, char *buf, size_t cap)
{
	static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v == (double)(uint64_t)v)
		snprintf(buf, cap, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, cap, "%.1f %s", v, unit[u]);
	return buf;
}

static void text_tally(const struct tally *t, uint64_t page)
{
	char s[32];

	for (unsigned i = 0; i < ST_COUNT; i++)
		printf("  %c %-10s %12" PRIu64 " pages %16" PRIu64 " bytes  (%s)\n", states[i].c,
		       states[i].key, t->pages[i], t->pages[i] * page,
		       size_text(t->pages[i] * page, s, sizeof(s)));
	printf("  pinned %" PRIu64 " pages, shared with a forked process %" PRIu64
	       " pages, split folios %" PRIu64 " of %" PRIu64 "\n",
	       t->pinned, t->shared, t->split, t->folios);
}

/* A region's figures on one line: pages per state. */
static void text_tally_line(const struct tally *t)
{
	printf("  pages:");
	for (unsigned i = 0; i < ST_COUNT; i++)
		printf(" %c %" PRIu64 "", states[i].c, t->pages[i]);
	printf("; pinned %" PRIu64 ", shared %" PRIu64 ", split folios %" PRIu64 "\n", t->pinned,
	       t->shared, t->split);
}

static void print_text(int pid, const struct query_conn *c, const struct region_map *r, size_t nr,
		       const struct tally *sum, unsigned width)
{
	uint64_t page = c->page_size;
	char s1[32], s2[32], s3[32];

	printf("uswap pagemap of process %d: %zu region%s, %s, folios of %s (%" PRIu64
	       " pages of %s)\n",
	       pid, nr, nr == 1 ? "" : "s", size_text(sum->size, s1, sizeof(s1)),
	       size_text(c->folio_size, s2, sizeof(s2)), c->folio_size / page,
	       size_text(page, s3, sizeof(s3)));
	printf("legend:");
	for (unsigned i = 0; i < ST_COUNT; i++)
		printf("%s'%c' %s\n", i ? "        " : " ", states[i].c, states[i].legend);
	printf("        '%c' mixed: the folio's pages are in different states\n", MIXED);
	for (size_t i = 0; i < nr; i++) {
		size_t folios = r[i].t.folios;

		printf("\nregion 0x%" PRIx64 "-0x%" PRIx64 ": %s, %zu folios\n", r[i].start,
		       r[i].start + r[i].len, size_text(r[i].len, s1, sizeof(s1)), folios);
		for (size_t f = 0; f < folios; f += width)
			printf("  0x%012" PRIx64 "  %.*s\n", r[i].start + f * c->folio_size,
			       (int)(folios - f < width ? folios - f : width), r[i].map + f);
		text_tally_line(&r[i].t);
	}
	printf("\ntotal of %zu region%s, %s:\n", nr, nr == 1 ? "" : "s",
	       size_text(sum->size, s1, sizeof(s1)));
	text_tally(sum, page);
}

static void json_tally(const struct tally *t, uint64_t page)
{
	printf("\"size\": %" PRIu64 ", \"folios\": %" PRIu64 ", \"split_folios\": %" PRIu64
	       ", \"pages\": {",
	       t->size, t->folios, t->split);
	for (unsigned i = 0; i < ST_COUNT; i++)
		printf("\"%s\": %" PRIu64 ", ", states[i].key, t->pages[i]);
	printf("\"pinned\": %" PRIu64 ", \"shared\": %" PRIu64 "}, \"bytes\": {", t->pinned,
	       t->shared);
	for (unsigned i = 0; i < ST_COUNT; i++)
		printf("\"%s\": %" PRIu64 ", ", states[i].key, t->pages[i] * page);
	printf("\"pinned\": %" PRIu64 ", \"shared\": %" PRIu64 "}", t->pinned * page,
	       t->shared * page);
}

static void print_json(int pid, const struct query_conn *c, const struct region_map *r, size_t nr,
		       const struct tally *sum)
{
	printf("{\"pid\": %d, \"page_size\": %" PRIu64 ", \"folio_size\": %" PRIu64
	       ", \"legend\": {",
	       pid, c->page_size, c->folio_size);
	for (unsigned i = 0; i < ST_COUNT; i++)
		printf("\"%c\": \"%s\", ", states[i].c, states[i].key);
	printf("\"%c\": \"mixed\"}, \"regions\": [", MIXED);
	for (size_t i = 0; i < nr; i++) {
		printf("%s{\"start\": \"0x%" PRIx64 "\", \"end\": \"0x%" PRIx64 "\", ",
		       i ? ", " : "", r[i].start, r[i].start + r[i].len);
		json_tally(&r[i].t, c->page_size);
		printf(", \"map\": \"%s\"}", r[i].map);
	}
	printf("], \"total\": {\"regions\": %zu, ", nr);
	json_tally(sum, c->page_size);
	printf("}}\n");
}

void pagemap_usage(FILE *f)
{
	fprintf(f,
		"usage: uswap pagemap [--region ADDR | --all] [--width N] [--json] PID\n"
		"\n"
		"Show the managed memory of process PID, which runs under 'uswap run' (or\n"
		"with libuswap_preload.so preloaded): a map with one character per folio,\n"
		"a legend, and the pages and bytes in each state, per region and in total.\n"
		"Only the same user and root may read it.\n"
		"\n"
		"options:\n"
		"  --region ADDR  only the region that contains address ADDR (hex, as the\n"
		"                 map prints it, 0x optional)\n"
		"  --all          every region (the default)\n"
		"  --width N      folios per line of the map, 1 to %d (default %d)\n"
		"  --json         the same figures as one JSON object\n"
		"  -h, --help     this text\n"
		"\n"
		"map: # resident  c swap cache  s swapped out  0 zero  f lazily freed\n"
		"     . never touched  + mixed\n",
		WIDTH_MAX, WIDTH_DEFAULT);
}

struct pagemap_args {
	long pid;
	bool json, one_region;
	uint64_t addr;
	unsigned width;
};

/* --region ADDR.  @return true, or false after printing why. */
static bool region_parse(const char *v, struct pagemap_args *a)
{
	char *end;

	errno = 0;
	a->addr = strtoull(v, &end, 16);
	if (!*v || *end || *v == '-' || errno) {
		fprintf(stderr,
			"uswap pagemap: --region \"%s\" is not an address: use hex digits, "
			"e.g. 0x7f0000000000\n",
			v);
		return false;
	}
	a->one_region = true;
	return true;
}

/* --width N.  @return true, or false after printing why. */
static bool width_parse(const char *v, struct pagemap_args *a)
{
	char *end;
	long w;

	errno = 0;
	w = strtol(v, &end, 10);
	if (!*v || *end || errno || w < 1 || w > WIDTH_MAX) {
		fprintf(stderr,
			"uswap pagemap: --width \"%s\" is not allowed: use 1 to %d folios per "
			"line\n",
			v, WIDTH_MAX);
		return false;
	}
	a->width = (unsigned)w;
	return true;
}

/* @return -1 to go on, or the exit status to end with: 0 after --help, 2
 * after printing what is wrong. */
static int args_parse(int argc, char **argv, struct pagemap_args *a)
{
	bool all = false;

	*a = (struct pagemap_args){.pid = -1, .width = WIDTH_DEFAULT};
	for (int i = 1; i < argc; i++) {
		const char *v = argv[i];
		char *end;

		if (!strcmp(v, "--json")) {
			a->json = true;
		} else if (!strcmp(v, "--all")) {
			all = true;
		} else if (!strcmp(v, "--region") || !strcmp(v, "--width")) {
			if (i + 1 >= argc) {
				fprintf(stderr,
					"uswap pagemap: %s needs a value (see uswap pagemap "
					"--help)\n",
					v);
				return 2;
			}
			v = argv[++i];
			if (!strcmp(argv[i - 1], "--region") ? !region_parse(v, a)
							     : !width_parse(v, a))
				return 2;
		} else if (!strcmp(v, "-h") || !strcmp(v, "--help")) {
			pagemap_usage(stdout);
			return 0;
		} else if (v[0] != '-' && a->pid < 0) {
			a->pid = strtol(v, &end, 10);
			if (!*v || *end || a->pid < 1 || a->pid > 4194304) {
				fprintf(stderr,
					"uswap pagemap: PID \"%s\" is not a process id: use a "
					"number from 1 to 4194304\n",
					v);
				return 2;
			}
		} else {
			fprintf(stderr,
				"uswap pagemap: unexpected \"%s\" (see uswap pagemap --help)\n", v);
			return 2;
		}
	}
	if (all && a->one_region) {
		fprintf(stderr, "uswap pagemap: --region and --all exclude each other: give one\n");
		return 2;
	}
	if (a->pid < 0) {
		pagemap_usage(stderr);
		return 2;
	}
	return -1;
}

/* Every region of the process (or the one containing a->addr) into *out. */
static int regions_list(struct query_conn *c, const struct pagemap_args *a, struct region_map **out,
			size_t *nr)
{
	struct query_region batch[QUERY_MAX_REGIONS];
	struct region_map *r = NULL;
	uint64_t from = a->one_region ? a->addr : 0;
	size_t n = 0, got;

	do {
		struct region_map *more;
		if (query_regions(c, from, batch, &got)) {
			fprintf(stderr, "uswap pagemap: %s\n", c->error);
			goto err_free;
		}
		if (a->one_region && (!got || batch[0].start > a->addr)) {
			fprintf(stderr,
				"uswap pagemap: process %d has no managed region that "
				"contains --region 0x%" PRIx64 ": 'uswap pagemap %d' lists "
				"its regions\n",
				c->pid, a->addr, c->pid);
			goto err_free;
		}
		if (a->one_region)
			got = 1;
		more = realloc(r, (n + got) * sizeof(*r) + 1);
		if (!more)
			goto err_free;
		r = more;
		for (size_t i = 0; i < got; i++)
			r[n++] = (struct region_map){.start = batch[i].start, .len = batch[i].len};
		if (got)
			from = batch[got - 1].start + batch[got - 1].len;
	} while (!a->one_region && got == QUERY_MAX_REGIONS);
	*out = r;
	*nr = n;
	return 0;
err_free:
	free(r);
	return -1;
}

int cmd_pagemap(int argc, char **argv)
{
	static struct query_conn conn;
	static uint64_t words[QUERY_MAX_PAGES];
	struct pagemap_args a;
	struct region_map *r = NULL;
	struct tally sum = {0};
	size_t nr = 0, kept = 0;
	int rc = args_parse(argc, argv, &a), status = 1;

	if (rc >= 0)
		return rc;
	if (query_connect(&conn, (int)a.pid)) {
		fprintf(stderr, "uswap pagemap: %s\n", conn.error);
		return 1;
	}
	if (regions_list(&conn, &a, &r, &nr))
		goto out;
	for (size_t i = 0; i < nr; i++) {
		rc = region_read(&conn, &r[i], words);
		if (rc == -EINVAL && !a.one_region) {
			/* unmapped since it was listed: not part of the map any more */
			fprintf(stderr,
				"uswap pagemap: region 0x%" PRIx64 " went away while "
				"being read: left out\n",
				r[i].start);
			free(r[i].map);
			continue;
		}
		if (rc) {
			fprintf(stderr, "uswap pagemap: %s\n",
				rc == -ENOMEM ? "out of memory" : conn.error);
			free(r[i].map);
			goto out;
		}
		tally_add(&sum, &r[i].t);
		r[kept++] = r[i];
	}
	if (a.json)
		print_json((int)a.pid, &conn, r, kept, &sum);
	else
		print_text((int)a.pid, &conn, r, kept, &sum, a.width);
	status = 0;
out:
	for (size_t i = 0; i < kept; i++)
		free(r[i].map);
	free(r);
	query_close(&conn);
	return status;
}

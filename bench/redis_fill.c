// SPDX-License-Identifier: MIT
/*
 * Fill a Redis server with realistic values, or check them, for
 * bench/redis_vs_kernel.sh.
 *
 *   redis_fill --port PORT --keys N --value BYTES [--seed S] --fill
 *   redis_fill --port PORT --keys N --value BYTES [--seed S] --verify SAMPLE
 *
 * Keys are "key:%012d", 0 to N-1: the names redis-benchmark's
 * "key:__rand_int__" with -r N picks from, so its GETs hit them.  Value i is
 * BYTES bytes cut from the page mix of tools/common/pagegen (zero, random,
 * text, integer arrays, records), so a compressor sees what it would see in
 * a real cache, not redis-benchmark's own "xxx..." payload.  --verify GETs
 * SAMPLE keys spread over the key space and compares every byte with the
 * regenerated value: the bench checks the data survived its swapping.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "pagegen.h"

#define PAGE 4096
#define PIPELINE 256

struct fill_opts {
	int port;
	uint64_t keys, value, seed, sample;
	int verify;
};

static void value_of(const struct fill_opts *o, uint64_t i, char *out)
{
	static char page[PAGE];
	static uint64_t page_idx = UINT64_MAX;
	uint64_t per_page = PAGE / o->value, done = 0;

	/* values up to a page come out of one page, larger ones span pages */
	if (per_page) {
		uint64_t p = i / per_page;

		if (p != page_idx) {
			pagegen_fill(page, o->seed, p, 0);
			page_idx = p;
		}
		memcpy(out, page + (i % per_page) * o->value, o->value);
		return;
	}
	for (uint64_t p = i * ((o->value + PAGE - 1) / PAGE); done < o->value; p++) {
		uint64_t n = o->value - done < PAGE ? o->value - done : PAGE;

		pagegen_fill(page, o->seed, p, 0);
		page_idx = p;
		memcpy(out + done, page, n);
		done += n;
	}
}

static int reply_ok(redisContext *c, redisReply *r, const char *what)
{
	if (!r) {
		fprintf(stderr, "redis_fill: %s: %s\n", what, c->errstr);
		return 0;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "redis_fill: %s: %s\n", what, r->str);
		return 0;
	}
	return 1;
}

static int fill(redisContext *c, const struct fill_opts *o)
{
	char *val = malloc(o->value);

	if (!val)
		return 1;
	for (uint64_t i = 0; i < o->keys; i += PIPELINE) {
		uint64_t n = o->keys - i < PIPELINE ? o->keys - i : PIPELINE;

		for (uint64_t k = 0; k < n; k++) {
			char key[32];

			snprintf(key, sizeof(key), "key:%012llu", (unsigned long long)(i + k));
			value_of(o, i + k, val);
			redisAppendCommand(c, "SET %s %b", key, val, (size_t)o->value);
		}
		for (uint64_t k = 0; k < n; k++) {
			redisReply *r = NULL;

			redisGetReply(c, (void **)&r);
			if (!reply_ok(c, r, "SET")) {
				free(val);
				return 1;
			}
			freeReplyObject(r);
		}
	}
	free(val);
	return 0;
}

static int verify(redisContext *c, const struct fill_opts *o, uint64_t *checked)
{
	char *want = malloc(o->value);
	uint64_t step = o->keys / o->sample ? o->keys / o->sample : 1;
	int bad = 0;

	if (!want)
		return 1;
	*checked = 0;
	for (uint64_t i = 0; i < o->keys && *checked < o->sample && !bad; i += step) {
		redisReply *r = redisCommand(c, "GET key:%012llu", (unsigned long long)i);

		if (!reply_ok(c, r, "GET")) {
			bad = 1;
			break;
		}
		value_of(o, i, want);
		if (r->type != REDIS_REPLY_STRING || (uint64_t)r->len != o->value ||
		    memcmp(r->str, want, o->value)) {
			fprintf(stderr, "redis_fill: key:%012llu does not hold what was written\n",
				(unsigned long long)i);
			bad = 1;
		}
		freeReplyObject(r);
		++*checked;
	}
	free(want);
	return bad;
}

static int parse_u64(const char *flag, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = v ? strtoull(v, &end, 10) : 0;
	if (!v || errno || end == v || *end || n < lo || n > hi) {
		fprintf(stderr, "redis_fill: %s \"%s\": allowed: %llu to %llu\n", flag, v ? v : "",
			(unsigned long long)lo, (unsigned long long)hi);
		return -1;
	}
	*out = n;
	return 0;
}

int main(int argc, char **argv)
{
	struct fill_opts o = { .value = 1024, .seed = 1 };
	uint64_t port = 0, checked = 0;
	int mode = 0, rc;
	redisContext *c;
	double t0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (!strcmp(a, "--fill")) {
			mode = 'f';
			continue;
		}
		if (!strcmp(a, "--port"))
			bad = parse_u64(a, v, 1, 65535, &port);
		else if (!strcmp(a, "--keys"))
			bad = parse_u64(a, v, 1, 1ull << 32, &o.keys);
		else if (!strcmp(a, "--value"))
			bad = parse_u64(a, v, 1, 1 << 20, &o.value);
		else if (!strcmp(a, "--seed"))
			bad = parse_u64(a, v, 0, UINT64_MAX, &o.seed);
		else if (!strcmp(a, "--verify")) {
			bad = parse_u64(a, v, 1, 1ull << 32, &o.sample);
			mode = 'v';
		} else {
			fprintf(stderr, "redis_fill: unknown argument \"%s\"\n", a);
			return 2;
		}
		if (bad)
			return 2;
		i++;
	}
	if (!port || !o.keys || !mode) {
		fprintf(stderr, "usage: redis_fill --port PORT --keys N --value BYTES [--seed S] "
				"(--fill | --verify SAMPLE)\n");
		return 2;
	}
	o.port = (int)port;
	c = redisConnect("127.0.0.1", o.port);
	if (!c || c->err) {
		fprintf(stderr, "redis_fill: cannot connect to 127.0.0.1:%d: %s\n", o.port,
			c ? c->errstr : "out of memory");
		return 1;
	}
	t0 = now_s();
	rc = mode == 'f' ? fill(c, &o) : verify(c, &o, &checked);
	if (!rc)
		printf("{\"%s\": %llu, \"seconds\": %.3f}\n", mode == 'f' ? "filled" : "verified",
		       (unsigned long long)(mode == 'f' ? o.keys : checked), now_s() - t0);
	redisFree(c);
	return rc;
}

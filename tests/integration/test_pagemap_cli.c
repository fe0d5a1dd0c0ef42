/* SPDX-License-Identifier: MIT */
/*
 * `uswap pagemap PID` on the real kernel, against a program under
 * `uswap run` (tests/helpers/pagemap_probe.c) that puts each folio of one
 * region in a known state with an unmodified program's means: writes,
 * reads, madvise(MADV_PAGEOUT) and madvise(MADV_FREE).
 *
 * The expectation is this file's own model of what each action leaves
 * (expect_of): the character of the folio and how many of its pages end
 * in each state.  The command's JSON and text must match it folio by
 * folio and page count by page count, across a region larger than one
 * query chunk, for two folio sizes.  Then bad arguments, other users,
 * and both sides of a protocol version mismatch.
 */
#include <inttypes.h>
#include <pthread.h>
#include <regex.h>

#include "preload/query_proto.h"
#include "shimtest.h"
#include "testlib.h"
#include "uswap.h"

#define PAGE 4096ul

static char out_path[] = "/tmp/uswap-pagemap-XXXXXX";
static char probe_out[] = "/tmp/uswap-pagemap-probe-XXXXXX";

static int setup(void **state)
{
	int fd = mkstemp(out_path), fd2 = mkstemp(probe_out);

	(void)state;
	if (fd < 0 || fd2 < 0)
		return -1;
	close(fd);
	close(fd2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(out_path);
	unlink(probe_out);
	return 0;
}

/* ---- the model ---- */

enum { S_RESIDENT, S_SWAPCACHE, S_SWAPPED, S_ZERO, S_LAZYFREE, S_UNTOUCHED, S_COUNT };
static const char *const state_key[S_COUNT] = {"resident", "swapcache", "swapped",
					       "zero",	   "lazyfree",	"untouched"};

struct expect {
	char c;			 /* the folio's character */
	unsigned pages[S_COUNT]; /* its pages per state */
	bool split;		 /* kept page by page */
};

/* What pagemap_probe's action a leaves in a folio of fp pages. */
static struct expect expect_of(char a, unsigned fp)
{
	struct expect e = {0};
	unsigned half = fp / 2;

	switch (a) {
	case '.': /* never touched */
		e.c = '.';
		e.pages[S_UNTOUCHED] = fp;
		break;
	case 'w': /* written */
	case 'r': /* swapped in, then written: its stored copy is dropped */
		e.c = '#';
		e.pages[S_RESIDENT] = fp;
		break;
	case 'o': /* written and paged out */
		e.c = 's';
		e.pages[S_SWAPPED] = fp;
		break;
	case 'i': /* paged out and read back: the stored copy stays */
		e.c = 'c';
		e.pages[S_SWAPCACHE] = fp;
		break;
	case 'z': /* only read, then paged out */
	case 'Z': /* zeros written, then paged out */
	case 'd': /* lazily freed, then paged out: discarded */
		e.c = '0';
		e.pages[S_ZERO] = fp;
		break;
	case 'f': /* lazily freed whole */
		e.c = 'f';
		e.pages[S_LAZYFREE] = fp;
		break;
	case 'h': /* first half lazily freed: the folio is split */
		e.c = '+';
		e.pages[S_LAZYFREE] = half;
		e.pages[S_RESIDENT] = fp - half;
		e.split = true;
		break;
	case 'm': /* half data, half zero, paged out: stored as one folio */
		e.c = 's';
		e.pages[S_SWAPPED] = half;
		e.pages[S_ZERO] = fp - half;
		break;
	default:
		fail_msg("no expectation for action '%c'", a);
	}
	return e;
}

struct model {
	char *map;
	uint64_t pages[S_COUNT];
	uint64_t split;
};

static struct model model_of(const char *plan, unsigned fp)
{
	size_t n = strlen(plan);
	struct model m = {.map = calloc(n + 1, 1)};

	assert_non_null(m.map);
	for (size_t i = 0; i < n; i++) {
		struct expect e = expect_of(plan[i], fp);

		m.map[i] = e.c;
		for (int s = 0; s < S_COUNT; s++)
			m.pages[s] += e.pages[s];
		m.split += e.split;
	}
	return m;
}

/* ---- the program under uswap run ---- */

struct probe {
	pid_t pid;
	uintptr_t start; /* of the first region */
	size_t len;	 /* of each region */
	char spid[16], saddr[32];
	uintptr_t *starts; /* of every region */
	size_t nregions;
};

/* The probe running now, so that a failed test does not leave it behind. */
static pid_t live_probe;

/* Start pagemap_probe under uswap run with nregions regions of plan. */
static void probe_start_n(struct probe *p, const char *folio, const char *plan, size_t nregions)
{
	char *argv[] = {
		USWAP_BIN,     "run",	     "--limit",	    "0",  "--folio",
		(char *)folio, "--min-map",  (char *)folio, "--", USWAP_BINARY_DIR "/pagemap_probe",
		NULL,	       (char *)plan, NULL,	    NULL};
	char folio_bytes[32], count[16], buf[4096] = "";
	size_t size;
	int i;

	assert_int_equal(uswap_parse_size("folio", folio, &size), 0);
	snprintf(folio_bytes, sizeof(folio_bytes), "%zu", size);
	argv[10] = folio_bytes;
	snprintf(count, sizeof(count), "%zu", nregions);
	argv[12] = count;
	assert_int_equal(truncate(probe_out, 0), 0); /* no "ready" of an earlier probe */
	p->pid = st_spawn(argv, probe_out);
	live_probe = p->pid;
	for (i = 0; i < 3000 && !st_file_has(probe_out, "ready\n"); i++) {
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid)
			break;
		usleep(10000);
	}
	if (!st_file_has(probe_out, "ready\n")) {
		FILE *f = fopen(probe_out, "r");

		if (f) {
			buf[fread(buf, 1, sizeof(buf) - 1, f)] = 0;
			fclose(f);
		}
		fail_msg("pagemap_probe did not get ready: %s", buf);
	}
	FILE *f = fopen(probe_out, "r");

	assert_non_null(f);
	p->starts = calloc(nregions, sizeof(*p->starts));
	assert_non_null(p->starts);
	for (p->nregions = 0; p->nregions < nregions; p->nregions++) {
		assert_int_equal(
			fscanf(f, "region %" SCNxPTR " %zu\n", &p->starts[p->nregions], &p->len),
			2);
		assert_int_equal(p->len, strlen(plan) * size);
	}
	fclose(f);
	p->start = p->starts[0];
	snprintf(p->spid, sizeof(p->spid), "%d", (int)p->pid);
	snprintf(p->saddr, sizeof(p->saddr), "0x%" PRIxPTR, p->start);
}

static int probe_teardown(void **state)
{
	(void)state;
	if (live_probe > 0) {
		kill(live_probe, SIGKILL);
		st_wait(live_probe, 30);
	}
	live_probe = 0;
	return 0;
}

static void probe_start(struct probe *p, const char *folio, const char *plan)
{
	probe_start_n(p, folio, plan, 1);
}

static void probe_stop(struct probe *p)
{
	kill(p->pid, SIGKILL);
	st_wait(p->pid, 30);
	live_probe = 0;
	free(p->starts);
}

/* ---- reading the command's output ---- */

static char *file_read(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);

	assert_non_null(f);
	assert_non_null(buf);
	for (;;) {
		n += fread(buf + n, 1, cap - 1 - n, f);
		if (n < cap - 1)
			break;
		cap *= 2;
		buf = realloc(buf, cap);
		assert_non_null(buf);
	}
	fclose(f);
	buf[n] = 0;
	return buf;
}

/* uswap pagemap with args; @return its exit status, output in out_path. */
static int pagemap_run(const char *const *args)
{
	char *argv[16] = {USWAP_BIN, "pagemap"};
	int n = 2;

	while (*args)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	return st_run(argv, out_path, 120);
}

/* The number after "key": within section ("pages" or "bytes") of obj. */
static uint64_t json_number(const char *obj, const char *section, const char *key)
{
	char pat[64];
	const char *at;

	snprintf(pat, sizeof(pat), "\"%s\": {", section);
	at = strstr(obj, pat);
	assert_non_null(at);
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	at = strstr(at, pat);
	assert_non_null(at);
	return strtoull(at + strlen(pat), NULL, 10);
}

static void json_must_parse(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "python3 -c 'import json, sys; json.load(open(sys.argv[1]))' %s",
		 path);
	if (system(cmd) != 0)
		fail_msg("uswap pagemap --json printed something that is not JSON (or python3, "
			 "which CI installs, is missing): %s",
			 path);
}

/* The JSON object of the region at start must match the model. */
static void json_region_check(const char *json, const struct probe *p, const struct model *m,
			      size_t folio)
{
	char pat[64];
	const char *obj, *map;
	size_t nf = p->len / folio;

	snprintf(pat, sizeof(pat), "{\"start\": \"0x%" PRIxPTR "\"", p->start);
	obj = strstr(json, pat);
	if (!obj)
		fail_msg("region %s is not in the JSON: %.400s", p->saddr, json);
	map = strstr(obj, "\"map\": \"");
	assert_non_null(map);
	map += 8;
	if (strncmp(map, m->map, nf) || map[nf] != '"')
		fail_msg("map of region %s:\n got      %.*s\n expected %s", p->saddr, (int)nf, map,
			 m->map);
	assert_int_equal(json_number(obj, "pages", "pinned"), 0);
	for (int s = 0; s < S_COUNT; s++) {
		uint64_t got = json_number(obj, "pages", state_key[s]);

		if (got != m->pages[s])
			fail_msg("region %s: %s pages %llu, expected %llu", p->saddr, state_key[s],
				 (unsigned long long)got, (unsigned long long)m->pages[s]);
		assert_int_equal(json_number(obj, "bytes", state_key[s]), m->pages[s] * PAGE);
	}
	assert_int_equal(strtoull(strstr(obj, "\"folios\": ") + 10, NULL, 10), nf);
	assert_int_equal(strtoull(strstr(obj, "\"split_folios\": ") + 16, NULL, 10), m->split);
	assert_int_equal(strtoull(strstr(obj, "\"size\": ") + 8, NULL, 10), p->len);
}

/* The total of a map of n regions of model m. */
static void json_total_check(const char *json, const struct model *m, size_t n)
{
	const char *total = strstr(json, "\"total\": {");

	assert_non_null(total);
	assert_int_equal(strtoull(strstr(total, "\"regions\": ") + 11, NULL, 10), n);
	for (int s = 0; s < S_COUNT; s++) {
		assert_int_equal(json_number(total, "pages", state_key[s]), n * m->pages[s]);
		assert_int_equal(json_number(total, "bytes", state_key[s]), n * m->pages[s] * PAGE);
	}
}

/* The text of --region with --width: wrapped map, header, legend, totals. */
static void text_check(const struct probe *p, const struct model *m, size_t folio, unsigned width)
{
	char w[16], *text, *line, *save = NULL, header[128], map[8192] = "";
	const char *args[] = {"--region", p->saddr, "--width", w, p->spid, NULL};
	size_t nf = p->len / folio, lines = 0;
	bool header_seen = false;

	snprintf(w, sizeof(w), "%u", width);
	assert_int_equal(pagemap_run(args), 0);
	text = file_read(out_path);
	snprintf(header, sizeof(header), "region 0x%" PRIxPTR "-0x%" PRIxPTR ": ", p->start,
		 p->start + p->len);
	for (const char *c = "#cs0f.+"; *c; c++) {
		char legend[8];

		snprintf(legend, sizeof(legend), "'%c' ", *c);
		assert_non_null(strstr(text, legend));
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		uintptr_t at;
		char chars[8192];

		header_seen |= !strncmp(line, header, strlen(header));
		if (sscanf(line, "  0x%" SCNxPTR "  %8191s", &at, chars) == 2) {
			/* each line starts with the address of its first folio */
			assert_int_equal(at, p->start + strlen(map) * folio);
			assert_true(strlen(chars) <= width);
			strcat(map, chars);
			lines++;
		}
	}
	assert_true(header_seen);
	assert_string_equal(map, m->map);
	assert_int_equal(lines, (nf + width - 1) / width);
	free(text);
	/* the region's line of pages per state */
	{
		char want[256];
		int at = snprintf(want, sizeof(want), "  pages:");

		for (int s = 0; s < S_COUNT; s++)
			at += snprintf(want + at, sizeof(want) - (size_t)at, " %c %llu",
				       "#cs0f."[s], (unsigned long long)m -> pages[s]);
		snprintf(want + at, sizeof(want) - (size_t)at,
			 "; pinned 0, shared 0, split folios %llu\n", (unsigned long long)m->split);
		if (!st_file_has(out_path, want))
			fail_msg("no line \"%s\" in the text", want);
	}
	/* totals: "  s swapped  N pages  B bytes" */
	for (int s = 0; s < S_COUNT; s++) {
		char want[128];
		regex_t re;

		snprintf(want, sizeof(want), " %s +%llu pages +%llu bytes", state_key[s],
			 (unsigned long long)m->pages[s], (unsigned long long)(m->pages[s] * PAGE));
		text = file_read(out_path);
		assert_int_equal(regcomp(&re, want, REG_EXTENDED | REG_NOSUB), 0);
		if (regexec(&re, text, 0, NULL, 0))
			fail_msg("no line \"%s\" in:\n%s", want, text);
		regfree(&re);
		free(text);
	}
}

static char *plan_make(size_t nf)
{
	static const char base[] = "wwooiirrzzZZffddhhmm.......wowo.i.f";
	char *plan = malloc(nf + 1);

	assert_non_null(plan);
	for (size_t i = 0; i < nf; i++)
		plan[i] = base[i % (sizeof(base) - 1)];
	plan[nf] = 0;
	return plan;
}

static void scenario(const char *folio_text, size_t folio, size_t nf, unsigned width)
{
	struct probe p;
	char *plan = plan_make(nf), *json;
	struct model m = model_of(plan, (unsigned)(folio / PAGE));
	const char *all[] = {"--json", NULL, NULL},
		   *one[] = {"--json", "--region", NULL, NULL, NULL};
	uint64_t v;

	probe_start(&p, folio_text, plan);
	all[1] = p.spid;
	one[2] = p.saddr;
	one[3] = p.spid;
	/* the shim gave the program's MADV_PAGEOUT calls to uswap */
	assert_true(st_counter(p.pid, "shim_madv_pageout", &v));
	assert_true(v > 0);

	assert_int_equal(pagemap_run(all), 0);
	json_must_parse(out_path);
	json = file_read(out_path);
	json_region_check(json, &p, &m, folio);
	assert_int_equal(strtoull(strstr(json, "\"folio_size\": ") + 14, NULL, 10), folio);
	free(json);

	/* one region: the total is that region's */
	assert_int_equal(pagemap_run(one), 0);
	json_must_parse(out_path);
	json = file_read(out_path);
	json_region_check(json, &p, &m, folio);
	json_total_check(json, &m, 1);
	free(json);
	text_check(&p, &m, folio, width);
	probe_stop(&p);
	free(plan);
	free(m.map);
}

static void test_map_matches_the_model_64k(void **state)
{
	(void)state;
	/* 600 folios of 16 pages: 9600 pages, more than one query chunk */
	scenario("64K", 64 << 10, 600, 64);
}

static void test_map_matches_the_model_16k(void **state)
{
	(void)state;
	scenario("16K", 16 << 10, 70, 9);
}

/* More regions than one list reply holds (QUERY_MAX_REGIONS): every one of
 * them in the map, each as the model says, and the total of them all. */
static void test_more_regions_than_one_reply(void **state)
{
	const size_t n = QUERY_MAX_REGIONS + 44;
	const char *plan = "wo.i";
	struct model m = model_of(plan, 16);
	const char *args[] = {"--json", NULL, NULL};
	struct probe p;
	char *json;

	(void)state;
	probe_start_n(&p, "64K", plan, n);
	args[1] = p.spid;
	assert_int_equal(pagemap_run(args), 0);
	json_must_parse(out_path);
	json = file_read(out_path);
	for (size_t i = 0; i < n; i++) {
		struct probe one = p;

		one.start = p.starts[i];
		snprintf(one.saddr, sizeof(one.saddr), "0x%" PRIxPTR, one.start);
		json_region_check(json, &one, &m, 64 << 10);
	}
	json_total_check(json, &m, n);
	free(json);
	probe_stop(&p);
	free(m.map);
}

/* uswap pagemap with args must exit with status and say text. */
static void pagemap_must_say(const char *const *args, int status, const char *text)
{
	int rc = pagemap_run(args);

	if (rc != status || !st_file_has(out_path, text)) {
		char *out = file_read(out_path);

		fail_msg("uswap pagemap %s ...: exit %d, expected %d with \"%s\"; it said:\n%s",
			 args[0] ? args[0] : "", rc, status, text, out);
	}
}

static void test_bad_arguments(void **state)
{
	struct probe p;
	char *plan = plan_make(20);

	(void)state;
	probe_start(&p, "64K", plan);
	pagemap_must_say((const char *[]){NULL}, 2, "usage: uswap pagemap");
	pagemap_must_say((const char *[]){"--width", "0", p.spid, NULL}, 2,
			 "--width \"0\" is not allowed: use 1 to 4096");
	pagemap_must_say((const char *[]){"--width", "4097", p.spid, NULL}, 2, "\"4097\"");
	pagemap_must_say((const char *[]){"--width", "12x", p.spid, NULL}, 2, "\"12x\"");
	pagemap_must_say((const char *[]){p.spid, "--width", NULL}, 2, "--width needs a value");
	pagemap_must_say((const char *[]){"--region", "0xZZ", p.spid, NULL}, 2,
			 "--region \"0xZZ\" is not an address");
	pagemap_must_say((const char *[]){"--region", "-1", p.spid, NULL}, 2, "\"-1\"");
	pagemap_must_say((const char *[]){"--region", p.saddr, "--all", p.spid, NULL}, 2,
			 "exclude each other");
	pagemap_must_say((const char *[]){"abc", NULL}, 2, "PID \"abc\" is not a process id");
	pagemap_must_say((const char *[]){"0", NULL}, 2, "PID \"0\"");
	pagemap_must_say((const char *[]){"--frob", p.spid, NULL}, 2, "unexpected \"--frob\"");
	pagemap_must_say((const char *[]){p.spid, "12", NULL}, 2, "unexpected \"12\"");
	/* well-formed, but nothing there */
	pagemap_must_say((const char *[]){"--region", "0x1000", p.spid, NULL}, 1,
			 "has no managed region that contains --region 0x1000");
	pagemap_must_say((const char *[]){"4000000", NULL}, 1,
			 "process 4000000 serves no uswap pagemap");
	/* the same region by any address inside it, 0x or not */
	{
		char inside[32];
		const char *args[] = {"--json", "--region", inside, p.spid, NULL};

		snprintf(inside, sizeof(inside), "%" PRIxPTR, p.start + p.len - 1);
		pagemap_must_say(args, 0, p.saddr);
	}
	pagemap_must_say((const char *[]){"--help", NULL}, 0, "--width N");
	probe_stop(&p);
	free(plan);
}

/* Another user gets nothing, and is told why. */
static void test_other_users_are_refused(void **state)
{
	struct probe p;
	char *plan = plan_make(20);
	pid_t other;

	(void)state;
	probe_start(&p, "64K", plan);
	assert_int_equal(geteuid(), 0); /* the tests run as root (userfaultfd) */
	other = fork();
	if (other == 0) {
		int fd = open(out_path, O_WRONLY | O_TRUNC);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(3);
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(3);
		execl(USWAP_BIN, USWAP_BIN, "pagemap", p.spid, (char *)NULL);
		_exit(4);
	}
	assert_int_equal(st_wait(other, 60), 1);
	assert_true(st_file_has(out_path, "only its own user and root may read its pagemap"));
	probe_stop(&p);
	free(plan);
}

/* A socket of ours under an abstract name made from our pid. */
static int listen_as(int type, const char *fmt)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, fmt, (int)getpid());

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)),
			 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* A shim of a later protocol version: it answers every request with its
 * version and EPROTONOSUPPORT, as query_proto.h asks of every version. */
static void *future_shim(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd = accept(lfd, NULL, NULL);
	struct query_request req;
	struct query_reply rep = {
		QUERY_MAGIC, QUERY_VERSION + 1, QUERY_REGIONS, -EPROTONOSUPPORT, 4096, 65536, 0};

	if (fd >= 0 && recv(fd, &req, sizeof(req), 0) > 0)
		send(fd, &rep, sizeof(rep), MSG_NOSIGNAL);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void test_version_mismatch_client_side(void **state)
{
	char me[16], want[128];
	pthread_t t;
	int sfd, qfd;

	(void)state;
	snprintf(me, sizeof(me), "%d", (int)getpid());
	/* a shim older than the query socket serves only the counters */
	sfd = listen_as(SOCK_STREAM, "uswap/%d");
	pagemap_must_say(
		(const char *[]){me, NULL}, 1,
		"runs an older uswap shim: it serves counters (uswap stat) but no pagemap");
	/* a newer shim names its version */
	qfd = listen_as(SOCK_SEQPACKET, QUERY_SOCKET_FMT);
	assert_int_equal(pthread_create(&t, NULL, future_shim, (void *)(intptr_t)qfd), 0);
	snprintf(want, sizeof(want),
		 "speaks query protocol version %u; this uswap speaks version %u",
		 QUERY_VERSION + 1, QUERY_VERSION);
	pagemap_must_say((const char *[]){me, NULL}, 1, want);
	pthread_join(t, NULL);
	close(qfd);
	close(sfd);
}

/* One request to the probe's query socket, as a client of another version
 * or a broken one would send it; the reply and its message into rep/text. */
static void query_raw(int fd, uint32_t version, uint32_t op, uint64_t addr, uint64_t npages,
		      struct query_reply *rep, char *text, size_t cap)
{
	struct query_request req = {QUERY_MAGIC, version, op, 0, addr, npages};
	static unsigned char buf[sizeof(struct query_reply) + QUERY_MAX_PAGES * 8];
	ssize_t n;

	assert_int_equal(send(fd, &req, sizeof(req), 0), sizeof(req));
	n = recv(fd, buf, sizeof(buf), 0);
	assert_true(n >= (ssize_t)sizeof(*rep));
	memcpy(rep, buf, sizeof(*rep));
	text[0] = 0;
	if (rep->status)
		snprintf(text, cap, "%.*s", (int)(n - (ssize_t)sizeof(*rep)), buf + sizeof(*rep));
}

static int query_connect_raw(pid_t pid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, QUERY_SOCKET_FMT, (int)pid);

	assert_true(fd >= 0);
	assert_int_equal(
		connect(fd, (struct sockaddr *)&sa,
			(socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)),
		0);
	return fd;
}

static void test_version_mismatch_server_side(void **state)
{
	struct probe p;
	char *plan = plan_make(20), text[512];
	struct query_reply rep;
	int fd;

	(void)state;
	probe_start(&p, "64K", plan);
	fd = query_connect_raw(p.pid);
	/* the bounds of a request */
	query_raw(fd, QUERY_VERSION, QUERY_PAGEMAP, p.start, 0, &rep, text, sizeof(text));
	assert_int_equal(rep.status, -EINVAL);
	assert_non_null(strstr(text, "of 0 pages: ask for 1 to 8192"));
	query_raw(fd, QUERY_VERSION, QUERY_PAGEMAP, p.start, QUERY_MAX_PAGES + 1, &rep, text,
		  sizeof(text));
	assert_int_equal(rep.status, -EINVAL);
	assert_non_null(strstr(text, "8193"));
	query_raw(fd, QUERY_VERSION, 7, p.start, 1, &rep, text, sizeof(text));
	assert_int_equal(rep.status, -EINVAL);
	assert_non_null(strstr(text, "unknown query 7"));
	query_raw(fd, QUERY_VERSION, QUERY_PAGEMAP, p.start + p.len - PAGE, 2, &rep, text,
		  sizeof(text));
	assert_int_equal(rep.status, -EINVAL);
	assert_non_null(strstr(text, "not inside one region"));
	/* the connection still serves: the region list has the probe's region */
	query_raw(fd, QUERY_VERSION, QUERY_REGIONS, p.start, 0, &rep, text, sizeof(text));
	assert_int_equal(rep.status, 0);
	assert_true(rep.count >= 1);
	assert_int_equal(rep.folio_size, 64 << 10);
	/* an old or newer client: the reply names both versions, then the end */
	query_raw(fd, QUERY_VERSION + 98, QUERY_REGIONS, 0, 0, &rep, text, sizeof(text));
	assert_int_equal(rep.magic, QUERY_MAGIC);
	assert_int_equal(rep.version, QUERY_VERSION);
	assert_int_equal(rep.status, -EPROTONOSUPPORT);
	assert_non_null(strstr(text, "version 99; this process's uswap shim speaks version 1"));
	assert_int_equal(recv(fd, text, sizeof(text), 0), 0);
	close(fd);
	probe_stop(&p);
	free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_map_matches_the_model_64k, probe_teardown),
		cmocka_unit_test_teardown(test_map_matches_the_model_16k, probe_teardown),
		cmocka_unit_test_teardown(test_more_regions_than_one_reply, probe_teardown),
		cmocka_unit_test_teardown(test_bad_arguments, probe_teardown),
		cmocka_unit_test_teardown(test_other_users_are_refused, probe_teardown),
		cmocka_unit_test_teardown(test_version_mismatch_client_side, probe_teardown),
		cmocka_unit_test_teardown(test_version_mismatch_server_side, probe_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

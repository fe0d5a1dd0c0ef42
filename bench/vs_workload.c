/* SPDX-License-Identifier: MIT */
/*
 * vs_workload: the program bench/vs_kernel.sh runs twice, once on plain
 * memory in a memory cgroup over zram swap (--mode kernel) and once on
 * memory managed by uswap under the same budget (--mode uswap), on the same
 * data and the same access sequence.  One run, one JSON object on stdout.
 *
 *   vs_workload --mode kernel|uswap [--size 1G] [--limit 256M] [--codec lz4]
 *               [--folio 64K] [--thp] [--pageout-only] [--seed N]
 *               [--zram /sys/block/zram0 | --swapfile PATH] [--store URI]
 *               [--no-swapcache] [--no-adapt] [--recompress LEVEL]
 *
 * Budget mode (the default), phases in order:
 *   fill        write every page once with the realistic page mix
 *   seq_read    read every page in order
 *   rand_read   read SIZE/4 KiB/4 random pages
 *   rand_write  update one word in each of as many random pages
 *   zipf_mix    as many zipf-skewed accesses (s = 1), 80% reads, 20% writes
 *   fork_read   fork; the child reads every page once, then exits
 * Pageout-only mode (--pageout-only; no budget): fill, pageout (MADV_PAGEOUT
 * or USWAP_ADV_PAGEOUT of everything), touch (read every page once).
 * With --recompress LEVEL (uswap; idle recompression at that level, see
 * docs/ARCHITECTURE.md), the pageout phase is followed by a wait until the
 * recompressor has seen every stored object (or its counters have not
 * moved for 30 s): a second memory snapshot, "after_recompress", taken 1 s
 * later (the store is compacted at the end of the pass), and
 * "recompress_seconds", the time from the end of the pageout to the last
 * object recompressed.
 *
 * A read hashes the whole page and checks it against an independent model
 * of what the page must hold (pagegen's content plus the increments this
 * program made, kept outside the measured memory); the run fails when any
 * page reads wrong.  The kernel mode's memory figures come from zram's
 * mm_stat (--zram), or from the Used column of a swap file's line in
 * /proc/swaps (--swapfile: bytes on disk, "store_disk_bytes"); uswap's from
 * its counters (with a file store, --store file:DIR, its pool_bytes are
 * bytes of the file: "store_disk_bytes").  Not a test: figures never fail
 * it.
 *
 * With VS_PHASE_TIMES set, each phase's start and end (CLOCK_MONOTONIC
 * seconds) go to stderr, to profile one phase:
 *   VS_PHASE_TIMES=1 perf record -k CLOCK_MONOTONIC -a -g -- build/vs_workload ...
 *   perf report --time START,END
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pagegen.h"
#include "uswap.h"

#define PAGE 4096ul
#define WORDS (PAGE / sizeof(uint64_t))
#define WRITE_PERCENT 20 /* of the zipf mix */

enum phase { PH_FILL, PH_SEQ, PH_RAND_READ, PH_RAND_WRITE, PH_ZIPF, PH_FORK,
	     PH_PAGEOUT, PH_TOUCH, PH_N };
static const char *const phase_names[PH_N] = { "fill",     "seq_read", "rand_read", "rand_write",
					       "zipf_mix", "fork_read", "pageout",  "touch" };

struct opts {
	int uswap;            /* 0 = kernel */
	int thp;              /* kernel: MADV_HUGEPAGE (mTHP as sysfs allows) */
	int pageout_only;
	size_t size;
	struct uswap_config cfg;
	uint64_t seed;
	const char *zram;
	const char *swapfile;
	int disk; /* the memory figures are bytes on disk, not in RAM */
};

/* What the measured memory must hold: the model, in unmanaged memory. */
struct model {
	size_t pages;
	uint64_t seed;
	uint64_t *hash;   /* expected hash of each page */
	uint32_t *incs;   /* increments applied to the page's update word */
	uint8_t *dirty;   /* written in the current phase: hash not refreshed yet */
};

struct phase_result {
	int ran;
	uint64_t accesses;
	double seconds;
	uint64_t faults, majflt; /* kernel: page faults, major ones (from the swap);
				    uswap: its faults, those not first touch */
	uint64_t handler_ns;     /* uswap: time its handlers spent on them */
	uint64_t ctr[4];         /* uswap: phase_counters, during the phase */
};

/* uswap's counters reported per phase: evictions on the fault path and by
 * the background thread, folios read ahead, and faults that found their
 * folio already resident (most often: met readahead in progress). */
static const char *const phase_counters[4] = { "reclaim_direct", "reclaim_background",
					       "readahead_folios", "faults_stale" };

struct mem_snapshot {
	int ok;
	uint64_t v[9]; /* zram mm_stat, or uswap's figures (see mem_print) */
};

struct run {
	struct opts o;
	struct model m;
	uswap_t *u;
	char *mem;
	struct phase_result ph[PH_N];
	struct mem_snapshot after_fill, after_pageout, after_recompress, at_end;
	double recompress_seconds;
	uint64_t wrong;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static uint64_t stat_of(uswap_t *u, const char *n)
{
	uint64_t v = 0;

	uswap_stat(u, n, &v);
	return v;
}

/* The word a write to page p updates (fixed per page, so the model is a
 * count). */
static size_t update_word(size_t p)
{
	return (p * 7 + 3) % WORDS;
}

static uint64_t model_hash(const struct model *m, size_t p, uint64_t *buf)
{
	pagegen_fill(buf, m->seed, p, 0);
	buf[update_word(p)] += m->incs[p];
	return pagegen_hash(buf);
}

/* Refresh the expected hashes of the pages written in the last phase. */
static void model_refresh(struct model *m)
{
	uint64_t buf[WORDS];
	size_t p;

	for (p = 0; p < m->pages; p++) {
		if (m->dirty[p]) {
			m->hash[p] = model_hash(m, p, buf);
			m->dirty[p] = 0;
		}
	}
}

static void page_read(struct run *r, size_t p)
{
	uint64_t h = pagegen_hash(r->mem + p * PAGE);

	if (!r->m.dirty[p] && h != r->m.hash[p])
		r->wrong++;
}

static void page_write(struct run *r, size_t p)
{
	((volatile uint64_t *)(void *)(r->mem + p * PAGE))[update_word(p)]++;
	r->m.incs[p]++;
	r->m.dirty[p] = 1;
}

/* Zipf (s = 1) ranks by inversion of the continuous law; rank 0 hottest.
 * Ranks are spread over the region by a multiplier prime to the page count,
 * so hot pages are not neighbours. */
static size_t zipf_page(uint64_t *rng, size_t pages, size_t mult)
{
	size_t rank = (size_t)pow((double)pages, rng_unit(rng)) - 1;

	if (rank >= pages)
		rank = pages - 1;
	return (size_t)(((unsigned __int128)rank * mult) % pages);
}

static size_t gcd(size_t a, size_t b)
{
	while (b) {
		size_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* phase_counters now (zeros for the kernel). */
static void counters_now(struct run *r, uint64_t out[4])
{
	for (int i = 0; i < 4; i++)
		out[i] = r->u ? stat_of(r->u, phase_counters[i]) : 0;
}

static void faults_now(struct run *r, uint64_t *faults, uint64_t *majflt, uint64_t *ns)
{
	struct rusage ru;

	if (r->u) {
		*faults = stat_of(r->u, "faults");
		*majflt = *faults - stat_of(r->u, "first_touch_folios");
		*ns = stat_of(r->u, "fault_ns_total");
		return;
	}
	getrusage(RUSAGE_SELF, &ru);
	*faults = (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
	*majflt = (uint64_t)ru.ru_majflt;
	*ns = 0;
}

/* The Used column (KiB) of path's line in /proc/swaps, as v[0] in bytes. */
static void swapfile_used(const char *path, struct mem_snapshot *s)
{
	char line[4200], name[4096], type[64];
	uint64_t size, used;
	FILE *f = fopen("/proc/swaps", "r");

	if (!f) {
		fprintf(stderr, "vs_workload: cannot read /proc/swaps: %s\n", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) /* the heading first: no match */
		if (sscanf(line, "%4095s %63s %" SCNu64 " %" SCNu64, name, type, &size, &used) == 4 &&
		    !strcmp(name, path)) {
			s->v[0] = used << 10;
			s->ok = 1;
		}
	fclose(f);
	if (!s->ok)
		fprintf(stderr, "vs_workload: %s is not in /proc/swaps\n", path);
}

static void mem_snapshot(struct run *r, struct mem_snapshot *s)
{
	char path[512];
	FILE *f;

	memset(s, 0, sizeof(*s));
	if (r->u) {
		static const char *const names[] = { "stored_bytes", "orig_bytes", "pool_bytes",
						     "resident_bytes", "meta_bytes",
						     "zero_pages_out", "swapcache_pages" };
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			s->v[i] = stat_of(r->u, names[i]);
		s->ok = 1;
		return;
	}
	if (r->o.swapfile) {
		swapfile_used(r->o.swapfile, s);
		return;
	}
	if (!r->o.zram)
		return;
	snprintf(path, sizeof(path), "%s/mm_stat", r->o.zram);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "vs_workload: cannot read %s: %s\n", path, strerror(errno));
		return;
	}
	s->ok = fscanf(f, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
			  " %" SCNu64 " %" SCNu64 " %" SCNu64,
		       &s->v[0], &s->v[1], &s->v[2], &s->v[3], &s->v[4], &s->v[5], &s->v[6],
		       &s->v[7], &s->v[8]) >= 6;
	fclose(f);
}

static void mem_print(const struct run *r, const char *name, const struct mem_snapshot *s,
		      int comma)
{
	if (!s->ok) {
		printf("\"%s\": null%s", name, comma ? ", " : "");
		return;
	}
	if (r->u)
		printf("\"%s\": {\"stored_bytes\": %" PRIu64 ", \"orig_bytes\": %" PRIu64
		       ", \"%s\": %" PRIu64 ", \"resident_bytes\": %" PRIu64
		       ", \"meta_bytes\": %" PRIu64 ", \"zero_pages\": %" PRIu64
		       ", \"swapcache_pages\": %" PRIu64 "}%s",
		       name, s->v[0], s->v[1], r->o.disk ? "store_disk_bytes" : "store_mem_bytes",
		       s->v[2], s->v[3], s->v[4], s->v[5], s->v[6], comma ? ", " : "");
	else if (r->o.swapfile) /* uncompressed: what is stored is what is used */
		printf("\"%s\": {\"stored_bytes\": %" PRIu64 ", \"orig_bytes\": %" PRIu64
		       ", \"store_disk_bytes\": %" PRIu64 "}%s",
		       name, s->v[0], s->v[0], s->v[0], comma ? ", " : "");
	else /* zram mm_stat: orig compr mem_used_total limit max same compacted huge */
		printf("\"%s\": {\"stored_bytes\": %" PRIu64 ", \"orig_bytes\": %" PRIu64
		       ", \"store_mem_bytes\": %" PRIu64 ", \"same_pages\": %" PRIu64
		       ", \"huge_pages\": %" PRIu64 "}%s",
		       name, s->v[1], s->v[0], s->v[2], s->v[5], s->v[7], comma ? ", " : "");
}

/* The child of fork_read: read every page, report the pages read wrong
 * and its own faults on fd. */
static void fork_child(struct run *r, int fd)
{
	uint64_t out[8] = { 0 }, f0, mj0, ns0, c0[4];
	size_t p;

	/* the child's own faults: its rusage starts at zero, its copy of
	 * uswap's counters at the parent's values */
	faults_now(r, &f0, &mj0, &ns0);
	counters_now(r, c0);
	for (p = 0; p < r->m.pages; p++)
		page_read(r, p);
	out[0] = r->wrong;
	faults_now(r, &out[1], &out[2], &out[3]);
	counters_now(r, &out[4]);
	out[1] -= f0;
	out[2] -= mj0;
	out[3] -= ns0;
	for (int i = 0; i < 4; i++)
		out[4 + i] -= c0[i];
	if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out))
		_exit(3);
	_exit(0);
}

static int phase_fork(struct run *r, struct phase_result *res)
{
	uint64_t after[8];
	int pfd[2], status;
	pid_t pid;

	if (pipe(pfd)) {
		perror("vs_workload: pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		perror("vs_workload: fork");
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		fork_child(r, pfd[1]);
	}
	close(pfd[1]);
	if (read(pfd[0], after, sizeof(after)) != (ssize_t)sizeof(after)) {
		fprintf(stderr, "vs_workload: the fork_read child reported nothing\n");
		memset(after, 0, sizeof(after));
		after[0] = 1;
	}
	close(pfd[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "vs_workload: the fork_read child failed (status %#x)\n", status);
		r->wrong++;
	}
	r->wrong += after[0];
	res->faults = after[1];
	res->majflt = after[2];
	res->handler_ns = after[3];
	memcpy(res->ctr, &after[4], sizeof(res->ctr));
	return 0;
}

static int page_out_all(struct run *r)
{
	if (r->u)
		return uswap_advise(r->u, r->mem, r->o.size, USWAP_ADV_PAGEOUT);
	return madvise(r->mem, r->o.size, MADV_PAGEOUT) ? -errno : 0;
}

static int phase_run(struct run *r, enum phase ph)
{
	struct phase_result *res = &r->ph[ph];
	size_t pages = r->m.pages, n = pages / 4, i, mult = 2654435761u;
	uint64_t rng = (r->o.seed + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)ph << 32);
	uint64_t f0, mj0, ns0, f1, mj1, ns1, c0[4], c1[4];
	double t0;
	int rc = 0;

	while (gcd(mult, pages) != 1)
		mult += 2;
	res->ran = 1;
	faults_now(r, &f0, &mj0, &ns0);
	counters_now(r, c0);
	t0 = now_s();
	if (getenv("VS_PHASE_TIMES"))
		fprintf(stderr, "phase %s %.6f\n", phase_names[ph], t0);
	switch (ph) {
	case PH_FILL:
		n = pages;
		for (i = 0; i < n; i++)
			pagegen_fill(r->mem + i * PAGE, r->m.seed, i, 0);
		break;
	case PH_SEQ:
	case PH_TOUCH:
		n = pages;
		for (i = 0; i < n; i++)
			page_read(r, i);
		break;
	case PH_RAND_READ:
		for (i = 0; i < n; i++)
			page_read(r, rng_next(&rng) % pages);
		break;
	case PH_RAND_WRITE:
		for (i = 0; i < n; i++)
			page_write(r, rng_next(&rng) % pages);
		break;
	case PH_ZIPF:
		for (i = 0; i < n; i++) {
			size_t p = zipf_page(&rng, pages, mult);

			if (rng_next(&rng) % 100 < WRITE_PERCENT)
				page_write(r, p);
			else
				page_read(r, p);
		}
		break;
	case PH_FORK:
		n = pages;
		rc = phase_fork(r, res);
		break;
	case PH_PAGEOUT:
		n = pages;
		rc = page_out_all(r);
		if (rc)
			fprintf(stderr, "vs_workload: page-out of everything failed: %s\n",
				strerror(-rc));
		break;
	default:
		break;
	}
	res->seconds = now_s() - t0;
	if (getenv("VS_PHASE_TIMES"))
		fprintf(stderr, "phase_end %s %.6f\n", phase_names[ph], now_s());
	res->accesses = n;
	if (ph != PH_FORK) {
		faults_now(r, &f1, &mj1, &ns1);
		res->faults = f1 - f0;
		res->majflt = mj1 - mj0;
		res->handler_ns = ns1 - ns0;
		counters_now(r, c1);
		for (int i = 0; i < 4; i++)
			res->ctr[i] = c1[i] - c0[i];
	}
	model_refresh(&r->m);
	return rc;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->size = 1ul << 30;
	o->cfg.limit = 256ul << 20;
	o->seed = 7;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (!strcmp(a, "--thp")) {
			o->thp = 1;
			continue;
		}
		if (!strcmp(a, "--no-adapt")) {
			o->cfg.flags |= USWAP_CFG_NO_ADAPT;
			continue;
		}
		if (!strcmp(a, "--no-swapcache")) {
			o->cfg.flags |= USWAP_CFG_NO_SWAPCACHE;
			continue;
		}
		if (!strcmp(a, "--pageout-only")) {
			o->pageout_only = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "vs_workload: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (!strcmp(a, "--mode")) {
			if (strcmp(v, "kernel") && strcmp(v, "uswap")) {
				fprintf(stderr, "vs_workload: --mode %s: allowed: kernel, uswap\n", v);
				return -1;
			}
			o->uswap = !strcmp(v, "uswap");
		} else if (!strcmp(a, "--size")) {
			bad = uswap_parse_size(a, v, &o->size);
		} else if (!strcmp(a, "--limit")) {
			bad = uswap_parse_size(a, v, &o->cfg.limit);
		} else if (!strcmp(a, "--folio")) {
			bad = uswap_parse_size(a, v, &o->cfg.folio_size);
		} else if (!strcmp(a, "--codec")) {
			o->cfg.codec = v;
		} else if (!strcmp(a, "--seed")) {
			o->seed = strtoull(v, NULL, 0);
		} else if (!strcmp(a, "--zram")) {
			o->zram = v;
		} else if (!strcmp(a, "--swapfile")) {
			o->swapfile = v;
		} else if (!strcmp(a, "--store")) {
			o->cfg.store = v;
		} else if (!strcmp(a, "--recompress")) {
			char *end;
			unsigned long level = strtoul(v, &end, 10);

			if (!*v || *end || level == 0 || level > 99) {
				fprintf(stderr, "vs_workload: --recompress %s: allowed: a level "
						"(lz4 3 to 12, zstd 2 to 22)\n", v);
				return -1;
			}
			o->cfg.recompress = (unsigned)level;
		} else {
			fprintf(stderr, "vs_workload: unknown option %s\n", a);
			return -1;
		}
		if (bad) {
			fprintf(stderr, "vs_workload: %s\n", uswap_last_error());
			return -1;
		}
	}
	if (o->size < (1ul << 20) || o->size % (1ul << 20)) {
		fprintf(stderr, "vs_workload: --size %zu: allowed: a multiple of 1 MiB\n", o->size);
		return -1;
	}
	if (o->zram && o->swapfile) {
		fprintf(stderr, "vs_workload: --zram and --swapfile: allowed: one of them\n");
		return -1;
	}
	if (o->pageout_only)
		o->cfg.limit = 0;
	if (o->cfg.recompress && (!o->uswap || !o->pageout_only)) {
		fprintf(stderr, "vs_workload: --recompress: allowed with --mode uswap "
				"--pageout-only only\n");
		return -1;
	}
	o->disk = o->swapfile || (o->uswap && o->cfg.store && !strncmp(o->cfg.store, "file:", 5));
	return 0;
}

/* Plain anonymous memory for the kernel mode, aligned to 2 MiB so that
 * large folios of any size can back it. */
static char *kernel_map(const struct opts *o)
{
	size_t align = 2ul << 20;
	char *p = mmap(NULL, o->size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + align - 1) & ~(align - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	munmap(a + o->size, (size_t)(p + align - a));
	if (madvise(a, o->size, o->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) {
		perror("vs_workload: madvise(HUGEPAGE)");
		munmap(a, o->size);
		return NULL;
	}
	return a;
}

static int run_setup(struct run *r)
{
	struct model *m = &r->m;

	m->pages = r->o.size / PAGE;
	m->seed = r->o.seed;
	m->hash = calloc(m->pages, sizeof(*m->hash));
	m->incs = calloc(m->pages, sizeof(*m->incs));
	m->dirty = calloc(m->pages, 1);
	if (!m->hash || !m->incs || !m->dirty) {
		fprintf(stderr, "vs_workload: no memory for the model of %zu pages\n", m->pages);
		return -1;
	}
	for (size_t p = 0; p < m->pages; p++)
		m->dirty[p] = 1;
	model_refresh(m);
	if (r->o.uswap) {
		if (uswap_open(&r->o.cfg, &r->u) || uswap_map(r->u, r->o.size, 0, (void **)&r->mem)) {
			fprintf(stderr, "vs_workload: uswap: %s\n", uswap_last_error());
			return -1;
		}
		return 0;
	}
	r->mem = kernel_map(&r->o);
	if (!r->mem) {
		fprintf(stderr, "vs_workload: cannot map %zu bytes\n", r->o.size);
		return -1;
	}
	return 0;
}

static void print_result(const struct run *r)
{
	const struct opts *o = &r->o;
	int ph, first = 1;

	printf("{\"tool\": \"vs_workload\", \"mode\": \"%s\", \"kind\": \"%s\", \"size\": %zu, "
	       "\"limit\": %zu, \"pages\": %zu, \"seed\": %" PRIu64 ", \"thp\": %d, ",
	       o->uswap ? "uswap" : "kernel", o->pageout_only ? "pageout" : "budget", o->size,
	       o->cfg.limit, r->m.pages, o->seed, o->thp);
	if (r->u)
		printf("\"codec\": \"%s\", \"folio_bytes\": %" PRIu64 ", \"store\": \"%s\", "
		       "\"store_direct_io\": %" PRIu64 ", ",
		       o->cfg.codec ? o->cfg.codec : "lz4", stat_of(r->u, "folio_bytes"),
		       o->cfg.store ? o->cfg.store : "ram", stat_of(r->u, "store_direct_io"));
	printf("\"phases\": {");
	for (ph = 0; ph < PH_N; ph++) {
		const struct phase_result *p = &r->ph[ph];

		if (!p->ran)
			continue;
		printf("%s\"%s\": {\"accesses\": %" PRIu64 ", \"seconds\": %.6f, "
		       "\"us_per_access\": %.4f, \"faults\": %" PRIu64 ", \"majflt\": %" PRIu64
		       ", \"handler_us_per_fault\": %.2f",
		       first ? "" : ", ", phase_names[ph], p->accesses, p->seconds,
		       p->accesses ? p->seconds * 1e6 / (double)p->accesses : 0.0, p->faults,
		       p->majflt, p->faults ? (double)p->handler_ns / 1e3 / (double)p->faults : 0.0);
		for (int i = 0; i < 4; i++)
			printf(", \"%s\": %" PRIu64, phase_counters[i], p->ctr[i]);
		printf("}");
		first = 0;
	}
	printf("}, \"memory\": {");
	mem_print(r, "after_fill", &r->after_fill, 1);
	mem_print(r, "after_pageout", &r->after_pageout, 1);
	if (o->cfg.recompress) {
		mem_print(r, "after_recompress", &r->after_recompress, 1);
		printf("\"recompress_level\": %u, \"recompress_seconds\": %.2f, "
		       "\"recompress_folios\": %" PRIu64 ", \"recompress_kept\": %" PRIu64
		       ", \"recompress_saved_bytes\": %" PRIu64 ", ",
		       o->cfg.recompress, r->recompress_seconds,
		       stat_of(r->u, "recompress_folios"), stat_of(r->u, "recompress_kept"),
		       stat_of(r->u, "recompress_saved_bytes"));
	}
	mem_print(r, "at_end", &r->at_end, 0);
	printf("}");
	if (r->u)
		printf(", \"meta_bytes_per_page\": %.3f, \"uswap\": {\"swapin_pages\": %" PRIu64
		       ", \"swapout_pages\": %" PRIu64 ", \"swapcache_hits\": %" PRIu64
		       ", \"reclaim_direct\": %" PRIu64 ", \"reclaim_background\": %" PRIu64
		       ", \"limit_overshoot_bytes\": %" PRIu64 "}",
		       (double)r->at_end.v[4] / (double)r->m.pages, stat_of(r->u, "swapin_pages"),
		       stat_of(r->u, "swapout_pages"), stat_of(r->u, "swapcache_hits"),
		       stat_of(r->u, "reclaim_direct"), stat_of(r->u, "reclaim_background"),
		       stat_of(r->u, "limit_overshoot_bytes"));
	printf(", \"wrong_pages\": %" PRIu64 "}\n", r->wrong);
}

/* Idle recompression after the pageout: wait until every stored object has
 * been seen (or nothing moved for 30 s); the time is up to the last move. */
static void recompress_wait(struct run *r)
{
	double t0 = now_s(), last = t0;
	uint64_t seen = 0, n;

	for (;;) {
		n = stat_of(r->u, "recompress_folios") + stat_of(r->u, "recompress_kept");
		if (n != seen) {
			seen = n;
			last = now_s();
		}
		if (n >= stat_of(r->u, "store_objects") || now_s() - last >= 30.0)
			break;
		usleep(50000);
	}
	r->recompress_seconds = last - t0;
	sleep(1);
	mem_snapshot(r, &r->after_recompress);
}

int main(int argc, char **argv)
{
	static const enum phase budget_phases[] = { PH_FILL,       PH_SEQ,  PH_RAND_READ,
						    PH_RAND_WRITE, PH_ZIPF, PH_FORK };
	static const enum phase pageout_phases[] = { PH_FILL, PH_PAGEOUT, PH_TOUCH };
	struct run r;
	size_t i, n;
	const enum phase *phases;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	if (parse_args(argc, argv, &r.o))
		return 2;
	if (run_setup(&r))
		return 1;
	phases = r.o.pageout_only ? pageout_phases : budget_phases;
	n = r.o.pageout_only ? 3 : 6;
	for (i = 0; i < n && !rc; i++) {
		rc = phase_run(&r, phases[i]);
		if (phases[i] == PH_FILL)
			mem_snapshot(&r, &r.after_fill);
		if (phases[i] == PH_PAGEOUT) {
			mem_snapshot(&r, &r.after_pageout);
			if (r.o.cfg.recompress)
				recompress_wait(&r);
		}
	}
	mem_snapshot(&r, &r.at_end);
	print_result(&r);
	if (r.wrong)
		fprintf(stderr, "vs_workload: %" PRIu64 " pages read wrong\n", r.wrong);
	if (r.u) {
		uswap_unmap(r.u, r.mem, r.o.size);
		uswap_close(r.u);
	}
	free(r.m.hash);
	free(r.m.incs);
	free(r.m.dirty);
	return rc ? 1 : r.wrong ? 3 : 0;
}

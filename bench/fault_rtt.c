/* SPDX-License-Identifier: MIT */
/*
 * fault_rtt - what one missing-page fault costs on this machine, resolved
 * each way uswap could resolve it, so that the fault path is chosen by
 * numbers (results and the recommendation: docs/FAULT_PATH.md).
 *
 * This program is standalone on purpose: it makes the raw userfaultfd
 * ioctls, madvise() and read()/poll() calls itself instead of going through
 * src/os/os.h, because what it measures is the kernel primitives
 * themselves, and it must keep working while the library is being written.
 * It borrows only the constants of src/os/uffd_compat.h.
 *
 * What it measures (µs per fault; "med/min/max" are over runs of the mean
 * latency of one run, p50/p99 over every single fault of all runs):
 *   A   one handler thread blocked in poll()+read(), nothing pinned
 *   B   handler pinned to the CPU of the (pinned) faulting thread
 *   C1  one handler per CPU, each pinned, all in poll() on the same uffd
 *       (all wake, the losers get EAGAIN); faulting thread unpinned
 *   C1p the same with the faulting thread pinned (compare with B)
 *   C2  the same with two faulting threads at once
 *   D   a handler spinning on non-blocking read() on the other CPU
 *   E   spin-then-block hybrid on the other CPU (spin -s µs, then poll)
 *   F   UFFD_FEATURE_SIGBUS, resolved in the faulting thread's handler
 * for faults resolved by UFFDIO_ZEROPAGE 4 KiB, UFFDIO_COPY 4 KiB and
 * UFFDIO_COPY 64 KiB (one fault maps 16 pages), in sequential and random
 * order over a 256 MiB registered region; B also with UFFDIO_MOVE of
 * prepared pages.  Then:
 *   - faults spaced by 200 us of busy work (isolated faults), and whether
 *     the spinning modes suffer from the faulting vCPU going idle;
 *   - Cx: one handler per CPU, each in its own epoll set with the uffd
 *     added EPOLLEXCLUSIVE (one wake per fault instead of one per handler);
 *   - what mode C's wasted wake costs the other CPU (a busy thread pinned
 *     there counts its lost loop iterations);
 *   - the single primitives: ZEROPAGE/COPY/MOVE in, "write the data, then
 *     install it" with COPY or MOVE, eviction by MOVE out of the region
 *     into a registered staging area, MADV_DONTNEED, and read(2) into a
 *     missing page served through the kernel-mode fault path.
 * A setup whose runs exceed 3 s in total stops after 3 runs (it says so).
 *
 * Usage: fault_rtt [-n faults_per_run] [-r runs] [-s hybrid_spin_us]
 * (defaults 2000 faults, 7 runs, 50 us: about 25 s on an idle 2-vCPU VM).
 * Needs: a userfaultfd that may take kernel-mode faults (CAP_SYS_PTRACE,
 * or vm.unprivileged_userfaultfd=1), 2+ CPUs for the cross-CPU modes.
 * Other load on the machine distorts the numbers: the load average is
 * printed at the start and the end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "os/uffd_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE 4096ul
#define BLK (64ul * 1024)
#define REGION (256ul << 20)
#define MAXCPU 64

/* ------------------------------------------------------------------ */
/* small helpers */

static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	fprintf(stderr, "fault_rtt: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %d: %s)\n", e, strerror(e));
	exit(1);
}

static inline long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static long thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("pause" ::: "memory");
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

static void spin_until(long t)
{
	while (now_ns() < t)
		cpu_relax();
}

static int g_ncpu;
static int g_cpus[MAXCPU]; /* the CPUs we may run on */
static cpu_set_t g_all_cpus;

static void pin_self(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (pthread_setaffinity_np(pthread_self(), sizeof s, &s) != 0)
		die("pin to CPU %d", cpu);
}

static void unpin_self(void)
{
	if (pthread_setaffinity_np(pthread_self(), sizeof g_all_cpus, &g_all_cpus) != 0)
		die("unpin");
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s; /* xorshift64* */

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ */
/* the memory under test */

static int g_uffd = -1; /* missing faults of g_region and g_stage */
static char *g_region;	/* REGION bytes, registered MISSING with g_uffd */
static char *g_stage;	/* REGION bytes, registered too: eviction target */
static char *g_pool;	/* REGION bytes, plain anonymous: prepared pages */
static atomic_ulong g_pool_next;
static char *g_src;	   /* BLK bytes, hot source for UFFDIO_COPY */
static char *g_in;	   /* BLK bytes, "decompressor input" */
static char *g_out;	   /* BLK bytes, eviction copy target */
static int g_uffd_sb = -1; /* UFFD_FEATURE_SIGBUS */
static char *g_region_sb;  /* REGION bytes, registered with g_uffd_sb */

static int g_nfaults = 2000, g_runs = 7;
static long g_spin_ns = 50000;

/* Data pattern: byte i of every page is (i * 7 + 1) & 0xff, so the first
 * byte of a copied or moved page is 1 and of a zero page is 0. */
static void fill_pattern(char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (char)(((i & (PAGE - 1)) * 7 + 1) & 0xff);
}

static char *map_anon(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu", len);
	if (madvise(p, len, MADV_NOHUGEPAGE) != 0)
		die("MADV_NOHUGEPAGE");
	return p;
}

static int open_uffd(uint64_t features)
{
	/* No UFFD_USER_MODE_ONLY: a read(2) into a missing page must fault too. */
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = {.api = UFFD_API, .features = features};

	if (fd < 0)
		die("userfaultfd() (root or vm.unprivileged_userfaultfd=1 needed)");
	if (ioctl(fd, UFFDIO_API, &api) != 0)
		die("UFFDIO_API features %#llx", (unsigned long long)features);
	return fd;
}

static void register_missing(int fd, char *p, size_t len)
{
	struct uffdio_register r = {.range = {(unsigned long)p, len},
				    .mode = UFFDIO_REGISTER_MODE_MISSING};

	if (ioctl(fd, UFFDIO_REGISTER, &r) != 0)
		die("UFFDIO_REGISTER");
}

static void discard(char *p, size_t len)
{
	if (madvise(p, len, MADV_DONTNEED) != 0)
		die("MADV_DONTNEED");
}

static void setup_memory(void)
{
	g_uffd = open_uffd(UFFD_FEATURE_MOVE | UFFD_FEATURE_THREAD_ID);
	g_region = map_anon(REGION);
	g_stage = map_anon(REGION);
	g_pool = map_anon(REGION);
	g_region_sb = map_anon(REGION);
	register_missing(g_uffd, g_region, REGION);
	register_missing(g_uffd, g_stage, REGION);
	g_uffd_sb = open_uffd(UFFD_FEATURE_SIGBUS);
	register_missing(g_uffd_sb, g_region_sb, REGION);
	g_src = map_anon(BLK);
	g_in = map_anon(BLK);
	g_out = map_anon(BLK);
	fill_pattern(g_src, BLK);
	fill_pattern(g_in, BLK);
	memset(g_out, 0, BLK);
}

/* ------------------------------------------------------------------ */
/* resolving one fault */

enum op { OP_ZERO4K, OP_COPY4K, OP_COPY64K, OP_MOVE4K, OP_MOVE64K };
static const char *const op_name[] = {"zero4k", "copy4k", "copy64k", "move4k", "move64k"};

static size_t op_len(int op)
{
	return op == OP_COPY64K || op == OP_MOVE64K ? BLK : PAGE;
}

/* Resolve the fault at addr; 0 or -errno.  Async-signal-safe (no errno
 * left changed when it succeeds). */
static int resolve(int uffd, int op, unsigned long addr, bool dontwake)
{
	size_t len = op_len(op);
	unsigned long dst = addr & ~(len - 1);
	int saved = errno;

	for (;;) {
		int r;

		if (op == OP_ZERO4K) {
			struct uffdio_zeropage z = {.range = {dst, len},
						    .mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE
								     : 0};
			r = ioctl(uffd, UFFDIO_ZEROPAGE, &z);
		} else if (op == OP_COPY4K || op == OP_COPY64K) {
			struct uffdio_copy c = {.dst = dst,
						.src = (unsigned long)g_src,
						.len = len,
						.mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0};
			r = ioctl(uffd, UFFDIO_COPY, &c);
		} else {
			unsigned long i =
				atomic_fetch_add_explicit(&g_pool_next, 1, memory_order_relaxed);
			struct uffdio_move m = {.dst = dst,
						.src = (unsigned long)g_pool + i * len,
						.len = len,
						.mode = dontwake ? UFFDIO_MOVE_MODE_DONTWAKE : 0};
			if ((i + 1) * len > REGION)
				return -ENOSPC;
			r = ioctl(uffd, UFFDIO_MOVE, &m);
		}
		if (r == 0)
			break;
		if (errno == EAGAIN)
			continue;
		if (errno == EEXIST) { /* already there (another thread won) */
			struct uffdio_range w = {dst, len};
			ioctl(uffd, UFFDIO_WAKE, &w);
			break;
		}
		return -errno;
	}
	errno = saved;
	return 0;
}

/* ------------------------------------------------------------------ */
/* handler threads */

/* H_EPOLLX: each handler waits in its own epoll set, where the uffd is
 * added with EPOLLEXCLUSIVE: a fault wakes one idle handler only, the
 * first registered one, whatever its CPU. */
enum hkind { H_BLOCK, H_SPIN, H_HYBRID, H_EPOLLX };

struct handler {
	pthread_t tid;
	int uffd, stopfd, cpu, op, epfd;
	enum hkind kind;
	long spin_ns;
	atomic_bool *stop;
	atomic_int ready;
	unsigned long served, eagain, polls, same_cpu, sleeps;
	long cpu_ns;
};

/* The faulting threads publish their tid and current CPU, so that a
 * handler can tell whether it runs on the faulting thread's CPU. */
static atomic_int g_wtid[2], g_wcpu_now[2];

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct uffd_msg msg;
	long t0, last;

	if (h->cpu >= 0)
		pin_self(h->cpu);
	t0 = thread_cpu_ns();
	last = now_ns();
	atomic_store(&h->ready, 1);
	while (!atomic_load_explicit(h->stop, memory_order_relaxed)) {
		ssize_t n;

		if (h->kind == H_EPOLLX) {
			struct epoll_event ev[2];
			int k, stop = 0;

			h->polls++;
			k = epoll_wait(h->epfd, ev, 2, -1);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				die("epoll_wait");
			}
			for (int j = 0; j < k; j++)
				if (ev[j].data.fd == h->stopfd)
					stop = 1;
			if (stop)
				break;
		} else if (h->kind == H_BLOCK ||
			   (h->kind == H_HYBRID && now_ns() - last >= h->spin_ns)) {
			struct pollfd p[2] = {{.fd = h->uffd, .events = POLLIN},
					      {.fd = h->stopfd, .events = POLLIN}};
			h->polls++;
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				die("poll");
			}
			if (p[1].revents)
				break;
			last = now_ns();
		}
		n = read(h->uffd, &msg, sizeof msg);
		if (n != (ssize_t)sizeof msg) {
			if (n < 0 && errno != EAGAIN)
				die("read uffd");
			h->eagain++;
			if (h->kind == H_SPIN || h->kind == H_HYBRID)
				cpu_relax();
			continue;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		if (resolve(h->uffd, h->op, (unsigned long)msg.arg.pagefault.address, false) != 0)
			die("resolve %s at %#llx", op_name[h->op],
			    (unsigned long long)msg.arg.pagefault.address);
		h->served++;
		for (int k = 0; k < 2; k++)
			if ((int)msg.arg.pagefault.feat.ptid == atomic_load(&g_wtid[k]) &&
			    atomic_load(&g_wcpu_now[k]) == sched_getcpu())
				h->same_cpu++;
		if (h->kind == H_HYBRID)
			last = now_ns();
	}
	h->cpu_ns = thread_cpu_ns() - t0;
	{
		struct rusage ru;

		if (getrusage(RUSAGE_THREAD, &ru) == 0)
			h->sleeps = (unsigned long)ru.ru_nvcsw;
	}
	return NULL;
}

struct hset {
	int n;
	int stopfd;
	atomic_bool stop;
	struct handler h[MAXCPU];
};

static void hset_start(struct hset *s, int n, const int *cpus, enum hkind kind, int op)
{
	memset(s, 0, sizeof *s);
	s->n = n;
	atomic_init(&s->stop, false);
	s->stopfd = eventfd(0, EFD_CLOEXEC);
	if (s->stopfd < 0)
		die("eventfd");
	for (int i = 0; i < n; i++) {
		struct handler *h = &s->h[i];

		h->uffd = g_uffd;
		h->stopfd = s->stopfd;
		h->cpu = cpus ? cpus[i] : -1;
		h->op = op;
		h->kind = kind;
		h->spin_ns = g_spin_ns;
		h->stop = &s->stop;
		h->epfd = -1;
		if (kind == H_EPOLLX) { /* registered in order: handler 0 first */
			struct epoll_event eu = {.events = EPOLLIN | EPOLLEXCLUSIVE,
						 .data.fd = g_uffd};
			struct epoll_event es = {.events = EPOLLIN, .data.fd = s->stopfd};

			h->epfd = epoll_create1(EPOLL_CLOEXEC);
			if (h->epfd < 0 || epoll_ctl(h->epfd, EPOLL_CTL_ADD, g_uffd, &eu) != 0 ||
			    epoll_ctl(h->epfd, EPOLL_CTL_ADD, s->stopfd, &es) != 0)
				die("epoll");
		}
		atomic_init(&h->ready, 0);
		if (pthread_create(&h->tid, NULL, handler_main, h) != 0)
			die("pthread_create handler");
	}
	for (int i = 0; i < n; i++)
		while (!atomic_load(&s->h[i].ready))
			usleep(100);
	usleep(3000); /* let the blocking ones reach poll() */
}

static void hset_stop(struct hset *s)
{
	uint64_t one = 1;

	atomic_store(&s->stop, true);
	if (write(s->stopfd, &one, sizeof one) != (ssize_t)sizeof one)
		die("eventfd write");
	for (int i = 0; i < s->n; i++) {
		pthread_join(s->h[i].tid, NULL);
		if (s->h[i].epfd >= 0)
			close(s->h[i].epfd);
	}
	close(s->stopfd);
}

/* ------------------------------------------------------------------ */
/* faulting threads */

struct worker {
	pthread_t tid;
	int cpu;
	int idx;
	const unsigned long *addrs;
	size_t n, stride;
	long gap_ns;
	uint32_t *lat;
	unsigned char expect;
	unsigned long bad;
	long t_start, t_end;
	pthread_barrier_t *bar;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (w->cpu >= 0)
		pin_self(w->cpu);
	atomic_store(&g_wtid[w->idx], (int)gettid());
	pthread_barrier_wait(w->bar);
	w->t_start = now_ns();
	for (size_t i = 0, k = 0; i < w->n; i++, k += w->stride) {
		volatile const unsigned char *p = (volatile const unsigned char *)w->addrs[k];
		long t0, t1;
		unsigned char v;

		atomic_store_explicit(&g_wcpu_now[w->idx], sched_getcpu(), memory_order_relaxed);
		t0 = now_ns();
		v = *p;
		t1 = now_ns();
		w->lat[i] = (uint32_t)(t1 - t0);
		if (v != w->expect)
			w->bad++;
		if (w->gap_ns)
			spin_until(t1 + w->gap_ns);
	}
	w->t_end = now_ns();
	return NULL;
}

/* ------------------------------------------------------------------ */
/* one configuration: handlers + faulting threads, several runs */

struct cfg {
	const char *mode, *desc;
	int op;
	bool rnd;
	int nh;		  /* handlers: 0 = SIGBUS mode */
	int hcpu[MAXCPU]; /* -1 = unpinned */
	enum hkind hkind;
	int nw; /* faulting threads */
	int wcpu[2];
	long gap_ns;
	int nfaults;
	bool filler; /* a SCHED_IDLE busy thread keeps wcpu[0] out of idle */
};

struct result {
	double med, min, max, p50, p99, wall, slow; /* slow: % of faults > 100 us */
	unsigned long served[MAXCPU], eagain[MAXCPU], polls[MAXCPU], same[MAXCPU];
	unsigned long sleeps[MAXCPU];
	long hcpu_ns[MAXCPU];
	unsigned long bad, faults;
	long busy_ns; /* sum of the runs' wall times */
	int runs_cut; /* != 0: stopped after this many runs (3 s per setup) */
};

/* A busy thread on another CPU that counts loop iterations. */
struct victim {
	pthread_t tid;
	int cpu;
	bool sched_idle;
	atomic_ulong count;
	atomic_bool stop;
};

static void *victim_main(void *arg)
{
	struct victim *v = arg;
	unsigned long c = 0;

	pin_self(v->cpu);
	if (v->sched_idle) {
		struct sched_param sp = {.sched_priority = 0};

		if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
			die("SCHED_IDLE");
	}
	while (!atomic_load_explicit(&v->stop, memory_order_relaxed))
		atomic_store_explicit(&v->count, ++c, memory_order_relaxed);
	return NULL;
}

static unsigned *g_perm; /* REGION / PAGE unit indices */
static unsigned long *g_addrs;

static void build_addrs(char *base, int op, bool rnd, size_t n, int run)
{
	size_t len = op_len(op), units = REGION / len;
	uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(run + 1) + len;

	for (size_t i = 0; i < units; i++)
		g_perm[i] = (unsigned)i;
	if (rnd)
		for (size_t i = 0; i < n; i++) { /* partial Fisher-Yates */
			size_t j = i + rng_next(&seed) % (units - i);
			unsigned t = g_perm[i];

			g_perm[i] = g_perm[j];
			g_perm[j] = t;
		}
	for (size_t i = 0; i < n; i++)
		g_addrs[i] = (unsigned long)base + (unsigned long)g_perm[i] * len;
}

static int g_sb_op; /* for the SIGBUS handler */

static void sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (resolve(g_uffd_sb, g_sb_op, (unsigned long)si->si_addr, true) != 0) {
		static const char m[] = "fault_rtt: SIGBUS not resolvable\n";
		if (write(2, m, sizeof m - 1) < 0)
			_exit(2);
		_exit(2);
	}
}

static void run_cfg(const struct cfg *c, struct result *res, struct victim *vic,
		    unsigned long *vic_count, long *vic_ns)
{
	size_t len = op_len(c->op);
	size_t n = (size_t)c->nfaults;
	double means[64];
	uint32_t *all;
	struct hset hs;
	int runs = g_runs > 64 ? 64 : g_runs;
	long wall[64];
	char *base = c->nh ? g_region : g_region_sb;

	struct victim filler;
	long t_cfg = now_ns();

	if (n > REGION / len)
		n = REGION / len;
	n = n / (size_t)c->nw * (size_t)c->nw;
	all = calloc((size_t)runs * n, sizeof *all);
	if (!all)
		die("calloc");
	memset(res, 0, sizeof *res);

	if (c->filler) {
		memset(&filler, 0, sizeof filler);
		filler.cpu = c->wcpu[0];
		filler.sched_idle = true;
		if (pthread_create(&filler.tid, NULL, victim_main, &filler) != 0)
			die("pthread_create filler");
	}
	if (c->nh)
		hset_start(&hs, c->nh, c->hcpu, c->hkind, c->op);
	else
		g_sb_op = c->op;
	for (int r = 0; r < runs; r++) {
		struct worker w[2];
		pthread_barrier_t bar;
		unsigned long vc0 = 0;
		long vt0 = 0, t_start = 0, t_end = 0;
		double sum = 0;

		discard(base, REGION);
		if (c->op == OP_MOVE4K || c->op == OP_MOVE64K) {
			discard(g_pool, REGION);
			fill_pattern(g_pool, n * len); /* the prepared pages */
			atomic_store(&g_pool_next, 0);
		}
		build_addrs(base, c->op, c->rnd, n, r);
		pthread_barrier_init(&bar, NULL, (unsigned)c->nw);
		if (vic) {
			vc0 = atomic_load(&vic->count);
			vt0 = now_ns();
		}
		for (int i = 0; i < c->nw; i++) {
			w[i] = (struct worker){.cpu = c->wcpu[i],
					       .idx = i,
					       .addrs = g_addrs + i,
					       .n = n / (size_t)c->nw,
					       .stride = (size_t)c->nw,
					       .gap_ns = c->gap_ns,
					       .lat = all + (size_t)r * n +
						      (size_t)i * (n / (size_t)c->nw),
					       .expect = c->op == OP_ZERO4K ? 0 : 1,
					       .bar = &bar};
			if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
				die("pthread_create worker");
		}
		for (int i = 0; i < c->nw; i++) {
			pthread_join(w[i].tid, NULL);
			if (i == 0 || w[i].t_start < t_start)
				t_start = w[i].t_start;
			if (i == 0 || w[i].t_end > t_end)
				t_end = w[i].t_end;
			res->bad += w[i].bad;
		}
		if (vic) {
			*vic_count += atomic_load(&vic->count) - vc0;
			*vic_ns += now_ns() - vt0;
		}
		pthread_barrier_destroy(&bar);
		for (size_t i = 0; i < n; i++)
			sum += all[(size_t)r * n + i];
		means[r] = sum / (double)n / 1000.0;
		wall[r] = t_end - t_start;
		res->busy_ns += wall[r];
		res->faults += n;
		/* Bound the total time when the host makes things pathological. */
		if (r >= 2 && now_ns() - t_cfg > 3000000000L) {
			res->runs_cut = r + 1;
			runs = r + 1;
		}
	}
	if (c->filler) {
		atomic_store(&filler.stop, true);
		pthread_join(filler.tid, NULL);
	}
	if (c->nh) {
		hset_stop(&hs);
		for (int i = 0; i < c->nh; i++) {
			res->served[i] = hs.h[i].served;
			res->eagain[i] = hs.h[i].eagain;
			res->polls[i] = hs.h[i].polls;
			res->same[i] = hs.h[i].same_cpu;
			res->sleeps[i] = hs.h[i].sleeps;
			res->hcpu_ns[i] = hs.h[i].cpu_ns;
		}
	}
	qsort(all, (size_t)runs * n, sizeof *all, cmp_u32);
	{
		size_t k = (size_t)runs * n;

		while (k > 0 && all[k - 1] > 100000)
			k--;
		res->slow = 100.0 * (double)((size_t)runs * n - k) / (double)((size_t)runs * n);
	}
	res->p50 = all[(size_t)runs * n / 2] / 1000.0;
	res->p99 = all[(size_t)runs * n * 99 / 100] / 1000.0;
	{
		double wl[64];

		for (int r = 0; r < runs; r++)
			wl[r] = (double)wall[r] / (double)n / 1000.0;
		qsort(wl, (size_t)runs, sizeof wl[0], cmp_dbl);
		res->wall = wl[runs / 2];
	}
	qsort(means, (size_t)runs, sizeof means[0], cmp_dbl);
	res->med = means[runs / 2];
	res->min = means[0];
	res->max = means[runs - 1];
	free(all);
	if (res->bad)
		fprintf(stderr, "fault_rtt: %s %s: %lu faults read wrong data\n", c->mode,
			op_name[c->op], res->bad);
}

static void print_row(const struct cfg *c, const struct result *r)
{
	char note[128] = "";

	if (c->nh && (c->hkind == H_BLOCK || c->hkind == H_EPOLLX)) {
		unsigned long srv = 0, same = 0, sleeps = 0, eagain = 0;

		for (int i = 0; i < c->nh; i++) {
			srv += r->served[i];
			same += r->same[i];
			sleeps += r->sleeps[i];
			eagain += r->eagain[i];
		}
		if (!srv)
			srv = 1;
		snprintf(note, sizeof note,
			 "same-CPU %3.0f%%, handler sleeps/fault %.2f, EAGAIN %.2f",
			 100.0 * (double)same / (double)srv, (double)sleeps / (double)srv,
			 (double)eagain / (double)srv);
	} else if (c->hkind == H_HYBRID && c->nh) {
		snprintf(note, sizeof note, "blocked in poll() per fault %.2f",
			 (double)r->polls[0] / (double)(r->served[0] ? r->served[0] : 1));
	}
	if (r->runs_cut) {
		size_t l = strlen(note);

		snprintf(note + l, sizeof note - l, "%sonly %d runs (3 s)", l ? ", " : "",
			 r->runs_cut);
	}
	printf("%-5s %-44s %-7s %-3s %7.2f %7.2f %7.2f %7.2f %7.2f %5.2f %7.2f  %s\n", c->mode,
	       c->desc, op_name[c->op], c->rnd ? "rnd" : "seq", r->med, r->min, r->max, r->p50,
	       r->p99, r->slow, r->wall, note);
	fflush(stdout);
}

static void print_header(void)
{
	printf("%-5s %-44s %-7s %-3s %7s %7s %7s %7s %7s %5s %7s  %s\n", "mode", "setup", "resolve",
	       "ord", "med", "min", "max", "p50", "p99", "slow%", "wall", "notes");
}

/* ------------------------------------------------------------------ */
/* primitives (section G) */

typedef void (*gfn)(uint32_t *lat, int n, int run);

static void populate_region(char *base, size_t bytes)
{
	for (size_t off = 0; off < bytes; off += BLK) {
		struct uffdio_copy c = {.dst = (unsigned long)base + off,
					.src = (unsigned long)g_src,
					.len = BLK,
					.mode = UFFDIO_COPY_MODE_DONTWAKE};
		if (ioctl(g_uffd, UFFDIO_COPY, &c) != 0)
			die("populate UFFDIO_COPY");
	}
}

#define TIMED(lat_i, stmt)                                                                         \
	do {                                                                                       \
		long t0_ = now_ns();                                                               \
		stmt;                                                                              \
		(lat_i) = (uint32_t)(now_ns() - t0_);                                              \
	} while (0)

static void must(int r, const char *what)
{
	if (r != 0)
		die("%s", what);
}

static void g_zero4k(uint32_t *lat, int n, int run)
{
	(void)run;
	discard(g_region, REGION);
	for (int i = 0; i < n; i++) {
		struct uffdio_zeropage z = {.range = {(unsigned long)g_region + i * PAGE, PAGE}};
		TIMED(lat[i], must(ioctl(g_uffd, UFFDIO_ZEROPAGE, &z), "ZEROPAGE"));
	}
}

static void g_copy(uint32_t *lat, int n, size_t len)
{
	discard(g_region, REGION);
	for (int i = 0; i < n; i++) {
		struct uffdio_copy c = {.dst = (unsigned long)g_region + i * len,
					.src = (unsigned long)g_src,
					.len = len};
		TIMED(lat[i], must(ioctl(g_uffd, UFFDIO_COPY, &c), "COPY"));
	}
}

static void g_copy4k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_copy(lat, n, PAGE);
}

static void g_copy64k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_copy(lat, n, BLK);
}

static void g_move_in(uint32_t *lat, int n, size_t len)
{
	discard(g_region, REGION);
	discard(g_pool, REGION);
	fill_pattern(g_pool, (size_t)n * len);
	for (int i = 0; i < n; i++) {
		struct uffdio_move m = {.dst = (unsigned long)g_region + i * len,
					.src = (unsigned long)g_pool + i * len,
					.len = len};
		TIMED(lat[i], must(ioctl(g_uffd, UFFDIO_MOVE, &m), "MOVE in"));
	}
}

static void g_move4k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_move_in(lat, n, PAGE);
}

static void g_move64k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_move_in(lat, n, BLK);
}

/* "Prepare" = write the page's contents (as the decompressor would), then
 * install it: into a hot buffer + COPY, or into a staging slot + MOVE (the
 * slot is a hole again after each move, so preparing it faults a fresh
 * zeroed page in). */
static void g_prep_copy(uint32_t *lat, int n, size_t len)
{
	discard(g_region, REGION);
	for (int i = 0; i < n; i++) {
		struct uffdio_copy c = {.dst = (unsigned long)g_region + i * len,
					.src = (unsigned long)g_src,
					.len = len};
		TIMED(lat[i], memcpy(g_src, g_in, len);
		      must(ioctl(g_uffd, UFFDIO_COPY, &c), "COPY"));
	}
}

static void g_prep_move(uint32_t *lat, int n, size_t len)
{
	discard(g_region, REGION);
	discard(g_pool, REGION);
	for (int i = 0; i < n; i++) {
		struct uffdio_move m = {.dst = (unsigned long)g_region + i * len,
					.src = (unsigned long)g_pool,
					.len = len};
		TIMED(lat[i], memcpy(g_pool, g_in, len);
		      must(ioctl(g_uffd, UFFDIO_MOVE, &m), "MOVE"));
	}
}

/* The same, but the staging pages are already populated (a recycled page,
 * or a pool refilled in bulk): only the write and the move are timed. */
static void g_prep_move_pooled(uint32_t *lat, int n, size_t len)
{
	discard(g_region, REGION);
	discard(g_pool, REGION);
	must(madvise(g_pool, (size_t)n * len, MADV_POPULATE_WRITE), "MADV_POPULATE_WRITE");
	for (int i = 0; i < n; i++) {
		struct uffdio_move m = {.dst = (unsigned long)g_region + i * len,
					.src = (unsigned long)g_pool + i * len,
					.len = len};
		TIMED(lat[i], memcpy(g_pool + i * len, g_in, len);
		      must(ioctl(g_uffd, UFFDIO_MOVE, &m), "MOVE"));
	}
}

static void g_prep_movep4k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_prep_move_pooled(lat, n, PAGE);
}

static void g_prep_movep64k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_prep_move_pooled(lat, n, BLK);
}

static void g_prep_copy4k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_prep_copy(lat, n, PAGE);
}

static void g_prep_copy64k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_prep_copy(lat, n, BLK);
}

static void g_prep_move4k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_prep_move(lat, n, PAGE);
}

static void g_prep_move64k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_prep_move(lat, n, BLK);
}

/* Refilling a pool of staging pages in bulk: MADV_POPULATE_WRITE of 2 MiB,
 * reported per 4 KiB page. */
static void g_populate(uint32_t *lat, int n, int run)
{
	const size_t chunk = 2ul << 20;

	(void)run;
	discard(g_pool, REGION);
	for (int i = 0; i < n; i++) {
		char *p = g_pool + (size_t)(i % (int)(REGION / chunk)) * chunk;
		long t0;

		if (i && i % (int)(REGION / chunk) == 0)
			discard(g_pool, REGION);
		t0 = now_ns();
		must(madvise(p, chunk, MADV_POPULATE_WRITE), "MADV_POPULATE_WRITE");
		lat[i] = (uint32_t)((now_ns() - t0) / (long)(chunk / PAGE));
	}
}

/* Eviction by UFFDIO_MOVE of populated region pages into the registered
 * staging area (atomically: the region page is missing afterwards). */
static void g_evict_move(uint32_t *lat, int n, size_t len)
{
	discard(g_region, REGION);
	discard(g_stage, REGION);
	populate_region(g_region, (size_t)n * len);
	for (int i = 0; i < n; i++) {
		struct uffdio_move m = {.dst = (unsigned long)g_stage + i * len,
					.src = (unsigned long)g_region + i * len,
					.len = len,
					.mode = UFFDIO_MOVE_MODE_DONTWAKE};
		TIMED(lat[i], must(ioctl(g_uffd, UFFDIO_MOVE, &m), "MOVE out"));
	}
}

static void g_evict_move4k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_evict_move(lat, n, PAGE);
}

static void g_evict_move64k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_evict_move(lat, n, BLK);
}

static void g_dontneed(uint32_t *lat, int n, size_t len, bool copy_out)
{
	discard(g_region, REGION);
	populate_region(g_region, (size_t)n * len);
	for (int i = 0; i < n; i++) {
		char *p = g_region + i * len;

		if (copy_out)
			TIMED(lat[i], memcpy(g_out, p, len); discard(p, len));
		else
			TIMED(lat[i], discard(p, len));
	}
}

static void g_dontneed4k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_dontneed(lat, n, PAGE, false);
}

static void g_dontneed64k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_dontneed(lat, n, BLK, false);
}

static void g_evict_copy64k(uint32_t *lat, int n, int run)
{
	(void)run;
	g_dontneed(lat, n, BLK, true);
}

/* read(2) of 4 KiB from a pipe into a page: present, or missing and served
 * by the mode-C handlers (copy4k) through the kernel-mode fault path. */
static int g_pipe[2] = {-1, -1};
static unsigned long g_read_bad;

static void g_read(uint32_t *lat, int n, bool missing)
{
	discard(g_region, REGION);
	if (!missing)
		populate_region(g_region, (size_t)n * PAGE);
	for (int i = 0; i < n; i++) {
		char *p = g_region + i * PAGE;
		ssize_t got = 0;

		if (write(g_pipe[1], g_in + PAGE, PAGE) != (ssize_t)PAGE)
			die("pipe write");
		TIMED(lat[i], got = read(g_pipe[0], p, PAGE));
		if (got != (ssize_t)PAGE)
			die("read(2) into a %s page returned %zd", missing ? "missing" : "present",
			    got);
		if (memcmp(p, g_in + PAGE, PAGE) != 0)
			g_read_bad++;
	}
}

static void g_read_present(uint32_t *lat, int n, int run)
{
	(void)run;
	g_read(lat, n, false);
}

static void g_read_missing(uint32_t *lat, int n, int run)
{
	(void)run;
	g_read(lat, n, true);
}

static void run_g(const char *name, gfn fn, int n)
{
	int runs = g_runs > 64 ? 64 : g_runs;
	uint32_t *all = calloc((size_t)runs * (size_t)n, sizeof *all);
	double means[64];

	if (!all)
		die("calloc");
	for (int r = 0; r < runs; r++) {
		double sum = 0;

		fn(all + (size_t)r * (size_t)n, n, r);
		for (int i = 0; i < n; i++)
			sum += all[(size_t)r * (size_t)n + (size_t)i];
		means[r] = sum / n / 1000.0;
	}
	qsort(all, (size_t)runs * (size_t)n, sizeof *all, cmp_u32);
	qsort(means, (size_t)runs, sizeof means[0], cmp_dbl);
	printf("G     %-58s %7.2f %7.2f %7.2f %7.2f %7.2f\n", name, means[runs / 2], means[0],
	       means[runs - 1], all[(size_t)runs * (size_t)n / 2] / 1000.0,
	       all[(size_t)runs * (size_t)n * 99 / 100] / 1000.0);
	fflush(stdout);
	free(all);
}

/* ------------------------------------------------------------------ */

#define NORDER 2
static double g_summary[16][6];
static const char *g_summary_name[16];
static int g_nsummary;

static void run_table(struct cfg c, bool summary)
{
	static const int ops[] = {OP_ZERO4K, OP_COPY4K, OP_COPY64K};
	int row = g_nsummary;

	if (summary) {
		g_summary_name[row] = c.mode;
		g_nsummary++;
	}
	for (int o = 0; o < 3; o++)
		for (int rnd = 0; rnd < NORDER; rnd++) {
			struct result r;

			c.op = ops[o];
			c.rnd = rnd;
			run_cfg(&c, &r, NULL, NULL, NULL);
			print_row(&c, &r);
			if (summary)
				g_summary[row][o * 2 + rnd] = r.med;
		}
}

/* Other work on the machine skews everything: say how busy it was. */
static void print_load(const char *when)
{
	char buf[128] = "?";
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (!fgets(buf, sizeof buf, f))
			strcpy(buf, "?\n");
		fclose(f);
	}
	printf("load average %s: %s", when, buf);
}

static void usage(void)
{
	fprintf(stderr, "usage: fault_rtt [-n faults_per_run] [-r runs] [-s hybrid_spin_us]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int opt;
	int cpu0, cpu1;
	struct cfg c;
	long t_begin = now_ns();

	while ((opt = getopt(argc, argv, "n:r:s:h")) != -1) {
		switch (opt) {
		case 'n':
			g_nfaults = atoi(optarg);
			break;
		case 'r':
			g_runs = atoi(optarg);
			break;
		case 's':
			g_spin_ns = atol(optarg) * 1000;
			break;
		default:
			usage();
		}
	}
	if (g_nfaults < 16 || g_runs < 1)
		usage();
	if (sched_getaffinity(0, sizeof g_all_cpus, &g_all_cpus) != 0)
		die("sched_getaffinity");
	for (int i = 0; i < CPU_SETSIZE && g_ncpu < MAXCPU; i++)
		if (CPU_ISSET(i, &g_all_cpus))
			g_cpus[g_ncpu++] = i;
	cpu0 = g_cpus[0];
	cpu1 = g_ncpu > 1 ? g_cpus[1] : -1;
	alarm(600); /* a lost wake-up must not hang the benchmark forever */

	g_perm = malloc(REGION / PAGE * sizeof *g_perm);
	g_addrs = malloc(REGION / PAGE * sizeof *g_addrs);
	if (!g_perm || !g_addrs)
		die("malloc");
	setup_memory();
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = sigbus_handler;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, NULL) != 0)
			die("sigaction");
	}

	printf("fault_rtt: %d CPUs, %d faults/run, %d runs, 256 MiB region, hybrid spin %ld us\n",
	       g_ncpu, g_nfaults, g_runs, g_spin_ns / 1000);
	printf("times in us per fault: med/min/max of the per-run mean latency, p50/p99 of all "
	       "faults,\nwall = run time / faults (median run; includes gaps; with 2 faulting "
	       "threads it is 1/throughput)\n\n");
	print_load("at start");
	print_header();

	/* A: one blocking handler, nothing pinned. */
	c = (struct cfg){.mode = "A",
			 .desc = "1 blocking handler, nothing pinned",
			 .nh = 1,
			 .hcpu = {-1},
			 .hkind = H_BLOCK,
			 .nw = 1,
			 .wcpu = {-1},
			 .nfaults = g_nfaults};
	run_table(c, true);

	/* B: handler pinned to the faulting thread's CPU. */
	c = (struct cfg){.mode = "B",
			 .desc = "handler + faulting thread pinned, same CPU",
			 .nh = 1,
			 .hcpu = {cpu0},
			 .hkind = H_BLOCK,
			 .nw = 1,
			 .wcpu = {cpu0},
			 .nfaults = g_nfaults};
	run_table(c, true);
	for (int op = OP_MOVE4K; op <= OP_MOVE64K; op++)
		for (int rnd = 0; rnd < 2; rnd++) {
			struct result r;

			c.op = op;
			c.rnd = rnd;
			run_cfg(&c, &r, NULL, NULL, NULL);
			print_row(&c, &r);
		}

	if (g_ncpu > 1) {
		/* C: one blocking handler per CPU, each pinned. */
		c = (struct cfg){.mode = "C1",
				 .desc = "handler per CPU (pinned), fault thr unpinned",
				 .nh = g_ncpu,
				 .hkind = H_BLOCK,
				 .nw = 1,
				 .wcpu = {-1},
				 .nfaults = g_nfaults};
		memcpy(c.hcpu, g_cpus, sizeof c.hcpu);
		run_table(c, true);
		c.mode = "C1p";
		c.desc = "handler per CPU (pinned), fault thr pinned";
		c.wcpu[0] = cpu0;
		run_table(c, true);
		c.mode = "C2";
		c.desc = "handler per CPU (pinned), 2 unpinned fault thr";
		c.nw = 2;
		c.wcpu[0] = c.wcpu[1] = -1;
		run_table(c, true);

		/* D: spinning handler on the other CPU. */
		c = (struct cfg){.mode = "D",
				 .desc = "spinning handler on the other CPU",
				 .nh = 1,
				 .hcpu = {cpu1},
				 .hkind = H_SPIN,
				 .nw = 1,
				 .wcpu = {cpu0},
				 .nfaults = g_nfaults / 2};
		run_table(c, true);

		/* E: spin-then-block on the other CPU. */
		c = (struct cfg){.mode = "E",
				 .desc = "spin-then-block handler on the other CPU",
				 .nh = 1,
				 .hcpu = {cpu1},
				 .hkind = H_HYBRID,
				 .nw = 1,
				 .wcpu = {cpu0},
				 .nfaults = g_nfaults / 2};
		run_table(c, true);
	}

	/* F: SIGBUS, resolved in the faulting thread. */
	c = (struct cfg){.mode = "F",
			 .desc = "UFFD_FEATURE_SIGBUS, resolved in the thread",
			 .nh = 0,
			 .nw = 1,
			 .wcpu = {-1},
			 .nfaults = g_nfaults};
	run_table(c, true);

	/* Faults spaced out by busy work: who pays a wake-up from sleep? */
	printf("\nwith a busy gap between faults (copy4k, random; the gap is not in the "
	       "latency):\n");
	print_header();
	{
		struct cfg gc[10];
		int ng = 0;
		long gap_s = 20000, gap_l = 4 * g_spin_ns;

		gc[ng++] = (struct cfg){.mode = "B",
					.nh = 1,
					.hcpu = {cpu0},
					.hkind = H_BLOCK,
					.nw = 1,
					.wcpu = {cpu0},
					.gap_ns = gap_l};
		if (g_ncpu > 1) {
			gc[ng] = (struct cfg){.mode = "C1",
					      .nh = g_ncpu,
					      .hkind = H_BLOCK,
					      .nw = 1,
					      .wcpu = {-1},
					      .gap_ns = gap_l};
			memcpy(gc[ng++].hcpu, g_cpus, sizeof gc[0].hcpu);
			gc[ng++] = (struct cfg){.mode = "D",
						.nh = 1,
						.hcpu = {cpu1},
						.hkind = H_SPIN,
						.nw = 1,
						.wcpu = {cpu0},
						.gap_ns = gap_l};
			gc[ng++] = (struct cfg){.mode = "E",
						.nh = 1,
						.hcpu = {cpu1},
						.hkind = H_HYBRID,
						.nw = 1,
						.wcpu = {cpu0},
						.gap_ns = gap_s};
			gc[ng++] = (struct cfg){.mode = "E",
						.nh = 1,
						.hcpu = {cpu1},
						.hkind = H_HYBRID,
						.nw = 1,
						.wcpu = {cpu0},
						.gap_ns = gap_l};
			/* Diagnosis: is it the faulting vCPU's trip through idle? */
			gc[ng++] = (struct cfg){.mode = "D",
						.nh = 1,
						.hcpu = {cpu1},
						.hkind = H_SPIN,
						.nw = 1,
						.wcpu = {cpu0},
						.filler = true};
			gc[ng++] = (struct cfg){.mode = "D",
						.nh = 1,
						.hcpu = {cpu1},
						.hkind = H_SPIN,
						.nw = 1,
						.wcpu = {cpu0},
						.gap_ns = gap_l,
						.filler = true};
			gc[ng] = (struct cfg){.mode = "A",
					      .nh = 1,
					      .hcpu = {-1},
					      .hkind = H_BLOCK,
					      .nw = 1,
					      .wcpu = {-1},
					      .gap_ns = gap_l};
			ng++;
		}
		for (int i = 0; i < ng; i++) {
			struct result r;
			static char desc[10][96];

			snprintf(desc[i], sizeof desc[i], "gap %ld us%s%s", gc[i].gap_ns / 1000,
				 gc[i].hkind == H_HYBRID
					 ? (gc[i].gap_ns < g_spin_ns ? " (< spin window)"
								     : " (> spin window)")
					 : "",
				 gc[i].filler ? ", SCHED_IDLE filler on fault CPU" : "");
			gc[i].desc = desc[i];
			gc[i].op = OP_COPY4K;
			gc[i].rnd = true;
			gc[i].nfaults = gc[i].hkind == H_BLOCK ? g_nfaults / 2 : g_nfaults / 4;
			run_cfg(&gc[i], &r, NULL, NULL, NULL);
			print_row(&gc[i], &r);
		}
	}

	/* An alternative to mode C's wake-all: EPOLLEXCLUSIVE wakes one idle
	 * handler, but always the first registered one (on cpu0). */
	if (g_ncpu > 1) {
		struct cfg xc[4];
		static const char *const xd[4] = {"EPOLLEXCLUSIVE/handler, fault thr on CPU0",
						  "EPOLLEXCLUSIVE/handler, fault thr on CPU1",
						  "EPOLLEXCLUSIVE/handler, fault thr unpinned",
						  "EPOLLEXCLUSIVE/handler, 2 fault thr unpinned"};

		printf("\none handler per CPU, each in its own epoll set with the uffd added "
		       "EPOLLEXCLUSIVE\n(handler 0 on CPU %d registered first):\n",
		       cpu0);
		print_header();
		for (int i = 0; i < 4; i++) {
			struct result r;

			xc[i] = (struct cfg){.mode = "Cx",
					     .desc = xd[i],
					     .op = OP_COPY4K,
					     .rnd = true,
					     .nh = g_ncpu,
					     .hkind = H_EPOLLX,
					     .nw = i == 3 ? 2 : 1,
					     .wcpu = {i == 0   ? cpu0
						      : i == 1 ? cpu1
							       : -1,
						      -1},
					     .nfaults = g_nfaults};
			memcpy(xc[i].hcpu, g_cpus, sizeof xc[i].hcpu);
			run_cfg(&xc[i], &r, NULL, NULL, NULL);
			print_row(&xc[i], &r);
		}
	}

	/* What mode C's wasted wake costs the other CPU: a thread pinned there
	 * counts loop iterations while a thread pinned to cpu0 faults. */
	if (g_ncpu > 1) {
		struct victim v;
		struct cfg vc[4] = {
			{.mode = "B+v",
			 .desc = "B (1 handler, on the faulting CPU)",
			 .nh = 1,
			 .hcpu = {cpu0}},
			{.mode = "C1p+v",
			 .desc = "C1p (+1 handler on the busy CPU)",
			 .nh = 2,
			 .hcpu = {cpu0, cpu1}},
			{.mode = "C3+v",
			 .desc = "C1p with 3 handlers on the busy CPU",
			 .nh = 4,
			 .hcpu = {cpu0, cpu1, cpu1, cpu1}},
			{.mode = "Cx+v",
			 .desc = "Cx (EPOLLEXCLUSIVE), fault thr on CPU0",
			 .nh = 2,
			 .hcpu = {cpu0, cpu1},
			 .hkind = H_EPOLLX},
		};
		struct result vr[4];
		double loss[4], rate0;
		unsigned long cnt0;
		long t0, ns0;

		pin_self(cpu0);
		memset(&v, 0, sizeof v);
		v.cpu = cpu1;
		if (pthread_create(&v.tid, NULL, victim_main, &v) != 0)
			die("pthread_create victim");
		usleep(20000);
		cnt0 = atomic_load(&v.count);
		t0 = now_ns();
		usleep(200000);
		cnt0 = atomic_load(&v.count) - cnt0;
		ns0 = now_ns() - t0;
		rate0 = (double)cnt0 / (double)ns0;
		printf("\nmode C's wasted wake: a busy thread pinned to CPU %d counts loop "
		       "iterations\n(faulting thread pinned to CPU %d, copy4k, random)\n",
		       cpu1, cpu0);
		print_header();
		for (int i = 0; i < 4; i++) {
			unsigned long cnt = 0;
			long ns = 0;

			vc[i].op = OP_COPY4K;
			vc[i].rnd = true;
			vc[i].nw = 1;
			vc[i].wcpu[0] = cpu0;
			vc[i].nfaults = g_nfaults;
			run_cfg(&vc[i], &vr[i], &v, &cnt, &ns);
			print_row(&vc[i], &vr[i]);
			loss[i] = (1.0 - (double)cnt / (double)ns / rate0) * (double)ns /
				  (double)vr[i].faults / 1000.0;
		}
		atomic_store(&v.stop, true);
		pthread_join(v.tid, NULL);
		unpin_self();
		printf("busy thread lost per fault: B %.2f us, C1p %.2f us, C3 %.2f us, Cx %.2f "
		       "us\n",
		       loss[0], loss[1], loss[2], loss[3]);
		printf("=> one wasted wake costs the busy CPU %.2f us/fault; 3 of them %.2f "
		       "us/fault\n",
		       loss[1] - loss[0], loss[2] - loss[0]);
		{
			unsigned long sl = 0;
			long cpu_ns = 0;

			for (int k = 1; k < 4; k++) {
				sl += vr[2].sleeps[k];
				cpu_ns += vr[2].hcpu_ns[k];
			}
			printf("handler on CPU %d (C1p): woke %.2f times/fault (inside poll(), "
			       "EAGAIN only %.3f/fault),\n  used %.2f us CPU/fault; the 3 of C3: "
			       "woke %.2f times/fault, %.2f us CPU/fault\n",
			       cpu1, (double)vr[1].sleeps[1] / (double)vr[1].faults,
			       (double)vr[1].eagain[1] / (double)vr[1].faults,
			       (double)vr[1].hcpu_ns[1] / (double)vr[1].faults / 1000.0,
			       (double)sl / (double)vr[2].faults,
			       (double)cpu_ns / (double)vr[2].faults / 1000.0);
		}
	}

	/* G: the primitives. */
	printf("\nprimitives (us per operation; no faulting thread unless said)\n");
	printf("%-5s %-58s %7s %7s %7s %7s %7s\n", "", "operation", "med", "min", "max", "p50",
	       "p99");
	{
		int n = g_nfaults;
		int n64 = n > (int)(REGION / BLK) ? (int)(REGION / BLK) : n;

		run_g("UFFDIO_ZEROPAGE 4 KiB", g_zero4k, n);
		run_g("UFFDIO_COPY 4 KiB (hot source)", g_copy4k, n);
		run_g("UFFDIO_COPY 64 KiB (hot source)", g_copy64k, n64);
		run_g("UFFDIO_MOVE 4 KiB, prepared anon page -> region", g_move4k, n);
		run_g("UFFDIO_MOVE 64 KiB, prepared anon pages -> region", g_move64k, n64);
		run_g("write 4 KiB into hot buffer + UFFDIO_COPY", g_prep_copy4k, n);
		run_g("write 4 KiB into staging hole + UFFDIO_MOVE", g_prep_move4k, n);
		run_g("write 64 KiB into hot buffer + UFFDIO_COPY", g_prep_copy64k, n64);
		run_g("write 64 KiB into staging hole + UFFDIO_MOVE", g_prep_move64k, n64);
		run_g("write 4 KiB into populated staging + UFFDIO_MOVE", g_prep_movep4k, n);
		run_g("write 64 KiB into populated staging + UFFDIO_MOVE", g_prep_movep64k, n64);
		run_g("MADV_POPULATE_WRITE 2 MiB of staging, per 4 KiB", g_populate,
		      n / 16 > 8 ? n / 16 : 8);
		run_g("evict: UFFDIO_MOVE 4 KiB region -> registered staging", g_evict_move4k, n);
		run_g("evict: UFFDIO_MOVE 64 KiB region -> registered staging", g_evict_move64k,
		      n64);
		run_g("MADV_DONTNEED 4 KiB (populated)", g_dontneed4k, n);
		run_g("MADV_DONTNEED 64 KiB (populated)", g_dontneed64k, n64);
		run_g("evict: memcpy 64 KiB out + MADV_DONTNEED 64 KiB", g_evict_copy64k, n64);
		if (pipe(g_pipe) != 0)
			die("pipe");
		run_g("read(2) 4 KiB from a pipe into a present page", g_read_present, n);
		if (g_ncpu > 1) {
			struct hset hs;
			char name[96];

			hset_start(&hs, g_ncpu, g_cpus, H_BLOCK, OP_COPY4K);
			snprintf(name, sizeof name,
				 "read(2) 4 KiB into a missing page, mode C (%d)", g_ncpu);
			run_g(name, g_read_missing, n);
			hset_stop(&hs);
		}
		{
			struct hset hs;

			pin_self(cpu0);
			hset_start(&hs, 1, &cpu0, H_BLOCK, OP_COPY4K);
			run_g("read(2) 4 KiB into a missing page, mode B", g_read_missing, n);
			hset_stop(&hs);
			unpin_self();
		}
		if (g_read_bad)
			printf("!!! %lu read(2)s into missing pages left wrong data\n", g_read_bad);
		{ /* the SIGBUS mode cannot serve the kernel's own accesses */
			ssize_t got;

			discard(g_region_sb, REGION);
			if (write(g_pipe[1], g_in, PAGE) != (ssize_t)PAGE)
				die("pipe write");
			got = read(g_pipe[0], g_region_sb, PAGE);
			printf("      read(2) into a missing page of a SIGBUS-mode uffd: %s\n",
			       got < 0 ? strerror(errno) : "succeeded (unexpected)");
			if (got < 0 && read(g_pipe[0], g_out, PAGE) < 0)
				die("pipe drain");
		}
	}

	printf("\nsummary: median us per fault\n%-5s %13s %13s %13s\n%-5s", "", "zero4k", "copy4k",
	       "copy64k", "mode");
	for (int i = 0; i < 3; i++)
		printf(" %6s %6s", "seq", "rnd");
	printf("\n");
	for (int i = 0; i < g_nsummary; i++) {
		printf("%-5s", g_summary_name[i]);
		for (int j = 0; j < 6; j++)
			printf(" %6.2f", g_summary[i][j]);
		printf("\n");
	}
	print_load("at end");
	printf("total time %.1f s\n", (double)(now_ns() - t_begin) / 1e9);
	return 0;
}

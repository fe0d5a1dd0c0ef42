/* SPDX-License-Identifier: MIT */
/*
 * A fake OS layer for the simulation tests: the real runtime runs on it
 * without userfaultfd.
 *
 * Ranges given to os_uffd_register are ordinary memory whose pages the fake
 * marks present or absent; the resolving "ioctls" copy, zero and move
 * pages with the kernel's rules (EEXIST on a present destination, ENOENT on
 * an absent move source), and an absent page is filled with a poison byte
 * so that reading it by mistake shows.  Faults are not delivered: the test
 * calls fault_resolve() itself before touching an absent page.  Failures
 * can be injected (sim_os_inject).
 */
#include "sim_os.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "os/os.h"

#define MAX_RANGES 256

struct range {
	char *start;
	size_t len;
	uint8_t *state; /* per page: SIM_ABSENT, SIM_PRESENT, SIM_ZERO, SIM_POISONED */
	uint8_t *wp;    /* per page: write-protected (uffd-wp) */
};

static struct range ranges[MAX_RANGES];
static pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sim_inject inject;
static struct sim_os_stats sim_stats;

static uint8_t *page_state(const void *addr)
{
	size_t i;

	for (i = 0; i < MAX_RANGES; i++)
		if (ranges[i].start && (const char *)addr >= ranges[i].start &&
		    (const char *)addr < ranges[i].start + ranges[i].len)
			return &ranges[i].state[((const char *)addr - ranges[i].start) / OS_PAGE_SIZE];
	return NULL;
}

static uint8_t *page_wp(const void *addr)
{
	size_t i;

	for (i = 0; i < MAX_RANGES; i++)
		if (ranges[i].start && (const char *)addr >= ranges[i].start &&
		    (const char *)addr < ranges[i].start + ranges[i].len)
			return &ranges[i].wp[((const char *)addr - ranges[i].start) / OS_PAGE_SIZE];
	return NULL;
}

bool sim_os_wp(const void *addr)
{
	uint8_t *wp;
	bool r;

	pthread_mutex_lock(&sim_lock);
	wp = page_wp(addr);
	r = wp && *wp;
	pthread_mutex_unlock(&sim_lock);
	return r;
}

enum sim_page sim_os_page(const void *addr)
{
	uint8_t *st;
	enum sim_page r;

	pthread_mutex_lock(&sim_lock);
	st = page_state(addr);
	r = st ? (enum sim_page)*st : SIM_PRESENT;
	pthread_mutex_unlock(&sim_lock);
	return r;
}

void sim_os_drop(void *addr, size_t len)
{
	size_t off;

	pthread_mutex_lock(&sim_lock);
	for (off = 0; off < len; off += OS_PAGE_SIZE) {
		uint8_t *st = page_state((char *)addr + off);

		if (st) {
			*st = SIM_ABSENT;
			*page_wp((char *)addr + off) = 0;
			memset((char *)addr + off, SIM_POISON_BYTE, OS_PAGE_SIZE);
		}
	}
	pthread_mutex_unlock(&sim_lock);
}

void sim_os_cow(void *addr)
{
	uint8_t *st;

	pthread_mutex_lock(&sim_lock);
	st = page_state(addr);
	if (st && *st == SIM_ZERO)
		*st = SIM_PRESENT;
	pthread_mutex_unlock(&sim_lock);
}

void sim_os_inject(const struct sim_inject *in)
{
	pthread_mutex_lock(&sim_lock);
	inject = *in;
	pthread_mutex_unlock(&sim_lock);
}

void sim_os_stats(struct sim_os_stats *s)
{
	pthread_mutex_lock(&sim_lock);
	*s = sim_stats;
	pthread_mutex_unlock(&sim_lock);
}

/* One injected failure, when its countdown reaches zero. */
static int take_injection(int *countdown, int err)
{
	if (*countdown > 0 && --*countdown == 0)
		return err;
	return 0;
}

/* ---- memory ---- */

/* An injected allocation failure (map_enomem_in). */
static bool map_fails(void)
{
	bool fail;

	pthread_mutex_lock(&sim_lock);
	fail = take_injection(&inject.map_enomem_in, -ENOMEM) != 0;
	pthread_mutex_unlock(&sim_lock);
	return fail;
}

void *os_mem_map(size_t len)
{
	void *p;

	if (map_fails())
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void *os_mem_map_zeros(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void *os_mem_map_aligned(size_t len, size_t align)
{
	char *p, *m;
	uintptr_t start;

	if (map_fails())
		return NULL;
	m = mmap(NULL, len + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	p = m == MAP_FAILED ? NULL : m;
	if (!p)
		return NULL;
	start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	if (start > (uintptr_t)p)
		munmap(p, start - (uintptr_t)p);
	if ((uintptr_t)p + len + align > start + len)
		munmap((void *)(start + len), (uintptr_t)p + align - start);
	return (void *)start;
}

int os_mem_unmap(void *addr, size_t len)
{
	size_t i;

	/* as the kernel does, an unmapped range is no longer registered */
	pthread_mutex_lock(&sim_lock);
	for (i = 0; i < MAX_RANGES; i++) {
		if (ranges[i].start && ranges[i].start < (char *)addr + len &&
		    (char *)addr < ranges[i].start + ranges[i].len) {
			free(ranges[i].state);
			free(ranges[i].wp);
			memset(&ranges[i], 0, sizeof(ranges[i]));
		}
	}
	pthread_mutex_unlock(&sim_lock);
	return munmap(addr, len) ? -errno : 0;
}

int os_mem_discard(void *addr, size_t len)
{
	if (page_state(addr)) {
		sim_os_drop(addr, len);
		return 0;
	}
	return madvise(addr, len, MADV_DONTNEED) ? -errno : 0;
}

bool os_page_mapped(const void *addr)
{
	return sim_os_page(addr) != SIM_ABSENT;
}

int os_region_prepare(void *addr, size_t len)
{
	(void)addr;
	(void)len;
	return 0;
}

int os_mem_dontfork(void *addr, size_t len)
{
	(void)addr;
	(void)len;
	return 0;
}

void os_postfork_child(void)
{
}

/* ---- userfaultfd ---- */

int os_uffd_open(unsigned want, unsigned *got)
{
	*got = want;
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int os_uffd_register(int fd, void *addr, size_t len, bool wp)
{
	size_t i;

	(void)fd;
	(void)wp;
	pthread_mutex_lock(&sim_lock);
	for (i = 0; i < MAX_RANGES && ranges[i].start; i++)
		;
	if (i == MAX_RANGES) {
		pthread_mutex_unlock(&sim_lock);
		return -ENOMEM;
	}
	ranges[i].start = addr;
	ranges[i].len = len;
	ranges[i].state = calloc(len / OS_PAGE_SIZE, 1);
	ranges[i].wp = calloc(len / OS_PAGE_SIZE, 1);
	memset(addr, SIM_POISON_BYTE, len);
	pthread_mutex_unlock(&sim_lock);
	return 0;
}

int os_uffd_unregister(int fd, void *addr, size_t len)
{
	size_t i;

	(void)fd;
	(void)len;
	pthread_mutex_lock(&sim_lock);
	for (i = 0; i < MAX_RANGES; i++) {
		if (ranges[i].start == addr) {
			free(ranges[i].state);
			free(ranges[i].wp);
			memset(&ranges[i], 0, sizeof(ranges[i]));
		}
	}
	pthread_mutex_unlock(&sim_lock);
	return 0;
}

/* Apply op page by page with the kernel's rules; @return progress or -errno. */
enum op { OP_COPY, OP_ZERO, OP_MOVE, OP_POISON };

static long pages_op(enum op op, char *dst, char *src, size_t len, unsigned flags)
{
	size_t done = 0;
	int err = 0, eexist = 0;

	pthread_mutex_lock(&sim_lock);
	if (op != OP_POISON && (inject.eagain_times > 0 || inject.eagain_until_read) &&
	    inject.eagain_after > 0) {
		inject.eagain_after--;
	} else if (op != OP_POISON && inject.eagain_times > 0) {
		inject.eagain_times--;
		pthread_mutex_unlock(&sim_lock);
		return -EAGAIN;
	} else if (op != OP_POISON && inject.eagain_until_read) {
		pthread_mutex_unlock(&sim_lock);
		return -EAGAIN;
	}
	if (op == OP_COPY)
		eexist = take_injection(&inject.copy_eexist_in, -EEXIST);
	if (op == OP_ZERO)
		eexist = take_injection(&inject.zero_eexist_in, -EEXIST);
	if (eexist)
		len = OS_PAGE_SIZE; /* the racer installs the first page only */
	if (op == OP_MOVE) {
		sim_stats.move_calls++;
		err = take_injection(&inject.move_ebusy_in, -EBUSY);
	}
	if (!err && op != OP_POISON)
		err = take_injection(&inject.eagain_in, -EAGAIN);
	if (!err && op == OP_COPY)
		err = take_injection(&inject.copy_enomem_in, -ENOMEM);
	while (!err && done < len) {
		uint8_t *d = page_state(dst + done), *s = op == OP_MOVE ? page_state(src + done) : NULL;

		if (!d) {
			err = -ENOENT;
			break;
		}
		if (*d != SIM_ABSENT) {
			err = -EEXIST;
			break;
		}
		switch (op) {
		case OP_COPY:
			memcpy(dst + done, src + done, OS_PAGE_SIZE);
			*d = SIM_PRESENT;
			*page_wp(dst + done) = (flags & OS_WP) != 0;
			sim_stats.copies++;
			break;
		case OP_ZERO:
			memset(dst + done, 0, OS_PAGE_SIZE);
			*d = SIM_ZERO;
			sim_stats.zeropages++;
			break;
		case OP_POISON:
			*d = SIM_POISONED;
			sim_stats.poisoned++;
			break;
		case OP_MOVE:
			if (!s || *s == SIM_ABSENT || *s == SIM_POISONED) {
				err = -ENOENT;
				break;
			}
			memcpy(dst + done, src + done, OS_PAGE_SIZE);
			*d = *s;
			*s = SIM_ABSENT;
			*page_wp(src + done) = 0;
			*page_wp(dst + done) = 0;
			memset(src + done, SIM_POISON_BYTE, OS_PAGE_SIZE);
			sim_stats.moves++;
			break;
		}
		if (!err)
			done += OS_PAGE_SIZE;
	}
	/* The kernel's move_pages() may move pages and report less progress
	 * (an internal -EAGAIN after a migration): report one page less, or
	 * -EAGAIN when only one page moved. */
	if (op == OP_MOVE && done && take_injection(&inject.move_underreport_in, -EAGAIN)) {
		done -= OS_PAGE_SIZE;
		if (!done)
			err = -EAGAIN;
	}
	pthread_mutex_unlock(&sim_lock);
	if (eexist && !err)
		return -EEXIST; /* installed, by "someone else" */
	return done ? (long)done : err;
}

long os_uffd_copy(int fd, void *dst, const void *src, size_t len, unsigned flags)
{
	(void)fd;
	(void)flags;
	return pages_op(OP_COPY, dst, (char *)src, len, flags);
}

long os_uffd_zeropage(int fd, void *dst, size_t len, unsigned flags)
{
	(void)fd;
	(void)flags;
	return pages_op(OP_ZERO, dst, NULL, len, flags);
}

long os_uffd_move(int fd, void *dst, void *src, size_t len, unsigned flags)
{
	(void)fd;
	(void)flags;
	return pages_op(OP_MOVE, dst, src, len, flags);
}

long os_uffd_poison(int fd, void *dst, size_t len)
{
	(void)fd;
	return pages_op(OP_POISON, dst, NULL, len, 0);
}

int os_uffd_wake(int fd, void *addr, size_t len)
{
	(void)fd;
	(void)addr;
	(void)len;
	return 0;
}

int os_uffd_wp(int fd, void *addr, size_t len, bool protect, unsigned flags)
{
	size_t off;

	(void)fd;
	(void)flags;
	pthread_mutex_lock(&sim_lock);
	for (off = 0; off < len; off += OS_PAGE_SIZE) {
		uint8_t *st = page_state((char *)addr + off);

		if (st && *st != SIM_ABSENT)
			*page_wp((char *)addr + off) = protect;
	}
	pthread_mutex_unlock(&sim_lock);
	return 0;
}

int os_uffd_read(int fd, struct os_event *ev, int n)
{
	(void)fd;
	(void)ev;
	(void)n;
	/* the pending event (eagain_until_read) is read: the mm settles */
	pthread_mutex_lock(&sim_lock);
	inject.eagain_until_read = 0;
	pthread_mutex_unlock(&sim_lock);
	return -EAGAIN;
}

long os_resident_pages(void *addr, size_t len)
{
	size_t off;
	long n = 0;

	pthread_mutex_lock(&sim_lock);
	for (off = 0; off < len; off += OS_PAGE_SIZE) {
		uint8_t *st = page_state((char *)addr + off);

		if (!st || *st == SIM_PRESENT)
			n++;
	}
	pthread_mutex_unlock(&sim_lock);
	return n;
}

/* SPDX-License-Identifier: MIT */
/*
 * The shim's start: one uswap instance per process, opened from the
 * USWAP_* environment when the shim is loaded, before main().
 *
 * It is never closed.  At exit, the program's atexit handlers and
 * destructors (and other threads) may still touch managed memory after
 * ours would have run, and a fault with no handler left would hang for
 * ever; the kernel frees everything when the process ends.
 *
 * After fork, uswap's own fork handling (runtime/fork.c) gives the child
 * its handlers; the shim restarts its counter server there.  A child that
 * execs keeps USWAP_* and LD_PRELOAD in its environment, so the new program
 * starts with an instance of its own.
 */
#include "preload.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN_MAP_DEFAULT (1u << 20)

uswap_t *shim_u;
size_t shim_folio;
size_t shim_min_map = MIN_MAP_DEFAULT;
uint64_t shim_counters[SHIM_COUNT];

#define SHIM_COUNTER_NAME(name, doc) "shim_" #name,
const char *const shim_counter_names[SHIM_COUNT] = { SHIM_COUNTERS(SHIM_COUNTER_NAME) };
#undef SHIM_COUNTER_NAME

/*
 * Code whose calls are uswap's own: the shim (uswap's runtime is linked
 * into it) and the codec libraries it calls (libzstd allocates its
 * contexts with malloc, on the fault path).
 */
#define INTERNAL_MAX 4
static struct {
	uintptr_t lo, hi;
} internal[INTERNAL_MAX];
static unsigned ninternal;

bool shim_internal_caller(const void *ret)
{
	uintptr_t a = (uintptr_t)ret;
	unsigned i;

	for (i = 0; i < ninternal; i++)
		if (a >= internal[i].lo && a < internal[i].hi)
			return true;
	return false;
}

static bool object_is_internal(const struct dl_phdr_info *info, uintptr_t self)
{
	const char *name = info->dlpi_name ? info->dlpi_name : "";

	return info->dlpi_addr == self || strstr(name, "/libzstd.so") || strstr(name, "/liblz4.so");
}

static int internal_range_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0, base = info->dlpi_addr;
	int i;

	(void)size;
	if (!object_is_internal(info, *(uintptr_t *)arg) || ninternal == INTERNAL_MAX)
		return 0;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (base + ph->p_vaddr < lo)
			lo = base + ph->p_vaddr;
		if (base + ph->p_vaddr + ph->p_memsz > hi)
			hi = base + ph->p_vaddr + ph->p_memsz;
	}
	if (hi) {
		internal[ninternal].lo = lo;
		internal[ninternal].hi = hi;
		ninternal++;
	}
	return 0;
}

static void internal_ranges_find(void)
{
	Dl_info info;
	uintptr_t self;

	if (!dladdr((void *)internal_ranges_find, &info)) {
		fprintf(stderr, "uswap: the preload shim cannot find itself in memory\n");
		_exit(127);
	}
	self = (uintptr_t)info.dli_fbase;
	dl_iterate_phdr(internal_range_cb, &self);
	if (!shim_internal_caller((void *)internal_ranges_find)) {
		fprintf(stderr, "uswap: the preload shim cannot find its own segments\n");
		_exit(127);
	}
}

static void shim_fail(const char *what)
{
	fprintf(stderr,
		"uswap: %s: %s\n"
		"uswap: the program was not started (unset LD_PRELOAD to run it without uswap)\n",
		what, uswap_last_error());
	_exit(127);
}

static void shim_postfork_child(void)
{
	shim_stat_restart();
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *v = getenv("USWAP_MIN_MAP");
	sigset_t all, old;
	uint64_t folio;
	uswap_t *u;
	int rc;

	internal_ranges_find();
	shim_malloc_init();
	if (v) {
		size_t n;

		if (uswap_parse_size("USWAP_MIN_MAP", v, &n))
			shim_fail("bad setting");
		if (n < 4096) {
			fprintf(stderr, "uswap: USWAP_MIN_MAP \"%s\" is not allowed: use at least "
					"4K\n", v);
			_exit(127);
		}
		shim_min_map = n;
	}
	/* uswap's threads inherit this mask: the program's signals must never
	 * run its handlers on them */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = uswap_open(NULL, &u);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		shim_fail("cannot manage this program's memory");
	uswap_stat(u, "folio_bytes", &folio);
	shim_folio = (size_t)folio;
	if (shim_min_map < shim_folio)
		shim_min_map = shim_folio;
	pthread_atfork(NULL, NULL, shim_postfork_child);
	__atomic_store_n(&shim_u, u, __ATOMIC_RELEASE);
	rc = shim_stat_start();
	if (rc)
		fprintf(stderr, "uswap: counters will not be served (uswap stat): %s\n",
			uswap_strerror(rc));
}

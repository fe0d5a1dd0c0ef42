/* SPDX-License-Identifier: MIT */
/*
 * glibc malloc's large blocks, from managed memory.
 *
 * glibc's malloc maps its large blocks and arenas with an mmap inside libc
 * that no interposer sees, so the shim serves blocks of at least
 * USWAP_MIN_MAP bytes itself: a mapping of whole folios, adopted by uswap,
 * with a header of HDR bytes in front of the block.  Every other call goes
 * to the next malloc (glibc's).  When the next malloc is not glibc's
 * (jemalloc, tcmalloc), every call goes to it: that allocator's own mmap
 * calls are managed instead, and its extended API (sdallocx, mallctl)
 * never meets a block it did not make.
 *
 * uswap's own allocations (calls from the shim's code and from the codec
 * libraries it calls) always go to glibc's malloc, never to the program's
 * allocator: a fault handler must never wait for a lock of the program's
 * allocator, which a thread waiting for that very fault may hold (jemalloc
 * keeps its metadata in memory it maps, which is managed).
 *
 * A block of ours starts HDR bytes into a page, and its header holds a
 * magic word mixed with its address; free() confirms it with the region
 * table.  A pointer HDR bytes into a page is the only kind whose header is
 * read, and that header lies in the same page, so it is always readable.
 */
#include "preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <sys/mman.h>
#include <string.h>

#include "os/os_raw.h"

#define HDR 64u
#define PAGE 4096u
#define MAGIC 0x75737761706d656dull /* "uswapmem" */

struct block_hdr {
	uint64_t magic; /* MAGIC ^ address of the header */
	uint64_t map_len;
};

/* glibc's own entry points, for uswap's allocations */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static void *(*next_malloc)(size_t);
static void (*next_free)(void *);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void *(*next_memalign)(size_t, size_t);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void *(*next_aligned_alloc)(size_t, size_t);
static size_t (*next_usable_size)(void *);
static bool serve_large; /* the next malloc is glibc's */

/* dlsym may allocate while it resolves: serve it from a static buffer. */
static __thread bool resolving;
static char boot_buf[64 << 10] __attribute__((aligned(64)));
static size_t boot_used;

static bool boot_owns(const void *p)
{
	return (const char *)p >= boot_buf && (const char *)p < boot_buf + sizeof(boot_buf);
}

static void *boot_alloc(size_t n)
{
	size_t at = __atomic_fetch_add(&boot_used, (n + 63) & ~(size_t)63, __ATOMIC_RELAXED);

	if (at + n > sizeof(boot_buf))
		return NULL;
	return boot_buf + at; /* zero: never handed out twice */
}

static void resolve(void)
{
	if (__atomic_load_n(&next_usable_size, __ATOMIC_ACQUIRE))
		return;
	resolving = true;
	next_malloc = dlsym(RTLD_NEXT, "malloc");
	next_free = dlsym(RTLD_NEXT, "free");
	next_calloc = dlsym(RTLD_NEXT, "calloc");
	next_realloc = dlsym(RTLD_NEXT, "realloc");
	next_memalign = dlsym(RTLD_NEXT, "memalign");
	next_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
	next_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
	serve_large = next_malloc && next_malloc == dlsym(RTLD_NEXT, "__libc_malloc");
	__atomic_store_n(&next_usable_size,
			 (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size"),
			 __ATOMIC_RELEASE);
	resolving = false;
}

void shim_malloc_init(void)
{
	resolve();
	/* Start the program's allocator now, before uswap registers its fork
	 * handlers: an allocator registers its own when it starts (jemalloc
	 * does), and in a child those run first, so that the allocator works
	 * again before uswap's child handler starts the new threads. */
	next_free(next_malloc(1));
}

/* Is this one of our blocks?  @return its header, or NULL. */
static struct block_hdr *block_of(void *p)
{
	struct block_hdr *h = (struct block_hdr *)((char *)p - HDR);
	void *rs;
	size_t rl;

	if (((uintptr_t)p & (PAGE - 1)) != HDR || !shim_u)
		return NULL;
	if (h->magic != (MAGIC ^ (uintptr_t)h))
		return NULL;
	if (uswap_region_find(shim_u, h, &rs, &rl) || rs != (void *)h || rl != h->map_len)
		return NULL;
	return h;
}

static bool want_large(size_t n, const void *ret)
{
	return serve_large && n >= shim_min_map && n <= ((size_t)1 << 44) &&
	       __atomic_load_n(&shim_u, __ATOMIC_ACQUIRE) && !shim_internal_caller(ret);
}

/* A block of n bytes from managed memory, or NULL. */
static void *block_alloc(size_t n)
{
	size_t len = (n + HDR + shim_folio - 1) & ~(shim_folio - 1);
	struct block_hdr *h = shim_map_managed(len, shim_folio, MAP_NORESERVE);

	if (!h)
		return NULL;
	h->magic = MAGIC ^ (uintptr_t)h;
	h->map_len = len;
	shim_count(SHIM_malloc_blocks);
	return (char *)h + HDR;
}

static void block_free(struct block_hdr *h)
{
	h->magic = 0;
	shim_unmap(h, h->map_len);
}

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n)
{
	void *p;

	if (resolving)
		return boot_alloc(n);
	if (shim_internal_caller(__builtin_return_address(0)))
		return __libc_malloc(n);
	resolve();
	if (want_large(n, __builtin_return_address(0)) && (p = block_alloc(n)))
		return p;
	return next_malloc(n);
}

EXPORT void free(void *p)
{
	struct block_hdr *h;

	if (!p || boot_owns(p))
		return;
	if (shim_internal_caller(__builtin_return_address(0))) {
		__libc_free(p);
		return;
	}
	resolve();
	if ((h = block_of(p)))
		block_free(h);
	else
		next_free(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (resolving)
		return boot_alloc(total); /* zero-filled */
	if (shim_internal_caller(__builtin_return_address(0)))
		return __libc_calloc(n, size);
	resolve();
	if (want_large(total, __builtin_return_address(0)) && (p = block_alloc(total)))
		return p; /* fresh mappings read as zero */
	return next_calloc(n, size);
}

static size_t usable_size(void *p, struct block_hdr *h)
{
	return h ? h->map_len - HDR : next_usable_size(p);
}

EXPORT void *realloc(void *p, size_t n)
{
	struct block_hdr *h;
	void *q;
	size_t old;

	if (boot_owns(p)) {
		/* the boot buffer keeps no sizes: copy what can be there */
		q = malloc(n);
		if (q)
			memcpy(q, p, n < (size_t)(boot_buf + sizeof(boot_buf) - (char *)p)
					     ? n
					     : (size_t)(boot_buf + sizeof(boot_buf) - (char *)p));
		return q;
	}
	if (shim_internal_caller(__builtin_return_address(0)))
		return __libc_realloc(p, n);
	resolve();
	if (!p)
		return malloc(n);
	h = block_of(p);
	if (!h && !want_large(n, __builtin_return_address(0)))
		return next_realloc(p, n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	old = usable_size(p, h);
	if (h && n <= old)
		return p;
	q = want_large(n, __builtin_return_address(0)) ? block_alloc(n) : NULL;
	if (!q && !h)
		return next_realloc(p, n);
	if (!q)
		q = next_malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	if (h)
		block_free(h);
	else
		next_free(p);
	return q;
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

EXPORT size_t malloc_usable_size(void *p)
{
	struct block_hdr *h;

	if (!p)
		return 0;
	resolve();
	h = block_of(p);
	return usable_size(p, h);
}

/* Our blocks are HDR-aligned: alignments up to HDR are served as malloc.
 * caller: the program's return address (the shim's own calls go to glibc);
 * @return NULL when the next allocator must serve it. */
static void *aligned_block(size_t align, size_t n, void *caller, bool *internal)
{
	*internal = shim_internal_caller(caller);
	if (*internal)
		return __libc_memalign(align, n);
	resolve();
	return align <= HDR && want_large(n, caller) ? block_alloc(n) : NULL;
}

EXPORT void *memalign(size_t align, size_t n)
{
	bool internal;
	void *p = aligned_block(align, n, __builtin_return_address(0), &internal);

	return p || internal ? p : next_memalign(align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	bool internal;
	void *p = aligned_block(align, n, __builtin_return_address(0), &internal);

	return p || internal ? p : next_aligned_alloc(align, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (shim_internal_caller(__builtin_return_address(0))) {
		if (align < sizeof(void *) || (align & (align - 1)))
			return EINVAL;
		*out = __libc_memalign(align, n);
		return *out ? 0 : ENOMEM;
	}
	resolve();
	if (align <= HDR && align >= sizeof(void *) && !(align & (align - 1)) &&
	    want_large(n, __builtin_return_address(0)) && (p = block_alloc(n))) {
		*out = p;
		return 0;
	}
	return next_posix_memalign(out, align, n);
}

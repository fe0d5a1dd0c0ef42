/* SPDX-License-Identifier: MIT */
/*
 * The program's mmap, munmap, mremap and madvise.
 *
 * A mapping is managed whole or not at all: its start and length must be
 * multiples of the folio size (the shim aligns the start itself when the
 * program lets the kernel choose).  A managed mapping is then one region
 * and one VMA, so that every later munmap, mremap or madvise of the whole
 * mapping means the same to the kernel and to uswap.
 *
 *   munmap of whole regions releases them through uswap (before the kernel
 *     unmaps them, so that the same range mapped again at once can be
 *     adopted); parts of regions are left to the kernel's unmap events.
 *   mremap moving whole regions is followed by uswap's remap events; one
 *     that would move part of a region is refused with ENOMEM, a legal
 *     answer of mremap, rather than risk the pages uswap holds for it.
 *   madvise(MADV_FREE) on managed memory becomes uswap's own lazy free
 *     (USWAP_ADV_FREE): the kernel reports MADV_FREE and MADV_DONTNEED the
 *     same way (a remove event), so uswap could only keep such pages as
 *     data and compress them at eviction; told directly, it discards them
 *     at eviction instead, and a write after the advice cancels it.  Where
 *     uswap refuses the advice, MADV_DONTNEED is done, which is a valid
 *     MADV_FREE (the program may read zeros until it writes).
 *   madvise(MADV_PAGEOUT) on managed memory becomes uswap's page-out
 *     (USWAP_ADV_PAGEOUT) of the folios it touches: the kernel knows
 *     nothing of uswap's store.  As the kernel's, it is a hint and returns
 *     0 when some folios stay resident (pinned, busy, the store full).
 */
#include "preload.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>

#include "os/os_raw.h"

#define PAGE 4096ul
#define HUGE_ALIGN (2ul << 20)

static uintptr_t align_up(uintptr_t v, size_t a)
{
	return (v + a - 1) & ~(uintptr_t)(a - 1);
}

static bool map_eligible(size_t len, int prot, int flags)
{
	if (!(flags & MAP_ANONYMOUS) || (flags & MAP_TYPE) != MAP_PRIVATE)
		return false;
	if (flags & (MAP_GROWSDOWN | MAP_STACK | MAP_HUGETLB | MAP_LOCKED | MAP_POPULATE))
		return false;
	return prot == (PROT_READ | PROT_WRITE) && len >= shim_min_map && !(len % shim_folio);
}

/* Map len bytes aligned to align: map more, trim both ends. */
static void *map_aligned(size_t len, size_t align, int flags)
{
	size_t span = len + align;
	char *p = os_raw_mmap(NULL, span, PROT_READ | PROT_WRITE, flags, -1, 0);
	uintptr_t start;

	if (p == MAP_FAILED)
		return MAP_FAILED;
	start = align_up((uintptr_t)p, align);
	if (start > (uintptr_t)p)
		os_raw_munmap(p, start - (uintptr_t)p);
	if ((uintptr_t)p + span > start + len)
		os_raw_munmap((void *)(start + len), (uintptr_t)p + span - (start + len));
	return (void *)start;
}

static void adopt(void *p, size_t len)
{
	if (((uintptr_t)p % shim_folio) || (len % shim_folio))
		return;
	if (uswap_adopt(shim_u, p, len))
		shim_count(SHIM_maps_adopt_failed);
	else
		shim_count(SHIM_maps_adopted);
}

void *shim_map_managed(size_t len, size_t align, int extra_flags)
{
	void *p;

	if (align < shim_folio)
		align = shim_folio;
	p = map_aligned(len, align, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags);
	if (p == MAP_FAILED)
		return NULL;
	if (uswap_adopt(shim_u, p, len)) {
		shim_count(SHIM_maps_adopt_failed);
		os_raw_munmap(p, len);
		return NULL;
	}
	shim_count(SHIM_maps_adopted);
	return p;
}

/* The program's mmap (the caller decided it is not uswap's own). */
static void *program_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p;

	if (!map_eligible(len, prot, flags))
		return os_raw_mmap(addr, len, prot, flags, fd, off);
	if (!addr && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)))
		/* big mappings on 2 MiB boundaries: an allocator that wants
		 * huge-page alignment (jemalloc) never trims them */
		p = map_aligned(len, len >= HUGE_ALIGN && HUGE_ALIGN > shim_folio ? HUGE_ALIGN
										  : shim_folio,
				flags);
	else
		p = os_raw_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED)
		adopt(p, len);
	return p;
}

__attribute__((visibility("default"))) void *mmap(void *addr, size_t len, int prot, int flags,
						  int fd, off_t off)
{
	if (!__atomic_load_n(&shim_u, __ATOMIC_ACQUIRE) ||
	    shim_internal_caller(__builtin_return_address(0)))
		return os_raw_mmap(addr, len, prot, flags, fd, off);
	return program_mmap(addr, len, prot, flags, fd, off);
}

__attribute__((visibility("default"))) void *mmap64(void *addr, size_t len, int prot, int flags,
						    int fd, off_t off)
{
	if (!__atomic_load_n(&shim_u, __ATOMIC_ACQUIRE) ||
	    shim_internal_caller(__builtin_return_address(0)))
		return os_raw_mmap(addr, len, prot, flags, fd, off);
	return program_mmap(addr, len, prot, flags, fd, off);
}

static int unmap_piece(uintptr_t a, uintptr_t b)
{
	if (b <= a)
		return 0;
	return os_raw_munmap((void *)a, b - a) ? -errno : 0;
}

int shim_unmap(void *addr, size_t len)
{
	uintptr_t at = (uintptr_t)addr, end = align_up(at + len, PAGE);
	int err = 0, rc;

	while (at < end) {
		void *rs;
		size_t rl;
		uintptr_t s, e;

		if (uswap_region_find(shim_u, (void *)at, &rs, &rl) || (uintptr_t)rs >= end) {
			rc = unmap_piece(at, end);
			err = err ? err : rc;
			break;
		}
		s = (uintptr_t)rs;
		e = s + rl;
		if (s > at) {
			rc = unmap_piece(at, s);
			err = err ? err : rc;
			at = s;
		}
		if (s == at && e <= end) {
			/* a whole region: uswap unregisters and unmaps it */
			if (uswap_unmap(shim_u, rs, rl))
				rc = unmap_piece(s, e); /* released meanwhile */
			else
				shim_count(SHIM_unmaps);
			at = e;
		} else {
			/* part of a region: the kernel's unmap event tells uswap */
			rc = unmap_piece(at, e < end ? e : end);
			err = err ? err : rc;
			at = e < end ? e : end;
		}
	}
	return err;
}

__attribute__((visibility("default"))) int munmap(void *addr, size_t len)
{
	int rc;

	if (!__atomic_load_n(&shim_u, __ATOMIC_ACQUIRE) ||
	    shim_internal_caller(__builtin_return_address(0)))
		return os_raw_munmap(addr, len);
	if (((uintptr_t)addr & (PAGE - 1)) || !len || (uintptr_t)addr + len < (uintptr_t)addr) {
		errno = EINVAL;
		return -1;
	}
	rc = shim_unmap(addr, len);
	if (rc) {
		errno = -rc;
		return -1;
	}
	return 0;
}

/* Does [a, b) cut through a region (hold part of one, not all of it)? */
static bool range_cuts_region(uintptr_t a, uintptr_t b)
{
	uintptr_t at = a;

	while (at < b) {
		void *rs;
		size_t rl;

		if (uswap_region_find(shim_u, (void *)at, &rs, &rl) || (uintptr_t)rs >= b)
			return false;
		if ((uintptr_t)rs < a || (uintptr_t)rs + rl > b)
			return true;
		at = (uintptr_t)rs + rl;
	}
	return false;
}

static bool range_has_region(uintptr_t a, uintptr_t b)
{
	void *rs;
	size_t rl;

	return !uswap_region_find(shim_u, (void *)a, &rs, &rl) && (uintptr_t)rs < b;
}

__attribute__((visibility("default"))) void *mremap(void *old, size_t old_len, size_t new_len,
						    int flags, ...)
{
	uintptr_t a = (uintptr_t)old;
	void *new_addr = NULL, *p;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (!__atomic_load_n(&shim_u, __ATOMIC_ACQUIRE) ||
	    shim_internal_caller(__builtin_return_address(0)) ||
	    !range_has_region(a, a + old_len))
		return os_raw_mremap(old, old_len, new_len, flags, new_addr);
	if (new_len > old_len && range_cuts_region(a, a + old_len)) {
		/* moving part of a region is not followed by uswap: grow in
		 * place or not at all */
		if (flags & MREMAP_FIXED) {
			shim_count(SHIM_mremap_refused);
			errno = ENOMEM;
			return MAP_FAILED;
		}
		p = os_raw_mremap(old, old_len, new_len, 0, NULL);
		if (p == MAP_FAILED && (flags & MREMAP_MAYMOVE))
			shim_count(SHIM_mremap_refused);
	} else {
		p = os_raw_mremap(old, old_len, new_len, flags, new_addr);
		if (p != MAP_FAILED && p != old)
			shim_count(SHIM_mremap_moved);
	}
	/* the grown part is fresh memory: manage it when it is whole folios */
	if (p != MAP_FAILED && new_len > old_len)
		adopt((char *)p + old_len, new_len - old_len);
	return p;
}

/* Advice on [addr, addr+len), which lies in one region.  @return 0 or an errno. */
static int managed_advise(void *addr, size_t len, int advice)
{
	if (advice == MADV_PAGEOUT) {
		uswap_advise(shim_u, addr, len, USWAP_ADV_PAGEOUT);
		shim_count(SHIM_madv_pageout);
		return 0;
	}
	if (!uswap_advise(shim_u, addr, len, USWAP_ADV_FREE)) {
		shim_count(SHIM_madv_free_lazy);
		return 0;
	}
	shim_count(SHIM_madv_free_as_dontneed);
	return os_raw_madvise(addr, len, MADV_DONTNEED) ? errno : 0;
}

__attribute__((visibility("default"))) int madvise(void *addr, size_t len, int advice)
{
	uintptr_t at = (uintptr_t)addr, end;
	int err = 0;

	if ((advice != MADV_FREE && advice != MADV_PAGEOUT) ||
	    !__atomic_load_n(&shim_u, __ATOMIC_ACQUIRE) ||
	    shim_internal_caller(__builtin_return_address(0)))
		return os_raw_madvise(addr, len, advice);
	if ((at & (PAGE - 1)) || at + len < at) {
		errno = EINVAL;
		return -1;
	}
	end = align_up(at + len, PAGE);
	while (at < end) {
		void *rs;
		size_t rl;
		uintptr_t s, e;
		int rc = 0;

		if (uswap_region_find(shim_u, (void *)at, &rs, &rl) || (uintptr_t)rs >= end) {
			rc = os_raw_madvise((void *)at, end - at, advice) ? errno : 0;
			err = err ? err : rc;
			break;
		}
		s = (uintptr_t)rs > at ? (uintptr_t)rs : at;
		e = (uintptr_t)rs + rl < end ? (uintptr_t)rs + rl : end;
		if (s > at)
			rc = os_raw_madvise((void *)at, s - at, advice) ? errno : 0;
		err = err ? err : rc;
		rc = managed_advise((void *)s, e - s, advice);
		err = err ? err : rc;
		at = e;
	}
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

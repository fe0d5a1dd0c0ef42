/* SPDX-License-Identifier: MIT */
/*
 * uffd_compat.h - the one place that defines the userfaultfd and
 * PAGEMAP_SCAN interfaces newer than the installed kernel headers.
 *
 * Debian 12 ships linux-libc-dev 6.1, which lacks UFFDIO_MOVE (6.8),
 * UFFD_FEATURE_WP_UNPOPULATED (6.4), UFFD_FEATURE_POISON/UFFDIO_POISON (6.6),
 * UFFD_FEATURE_WP_ASYNC and PAGEMAP_SCAN (6.7), UFFDIO_CONTINUE_MODE_WP
 * (6.6).  The running kernel says at run time what it supports (UFFDIO_API
 * features, uffdio_register.ioctls, -EINVAL/-ENOTTY); these definitions only
 * let us build against older headers.
 *
 * Every value is copied from the kernel's include/uapi/linux/userfaultfd.h
 * and include/uapi/linux/fs.h and guarded with #ifndef, so that newer
 * headers win and nothing is defined twice.  A struct is guarded by the
 * ioctl macro that was introduced together with it.
 *
 * Include this instead of <linux/userfaultfd.h>; like that header, it is
 * for src/os/ (and the fault-path benchmark) only.
 */
#ifndef USWAP_OS_UFFD_COMPAT_H
#define USWAP_OS_UFFD_COMPAT_H

#include <linux/userfaultfd.h>
#include <linux/fs.h>
#include <linux/ioctl.h>
#include <linux/types.h>

/* ---- UFFDIO_API features ---- */

#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12) /* 6.1 */
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13) /* 6.4 */
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14) /* 6.6 */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15) /* 6.7, implies WP_UNPOPULATED */
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16) /* 6.8 */
#endif

/* ---- UFFDIO_CONTINUE ---- */

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1) /* 6.6 */
#endif

/* ---- UFFDIO_POISON (6.6) ---- */

#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
	__u64 mode;
	/* Written by the ioctl; must stay last. */
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

/* ---- UFFDIO_MOVE (6.8) ---- */

#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
	/*
	 * Especially if used to atomically remove memory from the address
	 * space the wake on the dst range is not needed.
	 */
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
	__u64 mode;
	/* "move" is written by the ioctl and must be at the end. */
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif
#ifndef UFFDIO_MOVE_MODE_DONTWAKE
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#endif
#ifndef UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#endif

/* ---- PAGEMAP_SCAN on /proc/<pid>/pagemap (6.7), from linux/fs.h ---- */

#ifndef PAGEMAP_SCAN
/* struct page_region - a run of pages with the same categories. */
struct page_region {
	__u64 start;
	__u64 end;	  /* exclusive */
	__u64 categories; /* PAGE_IS_* */
};

/* struct pm_scan_arg - the ioctl argument; size = sizeof(struct pm_scan_arg). */
struct pm_scan_arg {
	__u64 size;
	__u64 flags; /* PM_SCAN_* */
	__u64 start;
	__u64 end;
	__u64 walk_end; /* written: where the walk stopped */
	__u64 vec;	/* struct page_region[vec_len] */
	__u64 vec_len;
	__u64 max_pages; /* 0 = no limit */
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

/* Categories: masks in pm_scan_arg, reported in page_region.categories. */
#ifndef PAGE_IS_WPALLOWED
#define PAGE_IS_WPALLOWED (1 << 0)
#endif
#ifndef PAGE_IS_WRITTEN
#define PAGE_IS_WRITTEN (1 << 1)
#endif
#ifndef PAGE_IS_FILE
#define PAGE_IS_FILE (1 << 2)
#endif
#ifndef PAGE_IS_PRESENT
#define PAGE_IS_PRESENT (1 << 3)
#endif
#ifndef PAGE_IS_SWAPPED
#define PAGE_IS_SWAPPED (1 << 4)
#endif
#ifndef PAGE_IS_PFNZERO
#define PAGE_IS_PFNZERO (1 << 5)
#endif
#ifndef PAGE_IS_HUGE
#define PAGE_IS_HUGE (1 << 6)
#endif
#ifndef PAGE_IS_SOFT_DIRTY
#define PAGE_IS_SOFT_DIRTY (1 << 7) /* added after 6.7 */
#endif
#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD (1 << 8) /* added later: a MADV_GUARD_INSTALL guard page */
#endif

/* Flags for PAGEMAP_SCAN. */
#ifndef PM_SCAN_WP_MATCHING
#define PM_SCAN_WP_MATCHING (1 << 0) /* write-protect the pages matched */
#endif
#ifndef PM_SCAN_CHECK_WPASYNC
#define PM_SCAN_CHECK_WPASYNC (1 << 1) /* abort on a page not WP-async registered */
#endif

#endif /* USWAP_OS_UFFD_COMPAT_H */

/* SPDX-License-Identifier: MIT */
/*
 * The kernel's own mmap, munmap, mremap and madvise, as system calls.
 *
 * The LD_PRELOAD shim defines the libc functions of these names; it does
 * the real thing through these, which no interposer can catch.  They keep
 * the libc convention (MAP_FAILED or -1 with errno set), since the shim
 * returns their results to the program unchanged.
 */
#ifndef USWAP_OS_RAW_H
#define USWAP_OS_RAW_H

#include <stddef.h>
#include <sys/types.h>

void *os_raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int os_raw_munmap(void *addr, size_t len);
void *os_raw_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr);
int os_raw_madvise(void *addr, size_t len, int advice);

#endif

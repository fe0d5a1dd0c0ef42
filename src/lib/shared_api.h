/* SPDX-License-Identifier: MIT */
#ifndef USWAP_SHARED_API_H
#define USWAP_SHARED_API_H

#include <stddef.h>

#include "runtime/instance.h"

/* Make a shared region (fd < 0: a new memfd; else the region fd holds) of
 * len bytes, whole folios, and enter it in u's table (uswap_map with
 * USWAP_MAP_SHARED, uswap_map_fd).  @return 0 and *addr; -errno with a
 * message. */
int shared_map(struct uswap *u, int fd, size_t len, void **addr);

#endif

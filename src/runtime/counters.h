/* SPDX-License-Identifier: MIT */
/*
 * Event counters: one for every outcome and every failure reason (mm/zswap
 * keeps one per reject reason).  The list is the single source of the
 * names uswap_stat() answers to; derived figures (resident_bytes,
 * stored_bytes, ...) are computed in lib/stats.c.
 */
#ifndef USWAP_COUNTERS_H
#define USWAP_COUNTERS_H

#define USWAP_COUNTERS(X)                                                                  \
	X(faults, "faults resolved (missing-page faults on managed memory)")               \
	X(faults_stale, "faults on a folio already resident (raced or discarded page)")     \
	X(swapout_pages, "pages swapped out to the store (zero pages not included)")        \
	X(swapin_pages, "pages swapped in from the store")                                   \
	X(swapout_folios, "large folios swapped out as one unit")                            \
	X(swapin_folios, "large folios swapped in whole in one fault")                       \
	X(swapout_fallback, "large folios swapped out page by page (no contiguous slots)")  \
	X(swapin_fallback, "large folios swapped in page by page (any reason below)")       \
	X(swapin_fallback_split, "... because their slots were not one contiguous run")     \
	X(swapin_fallback_partial, "... because some pages had no stored copy")              \
	X(swapin_partial, "pages swapped in alone, not with their folio (access looked random)") \
	X(swapout_partial, "partly resident folios swapped out page by page")               \
	X(zero_pages_out, "zero-filled pages recorded in the zero map at swap-out")         \
	X(zero_pages_in, "zero-map pages mapped back as the shared zero page")               \
	X(same_filled_pages, "pages stored as one repeated word")                            \
	X(incompressible_folios, "folios stored raw (did not compress)")                     \
	X(first_touch_folios, "folios populated on first touch (zero page)")                 \
	X(reclaim_direct, "folios evicted by a fault at the hard limit")                     \
	X(reclaim_background, "folios evicted by the background reclaimer")                  \
	X(reclaim_advice, "folios evicted by USWAP_ADV_PAGEOUT")                             \
	X(readahead_folios, "folios swapped in ahead of a sequential stream of faults")     \
	X(refault_activations, "folios refaulted soon after eviction: kept 3 more clock turns") \
	X(recompress_folios, "stored runs recompressed at the strong level while idle")   \
	X(recompress_saved_bytes, "bytes the stored objects shrank by idle recompression")  \
	X(recompress_kept, "stored runs the strong level did not shrink enough: kept as is") \
	X(recompress_fail, "recompressions given up (store full, error): old copy kept")    \
	X(reclaim_fail_store_full, "evictions refused because the store was full")           \
	X(reclaim_fail_busy, "evictions refused because a page was pinned or shared")        \
	X(reclaim_fail_nomem, "evictions that failed for lack of memory")                   \
	X(reclaim_fail_other, "evictions the kernel refused for another reason")            \
	X(reclaim_fail_codec, "evictions that failed because the codec failed")              \
	X(swapin_fail_corrupt, "swap-ins refused: the stored data failed its checksum")     \
	X(swapin_fail_read, "swap-ins that could not read the store (retried or poisoned)") \
	X(swapin_fail_install, "swap-ins the kernel refused to install (retried)")          \
	X(fault_poisoned, "pages poisoned: their data could not be had (access: SIGBUS)")  \
	X(swapcache_hits, "clean swap-cached folios evicted again with no compression")     \
	X(swapcache_reuse, "swap-cached pages written: copy freed, page reused in place")  \
	X(swapcache_copy, "swap-cached pages written whose slot was shared (fork)")         \
	X(wp_faults, "write-protect faults (first write to a swap-cached or lazy-free folio)") \
	X(lazyfree_discard, "lazily freed pages discarded at eviction (not stored)")        \
	X(lazyfree_cancel, "lazily freed pages written again (lazy free cancelled)")        \
	X(lazyfree_split, "folios a lazy-free range covered in part")                       \
	X(fork_events, "forks of the process (the child got its own handlers)")             \
	X(remove_events, "MADV_DONTNEED/MADV_FREE by the program on managed memory")        \
	X(unmap_events, "munmap by the program of managed memory")                          \
	X(remap_events, "mremap by the program of managed memory")                          \
	X(remap_unsupported, "mremap of part of a region (not followed: see the message)")  \
	X(fault_retries, "fault resolutions retried after a passing failure")               \
	X(msgs_queued, "faults and events handled in order behind an event or a fork")      \
	X(limit_overshoot_bytes, "bytes brought in above the budget (nothing evictable)")    \
	X(ioctl_retries, "userfaultfd ioctls retried after EAGAIN")                          \
	X(move_underreported, "pages the kernel moved without counting them (found at -EEXIST)") \
	X(fault_ns_total, "nanoseconds spent resolving faults")                              \
	X(fault_lat_le_8us, "faults resolved in 8 us or less")                               \
	X(fault_lat_le_32us, "faults resolved in 8-32 us")                                   \
	X(fault_lat_le_128us, "faults resolved in 32-128 us")                                \
	X(fault_lat_gt_128us, "faults resolved in more than 128 us")

#define USWAP_COUNTER_ENUM(name, doc) CTR_##name,
enum counter { USWAP_COUNTERS(USWAP_COUNTER_ENUM) CTR_COUNT };
#undef USWAP_COUNTER_ENUM

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Shared regions: the memfd's layout, the mapper table, and the eviction
 * and swap-in protocol that keeps every mapper's view the same (shared.h
 * says why each step is there).
 */
#include "shared.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/folio_blob.h"
#include "core/errmsg.h"
#include "os/os.h"

/* How long a waiter for a shared lock sleeps before it reads its own
 * pending events (see shared.h) and sleeps again. */
#define SHARED_POLL_NS 2000000ull
#define WP_EAGAIN_SLEEP_NS 1000000ull
#define WP_EAGAIN_RETRIES 30000
/* A forked child that has not entered the mapper table after this long
 * is dead: it gives up waiting for its userfaultfd after 30 s (fork.c),
 * and enters the table at once when it has it. */
#define FORK_PENDING_STALE_NS (40ull * 1000000000ull)

static size_t round_up(size_t v, size_t to)
{
	return (v + to - 1) & ~(to - 1);
}

static uint32_t *meta_fwords(struct shared_header *h)
{
	return (uint32_t *)(void *)(h + 1);
}

static uint32_t shared_nfolios(const struct shared_header *h)
{
	return (uint32_t)(h->len >> (h->folio_order + OS_PAGE_SHIFT));
}

static uint32_t *meta_blob_len(struct shared_header *h)
{
	return meta_fwords(h) + shared_nfolios(h);
}

/* Per folio, the pid of the process holding its lock in a long critical
 * section (eviction, swap-in), 0 otherwise: a waiter that finds it dead
 * takes the folio over (folio_recover). */
static uint32_t *meta_owner(struct shared_header *h)
{
	return meta_blob_len(h) + shared_nfolios(h);
}

/* Every holder of a shared folio's lock names itself in its owner word
 * while it holds it (0 in the instants around locking and unlocking):
 * so an owner that is gone died holding it. */
static void folio_own(struct region *r, uint32_t f)
{
	__atomic_store_n(&meta_owner(r->sh->hdr)[f], (uint32_t)getpid(), __ATOMIC_RELEASE);
}

static void folio_disown(struct region *r, uint32_t f)
{
	__atomic_store_n(&meta_owner(r->sh->hdr)[f], 0, __ATOMIC_RELEASE);
}

void shared_folio_unlock(struct region *r, uint32_t f, enum folio_state to, uint32_t set,
			 uint32_t clear)
{
	folio_disown(r, f);
	folio_unlock_wake(r, f, to, set, clear);
}

static uint64_t *meta_zeromap(struct shared_header *h)
{
	uint32_t n = shared_nfolios(h);

	return (uint64_t *)(void *)((char *)meta_owner(h) + round_up(n * sizeof(uint32_t), 8));
}

/* The bytes of the meta part for len bytes of folio order `order`. */
static size_t meta_bytes(size_t len, unsigned order)
{
	size_t npages = len >> OS_PAGE_SHIFT, nfolios = npages >> order;

	return round_up(sizeof(struct shared_header) + 2 * nfolios * sizeof(uint32_t) +
				round_up(nfolios * sizeof(uint32_t), 8) +
				(npages + 63) / 64 * sizeof(uint64_t),
			OS_PAGE_SIZE);
}

static uint64_t data_off(const struct shared_header *h, uint32_t f)
{
	return h->meta_len + ((uint64_t)f << (h->folio_order + OS_PAGE_SHIFT));
}

static uint64_t window_off(const struct shared_header *h, uint32_t f)
{
	return h->meta_len + h->len + (uint64_t)f * h->window;
}

/* ---- locks shared with other processes ---- */

/*
 * Set while a handler thread serves a fault of a shared region.  Only such
 * a thread reads pending events while it waits (events_absorb): a handler
 * drains what it queued when it returns to its loop, whereas a message
 * queued by another thread (an API call, the reclaimer) would wait there
 * while every handler sleeps on the userfaultfd.  And only handlers need
 * to: when all of them are stuck waiting for a lock another process holds,
 * nobody else reads our events.
 */
static __thread bool in_fault;

static void waiting_absorb(struct uswap *u)
{
	if (in_fault)
		events_absorb(u);
}

static void folio_recover(struct uswap *u, struct region *r, uint32_t f);

/* Take over folio f if its owner died holding it: recover it and unlock
 * it.  @return true when that was done (the caller tries again). */
static bool folio_take_over(struct uswap *u, struct region *r, uint32_t f)
{
	uint32_t *owner = &meta_owner(r->sh->hdr)[f], dead = __atomic_load_n(owner, __ATOMIC_ACQUIRE);

	if (!dead || !os_process_gone((int)dead) ||
	    !__atomic_compare_exchange_n(owner, &dead, (uint32_t)getpid(), false, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return false;
	fprintf(stderr, "uswap: shared region %p folio %u: process %u died holding it; taking it "
			"over\n", (void *)r->start, f, dead);
	folio_recover(u, r, f);
	return true;
}

/* Is a process named in the mapper table gone (killed, not yet noticed by
 * an eviction)? */
static bool mapper_gone(const struct shared_header *h)
{
	for (int i = 0; i < SHARED_MAPPERS_MAX; i++) {
		uint32_t pid = __atomic_load_n(&h->mapper[i].pid, __ATOMIC_RELAXED);

		if (pid && os_process_gone((int)pid))
			return true;
	}
	return false;
}

/*
 * Folio f has been locked with no owner named for OWNERLESS_STALE_NS.  The
 * lock bit (in the folio's word, which has no room for a pid) and the name
 * are two stores: a process killed between them (or between the two steps
 * of unlocking) leaves the folio locked by nobody.  A live process passes
 * between the stores in microseconds (the reclaimer's clock pick and the
 * eviction's first step lie between them); so when a mapper has died (one
 * of the table is gone now, or one was dropped from it before, as dead or
 * as no longer a mapper: exec'd, its descriptor not a userfaultfd; the
 * folio may have been left so long ago) and the folio stayed ownerless
 * this long, take it over as from a dead owner.  (Wrong only if a live
 * process were stopped exactly there for seconds, or a hand-over went
 * unseen (below), in a region where a mapper was dropped: accepted, and
 * said in docs/ARCHITECTURE.md.  Closing it for good needs the owner word
 * to be the lock: see there.)
 */
#define OWNERLESS_STALE_NS (5ull * 1000000000)

static bool mapper_ever_died(const struct shared_header *h)
{
	return __atomic_load_n(&h->mapper_deaths, __ATOMIC_ACQUIRE) || mapper_gone(h);
}

/* ... and `seen`, the folio's word when the waiter went to sleep, is
 * still its word after we named ourselves: the lock has not changed hands
 * meanwhile (a taker-over that finished, a live locker between its two
 * stores, whose lock we would share). */
static bool folio_take_over_ownerless(struct uswap *u, struct region *r, uint32_t f,
				      uint32_t seen)
{
	uint32_t *owner = &meta_owner(r->sh->hdr)[f], none = 0, me = (uint32_t)getpid();

	if (folio_word_load(&r->pt, f) != seen || !mapper_ever_died(r->sh->hdr) ||
	    !__atomic_compare_exchange_n(owner, &none, me, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return false;
	if (folio_word_load(&r->pt, f) != seen) {
		__atomic_compare_exchange_n(owner, &me, 0, false, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED);
		return false;
	}
	fprintf(stderr, "uswap: shared region %p folio %u: locked by nobody for %llu s after a "
			"mapper died; taking it over\n",
		(void *)r->start, f, OWNERLESS_STALE_NS / 1000000000);
	folio_recover(u, r, f);
	return true;
}

/*
 * The folio counts as ownerless for OWNERLESS_STALE_NS only if it has been
 * one lock all along: a wake-up, or a word that changed since the last
 * sleep, is an unlock (the lock changed hands, maybe to a live locker
 * between its two stores), and the time starts again.  (A hand-over that
 * leaves the word as it was and whose wake-up we miss, being awake, is not
 * seen: see OWNERLESS_STALE_NS.)
 */
uint32_t shared_folio_lock(struct uswap *u, struct region *r, uint32_t f)
{
	uint64_t ownerless_since = 0;
	uint32_t w, slept_on = 0;

	for (;;) {
		uint32_t sleep_on;

		if (folio_trylock(&r->pt, f, &w)) {
			folio_own(r, f);
			return w;
		}
		sleep_on = folio_prepare_wait(&r->pt, f);
		if (!sleep_on)
			continue;
		/* changed since the last sleep (between our look at it and
		 * this one): the lock changed hands */
		if (sleep_on != slept_on)
			ownerless_since = 0;
		slept_on = sleep_on;
		if (os_futex_wait_shared(&r->pt.fword[f], sleep_on, SHARED_POLL_NS)) {
			ownerless_since = 0;
			continue;
		}
		waiting_absorb(u);
		if (folio_take_over(u, r, f)) {
			ownerless_since = 0;
			continue;
		}
		if (__atomic_load_n(&meta_owner(r->sh->hdr)[f], __ATOMIC_ACQUIRE) ||
		    folio_word_load(&r->pt, f) != sleep_on) {
			ownerless_since = 0;
		} else if (!ownerless_since) {
			ownerless_since = os_now_ns();
		} else if (os_now_ns() - ownerless_since > OWNERLESS_STALE_NS &&
			   folio_take_over_ownerless(u, r, f, sleep_on)) {
			ownerless_since = 0;
		}
	}
}


/* The mapper table's lock: the word is its holder's pid (see shared.h).
 * A process holds it for a few system calls only; a waiter that wakes to
 * find the holder dead takes it over in one compare-and-swap. */
#define TABLE_WAITERS 0x80000000u

static void table_lock(struct uswap *u, struct shared_header *h)
{
	uint32_t me = (uint32_t)getpid(), waited = 0,
		 w = __atomic_load_n(&h->table_lock, __ATOMIC_RELAXED);

	for (;;) {
		uint32_t holder;

		/* once we slept, others may sleep too: keep the bit for our unlock */
		if (!w) {
			if (__atomic_compare_exchange_n(&h->table_lock, &w, me | waited, false,
							__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				return;
			continue;
		}
		if (!(w & TABLE_WAITERS) &&
		    !__atomic_compare_exchange_n(&h->table_lock, &w, w | TABLE_WAITERS, false,
						 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			continue;
		w |= TABLE_WAITERS;
		waited = TABLE_WAITERS;
		if (!os_futex_wait_shared(&h->table_lock, w, SHARED_POLL_NS)) {
			waiting_absorb(u);
			holder = w & ~TABLE_WAITERS;
			/* the table itself is never left half-changed: a holder that
			 * died (mid-eviction, at exit) only leaves the lock behind */
			if (os_process_gone((int)holder) &&
			    __atomic_compare_exchange_n(&h->table_lock, &w, me | TABLE_WAITERS, false,
							__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				return;
		}
		w = __atomic_load_n(&h->table_lock, __ATOMIC_RELAXED);
	}
}

static void table_unlock(struct shared_header *h)
{
	if (__atomic_exchange_n(&h->table_lock, 0, __ATOMIC_RELEASE) & TABLE_WAITERS)
		os_futex_wake_shared(&h->table_lock);
}

/* ---- the mapper table (under table_lock) ---- */

static int mapper_add(struct shared_region *sh, uint32_t pid, int ufd, void *addr)
{
	int i;

	for (i = 0; i < SHARED_MAPPERS_MAX; i++) {
		struct shared_mapper *m = &sh->hdr->mapper[i];

		if (m->pid)
			continue;
		m->pid = pid;
		m->ufd = ufd;
		m->addr = (uintptr_t)addr;
		sh->self = i;
		return 0;
	}
	return -ENOSPC;
}

static void peer_forget(struct shared_region *sh, int i)
{
	if (sh->peer_fd[i] >= 0)
		os_close(sh->peer_fd[i]);
	sh->peer_fd[i] = -1;
}

/* Mapper i is gone (exited, exec'd, or its descriptor is not a
 * userfaultfd any more): it can write nothing, drop it from the table. */
static void mapper_dead(struct shared_region *sh, int i)
{
	peer_forget(sh, i);
	sh->hdr->mapper[i].pid = 0;
	__atomic_add_fetch(&sh->hdr->mapper_deaths, 1, __ATOMIC_RELEASE);
}

/* The userfaultfd of mapper i, usable here.  @return the fd; -ESRCH or
 * -EBADF when the mapper is gone; -EPERM when we may not take it. */
static int mapper_ufd(struct uswap *u, struct shared_region *sh, int i)
{
	struct shared_mapper *m = &sh->hdr->mapper[i];
	int fd;

	if (i == sh->self)
		return u->ufd;
	if (sh->peer_fd[i] >= 0 && sh->peer_pid[i] == m->pid && sh->peer_ufd[i] == m->ufd)
		return sh->peer_fd[i];
	peer_forget(sh, i);
	fd = os_fd_take((int)m->pid, m->ufd);
	if (fd < 0)
		return fd;
	sh->peer_fd[i] = fd;
	sh->peer_pid[i] = m->pid;
	sh->peer_ufd[i] = m->ufd;
	return fd;
}

/* Errors of a write-protect ioctl that mean the mapper is gone: its mm
 * exited (ESRCH), or the descriptor we hold is not its userfaultfd. */
static bool wp_error_is_dead(int err)
{
	return err == -ESRCH || err == -EBADF || err == -ENOTTY || err == -EINVAL;
}

static int wp_one(struct uswap *u, int fd, uint64_t addr, size_t len, bool protect)
{
	unsigned tries = 0;
	int rc;

	/* EAGAIN: that mm has an event its handlers have not read yet */
	/* the kernel refuses DONTWAKE with protection; lifting one leaves the
	 * waking to the mapper's own handler (or to us, see shared_fault_wp) */
	while ((rc = os_uffd_wp(fd, (void *)(uintptr_t)addr, len, protect,
				protect ? 0 : OS_DONTWAKE)) == -EAGAIN &&
	       tries++ < WP_EAGAIN_RETRIES) {
		ctr_add(u, CTR_ioctl_retries, 1);
		waiting_absorb(u);
		os_sleep_ns(WP_EAGAIN_SLEEP_NS);
	}
	return rc;
}

/*
 * Write-protect (or un-protect) folio f in every mapper.  A mapper that is
 * gone is dropped; one that unmapped the range (ENOENT) has nothing to
 * protect.  On failure the protections already made are lifted.
 * @return 0; -errno (-EPERM: a mapper's userfaultfd may not be taken).
 */
static int protect_all(struct uswap *u, struct shared_region *sh, uint32_t f, bool protect)
{
	struct shared_header *h = sh->hdr;
	size_t fs = folio_bytes(u);
	uint64_t off = (uint64_t)f * fs;
	int i, rc = 0;

	for (i = 0; i < SHARED_MAPPERS_MAX; i++) {
		int fd;

		if (!h->mapper[i].pid)
			continue;
		fd = mapper_ufd(u, sh, i);
		if (fd == -ESRCH || fd == -EBADF) {
			mapper_dead(sh, i);
			continue;
		}
		if (fd < 0) {
			rc = fd;
			fprintf(stderr, "uswap: shared region: cannot take the userfaultfd of process "
					"%u, which maps it (pidfd_getfd: %s): its folios cannot be "
					"evicted safely; give this process ptrace permission over it "
					"(same user and kernel.yama.ptrace_scope=0, or CAP_SYS_PTRACE)\n",
				h->mapper[i].pid, strerror(-fd));
			break;
		}
		rc = wp_one(u, fd, h->mapper[i].addr + off, fs, protect);
		if (rc && wp_error_is_dead(rc) && i != sh->self) {
			mapper_dead(sh, i);
			rc = 0;
		} else if (rc == -ENOENT) {
			rc = 0; /* not registered there any more: unmapped */
		}
		if (rc)
			break;
	}
	if (rc && protect) {
		int j;

		for (j = 0; j < i; j++)
			if (h->mapper[j].pid && mapper_ufd(u, sh, j) >= 0)
				wp_one(u, mapper_ufd(u, sh, j), h->mapper[j].addr + off, fs, false);
	}
	return rc;
}

/* ---- creating and attaching ---- */

static int header_init(int fd, size_t len, unsigned order)
{
	struct shared_header h;

	memset(&h, 0, sizeof(h));
	h.magic = SHARED_MAGIC;
	h.version = SHARED_VERSION;
	h.folio_order = order;
	h.len = len;
	h.meta_len = meta_bytes(len, order);
	h.window = round_up(folio_blob_bound(1u << order), OS_PAGE_SIZE);
	return os_file_write(fd, &h, sizeof(h), 0);
}

/* Check that fd holds a shared region of len bytes and our folio size. */
static int header_check(struct uswap *u, int fd, size_t len, struct shared_header *h)
{
	long size = os_file_size(fd);
	int rc = size < (long)sizeof(*h) ? -EINVAL : os_file_read(fd, h, sizeof(*h), 0);

	if (rc || h->magic != SHARED_MAGIC || h->version != SHARED_VERSION ||
	    h->meta_len != meta_bytes(h->len, h->folio_order) ||
	    (uint64_t)size < h->meta_len + h->len + shared_nfolios(h) * h->window)
		return errmsg_set(-EINVAL, "uswap_map_fd: descriptor %d is not a uswap shared "
					   "region (give one from uswap_region_fd)", fd);
	if (h->folio_order != u->p.folio_order)
		return errmsg_set(-EINVAL, "uswap_map_fd: the region has folios of %zu bytes, this "
					   "instance %zu: open it with folio_size %zu",
				  (size_t)OS_PAGE_SIZE << h->folio_order, folio_bytes(u),
				  (size_t)OS_PAGE_SIZE << h->folio_order);
	if (len != h->len)
		return errmsg_set(-EINVAL, "uswap_map_fd: length %zu does not match the region's "
					   "%llu bytes", len, (unsigned long long)h->len);
	return 0;
}

/* Map the data part at a folio-aligned address and register it. */
static int data_map(struct uswap *u, struct shared_region *sh, struct region *r)
{
	size_t len = sh->hdr->len;
	char *at = os_mem_map_aligned(len, folio_bytes(u));
	int rc;

	if (!at)
		return -ENOMEM;
	r->start = os_file_map(sh->fd, len, sh->hdr->meta_len, at);
	if (!r->start) {
		os_mem_unmap(at, len);
		return -ENOMEM;
	}
	rc = os_region_prepare(r->start, len);
	if (!rc)
		rc = os_uffd_register(u->ufd, r->start, len, true);
	if (rc) {
		errmsg_set(rc, "uswap_map: registering %zu bytes of shared memory with userfaultfd "
			       "failed", len);
		os_mem_unmap(r->start, len);
	}
	return rc;
}

int shared_region_create(struct uswap *u, int fd, size_t len, struct region **out)
{
	unsigned order = u->p.folio_order;
	struct shared_header h;
	struct shared_region *sh;
	struct region *r;
	int i, rc;

	if (!(u->features & OS_UFFD_WP_SHMEM))
		return errmsg_set(-ENOTSUP, "shared regions need write-protection of shared memory "
					    "(UFFD_FEATURE_WP_HUGETLBFS_SHMEM, Linux 6.1 or later), "
					    "which this kernel's userfaultfd lacks");
	r = calloc(1, sizeof(*r));
	sh = calloc(1, sizeof(*sh));
	if (!r || !sh) {
		rc = -ENOMEM;
		goto err_free;
	}
	for (i = 0; i < SHARED_MAPPERS_MAX; i++)
		sh->peer_fd[i] = -1;
	if (fd < 0) {
		size_t nfolios = len >> (order + OS_PAGE_SHIFT);

		rc = os_memfd_create("uswap-shared",
				     meta_bytes(len, order) + len +
					     nfolios * round_up(folio_blob_bound(1u << order),
								OS_PAGE_SIZE));
		if (rc < 0) {
			errmsg_set(rc, "uswap_map: memfd_create for %zu shared bytes: %s", len,
				   strerror(-rc));
			goto err_free;
		}
		sh->fd = rc;
		rc = header_init(sh->fd, len, order);
	} else {
		rc = header_check(u, fd, len, &h);
		if (!rc) {
			sh->fd = os_dup(fd);
			rc = sh->fd < 0 ? sh->fd : 0;
		}
		if (rc)
			goto err_free;
	}
	if (rc)
		goto err_close;
	sh->hdr = os_file_map(sh->fd, meta_bytes(len, order), 0, NULL);
	if (!sh->hdr) {
		rc = -ENOMEM;
		goto err_close;
	}
	sh->blob_len = meta_blob_len(sh->hdr);
	/* the folio words and zero map are the shared ones; page entries stay
	 * private and empty (shared folios have no slots) */
	r->sh = sh;
	r->len = len;
	r->npages = (uint32_t)(len >> OS_PAGE_SHIFT);
	r->pt.folio_order = order;
	r->pt.nfolios = shared_nfolios(sh->hdr);
	r->pt.fword = meta_fwords(sh->hdr);
	r->pt.zeromap = meta_zeromap(sh->hdr);
	r->pt.entry = calloc(r->npages, sizeof(*r->pt.entry));
	if (!r->pt.entry) {
		rc = -ENOMEM;
		goto err_meta;
	}
	rc = data_map(u, sh, r);
	if (rc)
		goto err_entries;
	table_lock(u, sh->hdr);
	rc = mapper_add(sh, (uint32_t)getpid(), u->ufd, r->start);
	table_unlock(sh->hdr);
	if (rc) {
		errmsg_set(rc, "uswap_map_fd: the region has %d mappers already (at most %d)",
			   SHARED_MAPPERS_MAX, SHARED_MAPPERS_MAX);
		goto err_data;
	}
	*out = r;
	return 0;

err_data:
	os_uffd_unregister(u->ufd, r->start, len);
	os_mem_unmap(r->start, len);
err_entries:
	free(r->pt.entry);
err_meta:
	os_mem_unmap(sh->hdr, meta_bytes(len, order));
err_close:
	os_close(sh->fd);
err_free:
	free(sh);
	free(r);
	return rc;
}

void shared_region_destroy(struct uswap *u, struct region *r)
{
	struct shared_region *sh = r->sh;
	struct shared_header *h = sh->hdr;
	int i;

	table_lock(u, h);
	if (h->mapper[sh->self].pid == (uint32_t)getpid())
		h->mapper[sh->self].pid = 0;
	table_unlock(h);
	__atomic_fetch_sub(&u->nshared, 1, __ATOMIC_RELAXED);
	for (i = 0; i < SHARED_MAPPERS_MAX; i++)
		peer_forget(sh, i);
	/* the folios stay as they are: the other mappers keep using them (the
	 * memfd goes when its last mapping and descriptor do) */
	if (!sh->unmapped) {
		os_uffd_unregister(u->ufd, r->start, r->len);
		os_mem_unmap(r->start, r->len);
	}
	os_mem_unmap(h, h->meta_len);
	os_close(sh->fd);
	free(sh);
	free(r->pt.entry);
	free(r);
}

bool shared_region_unmapped(struct region *r, uint64_t start, uint64_t end)
{
	if (start > (uintptr_t)r->start || end < (uintptr_t)r->start + r->len)
		return false;
	r->sh->unmapped = true;
	return true;
}

/* ---- the record of where a folio's data is, and recovery ---- */

/* Lower the resident count, never below zero (a taker-over may not know
 * whether the dead owner had counted). */
static void resident_sub(struct shared_header *h)
{
	uint64_t n = __atomic_load_n(&h->resident, __ATOMIC_RELAXED);

	while (n && !__atomic_compare_exchange_n(&h->resident, &n, n - 1, true, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED))
		;
}

/* Folio f's data is in its window (and the zero map): a blob, or zero
 * bits.  A folio in memory has neither. */
static bool folio_recorded(const struct region *r, uint32_t f)
{
	uint32_t p0 = f << r->pt.folio_order;

	if (__atomic_load_n(&r->sh->blob_len[f], __ATOMIC_ACQUIRE))
		return true;
	for (unsigned i = 0; i < folio_pages(&r->pt); i++)
		if (zeromap_test(&r->pt, p0 + i))
			return true;
	return false;
}

static void folio_record_clear(struct region *r, uint32_t f)
{
	uint32_t p0 = f << r->pt.folio_order;

	for (unsigned i = 0; i < folio_pages(&r->pt); i++)
		zeromap_clear(&r->pt, p0 + i);
	__atomic_store_n(&r->sh->blob_len[f], 0, __ATOMIC_RELEASE);
}

/*
 * Folio f's owner died in an eviction or a swap-in; we hold the folio now.
 * Each of them changes the record in one place, so the record says where
 * the data is: recorded = in the window (an eviction that got that far, or
 * a swap-in that had not cleared it yet): drop any copy in the data part;
 * not recorded = in the data part (an eviction that had not recorded, or a
 * swap-in that had): drop the window.  The protections the dead process
 * may have left are lifted.  Then the folio is unlocked in that state.
 */
static void folio_recover(struct uswap *u, struct region *r, uint32_t f)
{
	struct shared_region *sh = r->sh;
	struct shared_header *h = sh->hdr;
	enum folio_state was = folio_state_of(folio_word_load(&r->pt, f)), to = was;

	if (folio_recorded(r, f)) {
		os_file_punch(sh->fd, data_off(h, f), folio_bytes(u));
		to = FOLIO_OUT;
		resident_sub(h); /* counted by the dead evictor's fault, or charged at swap-in */
	} else if (was != FOLIO_EMPTY) {
		os_file_punch(sh->fd, window_off(h, f), h->window);
		to = FOLIO_RESIDENT;
	}
	table_lock(u, h);
	protect_all(u, sh, f, false);
	table_unlock(h);
	/* the dead process held the lock bits: put the word right, waking all */
	folio_disown(r, f);
	folio_unlock_wake(r, f, to, 0, FOLIO_BUSY);
}

/* ---- eviction ---- */

int shared_evict(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f)
{
	struct shared_region *sh = r->sh;
	struct shared_header *h = sh->hdr;
	unsigned npages = folio_pages(&r->pt), i;
	uint32_t p0 = f << r->pt.folio_order;
	struct folio_encode_result res = { 0 };
	int rc;

	folio_own(r, f);
	table_lock(u, h);
	if (h->pending_forks && os_now_ns() - h->pending_since > FORK_PENDING_STALE_NS) {
		fprintf(stderr, "uswap: shared region %p: %u forked child(ren) never entered the "
				"mapper table (killed before uswap's fork handler ran?): evicting again\n",
			(void *)r->start, h->pending_forks);
		h->pending_forks = 0;
	}
	if (h->pending_forks) {
		rc = -EAGAIN; /* a child not in the table yet could write unseen */
		goto out_unlock;
	}
	rc = protect_all(u, sh, f, true);
	if (rc)
		goto out_unlock;
	/* every mapper's writes now wait for us: this copy is the last word */
	rc = os_file_read(sh->fd, c->scratch, folio_bytes(u), data_off(h, f));
	if (!rc) {
		rc = folio_encode(u->p.codec, c->scratch, npages, c->blob, c->scratch2, &res);
		if (rc)
			ctr_add(u, CTR_reclaim_fail_codec, 1);
	}
	if (!rc && res.blob_len)
		rc = os_file_write(sh->fd, c->blob, res.blob_len, window_off(h, f));
	if (!rc) {
		/* the record (zero bits, blob length) before the punch: a taker-over
		 * of a folio whose evictor died knows from it where the data is */
		for (i = 0; i < npages; i++)
			if (res.zero_mask[i / 64] >> (i % 64) & 1)
				zeromap_set(&r->pt, p0 + i);
		__atomic_store_n(&sh->blob_len[f], (uint32_t)res.blob_len, __ATOMIC_RELEASE);
		rc = os_file_punch(sh->fd, data_off(h, f), folio_bytes(u));
		if (rc)
			folio_record_clear(r, f);
	}
	if (rc) {
		if (res.blob_len)
			os_file_punch(sh->fd, window_off(h, f), h->window);
		protect_all(u, sh, f, false);
		if (rc != -EINVAL)
			ctr_add(u, rc == -ENOSPC ? CTR_reclaim_fail_store_full
						 : CTR_reclaim_fail_other, 1);
		goto out_unlock;
	}
	/* the pages are gone everywhere; a write-protection left on a hole
	 * would only cost the next writer a fault */
	protect_all(u, sh, f, false);
	resident_sub(h);
	ctr_add(u, CTR_swapout_pages, res.data + res.same);
	ctr_add(u, CTR_zero_pages_out, res.zero);
	ctr_add(u, CTR_same_filled_pages, res.same);
	if (res.raw)
		ctr_add(u, CTR_incompressible_folios, 1);
	if (r->pt.folio_order > 0 && res.blob_len)
		ctr_add(u, CTR_swapout_folios, 1);
out_unlock:
	table_unlock(h);
	folio_disown(r, f);
	return rc;
}

/* ---- swap-in ---- */

/*
 * Bring folio f (locked, EMPTY or OUT) into the memfd's page cache through
 * our mapping: every mapper sees it from then on.  The faulting threads
 * are left asleep (the caller wakes).  @return 0; -errno (folio unchanged).
 */
static int swap_in_owned(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			 uint32_t word);

static int shared_swap_in(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			  uint32_t word)
{
	int rc;

	folio_own(r, f);
	rc = swap_in_owned(u, c, r, f, word);
	return rc;
}

static int swap_in_owned(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f,
			 uint32_t word)
{
	struct shared_region *sh = r->sh;
	struct shared_header *h = sh->hdr;
	unsigned npages = folio_pages(&r->pt), i, nzero = 0;
	uint32_t p0 = f << r->pt.folio_order, blen = sh->blob_len[f];
	char *base = r->start + ((size_t)p0 << OS_PAGE_SHIFT);
	uint8_t kind[FOLIO_MAX_PAGES];
	int rc;

	if (folio_state_of(word) == FOLIO_EMPTY || blen == 0) {
		memset(kind, PAGE_ZERO, npages);
		rc = install_kinds(u, base, NULL, kind, npages, 0, false, NULL);
		if (rc < 0)
			return rc;
		ctr_add(u, folio_state_of(word) == FOLIO_EMPTY ? CTR_first_touch_folios
							       : CTR_zero_pages_in,
			folio_state_of(word) == FOLIO_EMPTY ? 1 : npages);
		goto done;
	}
	rc = os_file_read(sh->fd, c->blob, blen, window_off(h, f));
	if (!rc)
		rc = folio_decode(c->blob, blen, c->scratch, npages, NULL);
	if (rc) {
		ctr_add(u, rc == -EILSEQ ? CTR_swapin_fail_corrupt : CTR_swapin_fail_read, 1);
		return rc;
	}
	for (i = 0; i < npages; i++) {
		kind[i] = zeromap_test(&r->pt, p0 + i) ? PAGE_ZERO : PAGE_DATA;
		nzero += kind[i] == PAGE_ZERO;
	}
	rc = install_kinds(u, base, c->scratch, kind, npages, 0, false, NULL);
	if (rc < 0) {
		/* what was installed is right, but the folio is not whole: punch
		 * it out again so that it stays OUT as recorded */
		os_file_punch(sh->fd, data_off(h, f), folio_bytes(u));
		ctr_add(u, CTR_swapin_fail_install, 1);
		return rc;
	}
	/* the record goes before the window: see folio_recover */
	folio_record_clear(r, f);
	os_file_punch(sh->fd, window_off(h, f), h->window);
	ctr_add(u, CTR_swapin_pages, npages - nzero);
	ctr_add(u, CTR_zero_pages_in, nzero);
	if (r->pt.folio_order > 0)
		ctr_add(u, CTR_swapin_folios, 1);
done:
	folio_record_clear(r, f);
	return 0;
}

/* Charge one more shared resident folio, making room for it first. */
static void shared_charge(struct uswap *u, struct region *r, struct folio_ctx *c)
{
	budget_charge_to(u, c, &r->sh->hdr->resident, 1, folio_pages(&r->pt));
}

static char *folio_base(const struct region *r, uint32_t f)
{
	return r->start + ((size_t)f << (r->pt.folio_order + OS_PAGE_SHIFT));
}

static int shared_fault_locked(struct uswap *u, struct folio_ctx *c, struct region *r,
			       uint64_t addr);

int shared_fault(struct uswap *u, struct folio_ctx *c, struct region *r, uint64_t addr)
{
	int rc;

	in_fault = true;
	rc = shared_fault_locked(u, c, r, addr);
	in_fault = false;
	return rc;
}

static int shared_fault_locked(struct uswap *u, struct folio_ctx *c, struct region *r,
			       uint64_t addr)
{
	uint32_t f = (uint32_t)((addr - (uintptr_t)r->start) >> (OS_PAGE_SHIFT + r->pt.folio_order));
	uint32_t word;
	int rc;

	ctr_add(u, CTR_faults, 1);
	word = shared_folio_lock(u, r, f);
	if (folio_state_of(word) == FOLIO_RESIDENT) {
		/* another mapper brought it in after our fault was raised (or the
		 * page was punched behind our back: a hole reads as zero) */
		ctr_add(u, CTR_faults_stale, 1);
		if (range_install(u, u->ufd, INSTALL_ZERO, (char *)(uintptr_t)addr, NULL,
				  OS_PAGE_SIZE, 0) != 1)
			os_uffd_wake(u->ufd, (void *)(uintptr_t)addr, OS_PAGE_SIZE);
		shared_folio_unlock(r, f, FOLIO_RESIDENT, FOLIO_REFERENCED, 0);
		return 0;
	}
	shared_charge(u, r, c);
	rc = shared_swap_in(u, c, r, f, word);
	if (rc) {
		resident_sub(r->sh->hdr);
		shared_folio_unlock(r, f, folio_state_of(word), 0, 0);
		if (rc == -EILSEQ) {
			fprintf(stderr, "uswap: shared region %p folio %u: stored data is corrupt; "
					"the access gets SIGBUS\n", (void *)r->start, f);
			ctr_add(u, CTR_fault_poisoned, 1);
			if (os_uffd_poison(u->ufd, (void *)(uintptr_t)addr, OS_PAGE_SIZE) < 0)
				os_uffd_wake(u->ufd, (void *)(uintptr_t)addr, OS_PAGE_SIZE);
			return 0;
		}
		return rc; /* the caller retries */
	}
	os_uffd_wake(u->ufd, folio_base(r, f), folio_bytes(u));
	shared_folio_unlock(r, f, FOLIO_RESIDENT, FOLIO_REFERENCED, FOLIO_BUSY);
	return 0;
}

void shared_fault_wp(struct uswap *u, struct region *r, uint64_t addr)
{
	uint32_t f = (uint32_t)((addr - (uintptr_t)r->start) >> (OS_PAGE_SHIFT + r->pt.folio_order));
	uint32_t word;
	int rc;

	ctr_add(u, CTR_wp_faults, 1);
	in_fault = true;
	/* waits while the folio is being evicted: the write lands after it,
	 * in the folio brought in again (the access faults once more) */
	word = shared_folio_lock(u, r, f);
	rc = wp_one(u, u->ufd, (uintptr_t)folio_base(r, f), folio_bytes(u), false);
	os_uffd_wake(u->ufd, folio_base(r, f), folio_bytes(u));
	if (rc && rc != -ENOENT)
		fprintf(stderr, "uswap: shared region %p: lifting a write-protection failed: %s\n",
			(void *)r->start, strerror(-rc));
	shared_folio_unlock(r, f, folio_state_of(word), FOLIO_REFERENCED, 0);
	in_fault = false;
}

int shared_advise(struct uswap *u, struct folio_ctx *c, struct region *r, uint32_t f, int advice)
{
	uint32_t word, set = 0, clear = 0;
	enum folio_state st;
	int rc = 0;

	if (advice != USWAP_ADV_PAGEOUT && advice != USWAP_ADV_WILLNEED)
		return errmsg_set(-EINVAL, "uswap_advise: advice %d on shared region %p: only "
					   "USWAP_ADV_PAGEOUT and USWAP_ADV_WILLNEED are supported "
					   "on shared regions",
				  advice, (void *)r->start);
	word = shared_folio_lock(u, r, f);
	st = folio_state_of(word);
	if (advice == USWAP_ADV_PAGEOUT && st == FOLIO_RESIDENT) {
		rc = shared_evict(u, c, r, f);
		if (!rc) {
			st = FOLIO_OUT;
			clear = FOLIO_REFERENCED;
			ctr_add(u, CTR_reclaim_advice, 1);
		} else if (rc == -EAGAIN) {
			set = FOLIO_BUSY; /* a fork in progress: skipped, as busy pages are */
			ctr_add(u, CTR_reclaim_fail_busy, 1);
			rc = 0;
		}
	} else if (advice == USWAP_ADV_WILLNEED && st != FOLIO_RESIDENT) {
		shared_charge(u, r, c);
		rc = shared_swap_in(u, c, r, f, word);
		if (rc) {
			resident_sub(r->sh->hdr);
		} else {
			os_uffd_wake(u->ufd, folio_base(r, f), folio_bytes(u));
			st = FOLIO_RESIDENT;
			set = FOLIO_REFERENCED;
		}
	}
	shared_folio_unlock(r, f, st, set, clear);
	return rc;
}

/* ---- queries, budget, fork ---- */

void shared_folio_words(const struct region *r, uint32_t f, uint32_t word, unsigned first,
			unsigned n, uint64_t *out)
{
	uint32_t p0 = f << r->pt.folio_order;
	enum folio_state st = folio_state_of(word);
	uint64_t base = (uint64_t)r->pt.folio_order << 8 | USWAP_PM_SHARED;
	unsigned i;

	for (i = 0; i < n; i++) {
		uint32_t p = p0 + first + i;

		if (st == FOLIO_EMPTY)
			out[i] = 0;
		else if (st == FOLIO_RESIDENT)
			out[i] = base | USWAP_PM_PRESENT;
		else if (zeromap_test(&r->pt, p))
			out[i] = base | USWAP_PM_ZERO;
		else
			out[i] = base | USWAP_PM_SWAPPED;
	}
}

uint64_t shared_resident(struct uswap *u)
{
	uint64_t n = 0;
	size_t i;

	if (!__atomic_load_n(&u->nshared, __ATOMIC_RELAXED))
		return 0;
	for (i = 0; i < u->regions.n; i++)
		if (u->regions.v[i]->sh)
			n += __atomic_load_n(&u->regions.v[i]->sh->hdr->resident, __ATOMIC_RELAXED);
	return n;
}

void shared_prefork(struct uswap *u)
{
	size_t i;

	for (i = 0; i < u->regions.n; i++) {
		struct shared_region *sh = u->regions.v[i]->sh;

		if (!sh)
			continue;
		table_lock(u, sh->hdr);
		sh->hdr->pending_forks++;
		sh->hdr->pending_since = os_now_ns();
		table_unlock(sh->hdr);
	}
}

void shared_postfork_child(struct uswap *u)
{
	size_t i;

	for (i = 0; i < u->regions.n; i++) {
		struct region *r = u->regions.v[i];
		struct shared_region *sh = r->sh;
		int rc;

		if (!sh)
			continue;
		table_lock(u, sh->hdr);
		rc = mapper_add(sh, (uint32_t)getpid(), u->ufd, r->start);
		if (sh->hdr->pending_forks)
			sh->hdr->pending_forks--;
		table_unlock(sh->hdr);
		if (rc) {
			/* not in the table, its writes could be lost: never let them
			 * happen (the write-protection would not reach this process) */
			fprintf(stderr, "uswap: fork: shared region %p has %d mappers already; the "
					"child cannot map it safely and stops\n",
				(void *)r->start, SHARED_MAPPERS_MAX);
			abort();
		}
	}
}

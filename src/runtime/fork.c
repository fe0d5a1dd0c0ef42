/* SPDX-License-Identifier: MIT */
/*
 * fork() of a process with managed memory.
 *
 * The kernel copies the regions into the child and, because the
 * userfaultfd asks for fork events (UFFD_FEATURE_EVENT_FORK), keeps them
 * registered there with a new userfaultfd of the child's own: a page
 * missing in the child faults instead of reading as zero, and the
 * write-protection of swap-cached pages survives.  The new descriptor is
 * handed to the parent, in the fork event; the child needs it.
 *
 *   prepare (parent, pthread_atfork): every folio operation finishes and no
 *     new one starts (fork_lock for writing), the region table, the clock
 *     and the buffers are locked, the slot map and the store take their
 *     own locks, and every slot in use is marked SHARED: from now on two
 *     processes refer to it.  A socket pair is made for the hand-over.
 *   the kernel copies the address space: the child's copy of uswap's state
 *     (page tables, slot map, store) is exactly what its memory needs.
 *   parent: a handler thread reads the fork event and sends the child's
 *     userfaultfd over the socket; postfork unlocks everything.
 *   child: the one thread there makes every lock anew, receives its
 *     userfaultfd, makes new staging folios, eventfds and threads: from
 *     then on it is an instance of its own.
 *
 * Each process owns its copy of the slot map and of the store (the ram
 * store lives in process memory, so the kernel's copy-on-write shares its
 * pages until either side changes them): a slot is freed in one process
 * when that process no longer needs it, whatever the other does.  The
 * SHARED mark is what tells a write to a swap-cached page that the stored
 * copy was shared (swapcache_copy) rather than exclusively its own
 * (swapcache_reuse), and what the pagemap query reports.  The file and
 * redis stores share their medium between the processes: their fork hooks
 * keep every object alive at the fork (neither process frees its space)
 * and give the child a file or key prefix of its own to write to
 * (docs/STORES.md, fork).
 *
 * Code that runs in the child before uswap's handler (atfork child
 * handlers registered before uswap's) must not touch managed memory: its
 * fault would wait for a handler that does not exist yet.
 */
#include "instance.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "os/os.h"
#include "shared.h"

#define CHILD_UFFD_TIMEOUT_MS 30000

static pthread_mutex_t instances_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uswap *instances;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void mark_slots_shared(struct uswap *u)
{
	size_t i;

	for (i = 0; i < u->regions.n; i++) {
		struct region *r = u->regions.v[i];
		uint32_t p;

		for (p = 0; p < r->npages; p++)
			if (entry_has_slot(r->pt.entry[p]))
				r->pt.entry[p] |= ENTRY_SHARED;
	}
}

static void instance_prefork(struct uswap *u)
{
	int sv[2];

	if (os_socketpair(sv)) {
		sv[0] = sv[1] = -1;
		fprintf(stderr, "uswap: fork: no socket pair for the child's userfaultfd: the child "
				"will stop at once\n");
	}
	u->fork_sock[1] = sv[1];
	/* published to the handler that will read the fork event: the kernel
	 * orders the event after this, but only the release/acquire pair says
	 * so to the program (and to ThreadSanitizer) */
	__atomic_store_n(&u->fork_sock[0], sv[0], __ATOMIC_RELEASE);
	__atomic_store_n(&u->fork_fd_sent, 0, __ATOMIC_RELEASE);
	pthread_rwlock_wrlock(&u->fork_lock);
	regions_write_lock(&u->regions);
	pthread_mutex_lock(&u->clock_lock);
	pthread_mutex_lock(&u->ctx_lock);
	pthread_mutex_lock(&u->ra_lock);
	shared_prefork(u);
	mark_slots_shared(u);
	slotmap_prefork(u->slots);
	if (u->p.store_ops->prefork)
		u->p.store_ops->prefork(u->store);
}

void fork_event(struct uswap *u, int child_ufd)
{
	int sock = __atomic_load_n(&u->fork_sock[0], __ATOMIC_ACQUIRE);
	int rc = sock >= 0 ? os_send_fd(sock, child_ufd) : -EBADF;

	if (rc)
		fprintf(stderr, "uswap: fork: cannot pass the userfaultfd to the child: %s\n",
			strerror(-rc));
	os_close(child_ufd);
	__atomic_store_n(&u->fork_fd_sent, 1, __ATOMIC_RELEASE);
	os_futex_wake_all(&u->fork_fd_sent);
}

static void instance_postfork_parent(struct uswap *u)
{
	if (u->p.store_ops->postfork_parent)
		u->p.store_ops->postfork_parent(u->store);
	slotmap_postfork_parent(u->slots);
	pthread_mutex_unlock(&u->ra_lock);
	pthread_mutex_unlock(&u->ctx_lock);
	pthread_mutex_unlock(&u->clock_lock);
	/* The kernel sends the fork event only when a registered range was
	 * copied; fork() returned, so the event has been read: wait for the
	 * handler that read it to pass the descriptor on before closing. */
	if (u->regions.n)
		while (!__atomic_load_n(&u->fork_fd_sent, __ATOMIC_ACQUIRE))
			os_futex_wait(&u->fork_fd_sent, 0);
	regions_write_unlock(&u->regions);
	pthread_rwlock_unlock(&u->fork_lock);
	if (u->fork_sock[0] >= 0) {
		os_close(u->fork_sock[0]);
		os_close(u->fork_sock[1]);
	}
}

/* The child: fail loudly rather than leave its memory without a handler. */
static void child_fatal(const char *what, int err)
{
	fprintf(stderr, "uswap: fork: the child process cannot serve its managed memory: %s: %s\n",
		what, strerror(-err));
	abort();
}

static void child_new_locks(struct uswap *u)
{
	int sock[2] = { u->fork_sock[0], u->fork_sock[1] };

	fork_lock_init(u);
	u->fork_sock[0] = sock[0];
	u->fork_sock[1] = sock[1];
	regions_init_locks(&u->regions);
	pthread_mutex_init(&u->clock_lock, NULL);
	pthread_mutex_init(&u->ctx_lock, NULL);
	pthread_mutex_init(&u->ra_lock, NULL);
	u->ra_n = 0; /* the parent's requests are the parent's */
	pthread_mutex_init(&u->read_lock, NULL);
	pthread_mutex_init(&u->queue.lock, NULL);
	/* messages the parent had queued are the parent's */
	u->queue.head = u->queue.n = 0;
	u->queue.draining = 0;
	slotmap_postfork_child(u->slots);
	if (u->p.store_ops->postfork_child)
		u->p.store_ops->postfork_child(u->store);
}

/* The parent's threads do not exist here: free their buffers (the staging
 * folios were not even copied: MADV_DONTFORK). */
static void child_forget_threads(struct uswap *u)
{
	struct folio_ctx *c;
	unsigned i;

	if (u->workers) {
		for (i = 0; i < u->nworkers; i++)
			folio_ctx_forget_in_child(u, &u->workers[i].ctx);
		os_mem_unmap(u->workers, sizeof(*u->workers) * u->nworkers);
		u->workers = NULL;
	}
	if (u->reclaimer_started)
		folio_ctx_forget_in_child(u, &u->reclaim_ctx);
	u->reclaimer_started = false;
	while ((c = u->ctx_free)) {
		u->ctx_free = c->next_free;
		folio_ctx_forget_in_child(u, c);
		os_mem_unmap(c, sizeof(*c));
	}
}

static void instance_postfork_child(struct uswap *u)
{
	sigset_t all, old;
	unsigned got;
	int fd;

	child_new_locks(u);
	child_forget_threads(u);
	if (u->regions.n) {
		fd = u->fork_sock[1] >= 0 ? os_recv_fd(u->fork_sock[1], CHILD_UFFD_TIMEOUT_MS)
					  : -EBADF;
		if (fd < 0)
			child_fatal("receiving its userfaultfd", fd);
	} else {
		fd = os_uffd_open(u->features, &got);
		if (fd < 0)
			child_fatal("opening a userfaultfd", fd);
	}
	if (u->fork_sock[0] >= 0) {
		os_close(u->fork_sock[0]);
		os_close(u->fork_sock[1]);
	}
	os_close(u->ufd);
	u->ufd = fd;
	shared_postfork_child(u);
	os_close(u->staging_fd);
	u->staging_fd = os_uffd_open(OS_UFFD_MOVE, &got);
	if (u->staging_fd < 0)
		child_fatal("opening the staging userfaultfd", u->staging_fd);
	/* eventfds are shared files: the parent's would wake the parent */
	os_close(u->stop_fd);
	os_close(u->kick_fd);
	u->stop_fd = os_eventfd();
	u->kick_fd = os_eventfd();
	if (u->stop_fd < 0 || u->kick_fd < 0)
		child_fatal("making eventfds", u->stop_fd < 0 ? u->stop_fd : u->kick_fd);
	u->stopping = 0;
	/* the threads inherit this mask: none of the program's signal
	 * handlers may run on them (the forking thread's mask may allow it) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if ((fd = handlers_start(u)) || (fd = reclaimer_start(u)))
		child_fatal("starting its threads", fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void atfork_prepare(void)
{
	struct uswap *u;

	pthread_mutex_lock(&instances_lock);
	for (u = instances; u; u = u->next_instance)
		instance_prefork(u);
}

static void atfork_parent(void)
{
	struct uswap *u;

	for (u = instances; u; u = u->next_instance)
		instance_postfork_parent(u);
	pthread_mutex_unlock(&instances_lock);
}

static void atfork_child(void)
{
	struct uswap *u;

	pthread_mutex_init(&instances_lock, NULL);
	os_postfork_child();
	for (u = instances; u; u = u->next_instance)
		instance_postfork_child(u);
}

static void atfork_install(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* The lock every folio operation holds for reading: made before any
 * thread of the instance starts. */
void fork_lock_init(struct uswap *u)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	/* writer first: fork waits for operations in flight, not for ever */
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&u->fork_lock, &a);
	pthread_rwlockattr_destroy(&a);
	u->fork_sock[0] = u->fork_sock[1] = -1;
}

int fork_register(struct uswap *u)
{
	pthread_once(&atfork_once, atfork_install);
	pthread_mutex_lock(&instances_lock);
	u->next_instance = instances;
	instances = u;
	pthread_mutex_unlock(&instances_lock);
	return 0;
}

void fork_unregister(struct uswap *u)
{
	struct uswap **p;

	pthread_mutex_lock(&instances_lock);
	for (p = &instances; *p; p = &(*p)->next_instance) {
		if (*p == u) {
			*p = u->next_instance;
			break;
		}
	}
	pthread_mutex_unlock(&instances_lock);
}

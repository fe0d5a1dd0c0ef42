/* SPDX-License-Identifier: MIT */
/*
 * API calls that lock folios run with the program's signals blocked: a
 * signal handler that touched a folio the interrupted call holds locked
 * would wait for it for ever.
 */
#ifndef USWAP_LIB_SIGNALS_H
#define USWAP_LIB_SIGNALS_H

#include <pthread.h>
#include <signal.h>

static inline void signals_block(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

static inline void signals_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Assertion tiers, after mimalloc's mi_assert / mi_assert_internal /
 * mi_assert_expensive:
 *
 *   core_assert(e)            always on.  Cheap checks whose failure means
 *                             the state is corrupt: going on would lose or
 *                             mix up data, so stopping is the safe outcome.
 *   core_assert_debug(e)      on when USWAP_DEBUG >= 1 (CMake defines
 *                             USWAP_DEBUG=1 in every non-Release build).
 *   core_assert_expensive(e)  on when USWAP_DEBUG >= 2: checks that cost
 *                             O(n) or more, such as whole invariant checkers.
 *
 * A failed assertion prints the expression and where it is, then aborts.
 * A disabled tier does not evaluate e, but still type-checks it, so that a
 * variable used only in assertions does not warn in release builds.
 * CORE_DEBUG is the level in force (0, 1, 2) for code that needs an #if.
 */
#ifndef USWAP_CORE_ASSERT_H
#define USWAP_CORE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#if defined(USWAP_DEBUG)
#define CORE_DEBUG (USWAP_DEBUG + 0)
#else
#define CORE_DEBUG 0
#endif

__attribute__((noreturn, cold)) static inline void
core_assert_fail(const char *expr, const char *file, int line, const char *func)
{
	fprintf(stderr, "uswap: assertion failed: %s (%s:%d in %s)\n", expr, file, line, func);
	abort();
}

#define core_assert(e)                                                                             \
	(__builtin_expect(!!(e), 1) ? (void)0 : core_assert_fail(#e, __FILE__, __LINE__, __func__))

#define core_assert_off(e) ((void)sizeof(!(e)))

#if CORE_DEBUG >= 1
#define core_assert_debug(e) core_assert(e)
#else
#define core_assert_debug(e) core_assert_off(e)
#endif

#if CORE_DEBUG >= 2
#define core_assert_expensive(e) core_assert(e)
#else
#define core_assert_expensive(e) core_assert_off(e)
#endif

#endif

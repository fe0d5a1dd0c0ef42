/* SPDX-License-Identifier: MIT */
/*
 * The detailed message behind a failing call, kept per thread so that
 * uswap_last_error() can name the bad value and what is allowed.
 */
#ifndef USWAP_ERRMSG_H
#define USWAP_ERRMSG_H

/* Format the message for this thread and @return err (a negative errno),
 * so that callers can write `return errmsg_set(-EINVAL, "...", v);`. */
int errmsg_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void errmsg_clear(void);
const char *errmsg_get(void);

#endif

/* SPDX-License-Identifier: MIT */
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char errmsg_buf[512];

int errmsg_set(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg_buf, sizeof(errmsg_buf), fmt, ap);
	va_end(ap);
	return err;
}

void errmsg_clear(void)
{
	errmsg_buf[0] = '\0';
}

const char *errmsg_get(void)
{
	return errmsg_buf;
}

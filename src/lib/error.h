/* SPDX-License-Identifier: GPL-2.0-or-later */
/* error.h — the one error convention: functions return >= 0 or -errno and fill *err. */
#ifndef FERRY_ERROR_H
#define FERRY_ERROR_H

#include "util.h"

struct ferry_error {
	int code; /* positive errno, 0 when the failure has no errno */
	char *message; /* one line, no trailing newline */
};

/* Fills *err (when err is not NULL and *err is empty) with the formatted message,
 * followed by ": strerror(code)" when code != 0. Returns -code (or -EINVAL when code is 0). */
int ferry_error_set(struct ferry_error **err, int code, const char *fmt, ...) _printf_(3, 4);
/* Like ferry_error_set, without appending strerror. */
int ferry_error_msg(struct ferry_error **err, int code, const char *fmt, ...) _printf_(3, 4);
/* Prefixes the message already in *err with "context: ". Returns -(*err)->code or -EINVAL. */
int ferry_error_wrap(struct ferry_error **err, const char *fmt, ...) _printf_(2, 3);
void ferry_error_free(struct ferry_error *err);
static inline void ferry_error_freep(struct ferry_error **err)
{
	ferry_error_free(*err);
	*err = NULL;
}
#define _cleanup_error_ _cleanup_(ferry_error_freep)

#endif

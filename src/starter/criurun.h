/* SPDX-License-Identifier: GPL-2.0-or-later */
/* criurun.h — exec ferry-criu (see criurun.c and FERRY_CRIU_HELPER in src/lib/criu.h). */
#ifndef FERRY_STARTER_CRIURUN_H
#define FERRY_STARTER_CRIURUN_H

#include <stddef.h>

#include "util.h"

/* Moves fd @src[i] to @dst[i] for every i (@dst ascending, @src distinct), without close-on-exec,
 * and closes every other fd from 3 up. @src follows the fds as they move. A source in the way is
 * moved to the lowest free fd (never above what is open now: the fd limit holds). Returns how many
 * are in place, all of them on success. */
size_t criurun_place_fds(int *src, const int *dst, size_t n);

/* In a process that dropped to the user for good, inside the container: moves fd @src[i] to
 * @dst[i] (@dst ascending, one of them FERRY_CRIU_REPORT_FD), closes every other fd from 3 up
 * and execs ferry-criu with @argv and its fixed environment. On failure writes an error line to
 * the report fd and exits with @code. */
_noreturn_ void criurun_exec(char **argv, int *src, const int *dst, size_t n, int report, int code);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* criurun.c — exec ferry-criu, CRIU's client, in a process that already dropped to the user for
 * good (with the ambient capabilities the step needs). The starter links no CRIU code: libcriu
 * and protobuf-c run in ferry-criu (src/criu/), from the bundle bound read-only at /.ferry/criu,
 * with an argv built here from checked scalars, a fixed environment and fds at the fixed numbers
 * src/lib/criu.h gives. */
#include <fcntl.h>

#include "criu.h"
#include "criurun.h"
#include "fs.h"
#include "starter.h"

size_t criurun_place_fds(int *src, const int *dst, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			if (src[j] != dst[i])
				continue;
			int moved = fcntl(src[j], F_DUPFD_CLOEXEC, 3);
			if (moved < 0)
				return i;
			close(src[j]);
			src[j] = moved;
		}
		if (src[i] == dst[i] ? fcntl(dst[i], F_SETFD, 0) < 0 : dup2(src[i], dst[i]) < 0)
			return i;
		if (src[i] != dst[i])
			close(src[i]);
		src[i] = dst[i];
	}
	int from = 3;
	for (size_t i = 0; i <= n; i++) {
		int to = i < n ? dst[i] : -1;
		for (int fd = from; fd < to; fd++)
			close(fd);
		if (to < 0)
			ferry_close_fds(from, NULL);
		from = to + 1;
	}
	return n;
}

_noreturn_ void criurun_exec(char **argv, int *src, const int *dst, size_t n, int report, int code)
{
	struct ferry_error *err = NULL;
	size_t rep = 0;
	while (rep < n && dst[rep] != FERRY_CRIU_REPORT_FD)
		rep++;
	size_t placed = criurun_place_fds(src, dst, n);
	if (placed == n) {
		char *const envp[] = {FERRY_CRIU_ENV, NULL};
		execve(FERRY_CRIU_HELPER, argv, envp);
		ferry_error_set(&err, errno, "run '%s' in the container", FERRY_CRIU_HELPER);
	} else {
		ferry_error_set(&err, errno, "pass the fds of '%s'", FERRY_CRIU_HELPER);
	}
	report_error(rep < n ? src[rep] : report, err);
	_exit(code);
}

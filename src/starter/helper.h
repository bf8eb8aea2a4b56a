/* SPDX-License-Identifier: GPL-2.0-or-later */
/* helper.h — the starter's helpers without the setuid bit (ferry-net, ferry-plan, ferry-relay): opened in
 * FERRY_LIBEXECDIR without following a path a user can change, checked, and executed by fd. */
#ifndef FERRY_STARTER_HELPER_H
#define FERRY_STARTER_HELPER_H

#include "error.h"

#define HELPER_MAX_FDS 16

/* FERRY_LIBEXECDIR/@name: root's, not writable by others, neither setuid nor setgid, reached
 * through directories that are root's and not writable by others. An O_PATH fd. */
int helper_open(const char *name, struct ferry_error **err);

/* In a child: fds 0..@n-1 from @src (-1: /dev/null for 0-2, closed above), the helper @exe
 * (from helper_open) at fd @n, every other fd closed, then @become(@arg) (the helper's
 * credentials: exit 127 when it fails) and the helper by fd with argv @argv and only
 * FERRY_SPAWN_PATH in its environment. At most HELPER_MAX_FDS fds. */
_noreturn_ void helper_exec(const int *src, int n, int exe, char *const argv[], int (*become)(const void *),
			    const void *arg);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* helper.h — the starter's helpers without the setuid bit (ferry-net, ferry-plan, ferry-relay,
 * ferry-conf): opened in
 * FERRY_LIBEXECDIR without following a path a user can change, checked, and executed by fd. */
#ifndef FERRY_STARTER_HELPER_H
#define FERRY_STARTER_HELPER_H

#include "error.h"

#define HELPER_MAX_FDS 16

/* FERRY_LIBEXECDIR/@name: root's, not writable by others, neither setuid nor setgid, reached
 * through directories that are root's and not writable by others. An O_PATH fd. */
int helper_open(const char *name, struct ferry_error **err);

/* helper_open(), for a helper the caller may run but must not trace (ferry-relay, ferry-conf): it
 * must not be readable by others either (mode 0711), so that the kernel makes its process not
 * dumpable from its exec on. @holds says what for, in the error. */
int helper_open_private(const char *name, const char *holds, struct ferry_error **err);

/* A helper's credentials, for helper_exec's @become with the starter's struct ferry_privs: the
 * caller's for good, without capabilities (a caller who is root too), and the death signal after
 * them (a change of credentials clears it, an exec keeps it). */
int helper_become_caller(const void *privs);

/* In a child: fds 0..@n-1 from @src (-1: /dev/null for 0-2, closed above), the helper @exe
 * (from helper_open) at fd @n, every other fd closed, then @become(@arg) (the helper's
 * credentials: exit 127 when it fails) and the helper by fd with argv @argv and only
 * FERRY_SPAWN_PATH in its environment. At most HELPER_MAX_FDS fds. */
_noreturn_ void helper_exec(const int *src, int n, int exe, char *const argv[], int (*become)(const void *),
			    const void *arg);

#endif

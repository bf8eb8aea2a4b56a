/* SPDX-License-Identifier: GPL-2.0-or-later */
/* privs.h — identity switching for the setuid starter.
 *
 * The starter runs with euid 0 only around privileged steps: ferry_privs_lower() sets the
 * effective (and so filesystem) ids to the caller's real ids, ferry_privs_raise() regains root
 * from the saved set-user-ID. ferry_privs_drop() is the permanent drop before user code runs. */
#ifndef FERRY_PRIVS_H
#define FERRY_PRIVS_H

#include <sys/types.h>

#include "error.h"

#define FERRY_MAX_GROUPS 1024

struct ferry_privs {
	uid_t uid; /* the caller's real uid: the only identity the starter acts for */
	gid_t gid;
	gid_t groups[FERRY_MAX_GROUPS];
	int n_groups;
};

/* Records the real ids and supplementary groups of the calling process. */
int ferry_privs_init(struct ferry_privs *p, struct ferry_error **err);
int ferry_privs_raise(const struct ferry_privs *p, struct ferry_error **err);
int ferry_privs_lower(const struct ferry_privs *p, struct ferry_error **err);
/* Permanently becomes the caller: clears the bounding set except @keep, sets the caller's
 * groups, gid and uid (real, effective, saved), then sets permitted/effective/inheritable to
 * @keep and raises @keep as ambient capabilities (so they survive execve), sets no_new_privs
 * and verifies: ids cannot be regained, the capability sets are exactly @keep. With n_keep == 0
 * the process ends with no capabilities at all. */
int ferry_privs_drop(const struct ferry_privs *p, const int *keep, size_t n_keep, struct ferry_error **err);

/* Keeps the current uid but empties every capability set (and the bounding set). */
int ferry_privs_clear_caps(struct ferry_error **err);

#endif

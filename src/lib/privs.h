/* SPDX-License-Identifier: GPL-2.0-or-later */
/* privs.h — identity switching for the setuid starter.
 *
 * The starter runs with euid 0 only around privileged steps: ferry_privs_lower() sets the
 * effective (and so filesystem) ids to the caller's real ids, ferry_privs_raise() regains root
 * from the saved set-user-ID. ferry_privs_drop() is the permanent drop before user code runs. */
#ifndef FERRY_PRIVS_H
#define FERRY_PRIVS_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "error.h"

#define FERRY_MAX_GROUPS 1024

struct ferry_privs {
	uid_t uid; /* the caller's real uid: the only identity the starter acts for */
	gid_t gid;
	gid_t groups[FERRY_MAX_GROUPS];
	int n_groups;
	/* the caller's resource limits, which ferry_privs_drop gives back (ferry_privs_own_limits) */
	struct rlimit limits[RLIM_NLIMITS];
	bool has_limits;
};

/* Records the real ids and supplementary groups of the calling process. */
int ferry_privs_init(struct ferry_privs *p, struct ferry_error **err);
/* Saves the caller's resource limits in @p and sets root's own (see privs.c): a setuid exec keeps
 * the caller's, and they bind root too. Called first, while the effective uid is 0. */
int ferry_privs_own_limits(struct ferry_privs *p, struct ferry_error **err);
int ferry_privs_raise(const struct ferry_privs *p, struct ferry_error **err);
int ferry_privs_lower(const struct ferry_privs *p, struct ferry_error **err);
/* Permanently becomes the caller: clears the bounding set except @keep, sets the caller's
 * groups, gid and uid (real, effective, saved), then sets permitted/effective/inheritable to
 * @keep and raises @keep as ambient capabilities (so they survive execve), sets no_new_privs
 * and verifies: ids cannot be regained, the capability sets are exactly @keep. With n_keep == 0
 * the process ends with no capabilities at all. The caller's resource limits, when @p holds
 * them, are set back first: from then on the process is the caller's. */
int ferry_privs_drop(const struct ferry_privs *p, const int *keep, size_t n_keep, struct ferry_error **err);

/* Keeps the current uid but empties every capability set (and the bounding set). */
int ferry_privs_clear_caps(struct ferry_error **err);

#endif

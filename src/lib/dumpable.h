/* SPDX-License-Identifier: GPL-2.0-or-later */
/* dumpable.h — the libexec helpers that hold what their caller must not reach (ferry-relay: the
 * cluster key; ferry-conf and ferry-plan: what root acts on; ferry-xfer: the images root seals)
 * refuse to run when their caller could trace them. Not linked into the setuid starter. */
#ifndef FERRY_DUMPABLE_H
#define FERRY_DUMPABLE_H

#include "error.h"

/* The helper @name (for the message) runs from an executable its caller may not read (mode
 * 0711), so the kernel made it not dumpable at exec: fails with EPERM when it is dumpable anyway
 * (fs.suid_dumpable 1, a read bit or an ACL for the caller) and its caller is not root, whose
 * own helper root alone may trace. Then makes it not dumpable in any case. */
int ferry_refuse_dumpable(const char *name, struct ferry_error **err);

#endif

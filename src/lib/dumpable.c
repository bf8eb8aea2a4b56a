/* SPDX-License-Identifier: GPL-2.0-or-later */
/* dumpable.c — a helper that its caller could trace refuses to run (see dumpable.h). */
#include <sys/prctl.h>

#include "dumpable.h"

int ferry_refuse_dumpable(const char *name, struct ferry_error **err)
{
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0 && getuid() != 0)
		return ferry_error_msg(err, EPERM,
				       "%s is readable by its caller, so it could be traced: install it mode "
				       "0711 and keep fs.suid_dumpable at 0 or 2 (run 'make install')",
				       name);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "prctl");
	return 0;
}

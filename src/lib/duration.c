/* SPDX-License-Identifier: GPL-2.0-or-later */
/* duration.c — durations (see ckspec.h): ferry.conf's, the options', and a SPEC's. libc only: it
 * is linked into the SPANK plugin and libferry. */
#include <errno.h>
#include <stdlib.h>

#include "ckspec.h"

int ferry_duration_parse(const char *s, unsigned long long *ret)
{
	unsigned long long total = 0;
	const char *p = s;
	if (!p || !*p)
		return -1;
	while (*p) {
		char *end = NULL;
		if (*p < '0' || *p > '9')
			return -1;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		unsigned long long unit = 1;
		if (errno || v > 10000000)
			return -1;
		if (*end == 'h')
			unit = 3600;
		else if (*end == 'm')
			unit = 60;
		else if (*end == 's' || *end == '\0')
			unit = 1;
		else
			return -1;
		total += v * unit;
		p = *end ? end + 1 : end;
	}
	if (total == 0 || total > FERRY_DURATION_MAX)
		return -1;
	*ret = total;
	return 0;
}

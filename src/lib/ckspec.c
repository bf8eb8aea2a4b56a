/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ckspec.c — '--ferry-checkpoint=SPEC' (see ckspec.h). libc only: it is linked into the SPANK
 * plugin (with duration.c) as well as into libferry; not into the setuid starter. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckspec.h"

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > FERRY_CKSPEC_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool number_ok(const char *s, unsigned long long max, unsigned long long *ret)
{
	char *end = NULL;
	if (!*s || *s < '0' || *s > '9' || strlen(s) > 10)
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return false;
	*ret = v;
	return true;
}

/* One ITEM (NUL-terminated, at most FERRY_CKSPEC_MAX bytes) into @c. */
static int item(const char *it, struct ferry_ckspec *c, char *msg, size_t msglen)
{
	const char *eq = strchr(it, '=');
	size_t klen = eq ? (size_t)(eq - it) : 0;
	const char *v = eq ? eq + 1 : it;
	if (!eq && strcmp(it, "default") == 0)
		return 0;
	if (!eq || (klen == 5 && strncmp(it, "every", 5) == 0)) {
		if (c->every_set) {
			snprintf(msg, msglen, "the interval is given twice ('%s')", it);
			return -1;
		}
		c->every_set = true;
		if (strcmp(v, "0") == 0) {
			c->every = 0;
			return 0;
		}
		if (ferry_duration_parse(v, &c->every) == 0)
			return 0;
		if (eq)
			snprintf(msg, msglen,
				 "'%s': give an interval such as 90s, 30m, 2h or 1h30m, or 0 for none", it);
		else
			snprintf(
			    msg, msglen,
			    "'%s' is none of: an interval (90s, 30m, 2h, 1h30m), 0 (no periodic checkpoint), "
			    "default, keep=N, name=NAME, grace=DURATION",
			    it);
		return -1;
	}
	if (klen == 4 && strncmp(it, "keep", 4) == 0) {
		if (c->keep == 0 && number_ok(v, FERRY_CKSPEC_KEEP_MAX, &c->keep))
			return 0;
		snprintf(msg, msglen, "'%s': give keep=N once, N the number of generations to keep (1-%d)",
			 it, FERRY_CKSPEC_KEEP_MAX);
		return -1;
	}
	if (klen == 5 && strncmp(it, "grace", 5) == 0) {
		if (c->grace == 0 && ferry_duration_parse(v, &c->grace) == 0 &&
		    c->grace <= FERRY_CKSPEC_GRACE_MAX)
			return 0;
		snprintf(msg, msglen,
			 "'%s': give grace=DURATION once, how long before the time limit to checkpoint (90s, "
			 "5m; at most 24h)",
			 it);
		return -1;
	}
	if (klen == 4 && strncmp(it, "name", 4) == 0) {
		if (!c->name[0] && name_ok(v, strlen(v))) {
			memcpy(c->name, v, strlen(v) + 1);
			return 0;
		}
		snprintf(msg, msglen,
			 "'%s': give name=NAME once, NAME of letters, digits, '_', '.' and '-' (at most %d, "
			 "not starting with '.' or '-')",
			 it, FERRY_CKSPEC_NAME_MAX);
		return -1;
	}
	snprintf(msg, msglen, "unknown item '%s': use every=, keep=, name= or grace=", it);
	return -1;
}

int ferry_ckspec_parse(const char *spec, struct ferry_ckspec *ret, char *msg, size_t msglen)
{
	memset(ret, 0, sizeof(*ret));
	if (msglen)
		msg[0] = '\0';
	size_t n = spec ? strlen(spec) : 0;
	if (n == 0) {
		snprintf(msg, msglen, "empty: give an interval (30m), 0, or default");
		return -1;
	}
	if (n > FERRY_CKSPEC_MAX) {
		snprintf(msg, msglen, "longer than %d bytes", FERRY_CKSPEC_MAX);
		return -1;
	}
	char buf[FERRY_CKSPEC_MAX + 1];
	memcpy(buf, spec, n + 1);
	char *p = buf;
	for (;;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (!*p) {
			snprintf(msg, msglen, "an empty item (',,' or a ',' at an end)");
			return -1;
		}
		for (const unsigned char *q = (const unsigned char *)p; *q; q++)
			if (*q <= 0x20 || *q >= 0x7f) {
				snprintf(msg, msglen,
					 "a space or a control character: write ITEM,ITEM without them");
				return -1;
			}
		if (item(p, ret, msg, msglen) < 0)
			return -1;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* bind.c — the CLI's --bind SRC[:DST[:OPTS]] (request.h): parsed by the CLI, never by the
 * setuid starter (which takes the plan's checked binds). */
#include <limits.h>

#include "request.h"

int ferry_bind_parse(const char *spec, struct ferry_bind *ret, struct ferry_error **err)
{
	static const char usage[] = "use SRC[:DST[:ro|rw]]";
	if (!ret)
		return ferry_error_msg(err, EINVAL, "ferry_bind_parse: no result pointer");
	*ret = (struct ferry_bind){0};
	if (!spec || !*spec)
		return ferry_error_msg(err, EINVAL, "empty bind spec: %s", usage);

	const char *c1 = strchr(spec, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (c2 && strchr(c2 + 1, ':'))
		return ferry_error_msg(err, EINVAL, "bind spec '%s' has too many ':': %s", spec, usage);

	size_t sn = c1 ? (size_t)(c1 - spec) : strlen(spec);
	if (sn == 0)
		return ferry_error_msg(err, EINVAL, "bind spec '%s' has an empty source: %s", spec, usage);
	if (sn >= PATH_MAX)
		return ferry_error_msg(err, ENAMETOOLONG, "bind source in '%s' is too long", spec);

	_cleanup_free_ char *src = xstrndup(spec, sn);
	_cleanup_free_ char *dst = NULL;
	bool ro = false;
	if (c1) {
		size_t dn = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
		if (dn == 0)
			return ferry_error_msg(err, EINVAL, "bind spec '%s' has an empty destination: %s",
					       spec, usage);
		if (dn >= PATH_MAX)
			return ferry_error_msg(err, ENAMETOOLONG, "bind destination in '%s' is too long",
					       spec);
		dst = xstrndup(c1 + 1, dn);
		if (dst[0] != '/')
			return ferry_error_msg(
			    err, EINVAL, "bind destination '%s' in '%s' must be an absolute path", dst, spec);
		if (!ferry_path_canonical(dst))
			return ferry_error_msg(err, EINVAL,
					       "bind destination '%s' in '%s' must be written without '//', "
					       "'.' or '..' components and without a trailing '/'",
					       dst, spec);
	} else {
		dst = xstrdup(src);
	}
	if (c2) {
		const char *opt = c2 + 1;
		if (!*opt)
			return ferry_error_msg(err, EINVAL, "bind spec '%s' has an empty option: %s", spec,
					       usage);
		if (streq(opt, "ro"))
			ro = true;
		else if (!streq(opt, "rw"))
			return ferry_error_msg(err, EINVAL, "unknown bind option '%s' in '%s' (use ro or rw)",
					       opt, spec);
	}

	ret->src = TAKE_PTR(src);
	ret->dst = TAKE_PTR(dst);
	ret->ro = ro;
	return 0;
}

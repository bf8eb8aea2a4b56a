/* SPDX-License-Identifier: GPL-2.0-or-later */
/* names.c — the names users choose for instances and checkpoints become directory and file names
 * under root-owned trees, so they are checked byte by byte against a small ASCII set; locale
 * functions (isalnum) are not used because their answer depends on the environment. */
#include "names.h"

/* How much of a rejected name the message shows. */
#define SHOWN_MAX 80

static bool is_alnum_ascii(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_name_char(char c)
{
	return is_alnum_ascii(c) || c == '_' || c == '.' || c == '-';
}

int ferry_name_check(const char *name, const char *what, struct ferry_error **err)
{
	static const char rule[] = "use only letters, digits, '_', '.' and '-' (at most 64 characters, "
				   "starting with a letter, digit or '_')";
	/* "invalid instance name ..." or, without @what, "invalid name ..." */
	const char *sep = what ? " " : "";
	if (!what)
		what = "";
	if (!name || !*name)
		return ferry_error_msg(err, EINVAL, "invalid %s%sname '' (empty): %s", what, sep, rule);

	size_t len = strnlen(name, FERRY_NAME_MAX + 1);
	bool ok = len <= FERRY_NAME_MAX && (is_alnum_ascii(name[0]) || name[0] == '_');
	for (size_t i = 0; ok && i < len; i++)
		ok = is_name_char(name[i]);
	if (ok)
		return 0;

	_cleanup_free_ char *s = ferry_shown(name, SHOWN_MAX);
	return ferry_error_msg(err, EINVAL, "invalid %s%sname '%s': %s", what, sep, s, rule);
}

bool ferry_group_ok(const char *v)
{
	if (!v || strlen(v) <= FERRY_GROUP_ID_LEN + 1 || strlen(v) > FERRY_GROUP_ID_LEN + 6 ||
	    strspn(v, "0123456789abcdef") != FERRY_GROUP_ID_LEN || v[FERRY_GROUP_ID_LEN] != '/')
		return false;
	const char *n = v + FERRY_GROUP_ID_LEN + 1;
	unsigned long long size = 0;
	return n[0] != '0' && parse_uint64(n, FERRY_GROUP_MAX, &size) == 0 && size >= 1;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* config_keys.h — the keys of ferry.conf, shared by the parser (config.c, in ferry-conf and the
 * unprivileged programs) and the policy the setuid starter holds (config_policy.c): one table,
 * so that every key the parser takes is also a field ferry-conf sends to the starter. */
#ifndef FERRY_CONFIG_KEYS_H
#define FERRY_CONFIG_KEYS_H

#include <stddef.h>

#include "config.h"

#define LIST_MAX 4096u /* entries of a list key */
#define N_KEYS 34 /* entries of ferry_config_keys */

enum key_kind {
	KEY_BOOL,
	KEY_PATH, /* normalized absolute path */
	KEY_PATH_LIST, /* normalized absolute path, repeatable */
	KEY_HOME_PATH, /* normalized absolute path or "~/" + normalized relative path */
	KEY_UINT,
	KEY_NAME_LIST, /* network names: [A-Za-z0-9_.-], repeatable */
	KEY_CIDR_LIST, /* IPv4 CIDR ranges, repeatable */
	KEY_PARENT_LIST, /* NETWORK:INTERFACE, repeatable */
	KEY_STRING, /* printable, no spaces, 1..255 */
	KEY_STRING_LIST, /* idem, repeatable */
	KEY_CRIU_NETWORK, /* "loopback" (true) or "host" (false), into a bool */
	KEY_DURATION, /* 90s, 30m, 1h30m (ckspec.h), or 0 when min is 0: seconds, unsigned */
};

struct key {
	const char *name;
	enum key_kind kind;
	size_t offset;
	unsigned min, max; /* KEY_UINT */
};

extern const struct key ferry_config_keys[N_KEYS];

static inline bool key_is_list(enum key_kind kind)
{
	return kind == KEY_PATH_LIST || kind == KEY_NAME_LIST || kind == KEY_CIDR_LIST ||
	       kind == KEY_PARENT_LIST || kind == KEY_STRING_LIST;
}

/* The field's type: bool, unsigned, char * or a NULL-terminated char ** */
static inline bool key_is_bool(enum key_kind kind)
{
	return kind == KEY_BOOL || kind == KEY_CRIU_NETWORK;
}
static inline bool key_is_uint(enum key_kind kind)
{
	return kind == KEY_UINT || kind == KEY_DURATION;
}

/* @n bytes at @p form a relative path of non-empty components that are neither "." nor "..". */
bool ferry_config_relative_normal(const char *p, size_t n);
/* @n bytes at @p form an absolute path shorter than PATH_MAX without empty, "." or ".."
 * components and without a trailing '/' (except "/" itself): the form realpath() returns. */
bool ferry_config_path_normal(const char *p, size_t n);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* config_policy.c — the admin's policy as the setuid starter holds it: ferry.conf's keys, the
 * form in which ferry-conf hands the parsed file to the starter, and the checks made against it.
 *
 * The starter does not parse ferry.conf: ferry-conf (src/conf/) does, as the caller for good, in a
 * process the caller cannot trace (its executable is root's 0711, see helper.h), and sends it as
 * "ferry-conf 1\n" then, for each key of ferry_config_keys in order: a bool as one byte 0 or 1, a
 * number as 4 bytes little-endian, a string as its 4-byte length (0xffffffff: none) and its bytes,
 * a list as its 4-byte count and that many strings. The decoder takes exactly that and nothing
 * more: every length within what is left, no NUL in a string, no byte after the last key. */
#include <limits.h>

#include "config.h"
#include "config_keys.h"
#include "util.h"

#define FIELD(f) offsetof(struct ferry_config, f)
const struct key ferry_config_keys[] = {
    {"allow setuid", KEY_BOOL, FIELD(allow_setuid), 0, 0},
    {"mount home", KEY_BOOL, FIELD(mount_home), 0, 0},
    {"mount tmp", KEY_BOOL, FIELD(mount_tmp), 0, 0},
    {"mount cwd", KEY_BOOL, FIELD(mount_cwd), 0, 0},
    {"user bind control", KEY_BOOL, FIELD(user_bind_control), 0, 0},
    {"allow bind path", KEY_PATH_LIST, FIELD(allow_bind_paths), 0, 0},
    {"criu path", KEY_PATH, FIELD(criu_path), 0, 0},
    {"mem dir", KEY_PATH, FIELD(mem_dir), 0, 0},
    {"checkpoint dir", KEY_HOME_PATH, FIELD(checkpoint_dir), 0, 0},
    {"checkpoint staging", KEY_BOOL, FIELD(staging), 0, 0},
    {"checkpoint staging dir", KEY_PATH, FIELD(staging_dir), 0, 0},
    {"max instances", KEY_UINT, FIELD(max_instances), 1, 4096},
    {"criu timeout", KEY_UINT, FIELD(criu_timeout), 1, 86400},
    {"criu ghost limit", KEY_UINT, FIELD(criu_ghost_limit), 1, 4095},
    {"criu network", KEY_CRIU_NETWORK, FIELD(criu_loopback), 0, 0},
    {"allow live migration", KEY_BOOL, FIELD(allow_live), 0, 0},
    {"compress pages", KEY_BOOL, FIELD(compress_pages), 0, 0},
    {"allow net network", KEY_NAME_LIST, FIELD(allow_net_networks), 0, 0},
    {"allow net args", KEY_BOOL, FIELD(allow_net_args), 0, 0},
    {"allow net ip range", KEY_CIDR_LIST, FIELD(allow_net_ranges), 0, 0},
    {"network parent", KEY_PARENT_LIST, FIELD(network_parents), 0, 0},
    {"network config dir", KEY_PATH, FIELD(network_dir), 0, 0},
    {"cni path", KEY_PATH, FIELD(cni_path), 0, 0},
    {"nft path", KEY_PATH, FIELD(nft_path), 0, 0},
    {"ferryd node", KEY_STRING, FIELD(ferryd_node), 0, 0},
    {"ferryd listen", KEY_STRING, FIELD(ferryd_listen), 0, 0},
    {"ferryd peer", KEY_STRING_LIST, FIELD(ferryd_peers), 0, 0},
    {"ferryd shared dir", KEY_PATH, FIELD(ferryd_shared_dir), 0, 0},
    {"ferryd tmpfs dir", KEY_PATH, FIELD(ferryd_tmpfs_dir), 0, 0},
    {"peer timeout", KEY_UINT, FIELD(peer_timeout), FERRY_PEER_TIMEOUT_MIN, FERRY_PEER_TIMEOUT_MAX},
    {"slurm checkpoint dir", KEY_HOME_PATH, FIELD(slurm_checkpoint_dir), 0, 0},
    {"slurm checkpoint every", KEY_DURATION, FIELD(slurm_every), 0, 366 * 86400},
    {"slurm keep", KEY_UINT, FIELD(slurm_keep), 1, 1000},
    {"slurm grace time", KEY_DURATION, FIELD(slurm_grace), 1, 86400},
};
#undef FIELD

bool ferry_config_relative_normal(const char *p, size_t n)
{
	if (n == 0)
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != '/')
			continue;
		size_t clen = i - start;
		const char *comp = p + start;
		if (clen == 0 || (clen == 1 && comp[0] == '.') ||
		    (clen == 2 && comp[0] == '.' && comp[1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

bool ferry_config_path_normal(const char *p, size_t n)
{
	if (n == 0 || n >= PATH_MAX || p[0] != '/' || memchr(p, '\0', n))
		return false;
	return n == 1 || ferry_config_relative_normal(p + 1, n - 1);
}

/* Every string and list the keys name: the table is the struct's list of what it owns. */
void ferry_config_free(struct ferry_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &ferry_config_keys[i];
		void *field = (char *)c + k->offset;
		if (key_is_list(k->kind))
			strv_free(*(char ***)field);
		else if (!key_is_bool(k->kind) && !key_is_uint(k->kind))
			free(*(char **)field);
	}
	free(c);
}

/* @path (normalized, absolute) is @prefix (@plen bytes, normalized, absolute) or lies below it. */
static bool is_below(const char *path, const char *prefix, size_t plen)
{
	if (plen == 1)
		return true; /* "/" */
	return strncmp(path, prefix, plen) == 0 && (path[plen] == '\0' || path[plen] == '/');
}

bool ferry_config_bind_allowed(const struct ferry_config *c, const char *resolved, const char *home)
{
	if (!c || !resolved || !ferry_config_path_normal(resolved, strlen(resolved)))
		return false;
	for (char **p = c->allow_bind_paths; p && *p; p++) {
		size_t plen = strlen(*p);
		if (ferry_config_path_normal(*p, plen) && is_below(resolved, *p, plen))
			return true;
	}
	if (home) {
		size_t hlen = strlen(home);
		while (hlen > 1 && home[hlen - 1] == '/')
			hlen--;
		/* A home of "/" (some system accounts) grants nothing. */
		if (hlen > 1 && ferry_config_path_normal(home, hlen) && is_below(resolved, home, hlen))
			return true;
	}
	return false;
}

bool ferry_config_word_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '.' || *p == '-'))
			return false;
	return true;
}

/* Strict dotted quad: four decimal parts 0..255 without leading zeros. */
static int parse_ipv4(const char *s, size_t n, uint32_t *ret)
{
	uint32_t v = 0;
	int parts = 0;
	size_t i = 0;
	while (parts < 4) {
		size_t start = i;
		unsigned part = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			part = part * 10 + (unsigned)(s[i++] - '0');
		if (i == start || part > 255 || (i - start > 1 && s[start] == '0'))
			return -EINVAL;
		v = (v << 8) | part;
		parts++;
		if (parts < 4) {
			if (i >= n || s[i] != '.')
				return -EINVAL;
			i++;
		}
	}
	if (i != n)
		return -EINVAL;
	*ret = v;
	return 0;
}

int ferry_config_ipv4_parse(const char *s, uint32_t *ret)
{
	return parse_ipv4(s, strlen(s), ret);
}

int ferry_config_cidr_parse(const char *s, uint32_t *ret_addr, unsigned *ret_prefix)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return -EINVAL;
	uint32_t a = 0;
	unsigned long long p = 0;
	if (parse_ipv4(s, (size_t)(slash - s), &a) < 0 || parse_uint64(slash + 1, 32, &p) < 0)
		return -EINVAL;
	if (ret_addr)
		*ret_addr = a;
	if (ret_prefix)
		*ret_prefix = (unsigned)p;
	return 0;
}

bool ferry_config_ip_allowed(const struct ferry_config *c, uint32_t addr)
{
	for (char **r = c->allow_net_ranges; r && *r; r++) {
		uint32_t net = 0;
		unsigned p = 0;
		if (ferry_config_cidr_parse(*r, &net, &p) < 0)
			continue;
		uint32_t mask = p == 0 ? 0 : 0xffffffffu << (32 - p);
		if ((addr & mask) == (net & mask))
			return true;
	}
	return false;
}

bool ferry_config_network_allowed(const struct ferry_config *c, const char *name)
{
	for (char **n = c->allow_net_networks; n && *n; n++)
		if (streq(*n, name))
			return true;
	return false;
}

_Static_assert(ARRAY_SIZE(ferry_config_keys) == N_KEYS, "N_KEYS is the number of keys");

struct wire {
	const unsigned char *p;
	size_t left;
};

static bool take(struct wire *w, void *out, size_t n)
{
	if (w->left < n)
		return false;
	memcpy(out, w->p, n);
	w->p += n;
	w->left -= n;
	return true;
}

static bool take_u32(struct wire *w, uint32_t *ret)
{
	unsigned char b[4];
	if (!take(w, b, 4))
		return false;
	*ret = ferry_get_le32(b);
	return true;
}

/* A string of at most PATH_MAX bytes without NUL; @none: the length 0xffffffff gives NULL. */
static bool take_string(struct wire *w, bool none, char **ret)
{
	uint32_t n = 0;
	if (!take_u32(w, &n))
		return false;
	if (none && n == UINT32_MAX) {
		*ret = NULL;
		return true;
	}
	if (n > PATH_MAX || w->left < n || memchr(w->p, '\0', n))
		return false;
	*ret = xstrndup((const char *)w->p, n);
	w->p += n;
	w->left -= n;
	return true;
}

static bool take_list(struct wire *w, char ***ret)
{
	uint32_t n = 0;
	if (!take_u32(w, &n) || n > LIST_MAX)
		return false;
	char **v = xzalloc(((size_t)n + 1) * sizeof(char *));
	*ret = v;
	for (uint32_t i = 0; i < n; i++)
		if (!take_string(w, false, &v[i]))
			return false;
	return true;
}

static bool take_key(struct wire *w, const struct key *k, struct ferry_config *c)
{
	void *field = (char *)c + k->offset;
	if (key_is_bool(k->kind)) {
		unsigned char b = 2;
		*(bool *)field = take(w, &b, 1) && b == 1;
		return b <= 1;
	}
	if (key_is_uint(k->kind)) {
		uint32_t n = 0;
		*(unsigned *)field = take_u32(w, &n) ? n : 0;
		return n >= k->min && (k->max == 0 || n <= k->max);
	}
	/* (the fields are NULL: ferry_config_decode's fresh struct) */
	return key_is_list(k->kind) ? take_list(w, field) : take_string(w, true, field);
}

int ferry_config_decode(const void *buf, size_t len, struct ferry_config **ret, struct ferry_error **err)
{
	struct wire w = {buf, len};
	char magic[sizeof(FERRY_CONFIG_WIRE_MAGIC) - 1];
	_cleanup_(ferry_config_freep) struct ferry_config *c = xzalloc(sizeof(*c));
	bool ok =
	    take(&w, magic, sizeof(magic)) && memcmp(magic, FERRY_CONFIG_WIRE_MAGIC, sizeof(magic)) == 0;
	for (size_t i = 0; ok && i < N_KEYS; i++)
		ok = take_key(&w, &ferry_config_keys[i], c);
	if (!ok || w.left)
		return ferry_error_msg(err, EPROTO,
				       "ferry-conf sent a configuration this starter cannot read (install "
				       "ferry-conf and ferry-starter from the same build)");
	*ret = TAKE_PTR(c);
	return 0;
}

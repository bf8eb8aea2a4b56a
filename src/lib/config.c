/* SPDX-License-Identifier: GPL-2.0-or-later */
/* config.c — /etc/ferry/ferry.conf: "key = value" lines in the style of apptainer.conf.
 *
 * The setuid starter takes its policy from this file, so the parser is strict: every key is known,
 * every value is checked, a scalar key appears once, a list is bounded, and the loader trusts the
 * file only when root alone can have written it. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include "ckspec.h"
#include "config.h"
#include "config_keys.h"

#define SHOWN_MAX 80

struct parse_state {
	const char *name; /* of the file, for messages */
	unsigned lineno;
	unsigned seen[N_KEYS]; /* line where a scalar key was set, 0 when not yet */
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Trims in place; returns the first non-space character. */
static char *trim(char *s)
{
	while (is_space(*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

static bool is_printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int line_error(struct parse_state *st, struct ferry_error **err, const char *fmt, ...) _printf_(3, 4);
static int line_error(struct parse_state *st, struct ferry_error **err, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		ferry_oom();
	va_end(ap);
	return ferry_error_msg(err, EINVAL, "%s line %u: %s", st->name, st->lineno, msg);
}

/* Whether @value has the form @k's kind takes; if not, *ret_fmt is the message's format, with
 * the key's name and the shown value as its two arguments. Booleans and numbers are not here. */
static bool value_ok(const struct key *k, const char *value, size_t vlen, const char **ret_fmt)
{
	bool ok = false;
	switch (k->kind) {
	case KEY_PATH:
	case KEY_PATH_LIST:
		*ret_fmt = "'%s' must be an absolute path without '.' or '..' components, '//' or a "
			   "trailing '/', not '%s'";
		return is_printable(value) && ferry_config_path_normal(value, vlen);
	case KEY_NAME_LIST:
		*ret_fmt = "'%s': bad value '%s' (see ferry.conf(5))";
		return vlen > 0 && vlen <= 64 + 16 && ferry_config_word_ok(value, 64);
	case KEY_CIDR_LIST:
		*ret_fmt = "'%s': bad value '%s' (see ferry.conf(5))";
		return vlen > 0 && vlen <= 64 + 16 && ferry_config_cidr_parse(value, NULL, NULL) == 0;
	case KEY_PARENT_LIST: {
		*ret_fmt = "'%s': bad value '%s' (see ferry.conf(5))";
		const char *colon = strchr(value, ':');
		_cleanup_free_ char *net = colon ? xstrndup(value, (size_t)(colon - value)) : NULL;
		return vlen > 0 && vlen <= 64 + 16 && colon && ferry_config_word_ok(net, 64) &&
		       ferry_config_word_ok(colon + 1, 15);
	}
	case KEY_STRING:
	case KEY_STRING_LIST:
		*ret_fmt = "'%s': bad value '%s' (printable, no spaces)";
		ok = vlen > 0 && vlen <= 255;
		for (size_t i = 0; ok && i < vlen; i++)
			ok = value[i] > 0x20 && value[i] < 0x7f;
		return ok;
	case KEY_HOME_PATH:
		*ret_fmt = "'%s' must be an absolute path or start with '~/', without '.' or '..' "
			   "components, '//' or a trailing '/', not '%s'";
		return is_printable(value) && (ferry_config_path_normal(value, vlen) ||
					       (startswith(value, "~/") && vlen < PATH_MAX &&
						ferry_config_relative_normal(value + 2, vlen - 2)));
	case KEY_BOOL:
	case KEY_UINT:
	case KEY_CRIU_NETWORK:
	case KEY_DURATION:
		break;
	}
	*ret_fmt = "'%s': internal error (value '%s')";
	return false;
}

static int set_value(struct ferry_config *c, const struct key *k, const char *value, struct parse_state *st,
		     struct ferry_error **err)
{
	void *field = (char *)c + k->offset;
	_cleanup_free_ char *v = ferry_shown(value, SHOWN_MAX);
	const char *fmt = NULL;

	if (k->kind == KEY_BOOL) {
		if (!streq(value, "yes") && !streq(value, "no"))
			return line_error(st, err, "'%s' must be 'yes' or 'no', not '%s'", k->name, v);
		*(bool *)field = streq(value, "yes");
		return 0;
	}
	if (k->kind == KEY_CRIU_NETWORK) {
		if (!streq(value, "loopback") && !streq(value, "host"))
			return line_error(st, err, "'%s' must be 'loopback' or 'host', not '%s'", k->name, v);
		*(bool *)field = streq(value, "loopback");
		return 0;
	}
	if (k->kind == KEY_UINT) {
		unsigned long long n = 0;
		if (parse_uint64(value, k->max, &n) < 0 || n < k->min)
			return line_error(st, err, "'%s' must be a number from %u to %u, not '%s'", k->name,
					  k->min, k->max, v);
		*(unsigned *)field = (unsigned)n;
		return 0;
	}
	if (k->kind == KEY_DURATION) {
		unsigned long long n = 0;
		if ((k->min == 0 && streq(value, "0")) ||
		    (ferry_duration_parse(value, &n) == 0 && n >= k->min && n <= k->max)) {
			*(unsigned *)field = (unsigned)n;
			return 0;
		}
		return line_error(st, err,
				  "'%s' must be a duration such as 90s, 30m, 2h or 1h30m%s (at most %u s), "
				  "not '%s'",
				  k->name, k->min == 0 ? ", or 0 for none" : "", k->max, v);
	}
	if (!value_ok(k, value, strlen(value), &fmt)) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		return line_error(st, err, fmt, k->name, v);
#pragma GCC diagnostic pop
	}
	if (!key_is_list(k->kind)) {
		char **str = field;
		free(*str);
		*str = xstrdup(value);
		return 0;
	}
	char ***items = field;
	if (strv_length(*items) >= LIST_MAX)
		return line_error(st, err, "more than %u '%s' entries", LIST_MAX, k->name);
	strv_push(items, value);
	return 0;
}

/* Parses one line (@n bytes, no newline, no NUL). */
static int parse_line(struct ferry_config *c, const char *line, size_t n, struct parse_state *st,
		      struct ferry_error **err)
{
	_cleanup_free_ char *copy = xstrndup(line, n);
	char *s = trim(copy);
	if (!*s || *s == '#')
		return 0;

	char *eq = strchr(s, '=');
	if (!eq) {
		_cleanup_free_ char *l = ferry_shown(s, SHOWN_MAX);
		return line_error(st, err, "expected 'key = value', not '%s'", l);
	}
	*eq = '\0';
	const char *key = trim(s);
	const char *value = trim(eq + 1);

	const struct key *k = NULL;
	for (size_t i = 0; i < N_KEYS; i++)
		if (streq(ferry_config_keys[i].name, key))
			k = &ferry_config_keys[i];
	if (!k) {
		_cleanup_free_ char *kk = ferry_shown(key, SHOWN_MAX);
		return line_error(st, err, "unknown key '%s' (see ferry.conf(5))", kk);
	}
	if (!*value)
		return line_error(st, err, "'%s' has no value", k->name);

	/* A scalar key once a file; a list key's lines in one file together replace the list an
	 * earlier file (ferry.conf, an earlier drop-in) set. */
	unsigned *seen = &st->seen[k - ferry_config_keys];
	if (!key_is_list(k->kind) && *seen)
		return line_error(st, err, "'%s' is already set on line %u", k->name, *seen);
	if (key_is_list(k->kind) && !*seen) {
		void *field = (char *)c + k->offset;
		char ***items = field;
		strv_free(*items);
		*items = xzalloc(sizeof(char *));
	}
	if (!*seen)
		*seen = st->lineno;
	return set_value(c, k, value, st, err);
}

/* Parses one file's text into @c, over what an earlier file set there. */
static int parse_into(struct ferry_config *c, const char *text, size_t len, const char *name,
		      struct ferry_error **err)
{
	if (len > FERRY_CONFIG_MAX)
		return ferry_error_msg(err, EFBIG, "%s is larger than %u bytes", name,
				       (unsigned)FERRY_CONFIG_MAX);
	struct parse_state st = {.name = name};
	size_t pos = 0;
	while (pos < len) {
		st.lineno++;
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		pos += n + (nl ? 1 : 0);
		if (memchr(line, '\0', n))
			return ferry_error_msg(err, EINVAL, "%s line %u: contains a NUL byte", name,
					       st.lineno);
		int r = parse_line(c, line, n, &st, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_named(const char *text, size_t len, const char *name, struct ferry_config **ret,
		       struct ferry_error **err)
{
	if (!ret)
		return ferry_error_msg(err, EINVAL, "ferry_config_parse: no result pointer");
	if (!text && len > 0)
		return ferry_error_msg(err, EINVAL, "ferry_config_parse: no text");

	_cleanup_(ferry_config_freep) struct ferry_config *c = ferry_config_defaults();
	int r = parse_into(c, text, len, name, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c);
	return 0;
}

int ferry_config_parse(const char *text, size_t len, struct ferry_config **ret, struct ferry_error **err)
{
	return parse_named(text, len, "ferry.conf", ret, err);
}

struct ferry_config *ferry_config_defaults(void)
{
	struct ferry_config *c = xzalloc(sizeof(*c));
	c->allow_setuid = true;
	c->mount_home = true;
	c->mount_tmp = true;
	c->mount_cwd = true;
	c->user_bind_control = true;
	c->allow_bind_paths = xzalloc(sizeof(char *));
	c->criu_path = xstrdup("/usr/local/sbin/criu");
	c->mem_dir = xstrdup("/dev/shm");
	c->checkpoint_dir = xstrdup("~/.ferry/checkpoint");
	c->staging = true;
	c->staging_dir = xstrdup("/dev/shm/ferry-staging");
	c->max_instances = 64;
	c->criu_timeout = 600;
	c->criu_ghost_limit = 1;
	c->criu_loopback = true;
	c->allow_live = true;
	c->compress_pages = true;
	c->allow_net_networks = xzalloc(sizeof(char *));
	c->allow_net_ranges = xzalloc(sizeof(char *));
	c->network_parents = xzalloc(sizeof(char *));
	c->network_dir = xstrdup(FERRY_SYSCONFDIR "/network");
	c->cni_path = xstrdup("/usr/lib/cni");
	c->nft_path = xstrdup("/usr/sbin/nft");
	c->ferryd_listen = xstrdup("0.0.0.0:7780");
	c->ferryd_peers = xzalloc(sizeof(char *));
	c->ferryd_shared_dir = xstrdup(FERRY_STATEDIR "/shared");
	c->ferryd_tmpfs_dir = xstrdup("/dev/shm/ferry-migrate");
	c->peer_timeout = 30;
	c->slurm_keep = 2;
	c->slurm_grace = 120;
	return c;
}

static int open_error(const char *path, int code, struct ferry_error **err)
{
	if (code == ELOOP)
		return ferry_error_msg(
		    err, ELOOP, "'%s' is a symbolic link; ferry's configuration must be a regular file",
		    path);
	return ferry_error_set(err, code, "open '%s'", path);
}

/* The directory @dir (an O_PATH fd for @dir_path) must be owned by root and not writable by group
 * or others, unless it is sticky: in a sticky directory such as /tmp others cannot rename or remove
 * root's entries, and the next component is checked in turn. */
static int check_dir(int dir, const char *dir_path, const char *path, struct ferry_error **err)
{
	struct stat st;
	if (fstat(dir, &st) < 0)
		return ferry_error_set(err, errno, "stat '%s'", dir_path);
	if (st.st_uid != 0 || ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)))
		return ferry_error_msg(err, EPERM,
				       "'%s' (a directory above '%s') must be owned by root and not writable "
				       "by others (chown root: %s; chmod go-w %s)",
				       dir_path, path, dir_path, dir_path);
	return 0;
}

/* Opens @path for reading, one component at a time from "/", never following a symlink, checking
 * every directory on the way with check_dir(); *ret_dir is the (O_PATH) directory it is in. */
static int open_trusted(const char *path, int *ret_fd, int *ret_dir, struct ferry_error **err)
{
	size_t len = strlen(path);
	if (!ferry_config_path_normal(path, len) || len == 1)
		return ferry_error_msg(err, EINVAL,
				       "'%s': the configuration path must be absolute, without '.' or '..' "
				       "components, '//' or a trailing '/'",
				       path);

	_cleanup_close_ int dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return ferry_error_set(err, errno, "open '/'");
	const char *comp = path + 1;
	for (;;) {
		size_t dlen = (size_t)(comp - 1 - path);
		_cleanup_free_ char *dir_path = dlen ? xstrndup(path, dlen) : xstrdup("/");
		int r = check_dir(dir, dir_path, path, err);
		if (r < 0)
			return r;

		const char *end = strchrnul(comp, '/');
		_cleanup_free_ char *name = xstrndup(comp, (size_t)(end - comp));
		if (!*end) {
			int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
			if (fd < 0)
				return open_error(path, errno, err);
			*ret_fd = fd;
			*ret_dir = TAKE_FD(dir);
			return 0;
		}

		int next = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int code = errno;
			_cleanup_free_ char *sub = xstrndup(path, (size_t)(end - path));
			struct stat st;
			if ((code == ENOTDIR || code == ELOOP) &&
			    fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				return ferry_error_msg(
				    err, ELOOP,
				    "'%s' (a directory above '%s') is a symbolic link; the "
				    "configuration path must not contain one",
				    sub, path);
			return ferry_error_set(err, code, "open '%s'", path);
		}
		closep(&dir);
		dir = next;
		comp = end + 1;
	}
}

/* Reads the open file @fd (@path, for messages): a regular file of at most FERRY_CONFIG_MAX bytes,
 * when @require_root_owned owned by root and not writable by group or others. */
static int read_checked(int fd, const char *path, bool require_root_owned, char **ret_buf, size_t *ret_len,
			struct ferry_error **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ferry_error_set(err, errno, "stat '%s'", path);
	if (!S_ISREG(st.st_mode))
		return ferry_error_msg(err, EINVAL, "'%s' is not a regular file", path);
	if (require_root_owned && (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))))
		return ferry_error_msg(err, EPERM,
				       "'%s' must be owned by root and not writable by others "
				       "(chown root: %s; chmod 644 %s)",
				       path, path, path);
	if (st.st_size < 0 || st.st_size > FERRY_CONFIG_MAX)
		return ferry_error_msg(err, EFBIG, "'%s' is larger than %u bytes", path,
				       (unsigned)FERRY_CONFIG_MAX);

	/* Read one byte more than fstat promised to notice a file that grows meanwhile. */
	size_t cap = (size_t)st.st_size + 1;
	_cleanup_free_ char *buf = xmalloc(cap);
	size_t n = 0;
	while (n < cap) {
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return ferry_error_set(err, errno, "read '%s'", path);
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n == cap)
		return ferry_error_msg(err, EAGAIN, "'%s' changed while it was read", path);
	*ret_buf = TAKE_PTR(buf);
	*ret_len = n;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The drop-in names in the directory @dfd (@dpath, for messages), in byte order: those ending in
 * ".conf" and not starting with '.'; at most FERRY_CONFIG_DROPIN_MAX of them. */
static int dropin_names(int dfd, const char *dpath, char ***ret, struct ferry_error **err)
{
	int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return ferry_error_set(err, errno, "dup '%s'", dpath);
	DIR *d = fdopendir(fd);
	if (!d) {
		int code = errno;
		close(fd);
		return ferry_error_set(err, code, "read '%s'", dpath);
	}
	_cleanup_strv_ char **names = xzalloc(sizeof(char *));
	size_t count = 0;
	int r = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno != 0)
				r = ferry_error_set(err, errno, "read '%s'", dpath);
			break;
		}
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 || !streq(de->d_name + len - 5, ".conf"))
			continue;
		if (count++ == FERRY_CONFIG_DROPIN_MAX) {
			r = ferry_error_msg(err, EMFILE,
					    "'%s' holds more than %u drop-in files; ferry reads at most %u "
					    "(merge some)",
					    dpath, FERRY_CONFIG_DROPIN_MAX, FERRY_CONFIG_DROPIN_MAX);
			break;
		}
		strv_push(&names, de->d_name);
	}
	closedir(d);
	if (r < 0)
		return r;
	qsort(names, count, sizeof(char *), cmp_names);
	*ret = TAKE_PTR(names);
	return 0;
}

/* Opens the drop-in directory @dpath (at @parent's @base when @parent >= 0): -1 in *ret_fd when
 * there is none; must be a directory, owned by root and not writable by others when
 * @require_root_owned. */
static int open_dropin_dir(int parent, const char *base, const char *dpath, bool require_root_owned,
			   int *ret_fd, struct ferry_error **err)
{
	const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	_cleanup_close_ int fd = parent >= 0 ? openat(parent, base, flags) : open(dpath, flags);
	struct stat st;
	if (fd < 0 && errno == ENOENT) {
		*ret_fd = -1;
		return 0;
	}
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR) &&
	    (parent >= 0 ? fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) : lstat(dpath, &st)) == 0 &&
	    S_ISLNK(st.st_mode))
		return ferry_error_msg(err, ELOOP, "'%s' is a symbolic link; it must be a directory", dpath);
	if (fd < 0)
		return ferry_error_set(err, errno, "open '%s'", dpath);
	if (fstat(fd, &st) < 0)
		return ferry_error_set(err, errno, "stat '%s'", dpath);
	if (require_root_owned && (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))))
		return ferry_error_msg(err, EPERM,
				       "'%s' must be owned by root and not writable by others "
				       "(chown root: %s; chmod 755 %s)",
				       dpath, dpath, dpath);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Parses the drop-ins of @dpath (see ferry_config_load) into @c, over what ferry.conf set. */
static int load_dropins(struct ferry_config *c, int parent, const char *base, const char *dpath,
			bool require_root_owned, struct ferry_error **err)
{
	_cleanup_close_ int dfd = -1;
	int r = open_dropin_dir(parent, base, dpath, require_root_owned, &dfd, err);
	if (r < 0 || dfd < 0)
		return r;
	_cleanup_strv_ char **names = NULL;
	r = dropin_names(dfd, dpath, &names, err);
	if (r < 0)
		return r;
	for (char **n = names; n && *n; n++) {
		_cleanup_free_ char *path = xasprintf("%s/%s", dpath, *n);
		_cleanup_close_ int fd =
		    openat(dfd, *n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			return open_error(path, errno, err);
		_cleanup_free_ char *buf = NULL;
		size_t len = 0;
		r = read_checked(fd, path, require_root_owned, &buf, &len, err);
		if (r < 0)
			return r;
		r = parse_into(c, buf, len, path, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int ferry_config_load(const char *path, bool require_root_owned, struct ferry_config **ret,
		      struct ferry_error **err)
{
	if (!path)
		path = FERRY_CONFIG_PATH;

	_cleanup_close_ int fd = -1, dir = -1;
	if (require_root_owned) {
		int r = open_trusted(path, &fd, &dir, err);
		if (r < 0)
			return r;
	} else {
		/* O_NONBLOCK: a FIFO planted at the path must not hang us; no effect on regular files. */
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			return open_error(path, errno, err);
	}

	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = read_checked(fd, path, require_root_owned, &buf, &len, err);
	if (r < 0)
		return r;
	_cleanup_(ferry_config_freep) struct ferry_config *c = ferry_config_defaults();
	r = parse_into(c, buf, len, path, err);
	if (r < 0)
		return r;

	_cleanup_free_ char *dpath = xasprintf("%s.d", path);
	const char *base = strrchr(dpath, '/');
	r = load_dropins(c, dir, base ? base + 1 : dpath, dpath, require_root_owned, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c);
	return 0;
}

static void put_u32(FILE *f, uint32_t n)
{
	unsigned char b[4];
	ferry_put_le32(b, n);
	fwrite(b, 1, sizeof(b), f);
}

static void put_string(FILE *f, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	put_u32(f, s ? (uint32_t)n : UINT32_MAX);
	fwrite(s ? s : "", 1, n, f);
}

int ferry_config_encode(const struct ferry_config *c, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return -errno;
	fputs(FERRY_CONFIG_WIRE_MAGIC, f);
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &ferry_config_keys[i];
		const void *field = (const char *)c + k->offset;
		if (key_is_bool(k->kind)) {
			fputc(*(const bool *)field ? 1 : 0, f);
		} else if (key_is_uint(k->kind)) {
			put_u32(f, *(const unsigned *)field);
		} else if (key_is_list(k->kind)) {
			char *const *v = *(char **const *)field;
			put_u32(f, (uint32_t)strv_length(v));
			for (; v && *v; v++)
				put_string(f, *v);
		} else {
			put_string(f, *(char *const *)field);
		}
	}
	if (fclose(f) != 0 || len > FERRY_CONFIG_WIRE_MAX) {
		free(buf);
		return -EFBIG;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

const char *ferry_config_network_parent(const struct ferry_config *c, const char *network)
{
	size_t n = strlen(network);
	for (char **p = c->network_parents; p && *p; p++)
		if (strncmp(*p, network, n) == 0 && (*p)[n] == ':')
			return *p + n + 1;
	return NULL;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <linux/openat2.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "fs.h"

int ferry_read_all(int fd, size_t max, char **ret_buf, size_t *ret_len, struct ferry_error **err)
{
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap > max)
				return ferry_error_msg(err, EFBIG, "more than %zu bytes", max);
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ferry_error_set(err, errno, "read");
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return ferry_error_msg(err, EFBIG, "more than %zu bytes", max);
	}
	buf[len] = '\0';
	*ret_buf = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int ferry_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len, struct ferry_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ferry_error_set(err, errno, "open '%s'", path);
	int r = ferry_read_all(fd, max, ret_buf, ret_len, err);
	if (r < 0)
		return ferry_error_wrap(err, "read '%s'", path);
	return 0;
}

int ferry_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ferry_write_file_atomic(int dirfd, const char *name, const char *data, size_t len, mode_t mode,
			    struct ferry_error **err)
{
	_cleanup_free_ char *tmp = xasprintf(".%s.tmp%ld", name, (long)getpid());
	_cleanup_close_ int fd =
	    openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return ferry_error_set(err, errno, "create '%s'", tmp);
	int r = ferry_write_all(fd, data, len);
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return ferry_error_set(err, -r, "write '%s'", name);
	}
	return 0;
}

int ferry_fd_path(int fd, char **ret, struct ferry_error **err)
{
	char link[FERRY_FD_PATH_MAX];
	char buf[PATH_MAX];
	ssize_t n = readlink(ferry_proc_fd(fd, link), buf, sizeof(buf) - 1);
	if (n < 0)
		return ferry_error_set(err, errno, "readlink '%s'", link);
	buf[n] = '\0';
	*ret = xstrdup(buf);
	return 0;
}

int ferry_mkdir_p(const char *path, mode_t mode, struct ferry_error **err)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return ferry_error_set(err, errno, "mkdir '%s'", p);
		*s = c;
		if (c == '\0')
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return ferry_error_set(err, errno, "stat '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return ferry_error_msg(err, ENOTDIR, "'%s' exists and is not a directory", path);
	return 0;
}

static int atoi_strict_fd(const char *s)
{
	unsigned long long v = 0;
	return parse_uint64(s, INT32_MAX, &v) < 0 ? -1 : (int)v;
}

/* Whether the fd @n of process @pid (a /proc/PID/fd entry) is @dev:@ino, other than ours. */
static bool fd_is(int piddir, const char *n, dev_t dev, ino_t ino, bool self, int our_fd)
{
	struct stat st;
	if (self && atoi_strict_fd(n) == our_fd)
		return false;
	return fstatat(piddir, n, &st, 0) == 0 && st.st_dev == dev && st.st_ino == ino;
}

int ferry_fd_open_elsewhere(int fd)
{
	struct stat me;
	if (fstat(fd, &me) < 0)
		return -errno;
	DIR *proc = opendir("/proc");
	if (!proc)
		return -errno;
	pid_t self = getpid();
	int found = 0;
	struct dirent *de;
	while (!found && (de = readdir(proc))) {
		unsigned long long pid = 0;
		if (parse_uint64(de->d_name, INT32_MAX, &pid) < 0)
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%llu/fd", pid);
		_cleanup_close_ int piddir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *fds = piddir < 0 ? NULL : ferry_opendir_at(piddir);
		struct dirent *f;
		while (fds && !found && (f = readdir(fds)))
			found = f->d_name[0] != '.' &&
				fd_is(piddir, f->d_name, me.st_dev, me.st_ino, (pid_t)pid == self, fd);
		if (fds)
			closedir(fds);
	}
	closedir(proc);
	return found;
}

int ferry_open_root_dirs(const char *const *parts, size_t n, bool create, struct ferry_error **err)
{
	int dirfd = AT_FDCWD;
	for (size_t i = 0; i < n; i++) {
		if (create && mkdirat(dirfd, parts[i], 0700) < 0 && errno != EEXIST) {
			int r = ferry_error_set(err, errno, "create '%s'", parts[i]);
			if (dirfd >= 0)
				close(dirfd);
			return r;
		}
		int fd = openat(dirfd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		if (dirfd >= 0)
			close(dirfd);
		if (fd < 0)
			return e == ENOENT && !create ? -ENOENT
						      : ferry_error_set(err, e, "open '%s'", parts[i]);
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 077)) {
			close(fd);
			return ferry_error_msg(
			    err, EPERM, "'%s' must be a directory owned by root with mode 0700", parts[i]);
		}
		dirfd = fd;
	}
	return dirfd;
}

int ferry_open_in_root(int rootfd, const char *path, int flags, mode_t mode, unsigned long long extra_resolve)
{
	struct open_how how = {
	    .flags = (unsigned long long)(flags | O_CLOEXEC),
	    .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve,
	};
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	int fd;
	do
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return fd < 0 ? -errno : fd;
}

const char *ferry_proc_fd(int fd, char buf[FERRY_FD_PATH_MAX])
{
	snprintf(buf, FERRY_FD_PATH_MAX, "/proc/self/fd/%d", fd);
	return buf;
}

/* Without close_range (before Linux 5.9): every number up to the fd limit, one by one. */
static void close_each(int lo, int next)
{
	int max = (int)sysconf(_SC_OPEN_MAX);
	for (int fd = lo; fd < next && fd < (max < 0 || max > 65536 ? 65536 : max); fd++)
		close(fd);
}

void ferry_close_fds(int from, const int *keep)
{
	/* each run between kept fds by one close_range: a close() of every number up to the limit
	 * costs milliseconds (4 ms at 20,000) in every helper and starter a migration runs */
	for (int lo = from, next;; lo = next + 1) {
		next = INT_MAX; /* the lowest kept fd from lo on */
		for (size_t i = 0; keep && keep[i] >= 0; i++)
			if (keep[i] >= lo && keep[i] < next)
				next = keep[i];
		if (next > lo && syscall(SYS_close_range, (unsigned)lo, (unsigned)next - 1u, 0u) < 0)
			close_each(lo, next);
		if (next == INT_MAX)
			return;
	}
}

DIR *ferry_opendir_at(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

/* @whole: @timeout bounds the whole read, else each piece of it; 0: no limit. */
static int read_timed(int fd, void *buf, size_t len, unsigned timeout, bool whole, struct ferry_error **err)
{
	long long deadline = ferry_monotonic_ms() + (long long)timeout * 1000;
	unsigned char *p = buf;
	while (len > 0) {
		long long left = !timeout ? -1
				 : whole  ? deadline - ferry_monotonic_ms()
					  : (long long)timeout * 1000;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = timeout && left <= 0 ? 0 : poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return ferry_error_msg(err, ETIMEDOUT, "the peer sent nothing for %u s", timeout);
		if (r < 0)
			return ferry_error_set(err, errno, "poll");
		ssize_t n = read(fd, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return ferry_error_set(err, errno, "read from the peer");
		if (n == 0)
			return ferry_error_msg(err, ECONNRESET, "the peer closed the connection");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ferry_read_timeout(int fd, void *buf, size_t len, unsigned timeout, struct ferry_error **err)
{
	return read_timed(fd, buf, len, timeout, false, err);
}

int ferry_read_within(int fd, void *buf, size_t len, unsigned timeout, struct ferry_error **err)
{
	return read_timed(fd, buf, len, timeout, true, err);
}

static bool dir_acceptable(const struct stat *st, mode_t mode, uid_t uid)
{
	return S_ISDIR(st->st_mode) && st->st_uid == uid && !(st->st_mode & 022 & ~mode);
}

/* A fresh directory @name in @parentfd, made by us: opened, checked and given its owner and mode
 * through the fd. -EAGAIN when someone else's entry took the name meanwhile (the caller retries). */
static int make_dir_at(int parentfd, const char *name, mode_t mode, uid_t uid, gid_t gid, int *ret_fd)
{
	if (mkdirat(parentfd, name, 0700) < 0)
		return errno == EEXIST ? -EAGAIN : -errno;
	_cleanup_close_ int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? -EAGAIN : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* ours, just made: owned by us, no one else's yet (a non-sticky parent lets others swap it) */
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
		return -EAGAIN;
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int move_aside(int parentfd, const char *name, char **ret_moved)
{
	for (int i = 0; i < 8; i++) {
		unsigned char r[6];
		if (getentropy(r, sizeof(r)) < 0)
			return -errno;
		_cleanup_free_ char *hidden =
		    xasprintf(".%s.moved-%02x%02x%02x%02x%02x%02x", name, r[0], r[1], r[2], r[3], r[4], r[5]);
		if (renameat2(parentfd, name, parentfd, hidden, RENAME_NOREPLACE) == 0) {
			if (ret_moved) {
				free(*ret_moved);
				*ret_moved = TAKE_PTR(hidden);
			}
			return 0;
		}
		if (errno == ENOENT)
			return 0; /* gone meanwhile */
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int ferry_root_dir_at(int parentfd, const char *name, mode_t mode, uid_t uid, gid_t gid, int *ret_fd,
		      char **ret_moved, struct ferry_error **err)
{
	if (ret_moved)
		*ret_moved = NULL;
	if (!*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
		return ferry_error_msg(err, EINVAL, "bad directory name '%s'", name);
	for (int attempt = 0; attempt < 16; attempt++) {
		_cleanup_close_ int fd =
		    openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd < 0 && errno == ENOENT) {
			int r = make_dir_at(parentfd, name, mode, uid, gid, ret_fd);
			if (r == -EAGAIN)
				continue;
			if (r < 0)
				return ferry_error_set(err, -r, "create '%s'", name);
			return 0;
		}
		if (fd < 0 && errno != ELOOP && errno != ENOTDIR)
			return ferry_error_set(err, errno, "open '%s'", name);
		if (fd >= 0 && fstat(fd, &st) < 0)
			return ferry_error_set(err, errno, "stat '%s'", name);
		if (fd >= 0 && dir_acceptable(&st, mode, uid)) {
			*ret_fd = TAKE_FD(fd);
			return 0;
		}
		/* a symlink, a file, or a directory we must not trust: out of the way */
		int r = move_aside(parentfd, name, ret_moved);
		if (r < 0)
			return ferry_error_set(err, -r, "move the squatted '%s' aside", name);
	}
	return ferry_error_msg(err, EAGAIN, "'%s' keeps being replaced: gave up", name);
}

/* One step of the walk: @name in @cur (whose path is @at), or the last component @last. */
static int walk_step(int cur, const char *at, const char *name, bool last, mode_t mode,
		     ferry_moved_fn moved_fn, void *ctx, int *ret_fd, struct ferry_error **err)
{
	struct stat st;
	if (fstat(cur, &st) < 0)
		return ferry_error_set(err, errno, "stat '%s'", at);
	bool trusted = st.st_uid == 0 && !(st.st_mode & 022);
	bool sticky = st.st_uid == 0 && (st.st_mode & S_ISVTX);
	if (!trusted && !sticky)
		return ferry_error_msg(
		    err, EPERM, "'%s' is writable by others than root: no directory of root's is kept there",
		    *at ? at : "/");
	if (last && !trusted) {
		/* our own name in a world-writable directory: whatever else is there is a
		 * squatter's, moved aside */
		_cleanup_free_ char *moved = NULL;
		int r = ferry_root_dir_at(cur, name, mode, 0, 0, ret_fd, &moved, err);
		if (moved && moved_fn)
			moved_fn(ctx, *at ? at : "", name, moved);
		return r < 0 ? ferry_error_wrap(err, "in '%s'", *at ? at : "/") : 0;
	}
	int fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && (mkdirat(cur, name, last ? mode : 0755) == 0 || errno == EEXIST))
		fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return ferry_error_msg(err, ELOOP, "'%s/%s' is a symlink: give the real path", at, name);
	if (fd < 0)
		return ferry_error_set(err, errno, "open '%s/%s'", at, name);
	/* a directory on the way that someone else owns is not moved (it may be theirs by right,
	 * as a directory of /var/tmp is): the path is refused, for the admin to change */
	bool ok = fstat(fd, &st) == 0 && st.st_uid == 0 &&
		  (!(st.st_mode & 022) || (!last && (st.st_mode & S_ISVTX))); /* /dev/shm, /var/tmp */
	if (!ok || (last && fchmod(fd, mode) < 0)) {
		close(fd);
		return ferry_error_msg(
		    err, EPERM,
		    "'%s/%s' is not a directory of root's that only root can write: no "
		    "directory of root's is kept there (choose a path in root's directories)",
		    at, name);
	}
	*ret_fd = fd;
	return 0;
}

int ferry_root_path_open(const char *base, mode_t mode, ferry_moved_fn moved_fn, void *ctx, int *ret_fd,
			 struct ferry_error **err)
{
	if (base[0] != '/')
		return ferry_error_msg(err, EINVAL, "'%s' is not an absolute path", base);
	_cleanup_close_ int cur = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return ferry_error_set(err, errno, "open '/'");
	_cleanup_free_ char *copy = xstrdup(base);
	_cleanup_free_ char *at = xstrdup("");
	char *save = NULL;
	char *name = strtok_r(copy, "/", &save);
	if (!name)
		return ferry_error_msg(err, EINVAL, "'/' cannot be the directory");
	while (name) {
		char *next = strtok_r(NULL, "/", &save);
		if (streq(name, ".") || streq(name, ".."))
			return ferry_error_msg(err, EINVAL, "'%s': no '.' or '..' in the path", base);
		int fd = -1;
		int r = walk_step(cur, at, name, next == NULL, mode, moved_fn, ctx, &fd, err);
		if (r < 0)
			return r;
		close(cur);
		cur = fd;
		char *longer = xasprintf("%s/%s", at, name);
		free(at);
		at = longer;
		name = next;
	}
	*ret_fd = TAKE_FD(cur);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fs.h — file helpers: bounded reads, atomic writes, safe path resolution. */
#ifndef FERRY_FS_H
#define FERRY_FS_H

#include <sys/types.h>

#include "error.h"

/* Reads the whole of @fd (from its current offset) into a NUL-terminated buffer; fails with
 * EFBIG when more than @max bytes arrive. */
int ferry_read_all(int fd, size_t max, char **ret_buf, size_t *ret_len, struct ferry_error **err);
int ferry_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len, struct ferry_error **err);
/* Reads exactly @len bytes from a socket or pipe, waiting at most @timeout seconds (0: forever)
 * for each piece; the end of the stream before that is ECONNRESET, a silence ETIMEDOUT. */
int ferry_read_timeout(int fd, void *buf, size_t len, unsigned timeout, struct ferry_error **err);
/* The same, with @timeout for the whole of it (a message cut into many small reads cannot
 * stretch it). */
int ferry_read_within(int fd, void *buf, size_t len, unsigned timeout, struct ferry_error **err);
/* Writes all of @buf, retrying short writes and EINTR. */
int ferry_write_all(int fd, const void *buf, size_t len);
/* Creates @name in @dirfd atomically: a hidden temp file, fsync, rename over @name. */
int ferry_write_file_atomic(int dirfd, const char *name, const char *data, size_t len, mode_t mode,
			    struct ferry_error **err);
/* The path an fd refers to (readlink of /proc/self/fd/N). */
int ferry_fd_path(int fd, char **ret, struct ferry_error **err);
/* mkdir -p with @mode for each created component; existing directories are fine. */
int ferry_mkdir_p(const char *path, mode_t mode, struct ferry_error **err);
/* 1 when some open file of a process (ours included, but for @fd itself) refers to @fd's inode,
 * 0 when none does, -errno when that cannot be told: what a write lease proves, for filesystems
 * without leases (it cannot see a file in flight in a unix socket). */
int ferry_fd_open_elsewhere(int fd);
/* Opens the chain @parts[0]/@parts[1]/... of root-only directories (root's, mode 0700, no
 * symlink), creating what is missing when @create; @parts[0] is absolute. Returns the last one's
 * fd, or -ENOENT (no message) when one is missing and !@create, or another -errno. */
int ferry_open_root_dirs(const char *const *parts, size_t n, bool create, struct ferry_error **err);
/* openat2(@rootfd, @path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra): @path is resolved as
 * if @rootfd were "/", so symlinks in a container image can never lead outside it. */
int ferry_open_in_root(int rootfd, const char *path, int flags, mode_t mode,
		       unsigned long long extra_resolve);
/* "/proc/self/fd/N" in a caller-provided buffer, for mount(2) targets. */
#define FERRY_FD_PATH_MAX 32
const char *ferry_proc_fd(int fd, char buf[FERRY_FD_PATH_MAX]);
/* A fresh directory stream on @dirfd's directory. (fdopendir(dup(fd)) would share the file
 * offset with @dirfd, so a second listing of the same fd would find nothing.) */
#include <dirent.h>
DIR *ferry_opendir_at(int dirfd);
/* Closes every fd >= @from except those in @keep (terminated by -1, may be NULL). */

void ferry_close_fds(int from, const int *keep);

/* The directory @name in @parentfd, for root to work in: opened O_NOFOLLOW|O_DIRECTORY into
 * *ret_fd, a directory owned by @uid:@gid that neither group nor others can write to (unless
 * @mode says so). Made with @mode (exactly, whatever the umask) when it is missing. Whatever
 * else holds the name - a symlink, a file, a directory of another owner or one others can write
 * to: a squatter in a world-writable parent such as /dev/shm - is renamed aside to a unique
 * hidden name ".NAME.moved-XXXXXXXXXXXX" in @parentfd (returned in *ret_moved, else NULL there,
 * for the caller to log; @ret_moved may be NULL) and a fresh directory made in its place. An
 * existing directory that passes is kept with its mode. Never chowns or chmods by name. */
int ferry_root_dir_at(int parentfd, const char *name, mode_t mode, uid_t uid, gid_t gid, int *ret_fd,
		      char **ret_moved, struct ferry_error **err);

/* Called when ferry_root_path_open moved a squatter's @name in @parent aside to @moved. */
typedef void (*ferry_moved_fn)(void *ctx, const char *parent, const char *name, const char *moved);
/* Opens the absolute @path for root to work in, through a walk from "/" one component at a time
 * with O_NOFOLLOW (no "." or ".."): a missing component is made by root (0755, the last @mode);
 * every component must be root's and writable by root alone, but that one on the way may be a
 * sticky world-writable directory (/dev/shm, /var/tmp). The last one may sit in such a directory:
 * whatever else holds its name there is a squatter's and is moved aside (ferry_root_dir_at;
 * @moved_fn is told, may be NULL). A directory on the way that someone else owns is never moved
 * (it may be theirs by right): that path is refused. The last one ends with @mode. */
int ferry_root_path_open(const char *path, mode_t mode, ferry_moved_fn moved_fn, void *ctx, int *ret_fd,
			 struct ferry_error **err);

#endif

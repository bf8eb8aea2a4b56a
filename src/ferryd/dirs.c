/* SPDX-License-Identifier: GPL-2.0-or-later */
/* dirs.c — where migrations put checkpoints: BASE/<uid>/<name>-<id>.
 *
 * Root never works by path here. The base is reached from "/" one component at a time, with
 * O_NOFOLLOW; a missing component is made by root (0755, the base 0711), and every component must
 * be root's and writable by root alone. The base itself may sit in a world-writable sticky
 * directory (/dev/shm/ferry-migrate): whatever else is found under its name there is a
 * squatter's and is moved aside (ferry_root_dir_at). A directory on the way that someone else
 * owns is never moved (it may be theirs by right): that path is refused.
 * Every component then being root's, the path that the starters are given resolves to the
 * directories checked here. BASE and BASE/<uid> are root's, 0711 (the user passes through but
 * cannot list or add anything); the leaf is made in BASE/<uid> by mkdirat and given to the user
 * by fchown on its fd: there is no name a user could swap. */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>

#include "ferryd.h"
#include "fs.h"

#define BASE_MODE 0711
#define LEAF_MODE 0700

static void log_moved(const char *id, const char *parent, const char *name, const char *moved)
{
	if (moved)
		ferryd_log(id, "moved '%s/%s' aside to '%s': it was not a directory of root's only", parent,
			   name, moved);
}

static void on_moved(void *id, const char *parent, const char *name, const char *moved)
{
	log_moved(id, parent, name, moved);
}

/* @base (absolute) opened through a walk from "/", made where missing, root's and 0711 at the end. */
static int open_base(const char *base, const char *id, int *ret_fd, struct ferry_error **err)
{
	return ferry_root_path_open(base, BASE_MODE, on_moved, (void *)id, ret_fd, err);
}

int ferryd_leaf_make(const char *base, const struct ferryd_user *u, const char *leaf, const char *id,
		     struct ferryd_leaf *ret, struct ferry_error **err)
{
	_cleanup_close_ int basefd = -1;
	int r = open_base(base, id, &basefd, err);
	if (r < 0)
		return ferry_error_wrap(err, "ferryd's directory '%s'", base);
	char uid_name[16];
	snprintf(uid_name, sizeof(uid_name), "%u", (unsigned)u->uid);
	_cleanup_close_ int uidfd = -1;
	_cleanup_free_ char *moved = NULL;
	if (ferry_root_dir_at(basefd, uid_name, BASE_MODE, 0, 0, &uidfd, &moved, err) < 0)
		return ferry_error_wrap(err, "in '%s'", base);
	log_moved(id, base, uid_name, moved);
	/* only root writes in BASE/<uid>: the name is ours from mkdirat to fchown */
	if (mkdirat(uidfd, leaf, LEAF_MODE) < 0)
		return ferry_error_set(err, errno, "create '%s/%s/%s'", base, uid_name, leaf);
	_cleanup_close_ int fd = openat(uidfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != 0 || !S_ISDIR(st.st_mode) ||
	    fchown(fd, u->uid, u->gid) < 0 || fchmod(fd, LEAF_MODE) < 0) {
		int e = errno ? errno : EPERM;
		unlinkat(uidfd, leaf, AT_REMOVEDIR);
		return ferry_error_set(err, e, "prepare '%s/%s/%s'", base, uid_name, leaf);
	}
	ret->uidfd = TAKE_FD(uidfd);
	ret->name = xstrdup(leaf);
	ret->path = xasprintf("%s/%s/%s", base, uid_name, leaf);
	return 0;
}

bool ferryd_leaf_remove_all(struct ferryd *d, const struct ferryd_user *u, struct ferryd_leaf *l,
			    const char *id)
{
	if (!l->name)
		return true;
	_cleanup_free_ char *name = xstrdup(l->name);
	_cleanup_close_ int uidfd = fcntl(l->uidfd, F_DUPFD_CLOEXEC, 3);
	ferryd_leaf_remove(d, u, l, id);
	return uidfd < 0 || faccessat(uidfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0;
}

int ferryd_leaf_open(const char *base, const struct ferryd_user *u, const char *leaf, const char *id,
		     struct ferryd_leaf *ret, struct ferry_error **err)
{
	_cleanup_close_ int basefd = -1;
	if (open_base(base, id, &basefd, err) < 0)
		return ferry_error_wrap(err, "ferryd's directory '%s'", base);
	char uid_name[16];
	snprintf(uid_name, sizeof(uid_name), "%u", (unsigned)u->uid);
	_cleanup_close_ int uidfd = openat(basefd, uid_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (uidfd < 0)
		return ferry_error_set(err, errno, "open '%s/%s'", base, uid_name);
	if (fstat(uidfd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022))
		return ferry_error_msg(err, EPERM, "'%s/%s' is not root's", base, uid_name);
	if (faccessat(uidfd, leaf, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return ferry_error_set(err, errno, "'%s/%s/%s'", base, uid_name, leaf);
	ret->uidfd = TAKE_FD(uidfd);
	ret->name = xstrdup(leaf);
	ret->path = xasprintf("%s/%s/%s", base, uid_name, leaf);
	return 0;
}

void ferryd_leaf_close(struct ferryd_leaf *l)
{
	if (l->uidfd >= 0)
		close(l->uidfd);
	l->uidfd = -1;
	free(l->name);
	free(l->path);
	l->name = l->path = NULL;
}

/* Removes what is in @dirfd, never following a symlink nor leaving the filesystem. */
static void empty_dir(int dirfd, dev_t dev, int depth)
{
	DIR *dir = ferry_opendir_at(dirfd);
	if (!dir)
		return;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0 || (errno != EISDIR && errno != EPERM))
			continue;
		int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd >= 0 && depth < 64 && fstat(fd, &st) == 0 && st.st_dev == dev)
			empty_dir(fd, dev, depth + 1);
		if (fd >= 0)
			close(fd);
		unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
	}
	closedir(dir);
}

struct empty_arg {
	int fd;
	dev_t dev;
};

/* ferryd_as_user's work: the leaf emptied as the user. */
static int empty_child(void *arg, void *ans)
{
	const struct empty_arg *a = arg;
	empty_dir(a->fd, a->dev, 0);
	*(int *)ans = 1;
	return 0;
}

/* What the user left in their leaf is removed by a process that is the user, not by root, within
 * FERRYD_EMPTY_S (the user can stop that process; a tree too large for it is emptied further at
 * the next try): 0, or -ETIMEDOUT / -errno (logged). */
static int empty_as_user(struct ferryd *d, const struct ferryd_user *u, int leaffd, const char *path,
			 const char *id)
{
	struct stat st;
	if (fstat(leaffd, &st) < 0 || st.st_uid != u->uid)
		return 0;
	struct empty_arg a = {.fd = leaffd, .dev = st.st_dev};
	struct ferry_error *err = NULL;
	int done = 0;
	int r = ferryd_as_user(d, u, "ferryd-empty", leaffd, empty_child, &a, &done, sizeof(done),
			       FERRYD_EMPTY_S, &err);
	if (r < 0)
		ferryd_log(id, "emptying '%s' as %s: %s%s", path, u->name, err->message,
			   r == -ETIMEDOUT ? " (the rest at the next try)" : "");
	ferry_error_free(err);
	return r;
}

int ferryd_leaf_remove(struct ferryd *d, const struct ferryd_user *u, struct ferryd_leaf *l, const char *id)
{
	if (!l->name)
		return 0;
	if (unlinkat(l->uidfd, l->name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
		ferryd_leaf_close(l);
		return 0;
	}
	/* a checkpoint: its generations are root's, and the starter removes them as it removes any
	 * checkpoint's (as the user, through its own checks) */
	struct ferry_request del = {.op = FERRY_OP_CHECKPOINT_DELETE, .checkpoint = l->path};
	_cleanup_free_ char *out = NULL;
	struct ferry_error *err = NULL;
	if (ferryd_run_starter(d, u, &del, -1, &out, &err) < 0)
		ferryd_log(id, "delete the checkpoint in '%s': %s", l->path, err->message);
	ferry_error_free(err);
	int r = unlinkat(l->uidfd, l->name, AT_REMOVEDIR) < 0 ? -errno : 0;
	if (r == -ENOTEMPTY) {
		_cleanup_close_ int fd =
		    openat(l->uidfd, l->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = fd >= 0 ? empty_as_user(d, u, fd, l->path, id) : 0;
		r = unlinkat(l->uidfd, l->name, AT_REMOVEDIR) < 0 ? -errno : 0;
		if (r < 0 && e == -ETIMEDOUT)
			r = e;
	}
	if (r < 0 && r != -ENOENT && r != -ETIMEDOUT)
		ferryd_log(id, "could not remove '%s': %s", l->path, strerror(-r));
	ferryd_leaf_close(l);
	return r == -ENOENT ? 0 : r;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ckdir.c — the checkpoint directory, as root may touch it.
 *
 * A checkpoint directory is the user's: they name it, they own it, they can rename, replace or
 * mount over anything in it in a mount namespace of their own. Root works in it only through
 * fds: the directory is opened once, as the user, without magic links (no /proc/PID/root door
 * into a mount namespace the user made), and must sit on a mount of the starter's own mount
 * namespace that is not a user's FUSE filesystem. Below it, root opens only single names with
 * openat2(RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): never a symlink, never
 * across a mount point. Sealed files and generations are root's, readable by the owner alone
 * (a POSIX ACL entry for the owner: no other user reads a byte, whatever modes the owner gives
 * the directories above). */
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include "fs.h"
#include "starter.h"

#define MOUNTINFO_MAX (8u << 20)
#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

int fd_mount_id(int fd, unsigned long long *ret)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0)
		return -errno;
	if (!(stx.stx_mask & STATX_MNT_ID))
		return -EOPNOTSUPP;
	*ret = stx.stx_mnt_id;
	return 0;
}

/* True when mount @id is one of our own mount namespace (/proc/self/mountinfo lists only
 * those; a mount reached through another namespace is not there). */
static bool mount_is_ours(unsigned long long id)
{
	_cleanup_free_ char *buf = NULL;
	if (ferry_read_file("/proc/self/mountinfo", MOUNTINFO_MAX, &buf, NULL, NULL) < 0)
		return false;
	for (char *line = buf; line && *line;) {
		char *end = NULL;
		unsigned long long v = strtoull(line, &end, 10);
		if (end != line && *end == ' ' && v == id)
			return true;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return false;
}

int ckdir_check_mount(int fd, const char *what, struct ferry_error **err)
{
	unsigned long long id = 0;
	struct statfs sfs;
	if (fd_mount_id(fd, &id) < 0 || !mount_is_ours(id))
		return ferry_error_msg(err, EXDEV,
				       "%s is not on a filesystem of this node's mount namespace (reached "
				       "through /proc or another namespace): give its plain path",
				       what);
	if (fstatfs(fd, &sfs) < 0)
		return ferry_error_set(err, errno, "statfs %s", what);
	if (sfs.f_type == FUSE_SUPER_MAGIC)
		return ferry_error_msg(err, EPERM,
				       "%s is on a FUSE filesystem, which ferry cannot trust to keep a "
				       "sealed checkpoint: use a directory on a local or shared filesystem",
				       what);
	return 0;
}

int checkpoint_open_dir(struct starter *s, const char *path, struct ferry_error **err)
{
	/* as the user: the kernel checks their right to reach it */
	int r = ferry_privs_lower(&s->privs, err);
	if (r < 0)
		return r;
	struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS};
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	if (fd < 0) {
		if (errno == ENOENT)
			return ferry_error_msg(
			    err, ENOENT,
			    "checkpoint directory '%s' does not exist: create it with 'ferry checkpoint create'",
			    path);
		if (errno == ELOOP || errno == EXDEV)
			return ferry_error_msg(err, errno,
					       "checkpoint directory '%s' is reached through /proc: give its "
					       "plain path",
					       path);
		return ferry_error_set(err, errno, "checkpoint directory '%s'", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_uid != s->privs.uid || (st.st_mode & 022))
		return ferry_error_msg(
		    err, EPERM, "checkpoint directory '%s' must be yours and not writable by others", path);
	_cleanup_free_ char *what = xasprintf("checkpoint directory '%s'", path);
	if ((r = ckdir_check_mount(fd, what, err)) < 0)
		return r;
	s->ckpt_fd = TAKE_FD(fd);
	return 0;
}

int ckdir_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (unsigned long long)(flags | O_NOFOLLOW | O_CLOEXEC),
	    .mode = (flags & O_CREAT) ? mode : 0,
	    .resolve = RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH,
	};
	if (strchr(name, '/') || streq(name, "..")) {
		errno = EINVAL;
		return -1;
	}
	int fd;
	do
		fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return fd;
}

/* The names a user controls may, at any moment, name a tree of theirs holding another user's
 * directory (moved in from a directory both can write): root removes only what the caller could
 * remove themselves, or its own, judged on the opened fd, never by name. */
static int rm_allowed(int fd, uid_t uid, int same)
{
	struct stat st, want;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_uid != 0 && st.st_uid != uid)
		return -EPERM;
	if (same >= 0 && (fstat(same, &want) < 0 || st.st_dev != want.st_dev || st.st_ino != want.st_ino))
		return -ESTALE;
	return 0;
}

int ckdir_rm_tree(int dirfd, const char *name, uid_t uid, int same)
{
	int fd = ckdir_openat(dirfd, name, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0) {
		if (errno == EXDEV)
			return -EXDEV; /* a mount point: never descend into it */
		if (same >= 0)
			return -ESTALE; /* not the directory we made: not ours to remove */
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	}
	int r = rm_allowed(fd, uid, same);
	if (r < 0) {
		close(fd);
		return r;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		int q = 0;
		if (de->d_type == DT_DIR || (unlinkat(fd, de->d_name, 0) < 0 && errno == EISDIR))
			q = ckdir_rm_tree(fd, de->d_name, uid, -1);
		if (q < 0 && r == 0)
			r = q;
	}
	closedir(d);
	if (r < 0)
		return r;
	return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

/* A POSIX ACL (the kernel's xattr form) that lets @uid reach what root owns: owner @owner, the
 * named user @perm, group and others nothing. The kernel sets the mode's group bits to the
 * mask (@perm). */
struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};
#define ACL_USER_OBJ 0x01
#define ACL_USER 0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_MASK 0x10
#define ACL_OTHER 0x20
#define ACL_NO_ID 0xffffffffu

static int set_acl(int fd, uid_t uid, uint16_t owner, uint16_t perm)
{
	struct {
		uint32_t version;
		struct acl_entry e[5];
	} __attribute__((packed)) acl = {
	    .version = 2,
	    .e = {{ACL_USER_OBJ, owner, ACL_NO_ID},
		  {ACL_USER, perm, (uint32_t)uid},
		  {ACL_GROUP_OBJ, 0, ACL_NO_ID},
		  {ACL_MASK, perm, ACL_NO_ID},
		  {ACL_OTHER, 0, ACL_NO_ID}},
	};
	return fsetxattr(fd, "system.posix_acl_access", &acl, sizeof(acl), 0) < 0 ? -errno : 0;
}

int ckdir_grant_owner(int fd, uid_t uid, bool dir, struct ferry_error **err)
{
	int r = set_acl(fd, uid, dir ? 7 : 4, dir ? 5 : 4);
	if (r == -EOPNOTSUPP)
		return 0; /* no ACLs here: root's alone, the owner cannot read it either */
	if (r < 0)
		return ferry_error_set(err, -r, "grant the owner read access");
	return 0;
}

int ckdir_grant_owner_write(int fd, uid_t uid, struct ferry_error **err)
{
	int r = set_acl(fd, uid, 4, 6);
	if (r < 0)
		return ferry_error_set(err, -r, "grant the owner write access");
	return 0;
}

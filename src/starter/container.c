/* SPDX-License-Identifier: GPL-2.0-or-later */
/* container.c — the container's filesystem: image, overlay, /proc, /dev, binds, pivot_root.
 *
 * Runs as root in the child that is pid 1 of fresh mount/pid/ipc/uts namespaces. Every path
 * inside the container is resolved with openat2(RESOLVE_IN_ROOT), so symlinks in a user's
 * image can never make a mount land outside the container's root; every host source was opened
 * by the user before (struct mount_req), so no host path is looked up here with root's rights. */
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "fs.h"
#include "starter.h"

static int sys_open_tree(int dfd, const char *path, unsigned flags)
{
	return (int)syscall(SYS_open_tree, dfd, path, flags);
}

static int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags)
{
	return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

static int sys_mount_setattr(int dfd, const char *path, unsigned flags, struct mount_attr *attr)
{
	return (int)syscall(SYS_mount_setattr, dfd, path, flags, attr, sizeof(*attr));
}

/* A detached clone of the mount tree at @src_fd, with the given attributes, private. The clone
 * is made in the host's namespace (before the container's exists) and joins its source's peer
 * group when the source is shared (systemd makes / rshared): without MS_PRIVATE on every mount
 * of it, whatever the container attaches under it (a user's bind inside the bound home, /tmp or
 * cwd) would appear on the host and stay there. The container's MS_REC|MS_PRIVATE of / never
 * reaches these detached trees. */
static int clone_tree(int src_fd, bool recursive, uint64_t attrs, const char *what, struct ferry_error **err)
{
	int tree = sys_open_tree(
	    src_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
	if (tree < 0)
		return ferry_error_set(err, errno, "clone mount of '%s'", what);
	struct mount_attr attr = {.attr_set = attrs, .propagation = MS_PRIVATE};
	if (sys_mount_setattr(tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr) < 0) {
		int e = errno;
		close(tree);
		return ferry_error_set(err, e, "set mount attributes of '%s'", what);
	}
	return tree;
}

static int attach_tree(int tree, int target_fd, const char *what, struct ferry_error **err)
{
	if (sys_move_mount(tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return ferry_error_set(err, errno, "mount '%s'", what);
	return 0;
}

int container_clone_trees(struct starter *s, struct ferry_error **err)
{
	if (s->image.kind == FERRY_IMAGE_DIR) {
		s->image_tree =
		    clone_tree(s->image_fd, false, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
			       s->req->image, err);
		if (s->image_tree < 0)
			return s->image_tree;
	}
	for (size_t i = 0; i < s->n_mounts; i++) {
		struct mount_req *m = &s->mounts[i];
		if (m->fd < 0)
			continue;
		uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (m->ro ? MOUNT_ATTR_RDONLY : 0);
		m->tree = clone_tree(m->fd, true, attrs, m->src, err);
		if (m->tree < 0)
			return m->tree;
	}
	return 0;
}

/* Makes sure @path exists under @layer (our tmpfs) when the image lacks it, so the read-only
 * overlay has a mount point for it. Directories for dirs, empty files for files. */
static int ensure_mountpoint(int image_root, int layer, const char *path, bool is_dir,
			     struct ferry_error **err)
{
	_cleanup_close_ int probe = ferry_open_in_root(image_root, path, O_PATH, 0, 0);
	if (probe >= 0)
		return 0;
	_cleanup_free_ char *rel = xstrdup(path + strspn(path, "/"));
	for (char *s = rel; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdirat(layer, rel, 0755) < 0 && errno != EEXIST)
			return ferry_error_set(err, errno, "create mount point '/%s'", rel);
		*s = '/';
	}
	if (is_dir) {
		if (mkdirat(layer, rel, 0755) < 0 && errno != EEXIST)
			return ferry_error_set(err, errno, "create mount point '/%s'", rel);
	} else {
		int fd = openat(layer, rel, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return ferry_error_set(err, errno, "create mount point '/%s'", rel);
		close(fd);
	}
	return 0;
}

static int mount_image(struct starter *s, const char *target, struct ferry_error **err)
{
	_cleanup_close_ int tfd = open(target, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (tfd < 0)
		return ferry_error_set(err, errno, "open '%s'", target);
	if (s->image.kind == FERRY_IMAGE_DIR)
		return attach_tree(s->image_tree, tfd, s->req->image, err);

	_cleanup_close_ int loop = -1;
	int r = loop_attach(s->image_fd, s->image.offset, s->image.size, &loop, err);
	if (r < 0)
		return r;
	char lpath[FERRY_FD_PATH_MAX], tpath[FERRY_FD_PATH_MAX];
	if (mount(ferry_proc_fd(loop, lpath), ferry_proc_fd(tfd, tpath), "squashfs",
		  MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return ferry_error_set(err, errno, "mount squashfs of '%s' (corrupt image?)", s->req->image);
	return 0;
}

static int mount_at(int root, const char *dst, const char *src, const char *fstype, unsigned long flags,
		    const char *data, struct ferry_error **err)
{
	_cleanup_close_ int t = ferry_open_in_root(root, dst, O_PATH | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS);
	if (t < 0)
		return ferry_error_set(err, -t, "mount point '%s' in the container", dst);
	char tpath[FERRY_FD_PATH_MAX];
	if (mount(src, ferry_proc_fd(t, tpath), fstype, flags, data) < 0)
		return ferry_error_set(err, errno, "mount %s on '%s'", fstype, dst);
	return 0;
}

static int setup_dev(struct starter *s, int root, struct ferry_error **err)
{
	int r = mount_at(root, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k", err);
	if (r < 0)
		return r;
	_cleanup_close_ int dev =
	    ferry_open_in_root(root, "/dev", O_PATH | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS);
	if (dev < 0)
		return ferry_error_set(err, -dev, "open /dev in the container");
	static const struct {
		const char *name;
		unsigned major, minor;
	} nodes[] = {{"null", 1, 3},   {"zero", 1, 5},	  {"full", 1, 7},
		     {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		if (mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) < 0)
			return ferry_error_set(err, errno, "mknod /dev/%s", nodes[i].name);
		/* mknod honours the umask: make the mode exact */
		if (fchmodat(dev, nodes[i].name, 0666, 0) < 0)
			return ferry_error_set(err, errno, "chmod /dev/%s", nodes[i].name);
	}
	/* an instance's stdin: this very node, not whatever '/dev/null' names once binds are on */
	if (s->instance && (s->stdio[0] = openat(dev, "null", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return ferry_error_set(err, errno, "open /dev/null in the container");
	static const struct {
		const char *target, *name;
	} links[] = {{"/proc/self/fd", "fd"},
		     {"/proc/self/fd/0", "stdin"},
		     {"/proc/self/fd/1", "stdout"},
		     {"/proc/self/fd/2", "stderr"},
		     {"pts/ptmx", "ptmx"}};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i].target, dev, links[i].name) < 0)
			return ferry_error_set(err, errno, "symlink /dev/%s", links[i].name);
	if (mkdirat(dev, "shm", 01777) < 0 || fchmodat(dev, "shm", 01777, 0) < 0)
		return ferry_error_set(err, errno, "mkdir /dev/shm");
	if (mkdirat(dev, "pts", 0755) < 0)
		return ferry_error_set(err, errno, "mkdir /dev/pts");
	return mount_at(root, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
			"newinstance,ptmxmode=0666,mode=0620", err);
}

/* The image's /etc/passwd and /etc/group with the user's entries added, in the layer above it:
 * programs that look up their own user (MPI's daemons, ssh, whoami) find it. The image's files
 * are read, never changed; an image without them gets none. */
static int add_identity(struct starter *s, int image_root, int layer, struct ferry_error **err)
{
	if (!s->user)
		return 0;
	char line[1024];
	const char *files[] = {"/etc/passwd", "/etc/group"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_close_ int fd =
		    ferry_open_in_root(image_root, files[i], O_RDONLY | O_NOFOLLOW, 0, 0);
		if (fd < 0)
			continue;
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		if (ferry_read_all(fd, 1 << 20, &text, &len, NULL) < 0)
			continue;
		/* already there (e.g. root, or a user baked into the image): leave the file alone */
		_cleanup_free_ char *needle = xasprintf("%s:", s->user);
		bool present = startswith(text, needle);
		_cleanup_free_ char *nl_needle = xasprintf("\n%s:", s->user);
		present = present || strstr(text, nl_needle);
		if (present)
			continue;
		if (i == 0)
			snprintf(line, sizeof(line), "%s:x:%u:%u::%s:/bin/sh\n", s->user,
				 (unsigned)s->privs.uid, (unsigned)s->privs.gid, s->home ? s->home : "/");
		else
			snprintf(line, sizeof(line), "%s:x:%u:\n", s->user, (unsigned)s->privs.gid);
		if (mkdirat(layer, "etc", 0755) < 0 && errno != EEXIST)
			return ferry_error_set(err, errno, "create /etc in the layer");
		_cleanup_close_ int out =
		    openat(layer, files[i] + 1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		bool nl = len > 0 && text[len - 1] != '\n';
		if (out < 0 || ferry_write_all(out, text, len) < 0 ||
		    (nl && ferry_write_all(out, "\n", 1) < 0) || ferry_write_all(out, line, strlen(line)) < 0)
			return ferry_error_set(err, errno, "write %s in the layer", files[i]);
	}
	return 0;
}

/* The read-only root: a session tmpfs (in our mount namespace only) holding the image, a layer
 * of the mount points the image lacks, and the overlay of both. Returns the overlay's fd. */
static int build_root(struct starter *s, struct ferry_error **err)
{
	const char *stage = STARTER_STAGE;
	int r;
	if (mount("ferry", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") < 0)
		return ferry_error_set(err, errno, "mount session tmpfs on '%s' (run 'make install')", stage);
	_cleanup_close_ int sfd = open(stage, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (sfd < 0)
		return ferry_error_set(err, errno, "open '%s'", stage);
	if (mkdirat(sfd, "image", 0755) < 0 || mkdirat(sfd, "layer", 0755) < 0 ||
	    mkdirat(sfd, "root", 0755) < 0)
		return ferry_error_set(err, errno, "create session directories");

	_cleanup_free_ char *image_dir = xasprintf("%s/image", stage);
	_cleanup_free_ char *layer_dir = xasprintf("%s/layer", stage);
	_cleanup_free_ char *root_dir = xasprintf("%s/root", stage);
	if ((r = mount_image(s, image_dir, err)) < 0)
		return r;

	/* Mount points the image lacks go into the layer under the read-only overlay. */
	_cleanup_close_ int image_root = open(image_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int layer = open(layer_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (image_root < 0 || layer < 0)
		return ferry_error_set(err, errno, "open session directories");
	if ((r = add_identity(s, image_root, layer, err)) < 0)
		return r;
	static const char *const system_dirs[] = {"/proc", "/dev", "/sys", "/tmp"};
	for (size_t i = 0; i < ARRAY_SIZE(system_dirs); i++)
		if ((r = ensure_mountpoint(image_root, layer, system_dirs[i], true, err)) < 0)
			return r;
	for (size_t i = 0; i < s->n_mounts; i++)
		if ((r = ensure_mountpoint(image_root, layer, s->mounts[i].dst, s->mounts[i].is_dir, err)) <
		    0)
			return r;

	_cleanup_free_ char *opts = xasprintf("lowerdir=%s:%s", layer_dir, image_dir);
	if (mount("overlay", root_dir, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, opts) < 0)
		return ferry_error_set(err, errno, "mount overlay root");
	int root = open(root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return ferry_error_set(err, errno, "open '%s'", root_dir);
	return root;
}

/* /proc/sys read-only, as runc makes it: root in a container (a user's own image may run as
 * uid 0) would otherwise pass the owner check on the host's network sysctls without any
 * capability. A checkpointable launch keeps the one sysctl it writes, ns_last_pid, open. */
static int proc_sys_read_only(struct starter *s, int root, struct ferry_error **err)
{
	_cleanup_close_ int sys =
	    ferry_open_in_root(root, "/proc/sys", O_PATH | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS);
	if (sys < 0)
		return ferry_error_set(err, -sys, "open /proc/sys in the container");
	if (s->criu && !(s->req->flags & FERRY_REQ_CRIU_RESTART)) {
		s->ns_last_pid_fd = openat(sys, "kernel/ns_last_pid", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (s->ns_last_pid_fd < 0)
			return ferry_error_set(err, errno, "open ns_last_pid");
	}
	_cleanup_close_ int tree = clone_tree(
	    sys, true, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
	    "/proc/sys", err);
	if (tree < 0)
		return tree;
	return attach_tree(tree, sys, "/proc/sys read-only", err);
}

/* What no bind may land on or below: the container's /proc, /sys and /dev, ferry's /.ferry and
 * its root, known by the mounts and directories the starter made (ids, never names: an image's
 * symlink '/x -> /dev' or a destination '//dev' names them too). */
struct reserved {
	struct {
		unsigned long long id;
		const char *name;
	} mnt[16];
	size_t n_mnt;
	struct {
		dev_t dev;
		ino_t ino;
		const char *name;
	} dir[4];
	size_t n_dir;
	struct stat root;
};

/* Fails closed: a mount that could not be recorded would let a bind cover it. */
static int reserve_mount(struct reserved *rsv, int fd, const char *name, struct ferry_error **err)
{
	unsigned long long id;
	if (rsv->n_mnt >= ARRAY_SIZE(rsv->mnt))
		return ferry_error_msg(err, E2BIG, "more than %zu mounts to reserve in the container",
				       ARRAY_SIZE(rsv->mnt));
	int r = fd_mount_id(fd, &id);
	if (r < 0)
		return ferry_error_set(err, -r, "get the mount id of the container's %s", name);
	rsv->mnt[rsv->n_mnt++] = (typeof(rsv->mnt[0])){id, name};
	return 0;
}

/* Reserves @path of @root (a directory, its mount when @mount, under @name), when it exists. */
static int reserve_path(struct reserved *rsv, int root, const char *path, const char *name, bool mount,
			struct ferry_error **err)
{
	_cleanup_close_ int fd = ferry_open_in_root(root, path, O_PATH, 0, RESOLVE_NO_SYMLINKS);
	struct stat st;
	if (!mount && (fd == -ENOENT || fd == -ELOOP))
		return 0; /* /.ferry when ferry mounts nothing there (or the image's own) */
	if (fd < 0 || fstat(fd, &st) < 0)
		return ferry_error_set(err, fd < 0 ? -fd : errno, "open %s in the container", path);
	int r = mount ? reserve_mount(rsv, fd, name, err) : 0;
	if (r < 0 || !streq(path, name))
		return r;
	if (rsv->n_dir >= ARRAY_SIZE(rsv->dir))
		return ferry_error_msg(err, E2BIG, "more than %zu directories to reserve in the container",
				       ARRAY_SIZE(rsv->dir));
	rsv->dir[rsv->n_dir++] = (typeof(rsv->dir[0])){st.st_dev, st.st_ino, name};
	return 0;
}

static bool same_file(const struct stat *a, dev_t dev, ino_t ino)
{
	return a->st_dev == dev && a->st_ino == ino;
}

/* The reserved place @fd is on or below ("/" for the root itself, "" for outside the root), or
 * NULL. A directory is walked up by '..' (the kernel's parent, across mounts, whatever the user
 * renames meanwhile in their own trees) to the root; a file is reserved by its mount. */
static const char *reserved_at(const struct reserved *rsv, int fd)
{
	unsigned long long id;
	struct stat st;
	if (fd_mount_id(fd, &id) < 0 || fstat(fd, &st) < 0)
		return "";
	for (size_t i = 0; i < rsv->n_mnt; i++)
		if (rsv->mnt[i].id == id)
			return rsv->mnt[i].name;
	if (same_file(&st, rsv->root.st_dev, rsv->root.st_ino))
		return "/";
	if (!S_ISDIR(st.st_mode))
		return NULL;
	_cleanup_close_ int cur = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	for (int depth = 0; cur >= 0 && depth < PATH_MAX / 2; depth++) {
		for (size_t i = 0; i < rsv->n_dir; i++)
			if (same_file(&st, rsv->dir[i].dev, rsv->dir[i].ino))
				return rsv->dir[i].name;
		struct stat up_st;
		int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (up < 0 || fstat(up, &up_st) < 0 || same_file(&up_st, st.st_dev, st.st_ino)) {
			if (up >= 0)
				close(up);
			return ""; /* the starter's own root: @fd was not in the container's */
		}
		close(cur);
		cur = up;
		st = up_st;
		if (same_file(&st, rsv->root.st_dev, rsv->root.st_ino))
			return NULL;
	}
	return "";
}

/* /proc, /sys and /dev inside @root, and their mounts and directories reserved. */
static int mount_system(struct starter *s, int root, struct reserved *rsv, struct ferry_error **err)
{
	int r;
	if ((r = mount_at(root, "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err)) < 0)
		return r;
	if ((r = proc_sys_read_only(s, root, err)) < 0)
		return r;
	if ((r = mount_at(root, "/sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
			  err)) < 0)
		return r;
	if ((r = setup_dev(s, root, err)) < 0)
		return r;
	if (fstat(root, &rsv->root) < 0)
		return ferry_error_set(err, errno, "stat the container's root");
	static const char *const paths[][2] = {{"/proc", "/proc"},
					       {"/proc/sys", "/proc"},
					       {"/sys", "/sys"},
					       {"/dev", "/dev"},
					       {"/dev/pts", "/dev"}};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if ((r = reserve_path(rsv, root, paths[i][0], paths[i][1], true, err)) < 0)
			return r;
	return 0;
}

/* ferry's own mounts (the logs, the CRIU bundle, ferryd's socket), before any of the user's:
 * by name under /.ferry, never through a symlink or another mount, and reserved. An instance's
 * logs are opened here, through their mounts (CRIU finds them on a mount of the container). */
static int mount_own(struct starter *s, int root, struct reserved *rsv, struct ferry_error **err)
{
	int r;
	for (size_t i = 0; i < s->n_mounts; i++) {
		struct mount_req *m = &s->mounts[i];
		if (!m->internal)
			continue;
		_cleanup_close_ int t =
		    ferry_open_in_root(root, m->dst, O_PATH, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
		if (t < 0)
			return ferry_error_set(err, -t, "mount point '%s' in the container", m->dst);
		if ((r = attach_tree(m->tree, t, m->src, err)) < 0 ||
		    (r = reserve_mount(rsv, m->tree, STARTER_FERRY_DIR, err)) < 0)
			return r;
		int *out = streq(m->dst, STARTER_STDOUT)   ? &s->stdio[1]
			   : streq(m->dst, STARTER_STDERR) ? &s->stdio[2]
							   : NULL;
		char path[FERRY_FD_PATH_MAX];
		if (out && (*out = open(ferry_proc_fd(m->tree, path), O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
			return ferry_error_set(err, errno, "open '%s' in the container", m->dst);
	}
	return reserve_path(rsv, root, STARTER_FERRY_DIR, STARTER_FERRY_DIR, false, err);
}

/* The request's binds, home, /tmp and cwd (or --contain's private tmpfs), each refused when it
 * resolves to a reserved place (symlinks in the image are followed inside its root). */
static int mount_user(struct starter *s, int root, const struct reserved *rsv, struct ferry_error **err)
{
	int r;
	for (size_t i = 0; i < s->n_mounts; i++) {
		struct mount_req *m = &s->mounts[i];
		if (m->internal)
			continue;
		_cleanup_close_ int t = ferry_open_in_root(root, m->dst, O_PATH, 0, 0);
		if (t < 0)
			return ferry_error_set(err, -t, "bind destination '%s' in the container", m->dst);
		const char *at = reserved_at(rsv, t);
		if (at)
			return ferry_error_msg(err, EPERM,
					       "bind destination '%s' resolves to %s%s (a symlink in the "
					       "image?): bind it somewhere else",
					       m->dst, *at ? "the container's " : "outside the container",
					       streq(at, "/") ? "root" : at);
		if (m->fd < 0) /* a private tmpfs (--contain's /tmp) */
			r = mount_at(root, m->dst, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", err);
		else if ((r = attach_tree(m->tree, t, m->src, err)) < 0)
			ferry_error_wrap(err, "bind '%s' to '%s'", m->src, m->dst);
		if (r < 0)
			return r;
	}
	return 0;
}

/* /proc, /sys, /dev, ferry's own mounts, then the user's, inside @root. */
static int mount_inside(struct starter *s, int root, struct ferry_error **err)
{
	struct reserved rsv = {0};
	int r;
	if ((r = mount_system(s, root, &rsv, err)) < 0 || (r = mount_own(s, root, &rsv, err)) < 0)
		return r;
	return mount_user(s, root, &rsv, err);
}

/* Makes @root the root: the host tree is no longer reachable. */
static int enter_root(int root, struct ferry_error **err)
{
	if (fchdir(root) < 0)
		return ferry_error_set(err, errno, "chdir to the new root");
	_cleanup_close_ int newroot = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (newroot < 0)
		return ferry_error_set(err, errno, "open the new root");
	if (fchdir(newroot) < 0)
		return ferry_error_set(err, errno, "chdir to the new root");
	/* pivot_root(".", "."): the old root ends up on top of the new one; detach it. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return ferry_error_set(err, errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return ferry_error_set(err, errno, "detach the old root");
	if (chdir("/") < 0)
		return ferry_error_set(err, errno, "chdir /");
	return 0;
}

int container_loopback_up(struct ferry_error **err)
{
	_cleanup_close_ int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return ferry_error_set(err, errno, "bring up the instance's loopback: socket");
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(sk, SIOCGIFFLAGS, &ifr) < 0)
		return ferry_error_set(err, errno, "bring up the instance's loopback: get flags of 'lo'");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
		return ferry_error_set(err, errno, "bring up the instance's loopback 'lo'");
	return 0;
}

int container_setup(struct starter *s, struct ferry_error **err)
{
	/* a loopback-only network namespace (see monitor): lo up while we are root */
	if (s->loopback_net) {
		int r = container_loopback_up(err);
		if (r < 0)
			return r;
	}
	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return ferry_error_set(err, errno, "make mounts private");
	_cleanup_close_ int root = build_root(s, err);
	if (root < 0)
		return root;
	int r = mount_inside(s, root, err);
	if (r < 0 || (r = enter_root(root, err)) < 0)
		return r;
	if (s->req->hostname && sethostname(s->req->hostname, strlen(s->req->hostname)) < 0)
		return ferry_error_set(err, errno, "set hostname '%s'", s->req->hostname);
	return 0;
}

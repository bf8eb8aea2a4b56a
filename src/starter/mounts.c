/* SPDX-License-Identifier: GPL-2.0-or-later */
/* mounts.c — what the container mounts: every source opened with the user's rights and checked
 * against ferry.conf before any privilege is used. */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "criu.h"
#include "fs.h"
#include "starter.h"

/* ---- validation: everything the user named, opened with the user's rights ---- */

bool path_clean(const char *p)
{
	if (p[0] != '/' || strlen(p) >= PATH_MAX)
		return false;
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '/' || s[2] == '\0'))
			return false;
	return true;
}

bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static void push_mount(struct starter *s, struct mount_req m)
{
	s->mounts = xrealloc(s->mounts, (s->n_mounts + 1) * sizeof(*s->mounts));
	s->mounts[s->n_mounts++] = m;
}

/* ferry's own mounts: @fd was opened by the starter (as the user for the logs), no policy. */
static int add_internal_mount(struct starter *s, int fd, const char *what, const char *dst, bool ro,
			      struct ferry_error **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ferry_error_set(err, errno, "stat '%s'", what);
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		return ferry_error_set(err, errno, "dup");
	push_mount(s, (struct mount_req){.fd = copy,
					 .tree = -1,
					 .src = xstrdup(what),
					 .dst = xstrdup(dst),
					 .ro = ro,
					 .is_dir = S_ISDIR(st.st_mode),
					 .internal = true});
	return 0;
}

/* The source of a mount the request names: opened by path as the user (@given NULL: the plan
 * child, or root's own home and /tmp), or the next fd of the plan (root), checked the same way. */
static int open_source(const char *src, struct mount_fds *given, struct ferry_error **err)
{
	if (!given) {
		int fd = open(src, O_PATH | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			return ferry_error_msg(
			    err, ENOENT,
			    "bind source '%s' does not exist: create it or fix the --bind option", src);
		if (fd < 0)
			return ferry_error_set(err, errno, "bind source '%s'", src);
		return fd;
	}
	if (given->next >= given->n)
		return ferry_error_msg(err, EPROTO, "invalid plan: no fd for bind source '%s'", src);
	int fd = given->fd[given->next];
	given->fd[given->next++] = -1;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || !(fl & O_PATH)) {
		close(fd);
		return ferry_error_msg(err, EPROTO, "invalid plan: bind source '%s' is not an O_PATH fd",
				       src);
	}
	return fd;
}

static int add_mount(struct starter *s, const char *src, const char *dst, bool ro, bool user_chosen,
		     struct mount_fds *given, struct ferry_error **err)
{
	static const char *const reserved[] = {"/proc", "/sys", "/dev", "/.ferry"};
	if (!path_clean(dst) || streq(dst, "/"))
		return ferry_error_msg(
		    err, EINVAL, "bind destination '%s' must be an absolute path other than '/' without '..'",
		    dst);
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++)
		if (under(dst, reserved[i]))
			return ferry_error_msg(err, EINVAL,
					       "bind destination '%s' is reserved for the container's %s",
					       dst, reserved[i]);
	struct mount_req m = {.fd = -1, .tree = -1, .dst = xstrdup(dst), .ro = ro, .is_dir = true};
	if (src) {
		/* opened as the caller: the kernel checks the caller's right to reach src; what it
		 * resolves to is checked here, from the fd */
		m.fd = open_source(src, given, err);
		if (m.fd < 0) {
			free(m.dst);
			return m.fd;
		}
		struct stat st;
		if (fstat(m.fd, &st) < 0 || ferry_fd_path(m.fd, &m.src, err) < 0) {
			close(m.fd);
			free(m.dst);
			return ferry_error_set(err, errno, "bind source '%s'", src);
		}
		m.is_dir = S_ISDIR(st.st_mode);
		if (user_chosen && s->privs.uid != 0 && !ferry_config_bind_allowed(s->cfg, m.src, s->home)) {
			int r = ferry_error_msg(
			    err, EPERM,
			    "bind source '%s' (resolves to '%s') is not allowed by ferry.conf: "
			    "bind a path under your home or one of its 'allow bind path' entries",
			    src, m.src);
			close(m.fd);
			free(m.dst);
			free(m.src);
			return r;
		}
	} else {
		m.src = xstrdup("tmpfs");
	}
	push_mount(s, m);
	return 0;
}

static bool system_path(const char *p)
{
	static const char *const sys[] = {"/proc",   "/sys",  "/dev", "/usr",	"/etc",
					  "/bin",    "/sbin", "/lib", "/lib32", "/lib64",
					  "/libx32", "/boot", "/run", "/var",	"/opt"};
	if (streq(p, "/"))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(sys); i++)
		if (streq(p, sys[i]) ||
		    (under(p, sys[i]) && !streq(sys[i], "/var") && !streq(sys[i], "/opt")))
			return true;
	return false;
}

/* The current directory is bound when it is not a system path nor under what is bound anyway. */
static bool bind_cwd(const struct starter *s, bool home, bool tmp_bound)
{
	const struct ferry_request *req = s->req;
	return !(req->flags & FERRY_REQ_CONTAIN) && s->cfg->mount_cwd && req->cwd && !system_path(req->cwd) &&
	       !(home && under(req->cwd, s->home)) && !(tmp_bound && under(req->cwd, "/tmp"));
}

/* The mounts the request names: the current directory and the binds. */
static int request_mounts(struct starter *s, bool home, bool tmp_bound, struct mount_fds *given,
			  struct ferry_error **err)
{
	const struct ferry_request *req = s->req;
	int r;
	if (bind_cwd(s, home, tmp_bound) && !given) {
		/* the current directory is a convenience: skip it quietly if the user cannot reach it */
		struct ferry_error *ignored = NULL;
		if (add_mount(s, req->cwd, req->cwd, false, false, NULL, &ignored) < 0)
			ferry_error_free(ignored);
	} else if (given && given->cwd_bound) {
		if (!bind_cwd(s, home, tmp_bound))
			return ferry_error_msg(err, EPROTO, "invalid plan: a current directory not to bind");
		if ((r = add_mount(s, req->cwd, req->cwd, false, false, given, err)) < 0)
			return r;
	}
	if (req->n_binds > 0 && s->privs.uid != 0 && !s->cfg->user_bind_control)
		return ferry_error_msg(err, EPERM,
				       "--bind is disabled by ferry.conf ('user bind control = no')");
	for (size_t i = 0; i < req->n_binds; i++)
		if ((r = add_mount(s, req->binds[i].src, req->binds[i].dst, req->binds[i].ro, true, given,
				   err)) < 0)
			return r;
	if (given && given->next != given->n)
		return ferry_error_msg(err, EPROTO, "invalid plan: %zu mount fds for %zu mounts", given->n,
				       given->next);
	return 0;
}

/* This node's ferryd directory (root's, 0755, in root's 0700 FERRY_FERRYD_DIR), with its socket,
 * at FERRY_FERRYD_INSIDE, read-only, for the launcher agent in the bundle (ferry-rsh): nothing
 * when ferryd has not run here. */
static int add_ferryd_socket(struct starter *s, struct ferry_error **err)
{
	const char *parts[] = {FERRY_RUNDIR, "ferryd"};
	char node[FERRY_FERRYD_NODE_MAX];
	ferry_ferryd_node_dir(node);
	int r = ferry_privs_raise(&s->privs, err);
	if (r < 0)
		return r;
	struct ferry_error *none = NULL;
	_cleanup_close_ int dir = ferry_open_root_dirs(parts, ARRAY_SIZE(parts), false, &none);
	ferry_error_free(none);
	_cleanup_close_ int nd =
	    dir < 0 ? -1 : openat(dir, node, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if ((r = ferry_privs_lower(&s->privs, err)) < 0)
		return r;
	struct stat st;
	if (nd < 0 || fstat(nd, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
		return 0;
	return add_internal_mount(s, nd, FERRY_FERRYD_DIR, FERRY_FERRYD_INSIDE, true, err);
}

int plan_mounts(struct starter *s, struct mount_fds *given, struct ferry_error **err)
{
	const struct ferry_request *req = s->req;
	bool contain = req->flags & FERRY_REQ_CONTAIN;
	bool home = s->home && s->cfg->mount_home && !(req->flags & FERRY_REQ_NO_HOME);
	bool tmp_bound = !contain && !(req->flags & FERRY_REQ_PRIVATE_TMP) && s->cfg->mount_tmp;
	int r;

	s->private_tmp = !tmp_bound;

	if (!given) /* the plan child: the request's mounts only */
		return request_mounts(s, home, tmp_bound, NULL, err);
	/* root: home and /tmp are not the request's (passwd's, and fixed): opened here, as the user */
	if (home && (r = add_mount(s, contain ? NULL : s->home, s->home, false, false, NULL, err)) < 0)
		return r;
	if ((r = add_mount(s, tmp_bound ? "/tmp" : NULL, "/tmp", false, false, NULL, err)) < 0)
		return r;
	if ((r = request_mounts(s, home, tmp_bound, given, err)) < 0)
		return r;
	if (s->instance) {
		/* The logs are mounted inside and reopened there, so that CRIU finds the workload's
		 * stdout and stderr on a mount of the container (and finds them again at restore). */
		if ((r = add_internal_mount(s, s->log_out, s->log_out_path ? s->log_out_path : "/dev/null",
					    STARTER_STDOUT, false, err)) < 0 ||
		    (r = add_internal_mount(s, s->log_err, s->log_err_path ? s->log_err_path : "/dev/null",
					    STARTER_STDERR, false, err)) < 0)
			return r;
	}
	if (s->criu) {
		_cleanup_close_ int b =
		    open(STARTER_CRIU_BUNDLE, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (b < 0)
			return ferry_error_set(err, errno, "CRIU bundle '%s' (run 'make install')",
					       STARTER_CRIU_BUNDLE);
		struct stat st;
		if (fstat(b, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022))
			return ferry_error_msg(err, EPERM,
					       "'%s' must be owned by root and not writable by others",
					       STARTER_CRIU_BUNDLE);
		if ((r = add_internal_mount(s, b, STARTER_CRIU_BUNDLE, FERRY_CRIU_DIR, true, err)) < 0)
			return r;
		if ((r = add_ferryd_socket(s, err)) < 0)
			return r;
	}
	return 0;
}

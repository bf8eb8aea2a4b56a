/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-starter — the only code a user can make run as root. Read docs/security.md first.
 *
 * Discipline (OpenSSH/Apptainer): sanitize the process (fds, environment, umask), drop the
 * effective uid to the caller at once, read the request the CLI sent on fd 3 and check every
 * field against ferry.conf and the caller's REAL uid (identity is never taken from the request),
 * open every user-named file with the caller's rights, regain root only around the steps that
 * need it (namespaces, mounts, records), and drop everything for good before user code runs. */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/sched.h>

#include "criu.h"
#include "fs.h"
#include "instance.h"
#include "names.h"
#include "starter.h"
#include "transfer.h"
#include "xfer.h"

/* the peer of a --page-server transfer, told why when we fail */
static int verdict_fd = -1;
/* "timing" lines for ferryd (FERRY_REQ_TIMINGS): when we started, received, restored */
static bool want_timings;
static long long t_start, t_received;

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	fprintf(stderr, "ferry: %s\n", msg ? msg : fmt);
	if (verdict_fd >= 0)
		(void)ferry_xfer_send_verdict(verdict_fd, msg ? msg : "failed");
	(void)xfer_session_finish(10);
	exit(255);
}

void die_error(struct ferry_error *err)
{
	die("%s", err && err->message ? err->message : "unknown error");
}

void report_error(int fd, struct ferry_error *err)
{
	_cleanup_free_ char *line = xasprintf("E %s\n", err && err->message ? err->message : "unknown error");
	(void)ferry_write_all(fd, line, strlen(line));
}

#define TRY(expr)                                                                                            \
	do {                                                                                                 \
		if ((expr) < 0)                                                                              \
			die_error(err);                                                                      \
	} while (0)

static void sanitize_stdio(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n != fd)
			_exit(255);
	}
}

static pid_t clone_ns(unsigned long flags)
{
	struct clone_args args = {.flags = flags, .exit_signal = SIGCHLD};
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

/* Reads what a child reports on @fd until EOF: nothing means success. */
char *read_report(int fd)
{
	char *buf = NULL;
	size_t len = 0;
	if (ferry_read_all(fd, 64 * 1024, &buf, &len, NULL) < 0 || len == 0) {
		free(buf);
		return NULL;
	}
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	return buf;
}

/* The report protocol: "E message" lines for failures, "OK" for a started instance. */
void die_report(char *msg)
{
	const char *text = startswith(msg, "E ") ? msg + 2 : msg;
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = '\0';
	die("%s", text);
}

/* ---- validation: everything the user named, opened with the user's rights ---- */

static bool path_clean(const char *p)
{
	if (p[0] != '/' || strlen(p) >= PATH_MAX)
		return false;
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '/' || s[2] == '\0'))
			return false;
	return true;
}

static bool under(const char *path, const char *dir)
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
					 .is_dir = S_ISDIR(st.st_mode)});
	return 0;
}

static int add_mount(struct starter *s, const char *src, const char *dst, bool ro, bool user_chosen,
		     struct ferry_error **err)
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
		/* euid is the caller's here: the kernel checks the caller's right to reach src */
		m.fd = open(src, O_PATH | O_CLOEXEC);
		if (m.fd < 0) {
			int e = errno;
			free(m.dst);
			if (e == ENOENT)
				return ferry_error_msg(
				    err, e,
				    "bind source '%s' does not exist: create it or fix the --bind option",
				    src);
			return ferry_error_set(err, e, "bind source '%s'", src);
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

static int plan_mounts(struct starter *s, struct ferry_error **err)
{
	const struct ferry_request *req = s->req;
	bool contain = req->flags & FERRY_REQ_CONTAIN;
	bool home = s->home && s->cfg->mount_home && !(req->flags & FERRY_REQ_NO_HOME);
	bool tmp_bound = !contain && s->cfg->mount_tmp;
	int r;

	if (home && (r = add_mount(s, contain ? NULL : s->home, s->home, false, false, err)) < 0)
		return r;
	if ((r = add_mount(s, tmp_bound ? "/tmp" : NULL, "/tmp", false, false, err)) < 0)
		return r;
	if (!contain && s->cfg->mount_cwd && req->cwd && !system_path(req->cwd) &&
	    !(home && under(req->cwd, s->home)) && !(tmp_bound && under(req->cwd, "/tmp"))) {
		/* the current directory is a convenience: skip it quietly if the user cannot reach it */
		struct ferry_error *ignored = NULL;
		if (add_mount(s, req->cwd, req->cwd, false, false, &ignored) < 0)
			ferry_error_free(ignored);
	}
	if (req->n_binds > 0 && s->privs.uid != 0 && !s->cfg->user_bind_control)
		return ferry_error_msg(err, EPERM,
				       "--bind is disabled by ferry.conf ('user bind control = no')");
	for (size_t i = 0; i < req->n_binds; i++)
		if ((r = add_mount(s, req->binds[i].src, req->binds[i].dst, req->binds[i].ro, true, err)) < 0)
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
	}
	return 0;
}

static int check_hostname(const char *h, struct ferry_error **err)
{
	size_t n = strlen(h);
	bool ok = n > 0 && n <= 64 && h[0] != '-' && h[0] != '.';
	for (const char *p = h; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		     *p == '-' || *p == '.';
	if (!ok)
		return ferry_error_msg(
		    err, EINVAL, "invalid hostname '%s': use letters, digits, '-' and '.' (at most 64)", h);
	return 0;
}

static int open_image(struct starter *s, struct ferry_error **err)
{
	const char *path = s->req->image;
	s->image_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (s->image_fd < 0) {
		if (errno == ENOENT)
			return ferry_error_msg(err, ENOENT, "image '%s' does not exist: check the path",
					       path);
		return ferry_error_set(err, errno, "open image '%s'", path);
	}
	if (ferry_image_probe_fd(s->image_fd, &s->image, err) < 0)
		return ferry_error_wrap(err, "image '%s'", path);
	return 0;
}

static void lookup_user(struct starter *s)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	if (getpwuid_r(s->privs.uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return;
	s->user = xstrdup(pw.pw_name);
	if (pw.pw_dir && path_clean(pw.pw_dir) && !streq(pw.pw_dir, "/"))
		s->home = xstrdup(pw.pw_dir);
}

/* ---- instance records: /run/ferry/<uid>/<name>, root only ---- */

int open_rundir(struct starter *s, bool create, struct ferry_error **err)
{
	/* /run/ferry/<uid>/<node>: one directory a node (see ferry_node_id), so that the nodes of
	 * a test cluster on one machine keep apart, as real nodes do */
	char uid[32], node[32];
	snprintf(uid, sizeof(uid), "%u", (unsigned)s->privs.uid);
	snprintf(node, sizeof(node), "n%llu", ferry_node_id());
	const char *parts[] = {FERRY_RUNDIR, uid, node};
	return ferry_open_root_dirs(parts, ARRAY_SIZE(parts), create, err);
}

int read_record(int dirfd, const char *name, struct ferry_instance **ret, struct ferry_error **err)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = ferry_read_all(fd, FERRY_INSTANCE_RECORD_MAX, &buf, &len, err);
	if (r < 0)
		return r;
	return ferry_instance_parse(buf, len, ret, err);
}

static void op_list(struct starter *s)
{
	struct ferry_error *err = NULL;
	unsigned long long node = ferry_node_id();
	TRY(ferry_privs_raise(&s->privs, &err));

	int dirfd = open_rundir(s, false, &err);
	if (dirfd == -ENOENT)
		exit(0);
	if (dirfd < 0)
		die_error(err);
	DIR *d = fdopendir(dirfd);
	if (!d)
		die("open instance directory: %s", strerror(errno));
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct ferry_instance *inst = NULL;
		struct ferry_error *e2 = NULL;
		if (read_record(dirfd, de->d_name, &inst, &e2) < 0) {
			ferry_error_free(e2);
			continue;
		}
		/* instances of this node only (see ferry_node_id) */
		bool here = !inst->node || inst->node == node;
		if (here && ferry_instance_alive(inst) && inst->starttime != 0 && inst->monitor != 0) {
			_cleanup_free_ char *text = ferry_instance_format(inst);
			printf("%s\n", text);
		} else if (!ferry_instance_alive(inst)) {
			/* the instance is gone (its monitor cleans up, or was killed): drop the record */
			_cleanup_free_ char *launch = xasprintf(".%s.launch", de->d_name);
			unlinkat(dirfd, de->d_name, 0);
			unlinkat(dirfd, launch, 0);
		}
		ferry_instance_free(inst);
	}
	closedir(d);
	exit(fflush(stdout) == 0 ? 0 : 255);
}

/* Reserves the name: creates the record exclusively, holding our own pid until the instance
 * runs. A record whose process is gone is stale and is replaced. */
static int reserve_name(struct starter *s, int dirfd, struct ferry_error **err)
{
	const char *name = s->req->instance;
	unsigned alive = 0;
	DIR *d = ferry_opendir_at(dirfd);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			struct ferry_instance *i = NULL;
			struct ferry_error *ignored = NULL;
			/* a record that cannot be read still holds its place: counted */
			if (de->d_name[0] != '.' &&
			    (read_record(dirfd, de->d_name, &i, &ignored) < 0 || ferry_instance_alive(i)))
				alive++;
			ferry_instance_free(i);
			ferry_error_free(ignored);
		}
		closedir(d);
	}
	if (alive >= s->cfg->max_instances)
		return ferry_error_msg(
		    err, EUSERS,
		    "you already run %u instances, the limit set in ferry.conf ('max instances')", alive);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct ferry_instance me = {
		    .name = (char *)name, .uid = s->privs.uid, .gid = s->privs.gid, .pid = getpid()};
		if (ferry_proc_starttime(me.pid, &me.starttime) < 0)
			return ferry_error_msg(err, EIO, "cannot read our own start time");
		_cleanup_free_ char *text = ferry_instance_format(&me);
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			int r = ferry_write_all(fd, text, strlen(text));
			close(fd);
			if (r < 0)
				return ferry_error_set(err, -r, "write instance record");
			return 0;
		}
		if (errno != EEXIST)
			return ferry_error_set(err, errno, "create instance record");
		struct ferry_instance *old = NULL;
		struct ferry_error *ignored = NULL;
		bool live = read_record(dirfd, name, &old, &ignored) == 0 && ferry_instance_alive(old);
		ferry_instance_free(old);
		ferry_error_free(ignored);
		if (live)
			return ferry_error_msg(
			    err, EEXIST,
			    "instance '%s' already exists: stop it with 'ferry instance stop %s' or choose another name",
			    name, name);
		unlinkat(dirfd, name, 0);
	}
	return ferry_error_msg(err, EEXIST, "instance '%s' is being started by another command", name);
}

static int open_logs(struct starter *s, struct ferry_error **err)
{
	char host[HOST_NAME_MAX + 1] = "localhost";
	gethostname(host, sizeof(host) - 1);
	if (!s->home) {
		s->log_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		s->log_err = open("/dev/null", O_WRONLY | O_CLOEXEC);
		return 0;
	}
	/* euid is the caller's: the logs are the caller's files in the caller's home */
	_cleanup_free_ char *dir = xasprintf("%s/.ferry/instances/%s", s->home, host);
	int r = ferry_mkdir_p(dir, 0700, err);
	if (r < 0)
		return ferry_error_wrap(err, "instance log directory");
	s->log_out_path = xasprintf("%s/%s.out", dir, s->req->instance);
	s->log_err_path = xasprintf("%s/%s.err", dir, s->req->instance);
	/* not truncated yet: only once the name is ours (a refused start must not wipe the logs of
	 * the instance that has this name) */
	s->log_out = open(s->log_out_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->log_out < 0)
		return ferry_error_set(err, errno, "open '%s'", s->log_out_path);
	s->log_err = open(s->log_err_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->log_err < 0)
		return ferry_error_set(err, errno, "open '%s'", s->log_err_path);
	return 0;
}

/* The command for display in the record: at most COMMAND_SHOWN bytes, so that a record's size
 * never depends on how long a command line the user gives. */
#define COMMAND_SHOWN 1024
static char *join_argv(char **argv)
{
	size_t len = 0;
	char *out = xzalloc(COMMAND_SHOWN + 4);
	for (char **a = argv; a && *a && len < COMMAND_SHOWN; a++) {
		int n = snprintf(out + len, COMMAND_SHOWN + 1 - len, "%s%s", a == argv ? "" : " ", *a);
		len += n < 0 ? 0 : (size_t)n;
	}
	if (len > COMMAND_SHOWN)
		memcpy(out + COMMAND_SHOWN, "...", 4);
	return out;
}

/* ---- running ---- */

static int atoi_strict(const char *p)
{
	unsigned long long v = 0;
	char buf[16];
	size_t n = strcspn(p, "\n");
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return parse_uint64(buf, INT32_MAX, &v) < 0 ? 0 : (int)v;
}

static volatile sig_atomic_t forward_to;

static void forward_signal(int sig, siginfo_t *info, void *ctx)
{
	/* a terminal's signals already reach the whole foreground group: pass on only kill()s */
	if (forward_to > 0 && info->si_code <= 0)
		kill(forward_to, sig);
}

static _noreturn_ void wait_and_exit(pid_t child)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGWINCH};
	struct sigaction sa = {.sa_sigaction = forward_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigemptyset(&sa.sa_mask);
	forward_to = child;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			die("wait for the container: %s", strerror(errno));
	if (WIFEXITED(st))
		exit(WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		exit(128 + WTERMSIG(st));
	exit(255);
}

/* In the new namespaces, as root: build the container, then become its init. */
static _noreturn_ void container_child(struct starter *s, int report, int go)
{
	struct ferry_error *err = NULL;
	if (container_setup(s, &err) < 0) {
		report_error(report, err);
		_exit(255);
	}
	if (go >= 0) {
		/* the monitor attaches our network namespace: nothing runs before it is ready */
		char c = 0;
		if (read(go, &c, 1) != 1)
			_exit(255); /* the monitor reported why */
		close(go);
	}
	if (s->instance) {
		/* stdio from inside the container (see plan_mounts) */
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int out = open(STARTER_STDOUT, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
		int errfd = open(STARTER_STDERR, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
		if (in < 0 || out < 0 || errfd < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
		    dup2(errfd, 2) < 0) {
			ferry_error_set(&err, errno, "open the instance's stdio in the container");
			report_error(report, err);
			_exit(255);
		}
		close(in);
		close(out);
		close(errfd);
	}
	container_init(s, report);
}

static void op_exec(struct starter *s)
{
	struct ferry_error *err = NULL;
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	TRY(ferry_privs_raise(&s->privs, &err));
	pid_t pid = clone_ns(STARTER_NS_FLAGS);
	if (pid < 0)
		die("create the container's namespaces: %s", strerror(errno));
	if (pid == 0) {
		close(rep[0]);
		container_child(s, rep[1], -1);
	}
	close(rep[1]);
	/* the parent only waits: it needs no privilege for that */
	TRY(ferry_privs_drop(&s->privs, NULL, 0, &err));
	_cleanup_free_ char *msg = read_report(rep[0]);
	if (msg) {
		/* the container's own status says what failed: 127/126 when the command could not be
		 * run (like a shell), 255 when ferry could not build the container */
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		const char *text = startswith(msg, "E ") ? msg + 2 : msg;
		char *nl = strchr(text, '\n');
		if (nl)
			*nl = '\0';
		fprintf(stderr, "ferry: %s\n", text);
		exit(WIFEXITED(st) && WEXITSTATUS(st) != 0 ? WEXITSTATUS(st) : 255);
	}
	wait_and_exit(pid);
}

static _noreturn_ void monitor(struct starter *s, int dirfd, int top)
{
	struct ferry_error *err = NULL;
	setsid();
	/* The monitor is root's alone: with the caller's real uid the caller could signal (stop,
	 * kill) it, and helpers such as nft refuse to run with mixed ids. The container it starts
	 * takes the caller's identity from s->privs. */
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
		ferry_error_set(&err, errno, "become root for the instance monitor");
		report_error(top, err);
		unlinkat(dirfd, s->req->instance, 0);
		_exit(1);
	}
	if (s->xfer_fd >= 0)

		close(s->xfer_fd); /* the top process answers the sender */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	int rep[2], go[2] = {-1, -1};
	bool net = s->networks != NULL;
	if (pipe2(rep, O_CLOEXEC) < 0 || (net && pipe2(go, O_CLOEXEC) < 0)) {
		ferry_error_set(&err, errno, "pipe");
		report_error(top, err);
		unlinkat(dirfd, s->req->instance, 0);
		_exit(1);
	}
	pid_t pid = clone_ns(STARTER_NS_FLAGS | (net ? CLONE_NEWNET : 0));
	if (pid < 0) {
		ferry_error_set(&err, errno, "create the container's namespaces");
		report_error(top, err);
		unlinkat(dirfd, s->req->instance, 0);
		_exit(1);
	}
	if (pid == 0) {
		close(top);
		close(rep[0]);
		close(dirfd);
		dup2(s->log_out, 1);
		dup2(s->log_err, 2);
		if (net)
			close(go[1]);
		container_child(s, rep[1], go[0]);
	}
	close(rep[1]);
	struct ferry_net_attachment atts[FERRY_NET_MAX] = {0};
	size_t n_atts = 0;
	int netns_fd = -1;
	if (net) {
		close(go[0]);
		if (network_attach(s, pid, &netns_fd, atts, &n_atts, &err) < 0) {
			report_error(top, err);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			unlinkat(dirfd, s->req->instance, 0);
			_exit(1);
		}

		(void)ferry_write_all(go[1], "g", 1);
		close(go[1]);
	}
	_cleanup_free_ char *text = read_report(rep[0]);
	/* the container reports "E message" on failure, "P pid" for a checkpointable workload */
	char *msg = NULL;
	long long workload = 0;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (startswith(line, "E ") && !msg)
			msg = line;
		else if (startswith(line, "P "))
			workload = strtoll(line + 2, NULL, 10);
		line = nl ? nl + 1 : NULL;
	}
	struct ferry_instance inst = {
	    .name = s->req->instance,
	    .uid = s->privs.uid,
	    .gid = s->privs.gid,
	    .pid = pid,
	    .monitor = getpid(),
	    .created = (long long)time(NULL),
	    .image = s->req->image,
	    .log_out = s->log_out_path,
	    .log_err = s->log_err_path,
	    .checkpoint = s->criu ? s->req->checkpoint : NULL,
	    .workload = workload,
	    .image_fingerprint = s->image_fingerprint,
	    .node = ferry_node_id(),
	    .networks = net ? (s->req->networks ? s->req->networks : "bridge") : NULL,

	    .ip = atts[0].ip,
	    .mac = atts[0].mac,
	};
	_cleanup_free_ char *command = join_argv(s->req->argv);
	inst.command = command;
	_cleanup_free_ char *launch_name = xasprintf(".%s.launch", s->req->instance);
	if (!msg && s->criu && workload <= 0 && (s->restore_fd >= 0 || (s->req->argv && s->req->argv[0])))
		msg = "E the checkpointable workload did not report its pid";
	if (!msg && ferry_proc_starttime(pid, &inst.starttime) < 0)
		msg = "E the instance exited at once: see its log";
	if (!msg && s->criu) {
		/* what 'checkpoint instance' will seal into the checkpoint: how to rebuild this
		 * container; kept root-only next to the record */
		struct ferry_request launch = *s->req;
		launch.flags = (launch.flags & ~(uint32_t)FERRY_REQ_CRIU_RESTART) | FERRY_REQ_CRIU_LAUNCH;
		launch.page_server = NULL;
		/* the instance's network identity, whoever chose it (the user or the network's IPAM):
		 * a restart anywhere rebuilds exactly this address and MAC */
		_cleanup_free_ char *identity = NULL;
		if (net && atts[0].ip && atts[0].mac) {
			identity =
			    xasprintf("IP=%s;MAC=%s%s%s", atts[0].ip, atts[0].mac,
				      s->net_args.gw ? ";GW=" : "", s->net_args.gw ? s->net_args.gw : "");
			launch.network_args = identity;
		}
		_cleanup_free_ char *buf = NULL;
		size_t len = 0;
		if (ferry_request_encode(&launch, &buf, &len, &err) < 0 ||
		    ferry_write_file_atomic(dirfd, launch_name, buf, len, 0600, &err) < 0) {
			report_error(top, err);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			unlinkat(dirfd, s->req->instance, 0);
			_exit(1);
		}
	}
	if (!msg) {
		_cleanup_free_ char *rec = ferry_instance_format(&inst);
		if (strlen(rec) > FERRY_INSTANCE_RECORD_MAX)
			ferry_error_msg(&err, EFBIG, "the instance record would exceed %d bytes",
					FERRY_INSTANCE_RECORD_MAX);
		if (strlen(rec) > FERRY_INSTANCE_RECORD_MAX ||
		    ferry_write_file_atomic(dirfd, s->req->instance, rec, strlen(rec), 0600, &err) < 0) {
			kill(pid, SIGKILL);
			report_error(top, err);
			waitpid(pid, NULL, 0);
			unlinkat(dirfd, s->req->instance, 0);
			unlinkat(dirfd, launch_name, 0);
			_exit(1);
		}
		char ok[32];
		int okn = snprintf(ok, sizeof(ok), "OK %d\n", (int)pid);
		(void)ferry_write_all(top, ok, (size_t)okn);
	} else {
		(void)ferry_write_all(top, msg, strlen(msg));
		(void)ferry_write_all(top, "\n", 1);
		kill(pid, SIGKILL);
		/* the start failed: drop our reservation of the name */
		unlinkat(dirfd, s->req->instance, 0);
		unlinkat(dirfd, launch_name, 0);
	}
	close(top);
	if (s->restore_fd >= 0 && net) {
		network_unlock_after_restore(s, netns_fd);
		if (!msg)
			network_announce(netns_fd, atts, n_atts); /* the address moved here */
	}

	/* From here on the monitor only waits and cleans up: it keeps uid 0 (the record directory
	 * is root's) and what the network's DEL needs, and gives up every other capability. */
	if (!net)
		(void)ferry_privs_clear_caps(NULL);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (net)
		network_detach(s, netns_fd, atts, n_atts);

	/* remove the record only if it is still ours (a failed start removed it already) */
	struct ferry_instance *cur = NULL;
	struct ferry_error *ignored = NULL;
	bool gone = read_record(dirfd, s->req->instance, &cur, &ignored) < 0;
	if (!gone && cur->pid == pid)
		unlinkat(dirfd, s->req->instance, 0);
	if (gone || cur->pid == pid) /* (someone listing may have dropped the record first) */
		unlinkat(dirfd, launch_name, 0);
	ferry_instance_free(cur);
	ferry_error_free(ignored);
	_exit(0);
}

static void op_instance_start(struct starter *s)
{
	struct ferry_error *err = NULL;
	TRY(ferry_privs_raise(&s->privs, &err));
	int dirfd = open_rundir(s, true, &err);
	if (dirfd < 0)
		die_error(err);
	TRY(reserve_name(s, dirfd, &err));
	if (s->log_out_path && (ftruncate(s->log_out, 0) < 0 || ftruncate(s->log_err, 0) < 0)) {
		unlinkat(dirfd, s->req->instance, 0);
		die("truncate the instance logs: %s", strerror(errno));
	}

	int top[2];
	if (pipe2(top, O_CLOEXEC) < 0) {
		unlinkat(dirfd, s->req->instance, 0);
		die("pipe: %s", strerror(errno));
	}
	pid_t mon = fork();
	if (mon < 0) {
		unlinkat(dirfd, s->req->instance, 0);
		die("fork: %s", strerror(errno));
	}
	if (mon == 0) {
		close(top[0]);
		monitor(s, dirfd, top[1]);
	}
	close(top[1]);
	close(dirfd);
	TRY(ferry_privs_drop(&s->privs, NULL, 0, &err));
	_cleanup_free_ char *msg = read_report(top[0]);
	if (msg && startswith(msg, "OK")) {
		if (want_timings) {
			unsigned long long bytes = 0;
			for (size_t i = 0; s->manifest && i < s->manifest->n_files; i++)
				bytes += s->manifest->files[i].size;
			printf("timing start=%lld received=%lld restored=%lld bytes=%llu\n", t_start,
			       t_received ? t_received : t_start, ferry_now_ms(), bytes);
			fflush(stdout);
		}
		if (verdict_fd >= 0) {
			/* Two copies must never run: the source ends its copy on our word, and we keep
			 * ours only on its commit. No commit (it died, the link broke): stop ours. */
			(void)ferry_xfer_send_verdict(verdict_fd, NULL);
			int committed = ferry_xfer_await_commit(verdict_fd, 30);
			(void)xfer_session_finish(30); /* the connection is clean for ferryd again */
			if (committed < 0) {
				int init = msg[2] == ' ' ? atoi_strict(msg + 3) : 0;
				int pfd = init > 0 ? (int)syscall(SYS_pidfd_open, init, 0) : -1;
				if (pfd >= 0)
					syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
				verdict_fd = -1;
				die("instance '%s' was restored but the source never confirmed the move: this copy is "
				    "stopped, the source keeps its own",
				    s->req->instance);
			}
		}
		exit(0);
	}
	if (msg)
		die_report(msg);
	die("instance '%s' failed to start: see '%s'", s->req->instance,
	    s->log_err_path ? s->log_err_path : "its log");
}

int pin_instance(struct starter *s, const char *name, struct ferry_instance **ret, struct ferry_error **err)
{
	int r = ferry_privs_raise(&s->privs, err);
	if (r < 0)
		return r;
	int dirfd = open_rundir(s, false, err);
	if (dirfd < 0 && dirfd != -ENOENT)
		return dirfd;
	struct ferry_instance *inst = NULL;
	struct ferry_error *ignored = NULL;
	if (dirfd < 0 || read_record(dirfd, name, &inst, &ignored) < 0 || !inst->monitor ||
	    !ferry_instance_alive(inst)) {
		ferry_error_free(ignored);
		ferry_instance_free(inst);
		if (dirfd >= 0)
			close(dirfd);
		return ferry_error_msg(
		    err, ESRCH, "no instance '%s' of yours is running: see 'ferry instance list'", name);
	}
	close(dirfd);
	/* Pin the process, then make sure it is still the instance's init (not a reused pid) and
	 * that it runs as the caller: only then may the caller act on it. */
	int pidfd = (int)syscall(SYS_pidfd_open, inst->pid, 0);
	if (pidfd < 0 || !ferry_instance_alive(inst)) {
		ferry_instance_free(inst);
		return ferry_error_msg(err, ESRCH, "instance '%s' has just exited", name);
	}
	struct ferry_proc_status st;
	if (ferry_proc_status(inst->pid, &st) < 0 || st.uid[0] != s->privs.uid) {
		close(pidfd);
		ferry_instance_free(inst);
		return ferry_error_msg(err, EPERM, "instance '%s' does not run as you: refusing to act on it",
				       name);
	}
	*ret = inst;
	return pidfd;
}

int instance_ns_flags(const struct ferry_instance *inst)
{
	return STARTER_NS_FLAGS | (inst->networks ? CLONE_NEWNET : 0);
}

static void op_instance_join(struct starter *s)
{
	struct ferry_error *err = NULL;
	const char *name = s->req->instance;
	struct ferry_instance *inst = NULL;
	int pidfd = pin_instance(s, name, &inst, &err);
	if (pidfd < 0)
		die_error(err);
	if (setns(pidfd, instance_ns_flags(inst)) < 0)
		die("join instance '%s': %s", name, strerror(errno));

	close(pidfd);
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(rep[0]);
		if (ferry_privs_drop(&s->privs, NULL, 0, &err) < 0) {
			report_error(rep[1], err);
			_exit(255);
		}
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		exec_workload(s, rep[1]);
	}
	close(rep[1]);
	TRY(ferry_privs_drop(&s->privs, NULL, 0, &err));
	_cleanup_free_ char *msg = read_report(rep[0]);
	if (msg) {
		waitpid(pid, NULL, 0);
		die_report(msg);
	}
	ferry_instance_free(inst);
	wait_and_exit(pid);
}

static void read_request(struct starter *s)
{
	struct ferry_error *err = NULL;
	struct stat st;
	if (fstat(FERRY_REQUEST_FD, &st) < 0)
		die("ferry-starter is run by the 'ferry' command, not directly (no request on fd %d)",
		    FERRY_REQUEST_FD);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (ferry_read_all(FERRY_REQUEST_FD, FERRY_REQUEST_MAX, &buf, &len, &err) < 0)
		die("invalid request: %s", err->message);
	/* fd 4 may carry the socket of a --page-server transfer: connected, or (a restart) the
	 * one it listens on */
	if (fstat(STARTER_XFER_FD, &st) == 0 && S_ISSOCK(st.st_mode))
		s->xfer_fd = fcntl(STARTER_XFER_FD, F_DUPFD_CLOEXEC, 10);
	ferry_close_fds(3, (const int[]){s->xfer_fd, -1});
	if (ferry_request_decode(buf, len, &s->req, &err) < 0)
		die_error(err);
	bool commit = s->req->flags & FERRY_REQ_COMMIT;
	if ((s->req->page_server || commit) && s->xfer_fd < 0)
		die("--page-server needs the connection the 'ferry' command makes: run ferry, not ferry-starter");
	if (!s->req->page_server && !commit && s->xfer_fd >= 0) {
		close(s->xfer_fd);
		s->xfer_fd = -1;
	}
}

int main(int argc, char **argv)
{
	struct ferry_error *err = NULL;
	struct starter s = {.image_fd = -1,
			    .image_tree = -1,
			    .log_out = -1,
			    .log_err = -1,
			    .ckpt_fd = -1,
			    .restore_fd = -1,
			    .xfer_fd = -1};

	sanitize_stdio();
	t_start = ferry_now_ms();
	if (geteuid() != 0)
		die("ferry-starter is not setuid root: install ferry with 'make install' as root");
	if (!getauxval(AT_SECURE) && getuid() != 0)
		die("ferry-starter: unexpected credentials");
	if (clearenv() != 0 || setenv("PATH", STARTER_PATH, 1) != 0)
		die("cannot reset the environment");
	umask(022);
	signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error, not a death */
	TRY(ferry_privs_init(&s.privs, &err));
	TRY(ferry_privs_lower(&s.privs, &err));

	read_request(&s);
	if (ferry_config_load(FERRY_CONFIG_PATH, true, &s.cfg, &err) < 0)
		die_error(err);
	if (!s.cfg->allow_setuid && s.privs.uid != 0)
		die("ferry is disabled for users on this node ('allow setuid = no' in %s)",
		    FERRY_CONFIG_PATH);
	lookup_user(&s);

	want_timings = s.req->flags & FERRY_REQ_TIMINGS;
	if (s.req->op == FERRY_OP_INSTANCE_START && (s.req->flags & FERRY_REQ_CRIU_RESTART)) {
		if (s.xfer_fd >= 0)
			verdict_fd = s.xfer_fd;
		if (s.xfer_fd >= 0 && s.req->page_server) {
			TRY(checkpoint_receive(&s, &err)); /* pages and images arrive, verified */
			t_received = ferry_now_ms();
		}
		TRY(checkpoint_prepare_restart(&s, &err)); /* s.req becomes the verified launch request */
	}
	const struct ferry_request *req = s.req;
	if (req->instance)
		TRY(ferry_name_check(req->instance, "instance", &err));
	if (req->hostname)
		TRY(check_hostname(req->hostname, &err));

	switch (req->op) {
	case FERRY_OP_CHECKPOINT_DUMP:
		op_checkpoint_dump(&s);
	case FERRY_OP_CHECKPOINT_DELETE:
		op_checkpoint_delete(&s);
	case FERRY_OP_CHECKPOINT_RESTORE:
		op_checkpoint_restore(&s);
	case FERRY_OP_INSTANCE_LIST:
		op_list(&s);
		break;
	case FERRY_OP_INSTANCE_JOIN:
		op_instance_join(&s);
		break;
	case FERRY_OP_EXEC:
	case FERRY_OP_INSTANCE_START:
		s.instance = req->op == FERRY_OP_INSTANCE_START;
		s.criu = req->flags & (FERRY_REQ_CRIU_LAUNCH | FERRY_REQ_CRIU_RESTART);
		if ((req->flags & FERRY_REQ_CRIU_LAUNCH) && s.ckpt_fd < 0)
			TRY(checkpoint_open_dir(&s, req->checkpoint, &err));
		if (req->flags & FERRY_REQ_NET) {
			TRY(ferry_net_names_parse(req->networks ? req->networks : "bridge", &s.networks,
						  &err));
			if (req->network_args)
				TRY(ferry_net_args_parse(req->network_args, &s.net_args, &err));
			/* a restart's address and MAC are the instance's own, sealed in its checkpoint:
			 * only the networks are checked against today's policy */
			static const struct ferry_net_args none = {0};
			TRY(ferry_net_check_policy(
			    s.cfg, s.privs.uid, s.networks,
			    (req->flags & FERRY_REQ_CRIU_RESTART) ? &none : &s.net_args, &err));
		}
		TRY(open_image(&s, &err));
		if (s.criu) {
			TRY(ferry_image_fingerprint(s.image_fd, &s.image_fingerprint, &err));
			if (s.manifest && s.manifest->image_fingerprint && *s.manifest->image_fingerprint &&
			    !streq(s.manifest->image_fingerprint, s.image_fingerprint))
				die("image '%s' is not the image the checkpoint was made with ('%s'): restart with that image",
				    req->image, s.manifest->image);
		}
		if (s.instance)
			TRY(open_logs(&s, &err));
		TRY(plan_mounts(&s, &err));
		TRY(ferry_privs_raise(&s.privs, &err));
		TRY(container_clone_trees(&s, &err));
		TRY(ferry_privs_lower(&s.privs, &err));
		if (s.instance)
			op_instance_start(&s);
		else
			op_exec(&s);
		break;
	default:
		die("invalid request: unknown operation %u", req->op);
	}
	return 255;
}

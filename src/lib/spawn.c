/* SPDX-License-Identifier: GPL-2.0-or-later */
/* spawn.c — fork/exec of helpers, and waiting for them. See spawn.h. */
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "instance.h"
#include "spawn.h"

#define STDERR_TAIL 4096
#define POLL_FALLBACK_MS 20
#define STOPPED_POLL_MS 500 /* how often a child with a stopped_limit is looked at */

/* What the child reports through the exec-status pipe when a step before exec (or exec) fails. */
enum child_stage {
	STAGE_FDS = 1,
	STAGE_SESSION = 2,
	STAGE_CWD = 3,
	STAGE_EXEC = 4,
	STAGE_NETNS = 5,
	STAGE_IDS = 6,
	STAGE_LIMITS = 7,
};

struct child_report {
	int32_t stage;
	int32_t error;
};

static void safe_close(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
		*fd = -1;
	}
}

static const char *signal_name(int sig, char *buf, size_t len)
{
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev) {
		snprintf(buf, len, "SIG%s", abbrev);
		return buf;
	}
#endif
	snprintf(buf, len, "%d", sig);
	return buf;
}

void ferry_spawn_describe_status(int status, char *buf, size_t len)
{
	char sig[32];
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %s%s",
			 signal_name(WTERMSIG(status), sig, sizeof(sig)),
			 WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, len, "ended with wait status 0x%x", (unsigned)status);
}

/* Closes every fd from @lowest up except @keep (>= @lowest). */
static void close_from(int lowest, int keep, int maxfd)
{
#ifdef SYS_close_range
	bool ok = true;
	if (keep > lowest && syscall(SYS_close_range, (unsigned)lowest, (unsigned)keep - 1u, 0u) < 0)
		ok = false;
	if (ok && syscall(SYS_close_range, (unsigned)keep + 1u, ~0u, 0u) == 0)
		return;
#endif
	for (int fd = lowest; fd < maxfd; fd++)
		if (fd != keep)
			(void)close(fd);
}

_noreturn_ static void child_fail(int report_fd, enum child_stage stage, int error)
{
	struct child_report rep = {.stage = stage, .error = error};
	ssize_t n = write(report_fd, &rep, sizeof(rep));
	(void)n;
	_exit(127);
}

struct child_setup {
	int src[3]; /* for fds 0, 1, 2: an fd to dup there, or -1 to leave it alone */
	const int *pass_fds;
	size_t n_pass_fds;
	const char *cwd;
	bool new_session;
	bool die_with_parent;
	int netns_fd;
	bool as_user;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
	const struct rlimit *limits;
	pid_t parent;
	int maxfd;
};

/* Runs in the child after fork(): async-signal-safe calls only. */
_noreturn_ static void child_exec(const struct child_setup *cs, int report_fd, const char *path,
				  char *const argv[], char *const envp[])
{
	int ntargets = 3 + (int)cs->n_pass_fds;

	if (cs->die_with_parent) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != cs->parent) /* the parent is already gone */
			_exit(127);
	}
	if (cs->new_session && setsid() < 0)
		child_fail(report_fd, STAGE_SESSION, errno);
	if (cs->netns_fd >= 0 && setns(cs->netns_fd, CLONE_NEWNET) < 0)
		child_fail(report_fd, STAGE_NETNS, errno);
	if (cs->as_user &&
	    (setgroups(cs->n_groups, cs->groups) < 0 || setresgid(cs->gid, cs->gid, cs->gid) < 0 ||
	     setresuid(cs->uid, cs->uid, cs->uid) < 0))
		child_fail(report_fd, STAGE_IDS, errno);

	sigset_t none;
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &dfl, NULL); /* fails harmlessly for SIGKILL, SIGSTOP, reserved ones */

	/* Move the report pipe and every source above the targets first, so that no dup2 below
	 * overwrites a source that is still needed. */
	int rfd = fcntl(report_fd, F_DUPFD_CLOEXEC, ntargets);
	if (rfd < 0)
		child_fail(report_fd, STAGE_FDS, errno);
	report_fd = rfd;
	int tmp[3 + 64];
	if (cs->n_pass_fds > 64)
		child_fail(report_fd, STAGE_FDS, EMFILE);
	for (int t = 0; t < ntargets; t++) {
		int src = t < 3 ? cs->src[t] : cs->pass_fds[t - 3];
		tmp[t] = -1;
		if (src < 0)
			continue;
		tmp[t] = fcntl(src, F_DUPFD_CLOEXEC, ntargets);
		if (tmp[t] < 0)
			child_fail(report_fd, STAGE_FDS, errno);
	}
	for (int t = 0; t < ntargets; t++) {
		if (tmp[t] < 0)
			continue;
		if (dup2(tmp[t], t) < 0) /* the new fd has no FD_CLOEXEC */
			child_fail(report_fd, STAGE_FDS, errno);
	}
	/* Every fd from ntargets up goes, except the report pipe (close-on-exec itself). */
	close_from(ntargets, report_fd, cs->maxfd);

	/* (last: a small RLIMIT_NOFILE must not fail the fds' moves above) */
	for (int r = 0; cs->limits && r < RLIM_NLIMITS; r++)
		if (setrlimit(r, &cs->limits[r]) < 0)
			child_fail(report_fd, STAGE_LIMITS, errno);
	if (cs->cwd && chdir(cs->cwd) < 0)
		child_fail(report_fd, STAGE_CWD, errno);
	execve(path, argv, envp);
	child_fail(report_fd, STAGE_EXEC, errno);
}

static int open_devnull(int flags, struct ferry_error **err)
{
	int fd = open("/dev/null", flags | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ferry_error_set(err, errno, "open '/dev/null'");
	return fd;
}

static int input_memfd(const void *data, size_t len, struct ferry_error **err)
{
	_cleanup_close_ int fd = memfd_create("ferry-spawn-input", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return ferry_error_set(err, errno, "memfd_create");
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ferry_error_set(err, n < 0 ? errno : EIO, "write helper input");
		done += (size_t)n;
	}
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	if (lseek(fd, 0, SEEK_SET) < 0)
		return ferry_error_set(err, errno, "lseek helper input");
	return TAKE_FD(fd);
}

static char *const default_env[] = {FERRY_SPAWN_PATH, NULL};

/* The child-side fds, owned by the parent until the fork is done. */
struct parent_fds {
	int own[3]; /* fds we opened for the child (closed after fork) */
	int out_read; /* our end of the stdout pipe, or -1 */
	int err_read; /* our end of the stderr pipe, or -1 */
};

static void parent_fds_close(struct parent_fds *p)
{
	for (int i = 0; i < 3; i++)
		safe_close(&p->own[i]);
	safe_close(&p->out_read);
	safe_close(&p->err_read);
}

static int pick_stdio(int which, int opt, struct child_setup *cs, struct parent_fds *pf,
		      struct ferry_error **err)
{
	if (opt > 0) {
		cs->src[which] = opt;
		return 0;
	}
	if (opt == FERRY_SPAWN_INHERIT || (opt == FERRY_SPAWN_DEFAULT && which != 0)) {
		cs->src[which] = -1;
		return 0;
	}
	if (opt != FERRY_SPAWN_DEFAULT && opt != FERRY_SPAWN_DEVNULL)
		return ferry_error_msg(err, EINVAL, "bad fd %d for the helper's fd %d", opt, which);
	int fd = open_devnull(which == 0 ? O_RDONLY : O_WRONLY, err);
	if (fd < 0)
		return fd;
	pf->own[which] = fd;
	cs->src[which] = fd;
	return 0;
}

static int make_pipe(int which, int *ret_read, struct child_setup *cs, struct parent_fds *pf,
		     struct ferry_error **err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "pipe");
	*ret_read = p[0];
	pf->own[which] = p[1];
	cs->src[which] = p[1];
	return 0;
}

static int check_args(const char *path, char *const argv[], const struct ferry_spawn_opts *opts,
		      struct ferry_error **err)
{
	if (!path || path[0] != '/')
		return ferry_error_msg(err, EINVAL, "helper path '%s' is not absolute",
				       path ? path : "(null)");
	if (!argv || !argv[0])
		return ferry_error_msg(err, EINVAL, "no argv for '%s'", path);
	if (opts->n_pass_fds > 64)
		return ferry_error_msg(err, EINVAL, "too many fds to pass to '%s'", path);
	for (size_t i = 0; i < opts->n_pass_fds; i++)
		if (opts->pass_fds[i] < 0)
			return ferry_error_msg(err, EBADF, "bad fd to pass to '%s'", path);
	return 0;
}

/* The child's fds 0-2, as @opts asks: its input, pipes to read, or fds of ours. */
static int setup_stdio(const struct ferry_spawn_opts *opts, struct child_setup *cs, struct parent_fds *pf,
		       struct ferry_error **err)
{
	int r;
	if (opts->input) {
		r = input_memfd(opts->input, opts->input_len, err);
		if (r < 0)
			return r;
		pf->own[0] = r;
		cs->src[0] = r;
	} else if ((r = pick_stdio(0, opts->stdin_fd, cs, pf, err)) < 0) {
		return r;
	}
	r = opts->output ? make_pipe(1, &pf->out_read, cs, pf, err)
			 : pick_stdio(1, opts->stdout_fd, cs, pf, err);
	if (r < 0)
		return r;
	return opts->capture_stderr ? make_pipe(2, &pf->err_read, cs, pf, err)
				    : pick_stdio(2, opts->stderr_fd, cs, pf, err);
}

/* Reads the child's report from @report_fd: nothing (EOF at its exec) means it runs; a report
 * means it failed before exec, and is reaped here. */
static int exec_result(pid_t pid, int report_fd, const char *path, const struct ferry_spawn_opts *opts,
		       struct ferry_error **err)
{
	struct child_report rep;
	ssize_t n;
	do
		n = read(report_fd, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(rep))
		return 0;
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	switch (rep.stage) {
	case STAGE_EXEC:
		return ferry_error_set(err, rep.error, "exec '%s'", path);
	case STAGE_CWD:
		return ferry_error_set(err, rep.error, "'%s': change to directory '%s'", path, opts->cwd);
	case STAGE_SESSION:
		return ferry_error_set(err, rep.error, "'%s': setsid", path);
	case STAGE_NETNS:
		return ferry_error_set(err, rep.error, "'%s': join the network namespace", path);
	case STAGE_IDS:
		return ferry_error_set(err, rep.error, "'%s': take the user's ids", path);
	case STAGE_LIMITS:
		return ferry_error_set(err, rep.error, "'%s': take the user's limits", path);
	default:
		return ferry_error_set(err, rep.error, "'%s': set up file descriptors", path);
	}
}

static int start(const char *path, char *const argv[], char *const envp[],
		 const struct ferry_spawn_opts *opts, struct parent_fds *pf, pid_t *ret_pid,
		 struct ferry_error **err)
{
	static const struct ferry_spawn_opts none = {0};
	if (!opts)
		opts = &none;
	int r = check_args(path, argv, opts, err);
	if (r < 0)
		return r;
	if (!envp)
		envp = default_env;

	struct child_setup cs = {
	    .pass_fds = opts->pass_fds,
	    .n_pass_fds = opts->n_pass_fds,
	    .cwd = opts->cwd,
	    .new_session = opts->new_session,
	    .die_with_parent = opts->die_with_parent,
	    .netns_fd = opts->netns_fd > 0 ? opts->netns_fd : -1,
	    .as_user = opts->as_user,
	    .uid = opts->uid,
	    .gid = opts->gid,
	    .groups = opts->groups,
	    .n_groups = opts->n_groups,
	    .limits = opts->limits,
	    .parent = getpid(),
	};
	if ((r = setup_stdio(opts, &cs, pf, err)) < 0)
		return r;

	struct rlimit rl;
	cs.maxfd =
	    (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < INT_MAX)
		? (int)rl.rlim_cur
		: 65536;

	int report[2];
	if (pipe2(report, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "pipe");

	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(report[0]);
		close(report[1]);
		return ferry_error_set(err, e, "fork for '%s'", path);
	}
	if (pid == 0) {
		close(report[0]);
		child_exec(&cs, report[1], path, argv, envp);
	}

	close(report[1]);
	for (int i = 0; i < 3; i++)
		safe_close(&pf->own[i]);
	r = exec_result(pid, report[0], path, opts, err);
	close(report[0]);
	if (r < 0)
		return r;
	*ret_pid = pid;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int pidfd_for(pid_t pid)
{
#ifdef SYS_pidfd_open
	long fd = syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		(void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
		return (int)fd;
	}
#endif
	return -1;
}

struct capture {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
	size_t max; /* output: error past this; stderr tail: keep the last STDERR_TAIL */
	bool tail; /* keep only the end */
	bool overflow;
};

/* Reads what is there: 1 when it got bytes, 0 when none were ready, -1 at EOF or error (fd closed). */
static int capture_read(struct capture *c)
{
	char chunk[16384];
	ssize_t n = read(c->fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		safe_close(&c->fd);
		return -1;
	}
	size_t add = (size_t)n;
	if (!c->tail && (c->overflow || c->len + add > c->max)) {
		c->overflow = true; /* keep draining so the child never blocks on a full pipe */
		return 1;
	}
	if (c->len + add + 1 > c->cap) {
		c->cap = (c->len + add + 1) * 2;
		c->buf = xrealloc(c->buf, c->cap);
	}
	memcpy(c->buf + c->len, chunk, add);
	c->len += add;
	if (c->tail && c->len > 2 * STDERR_TAIL) {
		memmove(c->buf, c->buf + c->len - STDERR_TAIL, STDERR_TAIL);
		c->len = STDERR_TAIL;
	}
	return 1;
}

static void capture_drain(struct capture *c)
{
	if (c->fd < 0)
		return;
	int fl = fcntl(c->fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
	while (capture_read(c) > 0)
		;
}

/* What of a child's last line of stderr its error quotes: its first and last bytes. */
#define LINE_HEAD 320
#define LINE_TAIL 180

/* The last non-empty line of captured stderr, made printable, or NULL. */
static char *last_line(const struct capture *c)
{
	if (!c || !c->buf || c->len == 0)
		return NULL;
	size_t end = c->len;
	while (end > 0 && (c->buf[end - 1] == '\n' || c->buf[end - 1] == '\r' || c->buf[end - 1] == ' ' ||
			   c->buf[end - 1] == '\t'))
		end--;
	if (end == 0)
		return NULL;
	size_t start = end;
	while (start > 0 && c->buf[start - 1] != '\n')
		start--;
	/* a long line keeps its start (what failed) and its end (what became of the job); what
	 * goes is the middle, where the lines of a tool it quotes are */
	char *line;
	if (end - start > LINE_HEAD + LINE_TAIL)
		line = xasprintf("%.*s [...] %.*s", LINE_HEAD, c->buf + start, LINE_TAIL,
				 c->buf + end - LINE_TAIL);
	else
		line = xstrndup(c->buf + start, end - start);
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = ' ';
	return line;
}

/* How long a cancelled child's leftovers may keep its output pipe open (spawn.h: cancel_fd). */
#define SPAWN_CANCEL_WAIT_S 120

/* After a cancel: what the child's leftovers (its guard) write until they close the pipe, for
 * at most @seconds. */
static void capture_until_eof(struct capture *c, unsigned seconds)
{
	int64_t end = now_ms() + (int64_t)seconds * 1000;
	while (c->fd >= 0 && now_ms() < end) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now_ms())) > 0)
			(void)capture_read(c);
	}
}

/* How a wait ended early: the deadline, or the child stayed stopped too long (wait_child). */
enum { WAIT_ENDED, WAIT_TIMED_OUT, WAIT_STOPPED };

bool ferry_child_stopped(pid_t pid)
{
	struct ferry_proc_status ps;
	return ferry_proc_status(pid, &ps) == 0 && (ps.state == 'T' || ps.state == 't');
}

/* Waits for @pid while collecting @caps; kills it at the deadline, once it stayed stopped for
 * @opts' stopped_limit (*ret_early), or once @opts' cancel_fd is readable (*ret_cancelled). */
static int wait_child(pid_t pid, const char *what, const struct ferry_spawn_opts *opts, struct capture *caps,
		      size_t ncaps, int *ret_status, int *ret_early, bool *ret_cancelled,
		      struct ferry_error **err)
{
	_cleanup_close_ int pidfd = pidfd_for(pid);
	unsigned timeout = opts->timeout;
	bool idle = opts->timeout_idle, kill_group = opts->new_session;
	int64_t deadline = timeout ? now_ms() + (int64_t)timeout * 1000 : 0, stopped_since = 0;
	int status = 0, cancel = opts->cancel_fd > 0 ? opts->cancel_fd : -1;
	*ret_cancelled = false;

	for (;;) {
		int tmo = -1, early = WAIT_ENDED;
		if (opts->stopped_limit && ferry_child_stopped(pid)) {
			if (!stopped_since)
				stopped_since = now_ms();
			if (now_ms() - stopped_since >= (int64_t)opts->stopped_limit * 1000)
				early = WAIT_STOPPED;
		} else {
			stopped_since = 0;
		}
		if (deadline && deadline - now_ms() <= 0)
			early = WAIT_TIMED_OUT;
		if (early != WAIT_ENDED) {
			if (kill_group)
				(void)kill(-pid, SIGKILL);
			(void)kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			*ret_early = early;
			return 0;
		}
		if (deadline) {
			int64_t rem = deadline - now_ms();
			tmo = rem > INT_MAX ? INT_MAX : (int)rem;
		}
		if (pidfd < 0 && (tmo < 0 || tmo > POLL_FALLBACK_MS))
			tmo = POLL_FALLBACK_MS;
		if (opts->stopped_limit && (tmo < 0 || tmo > STOPPED_POLL_MS))
			tmo = STOPPED_POLL_MS;

		struct pollfd pfd[5];
		size_t n = 0;
		int cap_idx[3] = {-1, -1, -1};
		for (size_t i = 0; i < ncaps && i < 3; i++) {
			if (caps[i].fd < 0)
				continue;
			cap_idx[i] = (int)n;
			pfd[n++] = (struct pollfd){.fd = caps[i].fd, .events = POLLIN};
		}
		int pid_idx = -1;
		if (pidfd >= 0) {
			pid_idx = (int)n;
			pfd[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		}
		int cancel_idx = -1;
		if (cancel >= 0) {
			cancel_idx = (int)n;
			pfd[n++] = (struct pollfd){.fd = cancel, .events = POLLIN};
		}
		int pr = poll(pfd, n, tmo);
		if (pr < 0 && errno != EINTR)
			return ferry_error_set(err, errno, "poll while waiting for '%s'", what);
		if (pr > 0 && cancel_idx >= 0 && (pfd[cancel_idx].revents & POLLIN)) {
			(void)kill(pid, SIGKILL);
			*ret_cancelled = true;
			cancel = -1;
		}
		if (pr > 0)
			for (size_t i = 0; i < ncaps && i < 3; i++)
				if (cap_idx[i] >= 0 &&
				    (pfd[cap_idx[i]].revents & (POLLIN | POLLHUP | POLLERR)) &&
				    capture_read(&caps[i]) > 0 && idle && deadline)
					deadline = now_ms() + (int64_t)timeout * 1000; /* it goes on */
		if (pidfd < 0 || (pr > 0 && (pfd[pid_idx].revents & POLLIN))) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w < 0 && errno != EINTR)
				return ferry_error_set(err, errno, "wait for '%s'", what);
			if (w == pid)
				break;
		}
	}
	/* Whatever the child wrote before it ended is in the pipes now; a grandchild that keeps them open
	 * does not hold us up, unless the child was cancelled: then its leftovers finish first. */
	for (size_t i = 0; i < ncaps; i++) {
		if (*ret_cancelled)
			capture_until_eof(&caps[i], SPAWN_CANCEL_WAIT_S);
		capture_drain(&caps[i]);
	}
	*ret_status = status;
	*ret_early = WAIT_ENDED;
	return 0;
}

static int judge(const char *what, int status, int early, const struct ferry_spawn_opts *opts,
		 const struct capture *errcap, int *ret_status, struct ferry_error **err)
{
	_cleanup_free_ char *line = last_line(errcap);
	const char *sep = line ? ": " : "";
	const char *tail = line ? line : "";
	if (early == WAIT_STOPPED) /* (its last line is not what ended it) */
		return ferry_error_msg(err, ETIMEDOUT,
				       "'%s' timed out: it was stopped (SIGSTOP) for %u s, and killed", what,
				       opts->stopped_limit);
	if (early == WAIT_TIMED_OUT)
		return ferry_error_msg(err, ETIMEDOUT, "'%s' timed out %s %u s%s%s", what,
				       opts->timeout_idle ? "without progress for" : "after", opts->timeout,
				       sep, tail);
	if (WIFEXITED(status)) {
		if (ret_status) {
			*ret_status = WEXITSTATUS(status);
			return 0;
		}
		if (WEXITSTATUS(status) == 0)
			return 0;
		return ferry_error_msg(err, 0, "'%s' exited with status %d%s%s", what, WEXITSTATUS(status),
				       sep, tail);
	}
	char desc[64];
	ferry_spawn_describe_status(status, desc, sizeof(desc));
	return ferry_error_msg(err, 0, "'%s' %s%s%s", what, desc, sep, tail);
}

int ferry_spawn(const char *path, char *const argv[], char *const envp[], const struct ferry_spawn_opts *opts,
		int *ret_status, struct ferry_error **err)
{
	static const struct ferry_spawn_opts none = {0};
	if (!opts)
		opts = &none;
	struct parent_fds pf = {.own = {-1, -1, -1}, .out_read = -1, .err_read = -1};
	pid_t pid = -1;
	int r = start(path, argv, envp, opts, &pf, &pid, err);
	if (r < 0) {
		parent_fds_close(&pf);
		return r;
	}

	struct capture caps[2] = {
	    {.fd = TAKE_FD(pf.out_read), .max = opts->output_max ? opts->output_max : FERRY_SPAWN_OUTPUT_MAX},
	    {.fd = TAKE_FD(pf.err_read), .tail = true},
	};
	int status = 0;
	int early = WAIT_ENDED;
	bool cancelled = false;
	r = wait_child(pid, path, opts, caps, 2, &status, &early, &cancelled, err);
	safe_close(&caps[0].fd);
	safe_close(&caps[1].fd);
	if (r >= 0 && cancelled)
		r = ferry_error_msg(err, ECANCELED, "'%s' was cancelled", path);
	if (r >= 0)
		r = judge(path, status, early, opts, &caps[1], ret_status, err);
	if (r >= 0 && caps[0].overflow)
		r = ferry_error_msg(err, EFBIG, "'%s' wrote more than %zu bytes", path, caps[0].max);
	if (r >= 0 && opts->output) {
		if (!caps[0].buf)
			caps[0].buf = xzalloc(1);
		caps[0].buf[caps[0].len] = '\0';
		*opts->output = TAKE_PTR(caps[0].buf);
		if (opts->output_len)
			*opts->output_len = caps[0].len;
	}
	free(caps[0].buf);
	free(caps[1].buf);
	return r;
}

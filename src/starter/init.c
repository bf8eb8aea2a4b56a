/* SPDX-License-Identifier: GPL-2.0-or-later */
/* init.c — the container's pid 1 and the workload's last steps before execve.
 *
 * Both run with the user's identity only: container_init drops every privilege before it does
 * anything else, so no process inside a container is ever root-owned (which also lets the
 * user's own CRIU dump the whole tree later). */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "criu.h"
#include "fs.h"
#include "starter.h"

extern char **environ;

/* ferry-reaper, installed into the CRIU bundle (see exec_reaped_workload) */
#define STARTER_REAPER FERRY_CRIU_DIR "/ferry-reaper"

void reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL); /* fails harmlessly for SIGKILL, SIGSTOP and glibc's internals */
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static bool dir_exists(const char *path)
{
	return path && access(path, X_OK) == 0;
}

/* What every workload start does before its exec: default signals, the working directory. */
static void workload_prepare(struct starter *s, int report)
{
	struct ferry_error *err = NULL;
	reset_signals();
	const char *pwd = s->req->pwd;
	if (pwd) {
		if (chdir(pwd) < 0) {
			ferry_error_set(&err, errno, "--pwd '%s' in the container", pwd);
			report_error(report, err);
			_exit(255);
		}
	} else if (!(dir_exists(s->req->cwd) && chdir(s->req->cwd) == 0) &&
		   !(dir_exists(s->home) && chdir(s->home) == 0) && chdir("/") < 0) {
		_exit(255);
	}
}

void exec_workload(struct starter *s, int report)
{
	struct ferry_error *err = NULL;
	workload_prepare(s, report);
	/* a checkpointable workload leads its own session: CRIU dumps its tree from there */
	if (s->criu)
		setsid();
	environ = s->req->env;
	execvp(s->req->argv[0], s->req->argv);
	int e = errno;
	ferry_error_set(&err, e, "cannot run '%s' in the container", s->req->argv[0]);
	report_error(report, err);
	_exit(e == ENOENT ? 127 : 126);
}

/* The workload of a checkpointable instance, under ferry-reaper (src/reaper/reaper.c): the root of
 * the tree CRIU dumps, in its own session, and the subreaper of every process the workload leaves
 * behind (daemons), so that a checkpoint holds them all. The reaper comes from the CRIU bundle,
 * never from the image, and execs argv itself (reporting on @report when it cannot). */
static _noreturn_ void exec_reaped_workload(struct starter *s, int report)
{
	struct ferry_error *err = NULL;
	workload_prepare(s, report);
	setsid();
	size_t n = 0;
	while (s->req->argv[n])
		n++;
	char **argv = xmalloc((n + 4) * sizeof(*argv));
	char fd[16];
	snprintf(fd, sizeof(fd), "%d", report);
	size_t k = 0;
	argv[k++] = (char *)STARTER_REAPER;
	if (s->req->flags & FERRY_REQ_WAIT_ALL)
		argv[k++] = "-a"; /* it lives until its last orphan ends */
	argv[k++] = fd;
	memcpy(argv + k, s->req->argv, (n + 1) * sizeof(*argv)); /* with its NULL */
	int flags = fcntl(report, F_GETFD);
	if (flags < 0 || fcntl(report, F_SETFD, flags & ~FD_CLOEXEC) < 0) {
		ferry_error_set(&err, errno, "pass the report to the workload's reaper");
		report_error(report, err);
		_exit(255);
	}
	environ = s->req->env;
	execv(STARTER_REAPER, argv);
	ferry_error_set(&err, errno, "cannot run the workload's reaper '%s' (run 'make install')",
			STARTER_REAPER);
	report_error(report, err);
	_exit(255);
}

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

static void write_pid_line(int fd, pid_t pid)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "P %d\n", (int)pid);
	(void)ferry_write_all(fd, line, (size_t)n);
}

static _noreturn_ void init_fail(int report, struct ferry_error *err)
{
	report_error(report, err);
	_exit(255);
}

/* The restorer needs capabilities init must not keep: forked while still root. It starts once
 * init has dropped to the user (the end of file on *ret_go, which init closes then): no process
 * of the container is root's while CRIU runs, whatever capabilities it holds. Returns its pid;
 * it writes the restored root's pid to *ret_pid_fd's other end. */
static pid_t start_restorer(struct starter *s, int report, int *ret_pid_fd, int *ret_go)
{
	struct ferry_error *err = NULL;
	int pid_pipe[2], go[2];
	pid_t restorer = -1;
	if (pipe2(pid_pipe, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 || (restorer = fork()) < 0) {
		ferry_error_set(&err, errno, "start the restorer");
		init_fail(report, err);
	}
	if (restorer == 0) {
		close(pid_pipe[0]);
		close(go[1]);
		char c;
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		close(go[0]);
		run_restorer(s, report, pid_pipe[1]);
	}
	close(pid_pipe[1]);
	close(go[0]);
	*ret_pid_fd = pid_pipe[0];
	*ret_go = go[1];
	return restorer;
}

/* The workload's pid must not be one the restore-time helpers take (see starter.h); its reaper
 * takes the pid before it (see exec_reaped_workload). */
static void raise_last_pid(struct starter *s, int report)
{
	struct ferry_error *err = NULL;
	int fd = TAKE_FD(s->ns_last_pid_fd);
	char v[16];
	int n = snprintf(v, sizeof(v), "%d", STARTER_WORKLOAD_PID - 2);
	if (fd < 0 || write(fd, v, (size_t)n) != n) {
		ferry_error_set(&err, errno, "raise ns_last_pid");
		init_fail(report, err);
	}
	close(fd);
}

/* The process init waits for: the restored root (its pid from the restorer on @pid_fd), or the
 * workload it forks; 0 for an idle instance. */
static pid_t start_main(struct starter *s, int report, pid_t restorer, int pid_fd)
{
	struct ferry_error *err = NULL;
	pid_t main_pid = 0;
	if (restorer > 0) {
		char buf[32] = "";
		ssize_t n = read(pid_fd, buf, sizeof(buf) - 1);
		close(pid_fd);
		unsigned long long v = 0;
		if (n > 0)
			buf[n] = '\0';
		if (n <= 0 || parse_uint64(buf, INT32_MAX, &v) < 0 || v == 0)
			_exit(255); /* the restorer reported why */
		main_pid = (pid_t)v;
		write_pid_line(report, main_pid);
	} else if (s->req->argv && s->req->argv[0]) {
		main_pid = fork();
		if (main_pid < 0) {
			ferry_error_set(&err, errno, "fork the workload");
			init_fail(report, err);
		}
		if (main_pid == 0) {
			if (s->criu)
				exec_reaped_workload(s, report);
			exec_workload(s, report);
		}
		if (s->criu)
			write_pid_line(report, main_pid);
	}
	return main_pid;
}

/* Init's life: reaps, passes signals on to @main_pid, and ends with it (with its status); with
 * @wait_all, once the last process of the container ended (with @main_pid's status), the signals
 * going to every process once it is gone. */
static _noreturn_ void init_loop(pid_t main_pid, const sigset_t *all, bool wait_all)
{
	int main_status = -1;
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(all, &info);
		if (sig < 0)
			continue;
		if (sig == SIGCHLD) {
			int st;
			pid_t p;
			while ((p = waitpid(-1, &st, WNOHANG)) > 0)
				if (p == main_pid && !wait_all)
					_exit(status_code(st));
				else if (p == main_pid)
					main_status = status_code(st);
			if (main_status >= 0 && p < 0 && errno == ECHILD)
				_exit(main_status);
			continue;
		}
		if (main_pid > 0 && main_status < 0) {
			kill(main_pid, sig);
			continue;
		}
		if (main_status >= 0) {
			kill(-1, sig); /* every process of the container but us */
			continue;
		}
		/* an idle instance ends on the usual termination signals */
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) {
			kill(-1, SIGTERM);
			_exit(0);
		}
	}
}

void container_init(struct starter *s, int report)
{
	struct ferry_error *err = NULL;
	pid_t restorer = -1;
	int pid_fd = -1, go = -1;
	if (s->restore_fd >= 0)
		restorer = start_restorer(s, report, &pid_fd, &go);
	else if (s->criu && s->req->argv && s->req->argv[0])
		raise_last_pid(s, report); /* an idle instance keeps the low pids free for --restore */
	if (s->ns_last_pid_fd >= 0)
		close(TAKE_FD(s->ns_last_pid_fd));
	if (ferry_privs_drop(&s->privs, NULL, 0, &err) < 0)
		init_fail(report, err);
	closep(&go); /* the restorer starts */
	/* Dropping privileges cleared it: die with our parent (the starter or the monitor). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* An instance's init leads its own session: CRIU refuses a session leader outside the
	 * pid namespace. A plain exec keeps the caller's terminal session for job control. */
	if (s->instance)
		setsid();

	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	pid_t main_pid = start_main(s, report, restorer, pid_fd);
	close(report);
	ferry_close_fds(3, NULL);
	/* the reaper of a checkpointable instance waits for the orphans itself (-a); it is the one
	 * process init then waits for */
	init_loop(main_pid, &all, (s->req->flags & FERRY_REQ_WAIT_ALL) && !s->criu && main_pid > 0);
}

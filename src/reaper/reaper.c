/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-reaper — the root of a checkpointable instance's process tree.
 *
 *   ferry-reaper [-a] REPORT-FD PROGRAM [ARG...]
 *
 * CRIU dumps the tree under one process. A workload that daemonizes (fork, the parent exits, the
 * child calls setsid) would be reparented to the container's init, outside that tree, and lost
 * at the next checkpoint. This process is that tree's root instead (the instance's workload pid):
 * a child subreaper, so that every orphan of the workload is reparented here, inside the dump.
 * It forks and execs PROGRAM (searched in PATH), forwards every signal it gets to it, reaps the
 * orphans, and exits with PROGRAM's status (128 + N when signal N killed it); with -a
 * ('instance start --wait-all') only once the last orphan ended too, passing the signals it gets
 * from then on to every process of the container. When PROGRAM cannot
 * be run it writes "E <why>" to REPORT-FD, as the starter's own workload start does.
 *
 * The starter runs it from the CRIU bundle (bound read-only at /.ferry/criu), never from the
 * user's image. It is linked statically (no loader, no libraries to find in the image) and
 * allocates nothing once started, so CRIU dumps and restores it like any small process: a
 * restored reaper simply goes on waiting for signals. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(int fd, const char *what, const char *arg, int e)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "E %s '%s' in the container: %s\n", what, arg, strerror(e));
	if (fd >= 0 && n > 0)
		(void)!write(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

static int report_fd(const char *arg)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

int main(int argc, char **argv)
{
	bool wait_all = argc > 1 && strcmp(argv[1], "-a") == 0;
	if (wait_all) {
		argv++;
		argc--;
	}
	if (argc < 3)
		return 255;
	int report = report_fd(argv[1]);
	if (report >= 0)
		fcntl(report, F_SETFD, FD_CLOEXEC);
	sigset_t all, none;
	sigfillset(&all);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		say(report, "cannot reap the orphans of", argv[2], errno);
		return 255;
	}
	pid_t child = fork();
	if (child < 0) {
		say(report, "cannot fork", argv[2], errno);
		return 255;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[2], argv + 2);
		int e = errno;
		say(report, "cannot run", argv[2], e);
		_exit(e == ENOENT ? 127 : 126);
	}
	if (report >= 0)
		close(report); /* the starter reads on until the workload's exec closes its copy */
	/* the workload's command line is the workload's: 'pgrep -f' and 'ps' find it once, as
	 * before there was a reaper (the child has its own copy) */
	for (int i = 2; i < argc; i++)
		memset(argv[i], 0, strlen(argv[i]));
	int status = -1; /* the child's, once it ended (-a) */
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&all, &info);
		if (sig < 0)
			continue; /* EINTR, as after a restore */
		if (sig != SIGCHLD) {
			/* once the child is gone, its orphans get it: all the container's processes but
			 * its init (kill(-1) spares it) and us */
			kill(status < 0 ? child : -1, sig);
			continue;
		}
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == child && !wait_all)
				_exit(status_code(st));
			else if (p == child)
				status = status_code(st);
		if (status >= 0 && p < 0 && errno == ECHILD)
			_exit(status);
	}
}

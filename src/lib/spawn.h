/* SPDX-License-Identifier: GPL-2.0-or-later */
/* spawn.h — the one place that forks and execs helpers (mksquashfs, debootstrap, CRIU, CNI plugins).
 *
 * Absolute path, argv array, explicit environment; never a shell. In the child: stdin is /dev/null
 * unless asked otherwise, every fd >= 3 is closed (except the ones passed on purpose), signal
 * dispositions and the signal mask are reset, and a failed exec is reported back to the parent with
 * its errno (the child then _exit(127)s). The parent waits, retrying on EINTR, and tells a normal exit
 * from a killed child. */
#ifndef FERRY_SPAWN_H
#define FERRY_SPAWN_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "error.h"

/* Values for ferry_spawn_opts.stdin_fd / stdout_fd / stderr_fd besides an open fd (>= 0). The zero value
 * of the struct gives the defaults. */
#define FERRY_SPAWN_DEFAULT 0 /* stdin: /dev/null; stdout, stderr: inherited */
#define FERRY_SPAWN_INHERIT -1 /* the parent's own fd 0/1/2 */
#define FERRY_SPAWN_DEVNULL -2 /* /dev/null */

#define FERRY_SPAWN_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define FERRY_SPAWN_OUTPUT_MAX (64u << 20)

struct ferry_spawn_opts {
	/* An fd (> 0; fd 0 itself is FERRY_SPAWN_DEFAULT, use FERRY_SPAWN_INHERIT for stdin) or one of the
	 * FERRY_SPAWN_* values. */
	int stdin_fd;
	int stdout_fd;
	int stderr_fd;
	/* Bytes to feed the child on stdin (through a sealed-size memfd, so a child that does not read them
	 * never blocks us); overrides stdin_fd. */
	const void *input;
	size_t input_len;
	/* Capture stdout into *output (NUL-terminated, *output_len without the NUL); more than output_max
	 * bytes (0: FERRY_SPAWN_OUTPUT_MAX) is an error. Overrides stdout_fd. */
	char **output;
	size_t *output_len;
	size_t output_max;
	/* Capture stderr (the last 4 KiB) and, when the child fails, end the error message with its last
	 * non-empty line. Overrides stderr_fd. */
	bool capture_stderr;
	/* Fds handed to the child as fd 3, 4, ... in this order (e.g. the starter's request memfd). */
	const int *pass_fds;
	size_t n_pass_fds;
	const char *cwd; /* working directory of the child (NULL: ours) */
	bool new_session; /* setsid() in the child; a timeout then kills the whole process group */
	bool die_with_parent; /* PR_SET_PDEATHSIG SIGKILL in the child */
	int netns_fd; /* > 0: the child joins this network namespace before exec (needs CAP_SYS_ADMIN) */
	/* as_user: the child becomes uid/gid with these groups (real, effective and saved) before exec:
	 * how the root daemon runs the setuid starter for a user it has identified */
	bool as_user;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
	/* RLIM_NLIMITS limits the child takes once it has its ids, or NULL (ours): each must be no
	 * higher than ours (only root may raise a hard limit, and the child has dropped root) */
	const struct rlimit *limits;

	/* > 0: once this fd is readable (a signalfd, say) the child is SIGKILLed (not its group: a
	 * guard it left behind finishes its work) and it is an error (ECANCELED); then, when its
	 * output is captured, the wait goes on until every holder of that pipe is gone (the child's
	 * guard), for at most SPAWN_CANCEL_WAIT_S (spawn.c). */
	int cancel_fd;
	unsigned timeout; /* seconds, 0: none; then the child is SIGKILLed and it is an error */
	/* timeout is on idleness: the time counts from the child's last output (stdout or stderr), so
	 * that a long job that says it goes on is never cut (ferryd's starters of a migration) */
	bool timeout_idle;
	/* seconds, 0: none: a child that stays stopped (its user can send it SIGSTOP) this long is
	 * SIGKILLed, and it is an error ("timed out: it was stopped ... for N s"); its state is looked
	 * at every STOPPED_POLL_MS (spawn.c) */
	unsigned stopped_limit;
};

/* Runs @path (absolute) with @argv (argv[0] set) and @envp (NULL: only FERRY_SPAWN_PATH) and waits for it.
 * @opts may be NULL. When @ret_status is NULL any non-zero exit is an error ("'PATH' exited with status
 * N"); when it is not NULL a normal exit of any status succeeds and stores the exit status. A child
 * killed by a signal ("'PATH' was killed by signal SIGSEGV"), a timeout ("'PATH' timed out after N s")
 * and a failed exec ("exec 'PATH': No such file or directory") are always errors. */
int ferry_spawn(const char *path, char *const argv[], char *const envp[], const struct ferry_spawn_opts *opts,
		int *ret_status, struct ferry_error **err);

/* Whether @pid, an unreaped child of ours, is stopped (SIGSTOP, or a tracer's stop): a child that
 * runs as a user can be stopped by them, and makes no progress however long it is waited for. */
bool ferry_child_stopped(pid_t pid);

/* Describes a wait status as "exited with status 3" / "was killed by signal SIGKILL" into @buf. */
void ferry_spawn_describe_status(int status, char *buf, size_t len);

#endif

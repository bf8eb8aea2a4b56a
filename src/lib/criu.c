/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <criu/criu.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "criu.h"
#include "fs.h"

/* Present in libcriu (lib/c/criu.c) but missing from its public header. */
void criu_local_set_unprivileged(criu_opts *opts, bool unprivileged);

/* libcriu's notification callback has no argument of ours; one dump or restore runs per process */
static int (*post_restore_cb)(void), (*post_dump_cb)(void);
static void (*pre_resume_cb)(void);

static int notify(char *action, criu_notify_arg_t na)
{
	(void)na;
	if (post_restore_cb && streq(action, "post-restore"))
		return post_restore_cb();
	if (pre_resume_cb && streq(action, "pre-resume"))
		pre_resume_cb();
	if (post_dump_cb && streq(action, "post-dump"))
		return post_dump_cb();
	return 0;
}

/* libcriu execs CRIU with our environment, and CRIU runs inside the container with capabilities:
 * every variable that could steer it is the user's or names a path in the user's image ($HOME
 * for ~/.criu/default.conf, CRIU_CONFIG_FILE, CRIU_LIBS_DIR for plugins, XDG_RUNTIME_DIR for its
 * kerndat cache, CR_IP_TOOL, CR_IPTABLES, LD_*, GNUTLS_*...). CRIU gets none of them, and a PATH
 * of the bundle's empty directory: it runs nothing by name (sh, iptables, ip, tar...), since
 * inside the container such a program would be the image's, run with CRIU's capabilities. The
 * processes that call CRIU exist for that only, so their own environment may go. */
static int criu_environment(struct ferry_error **err)
{
	if (clearenv() != 0 || setenv("PATH", FERRY_CRIU_PATH, 1) != 0)
		return ferry_error_set(err, errno ? errno : ENOMEM, "set CRIU's environment");
	return 0;
}

static int setup(criu_opts **ret, const struct ferry_criu_opts *o, struct ferry_error **err)
{
	criu_opts *c = NULL;
	int r = criu_environment(err);
	if (r < 0)
		return r;
	if (criu_local_init_opts(&c) < 0)
		return ferry_error_msg(err, ENOMEM, "libcriu: cannot initialise options");
	criu_local_set_images_dir_fd(c, o->images_fd);
	criu_local_set_work_dir_fd(c, o->work_fd);
	criu_local_set_log_file(c, o->log);
	criu_local_set_log_level(c, 4);
	criu_local_set_unprivileged(c, true);
	criu_local_set_file_locks(c, true);
	criu_local_set_ext_unix_sk(c, true);
	if (o->timeout)
		criu_local_set_timeout(c, o->timeout);
	if (o->tcp) {
		criu_local_set_tcp_established(c, true);
		criu_local_set_network_lock(c, CRIU_NETWORK_LOCK_NFTABLES);
	}

	if (o->config && criu_local_set_config_file(c, o->config) < 0) {
		criu_local_free_opts(c);
		return ferry_error_msg(err, ENOMEM, "libcriu: config file");
	}
	*ret = c;
	return 0;
}

static int fail(struct ferry_error **err, const struct ferry_criu_opts *o, const char *what, int r)
{
	_cleanup_close_ int lfd = openat(o->work_fd, o->log, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	_cleanup_free_ char *lines = ferry_criu_log_errors(lfd, 3);
	/* CRIU's own advice (--tcp-established) is not the user's to take: say what is */
	if (lines && !o->tcp && streq(what, "dump") &&
	    (strstr(lines, "Connected TCP socket") || strstr(lines, "Failed to lock TCP connection")))
		return ferry_error_msg(
		    err, EIO,
		    "CRIU dump failed: the instance holds an established TCP connection, which "
		    "a checkpoint keeps only in an instance with a network of its own ('criu "
		    "network = loopback' in ferry.conf, or --net)");
	if (lines)
		return ferry_error_msg(err, EIO, "CRIU %s failed: %s", what, lines);
	if (r == -ECOMM) /* its socket ended with no answer: CRIU is gone, its log says nothing */
		return ferry_error_msg(
		    err, EIO, "CRIU %s failed: CRIU ended before it answered (killed, or it crashed); see %s",
		    what, o->log);
	return ferry_error_msg(err, EIO, "CRIU %s failed (libcriu %d); see %s", what, r, o->log);
}

/* CRIU is our child on a socket of ours (libcriu's service-fd mode), not one libcriu forks, so
 * that we see it end. libcriu waits for CRIU's answer until the socket's other end is closed;
 * a CRIU killed (or crashed) early leaves that end open in any child it had, such as the one a
 * kerndat probe forks and stops, and the call would wait for as long as that child lives
 * (until the starter's idle limit). When CRIU ends by a signal, SIGCHLD shuts the socket down:
 * libcriu then reads what CRIU sent before it ended, and after that its end. */
static pid_t swrk_pid;
static int swrk_sk = -1; /* a dup of libcriu's end (libcriu closes its own) */

static void swrk_ended(int sig)
{
	int saved = errno;
	siginfo_t si = {0};
	(void)sig;
	if (swrk_pid > 0 && waitid(P_PID, (id_t)swrk_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == swrk_pid && si.si_code != CLD_EXITED)
		shutdown(swrk_sk, SHUT_RDWR);
	errno = saved;
}

/* After the call (libcriu closed its end) or a failed start: CRIU reaped, the handler gone. */
static void swrk_end(void)
{
	int st;
	signal(SIGCHLD, SIG_DFL);
	while (swrk_pid > 0 && waitpid(swrk_pid, &st, 0) < 0 && errno == EINTR)
		;
	swrk_pid = 0;
	close(swrk_sk);
	swrk_sk = -1;
}

/* Forks `@o->binary swrk FD` and points @c at the socket: 0 or -errno. */
static int swrk_start(criu_opts *c, const struct ferry_criu_opts *o, struct ferry_error **err)
{
	int sk[2];
	sigset_t chld;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0)
		return ferry_error_set(err, errno, "CRIU's socket");
	if ((swrk_sk = fcntl(sk[0], F_DUPFD_CLOEXEC, 3)) < 0) {
		int e = errno;
		close(sk[0]);
		close(sk[1]);
		return ferry_error_set(err, e, "CRIU's socket");
	}
	struct sigaction sa = {.sa_handler = swrk_ended, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		char fd[16];
		snprintf(fd, sizeof(fd), "%d", sk[1]);
		sigprocmask(SIG_UNBLOCK, &chld, NULL); /* CRIU needs SIGCHLD (libcriu does the same) */
		if (fcntl(sk[1], F_SETFD, 0) == 0)
			execl(o->binary, o->binary, "swrk", fd, (char *)NULL);
		_exit(127);
	}
	int e = errno;
	swrk_pid = pid > 0 ? pid : 0;
	sigprocmask(SIG_UNBLOCK, &chld, NULL); /* (whatever mask we were given) */
	close(sk[1]);
	if (pid < 0) {
		close(sk[0]);
		swrk_end();
		return ferry_error_set(err, e, "run '%s'", o->binary);
	}
	criu_local_set_service_fd(c, sk[0]);
	return 0;
}

int ferry_criu_dump(const struct ferry_criu_opts *o, struct ferry_error **err)
{
	criu_opts *c = NULL;
	int r = setup(&c, o, err);
	if (r < 0)
		return r;
	criu_local_set_pid(c, o->pid);
	criu_local_set_leave_running(c, o->leave_running);
	criu_local_set_tcp_skip_in_flight(c, o->skip_in_flight);
	if (o->ghost_limit)
		criu_local_set_ghost_limit(c, o->ghost_limit);
	if (o->post_dump) {
		post_dump_cb = o->post_dump;
		criu_local_set_notify_cb(c, notify);
	}
	r = swrk_start(c, o, err);
	if (r < 0) {
		criu_local_free_opts(c);
		return r;
	}
	r = criu_local_dump(c);
	swrk_end();
	post_dump_cb = NULL;
	criu_local_free_opts(c);
	if (r < 0)
		return fail(err, o, "dump", r);
	return 0;
}

int ferry_criu_restore(const struct ferry_criu_opts *o, pid_t *ret_pid, struct ferry_error **err)
{
	criu_opts *c = NULL;
	int r = setup(&c, o, err);
	if (r < 0)
		return r;
	if (o->post_restore || o->pre_resume) {
		post_restore_cb = o->post_restore;
		pre_resume_cb = o->pre_resume;
		criu_local_set_notify_cb(c, notify);
	}
	criu_local_set_tcp_close(c, o->tcp_close);
	criu_local_set_auto_dedup(c, o->auto_dedup);
	r = swrk_start(c, o, err);
	if (r < 0) {
		criu_local_free_opts(c);
		return r;
	}
	r = criu_local_restore(c);
	swrk_end();
	post_restore_cb = NULL;
	pre_resume_cb = NULL;
	criu_local_free_opts(c);
	if (r <= 0)
		return fail(err, o, "restore", r);
	*ret_pid = (pid_t)r;
	return 0;
}

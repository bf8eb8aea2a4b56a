/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-starter — the only code a user can make run as root. Read docs/security.md first.
 *
 * Discipline (OpenSSH/Apptainer): sanitize the process (fds, environment, umask), drop the
 * effective uid to the caller at once, read the request the CLI sent on fd 3 and check every
 * field against ferry.conf and the caller's REAL uid (identity is never taken from the request),
 * open every user-named file with the caller's rights, regain root only around the steps that
 * need it (namespaces, mounts, records), and drop everything for good before user code runs. */
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fs.h"
#include "helper.h"
#include "plan.h"
#include "starter.h"
#include "transfer.h"

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

/* fd 3 is the request, for the plan child alone; fd 4 may carry the socket of a --page-server
 * transfer: connected, or (a restart) the one it listens on. Every other fd is closed. */
static void take_fds(struct starter *s)
{
	struct stat st;
	if (fstat(FERRY_REQUEST_FD, &st) < 0)
		die("ferry-starter is run by the 'ferry' command, not directly (no request on fd %d)",
		    FERRY_REQUEST_FD);
	if (fstat(STARTER_XFER_FD, &st) == 0 && S_ISSOCK(st.st_mode))
		s->xfer_fd = fcntl(STARTER_XFER_FD, F_DUPFD_CLOEXEC, 10);
	/* only root's regular file open for writing (ferryd's: a migration's journal record, or a
	 * memfd): whoever runs us can write there anyway, and reading it back never blocks */
	int fl = fcntl(STARTER_DECISION_FD, F_GETFL);
	if (fl >= 0 && (fl & O_ACCMODE) == O_RDWR && fstat(STARTER_DECISION_FD, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_uid == 0 && st.st_nlink <= 1)
		s->decision_fd = fcntl(STARTER_DECISION_FD, F_DUPFD_CLOEXEC, 10);
	/* (the list ends at its first -1: a missing socket is the request again) */
	ferry_close_fds(3, (const int[]){FERRY_REQUEST_FD, s->xfer_fd >= 0 ? s->xfer_fd : FERRY_REQUEST_FD,
					 s->decision_fd, -1});
}

/* ferry.conf, as ferry-conf parsed it: the caller for good, in a process the caller cannot trace
 * (config_policy.c). The starter only decodes what it sends. */
static void load_config(struct starter *s)
{
	struct ferry_error *err = NULL;
	_cleanup_close_ int exe =
	    helper_open_private("ferry-conf", "the node's policy for the starter", &err);
	int p[2];
	if (exe < 0)
		die_error(err);
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe: %m");
	pid_t pid = fork();
	if (pid == 0) {
		char *const argv[] = {"ferry-conf", NULL};
		helper_exec((const int[]){-1, p[1], 2}, 3, exe, argv, helper_become_caller, &s->privs);
	}
	if (pid < 0)
		die("fork: %m");
	close(p[1]);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int st = 0, r = ferry_read_all(p[0], FERRY_CONFIG_WIRE_MAX, &buf, &len, &err);
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	/* its error: one line of its own (the file's name, line and what is wrong there) */
	if (r == 0 && len > 2 && memcmp(buf, "E ", 2) == 0)
		die("%.*s", (int)strcspn(buf + 2, "\n"), buf + 2);
	if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("ferry-conf did not send this node's configuration (%s/ferry-conf: run 'make install')",
		    FERRY_LIBEXECDIR);
	TRY(ferry_config_decode(buf, len, &s->cfg, &err));
}

/* A restart: the checkpoint is received (--page-server) and verified, and s->req becomes the
 * launch request it sealed. That launch request (verify_checkpoint in checkpoint.c, for a
 * restart here and for 'checkpoint restore') is decoded once its bytes were hashed and checked
 * against the manifest the node's key signed, and by ferry-plan as the caller, like the caller's
 * own request (plan.c): root decodes no request. What the launch request names (image,
 * networks, binds) is then prepared by a second plan child, as the caller, like any request's. */
static void prepare_restart(struct starter *s)
{
	struct ferry_error *err = NULL;
	/* (a --page-server restart says why it fails only inside its session, once that runs:
	 * checkpoint_receive. A raw verdict on the connection before then would be read by the
	 * sender and by ferryd as the start of something else, and mask the daemon's own word.) */
	if (s->xfer_fd >= 0 && !s->req->page_server)
		starter_verdict_fd = s->xfer_fd;
	if (s->xfer_fd >= 0 && s->req->page_server) {
		TRY(checkpoint_receive(s, &err)); /* pages and images arrive, verified */
		starter_t_received = ferry_monotonic_ms();
	}
	TRY(checkpoint_prepare_restart(s, &err));
	TRY(starter_check_names(s->req, &err));
	TRY(plan_fetch(s, true, &err));
}

/* EXEC and INSTANCE_START: what the plan child prepared, checked against policy, and the rest
 * opened (checkpoint directory, logs, ferry's own mounts) before the container is made. */
static void prepare_container(struct starter *s)
{
	struct ferry_error *err = NULL;
	const struct ferry_request *req = s->req;
	s->instance = req->op == FERRY_OP_INSTANCE_START;
	s->criu = req->flags & (FERRY_REQ_CRIU_LAUNCH | FERRY_REQ_CRIU_RESTART);
	if ((req->flags & FERRY_REQ_CRIU_LAUNCH) && s->ckpt_fd < 0)
		TRY(checkpoint_open_dir(s, req->checkpoint, &err));
	/* a restart's address and MAC are the instance's own, sealed in its checkpoint with who chose
	 * them: its networks and its address are checked against this node's policy of today, and
	 * what the user chose against what users may choose here, as root with root's config, before
	 * any network is attached. A start's: the IPAM chooses what it does not ask for. */
	bool restart = req->flags & FERRY_REQ_CRIU_RESTART;
	if (req->flags & FERRY_REQ_NET) {
		bool old = restart && !(req->flags & FERRY_REQ_NET_SAID); /* sealed before it said */
		s->net_args.ipam_ip = restart ? old || (req->flags & FERRY_REQ_NET_IPAM_IP) : !s->net_args.ip;
		s->net_args.ipam_mac =
		    restart ? old || (req->flags & FERRY_REQ_NET_IPAM_MAC) : !s->net_args.mac;
		TRY(ferry_net_check_policy(s->cfg, s->privs.uid, s->networks, &s->net_args, restart, &err));
	}
	if (s->criu) {
		TRY(ferry_image_fingerprint(s->image_fd, &s->image_fingerprint, &err));
		if (s->manifest && s->manifest->image_fingerprint && *s->manifest->image_fingerprint &&
		    !streq(s->manifest->image_fingerprint, s->image_fingerprint))
			die("image '%s' is not the image the checkpoint was made with ('%s'): restart with that image",
			    req->image, s->manifest->image);
	}
	if (s->instance)
		TRY(open_logs(s, &err));
	TRY(plan_mounts(s, &s->given, &err));
	TRY(ferry_privs_raise(&s->privs, &err));
	TRY(container_clone_trees(s, &err));
	TRY(ferry_privs_lower(&s->privs, &err));
}

int main(int argc, char **argv)
{
	struct ferry_error *err = NULL;
	struct starter s = {.image_fd = -1,
			    .image_tree = -1,
			    .log_out = -1,
			    .log_err = -1,
			    .stdio = {-1, -1, -1},
			    .ckpt_fd = -1,
			    .restore_fd = -1,
			    .ns_last_pid_fd = -1,
			    .xfer_fd = -1,
			    .decision_fd = -1,
			    .lazy_rep = -1};

	/* first: neither the caller's resource limits nor their signal dispositions and mask (all
	 * kept by the exec) steer root's code; the caller's limits come back with the permanent drop
	 * (ferry_privs_drop), a workload's signals are reset again (workload_prepare). An ignored
	 * SIGCHLD would lose every child's status. */
	TRY(ferry_privs_own_limits(&s.privs, &err));
	reset_signals();
	signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error, not a death */
	signal(SIGXFSZ, SIG_IGN); /* and so is a write past a file size limit (EFBIG) */
	sanitize_stdio();
	starter_t_start = ferry_monotonic_ms();
	if (geteuid() != 0)
		die("ferry-starter is not setuid root: install ferry with 'make install' as root");
	if (!getauxval(AT_SECURE) && getuid() != 0)
		die("ferry-starter: unexpected credentials");
	if (clearenv() != 0 || setenv("PATH", STARTER_PATH, 1) != 0)
		die("cannot reset the environment");
	umask(022);
	TRY(ferry_privs_init(&s.privs, &err));
	TRY(ferry_privs_lower(&s.privs, &err));
	take_fds(&s);
	load_config(&s);
	lookup_user(&s);

	/* the request is read, decoded and checked by a child that is the caller for good, and
	 * checked again here from the plan it sends (see plan.c) */
	TRY(plan_fetch(&s, false, &err));
	if (!s.req->page_server && !(s.req->flags & FERRY_REQ_COMMIT) && s.xfer_fd >= 0) {
		close(s.xfer_fd);
		s.xfer_fd = -1;
	}
	starter_want_timings = s.req->flags & FERRY_REQ_TIMINGS;
	if (s.req->op == FERRY_OP_INSTANCE_START && (s.req->flags & FERRY_REQ_CRIU_RESTART)) {
		s.lazy = (s.req->flags & FERRY_REQ_LAZY) && s.req->page_server && s.xfer_fd >= 0;
		prepare_restart(&s);
	}
	const struct starter_op *op = starter_op(s.req->op);
	if (op->image)
		prepare_container(&s);
	op->handler(&s);
	return 255;
}
